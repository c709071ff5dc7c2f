//! The transport hooks: replay a cos-testkit fixture with no network.

use std::sync::Arc;

use cos_core::ops::PutObject;
use cos_testkit::replay::{config_for, load_fixture, Responder};

#[tokio::test]
async fn replays_a_testkit_fixture_without_network() {
    let f = load_fixture(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cos-testkit/fixtures/put_object_slowdown_retry.json"
    ))
    .unwrap();
    let responder = Arc::new(Responder::new(f.clone()));
    let client = cos_async::Client::builder(config_for(&f))
        .responder(responder.clone())
        .build();
    let out = client
        .put_object(
            PutObject::new("docs/hello.txt").content_type("text/plain"),
            "hello",
        )
        .await
        .unwrap();
    assert_eq!(out.request_id.as_deref(), Some("req-2"));
    responder.assert_all_consumed();
}
