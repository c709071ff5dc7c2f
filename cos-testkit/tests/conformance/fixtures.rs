//! The recorded fixtures of `cos-testkit/fixtures/` replayed through the client with no network
//! (`ClientBuilder::responder`).
//!
//! Signatures: the client signs with its own wall clock, so its `q-sign-time` and `q-signature` cannot
//! equal the recorded ones. Each fixture is therefore replayed in its redacted form (`Fixture::redact`, the
//! form fixtures recorded against real COS are shared in): the `Authorization` header must still be present
//! with the same algorithm, signed header list and signed parameter list, and every other header, the path,
//! the query and the body must match exactly. Byte-exact signatures are checked where the clock is
//! controlled: replaying the same fixtures through `cos-core` tasks (`cos-testkit/tests/fixtures_replay.rs`).

use super::*;
use cos_core::fixture::Fixture;
use cos_core::ops::{
    AbortMultipartUpload, AppendObject, CompleteMultipartUpload, CompletedPart, GetObject,
    HeadObject, InitiateMultipartUpload, ListMultipartUploads, ListParts, PutObject, StorageClass,
    UploadPart,
};
use cos_testkit::replay::{config_for, load_fixture, sample_bytes, CompleteInOrder, Responder};

/// A client answering from the redacted fixture `name` (built by `build` from a builder), the responder (to
/// check all was used) and the fixture as recorded (to read server-chosen values).
fn replaying_with<D: Driver>(
    name: &str,
    on_event: Option<OnEvent>,
) -> (D, Arc<Responder>, Fixture) {
    let f = load_fixture(format!(
        "{}/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut redacted = f.clone();
    redacted.redact();
    let responder = Arc::new(Responder::new(redacted.clone()));
    let client = D::build_with(
        config_for(&redacted),
        Options {
            on_event,
            responder: Some(responder.clone()),
            ..Options::default()
        },
    );
    (client, responder, f)
}

fn replaying<D: Driver>(name: &str) -> (D, Arc<Responder>, Fixture) {
    replaying_with(name, None)
}

fn request_id(f: &Fixture, i: usize) -> Option<String> {
    f.exchanges[i]
        .response
        .headers
        .get("x-cos-request-id")
        .cloned()
}

fn quoted_md5(b: &[u8]) -> String {
    format!("\"{}\"", md5_hex(b))
}

fn assert_error(err: &Error, code: &str, status: u16, f: &Fixture, i: usize) {
    assert_eq!(err.code(), Some(code), "{err}");
    assert_eq!(err.status(), Some(status));
    assert_eq!(err.request_id().map(str::to_string), request_id(f, i));
}

pub fn put_object_with_options_then_head<D: Driver>() {
    let (client, responder, f) = replaying::<D>("put_object");
    let body = "quarterly report: all green\n";
    let put = PutObject::new("fixtures/put/report.txt")
        .content_type("text/plain; charset=utf-8")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"report.txt\"")
        .metadata("project", "cos-rs")
        .metadata("owner", "fixtures")
        .storage_class(StorageClass::StandardIa);
    let out = client.put_object(put, body).unwrap();
    assert_eq!(out.etag, quoted_md5(body.as_bytes()));
    assert_eq!(out.crc64, Some(Crc64::checksum(body.as_bytes())));
    assert_eq!(out.request_id, request_id(&f, 0));
    let info = client.head_object("fixtures/put/report.txt").unwrap();
    assert_eq!(info.storage_class, StorageClass::StandardIa);
    assert!(info
        .metadata
        .contains(&("project".to_string(), "cos-rs".to_string())));
    responder.assert_all_consumed();
}

pub fn append_object_and_its_409s<D: Driver>() {
    let (client, responder, f) = replaying::<D>("append_object");
    let key = "fixtures/append/log.txt";
    let first = client
        .append_object(AppendObject::new(key, 0), "hello ")
        .unwrap();
    let second = client
        .append_object(AppendObject::new(key, first.next_position), "world")
        .unwrap();
    assert_eq!((first.next_position, second.next_position), (6, 11));
    let stale = client
        .append_object(AppendObject::new(key, 3), "!")
        .unwrap_err();
    assert_error(&stale, "PositionNotEqualToLength", 409, &f, 2);
    client
        .put_object(
            PutObject::new("fixtures/append/plain.txt"),
            "not appendable",
        )
        .unwrap();
    let normal = client
        .append_object(AppendObject::new("fixtures/append/plain.txt", 14), "!")
        .unwrap_err();
    assert_error(&normal, "ObjectNotAppendable", 409, &f, 4);
    responder.assert_all_consumed();
}

pub fn head_and_get_object<D: Driver>() {
    let (client, responder, f) = replaying::<D>("head_object");
    client
        .put_object(
            PutObject::new("fixtures/head/hello.txt").content_type("text/plain"),
            "hello head",
        )
        .unwrap();
    let info = client.head_object("fixtures/head/hello.txt").unwrap();
    assert_eq!(info.content_length, 10);
    let missing = client
        .execute(HeadObject::new("fixtures/head/missing.txt"))
        .unwrap_err();
    assert_error(&missing, "NoSuchKey", 404, &f, 2);
    responder.assert_all_consumed();

    let (client, responder, _) = replaying::<D>("get_object");
    let key = "fixtures/get/alphabet.txt";
    client
        .put_object(
            PutObject::new(key).content_type("text/plain"),
            "abcdefghijklmnopqrstuvwxyz",
        )
        .unwrap();
    let whole = client.get_object(GetObject::new(key)).unwrap();
    assert_eq!(whole.body, Bytes::from("abcdefghijklmnopqrstuvwxyz"));
    let range = client
        .get_object(GetObject::new(key).range(2, Some(5)))
        .unwrap();
    assert_eq!(range.body, Bytes::from("cdef"));
    responder.assert_all_consumed();
}

pub fn multipart_by_hand_with_a_file_part<D: Driver>() {
    let (client, responder, f) = replaying::<D>("multipart_parts");
    let key = "fixtures/multipart/two-parts.bin";
    let data = sample_bytes((1 << 20) + 1000);
    let d = TempDir::new::<D>("fixture");
    let file = d.file("two-parts.bin", &data);

    let id = client
        .initiate_multipart_upload(
            InitiateMultipartUpload::new(key).content_type("application/octet-stream"),
        )
        .unwrap()
        .upload_id;
    // Part 1 streamed from the file (recorded from bytes: both are compared by length and MD5).
    let one = client
        .upload_part(
            UploadPart::new(key, &id, 1),
            Payload::file_range(&file, 0, 1 << 20),
        )
        .unwrap();
    let two = client
        .upload_part(
            UploadPart::new(key, &id, 2),
            Bytes::copy_from_slice(&data[1 << 20..]),
        )
        .unwrap();
    assert_eq!(one.etag, quoted_md5(&data[..1 << 20]));
    let listed = client.list_parts(ListParts::new(key, &id)).unwrap();
    assert_eq!(listed.parts.len(), 2);
    let parts = vec![
        CompletedPart {
            part_number: 1,
            etag: one.etag,
        },
        CompletedPart {
            part_number: 2,
            etag: two.etag,
        },
    ];
    let done = client
        .complete_multipart_upload(CompleteMultipartUpload::new(key, &id, parts))
        .unwrap();
    assert_eq!(done.crc64, Some(Crc64::checksum(&data)));
    assert_eq!(done.request_id, request_id(&f, 4));
    responder.assert_all_consumed();
}

pub fn complete_and_abort_errors<D: Driver>() {
    let (client, responder, f) = replaying::<D>("complete_errors");
    let key = "fixtures/multipart/bad-complete.bin";
    let id = client
        .initiate_multipart_upload(InitiateMultipartUpload::new(key))
        .unwrap()
        .upload_id;
    let mut parts = Vec::new();
    for n in 1..=2u32 {
        let up = client
            .upload_part(UploadPart::new(key, &id, n), vec![b'a' + n as u8; 100])
            .unwrap();
        parts.push(CompletedPart {
            part_number: n,
            etag: up.etag,
        });
    }
    let small = client
        .complete_multipart_upload(CompleteMultipartUpload::new(key, &id, parts.clone()))
        .unwrap_err();
    assert_error(&small, "EntityTooSmall", 400, &f, 3);
    let mut wrong = parts.clone();
    wrong[1].etag = quoted_md5(b"something else");
    let invalid = client
        .complete_multipart_upload(CompleteMultipartUpload::new(key, &id, wrong))
        .unwrap_err();
    assert_error(&invalid, "InvalidPart", 400, &f, 4);
    let reversed = vec![parts[1].clone(), parts[0].clone()];
    let order = client
        .execute(CompleteInOrder::new(key, &id, reversed))
        .unwrap_err();
    assert_error(&order, "InvalidPartOrder", 400, &f, 5);
    let unknown = client
        .complete_multipart_upload(CompleteMultipartUpload::new(
            key,
            "no-such-upload-id",
            parts,
        ))
        .unwrap_err();
    assert_error(&unknown, "NoSuchUpload", 404, &f, 6);
    client
        .abort_multipart_upload(AbortMultipartUpload::new(key, &id))
        .unwrap();
    responder.assert_all_consumed();

    let (client, responder, f) = replaying::<D>("abort_multipart_upload");
    let key = "fixtures/multipart/aborted.bin";
    let id = client
        .initiate_multipart_upload(InitiateMultipartUpload::new(key))
        .unwrap()
        .upload_id;
    client
        .upload_part(UploadPart::new(key, &id, 1), "part one")
        .unwrap();
    client
        .abort_multipart_upload(AbortMultipartUpload::new(key, &id))
        .unwrap();
    let again = client
        .abort_multipart_upload(AbortMultipartUpload::new(key, &id))
        .unwrap_err();
    assert_error(&again, "NoSuchUpload", 404, &f, 3);
    responder.assert_all_consumed();
}

pub fn list_multipart_uploads_pages<D: Driver>() {
    let (client, responder, _) = replaying::<D>("list_multipart_uploads");
    let keys = [
        "fixtures/list/a.bin",
        "fixtures/list/b c+d.bin",
        "fixtures/other/c.bin",
    ];
    let ids: Vec<String> = keys
        .iter()
        .map(|k| {
            client
                .initiate_multipart_upload(InitiateMultipartUpload::new(*k))
                .unwrap()
                .upload_id
        })
        .collect();
    let all = client
        .list_multipart_uploads(ListMultipartUploads::new().prefix("fixtures/list/"))
        .unwrap();
    assert_eq!(all.uploads.len(), 2);
    let mut page = ListMultipartUploads::new()
        .prefix("fixtures/list/")
        .max_uploads(1);
    let mut seen = Vec::new();
    loop {
        let out = client.list_multipart_uploads(page.clone()).unwrap();
        seen.extend(out.uploads.iter().map(|u| u.key.clone()));
        if !out.is_truncated {
            break;
        }
        page = ListMultipartUploads::new()
            .prefix("fixtures/list/")
            .max_uploads(1)
            .key_marker(out.next_key_marker.unwrap())
            .upload_id_marker(out.next_upload_id_marker.unwrap());
    }
    assert_eq!(seen, keys[..2]);
    let encoded = client
        .list_multipart_uploads(
            ListMultipartUploads::new()
                .prefix("fixtures/list/")
                .encoding_type_url(),
        )
        .unwrap();
    assert_eq!(encoded.uploads[1].key, keys[1]);
    for (key, id) in keys.iter().zip(&ids) {
        client
            .abort_multipart_upload(AbortMultipartUpload::new(*key, id))
            .unwrap();
    }
    responder.assert_all_consumed();
}

pub fn signature_mismatch_and_retried_faults<D: Driver>() {
    let (client, responder, f) = replaying::<D>("signature_mismatch");
    let err = client
        .put_object(
            PutObject::new("fixtures/signature/denied.txt").content_type("text/plain"),
            "denied",
        )
        .unwrap_err();
    assert_error(&err, "SignatureDoesNotMatch", 403, &f, 0);
    let Error::Service(s) = &err else {
        panic!("{err}")
    };
    assert!(s.string_to_sign.as_deref().unwrap().starts_with("sha1\n"));
    responder.assert_all_consumed();

    let retries = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = retries.clone();
    let (client, responder, f) = replaying_with::<D>(
        "retry_faults",
        Some(Arc::new(move |e: &Event| {
            if matches!(e, Event::RetryScheduled { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })),
    );
    for (key, body, i) in [
        ("fixtures/retry/slow.txt", "slow down", 1),
        ("fixtures/retry/error.txt", "internal error", 3),
    ] {
        let out = client
            .put_object(PutObject::new(key).content_type("text/plain"), body)
            .unwrap();
        assert_eq!(out.request_id, request_id(&f, i));
    }
    assert_eq!(retries.load(Ordering::SeqCst), 2);
    responder.assert_all_consumed();
}

pub fn a_request_the_fixture_does_not_hold_fails_with_the_diff<D: Driver>() {
    let (_, responder, f) = replaying::<D>("put_object");
    let mut config = config_for(&f);
    config.retry = cos_core::retry::RetryPolicy::none();
    let client = D::build_with(
        config,
        Options {
            responder: Some(responder),
            ..Options::default()
        },
    );
    let err = client
        .put_object(
            PutObject::new("fixtures/put/report.txt").content_type("text/html"),
            "quarterly report: all green\n",
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("replay"), "{text}");
    assert!(
        text.contains(
            "header content-type: recorded \"text/plain; charset=utf-8\" ≠ sent \"text/html\""
        ),
        "{text}"
    );
}
