//! Credentials of a CVM instance role, from the instance metadata service, and the provider chain
//! (explicit → environment → instance role).
//!
//! On a Tencent Cloud CVM bound to a CAM role, `GET /latest/meta-data/cam/security-credentials/` on
//! `http://metadata.tencentyun.com` lists the role name, and `GET …/security-credentials/<role>` answers
//! temporary keys as JSON (`TmpSecretId`, `TmpSecretKey`, `Token`, `ExpiredTime` in Unix seconds,
//! `Code: "Success"`). The core builds those requests and reads the answers; the drivers send them
//! (`cos_blocking::InstanceRoleCredentials`, `cos_async::InstanceRoleCredentials`) through a
//! [`MetadataGet`] and cache them with [`RefreshingCredentials`], refreshing ahead of expiry.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::credentials::{ProvideCredentials, RefreshingCredentials};
use crate::error::{Error, InvalidInput, TransportError, TransportErrorKind};
use crate::Credentials;

/// The metadata service of Tencent Cloud CVM instances.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://metadata.tencentyun.com";

/// The path listing the instance's role, and, with the role name appended, its credentials.
pub const ROLE_PATH: &str = "/latest/meta-data/cam/security-credentials/";

/// Refresh this long before the temporary keys expire (by default).
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// Sends one `GET` to the metadata service and returns the answer (any status): the driver's part.
pub type MetadataGet =
    dyn Fn(&http::Request<()>) -> Result<http::Response<Bytes>, TransportError> + Send + Sync;

/// The `GET` for `path` on `endpoint` (`http://host[:port]`).
pub fn metadata_request(endpoint: &str, path: &str) -> Result<http::Request<()>, Error> {
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Error::InvalidInput(InvalidInput::Endpoint(endpoint.to_string())))?;
    let host = uri
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| Error::InvalidInput(InvalidInput::Endpoint(endpoint.to_string())))?;
    http::Request::get(uri)
        .header(http::header::HOST, host)
        .body(())
        .map_err(|_| Error::InvalidInput(InvalidInput::Endpoint(endpoint.to_string())))
}

fn failed(what: &str, response: &http::Response<Bytes>) -> Error {
    Error::Transport(TransportError::new(
        TransportErrorKind::Other,
        // Never the body: it may hold keys.
        format!(
            "instance metadata service: {what} (HTTP {})",
            response.status().as_u16(),
        ),
    ))
}

/// Reads the role list: the first non-empty line is the role name.
pub fn parse_role_name(response: &http::Response<Bytes>) -> Result<String, Error> {
    if !response.status().is_success() {
        return Err(failed("no CAM role is bound to this instance", response));
    }
    std::str::from_utf8(response.body())
        .ok()
        .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()))
        .filter(|r| !r.contains(['/', '?', '#', '%']))
        .map(str::to_string)
        .ok_or_else(|| failed("the role list is empty", response))
}

/// The fields of the metadata service's credentials document (other members are ignored).
#[derive(serde::Deserialize)]
struct RoleCredentialsJson {
    #[serde(rename = "TmpSecretId", default)]
    id: String,
    #[serde(rename = "TmpSecretKey", default)]
    key: String,
    #[serde(rename = "Token", default)]
    token: String,
    #[serde(rename = "ExpiredTime", default)]
    expired_time: Option<UnixSeconds>,
    #[serde(rename = "Code", default)]
    code: Option<String>,
}

/// `ExpiredTime`: a JSON number, or (as some services send it) a string of digits.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum UnixSeconds {
    Number(u64),
    Text(String),
}

impl UnixSeconds {
    fn get(&self) -> Option<u64> {
        match self {
            UnixSeconds::Number(n) => Some(*n),
            UnixSeconds::Text(t) => t.trim().parse().ok(),
        }
    }
}

/// Reads a role's temporary keys; their expiry is `ExpiredTime` (Unix seconds).
pub fn parse_role_credentials(response: &http::Response<Bytes>) -> Result<Credentials, Error> {
    if !response.status().is_success() {
        return Err(failed("the role's credentials are not available", response));
    }
    // A plain error rather than serde's, which would quote the body (and the keys in it).
    let expected = || failed("the credentials are not the expected JSON", response);
    let j: RoleCredentialsJson = serde_json::from_slice(response.body()).map_err(|_| expected())?;
    if j.code.as_deref().is_some_and(|c| c != "Success") {
        return Err(failed("the service did not answer Success", response));
    }
    if j.id.is_empty() || j.key.is_empty() {
        return Err(InvalidInput::MissingCredentials.into());
    }
    let mut c = Credentials::new(j.id, j.key);
    if !j.token.is_empty() {
        c = c.with_security_token(j.token);
    }
    if let Some(t) = j.expired_time {
        let t = t.get().ok_or_else(expected)?;
        c = c.with_expiry(SystemTime::UNIX_EPOCH + Duration::from_secs(t));
    }
    Ok(c)
}

