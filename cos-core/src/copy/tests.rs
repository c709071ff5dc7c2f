//! Virtual-time tests of [`MultipartCopy`]: a fake COS answers every request the task emits.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::*;
use crate::ops::CopySource;

const MIB: u64 = 1024 * 1024;
const SOURCE_ETAG: &str = "\"0123456789abcdef0123456789abcdef\"";

fn config() -> Config {
    let mut c = Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        Credentials::new("AKID", "KEY"),
    )
    .unwrap();
    c.retry.max_attempts = 2;
    c
}

#[allow(clippy::disallowed_methods)] // the origin of virtual time
fn start() -> Now {
    Now {
        instant: Instant::now(),
        system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Bytes> {
    let mut b = http::Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Bytes::from(body.to_string())).unwrap()
}

fn header<'a>(t: &'a Transmit, name: &str) -> Option<&'a str> {
    t.request.headers().get(name).map(|v| v.to_str().unwrap())
}

/// What the fake COS saw and how the copy ended.
struct Run {
    /// (operation, x-cos-copy-source-range, x-cos-copy-source-if-match) of every request, in order.
    sent: Vec<(&'static str, Option<String>, Option<String>)>,
    /// The most requests in flight at once.
    max_in_flight: usize,
    /// Every event the task reported, in order.
    events: Vec<Event>,
    result: Result<CopyOutcome, Error>,
}

/// Runs `task` against a fake COS with a `size`-byte source; `part` answers a part (by its range start).
fn run(
    mut task: MultipartCopy,
    size: u64,
    crc: &str,
    part: impl Fn(u64) -> http::Response<Bytes>,
) -> Run {
    let mut now = start();
    let mut sent = Vec::new();
    let mut max_in_flight = 0;
    let mut events = Vec::new();
    let size_s = size.to_string();
    loop {
        let mut batch = Vec::new();
        let result = loop {
            match task.poll_output(now) {
                Output::Transmit(t) => batch.push(t),
                Output::Event(e) => events.push(e),
                Output::Io(io) => panic!("unexpected {io:?}"),
                Output::Wait { until } => {
                    if batch.is_empty() {
                        now = now.advance(until.expect("waiting forever") - now.instant);
                    }
                    break None;
                }
                Output::Done(r) => break Some(r),
            }
        };
        if let Some(result) = result {
            return Run {
                sent,
                max_in_flight,
                events,
                result,
            };
        }
        max_in_flight = max_in_flight.max(batch.len());
        // Answer the newest first: order must not matter.
        for t in batch.into_iter().rev() {
            let range = header(&t, "x-cos-copy-source-range").map(str::to_string);
            sent.push((
                t.operation,
                range.clone(),
                header(&t, "x-cos-copy-source-if-match").map(str::to_string),
            ));
            let r = match t.operation {
                "HeadObject" => response(
                    200,
                    &[
                        ("content-length", &size_s),
                        ("etag", SOURCE_ETAG),
                        ("x-cos-hash-crc64ecma", crc),
                        ("content-type", "text/plain"),
                    ],
                    "",
                ),
                "PutObjectCopy" => response(
                    200,
                    &[("x-cos-hash-crc64ecma", crc)],
                    "<CopyObjectResult><ETag>\"single\"</ETag></CopyObjectResult>",
                ),
                "InitiateMultipartUpload" => response(
                    200,
                    &[],
                    "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>dst</Key>\
                     <UploadId>u1</UploadId></InitiateMultipartUploadResult>",
                ),
                "UploadPartCopy" => {
                    let first: u64 = range.unwrap()[6..]
                        .split('-')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    part(first)
                }
                "CompleteMultipartUpload" => response(
                    200,
                    &[("x-cos-hash-crc64ecma", crc)],
                    "<CompleteMultipartUploadResult><Location>l</Location><Bucket>b</Bucket>\
                     <Key>dst</Key><ETag>\"abc-3\"</ETag></CompleteMultipartUploadResult>",
                ),
                "AbortMultipartUpload" => response(204, &[], ""),
                other => panic!("unexpected {other}"),
            };
            task.handle_input(
                now,
                Input::Response {
                    id: t.id,
                    response: r,
                    sent: None,
                },
            );
        }
    }
}

fn part_ok(first: u64) -> http::Response<Bytes> {
    response(
        200,
        &[],
        &format!("<CopyPartResult><ETag>\"p{first}\"</ETag></CopyPartResult>"),
    )
}

fn options() -> CopyOptions {
    CopyOptions::default()
        .threshold(5 * MIB)
        .part_size(5 * MIB)
        .concurrency(2)
}

fn ops(run: &Run) -> Vec<&'static str> {
    run.sent.iter().map(|s| s.0).collect()
}

