//! `cos-testkit serve --tls`: the command generates a test CA at start, writes it where `--ca-out` says,
//! and serves HTTPS that a client trusting that CA reaches (curl here; the SDK clients in
//! `cos-blocking/tests/tls.rs`) and a client without it refuses.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_tls_writes_its_ca_and_serves_https_with_it() {
    let ca = std::env::temp_dir().join(format!("cos-testkit-ca-{}.pem", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cos-testkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--tls", "--ca-out"])
        .arg(&ca)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let url = first.strip_prefix("listening on ").unwrap().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{first}");
    assert_eq!(second, format!("CA certificate {}", ca.display()));
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    // Without --tls, --ca-out is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_cos-testkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--ca-out", "x.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    let curl = Command::new("curl").arg("--version").output();
    if !curl.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: curl is not installed; the HTTPS checks of this test did not run");
    } else {
        // Trusting the CA: an answer from the server (an unsigned request is refused with a COS 403).
        let trusted = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&ca)
            .arg(format!("{url}/k"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&trusted.stdout),
            "403",
            "{trusted:?}"
        );
        // Not trusting it: curl's certificate error (exit 60), no answer.
        let untrusted = Command::new("curl")
            .args(["-sS", "-o", "/dev/null"])
            .arg(format!("{url}/k"))
            .output()
            .unwrap();
        assert_eq!(untrusted.status.code(), Some(60), "{untrusted:?}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(ca);
}
