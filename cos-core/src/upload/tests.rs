//! Tests of [`MultipartUpload`] against an in-memory fake COS, with virtual time and a transcript.
//!
//! The harness plays the driver: it drains `poll_output`, keeps the emitted requests in flight, delivers
//! them to the fake server one at a time (so that the in-flight limit is actually reached), jumps the clock
//! to `Wait { until }` when nothing is in flight, and records what happened.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::*;
use crate::checksum::{hex, BodyDigest, Crc64, SentDigest};
use crate::error::{Error, IntegrityError, TransportError, TransportErrorKind};
use crate::task::{Event, Input, IoRequest, IoResult, Now, Output, RequestBody, Task, Transmit};
use crate::upload::multipart::MAX_LIST_PAGES;
use crate::upload::plan::{MAX_PARTS, MIB};
use crate::{Config, Credentials};

const BUCKET: &str = "examplebucket-1250000000";
const KEY: &str = "dir/big.bin";
/// 20 parts of 1 MiB, the last one short.
const LEN: u64 = 19 * MIB + 12345;

fn source() -> &'static Bytes {
    static S: OnceLock<Bytes> = OnceLock::new();
    S.get_or_init(|| {
        let mut rng = crate::retry::Rng::new(99);
        let mut v = Vec::with_capacity(LEN as usize);
        while v.len() < LEN as usize {
            v.extend_from_slice(&rng.next().to_le_bytes());
        }
        v.truncate(LEN as usize);
        Bytes::from(v)
    })
}

/// Digests of source ranges, computed once for all tests.
fn digest(offset: u64, len: u64) -> SentDigest {
    static CACHE: OnceLock<Mutex<HashMap<(u64, u64), SentDigest>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache.lock().unwrap().get(&(offset, len)) {
        return *d;
    }
    let d = BodyDigest::of(&source()[offset as usize..(offset + len) as usize]);
    cache.lock().unwrap().insert((offset, len), d);
    d
}

fn source_crc() -> u64 {
    digest(0, LEN).crc64
}

fn config() -> Config {
    Config::new(
        BUCKET,
        "ap-guangzhou",
        Credentials::new("AKIDEXAMPLE", "secret"),
    )
    .unwrap()
}

fn fingerprint() -> SourceFingerprint {
    SourceFingerprint {
        size: LEN,
        mtime_nanos: Some(1_700_000_000_000_000_000),
    }
}

#[allow(clippy::disallowed_methods)] // the one real clock read: the origin of virtual time
fn start() -> Now {
    Now {
        instant: Instant::now(),
        system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    }
}

// ---------------------------------------------------------------------------------------------------------
// The fake COS

#[derive(Clone, Debug)]
struct StoredPart {
    bytes: Bytes,
    digest: SentDigest,
}

#[derive(Clone, Debug)]
struct StoredUpload {
    key: String,
    initiated: String,
    forbid_overwrite: bool,
    parts: BTreeMap<u32, StoredPart>,
}

#[derive(Clone, Debug)]
struct StoredObject {
    bytes: Bytes,
    etag: String,
    crc64: u64,
}

/// What the fake does to one request.
#[derive(Clone, Debug, PartialEq)]
enum Fault {
    /// Answer normally.
    None,
    /// Fail in the transport before the server sees it.
    Drop,
    /// The server applies it, but the answer is lost.
    LoseAnswer,
    /// Answer with this status and COS error code, without applying.
    Error(u16, &'static str),
    /// Apply it, but report this CRC-64.
    WrongCrc(u64),
    /// Apply it, but answer without `x-cos-hash-crc64ecma`.
    NoCrc,
    /// Apply it, but answer with an ETag that is not the body's MD5.
    WrongEtag,
}

#[derive(Default)]
struct FakeCos {
    uploads: BTreeMap<String, StoredUpload>,
    objects: BTreeMap<String, StoredObject>,
    next_upload: u32,
    clock: u64,
    /// Parts per List Parts page (small, so that pagination is exercised).
    page: usize,
}

fn query(req: &http::Request<RequestBody>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The digest of a body, from the cache when it is a slice of the source.
fn digest_of(body: &Bytes) -> SentDigest {
    let base = source().as_ptr() as usize;
    let p = body.as_ptr() as usize;
    if !body.is_empty() && p >= base && p + body.len() <= base + source().len() {
        digest((p - base) as u64, body.len() as u64)
    } else {
        BodyDigest::of(body)
    }
}

fn key_of(req: &http::Request<RequestBody>) -> String {
    req.uri().path().trim_start_matches('/').to_string()
}

fn xml(status: u16, body: String) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-cos-request-id", "req-1")
        .body(Bytes::from(body))
        .unwrap()
}

fn cos_error(status: u16, code: &str) -> http::Response<Bytes> {
    xml(
        status,
        format!("<Error><Code>{code}</Code><Message>fake {code}</Message><RequestId>req-e</RequestId></Error>"),
    )
}

impl FakeCos {
    fn new() -> Self {
        FakeCos {
            page: 7,
            ..Default::default()
        }
    }

    fn initiate(&mut self, key: &str) -> String {
        self.next_upload += 1;
        self.clock += 1;
        let id = format!("upload-{:04}", self.next_upload);
        self.uploads.insert(
            id.clone(),
            StoredUpload {
                key: key.to_string(),
                initiated: format!("2024-01-01T00:00:{:02}.000Z", self.clock % 60),
                forbid_overwrite: false,
                parts: BTreeMap::new(),
            },
        );
        id
    }

    fn put_part(&mut self, id: &str, n: u32, bytes: Bytes) {
        let digest = digest_of(&bytes);
        self.uploads
            .get_mut(id)
            .unwrap()
            .parts
            .insert(n, StoredPart { bytes, digest });
    }

    /// Handles one request whose body is `body`; `fault` changes the answer.
    fn handle(
        &mut self,
        req: &http::Request<RequestBody>,
        body: &Bytes,
        fault: &Fault,
    ) -> http::Response<Bytes> {
        if let Fault::Error(status, code) = fault {
            return cos_error(*status, code);
        }
        let wrong_crc = match fault {
            Fault::WrongCrc(c) => Some(*c),
            _ => None,
        };
        let q = query(req);
        let key = key_of(req);
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match (
            req.method().as_str(),
            q.contains_key("uploads"),
            q.get("uploadId"),
        ) {
            ("POST", true, None) => {
                let id = self.initiate(&key);
                self.uploads.get_mut(&id).unwrap().forbid_overwrite =
                    header("x-cos-forbid-overwrite").is_some();
                xml(
                    200,
                    format!(
                        "<InitiateMultipartUploadResult><Bucket>{BUCKET}</Bucket><Key>{key}</Key>\
                         <UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
                    ),
                )
            }
            ("GET", true, None) => {
                let prefix = q.get("prefix").cloned().unwrap_or_default();
                let mut s = format!("<ListMultipartUploadsResult><Bucket>{BUCKET}</Bucket><IsTruncated>false</IsTruncated>");
                for (id, u) in &self.uploads {
                    if u.key.starts_with(&prefix) {
                        s += &format!(
                            "<Upload><Key>{}</Key><UploadId>{id}</UploadId><Initiated>{}</Initiated></Upload>",
                            u.key, u.initiated
                        );
                    }
                }
                xml(200, s + "</ListMultipartUploadsResult>")
            }
            ("PUT", _, Some(id)) => {
                let n: u32 = q["partNumber"].parse().unwrap();
                let Some(u) = self.uploads.get_mut(id) else {
                    return cos_error(404, "NoSuchUpload");
                };
                let digest = digest_of(body);
                u.parts.insert(
                    n,
                    StoredPart {
                        bytes: body.clone(),
                        digest,
                    },
                );
                let etag = match fault {
                    Fault::WrongEtag => "0".repeat(32),
                    _ => digest.md5_hex().unwrap(),
                };
                let mut answer = http::Response::builder()
                    .status(200)
                    .header("etag", format!("\"{etag}\""));
                if !matches!(fault, Fault::NoCrc) {
                    answer = answer.header(
                        "x-cos-hash-crc64ecma",
                        wrong_crc.unwrap_or(digest.crc64).to_string(),
                    );
                }
                answer.body(Bytes::new()).unwrap()
            }
            ("GET", false, Some(id)) => {
                let Some(u) = self.uploads.get(id) else {
                    return cos_error(404, "NoSuchUpload");
                };
                let marker: u32 = q
                    .get("part-number-marker")
                    .map(|m| m.parse().unwrap())
                    .unwrap_or(0);
                let page: Vec<_> = u.parts.range(marker + 1..).take(self.page).collect();
                let truncated = u.parts.range(marker + 1..).count() > self.page;
                let mut s = format!(
                    "<ListPartsResult><Bucket>{BUCKET}</Bucket><Key>{key}</Key><UploadId>{id}</UploadId>\
                     <PartNumberMarker>{marker}</PartNumberMarker><IsTruncated>{truncated}</IsTruncated>"
                );
                if let Some((n, _)) = page.last() {
                    s += &format!("<NextPartNumberMarker>{n}</NextPartNumberMarker>");
                }
                for (n, p) in page {
                    s += &format!(
                        "<Part><PartNumber>{n}</PartNumber><ETag>&quot;{}&quot;</ETag><Size>{}</Size></Part>",
                        p.digest.md5_hex().unwrap(),
                        p.bytes.len()
                    );
                }
                xml(200, s + "</ListPartsResult>")
            }
            ("POST", false, Some(id)) => {
                let Some(u) = self.uploads.get(id) else {
                    return cos_error(404, "NoSuchUpload");
                };
                assert_eq!(header("content-type").as_deref(), Some("application/xml"));
                let text = String::from_utf8(body.to_vec()).unwrap();
                let mut listed = Vec::new();
                for chunk in text.split("<Part>").skip(1) {
                    let n: u32 = between(chunk, "<PartNumber>", "</PartNumber>")
                        .parse()
                        .unwrap();
                    let etag = between(chunk, "<ETag>", "</ETag>").replace("&quot;", "\"");
                    assert!(
                        etag.starts_with('"') && etag.ends_with('"'),
                        "quoted ETag {etag}"
                    );
                    listed.push((n, etag));
                }
                if !listed.windows(2).all(|w| w[0].0 < w[1].0) {
                    return cos_error(400, "InvalidPartOrder");
                }
                let mut bytes = Vec::new();
                let mut md5s = Vec::new();
                for (n, etag) in &listed {
                    match u.parts.get(n) {
                        Some(p) if etag.trim_matches('"') == p.digest.md5_hex().unwrap() => {
                            bytes.extend_from_slice(&p.bytes);
                            md5s.extend_from_slice(&p.digest.md5.unwrap());
                        }
                        _ => return cos_error(400, "InvalidPart"),
                    }
                }
                if u.forbid_overwrite != header("x-cos-forbid-overwrite").is_some() {
                    return cos_error(400, "InvalidRequest");
                }
                if u.forbid_overwrite && self.objects.contains_key(&key) {
                    return cos_error(409, "PathConflict");
                }
                let bytes = Bytes::from(bytes);
                let crc64 = if bytes == *source() {
                    source_crc()
                } else {
                    Crc64::checksum(&bytes)
                };
                let etag = format!("\"{}-{}\"", crate::checksum::md5_hex(&md5s), listed.len());
                self.uploads.remove(id);
                self.objects.insert(
                    key.clone(),
                    StoredObject {
                        bytes,
                        etag: etag.clone(),
                        crc64,
                    },
                );
                let mut r = xml(
                    200,
                    format!(
                        "<CompleteMultipartUploadResult><Location>{BUCKET}.cos.ap-guangzhou.myqcloud.com/{key}</Location>\
                         <Bucket>{BUCKET}</Bucket><Key>{key}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
                        etag.replace('"', "&quot;")
                    ),
                );
                r.headers_mut().insert(
                    "x-cos-hash-crc64ecma",
                    wrong_crc.unwrap_or(crc64).to_string().parse().unwrap(),
                );
                r
            }
            ("DELETE", false, Some(id)) => {
                if self.uploads.remove(id).is_none() {
                    return cos_error(404, "NoSuchUpload");
                }
                http::Response::builder()
                    .status(204)
                    .body(Bytes::new())
                    .unwrap()
            }
            ("HEAD", false, None) => match self.objects.get(&key) {
                Some(o) => http::Response::builder()
                    .status(200)
                    .header("content-length", o.bytes.len())
                    .header("etag", &o.etag)
                    .header(
                        "x-cos-hash-crc64ecma",
                        wrong_crc.unwrap_or(o.crc64).to_string(),
                    )
                    .body(Bytes::new())
                    .unwrap(),
                None => http::Response::builder()
                    .status(404)
                    .body(Bytes::new())
                    .unwrap(),
            },
            ("PUT", false, None) => {
                let d = BodyDigest::of(body);
                let etag = format!("\"{}\"", d.md5_hex().unwrap());
                self.objects.insert(
                    key,
                    StoredObject {
                        bytes: body.clone(),
                        etag: etag.clone(),
                        crc64: d.crc64,
                    },
                );
                http::Response::builder()
                    .status(200)
                    .header("etag", etag)
                    .header("x-cos-hash-crc64ecma", d.crc64.to_string())
                    .body(Bytes::new())
                    .unwrap()
            }
            other => panic!("unexpected request {other:?} {}", req.uri()),
        }
    }
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> &'a str {
    let start = s.find(a).unwrap() + a.len();
    let end = start + s[start..].find(b).unwrap();
    &s[start..end]
}

// ---------------------------------------------------------------------------------------------------------
// The driver

/// One line of the transcript.
#[derive(Clone, Debug, PartialEq)]
enum Line {
    Send {
        op: &'static str,
        part: Option<u32>,
        attempt: u32,
        at: Duration,
    },
    Event(Event),
}

struct Harness {
    now: Now,
    t0: Instant,
    server: FakeCos,
    in_flight: Vec<Transmit>,
    transcript: Vec<Line>,
    /// Source ranges sent by UploadPart: (part, offset, len).
    ranges: Vec<(u32, u64, u64)>,
    /// Whether each source body sent asked the driver for its MD5.
    md5_asked: Vec<bool>,
    max_parts_in_flight: usize,
    /// Chooses the fault for the n-th request of an operation (part number given for UploadPart).
    faults: Box<dyn FnMut(&'static str, Option<u32>, u32) -> Fault>,
    /// The last checkpoint stored ([`IoRequest::StoreCheckpoint`]), as JSON (what a driver would persist).
    saved: Option<String>,
    /// Answer [`IoRequest::Digest`] (find-unfinished mode).
    answer_digests: bool,
    /// Part digests asked for: (offset, len).
    digests_asked: Vec<(u64, u64)>,
    steps: usize,
}

fn part_number(t: &Transmit) -> Option<u32> {
    query_part(&t.request)
}

fn query_part(req: &http::Request<RequestBody>) -> Option<u32> {
    query(req).get("partNumber").map(|n| n.parse().unwrap())
}

enum Stop {
    Done(Result<UploadOutcome, Error>),
    /// The step budget ran out (the caller injects a crash, pause or cancel there).
    Step,
}

impl Harness {
    /// A harness whose fake COS applies the first Complete but loses its answer (the task confirms with HEAD).
    fn losing_the_first_complete_answer() -> Self {
        let mut h = Harness::new();
        h.faults = Box::new(|op, _, attempt| match (op, attempt) {
            ("CompleteMultipartUpload", 1) => Fault::LoseAnswer,
            _ => Fault::None,
        });
        h
    }

