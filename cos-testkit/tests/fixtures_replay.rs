//! Every recorded fixture in `cos-testkit/fixtures/` replayed through the `cos-core` tasks that made it, with
//! no network: the typed outcome is checked against what the recorded answers say (and against digests
//! computed here), every exchange must be used, and a tampered fixture fails with a diff naming the field.
//!
//! The fixtures are recorded with `cargo run -p cos-examples --example record_fixtures`; the assertions read
//! server-chosen values (request ids, upload ids) from the fixture itself, so a re-recording (or a recording
//! against real COS) passes unchanged.

use std::collections::BTreeSet;

use bytes::Bytes;
use cos_core::checksum::{md5_hex, Crc64};
use cos_core::fixture::{BodyRecord, Fixture, MatchMode};
use cos_core::ops::{
    AbortMultipartUpload, AppendObject, CompleteMultipartUpload, CompletedPart, GetObject,
    HeadObject, InitiateMultipartUpload, ListMultipartUploads, ListParts, ObjectType, Operation,
    PutObject, StorageClass, UploadPart,
};
use cos_core::task::OneShot;
use cos_core::upload::{MultipartUpload, UploadConfig};
use cos_core::Error;
use cos_testkit::replay::{
    config_for, load_fixture, run_task, sample_bytes, CompleteInOrder, Replay, ReplayError,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// The fixtures this file replays (plus `put_object_slowdown_retry`, hand-written, replayed here and in
/// `replay_core.rs`).
const FIXTURES: &[&str] = &[
    "abort_multipart_upload",
    "append_object",
    "complete_errors",
    "get_object",
    "head_object",
    "list_multipart_uploads",
    "multipart_parts",
    "multipart_upload_task",
    "put_object",
    "put_object_slowdown_retry",
    "retry_faults",
    "signature_mismatch",
];

fn fixture(name: &str) -> Fixture {
    load_fixture(format!("{DIR}/{name}.json")).unwrap()
}

/// Runs one operation in the replay; a request the fixture does not expect panics with the diff.
fn op<O: Operation>(replay: &mut Replay, op: O) -> Result<O::Output, Error> {
    let task = OneShot::new(op, replay.config()).expect("valid operation");
    match replay.run(task, &[]) {
        Ok(result) => result,
        Err(e) => panic!("{e}"),
    }
}

/// The `x-cos-request-id` of the `i`-th recorded answer.
fn request_id(f: &Fixture, i: usize) -> Option<String> {
    f.exchanges[i]
        .response
        .headers
        .get("x-cos-request-id")
        .cloned()
}

/// The text between `<tag>` and `</tag>` in the `i`-th recorded answer.
fn xml_field(f: &Fixture, i: usize, tag: &str) -> String {
    let BodyRecord::Utf8(body) = &f.exchanges[i].response.body else {
        panic!("answer {i} has no text body")
    };
    let start = body.find(&format!("<{tag}>")).expect(tag) + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>")).expect(tag) + start;
    body[start..end].to_string()
}

fn quoted_md5(bytes: &[u8]) -> String {
    format!("\"{}\"", md5_hex(bytes))
}

/// Checks a service error's code, status and request id (the one the recorded answer carries).
fn assert_service_error(err: &Error, code: &str, status: u16, f: &Fixture, i: usize) {
    assert_eq!(err.code(), Some(code), "{err}");
    assert_eq!(err.status(), Some(status), "{err}");
    assert!(request_id(f, i).is_some());
    assert_eq!(err.request_id().map(str::to_string), request_id(f, i));
}

#[test]
fn every_fixture_is_replayed_here_and_says_what_it_shows() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    let known: BTreeSet<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        on_disk, known,
        "a fixture without a replay test (or a test without its fixture)"
    );
    for name in FIXTURES {
        let f = fixture(name);
        assert!(f.docs.len() > 40, "{name}: docs say too little");
        assert!(!f.exchanges.is_empty(), "{name}");
    }
}

