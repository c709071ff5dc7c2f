//! Architecture rules, checked on the source tree: cos-core keeps to its dependency list, and the drivers
//! make no protocol decisions (no status checks, no XML, no retry logic): those live in cos-core, once.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn core_dependencies_are_the_allowed_ones() {
    let manifest = std::fs::read_to_string(root().join("cos-core/Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let allowed = [
        "http",
        "bytes",
        "quick-xml",
        "serde",
        "serde_json",
        "hmac",
        "sha1",
        "md-5",
        "base64",
        "crc64fast",
    ];
    for line in deps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['=', '.', ' ']).next().unwrap().trim();
        assert!(
            allowed.contains(&name),
            "cos-core may not depend on {name:?} (sans-IO; allowed: {allowed:?})"
        );
    }
}

#[test]
fn drivers_make_no_protocol_decisions() {
    // Patterns that would mean a driver inspects COS answers or decides retries itself.
    let forbidden = [
        "quick_xml",
        "is_retryable(",
        ".decide(",
        "is_success()",
        "is_client_error()",
        "is_server_error()",
        "StatusCode::OK",
        "== 200",
        ">= 500",
        "== 404",
        // A COS error document in a string literal (not `Option<Error>`).
        "\"<Error>",
        "<Error><",
        "x-cos-hash-crc64ecma",
        "NoSuchUpload",
        // Transfer decisions owned by cos-core: who may continue a checkpoint (leases, their lifetime and
        // renewal), and how far a listing is followed (markers, page caps).
        "LEASE_TTL",
        "LEASE_RENEW",
        "renewed_unix_ms",
        ".lease =",
        "next_part_number_marker",
        "next_key_marker",
        "next_upload_id_marker",
        "MAX_LIST_PAGES",
        "is_truncated",
        // Whole-file and stream decisions (cos_core::upload::file): single PUT or multipart, the size
        // threshold and part size, resume from a checkpoint or by search, checkpoint JSON and its checks,
        // stale-upload aborts, derived checkpoint names, UploadAddMetaMd5.
        "serde_json",
        "choose_upload",
        "find_unfinished",
        "MultipartUpload::resume",
        "MultipartUpload::new(",
        "MultipartUpload::stream",
        "DEFAULT_PART_SIZE",
        ".threshold",
        "upload_config(",
        "ensure_for(",
        "AbortMultipartUpload::new(",
        "md5_hex(format",
        "x-cos-meta-md5",
        "metadata.push",
    ];
    let hits = driver_lines_naming(&forbidden);
    assert!(
        hits.is_empty(),
        "protocol decisions in a driver (move them to cos-core):\n{}",
        hits.join("\n")
    );
}

