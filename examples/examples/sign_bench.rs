//! Benchmark: one COS request signature (PUT, 6 signed headers, 2 query parameters), cos-rs against
//! `reqsign-tencent-cos` 3.0.7 (the signer OpenDAL uses), in one process: µs per signature and allocations
//! per signature.
//!
//! ```sh
//! cargo run --release -p cos-examples --example sign_bench -- [ITERATIONS]
//! ```
//! Every round signs a fresh clone of the same request head; the cost of the clone alone is printed too.
//! `cos-rs authorize` is what the drivers call (the signing key is derived once per key time and reused);
//! `cos-rs new key each time` derives the signing key on every call (the worst case, a new second every call).

use std::alloc::System;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime};

use cos_core::auth::{authorize, authorize_with_key, sign_request, KeyTime, SigningKey};
use cos_core::Credentials;
use reqsign_core::SignRequest as _;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SECRET_ID: &str = "AKIDEXAMPLEEXAMPLEEXAMPLEEXAMPLE";
const SECRET_KEY: &str = "gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

fn request() -> http::Request<()> {
    http::Request::put(
        "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/photos/2026/a%20b.jpg?partNumber=3&uploadId=1585130821cbb7df1d11846c073ad648e8f33b087cec2381df437acdc833cf654b9ecc6361",
    )
    .header("host", "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com")
    .header("content-length", "8388608")
    .header("content-type", "application/octet-stream")
    .header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")
    .header("x-cos-storage-class", "STANDARD_IA")
    .header("x-cos-meta-author", "cos-rs")
    .header("user-agent", "bench")
    .body(())
    .unwrap()
}

/// Polls a future that never waits (reqsign's signer is `async` but does no I/O).
fn ready<F: Future>(f: F) -> F::Output {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the signer waited"),
    }
}

type Case<'a> = (&'static str, Box<dyn FnMut(u32) + 'a>);

/// Runs every case `rounds` times, interleaved (so that a burst of load on a shared machine hits all of them
/// alike), `iters` calls per timing; returns the best µs per call and the allocations per call of each.
fn measure(iters: u32, rounds: u32, cases: &mut [Case<'_>]) -> Vec<(f64, f64)> {
    let mut best = vec![Duration::MAX; cases.len()];
    for (_, f) in cases.iter_mut() {
        for i in 0..iters / 10 {
            f(i);
        }
    }
    for _ in 0..rounds {
        for (slot, (_, f)) in best.iter_mut().zip(cases.iter_mut()) {
            let t = Instant::now();
            for i in 0..iters {
                f(i);
            }
            *slot = (*slot).min(t.elapsed());
        }
    }
    best.iter()
        .zip(cases.iter_mut())
        .map(|(b, (_, f))| {
            let region = Region::new(GLOBAL);
            for i in 0..1000 {
                f(i);
            }
            let allocs = region.change().allocations as f64 / 1000.0;
            (b.as_secs_f64() * 1e6 / iters as f64, allocs)
        })
        .collect()
}

fn main() {
    let iters: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ITERATIONS"))
        .unwrap_or(100_000);
    let rounds = 7;
    let base = request();
    let creds = Credentials::new(SECRET_ID, SECRET_KEY);
    let now = SystemTime::now();
    let key_time = KeyTime::around(now, Duration::from_secs(3600));
    let held = SigningKey::new(SECRET_KEY, key_time);

    let cred = reqsign_tencent_cos::Credential {
        secret_id: SECRET_ID.into(),
        secret_key: SECRET_KEY.into(),
        security_token: None,
        expires_in: None,
    };
    let signer = reqsign_tencent_cos::RequestSigner::new();
    let ctx = reqsign_core::Context::new();

    // Both must produce an Authorization for the same head (reqsign signs its own clock's key time).
    let mut check = base.clone();
    authorize(&mut check, &creds, key_time).unwrap();
    let ours = check.headers()["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let (mut parts, _) = base.clone().into_parts();
    ready(signer.sign_request(&ctx, &mut parts, Some(&cred), None)).unwrap();
    let theirs = parts.headers["authorization"].to_str().unwrap().to_string();
    let lists = |a: &str| {
        a.split('&')
            .filter(|p| p.starts_with("q-header-list") || p.starts_with("q-url-param-list"))
            .collect::<Vec<_>>()
            .join("&")
    };
    println!("cos-rs  signs {}", lists(&ours));
    println!("reqsign signs {}", lists(&theirs));

    let mut cases: Vec<Case<'_>> = vec![
        (
            "clone of the request head (baseline)",
            Box::new(|_| {
                black_box(base.clone());
            }),
        ),
        (
            "cos-rs authorize (cached key)",
            Box::new(|_| {
                let mut r = base.clone();
                authorize(&mut r, &creds, key_time).unwrap();
                black_box(r);
            }),
        ),
        (
            "cos-rs authorize_with_key (held)",
            Box::new(|_| {
                let mut r = base.clone();
                authorize_with_key(&mut r, &creds, &held).unwrap();
                black_box(r);
            }),
        ),
        (
            "cos-rs new key each time",
            Box::new(|i| {
                let mut r = base.clone();
                let kt = KeyTime {
                    start: key_time.start + i as u64,
                    end: key_time.end + i as u64,
                };
                authorize(&mut r, &creds, kt).unwrap();
                black_box(r);
            }),
        ),
        (
            "cos-rs sign_request (all strings)",
            Box::new(|_| {
                let mut r = base.clone();
                black_box(sign_request(&mut r, &creds, key_time).unwrap());
            }),
        ),
        (
            "reqsign-tencent-cos 3.0.7",
            Box::new(|_| {
                let (mut p, _) = base.clone().into_parts();
                ready(signer.sign_request(&ctx, &mut p, Some(&cred), None)).unwrap();
                black_box(p);
            }),
        ),
    ];
    let results = measure(iters, rounds, &mut cases);
    println!("{:<34} {:>9} {:>13}", "signer", "µs/op", "allocs/op");
    for ((name, _), (us, allocs)) in cases.iter().zip(&results) {
        println!("{name:<34} {us:>9.3} {allocs:>13.1}");
    }
    let get = |n: &str| {
        cases
            .iter()
            .zip(&results)
            .find(|((name, _), _)| name.starts_with(n))
            .unwrap()
            .1
             .0
    };
    let clone = get("clone");
    let reqsign = get("reqsign");
    println!(
        "speed-up over reqsign: authorize {:.2}×, new key each time {:.2}× (with the clone); {:.2}× and {:.2}× without it",
        reqsign / get("cos-rs authorize (cached"),
        reqsign / get("cos-rs new key"),
        (reqsign - clone) / (get("cos-rs authorize (cached") - clone),
        (reqsign - clone) / (get("cos-rs new key") - clone),
    );
}