#[test]
fn put_object_with_headers_metadata_and_storage_class() {
    let f = fixture("put_object");
    let mut r = Replay::new(f.clone());
    let body = "quarterly report: all green\n";
    let put = PutObject::new("fixtures/put/report.txt")
        .with_bytes(body)
        .content_type("text/plain; charset=utf-8")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"report.txt\"")
        .metadata("project", "cos-rs")
        .metadata("owner", "fixtures")
        .storage_class(StorageClass::StandardIa);
    let out = op(&mut r, put).unwrap();
    assert_eq!(out.etag, quoted_md5(body.as_bytes()));
    assert_eq!(out.crc64, Some(Crc64::checksum(body.as_bytes())));
    assert_eq!(out.request_id, request_id(&f, 0));

    let info = op(&mut r, HeadObject::new("fixtures/put/report.txt")).unwrap();
    assert_eq!(info.content_length, body.len() as u64);
    assert_eq!(
        info.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(info.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(
        info.content_disposition.as_deref(),
        Some("attachment; filename=\"report.txt\"")
    );
    assert_eq!(info.storage_class, StorageClass::StandardIa);
    assert_eq!(info.object_type, ObjectType::Normal);
    let mut meta = info.metadata.clone();
    meta.sort();
    assert_eq!(
        meta,
        vec![
            ("owner".to_string(), "fixtures".to_string()),
            ("project".to_string(), "cos-rs".to_string())
        ]
    );
    assert_eq!(info.etag, Some(out.etag));
    r.assert_all_consumed();
}

#[test]
fn append_object_positions_and_409s() {
    let f = fixture("append_object");
    let mut r = Replay::new(f.clone());
    let key = "fixtures/append/log.txt";
    let first = op(&mut r, AppendObject::new(key, 0).with_bytes("hello ")).unwrap();
    assert_eq!(first.next_position, 6);
    assert_eq!(first.request_id, request_id(&f, 0));
    let second = op(&mut r, AppendObject::new(key, 6).with_bytes("world")).unwrap();
    assert_eq!(second.next_position, 11);

    let stale = op(&mut r, AppendObject::new(key, 3).with_bytes("!")).unwrap_err();
    assert_service_error(&stale, "PositionNotEqualToLength", 409, &f, 2);
    assert!(!stale.is_retryable());

    op(
        &mut r,
        PutObject::new("fixtures/append/plain.txt").with_bytes("not appendable"),
    )
    .unwrap();
    let normal = op(
        &mut r,
        AppendObject::new("fixtures/append/plain.txt", 14).with_bytes("!"),
    )
    .unwrap_err();
    assert_service_error(&normal, "ObjectNotAppendable", 409, &f, 4);
    r.assert_all_consumed();
}

#[test]
fn head_object_found_and_no_such_key() {
    let f = fixture("head_object");
    let mut r = Replay::new(f.clone());
    let key = "fixtures/head/hello.txt";
    op(
        &mut r,
        PutObject::new(key)
            .with_bytes("hello head")
            .content_type("text/plain"),
    )
    .unwrap();
    let info = op(&mut r, HeadObject::new(key)).unwrap();
    assert_eq!(info.content_length, 10);
    assert_eq!(info.etag, Some(quoted_md5(b"hello head")));
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    assert_eq!(info.request_id, request_id(&f, 1));

    let missing = op(&mut r, HeadObject::new("fixtures/head/missing.txt")).unwrap_err();
    assert_service_error(&missing, "NoSuchKey", 404, &f, 2);
    r.assert_all_consumed();
}

#[test]
fn get_object_whole_and_range() {
    let f = fixture("get_object");
    let mut r = Replay::new(f);
    let key = "fixtures/get/alphabet.txt";
    let letters = "abcdefghijklmnopqrstuvwxyz";
    op(
        &mut r,
        PutObject::new(key)
            .with_bytes(letters)
            .content_type("text/plain"),
    )
    .unwrap();
    let whole = op(&mut r, GetObject::new(key)).unwrap();
    assert_eq!(whole.body, Bytes::from(letters));
    assert_eq!(whole.info.content_length, 26);
    assert_eq!(whole.info.etag, Some(quoted_md5(letters.as_bytes())));
    let range = op(&mut r, GetObject::new(key).range(2, Some(5))).unwrap();
    assert_eq!(range.body, Bytes::from("cdef"));
    assert_eq!(range.info.content_length, 4);
    r.assert_all_consumed();
}

#[test]
fn multipart_by_hand_initiate_parts_list_complete() {
    let f = fixture("multipart_parts");
    let mut r = Replay::new(f.clone());
    let key = "fixtures/multipart/two-parts.bin";
    let data = Bytes::from(sample_bytes((1 << 20) + 1000));
    let init = op(
        &mut r,
        InitiateMultipartUpload::new(key).content_type("application/octet-stream"),
    )
    .unwrap();
    assert_eq!(init.upload_id, xml_field(&f, 0, "UploadId"));
    assert_eq!(init.key, key);
    let id = init.upload_id;

    let mut parts = Vec::new();
    for (n, range) in [(1, 0..1 << 20), (2, 1 << 20..data.len())] {
        let bytes = data.slice(range);
        let up = op(
            &mut r,
            UploadPart::new(key, &id, n).with_bytes(bytes.clone()),
        )
        .unwrap();
        assert_eq!(up.etag, quoted_md5(&bytes));
        assert_eq!(up.crc64, Some(Crc64::checksum(&bytes)));
        parts.push(CompletedPart {
            part_number: n,
            etag: up.etag,
        });
    }
    // The part bodies are recorded as length and MD5, not inline.
    assert!(matches!(
        f.exchanges[1].request.body,
        BodyRecord::Digest { len: 1048576, .. }
    ));

    let listed = op(&mut r, ListParts::new(key, &id)).unwrap();
    assert_eq!(listed.upload_id, id);
    assert!(!listed.is_truncated);
    let got: Vec<(u32, u64, String)> = listed
        .parts
        .iter()
        .map(|p| (p.part_number, p.size, p.etag.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, 1 << 20, parts[0].etag.clone()),
            (2, 1000, parts[1].etag.clone())
        ]
    );

    let done = op(
        &mut r,
        CompleteMultipartUpload::new(key, &id, parts).expected_crc64(Crc64::checksum(&data)),
    )
    .unwrap();
    assert!(done.etag.trim_matches('"').ends_with("-2"), "{}", done.etag);
    assert_eq!(done.crc64, Some(Crc64::checksum(&data)));
    assert_eq!(done.key, key);
    assert_eq!(done.request_id, request_id(&f, 4));
    r.assert_all_consumed();
}