#[test]
fn a_large_source_is_copied_in_planned_ranges_in_parallel_with_if_match() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 12 * MIB, "77", part_ok);
    let out = run.result.as_ref().unwrap();
    assert_eq!(out.parts, 3);
    assert_eq!(out.size, 12 * MIB);
    assert_eq!(out.crc64, Some(77));
    assert_eq!(out.etag, "\"abc-3\"");
    assert_eq!(
        ops(&run),
        [
            "HeadObject",
            "InitiateMultipartUpload",
            "UploadPartCopy",
            "UploadPartCopy",
            "UploadPartCopy",
            "CompleteMultipartUpload"
        ]
    );
    let mut ranges: Vec<String> = run.sent.iter().filter_map(|s| s.1.clone()).collect();
    ranges.sort();
    assert_eq!(
        ranges,
        [
            "bytes=0-5242879",
            "bytes=10485760-12582911",
            "bytes=5242880-10485759"
        ]
    );
    for s in run.sent.iter().filter(|s| s.0 == "UploadPartCopy") {
        assert_eq!(s.2.as_deref(), Some(SOURCE_ETAG));
    }
    assert_eq!(run.max_in_flight, 2, "concurrency 2");
}

#[test]
fn concurrency_bounds_the_parts_in_flight() {
    let o = options().part_size(MIB).concurrency(4);
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &o).unwrap();
    let run = run(task, 12 * MIB, "77", part_ok);
    let ranges = run.sent.iter().filter(|s| s.0 == "UploadPartCopy").count();
    assert_eq!(ranges, 12);
    assert_eq!(run.max_in_flight, 4);
    assert_eq!(run.result.as_ref().unwrap().parts, 12);
}

#[test]
fn a_source_at_the_threshold_is_one_copy_object_with_if_match() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 5 * MIB, "77", part_ok);
    assert_eq!(ops(&run), ["HeadObject", "PutObjectCopy"]);
    assert_eq!(run.sent[1].2.as_deref(), Some(SOURCE_ETAG));
    let out = run.result.as_ref().unwrap();
    assert_eq!((out.parts, out.etag.as_str()), (0, "\"single\""));
}

#[test]
fn a_changed_source_fails_a_part_and_the_upload_is_aborted() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 12 * MIB, "77", |first| {
        if first == 5 * MIB {
            response(
                412,
                &[],
                "<Error><Code>PreconditionFailed</Code><Message>changed</Message></Error>",
            )
        } else {
            part_ok(first)
        }
    });
    assert_eq!(
        run.result.as_ref().unwrap_err().code(),
        Some("PreconditionFailed")
    );
    let ops = ops(&run);
    assert_eq!(ops.last(), Some(&"AbortMultipartUpload"));
    assert!(!ops.contains(&"CompleteMultipartUpload"), "{ops:?}");
}

#[test]
fn retryable_part_failures_are_retried_then_abort() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 12 * MIB, "77", |first| {
        if first == 0 {
            response(
                503,
                &[],
                "<Error><Code>SlowDown</Code><Message>m</Message></Error>",
            )
        } else {
            part_ok(first)
        }
    });
    assert_eq!(run.result.as_ref().unwrap_err().code(), Some("SlowDown"));
    let first_part = run
        .sent
        .iter()
        .filter(|s| s.1.as_deref() == Some("bytes=0-5242879"))
        .count();
    assert_eq!(first_part, 2, "max_attempts 2");
    let retries: Vec<_> = run
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled {
                operation, part, ..
            } => Some((*operation, *part)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [("UploadPartCopy", Some(1))], "the part is named");
    assert_eq!(ops(&run).last(), Some(&"AbortMultipartUpload"));
}

