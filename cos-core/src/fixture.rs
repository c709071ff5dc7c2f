//! Recorded exchanges: the data format of protocol fixtures and the matcher that replays them.
//!
//! A [`Fixture`] is a list of request/response [`Exchange`]s with the fixed clock and credentials they were
//! signed with, so that a replay signs byte-identical requests. [`Player`] answers requests from a fixture
//! and explains a mismatch as a readable diff. The drivers' recording and replaying transports and the
//! `cos-testkit` replay harness are built on it; serialization (JSON) is left to them via serde.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::checksum::md5_hex;

/// Current fixture format version.
pub const FIXTURE_VERSION: u32 = 1;

/// Marks a value removed before a fixture was saved (secrets, signatures from real COS).
pub const REDACTED: &str = "<redacted>";

/// A recorded scenario.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fixture {
    /// Format version ([`FIXTURE_VERSION`]).
    pub version: u32,
    /// What the scenario shows.
    pub docs: String,
    /// The wall clock (Unix seconds) the requests were signed at; replays sign at the same time.
    pub clock_unix: u64,
    /// The SecretId used.
    pub secret_id: String,
    /// The SecretKey used ([`REDACTED`] when recorded against real COS).
    pub secret_key: String,
    /// The bucket.
    pub bucket: String,
    /// The region.
    pub region: String,
    /// The endpoint URL, when not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// How requests are paired with exchanges.
    #[serde(default)]
    pub match_mode: MatchMode,
    /// The exchanges, in the order they happened.
    pub exchanges: Vec<Exchange>,
}

/// How a replayed request finds its exchange.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Each request must match the next unconsumed exchange.
    #[default]
    Sequential,
    /// A request may match any unconsumed exchange (concurrent parts arrive in any order).
    ByKey,
}

/// One request and its answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exchange {
    /// What was sent.
    pub request: RecordedRequest,
    /// What came back.
    pub response: RecordedResponse,
    /// How many identical requests this answers (retries of the same request).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// A request as recorded: method, decoded path and query, the headers that matter, and the body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Percent-encoded path, as sent.
    pub path: String,
    /// Decoded query parameters, in the order sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<(String, String)>,
    /// Lower-case header names and values (volatile ones, `user-agent` and `date`, are not kept).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: BodyRecord,
}

/// A response as recorded.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordedResponse {
    /// Status code.
    pub status: u16,
    /// Lower-case header names and values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body.
    #[serde(default)]
    pub body: BodyRecord,
}

/// A body: kept whole when small and textual, as a digest when large.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BodyRecord {
    /// No bytes.
    #[default]
    Empty,
    /// UTF-8 text.
    Utf8(String),
    /// Binary bytes, base64.
    Base64(String),
    /// Only the length and MD5 (hex) of a large body.
    Digest {
        /// Length in bytes.
        len: u64,
        /// Hex MD5.
        md5: String,
    },
}

/// Bodies larger than this are recorded as a digest.
pub const INLINE_BODY_LIMIT: usize = 4096;

impl BodyRecord {
    /// Records bytes: empty, UTF-8 text or base64 up to [`INLINE_BODY_LIMIT`], a digest beyond.
    pub fn of(bytes: &[u8]) -> BodyRecord {
        if bytes.is_empty() {
            BodyRecord::Empty
        } else if bytes.len() > INLINE_BODY_LIMIT {
            BodyRecord::Digest {
                len: bytes.len() as u64,
                md5: md5_hex(bytes),
            }
        } else {
            match std::str::from_utf8(bytes) {
                Ok(s) => BodyRecord::Utf8(s.to_string()),
                Err(_) => {
                    BodyRecord::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            }
        }
    }

    /// The bytes, for a body recorded whole; a digest yields `len` zero bytes is NOT attempted: `None`.
    pub fn bytes(&self) -> Option<Bytes> {
        match self {
            BodyRecord::Empty => Some(Bytes::new()),
            BodyRecord::Utf8(s) => Some(Bytes::from(s.clone())),
            BodyRecord::Base64(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .map(Bytes::from),
            BodyRecord::Digest { .. } => None,
        }
    }

    /// Whether `bytes` is what this record describes (XML is compared after collapsing white space between tags).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        match self {
            // An empty MD5: the body was streamed without MD5 (the default), only its length is compared.
            BodyRecord::Digest { len, md5 } => {
                *len == bytes.len() as u64 && (md5.is_empty() || *md5 == md5_hex(bytes))
            }
            other => match (other.bytes(), std::str::from_utf8(bytes)) {
                (Some(want), Ok(got)) if got.trim_start().starts_with('<') => {
                    normalize_xml(&String::from_utf8_lossy(&want)) == normalize_xml(got)
                }
                (Some(want), _) => want.as_ref() == bytes,
                (None, _) => false,
            },
        }
    }
}