    fn new() -> Self {
        let now = start();
        Harness {
            now,
            t0: now.instant,
            server: FakeCos::new(),
            in_flight: Vec::new(),
            transcript: Vec::new(),
            ranges: Vec::new(),
            md5_asked: Vec::new(),
            max_parts_in_flight: 0,
            faults: Box::new(|_, _, _| Fault::None),
            saved: None,
            answer_digests: true,
            digests_asked: Vec::new(),
            steps: 0,
        }
    }

    fn sends(&self, op: &str) -> Vec<(Option<u32>, u32, Duration)> {
        self.transcript
            .iter()
            .filter_map(|l| match l {
                Line::Send {
                    op: o,
                    part,
                    attempt,
                    at,
                } if *o == op => Some((*part, *attempt, *at)),
                _ => None,
            })
            .collect()
    }

    /// Performs a task's I/O as a driver would; `None`: left unanswered.
    fn io(&mut self, request: IoRequest) -> Option<IoResult> {
        match request {
            IoRequest::StoreCheckpoint(bytes) => {
                self.saved = Some(String::from_utf8(bytes.to_vec()).unwrap());
                Some(IoResult::Done)
            }
            IoRequest::Digest { offset, len } => {
                self.digests_asked.push((offset, len));
                self.answer_digests
                    .then(|| IoResult::Digest(digest(offset, len)))
            }
            other => panic!("unexpected I/O {other:?}"),
        }
    }

