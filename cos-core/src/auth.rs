//! COS request signing (`q-sign-algorithm=sha1`): the `Authorization` header and presigned URLs.
//!
//! [`get_authorization`] is the pure function the official SDKs call `getAuthorization`: it turns credentials,
//! method, key, query, headers and a key time into the `Authorization` value, and exposes the intermediate
//! strings (`format_string`, `string_to_sign`, `sign_key`) so that signature mismatches are easy to explain.
//! [`sign_request`] applies it to an [`http::Request`], choosing which headers to sign as the Python SDK does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha1::{Digest as _, Sha1};

use crate::body::RequestBody;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::date::corrected;
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
    let n = name.as_bytes();
    let starts = |p: &[u8]| n.len() >= p.len() && n[..p.len()].eq_ignore_ascii_case(p);
    starts(b"x-cos-")
        || starts(b"if-")
        || [
            "host",
            "cache-control",
            "content-disposition",
            "content-encoding",
            "content-type",
            "content-md5",
            "content-length",
            "expect",
            "expires",
            "origin",
            "range",
            "transfer-encoding",
        ]
        .iter()
        .any(|h| h.len() == n.len() && h.as_bytes().eq_ignore_ascii_case(n))
}

type HmacSha1 = Hmac<Sha1>;

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8; 40], bytes: &[u8]) {
    for (i, b) in bytes.iter().take(20).enumerate() {
        out[2 * i] = HEX_LOWER[(b >> 4) as usize];
        out[2 * i + 1] = HEX_LOWER[(b & 15) as usize];
    }
}

/// `hex(HMAC-SHA1(SecretKey, KeyTime))`.
pub fn sign_key(secret_key: &str, key_time: &KeyTime) -> String {
    SigningKey::new(secret_key, *key_time).as_hex().to_string()
}

/// The signing key for one secret and one key time, computed once and reused for every request signed with
/// that key time (the HMAC key schedule included). Its `Debug` output shows the key time only.
#[derive(Clone)]
pub struct SigningKey {
    key_time: KeyTime,
    hex: [u8; 40],
    mac: HmacSha1,
}

impl SigningKey {
    /// Derives `hex(HMAC-SHA1(secret_key, key_time))`.
    pub fn new(secret_key: &str, key_time: KeyTime) -> SigningKey {
        let mut kt = [0u8; 48];
        let n = write_key_time(&mut kt, &key_time);
        let mut mac =
            HmacSha1::new_from_slice(secret_key.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(&kt[..n]);
        let mut hex = [0u8; 40];
        hex_into(&mut hex, &mac.finalize().into_bytes());
        let mac = HmacSha1::new_from_slice(&hex).expect("HMAC takes keys of any length");
        SigningKey { key_time, hex, mac }
    }

    /// The key time this key signs for.
    pub fn key_time(&self) -> KeyTime {
        self.key_time
    }

    /// The key as lower-case hex (what the official SDKs call `SignKey`).
    pub fn as_hex(&self) -> &str {
        std::str::from_utf8(&self.hex).expect("hex is ASCII")
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_time", &self.key_time)
            .finish_non_exhaustive()
    }
}

/// Writes `"<start>;<end>"` into `out`, returning its length.
fn write_key_time(out: &mut [u8; 48], kt: &KeyTime) -> usize {
    let mut n = write_u64(out, 0, kt.start);
    out[n] = b';';
    n += 1;
    write_u64(out, n, kt.end)
}

fn write_u64(out: &mut [u8; 48], at: usize, mut v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = &digits[i..];
    out[at..at + d.len()].copy_from_slice(d);
    at + d.len()
}

/// Percent-encodes `s` into `out` as [`encode`] does, lower-casing the result when `lower` is set.
fn encode_into(out: &mut Vec<u8>, s: &[u8], lower: bool) {
    let digits: &[u8; 16] = if lower {
        HEX_LOWER
    } else {
        b"0123456789ABCDEF"
    };
    for &b in s {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(if lower { b.to_ascii_lowercase() } else { b });
        } else {
            out.extend_from_slice(&[b'%', digits[(b >> 4) as usize], digits[(b & 15) as usize]]);
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set) of `s` into `out`; false when an escape is
/// broken or the result is not UTF-8.
fn decode_into(out: &mut Vec<u8>, s: &[u8], plus: bool) -> bool {
    let from = out.len();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let val = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (val(s.get(i + 1)), val(s.get(i + 2))) else {
                    return false;
                };
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out[from..]).is_ok()
}

/// Reusable buffers of the signer: the format string and the encoded names and values, with their spans.
#[derive(Default)]
struct Scratch {
    format: Vec<u8>,
    canon: Vec<u8>,
    /// `[name_start, name_end, value_start, value_end]` in `canon`.
    items: Vec<[u32; 4]>,
    decoded: Vec<u8>,
}

impl Scratch {
    fn clear(&mut self) {
        self.format.clear();
        self.canon.clear();
        self.items.clear();
        self.decoded.clear();
    }

