//! `download`: objects from COS to local files, the sibling of the `upload` command.
//!
//! ```text
//! cargo run --release -p cos-examples --example download -- --local demo/ out/ -r        # a local test server
//! COS_SECRET_ID=… COS_SECRET_KEY=… cargo run --release -p cos-examples --example download -- \
//!     --region ap-shanghai cos://examplebucket-1250000000/logs/ ./logs -r --checkpoint
//! ```
//!
//! Every file is fetched by `download_file` (decided in `cos_core::download`): one GET up to the range
//! threshold, ranged GETs with `If-Match` above it, the CRC-64 checked, the file renamed into place only
//! when verified. With `--checkpoint` a killed or failed download, run again, fetches only what is missing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use cos_core::download::{DownloadOptions, FileDownload};
use cos_core::ops::ListObjects;
use cos_core::{Config, Credentials, Endpoint, Error};

const EXAMPLES: &str = "\
Examples:
  download --local demo/ out/ -r
      try it with no account: a local COS-compatible test server in this process, holding demo/ objects
  download --region ap-shanghai cos://examplebucket-1250000000/logs/app.log ./app.log
      one object to a file (or into a directory, keeping the key's last segment)
  download --region ap-shanghai cos://examplebucket-1250000000/logs/ ./logs -r --checkpoint
      every object under logs/ into ./logs (sub-paths kept); rerun after a kill to resume

Credentials: COS_SECRET_ID and COS_SECRET_KEY (and COS_SECURITY_TOKEN for temporary ones).
Region: --region, else COS_REGION, else the cos://BUCKET.cos.REGION.myqcloud.com/ form of SOURCE.
Exit status: 0 when every object was downloaded and verified, 1 when one failed, 2 for a usage error.";

#[derive(Parser, Debug)]
#[command(name = "download", version, after_help = EXAMPLES)]
struct Cli {
    /// The object (or, with -r, the prefix): cos://BUCKET[.cos.REGION.myqcloud.com]/KEY, or KEY with
    /// --bucket.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// The local file, or a directory (with -r, or when it exists or ends with '/').
    #[arg(value_name = "DEST")]
    dest: PathBuf,
    /// Download every object under the SOURCE prefix into DEST, keeping the rest of each key as its path.
    #[arg(short, long)]
    recursive: bool,
    /// Download from a local COS-compatible test server started in this process, holding a few demo
    /// objects under demo/ (no account needed).
    #[arg(long, conflicts_with = "endpoint")]
    local: bool,
    /// A custom endpoint (e.g. http://127.0.0.1:9000 for `cos-testkit serve`).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The bucket (BUCKET-APPID), when SOURCE does not name it.
    #[arg(long, value_name = "BUCKET")]
    bucket: Option<String>,
    /// The region (e.g. ap-shanghai).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The client: blocking (ureq) or async (hyper + tokio).
    #[arg(long, value_enum, default_value_t = Transport::Blocking)]
    transport: Transport,
    /// Ranges fetched at once per file.
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Files downloaded at once (with -r).
    #[arg(long, value_name = "N", default_value_t = 3)]
    file_parallel: usize,
    /// The size of one range in bytes (objects larger than twice this are fetched in ranges).
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    range_size: u64,
    /// Keep a checkpoint beside each temporary file (`NAME.cos-download.checkpoint`): a killed or failed
    /// download, run again, fetches only the missing ranges.
    #[arg(long)]
    checkpoint: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Transport {
    Blocking,
    Async,
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("download: error: {msg}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.concurrency == 0 || cli.file_parallel == 0 || cli.range_size == 0 {
        return usage("--concurrency, --file-parallel and --range-size must be at least 1");
    }
    let (bucket, region, path) = match parse_source(&cli.source) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let bucket = match (&cli.bucket, bucket) {
        (Some(a), Some(b)) if *a != b => {
            return usage(format!("--bucket {a} and the source's bucket {b} differ"))
        }
        (a, b) => a.clone().or(b),
    };
    let mut _local = None;
    let config = if cli.local {
        // The local server has a bucket of its own; a bucket in SOURCE is not used.
        let server = match demo_server() {
            Ok(s) => s,
            Err(e) => return usage(format!("cannot start the local server: {e}")),
        };
        eprintln!(
            "--local: downloading from a local cos-testkit server at {} (bucket {}, objects under demo/)",
            server.endpoint(),
            server.bucket()
        );
        let c = Config::new(
            server.bucket(),
            "ap-guangzhou",
            Credentials::new(server.secret_id(), server.secret_key()),
        )
        .and_then(|c| c.with_endpoint(Endpoint::custom(&server.endpoint())?));
        _local = Some(server);
        c
    } else {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(key)) = (env("COS_SECRET_ID"), env("COS_SECRET_KEY")) else {
            return usage(
                "no credentials: set COS_SECRET_ID and COS_SECRET_KEY, or give --local to try the \
                 command against a local test server",
            );
        };
        let Some(bucket) = bucket else {
            return usage("no bucket: give SOURCE as cos://BUCKET-APPID/KEY or use --bucket");
        };
        let region = cli.region.clone().or_else(|| env("COS_REGION")).or(region);
        let region = match (region, &cli.endpoint) {
            (Some(r), _) => r,
            (None, Some(_)) => "custom-endpoint".to_string(),
            (None, None) => return usage("no region: give --region or set COS_REGION"),
        };
        let mut creds = Credentials::new(id, key);
        if let Some(t) = env("COS_SECURITY_TOKEN") {
            creds = creds.with_security_token(t);
        }
        Config::new(&bucket, &region, creds).and_then(|c| match &cli.endpoint {
            Some(e) => c.with_endpoint(Endpoint::custom(e)?),
            None => Ok(c),
        })
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let options = DownloadOptions::default()
        .range_size(cli.range_size)
        .threshold(cli.range_size.saturating_mul(2))
        .concurrency(cli.concurrency)
        .checkpoint(cli.checkpoint);
    let client = Client::new(cli.transport, config);

    // What to download, and where.
    let files = if cli.recursive {
        let keys = match client.list(&path) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("download: listing {path:?} failed: {e}");
                return ExitCode::from(1);
            }
        };
        let mut files = Vec::new();
        for key in keys.into_iter().filter(|k| !k.ends_with('/')) {
            let rel = &key[path.len()..];
            match safe_relative(rel) {
                Some(rel) => files.push(FileDownload::new(key.clone(), cli.dest.join(rel))),
                None => eprintln!("download: skipping {key:?}: not a safe local path"),
            }
        }
        files
    } else {
        if path.is_empty() || path.ends_with('/') {
            return usage("SOURCE names a prefix: give -r to download everything under it");
        }
        let to_dir = cli.dest.is_dir() || cli.dest.as_os_str().to_string_lossy().ends_with('/');
        let dest = if to_dir {
            cli.dest.join(path.rsplit('/').next().unwrap_or(&path))
        } else {
            cli.dest.clone()
        };
        vec![FileDownload::new(path.clone(), dest)]
    };
    for f in &files {
        if let Some(parent) = f.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(parent) {
                eprintln!("download: {}: {e}", parent.display());
                return ExitCode::from(1);
            }
        }
    }

    let t0 = Instant::now();
    let results = client.download(&files, &options, cli.file_parallel);
    let (mut ok, mut bytes) = (0usize, 0u64);
    for (f, r) in files.iter().zip(&results) {
        match r {
            Ok(o) => {
                ok += 1;
                bytes += o.size;
                println!(
                    "downloaded {} -> {} ({} bytes, {} GET(s), {} bytes resumed from a checkpoint, crc64 verified)",
                    f.key,
                    f.path.display(),
                    o.size,
                    o.requests,
                    o.resumed
                );
            }
            Err(e) => eprintln!("download: {} failed: {e}", f.key),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{ok} of {} file(s), {bytes} bytes in {secs:.2} s ({:.1} MiB/s)",
        files.len(),
        bytes as f64 / (1 << 20) as f64 / secs.max(1e-9)
    );
    if ok == files.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `cos://BUCKET[.cos.REGION.myqcloud.com]/PATH` or a plain `PATH`: (bucket, region, path).
fn parse_source(s: &str) -> Result<(Option<String>, Option<String>, String), String> {
    let Some(rest) = s.strip_prefix("cos://") else {
        return Ok((None, None, s.to_string()));
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("{s}: no bucket after cos://"));
    }
    Ok(match host.split_once(".cos.") {
        Some((b, tail)) => {
            let region = tail
                .strip_suffix(".myqcloud.com")
                .filter(|r| !r.is_empty() && !r.contains('.'))
                .ok_or_else(|| format!("{s}: expected cos://BUCKET.cos.REGION.myqcloud.com/KEY"))?;
            (
                Some(b.to_string()),
                Some(region.to_string()),
                path.to_string(),
            )
        }
        None => (Some(host.to_string()), None, path.to_string()),
    })
}

