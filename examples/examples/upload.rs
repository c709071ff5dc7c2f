//! The upload command: one or more files (or standard input, `-`) to COS, with progress, resume and a
//! verified CRC-64.
//!
//! ```sh
//! cargo run --release -p cos-examples --example upload -- [--endpoint URL] [--bucket B] [--region R] \
//!     [--transport blocking|async] [--part-size BYTES] [--concurrency N] [--checkpoint FILE] FILE... DEST
//! ```
//! Credentials come from `COS_SECRET_ID`, `COS_SECRET_KEY` and `COS_SECURITY_TOKEN`. With no endpoint and no
//! credentials, a `cos-testkit` server is started in-process and the upload goes there.
//! DEST is the object key; with several files, or a DEST ending in `/`, each file goes to DEST + its name.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cos_core::upload::{Progress, UploadOutcome};
use cos_core::{Config, Credentials, Endpoint};

const USAGE: &str =
    "usage: upload [--endpoint URL] [--bucket B] [--region R] [--transport blocking|async] \
[--part-size BYTES] [--concurrency N] [--checkpoint FILE] FILE... DEST";

#[derive(Debug)]
struct Args {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: String,
    transport: String,
    part_size: Option<u64>,
    concurrency: usize,
    checkpoint: Option<PathBuf>,
    files: Vec<String>,
    dest: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        endpoint: None,
        bucket: None,
        region: "ap-guangzhou".into(),
        transport: "blocking".into(),
        part_size: None,
        concurrency: 3,
        checkpoint: None,
        files: Vec::new(),
        dest: String::new(),
    };
    let mut it = std::env::args().skip(1);
    let mut positional = Vec::new();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--endpoint" => a.endpoint = Some(value("--endpoint")?),
            "--bucket" => a.bucket = Some(value("--bucket")?),
            "--region" => a.region = value("--region")?,
            "--transport" => a.transport = value("--transport")?,
            "--part-size" => {
                a.part_size = Some(
                    parse_size(&value("--part-size")?)
                        .ok_or("--part-size takes bytes (e.g. 8388608 or 8MiB)")?,
                )
            }
            "--concurrency" => {
                a.concurrency = value("--concurrency")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--concurrency takes a positive number")?
            }
            "--checkpoint" => a.checkpoint = Some(value("--checkpoint")?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => positional.push(arg),
        }
    }
    if positional.len() < 2 {
        return Err(USAGE.into());
    }
    a.dest = positional.pop().expect("two or more");
    a.files = positional;
    if !matches!(a.transport.as_str(), "blocking" | "async") {
        return Err("--transport is blocking or async".into());
    }
    if a.checkpoint.is_some() && a.files.len() > 1 {
        return Err("--checkpoint goes with a single FILE".into());
    }
    Ok(a)
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1 << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

/// Key for each file: DEST itself for one file, DEST + file name for several or a DEST ending in '/'.
fn key_for(file: &str, dest: &str, many: bool) -> String {
    if many || dest.ends_with('/') {
        let name = if file == "-" {
            "stdin".to_string()
        } else {
            std::path::Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| file.to_string())
        };
        let base = if dest.ends_with('/') || dest.is_empty() {
            dest.to_string()
        } else {
            format!("{dest}/")
        };
        format!("{base}{name}")
    } else {
        dest.to_string()
    }
}

/// Progress display: a bar on a terminal, plain lines (at most one a second) otherwise.
struct Display {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Option<Instant>>,
}

