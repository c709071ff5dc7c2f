//! Hostile servers and networks, through both clients (cos-blocking over ureq, cos-async over hyper):
//! every case ends in a typed error (or a correct success) within its documented deadline, with no panic.
//! The servers are `cos_testkit::hostile` scripts on loopback; the deadlines are shortened
//! ([`timeouts`]) so that the suite stays fast, and each case prints its outcome and time per transport.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cos_blocking::{Config, Credentials, Endpoint, Error, RetryPolicy, Timeouts};
use cos_core::error::{IntegrityError, TransportErrorKind};
use cos_core::ops::{GetObject, PutObject, PutObjectOutput};
use cos_testkit::hostile::{response, HostileServer, Reply, Step};

/// Test deadlines: 2 s each, 1 KiB/s after 2 s of grace.
fn timeouts() -> Timeouts {
    let mut t = Timeouts::default();
    t.connect = Duration::from_secs(2);
    t.response_head = Duration::from_secs(2);
    t.idle = Duration::from_secs(2);
    t.min_rate = 1024;
    t.rate_grace = Duration::from_secs(2);
    t
}

fn config(server: &HostileServer) -> Config {
    let mut c = Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        Credentials::new("AKIDEXAMPLE", "secret"),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    c.retry = RetryPolicy::none();
    c.timeouts = timeouts();
    c
}

/// Runs `op` with `body` through both clients: (transport, result, time taken).
fn put_both(
    server: &HostileServer,
    op: PutObject,
    body: Bytes,
) -> Vec<(&'static str, Result<PutObjectOutput, Error>, Duration)> {
    let blocking = cos_blocking::Client::new(config(server));
    let t0 = Instant::now();
    let b = blocking.put_object(op.clone(), body.clone());
    let b_time = t0.elapsed();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = cos_async::Client::new(config(server));
    let t0 = Instant::now();
    let a = rt.block_on(client.put_object(op, body));
    let a_time = t0.elapsed();
    vec![("blocking", b, b_time), ("async", a, a_time)]
}

fn put(server: &HostileServer) -> Vec<(&'static str, Result<PutObjectOutput, Error>, Duration)> {
    put_both(server, PutObject::new("k"), Bytes::from_static(b"hello"))
}