    /// Adds a raw pair to the group starting at item `from`: encoded, name lower-cased, a later duplicate name
    /// replacing the earlier value (as in a dict).
    fn add(&mut self, from: usize, name: &[u8], value: &[u8]) {
        let ns = self.canon.len();
        encode_into(&mut self.canon, name, true);
        let ne = self.canon.len();
        encode_into(&mut self.canon, value, false);
        let ve = self.canon.len();
        let canon = &self.canon;
        let span = |a: u32, b: u32| &canon[a as usize..b as usize];
        let new_name = &canon[ns..ne];
        let item = [ns as u32, ne as u32, ne as u32, ve as u32];
        match self.items[from..]
            .iter_mut()
            .find(|it| span(it[0], it[1]) == new_name)
        {
            Some(it) => {
                it[2] = item[2];
                it[3] = item[3];
            }
            None => self.items.push(item),
        }
    }

    fn sort(&mut self, from: usize, to: usize) {
        let canon = &self.canon;
        let span = |a: u32, b: u32| &canon[a as usize..b as usize];
        self.items[from..to].sort_unstable_by(|a, b| {
            span(a[0], a[1])
                .cmp(span(b[0], b[1]))
                .then_with(|| span(a[2], a[3]).cmp(span(b[2], b[3])))
        });
    }
}

/// Appends `k=v&k=v` of a group to `out`.
fn write_pairs(out: &mut Vec<u8>, canon: &[u8], items: &[[u32; 4]]) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(&canon[it[0] as usize..it[1] as usize]);
        out.push(b'=');
        out.extend_from_slice(&canon[it[2] as usize..it[3] as usize]);
    }
}

/// Appends `k;k` of a group to `out` (names are encoded, hence ASCII).
fn write_names(out: &mut String, canon: &[u8], items: &[[u32; 4]]) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(std::str::from_utf8(&canon[it[0] as usize..it[1] as usize]).unwrap_or(""));
    }
}

/// What [`compose`] produced, besides the `Authorization` value.
struct Composed {
    string_to_sign: [u8; 96],
    string_to_sign_len: usize,
    signature: [u8; 40],
}

/// The common core of every signature: `scratch.items[..params]` are the canonical query parameters, the rest
/// the canonical headers (both sorted); `scratch.decoded` holds the decoded key. Writes the format string into
/// `scratch.format` and the `Authorization` value into `auth`.
fn compose(
    scratch: &mut Scratch,
    params: usize,
    method: &str,
    secret_id: &str,
    key: &SigningKey,
    auth: &mut String,
) -> Composed {
    let Scratch {
        format,
        canon,
        items,
        decoded,
    } = scratch;
    format.clear();
    format.extend(method.bytes().map(|b| b.to_ascii_lowercase()));
    format.push(b'\n');
    if decoded.first() != Some(&b'/') {
        format.push(b'/');
    }
    format.extend_from_slice(decoded);
    format.push(b'\n');
    write_pairs(format, canon, &items[..params]);
    format.push(b'\n');
    write_pairs(format, canon, &items[params..]);
    format.push(b'\n');

    let mut kt = [0u8; 48];
    let kt_len = write_key_time(&mut kt, &key.key_time);
    let kt = &kt[..kt_len];
    let mut sts = [0u8; 96];
    let mut n = 0;
    for piece in [&b"sha1\n"[..], kt, b"\n"] {
        sts[n..n + piece.len()].copy_from_slice(piece);
        n += piece.len();
    }
    let mut digest_hex = [0u8; 40];
    hex_into(&mut digest_hex, &Sha1::digest(&format[..]));
    sts[n..n + 40].copy_from_slice(&digest_hex);
    n += 40;
    sts[n] = b'\n';
    n += 1;

    let mut mac = key.mac.clone();
    mac.update(&sts[..n]);
    let mut signature = [0u8; 40];
    hex_into(&mut signature, &mac.finalize().into_bytes());

    let kt = std::str::from_utf8(kt).expect("digits");
    auth.reserve(160 + secret_id.len() + canon.len());
    auth.push_str("q-sign-algorithm=sha1&q-ak=");
    auth.push_str(secret_id);
    auth.push_str("&q-sign-time=");
    auth.push_str(kt);
    auth.push_str("&q-key-time=");
    auth.push_str(kt);
    auth.push_str("&q-header-list=");
    write_names(auth, canon, &items[params..]);
    auth.push_str("&q-url-param-list=");
    write_names(auth, canon, &items[..params]);
    auth.push_str("&q-signature=");
    auth.push_str(std::str::from_utf8(&signature).expect("hex"));
    Composed {
        string_to_sign: sts,
        string_to_sign_len: n,
        signature,
    }
}

