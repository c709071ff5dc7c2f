//! Drives cos-core tasks from fixtures with no network.

use cos_core::ops::PutObject;
use cos_core::task::OneShot;
use cos_testkit::replay::{config_for, load_fixture, run_task, ReplayError};

fn fixture(name: &str) -> cos_core::fixture::Fixture {
    load_fixture(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn put_hello(
    content_type: &str,
    body: &'static str,
    f: &cos_core::fixture::Fixture,
) -> OneShot<PutObject> {
    OneShot::new(
        PutObject::new("docs/hello.txt")
            .with_bytes(body)
            .content_type(content_type),
        config_for(f),
    )
    .unwrap()
}

#[test]
fn slowdown_is_retried_after_backoff_and_succeeds() {
    let f = fixture("put_object_slowdown_retry.json");
    let task = put_hello("text/plain", "hello", &f);
    let out = run_task(f, task, &[]).unwrap();
    let put = out.result.expect("upload succeeds after one retry");
    assert_eq!(put.etag, "\"5d41402abc4b2a76b9719d911017c592\"");
    assert_eq!(put.request_id.as_deref(), Some("req-2"));
    assert_eq!(out.transcript[0], "send PUT /docs/hello.txt");
    assert_eq!(out.transcript[1], "  ← 503");
    assert!(
        out.transcript[2].starts_with("retry PutObject attempt 2 +"),
        "{:?}",
        out.transcript
    );
    assert_eq!(out.transcript[3], "send PUT /docs/hello.txt");
    assert!(
        out.elapsed >= std::time::Duration::from_millis(100),
        "backoff waited {:?}",
        out.elapsed
    );
    out.player.assert_all_consumed();
}

#[test]
fn a_request_the_fixture_does_not_expect_fails_with_a_diff() {
    let f = fixture("put_object_slowdown_retry.json");
    let task = put_hello("text/html", "HELLO", &f);
    let err = run_task(f, task, &[]).unwrap_err();
    let ReplayError::Mismatch(m) = &err else {
        panic!("{err}")
    };
    let text = m.to_string();
    assert!(
        text.contains("header content-type: recorded \"text/plain\" ≠ sent \"text/html\""),
        "{text}"
    );
    assert!(text.contains("body:"), "{text}");
}

#[test]
fn a_wrong_crc_from_the_server_is_an_integrity_error() {
    let mut f = fixture("put_object_slowdown_retry.json");
    f.exchanges.remove(0);
    f.exchanges[0]
        .response
        .headers
        .insert("x-cos-hash-crc64ecma".into(), "1".into());
    let task = put_hello("text/plain", "hello", &f);
    let out = run_task(f, task, &[]).unwrap();
    let err = out.result.unwrap_err();
    assert!(matches!(err, cos_core::Error::Integrity(_)), "{err}");
}