#[test]
fn core_source_reads_no_clock_and_does_no_io() {
    let mut files = Vec::new();
    rust_files(&root().join("cos-core/src"), &mut files);
    let forbidden = [
        "std::fs",
        "std::net",
        "tokio",
        "Instant::now()",
        "SystemTime::now()",
        "thread::sleep",
        "thread::spawn",
    ];
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Test modules may take a base instant for virtual time; production code may not.
        let prod = text.split("#[cfg(test)]").next().unwrap_or("");
        if f.ends_with("tests.rs") {
            continue;
        }
        for (n, line) in prod.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for pat in forbidden {
                if code.contains(pat) {
                    hits.push(format!("{}:{}: {pat}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "cos-core must stay sans-IO:\n{}",
        hits.join("\n")
    );
}

// ---- issue 9: the drivers' transfer code is a loop over the task protocol ----

/// What a transfer must do is said in the task protocol (`Output::Io`, commands), never through side
/// channels: no per-driver hook traits, no request-like events, no checkpoint (de)serialisation, lease
/// checks, progress throttling, cleanup rules or upload planning in a driver. Its transfer code performs
/// requests and `IoRequest`s and reports answers.
#[test]
fn driver_transfers_are_loops_over_the_task_protocol() {
    let forbidden = [
        // Hook traits and request-like events that the protocol replaced.
        "trait Steer",
        "trait Driver",
        "Steer<",
        "Driver<",
        "PartDigestNeeded",
        "CheckpointChanged",
        "part_digest(",
        "push_part(",
        "finish_stream(",
        "fail_source(",
        "wants_part(",
        // Checkpoint contents and their rules belong to the core's UploadTask.
        "checkpoint_to_bytes",
        "checkpoint_from_bytes",
        "checkpoint_after",
        "CheckpointAfter",
        "LeaseCheck",
        "LeaseDecision",
        "abort_upload()",
        "start_file_upload",
        "start_stream_upload",
        "check_file_upload",
        "FileStart",
        "MultipartUpload",
        // Progress is throttled once, in the core (`Event::Report`).
        "ProgressMeter",
        // A driver does not look inside the task's events to steer it.
        "Event::Progress",
        "Event::Initiated",
        "Event::PartCompleted",
        "Event::Resumed",
        "Event::Restarted",
        ".pause()",
        ".cancel()",
        "resume_sending(",
        // Shared digests between a driver and its task.
        "Arc<Mutex<Option<SentDigest",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("cos-blocking/src"), &mut files);
    rust_files(&root().join("cos-async/src"), &mut files);
    // download.rs is issue 15's; the rules here are about uploads.
    files.retain(|f| !f.ends_with("download.rs"));
    let hits = lines_naming(&files, &forbidden, contains_word);
    assert!(
        hits.is_empty(),
        "transfer decisions in a driver (the core's UploadTask makes them):\n{}",
        hits.join("\n")
    );
}

/// `pat` in `code`, not as the tail of a longer name (`MultipartUpload` is not in `AbortMultipartUpload`).
fn contains_word(code: &str, pat: &str) -> bool {
    code.match_indices(pat).any(|(i, _)| {
        !pat.starts_with(|c: char| c.is_alphanumeric())
            || !code[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn the_word_check_sees_names_not_tails() {
    assert!(contains_word(
        "use cos_core::upload::MultipartUpload;",
        "MultipartUpload"
    ));
    assert!(!contains_word(
        "op: AbortMultipartUpload,",
        "MultipartUpload"
    ));
    assert!(contains_word("task.pause();", ".pause()"));
}

/// The operations build wire bodies (`crate::body`) but never depend on the task protocol, which wraps
/// them (`task/oneshot.rs` uses `crate::ops`): no import cycle between `task` and `ops`.
#[test]
fn ops_never_name_the_task_module() {
    let mut files = Vec::new();
    rust_files(&root().join("cos-core/src/ops"), &mut files);
    assert!(files.len() >= 4, "cos-core/src/ops not found");
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let grouped = code.contains("crate::{") && contains_word(code, "task");
            if code.contains("crate::task") || code.contains("super::task") || grouped {
                hits.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "cos-core/src/ops names crate::task (use crate::body for wire types):\n{}",
        hits.join("\n")
    );
}

/// What both drivers once wrote twice is decided once in the core (`cos_core::client`,
/// `cos_core::exchange`, `cos_core::download::FetchTally`, `cos_core::post_policy::PostFraming`,
/// `cos_core::upload::Reports`, `IoResult::loaded`, `DownloadTask::loaded`…): the clock offset learned
/// from events, the retry seed, credentials handed to tasks, response-body limits, failure wording, which
/// I/O outcome means what, whether a download's checkpoint is read and its temporary file made afresh,
/// when a body is too slow (`Timeouts::check_rate`, `Timeouts::next_deadline`).
#[test]
fn drivers_leave_shared_decisions_to_the_core() {
    let forbidden = [
        "clock_offset_secs",
        "retry.seed",
        "set_credentials(",
        "BodyTruncated",
        "for_status(",
        "too_large(",
        "for_request(",
        "ErrorKind::NotFound =>",
        "not a file",
        "sent whole",
        "RequestContext",
        "if options.checkpoint",
        "fresh_temp",
        "below_min_rate(",
        "minimum rate",
    ];
    let hits = driver_lines_naming(&forbidden);
    assert!(
        hits.is_empty(),
        "a decision the core makes for both drivers, made in a driver:\n{}",
        hits.join("\n")
    );
}

/// The lines of the drivers' sources whose code (comments left out) contains one of `patterns`.
fn driver_lines_naming(patterns: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join("cos-blocking/src"), &mut files);
    rust_files(&root().join("cos-async/src"), &mut files);
    assert!(files.len() >= 4, "driver sources not found");
    lines_naming(&files, patterns, |code, pat| code.contains(pat))
}

/// The lines of `files` whose code (comments left out) `matches` one of `patterns`.
fn lines_naming(
    files: &[PathBuf],
    patterns: &[&str],
    matches: fn(&str, &str) -> bool,
) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pat in patterns {
                if matches(code, pat) {
                    hits.push(format!("{}:{}: {pat}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    hits
}

// ---- issue 9: one task list, decided in the core ----

/// The task lists' decisions (which task starts or has its paused run resumed, what a cancel cleans up,
/// what dropping a queue cancels, when `wait` and `wait_all` return) are the core's `TransferQueue`'s.
/// Each driver has one task-list loop (`queue.rs`, for uploads and downloads alike) that carries out the
/// queue's outputs; it never looks at a task's state, tracks idle runs or results, or picks files to
/// remove.
#[test]
fn driver_task_lists_leave_the_decisions_to_the_core() {
    let forbidden = [
        "TaskState",
        "t.state",
        "is_finished",
        "is_idle()",
        "idle:",
        "cleanups",
        "results",
        ".exists()",
        "temp_path",
        "checkpoint_path",
        "derived_checkpoint_name",
        ".checkpoint(",
        "runs.get_mut",
        "runs.contains_key",
    ];
    let mut hits = Vec::new();
    let mut files = Vec::new();
    for dir in ["cos-blocking/src", "cos-async/src"] {
        let dir = root().join(dir);
        if dir.join("download_queue.rs").exists() {
            hits.push(format!(
                "{}: a second task list",
                dir.join("download_queue.rs").display()
            ));
        }
        files.push(dir.join("queue.rs"));
    }
    hits.extend(lines_naming(&files, &forbidden, contains_word));
    assert!(
        hits.is_empty(),
        "task-list decisions in a driver (the core's TransferQueue makes them):\n{}",
        hits.join("\n")
    );
}