    fn events(&self) -> Vec<Event> {
        self.transcript
            .iter()
            .filter_map(|l| match l {
                Line::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    /// Drives `task` until it ends, or until `budget` steps (transmits + deliveries) were taken.
    fn run(&mut self, task: &mut MultipartUpload, budget: Option<usize>) -> Stop {
        task.persist_for_tests();
        let mut iterations = 0;
        loop {
            iterations += 1;
            assert!(iterations < 100_000, "the task does not make progress");
            if budget.is_some_and(|b| self.steps >= b) {
                return Stop::Step;
            }
            match task.poll_output(self.now) {
                Output::Transmit(t) => {
                    self.steps += 1;
                    let part = part_number(&t);
                    self.transcript.push(Line::Send {
                        op: t.operation,
                        part,
                        attempt: t.attempt,
                        at: self.now.instant - self.t0,
                    });
                    assert!(t.request.headers().contains_key("authorization"), "signed");
                    if let RequestBody::Source { offset, len, md5 } = t.request.body() {
                        self.md5_asked.push(*md5);
                        self.ranges.push((part.unwrap(), *offset, *len));
                    }
                    self.in_flight.push(t);
                    let parts = self
                        .in_flight
                        .iter()
                        .filter(|t| t.operation == "UploadPart")
                        .count();
                    self.max_parts_in_flight = self.max_parts_in_flight.max(parts);
                }
                Output::Io(io) => {
                    if let Some(result) = self.io(io.request) {
                        task.handle_input(self.now, Input::Io { id: io.id, result });
                    }
                }
                Output::Event(e) => self.transcript.push(Line::Event(e)),
                Output::Done(result) => return Stop::Done(result),
                Output::Wait { until } => {
                    if !self.in_flight.is_empty() {
                        // Answer the oldest request first.
                        let t = self.in_flight.remove(0);
                        self.steps += 1;
                        let input = self.deliver(t);
                        task.handle_input(self.now, input);
                    } else if let Some(until) = until {
                        assert!(until > self.now.instant, "Wait until a past time");
                        self.now = self.now.advance(until - self.now.instant);
                    } else {
                        panic!("waiting forever with nothing in flight");
                    }
                }
            }
        }
    }

    /// Sends one request to the fake server (applying the fault plan) and builds the task's input.
    fn deliver(&mut self, t: Transmit) -> Input {
        let part = part_number(&t);
        let fault = (self.faults)(t.operation, part, t.attempt);
        let (body, sent) = match t.request.body() {
            RequestBody::Empty => (Bytes::new(), None),
            RequestBody::Bytes(b) => (b.clone(), None),
            RequestBody::Source { offset, len, md5 } => (
                source().slice(*offset as usize..(*offset + *len) as usize),
                Some(SentDigest {
                    md5: digest(*offset, *len).md5.filter(|_| *md5),
                    ..digest(*offset, *len)
                }),
            ),
        };
        if fault == Fault::Drop {
            return Input::Failed {
                id: t.id,
                error: TransportError::new(TransportErrorKind::Reset, "connection reset"),
            };
        }
        let response = self.server.handle(&t.request, &body, &fault);
        if fault == Fault::LoseAnswer {
            return Input::Failed {
                id: t.id,
                error: TransportError::new(TransportErrorKind::Timeout, "read timeout"),
            };
        }
        Input::Response {
            id: t.id,
            response,
            sent,
        }
    }

    /// Delivers or drops whatever is in flight when the task is dropped (a crash): even-numbered requests
    /// reach the server, the others are lost before it.
    /// Pauses `task` (at step `k` of a test) and drains it: the answers to what is in flight are
    /// delivered, and nothing new may be sent, until it reports `Paused` (or ends with the last answers).
    fn pause_and_drain(&mut self, task: &mut MultipartUpload, k: usize) {
        task.pause();
        assert!(task.is_paused());
        for _ in 0..1000 {
            match task.poll_output(self.now) {
                Output::Transmit(t) => panic!("step {k}: {} sent while paused", t.operation),
                Output::Event(Event::Paused) => return,
                Output::Event(_) => {}
                Output::Io(io) => {
                    let result = self.io(io.request).unwrap();
                    task.handle_input(self.now, Input::Io { id: io.id, result });
                }
                Output::Wait { until } => {
                    if self.in_flight.is_empty() {
                        let until = until.expect("a timer while paused with nothing in flight");
                        self.now = self.now.advance(until - self.now.instant);
                    } else {
                        let t = self.in_flight.remove(0);
                        let input = self.deliver(t);
                        task.handle_input(self.now, input);
                    }
                }
                // Finished while draining (the last answers completed it): fine.
                Output::Done(r) => return drop(r.unwrap()),
            }
        }
        panic!("step {k}: never paused");
    }

    fn crash(&mut self) {
        for (i, t) in std::mem::take(&mut self.in_flight).into_iter().enumerate() {
            if i % 2 == 0 {
                let _ = self.deliver(t);
            }
        }
    }

    fn assert_object_is_source(&self) {
        let o = self.server.objects.get(KEY).expect("object exists");
        assert!(
            o.bytes == *source(),
            "object content differs from the source"
        );
        assert_eq!(o.crc64, source_crc());
    }
}

fn upload_config() -> UploadConfig {
    UploadConfig::default()
}

fn new_task() -> MultipartUpload {
    MultipartUpload::new(config(), KEY, LEN, upload_config())
        .unwrap()
        .source_fingerprint(fingerprint())
        .unwrap()
}

#[test]
fn a_multipart_upload_names_its_key_part_size_and_upload_id() {
    let sized = UploadConfig {
        part_size: Some(5 * MIB),
        ..upload_config()
    };
    let five = MultipartUpload::new(config(), KEY, LEN, sized).unwrap();
    assert_eq!(five.part_size(), 5 * MIB);
    let mut task = new_task();
    assert_eq!(task.key(), KEY);
    assert!(!task.is_paused());
    task.pause();
    assert!(task.is_paused());
    task.resume_sending();
    assert!(!task.is_paused());
    assert_eq!(task.upload_id(), None);
    let mut h = Harness::new();
    let part = run_until_sent(&mut h, &mut task, "UploadPart");
    let id = task.upload_id().expect("initiated").to_string();
    assert!(!id.is_empty());
    let query = part.request.uri().query().unwrap_or("").to_string();
    assert!(query.contains(&format!("uploadId={id}")), "{query}");
}

fn done(stop: Stop) -> Result<UploadOutcome, Error> {
    match stop {
        Stop::Done(r) => r,
        Stop::Step => panic!("no budget was given"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Tests

#[test]
fn happy_path_sends_every_byte_once_within_the_limit() {
    let mut h = Harness::new();
    let mut task = new_task();
    assert_eq!(task.plan().unwrap().part_count(), 20);
    let out = done(h.run(&mut task, None)).unwrap();
    h.assert_object_is_source();
    assert_eq!(out.parts, 20);
    assert_eq!(out.crc64, Some(source_crc()));
    assert_eq!(out.total_len, LEN);
    assert!(out.etag.ends_with("-20\""), "{}", out.etag);
    assert_eq!(
        out.location.as_deref(),
        Some("examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/dir/big.bin")
    );
    assert!(!out.confirmed_by_head);
    assert_eq!(
        h.max_parts_in_flight, DEFAULT_MAX_IN_FLIGHT,
        "the limit is reached and held"
    );
    // Every byte exactly once: ranges sorted by offset are contiguous and cover [0, LEN).
    let mut ranges = h.ranges.clone();
    ranges.sort_by_key(|r| r.1);
    let mut next = 0;
    for (_, offset, len) in &ranges {
        assert_eq!(*offset, next);
        next += len;
    }
    assert_eq!(next, LEN);
    assert_eq!(ranges.len(), 20);
    // Lowest pending part first.
    let order: Vec<u32> = h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
    assert_eq!(order, (1..=20).collect::<Vec<_>>());
    // Transcript shape.
    let ops: Vec<&str> = h
        .transcript
        .iter()
        .filter_map(|l| match l {
            Line::Send { op, .. } => Some(*op),
            _ => None,
        })
        .collect();
    assert_eq!(ops.first(), Some(&"InitiateMultipartUpload"));
    assert_eq!(ops.last(), Some(&"CompleteMultipartUpload"));
    let events = h.events();
    assert!(matches!(&events[0], Event::Initiated { upload_id } if upload_id == "upload-0001"));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::PartCompleted { .. }))
            .count(),
        20
    );
    assert!(events.contains(&Event::Progress {
        loaded: LEN,
        total: Some(LEN)
    }));
    let p = task.progress();
    assert_eq!((p.loaded, p.parts_done, p.parts_total), (LEN, 20, Some(20)));
    // Polling after Done is inert.
    assert!(matches!(
        task.poll_output(h.now),
        Output::Wait { until: None }
    ));
}

#[test]
fn in_flight_limit_is_configurable() {
    for limit in [1, 2, 5, 8] {
        let mut h = Harness::new();
        let cfg = UploadConfig {
            max_in_flight: limit,
            ..upload_config()
        };
        let mut task = MultipartUpload::new(config(), KEY, LEN, cfg).unwrap();
        done(h.run(&mut task, None)).unwrap();
        assert_eq!(h.max_parts_in_flight, limit);
        h.assert_object_is_source();
    }
}

#[test]
fn forbid_overwrite_is_sent_on_initiate_and_complete() {
    let mut h = Harness::new();
    let cfg = UploadConfig {
        forbid_overwrite: true,
        ..upload_config()
    };
    let mut task = MultipartUpload::new(config(), KEY, LEN, cfg.clone()).unwrap();
    done(h.run(&mut task, None)).unwrap(); // the fake refuses a Complete whose header differs from Initiate's
                                           // A second upload of the same key is refused.
    let mut task = MultipartUpload::new(config(), KEY, LEN, cfg).unwrap();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("PathConflict"));
}

#[test]
fn retries_follow_the_backoff() {
    let mut h = Harness::new();
    // Part 2 fails twice in the transport, then succeeds; part 5 gets a 503 once.
    h.faults = Box::new(|op, part, attempt| match (op, part, attempt) {
        ("UploadPart", Some(2), 1 | 2) => Fault::Drop,
        ("UploadPart", Some(5), 1) => Fault::Error(503, "SlowDown"),
        _ => Fault::None,
    });
    let mut task = new_task();
    done(h.run(&mut task, None)).unwrap();
    h.assert_object_is_source();
    let policy = config().retry;
    let retries: Vec<(Option<u32>, u32, Duration)> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RetryScheduled {
                part,
                attempt,
                delay,
                operation,
                ..
            } => {
                assert_eq!(operation, "UploadPart");
                Some((part, attempt, delay))
            }
            _ => None,
        })
        .collect();
    let mut which: Vec<(Option<u32>, u32)> = retries.iter().map(|r| (r.0, r.1)).collect();
    which.sort();
    assert_eq!(which, [(Some(2), 2), (Some(2), 3), (Some(5), 2)]);
    let part2_delays: Vec<Duration> = retries
        .iter()
        .filter(|r| r.0 == Some(2))
        .map(|r| r.2)
        .collect();
    for (_, attempt, delay) in &retries {
        let base = policy.initial_backoff * (1 << (attempt - 2));
        assert!(
            *delay >= base / 2 && *delay <= base,
            "attempt {attempt}: {delay:?}"
        );
    }
    // Each retry is sent exactly when its timer is due: the failure was answered at some time t and the
    // retry goes out at t + delay, never earlier.
    let part2 = h
        .sends("UploadPart")
        .into_iter()
        .filter(|s| s.0 == Some(2))
        .collect::<Vec<_>>();
    assert_eq!(part2.len(), 3);
    assert!(part2[1].2 - part2[0].2 >= part2_delays[0]);
    assert!(part2[2].2 - part2[1].2 >= part2_delays[1]);
    // The harness answers at once, so the clock only moves to timers: the retry goes out exactly when due.
    assert_eq!(part2[1].2 - part2[0].2, part2_delays[0]);
    // Only failed parts were sent twice.
    assert_eq!(h.sends("UploadPart").len(), 23);
}

#[test]
fn retry_timers_are_ordered_and_waits_name_the_next_one() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, part, attempt| match (op, part, attempt) {
        ("UploadPart", Some(1..=3), 1) => Fault::Drop,
        _ => Fault::None,
    });
    let mut task = MultipartUpload::new(
        config(),
        KEY,
        LEN,
        UploadConfig {
            max_in_flight: 3,
            ..upload_config()
        },
    )
    .unwrap();
    done(h.run(&mut task, None)).unwrap();
    // Parts 1-3 were retried in the order of their timers, each at (or after) its due time.
    let due: Vec<(u32, Duration)> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled {
                part: Some(p),
                delay,
                ..
            } => Some((*p, *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(due.len(), 3);
    let resent: Vec<(u32, Duration)> = h
        .sends("UploadPart")
        .into_iter()
        .filter(|s| s.1 == 2)
        .map(|s| (s.0.unwrap(), s.2))
        .collect();
    assert_eq!(resent.len(), 3);
    assert!(resent.windows(2).all(|w| w[0].1 <= w[1].1));
}

#[test]
fn a_part_failing_past_the_limit_fails_without_abort_and_resumes() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, part, _| match (op, part) {
        ("UploadPart", Some(7)) => Fault::Error(500, "InternalError"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("InternalError"));
    assert_eq!(
        h.sends("UploadPart")
            .iter()
            .filter(|s| s.0 == Some(7))
            .count(),
        4,
        "max_attempts"
    );
    assert!(h.sends("AbortMultipartUpload").is_empty(), "not aborted");
    assert_eq!(h.server.uploads.len(), 1, "the upload stays resumable");
    let cp = task.checkpoint().unwrap();
    assert!(cp.parts.iter().all(|p| p.number != 7));
    // Resume: only the parts missing from the checkpoint are sent.
    let missing: Vec<u32> = (1..=20)
        .filter(|n| !cp.parts.iter().any(|p| p.number == *n))
        .collect();
    h.faults = Box::new(|_, _, _| Fault::None);
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    done(h.run(&mut task, None)).unwrap();
    let mut sent: Vec<u32> = h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
    sent.sort();
    assert_eq!(sent, missing);
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::Resumed { .. })));
    h.assert_object_is_source();
}

#[test]
fn part_crc_mismatch_is_an_integrity_error() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, part, _| match (op, part) {
        ("UploadPart", Some(4)) => Fault::WrongCrc(12345),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Integrity(IntegrityError::Crc64 {
                part: Some(4),
                actual: 12345,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn parts_are_verified_by_crc64_without_md5_by_default() {
    // Default: no MD5 asked of the driver for any part; the CRC-64s verify the upload.
    let mut h = Harness::new();
    let mut task = new_task();
    done(h.run(&mut task, None)).unwrap();
    assert!(!h.md5_asked.is_empty());
    assert!(h.md5_asked.iter().all(|m| !m), "{:?}", h.md5_asked);
    h.assert_object_is_source();

    // …and a part answer without a CRC-64 cannot be verified: a clear integrity error.
    let mut h = Harness::new();
    h.faults = Box::new(|op, part, _| match (op, part) {
        ("UploadPart", Some(3)) => Fault::NoCrc,
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Integrity(IntegrityError::Unverified {
                part: Some(3),
                crc64_present: false,
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn verify_md5_checks_part_etags_and_covers_a_missing_crc64() {
    let md5_task = || {
        let cfg = UploadConfig {
            verify_md5: true,
            ..upload_config()
        };
        MultipartUpload::new(config(), KEY, LEN, cfg)
            .unwrap()
            .source_fingerprint(fingerprint())
            .unwrap()
    };
    // A part without a CRC-64 is verified by its ETag.
    let mut h = Harness::new();
    h.faults = Box::new(|op, part, _| match (op, part) {
        ("UploadPart", Some(3)) => Fault::NoCrc,
        _ => Fault::None,
    });
    let mut task = md5_task();
    done(h.run(&mut task, None)).unwrap();
    assert!(h.md5_asked.iter().all(|m| *m), "{:?}", h.md5_asked);
    h.assert_object_is_source();

    // A wrong ETag is an integrity error.
    let mut h = Harness::new();
    h.faults = Box::new(|op, part, _| match (op, part) {
        ("UploadPart", Some(2)) => Fault::WrongEtag,
        _ => Fault::None,
    });
    let mut task = md5_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Integrity(IntegrityError::Etag { part: Some(2), .. })
        ),
        "{err:?}"
    );
}

#[test]
fn object_crc_mismatch_is_an_integrity_error() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "CompleteMultipartUpload" => Fault::WrongCrc(777),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert!(
        matches!(err, Error::Integrity(IntegrityError::Crc64 { part: None, expected, actual: 777 }) if expected == source_crc()),
        "{err:?}"
    );
}

#[test]
fn etag_mismatch_is_an_integrity_error() {
    // The driver reports a digest that is not of the bytes the server got (a file changing under it).
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(1)) else {
        panic!()
    };
    // Deliver Initiate, then answer part 1 with a digest of other bytes.
    let t = h.in_flight.remove(0);
    let input = h.deliver(t);
    task.handle_input(h.now, input);
    let mut part1 = None;
    while part1.is_none() {
        match task.poll_output(h.now) {
            Output::Transmit(t) if part_number(&t) == Some(1) => part1 = Some(t),
            Output::Transmit(t) => h.in_flight.push(t),
            Output::Event(_) => {}
            Output::Io(io) => {
                let result = h.io(io.request).unwrap();
                task.handle_input(h.now, Input::Io { id: io.id, result });
            }
            other => panic!("{other:?}"),
        }
    }
    let t = part1.unwrap();
    let Input::Response { id, response, .. } = h.deliver(t) else {
        panic!()
    };
    let mut other = digest(0, MIB);
    other.md5 = Some([0; 16]);
    task.handle_input(
        h.now,
        Input::Response {
            id,
            response,
            sent: Some(other),
        },
    );
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Integrity(IntegrityError::Etag { part: Some(1), .. })
        ),
        "{err:?}"
    );
}

#[test]
fn complete_with_lost_answer_is_confirmed_by_head() {
    let mut h = Harness::losing_the_first_complete_answer();
    let mut task = new_task();
    let out = done(h.run(&mut task, None)).unwrap();
    assert!(out.confirmed_by_head);
    assert!(out.etag.ends_with("-20\""));
    assert_eq!(out.crc64, Some(source_crc()));
    assert_eq!(h.sends("CompleteMultipartUpload").len(), 2);
    assert_eq!(h.sends("HeadObject").len(), 1);
    h.assert_object_is_source();
}

#[test]
fn complete_with_lost_answer_and_a_different_object_fails() {
    let mut h = Harness::new();
    // The first Complete is applied but its answer is lost; then someone replaces the object.
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("CompleteMultipartUpload", 1) => Fault::LoseAnswer,
        ("HeadObject", _) => Fault::WrongCrc(1),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
}

#[test]
fn a_first_complete_answered_no_such_upload_is_not_confirmed() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "CompleteMultipartUpload" => Fault::Error(404, "NoSuchUpload"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
    assert!(h.sends("HeadObject").is_empty());
}

#[test]
fn clock_skew_is_corrected_once() {
    let mut h = Harness::new();
    let server_date = crate::task::format_http_date(1_700_000_000 + 3600);
    let mut task = new_task();
    // Answer Initiate with RequestTimeTooSkewed and a Date one hour ahead.
    let Stop::Step = h.run(&mut task, Some(1)) else {
        panic!()
    };
    let t = h.in_flight.remove(0);
    let response = http::Response::builder()
        .status(403)
        .header("date", server_date)
        .body(Bytes::from_static(
            b"<Error><Code>RequestTimeTooSkewed</Code><Message>skew</Message></Error>",
        ))
        .unwrap();
    task.handle_input(
        h.now,
        Input::Response {
            id: t.id,
            response,
            sent: None,
        },
    );
    done(h.run(&mut task, None)).unwrap();
    assert!(h
        .events()
        .contains(&Event::ClockSkewAdjusted { offset_secs: 3600 }));
    assert_eq!(task.config().clock_offset_secs, 3600);
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 2);
}

#[test]
fn stale_checkpoint_aborts_and_starts_over() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(12)) else {
        panic!()
    };
    h.crash();
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    let old = cp.upload_id.clone();
    assert!(h.server.uploads.contains_key(&old));
    // The file was modified since.
    let changed = SourceFingerprint {
        mtime_nanos: Some(1),
        ..fingerprint()
    };
    assert!(!cp.matches(&changed));
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, changed, upload_config()).unwrap();
    assert!(
        task.checkpoint().is_none(),
        "no checkpoint until the new upload exists"
    );
    done(h.run(&mut task, None)).unwrap();
    let sends: Vec<&'static str> = h
        .transcript
        .iter()
        .filter_map(|l| match l {
            Line::Send { op, .. } => Some(*op),
            _ => None,
        })
        .collect();
    assert_eq!(
        &sends[..2],
        ["AbortMultipartUpload", "InitiateMultipartUpload"]
    );
    assert!(
        matches!(&h.events()[0], Event::Restarted { previous_upload_id, .. } if *previous_upload_id == old)
    );
    assert!(
        !h.server.uploads.contains_key(&old),
        "the stale upload was aborted"
    );
    assert_eq!(h.sends("UploadPart").len(), 20, "every part sent again");
    h.assert_object_is_source();
}

