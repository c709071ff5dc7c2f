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

    fn with_header(mut r: RecordedRequest, name: &str, value: &str) -> RecordedRequest {
        r.headers.insert(name.into(), value.into());
        r
    }

    #[test]
    fn times_defaults_to_one_and_is_written_only_when_more() {
        let e: Exchange = serde_json::from_str(
            r#"{"request":{"method":"PUT","path":"/a"},"response":{"status":200}}"#,
        )
        .unwrap();
        assert_eq!(e.times, 1);
        assert!(!serde_json::to_string(&e).unwrap().contains("times"));
        let twice = Exchange { times: 2, ..e };
        assert!(serde_json::to_string(&twice)
            .unwrap()
            .contains(r#""times":2"#));
        // An exchange recorded for two identical requests answers both, in order.
        let mut p = Player::new(fixture(
            MatchMode::Sequential,
            vec![
                Exchange {
                    times: 2,
                    ..ex(req("PUT", "/a", b""), 503)
                },
                ex(req("PUT", "/a", b""), 200),
            ],
        ));
        let statuses: Vec<u16> = (0..3)
            .map(|_| p.answer(&req("PUT", "/a", b"")).unwrap().status().as_u16())
            .collect();
        assert_eq!(statuses, [503, 503, 200]);
        let err = p.answer(&req("PUT", "/a", b"")).unwrap_err();
        assert_eq!(
            err.diff,
            ["every recorded exchange was already used".to_string()]
        );
        p.assert_all_consumed();
    }

    #[test]
    fn a_body_of_exactly_the_inline_limit_is_kept_whole() {
        let at = vec![b'x'; INLINE_BODY_LIMIT];
        assert_eq!(
            BodyRecord::of(&at),
            BodyRecord::Utf8(String::from_utf8(at.clone()).unwrap())
        );
        assert_eq!(BodyRecord::of(&at).bytes().unwrap(), at);
        assert_eq!(
            BodyRecord::Base64("//4=".into()).bytes().unwrap().as_ref(),
            [0xff, 0xfe]
        );
        assert_eq!(
            BodyRecord::Digest {
                len: 1,
                md5: String::new()
            }
            .bytes(),
            None
        );
    }

    #[test]
    fn a_digest_matches_by_length_and_by_md5_when_it_has_one() {
        let body = b"hello";
        let md5 = md5_hex(body);
        let rec = |len, md5: &str| BodyRecord::Digest {
            len,
            md5: md5.into(),
        };
        assert!(rec(5, &md5).matches(body));
        assert!(!rec(5, &md5_hex(b"world")).matches(body));
        assert!(!rec(4, &md5).matches(b"hell"));
        assert!(rec(5, "").matches(b"world"));
        assert!(!rec(4, "").matches(body));
    }

    #[test]
    fn only_xml_is_compared_without_the_white_space_between_tags() {
        let xml = BodyRecord::Utf8("<A>\n  <B>1</B>\n</A>".into());
        assert!(xml.matches(b"  <A><B>1</B></A>"));
        assert!(!xml.matches(b"<A><B>2</B></A>"));
        assert!(!xml.matches(b"<A><C>1</C></A>"));
        // Text that is not XML must be the same bytes.
        let text = BodyRecord::Utf8("x >y".into());
        assert!(text.matches(b"x >y"));
        assert!(!text.matches(b"x> y"));
        assert!(BodyRecord::Empty.matches(b""));
        assert!(!BodyRecord::Empty.matches(b"x"));
        assert!(!BodyRecord::Base64("%%".into()).matches(b""));
    }

    #[test]
    fn volatile_headers_are_neither_recorded_nor_compared() {
        assert!(is_volatile_header("date"));
        assert!(is_volatile_header("user-agent"));
        assert!(!is_volatile_header("content-type"));
        let mut h = http::HeaderMap::new();
        h.insert("content-type", "text/plain".parse().unwrap());
        h.insert("user-agent", "cos-rs".parse().unwrap());
        h.insert("date", "today".parse().unwrap());
        let map = header_map(&h);
        assert_eq!(
            map,
            BTreeMap::from([("content-type".to_string(), "text/plain".to_string())])
        );
        let r = req("PUT", "/a", b"");
        assert_eq!(r.headers.get("user-agent"), None);
        assert_eq!(r.headers.get("host").map(String::as_str), Some("h"));
    }

    #[test]
    fn recorded_headers_must_be_sent_with_the_same_value_unless_redacted() {
        let recorded = with_header(req("PUT", "/a", b""), "content-type", "text/plain");
        assert!(recorded
            .diff(&with_header(
                req("PUT", "/a", b""),
                "content-type",
                "text/plain"
            ))
            .is_empty());
        assert_eq!(
            recorded.diff(&with_header(
                req("PUT", "/a", b""),
                "content-type",
                "text/html"
            )),
            [r#"header content-type: recorded "text/plain" ≠ sent "text/html""#.to_string()]
        );
        assert_eq!(
            recorded.diff(&req("PUT", "/a", b"")),
            [r#"header content-type: recorded "text/plain", not sent"#.to_string()]
        );
        // A redacted value only has to be present.
        let token = with_header(req("PUT", "/a", b""), "x-cos-security-token", REDACTED);
        assert!(token
            .diff(&with_header(
                req("PUT", "/a", b""),
                "x-cos-security-token",
                "TOKEN"
            ))
            .is_empty());
        // A signable header sent but not recorded is a difference; a volatile one is not recorded at all.
        assert_eq!(
            req("PUT", "/a", b"").diff(&with_header(req("PUT", "/a", b""), "x-cos-meta-a", "1")),
            [r#"header x-cos-meta-a: sent "1", not recorded"#.to_string()]
        );
        // An authorization recorded whole must be sent whole; a redacted one only keeps its lists.
        let auth = |sig: &str| {
            format!("q-sign-algorithm=sha1&q-ak=AK&q-sign-time=1;2&q-key-time=1;2&q-header-list=host&q-url-param-list=&q-signature={sig}")
        };
        let whole = with_header(req("PUT", "/a", b""), "authorization", &auth("abc"));
        let sent = with_header(req("PUT", "/a", b""), "authorization", &auth("def"));
        assert_eq!(whole.diff(&sent).len(), 1);
        let redacted = with_header(req("PUT", "/a", b""), "authorization", &auth(REDACTED));
        assert!(redacted.diff(&sent).is_empty());
        let other_list =
            sent.headers["authorization"].replace("q-header-list=host", "q-header-list=");
        assert_eq!(
            redacted
                .diff(&with_header(
                    req("PUT", "/a", b""),
                    "authorization",
                    &other_list
                ))
                .len(),
            1
        );
    }

    #[test]
    fn a_streamed_body_is_compared_by_its_digest() {
        let with_body = |body: BodyRecord| RecordedRequest {
            body,
            ..req("PUT", "/a", b"")
        };
        let digest = |len, md5: &str| {
            with_body(BodyRecord::Digest {
                len,
                md5: md5.into(),
            })
        };
        let (a, b) = (md5_hex(b"hello"), md5_hex(b"world"));
        // Both digests: same length, and the same MD5 unless either has none.
        assert!(digest(5, &a).diff(&digest(5, &a)).is_empty());
        assert!(digest(5, &a).diff(&digest(5, "")).is_empty());
        assert!(digest(5, "").diff(&digest(5, &b)).is_empty());
        assert_eq!(digest(5, &a).diff(&digest(5, &b)).len(), 1);
        assert_eq!(digest(5, &a).diff(&digest(6, &a)).len(), 1);
        assert_eq!(digest(5, "").diff(&digest(6, "")).len(), 1);
        // Recorded whole, sent as a digest.
        let whole = with_body(BodyRecord::Utf8("hello".into()));
        assert!(whole.diff(&digest(5, &a)).is_empty());
        assert!(whole.diff(&digest(5, "")).is_empty());
        assert_eq!(whole.diff(&digest(5, &b)).len(), 1);
        assert_eq!(whole.diff(&digest(4, "")).len(), 1);
        assert_eq!(whole.diff(&digest(6, &a)).len(), 1);
        // Recorded as a digest, sent whole.
        assert!(digest(5, &a).diff(&whole).is_empty());
        assert_eq!(digest(5, &b).diff(&whole).len(), 1);
    }

    #[test]
    fn a_mismatch_shows_the_closest_exchange() {
        let close = req("PUT", "/a", b"1");
        let far = req("POST", "/b", b"1");
        let also_close = req("PUT", "/c", b"1");
        let mut p = Player::new(fixture(
            MatchMode::ByKey,
            vec![ex(far, 200), ex(close, 200), ex(also_close, 200)],
        ));
        let err = p.answer(&req("PUT", "/x", b"1")).unwrap_err();
        assert_eq!(err.sent, "PUT /x");
        assert_eq!(err.diff, ["path: recorded /a ≠ sent /x".to_string()]);
        assert_eq!(
            err.to_string(),
            "no recorded exchange matches PUT /x\n  - path: recorded /a ≠ sent /x\n"
        );
        // Used exchanges are not offered again.
        assert!(p.answer(&req("PUT", "/a", b"1")).is_ok());
        let again = p.answer(&req("PUT", "/a", b"1")).unwrap_err();
        assert_eq!(again.diff, ["path: recorded /c ≠ sent /a".to_string()]);
    }

    #[test]
    #[should_panic(expected = "fixture exchanges never requested")]
    fn assert_all_consumed_names_what_was_left() {
        Player::new(fixture(
            MatchMode::Sequential,
            vec![ex(req("PUT", "/a", b""), 200)],
        ))
        .assert_all_consumed();
    }

    #[test]
    fn a_response_is_rebuilt_and_a_recorded_secret_in_it_redacted() {
        let mut f = fixture(MatchMode::Sequential, vec![ex(req("PUT", "/a", b""), 403)]);
        f.exchanges[0]
            .response
            .headers
            .insert("x-cos-request-id".into(), "rid".into());
        f.exchanges[0].response.body = BodyRecord::Utf8(
            "<FormatString>host=h&amp;x-cos-security-token=TOK</FormatString>".into(),
        );
        f.redact();
        let r = f.exchanges[0].response.to_response();
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()["x-cos-request-id"], "rid");
        let body = String::from_utf8(r.body().to_vec()).unwrap();
        assert!(!body.contains("TOK") && body.contains(REDACTED), "{body}");
    }

    #[test]
    fn a_request_body_is_recorded_whole_or_as_its_digest() {
        use crate::checksum::SentDigest;
        use crate::task::RequestBody;
        let sent = SentDigest {
            md5: Some([0; 16]),
            crc64: 0,
            len: 5000,
        };
        assert_eq!(
            body_record(&RequestBody::Bytes(Bytes::from_static(b"hi")), Some(&sent)),
            BodyRecord::Utf8("hi".into())
        );
        let source = RequestBody::Source {
            offset: 0,
            len: 5000,
            md5: true,
        };
        assert_eq!(
            body_record(&source, Some(&sent)),
            BodyRecord::Digest {
                len: 5000,
                md5: "0".repeat(32)
            }
        );
        let empty = SentDigest { len: 0, ..sent };
        assert_eq!(body_record(&source, Some(&empty)), BodyRecord::Empty);
        assert_eq!(body_record(&source, None), BodyRecord::Empty);
    }
}
