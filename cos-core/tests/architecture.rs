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
    let mut files = Vec::new();
    rust_files(&root().join("cos-blocking/src"), &mut files);
    rust_files(&root().join("cos-async/src"), &mut files);
    assert!(files.len() >= 4, "driver sources not found");
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pat in forbidden {
                if code.contains(pat) {
                    hits.push(format!("{}:{}: {pat}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
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