#[test]
fn resume_resends_parts_that_differ_on_the_server() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(30)) else {
        panic!()
    };
    h.crash();
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    assert!(cp.parts.len() >= 5, "{}", cp.parts.len());
    // Part 2 was overwritten with other bytes; part 3 vanished.
    let id = cp.upload_id.clone();
    h.server
        .put_part(&id, 2, Bytes::from(vec![0u8; MIB as usize]));
    h.server.uploads.get_mut(&id).unwrap().parts.remove(&3);
    let kept: Vec<u32> = cp
        .parts
        .iter()
        .map(|p| p.number)
        .filter(|n| *n != 2 && *n != 3)
        .collect();
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    done(h.run(&mut task, None)).unwrap();
    let mut sent: Vec<u32> = h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
    sent.sort();
    let expected: Vec<u32> = (1..=20).filter(|n| !kept.contains(n)).collect();
    assert_eq!(sent, expected);
    assert!(h.sends("ListParts").len() >= 2, "paginated");
    h.assert_object_is_source();
}

#[test]
fn resume_of_a_vanished_upload_starts_over() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(20)) else {
        panic!()
    };
    h.crash();
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    h.server.uploads.clear(); // expired by a lifecycle rule
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    done(h.run(&mut task, None)).unwrap();
    assert!(h.events().iter().any(
        |e| matches!(e, Event::Restarted { reason, .. } if reason.contains("no longer exists"))
    ));
    assert_eq!(h.sends("UploadPart").len(), 20);
    h.assert_object_is_source();
}

#[test]
fn resume_checks_the_checkpoint() {
    let mut cp = Checkpoint::new("otherbucket-1250000000", KEY, "u", MIB, fingerprint());
    assert!(MultipartUpload::resume(config(), cp.clone(), fingerprint(), upload_config()).is_err());
    cp.bucket = BUCKET.into();
    cp.version = 9;
    assert!(MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).is_err());
}

#[test]
fn find_unfinished_continues_the_newest_upload_of_the_key() {
    let mut h = Harness::new();
    // An older upload of the key, a newer one with 6 parts (part 4 holds other bytes, part 20 is short of
    // the plan), and a newer upload of a longer key that shares the prefix.
    let older = h.server.initiate(KEY);
    h.server
        .put_part(&older, 1, source().slice(0..MIB as usize));
    let newer = h.server.initiate(KEY);
    let plan = PartPlan::auto(LEN).unwrap();
    for n in [1, 2, 3, 5, 6] {
        let r = plan.part(n).unwrap();
        h.server.put_part(
            &newer,
            n,
            source().slice(r.offset as usize..(r.offset + r.len) as usize),
        );
    }
    h.server
        .put_part(&newer, 4, Bytes::from(vec![1u8; MIB as usize]));
    h.server.put_part(&newer, 20, Bytes::from_static(b"short"));
    let other = h.server.initiate("dir/big.bin.bak");
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(out.upload_id.as_deref(), Some(newer.as_str()));
    assert!(h.sends("InitiateMultipartUpload").is_empty());
    let asked: Vec<u32> = h
        .digests_asked
        .iter()
        .map(|(offset, _)| (offset / MIB) as u32 + 1)
        .collect();
    assert_eq!(asked, [1, 2, 3, 4, 5, 6], "only parts of the planned size");
    let mut sent: Vec<u32> = h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
    sent.sort();
    let expected: Vec<u32> = [4].into_iter().chain(7..=20).collect();
    assert_eq!(sent, expected, "part 4 (MD5 differs) and the missing ones");
    h.assert_object_is_source();
    assert!(h.server.uploads.contains_key(&older) && h.server.uploads.contains_key(&other));
}

#[test]
fn find_unfinished_without_digests_resends_and_without_uploads_initiates() {
    let mut h = Harness::new();
    let id = h.server.initiate(KEY);
    h.server.put_part(&id, 1, source().slice(0..MIB as usize));
    h.answer_digests = false;
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    // The task cannot complete before the digest is answered: it waits with nothing in flight.
    let mut waits_idle = false;
    let mut asked = None;
    for _ in 0..10_000 {
        match task.poll_output(h.now) {
            Output::Transmit(t) => h.in_flight.push(t),
            Output::Io(io) => {
                assert!(matches!(io.request, IoRequest::Digest { offset: 0, .. }));
                asked = Some(io.id);
            }
            Output::Event(_) => {}
            Output::Wait { .. } if h.in_flight.is_empty() => {
                waits_idle = true;
                break;
            }
            Output::Wait { .. } => {
                let t = h.in_flight.remove(0);
                let input = h.deliver(t);
                task.handle_input(h.now, input);
            }
            Output::Done(r) => panic!("{r:?}"),
        }
    }
    assert!(waits_idle);
    assert_eq!(task.progress().parts_done, 19);
    let id = asked.expect("the digest of part 1 was asked for");
    // Cannot compute: the part is sent again.
    task.handle_input(
        h.now,
        Input::Io {
            id,
            result: IoResult::Failed("unreadable".into()),
        },
    );
    done(h.run(&mut task, None)).unwrap();
    h.assert_object_is_source();

    let mut h = Harness::new();
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    done(h.run(&mut task, None)).unwrap();
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 1);
}

/// Paused at any step of the search for an unfinished upload (List Multipart Uploads, List Parts, the
/// digests of listed parts), the task sends nothing more, List requests included, until it is resumed;
/// then it continues the upload it found.
#[test]
fn a_task_paused_while_searching_for_an_unfinished_upload_sends_nothing_until_resumed() {
    let prepared = || {
        let mut h = Harness::new();
        let id = h.server.initiate(KEY);
        for n in [1, 2] {
            let r = PartPlan::auto(LEN).unwrap().part(n).unwrap();
            let bytes = source().slice(r.offset as usize..(r.offset + r.len) as usize);
            h.server.put_part(&id, n, bytes);
        }
        let task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
        (h, task, id)
    };
    // The steps before the first part is sent: the search.
    let (mut h, mut task, _) = prepared();
    let mut search = 0;
    while h.sends("UploadPart").is_empty() {
        assert!(search < 100, "no part sent after {search} steps");
        assert!(matches!(h.run(&mut task, Some(search + 1)), Stop::Step));
        search += 1;
    }
    assert!(search >= 3, "{search} steps");
    for k in 0..search {
        let (mut h, mut task, id) = prepared();
        assert!(matches!(h.run(&mut task, Some(k)), Stop::Step));
        let sent_before = h.transcript.len();
        h.pause_and_drain(&mut task, k);
        h.now = h.now.advance(Duration::from_secs(3600));
        match task.poll_output(h.now) {
            Output::Wait { .. } => {}
            other => panic!("step {k}: {other:?} while paused"),
        }
        let sent = h.transcript[sent_before..]
            .iter()
            .filter(|l| matches!(l, Line::Send { .. }))
            .count();
        assert_eq!(sent, 0, "step {k}: sent while paused");
        task.resume_sending();
        let out = done(h.run(&mut task, None)).unwrap();
        assert_eq!(out.upload_id.as_deref(), Some(id.as_str()), "step {k}");
        assert!(h.sends("InitiateMultipartUpload").is_empty());
        h.assert_object_is_source();
    }
}

/// Runs the happy path once to count its steps.
fn step_count() -> usize {
    let mut h = Harness::new();
    let mut task = new_task();
    done(h.run(&mut task, None)).unwrap();
    h.steps
}

#[test]
fn crash_at_every_step_resumes_correctly() {
    let steps = step_count();
    for k in 0..=steps {
        let mut h = Harness::new();
        let mut task = new_task();
        match h.run(&mut task, Some(k)) {
            Stop::Done(r) => {
                r.unwrap();
                continue;
            }
            Stop::Step => {}
        }
        drop(task);
        h.crash();
        h.transcript.clear();
        let mut task = match &h.saved {
            Some(json) => {
                let cp: Checkpoint = serde_json::from_str(json).unwrap();
                let done_parts: Vec<u32> = cp.parts.iter().map(|p| p.number).collect();
                let mut task =
                    MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
                let out = done(h.run(&mut task, None)).unwrap_or_else(|e| panic!("step {k}: {e}"));
                let mut sent: Vec<u32> =
                    h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
                sent.sort();
                let missing: Vec<u32> = (1..=20).filter(|n| !done_parts.contains(n)).collect();
                assert_eq!(sent, missing, "step {k}: only the missing parts are sent");
                assert_eq!(out.crc64, Some(source_crc()));
                h.assert_object_is_source();
                continue;
            }
            None => new_task(), // crashed before Initiate answered: start afresh
        };
        done(h.run(&mut task, None)).unwrap();
        h.assert_object_is_source();
    }
}

