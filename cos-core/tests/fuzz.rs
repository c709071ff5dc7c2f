//! A stable, coverage-less fuzzing harness: every parser of untrusted input and the tasks fed arbitrary
//! answer sequences, over inputs mutated from the corpus in `cos-core/tests/corpus/` (and the recorded
//! fixtures in `cos-testkit/fixtures/`), from a fixed seed.
//!
//! Properties: nothing panics; every task ends within a bounded number of steps; every error's `Display`
//! is short and has no control characters.
//!
//! `cargo test -p cos-core --test fuzz` runs a short bounded round (the CI run). For a longer one:
//! `COS_FUZZ_ITERS=200000 COS_FUZZ_SEED=$RANDOM cargo test --release -p cos-core --test fuzz -- --nocapture`
//! (the seed and iteration count are printed; a failure prints the input that caused it).

use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use cos_core::checksum::BodyDigest;
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::ops::{self, Operation};
use cos_core::task::{Input, IoResult, Now, OneShot, Output, Task};
use cos_core::{Config, Credentials, Error};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn iterations() -> usize {
    std::env::var("COS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn rng(target: &str) -> Rng {
    let seed: u64 = std::env::var("COS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_5f22);
    let mixed = target.bytes().fold(seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    println!("fuzz {target}: seed {seed}, {} iterations", iterations());
    Rng(mixed | 1)
}

/// The files of a corpus directory (relative to the crate), each one input; `.txt` files give one input
/// per line.
fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let bytes = std::fs::read(&p).unwrap();
        if p.extension().is_some_and(|e| e == "txt") {
            out.extend(
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        } else {
            out.push(bytes);
        }
    }
    assert!(!out.is_empty(), "empty corpus {dir}");
    out
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x1b;",
    b"<![CDATA[",
    b"]]>",
    b"<!DOCTYPE a [<!ENTITY e \"x\">]>",
    b"&e;",
    b"\"",
    b"'",
    b"=",
    b"\x00",
    b"\x1b[2J",
    b"\r\n",
    b"\xff\xfe",
    b"\xe2\x80\xae",
    b"-1",
    b"18446744073709551616",
    b"9223372036854775808",
    b"99999999999999999999",
    b"0",
    b"1",
    b"10001",
    b"<Part>",
    b"</Part>",
    b"<Upload>",
    b"<IsTruncated>",
    b"true",
    b"false",
    b"<Error>",
    b"<Code>",
    b"GMT",
    b":",
    b",",
    b"%",
    b"%zz",
    b"$",
    b"${filename}",
    b"[",
    b"]",
    b"{",
    b"}",
    b"--",
    b"--XY",
    b"boundary=",
    b"\\u0000",
    b"null",
];

/// Mutates `input`: 1..=8 edits among flips, token inserts, deletions, duplications, splices, cuts.
fn mutate(r: &mut Rng, input: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=r.below(8) {
        let pos = r.below(v.len() + 1);
        match r.below(8) {
            0 if !v.is_empty() => {
                let i = pos.min(v.len() - 1);
                v[i] ^= 1 << r.below(8);
            }
            1 | 2 => {
                let t = *r.pick(TOKENS);
                v.splice(pos..pos, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (pos + r.below(32)).min(v.len());
                v.drain(pos.min(end)..end);
            }
            4 if !v.is_empty() => {
                let end = (pos + r.below(64)).min(v.len());
                let piece = v[pos.min(end)..end].to_vec();
                let at = r.below(v.len() + 1);
                for _ in 0..=r.below(4) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            5 => {
                let other = r.pick(pool);
                let a = r.below(other.len() + 1);
                let b = (a + r.below(128)).min(other.len());
                v.splice(pos..pos, other[a..b].iter().copied());
            }
            6 => v.truncate(pos),
            _ => v.insert(pos, r.next() as u8),
        }
        if v.len() > 256 * 1024 {
            v.truncate(256 * 1024);
        }
    }
    v
}

/// Inputs for one target: mutated corpus entries, sometimes the entries themselves or random bytes.
fn inputs<'a>(target: &str, pool: &'a [Vec<u8>]) -> impl Iterator<Item = Vec<u8>> + 'a {
    let mut r = rng(target);
    (0..iterations()).map(move |i| match i {
        i if i < pool.len() => pool[i].clone(),
        _ if r.below(20) == 0 => (0..r.below(200)).map(|_| r.next() as u8).collect(),
        _ => {
            let seed = r.pick(pool).clone();
            mutate(&mut r, &seed, pool)
        }
    })
}

/// Runs one input; a panic is reported with the input, which is also written to
/// `target/fuzz-failures/<target>` for reproduction.
fn guard(target: &str, input: &[u8], f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(target), input);
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "{target}: panic {msg:?} on input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// Checks what users see of an error.
fn check_error(e: &Error, input: &[u8]) {
    let shown = e.to_string();
    assert!(
        shown.len() <= 4096,
        "{} chars for input {:?}",
        shown.len(),
        String::from_utf8_lossy(input)
    );
    assert!(
        !shown.chars().any(char::is_control),
        "control characters in {shown:?} for input {:?}",
        String::from_utf8_lossy(input)
    );
}

fn check<T>(r: Result<T, Error>, input: &[u8]) {
    if let Err(e) = r {
        check_error(&e, input);
    }
}

const STATUSES: &[u16] = &[
    200, 200, 200, 201, 204, 206, 301, 307, 400, 403, 404, 409, 412, 500, 503,
];

/// Header values a hostile server may send (bytes that HTTP parsers let through: no C0 controls).
fn header_pool() -> Vec<(&'static str, Vec<u8>)> {
    let v: Vec<(&'static str, String)> = vec![
        ("etag", "\"5d41402abc4b2a76b9719d911017c592\"".into()),
        ("etag", "\"b6d81b360a5672d80c27430f39153e2c\"".into()),
        ("etag", "\"\u{202e}[2J\"".into()),
        ("etag", "\"zz\"".into()),
        ("x-cos-hash-crc64ecma", "0".into()),
        ("x-cos-hash-crc64ecma", "18446744073709551616".into()),
        ("x-cos-hash-crc64ecma", "-1".into()),
        ("x-cos-request-id", "NWU3YjBh\u{9b}2J".into()),
        (
            "date",
            "Thu, 01 Jan 1970 00:00:9223372036854776808 GMT".into(),
        ),
        ("date", "Tue, 14 Nov 2023 23:13:20 GMT".into()),
        ("content-range", "bytes 0-9/100".into()),
        ("content-range", "bytes 9-0/x".into()),
        ("content-length", "18446744073709551615".into()),
        ("x-cos-next-append-position", "18446744073709551615".into()),
        ("x-cos-next-append-position", "nan".into()),
        (
            "location",
            "http://169.254.169.254/?bucket=b&key=k&etag=%zz".into(),
        ),
        ("x-cos-object-type", "appendable".into()),
        ("last-modified", "Mon, 01 Jan 1900 00:00:00 GMT".into()),
    ];
    let mut out: Vec<(&'static str, Vec<u8>)> =
        v.into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
    out.push(("etag", b"\"\xff\xfe\x80\"".to_vec()));
    out.push(("x-cos-hash-crc64ecma", b"\xff".to_vec()));
    out
}

/// A response with a random status, a few headers from the pool, and this body.
fn response(r: &mut Rng, body: Vec<u8>) -> http::Response<Bytes> {
    let pool = header_pool();
    let mut b = http::Response::builder().status(*r.pick(STATUSES));
    for _ in 0..r.below(5) {
        let (n, v) = r.pick(&pool);
        b = b.header(*n, http::HeaderValue::from_bytes(v).unwrap());
    }
    b.body(Bytes::from(body)).unwrap()
}

fn sent(r: &mut Rng) -> Option<cos_core::checksum::SentDigest> {
    match r.below(3) {
        0 => None,
        1 => Some(BodyDigest::of(b"hello")),
        _ => Some(BodyDigest::of(&[0u8; 1024])),
    }
}

#[test]
fn fuzz_dates() {
    let pool = corpus("tests/corpus/date");
    let local = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for input in inputs("dates", &pool) {
        let s = String::from_utf8_lossy(&input);
        if let Some(secs) = cos_core::date::parse_http_date(&s) {
            let again = cos_core::date::format_http_date(secs);
            assert_eq!(cos_core::date::parse_http_date(&again), Some(secs), "{s}");
        }
        let _ = cos_core::date::parse_iso8601(&s);
        if let Some(off) = cos_core::date::skew_offset(Some(&s), local) {
            assert!(off.abs() <= cos_core::date::MAX_CLOCK_OFFSET_SECS);
            cos_core::date::corrected(local, off).unwrap();
        }
    }
}

#[test]
fn fuzz_response_parsers() {
    let pool = corpus("tests/corpus/xml");
    let mut r = rng("responses");
    for input in inputs("response-bodies", &pool) {
        let resp = response(&mut r, input.clone());
        let s = sent(&mut r);
        guard("response-bodies", &input, || parse_all(&resp, s, &input));
    }
}

fn parse_all(resp: &http::Response<Bytes>, s: Option<cos_core::checksum::SentDigest>, i: &[u8]) {
    let resp = resp.clone();
    {
        check(
            ops::PutObject::new("k").parse_response(&resp, s.as_ref()),
            i,
        );
        check(
            ops::PutObject::new("k")
                .with_bytes("hello")
                .parse_response(&resp, s.as_ref()),
            i,
        );
        check(
            ops::AppendObject::new("k", 5)
                .with_bytes("hello")
                .previous_crc64(7)
                .parse_response(&resp, s.as_ref()),
            i,
        );
        check(
            ops::UploadPart::new("k", "u", 1).parse_response(&resp, s.as_ref()),
            i,
        );
        check(
            ops::InitiateMultipartUpload::new("k").parse_response(&resp, None),
            i,
        );
        check(
            ops::CompleteMultipartUpload::new("k", "u", Vec::new()).parse_response(&resp, None),
            i,
        );
        check(ops::ListParts::new("k", "u").parse_response(&resp, None), i);
        check(
            ops::ListMultipartUploads::new().parse_response(&resp, None),
            i,
        );
        check(ops::HeadObject::new("k").parse_response(&resp, None), i);
        check(ops::GetObject::new("k").parse_response(&resp, None), i);
        check(
            ops::AbortMultipartUpload::new("k", "u").parse_response(&resp, None),
            i,
        );
        check_error(&ops::error_from_response(&resp), i);
    }
}

#[test]
fn fuzz_checkpoint_loader() {
    use cos_core::upload::Checkpoint;
    let pool = corpus("tests/corpus/checkpoint");
    for input in inputs("checkpoint", &pool) {
        if let Ok(c) = serde_json::from_slice::<Checkpoint>(&input) {
            let _ = c.loaded();
            let _ = c.validate().map_err(|e| e.to_string());
            let _ = c.ensure_for("examplebucket-1250000000", "big.bin");
        }
    }
}

#[test]
fn fuzz_fixture_loader() {
    use cos_core::fixture::{Fixture, Player, RecordedRequest};
    let mut pool = corpus("../cos-testkit/fixtures");
    pool.retain(|f| f.len() < 8 * 1024);
    for input in inputs("fixture", &pool) {
        let Ok(f) = serde_json::from_slice::<Fixture>(&input) else {
            continue;
        };
        for e in &f.exchanges {
            let _ = e.response.to_response();
        }
        let mut player = Player::new(f);
        let req = http::Request::builder()
            .method("PUT")
            .uri("http://127.0.0.1/fixtures/a.txt")
            .body(())
            .unwrap();
        let _ = player.answer(&RecordedRequest::of(&req, b"hello"));
        let _ = player.unconsumed();
    }
}

fn config() -> Config {
    Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        Credentials::new("AKIDEXAMPLE", "secret"),
    )
    .unwrap()
}

/// Drives a task with random answers (responses from the mutated corpus, or transport failures) and
/// virtual time, until it ends; it must end within `max_steps`.
#[allow(clippy::disallowed_methods)] // the origin of virtual time
fn drive<T: Task>(task: &mut T, r: &mut Rng, pool: &[Vec<u8>], max_steps: usize) -> Option<String> {
    let mut now = Now {
        instant: Instant::now(),
        system: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };
    let mut in_flight = Vec::new();
    let mut trace = Vec::new();
    for _ in 0..max_steps {
        match task.poll_output(now) {
            Output::Transmit(t) => in_flight.push(t.id),
            // Local I/O fails: a task must cope (send a part again, go on without a checkpoint).
            Output::Io(io) => task.handle_input(
                now,
                Input::Io {
                    id: io.id,
                    result: IoResult::Failed("fuzz".into()),
                },
            ),
            Output::Event(_) => {}
            Output::Done(result) => {
                if let Err(e) = &result {
                    check_error(e, trace.join(" | ").as_bytes());
                }
                return None;
            }
            Output::Wait { until } => {
                if in_flight.is_empty() {
                    match until {
                        Some(t) => {
                            let d = t.saturating_duration_since(now.instant);
                            now = now.advance(d);
                        }
                        None => return Some("waits with nothing in flight".into()),
                    }
                    continue;
                }
                let id = in_flight.swap_remove(r.below(in_flight.len()));
                let input = if r.below(6) == 0 {
                    trace.push("failed".to_string());
                    Input::Failed {
                        id,
                        error: TransportError::new(TransportErrorKind::Reset, "reset"),
                    }
                } else {
                    let body = if r.below(3) == 0 {
                        Vec::new()
                    } else {
                        let seed = r.pick(pool).clone();
                        mutate(r, &seed, pool)
                    };
                    let resp = response(r, body);
                    trace.push(format!("{}", resp.status()));
                    Input::Response {
                        id,
                        response: resp,
                        sent: sent(r),
                    }
                };
                task.handle_input(now, input);
                now = now.advance(Duration::from_millis(r.below(50) as u64));
            }
        }
    }
    Some(format!(
        "no end after {max_steps} steps: {}",
        trace.join(" ")
    ))
}

#[test]
fn fuzz_tasks_with_arbitrary_answers() {
    let pool = corpus("tests/corpus/xml");
    let mut r = rng("tasks");
    let rounds = iterations() / 10;
    for _ in 0..rounds {
        let mut put = OneShot::new(ops::PutObject::new("k").with_bytes("hello"), config()).unwrap();
        if let Some(why) = drive(&mut put, &mut r, &pool, 200) {
            panic!("PutObject: {why}");
        }
        let mut complete = OneShot::new(
            ops::CompleteMultipartUpload::new(
                "k",
                "u",
                vec![ops::CompletedPart {
                    part_number: 1,
                    etag: "\"x\"".into(),
                }],
            ),
            config(),
        )
        .unwrap();
        if let Some(why) = drive(&mut complete, &mut r, &pool, 200) {
            panic!("Complete: {why}");
        }
        let mut upload = cos_core::upload::MultipartUpload::new(
            config(),
            "big.bin",
            3 << 20,
            cos_core::upload::UploadConfig {
                part_size: Some(1 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        if let Some(why) = drive(&mut upload, &mut r, &pool, 2000) {
            panic!("MultipartUpload: {why}");
        }
    }
}
