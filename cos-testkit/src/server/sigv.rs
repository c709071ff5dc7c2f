//! Request signature verification with `cos_core::auth`.
//!
//! The server recomputes the signature over exactly the headers and query parameters the client listed in
//! `q-header-list` / `q-url-param-list`, taking each from the request. `host` is tried as sent and without its
//! port (the Python SDK signs it without, the Node SDK with). Both the `Authorization` header and the
//! presigned-URL form (the same fields in the query, or the whole value in `sign=`) are accepted.
//!
//! Decisions where COS documents little:
//! - no signature at all: 403 `AccessDenied`;
//! - `q-ak` not the server's SecretId: 403 `InvalidAccessKeyId`;
//! - key time ended: 403 `AccessDenied` "Request has expired" (what COS answers);
//! - key time starting in the server's future: 403 `RequestTimeTooSkewed`, so that clients correct their clock
//!   from the `Date` header and retry;
//! - server configured with a security token and the request carries none or another: 403 `InvalidAccessKeyId`
//!   (temporary SecretIds are not valid without their token);
//! - signature mismatch: 403 `SignatureDoesNotMatch` with `StringToSign` and `FormatString` in the body.

use cos_core::auth::{get_authorization, AuthorizationFields, KeyTime, SignInput};
use cos_core::Credentials;

use super::ApiError;

/// What the verifier needs from the request.
pub(crate) struct SignedRequest<'a> {
    pub method: &'a str,
    /// The decoded path without its first `/`. The path signed is the whole path as sent (`"/" + key`, even
    /// when the key itself starts with `/`), as the official SDKs sign it.
    pub key: &'a str,
    /// Decoded query pairs.
    pub query: &'a [(String, String)],
    pub headers: &'a http::HeaderMap,
    pub now: u64,
}

fn lowered(name: &str) -> String {
    cos_core::auth::encode(name).to_ascii_lowercase()
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

pub(crate) fn header_str(v: &http::HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// Checks a request's signature; `token` is the security token the server requires, if any.
pub(crate) fn verify(
    req: &SignedRequest<'_>,
    creds: &Credentials,
    token: Option<&str>,
) -> Result<(), ApiError> {
    let presigned = req.query.iter().any(|(k, _)| k == "q-sign-algorithm");
    // `?sign=` carries a whole Authorization value, URL-encoded (the Node SDK's signed URLs).
    let sign_param = req.query.iter().find(|(k, _)| k == "sign").map(|(_, v)| v);
    let fields = match req.headers.get(http::header::AUTHORIZATION) {
        Some(v) => AuthorizationFields::parse(&header_str(v)),
        None if presigned => AuthorizationFields::from_pairs(req.query),
        None if sign_param.is_some() => sign_param.and_then(|v| AuthorizationFields::parse(v)),
        None => {
            return Err(ApiError::new(
                403,
                "AccessDenied",
                "The request carries no Authorization header or signature.",
            ))
        }
    };
    let Some(fields) = fields else {
        return Err(ApiError::new(
            403,
            "AccessDenied",
            "The Authorization is malformed: q-sign-algorithm, q-ak, q-key-time and q-signature are required.",
        ));
    };
    if !fields.algorithm.eq_ignore_ascii_case("sha1") {
        return Err(ApiError::new(
            403,
            "AccessDenied",
            "q-sign-algorithm must be sha1.",
        ));
    }
    if fields.secret_id != creds.secret_id() {
        return Err(ApiError::new(
            403,
            "InvalidAccessKeyId",
            "The Access Key Id you provided does not exist in our records.",
        ));
    }
    let Some(key_time) = KeyTime::parse(&fields.key_time) else {
        return Err(ApiError::new(
            403,
            "AccessDenied",
            "q-key-time is malformed.",
        ));
    };
    if key_time.end < req.now {
        return Err(ApiError::new(403, "AccessDenied", "Request has expired"));
    }
    if key_time.start > req.now {
        return Err(ApiError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the server's time is too large.",
        ));
    }
    if let Some(want) = token {
        let got = req
            .headers
            .get("x-cos-security-token")
            .map(header_str)
            .or_else(|| {
                req.query
                    .iter()
                    .find(|(k, _)| k == "x-cos-security-token")
                    .map(|(_, v)| v.clone())
            });
        if got.as_deref() != Some(want) {
            return Err(ApiError::new(
                403,
                "InvalidAccessKeyId",
                "The security token is missing or does not belong to this SecretId.",
            ));
        }
    }

    let listed_params: Vec<String> = fields
        .param_list
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let params: Vec<(String, String)> = req
        .query
        .iter()
        .filter(|(k, _)| listed_params.contains(&lowered(k)))
        .cloned()
        .collect();
    let listed_headers: Vec<String> = fields
        .header_list
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut host_at = None;
    for name in &listed_headers {
        if let Some((n, v)) = req
            .headers
            .iter()
            .find(|(n, _)| lowered(n.as_str()) == *name)
        {
            if n == http::header::HOST {
                host_at = Some(headers.len());
            }
            headers.push((n.as_str().to_string(), header_str(v)));
        }
    }
    let mut candidates = vec![headers.clone()];
    if let Some(i) = host_at {
        let bare = strip_port(&headers[i].1).to_string();
        if bare != headers[i].1 {
            let mut alt = headers.clone();
            alt[i].1 = bare;
            candidates.push(alt);
        }
    }
    let path = format!("/{}", req.key);
    let mut first = None;
    for h in &candidates {
        let sig = get_authorization(
            creds,
            &SignInput {
                method: req.method,
                key: &path,
                query: &params,
                headers: h,
                key_time,
            },
        );
        if constant_time_eq(
            sig.signature.as_bytes(),
            fields.signature.to_ascii_lowercase().as_bytes(),
        ) {
            return Ok(());
        }
        first.get_or_insert(sig);
    }
    let sig = first.expect("at least one candidate");
    let mut e = ApiError::new(
        403,
        "SignatureDoesNotMatch",
        "The Signature you specified does not match what we calculated.",
    );
    e.extra.push(("StringToSign", sig.string_to_sign));
    e.extra.push(("FormatString", sig.format_string));
    Err(e)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(strip_port("127.0.0.1:9000"), "127.0.0.1");
        assert_eq!(
            strip_port("b-1.cos.x.myqcloud.com"),
            "b-1.cos.x.myqcloud.com"
        );
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }
}
