//! The upload command: files, directories (`-r`) or standard input (`-`) to COS, through one client, many
//! files at once, with progress, resume and a verified CRC-64 per file.
//!
//! ```sh
//! cargo run --release -p cos-examples --example upload -- --local Cargo.lock demo/   # a local test server
//! COS_SECRET_ID=… COS_SECRET_KEY=… cargo run --release -p cos-examples --example upload -- \
//!     --region ap-shanghai -r ./site cos://examplebucket-1250000000/site/
//! cargo run -p cos-examples --example upload -- --help                               # every option
//! ```
//! Exit codes: 0 every file uploaded and verified, 1 some failed, 2 usage error (nothing sent), 130
//! interrupted (Ctrl-C; checkpoints kept, the same command resumes).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use cos_core::ops::{Acl, ObjectOptions, ServerSideEncryption, StorageClass};
use cos_core::upload::{
    BatchOptions, FileUpload, Progress, ProgressFn, UploadOptions, UploadOutcome,
};
use cos_core::{Config, Credentials, Endpoint};

const EXAMPLES: &str = "\
Examples:
  upload --local notes.txt docs/notes.txt
      try it with no account: a local COS-compatible test server in this process
  upload --region ap-shanghai report.pdf cos://examplebucket-1250000000/reports/
      one file to reports/report.pdf (Content-Type application/pdf, guessed)
  upload -r --exclude '*.tmp' ./site cos://examplebucket-1250000000.cos.ap-shanghai.myqcloud.com/www/
      a directory tree; keys are www/<relative path> with '/'; the region comes from the URL
  upload --bucket examplebucket-1250000000 --region ap-guangzhou --checkpoint big.ckpt big.iso isos/big.iso
      the original form: DEST is the key; rerun the same command to resume
  tar c dir | upload --region ap-guangzhou - cos://examplebucket-1250000000/backup.tar
      standard input

Credentials: COS_SECRET_ID and COS_SECRET_KEY (and COS_SECURITY_TOKEN for temporary ones). Without them
the command refuses to run (exit 2) unless --local is given: it never uploads anywhere else silently.
Region: --region, else COS_REGION, else the cos://BUCKET.cos.REGION.myqcloud.com/ form of DEST.

Exit codes:
  0    every file uploaded and its CRC-64 verified
  1    some files failed (each is named, with why, at the end)
  2    usage error: bad flag or value, no credentials, no bucket or region (nothing was sent)
  130  interrupted by Ctrl-C: checkpoints are kept; run the same command again to resume";

/// Upload files, directories or standard input to Tencent Cloud COS, verifying every file's CRC-64.
///
/// DEST is `cos://BUCKET-APPID/PREFIX` (or `cos://BUCKET-APPID.cos.REGION.myqcloud.com/PREFIX`), or a key
/// in the bucket given with --bucket. With one FILE, DEST is its key unless it ends in `/`; with several
/// FILEs or -r, DEST is a prefix and each key is the prefix plus the file's name (its path relative to the
/// directory with -r), with `/` on every platform.
#[derive(Parser, Debug)]
#[command(name = "upload", version, after_help = EXAMPLES)]
struct Cli {
    /// Files (directories with -r) to upload; `-` reads standard input.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    files: Vec<String>,
    /// Where the files go: cos://BUCKET-APPID/PREFIX, or a key / prefix in --bucket.
    #[arg(value_name = "DEST", required = true)]
    dest: String,

    /// Upload to a local COS-compatible test server started in this process (no account needed).
    #[arg(long, conflicts_with = "endpoint")]
    local: bool,
    /// A custom endpoint, http(s)://host[:port] (credentials still required).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// The bucket, BUCKET-APPID (or give it in a cos:// DEST).
    #[arg(long, value_name = "BUCKET")]
    bucket: Option<String>,
    /// The region, e.g. ap-shanghai (else COS_REGION, else from a cos://…myqcloud.com DEST).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The client: blocking (threads) or async (tokio).
    #[arg(long, value_enum, default_value_t = Transport::Blocking)]
    transport: Transport,

    /// Part size of multipart uploads, e.g. 8MiB (default: 1 MiB, more for files over 10,000 MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    part_size: Option<u64>,
    /// Parts in flight per file.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = positive)]
    concurrency: usize,
    /// Files uploaded at once [default: 16 when the files average up to 64 KiB, else 4 (the best measured
    /// with bench_batch on 2 cores); more can help over a long-latency network].
    #[arg(long, value_name = "N", value_parser = positive)]
    file_parallel: Option<usize>,
    /// Also compute the MD5 of everything sent and check every ETag against it (COS's CRC-64 of every part
    /// and file is checked either way). Costs about 1.3 s more CPU per GiB than the CRC-64 alone.
    #[arg(long)]
    verify_md5: bool,
    /// Checkpoint file of a single FILE's multipart upload (kept until it succeeds; standard input, `-`,
    /// cannot be resumed and keeps none, which the command says).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Where checkpoints and the list of finished files are kept, so that an interrupted run resumes
    /// [default: $XDG_CACHE_HOME/cos-rs/upload or ~/.cache/cos-rs/upload].
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,