#[test]
fn pause_at_every_step_then_continue_or_resume() {
    let steps = step_count();
    for k in 0..=steps {
        let mut h = Harness::new();
        let mut task = new_task();
        if let Stop::Done(r) = h.run(&mut task, Some(k)) {
            r.unwrap();
            continue;
        }
        let sent_before = h
            .transcript
            .iter()
            .filter(|l| matches!(l, Line::Send { .. }))
            .count();
        h.pause_and_drain(&mut task, k);
        assert!(h.in_flight.is_empty());
        assert_eq!(
            sent_before,
            h.transcript
                .iter()
                .filter(|l| matches!(l, Line::Send { .. }))
                .count()
        );
        if h.server.objects.contains_key(KEY) {
            continue;
        }
        // Nothing happens while paused, even after a long time, and no timer is already due.
        h.now = h.now.advance(Duration::from_secs(3600));
        match task.poll_output(h.now) {
            Output::Wait { until } => {
                assert!(until.map_or(true, |t| t > h.now.instant), "step {k}")
            }
            other => panic!("step {k}: {other:?} while paused"),
        }
        if k % 2 == 0 {
            task.resume_sending();
            done(h.run(&mut task, None)).unwrap();
        } else {
            let Some(cp) = task.checkpoint() else {
                // Paused before the upload existed: start afresh.
                let mut task = new_task();
                done(h.run(&mut task, None)).unwrap();
                h.assert_object_is_source();
                continue;
            };
            let cp: Checkpoint =
                serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();
            let done_parts: Vec<u32> = cp.parts.iter().map(|p| p.number).collect();
            drop(task);
            h.transcript.clear();
            let mut task =
                MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
            done(h.run(&mut task, None)).unwrap();
            let mut sent: Vec<u32> = h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
            sent.sort();
            let missing: Vec<u32> = (1..=20).filter(|n| !done_parts.contains(n)).collect();
            assert_eq!(sent, missing, "step {k}");
        }
        h.assert_object_is_source();
    }
}

#[test]
fn cancel_at_every_step_aborts_cleanly() {
    let steps = step_count();
    for k in 0..=steps {
        let mut h = Harness::new();
        let mut task = new_task();
        if let Stop::Done(r) = h.run(&mut task, Some(k)) {
            r.unwrap();
            continue;
        }
        task.cancel();
        let sent_before = h
            .transcript
            .iter()
            .filter(|l| matches!(l, Line::Send { .. }))
            .count();
        match done(h.run(&mut task, None)) {
            Err(Error::Cancelled) => {
                assert!(h.server.uploads.is_empty(), "step {k}: upload left behind");
                assert!(!h.server.objects.contains_key(KEY), "step {k}");
            }
            // A cancel that comes once Complete was sent loses to it.
            Ok(_) => {
                assert!(!h.sends("CompleteMultipartUpload").is_empty(), "step {k}");
                h.assert_object_is_source();
            }
            Err(e) => panic!("step {k}: {e}"),
        }
        // Nothing but one Abort followed the cancel.
        let after: Vec<&'static str> = h
            .transcript
            .iter()
            .filter_map(|l| match l {
                Line::Send { op, .. } => Some(*op),
                _ => None,
            })
            .skip(sent_before)
            .collect();
        assert!(
            after.is_empty() || after == ["AbortMultipartUpload"],
            "step {k}: {after:?}"
        );
        // Whatever was in flight at the cancel is answered now: the task has ended and ignores it.
        for t in std::mem::take(&mut h.in_flight) {
            let input = h.deliver(t);
            task.handle_input(h.now, input);
            assert!(matches!(
                task.poll_output(h.now),
                Output::Wait { until: None }
            ));
        }
    }
}

#[test]
fn cancel_while_paused_aborts() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(10)) else {
        panic!()
    };
    task.pause();
    task.cancel();
    assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
    assert!(h.server.uploads.is_empty());
}

#[test]
fn credentials_can_be_swapped_between_parts() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(8)) else {
        panic!()
    };
    task.set_credentials(Credentials::new("AKIDNEW", "secret2").with_security_token("tok"));
    let mut seen_new = false;
    loop {
        match task.poll_output(h.now) {
            Output::Io(io) => {
                let result = h.io(io.request).unwrap();
                task.handle_input(h.now, Input::Io { id: io.id, result });
            }
            Output::Transmit(t) => {
                let auth = t.request.headers()["authorization"]
                    .to_str()
                    .unwrap()
                    .to_string();
                assert!(auth.contains("q-ak=AKIDNEW"), "{auth}");
                assert_eq!(t.request.headers()["x-cos-security-token"], "tok");
                seen_new = true;
                h.in_flight.push(t);
            }
            Output::Event(_) => {}
            Output::Wait { .. } => {
                if h.in_flight.is_empty() {
                    break;
                }
                let t = h.in_flight.remove(0);
                let input = h.deliver(t);
                task.handle_input(h.now, input);
            }
            Output::Done(r) => {
                r.unwrap();
                break;
            }
        }
    }
    assert!(seen_new);
}

#[test]
fn invalid_input_fails_before_sending() {
    assert!(MultipartUpload::new(config(), "", LEN, upload_config()).is_err());
    assert!(MultipartUpload::new(config(), "dir/", LEN, upload_config()).is_err());
    let bad = UploadConfig {
        part_size: Some(1000),
        ..upload_config()
    };
    assert!(matches!(
        MultipartUpload::new(config(), KEY, LEN, bad),
        Err(Error::InvalidInput(InvalidInputAlias::Size { .. }))
    ));
    let bad = UploadConfig {
        meta_md5: Some("xyz".into()),
        ..upload_config()
    };
    assert!(MultipartUpload::new(config(), KEY, LEN, bad).is_err());
    let options = crate::ops::ObjectOptions {
        traffic_limit: Some(1),
        ..Default::default()
    };
    let bad = UploadConfig {
        options,
        ..upload_config()
    };
    assert!(MultipartUpload::new(config(), KEY, LEN, bad).is_err());
    assert!(new_task()
        .source_fingerprint(SourceFingerprint {
            size: 1,
            mtime_nanos: None
        })
        .is_err());
}

use crate::error::InvalidInput as InvalidInputAlias;

#[test]
fn meta_md5_and_options_go_on_initiate() {
    let mut h = Harness::new();
    let options = crate::ops::ObjectOptions {
        content_type: Some("application/octet-stream".into()),
        ..Default::default()
    };
    let cfg = UploadConfig {
        meta_md5: Some(digest(0, LEN).md5_hex().unwrap()),
        options,
        ..upload_config()
    };
    let mut task = MultipartUpload::new(config(), KEY, LEN, cfg).unwrap();
    let Output::Transmit(t) = task.poll_output(h.now) else {
        panic!()
    };
    assert_eq!(t.operation, "InitiateMultipartUpload");
    assert_eq!(
        t.request.headers()["x-cos-meta-md5"],
        digest(0, LEN).md5_hex().unwrap().as_str()
    );
    assert_eq!(
        t.request.headers()["content-type"],
        "application/octet-stream"
    );
    h.in_flight.push(t);
    done(h.run(&mut task, None)).unwrap();
}

// ---------------------------------------------------------------------------------------------------------
// Streams

fn stream_task(max_in_flight: usize) -> MultipartUpload {
    MultipartUpload::stream(
        config(),
        KEY,
        UploadConfig {
            max_in_flight,
            ..upload_config()
        },
    )
    .unwrap()
}

/// Runs a stream upload, pushing `chunks` whenever the task wants a part; checks the memory bound.
fn run_stream(
    h: &mut Harness,
    task: &mut MultipartUpload,
    chunks: &[Bytes],
    limit: usize,
) -> Result<UploadOutcome, Error> {
    let mut next = 0;
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 100_000);
        match task.poll_output(h.now) {
            Output::Io(io) => {
                let result = h.io(io.request).unwrap();
                task.handle_input(h.now, Input::Io { id: io.id, result });
            }
            Output::Transmit(t) => {
                assert!(matches!(
                    t.request.body(),
                    RequestBody::Bytes(_) | RequestBody::Empty
                ));
                h.transcript.push(Line::Send {
                    op: t.operation,
                    part: part_number(&t),
                    attempt: t.attempt,
                    at: h.now.instant - h.t0,
                });
                h.in_flight.push(t);
                let parts = h
                    .in_flight
                    .iter()
                    .filter(|t| t.operation == "UploadPart")
                    .count();
                h.max_parts_in_flight = h.max_parts_in_flight.max(parts);
            }
            Output::Event(e) => h.transcript.push(Line::Event(e)),
            Output::Done(r) => return r,
            Output::Wait { until } => {
                if task.wants_part() && next <= chunks.len() {
                    if next == chunks.len() {
                        task.finish_stream();
                    } else {
                        task.push_part(chunks[next].clone()).unwrap();
                    }
                    next += 1;
                    let held = task.held_parts();
                    assert!(held <= limit + 1, "memory bound: {held} parts held");
                } else if !h.in_flight.is_empty() {
                    let t = h.in_flight.remove(0);
                    let input = h.deliver(t);
                    task.handle_input(h.now, input);
                } else if let Some(until) = until {
                    h.now = h.now.advance(until - h.now.instant);
                } else if next == chunks.len() {
                    task.finish_stream();
                    next += 1;
                } else {
                    panic!("stream stuck");
                }
            }
        }
    }
}

fn chunks() -> Vec<Bytes> {
    let plan = PartPlan::auto(LEN).unwrap();
    plan.parts()
        .map(|r| source().slice(r.offset as usize..(r.offset + r.len) as usize))
        .collect()
}

#[test]
fn stream_upload_keeps_the_memory_bound() {
    for limit in [1, 3] {
        let mut h = Harness::new();
        h.faults = Box::new(|op, part, attempt| match (op, part, attempt) {
            ("UploadPart", Some(3), 1) => Fault::Drop,
            _ => Fault::None,
        });
        let mut task = stream_task(limit);
        assert!(task.checkpoint().is_none());
        let out = run_stream(&mut h, &mut task, &chunks(), limit).unwrap();
        assert_eq!(out.parts, 20);
        assert_eq!(out.total_len, LEN);
        assert_eq!(out.crc64, Some(source_crc()));
        assert_eq!(h.max_parts_in_flight, limit);
        h.assert_object_is_source();
        assert_eq!(task.held_parts(), 0, "buffers released");
    }
}

#[test]
fn short_stream_is_a_single_put() {
    for data in [Bytes::from_static(b"hello"), Bytes::new()] {
        let mut h = Harness::new();
        let mut task = stream_task(3);
        let chunks: Vec<Bytes> = if data.is_empty() {
            vec![]
        } else {
            vec![data.clone()]
        };
        let out = run_stream(&mut h, &mut task, &chunks, 3).unwrap();
        assert_eq!(out.parts, 0);
        assert_eq!(out.upload_id, None);
        assert_eq!(h.sends("PutObject").len(), 1);
        assert!(h.sends("InitiateMultipartUpload").is_empty());
        assert_eq!(h.server.objects[KEY].bytes, data);
        assert_eq!(
            out.etag,
            format!("\"{}\"", hex(&BodyDigest::of(&data).md5.unwrap()))
        );
    }
}

#[test]
fn stream_of_exactly_one_part_uses_multipart() {
    let mut h = Harness::new();
    let mut task = stream_task(3);
    let one = vec![source().slice(0..MIB as usize)];
    let out = run_stream(&mut h, &mut task, &one, 3).unwrap();
    assert_eq!(out.parts, 1);
    assert_eq!(h.server.objects[KEY].bytes, one[0]);
}