#[test]
fn complete_errors_entity_too_small_invalid_part_order_no_such_upload() {
    let f = fixture("complete_errors");
    let mut r = Replay::new(f.clone());
    let key = "fixtures/multipart/bad-complete.bin";
    let id = op(&mut r, InitiateMultipartUpload::new(key))
        .unwrap()
        .upload_id;
    let mut parts = Vec::new();
    for n in 1..=2u32 {
        let body = vec![b'a' + n as u8; 100];
        let up = op(
            &mut r,
            UploadPart::new(key, &id, n).with_bytes(body.clone()),
        )
        .unwrap();
        assert_eq!(up.etag, quoted_md5(&body));
        parts.push(CompletedPart {
            part_number: n,
            etag: up.etag,
        });
    }
    let small = op(
        &mut r,
        CompleteMultipartUpload::new(key, &id, parts.clone()),
    )
    .unwrap_err();
    assert_service_error(&small, "EntityTooSmall", 400, &f, 3);

    let wrong = vec![
        parts[0].clone(),
        CompletedPart {
            part_number: 2,
            etag: quoted_md5(b"something else"),
        },
    ];
    let invalid = op(&mut r, CompleteMultipartUpload::new(key, &id, wrong)).unwrap_err();
    assert_service_error(&invalid, "InvalidPart", 400, &f, 4);

    let reversed = vec![parts[1].clone(), parts[0].clone()];
    let order = op(&mut r, CompleteInOrder::new(key, &id, reversed)).unwrap_err();
    assert_service_error(&order, "InvalidPartOrder", 400, &f, 5);

    let unknown = op(
        &mut r,
        CompleteMultipartUpload::new(key, "no-such-upload-id", parts),
    )
    .unwrap_err();
    assert_service_error(&unknown, "NoSuchUpload", 404, &f, 6);
    op(&mut r, AbortMultipartUpload::new(key, &id)).unwrap();
    r.assert_all_consumed();
}

