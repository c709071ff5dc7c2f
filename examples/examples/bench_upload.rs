//! Benchmark: `upload_file` of one large file (default 1 GiB) to a local `cos-testkit` server in sink mode,
//! through each transport, beside `curl -T` (a presigned PUT of the same file) and the official Python SDK's
//! `upload_file`. Prints MiB/s, CPU seconds and peak RSS for each.
//!
//! ```sh
//! cargo build --release -p cos-testkit --bin cos-testkit
//! cargo run --release -p cos-examples --example bench_upload -- [--size-mib N] [--part-size BYTES] [--concurrency N] [--peers 0] \
//!     [--runs N] [--md5 0]
//! ```
//! `--peers 0` measures cos-rs alone (no curl, Python or Node rows); `--md5 0` leaves out cos-rs's rows with
//! `UploadOptions::verify_md5`. `--runs N` runs every client N times, interleaved (so that a burst of load
//! from elsewhere hits all alike), and prints each one's best wall time, least CPU and highest peak RSS.
//! The server runs in a child process, so the figures are the client's alone. The Python SDK comes from
//! `../shared/oracles/setup.sh` (installed on first use); it is skipped with a note when unavailable.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

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
print(r.returncode, wall, u.ru_utime + u.ru_stime, u.ru_maxrss * 1024, r.stdout.decode()[-200:].replace("\n", " "), r.stderr.decode()[-300:].replace("\n", " "))
"#;

/// The official Python SDK's upload_file, timed from inside (argv: addr bucket id key file part_mb threads).
const PY_SDK: &str = r#"
import resource, sys, time
from qcloud_cos import CosConfig, CosS3Client
addr, bucket, sid, skey, path, part_mb, threads, md5 = sys.argv[1:9]
client = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=sid, SecretKey=skey, Domain=addr, Scheme="http"))
t, c = time.time(), time.process_time()
client.upload_file(Bucket=bucket, Key="bench/python.bin", LocalFilePath=path, PartSize=int(part_mb), MAXThread=int(threads), EnableMD5=(md5 == "1"))
u = resource.getrusage(resource.RUSAGE_SELF)
print(0, time.time() - t, time.process_time() - c, u.ru_maxrss * 1024, "", "")
"#;

/// The official Node SDK's sliceUploadFile, timed from inside (argv: addr bucket id key file part_bytes threads).
const NODE_SDK: &str = r#"
const COS = require('cos-nodejs-sdk-v5');
const [addr, Bucket, SecretId, SecretKey, FilePath, part, threads] = process.argv.slice(1);
const cos = new COS({ SecretId, SecretKey, Domain: addr, Protocol: 'http:', ChunkParallelLimit: +threads });
const t = process.hrtime.bigint(), c = process.cpuUsage();
cos.sliceUploadFile({ Bucket, Region: 'ap-guangzhou', Key: 'bench/node.bin', FilePath, ChunkSize: +part, AsyncLimit: +threads }, (err) => {
  if (err) { console.log('1 0 0 0', JSON.stringify(err).slice(0, 200)); process.exit(1); }
  const u = process.cpuUsage(c), r = process.resourceUsage();
  console.log(0, Number(process.hrtime.bigint() - t) / 1e9, (u.user + u.system) / 1e6, r.maxRSS * 1024, '', '');
});
"#;

struct Args {
    size_mib: u64,
    part_size: u64,
    concurrency: usize,
    peers: bool,
    runs: usize,
    md5: bool,
}