fn normalize_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for piece in s.split('>') {
        out.push_str(piece.trim());
        out.push('>');
    }
    out.pop();
    out
}

/// Headers never recorded or compared: they change from run to run or between transports.
pub fn is_volatile_header(name: &str) -> bool {
    matches!(
        name,
        "user-agent"
            | "date"
            | "accept"
            | "accept-encoding"
            | "connection"
            | "keep-alive"
            | "server"
    )
}

impl RecordedRequest {
    /// Records a request head and the bytes of its body.
    pub fn of<B>(request: &http::Request<B>, body: &[u8]) -> RecordedRequest {
        let uri = request.uri();
        RecordedRequest {
            method: request.method().as_str().to_string(),
            path: uri.path().to_string(),
            query: crate::auth::parse_query(uri.query().unwrap_or("")).unwrap_or_default(),
            headers: header_map(request.headers()),
            body: BodyRecord::of(body),
        }
    }

    /// What differs between this recorded request and `actual`, one line each; empty when they match.
    ///
    /// Recorded headers must be sent with the same value (a recorded [`REDACTED`] value only has to be
    /// present); a signable header sent but not recorded is a difference too.
    pub fn diff(&self, actual: &RecordedRequest) -> Vec<String> {
        let mut d = Vec::new();
        if self.method != actual.method {
            d.push(format!(
                "method: recorded {} ≠ sent {}",
                self.method, actual.method
            ));
        }
        if self.path != actual.path {
            d.push(format!(
                "path: recorded {} ≠ sent {}",
                self.path, actual.path
            ));
        }
        let (mut q1, mut q2) = (self.query.clone(), actual.query.clone());
        q1.sort();
        q2.sort();
        if q1 != q2 {
            d.push(format!("query: recorded {q1:?} ≠ sent {q2:?}"));
        }
        for (name, want) in &self.headers {
            match actual.headers.get(name) {
                None => d.push(format!("header {name}: recorded {want:?}, not sent")),
                Some(_) if want == REDACTED => {}
                Some(got) if name == "authorization" && want.contains(REDACTED) => {
                    let list = |s: &str| AuthorizationShape::of(s);
                    if list(want) != list(got) {
                        d.push(format!(
                            "header authorization: recorded {want:?} ≠ sent {got:?}"
                        ));
                    }
                }
                Some(got) if got != want => {
                    d.push(format!("header {name}: recorded {want:?} ≠ sent {got:?}"))
                }
                Some(_) => {}
            }
        }
        for name in actual.headers.keys() {
            if !self.headers.contains_key(name) && crate::auth::should_sign_header(name) {
                d.push(format!(
                    "header {name}: sent {:?}, not recorded",
                    actual.headers[name]
                ));
            }
        }
        if !self.body_matches(actual) {
            d.push(format!(
                "body: recorded {:?} ≠ sent {:?}",
                self.body, actual.body
            ));
        }
        d
    }