    /// Upload directories: every file below them.
    #[arg(short, long)]
    recursive: bool,
    /// Only files whose path (relative, with '/') matches this glob; repeatable. `*` also matches '/'.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    include: Vec<glob::Pattern>,
    /// Skip files whose relative path matches this glob; repeatable; wins over --include.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    exclude: Vec<glob::Pattern>,

    /// Content-Type of every object [default: guessed from each file's extension].
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Send no Content-Type when --content-type is not given (COS stores application/octet-stream).
    #[arg(long, conflicts_with = "content_type")]
    no_guess_content_type: bool,
    /// Storage class, e.g. STANDARD, STANDARD_IA, ARCHIVE, INTELLIGENT_TIERING.
    #[arg(long, value_name = "CLASS")]
    storage_class: Option<String>,
    /// Object metadata (x-cos-meta-KEY); repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
    /// Object ACL.
    #[arg(long, value_enum)]
    acl: Option<AclArg>,
    /// Bandwidth limit per request in bit/s, e.g. 819200 or 100M (COS accepts 800 Kib/s to 800 Mib/s).
    #[arg(long, value_name = "BITS", value_parser = parse_size_arg)]
    traffic_limit: Option<u64>,
    /// Server-side encryption: AES256, or cos/kms with an optional key id: cos/kms:KEYID.
    #[arg(long, value_name = "MODE", value_parser = parse_sse)]
    sse: Option<ServerSideEncryption>,

    /// No progress and no per-file lines: only failures and the exit code.
    #[arg(short, long)]
    quiet: bool,
    /// One JSON line per file on standard output: key, file, bytes, seconds, etag, crc64, error.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    Blocking,
    Async,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AclArg {
    Default,
    Private,
    PublicRead,
}

// ---- argument values ----

/// Parses `8388608`, `8MiB`, `8M`, `1G`, `1.5 GiB` is refused (whole numbers only). `K`, `M`, `G`, `T`
/// with or without `iB` are binary (1024); `KB`, `MB`, `GB`, `TB` are decimal. Overflow is an error.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err("expected a whole number of bytes, e.g. 8388608, 8MiB or 1G".into());
    }
    let n: u64 = num.parse().map_err(|_| format!("{num} is too large"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "unknown unit {u:?} (use B, KiB, MiB, GiB, TiB, K, M, G, T, KB, MB, GB, TB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s} does not fit in 64 bits"))
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive whole number".into()),
    }
}

fn parse_glob(s: &str) -> Result<glob::Pattern, String> {
    glob::Pattern::new(s).map_err(|e| e.to_string())
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

fn parse_sse(s: &str) -> Result<ServerSideEncryption, String> {
    match s {
        "AES256" | "aes256" => Ok(ServerSideEncryption::Aes256),
        "cos/kms" => Ok(ServerSideEncryption::Kms { key_id: None }),
        _ => match s.strip_prefix("cos/kms:") {
            Some(id) if !id.is_empty() => Ok(ServerSideEncryption::Kms {
                key_id: Some(id.to_string()),
            }),
            _ => Err("expected AES256, cos/kms or cos/kms:KEYID".into()),
        },
    }
}

/// A destination: `cos://BUCKET[.cos.REGION.myqcloud.com]/PREFIX`, or a plain key / prefix.
#[derive(Debug, PartialEq, Eq)]
struct Dest {
    bucket: Option<String>,
    region: Option<String>,
    path: String,
}

fn parse_dest(s: &str) -> Result<Dest, String> {
    let Some(rest) = s.strip_prefix("cos://") else {
        return Ok(Dest {
            bucket: None,
            region: None,
            path: s.to_string(),
        });
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(format!("{s}: no bucket after cos://"));
    }
    let (bucket, region) = match host.split_once(".cos.") {
        Some((b, tail)) => {
            let region = tail
                .strip_suffix(".myqcloud.com")
                .filter(|r| !r.is_empty() && !r.contains('.'))
                .ok_or_else(|| {
                    format!("{s}: expected cos://BUCKET-APPID.cos.REGION.myqcloud.com/PREFIX")
                })?;
            (b, Some(region.to_string()))
        }
        None => (host, None),
    };
    Ok(Dest {
        bucket: Some(bucket.to_string()),
        region,
        path: path.to_string(),
    })
}

// ---- the files of a run ----

/// One local file and its key.
#[derive(Debug)]
struct Item {
    path: PathBuf,
    key: String,
    size: u64,
    mtime_ns: u128,
}

fn join_key(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{rel}")
    } else {
        format!("{prefix}/{rel}")
    }
}

fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn filtered(rel: &str, include: &[glob::Pattern], exclude: &[glob::Pattern]) -> bool {
    (include.is_empty() || include.iter().any(|p| p.matches(rel)))
        && !exclude.iter().any(|p| p.matches(rel))
}

