//! Peak memory stays bounded whatever the server sends: 200 MB answers (announced, chunked, and as error
//! documents), many at once, through both clients. Measured as the growth of this process's peak resident
//! set (`VmHWM` in `/proc/self/status`; this file holds a single test so that nothing else runs
//! alongside). The figure is printed; the assertion is a loose bound (64 MiB) on something that grew by
//! the whole answer (200 MB per request) before the limits.

use std::time::Duration;

use cos_blocking::{Config, Credentials, Endpoint, RetryPolicy};
use cos_core::ops::PutObject;
use cos_testkit::hostile::{HostileServer, Reply, Step};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

const SENT: u64 = 200_000_000;

#[test]
fn peak_memory_is_bounded_whatever_the_server_sends() {
    let Some(before) = peak_rss_kib() else {
        println!("no /proc/self/status: skipped");
        return;
    };
    let heads: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\nContent-Length: 200000000\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nETag: \"5d41402abc4b2a76b9719d911017c592\"\r\nTransfer-Encoding: chunked\r\n\r\nbebc200\r\n",
        b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\nbebc200\r\n<Error><Message>",
    ];
    let server = HostileServer::start(move |req| {
        let head = heads[req.number % heads.len()].to_vec();
        Reply::steps([
            Step::ReadBody,
            Step::Write(head),
            Step::Flood {
                fill: b'A',
                total: SENT,
            },
            Step::Close,
        ])
    })
    .unwrap();
    let mut config = Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        Credentials::new("AKIDEXAMPLE", "secret"),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    // Retries read the answer again: each attempt is bounded too.
    config.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let blocking = cos_blocking::Client::new(config.clone());
    for _ in 0..6 {
        assert!(blocking.put_object(PutObject::new("k"), "hello").is_err());
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = cos_async::Client::new(config);
    rt.block_on(async {
        // 50 at once.
        let calls = (0..50).map(|_| client.put_object(PutObject::new("k"), "hello"));
        for r in futures_join_all(calls).await {
            assert!(r.is_err());
        }
    });
    let after = peak_rss_kib().unwrap();
    let grew_mib = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "peak RSS {:.1} MiB -> {:.1} MiB (+{grew_mib:.1} MiB) over {} requests whose servers offered {} MB each",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        server.requests(),
        SENT / 1_000_000
    );
    assert!(grew_mib < 64.0, "peak RSS grew by {grew_mib:.1} MiB");
}

/// Polls every future to completion concurrently (no extra dependency).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut out = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.unwrap()));
    out
}
