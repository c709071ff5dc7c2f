//! Benchmark: `download_file` of one large object (default 1 GiB) from a local `cos-testkit` server (a
//! separate process, objects on disk), through each transport, beside `curl` (a presigned GET of the same
//! object) and the official Python SDK's `download_file`. Prints MiB/s, wall seconds, CPU seconds and peak
//! RSS for each.
//!
//! ```sh
//! cargo build --release -p cos-testkit --bin cos-testkit
//! bash scripts/conformance.sh --sdk python --mode vhost   # installs the pinned Python SDK once
//! cargo run --release -p cos-examples --example bench_download -- [--size-mib N] [--range-size BYTES] [--concurrency N] [--peers 0]
//! ```
//! The Python SDK is taken from `$COS_CONFORMANCE_HOME/venv` (default `target/conformance/venv`, what
//! `scripts/conformance.sh` installs); its row is skipped with a note when it is missing. cos-rs rows are
//! measured in this process (peak RSS reset before each); curl and Python in child processes.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use cos_core::download::DownloadOptions;
use cos_core::{Config, Credentials, Endpoint};
use cos_examples::{
    cpu_time, make_file, mib_per_sec, peak_rss_bytes, reset_peak_rss, spawn_server, testkit_binary,
};

/// Measures a child command from a Python wrapper: wall seconds, CPU seconds and peak RSS of the children.
const MEASURE: &str = r#"
import resource, subprocess, sys, time
t = time.time()
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.time() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.returncode, wall, u.ru_utime + u.ru_stime, u.ru_maxrss * 1024, r.stderr.decode()[-300:].replace("\n", " "))
"#;

/// The official Python SDK's download_file, timed from inside (argv: addr bucket id key dest part_mb
/// threads crc).
const PY_SDK: &str = r#"
import resource, sys, tempfile, time
from qcloud_cos import CosConfig, CosS3Client
addr, bucket, sid, skey, dest, part_mb, threads, crc = sys.argv[1:9]
client = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=sid, SecretKey=skey, Domain=addr, Scheme="http"))
t, c = time.time(), time.process_time()
client.download_file(Bucket=bucket, Key="bench/dl.bin", DestFilePath=dest, PartSize=int(part_mb), MAXThread=int(threads), EnableCRC=(crc == "1"), DumpRecordDir=tempfile.mkdtemp())
u = resource.getrusage(resource.RUSAGE_SELF)
print(0, time.time() - t, time.process_time() - c, u.ru_maxrss * 1024, "")
"#;

struct Args {
    size_mib: u64,
    range_size: u64,
    concurrency: usize,
    peers: bool,
}