/// Every file below `dir` (sorted; symbolic links to directories are not followed), as (path, relative
/// path with '/').
fn walk(dir: &Path, rel: &str, out: &mut Vec<(PathBuf, String)>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| format!("{}: the name is not UTF-8", e.path().display()))?;
        let r = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let ft = e
            .file_type()
            .map_err(|err| format!("{}: {err}", e.path().display()))?;
        if ft.is_dir() {
            walk(&e.path(), &r, out)?;
        } else if ft.is_file() || (ft.is_symlink() && e.path().is_file()) {
            out.push((e.path(), r));
        }
    }
    Ok(())
}

/// The files of the run with their keys; `-` (standard input) is returned apart.
fn collect(cli: &Cli, prefix: &str) -> Result<(Vec<Item>, Option<String>), String> {
    let several = cli.files.len() > 1 || cli.recursive;
    let mut items = Vec::new();
    let mut stdin_key = None;
    for f in &cli.files {
        if f == "-" {
            if stdin_key.is_some() {
                return Err("- (standard input) given twice".into());
            }
            stdin_key = Some(if several || prefix.is_empty() || prefix.ends_with('/') {
                join_key(prefix, "stdin")
            } else {
                prefix.to_string()
            });
            continue;
        }
        let path = Path::new(f);
        let meta = std::fs::metadata(path).map_err(|e| format!("{f}: {e}"))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            if !cli.recursive {
                return Err(format!(
                    "{f} is a directory (use -r to upload what is in it)"
                ));
            }
            walk(path, "", &mut found)?;
        } else {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("{f}: no UTF-8 file name"))?;
            found.push((path.to_path_buf(), name.to_string()));
        }
        for (p, rel) in found {
            if !filtered(&rel, &cli.include, &cli.exclude) {
                continue;
            }
            let key = if several || prefix.is_empty() || prefix.ends_with('/') {
                join_key(prefix, &rel)
            } else {
                prefix.to_string()
            };
            let meta = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            items.push(Item {
                path: p,
                key,
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
            });
        }
    }
    let mut seen = HashMap::new();
    for it in &items {
        if let Some(other) = seen.insert(it.key.as_str(), &it.path) {
            return Err(format!(
                "{} and {} would both be uploaded as {}",
                other.display(),
                it.path.display(),
                it.key
            ));
        }
    }
    Ok((items, stdin_key))
}

// ---- resume state: per-file checkpoints and the list of finished files ----

fn hash_hex(parts: &[&str]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn default_checkpoint_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("cos-rs")
        .join("upload")
}

/// The files a run of the same command finished: one JSON line each, appended as files end, read back by
/// the next run so that it skips them. Removed once a run has uploaded everything.
struct Journal {
    path: PathBuf,
    done: HashMap<String, (u64, u128)>,
    out: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
}

impl Journal {
    fn open(path: PathBuf) -> Result<Journal, String> {
        let mut done = HashMap::new();
        if let Ok(f) = std::fs::File::open(&path) {
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                // A line cut by a crash does not parse and is ignored: that file is uploaded again.
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let (Some(k), Some(s), Some(m)) = (
                    v["key"].as_str(),
                    v["size"].as_u64(),
                    v["mtime_ns"].as_str(),
                ) {
                    if let Ok(m) = m.parse() {
                        done.insert(k.to_string(), (s, m));
                    }
                }
            }
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Journal {
            path,
            done,
            out: Mutex::new(Some(std::io::BufWriter::new(out))),
        })
    }

    fn finished_before(&self, it: &Item) -> bool {
        self.done.get(&it.key) == Some(&(it.size, it.mtime_ns))
    }

    fn record(&self, it: &Item) {
        let line = serde_json::json!({"key": it.key, "size": it.size, "mtime_ns": it.mtime_ns.to_string()});
        if let Some(w) = self.out.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(w, "{line}");
        }
    }

    /// Flushes and closes (nothing is written after).
    fn close(&self) {
        if let Some(mut w) = self.out.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = w.flush();
        }
    }
}

// ---- output ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// One file in flight.
struct Active {
    started: Instant,
    loaded: AtomicU64,
    bar: Option<indicatif::ProgressBar>,
}

/// Progress, per-file lines and the summary: bars on a terminal, lines at most once a second otherwise,
/// each line written whole (one `write`); standard output buffered.
struct Reporter {
    mode: Mode,
    json: bool,
    file_lines: bool,
    multi: Option<indicatif::MultiProgress>,
    overall: Option<indicatif::ProgressBar>,
    total_files: u64,
    total_bytes: u64,
    started: Instant,
    done_files: AtomicU64,
    done_bytes: AtomicU64,
    active: Mutex<HashMap<String, Arc<Active>>>,
    last_line: Mutex<Instant>,
    stdout: Mutex<std::io::BufWriter<std::io::Stdout>>,
    failures: Mutex<Vec<(String, String)>>,
    /// Per-file bars not lent to a file now.
    slots: Mutex<Vec<indicatif::ProgressBar>>,
}

fn idle_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("").expect("template")
}