    fn body_matches(&self, actual: &RecordedRequest) -> bool {
        match (&self.body, &actual.body) {
            (BodyRecord::Digest { len, md5 }, BodyRecord::Digest { len: l, md5: m }) => {
                l == len && (m == md5 || m.is_empty() || md5.is_empty())
            }
            (want, BodyRecord::Digest { len, md5 }) => want
                .bytes()
                .map(|b| b.len() as u64 == *len && (md5.is_empty() || md5_hex(&b) == *md5))
                .unwrap_or(false),
            (want, got) => got.bytes().map(|b| want.matches(&b)).unwrap_or(false),
        }
    }
}

/// The parts of an `Authorization` value that survive redaction: the signed header and parameter lists.
#[derive(Debug, PartialEq, Eq)]
struct AuthorizationShape(Vec<(String, String)>);

impl AuthorizationShape {
    fn of(s: &str) -> AuthorizationShape {
        AuthorizationShape(
            s.split('&')
                .filter_map(|p| p.split_once('='))
                .filter(|(k, _)| {
                    matches!(
                        *k,
                        "q-sign-algorithm" | "q-header-list" | "q-url-param-list"
                    )
                })
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

/// Lower-cased, non-volatile headers of a map.
pub fn header_map(headers: &http::HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter(|(n, _)| !is_volatile_header(n.as_str()))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl RecordedResponse {
    /// Records a response.
    pub fn of(response: &http::Response<Bytes>) -> RecordedResponse {
        RecordedResponse {
            status: response.status().as_u16(),
            headers: header_map(response.headers()),
            body: BodyRecord::of(response.body()),
        }
    }

    /// Rebuilds the response (a digest-only body is replayed as that many zero bytes is never done: empty).
    pub fn to_response(&self) -> http::Response<Bytes> {
        let mut b = http::Response::builder().status(self.status);
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        b.body(self.body.bytes().unwrap_or_default())
            .unwrap_or_else(|_| http::Response::new(Bytes::new()))
    }
}

impl Fixture {
    /// Replaces secrets and signatures with [`REDACTED`], keeping the signed header and parameter lists, so
    /// that a fixture recorded against real COS can be shared.
    pub fn redact(&mut self) {
        self.secret_key = REDACTED.to_string();
        for e in &mut self.exchanges {
            e.request.redact();
            e.response.redact();
        }
    }
}

impl RecordedResponse {
    /// Replaces a security token or signature the server echoed in a text body (the `FormatString` of a
    /// `SignatureDoesNotMatch`) with [`REDACTED`].
    pub fn redact(&mut self) {
        if let BodyRecord::Utf8(text) = &mut self.body {
            *text = crate::error::redact_secrets(text);
        }
    }
}

impl RecordedRequest {
    /// Replaces the `q-signature` of `Authorization` and the `x-cos-security-token` with [`REDACTED`],
    /// keeping the signed header and parameter lists (a replay still checks them).
    pub fn redact(&mut self) {
        if let Some(a) = self.headers.get_mut("authorization") {
            *a = a
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some(("q-signature", _)) => format!("q-signature={REDACTED}"),
                    _ => p.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&");
        }
        if let Some(t) = self.headers.get_mut("x-cos-security-token") {
            *t = REDACTED.to_string();
        }
    }
}

/// Answers requests from a fixture, in order or by matching, and reports what was left unused.
#[derive(Debug)]
pub struct Player {
    fixture: Fixture,
    used: Vec<u32>,
    next: usize,
}

/// A request the fixture could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The request that was sent.
    pub sent: String,
    /// Why no exchange matched: the differences against the closest exchange.
    pub diff: Vec<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "no recorded exchange matches {}", self.sent)?;
        for line in &self.diff {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Mismatch {}

impl Player {
    /// A player over a fixture.
    pub fn new(fixture: Fixture) -> Player {
        let used = vec![0; fixture.exchanges.len()];
        Player {
            fixture,
            used,
            next: 0,
        }
    }

    /// The fixture.
    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    /// The recorded answer to `request`, or a [`Mismatch`] explaining the difference.
    pub fn answer(&mut self, request: &RecordedRequest) -> Result<http::Response<Bytes>, Mismatch> {
        let sent = format!(
            "{} {}{}",
            request.method,
            request.path,
            if request.query.is_empty() {
                String::new()
            } else {
                format!("?{:?}", request.query)
            }
        );
        let candidates: Vec<usize> = match self.fixture.match_mode {
            MatchMode::Sequential => {
                while self.next < self.fixture.exchanges.len()
                    && self.used[self.next] >= self.fixture.exchanges[self.next].times
                {
                    self.next += 1;
                }
                (self.next..self.fixture.exchanges.len()).take(1).collect()
            }
            MatchMode::ByKey => (0..self.fixture.exchanges.len())
                .filter(|&i| self.used[i] < self.fixture.exchanges[i].times)
                .collect(),
        };
        let mut best: Option<Vec<String>> = None;
        for i in candidates {
            let diff = self.fixture.exchanges[i].request.diff(request);
            if diff.is_empty() {
                self.used[i] += 1;
                return Ok(self.fixture.exchanges[i].response.to_response());
            }
            if best.as_ref().map(|b| diff.len() < b.len()).unwrap_or(true) {
                best = Some(diff);
            }
        }
        Err(Mismatch {
            sent,
            diff: best
                .unwrap_or_else(|| vec!["every recorded exchange was already used".to_string()]),
        })
    }

    /// Exchanges not (fully) used, described; empty when every exchange was consumed.
    pub fn unconsumed(&self) -> Vec<String> {
        self.fixture
            .exchanges
            .iter()
            .zip(&self.used)
            .filter(|(e, u)| **u < e.times)
            .map(|(e, u)| {
                format!(
                    "{} {} (used {u} of {})",
                    e.request.method, e.request.path, e.times
                )
            })
            .collect()
    }

    /// Panics with the list of unused exchanges unless all were consumed.
    pub fn assert_all_consumed(&self) {
        let left = self.unconsumed();
        assert!(
            left.is_empty(),
            "fixture exchanges never requested:\n  {}",
            left.join("\n  ")
        );
    }
}

/// Receives every exchange a client makes (the recording half of the drivers' transport hooks).
///
/// `body` is the request body as recorded (whole when small, a digest when large or streamed).
pub trait ExchangeRecorder: Send + Sync {
    /// Called once per completed exchange, in the order responses arrive.
    fn record(
        &self,
        request: &http::Request<crate::task::RequestBody>,
        body: BodyRecord,
        response: &http::Response<Bytes>,
    );
}

/// Answers requests in memory instead of the network (the replaying half of the drivers' transport hooks).
pub trait ExchangeResponder: Send + Sync {
    /// The response to `request`, whose body bytes are `body`; an `Err` is reported as a transport failure.
    fn respond(
        &self,
        request: &http::Request<crate::task::RequestBody>,
        body: &[u8],
    ) -> Result<http::Response<Bytes>, crate::error::TransportError>;
}

/// Records the body of a request as sent: inline bytes when the driver has them, else the streamed digest.
pub fn body_record(
    body: &crate::task::RequestBody,
    sent: Option<&crate::checksum::SentDigest>,
) -> BodyRecord {
    match (body, sent) {
        (crate::task::RequestBody::Bytes(b), _) => BodyRecord::of(b),
        (_, Some(d)) if d.len > 0 => BodyRecord::Digest {
            len: d.len,
            md5: d.md5_hex().unwrap_or_default(),
        },
        _ => BodyRecord::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, body: &[u8]) -> RecordedRequest {
        let r = http::Request::builder()
            .method(method)
            .uri(format!("http://h{path}"))
            .header("host", "h")
            .header("content-length", body.len().to_string())
            .header("user-agent", "x")
            .body(())
            .unwrap();
        RecordedRequest::of(&r, body)
    }

    fn ex(r: RecordedRequest, status: u16) -> Exchange {
        Exchange {
            request: r,
            response: RecordedResponse {
                status,
                headers: BTreeMap::new(),
                body: BodyRecord::Empty,
            },
            times: 1,
        }
    }

    fn fixture(mode: MatchMode, exchanges: Vec<Exchange>) -> Fixture {
        Fixture {
            version: FIXTURE_VERSION,
            docs: "test".into(),
            clock_unix: 0,
            secret_id: "id".into(),
            secret_key: "key".into(),
            bucket: "b-1".into(),
            region: "ap-guangzhou".into(),
            endpoint: None,
            match_mode: mode,
            exchanges,
        }
    }

    #[test]
    fn sequential_requires_order_and_explains_mismatch() {
        let mut p = Player::new(fixture(
            MatchMode::Sequential,
            vec![
                ex(req("PUT", "/a", b"1"), 200),
                ex(req("PUT", "/b", b"2"), 201),
            ],
        ));
        let err = p.answer(&req("PUT", "/b", b"2")).unwrap_err();
        assert!(
            err.to_string().contains("path: recorded /a ≠ sent /b"),
            "{err}"
        );
        assert_eq!(p.answer(&req("PUT", "/a", b"1")).unwrap().status(), 200);
        assert_eq!(p.answer(&req("PUT", "/b", b"2")).unwrap().status(), 201);
        p.assert_all_consumed();
    }

    #[test]
    fn by_key_accepts_any_order_and_reports_leftovers() {
        let mut p = Player::new(fixture(
            MatchMode::ByKey,
            vec![
                ex(req("PUT", "/a", b"1"), 200),
                ex(req("PUT", "/b", b"2"), 201),
            ],
        ));
        assert_eq!(p.answer(&req("PUT", "/b", b"2")).unwrap().status(), 201);
        assert_eq!(p.unconsumed(), vec!["PUT /a (used 0 of 1)".to_string()]);
        let err = p.answer(&req("PUT", "/a", b"X")).unwrap_err();
        assert!(err.diff.iter().any(|l| l.starts_with("body:")), "{err}");
    }

    #[test]
    fn bodies_inline_or_digest() {
        assert_eq!(BodyRecord::of(b""), BodyRecord::Empty);
        assert_eq!(BodyRecord::of(b"hi"), BodyRecord::Utf8("hi".into()));
        assert!(matches!(
            BodyRecord::of(&[0xff, 0xfe]),
            BodyRecord::Base64(_)
        ));
        let big = vec![7u8; INLINE_BODY_LIMIT + 1];
        let rec = BodyRecord::of(&big);
        assert!(matches!(rec, BodyRecord::Digest { .. }));
        assert!(rec.matches(&big));
        assert!(!rec.matches(&big[1..]));
        assert!(BodyRecord::Utf8("<A>\n  <B>1</B>\n</A>".into()).matches(b"<A><B>1</B></A>"));
    }

    #[test]
    fn redaction_keeps_signed_lists() {
        let mut r = req("PUT", "/a", b"");
        r.headers.insert(
            "authorization".into(),
            "q-sign-algorithm=sha1&q-ak=AK&q-sign-time=1;2&q-key-time=1;2&q-header-list=host&q-url-param-list=&q-signature=abc".into(),
        );
        let mut f = fixture(MatchMode::Sequential, vec![ex(r.clone(), 200)]);
        f.redact();
        assert_eq!(f.secret_key, REDACTED);
        let a = &f.exchanges[0].request.headers["authorization"];
        assert!(a.ends_with("q-signature=<redacted>") && !a.contains("abc"));
        let mut other = r.clone();
        other.headers.insert(
            "authorization".into(),
            "q-sign-algorithm=sha1&q-ak=AK&q-sign-time=5;6&q-key-time=5;6&q-header-list=host&q-url-param-list=&q-signature=fff".into(),
        );
        assert!(f.exchanges[0].request.diff(&other).is_empty());
    }
}