#[test]
fn parts_whose_crcs_do_not_combine_to_the_source_crc_abort_before_complete() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 12 * MIB, "77", |first| {
        response(
            200,
            &[("x-cos-hash-crc64ecma", "1")],
            &format!("<CopyPartResult><ETag>\"p{first}\"</ETag></CopyPartResult>"),
        )
    });
    assert!(matches!(
        run.result.as_ref().unwrap_err(),
        Error::Integrity(IntegrityError::Crc64 { expected: 77, .. })
    ));
    let ops = ops(&run);
    assert_eq!(ops.last(), Some(&"AbortMultipartUpload"));
    assert!(!ops.contains(&"CompleteMultipartUpload"));
}

#[test]
fn a_copy_whose_crc_differs_from_the_source_crc_is_an_integrity_error() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    // The fake reports the HEAD's CRC on the copy too; a copy answering another one fails.
    let run = run(task, MIB, "77", part_ok);
    assert_eq!(run.result.as_ref().unwrap().crc64, Some(77));
    let mut t = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    t.crc64 = Some(5);
    assert!(matches!(
        t.check_crc(Some(6)),
        Err(Error::Integrity(IntegrityError::Crc64 {
            expected: 5,
            actual: 6,
            ..
        }))
    ));
    assert!(t.check_crc(None).is_ok() && t.check_crc(Some(5)).is_ok());
}

#[test]
fn bad_input_is_a_typed_error_before_anything_is_sent() {
    let bad = |source: CopySource, dest: &str, o: CopyOptions| {
        MultipartCopy::new(config(), source, dest, &o).unwrap_err()
    };
    let src = || CopySource::key("src");
    assert!(matches!(
        bad(src(), "dst", CopyOptions::default().part_size(MIB - 1)),
        Error::InvalidInput(InvalidInput::Size { .. })
    ));
    assert!(matches!(
        bad(src(), "dst", CopyOptions::default().threshold(6 << 30)),
        Error::InvalidInput(InvalidInput::Parameter {
            name: "threshold",
            ..
        })
    ));
    assert!(matches!(
        bad(src(), "dst", CopyOptions::default().concurrency(0)),
        Error::InvalidInput(InvalidInput::Parameter {
            name: "concurrency",
            ..
        })
    ));
    assert!(matches!(
        bad(src(), "src", CopyOptions::default()),
        Error::InvalidInput(InvalidInput::Parameter { .. })
    ));
    assert!(matches!(
        bad(src(), "", CopyOptions::default()),
        Error::InvalidInput(InvalidInput::Key { .. })
    ));
    assert!(matches!(
        bad(
            src().bucket("NoAppId", "ap-beijing"),
            "dst",
            CopyOptions::default()
        ),
        Error::InvalidInput(InvalidInput::Bucket { .. })
    ));
}

/// Answers `t` with `r`.
fn answer(task: &mut MultipartCopy, now: Now, t: Transmit, r: http::Response<Bytes>) {
    let input = Input::Response {
        id: t.id,
        response: r,
        sent: None,
    };
    task.handle_input(now, input);
}

/// A copy of a 12 MiB source, run up to its Initiate, which is returned unanswered.
fn copy_at_initiate(now: Now) -> (MultipartCopy, Transmit) {
    let mut task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let Output::Transmit(h) = task.poll_output(now) else {
        panic!()
    };
    let r = response(
        200,
        &[("content-length", "12582912"), ("etag", SOURCE_ETAG)],
        "",
    );
    answer(&mut task, now, h, r);
    let Output::Transmit(i) = task.poll_output(now) else {
        panic!()
    };
    assert_eq!(i.operation, "InitiateMultipartUpload");
    (task, i)
}