fn file_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(
        "  [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {wide_msg}",
    )
    .expect("template")
    .progress_chars("=> ")
}

fn err_line(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1 << 20) as f64 {
        format!("{:.1} MiB", b / (1 << 20) as f64)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

impl Reporter {
    /// `slots`: how many per-file bars may show at once.
    fn new(cli: &Cli, total_files: u64, total_bytes: u64, slots: usize) -> Reporter {
        let mode = if cli.quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let (multi, overall) = if mode == Mode::Bars {
            let multi = indicatif::MultiProgress::new();
            let overall = multi.add(indicatif::ProgressBar::new(total_bytes));
            overall.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{bar:30.cyan/blue}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}, {elapsed}, eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            overall.set_message(format!("0/{total_files} files"));
            overall.enable_steady_tick(Duration::from_millis(200));
            (Some(multi), Some(overall))
        } else {
            (None, None)
        };
        // A fixed set of lines under the overall bar, each lent to one file at a time: bars are never
        // added or removed while drawing, so the display keeps its height and leaves nothing behind.
        let slots = match &multi {
            Some(m) => (0..slots)
                .map(|_| {
                    let b = m.add(indicatif::ProgressBar::new(0));
                    b.set_style(idle_style());
                    b
                })
                .collect(),
            None => Vec::new(),
        };
        Reporter {
            mode,
            json: cli.json,
            // On a terminal the bars say it; in a pipe or a file, one line per file (as `aws s3 cp`).
            file_lines: !cli.json
                && mode != Mode::Quiet
                && !(mode == Mode::Bars && std::io::stdout().is_terminal()),
            multi,
            overall,
            total_files,
            total_bytes,
            started: Instant::now(),
            done_files: AtomicU64::new(0),
            done_bytes: AtomicU64::new(0),
            active: Mutex::new(HashMap::new()),
            last_line: Mutex::new(Instant::now()),
            stdout: Mutex::new(std::io::BufWriter::with_capacity(
                64 << 10,
                std::io::stdout(),
            )),
            failures: Mutex::new(Vec::new()),
            slots: Mutex::new(slots),
        }
    }

    /// A file starts; returns its progress callback.
    fn start(self: &Arc<Self>, key: &str, size: u64) -> Option<ProgressFn> {
        if self.mode == Mode::Quiet {
            return None;
        }
        // A file sent with one PUT (up to 1 MiB) ends in one request: the overall bar counts it; a bar of
        // its own would only flicker.
        let own_bar = size > cos_core::upload::plan::DEFAULT_SINGLE_PUT_THRESHOLD;
        let bar = if own_bar {
            self.slots.lock().unwrap_or_else(|e| e.into_inner()).pop()
        } else {
            None
        };
        if let Some(b) = &bar {
            b.reset();
            b.set_length(size);
            b.set_message(key.to_string());
            b.set_style(file_style());
        }
        let a = Arc::new(Active {
            started: Instant::now(),
            loaded: AtomicU64::new(0),
            bar,
        });
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), a.clone());
        let me = self.clone();
        Some(Arc::new(move |p: &Progress| {
            let before = a.loaded.swap(p.loaded, Ordering::Relaxed);
            if let Some(b) = &a.bar {
                b.set_position(p.loaded);
            }
            if let Some(o) = &me.overall {
                o.inc(p.loaded.saturating_sub(before));
            }
            me.maybe_line();
        }))
    }

    fn in_flight_bytes(&self) -> u64 {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active
            .values()
            .map(|a| a.loaded.load(Ordering::Relaxed))
            .sum()
    }

    /// In line mode, a progress line at most once a second.
    fn maybe_line(&self) {
        if self.mode != Mode::Lines {
            return;
        }
        {
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < Duration::from_secs(1) {
                return;
            }
            *last = Instant::now();
        }
        let bytes = self.done_bytes.load(Ordering::Relaxed) + self.in_flight_bytes();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        err_line(&format!(
            "progress: {}/{} files, {} of {}, {:.1} MiB/s\n",
            self.done_files.load(Ordering::Relaxed),
            self.total_files,
            human(bytes),
            human(self.total_bytes),
            bytes as f64 / secs / 1048576.0
        ));
    }

    /// A file ended.
    fn finish(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        r: &Result<UploadOutcome, cos_core::Error>,
    ) {
        let a = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let seconds = a
            .as_ref()
            .map_or(0.0, |a| a.started.elapsed().as_secs_f64());
        if let Some(b) = a.as_ref().and_then(|a| a.bar.clone()) {
            b.set_style(idle_style());
            b.set_message("");
            self.slots.lock().unwrap_or_else(|e| e.into_inner()).push(b);
        }
        let n = self.done_files.fetch_add(1, Ordering::Relaxed) + 1;
        let loaded = a.as_ref().map_or(0, |a| a.loaded.load(Ordering::Relaxed));
        if let Some(o) = &self.overall {
            // Count the whole file as done (or, when it failed, take back what it had sent).
            match r {
                Ok(_) => o.inc(size.saturating_sub(loaded)),
                Err(_) => o.set_position(o.position().saturating_sub(loaded)),
            }
            o.set_message(format!("{n}/{} files", self.total_files));
        }
        if r.is_ok() {
            self.done_bytes.fetch_add(size, Ordering::Relaxed);
        }
        if let Err(e) = r {
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((format!("{key} ({})", path.display()), e.to_string()));
            if self.mode != Mode::Quiet {
                self.above_bars(&format!("failed: {key}: {e}\n"));
            }
        }
        let mut line = String::new();
        if self.json {
            let v = match r {
                Ok(o) => serde_json::json!({
                    "key": key, "file": path.display().to_string(), "bytes": o.total_len,
                    "seconds": seconds, "etag": o.etag,
                    "crc64": o.crc64.map(|c| c.to_string()), "error": null,
                }),
                Err(e) => serde_json::json!({
                    "key": key, "file": path.display().to_string(), "bytes": size,
                    "seconds": seconds, "etag": null, "crc64": null, "error": e.to_string(),
                }),
            };
            line = format!("{v}\n");
        } else if self.file_lines {
            if let Ok(o) = r {
                line = format!(
                    "{key}: {} bytes, {} part(s), ETag {}, CRC64 {} verified\n",
                    o.total_len,
                    o.parts,
                    o.etag,
                    o.crc64
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "(not reported)".into())
                );
            }
        }
        if !line.is_empty() {
            let _ = self
                .stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(line.as_bytes());
        }
        self.maybe_line();
    }

    /// A file the previous run finished (from its journal).
    fn skipped(&self, it: &Item) {
        self.done_files.fetch_add(1, Ordering::Relaxed);
        if let Some(o) = &self.overall {
            o.inc(it.size);
        }
        if self.json {
            let v = serde_json::json!({
                "key": it.key, "file": it.path.display().to_string(), "bytes": it.size,
                "seconds": 0.0, "etag": null, "crc64": null, "error": null, "skipped": true,
            });
            let _ = writeln!(self.stdout.lock().unwrap_or_else(|e| e.into_inner()), "{v}");
        }
    }

    /// A message on standard error that does not break the bars.
    fn above_bars(&self, s: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s.trim_end());
            }
            None => err_line(s),
        }
    }

    /// Clears the bars and flushes standard output.
    fn close(&self) {
        if let Some(o) = &self.overall {
            o.finish_and_clear();
        }
        for b in self.slots.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            b.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
        let _ = self
            .stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush();
    }

    fn failures(&self) -> Vec<(String, String)> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

