//! `cos-testkit serve`: runs the local COS-compatible server until killed.
//!
//! ```text
//! cos-testkit serve --addr 127.0.0.1:9000 --bucket examplebucket-1250000000 --secret-id ID --secret-key KEY
//!                   [--security-token TOKEN] [--data DIR] [--faults SPEC --seed N] [--sink]
//!                   [--cors dev|FILE.xml] [--log FILE|-] [--tls [--ca-out FILE]]
//! ```
//! The first line on stdout is `listening on http://ADDR` (`https://ADDR` with `--tls`). With `--tls` a
//! test CA and a certificate for `localhost`/`127.0.0.1` are generated at start, the CA is written to
//! `FILE` (default `cos-testkit-ca.pem` in the temporary directory) and the second line is
//! `CA certificate FILE`.
//!
//! `cos-testkit sim --seed N [--count C]` plays seeds N..N+C of the transfer simulation (`cos_testkit::sim`),
//! printing the trace when C is 1 (the default); it exits with 1 if an invariant broke.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use cos_core::ops::CorsConfiguration;
use cos_testkit::{FaultPlan, RequestLog, Server};

const USAGE: &str =
    "usage: cos-testkit serve [--addr 127.0.0.1:9000] [--bucket NAME-APPID] [--secret-id ID] \
[--secret-key KEY] [--security-token TOKEN] [--data DIR] [--faults SPEC [--seed N]] [--sink] \
[--cors dev|FILE.xml] [--log FILE|-] [--tls [--ca-out FILE]]
       cos-testkit sim --seed N [--count C]

  --cors dev       start with a permissive CORS rule for browser development: any origin, methods
                   GET PUT POST DELETE HEAD, any request header, exposes ETag, Content-Length,
                   x-cos-request-id, x-cos-hash-crc64ecma, x-cos-next-append-position, x-cos-version-id
  --cors FILE.xml  start with the <CORSConfiguration> in FILE (the body of PUT Bucket cors)
                   Without --cors the bucket has no CORS rule (or the one kept in --data): browser
                   pages on other origins are refused, as by a COS bucket without CORS configuration.
  --log FILE|-     one JSON line per request (time, method, operation, key, status, bytes in/out,
                   duration, request id, error code, origin), appended to FILE or written to stdout
  --tls            serve HTTPS with a test CA generated at start (written to --ca-out FILE)
  sim              replays the deterministic transfer simulation for seeds N..N+C (default C = 1)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sim") {
        return match sim(&args[1..]) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("cos-testkit: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        };
    }
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
            "--cors" => {
                let v = value()?;
                b = if v == "dev" {
                    b.cors_dev()
                } else {
                    let text =
                        std::fs::read_to_string(&v).map_err(|e| format!("--cors {v}: {e}"))?;
                    let config = CorsConfiguration::from_xml(&text)
                        .and_then(|c| c.validate().map(|()| c))
                        .map_err(|e| format!("--cors {v}: {e}"))?;
                    b.cors(config)
                }
            }
            "--log" => {
                let v = value()?;
                b = b.request_log(if v == "-" {
                    RequestLog::stdout()
                } else {
                    RequestLog::file(&v).map_err(|e| format!("--log {v}: {e}"))?
                });
            }
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

/// `cos-testkit sim`: true when every seed kept the invariants.
fn sim(args: &[String]) -> Result<bool, String> {
    let (mut seed, mut count) = (None, 1u64);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--seed" => seed = Some(n),
            "--count" => count = n.max(1),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let seed = seed.ok_or("sim needs --seed N")?;
    let mut ok = true;
    for s in seed..seed.saturating_add(count) {
        match cos_testkit::sim::run(s, count == 1) {
            Ok(summary) => {
                if count == 1 {
                    println!("seed {s}: ok {summary:?}");
                }
            }
            Err(f) => {
                for line in &f.trace {
                    println!("{line}");
                }
                println!("{f}");
                ok = false;
            }
        }
    }
    Ok(ok)
}
