//! The wire, against a scripted loopback server (`cos-blocking/tests/support`): exact headers, streaming,
//! retries, resets, timeouts, clock skew, request spans.

use super::*;
use crate::support::{MockServer, Reply};
use cos_core::error::TransportErrorKind;
use cos_core::ops::PutObject;

fn put_echo() -> MockServer {
    MockServer::start(|r, _| Reply::put_ok(&r.body))
}

pub fn put_bytes_sends_the_core_headers_exactly<D: Driver>() {
    let server = put_echo();
    let client = D::build(server.config(), None);
    let out = client
        .put_object(
            PutObject::new("dir/a b.txt").content_type("text/plain"),
            "hello",
        )
        .unwrap();
    assert_eq!(out.etag, "\"5d41402abc4b2a76b9719d911017c592\"");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.target, "/dir/a%20b.txt");
    assert_eq!(r.body, b"hello");
    assert_eq!(
        r.all("host"),
        vec![server.url().trim_start_matches("http://")]
    );
    assert_eq!(r.all("content-length"), vec!["5"]);
    assert!(r.all("transfer-encoding").is_empty());
    assert!(
        r.all("accept").is_empty(),
        "no automatic headers: {:?}",
        r.headers
    );
    assert_eq!(r.all("user-agent").len(), 1);
    let signed = r.signed_headers();
    for h in ["host", "content-length", "content-type"] {
        assert!(signed.contains(&h.to_string()), "{h} signed: {signed:?}");
    }
}

pub fn file_body_is_streamed_with_content_length_and_digest<D: Driver>() {
    let server = put_echo();
    let client = D::build(server.config(), None);
    let d = TempDir::new::<D>("stream");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let path = d.file("stream.bin", &data);

    let out = client
        .put_object(PutObject::new("big.bin"), Payload::file(&path))
        .unwrap();
    assert_eq!(out.crc64, Some(cos_core::checksum::Crc64::checksum(&data)));
    // A range of the file, once the first connection is idle again (hyper hands a connection back to its
    // pool from a background task, which may not have run yet on a busy machine).
    std::thread::sleep(Duration::from_millis(100));
    client
        .put_object(
            PutObject::new("range.bin"),
            Payload::file_range(&path, 1000, 5000),
        )
        .unwrap();

    let reqs = server.requests();
    assert_eq!(reqs[0].body, data);
    assert_eq!(reqs[0].all("content-length"), vec!["3000000"]);
    assert!(reqs[0].all("transfer-encoding").is_empty());
    assert_eq!(reqs[1].body, &data[1000..6000]);
    assert_eq!(reqs[1].all("content-length"), vec!["5000"]);
    // Keep-alive: both requests on one connection.
    assert_eq!(reqs[0].connection, reqs[1].connection);
}

pub fn a_wrong_etag_from_the_server_is_an_integrity_error<D: Driver>() {
    let server = MockServer::start(|_, _| Reply::put_ok(b"something else"));
    let client = D::build(server.config(), None);
    let d = TempDir::new::<D>("integrity");
    let path = d.file("integrity.bin", b"file contents");
    let err = client
        .put_object(PutObject::new("x"), Payload::file(&path))
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err:?}");
}

pub fn retries_500_503_and_resets_then_succeeds_and_reports_events<D: Driver>() {
    let server = MockServer::start(|r, i| match i {
        0 => Reply::error(500, "InternalError"),
        1 => Reply::error(503, "ServiceUnavailable"),
        2 => Reply::Close,
        _ => Reply::put_ok(&r.body),
    });
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let client = D::build(
        server.config(),
        Some(Arc::new(move |e: &Event| {
            ev.lock().unwrap().push(e.clone())
        })),
    );
    let d = TempDir::new::<D>("retry");
    let path = d.file("retry.bin", b"retried body");
    let out = client.put_object(PutObject::new("r"), Payload::file(&path));
    out.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 4);
    assert!(
        reqs.iter().all(|r| r.body == b"retried body"),
        "the file is re-read per attempt"
    );
    let retries: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled { attempt, error, .. } => Some((*attempt, error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 3);
    assert_eq!(retries[0].1.status(), Some(500));
    assert_eq!(retries[1].1.status(), Some(503));
    assert!(
        matches!(&retries[2].1, Error::Transport(t) if t.kind == TransportErrorKind::Reset),
        "{:?}",
        retries[2].1
    );
}

pub fn a_reader_body_is_not_retried<D: Driver>() {
    let server = MockServer::start(|_, _| Reply::error(500, "InternalError"));
    let client = D::build(server.config(), None);
    let err = client
        .put_object(
            PutObject::new("r"),
            Payload::reader(b"once only".to_vec(), 9),
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].body, b"once only");
}