// ---- the run ----

/// A usage or configuration error: exit 2, nothing sent.
struct Usage(String);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(), // --help / --version: 0 on stdout; a usage error: 2, naming the flag
    };
    match run(cli) {
        Ok(code) => code,
        Err(Usage(msg)) => {
            err_line(&format!(
                "upload: error: {msg}\n\nFor more information, try '--help'.\n"
            ));
            ExitCode::from(2)
        }
    }
}

/// Where the run uploads, decided before anything is read or sent.
struct Target {
    config: Config,
    local: Option<cos_testkit::Server>,
}

fn target(cli: &Cli, dest: &Dest) -> Result<Target, Usage> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let bucket = match (&cli.bucket, &dest.bucket) {
        (Some(a), Some(b)) if a != b => {
            return Err(Usage(format!(
                "--bucket {a} and the destination's bucket {b} differ"
            )))
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    if cli.local {
        let mut builder = cos_testkit::Server::builder();
        if let Some(b) = &bucket {
            builder = builder.bucket(b);
        }
        let server = builder
            .start_blocking()
            .map_err(|e| Usage(format!("cannot start the local server: {e}")))?;
        err_line(&format!(
            "--local: uploading to a local cos-testkit server at {} (bucket {}); it stops when the command ends\n",
            server.endpoint(),
            server.bucket()
        ));
        let config = Config::new(
            server.bucket(),
            cli.region.as_deref().unwrap_or("ap-guangzhou"),
            Credentials::new(server.secret_id(), server.secret_key()),
        )
        .and_then(|c| c.with_endpoint(Endpoint::custom(&server.endpoint())?))
        .map_err(|e| Usage(e.to_string()))?;
        return Ok(Target {
            config,
            local: Some(server),
        });
    }
    let (id, key) = (env("COS_SECRET_ID"), env("COS_SECRET_KEY"));
    let (Some(id), Some(key)) = (id, key) else {
        return Err(Usage(
            "no credentials: set COS_SECRET_ID and COS_SECRET_KEY (and COS_SECURITY_TOKEN for temporary \
             ones), or give --local to try the command against a local test server. Nothing was uploaded."
                .into(),
        ));
    };
    let Some(bucket) = bucket else {
        return Err(Usage(
            "no bucket: give DEST as cos://BUCKET-APPID/PREFIX or use --bucket BUCKET-APPID".into(),
        ));
    };
    let region = cli
        .region
        .clone()
        .or_else(|| env("COS_REGION"))
        .or_else(|| dest.region.clone());
    let region = match (region, &cli.endpoint) {
        (Some(r), _) => r,
        // A custom endpoint names the host itself; the region is not part of the request.
        (None, Some(_)) => "custom-endpoint".to_string(),
        (None, None) => {
            return Err(Usage(
                "no region: give --region (e.g. ap-shanghai), set COS_REGION, or use \
                 cos://BUCKET-APPID.cos.REGION.myqcloud.com/PREFIX"
                    .into(),
            ))
        }
    };
    let mut creds = Credentials::new(id, key);
    if let Some(t) = env("COS_SECURITY_TOKEN") {
        creds = creds.with_security_token(t);
    }
    let mut config = Config::new(&bucket, &region, creds).map_err(|e| Usage(e.to_string()))?;
    if let Some(e) = &cli.endpoint {
        config = Endpoint::custom(e)
            .map_err(cos_core::Error::from)
            .and_then(|e| config.with_endpoint(e))
            .map_err(|e| Usage(format!("--endpoint: {e}")))?;
    }
    Ok(Target {
        config,
        local: None,
    })
}

fn object_options(cli: &Cli) -> ObjectOptions {
    let mut o = ObjectOptions {
        content_type: cli.content_type.clone(),
        storage_class: cli
            .storage_class
            .as_deref()
            .map(|s| StorageClass::parse(&s.to_ascii_uppercase())),
        metadata: cli.meta.clone(),
        traffic_limit: cli.traffic_limit,
        server_side_encryption: cli.sse.clone(),
        ..Default::default()
    };
    o.acl = cli.acl.map(|a| match a {
        AclArg::Default => Acl::Default,
        AclArg::Private => Acl::Private,
        AclArg::PublicRead => Acl::PublicRead,
    });
    o
}

/// Set by the Ctrl-C handler's owner: what to flush before the process exits.
struct Interrupt {
    reporter: Mutex<Option<Arc<Reporter>>>,
    journal: Mutex<Option<Arc<Journal>>>,
    checkpoint_dir: Mutex<Option<PathBuf>>,
}

fn run(cli: Cli) -> Result<ExitCode, Usage> {
    if cli.checkpoint.is_some() && (cli.files.len() > 1 || cli.recursive) {
        return Err(Usage(
            "--checkpoint goes with a single FILE; use --checkpoint-dir".into(),
        ));
    }
    let dest = parse_dest(&cli.dest).map_err(Usage)?;
    let (items, stdin_key) = collect(&cli, &dest.path).map_err(Usage)?;
    if items.is_empty() && stdin_key.is_none() {
        return Err(Usage(
            "no files to upload (check --include / --exclude)".into(),
        ));
    }
    let target = target(&cli, &dest)?;
    if let (Some(cp), Some(_)) = (&cli.checkpoint, &stdin_key) {
        // Said, not silently ignored: the user asked for a checkpoint that cannot exist.
        err_line(&format!(
            "note: --checkpoint {} does not apply to `-`: standard input cannot be read again, so no \
             checkpoint is kept and an interrupted upload of it starts over\n",
            cp.display()
        ));
    }

    let interrupt = Arc::new(Interrupt {
        reporter: Mutex::new(None),
        journal: Mutex::new(None),
        checkpoint_dir: Mutex::new(None),
    });
    {
        let interrupt = interrupt.clone();
        let _ = ctrlc::set_handler(move || on_ctrl_c(&interrupt));
    }

    // Resume state: only for a real bucket (the local server ends with the command).
    let resumable = target.local.is_none() || cli.checkpoint_dir.is_some();
    let checkpoint_dir = cli
        .checkpoint_dir
        .clone()
        .unwrap_or_else(default_checkpoint_dir);
    let bucket = target.config.bucket.to_string();
    let endpoint = cli.endpoint.clone().unwrap_or_default();
    let journal = if resumable && items.len() > 1 {
        std::fs::create_dir_all(&checkpoint_dir).map_err(|e| {
            Usage(format!(
                "--checkpoint-dir {}: {e}",
                checkpoint_dir.display()
            ))
        })?;
        let mut id: Vec<String> = vec![endpoint.clone(), bucket.clone(), dest.path.clone()];
        id.extend(
            items
                .iter()
                .map(|i| format!("{}\0{}", i.path.display(), i.key)),
        );
        let refs: Vec<&str> = id.iter().map(String::as_str).collect();
        let path = checkpoint_dir.join(format!("batch-{}.jsonl", hash_hex(&refs)));
        Some(Arc::new(Journal::open(path).map_err(Usage)?))
    } else {
        None
    };
    *interrupt.journal.lock().unwrap() = journal.clone();
    if resumable {
        *interrupt.checkpoint_dir.lock().unwrap() = Some(
            cli.checkpoint
                .clone()
                .unwrap_or_else(|| checkpoint_dir.clone()),
        );
    }

    let (todo, skipped): (Vec<Item>, Vec<Item>) = match &journal {
        Some(j) => items.into_iter().partition(|i| !j.finished_before(i)),
        None => (items, Vec::new()),
    };
    let total_bytes: u64 = todo.iter().chain(&skipped).map(|i| i.size).sum();
    let total_files = (todo.len() + skipped.len() + stdin_key.is_some() as usize) as u64;
    let big_files = todo
        .iter()
        .filter(|i| i.size > cos_core::upload::plan::DEFAULT_SINGLE_PUT_THRESHOLD)
        .count();
    let file_parallel = cli.file_parallel.unwrap_or_else(|| {
        let mean = total_bytes / (todo.len().max(1) as u64);
        if mean <= 64 << 10 {
            16
        } else {
            4
        }
    });
    let slots = big_files.min(file_parallel).min(8);
    let reporter = Arc::new(Reporter::new(&cli, total_files, total_bytes, slots));
    *interrupt.reporter.lock().unwrap() = Some(reporter.clone());
    if !skipped.is_empty() && !cli.quiet {
        reporter.above_bars(&format!(
            "resuming: {} file(s) finished by an earlier run of this command are skipped\n",
            skipped.len()
        ));
    }
    for s in &skipped {
        reporter.skipped(s);
    }
    if let Some(o) = &reporter.overall {
        o.reset_eta(); // the skipped bytes are not a speed
    }

    // The options every file shares; each file adds its Content-Type, checkpoint and progress bar.
    let base = UploadOptions {
        part_size: cli.part_size,
        concurrency: cli.concurrency,
        object: object_options(&cli),
        guess_content_type: false, // guessed here, with mime_guess's full table
        verify_md5: cli.verify_md5,
        ..Default::default()
    };
    let guess = cli.content_type.is_none() && !cli.no_guess_content_type;
    let by_key: Arc<HashMap<String, usize>> = Arc::new(
        todo.iter()
            .enumerate()
            .map(|(i, it)| (it.key.clone(), i))
            .collect(),
    );
    let todo = Arc::new(todo);
    let per_file = {
        let (base, reporter, todo, by_key) =
            (base.clone(), reporter.clone(), todo.clone(), by_key.clone());
        let (single_checkpoint, cp_dir) = (
            cli.checkpoint.clone(),
            resumable.then(|| checkpoint_dir.clone()),
        );
        let bucket = bucket.clone();
        move |f: &FileUpload| {
            let mut o = base.clone();
            if guess {
                if let Some(t) = mime_guess::from_path(&f.path).first_raw() {
                    o.object.content_type = Some(t.to_string());
                }
            }
            let size = by_key.get(&f.key).map_or(0, |&i| todo[i].size);
            o.checkpoint = match (&single_checkpoint, &cp_dir) {
                (Some(c), _) => Some(c.clone()),
                (None, Some(dir)) => {
                    let path =
                        dir.join(format!("{}.checkpoint.json", hash_hex(&[&bucket, &f.key])));
                    // A file sent with one PUT has nothing to resume: no checkpoint to read (a file read
                    // per small file of a batch), unless an earlier run left one for a bigger version of
                    // the file, whose multipart upload the PUT then aborts.
                    (size > o.threshold || path.exists()).then_some(path)
                }
                (None, None) => None,
            };
            o.on_progress = reporter.start(&f.key, size);
            o
        }
    };
    let on_done = {
        let (reporter, journal, todo, by_key) = (
            reporter.clone(),
            journal.clone(),
            todo.clone(),
            by_key.clone(),
        );
        move |f: &FileUpload, r: &Result<UploadOutcome, cos_core::Error>| {
            let Some(&i) = by_key.get(&f.key) else { return };
            let it = &todo[i];
            reporter.finish(&it.key, &it.path, it.size, r);
            if let (Ok(_), Some(j)) = (r, &journal) {
                j.record(it);
            }
        }
    };
    let batch = BatchOptions::default()
        .file_parallel(file_parallel)
        .upload(base.clone())
        .per_file(per_file)
        .on_file_done(on_done);
    let files: Vec<FileUpload> = todo
        .iter()
        .map(|it| FileUpload::new(&it.path, &it.key))
        .collect();

    let started = Instant::now();
    let mut stdin_result = None;
    let results: Vec<Result<UploadOutcome, cos_core::Error>> = match cli.transport {
        Transport::Blocking => {
            let client = cos_blocking::Client::new(target.config.clone());
            if let Some(key) = &stdin_key {
                let mut o = base.clone();
                o.on_progress = reporter.start(key, 0);
                stdin_result = Some(client.upload_stream(std::io::stdin(), key, &o));
            }
            if files.is_empty() {
                Vec::new()
            } else {
                client.upload_files(files, &batch)
            }
        }
        Transport::Async => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| Usage(format!("cannot start the tokio runtime: {e}")))?;
            rt.block_on(async {
                let client = cos_async::Client::new(target.config.clone());
                if let Some(key) = &stdin_key {
                    let mut o = base.clone();
                    o.on_progress = reporter.start(key, 0);
                    stdin_result = Some(client.upload_stream(tokio::io::stdin(), key, &o).await);
                }
                if files.is_empty() {
                    Vec::new()
                } else {
                    client.upload_files(files, &batch).await
                }
            })
        }
    };
    if let (Some(key), Some(r)) = (&stdin_key, &stdin_result) {
        let len = r.as_ref().map_or(0, |o| o.total_len);
        reporter.finish(key, Path::new("-"), len, r);
    }
    let elapsed = started.elapsed();
    reporter.close();
    *interrupt.reporter.lock().unwrap() = None;

    // The summary.
    let failures = reporter.failures();
    let mut uploaded_bytes = 0;
    let mut uploaded = 0usize;
    let mut crcs = Vec::new();
    for r in results.iter().chain(stdin_result.iter()).flatten() {
        uploaded += 1;
        uploaded_bytes += r.total_len;
        crcs.push(r.crc64);
    }
    if let Some(j) = &journal {
        j.close();
        if failures.is_empty() {
            let _ = std::fs::remove_file(&j.path);
        }
    }
    let secs = elapsed.as_secs_f64().max(1e-9);
    let crc_note = match crcs.as_slice() {
        [Some(c)] => format!("crc64 {c} verified"),
        [None] => "crc64 (not reported by the server)".to_string(),
        _ => format!(
            "crc64 verified for {} of {}",
            crcs.iter().filter(|c| c.is_some()).count(),
            crcs.len()
        ),
    };
    let summary = format!(
        "uploaded {uploaded} file(s), {uploaded_bytes} bytes in {:.3} s, {:.1} MiB/s, {:.0} files/s, {crc_note}{}\n",
        secs,
        cos_examples::mib_per_sec(uploaded_bytes, elapsed),
        uploaded as f64 / secs,
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; {} skipped (finished earlier)", skipped.len())
        }
    );
    if !cli.quiet {
        if cli.json {
            err_line(&summary);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(summary.as_bytes());
            let _ = out.flush();
        }
    }
    drop(target.local);
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut msg = format!("{} of {} file(s) failed:\n", failures.len(), total_files);
    for (what, why) in &failures {
        msg.push_str(&format!("  {what}: {why}\n"));
    }
    if resumable {
        msg.push_str(&format!(
            "Run the same command again to retry them: finished files are skipped and multipart uploads resume \
             from their checkpoints in {}.\n",
            checkpoint_dir.display()
        ));
    }
    err_line(&msg);
    Ok(ExitCode::from(1))
}