#[test]
fn abort_then_abort_again_is_no_such_upload() {
    let f = fixture("abort_multipart_upload");
    let mut r = Replay::new(f.clone());
    let key = "fixtures/multipart/aborted.bin";
    let id = op(&mut r, InitiateMultipartUpload::new(key))
        .unwrap()
        .upload_id;
    op(&mut r, UploadPart::new(key, &id, 1).with_bytes("part one")).unwrap();
    let aborted = op(&mut r, AbortMultipartUpload::new(key, &id)).unwrap();
    assert_eq!(aborted.request_id, request_id(&f, 2));
    assert_eq!(f.exchanges[2].response.status, 204);
    let again = op(&mut r, AbortMultipartUpload::new(key, &id)).unwrap_err();
    assert_service_error(&again, "NoSuchUpload", 404, &f, 3);
    r.assert_all_consumed();
}

#[test]
fn list_multipart_uploads_prefix_pages_and_url_encoding() {
    let f = fixture("list_multipart_uploads");
    let mut r = Replay::new(f.clone());
    let keys = [
        "fixtures/list/a.bin",
        "fixtures/list/b c+d.bin",
        "fixtures/other/c.bin",
    ];
    let ids: Vec<String> = keys
        .iter()
        .map(|k| {
            op(&mut r, InitiateMultipartUpload::new(*k))
                .unwrap()
                .upload_id
        })
        .collect();

    let listed = op(&mut r, ListMultipartUploads::new().prefix("fixtures/list/")).unwrap();
    let got: Vec<(&str, &str)> = listed
        .uploads
        .iter()
        .map(|u| (u.key.as_str(), u.upload_id.as_str()))
        .collect();
    assert_eq!(got, vec![(keys[0], &ids[0][..]), (keys[1], &ids[1][..])]);
    assert_eq!(listed.prefix.as_deref(), Some("fixtures/list/"));
    assert!(!listed.is_truncated);

    let page = |m: Option<(String, String)>| {
        let op = ListMultipartUploads::new()
            .prefix("fixtures/list/")
            .max_uploads(1);
        match m {
            Some((k, u)) => op.key_marker(k).upload_id_marker(u),
            None => op,
        }
    };
    let first = op(&mut r, page(None)).unwrap();
    assert!(first.is_truncated);
    assert_eq!(first.max_uploads, 1);
    assert_eq!(first.uploads.len(), 1);
    assert_eq!(first.uploads[0].key, keys[0]);
    let markers = (
        first.next_key_marker.clone().unwrap(),
        first.next_upload_id_marker.clone().unwrap(),
    );
    assert_eq!(markers, (keys[0].to_string(), ids[0].clone()));
    let second = op(&mut r, page(Some(markers))).unwrap();
    assert!(!second.is_truncated);
    assert_eq!(second.uploads.len(), 1);
    assert_eq!(second.uploads[0].key, keys[1]);

    let encoded = op(
        &mut r,
        ListMultipartUploads::new()
            .prefix("fixtures/list/")
            .encoding_type_url(),
    )
    .unwrap();
    assert_eq!(encoded.encoding_type.as_deref(), Some("url"));
    assert_eq!(encoded.uploads[1].key, "fixtures/list/b c+d.bin");
    let BodyRecord::Utf8(raw) = &f.exchanges[6].response.body else {
        panic!()
    };
    assert!(
        !raw.contains("b c+d"),
        "the server sent the key percent-encoded: {raw}"
    );

    for (key, id) in keys.iter().zip(&ids) {
        op(&mut r, AbortMultipartUpload::new(*key, id)).unwrap();
    }
    r.assert_all_consumed();
}

