//! `kill -9` of the upload command mid-way, then a rerun with the same checkpoint: only the missing parts are
//! sent (the server's counters show it) and the object is byte-identical. Both transports.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cos_testkit::{FaultPlan, Server};

fn upload_binary() -> PathBuf {
    // target/<profile>/deps/kill9-… → target/<profile>/examples/upload
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples").join("upload");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p cos-examples --example upload` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn command(
    server: &Server,
    file: &std::path::Path,
    checkpoint: &std::path::Path,
    transport: &str,
) -> Command {
    command_to(server, file, checkpoint, transport, "resume/big.bin")
}

fn command_to(
    server: &Server,
    file: &std::path::Path,
    checkpoint: &std::path::Path,
    transport: &str,
    key: &str,
) -> Command {
    let mut c = Command::new(upload_binary());
    c.env("COS_SECRET_ID", server.secret_id())
        .env("COS_SECRET_KEY", server.secret_key())
        .env_remove("COS_SECURITY_TOKEN")
        .args([
            "--endpoint",
            &server.endpoint(),
            "--bucket",
            server.bucket(),
            "--transport",
            transport,
        ])
        .args([
            "--part-size",
            "1048576",
            "--concurrency",
            "2",
            "--checkpoint",
        ])
        .arg(checkpoint)
        .arg(file)
        .arg(key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn checkpoint_parts(path: &std::path::Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["parts"].as_array().map(|a| a.len())
}

/// Kills the command once its checkpoint holds 4 parts, then runs it again. `stall_ms` delays every answer
/// of the server; with `stall_on_rerun` the delay stays for the rerun too (the resume must then still send
/// each missing part once and never Complete while parts are in flight).
fn kill_then_resume(transport: &str, stall_ms: u64, stall_on_rerun: bool) {
    const PARTS: usize = 24;
    let dir = std::env::temp_dir().join(format!(
        "cos-rs-kill9-{transport}-{stall_ms}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    let data: Vec<u8> = (0..PARTS * 1048576)
        .map(|i| (i * 31 % 251) as u8 ^ (i >> 20) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let checkpoint = dir.join("big.checkpoint.json");
    let _ = std::fs::remove_file(&checkpoint);

    // Every request waits, so the upload takes long enough to be killed part-way.
    let server = Server::builder()
        .faults(FaultPlan::parse(&format!("stall={stall_ms}ms:1")).unwrap())
        .start_blocking()
        .unwrap();
    let mut child = command(&server, &file, &checkpoint, transport)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if checkpoint_parts(&checkpoint).unwrap_or(0) >= 4 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "upload ended before it was killed: {status}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = checkpoint_parts(&checkpoint).expect("checkpoint survives the kill");
    assert!(
        done_before < PARTS,
        "killed too late: {done_before} parts done"
    );
    assert_eq!(
        server.multipart_uploads().len(),
        1,
        "the unfinished upload stays for the resume"
    );

    if !stall_on_rerun {
        server.faults().clear();
    }
    let parts_before = server.counters().get("UploadPart");
    let completes_before = server.counters().get("CompleteMultipartUpload");
    let out = command(&server, &file, &checkpoint, transport)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rerun failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = server.counters().get("UploadPart") - parts_before;
    let completes = server.counters().get("CompleteMultipartUpload") - completes_before;
    assert_eq!(completes, 1, "the rerun sent Complete {completes} times");
    assert_eq!(
        sent as usize,
        PARTS - done_before,
        "the rerun sent {sent} parts; the checkpoint had {done_before} of {PARTS}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("crc64") && stdout.contains("verified"),
        "{stdout}"
    );
    let stored = server.object("resume/big.bin").expect("object exists");
    assert!(
        stored.data.as_deref() == Some(&data[..]),
        "object differs from the file"
    );
    assert!(
        server.multipart_uploads().is_empty(),
        "no unfinished upload left behind"
    );
    assert!(
        !checkpoint.exists(),
        "a finished upload removes its checkpoint"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_then_rerun_sends_only_missing_parts_blocking() {
    kill_then_resume("blocking", 100, false);
}

#[test]
fn kill_9_then_rerun_sends_only_missing_parts_async() {
    kill_then_resume("async", 100, false);
}

/// The issue-9 scenario: every answer stalls 300 ms, before the kill and during the rerun.
#[test]
fn kill_9_then_rerun_under_stalls_sends_each_missing_part_once_blocking() {
    kill_then_resume("blocking", 300, true);
}

/// The issue-9 scenario on the async transport.
#[test]
fn kill_9_then_rerun_under_stalls_sends_each_missing_part_once_async() {
    kill_then_resume("async", 300, true);
}

/// What `kill -9` of `cargo run --example upload` (or of a wrapper script) does: the upload itself lives on,
/// orphaned, and the user runs the command again with the same checkpoint. The rerun must not race it
/// (before the fix both sent every remaining part, one completed while the other's parts were in flight,
/// and the rerun failed with 404 NoSuchUpload): it sees the live lease in the checkpoint, sends nothing and
/// says which process holds it; the orphan finishes alone, each part sent once.
fn rerun_beside_a_live_orphan(transport: &str) {
    const PARTS: usize = 64;
    let dir =
        std::env::temp_dir().join(format!("cos-rs-orphan-{transport}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    let data: Vec<u8> = (0..PARTS * 1048576)
        .map(|i| (i * 17 % 253) as u8 ^ (i >> 20) as u8)
        .collect();
    std::fs::write(&file, &data).unwrap();
    let checkpoint = dir.join("big.checkpoint.json");
    let _ = std::fs::remove_file(&checkpoint);
    let server = Server::builder()
        .faults(FaultPlan::parse("stall=300ms:1").unwrap())
        .start_blocking()
        .unwrap();
    let key = "orphan/big.bin";
    let orphan = command_to(&server, &file, &checkpoint, transport, key)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while checkpoint_parts(&checkpoint).unwrap_or(0) < 4 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rerun = command_to(&server, &file, &checkpoint, transport, key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        !rerun.status.success(),
        "the rerun must not continue an upload another process is running"
    );
    assert!(
        stderr.contains("still running with this checkpoint") && stderr.contains("pid "),
        "the rerun names the live upload: {stderr}"
    );
    let out = orphan.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the orphaned upload finishes undisturbed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counters = server.counters();
    assert_eq!(
        counters.get("UploadPart") as usize,
        PARTS,
        "each part sent once, by one process"
    );
    assert_eq!(counters.get("CompleteMultipartUpload"), 1);
    assert_eq!(counters.get("InitiateMultipartUpload"), 1);
    let stored = server.object(key).expect("object exists");
    assert!(
        stored.data.as_deref() == Some(&data[..]),
        "object differs from the file"
    );
    assert!(server.multipart_uploads().is_empty());
    assert!(!checkpoint.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rerun_beside_a_live_orphan_sends_nothing_blocking() {
    rerun_beside_a_live_orphan("blocking");
}

#[test]
fn rerun_beside_a_live_orphan_sends_nothing_async() {
    rerun_beside_a_live_orphan("async");
}