fn args() -> Args {
    let mut a = Args {
        size_mib: 1024,
        range_size: 8 << 20,
        concurrency: 4,
        peers: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--size-mib" => a.size_mib = value().parse().expect("--size-mib N"),
            "--range-size" => a.range_size = value().parse().expect("--range-size BYTES"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--peers" => a.peers = value() != "0",
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn row(name: &str, len: u64, secs: f64, cpu: Option<f64>, rss: Option<u64>, note: &str) {
    println!(
        "{name:<26} {:>9.1} {:>9.2} {:>8} {:>12}  {note}",
        mib_per_sec(len, Duration::from_secs_f64(secs)),
        secs,
        cpu.map(|c| format!("{c:.2}"))
            .unwrap_or_else(|| "n/a".into()),
        rss.map(|b| format!("{:.1}", b as f64 / 1048576.0))
            .unwrap_or_else(|| "n/a".into()),
    );
}

fn parse_measure(line: &str) -> Result<(f64, f64, u64), String> {
    let f: Vec<&str> = line.trim().splitn(5, ' ').collect();
    if f.len() < 4 || f[0] != "0" {
        return Err(format!("failed: {line}"));
    }
    let num = |s: &str| s.parse::<f64>().map_err(|_| line.to_string());
    Ok((num(f[1])?, num(f[2])?, num(f[3])? as u64))
}

/// Checks the downloaded file has the object's length, then removes it.
fn done_with(path: &std::path::Path, len: u64) -> String {
    let got = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(path);
    if got == len {
        String::new()
    } else {
        format!("WRONG LENGTH {got}")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let len = a.size_mib * 1024 * 1024;
    let work = std::env::temp_dir().join(format!("cos-rs-bench-download-{}", std::process::id()));
    std::fs::create_dir_all(work.join("data"))?;
    let source = work.join("source.bin");
    make_file(&source, len, 11)?;
    let bin = testkit_binary()
        .ok_or("build the server first: cargo build --release -p cos-testkit --bin cos-testkit")?;
    let (bucket, id, key) = ("benchbucket-1250000000", "AKIDBENCH", "bench-secret");
    let data_dir = work.join("data");
    let server = spawn_server(
        &bin,
        &[
            "--bucket",
            bucket,
            "--secret-id",
            id,
            "--secret-key",
            key,
            "--data",
            &data_dir.to_string_lossy(),
        ],
    )?;
    let config = Config::new(bucket, "ap-guangzhou", Credentials::new(id, key))?
        .with_endpoint(Endpoint::custom(&server.endpoint)?)?;
    cos_blocking::Client::new(config.clone()).upload_file(
        &source,
        "bench/dl.bin",
        &cos_blocking::UploadOptions::default(),
    )?;
    std::fs::remove_file(&source)?;
    let dest = work.join("dest.bin");
    let options = DownloadOptions::default()
        .range_size(a.range_size)
        .concurrency(a.concurrency);

    println!(
        "{} MiB object, ranges of {} MiB, {} at once; server {} (separate process, objects on disk); \
         the machine is shared, so figures vary from run to run",
        a.size_mib,
        a.range_size / 1048576,
        a.concurrency,
        server.endpoint
    );
    println!(
        "{:<26} {:>9} {:>9} {:>8} {:>12}",
        "client", "MiB/s", "seconds", "cpu s", "peak RSS MiB"
    );

    // cos-rs, blocking.
    {
        let client = cos_blocking::Client::new(config.clone());
        reset_peak_rss();
        let (t0, c0) = (Instant::now(), cpu_time());
        let out = client.download_file("bench/dl.bin", &dest, &options)?;
        let cpu = cpu_time().zip(c0).map(|(b, a)| (b - a).as_secs_f64());
        let secs = t0.elapsed().as_secs_f64();
        let note = format!(
            "{} GETs, crc64 verified {}",
            out.requests,
            done_with(&dest, len)
        );
        row("cos-rs blocking", len, secs, cpu, peak_rss_bytes(), &note);
    }
    // cos-rs, async.
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let client = cos_async::Client::new(config.clone());
            reset_peak_rss();
            let (t0, c0) = (Instant::now(), cpu_time());
            let out = client
                .download_file("bench/dl.bin", &dest, &options)
                .await?;
            let cpu = cpu_time().zip(c0).map(|(b, a)| (b - a).as_secs_f64());
            let secs = t0.elapsed().as_secs_f64();
            let note = format!(
                "{} GETs, crc64 verified {}",
                out.requests,
                done_with(&dest, len)
            );
            row("cos-rs async", len, secs, cpu, peak_rss_bytes(), &note);
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    }
    if a.peers {
        // curl with a presigned GET URL (one GET, one connection, no check).
        let url = cos_core::presign::presigned_url(
            &config,
            http::Method::GET,
            "bench/dl.bin",
            SystemTime::now(),
            Duration::from_secs(3600),
            &[],
            &[],
        )?;
        let out = Command::new("python3")
            .arg("-c")
            .arg(MEASURE)
            .args(["curl", "-sS", "-f", "-o"])
            .arg(&dest)
            .arg(url.to_string())
            .output();
        match out
            .map_err(|e| e.to_string())
            .and_then(|o| parse_measure(&String::from_utf8_lossy(&o.stdout)))
        {
            Ok((secs, cpu, rss)) => row(
                "curl (single GET)",
                len,
                secs,
                Some(cpu),
                Some(rss),
                &format!("no check {}", done_with(&dest, len)),
            ),
            Err(e) => println!("curl                       skipped: {e}"),
        }
        // The official Python SDK's download_file, same range size and threads.
        let home = std::env::var("COS_CONFORMANCE_HOME")
            .unwrap_or_else(|_| format!("{}/../target/conformance", env!("CARGO_MANIFEST_DIR")));
        let python = format!("{home}/venv/bin/python");
        if std::path::Path::new(&python).exists() {
            for (crc, name) in [
                ("0", "python SDK download_file"),
                ("1", "python SDK + EnableCRC"),
            ] {
                let out = Command::new(&python)
                    .arg("-c")
                    .arg(PY_SDK)
                    .args([&server.addr, bucket, id, key])
                    .arg(&dest)
                    .args([
                        &(a.range_size / 1048576).max(1).to_string(),
                        &a.concurrency.to_string(),
                        crc,
                    ])
                    .output()?;
                match parse_measure(&String::from_utf8_lossy(&out.stdout)) {
                    Ok((secs, cpu, rss)) => row(
                        name,
                        len,
                        secs,
                        Some(cpu),
                        Some(rss),
                        &format!("cos-python-sdk-v5 1.9.44 {}", done_with(&dest, len)),
                    ),
                    Err(e) => println!(
                        "{name:<26} failed: {e} {}",
                        String::from_utf8_lossy(&out.stderr)
                            .chars()
                            .rev()
                            .take(300)
                            .collect::<String>()
                            .chars()
                            .rev()
                            .collect::<String>()
                    ),
                }
            }
        } else {
            println!(
                "python SDK                 skipped: {python} missing (bash scripts/conformance.sh --sdk python installs it)"
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
