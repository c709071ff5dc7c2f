//! COS request signing (`q-sign-algorithm=sha1`): the `Authorization` header and presigned URLs.
//!
//! [`get_authorization`] is the pure function the official SDKs call `getAuthorization`: it turns credentials,
//! method, key, query, headers and a key time into the `Authorization` value, and exposes the intermediate
//! strings (`format_string`, `string_to_sign`, `sign_key`) so that signature mismatches are easy to explain.
//! [`sign_request`] applies it to an [`http::Request`], choosing which headers to sign as the Python SDK does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha1::{Digest as _, Sha1};

use crate::checksum::hex;
use crate::credentials::Credentials;
use crate::error::{Error, InvalidInput};

/// The validity window of a signature, `"<start>;<end>"` in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTime {
    /// First second the signature is valid.
    pub start: u64,
    /// Last second the signature is valid.
    pub end: u64,
}

impl KeyTime {
    /// A window from `now` minus a minute (tolerating small clock differences) to `now + valid`.
    pub fn around(now: SystemTime, valid: Duration) -> KeyTime {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        KeyTime {
            start: secs.saturating_sub(60),
            end: secs.saturating_add(valid.as_secs().max(1)),
        }
    }

    /// Parses `"<start>;<end>"`.
    pub fn parse(s: &str) -> Option<KeyTime> {
        let (a, b) = s.split_once(';')?;
        Some(KeyTime {
            start: a.trim().parse().ok()?,
            end: b.trim().parse().ok()?,
        })
    }

    /// True when `now` lies within the window.
    pub fn contains(&self, now: SystemTime) -> bool {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.start <= secs && secs <= self.end
    }
}

impl std::fmt::Display for KeyTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{};{}", self.start, self.end)
    }
}

/// Everything a signature covers. Names and values are raw (not yet encoded).
#[derive(Clone, Debug)]
pub struct SignInput<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// The object key as the user gave it (signed as `"/" + key` unless it starts with `/`).
    pub key: &'a str,
    /// Query parameters to sign.
    pub query: &'a [(String, String)],
    /// Headers to sign (all of them: choose them with [`should_sign_header`]).
    pub headers: &'a [(String, String)],
    /// The validity window.
    pub key_time: KeyTime,
}

/// A computed signature and the strings it was computed from.
///
/// `Debug` leaves out the signing key and the signature (and the `q-signature` of `authorization`).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The full `Authorization` header value.
    pub authorization: String,
    /// `HttpString`: method, path, params and headers, each line-terminated.
    pub format_string: String,
    /// `"sha1\n" + KeyTime + "\n" + hex(sha1(format_string)) + "\n"`.
    pub string_to_sign: String,
    /// `hex(HMAC-SHA1(SecretKey, KeyTime))`.
    pub sign_key: String,
    /// `q-signature`.
    pub signature: String,
    /// `q-header-list`.
    pub header_list: String,
    /// `q-url-param-list`.
    pub param_list: String,
}

/// Percent-encodes as COS signing does: `A-Z a-z 0-9 - _ . ~` kept, every other byte `%XX` upper-case.
pub fn encode(s: &str) -> String {
    encode_keep(s, b"")
}

/// Percent-encodes a key for a URL path: like [`encode`] but `/` is kept, and a `.` that would form a
/// `.`/`..` path segment is encoded so that no proxy or client normalises the path.
pub fn encode_path(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for (i, seg) in key.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg == "." || seg == ".." {
            out.push_str(&seg.replace('.', "%2E"));
        } else {
            out.push_str(&encode(seg));
        }
    }
    out
}