/// Prints and checks every outcome: `check` on the result, and the time within `bound`.
fn expect<T: std::fmt::Debug>(
    case: &str,
    outcomes: Vec<(&'static str, Result<T, Error>, Duration)>,
    bound: Duration,
    check: impl Fn(&Result<T, Error>) -> bool,
) {
    for (transport, result, took) in outcomes {
        let shown = match &result {
            Ok(v) => format!("ok {v:?}"),
            Err(e) => format!("{e}"),
        };
        println!(
            "{case:<28} {transport:<8} {:>6.2} s  {}",
            took.as_secs_f64(),
            shown.chars().take(160).collect::<String>()
        );
        assert!(check(&result), "{case} / {transport}: {result:?}");
        // The deadline is the feature under test; the slack absorbs a loaded CI machine.
        assert!(
            took <= bound + Duration::from_secs(3),
            "{case} / {transport}: took {took:?}, deadline {bound:?}"
        );
        assert!(
            !shown.chars().any(|c| c.is_control()),
            "{case} / {transport}: control characters in {shown:?}"
        );
    }
}

fn transport_kind<T>(r: &Result<T, Error>) -> Option<TransportErrorKind> {
    match r {
        Err(Error::Transport(e)) => Some(e.kind),
        _ => None,
    }
}

fn is_timeout<T>(r: &Result<T, Error>) -> bool {
    transport_kind(r) == Some(TransportErrorKind::Timeout)
}

const XML: (&str, &str) = ("Content-Type", "application/xml");

#[test]
fn a_skewed_date_that_overflows_is_the_service_error_not_a_panic() {
    let body = "<Error><Code>RequestTimeTooSkewed</Code><Message>skewed</Message></Error>";
    for date in [
        "Thu, 01 Jan 1970 00:00:9223372036854776808 GMT",
        "Sat, 01 Jan 0 00:00:00 GMT",
        "Mon, 01 Jan 1900 00:00:00 GMT",
        "Thu, 99999999999999999999 Jan 1970 00:00:00 GMT",
    ] {
        let server = HostileServer::start(move |_| {
            Reply::respond("403 Forbidden", &[XML, ("Date", date)], body)
        })
        .unwrap();
        expect("skewed Date", put(&server), Duration::ZERO, |r| {
            r.as_ref().err().and_then(Error::code) == Some("RequestTimeTooSkewed")
        });
    }
}

#[test]
fn a_skewed_date_during_a_multipart_upload_fails_the_part_cleanly() {
    let server = HostileServer::start(|req| {
        let q = req.query();
        if req.method == "POST" && q.contains("uploads") {
            Reply::respond(
                "200 OK",
                &[XML],
                "<InitiateMultipartUploadResult><Bucket>examplebucket-1250000000</Bucket>\
                 <Key>big</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>",
            )
        } else if req.method == "DELETE" {
            Reply::respond("204 No Content", &[], "")
        } else {
            Reply::respond(
                "403 Forbidden",
                &[
                    XML,
                    ("Date", "Thu, 01 Jan 1970 00:00:9223372036854776808 GMT"),
                ],
                "<Error><Code>RequestTimeTooSkewed</Code><Message>m</Message></Error>",
            )
        }
    })
    .unwrap();
    let dir = std::env::temp_dir().join(format!("cos-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big");
    std::fs::write(&file, vec![7u8; 3 * 1024 * 1024]).unwrap();
    let opts = cos_blocking::UploadOptions {
        part_size: Some(1024 * 1024),
        threshold: 1024 * 1024,
        ..Default::default()
    };
    let blocking = cos_blocking::Client::new(config(&server));
    let t0 = Instant::now();
    let b = blocking.upload_file(&file, "big", &opts).map(|o| o.etag);
    let b_time = t0.elapsed();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = cos_async::Client::new(config(&server));
    let t0 = Instant::now();
    let a = rt
        .block_on(client.upload_file(&file, "big", &opts))
        .map(|o| o.etag);
    let a_time = t0.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    expect(
        "skewed Date (multipart)",
        vec![("blocking", b, b_time), ("async", a, a_time)],
        Duration::ZERO,
        |r| r.as_ref().err().and_then(Error::code) == Some("RequestTimeTooSkewed"),
    );
}

#[test]
fn a_response_head_dripped_one_byte_a_second_times_out() {
    let server = HostileServer::start(|_| {
        Reply::steps([
            Step::ReadBody,
            Step::Drip {
                bytes: response("200 OK", &[("ETag", "\"x\"")], ""),
                every: Duration::from_secs(1),
            },
        ])
    })
    .unwrap();
    expect(
        "drip head 1 B/s",
        put(&server),
        timeouts().response_head,
        is_timeout,
    );
}

#[test]
fn a_response_body_dripped_one_byte_a_second_times_out() {
    let server = HostileServer::start(|_| {
        let mut head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 500\r\n\r\n".to_vec();
        head.extend_from_slice(b"<Error>");
        Reply::steps([
            Step::ReadBody,
            Step::Write(head),
            Step::Drip {
                bytes: vec![b'x'; 493],
                every: Duration::from_secs(1),
            },
        ])
    })
    .unwrap();
    let t = timeouts();
    // Cut off at the first byte after the grace period.
    expect(
        "drip body 1 B/s",
        put(&server),
        t.rate_grace + Duration::from_secs(1),
        is_timeout,
    );
}

#[test]
fn a_server_frozen_before_answering_times_out_at_the_head_deadline() {
    let server = HostileServer::start(|_| Reply::steps([Step::ReadBody, Step::Freeze])).unwrap();
    expect(
        "frozen before head",
        put(&server),
        timeouts().response_head,
        is_timeout,
    );
}

#[test]
fn a_server_frozen_mid_body_times_out_at_the_idle_deadline() {
    let server = HostileServer::start(|_| {
        Reply::steps([
            Step::ReadBody,
            Step::Write(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n<Error>".to_vec()),
            Step::Freeze,
        ])
    })
    .unwrap();
    expect("frozen mid-body", put(&server), timeouts().idle, is_timeout);
}

#[test]
fn a_server_that_stops_reading_an_upload_times_out() {
    let server = HostileServer::start(|_| Reply::steps([Step::Freeze])).unwrap();
    let body = Bytes::from(vec![1u8; 32 * 1024 * 1024]);
    let t = timeouts();
    // Whatever the socket buffers absorb, then either the idle or the head deadline.
    let bound = t.connect + t.rate_grace + t.idle + t.response_head;
    expect(
        "frozen while uploading",
        put_both(&server, PutObject::new("k"), body),
        bound,
        is_timeout,
    );
}

#[test]
fn a_server_that_takes_an_upload_slowly_is_cut_off_at_the_minimum_rate() {
    let server = HostileServer::start(|_| {
        Reply::steps([Step::DripRead {
            every: Duration::from_millis(10),
        }])
    })
    .unwrap();
    let body = Bytes::from(vec![1u8; 16 * 1024 * 1024]);
    let t = timeouts();
    let bound = t.connect + t.rate_grace + t.idle + t.response_head;
    expect(
        "slow reader 100 B/s",
        put_both(&server, PutObject::new("k"), body),
        bound,
        is_timeout,
    );
}

#[test]
fn a_huge_answer_to_a_put_is_refused_at_the_core_limit() {
    // 200 MB announced with Content-Length, and 256 MiB in one chunk without.
    let server = HostileServer::start(|req| {
        let head = if req.number % 2 == 1 {
            b"HTTP/1.1 200 OK\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\nContent-Length: 200000000\r\n\r\n"
                .to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\nTransfer-Encoding: chunked\r\n\r\n10000000\r\n"
                .to_vec()
        };
        Reply::steps([
            Step::ReadBody,
            Step::Write(head),
            Step::Flood {
                fill: b' ',
                total: 200_000_000,
            },
            Step::Close,
        ])
    })
    .unwrap();
    for case in ["huge 2xx (length)", "huge 2xx (chunked)"] {
        let blocking = cos_blocking::Client::new(config(&server));
        let t0 = Instant::now();
        let b = blocking.put_object(PutObject::new("k"), "hello");
        let bt = t0.elapsed();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = cos_async::Client::new(config(&server));
        let t0 = Instant::now();
        let a = rt.block_on(client.put_object(PutObject::new("k"), "hello"));
        let at = t0.elapsed();
        expect(
            case,
            vec![("blocking", b, bt), ("async", a, at)],
            Duration::ZERO,
            |r| transport_kind(r) == Some(TransportErrorKind::TooLarge),
        );
    }
}

#[test]
fn a_huge_error_document_is_cut_at_the_limit() {
    let server = HostileServer::start(|_| {
        Reply::steps([
            Step::ReadBody,
            Step::Write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 200000000\r\n\r\n<Error><Code>AccessDenied</Code><Message>"
                    .to_vec(),
            ),
            Step::Flood {
                fill: b'A',
                total: 200_000_000,
            },
            Step::Close,
        ])
    })
    .unwrap();
    expect(
        "huge error document",
        put(&server),
        Duration::ZERO,
        |r| matches!(r, Err(Error::UnexpectedResponse(e)) if e.status == 403 && e.reason.contains("body cut after 65536 bytes")),
    );
}

#[test]
fn server_text_is_escaped_and_cut_but_kept_whole_in_the_error() {
    let message = format!(
        "\x1b[2K\rupload ok: 100%\x07 {}",
        "long ".repeat(6000) // 30 KB: within the error-document limit
    );
    let body = format!("<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>");
    let server =
        HostileServer::start(move |_| Reply::respond("403 Forbidden", &[XML], &body)).unwrap();
    let outcomes = put(&server);
    for (_, r, _) in &outcomes {
        let Err(Error::Service(e)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(e.message, message.trim_end());
        let shown = r.as_ref().unwrap_err().to_string();
        assert!(shown.len() < 1000, "{} chars", shown.len());
        assert!(shown.contains("\\u{1b}[2K\\rupload ok"), "{shown}");
    }
    expect("escaped 30 KB Message", outcomes, Duration::ZERO, |r| {
        r.as_ref().err().and_then(Error::code) == Some("AccessDenied")
    });
}

#[test]
fn a_put_answer_that_verifies_nothing_is_an_integrity_error() {
    let server = HostileServer::start(|req| {
        if req.number % 2 == 1 {
            Reply::respond("200 OK", &[], "")
        } else {
            Reply::respond(
                "200 OK",
                &[("ETag", "\"zz\""), ("x-cos-hash-crc64ecma", "not-a-number")],
                "",
            )
        }
    })
    .unwrap();
    for case in ["no ETag, no CRC-64", "unparseable ETag, CRC-64"] {
        expect(case, put(&server), Duration::ZERO, |r| {
            matches!(r, Err(Error::Integrity(IntegrityError::Unverified { .. })))
        });
    }
    // Opting in makes it a success that says so.
    let server = HostileServer::start(|_| Reply::respond("200 OK", &[], "")).unwrap();
    let op = PutObject::new("k").accept_unverified();
    expect(
        "no ETag, accepted",
        put_both(&server, op, Bytes::from_static(b"hello")),
        Duration::ZERO,
        |r| matches!(r, Ok(o) if o.verified == cos_core::ops::Verified::Nothing),
    );
}

#[test]
fn malformed_status_lines_chunked_encodings_and_header_floods_are_transport_errors() {
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..20_000 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("status line not a number", b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ("status line garbage", b"\x16\x03\x01garbage\x1b[2J\r\n\r\n".to_vec()),
        (
            "chunk size not hex",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "chunk size overflow",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n"
                .to_vec(),
        ),
        ("20,000 headers", many),
    ];
    for (case, bytes) in cases {
        let server = HostileServer::start(move |_| {
            Reply::steps([Step::ReadBody, Step::Write(bytes.clone()), Step::Close])
        })
        .unwrap();
        expect(case, put(&server), Duration::ZERO, |r| {
            matches!(r, Err(Error::Transport(_)))
        });
    }
}

#[test]
fn a_reset_mid_body_is_a_transport_error() {
    let server = HostileServer::start(|_| {
        Reply::steps([
            Step::ReadBody,
            Step::Write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<Init".to_vec()),
            Step::Close,
        ])
    })
    .unwrap();
    expect("closed mid-body", put(&server), Duration::ZERO, |r| {
        matches!(r, Err(Error::Transport(_)))
    });
    // Closing without reading a large upload makes the kernel send a reset.
    let server = HostileServer::start(|_| Reply::steps([Step::Close])).unwrap();
    expect(
        "reset while uploading",
        put_both(
            &server,
            PutObject::new("k"),
            Bytes::from(vec![0u8; 4 << 20]),
        ),
        Duration::ZERO,
        |r| matches!(r, Err(Error::Transport(_))),
    );
}

#[test]
fn redirects_are_answers_not_followed() {
    let server = HostileServer::start(|_| {
        Reply::respond(
            "301 Moved Permanently",
            &[("Location", "http://169.254.169.254/latest/meta-data/")],
            "",
        )
    })
    .unwrap();
    expect(
        "redirect 301",
        put(&server),
        Duration::ZERO,
        |r| matches!(r, Err(Error::UnexpectedResponse(e)) if e.status == 301),
    );
    assert_eq!(
        server.requests(),
        2,
        "one request per client, no redirect followed"
    );
}

#[test]
fn an_xml_bomb_is_not_expanded() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><Error><Code>&d;</Code><Message>&d;&d;&d;&d;</Message></Error>"#;
    let server =
        HostileServer::start(move |_| Reply::respond("400 Bad Request", &[XML], bomb)).unwrap();
    expect("XML bomb", put(&server), Duration::ZERO, |r| {
        matches!(r, Err(Error::UnexpectedResponse(_) | Error::Service(_)))
            && r.as_ref().unwrap_err().to_string().len() < 2000
    });
}

#[test]
fn a_get_is_bounded_by_its_range() {
    let server = HostileServer::start(|_| {
        Reply::steps([
            Step::Write(b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n".to_vec()),
            Step::Flood { fill: b'x', total: 1 << 20 },
            Step::Close,
        ])
    })
    .unwrap();
    let blocking = cos_blocking::Client::new(config(&server));
    let t0 = Instant::now();
    let b = blocking.get_object(GetObject::new("k").range(0, Some(9)));
    let bt = t0.elapsed();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = cos_async::Client::new(config(&server));
    let t0 = Instant::now();
    let a = rt.block_on(client.get_object(GetObject::new("k").range(0, Some(9))));
    let at = t0.elapsed();
    expect(
        "GET range, 1 MiB sent",
        vec![("blocking", b, bt), ("async", a, at)],
        Duration::ZERO,
        |r| transport_kind(r) == Some(TransportErrorKind::TooLarge),
    );
}

#[test]
fn retries_of_a_hostile_answer_are_bounded() {
    let server = HostileServer::start(|_| Reply::steps([Step::ReadBody, Step::Close])).unwrap();
    let mut c = config(&server);
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    let blocking = cos_blocking::Client::new(c);
    let r = blocking.put_object(PutObject::new("k"), "hello");
    assert!(matches!(r, Err(Error::Transport(_))), "{r:?}");
    assert_eq!(server.requests(), 3);
}
