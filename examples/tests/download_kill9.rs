//! `kill -9` of the `download` command mid-way, then a rerun with `--checkpoint`: only the ranges the
//! checkpoint does not name are fetched again (the server's GET counter shows it), and the file is
//! byte-identical. Both transports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cos_testkit::{FaultPlan, Server};

const MIB: usize = 1 << 20;
const RANGES: usize = 24;

fn download_binary() -> PathBuf {
    // target/<profile>/deps/download_kill9-… → target/<profile>/examples/download
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("download");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p cos-examples --example download` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn command(server: &Server, dest: &Path, transport: &str) -> Command {
    let mut c = Command::new(download_binary());
    c.env("COS_SECRET_ID", server.secret_id())
        .env("COS_SECRET_KEY", server.secret_key())
        .env_remove("COS_SECURITY_TOKEN")
        .args([
            "--endpoint",
            &server.endpoint(),
            "--bucket",
            server.bucket(),
        ])
        .args([
            "--transport",
            transport,
            "--concurrency",
            "2",
            "--checkpoint",
        ])
        .args(["--range-size", &MIB.to_string()])
        .arg("resume/big.bin")
        .arg(dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The number of ranges the checkpoint names (each a whole range: no body is cut in this test).
fn checkpoint_ranges(path: &Path) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["done"].as_array().map(|a| a.len())
}

fn kill_then_resume(transport: &str) {
    let dir = std::env::temp_dir().join(format!(
        "cos-rs-dl-kill9-{transport}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join("big.bin");
    let checkpoint = cos_core::download::checkpoint_path(&dest);
    let data: Vec<u8> = (0..RANGES * MIB)
        .map(|i| (i * 31 % 251) as u8 ^ (i >> 20) as u8)
        .collect();

    let server = Server::builder().start_blocking().unwrap();
    let config = cos_core::Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(cos_core::Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap();
    cos_blocking::Client::new(config)
        .put_object(
            cos_core::ops::PutObject::new("resume/big.bin"),
            data.clone(),
        )
        .unwrap();
    // Every request now waits, so the download takes long enough to be killed part-way.
    server
        .faults()
        .set_plan(FaultPlan::parse("stall=150ms:1").unwrap());
    let gets_before = server.counters().get("GetObject");
    let mut child = command(&server, &dest, transport).spawn().unwrap();
    let t0 = Instant::now();
    while checkpoint_ranges(&checkpoint).unwrap_or(0) < 4 {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "download ended before it was killed: {status}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = checkpoint_ranges(&checkpoint).expect("the checkpoint survives the kill");
    assert!(done < RANGES, "killed too late: {done} ranges done");
    assert!(
        !dest.exists(),
        "no file at the destination before it is verified"
    );
    let sent_before_kill = server.counters().get("GetObject") - gets_before;

    server.faults().clear();
    let before = server.counters().get("GetObject");
    let out = command(&server, &dest, transport).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rerun failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = (server.counters().get("GetObject") - before) as usize;
    assert_eq!(
        sent,
        RANGES - done,
        "the rerun sent {sent} GETs; the checkpoint had {done} of {RANGES} ranges"
    );
    assert!(
        stdout.contains(&format!("{} bytes resumed", done * MIB)),
        "{stdout}"
    );
    assert!(
        std::fs::read(&dest).unwrap() == data,
        "the file differs from the object"
    );
    let mut left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["big.bin"], "temporary file and checkpoint removed");
    eprintln!(
        "{transport}: killed after {sent_before_kill} GETs with {done} ranges checkpointed; the rerun sent {sent}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blocking_download_killed_resumes_with_only_the_missing_ranges() {
    kill_then_resume("blocking");
}

#[test]
fn async_download_killed_resumes_with_only_the_missing_ranges() {
    kill_then_resume("async");
}