impl Display {
    fn new() -> Arc<Display> {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            b
        });
        Arc::new(Display {
            bar,
            last_line: Mutex::new(None),
        })
    }

    fn show(&self, key: &str, p: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_message(key.to_string());
            if let Some(t) = p.total {
                bar.set_length(t);
            }
            bar.set_position(p.loaded);
            return;
        }
        let mut last = self.last_line.lock().unwrap();
        let done = p.total.is_some_and(|t| p.loaded >= t);
        if done || last.map_or(true, |t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            let pct = p
                .percent
                .map(|x| format!("{:5.1}%", x * 100.0))
                .unwrap_or_else(|| "    ?".into());
            eprintln!(
                "{key}: {pct} {} / {} bytes, {:.1} MiB/s",
                p.loaded,
                p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                p.speed / 1048576.0
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upload failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (id, key) = (env("COS_SECRET_ID"), env("COS_SECRET_KEY"));
    // With no endpoint and no credentials: a local server, so the command works with no account.
    let mut local = None;
    let config = match (&args.endpoint, id, key) {
        (None, None, None) => {
            let server = cos_testkit::Server::builder().start_blocking()?;
            eprintln!(
                "no COS_SECRET_ID/COS_SECRET_KEY and no --endpoint: uploading to a local cos-testkit server at {}",
                server.endpoint()
            );
            let config = Config::new(server.bucket(), &args.region, Credentials::new(server.secret_id(), server.secret_key()))?
                .with_endpoint(Endpoint::custom(&server.endpoint())?)?;
            local = Some(server);
            config
        }
        (endpoint, Some(id), Some(key)) => {
            let mut creds = Credentials::new(id, key);
            if let Some(t) = env("COS_SECURITY_TOKEN") {
                creds = creds.with_security_token(t);
            }
            let bucket = args.bucket.clone().ok_or("--bucket is required with COS credentials")?;
            let config = Config::new(&bucket, &args.region, creds)?;
            match endpoint {
                Some(e) => config.with_endpoint(Endpoint::custom(e)?)?,
                None => config,
            }
        }
        _ => return Err("set both COS_SECRET_ID and COS_SECRET_KEY (or neither, with no --endpoint, for a local server)".into()),
    };

    let many = args.files.len() > 1;
    let display = Display::new();
    let started = Instant::now();
    let mut results: Vec<(String, Result<UploadOutcome, cos_core::Error>)> = Vec::new();
    for file in &args.files {
        let key = key_for(file, &args.dest, many);
        let d = display.clone();
        let k = key.clone();
        let on_progress: Arc<dyn Fn(&Progress) + Send + Sync> =
            Arc::new(move |p: &Progress| d.show(&k, p));
        let outcome = if args.transport == "blocking" {
            let opts = cos_blocking::UploadOptions {
                part_size: args.part_size,
                concurrency: args.concurrency,
                checkpoint: args.checkpoint.clone(),
                on_progress: Some(on_progress),
                ..Default::default()
            };
            let client = cos_blocking::Client::new(config.clone());
            if file == "-" {
                client.upload_stream(std::io::stdin(), &key, &opts)
            } else {
                client.upload_file(file, &key, &opts)
            }
        } else {
            let opts = cos_async::UploadOptions {
                part_size: args.part_size,
                concurrency: args.concurrency,
                checkpoint: args.checkpoint.clone(),
                on_progress: Some(on_progress),
                ..Default::default()
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let client = cos_async::Client::new(config.clone());
                if file == "-" {
                    client.upload_stream(tokio::io::stdin(), &key, &opts).await
                } else {
                    client.upload_file(file, &key, &opts).await
                }
            })
        };
        results.push((key, outcome));
    }
    display.finish();
    let elapsed = started.elapsed();

    let mut bytes = 0;
    let mut failures = 0;
    for (key, r) in &results {
        match r {
            Ok(o) => {
                bytes += o.total_len;
                println!(
                    "{key}: {} bytes, {} part(s), ETag {}, CRC64 {} verified",
                    o.total_len,
                    o.parts,
                    o.etag,
                    o.crc64
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "(not reported)".into())
                );
            }
            Err(e) => {
                failures += 1;
                eprintln!("{key}: FAILED: {e}");
            }
        }
    }
    let crcs: Vec<String> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().and_then(|o| o.crc64).map(|c| c.to_string()))
        .collect();
    if failures == results.len() {
        return Err(format!("{failures} of {} upload(s) failed", results.len()).into());
    }
    println!(
        "uploaded {bytes} bytes in {:.3} s, {:.1} MiB/s, crc64 {} verified",
        elapsed.as_secs_f64(),
        cos_examples::mib_per_sec(bytes, elapsed),
        if crcs.is_empty() {
            "-".to_string()
        } else {
            crcs.join(",")
        }
    );
    drop(local);
    if failures > 0 {
        return Err(format!("{failures} of {} upload(s) failed", results.len()).into());
    }
    Ok(())
}