#[test]
fn signature_mismatch_carries_the_string_to_sign() {
    let f = fixture("signature_mismatch");
    let mut config = config_for(&f);
    config.retry = cos_core::retry::RetryPolicy::none();
    let put = PutObject::new("fixtures/signature/denied.txt")
        .with_bytes("denied")
        .content_type("text/plain");
    let out = run_task(f.clone(), OneShot::new(put, config).unwrap(), &[]).unwrap();
    let err = out.result.unwrap_err();
    assert_service_error(&err, "SignatureDoesNotMatch", 403, &f, 0);
    let Error::Service(service) = &err else {
        panic!("{err}")
    };
    let string_to_sign = service.string_to_sign.as_deref().expect("StringToSign");
    let auth = &f.exchanges[0].request.headers["authorization"];
    let key_time = auth
        .split('&')
        .find_map(|p| p.strip_prefix("q-key-time="))
        .unwrap();
    assert!(
        string_to_sign.starts_with(&format!("sha1\n{key_time}\n")),
        "{string_to_sign:?}"
    );
    assert!(service.format_string.is_some());
    assert_eq!(out.transcript.len(), 2, "not retried: {:?}", out.transcript);
    out.player.assert_all_consumed();
}

const TASK_LEN: usize = (5 << 20) / 2;

fn multipart_task(f: &Fixture) -> MultipartUpload {
    let upload = UploadConfig {
        part_size: Some(1 << 20),
        ..UploadConfig::default()
    };
    MultipartUpload::new(
        config_for(f),
        "fixtures/multipart/task.bin",
        TASK_LEN as u64,
        upload,
    )
    .unwrap()
}

#[test]
fn multipart_upload_task_golden_transcript() {
    let f = fixture("multipart_upload_task");
    assert_eq!(f.match_mode, MatchMode::ByKey);
    let data = sample_bytes(TASK_LEN);
    let id = xml_field(&f, 0, "UploadId");
    let out = run_task(f.clone(), multipart_task(&f), &data).unwrap();
    let done = out.result.unwrap();
    assert_eq!(done.parts, 3);
    assert_eq!(done.total_len, TASK_LEN as u64);
    assert_eq!(done.crc64, Some(Crc64::checksum(&data)));
    assert_eq!(done.upload_id.as_deref(), Some(id.as_str()));
    assert!(done.etag.trim_matches('"').ends_with("-3"), "{}", done.etag);
    assert_eq!(done.request_id, request_id(&f, 4));
    out.player.assert_all_consumed();

    let transcript: Vec<String> = out
        .transcript
        .iter()
        .map(|l| l.replace(&id, "{id}"))
        .collect();
    let p = "/fixtures/multipart/task.bin";
    assert_eq!(
        transcript,
        vec![
            format!("send POST {p}?uploads"),
            "  ← 200".to_string(),
            "initiated {id}".to_string(),
            format!("send PUT {p}?partNumber=1&uploadId={{id}}"),
            format!("send PUT {p}?partNumber=2&uploadId={{id}}"),
            format!("send PUT {p}?partNumber=3&uploadId={{id}}"),
            "  ← 200".to_string(),
            "part 1 done".to_string(),
            "  ← 200".to_string(),
            "part 2 done".to_string(),
            "  ← 200".to_string(),
            "part 3 done".to_string(),
            format!("send POST {p}?uploadId={{id}}"),
            "  ← 200".to_string(),
        ]
    );
}