/// The next request `task` sends (events skipped).
fn next_transmit(task: &mut MultipartCopy, now: Now) -> Transmit {
    loop {
        match task.poll_output(now) {
            Output::Transmit(t) => break t,
            Output::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

fn initiated(upload_id: &str) -> http::Response<Bytes> {
    let body = format!(
        "<InitiateMultipartUploadResult><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
    );
    response(200, &[], &body)
}

#[test]
fn cancel_aborts_the_upload() {
    let now = start();
    let (mut task, i) = copy_at_initiate(now);
    answer(&mut task, now, i, initiated("u1"));
    let mut polled = Vec::new();
    loop {
        match task.poll_output(now) {
            Output::Transmit(t) => polled.push(t.operation),
            Output::Event(_) => {}
            _ => break,
        }
    }
    assert_eq!(polled, ["UploadPartCopy", "UploadPartCopy"]);
    task.handle_command(now, Command::Cancel);
    let a = next_transmit(&mut task, now);
    assert_eq!(a.operation, "AbortMultipartUpload");
    assert_eq!(a.request.uri().query(), Some("uploadId=u1"));
    answer(&mut task, now, a, response(204, &[], ""));
    assert!(matches!(
        task.poll_output(now),
        Output::Done(Err(Error::Cancelled))
    ));
}

/// A cancel while the Initiate is in flight waits for its answer and aborts the upload it created, so that
/// nothing is left on the server.
#[test]
fn cancel_during_initiate_aborts_the_upload_it_creates() {
    let now = start();
    let (mut task, i) = copy_at_initiate(now);
    task.handle_command(now, Command::Cancel);
    assert!(
        matches!(task.poll_output(now), Output::Wait { .. }),
        "the task must wait for the Initiate's answer"
    );
    answer(&mut task, now, i, initiated("u9"));
    let a = next_transmit(&mut task, now);
    assert_eq!(a.operation, "AbortMultipartUpload");
    assert_eq!(a.request.uri().query(), Some("uploadId=u9"));
    answer(&mut task, now, a, response(204, &[], ""));
    assert!(matches!(
        task.poll_output(now),
        Output::Done(Err(Error::Cancelled))
    ));
}

/// A cancel during an Initiate that then fails ends `Cancelled` without an Abort (there is no upload id).
#[test]
fn cancel_during_a_failed_initiate_ends_cancelled() {
    let now = start();
    let (mut task, i) = copy_at_initiate(now);
    task.handle_command(now, Command::Cancel);
    let r = response(403, &[], "<Error><Code>AccessDenied</Code></Error>");
    answer(&mut task, now, i, r);
    loop {
        match task.poll_output(now) {
            Output::Event(_) => {}
            Output::Done(r) => {
                assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn ranges_stay_within_ten_thousand_parts() {
    assert_eq!(plan_ranges(0, MIB), vec![]);
    assert_eq!(plan_ranges(MIB, MIB), vec![(0, MIB - 1)]);
    let big = 48 * 1024 * 1024 * MIB; // 48 TiB
    let r = plan_ranges(big, 64 * MIB);
    assert!(r.len() as u64 <= MAX_COPY_PARTS, "{}", r.len());
    assert_eq!(r.last().unwrap().1, big - 1);
    assert!(r.windows(2).all(|w| w[0].1 + 1 == w[1].0));
    assert_eq!((r[0].1 + 1) % MIB, 0);
}

/// Each finished part is reported once, numbered from 1 with its length, and the progress adds up to the
/// source's size (answers come newest first: part 2 finishes before part 1).
#[test]
fn every_part_is_reported_with_its_number_and_length_and_progress_adds_up() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 12 * MIB, "77", part_ok);
    assert!(run.result.is_ok());
    let mut parts: Vec<(u32, String, u64)> = Vec::new();
    let mut progress = Vec::new();
    for e in &run.events {
        match e {
            Event::PartCompleted { part, etag, len } => parts.push((*part, etag.clone(), *len)),
            Event::Progress { loaded, total } => progress.push((*loaded, *total)),
            _ => {}
        }
    }
    parts.sort();
    assert_eq!(
        parts,
        [
            (1, "\"p0\"".to_string(), 5 * MIB),
            (2, format!("\"p{}\"", 5 * MIB), 5 * MIB),
            (3, format!("\"p{}\"", 10 * MIB), 2 * MIB),
        ]
    );
    let total = Some(12 * MIB);
    assert_eq!(
        progress,
        [(5 * MIB, total), (10 * MIB, total), (12 * MIB, total)]
    );
}

/// A single copy reports its whole size as progress once.
#[test]
fn a_single_copy_reports_its_size_as_progress() {
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 3 * MIB, "77", part_ok);
    assert_eq!(run.result.as_ref().unwrap().size, 3 * MIB);
    let progress: Vec<_> = run
        .events
        .iter()
        .filter(|e| matches!(e, Event::Progress { .. }))
        .collect();
    assert_eq!(
        progress,
        [&Event::Progress {
            loaded: 3 * MIB,
            total: Some(3 * MIB)
        }]
    );
}

/// Parts whose CRC-64s combine (each with its own length) to the source's are completed, and the copy
/// ends with that CRC.
#[test]
fn parts_whose_crcs_combine_to_the_source_crc_are_completed() {
    let data: Vec<u8> = (0..12 * MIB).map(|i| (i * 31 % 251) as u8).collect();
    let whole = Crc64::checksum(&data).to_string();
    let task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let run = run(task, 12 * MIB, &whole, |first| {
        let last = (first + 5 * MIB).min(12 * MIB);
        let crc = Crc64::checksum(&data[first as usize..last as usize]).to_string();
        response(
            200,
            &[("x-cos-hash-crc64ecma", &crc)],
            &format!("<CopyPartResult><ETag>\"p{first}\"</ETag></CopyPartResult>"),
        )
    });
    let out = run.result.as_ref().unwrap();
    assert_eq!(out.crc64, Some(Crc64::checksum(&data)));
    assert_eq!(ops(&run).last(), Some(&"CompleteMultipartUpload"));
}

/// The last of at most 10,000 parts may be exactly 5 GiB; a source that would need a bigger part is
/// refused after the HEAD, before an upload is created.
#[test]
fn a_source_needing_parts_above_five_gib_is_refused_before_initiate() {
    let head_then = |size: u64| {
        let now = start();
        let o = CopyOptions::default();
        let mut task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &o).unwrap();
        let h = next_transmit(&mut task, now);
        let len = size.to_string();
        let r = response(200, &[("content-length", &len), ("etag", SOURCE_ETAG)], "");
        answer(&mut task, now, h, r);
        match task.poll_output(now) {
            Output::Transmit(t) => Ok(t.operation),
            Output::Done(r) => Err(r.unwrap_err()),
            other => panic!("{other:?}"),
        }
    };
    let most = MAX_COPY_PARTS * 5 * 1024 * MIB;
    assert_eq!(head_then(most), Ok("InitiateMultipartUpload"));
    let refused = head_then(most + 1).unwrap_err();
    assert!(
        matches!(
            refused,
            Error::InvalidInput(InvalidInput::Size {
                what: "copy source",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn part_sizes_from_one_mib_to_five_gib_are_accepted() {
    let new = |part: u64| {
        let o = CopyOptions::default().part_size(part);
        MultipartCopy::new(config(), CopySource::key("src"), "dst", &o)
    };
    assert!(new(MIB).is_ok());
    assert!(new(5 * 1024 * MIB).is_ok());
    assert!(matches!(
        new(5 * 1024 * MIB + 1),
        Err(Error::InvalidInput(InvalidInput::Size { .. }))
    ));
    assert_eq!(MIN_COPY_PART_SIZE, MIB);
    assert_eq!(MAX_COPY_PART_SIZE, 5 * 1024 * MIB);
}

#[test]
fn exactly_ten_thousand_parts_keep_the_part_size() {
    let r = plan_ranges(50_000, 5);
    assert_eq!(r.len(), 10_000);
    assert_eq!((r[1], r[9_999]), ((5, 9), (49_995, 49_999)));
    // One byte more: the part grows to whole MiB.
    assert_eq!(plan_ranges(50_001, 5), vec![(0, 50_000)]);
}

/// The HEAD's answer, with metadata, for the metadata-directive tests.
fn head_with_metadata(size: u64) -> http::Response<Bytes> {
    let len = size.to_string();
    response(
        200,
        &[
            ("content-length", &len),
            ("etag", SOURCE_ETAG),
            ("content-type", "text/plain"),
            ("cache-control", "no-cache"),
            ("content-disposition", "attachment"),
            ("content-encoding", "gzip"),
            ("expires", "Wed, 21 Oct 2026 07:28:00 GMT"),
            ("x-cos-meta-owner", "me"),
        ],
        "",
    )
}

/// The request a copy sends after the HEAD of a `size`-byte source with metadata.
fn after_head(o: &CopyOptions, size: u64) -> Transmit {
    let now = start();
    let mut task = MultipartCopy::new(config(), CopySource::key("src"), "dst", o).unwrap();
    let h = next_transmit(&mut task, now);
    answer(&mut task, now, h, head_with_metadata(size));
    next_transmit(&mut task, now)
}

#[test]
fn the_metadata_directive_is_sent_on_a_single_copy() {
    let t = after_head(&options(), MIB);
    assert_eq!(t.operation, "PutObjectCopy");
    assert_eq!(header(&t, "x-cos-metadata-directive"), Some("Copy"));
    let replaced = options().metadata_directive(MetadataDirective::Replaced);
    let t = after_head(&replaced, MIB);
    assert_eq!(header(&t, "x-cos-metadata-directive"), Some("Replaced"));
}

/// A multipart copy creates the destination with the source's metadata (`Copy`), or with none
/// (`Replaced`).
#[test]
fn a_multipart_copy_carries_the_source_metadata_unless_replaced() {
    let t = after_head(&options(), 12 * MIB);
    assert_eq!(t.operation, "InitiateMultipartUpload");
    for (name, value) in [
        ("content-type", "text/plain"),
        ("cache-control", "no-cache"),
        ("content-disposition", "attachment"),
        ("content-encoding", "gzip"),
        ("expires", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ("x-cos-meta-owner", "me"),
    ] {
        assert_eq!(header(&t, name), Some(value), "{name}");
    }
    let replaced = options().metadata_directive(MetadataDirective::Replaced);
    let t = after_head(&replaced, 12 * MIB);
    assert_eq!(t.operation, "InitiateMultipartUpload");
    for name in ["cache-control", "content-disposition", "x-cos-meta-owner"] {
        assert_eq!(header(&t, name), None, "{name}");
    }
}

fn access_key(t: &Transmit) -> String {
    let auth = header(t, "authorization").unwrap();
    let ak = auth.split('&').find_map(|kv| kv.strip_prefix("q-ak="));
    ak.unwrap().to_string()
}

/// New credentials sign the retry of the request in flight and every request after it.
#[test]
fn new_credentials_sign_the_retry_in_flight_and_later_requests() {
    let mut now = start();
    let mut task = MultipartCopy::new(config(), CopySource::key("src"), "dst", &options()).unwrap();
    let h = next_transmit(&mut task, now);
    assert_eq!(access_key(&h), "AKID");
    let busy = response(503, &[], "<Error><Code>SlowDown</Code></Error>");
    answer(&mut task, now, h, busy);
    task.set_credentials(Credentials::new("AKID2", "KEY2"));
    let h = loop {
        match task.poll_output(now) {
            Output::Transmit(t) => break t,
            Output::Event(_) => {}
            Output::Wait { until } => now = now.advance(until.unwrap() - now.instant),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        (h.operation, access_key(&h).as_str()),
        ("HeadObject", "AKID2")
    );
    answer(&mut task, now, h, head_with_metadata(12 * MIB));
    let i = next_transmit(&mut task, now);
    assert_eq!(i.operation, "InitiateMultipartUpload");
    assert_eq!(access_key(&i), "AKID2");
}

/// A second cancel while the abort is in flight changes nothing: one abort, then `Cancelled`.
#[test]
fn a_second_cancel_during_the_abort_sends_no_second_abort() {
    let now = start();
    let (mut task, i) = copy_at_initiate(now);
    answer(&mut task, now, i, initiated("u1"));
    let _part = next_transmit(&mut task, now);
    task.handle_command(now, Command::Cancel);
    let a = next_transmit(&mut task, now);
    assert_eq!(a.operation, "AbortMultipartUpload");
    task.handle_command(now, Command::Cancel);
    assert!(matches!(task.poll_output(now), Output::Wait { .. }));
    answer(&mut task, now, a, response(204, &[], ""));
    assert!(matches!(
        task.poll_output(now),
        Output::Done(Err(Error::Cancelled))
    ));
}