/// The first Ctrl-C: the finished-files list is flushed, checkpoints (written atomically after every part)
/// stay, and the process ends with 130; the same command resumes.
fn on_ctrl_c(interrupt: &Interrupt) {
    let reporter = interrupt
        .reporter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(j) = interrupt
        .journal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        j.close();
    }
    let (done, total) = match &reporter {
        Some(r) => {
            r.close();
            (r.done_files.load(Ordering::Relaxed), r.total_files)
        }
        None => (0, 0),
    };
    let msg = match interrupt.checkpoint_dir.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(dir) => format!(
            "\ninterrupted: stopped after {done} of {total} file(s). Checkpoints are kept in {}: run the same \
             command again to resume (finished files are skipped, multipart uploads send only their missing \
             parts).\n",
            dir.display()
        ),
        None => format!(
            "\ninterrupted: stopped after {done} of {total} file(s) (--local keeps nothing to resume).\n"
        ),
    };
    err_line(&msg);
    std::process::exit(130);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8388608"), Ok(8 << 20));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert!(parse_size("17179869184GiB").is_err()); // 2^34 GiB overflows
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("8 parsecs").is_err());
    }

    #[test]
    fn destinations() {
        assert_eq!(
            parse_dest("cos://examplebucket-1250000000/a/b/").unwrap(),
            Dest {
                bucket: Some("examplebucket-1250000000".into()),
                region: None,
                path: "a/b/".into()
            }
        );
        let d = parse_dest("cos://b-1.cos.ap-shanghai.myqcloud.com/x").unwrap();
        assert_eq!(
            (d.bucket.as_deref(), d.region.as_deref(), d.path.as_str()),
            (Some("b-1"), Some("ap-shanghai"), "x")
        );
        assert_eq!(parse_dest("cos://b-1").unwrap().path, "");
        assert!(parse_dest("cos:///x").is_err());
        assert!(parse_dest("cos://b-1.cos.example.com/x").is_err());
        assert_eq!(parse_dest("docs/a.txt").unwrap().bucket, None);
    }

    #[test]
    fn keys_and_filters() {
        assert_eq!(join_key("", "a/b"), "a/b");
        assert_eq!(join_key("p", "a"), "p/a");
        assert_eq!(join_key("p/", "a"), "p/a");
        let inc = [glob::Pattern::new("*.txt").unwrap()];
        let exc = [glob::Pattern::new("skip/*").unwrap()];
        assert!(filtered("a/b.txt", &inc, &exc));
        assert!(!filtered("skip/b.txt", &inc, &exc));
        assert!(!filtered("a/b.bin", &inc, &exc));
        assert!(filtered("a/b.bin", &[], &[]));
    }
}
