//! What the headless-Chromium tests share: finding chromium, node and npm (a failure under `CI=true`, a
//! skip with a message otherwise), npm packages installed at pinned versions into a directory under
//! `target/`, and running a child process with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Flags that work for Debian's chromium in containers and CI.
pub const CHROMIUM_ARGS: &str = "['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', \
'--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']";

/// Fails under CI, skips otherwise: returns the message to print.
pub fn missing(test: &str, what: &str) {
    let msg = format!("the {test} test needs {what}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: not skipping; scripts/test.sh installs chromium with apt-get)");
    }
    eprintln!("SKIPPED: {msg}");
}

fn works(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The chromium binary (`COS_CHROMIUM`, default `/usr/bin/chromium`) and a `node_modules` directory holding
/// `packages` (each `name@version`), installed with npm into `target/tmp/<dir>` (or `$env_dir`) when
/// missing; `Err` names what is missing.
pub fn browser_and_modules(
    dir: &str,
    env_dir: &str,
    packages: &[&str],
) -> Result<(String, PathBuf), String> {
    let chromium = std::env::var("COS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} (apt-get install chromium)"));
    }
    if !works("node", "--version") || !works("npm", "--version") {
        return Err("node and npm".into());
    }
    let root = std::env::var_os(env_dir)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir));
    let installed = |p: &str| {
        let (name, version) = p.rsplit_once('@').unwrap_or((p, ""));
        std::fs::read_to_string(root.join("node_modules").join(name).join("package.json"))
            .is_ok_and(|j| j.contains(&format!("\"version\": \"{version}\"")))
    };
    if !packages.iter().all(|p| installed(p)) {
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--ignore-scripts",
                "--prefix",
            ])
            .arg(&root)
            .args(packages)
            .output()
            .map_err(|e| format!("npm: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install {} failed: {}",
                packages.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok((chromium, root.join("node_modules")))
}

/// Runs `cmd`, killing it after `limit`; returns (success, stdout, stderr). The pipes are drained by
/// threads so that a chatty child cannot block on a full pipe.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> (bool, String, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) => (s.success(), out, err),
        None => (false, out, format!("{err}\n(killed after {limit:?})")),
    }
}

/// A fresh working directory under `target/tmp` (with a `profile/` for chromium).
pub fn work_dir(name: &str) -> PathBuf {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(work.join("profile")).unwrap();
    work
}