#[test]
fn stream_push_rules() {
    let mut task = stream_task(1);
    assert!(task.wants_part());
    assert!(task.push_part(Bytes::new()).is_err(), "empty part");
    assert!(
        task.push_part(Bytes::from(vec![0u8; MIB as usize + 1]))
            .is_err(),
        "too long"
    );
    task.push_part(source().slice(0..MIB as usize)).unwrap();
    task.push_part(source().slice(0..MIB as usize)).unwrap();
    assert!(!task.wants_part(), "limit 1 + 1 held");
    assert!(task.push_part(source().slice(0..MIB as usize)).is_err());
    assert!(
        new_task().push_part(Bytes::from_static(b"x")).is_err(),
        "not a stream"
    );
    let mut task = stream_task(3);
    task.push_part(Bytes::from_static(b"short")).unwrap();
    assert!(!task.wants_part());
    assert!(
        task.push_part(Bytes::from_static(b"more")).is_err(),
        "nothing after a short part"
    );
    // Nothing is taken once the upload is cancelled, nor after it ended.
    let mut h = Harness::new();
    let mut task = stream_task(3);
    task.cancel();
    assert!(task.push_part(source().slice(0..MIB as usize)).is_err());
    assert!(matches!(
        done(h.run(&mut task, None)),
        Err(Error::Cancelled)
    ));
    assert!(task.push_part(source().slice(0..MIB as usize)).is_err());
    let mut task = stream_task(3);
    task.finish_stream();
    assert!(task.push_part(source().slice(0..MIB as usize)).is_err());
}

#[test]
fn stream_too_long_fails_before_part_10001_and_aborts() {
    let mut h = Harness::new();
    let mut task = stream_task(3);
    task.set_max_parts(4); // stands for 10,000: the same code path without 10 GB of pushes
    let chunks = chunks();
    let mut pushed = 0;
    let mut error = None;
    let result = loop {
        match task.poll_output(h.now) {
            Output::Io(io) => {
                let result = h.io(io.request).unwrap();
                task.handle_input(h.now, Input::Io { id: io.id, result });
            }
            Output::Transmit(t) => h.in_flight.push(t),
            Output::Event(_) => {}
            Output::Done(r) => break r,
            Output::Wait { .. } => {
                if task.wants_part() {
                    if let Err(e) = task.push_part(chunks[pushed].clone()) {
                        error = Some(e);
                    }
                    pushed += 1;
                } else if !h.in_flight.is_empty() {
                    let t = h.in_flight.remove(0);
                    let input = h.deliver(t);
                    task.handle_input(h.now, input);
                } else {
                    panic!("stuck");
                }
            }
        }
    };
    assert_eq!(pushed, 5, "the fifth push is refused");
    let e = error.unwrap();
    let five: u64 = chunks[..5].iter().map(|c| c.len() as u64).sum();
    assert!(
        matches!(
            e,
            Error::InvalidInput(InvalidInputAlias::Size { what: "stream", size, .. }) if size == five
        ),
        "{e:?}"
    );
    assert_eq!(result.unwrap_err(), e);
    assert!(h.server.uploads.is_empty(), "aborted");
    assert!(!h.server.objects.contains_key(KEY));
}

#[test]
fn stream_source_failure_aborts() {
    let mut h = Harness::new();
    let mut task = stream_task(2);
    let chunks = chunks();
    let mut pushed = 0;
    let result = loop {
        match task.poll_output(h.now) {
            Output::Io(io) => {
                let result = h.io(io.request).unwrap();
                task.handle_input(h.now, Input::Io { id: io.id, result });
            }
            Output::Transmit(t) => h.in_flight.push(t),
            Output::Event(_) => {}
            Output::Done(r) => break r,
            Output::Wait { .. } => {
                if task.wants_part() && pushed < 5 {
                    task.push_part(chunks[pushed].clone()).unwrap();
                    pushed += 1;
                } else if pushed == 5 {
                    task.fail_source("read error: disk gone");
                    pushed += 1;
                } else if !h.in_flight.is_empty() {
                    let t = h.in_flight.remove(0);
                    let input = h.deliver(t);
                    task.handle_input(h.now, input);
                } else {
                    panic!("stuck");
                }
            }
        }
    };
    assert_eq!(
        result.unwrap_err(),
        Error::Source("read error: disk gone".into())
    );
    assert!(h.server.uploads.is_empty(), "aborted");
    assert!(!task.wants_part());
}

#[test]
fn checkpoint_json_round_trip_through_the_task() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(15)) else {
        panic!()
    };
    let cp = task.checkpoint().unwrap();
    assert_eq!(cp.version, CHECKPOINT_VERSION);
    assert_eq!(cp.source, fingerprint());
    assert_eq!(
        (
            cp.bucket.as_str(),
            cp.key.as_str(),
            cp.part_size,
            cp.total_len
        ),
        (BUCKET, KEY, MIB, LEN)
    );
    assert!(cp
        .parts
        .iter()
        .all(|p| p.crc64 == Some(digest((p.number as u64 - 1) * MIB, p.len).crc64)));
    assert_eq!(cp.validate().unwrap().part_count(), 20);
    let json = serde_json::to_string(&cp).unwrap();
    assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);
}

#[test]
fn pause_during_a_control_backoff_does_not_spin() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("InitiateMultipartUpload", 1) => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(2)) else {
        panic!()
    }; // Initiate sent and answered 503
    let until = loop {
        match task.poll_output(h.now) {
            Output::Event(_) => {}
            Output::Wait { until } => break until.expect("a retry timer"),
            other => panic!("{other:?}"),
        }
    };
    task.pause();
    assert_eq!(task.poll_output(h.now).unwrap_event(), Event::Paused);
    h.now = h
        .now
        .advance(until - h.now.instant + Duration::from_secs(1));
    assert!(matches!(
        task.poll_output(h.now),
        Output::Wait { until: None }
    ));
    task.resume_sending();
    let Output::Transmit(t) = task.poll_output(h.now) else {
        panic!()
    };
    assert_eq!((t.operation, t.attempt), ("InitiateMultipartUpload", 2));
    h.in_flight.push(t);
    done(h.run(&mut task, None)).unwrap();
    h.assert_object_is_source();
}

trait UnwrapEvent {
    fn unwrap_event(self) -> Event;
}

