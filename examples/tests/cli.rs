//! The `upload` command as a user runs it: the built binary in a child process, real files, the local
//! server over TCP. Help and version, usage errors naming the flag, no credentials (exit 2, nothing sent),
//! `--local`, recursive uploads with include/exclude and unicode names, `--json`, Content-Type guessed and
//! overridden, object options, exit codes, and Ctrl-C then a rerun that sends only what is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cos_testkit::{Fault, FaultPlan, Server};

fn upload_binary() -> PathBuf {
    // target/<profile>/deps/cli-… → target/<profile>/examples/upload
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("upload");
    assert!(bin.exists(), "{} not built: run `cargo build -p cos-examples --example upload` first (scripts/test.sh does)",
        bin.display());
    bin
}

/// The command with no COS variables from the environment.
fn bare() -> Command {
    let mut c = Command::new(upload_binary());
    for v in [
        "COS_SECRET_ID",
        "COS_SECRET_KEY",
        "COS_SECURITY_TOKEN",
        "COS_REGION",
    ] {
        c.env_remove(v);
    }
    c.stdin(Stdio::null());
    c
}

/// The command pointed at `server` with its credentials; checkpoints in `dir`.
fn at(server: &Server, dir: &Path, transport: &str) -> Command {
    let mut c = bare();
    c.env("COS_SECRET_ID", server.secret_id())
        .env("COS_SECRET_KEY", server.secret_key())
        .args(["--endpoint", &server.endpoint(), "--transport", transport])
        .arg("--checkpoint-dir")
        .arg(dir.join("checkpoints"));
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let out: Output = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cos-rs-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[test]
fn help_and_version_exit_0() {
    let (code, out, _) = run(bare().arg("--help"));
    assert_eq!(code, 0);
    for needle in [
        "--local",
        "--file-parallel",
        "--include",
        "--content-type",
        "--json",
        "Examples:",
        "Exit codes:",
        "130",
        "cos://",
        "COS_SECRET_ID",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}:\n{out}");
    }
    let (code, out, _) = run(bare().arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("upload {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let dir = temp_dir("usage");
    let f = dir.join("a.txt");
    write(&f, b"hello");
    let f = f.to_str().unwrap();
    for (args, needle) in [
        (vec!["--part-size", "8parsecs", f, "k"], "--part-size"),
        (vec!["--part-size", "99999999999GiB", f, "k"], "--part-size"),
        (vec!["--concurrency", "0", f, "k"], "--concurrency"),
        (vec!["--file-parallel", "x", f, "k"], "--file-parallel"),
        (vec!["--transport", "carrier-pigeon", f, "k"], "--transport"),
        (vec!["--meta", "novalue", f, "k"], "--meta"),
        (vec!["--sse", "rot13", f, "k"], "--sse"),
        (vec!["--acl", "everyone", f, "k"], "--acl"),
        (vec!["--include", "[", f, "k"], "--include"),
        (vec!["--nope", f, "k"], "--nope"),
        (vec![f], "DEST"),
    ] {
        let (code, out, err) = run(bare().arg("--local").args(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: the error does not name {needle}: {err}"
        );
        assert!(!out.contains("uploaded"), "{out}");
    }
    // A directory without -r, --checkpoint with several files, a missing file.
    let (code, _, err) = run(bare().args(["--local", dir.to_str().unwrap(), "k/"]));
    assert_eq!(code, 2);
    assert!(err.contains("-r"), "{err}");
    let (code, _, err) = run(bare().args(["--local", "--checkpoint", "c.json", f, f, "k/"]));
    assert_eq!(code, 2);
    assert!(err.contains("--checkpoint"), "{err}");
    let (code, _, err) = run(bare().args(["--local", "/no/such/file", "k"]));
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_credentials_is_an_error_and_sends_nothing() {
    let dir = temp_dir("nocreds");
    let f = dir.join("file.txt");
    write(&f, b"backup me");
    let f = f.to_str().unwrap();
    // The issue's case: a real bucket and region, the credentials missing.
    let (code, out, err) = run(bare().args([
        "--bucket",
        "mybucket-1250000000",
        "--region",
        "ap-shanghai",
        f,
        "backup/file.txt",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no credentials") && err.contains("--local"),
        "{err}"
    );
    assert!(
        !out.contains("uploaded") && !err.contains("uploaded to"),
        "{out}"
    );
    // The same with cos:// and with an endpoint: the server sees no request at all.
    let server = Server::builder().start_blocking().unwrap();
    let dest = format!("cos://{}/backup/", server.bucket());
    let (code, _, err) = run(bare().args(["--endpoint", &server.endpoint(), f, &dest]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no credentials"), "{err}");
    let (code, _, err) = run(bare().args(["--region", "ap-beijing", f, &dest]));
    assert_eq!(code, 2, "{err}");
    // Only one of the two variables set is no better.
    let (code, _, err) = run(bare().env("COS_SECRET_ID", "AKIDEXAMPLE").args([
        "--endpoint",
        &server.endpoint(),
        f,
        &dest,
    ]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(server.counters().total, 0, "a request reached the server");
    assert!(server.object("backup/file.txt").is_none());

    // Credentials but no region for a real bucket: refused, never a default region.
    let (code, _, err) = run(bare()
        .env("COS_SECRET_ID", "AKIDEXAMPLE")
        .env("COS_SECRET_KEY", "k")
        .args([f, "cos://mybucket-1250000000/x"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no region") && err.contains("--region"),
        "{err}"
    );
    // No bucket anywhere.
    let (code, _, err) = run(bare()
        .env("COS_SECRET_ID", "AKIDEXAMPLE")
        .env("COS_SECRET_KEY", "k")
        .args(["--region", "ap-shanghai", f, "x"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no bucket"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn local_only_when_asked() {
    let dir = temp_dir("local");
    let f = dir.join("notes.txt");
    write(&f, b"hello local");
    let (code, out, err) = run(bare().args(["--local", f.to_str().unwrap(), "demo/notes.txt"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("--local") && err.contains("local cos-testkit server"),
        "{err}"
    );
    assert!(out.contains("demo/notes.txt: 11 bytes"), "{out}");
    assert!(out.contains("crc64") && out.contains("verified"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tree with unicode names, filtered; keys are the relative paths with '/'; `--json` lines parse.
fn recursive(transport: &str) {
    let dir = temp_dir(&format!("tree-{transport}"));
    let site = dir.join("site");
    let files: &[(&str, &[u8])] = &[
        ("index.html", b"<h1>hi</h1>"),
        ("css/app.css", b"body{}"),
        ("图片/猫 1.png", b"\x89PNG fake"),
        ("docs/Ünïcödé.md", b"# doc"),
        ("tmp/scratch.tmp", b"junk"),
        ("docs/draft.tmp", b"junk"),
        ("data.bin", b"\x00\x01\x02"),
    ];
    for (rel, data) in files {
        write(&site.join(rel), data);
    }
    let server = Server::builder().start_blocking().unwrap();
    let dest = format!("cos://{}/www/", server.bucket());
    let (code, out, err) = run(at(&server, &dir, transport).args([
        "-r",
        "--json",
        "--include",
        "*.html",
        "--include",
        "*.css",
        "--include",
        "*.png",
        "--include",
        "docs/*",
        "--exclude",
        "*.tmp",
        site.to_str().unwrap(),
        &dest,
    ]));
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&out);
    let mut by_key = BTreeMap::new();
    for l in &lines {
        assert!(l["error"].is_null(), "{l}");
        assert!(l["seconds"].as_f64().unwrap() >= 0.0);
        by_key.insert(l["key"].as_str().unwrap().to_string(), l.clone());
    }
    let expect = [
        ("www/index.html", "index.html", "text/html"),
        ("www/css/app.css", "css/app.css", "text/css"),
        ("www/图片/猫 1.png", "图片/猫 1.png", "image/png"),
        ("www/docs/Ünïcödé.md", "docs/Ünïcödé.md", "text/markdown"),
    ];
    assert_eq!(
        by_key.keys().collect::<Vec<_>>(),
        {
            let mut k: Vec<_> = expect.iter().map(|e| e.0).collect();
            k.sort();
            k
        },
        "{out}"
    );
    for (key, rel, ctype) in expect {
        let data = files.iter().find(|f| f.0 == rel).unwrap().1;
        let stored = server
            .object(key)
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(stored.data.as_deref(), Some(data), "{key}");
        assert_eq!(stored.content_type, ctype, "{key}");
        let l = &by_key[key];
        assert_eq!(l["bytes"].as_u64(), Some(data.len() as u64));
        assert_eq!(l["etag"].as_str(), Some(stored.etag.as_str()));
        assert_eq!(l["crc64"].as_str(), Some(stored.crc64.to_string().as_str()));
    }
    for skipped in ["www/tmp/scratch.tmp", "www/docs/draft.tmp", "www/data.bin"] {
        assert!(server.object(skipped).is_none(), "{skipped} was uploaded");
    }
    assert_eq!(server.counters().get("PutObject"), 4);
    // Everything finished: no resume state is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recursive_include_exclude_unicode_json_blocking() {
    recursive("blocking");
}

#[test]
fn recursive_include_exclude_unicode_json_async() {
    recursive("async");
}

#[test]
fn content_type_guessed_overridden_and_object_options() {
    let dir = temp_dir("ctype");
    let page = dir.join("page.html");
    write(&page, b"<p>x</p>");
    let server = Server::builder().start_blocking().unwrap();
    let p = page.to_str().unwrap();
    for transport in ["blocking", "async"] {
        let key = format!("{transport}/guessed.html");
        let (code, _, err) =
            run(at(&server, &dir, transport).args(["--bucket", server.bucket(), p, &key]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(server.object(&key).unwrap().content_type, "text/html");

        let key = format!("{transport}/override.html");
        let (code, _, err) = run(at(&server, &dir, transport).args([
            "--bucket",
            server.bucket(),
            "--content-type",
            "text/plain; charset=utf-8",
            "--storage-class",
            "standard_ia",
            "--meta",
            "owner=ops",
            "--meta",
            "run=42",
            "--acl",
            "private",
            "--sse",
            "AES256",
            "--traffic-limit",
            "8M",
            p,
            &key,
        ]));
        assert_eq!(code, 0, "{err}");
        let o = server.object(&key).unwrap();
        assert_eq!(o.content_type, "text/plain; charset=utf-8");
        assert_eq!(o.storage_class, "STANDARD_IA");
        assert_eq!(o.metadata.get("owner").map(String::as_str), Some("ops"));
        assert_eq!(o.metadata.get("run").map(String::as_str), Some("42"));
        assert!(
            o.headers
                .iter()
                .any(|(k, v)| k == "x-cos-server-side-encryption" && v == "AES256"),
            "{:?}",
            o.headers
        );

        // A key with no extension: COS (and cos-testkit) would derive a type from the key's own
        // extension, so only the file's `.html` could make it text/html, and guessing is off.
        let key = format!("{transport}/plain");
        let (code, _, err) = run(at(&server, &dir, transport).args([
            "--bucket",
            server.bucket(),
            "--no-guess-content-type",
            p,
            &key,
        ]));
        assert_eq!(code, 0, "{err}");
        assert_ne!(server.object(&key).unwrap().content_type, "text/html");
    }
    // A traffic limit COS refuses fails every file before anything is sent: exit 1, each named.
    let before = server.counters().total;
    let (code, _, err) = run(at(&server, &dir, "blocking").args([
        "--bucket",
        server.bucket(),
        "--traffic-limit",
        "10",
        p,
        "x.html",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("1 of 1 file(s) failed") && err.contains("x.html"),
        "{err}"
    );
    assert_eq!(server.counters().total, before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdin_and_the_original_dest_form_still_work() {
    let server = Server::builder().start_blocking().unwrap();
    let dir = temp_dir("stdin");
    let mut child = at(&server, &dir, "async")
        .args(["--bucket", server.bucket(), "-", "from/stdin.txt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped bytes")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.object("from/stdin.txt").unwrap().data.as_deref(),
        Some(&b"piped bytes"[..])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--checkpoint` with `-`: the upload works and the command says that no checkpoint is kept, instead of
/// pretending one was.
#[test]
fn a_checkpoint_for_stdin_is_said_to_not_apply() {
    let server = Server::builder().start_blocking().unwrap();
    let dir = temp_dir("stdin-ck");
    let ck = dir.join("stdin.ckpt");
    let mut child = at(&server, &dir, "blocking")
        .args(["--bucket", server.bucket(), "--checkpoint"])
        .arg(&ck)
        .args(["-", "from/stdin-ck.txt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"piped").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("does not apply to `-`"), "{err}");
    assert!(!ck.exists());
    assert_eq!(
        server.object("from/stdin-ck.txt").unwrap().data.as_deref(),
        Some(&b"piped"[..])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three files, the second refused by the server: exit 1, the others uploaded, the failure named; the
/// rerun uploads only the failed one.
#[test]
fn some_failed_exit_1_names_them_and_a_rerun_retries_only_them() {
    let dir = temp_dir("partial");
    for n in ["a.txt", "b.txt", "c.txt"] {
        write(&dir.join("in").join(n), n.as_bytes());
    }
    let server = Server::builder()
        .faults(FaultPlan::new().fail_nth("PutObject", 2, Fault::Status(403)))
        .start_blocking()
        .unwrap();
    let dest = format!("cos://{}/p/", server.bucket());
    let src = dir.join("in");
    let cmd = |server: &Server| {
        let mut c = at(server, &dir, "blocking");
        c.args(["-r", "--file-parallel", "1", src.to_str().unwrap(), &dest]);
        c
    };
    let (code, out, err) = run(&mut cmd(&server));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("1 of 3 file(s) failed"), "{err}");
    assert!(
        err.contains("p/b.txt") && err.contains("AccessDenied"),
        "{err}"
    );
    assert!(err.contains("Run the same command again"), "{err}");
    assert!(server.object("p/a.txt").is_some() && server.object("p/c.txt").is_some());
    assert!(server.object("p/b.txt").is_none());
    assert!(out.contains("uploaded 2 file(s)"), "{out}");

    let puts = server.counters().get("PutObject");
    let (code, out, err) = run(&mut cmd(&server));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        server.counters().get("PutObject") - puts,
        1,
        "only b.txt again"
    );
    assert!(out.contains("2 skipped"), "{out}");
    assert_eq!(
        server.object("p/b.txt").unwrap().data.as_deref(),
        Some(&b"b.txt"[..])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn count_parts(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".checkpoint.json")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter_map(|v| v["parts"].as_array().map(|a| a.len()))
        .sum()
}

/// SIGINT part-way through a batch (small files, then a 24-part file): exit 130 with a message saying how to
/// resume; the same command then skips the finished files and sends only the missing parts.
fn ctrl_c_then_resume(transport: &str) {
    const PARTS: usize = 24;
    let dir = temp_dir(&format!("sigint-{transport}"));
    let src = dir.join("in");
    for i in 0..4 {
        write(
            &src.join(format!("a{i}.txt")),
            format!("small {i}").as_bytes(),
        );
    }
    let data: Vec<u8> = (0..PARTS * 1048576).map(|i| (i * 7 % 253) as u8).collect();
    write(&src.join("z-big.bin"), &data);
    let server = Server::builder()
        .faults(FaultPlan::parse("stall=100ms:1").unwrap())
        .start_blocking()
        .unwrap();
    let dest = format!("cos://{}/backup/", server.bucket());
    let cmd = |server: &Server| {
        let mut c = at(server, &dir, transport);
        c.args([
            "-r",
            "--file-parallel",
            "1",
            "--part-size",
            "1MiB",
            "--concurrency",
            "2",
            src.to_str().unwrap(),
            &dest,
        ]);
        c
    };
    let mut child = cmd(&server)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cps = dir.join("checkpoints");
    let t0 = Instant::now();
    while count_parts(&cps) < 4 {
        assert!(child.try_wait().unwrap().is_none(), "ended before Ctrl-C");
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint progress"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("run the same command again"),
        "{err}"
    );
    let done_before = count_parts(&cps);
    assert!((4..PARTS).contains(&done_before), "{done_before}");
    assert_eq!(server.object("backup/a3.txt").map(|o| o.size), Some(7));
    assert!(server.object("backup/z-big.bin").is_none());

    server.faults().clear();
    let (puts, parts) = (
        server.counters().get("PutObject"),
        server.counters().get("UploadPart"),
    );
    let (code, out, err) = run(&mut cmd(&server));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        server.counters().get("PutObject"),
        puts,
        "finished files sent again"
    );
    let sent = (server.counters().get("UploadPart") - parts) as usize;
    assert_eq!(
        sent,
        PARTS - done_before,
        "checkpoint had {done_before} of {PARTS}"
    );
    assert!(out.contains("4 skipped"), "{out}");
    assert_eq!(
        server.object("backup/z-big.bin").unwrap().data.as_deref(),
        Some(&data[..])
    );
    assert!(server.multipart_uploads().is_empty());
    assert_eq!(
        std::fs::read_dir(&cps).unwrap().count(),
        0,
        "resume state left"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_then_the_same_command_resumes_blocking() {
    ctrl_c_then_resume("blocking");
}

#[test]
fn ctrl_c_then_the_same_command_resumes_async() {
    ctrl_c_then_resume("async");
}

/// Off a terminal: progress as plain lines on stderr, at most one a second; one line per file on stdout;
/// `--quiet` prints nothing on success.
#[test]
fn plain_progress_lines_are_throttled_and_quiet_is_quiet() {
    let dir = temp_dir("lines");
    let data: Vec<u8> = (0..12 * 1048576).map(|i| (i % 239) as u8).collect();
    write(&dir.join("in/slow.bin"), &data);
    let server = Server::builder()
        .faults(FaultPlan::parse("stall=150ms:1").unwrap())
        .start_blocking()
        .unwrap();
    let file = dir.join("in/slow.bin");
    let t = Instant::now();
    let (code, out, err) = run(at(&server, &dir, "blocking").args([
        "--bucket",
        server.bucket(),
        "--part-size",
        "1MiB",
        "--concurrency",
        "1",
        file.to_str().unwrap(),
        "slow.bin",
    ]));
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(!lines.is_empty(), "no progress line in {secs:.1} s: {err}");
    assert!(
        lines.len() as f64 <= secs + 1.0,
        "{} lines in {secs:.1} s",
        lines.len()
    );
    assert!(
        lines[0].contains("0/1 files") && lines[0].contains("of 12.0 MiB"),
        "{}",
        lines[0]
    );
    assert!(
        out.starts_with("slow.bin: 12582912 bytes, 12 part(s)"),
        "{out}"
    );

    server.faults().clear();
    let (code, out, err) = run(at(&server, &dir, "async").args([
        "--quiet",
        "--bucket",
        server.bucket(),
        file.to_str().unwrap(),
        "quiet.bin",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    assert_eq!(server.object("quiet.bin").unwrap().size, data.len() as u64);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--verify-md5`: the MD5 of what was sent is checked against the ETag. Against a server that answers a
/// PUT with its MD5 ETag but no CRC-64, the default check cannot verify the file (exit 1, said why); with
/// the flag the ETag verifies it (exit 0), and a wrong ETag is a named integrity failure. Against the
/// real local server, a multipart file with the flag uploads and verifies on both transports.
#[test]
fn verify_md5_checks_etags_when_the_server_gives_no_crc64() {
    use cos_testkit::hostile::{HostileServer, Reply};
    let dir = temp_dir("md5");
    let data = b"checked by MD5 when asked".to_vec();
    let file = dir.join("in/small.txt");
    write(&file, &data);
    let md5 = cos_core::checksum::md5_hex(&data);
    for transport in ["blocking", "async"] {
        for (etag, flag, want_code, want_err) in [
            (md5.as_str(), false, 1, "there is no x-cos-hash-crc64ecma"),
            (md5.as_str(), true, 0, ""),
            (
                "0123456789abcdef0123456789abcdef",
                true,
                1,
                "is not the MD5",
            ),
        ] {
            let quoted = format!("\"{etag}\"");
            let server = HostileServer::start(move |req| {
                if req.method == "PUT" {
                    Reply::respond(
                        "200 OK",
                        &[("ETag", &quoted), ("x-cos-request-id", "r1")],
                        "",
                    )
                } else {
                    Reply::respond("501 Not Implemented", &[], "")
                }
            })
            .unwrap();
            let mut c = bare();
            c.env("COS_SECRET_ID", "AKIDTEST")
                .env("COS_SECRET_KEY", "secret")
                .args(["--endpoint", &server.endpoint(), "--transport", transport])
                .args(["--bucket", "b-1250000000"]);
            if flag {
                c.arg("--verify-md5");
            }
            c.arg(&file).arg("small.txt");
            let (code, out, err) = run(&mut c);
            assert_eq!(
                code, want_code,
                "{transport}, --verify-md5 {flag}, ETag {etag}: {out}\n{err}"
            );
            if want_code == 0 {
                assert!(out.contains("uploaded 1 file(s), 25 bytes"), "{out}");
            } else {
                assert!(
                    err.contains(want_err)
                        && err.contains("small.txt: ")
                        && err.contains("1 of 1 file(s) failed"),
                    "{err}"
                );
            }
            assert_eq!(server.requests(), 1, "one PUT, nothing else");
        }
    }

    let server = Server::builder().start_blocking().unwrap();
    let big: Vec<u8> = (0..3 * 1048576 + 5).map(|i| (i % 251) as u8).collect();
    write(&dir.join("in/big.bin"), &big);
    for transport in ["blocking", "async"] {
        let key = format!("{transport}/big.bin");
        let (code, out, err) = run(at(&server, &dir, transport).args([
            "--verify-md5",
            "--part-size",
            "1MiB",
            "--bucket",
            server.bucket(),
            dir.join("in/big.bin").to_str().unwrap(),
            &key,
        ]));
        assert_eq!(code, 0, "{transport}: {out}\n{err}");
        assert!(out.contains("4 part(s)"), "{out}");
        assert_eq!(server.object(&key).unwrap().size, big.len() as u64);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