thread_local! {
    /// Per-thread signer buffers and the last signing key (with the secret it was derived from).
    static SIGNER: std::cell::RefCell<(Scratch, Option<(String, SigningKey)>)> = Default::default();
}

/// The signing key for `secret_key` at `key_time`, from this thread's one-entry cache when it matches.
fn cached_key(
    slot: &mut Option<(String, SigningKey)>,
    secret_key: &str,
    key_time: KeyTime,
) -> SigningKey {
    match slot {
        Some((secret, key)) if key.key_time == key_time && secret == secret_key => key.clone(),
        _ => {
            let key = SigningKey::new(secret_key, key_time);
            *slot = Some((secret_key.to_string(), key.clone()));
            key
        }
    }
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
    let key = SigningKey::new(creds.secret_key(), input.key_time);
    let mut scratch = Scratch::default();
    scratch.decoded.extend_from_slice(input.key.as_bytes());
    for (k, v) in input.query {
        scratch.add(0, k.as_bytes(), v.as_bytes());
    }
    let params = scratch.items.len();
    for (k, v) in input.headers {
        scratch.add(params, k.as_bytes(), v.as_bytes());
    }
    let all = scratch.items.len();
    scratch.sort(0, params);
    scratch.sort(params, all);
    let mut authorization = String::new();
    let c = compose(
        &mut scratch,
        params,
        input.method,
        creds.secret_id(),
        &key,
        &mut authorization,
    );
    let mut header_list = String::new();
    write_names(&mut header_list, &scratch.canon, &scratch.items[params..]);
    let mut param_list = String::new();
    write_names(&mut param_list, &scratch.canon, &scratch.items[..params]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Signature {
        authorization,
        format_string: text(&scratch.format),
        string_to_sign: text(&c.string_to_sign[..c.string_to_sign_len]),
        sign_key: key.as_hex().to_string(),
        signature: text(&c.signature),
        header_list,
        param_list,
    }
}

/// Signs a request in place, like [`sign_request`], without keeping the intermediate strings: the fast path
/// every driver uses. The signing key is derived once per secret and key time (per thread) and reused.
pub fn authorize<B>(
    req: &mut http::Request<B>,
    creds: &Credentials,
    key_time: KeyTime,
) -> Result<(), Error> {
    if !creds.is_complete() {
        return Err(Error::InvalidInput(InvalidInput::MissingCredentials));
    }
    SIGNER.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (scratch, slot) = &mut *guard;
        let key = cached_key(slot, creds.secret_key(), key_time);
        authorize_with(req, creds, &key, scratch)
    })
}

/// Signs a request in place with a signing key the caller holds (see [`SigningKey`]); its key time is the
/// signature's validity window.
pub fn authorize_with_key<B>(
    req: &mut http::Request<B>,
    creds: &Credentials,
    key: &SigningKey,
) -> Result<(), Error> {
    if !creds.is_complete() {
        return Err(Error::InvalidInput(InvalidInput::MissingCredentials));
    }
    SIGNER.with(|cell| authorize_with(req, creds, key, &mut cell.borrow_mut().0))
}