#[test]
fn by_key_fixture_answers_parts_in_any_order_but_sequential_does_not() {
    let mut f = fixture("multipart_upload_task");
    f.exchanges[1..4].reverse();
    let data = sample_bytes(TASK_LEN);
    let out = run_task(f.clone(), multipart_task(&f), &data).unwrap();
    assert_eq!(out.result.unwrap().parts, 3);
    out.player.assert_all_consumed();

    f.match_mode = MatchMode::Sequential;
    let err = run_task(f.clone(), multipart_task(&f), &data).unwrap_err();
    let ReplayError::Mismatch(m) = &err else {
        panic!("{err}")
    };
    let text = m.to_string();
    assert!(text.contains("query: recorded"), "{text}");
    assert!(text.contains("partNumber\", \"3\""), "{text}");
}

#[test]
fn retry_faults_golden_transcript() {
    let f = fixture("retry_faults");
    let mut r = Replay::new(f.clone());
    let slow = op(
        &mut r,
        PutObject::new("fixtures/retry/slow.txt")
            .with_bytes("slow down")
            .content_type("text/plain"),
    )
    .unwrap();
    assert_eq!(slow.etag, quoted_md5(b"slow down"));
    assert_eq!(slow.request_id, request_id(&f, 1));
    let error = op(
        &mut r,
        PutObject::new("fixtures/retry/error.txt")
            .with_bytes("internal error")
            .content_type("text/plain"),
    )
    .unwrap();
    assert_eq!(error.crc64, Some(Crc64::checksum(b"internal error")));
    r.assert_all_consumed();
    assert_eq!(
        r.transcript(),
        [
            "send PUT /fixtures/retry/slow.txt",
            "  ← 503",
            "retry PutObject attempt 2 +178ms",
            "send PUT /fixtures/retry/slow.txt",
            "  ← 200",
            "send PUT /fixtures/retry/error.txt",
            "  ← 500",
            "retry PutObject attempt 2 +178ms",
            "send PUT /fixtures/retry/error.txt",
            "  ← 200",
        ]
    );
    // Only the two seeded backoffs passed on the virtual clock (the delays print rounded down).
    let ms = r.elapsed().as_millis();
    assert!((356..358).contains(&ms), "{ms} ms");
}

#[test]
fn hand_written_slowdown_fixture_replays_too() {
    let f = fixture("put_object_slowdown_retry");
    let task = OneShot::new(
        PutObject::new("docs/hello.txt")
            .with_bytes("hello")
            .content_type("text/plain"),
        config_for(&f),
    )
    .unwrap();
    let out = run_task(f, task, &[]).unwrap();
    assert_eq!(out.result.unwrap().etag, quoted_md5(b"hello"));
    out.player.assert_all_consumed();
}

// ---------------------------------------------------------------------------------------------------------
// Tampering: a changed request side fails with a diff naming the field.

fn put_report(f: &Fixture) -> OneShot<PutObject> {
    OneShot::new(
        PutObject::new("fixtures/put/report.txt")
            .with_bytes("quarterly report: all green\n")
            .content_type("text/plain; charset=utf-8")
            .cache_control("max-age=60")
            .content_disposition("attachment; filename=\"report.txt\"")
            .metadata("project", "cos-rs")
            .metadata("owner", "fixtures")
            .storage_class(StorageClass::StandardIa),
        config_for(f),
    )
    .unwrap()
}