/// Credentials of the instance's CAM role, cached and refreshed [`DEFAULT_REFRESH_BEFORE`] (or
/// [`InstanceRole::refresh_before`]) ahead of their expiry. The role name is discovered on first use
/// unless given.
///
/// ```
/// use std::time::SystemTime;
/// use cos_core::credentials::ProvideCredentials;
/// use cos_core::instance_role::InstanceRole;
/// // A stand-in for the metadata service (the drivers send real requests).
/// let provider = InstanceRole::new(|req: &http::Request<()>| {
///     let body = if req.uri().path().ends_with("/security-credentials/") {
///         "cos-uploader".to_string()
///     } else {
///         r#"{"TmpSecretId":"AKIDtmp","TmpSecretKey":"k","Token":"t","ExpiredTime":4102444800,"Code":"Success"}"#.to_string()
///     };
///     Ok(http::Response::new(bytes::Bytes::from(body)))
/// });
/// let c = provider.credentials(SystemTime::UNIX_EPOCH)?;
/// assert_eq!((c.secret_id(), c.security_token()), ("AKIDtmp", Some("t")));
/// # Ok::<(), cos_core::Error>(())
/// ```
pub struct InstanceRole {
    endpoint: String,
    role: Arc<Mutex<Option<String>>>,
    get: Arc<MetadataGet>,
    cache: RefreshingCredentials,
    refresh_before: Duration,
}

impl InstanceRole {
    /// Asks the default metadata service through `get`.
    pub fn new(
        get: impl Fn(&http::Request<()>) -> Result<http::Response<Bytes>, TransportError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self::build(
            DEFAULT_METADATA_ENDPOINT.to_string(),
            None,
            Arc::new(get),
            DEFAULT_REFRESH_BEFORE,
        )
    }

    fn build(
        endpoint: String,
        role: Option<String>,
        get: Arc<MetadataGet>,
        refresh_before: Duration,
    ) -> Self {
        let role = Arc::new(Mutex::new(role));
        let (e, r, g) = (endpoint.clone(), role.clone(), get.clone());
        let cache = RefreshingCredentials::new(
            move |_now| {
                let known = r.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let name = match known {
                    Some(n) => n,
                    None => {
                        let response =
                            g(&metadata_request(&e, ROLE_PATH)?).map_err(Error::Transport)?;
                        let n = parse_role_name(&response)?;
                        *r.lock().unwrap_or_else(|p| p.into_inner()) = Some(n.clone());
                        n
                    }
                };
                let path = format!("{ROLE_PATH}{}", crate::auth::encode(&name));
                parse_role_credentials(&g(&metadata_request(&e, &path)?).map_err(Error::Transport)?)
            },
            refresh_before,
        );
        InstanceRole {
            endpoint,
            role,
            get,
            cache,
            refresh_before,
        }
    }

    /// Another metadata endpoint (`http://host[:port]`), e.g. a local mock.
    pub fn endpoint(self, endpoint: &str) -> Self {
        let role = self.role.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Self::build(endpoint.to_string(), role, self.get, self.refresh_before)
    }

    /// Uses this role instead of asking the service for the instance's role.
    pub fn role(self, name: &str) -> Self {
        Self::build(
            self.endpoint,
            Some(name.to_string()),
            self.get,
            self.refresh_before,
        )
    }

    /// Refreshes this long before expiry (default five minutes).
    pub fn refresh_before(self, d: Duration) -> Self {
        let role = self.role.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Self::build(self.endpoint, role, self.get, d)
    }