pub fn a_short_or_failing_source_is_a_body_error<D: Driver>() {
    let server = put_echo();
    let mut config = server.config();
    config.retry = cos_core::retry::RetryPolicy::none();
    let client = D::build(config, None);
    let err = client
        .put_object(PutObject::new("f"), Payload::failing_reader(10))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Body),
        "{err:?}"
    );

    let err = client
        .put_object(PutObject::new("s"), Payload::reader(b"abc".to_vec(), 10))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Body),
        "{err:?}"
    );

    let missing = Payload::file_range("/nonexistent/cos-rs/file", 0, 10);
    let err = client.put_object(PutObject::new("m"), missing).unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Body),
        "{err:?}"
    );
}

pub fn connection_refused_is_a_connect_error<D: Driver>() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = cos_core::Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        cos_core::Credentials::new("AKID", "KEY"),
    )
    .unwrap()
    .with_endpoint(cos_core::Endpoint::custom(&format!("http://127.0.0.1:{port}")).unwrap())
    .unwrap();
    config.retry = cos_core::retry::RetryPolicy::none();
    let err = D::build(config, None)
        .put_object(PutObject::new("x"), "x")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Connect),
        "{err:?}"
    );
}

pub fn a_stalled_server_is_a_timeout<D: Driver>() {
    let server = MockServer::start(|_, _| Reply::Stall(Duration::from_millis(1500)));
    let mut config = server.config();
    config.retry = cos_core::retry::RetryPolicy::none();
    let client = D::build_with(
        config,
        Options {
            read_timeout: Some(Duration::from_millis(200)),
            ..Options::default()
        },
    );
    let err = client.put_object(PutObject::new("x"), "x").unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{err:?}"
    );
}

pub fn clock_skew_is_learned_and_used_for_later_requests<D: Driver>() {
    // The server's clock is an hour ahead and it refuses the first request.
    let server = MockServer::start(|r, i| {
        let server_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        let date = cos_core::task::format_http_date(server_now);
        if i == 0 {
            let Reply::Respond {
                status,
                mut headers,
                body,
            } = Reply::error(403, "RequestTimeTooSkewed")
            else {
                unreachable!()
            };
            headers.push(("date".into(), date));
            Reply::Respond {
                status,
                headers,
                body,
            }
        } else {
            Reply::put_ok(&r.body)
        }
    });
    let client = D::build(server.config(), None);
    assert_eq!(client.config().clock_offset_secs, 0);
    client.put_object(PutObject::new("a"), "a").unwrap();
    let offset = client.config().clock_offset_secs;
    assert!((3595..=3605).contains(&offset), "offset {offset}");
    client.put_object(PutObject::new("b"), "b").unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let local = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // The retry and the later request are signed on the server's clock.
    for r in &reqs[1..] {
        let start = r.sign_start().unwrap();
        assert!(
            (start - (local + 3600)).abs() < 120,
            "sign start {start} vs local {local}"
        );
    }
    assert!((reqs[0].sign_start().unwrap() - local).abs() < 120);
}

/// A writer collecting log output for inspection.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn request_spans_carry_status_and_request_id_but_no_secrets<D: Driver>() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let server = MockServer::start(|r, i| match i {
        0 => Reply::error(503, "ServiceUnavailable"),
        _ => Reply::put_ok(&r.body),
    });
    let mut config = server.config();
    config.credentials =
        cos_core::Credentials::new("AKIDEXAMPLE", "SECRET-KEY-42").with_security_token("TOKEN-43");
    let client = D::build(config, None);
    // The async client is driven on this thread (`block_on`), so its request spans are seen here too.
    tracing::subscriber::with_default(subscriber, || {
        client
            .put_object(PutObject::new("logged.txt"), "x")
            .unwrap();
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("operation=\"PutObject\""), "{log}");
    assert!(
        log.contains("status=503") && log.contains("status=200"),
        "{log}"
    );
    assert!(
        log.contains("request_id=\"req-err\"") && log.contains("attempt=2"),
        "{log}"
    );
    assert!(log.contains("WARN"), "a retry is a warning: {log}");
    // The server did receive the token and a signature; the log must not show them.
    assert_eq!(
        server.requests()[0].header("x-cos-security-token"),
        Some("TOKEN-43")
    );
    for secret in ["SECRET-KEY-42", "TOKEN-43", "q-signature", "authorization"] {
        assert!(
            !log.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} in {log}"
        );
    }
}

pub fn a_large_file_body_is_streamed_whole<D: Driver>() {
    let server = put_echo();
    let client = D::build(server.config(), None);
    let d = TempDir::new::<D>("large");
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let path = d.file("large.bin", &data);
    let out = client
        .put_object(PutObject::new("large"), Payload::file(&path))
        .unwrap();
    assert_eq!(out.crc64, Some(cos_core::checksum::Crc64::checksum(&data)));
    assert!(server.requests()[0].body == data);
}