impl<T: std::fmt::Debug> UnwrapEvent for Output<T> {
    fn unwrap_event(self) -> Event {
        match self {
            Output::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Two runs on one checkpoint (issue 9): `kill -9` of `cargo run` leaves the upload running, orphaned, and a
// rerun with the same checkpoint must not race it.

/// Drives a task against the fake server where every answer takes `stall` of virtual time, as
/// `cos-testkit serve --faults stall=300ms:1.0` does. Requests stay in flight across calls, so that a run
/// can be interrupted (another run looks at the checkpoint meanwhile) and continued.
struct Stalled {
    stall: Duration,
    in_flight: Vec<(Instant, Transmit)>,
    /// Every checkpoint the task asked to store, as the driver would have written it.
    stored: Vec<Checkpoint>,
    parts_sent: Vec<u32>,
    completes: usize,
    /// Parts in flight when each Complete was sent.
    parts_in_flight_at_complete: Vec<usize>,
}

impl Stalled {
    fn new(stall: Duration) -> Self {
        Stalled {
            stall,
            in_flight: Vec::new(),
            stored: Vec::new(),
            parts_sent: Vec::new(),
            completes: 0,
            parts_in_flight_at_complete: Vec::new(),
        }
    }

    /// Runs `task` until it ends (`Some`) or the virtual clock reaches `deadline` (`None`).
    fn run(
        &mut self,
        h: &mut Harness,
        task: &mut MultipartUpload,
        deadline: Option<Instant>,
    ) -> Option<Result<UploadOutcome, Error>> {
        loop {
            match task.poll_output(h.now) {
                Output::Transmit(t) => {
                    if t.operation == "UploadPart" {
                        self.parts_sent.push(part_number(&t).unwrap());
                    }
                    if t.operation == "CompleteMultipartUpload" {
                        self.completes += 1;
                        let parts = self
                            .in_flight
                            .iter()
                            .filter(|(_, t)| t.operation == "UploadPart")
                            .count();
                        self.parts_in_flight_at_complete.push(parts);
                    }
                    self.in_flight.push((h.now.instant + self.stall, t));
                }
                Output::Io(io) => {
                    if let IoRequest::StoreCheckpoint(bytes) = io.request {
                        self.stored.push(serde_json::from_slice(&bytes).unwrap());
                    }
                    task.handle_input(
                        h.now,
                        Input::Io {
                            id: io.id,
                            result: IoResult::Done,
                        },
                    );
                }
                Output::Event(_) => {}
                Output::Done(r) => return Some(r),
                Output::Wait { until } => {
                    let due = self.in_flight.iter().map(|(at, _)| *at).min();
                    let next = [due, until].into_iter().flatten().min()?;
                    if deadline.is_some_and(|d| next > d) {
                        h.now = h.now.advance(deadline.unwrap() - h.now.instant);
                        return None;
                    }
                    if next > h.now.instant {
                        h.now = h.now.advance(next - h.now.instant);
                    }
                    let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                        .into_iter()
                        .partition(|(at, _)| *at <= h.now.instant);
                    self.in_flight = later;
                    for (_, t) in ready {
                        let input = h.deliver(t);
                        task.handle_input(h.now, input);
                    }
                }
            }
        }
    }

    fn last_stored(&self) -> Option<Checkpoint> {
        self.stored.last().cloned()
    }
}

fn leased_task(owner: &str, max_in_flight: usize) -> MultipartUpload {
    MultipartUpload::new(
        config(),
        KEY,
        LEN,
        UploadConfig {
            max_in_flight,
            ..UploadConfig::default()
        },
    )
    .unwrap()
    .source_fingerprint(fingerprint())
    .unwrap()
    .lease_owner(owner)
}

#[test]
fn the_lease_is_renewed_while_answers_stall_longer_than_its_lifetime() {
    let mut h = Harness::new();
    // Each answer takes longer than a lease lives: only the timer keeps it alive.
    let mut run = Stalled::new(LEASE_TTL + Duration::from_secs(2));
    let mut task = leased_task("pid 1 run a", 2);
    run.run(&mut h, &mut task, None).unwrap().unwrap();
    h.assert_object_is_source();
    let renewals: Vec<u64> = run
        .stored
        .iter()
        .map(|c| {
            c.lease
                .as_ref()
                .expect("a leased checkpoint")
                .renewed_unix_ms
        })
        .collect();
    assert!(renewals.len() > 20, "{renewals:?}");
    assert!(run
        .stored
        .iter()
        .all(|c| c.lease.as_ref().unwrap().owner == "pid 1 run a"));
    for w in renewals.windows(2) {
        assert!(w[1] >= w[0], "renewals go forward: {renewals:?}");
        assert!(
            w[1] - w[0] <= LEASE_RENEW.as_millis() as u64,
            "a gap of {} ms between renewals: {renewals:?}",
            w[1] - w[0]
        );
    }
    // Without an owner: no lease and no renewals beyond the parts' own checkpoints.
    let mut h = Harness::new();
    let mut run = Stalled::new(LEASE_TTL + Duration::from_secs(2));
    let mut task = new_task().persist_checkpoint();
    run.run(&mut h, &mut task, None).unwrap().unwrap();
    assert!(run.stored.iter().all(|c| c.lease.is_none()));
    // At most Initiate and one per part (stores of changes seen in one poll are coalesced).
    assert!(
        (1..=1 + 20).contains(&run.stored.len()),
        "{}",
        run.stored.len()
    );
    assert_eq!(run.stored.last().unwrap().parts.len(), 20);
}

#[test]
fn a_rerun_never_races_a_live_upload_of_the_same_checkpoint() {
    let stall = Duration::from_millis(300);
    let mut h = Harness::new();
    let mut a = Stalled::new(stall);
    // One part at a time, so that A is still running when B has waited out its lease.
    let mut task_a = leased_task("pid 1 run a", 1);
    // Run A for a while: a few parts are done and stored.
    let t = h.now.instant + Duration::from_secs(1);
    assert!(a.run(&mut h, &mut task_a, Some(t)).is_none());
    let cp = a.last_stored().expect("A stored a checkpoint");
    assert!(
        !cp.parts.is_empty() && cp.parts.len() < 20,
        "{}",
        cp.parts.len()
    );
    // The rerun B finds A's live lease: it must look again later.
    let mut check = LeaseCheck::new("pid 2 run b");
    let LeaseDecision::ReloadAt(at) = check.check(Some(&cp), h.now) else {
        panic!("a fresh lease of another owner is waited out")
    };
    assert!(at > h.now.instant && at <= h.now.instant + LEASE_TTL);
    // A keeps running (it is alive, merely orphaned) and renews the lease meanwhile.
    assert!(a.run(&mut h, &mut task_a, Some(at)).is_none());
    let reread = a.last_stored().unwrap();
    let LeaseDecision::Busy(e) = check.check(Some(&reread), h.now) else {
        panic!("A renewed its lease: B must not continue its upload")
    };
    assert!(
        e.to_string().contains("pid 1 run a") && e.to_string().contains("still running"),
        "{e}"
    );
    // B sent nothing; A finishes alone: each part once, one Complete, nothing in flight when it is sent.
    let out = a.run(&mut h, &mut task_a, None).unwrap().unwrap();
    assert_eq!(out.crc64, Some(source_crc()));
    h.assert_object_is_source();
    let mut sent = a.parts_sent.clone();
    sent.sort();
    assert_eq!(sent, (1..=20).collect::<Vec<_>>(), "each part sent once");
    assert_eq!(
        (a.completes, a.parts_in_flight_at_complete.clone()),
        (1, vec![0])
    );
}

#[test]
fn a_rerun_takes_over_once_the_killed_upload_stops_renewing() {
    let stall = Duration::from_millis(300);
    let mut h = Harness::new();
    let mut a = Stalled::new(stall);
    let mut task_a = leased_task("pid 1 run a", 2);
    let t = h.now.instant + Duration::from_secs(2);
    assert!(a.run(&mut h, &mut task_a, Some(t)).is_none());
    // kill -9: A's requests in flight reach the server or are lost; it never renews again.
    drop(task_a);
    h.in_flight = a.in_flight.drain(..).map(|(_, t)| t).collect();
    h.crash();
    let cp = a.last_stored().unwrap();
    let done_parts: Vec<u32> = cp.parts.iter().map(|p| p.number).collect();
    let mut check = LeaseCheck::new("pid 2 run b");
    let LeaseDecision::ReloadAt(at) = check.check(Some(&cp), h.now) else {
        panic!("a fresh lease is waited out")
    };
    h.now = h.now.advance(at - h.now.instant);
    // The checkpoint, read again, is unchanged: A is dead.
    assert!(matches!(
        check.check(Some(&cp), h.now),
        LeaseDecision::Proceed
    ));
    let mut b = Stalled::new(stall);
    let mut task_b = MultipartUpload::resume(
        config(),
        cp,
        fingerprint(),
        UploadConfig {
            max_in_flight: 2,
            ..UploadConfig::default()
        },
    )
    .unwrap()
    .lease_owner("pid 2 run b");
    let out = b.run(&mut h, &mut task_b, None).unwrap().unwrap();
    assert_eq!(out.crc64, Some(source_crc()));
    h.assert_object_is_source();
    let mut sent = b.parts_sent.clone();
    sent.sort();
    let missing: Vec<u32> = (1..=20).filter(|n| !done_parts.contains(n)).collect();
    assert_eq!(sent, missing, "each missing part sent once");
    assert_eq!(
        (b.completes, b.parts_in_flight_at_complete.clone()),
        (1, vec![0])
    );
    assert!(b
        .stored
        .iter()
        .all(|c| c.lease.as_ref().unwrap().owner == "pid 2 run b"));
}

#[test]
fn lease_checks_proceed_without_a_live_foreign_lease() {
    let now = start();
    let mut cp = Checkpoint::new(BUCKET, KEY, "up", MIB, fingerprint());
    let mut check = LeaseCheck::new("me");
    assert!(matches!(check.check(None, now), LeaseDecision::Proceed));
    assert!(matches!(
        check.check(Some(&cp), now),
        LeaseDecision::Proceed
    ));
    let now_ms = 1_700_000_000_000;
    cp.lease = Some(Lease {
        owner: "me".into(),
        renewed_unix_ms: now_ms,
    });
    assert!(
        matches!(check.check(Some(&cp), now), LeaseDecision::Proceed),
        "our own lease"
    );
    cp.lease = Some(Lease {
        owner: "other".into(),
        renewed_unix_ms: now_ms - LEASE_TTL.as_millis() as u64,
    });
    assert!(
        matches!(check.check(Some(&cp), now), LeaseDecision::Proceed),
        "an expired lease"
    );
    // A lease renewed "in the future" (another machine's clock) is waited out in full.
    cp.lease = Some(Lease {
        owner: "other".into(),
        renewed_unix_ms: now_ms + 60_000,
    });
    let LeaseDecision::ReloadAt(at) = check.check(Some(&cp), now) else {
        panic!()
    };
    assert_eq!(at, now.instant + LEASE_TTL);
    // The other upload ended and removed its checkpoint while we waited.
    assert!(matches!(check.check(None, now), LeaseDecision::Proceed));
    // Old checkpoints without the field still parse.
    let mut json: serde_json::Value = serde_json::to_value(&cp).unwrap();
    json.as_object_mut().unwrap().remove("lease");
    let back: Checkpoint = serde_json::from_value(json).unwrap();
    assert_eq!(back.lease, None);
}

// ---------------------------------------------------------------------------------------------------------
// Hostile pagination: a listing whose next marker does not advance must not loop forever.

/// Answers every request of `task` with `answer(n, request)` until it ends; returns the result and the
/// number of requests sent.
fn answer_all(
    task: &mut MultipartUpload,
    mut answer: impl FnMut(usize, &Transmit) -> http::Response<Bytes>,
) -> (Result<UploadOutcome, Error>, usize) {
    let mut now = start();
    let mut sent = 0;
    loop {
        match task.poll_output(now) {
            Output::Io(io) => panic!("unexpected {io:?}"),
            Output::Transmit(t) => {
                sent += 1;
                assert!(sent < 20_000, "the task keeps listing");
                let response = answer(sent, &t);
                task.handle_input(
                    now,
                    Input::Response {
                        id: t.id,
                        response,
                        sent: None,
                    },
                );
            }
            Output::Event(_) => {}
            Output::Wait { until: Some(t) } => now = now.advance(t - now.instant),
            Output::Wait { until: None } => panic!("stuck"),
            Output::Done(r) => return (r, sent),
        }
    }
}

fn list_parts_page(marker: u32, next: u32) -> http::Response<Bytes> {
    xml(
        200,
        format!(
            "<ListPartsResult><Bucket>{BUCKET}</Bucket><Key>{KEY}</Key><UploadId>up</UploadId>\
             <PartNumberMarker>{marker}</PartNumberMarker><IsTruncated>true</IsTruncated>\
             <NextPartNumberMarker>{next}</NextPartNumberMarker></ListPartsResult>"
        ),
    )
}

fn resumed_task() -> MultipartUpload {
    let cp = Checkpoint::new(BUCKET, KEY, "up", MIB, fingerprint());
    MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap()
}

#[test]
fn list_parts_that_repeat_or_go_back_fail_instead_of_looping() {
    for next in [|_| 0, |m| m, |m: u32| m.saturating_sub(1)] {
        let mut task = resumed_task();
        let mut marker = 0;
        let (r, sent) = answer_all(&mut task, |n, t| {
            assert_eq!(t.operation, "ListParts");
            // The first page advances to 5; the second does not advance.
            let reply = if n == 1 { 5 } else { next(marker) };
            let page = list_parts_page(marker, reply);
            marker = reply;
            page
        });
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::UnexpectedResponse(_)) && e.to_string().contains("does not advance"),
            "{e}"
        );
        assert_eq!(sent, 2);
    }
    // A marker beyond the last possible part number cannot be followed either.
    let mut task = resumed_task();
    let (r, sent) = answer_all(&mut task, |_, _| list_parts_page(0, MAX_PARTS + 1));
    assert!(matches!(r, Err(Error::UnexpectedResponse(_))));
    assert_eq!(sent, 1);
}

/// List Parts answers naming part numbers COS cannot have (0, above 10,000) are not kept, so a hostile
/// listing cannot grow the task's memory past MAX_PARTS entries.
#[test]
fn listed_part_numbers_outside_1_to_10000_are_not_kept() {
    let mut task = resumed_task();
    let parts: String = [0u32, 1, 2, MAX_PARTS, MAX_PARTS + 1, u32::MAX]
        .iter()
        .map(|n| {
            format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>\"e{n}\"</ETag><Size>1</Size>\
                 <LastModified>x</LastModified></Part>"
            )
        })
        .collect();
    let page = xml(
        200,
        format!(
            "<ListPartsResult><Bucket>{BUCKET}</Bucket><Key>{KEY}</Key><UploadId>up</UploadId>\
             <IsTruncated>true</IsTruncated><NextPartNumberMarker>9999</NextPartNumberMarker>\
             {parts}</ListPartsResult>"
        ),
    );
    let mut now = start();
    loop {
        match task.poll_output(now) {
            Output::Transmit(t) => {
                assert_eq!(t.operation, "ListParts");
                task.handle_input(
                    now,
                    Input::Response {
                        id: t.id,
                        response: page.clone(),
                        sent: None,
                    },
                );
                break;
            }
            Output::Wait { until: Some(t) } => now = now.advance(t - now.instant),
            Output::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // (The page is truncated, so the listing goes on and the kept parts are still there.)
    assert_eq!(task.listed_numbers(), [1, 2, MAX_PARTS]);
}

/// A search that finds the newest upload gone (List Parts: `NoSuchUpload`, a late Complete landed) and the
/// other one empty continues the one that exists, never the vanished one (simulation seed 23913).
#[test]
fn a_search_never_falls_back_to_an_upload_found_gone() {
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let mut part_uploads = Vec::new();
    let (r, _) = answer_all(&mut task, |_, t| {
        let query = t.request.uri().query().unwrap_or_default().to_string();
        match t.operation {
            "ListMultipartUploads" => xml(
                200,
                format!(
                    "<ListMultipartUploadsResult><Bucket>{BUCKET}</Bucket><IsTruncated>false</IsTruncated>\
                     <Upload><Key>{KEY}</Key><UploadId>gone</UploadId><Initiated>2026-01-01T00:00:02.000Z</Initiated></Upload>\
                     <Upload><Key>{KEY}</Key><UploadId>empty</UploadId><Initiated>2026-01-01T00:00:01.000Z</Initiated></Upload>\
                     </ListMultipartUploadsResult>"
                ),
            ),
            "ListParts" if query.contains("uploadId=gone") => xml(
                404,
                "<Error><Code>NoSuchUpload</Code><Message>gone</Message><RequestId>r</RequestId></Error>"
                    .into(),
            ),
            "ListParts" => xml(
                200,
                format!(
                    "<ListPartsResult><Bucket>{BUCKET}</Bucket><Key>{KEY}</Key><UploadId>empty</UploadId>\
                     <IsTruncated>false</IsTruncated></ListPartsResult>"
                ),
            ),
            "UploadPart" => {
                part_uploads.push(query);
                xml(
                    400,
                    "<Error><Code>InvalidArgument</Code><Message>stop</Message><RequestId>r</RequestId></Error>"
                        .into(),
                )
            }
            op => panic!("unexpected {op}"),
        }
    });
    assert!(r.is_err());
    assert!(!part_uploads.is_empty());
    assert!(
        part_uploads.iter().all(|q| q.contains("uploadId=empty")),
        "{part_uploads:?}"
    );
}

fn uploads_page(next_key: &str, next_id: &str) -> http::Response<Bytes> {
    xml(
        200,
        format!(
            "<ListMultipartUploadsResult><Bucket>{BUCKET}</Bucket><Prefix>{KEY}</Prefix>\
             <IsTruncated>true</IsTruncated><NextKeyMarker>{next_key}</NextKeyMarker>\
             <NextUploadIdMarker>{next_id}</NextUploadIdMarker></ListMultipartUploadsResult>"
        ),
    )
}

#[test]
fn list_multipart_uploads_that_do_not_advance_fail_instead_of_looping() {
    let find = || MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    // The same markers twice.
    let (r, sent) = answer_all(&mut find(), |_, _| uploads_page(KEY, "u-1"));
    let e = r.unwrap_err();
    assert!(
        matches!(e, Error::UnexpectedResponse(_)) && e.to_string().contains("does not advance"),
        "{e}"
    );
    assert_eq!(sent, 2);
    // A key marker that goes back.
    let (r, sent) = answer_all(&mut find(), |n, _| {
        uploads_page(if n == 1 { KEY } else { "a" }, &format!("u-{n}"))
    });
    assert!(matches!(r, Err(Error::UnexpectedResponse(_))));
    assert_eq!(sent, 2);
    // Markers that change forever (new upload ids of the same key): capped.
    let (r, sent) = answer_all(&mut find(), |n, _| uploads_page(KEY, &format!("u-{n}")));
    assert!(matches!(r, Err(Error::UnexpectedResponse(_))));
    assert_eq!(sent, MAX_LIST_PAGES as usize);
    // A key marker past the key ends the search (no upload of the key can follow): a new upload starts.
    let mut ops = Vec::new();
    let (r, _) = answer_all(&mut find(), |n, t| {
        ops.push(t.operation);
        match t.operation {
            "ListMultipartUploads" => uploads_page(&format!("{KEY}~"), &format!("u-{n}")),
            "InitiateMultipartUpload" => xml(
                200,
                format!(
                    "<InitiateMultipartUploadResult><Bucket>{BUCKET}</Bucket><Key>{KEY}</Key>\
                 <UploadId>new</UploadId></InitiateMultipartUploadResult>"
                ),
            ),
            _ => cos_error(400, "InvalidArgument"),
        }
    });
    assert!(r.is_err(), "the parts are refused by this fake");
    assert_eq!(
        ops[..3],
        [
            "ListMultipartUploads",
            "InitiateMultipartUpload",
            "UploadPart"
        ]
    );
}

// ---------------------------------------------------------------------------------------------------------
// Found by the simulator (cos-testkit/src/sim): an earlier run's Complete that lands late.

/// Steps `task` one output at a time until it sends an `op` request, and takes that request out of the
/// harness's flight (the caller decides when, or whether, it reaches the server).
fn run_until_sent(h: &mut Harness, task: &mut MultipartUpload, op: &str) -> Transmit {
    loop {
        if let Some(i) = h.in_flight.iter().position(|t| t.operation == op) {
            return h.in_flight.remove(i);
        }
        if let Stop::Done(r) = h.run(task, Some(h.steps + 1)) {
            panic!("ended before sending {op}: {r:?}");
        }
    }
}

fn progress_events(h: &Harness) -> Vec<(u64, Option<u64>)> {
    h.events()
        .iter()
        .filter_map(|e| match e {
            Event::Progress { loaded, total } => Some((*loaded, *total)),
            _ => None,
        })
        .collect()
}

/// Seeds 2007, 7987 and 9241 of the simulation: killed after sending Complete, whose answer is slow; the
/// resumed run finds the upload (List Parts), then the killed run's Complete lands, and the resumed run's
/// own *first* Complete meets NoSuchUpload. The object is there and whole: the run confirms it with HEAD.
#[test]
fn a_resumed_run_confirms_with_head_when_the_killed_runs_complete_lands_first() {
    let mut h = Harness::new();
    let mut task = new_task();
    let killed_complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    drop(task); // kill -9: the Complete is still in the network
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    assert_eq!(cp.parts.len(), 20);
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let mine = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    assert!(
        !h.sends("ListParts").is_empty(),
        "the upload was still there"
    );
    // The killed run's Complete lands first; ours then meets NoSuchUpload.
    let _ = h.deliver(killed_complete);
    let input = h.deliver(mine);
    task.handle_input(h.now, input);
    let out = done(h.run(&mut task, None)).expect("the stored object is confirmed");
    assert!(out.confirmed_by_head);
    assert!(out.etag.ends_with("-20\""), "{}", out.etag);
    assert_eq!(out.crc64, Some(source_crc()));
    assert_eq!(h.sends("CompleteMultipartUpload").len(), 1);
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert!(h.sends("UploadPart").is_empty());
    assert_eq!(progress_events(&h).last(), Some(&(LEN, Some(LEN))));
    h.assert_object_is_source();
}

/// The same, but someone else's object of another size replaced it meanwhile: HEAD refutes it and the run
/// fails with the Complete's NoSuchUpload.
#[test]
fn a_resumed_run_does_not_confirm_another_object() {
    let mut h = Harness::new();
    let mut task = new_task();
    let killed_complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    drop(task);
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let mine = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    let _ = h.deliver(killed_complete);
    h.server.objects.get_mut(KEY).unwrap().crc64 ^= 1;
    let input = h.deliver(mine);
    task.handle_input(h.now, input);
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
    assert_eq!(h.sends("HeadObject").len(), 1);
}

/// Simulation seed 28849: the resumed run lists the parts, then the upload is aborted (a killed run's late
/// cancel) before the run's first Complete, which meets NoSuchUpload; HEAD finds no object. The upload was
/// not completed, so the run starts over and uploads the file.
#[test]
fn a_resumed_run_whose_upload_was_aborted_before_its_complete_starts_over() {
    let mut h = Harness::new();
    let mut task = new_task();
    let _ = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    drop(task); // kill -9 before the Complete reached the server
    h.in_flight.clear();
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    let old = cp.upload_id.clone();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let mine = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    h.server.uploads.remove(&old);
    let input = h.deliver(mine);
    task.handle_input(h.now, input);
    let out = done(h.run(&mut task, None)).expect("uploaded anew");
    assert_ne!(out.upload_id.as_deref(), Some(old.as_str()));
    assert!(!out.confirmed_by_head);
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 2);
    h.assert_object_is_source();
}

/// Seed 115 of the simulation: the killed run's Complete went through (its answer was lost with the
/// process); the resumed run finds the upload gone, confirms the object with HEAD and succeeds. Its
/// progress must still end at the total, although no part finished in this run.
#[test]
fn a_success_confirmed_by_head_ends_with_progress_at_the_total() {
    let mut h = Harness::new();
    let mut task = new_task();
    let killed_complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    drop(task);
    let _ = h.deliver(killed_complete); // applied; nobody hears the answer
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    assert_eq!(cp.parts.len(), 20, "every part claimed");
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert!(out.confirmed_by_head);
    assert_eq!(h.sends("ListParts").len(), 1);
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert!(h.sends("CompleteMultipartUpload").is_empty());
    assert_eq!(progress_events(&h), [(LEN, Some(LEN))]);
    h.assert_object_is_source();
}

/// A stream sent as one PUT ends with its progress at the total too.
#[test]
fn a_single_put_stream_ends_with_progress_at_the_total() {
    let mut h = Harness::new();
    let mut task = stream_task(3);
    run_stream(&mut h, &mut task, &[Bytes::from_static(b"hello")], 3).unwrap();
    assert_eq!(progress_events(&h).last(), Some(&(5, Some(5))));
}

// ---------------------------------------------------------------------------------------------------------
// Found by the simulator: find-unfinished mode leaving an upload behind.

/// Seed 5070 of the simulation: a lost Initiate answer left an empty upload beside the one that holds the
/// parts, both initiated in the same second. The search continues the one with the parts (the empty one,
/// listed later, used to win the tie: every part was sent again and the upload with the parts was left).
#[test]
fn find_unfinished_prefers_the_upload_that_holds_parts_on_a_tie() {
    let mut h = Harness::new();
    let with_parts = h.server.initiate(KEY);
    let plan = PartPlan::auto(LEN).unwrap();
    for n in 1..=5 {
        let r = plan.part(n).unwrap();
        h.server.put_part(
            &with_parts,
            n,
            source().slice(r.offset as usize..(r.offset + r.len) as usize),
        );
    }
    let empty = h.server.initiate(KEY);
    let second = h.server.uploads[&with_parts].initiated.clone();
    h.server.uploads.get_mut(&empty).unwrap().initiated = second;
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(out.upload_id.as_deref(), Some(with_parts.as_str()));
    let mut sent: Vec<u32> = h.sends("UploadPart").iter().map(|s| s.0.unwrap()).collect();
    sent.sort();
    assert_eq!(
        sent,
        (6..=20).collect::<Vec<u32>>(),
        "only the missing parts"
    );
    assert_eq!(
        h.sends("ListParts").len(),
        1 + 1,
        "the empty one, then the one with parts"
    );
    assert!(h.sends("InitiateMultipartUpload").is_empty());
    assert!(!h.server.uploads.contains_key(&with_parts), "completed");
    assert!(
        h.server.uploads.contains_key(&empty),
        "someone else's upload is left alone"
    );
    h.assert_object_is_source();

    // With no upload holding parts, the newest is continued, as before.
    let mut h = Harness::new();
    let older = h.server.initiate(KEY);
    let newer = h.server.initiate(KEY);
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(out.upload_id.as_deref(), Some(newer.as_str()));
    assert!(h.server.uploads.contains_key(&older));
    assert_eq!(h.sends("UploadPart").len(), 20);
}

/// Seed 4919 of the simulation: a cancel while the search runs used to end at once, leaving the earlier
/// run's upload. The search now finishes and the upload it would have continued is aborted.
#[test]
fn a_cancel_during_the_search_aborts_the_upload_it_finds() {
    for cancel_after in 1..=2 {
        let mut h = Harness::new();
        let earlier = h.server.initiate(KEY);
        h.server
            .put_part(&earlier, 1, source().slice(0..MIB as usize));
        let mut task =
            MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
        // Cancel with List Multipart Uploads (1) or List Parts (2) in flight.
        let Stop::Step = h.run(&mut task, Some(2 * cancel_after - 1)) else {
            panic!()
        };
        task.cancel();
        assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
        assert!(h.server.uploads.is_empty(), "the found upload is aborted");
        assert!(h.sends("UploadPart").is_empty());
        assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
    }
    // Nothing found: the cancel ends the task without a new upload.
    let mut h = Harness::new();
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let Stop::Step = h.run(&mut task, Some(1)) else {
        panic!()
    };
    task.pause();
    task.cancel();
    assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
    assert!(h.sends("InitiateMultipartUpload").is_empty());
    assert!(h.server.uploads.is_empty());
}

// Recovery paths and input checks (issue 18), in their own file.
#[path = "tests_recovery.rs"]
mod recovery;

#[test]
fn no_checkpoint_is_stored_before_the_upload_has_an_id() {
    let mut h = Harness::new();
    // Every answer, the Initiate's included, takes longer than a lease lives.
    let mut run = Stalled::new(LEASE_TTL + Duration::from_secs(2));
    let mut task = leased_task("pid 1 run a", 2);
    run.run(&mut h, &mut task, None).unwrap().unwrap();
    assert!(!run.stored.is_empty());
    assert!(run.stored.iter().all(|c| !c.upload_id.is_empty()));
    h.assert_object_is_source();
}
