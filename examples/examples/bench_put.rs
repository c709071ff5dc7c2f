//! Benchmark: PUT one large file (default 1 GiB), streamed from disk, through each transport to a local
//! `cos-testkit` server in sink mode (it checks the MD5 and length, then discards the bytes), and print MiB/s,
//! CPU seconds and the client's peak RSS.
//!
//! ```sh
//! cargo build --release -p cos-testkit --bin cos-testkit
//! cargo run --release -p cos-examples --example bench_put -- [SIZE_MIB] [FILE]
//! ```
//! The server runs in a child process, so the figures are the client's alone.

use std::time::Instant;

use cos_core::ops::PutObject;
use cos_core::{Config, Credentials, Endpoint};
use cos_examples::{
    cpu_time, make_file, mib_per_sec, peak_rss_bytes, reset_peak_rss, spawn_server, testkit_binary,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let path = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cos-rs-bench-{size_mib}MiB.bin")));
    let len = size_mib * 1024 * 1024;
    make_file(&path, len, 7)?;

    let bin = testkit_binary()
        .ok_or("build the server first: cargo build --release -p cos-testkit --bin cos-testkit")?;
    let (bucket, id, key) = ("benchbucket-1250000000", "AKIDBENCH", "bench-secret");
    let server = spawn_server(
        &bin,
        &[
            "--bucket",
            bucket,
            "--secret-id",
            id,
            "--secret-key",
            key,
            "--sink",
        ],
    )?;
    let config = Config::new(bucket, "ap-guangzhou", Credentials::new(id, key))?
        .with_endpoint(Endpoint::custom(&server.endpoint)?)?;

    println!(
        "file {} ({size_mib} MiB), server {} (sink mode, separate process)",
        path.display(),
        server.endpoint
    );
    println!(
        "{:<10} {:>10} {:>9} {:>9} {:>12}",
        "transport", "MiB/s", "seconds", "cpu s", "peak RSS MiB"
    );

    // Blocking.
    {
        let client = cos_blocking::Client::new(config.clone());
        // Warm the connection pool so connection set-up is not measured.
        client.put_object(
            PutObject::new("warm"),
            cos_blocking::Body::from(b"warm".to_vec()),
        )?;
        reset_peak_rss();
        let (t0, c0) = (Instant::now(), cpu_time());
        let out = client.put_object(
            PutObject::new("bench/blocking.bin"),
            cos_blocking::Body::file(&path)?,
        )?;
        report("blocking", len, t0, c0);
        assert!(out.etag.len() >= 34, "ETag {}", out.etag);
    }

    // Async.
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let client = cos_async::Client::new(config.clone());
            client
                .put_object(
                    PutObject::new("warm"),
                    cos_async::Body::from(b"warm".to_vec()),
                )
                .await?;
            reset_peak_rss();
            let (t0, c0) = (Instant::now(), cpu_time());
            client
                .put_object(
                    PutObject::new("bench/async.bin"),
                    cos_async::Body::file(&path)?,
                )
                .await?;
            report("async", len, t0, c0);
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    }
    Ok(())
}

fn report(name: &str, len: u64, t0: Instant, c0: Option<std::time::Duration>) {
    let elapsed = t0.elapsed();
    let cpu = match (cpu_time(), c0) {
        (Some(b), Some(a)) => format!("{:.2}", (b - a).as_secs_f64()),
        _ => "n/a".into(),
    };
    let rss = peak_rss_bytes()
        .map(|b| format!("{:.1}", b as f64 / 1048576.0))
        .unwrap_or("n/a".into());
    println!(
        "{name:<10} {:>10.1} {:>9.2} {cpu:>9} {rss:>12}",
        mib_per_sec(len, elapsed),
        elapsed.as_secs_f64()
    );
}