/// The rest of a key as a relative local path, refused when it could leave DEST (`..`, absolute) or is
/// empty.
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut p = PathBuf::new();
    for seg in rel.split('/') {
        match seg {
            "" | "." => continue,
            ".." => return None,
            s if s.contains('\\') || s.contains('\0') => return None,
            s => p.push(s),
        }
    }
    (!p.as_os_str().is_empty()).then_some(p)
}

/// A local server holding a few demo objects under `demo/`.
fn demo_server() -> std::io::Result<cos_testkit::Server> {
    let server = cos_testkit::Server::builder().start_blocking()?;
    let config = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .and_then(|c| c.with_endpoint(Endpoint::custom(&server.endpoint())?))
    .map_err(std::io::Error::other)?;
    let client = cos_blocking::Client::new(config);
    let big: Vec<u8> = (0..(20u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for (key, data) in [
        ("demo/hello.txt", b"hello from cos-rs\n".to_vec()),
        ("demo/nested/notes.txt", b"a nested object\n".to_vec()),
        ("demo/big.bin", big),
    ] {
        client
            .put_object(cos_core::ops::PutObject::new(key), data)
            .map_err(std::io::Error::other)?;
    }
    Ok(server)
}

/// The chosen client.
enum Client {
    Blocking(cos_blocking::Client),
    Async(cos_async::Client, tokio::runtime::Runtime),
}

type Outcome = Result<Downloaded, Error>;

/// What both clients' `DownloadOutcome`s share.
struct Downloaded {
    size: u64,
    requests: usize,
    resumed: u64,
}

impl Client {
    fn new(transport: Transport, config: Config) -> Client {
        match transport {
            Transport::Blocking => Client::Blocking(cos_blocking::Client::new(config)),
            Transport::Async => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                let client = {
                    let _enter = rt.enter();
                    cos_async::Client::new(config)
                };
                Client::Async(client, rt)
            }
        }
    }

    /// Every key under `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = ListObjects::new().prefix(prefix);
        let mut keys = Vec::new();
        match self {
            Client::Blocking(c) => {
                for page in c.list_objects_pages(op) {
                    keys.extend(page?.contents.into_iter().map(|o| o.key));
                }
            }
            Client::Async(c, rt) => {
                let mut pages = c.list_objects_pages(op);
                while let Some(page) = rt.block_on(pages.next_page()) {
                    keys.extend(page?.contents.into_iter().map(|o| o.key));
                }
            }
        }
        Ok(keys)
    }

    fn download(
        &self,
        files: &[FileDownload],
        options: &DownloadOptions,
        file_parallel: usize,
    ) -> Vec<Outcome> {
        match self {
            Client::Blocking(c) => c
                .download_files(files, options, file_parallel)
                .into_iter()
                .map(|r| {
                    r.map(|o| Downloaded {
                        size: o.size,
                        requests: o.requests,
                        resumed: o.resumed,
                    })
                })
                .collect(),
            Client::Async(c, rt) => rt
                .block_on(c.download_files(files, options, file_parallel))
                .into_iter()
                .map(|r| {
                    r.map(|o| Downloaded {
                        size: o.size,
                        requests: o.requests,
                        resumed: o.resumed,
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_local_paths() {
        assert_eq!(
            parse_source("cos://b-1.cos.ap-shanghai.myqcloud.com/logs/").unwrap(),
            (
                Some("b-1".into()),
                Some("ap-shanghai".into()),
                "logs/".into()
            )
        );
        assert_eq!(
            parse_source("cos://b-1/k").unwrap(),
            (Some("b-1".into()), None, "k".into())
        );
        assert_eq!(parse_source("k").unwrap(), (None, None, "k".into()));
        assert!(parse_source("cos:///k").is_err());
        assert_eq!(safe_relative("a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(safe_relative("/a//./b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative("a/../../etc/passwd"), None);
        assert_eq!(safe_relative(""), None);
    }
}