fn args() -> Args {
    let mut a = Args {
        size_mib: 1024,
        part_size: 8 * 1024 * 1024,
        concurrency: 3,
        peers: true,
        runs: 1,
        md5: true,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for w in v.windows(2) {
        match w[0].as_str() {
            "--size-mib" => a.size_mib = w[1].parse().expect("--size-mib N"),
            "--part-size" => a.part_size = w[1].parse().expect("--part-size BYTES"),
            "--concurrency" => a.concurrency = w[1].parse().expect("--concurrency N"),
            "--peers" => a.peers = w[1] != "0",
            "--runs" => a.runs = w[1].parse::<usize>().expect("--runs N").max(1),
            "--md5" => a.md5 = w[1] != "0",
            _ => {}
        }
    }
    a
}

/// One client's figures over the runs: the best wall time, the least CPU, the highest peak RSS.
#[derive(Default)]
struct Best {
    secs: Option<f64>,
    cpu: Option<f64>,
    rss: Option<u64>,
    note: String,
}

impl Best {
    fn add(&mut self, secs: f64, cpu: Option<f64>, rss: Option<u64>, note: String) {
        self.secs = Some(self.secs.map_or(secs, |s| s.min(secs)));
        if let Some(c) = cpu {
            self.cpu = Some(self.cpu.map_or(c, |b| b.min(c)));
        }
        if let Some(r) = rss {
            self.rss = Some(self.rss.map_or(r, |b| b.max(r)));
        }
        self.note = note;
    }
}

fn row(name: &str, len: u64, b: &Best) {
    let Some(secs) = b.secs else {
        println!("{name:<26} {}", b.note);
        return;
    };
    let gib = len as f64 / (1u64 << 30) as f64;
    println!(
        "{name:<26} {:>9.1} {:>9.2} {:>8} {:>10} {:>12}  {}",
        mib_per_sec(len, Duration::from_secs_f64(secs)),
        secs,
        b.cpu
            .map(|c| format!("{c:.2}"))
            .unwrap_or_else(|| "n/a".into()),
        b.cpu
            .map(|c| format!("{:.2}", c / gib))
            .unwrap_or_else(|| "n/a".into()),
        b.rss
            .map(|r| format!("{:.1}", r as f64 / 1048576.0))
            .unwrap_or_else(|| "n/a".into()),
        b.note
    );
}

fn measured(cmd: &[String]) -> Result<(f64, f64, u64, String), String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(MEASURE)
        .args(cmd)
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    parse_measure(&String::from_utf8_lossy(&out.stdout))
}

fn parse_measure(line: &str) -> Result<(f64, f64, u64, String), String> {
    let f: Vec<&str> = line.trim().splitn(5, ' ').collect();
    if f.len() < 4 || f[0] != "0" {
        return Err(format!("failed: {line}"));
    }
    Ok((
        f[1].parse().map_err(|_| line.to_string())?,
        f[2].parse().map_err(|_| line.to_string())?,
        f[3].parse().map_err(|_| line.to_string())?,
        f.get(4).unwrap_or(&"").to_string(),
    ))
}