fn mismatch(f: Fixture) -> String {
    let task = put_report(&f);
    match run_task(f, task, &[]) {
        Err(ReplayError::Mismatch(m)) => {
            assert_eq!(m.sent, "PUT /fixtures/put/report.txt");
            m.to_string()
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn untampered_fixture_replays() {
    let f = fixture("put_object");
    let out = run_task(f.clone(), put_report(&f), &[]).unwrap();
    out.result.unwrap();
}

#[test]
fn tampered_header_is_named_in_the_diff() {
    let mut f = fixture("put_object");
    f.exchanges[0]
        .request
        .headers
        .insert("x-cos-meta-owner".into(), "someone-else".into());
    let text = mismatch(f);
    assert!(
        text.starts_with("no recorded exchange matches PUT /fixtures/put/report.txt\n"),
        "{text}"
    );
    assert!(
        text.contains("header x-cos-meta-owner: recorded \"someone-else\" ≠ sent \"fixtures\""),
        "{text}"
    );
}

#[test]
fn a_header_sent_but_not_recorded_is_named() {
    let mut f = fixture("put_object");
    f.exchanges[0].request.headers.remove("x-cos-storage-class");
    let text = mismatch(f);
    assert!(
        text.contains("header x-cos-storage-class: sent \"STANDARD_IA\", not recorded"),
        "{text}"
    );
}

#[test]
fn tampered_body_is_named_in_the_diff() {
    let mut f = fixture("put_object");
    f.exchanges[0].request.body = BodyRecord::Utf8("quarterly report: all red\n".into());
    let text = mismatch(f);
    assert!(
        text.contains("body: recorded Utf8(\"quarterly report: all red\\n\")"),
        "{text}"
    );
}

#[test]
fn tampered_query_is_named_in_the_diff() {
    let mut f = fixture("put_object");
    f.exchanges[0]
        .request
        .query
        .push(("versionId".into(), "v1".into()));
    let text = mismatch(f);
    assert!(
        text.contains("query: recorded [(\"versionId\", \"v1\")] ≠ sent []"),
        "{text}"
    );
}

#[test]
fn tampered_path_is_named_in_the_diff() {
    let mut f = fixture("put_object");
    f.exchanges[0].request.path = "/fixtures/put/other.txt".into();
    let text = mismatch(f);
    assert!(
        text.contains("path: recorded /fixtures/put/other.txt ≠ sent /fixtures/put/report.txt"),
        "{text}"
    );
}

#[test]
fn signatures_are_compared_byte_for_byte_unless_redacted() {
    // Another clock signs differently: the recorded signature no longer matches.
    let mut f = fixture("put_object");
    f.clock_unix += 1;
    let text = mismatch(f.clone());
    assert!(text.contains("header authorization: recorded"), "{text}");
    // Redacted (as fixtures recorded against real COS are), only the signed lists are compared.
    f.redact();
    let out = run_task(f.clone(), put_report(&f), &[]).unwrap();
    out.result.unwrap();
    // … and those lists still catch a header that is signed but was not when recorded.
    let mut f = fixture("put_object");
    f.redact();
    let task = OneShot::new(
        PutObject::new("fixtures/put/report.txt")
            .with_bytes("quarterly report: all green\n")
            .content_type("text/plain; charset=utf-8"),
        config_for(&f),
    )
    .unwrap();
    let Err(ReplayError::Mismatch(m)) = run_task(f, task, &[]) else {
        panic!("expected a mismatch")
    };
    assert!(
        m.to_string()
            .contains("header cache-control: recorded \"max-age=60\", not sent"),
        "{m}"
    );
}

#[test]
fn a_fixture_with_an_exchange_left_over_is_reported() {
    let f = fixture("head_object");
    let mut r = Replay::new(f);
    op(
        &mut r,
        PutObject::new("fixtures/head/hello.txt")
            .with_bytes("hello head")
            .content_type("text/plain"),
    )
    .unwrap();
    let left = r.player().unconsumed();
    assert_eq!(
        left,
        vec![
            "HEAD /fixtures/head/hello.txt (used 0 of 1)",
            "HEAD /fixtures/head/missing.txt (used 0 of 1)"
        ]
    );
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.assert_all_consumed()));
    assert!(panic.is_err());
}
