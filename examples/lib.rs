//! Helpers shared by the cos-rs examples and benchmarks: process measurements (peak RSS, CPU time), test
//! files, and a `cos-testkit` server in a child process (so that a benchmark measures the client alone).
//!
//! [`form_page`]: a tiny HTTP server (std only) that serves an HTML upload form signed by the SDK, for a
//! real browser to upload straight to COS (the `post_form` example and the headless-Chromium test).

pub mod form_page;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Peak resident set size of this process in bytes (`VmHWM`), where `/proc` has it.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size in bytes (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5); returns false where unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
}

/// Writes a file of `len` bytes of a cheap, non-repeating pattern, 1 MiB at a time (never all in memory).
pub fn make_file(path: &Path, len: u64, seed: u64) -> std::io::Result<()> {
    if std::fs::metadata(path)
        .map(|m| m.len() == len)
        .unwrap_or(false)
    {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

/// A `cos-testkit serve` child process.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds the `cos-testkit` binary built beside this example (`target/<profile>/cos-testkit`).
pub fn testkit_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?; // target/<profile>/examples
    let candidate = dir.parent()?.join("cos-testkit");
    candidate.exists().then_some(candidate)
}

/// Starts `cos-testkit serve` with extra arguments and waits for its `listening on` line.
pub fn spawn_server(binary: &Path, args: &[&str]) -> std::io::Result<ServerProcess> {
    let mut child = Command::new(binary)
        .arg("serve")
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let endpoint = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| std::io::Error::other(format!("unexpected first line {line:?}")))?
        .to_string();
    let addr = endpoint.trim_start_matches("http://").to_string();
    Ok(ServerProcess {
        child,
        endpoint,
        addr,
    })
}

/// Formats bytes per second as MiB/s.
pub fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64().max(1e-9)
}