fn encode_keep(s: &str, keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || keep.contains(&b)
        {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// Decodes `%XX` escapes (and nothing else); `None` when the result is not UTF-8 or an escape is broken.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes a query component: like [`decode`], and `+` means a space (form encoding).
pub fn decode_query(s: &str) -> Option<String> {
    decode(&s.replace('+', "%20"))
}

/// Whether a header is signed: `host`, the content and conditional headers the Python SDK lists, and every
/// `x-cos-*` header. The name may be in any case.
pub fn should_sign_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-cos-")
        || n.starts_with("if-")
        || matches!(
            n.as_str(),
            "host"
                | "cache-control"
                | "content-disposition"
                | "content-encoding"
                | "content-type"
                | "content-md5"
                | "content-length"
                | "expect"
                | "expires"
                | "origin"
                | "range"
                | "transfer-encoding"
        )
}

type HmacSha1 = Hmac<Sha1>;

fn hmac_hex(key: &[u8], msg: &[u8]) -> String {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    hex(&mac.finalize().into_bytes())
}

/// `hex(HMAC-SHA1(SecretKey, KeyTime))`.
pub fn sign_key(secret_key: &str, key_time: &KeyTime) -> String {
    hmac_hex(secret_key.as_bytes(), key_time.to_string().as_bytes())
}

/// Encodes, lower-cases and sorts name/value pairs; later duplicates of a name win, as in a dict.
fn canonical(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let name = encode(k).to_ascii_lowercase();
        let value = encode(v);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => out.push((name, value)),
        }
    }
    out.sort();
    out
}

fn join(pairs: &[(String, String)]) -> (String, String) {
    let kv = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let names = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (kv, names)
}

/// Computes the COS signature of a request description (the official SDKs' `getAuthorization`).
///
/// ```
/// use cos_core::auth::{get_authorization, KeyTime, SignInput};
/// let creds = cos_core::Credentials::new("AKIDEXAMPLE", "secret");
/// let sig = get_authorization(&creds, &SignInput {
///     method: "PUT", key: "a.txt", query: &[], headers: &[("Host".into(), "b-1.cos.ap-guangzhou.myqcloud.com".into())],
///     key_time: KeyTime { start: 1, end: 2 },
/// });
/// assert!(sig.authorization.starts_with("q-sign-algorithm=sha1&q-ak=AKIDEXAMPLE&q-sign-time=1;2&q-key-time=1;2&q-header-list=host&"));
/// assert_eq!(sig.format_string, "put\n/a.txt\n\nhost=b-1.cos.ap-guangzhou.myqcloud.com\n");
/// ```
pub fn get_authorization(creds: &Credentials, input: &SignInput<'_>) -> Signature {
    let path = if input.key.starts_with('/') {
        input.key.to_string()
    } else {
        format!("/{}", input.key)
    };
    let (params, param_list) = join(&canonical(input.query));
    let (headers, header_list) = join(&canonical(input.headers));
    let format_string = format!(
        "{}\n{}\n{}\n{}\n",
        input.method.to_ascii_lowercase(),
        path,
        params,
        headers
    );
    let string_to_sign = format!(
        "sha1\n{}\n{}\n",
        input.key_time,
        hex(&Sha1::digest(format_string.as_bytes()))
    );
    let sign_key = sign_key(creds.secret_key(), &input.key_time);
    let signature = hmac_hex(sign_key.as_bytes(), string_to_sign.as_bytes());
    let authorization = format!(
        "q-sign-algorithm=sha1&q-ak={}&q-sign-time={kt}&q-key-time={kt}&q-header-list={}&q-url-param-list={}&q-signature={}",
        creds.secret_id(),
        header_list,
        param_list,
        signature,
        kt = input.key_time
    );
    Signature {
        authorization,
        format_string,
        string_to_sign,
        sign_key,
        signature,
        header_list,
        param_list,
    }
}

/// The raw key, query and signable headers of a request, as the signer sees them.
#[derive(Clone, Debug, Default)]
pub struct SignableParts {
    /// Decoded path without the leading `/`.
    pub key: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// Headers chosen by [`should_sign_header`], non-empty values only, names lower-cased.
    pub headers: Vec<(String, String)>,
}

