//! The transport hooks: replay a cos-testkit fixture with no network, and record a session with ureq that
//! then replays, request for request, through the hyper client.

mod support;

use std::sync::Arc;

use cos_core::ops::PutObject;
use cos_testkit::replay::{config_for, load_fixture, Recorder, Responder};
use support::{MockServer, Reply};

#[test]
fn replays_a_testkit_fixture_without_network() {
    let f = load_fixture(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cos-testkit/fixtures/put_object_slowdown_retry.json"
    ))
    .unwrap();
    let responder = Arc::new(Responder::new(f.clone()));
    let client = cos_blocking::Client::builder(config_for(&f))
        .responder(responder.clone())
        .build();
    let out = client
        .put_object(
            PutObject::new("docs/hello.txt").content_type("text/plain"),
            "hello",
        )
        .unwrap();
    assert_eq!(out.request_id.as_deref(), Some("req-2"));
    responder.assert_all_consumed();

    // A request the fixture does not hold is a (non-retried here) replay failure, not a network call.
    let mut config = config_for(&f);
    config.retry = cos_blocking::RetryPolicy::none();
    let responder = Arc::new(Responder::new(f.clone()));
    let client = cos_blocking::Client::builder(config)
        .responder(responder)
        .build();
    let err = client
        .put_object(
            PutObject::new("docs/other.txt").content_type("text/plain"),
            "hello",
        )
        .unwrap_err();
    assert!(err.to_string().contains("replay"), "{err}");

    // With the default retry policy too: a mismatch fails at once, with no retry and no backoff sleep.
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let client = cos_blocking::Client::builder(config_for(&f))
        .responder(Arc::new(Responder::new(f.clone())))
        .on_event(move |e| seen.lock().unwrap().push(format!("{e:?}")))
        .build();
    let err = client
        .put_object(PutObject::new("docs/other.txt"), "hello")
        .unwrap_err();
    assert!(
        matches!(&err, cos_core::Error::Transport(t)
            if t.kind == cos_core::error::TransportErrorKind::ReplayMismatch),
        "{err:?}"
    );
    assert_eq!(err.context().unwrap().attempt, 1);
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .all(|e| !e.contains("RetryScheduled")));
}

#[test]
fn a_ureq_recording_replays_through_hyper() {
    let file = std::env::temp_dir().join(format!("cos-record-{}.bin", std::process::id()));
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &data).unwrap();

    let server = MockServer::start(|r, i| match i {
        1 => Reply::error(503, "SlowDown"),
        _ => Reply::put_ok(&r.body),
    });
    let recorder = Arc::new(Recorder::new("ureq session", &server.config(), 0));
    let client = cos_blocking::Client::builder(server.config())
        .recorder(recorder.clone())
        .build();
    let small = client
        .put_object(PutObject::new("a.txt").content_type("text/plain"), "hello")
        .unwrap();
    let big = client
        .put_object(
            PutObject::new("dir/big.bin"),
            cos_blocking::Body::file(&file).unwrap(),
        )
        .unwrap();

    let mut fixture = recorder.fixture();
    assert_eq!(fixture.exchanges.len(), 3, "the 503 is recorded too");
    assert_eq!(
        fixture.exchanges[1].request.body,
        cos_core::fixture::BodyRecord::Digest {
            len: data.len() as u64,
            // Streamed without MD5 (the default: CRC-64 only), so only the length is recorded.
            md5: String::new()
        }
    );
    fixture.redact();

    let responder = Arc::new(Responder::new(fixture.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (small2, big2) = rt.block_on(async {
        let mut config = config_for(&fixture);
        config.retry.initial_backoff = std::time::Duration::from_millis(5);
        let client = cos_async::Client::builder(config)
            .responder(responder.clone())
            .build();
        let small = client
            .put_object(PutObject::new("a.txt").content_type("text/plain"), "hello")
            .await
            .unwrap();
        let big = client
            .put_object(
                PutObject::new("dir/big.bin"),
                cos_async::Body::file(&file).unwrap(),
            )
            .await
            .unwrap();
        (small, big)
    });
    std::fs::remove_file(&file).unwrap();
    responder.assert_all_consumed();
    assert_eq!((small, big), (small2, big2));
}