fn authorize_with<B>(
    req: &mut http::Request<B>,
    creds: &Credentials,
    key: &SigningKey,
    scratch: &mut Scratch,
) -> Result<(), Error> {
    if let Some(token) = creds.security_token() {
        let mut v = http::HeaderValue::from_str(token).map_err(|_| {
            Error::InvalidInput(InvalidInput::HeaderValue("x-cos-security-token".into()))
        })?;
        // `Debug` of the request (and of a `Transmit`) then shows `Sensitive`, not the token.
        v.set_sensitive(true);
        req.headers_mut().insert("x-cos-security-token", v);
    }
    scratch.clear();
    let bad = |what: &str| Error::InvalidInput(InvalidInput::Uri(what.to_string()));
    // The whole path as sent, even when the key starts with `/` (what COS verifies).
    let raw_path = req.uri().path();
    if !decode_into(&mut scratch.decoded, raw_path.as_bytes(), false) {
        return Err(bad(raw_path));
    }
    // Query pieces are decoded into the tail of `decoded`, after the key, then truncated back.
    let key_len = scratch.decoded.len();
    for piece in req.uri().query().unwrap_or("").split('&') {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let ok = decode_into(&mut scratch.decoded, k.as_bytes(), true);
        let mid = scratch.decoded.len();
        if !ok || !decode_into(&mut scratch.decoded, v.as_bytes(), true) {
            return Err(bad("query"));
        }
        let decoded = std::mem::take(&mut scratch.decoded);
        scratch.add(0, &decoded[key_len..mid], &decoded[mid..]);
        scratch.decoded = decoded;
        scratch.decoded.truncate(key_len);
    }
    let params = scratch.items.len();
    let mut has_host = false;
    for (name, value) in req.headers() {
        if !should_sign_header(name.as_str()) {
            continue;
        }
        has_host |= name == http::header::HOST;
        let Ok(v) = value.to_str() else { continue };
        if v.is_empty() {
            continue;
        }
        scratch.add(params, name.as_str().as_bytes(), v.as_bytes());
    }
    if !has_host {
        if let Some(auth) = req.uri().authority() {
            scratch.add(params, b"host", auth.as_str().as_bytes());
        }
    }
    let all = scratch.items.len();
    scratch.sort(0, params);
    scratch.sort(params, all);
    let mut auth = String::new();
    compose(
        scratch,
        params,
        req.method().as_str(),
        creds.secret_id(),
        key,
        &mut auth,
    );
    let mut v = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(auth.into_bytes()))
        .map_err(|_| Error::InvalidInput(InvalidInput::HeaderValue("authorization".into())))?;
    v.set_sensitive(true);
    req.headers_mut().insert(http::header::AUTHORIZATION, v);
    Ok(())
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