/// The official SDKs' runners, when `../shared/oracles/setup.sh` installed them: (python, node_modules).
fn peers() -> (Option<String>, Option<String>) {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracles/setup.sh");
    let home = std::env::var("COS_ORACLES_HOME").ok().or_else(|| {
        let out = Command::new("bash").arg(&shared).output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(str::to_string)
    });
    let python = home
        .as_ref()
        .map(|h| format!("{h}/venv/bin/python"))
        .filter(|p| std::path::Path::new(p).exists());
    let node = home
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| format!("{h}/.cache/cos-oracles"))
        })
        .map(|h| format!("{h}/node/node_modules"))
        .filter(|p| std::path::Path::new(p).join("cos-nodejs-sdk-v5").exists());
    (python, node)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let len = a.size_mib * 1024 * 1024;
    let path = std::env::temp_dir().join(format!("cos-rs-bench-{}MiB.bin", a.size_mib));
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
    let (python, node) = if a.peers { peers() } else { (None, None) };

    println!(
        "{} MiB file, part size {} MiB, {} parts in flight; server {} in sink mode (separate process); \
         {} run(s) of every client, interleaved: best wall time, least CPU, highest peak RSS",
        a.size_mib,
        a.part_size / 1048576,
        a.concurrency,
        server.endpoint,
        a.runs
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let blocking = cos_blocking::Client::new(config.clone());
    let asynchronous = cos_async::Client::new(config.clone());
    let options = |md5: bool| cos_core::upload::UploadOptions {
        part_size: Some(a.part_size),
        concurrency: a.concurrency,
        resume_unfinished: false,
        verify_md5: md5,
        ..Default::default()
    };
    let md5_modes: &[bool] = if a.md5 { &[false, true] } else { &[false] };
    // Rows, in print order.
    let names = [
        "cos-rs blocking",
        "cos-rs blocking + MD5",
        "cos-rs async",
        "cos-rs async + MD5",
        "curl -T (single PUT)",
        "python SDK upload_file",
        "python SDK + EnableMD5",
        "node SDK sliceUploadFile",
    ];
    let mut best: Vec<Best> = names.iter().map(|_| Best::default()).collect();
    for _ in 0..a.runs {
        // cos-rs, in this process (CPU and peak RSS of this process during the upload).
        for &md5 in md5_modes {
            let o = options(md5);
            reset_peak_rss();
            let (t0, c0) = (Instant::now(), cpu_time());
            let out = blocking.upload_file(&path, "bench/blocking.bin", &o)?;
            let cpu = cpu_time().zip(c0).map(|(b, a)| (b - a).as_secs_f64());
            best[usize::from(md5)].add(
                t0.elapsed().as_secs_f64(),
                cpu,
                peak_rss_bytes(),
                format!("{} parts, crc64 {:?}", out.parts, out.crc64),
            );
            reset_peak_rss();
            let (t0, c0) = (Instant::now(), cpu_time());
            let out = rt.block_on(asynchronous.upload_file(&path, "bench/async.bin", &o))?;
            let cpu = cpu_time().zip(c0).map(|(b, a)| (b - a).as_secs_f64());
            best[2 + usize::from(md5)].add(
                t0.elapsed().as_secs_f64(),
                cpu,
                peak_rss_bytes(),
                format!("{} parts, crc64 {:?}", out.parts, out.crc64),
            );
        }
        if !a.peers {
            continue;
        }
        // curl -T with a presigned PUT URL (one PUT, one connection).
        let url = cos_core::presign::presigned_url(
            &config,
            http::Method::PUT,
            "bench/curl.bin",
            SystemTime::now(),
            Duration::from_secs(3600),
            &[],
            &[],
        )?;
        let curl = [
            "curl",
            "-sS",
            "-f",
            "-T",
            &path.to_string_lossy(),
            &url.to_string(),
            "-o",
            "/dev/null",
        ]
        .map(String::from);
        match measured(&curl) {
            Ok((secs, cpu, rss, _)) => best[4].add(secs, Some(cpu), Some(rss), String::new()),
            Err(e) => best[4].note = format!("skipped: {e}"),
        }
        // The official Python SDK's upload_file, same part size and threads.
        match &python {
            Some(py) => {
                for (md5, i) in [("0", 5), ("1", 6)] {
                    let out = Command::new(py)
                        .arg("-c")
                        .arg(PY_SDK)
                        .args([
                            &server.addr,
                            bucket,
                            id,
                            key,
                            &path.to_string_lossy(),
                            &(a.part_size / 1048576).to_string(),
                            &a.concurrency.to_string(),
                            md5,
                        ])
                        .output()?;
                    match parse_measure(&String::from_utf8_lossy(&out.stdout)) {
                        Ok((secs, cpu, rss, _)) => best[i].add(
                            secs,
                            Some(cpu),
                            Some(rss),
                            "cos-python-sdk-v5 1.9.44".into(),
                        ),
                        Err(e) => {
                            best[i].note =
                                format!("failed: {e} {}", String::from_utf8_lossy(&out.stderr))
                        }
                    }
                }
            }
            None => {
                for i in [5, 6] {
                    best[i].note = "skipped: ../shared/oracles/setup.sh not found or failed".into();
                }
            }
        }
        // The official Node SDK's sliceUploadFile, same part size and parts in flight.
        match &node {
            Some(modules) => {
                let out = Command::new("node")
                    .env("NODE_PATH", modules)
                    .arg("-e")
                    .arg(NODE_SDK)
                    .args([
                        &server.addr,
                        bucket,
                        id,
                        key,
                        &path.to_string_lossy(),
                        &a.part_size.to_string(),
                        &a.concurrency.to_string(),
                    ])
                    .output()?;
                match parse_measure(&String::from_utf8_lossy(&out.stdout)) {
                    Ok((secs, cpu, rss, _)) => best[7].add(
                        secs,
                        Some(cpu),
                        Some(rss),
                        "cos-nodejs-sdk-v5 2.15.4".into(),
                    ),
                    Err(e) => {
                        best[7].note =
                            format!("failed: {e} {}", String::from_utf8_lossy(&out.stderr))
                    }
                }
            }
            None => best[7].note = "skipped: run ../shared/oracles/setup.sh first".into(),
        }
    }
    println!(
        "{:<26} {:>9} {:>9} {:>8} {:>10} {:>12}",
        "client", "MiB/s", "seconds", "cpu s", "cpu s/GiB", "peak RSS MiB"
    );
    for (i, name) in names.iter().enumerate() {
        let shown = if i < 4 {
            md5_modes.contains(&(i % 2 == 1))
        } else {
            a.peers
        };
        if shown {
            row(name, len, &best[i]);
        }
    }
    // Wall-time ratios of cos-rs (default CRC-64 verification) to the peers, from the best runs.
    let ratio = |peer: usize, ours: usize| {
        best[peer]
            .secs
            .zip(best[ours].secs)
            .map(|(p, o)| format!("{:.2}x", p / o))
            .unwrap_or_else(|| "n/a".into())
    };
    if a.peers {
        for (ours, name) in [(0, "blocking"), (2, "async")] {
            println!(
                "cos-rs {name}: {} faster than python + EnableMD5, {} than python, {} than node \
                 sliceUploadFile (wall, best of {})",
                ratio(6, ours),
                ratio(5, ours),
                ratio(7, ours),
                a.runs
            );
        }
    }
    Ok(())
}
