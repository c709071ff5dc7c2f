//! The transport hooks: replay a cos-testkit fixture with no network (`ClientBuilder::responder`), and
//! record a session with one client (`ClientBuilder::recorder`) that then replays, request for request,
//! through the other.

use super::*;
use crate::support::{MockServer, Reply};
use cos_core::ops::PutObject;
use cos_testkit::replay::{config_for, load_fixture, Recorder, Responder};

pub fn replays_a_testkit_fixture_without_network<D: Driver>() {
    let f = load_fixture(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/put_object_slowdown_retry.json"
    ))
    .unwrap();
    let replaying = |config: Config, on_event: Option<OnEvent>| {
        let responder = Arc::new(Responder::new(f.clone()));
        let client = D::build_with(
            config,
            Options {
                on_event,
                responder: Some(responder.clone()),
                ..Options::default()
            },
        );
        (client, responder)
    };
    let (client, responder) = replaying(config_for(&f), None);
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
    config.retry = cos_core::retry::RetryPolicy::none();
    let (client, _) = replaying(config, None);
    let err = client
        .put_object(
            PutObject::new("docs/other.txt").content_type("text/plain"),
            "hello",
        )
        .unwrap_err();
    assert!(err.to_string().contains("replay"), "{err}");

    // With the default retry policy too: a mismatch fails at once, with no retry and no backoff sleep.
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let (client, _) = replaying(
        config_for(&f),
        Some(Arc::new(move |e: &Event| {
            seen.lock().unwrap().push(format!("{e:?}"))
        })),
    );
    let err = client
        .put_object(PutObject::new("docs/other.txt"), "hello")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t)
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

/// Records a session through `R` against a scripted server (a 503 included), and replays it through `P`.
pub fn a_recording_replays_through_another_client<R: Driver, P: Driver>() {
    let d = TempDir::new::<R>(&format!("record-{}", P::NAME));
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let file = d.file("big.bin", &data);

    let server = MockServer::start(|r, i| match i {
        1 => Reply::error(503, "SlowDown"),
        _ => Reply::put_ok(&r.body),
    });
    let recorder = Arc::new(Recorder::new("recorded session", &server.config(), 0));
    let client = R::build_with(
        server.config(),
        Options {
            recorder: Some(recorder.clone()),
            ..Options::default()
        },
    );
    let small = client
        .put_object(PutObject::new("a.txt").content_type("text/plain"), "hello")
        .unwrap();
    let big = client
        .put_object(PutObject::new("dir/big.bin"), Payload::file(&file))
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
    let mut config = config_for(&fixture);
    config.retry.initial_backoff = Duration::from_millis(5);
    let client = P::build_with(
        config,
        Options {
            responder: Some(responder.clone()),
            ..Options::default()
        },
    );
    let small2 = client
        .put_object(PutObject::new("a.txt").content_type("text/plain"), "hello")
        .unwrap();
    let big2 = client
        .put_object(PutObject::new("dir/big.bin"), Payload::file(&file))
        .unwrap();
    responder.assert_all_consumed();
    assert_eq!((small, big), (small2, big2));
}
