//! Presigned URLs: a URL anyone can use, until it expires, to perform one request (download an object,
//! upload one with PUT) without credentials of their own.
//!
//! The signature travels in the query (`q-sign-algorithm=sha1&q-ak=…&q-signature=…`), with
//! `x-cos-security-token` for temporary credentials; see [`crate::auth::presign`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::{self, KeyTime};
use crate::config::{validate_key, Config};
use crate::date::corrected;
use crate::error::{Error, InvalidInput};

/// A presigned URL for `method` on `key`, valid from `now` to `now + expires_in`.
///
/// - `params` are query parameters added to the URL and signed (e.g. `response-content-type`, or
///   `partNumber`/`uploadId` to presign an Upload Part).
/// - `headers` are signed too (those [`auth::should_sign_header`] accepts; others are ignored): whoever uses
///   the URL must send them with exactly these values. `Host` is always signed and need not be given.
/// - The window starts at `now` shifted by the config's learned clock offset
///   ([`Config::clock_offset_secs`]); the credentials are the config's.
///
/// Errors ([`Error::InvalidInput`]): an invalid key, a zero `expires_in`, incomplete credentials, or a
/// header name/value HTTP cannot carry.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cos_core::{presign::presigned_url, Config, Credentials};
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKIDEXAMPLE", "KEY"))?;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let url = presigned_url(&config, http::Method::GET, "photos/a b.jpg", now, Duration::from_secs(600), &[], &[])?;
/// let s = url.to_string();
/// assert!(s.starts_with("https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/photos/a%20b.jpg?"));
/// assert!(s.contains("q-ak=AKIDEXAMPLE&q-sign-time=1700000000%3B1700000600"));
/// # Ok::<(), cos_core::Error>(())
/// ```
pub fn presigned_url(
    config: &Config,
    method: http::Method,
    key: &str,
    now: SystemTime,
    expires_in: Duration,
    params: &[(String, String)],
    headers: &[(String, String)],
) -> Result<http::Uri, Error> {
    validate_key(key)?;
    if expires_in.as_secs() == 0 {
        return Err(InvalidInput::Parameter {
            name: "expires_in",
            reason: "a presigned URL must stay valid for at least one second".into(),
        }
        .into());
    }
    let start = corrected(now, config.clock_offset_secs)?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let key_time = KeyTime {
        start,
        end: start.saturating_add(expires_in.as_secs()),
    };
    let query: Vec<(&str, String)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let uri = config.uri(key, &query)?;
    let mut req = http::Request::builder().method(method).uri(uri);
    let h = req.headers_mut().expect("builder is valid");
    h.insert(
        http::header::HOST,
        crate::ops::header_value("host", &config.host())?,
    );
    for (name, value) in headers {
        let n = http::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::InvalidInput(InvalidInput::HeaderValue(name.clone())))?;
        h.append(n, crate::ops::header_value(name, value)?);
    }
    let req = req
        .body(())
        .map_err(|e| Error::InvalidInput(InvalidInput::Uri(e.to_string())))?;
    auth::presign(&req, &config.credentials, key_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{get_authorization, parse_query, AuthorizationFields, SignInput};
    use crate::Credentials;

    fn config(creds: Credentials) -> Config {
        Config::new("examplebucket-1250000000", "ap-guangzhou", creds).unwrap()
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Verifies a presigned URL the way a server does: recompute the signature from what the URL carries.
    fn verify(
        url: &http::Uri,
        method: &str,
        secret_key: &str,
        headers: &[(String, String)],
    ) -> bool {
        let pairs = parse_query(url.query().unwrap()).unwrap();
        let f = AuthorizationFields::from_pairs(&pairs).unwrap();
        let signed: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| f.param_list.contains(&k.to_ascii_lowercase()))
            .cloned()
            .collect();
        let hs: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| f.header_list.contains(&k.to_ascii_lowercase()))
            .cloned()
            .collect();
        let key = auth::decode(url.path().trim_start_matches('/')).unwrap();
        let sig = get_authorization(
            &Credentials::new(&f.secret_id, secret_key),
            &SignInput {
                method,
                key: &key,
                query: &signed,
                headers: &hs,
                key_time: KeyTime::parse(&f.key_time).unwrap(),
            },
        );
        sig.signature == f.signature
    }

    fn host() -> (String, String) {
        (
            "host".into(),
            "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com".into(),
        )
    }

    #[test]
    fn url_verifies_and_window_is_now_plus_expiry() {
        let c = config(Credentials::new("AKIDEXAMPLE", "sk"));
        let params = vec![(
            "response-content-type".to_string(),
            "text/plain".to_string(),
        )];
        let headers = vec![("x-cos-traffic-limit".to_string(), "819200".to_string())];
        let url = presigned_url(
            &c,
            http::Method::GET,
            "dir/ü x.txt",
            t(1000),
            Duration::from_secs(300),
            &params,
            &headers,
        )
        .unwrap();
        let pairs = parse_query(url.query().unwrap()).unwrap();
        let f = AuthorizationFields::from_pairs(&pairs).unwrap();
        assert_eq!(f.key_time, "1000;1300");
        assert_eq!(f.sign_time, "1000;1300");
        assert_eq!(f.header_list, vec!["host", "x-cos-traffic-limit"]);
        assert_eq!(f.param_list, vec!["response-content-type"]);
        assert_eq!(url.path(), "/dir/%C3%BC%20x.txt");
        let mut all = headers.clone();
        all.push(host());
        assert!(verify(&url, "get", "sk", &all));
        assert!(!verify(&url, "get", "other", &all));
        assert!(!verify(&url, "put", "sk", &all));
        // The same request with a different signed header value does not verify.
        let changed = vec![
            ("x-cos-traffic-limit".to_string(), "1000000".to_string()),
            host(),
        ];
        assert!(!verify(&url, "get", "sk", &changed));
    }

    #[test]
    fn altered_param_changes_signature() {
        let c = config(Credentials::new("AKID", "sk"));
        let sign = |v: &str| {
            let url = presigned_url(
                &c,
                http::Method::GET,
                "a.txt",
                t(1000),
                Duration::from_secs(60),
                &[("response-content-type".into(), v.into())],
                &[],
            )
            .unwrap();
            let pairs = parse_query(url.query().unwrap()).unwrap();
            (
                url.clone(),
                AuthorizationFields::from_pairs(&pairs).unwrap().signature,
            )
        };
        let (url_a, a) = sign("text/plain");
        let (_, b) = sign("text/html");
        assert_ne!(a, b);
        // Tampering with the parameter of a valid URL breaks verification.
        let tampered: http::Uri = url_a
            .to_string()
            .replace("text%2Fplain", "text%2Fhtml")
            .parse()
            .unwrap();
        assert!(verify(&url_a, "get", "sk", &[host()]));
        assert!(!verify(&tampered, "get", "sk", &[host()]));
    }

    #[test]
    fn security_token_and_clock_offset() {
        let mut c = config(Credentials::new("AKID", "sk").with_security_token("tok/+="));
        c.clock_offset_secs = -100;
        let url = presigned_url(
            &c,
            http::Method::PUT,
            "a",
            t(1000),
            Duration::from_secs(10),
            &[],
            &[],
        )
        .unwrap();
        let pairs = parse_query(url.query().unwrap()).unwrap();
        assert!(pairs.contains(&("x-cos-security-token".into(), "tok/+=".into())));
        let f = AuthorizationFields::from_pairs(&pairs).unwrap();
        assert_eq!(f.key_time, "900;910");
        assert!(verify(&url, "put", "sk", &[host()]));
    }

    #[test]
    fn custom_endpoint() {
        let c = config(Credentials::new("AKID", "sk"))
            .with_endpoint(crate::Endpoint::custom("http://127.0.0.1:9000").unwrap())
            .unwrap();
        let url = presigned_url(
            &c,
            http::Method::GET,
            "k",
            t(5),
            Duration::from_secs(5),
            &[],
            &[],
        )
        .unwrap();
        assert!(url
            .to_string()
            .starts_with("http://127.0.0.1:9000/k?q-sign-algorithm=sha1&"));
        assert!(verify(
            &url,
            "get",
            "sk",
            &[("host".into(), "127.0.0.1:9000".into())]
        ));
    }

    #[test]
    fn bad_input() {
        let c = config(Credentials::new("AKID", "sk"));
        let p = |key: &str, exp: u64, headers: &[(String, String)]| {
            presigned_url(
                &c,
                http::Method::GET,
                key,
                t(5),
                Duration::from_secs(exp),
                &[],
                headers,
            )
        };
        assert!(matches!(
            p("", 5, &[]),
            Err(Error::InvalidInput(InvalidInput::Key { .. }))
        ));
        assert!(matches!(
            p("/abs", 5, &[]),
            Err(Error::InvalidInput(InvalidInput::Key { .. }))
        ));
        assert!(matches!(
            p("a", 0, &[]),
            Err(Error::InvalidInput(InvalidInput::Parameter { .. }))
        ));
        assert!(matches!(
            p("a", 5, &[("bad name".into(), "v".into())]),
            Err(Error::InvalidInput(InvalidInput::HeaderValue(_)))
        ));
        assert!(matches!(
            p("a", 5, &[("x-cos-meta-a".into(), "line\nbreak".into())]),
            Err(Error::InvalidInput(InvalidInput::HeaderValue(_)))
        ));
        let mut incomplete = c.clone();
        incomplete.credentials = Credentials::new("AKID", "");
        assert_eq!(
            presigned_url(
                &incomplete,
                http::Method::GET,
                "a",
                t(5),
                Duration::from_secs(5),
                &[],
                &[]
            ),
            Err(Error::InvalidInput(InvalidInput::MissingCredentials))
        );
    }
}
