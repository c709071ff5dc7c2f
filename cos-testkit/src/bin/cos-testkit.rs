//! `cos-testkit serve`: runs the local COS-compatible server until killed.
//!
//! ```text
//! cos-testkit serve --addr 127.0.0.1:9000 --bucket examplebucket-1250000000 --secret-id ID --secret-key KEY
//!                   [--security-token TOKEN] [--data DIR] [--faults SPEC --seed N] [--sink]
//!                   [--tls [--ca-out FILE]]
//! ```
//! The first line on stdout is `listening on http://ADDR` (`https://ADDR` with `--tls`). With `--tls` a
//! test CA and a certificate for `localhost`/`127.0.0.1` are generated at start, the CA is written to
//! `FILE` (default `cos-testkit-ca.pem` in the temporary directory) and the second line is
//! `CA certificate FILE`.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use cos_testkit::{FaultPlan, Server};

const USAGE: &str =
    "usage: cos-testkit serve [--addr 127.0.0.1:9000] [--bucket NAME-APPID] [--secret-id ID] \
[--secret-key KEY] [--security-token TOKEN] [--data DIR] [--faults SPEC [--seed N]] [--sink] \
[--tls [--ca-out FILE]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cos-testkit: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => return Err("expected the `serve` command".into()),
    }
    let mut b = Server::builder().addr(SocketAddr::from(([127, 0, 0, 1], 9000)));
    let (mut id, mut key) = (None, None);
    let (mut faults, mut seed) = (None, 0u64);
    let (mut tls, mut ca_out) = (false, None);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--addr" => b = b.addr(value()?.parse().map_err(|e| format!("--addr: {e}"))?),
            "--bucket" => b = b.bucket(&value()?),
            "--secret-id" => id = Some(value()?),
            "--secret-key" => key = Some(value()?),
            "--security-token" => b = b.security_token(&value()?),
            "--data" => b = b.data_dir(value()?),
            "--faults" => faults = Some(FaultPlan::parse(&value()?).map_err(|e| e.to_string())?),
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--sink" => b = b.sink(true),
            "--tls" => tls = true,
            "--ca-out" => ca_out = Some(std::path::PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if id.is_some() || key.is_some() {
        b = b.credentials(
            id.as_deref().unwrap_or(cos_testkit::DEFAULT_SECRET_ID),
            key.as_deref().unwrap_or(cos_testkit::DEFAULT_SECRET_KEY),
        );
    }
    if let Some(plan) = faults {
        b = b.faults(plan.seed(seed));
    }
    if ca_out.is_some() && !tls {
        return Err("--ca-out needs --tls".into());
    }
    let server = b
        .tls(tls)
        .start_blocking()
        .map_err(|e| format!("cannot start: {e}"))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", server.endpoint());
    if let Some(pem) = server.ca_pem() {
        let path = ca_out.unwrap_or_else(|| std::env::temp_dir().join("cos-testkit-ca.pem"));
        std::fs::write(&path, pem).map_err(|e| format!("--ca-out {}: {e}", path.display()))?;
        let _ = writeln!(out, "CA certificate {}", path.display());
    }
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