/// Extracts what would be signed from a request head.
pub fn signable_parts<B>(req: &http::Request<B>) -> Result<SignableParts, Error> {
    let bad = |what: &str| Error::InvalidInput(InvalidInput::Uri(what.to_string()));
    let raw_path = req.uri().path();
    let key =
        decode(raw_path.strip_prefix('/').unwrap_or(raw_path)).ok_or_else(|| bad(raw_path))?;
    let query = parse_query(req.uri().query().unwrap_or("")).ok_or_else(|| bad("query"))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in req.headers() {
        if !should_sign_header(name.as_str()) {
            continue;
        }
        let Ok(v) = value.to_str() else { continue };
        if v.is_empty() {
            continue;
        }
        headers.push((name.as_str().to_string(), v.to_string()));
    }
    if !req.headers().contains_key(http::header::HOST) {
        if let Some(auth) = req.uri().authority() {
            headers.push(("host".into(), auth.as_str().to_string()));
        }
    }
    Ok(SignableParts {
        key,
        query,
        headers,
    })
}

/// Splits and decodes a query string; a parameter without `=` has an empty value.
pub fn parse_query(q: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for piece in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        out.push((decode_query(k)?, decode_query(v)?));
    }
    Some(out)
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signature")
            .field(
                "authorization",
                &crate::error::redact_secrets(&self.authorization),
            )
            .field(
                "format_string",
                &crate::error::redact_secrets(&self.format_string),
            )
            .field("string_to_sign", &self.string_to_sign)
            .field("sign_key", &"<redacted>")
            .field("signature", &"<redacted>")
            .field("header_list", &self.header_list)
            .field("param_list", &self.param_list)
            .finish_non_exhaustive()
    }
}

/// Signs a request in place: adds `x-cos-security-token` for temporary credentials, then `Authorization`
/// over the request's decoded path, every query parameter and the signable headers.
///
/// The request must carry its final `Host` (or an absolute URI) and `Content-Length` before it is signed.
pub fn sign_request<B>(
    req: &mut http::Request<B>,
    creds: &Credentials,
    key_time: KeyTime,
) -> Result<Signature, Error> {
    if !creds.is_complete() {
        return Err(Error::InvalidInput(InvalidInput::MissingCredentials));
    }
    if let Some(token) = creds.security_token() {
        let mut v = http::HeaderValue::from_str(token).map_err(|_| {
            Error::InvalidInput(InvalidInput::HeaderValue("x-cos-security-token".into()))
        })?;
        // `Debug` of the request (and of a `Transmit`) then shows `Sensitive`, not the token.
        v.set_sensitive(true);
        req.headers_mut().insert("x-cos-security-token", v);
    }
    let parts = signable_parts(req)?;
    let sig = get_authorization(
        creds,
        &SignInput {
            method: req.method().as_str(),
            // The whole path as sent, even when the key starts with `/` (what COS verifies).
            key: &format!("/{}", parts.key),
            query: &parts.query,
            headers: &parts.headers,
            key_time,
        },
    );
    let mut v = http::HeaderValue::from_str(&sig.authorization)
        .map_err(|_| Error::InvalidInput(InvalidInput::HeaderValue("authorization".into())))?;
    v.set_sensitive(true);
    req.headers_mut().insert(http::header::AUTHORIZATION, v);
    Ok(sig)
}

/// The fields of an `Authorization` value (or of a presigned URL's query).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthorizationFields {
    /// `q-sign-algorithm`.
    pub algorithm: String,
    /// `q-ak`.
    pub secret_id: String,
    /// `q-sign-time`.
    pub sign_time: String,
    /// `q-key-time`.
    pub key_time: String,
    /// `q-header-list`, split on `;`.
    pub header_list: Vec<String>,
    /// `q-url-param-list`, split on `;`.
    pub param_list: Vec<String>,
    /// `q-signature`.
    pub signature: String,
}

impl AuthorizationFields {
    /// Parses `q-sign-algorithm=sha1&q-ak=…`; `None` when a required field is missing.
    pub fn parse(s: &str) -> Option<AuthorizationFields> {
        let pairs = parse_query(s)?;
        Self::from_pairs(&pairs)
    }