/// Signs a request for sending at `now` with the config's credentials, validity and clock offset.
pub fn sign(
    config: &Config,
    request: &mut http::Request<RequestBody>,
    now: SystemTime,
) -> Result<(), Error> {
    let key_time = KeyTime::around(
        corrected(now, config.clock_offset_secs)?,
        config.signature_validity,
    );
    authorize(request, &config.credentials, key_time)
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

    #[test]
    fn key_time_around_spans_a_minute_back_to_the_validity_end() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let kt = KeyTime::around(now, Duration::from_secs(3600));
        assert_eq!(
            kt,
            KeyTime {
                start: 1_699_999_940,
                end: 1_700_003_600
            }
        );
        assert!(kt.contains(now));
        assert!(kt.contains(now + Duration::from_secs(3600)));
        assert!(!kt.contains(now + Duration::from_secs(3601)));
        assert!(!kt.contains(now - Duration::from_secs(61)));
        // A zero validity still lasts one second; a clock before 1970 counts as 0.
        assert_eq!(KeyTime::around(now, Duration::ZERO).end, 1_700_000_001);
        assert_eq!(
            KeyTime::around(UNIX_EPOCH - Duration::from_secs(5), Duration::from_secs(10)),
            KeyTime { start: 0, end: 10 }
        );
    }

    #[test]
    fn a_request_without_host_header_signs_the_uri_authority() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret");
        let kt = KeyTime {
            start: 1,
            end: 3601,
        };
        let url = "https://b-1250000000.cos.ap-guangzhou.myqcloud.com/a.txt?acl";
        // What it must equal: the same request with an explicit Host header.
        let expected = get_authorization(
            &creds,
            &SignInput {
                method: "GET",
                key: "/a.txt",
                query: &[("acl".into(), String::new())],
                headers: &[(
                    "host".into(),
                    "b-1250000000.cos.ap-guangzhou.myqcloud.com".into(),
                )],
                key_time: kt,
            },
        );
        assert_eq!(expected.header_list, "host");

        let mut fast = http::Request::get(url).body(()).unwrap();
        authorize(&mut fast, &creds, kt).unwrap();
        assert_eq!(
            fast.headers()[http::header::AUTHORIZATION]
                .to_str()
                .unwrap(),
            expected.authorization
        );

        let mut slow = http::Request::get(url).body(()).unwrap();
        let sig = sign_request(&mut slow, &creds, kt).unwrap();
        assert_eq!(sig.authorization, expected.authorization);

        let presigned = presign(&http::Request::get(url).body(()).unwrap(), &creds, kt).unwrap();
        let q = parse_query(presigned.query().unwrap()).unwrap();
        let fields = AuthorizationFields::from_pairs(&q).unwrap();
        assert_eq!(fields.header_list, ["host"]);
        assert_eq!(fields.signature, expected.signature);

        // With a Host header present, it is signed once, from the header.
        let mut with_host = http::Request::get(url)
            .header("host", "b-1250000000.cos.ap-guangzhou.myqcloud.com")
            .body(())
            .unwrap();
        authorize(&mut with_host, &creds, kt).unwrap();
        assert_eq!(
            with_host.headers()[http::header::AUTHORIZATION],
            fast.headers()[http::header::AUTHORIZATION]
        );
    }

    fn req(url: &str) -> http::Request<()> {
        http::Request::get(url).body(()).unwrap()
    }

    fn authorization<B>(r: &http::Request<B>) -> &str {
        r.headers()[http::header::AUTHORIZATION].to_str().unwrap()
    }

    const KT: KeyTime = KeyTime {
        start: 1,
        end: 3601,
    };

    /// The `Authorization` of a GET of `key` (a path, `/`-led) on `host` with `query` signed with `creds`.
    fn expected(creds: &Credentials, key: &str, query: &[(&str, &str)], host: &str) -> String {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        get_authorization(
            creds,
            &SignInput {
                method: "GET",
                key,
                query: &query,
                headers: &[("host".into(), host.into())],
                key_time: KT,
            },
        )
        .authorization
    }

    #[test]
    fn key_times_parse_and_print() {
        assert_eq!(
            KeyTime::parse(" 5; 10 "),
            Some(KeyTime { start: 5, end: 10 })
        );
        assert_eq!(KeyTime::parse("5"), None);
        assert_eq!(KeyTime::parse("5;x"), None);
        assert_eq!(KeyTime { start: 5, end: 10 }.to_string(), "5;10");
        let kt = KeyTime {
            start: 0,
            end: 18_446_744_073_709_551_615,
        };
        assert_eq!(KeyTime::parse(&kt.to_string()), Some(kt));
        assert_eq!(
            SigningKey::new("k", KeyTime { start: 5, end: 10 }).key_time(),
            KeyTime { start: 5, end: 10 }
        );
    }

    /// The key time is signed as its decimal digits, whatever their number (0, one digit, u64::MAX).
    #[test]
    fn key_times_of_any_length_are_signed_as_written() {
        let creds = Credentials::new("AKID", "secret");
        for (start, end) in [(0, 9), (7, 10), (123, 18_446_744_073_709_551_615)] {
            let kt = KeyTime { start, end };
            let input = SignInput {
                method: "get",
                key: "/a",
                query: &[],
                headers: &[],
                key_time: kt,
            };
            let sig = get_authorization(&creds, &input);
            let text = format!("{start};{end}");
            assert_eq!(
                sig.string_to_sign,
                format!(
                    "sha1\n{text}\n{}\n",
                    hex_of(&Sha1::digest(sig.format_string.as_bytes()))
                )
            );
            let mut mac = HmacSha1::new_from_slice(b"secret").unwrap();
            mac.update(text.as_bytes());
            let key = hex_of(&mac.finalize().into_bytes());
            assert_eq!(sig.sign_key, key);
            assert_eq!(sign_key("secret", &kt), key);
            let mut mac = HmacSha1::new_from_slice(key.as_bytes()).unwrap();
            mac.update(sig.string_to_sign.as_bytes());
            assert_eq!(sig.signature, hex_of(&mac.finalize().into_bytes()));
            assert!(sig
                .authorization
                .contains(&format!("&q-sign-time={text}&q-key-time={text}&")));
        }
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn decoding_and_query_parsing() {
        assert_eq!(decode("%41%7e%2f%20").as_deref(), Some("A~/ "));
        assert_eq!(decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(decode("ab%4"), None);
        assert_eq!(decode("%ff"), None, "not UTF-8");
        assert_eq!(decode_query("a+b%2B").as_deref(), Some("a b+"));
        assert_eq!(
            parse_query("a=1&&b&c=x%3Dy+z").unwrap(),
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), String::new()),
                ("c".to_string(), "x=y z".to_string())
            ]
        );
        assert_eq!(parse_query("a=%zz"), None);
        assert_eq!(parse_query(""), Some(vec![]));
    }

    #[test]
    fn short_and_prefixed_header_names() {
        for h in [
            "If-None-Match",
            "X-COS-ACL",
            "ETag",
            "te",
            "x-co",
            "i",
            "hosts",
        ] {
            let signed =
                h.eq_ignore_ascii_case("if-none-match") || h.eq_ignore_ascii_case("x-cos-acl");
            assert_eq!(should_sign_header(h), signed, "{h}");
        }
    }

    /// A key is signed as `/key` whether or not it starts with `/`; a path of one segment `.`/`..` is
    /// escaped, other dots kept.
    #[test]
    fn keys_are_signed_with_one_leading_slash() {
        let creds = Credentials::new("AKID", "k");
        let sig = |key: &str| {
            let input = SignInput {
                method: "PUT",
                key,
                query: &[],
                headers: &[],
                key_time: KT,
            };
            get_authorization(&creds, &input)
        };
        assert_eq!(sig("a.txt").format_string, "put\n/a.txt\n\n\n");
        assert_eq!(sig("/a.txt").authorization, sig("a.txt").authorization);
        assert_eq!(encode_path("."), "%2E");
        assert_eq!(encode_path("a/.b/.."), "a/.b/%2E%2E");
        assert_eq!(encode_path("/x"), "/x");
    }

    /// Duplicate names (any case) keep the last value, as the official SDKs' dicts do.
    #[test]
    fn a_later_duplicate_name_replaces_the_earlier_value() {
        let creds = Credentials::new("AKID", "k");
        let query = [
            ("A".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
        ];
        let headers = [
            ("X-Cos-Acl".to_string(), "private".to_string()),
            ("x-cos-acl".to_string(), "public-read".to_string()),
        ];
        let sig = get_authorization(
            &creds,
            &SignInput {
                method: "GET",
                key: "k",
                query: &query,
                headers: &headers,
                key_time: KT,
            },
        );
        assert_eq!(sig.format_string, "get\n/k\na=2\nx-cos-acl=public-read\n");
        assert_eq!(
            (sig.param_list.as_str(), sig.header_list.as_str()),
            ("a", "x-cos-acl")
        );
    }

    /// The fast path's per-thread cache and buffers: requests signed one after another, with other
    /// secrets, key times and queries, each get their own signature.
    #[test]
    fn signing_in_turn_with_other_secrets_and_key_times_uses_each_own_key() {
        let host = "b-1250000000.cos.ap-guangzhou.myqcloud.com";
        let a = Credentials::new("AKID", "secret-a");
        let b = Credentials::new("AKID", "secret-b");
        let url = format!("https://{host}/x?uploads&prefix=a%20b");
        let q = [("uploads", ""), ("prefix", "a b")];
        for (creds, kt) in [
            (&a, KT),
            (&b, KT),
            (
                &b,
                KeyTime {
                    start: 2,
                    end: 3601,
                },
            ),
            (&a, KT),
        ] {
            let mut r = req(&url);
            authorize(&mut r, creds, kt).unwrap();
            let mut want = expected(creds, "/x", &q, host);
            if kt != KT {
                let input = SignInput {
                    method: "GET",
                    key: "/x",
                    query: &[
                        ("uploads".into(), String::new()),
                        ("prefix".into(), "a b".into()),
                    ],
                    headers: &[("host".into(), host.into())],
                    key_time: kt,
                };
                want = get_authorization(creds, &input).authorization;
            }
            assert_eq!(authorization(&r), want);
        }
        // A request without a query after one with a query: nothing of the earlier one is left.
        let mut r = req(&format!("https://{host}/x"));
        authorize(&mut r, &a, KT).unwrap();
        assert_eq!(authorization(&r), expected(&a, "/x", &[], host));
        let mut r = req(&format!("https://{host}/x"));
        authorize_with_key(&mut r, &a, &SigningKey::new("secret-a", KT)).unwrap();
        assert_eq!(authorization(&r), expected(&a, "/x", &[], host));
    }

    #[test]
    fn incomplete_credentials_or_a_bad_uri_are_refused_before_signing() {
        let none = Credentials::new("", "");
        let url = "https://b-1250000000.cos.ap-guangzhou.myqcloud.com/x";
        let missing = |r: Result<(), Error>| {
            matches!(
                r,
                Err(Error::InvalidInput(InvalidInput::MissingCredentials))
            )
        };
        assert!(missing(authorize(&mut req(url), &none, KT)));
        let key = SigningKey::new("", KT);
        assert!(missing(authorize_with_key(&mut req(url), &none, &key)));
        assert!(missing(sign_request(&mut req(url), &none, KT).map(|_| ())));
        assert!(missing(presign(&req(url), &none, KT).map(|_| ())));
        let creds = Credentials::new("AKID", "k");
        let bad_uri =
            |r: Result<(), Error>| matches!(r, Err(Error::InvalidInput(InvalidInput::Uri(_))));
        for bad in [
            format!("{url}%ff"),
            format!("{url}?a=%zz"),
            format!("{url}?%zz=1"),
        ] {
            let mut r = req(&bad);
            assert!(bad_uri(authorize(&mut r, &creds, KT)), "{bad}");
            assert!(r.headers().get(http::header::AUTHORIZATION).is_none());
            assert!(
                bad_uri(sign_request(&mut req(&bad), &creds, KT).map(|_| ())),
                "{bad}"
            );
        }
    }

    /// A `Host` header is what is signed, even when the URI names another authority; without one, the URI's
    /// authority is signed, whatever other headers there are.
    #[test]
    fn the_host_header_wins_over_the_uri_authority() {
        let creds = Credentials::new("AKID", "k");
        let url = "https://b-1250000000.cos.ap-guangzhou.myqcloud.com/x";
        let mut r = http::Request::get(url)
            .header("host", "other.example.com")
            .body(())
            .unwrap();
        authorize(&mut r, &creds, KT).unwrap();
        assert_eq!(
            authorization(&r),
            expected(&creds, "/x", &[], "other.example.com")
        );
        let mut r = http::Request::get(url)
            .header("host", "other.example.com")
            .body(())
            .unwrap();
        sign_request(&mut r, &creds, KT).unwrap();
        assert_eq!(
            authorization(&r),
            expected(&creds, "/x", &[], "other.example.com")
        );

        let mut r = http::Request::get(url)
            .header("content-type", "text/plain")
            .header("user-agent", "t")
            .body(())
            .unwrap();
        authorize(&mut r, &creds, KT).unwrap();
        let f = AuthorizationFields::parse(authorization(&r)).unwrap();
        assert_eq!(f.header_list, ["content-type", "host"]);
        let mut r2 = r.clone();
        r2.headers_mut().remove(http::header::AUTHORIZATION);
        let sig = sign_request(&mut r2, &creds, KT).unwrap();
        assert_eq!(sig.header_list, "content-type;host");
        assert_eq!(authorization(&r2), authorization(&r));
    }

    /// In the query `+` is a space (form encoding); in the path it is a plus.
    #[test]
    fn a_plus_is_a_space_in_the_query_only() {
        let creds = Credentials::new("AKID", "k");
        let host = "b-1250000000.cos.ap-guangzhou.myqcloud.com";
        let want = expected(&creds, "/a+b", &[("x", "c d"), (" ", "")], host);
        let url = format!("https://{host}/a+b?x=c+d&+");
        let mut r = req(&url);
        authorize(&mut r, &creds, KT).unwrap();
        assert_eq!(authorization(&r), want);
        let mut r = req(&url);
        assert_eq!(
            sign_request(&mut r, &creds, KT).unwrap().authorization,
            want
        );
    }

    /// A secret id of any length signs (no arithmetic on its length can fail).
    #[test]
    fn a_long_secret_id_signs() {
        let creds = Credentials::new("A".repeat(300), "k");
        let host = "b-1250000000.cos.ap-guangzhou.myqcloud.com";
        let mut r = req(&format!("https://{host}/x"));
        authorize(&mut r, &creds, KT).unwrap();
        assert_eq!(authorization(&r), expected(&creds, "/x", &[], host));
        assert!(authorization(&r).contains(&format!("&q-ak={}&", "A".repeat(300))));
    }

    /// Temporary credentials add `x-cos-security-token` (signed, and hidden from `Debug`).
    #[test]
    fn a_security_token_is_sent_and_signed() {
        let creds = Credentials::new("AKID", "k").with_security_token("S3CR3T-T0K3N");
        let url = "https://b-1250000000.cos.ap-guangzhou.myqcloud.com/x";
        let mut fast = req(url);
        authorize(&mut fast, &creds, KT).unwrap();
        let mut slow = req(url);
        let sig = sign_request(&mut slow, &creds, KT).unwrap();
        for r in [&fast, &slow] {
            assert_eq!(r.headers()["x-cos-security-token"], "S3CR3T-T0K3N");
            assert!(!format!("{r:?}").contains("S3CR3T-T0K3N"));
            let f = AuthorizationFields::parse(authorization(r)).unwrap();
            assert_eq!(f.header_list, ["host", "x-cos-security-token"]);
        }
        assert_eq!(authorization(&fast), sig.authorization);
        let bad = Credentials::new("AKID", "k").with_security_token("a\nb");
        assert!(authorize(&mut req(url), &bad, KT).is_err());
        assert!(sign_request(&mut req(url), &bad, KT).is_err());
        let presigned = presign(&req(url), &creds, KT).unwrap();
        assert!(presigned
            .query()
            .unwrap()
            .ends_with("&x-cos-security-token=S3CR3T-T0K3N"));
    }

    #[test]
    fn presigned_urls_carry_the_fields_after_the_query() {
        let creds = Credentials::new("AKID", "k");
        let url = "https://b-1250000000.cos.ap-guangzhou.myqcloud.com/a%20b";
        let p = presign(&req(url), &creds, KT).unwrap();
        let q = p.query().unwrap();
        assert!(q.starts_with("q-sign-algorithm=sha1&q-ak=AKID&q-sign-time=1%3B3601&q-key-time=1%3B3601&q-header-list=host&q-url-param-list=&q-signature="), "{q}");
        assert_eq!(p.path(), "/a%20b");
        let f = AuthorizationFields::from_pairs(&parse_query(q).unwrap()).unwrap();
        let want = expected(
            &creds,
            "/a b",
            &[],
            "b-1250000000.cos.ap-guangzhou.myqcloud.com",
        );
        assert_eq!(AuthorizationFields::parse(&want).unwrap(), f);
        let p = presign(&req(&format!("{url}?acl")), &creds, KT).unwrap();
        assert!(p.query().unwrap().starts_with("acl&q-sign-algorithm=sha1&"));
        assert_eq!(
            AuthorizationFields::parse(p.query().unwrap())
                .unwrap()
                .param_list,
            ["acl"]
        );
    }

    #[test]
    fn authorization_fields_need_the_required_ones() {
        let full = "q-sign-algorithm=sha1&q-ak=A&q-sign-time=1;2&q-key-time=1;2&q-header-list=host;x&q-url-param-list=&q-signature=s";
        let f = AuthorizationFields::parse(full).unwrap();
        assert_eq!(
            f,
            AuthorizationFields {
                algorithm: "sha1".into(),
                secret_id: "A".into(),
                sign_time: "1;2".into(),
                key_time: "1;2".into(),
                header_list: vec!["host".into(), "x".into()],
                param_list: vec![],
                signature: "s".into(),
            }
        );
        for field in ["q-sign-algorithm", "q-ak", "q-key-time", "q-signature"] {
            let without: Vec<&str> = full
                .split('&')
                .filter(|kv| !kv.starts_with(&format!("{field}=")))
                .collect();
            assert_eq!(
                AuthorizationFields::parse(&without.join("&")),
                None,
                "{field}"
            );
        }
    }

    /// `Debug` shows what helps explain a mismatch and hides the signing key and the signature.
    #[test]
    fn debug_output_hides_the_secrets() {
        let creds = Credentials::new("AKID", "k");
        let sig = get_authorization(
            &creds,
            &SignInput {
                method: "GET",
                key: "x",
                query: &[],
                headers: &[("host".into(), "h".into())],
                key_time: KT,
            },
        );
        let text = format!("{sig:?}");
        assert!(
            !text.contains(&sig.signature) && !text.contains(&sig.sign_key),
            "{text}"
        );
        assert!(
            text.contains("header_list: \"host\"") && text.contains("sha1\\n1;3601"),
            "{text}"
        );
        let key = SigningKey::new("k", KT);
        let text = format!("{key:?}");
        assert!(
            text.contains("start: 1") && !text.contains(key.as_hex()),
            "{text}"
        );
        assert_eq!(key.as_hex(), sig.sign_key);
    }
}