    /// The role name, once known.
    pub fn role_name(&self) -> Option<String> {
        self.role.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ProvideCredentials for InstanceRole {
    fn credentials(&self, now: SystemTime) -> Result<Credentials, Error> {
        self.cache.credentials(now)
    }
}

impl fmt::Debug for InstanceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstanceRole")
            .field("endpoint", &self.endpoint)
            .field("role", &self.role_name())
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Tries providers in order and returns the first credentials one gives; when all fail, the last error.
///
/// ```
/// use std::time::SystemTime;
/// use cos_core::credentials::{EnvCredentials, ProvideCredentials};
/// use cos_core::instance_role::ChainCredentials;
/// let chain = ChainCredentials::new()
///     .or(EnvCredentials::with_lookup(|_| None))
///     .or(cos_core::Credentials::new("AKID", "KEY"));
/// assert_eq!(chain.credentials(SystemTime::UNIX_EPOCH)?.secret_id(), "AKID");
/// # Ok::<(), cos_core::Error>(())
/// ```
#[derive(Default)]
pub struct ChainCredentials {
    providers: Vec<Box<dyn ProvideCredentials>>,
}

impl ChainCredentials {
    /// An empty chain (which fails with [`InvalidInput::MissingCredentials`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider at the end.
    #[allow(clippy::should_implement_trait)]
    pub fn or(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.providers.push(Box::new(provider));
        self
    }
}

impl ProvideCredentials for ChainCredentials {
    fn credentials(&self, now: SystemTime) -> Result<Credentials, Error> {
        let mut last = Error::InvalidInput(InvalidInput::MissingCredentials);
        for p in &self.providers {
            match p.credentials(now) {
                Ok(c) if c.is_complete() => return Ok(c),
                Ok(_) => last = InvalidInput::MissingCredentials.into(),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl fmt::Debug for ChainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainCredentials({} providers)", self.providers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> http::Response<Bytes> {
        http::Response::new(Bytes::from(body.to_string()))
    }

    #[test]
    fn parses_the_metadata_answers() {
        assert_eq!(
            parse_role_name(&ok("\n  my-role\nother\n")).unwrap(),
            "my-role"
        );
        assert!(parse_role_name(&ok("")).is_err());
        let mut r404 = ok("not found");
        *r404.status_mut() = http::StatusCode::NOT_FOUND;
        assert!(parse_role_name(&r404).is_err());
        let c = parse_role_credentials(&ok(
            r#"{ "TmpSecretId": "AKIDx", "TmpSecretKey": "s\/k", "ExpiredTime": 1700000000,
                 "Expiration": "2023-11-14T22:13:20Z", "Token": "tok", "Code": "Success" }"#,
        ))
        .unwrap();
        assert_eq!(
            (c.secret_id(), c.secret_key(), c.security_token()),
            ("AKIDx", "s/k", Some("tok"))
        );
        assert_eq!(
            c.expires_at(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let e =
            parse_role_credentials(&ok(r#"{"Code":"Failed","TmpSecretKey":"leak"}"#)).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("leak"), "{e:?}");
        assert!(parse_role_credentials(&ok("<html>")).is_err());
        assert!(parse_role_credentials(&ok(r#"{"TmpSecretId":"a"}"#)).is_err());
        // ExpiredTime as a string of digits; a non-numeric one is refused.
        let body = r#"{"TmpSecretId":"a","TmpSecretKey":"k","ExpiredTime":"1700000000"}"#;
        assert_eq!(
            parse_role_credentials(&ok(body)).unwrap().expires_at(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let body = r#"{"TmpSecretId":"a","TmpSecretKey":"k","ExpiredTime":"soon"}"#;
        assert!(parse_role_credentials(&ok(body)).is_err());
    }

    #[test]
    fn chain_takes_the_first_that_answers() {
        let chain = ChainCredentials::new()
            .or(Credentials::new("", ""))
            .or(Credentials::new("b", "k"));
        assert_eq!(
            chain
                .credentials(SystemTime::UNIX_EPOCH)
                .unwrap()
                .secret_id(),
            "b"
        );
        assert_eq!(
            ChainCredentials::new().credentials(SystemTime::UNIX_EPOCH),
            Err(Error::InvalidInput(InvalidInput::MissingCredentials))
        );
    }

    #[test]
    fn the_role_is_asked_once_then_its_keys_are_cached_until_the_refresh_window() {
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = asked.clone();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let role = InstanceRole::new(move |req: &http::Request<()>| {
            log.lock().unwrap().push(format!(
                "{} {}",
                req.headers()["host"].to_str().unwrap(),
                req.uri().path()
            ));
            let body = if req.uri().path() == ROLE_PATH {
                "my role\n".to_string()
            } else {
                r#"{"TmpSecretId":"AKIDtmp","TmpSecretKey":"SECRET","Token":"tok","ExpiredTime":2000,"Code":"Success"}"#.to_string()
            };
            Ok(http::Response::new(Bytes::from(body)))
        })
        .endpoint("http://127.0.0.1:1/")
        .refresh_before(Duration::from_secs(100));
        assert_eq!(role.role_name(), None);
        let c = role.credentials(now).unwrap();
        assert_eq!(
            (c.secret_id(), c.security_token()),
            ("AKIDtmp", Some("tok"))
        );
        assert_eq!(role.role_name().as_deref(), Some("my role"));
        // Cached until 100 s before the expiry at 2,000 s, then asked again (the role name is kept).
        role.credentials(now + Duration::from_secs(899)).unwrap();
        assert_eq!(asked.lock().unwrap().len(), 2);
        role.credentials(now + Duration::from_secs(901)).unwrap();
        assert_eq!(
            *asked.lock().unwrap(),
            [
                format!("127.0.0.1:1 {ROLE_PATH}"),
                format!("127.0.0.1:1 {ROLE_PATH}my%20role"),
                format!("127.0.0.1:1 {ROLE_PATH}my%20role"),
            ]
        );
        let debug = format!("{role:?}");
        assert!(
            debug.contains("127.0.0.1:1") && debug.contains("my role"),
            "{debug}"
        );
        assert!(!debug.contains("SECRET"), "{debug}");

        // A given role is used as it is, on the default endpoint.
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = paths.clone();
        let named = InstanceRole::new(move |req: &http::Request<()>| {
            log.lock().unwrap().push(req.uri().to_string());
            Err(TransportError::new(TransportErrorKind::Connect, "down"))
        })
        .role("cvm");
        assert_eq!(named.role_name().as_deref(), Some("cvm"));
        assert!(named.credentials(now).is_err());
        assert_eq!(
            *paths.lock().unwrap(),
            [format!("{DEFAULT_METADATA_ENDPOINT}{ROLE_PATH}cvm")]
        );
        assert_eq!(
            format!("{:?}", ChainCredentials::new().or(named)),
            "ChainCredentials(1 providers)"
        );
    }
}
