//! Benchmark: many small files through the `upload` command (one client, `upload_files`, `--file-parallel`)
//! on each transport, beside the official Python SDK's `upload_file` from a thread pool of 3 and of 16
//! threads sharing one client. Prints objects per second, best of `--runs`.
//!
//! ```sh
//! cargo build --release -p cos-testkit --bin cos-testkit
//! cargo build --release -p cos-examples --example upload
//! cargo run --release -p cos-examples --example bench_batch -- [--files 10000] [--size 4096] [--runs 3] \
//!     [--file-parallel N[,N…]]   # default: the command's own default
//! ```
//! The server (`cos-testkit serve --sink`) runs in a child process, and so does the command: its figure
//! includes starting the process, listing the files and printing the summary, as a user sees it. The Python
//! figure is timed inside the interpreter around the thread pool only. The Python SDK comes from
//! `../shared/oracles/setup.sh`; it is skipped with a note when unavailable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cos_examples::{spawn_server, testkit_binary};

/// The official Python SDK: one client, a pool of N threads, `upload_file` per file.
const PY_BATCH: &str = r#"
import os, sys, time
from concurrent.futures import ThreadPoolExecutor
from qcloud_cos import CosConfig, CosS3Client
addr, bucket, sid, skey, root, threads = sys.argv[1:7]
n = int(threads)
files = sorted(f for f in os.listdir(root) if f.startswith('f'))
client = CosS3Client(CosConfig(Region="ap-guangzhou", SecretId=sid, SecretKey=skey, Domain=addr,
                               Scheme="http", PoolConnections=n, PoolMaxSize=n))
def up(name):
    client.upload_file(Bucket=bucket, Key="python/" + name, LocalFilePath=os.path.join(root, name))
t = time.time()
with ThreadPoolExecutor(n) as ex:
    list(ex.map(up, files))
print(len(files) / (time.time() - t))
"#;

struct Args {
    files: usize,
    size: usize,
    runs: usize,
    file_parallel: Vec<usize>,
}

fn args() -> Args {
    let mut a = Args {
        files: 10_000,
        size: 4096,
        runs: 3,
        file_parallel: vec![0], // 0: the command's default
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for w in v.windows(2) {
        match w[0].as_str() {
            "--files" => a.files = w[1].parse().expect("--files N"),
            "--size" => a.size = w[1].parse().expect("--size BYTES"),
            "--runs" => a.runs = w[1].parse().expect("--runs N"),
            "--file-parallel" => {
                a.file_parallel = w[1]
                    .split(',')
                    .map(|n| n.parse().expect("--file-parallel N[,N…]"))
                    .collect()
            }
            _ => {}
        }
    }
    a
}

fn make_files(dir: &Path, n: usize, size: usize) -> std::io::Result<()> {
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    for i in 0..n {
        let data: Vec<u8> = (0..size).map(|j| (i * 31 + j * 7) as u8).collect();
        std::fs::write(dir.join(format!("f{i:06}.bin")), data)?;
    }
    std::fs::write(marker, b"")
}

fn upload_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join("upload"); // target/<profile>/examples/upload
    bin.exists().then_some(bin)
}

fn python() -> Option<String> {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracles/setup.sh");
    let home = std::env::var("COS_ORACLES_HOME").ok().or_else(|| {
        let out = Command::new("bash").arg(&setup).output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(str::to_string)
    })?;
    let py = format!("{home}/venv/bin/python");
    Path::new(&py).exists().then_some(py)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args();
    let dir = std::env::temp_dir().join(format!("cos-rs-batch-{}x{}", a.files, a.size));
    make_files(&dir, a.files, a.size)?;
    // The marker file is not uploaded by either client: the command gets --exclude, Python lists only f*.
    let server_bin = testkit_binary()
        .ok_or("build the server first: cargo build --release -p cos-testkit --bin cos-testkit")?;
    let upload = upload_binary()
        .ok_or("build the command first: cargo build --release -p cos-examples --example upload")?;
    let (bucket, id, key) = ("benchbucket-1250000000", "AKIDBENCH", "bench-secret");
    let server = spawn_server(
        &server_bin,
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
    println!(
        "{} files x {} bytes; server {} in sink mode (separate process); best of {}",
        a.files, a.size, server.endpoint, a.runs
    );
    println!("{:<44} {:>10}", "client", "objects/s");
    let cp_dir = std::env::temp_dir().join(format!("cos-rs-batch-cp-{}", std::process::id()));
    let mut best_rs = Vec::new();
    for transport in ["blocking", "async"] {
        for &fp in &a.file_parallel {
            let mut best = 0f64;
            for _ in 0..a.runs {
                let t = Instant::now();
                let out = Command::new(&upload)
                    .env("COS_SECRET_ID", id)
                    .env("COS_SECRET_KEY", key)
                    .args(["--endpoint", &server.endpoint, "--transport", transport])
                    .args(if fp == 0 {
                        vec!["--quiet".to_string(), "-r".into()]
                    } else {
                        vec![
                            "--file-parallel".into(),
                            fp.to_string(),
                            "--quiet".into(),
                            "-r".into(),
                        ]
                    })
                    .args(["--exclude", ".complete", "--checkpoint-dir"])
                    .arg(&cp_dir)
                    .arg(&dir)
                    .arg(format!("cos://{bucket}/rs-{transport}/"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()?;
                let secs = t.elapsed().as_secs_f64();
                if !out.status.success() {
                    return Err(
                        format!("upload failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
                    );
                }
                best = best.max(a.files as f64 / secs);
            }
            best_rs.push((transport, best));
            println!(
                "{:<44} {:>10.0}",
                match fp {
                    0 => format!("upload command, {transport}, default"),
                    _ => format!("upload command, {transport}, --file-parallel {fp}"),
                },
                best
            );
        }
    }
    let _ = std::fs::remove_dir_all(&cp_dir);
    match python() {
        Some(py) => {
            let mut best_py = 0f64;
            for threads in [3, 16] {
                let mut best = 0f64;
                for _ in 0..a.runs {
                    let out = Command::new(&py)
                        .arg("-c")
                        .arg(PY_BATCH)
                        .args([&server.addr, bucket, id, key])
                        .arg(&dir)
                        .arg(threads.to_string())
                        .output()?;
                    let text = String::from_utf8_lossy(&out.stdout);
                    match text.trim().parse::<f64>() {
                        Ok(v) => best = best.max(v),
                        Err(_) => {
                            return Err(format!(
                                "python failed: {}",
                                String::from_utf8_lossy(&out.stderr)
                            )
                            .into())
                        }
                    }
                }
                best_py = best_py.max(best);
                println!(
                    "{:<44} {:>10.0}",
                    format!("python SDK upload_file, {threads} threads, 1 client"),
                    best
                );
            }
            for (t, v) in &best_rs {
                println!("{t}: {:.1}x the Python SDK's best", v / best_py);
            }
        }
        None => println!("python SDK skipped: ../shared/oracles/setup.sh not found or failed"),
    }
    Ok(())
}