    /// Collects the fields from decoded pairs (header form or presigned-URL query form).
    pub fn from_pairs(pairs: &[(String, String)]) -> Option<AuthorizationFields> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let split = |v: Option<String>| {
            v.unwrap_or_default()
                .split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        Some(AuthorizationFields {
            algorithm: get("q-sign-algorithm")?,
            secret_id: get("q-ak")?,
            sign_time: get("q-sign-time").unwrap_or_default(),
            key_time: get("q-key-time")?,
            header_list: split(get("q-header-list")),
            param_list: split(get("q-url-param-list")),
            signature: get("q-signature")?,
        })
    }
}

/// Presigns a request: returns its URI with the signature (and the security token) as query parameters.
///
/// Every query parameter already on the URI and every signable header on the request is signed; the caller
/// must send those headers unchanged.
///
/// ```
/// use cos_core::auth::{presign, KeyTime};
/// let req = http::Request::put("https://b-1250000000.cos.ap-guangzhou.myqcloud.com/a%20b.txt").body(()).unwrap();
/// let creds = cos_core::Credentials::new("AKIDEXAMPLE", "secret");
/// let url = presign(&req, &creds, KeyTime { start: 1, end: 3601 }).unwrap();
/// assert!(url.to_string().contains("q-sign-algorithm=sha1&q-ak=AKIDEXAMPLE&q-sign-time=1%3B3601"));
/// ```
pub fn presign<B>(
    req: &http::Request<B>,
    creds: &Credentials,
    key_time: KeyTime,
) -> Result<http::Uri, Error> {
    if !creds.is_complete() {
        return Err(Error::InvalidInput(InvalidInput::MissingCredentials));
    }
    let parts = signable_parts(req)?;
    let sig = get_authorization(
        creds,
        &SignInput {
            method: req.method().as_str(),
            // The whole path as sent, even when the key starts with `/` (what COS verifies).
            key: &format!("/{}", parts.key),
            query: &parts.query,
            headers: &parts.headers,
            key_time,
        },
    );
    let mut q = req.uri().query().map(str::to_string).unwrap_or_default();
    let mut add = |k: &str, v: &str| {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(k);
        q.push('=');
        q.push_str(&encode(v));
    };
    add("q-sign-algorithm", "sha1");
    add("q-ak", creds.secret_id());
    add("q-sign-time", &key_time.to_string());
    add("q-key-time", &key_time.to_string());
    add("q-header-list", &sig.header_list);
    add("q-url-param-list", &sig.param_list);
    add("q-signature", &sig.signature);
    if let Some(token) = creds.security_token() {
        add("x-cos-security-token", token);
    }
    let uri = req.uri();
    let s = format!(
        "{}://{}{}?{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or(""),
        uri.path(),
        q
    );
    s.parse()
        .map_err(|_| Error::InvalidInput(InvalidInput::Uri(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(encode("a b/ü~"), "a%20b%2F%C3%BC~");
        assert_eq!(encode_path("a/./b/../c d"), "a/%2E/b/%2E%2E/c%20d");
        assert_eq!(decode("a%20b%2F%C3%BC").as_deref(), Some("a b/ü"));
        assert_eq!(decode("%zz"), None);
    }

    #[test]
    fn header_choice() {
        for h in [
            "Host",
            "content-type",
            "Content-Length",
            "x-cos-meta-a",
            "If-Match",
            "Range",
        ] {
            assert!(should_sign_header(h), "{h}");
        }
        for h in ["user-agent", "accept", "authorization", "connection"] {
            assert!(!should_sign_header(h), "{h}");
        }
    }

    #[test]
    fn authorization_round_trip() {
        let creds = Credentials::new("AKID", "k");
        let sig = get_authorization(
            &creds,
            &SignInput {
                method: "GET",
                key: "a",
                query: &[("uploadId".into(), "x".into())],
                headers: &[],
                key_time: KeyTime { start: 5, end: 10 },
            },
        );
        let f = AuthorizationFields::parse(&sig.authorization).unwrap();
        assert_eq!(f.secret_id, "AKID");
        assert_eq!(f.key_time, "5;10");
        assert_eq!(f.param_list, vec!["uploadid".to_string()]);
        assert_eq!(f.signature, sig.signature);
    }
}
