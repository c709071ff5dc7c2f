//! POST Object forms, presigned URLs (used with `curl`) and refreshed temporary credentials.

use super::*;
use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::time::SystemTime;

use cos_core::credentials::RefreshingCredentials;
use cos_core::ops::PutObject;
use cos_core::post_policy::{PostForm, PostPolicy};
use cos_core::upload::{MultipartUpload, UploadConfig};

fn post_config(server: &Server, bucket: &str) -> Config {
    let mut c = Config::new(bucket, "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap();
    c.retry.initial_backoff = Duration::from_millis(10);
    c.retry.max_backoff = Duration::from_millis(50);
    c
}

fn start_post<D: Driver>() -> (Server, D) {
    let server = Server::builder().start_blocking().unwrap();
    let client = D::build(post_config(&server, server.bucket()), None);
    (server, client)
}

fn in_10_min() -> SystemTime {
    SystemTime::now() + Duration::from_secs(600)
}

/// The COS error code of a service error (panics on anything else).
fn code(e: &Error) -> String {
    match e {
        Error::Service(s) => format!("{} {}", s.status, s.code),
        other => panic!("expected a service error, got {other:?}"),
    }
}

pub fn form_upload_stores_the_file<D: Driver>() {
    let (server, client) = start_post::<D>();
    let form = client
        .sign_post_policy(
            &PostPolicy::new(in_10_min())
                .key_starts_with("uploads/")
                .content_length_range(1, 8 << 20)
                .content_type("application/octet-stream")
                .metadata("origin", "form"),
        )
        .unwrap();
    assert_eq!(form.field("key"), Some("uploads/${filename}"));

    // A streamed file of 3 MiB + 1.
    let data = pattern(3 * 1024 * 1024 + 1, 7);
    let d = TempDir::new::<D>("post");
    let path = d.file("stream", &data);
    let out = client
        .post_object(
            &form,
            Payload::file(&path),
            "big.bin",
            "application/octet-stream",
        )
        .unwrap();
    assert_eq!(out.status, 204);
    let stored = server.object("uploads/big.bin").unwrap();
    assert_eq!(stored.data.as_deref(), Some(&data[..]));
    assert_eq!(out.etag.as_deref(), Some(stored.etag.as_str()));
    assert_eq!(out.crc64, Some(stored.crc64));
    assert_eq!(stored.metadata["origin"], "form");
    assert_eq!(stored.content_type, "application/octet-stream");
    assert_eq!(server.counters().get("PostObject"), 1);

    // Bytes, a reader, an empty-named file part substitution, and the object reads back with GET.
    let mut form = form;
    form.set("key", "uploads/chosen.txt");
    client
        .post_object(
            &form,
            Payload::reader(b"from a reader".to_vec(), 13),
            "ignored.txt",
            "application/octet-stream",
        )
        .unwrap();
    let got = client
        .get_object(GetObject::new("uploads/chosen.txt"))
        .unwrap();
    assert_eq!(&got.body[..], b"from a reader");
}

pub fn success_status_201_and_redirect<D: Driver>() {
    let (server, client) = start_post::<D>();
    let form = client
        .sign_post_policy(
            &PostPolicy::new(in_10_min())
                .key_starts_with("docs/")
                .success_action_status(201),
        )
        .unwrap();
    let out = client
        .post_object(&form, "xml answer", "a.txt", "text/plain")
        .unwrap();
    assert_eq!(out.status, 201);
    assert_eq!(out.key.as_deref(), Some("docs/a.txt"));
    assert_eq!(out.bucket.as_deref(), Some(server.bucket()));
    assert_eq!(
        out.etag.as_deref(),
        Some(server.object("docs/a.txt").unwrap().etag.as_str())
    );

    let form = client
        .sign_post_policy(
            &PostPolicy::new(in_10_min())
                .key("docs/r.txt")
                .success_action_redirect("http://127.0.0.1:9/done?from=form"),
        )
        .unwrap();
    let out = client
        .post_object(&form, "redirected", "r.txt", "text/plain")
        .unwrap();
    assert_eq!(out.status, 303);
    assert_eq!(out.key.as_deref(), Some("docs/r.txt"));
    assert!(out
        .location
        .as_deref()
        .unwrap()
        .starts_with("http://127.0.0.1:9/done?from=form&bucket="));
    assert_eq!(
        out.etag.as_deref(),
        Some(server.object("docs/r.txt").unwrap().etag.as_str())
    );
}

pub fn every_violated_condition_is_refused<D: Driver>() {
    let (server, client) = start_post::<D>();
    let sign = |p: PostPolicy| client.sign_post_policy(&p).unwrap();
    let post = |form: &PostForm, body: &'static str, ct: &str| {
        client.post_object(form, body, "f.txt", ct).unwrap_err()
    };

    // Expired: signed an hour ago for ten minutes.
    let past = SystemTime::now() - Duration::from_secs(3600);
    let form = PostPolicy::new(past + Duration::from_secs(600))
        .key("a.txt")
        .sign(&client.config(), past)
        .unwrap();
    assert_eq!(code(&post(&form, "x", "text/plain")), "403 AccessDenied");

    // Wrong key, key outside the prefix.
    let mut form = sign(PostPolicy::new(in_10_min()).key("a.txt"));
    form.set("key", "b.txt");
    assert_eq!(code(&post(&form, "x", "text/plain")), "403 AccessDenied");
    let mut form = sign(PostPolicy::new(in_10_min()).key_starts_with("uploads/"));
    form.set("key", "elsewhere/f.txt");
    assert_eq!(code(&post(&form, "x", "text/plain")), "403 AccessDenied");

    // Content-Type pinned to image/png, sent as text/plain.
    let mut form = sign(
        PostPolicy::new(in_10_min())
            .key("a.txt")
            .content_type("image/png"),
    );
    form.set("Content-Type", "text/plain");
    assert_eq!(code(&post(&form, "x", "text/plain")), "403 AccessDenied");
    // A starts-with Content-Type left unset or wrong is caught before sending.
    let mut form = sign(
        PostPolicy::new(in_10_min())
            .key("a.txt")
            .content_type_starts_with("image/"),
    );
    assert!(matches!(
        post(&form, "x", "text/plain"),
        Error::InvalidInput(_)
    ));
    form.set("Content-Type", "text/plain");
    assert!(matches!(
        post(&form, "x", "text/plain"),
        Error::InvalidInput(_)
    ));

    // Another bucket's form.
    let other = post_config(&server, "otherbucket-1250000000");
    let form = PostPolicy::new(in_10_min())
        .key("a.txt")
        .sign(&other, SystemTime::now())
        .unwrap();
    assert_eq!(code(&post(&form, "x", "text/plain")), "403 AccessDenied");

    // Tampered signature, tampered policy, wrong secret key.
    let mut form = sign(PostPolicy::new(in_10_min()).key("a.txt"));
    form.set("q-signature", "0".repeat(40));
    assert_eq!(
        code(&post(&form, "x", "text/plain")),
        "403 SignatureDoesNotMatch"
    );
    let good = sign(PostPolicy::new(in_10_min()).key("a.txt"));
    let mut form = good.clone();
    let other_policy = sign(PostPolicy::new(in_10_min() + Duration::from_secs(60)).key("a.txt"));
    form.set("policy", other_policy.field("policy").unwrap());
    assert_eq!(
        code(&post(&form, "x", "text/plain")),
        "403 SignatureDoesNotMatch"
    );
    let mut wrong = client.config();
    wrong.credentials = Credentials::new(server.secret_id(), "not-the-key");
    let form = PostPolicy::new(in_10_min())
        .key("a.txt")
        .sign(&wrong, SystemTime::now())
        .unwrap();
    assert_eq!(
        code(&post(&form, "x", "text/plain")),
        "403 SignatureDoesNotMatch"
    );

    // content-length-range: refused by the client before sending...
    let form = sign(
        PostPolicy::new(in_10_min())
            .key("a.txt")
            .content_length_range(2, 5),
    );
    let before = server.counters().get("PostObject");
    for body in ["x", "too long"] {
        assert!(matches!(
            post(&form, body, "text/plain"),
            Error::InvalidInput(InvalidInput::Size { .. })
        ));
    }
    assert_eq!(server.counters().get("PostObject"), before);
    // ...and by the server, for a form sent by another client (curl's multipart encoder).
    let curl = curl();
    if let Some(curl) = &curl {
        for (body, want) in [("x", "EntityTooSmall"), ("too long", "EntityTooLarge")] {
            let (status, answer) = curl_form(curl, &form, body.as_bytes());
            assert_eq!(status, 400, "{answer}");
            assert!(answer.contains(want), "{answer}");
        }
        let (status, answer) = curl_form(curl, &form, b"fits");
        assert_eq!(status, 204, "{answer}");
        assert_eq!(server.object("a.txt").unwrap().data.unwrap(), b"fits");
    }

    // Nothing else was stored.
    let want: Vec<String> = curl.iter().map(|_| "a.txt".to_string()).collect();
    assert_eq!(server.keys(), want);
}

/// `curl`, or `None` with a message saying why the curl checks are skipped.
fn curl() -> Option<String> {
    match Command::new("curl").arg("--version").output() {
        Ok(o) if o.status.success() => Some("curl".to_string()),
        _ => {
            eprintln!("SKIPPED: curl is not installed; the curl checks of this test did not run");
            None
        }
    }
}

/// Posts `form` with `file` using curl's own multipart encoder; returns the status and the body.
fn curl_form(curl: &str, form: &PostForm, file: &[u8]) -> (u16, String) {
    let path = std::env::temp_dir().join(format!(
        "cos-drivers-curl-form-{}-{}",
        file.len(),
        std::process::id()
    ));
    std::fs::write(&path, file).unwrap();
    let mut cmd = Command::new(curl);
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}"]);
    for (name, value) in form.fields() {
        cmd.arg("--form-string").arg(format!("{name}={value}"));
    }
    cmd.arg("-F")
        .arg(format!("file=@{};type=text/plain", path.display()));
    cmd.arg(form.url());
    let out = cmd.output().unwrap();
    std::fs::remove_file(&path).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

/// Runs curl with `args`; returns the HTTP status and what it wrote to stdout.
fn curl_status(curl: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new(curl)
        .args(["-sS", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), body.to_string())
}

pub fn presigned_put_and_get_with_curl<D: Driver>() {
    // Temporary credentials: the token travels in the URL as x-cos-security-token.
    let server = Server::builder()
        .security_token("session-token-1")
        .start_blocking()
        .unwrap();
    let client = D::build(post_config(&server, server.bucket()), None);
    let put = client
        .presigned_url(
            http::Method::PUT,
            "shared/up load.bin",
            Duration::from_secs(600),
        )
        .unwrap();
    assert!(put
        .to_string()
        .contains("x-cos-security-token=session-token-1"));
    let get = client
        .presigned_url(
            http::Method::GET,
            "shared/up load.bin",
            Duration::from_secs(600),
        )
        .unwrap();
    let Some(curl) = curl() else { return };

    let data = pattern(300_000, 3);
    let d = TempDir::new::<D>("presigned");
    let src = d.file("curl-put", &data);
    let (status, body) = curl_status(&curl, &["-T", src.to_str().unwrap(), &put.to_string()]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server.object("shared/up load.bin").unwrap().data.unwrap(),
        data
    );

    let dst = d.path("curl-get");
    let (status, _) = curl_status(&curl, &["-o", dst.to_str().unwrap(), &get.to_string()]);
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    // Altered: another key, a changed signature, a removed token.
    let altered = put.to_string().replace("up%20load", "other");
    let (status, body) = curl_status(&curl, &["-T", src.to_str().unwrap(), &altered]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let s = get.to_string();
    let at = s.find("q-signature=").unwrap() + "q-signature=".len();
    let mut flipped = s.clone();
    let c = if &s[at..at + 1] == "0" { "1" } else { "0" };
    flipped.replace_range(at..at + 1, c);
    let (status, body) = curl_status(&curl, &["-o", "-", &flipped]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let no_token = s.replace("&x-cos-security-token=session-token-1", "");
    assert_ne!(no_token, s);
    let (status, body) = curl_status(&curl, &["-o", "-", &no_token]);
    assert_eq!(status, 403, "{body}");
    // A presigned PUT is not a GET.
    let (status, _) = curl_status(&curl, &["-o", "-", &put.to_string()]);
    assert_eq!(status, 403);

    // Expired: a client whose clock runs two hours behind the server's signs a window that is over.
    let mut late = post_config(&server, server.bucket());
    late.clock_offset_secs = -7200;
    let expired = D::build(late, None)
        .presigned_url(
            http::Method::GET,
            "shared/up load.bin",
            Duration::from_secs(600),
        )
        .unwrap();
    let (status, body) = curl_status(&curl, &["-o", "-", &expired.to_string()]);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("AccessDenied") && body.contains("expired"),
        "{body}"
    );
}

/// A fake STS: hands out the current token, counting fetches.
struct Sts {
    token: Mutex<String>,
    fetches: AtomicU32,
}

const PART: u64 = 1024 * 1024;

fn multipart(config: Config, len: usize) -> MultipartUpload {
    MultipartUpload::new(
        config,
        "long/upload.bin",
        len as u64,
        UploadConfig {
            part_size: Some(PART),
            max_in_flight: 1,
            ..UploadConfig::default()
        },
    )
    .unwrap()
}

pub fn temporary_credentials_expire_between_parts_and_are_refreshed<D: Driver>() {
    let server = Arc::new(
        Server::builder()
            .security_token("tok-1")
            .start_blocking()
            .unwrap(),
    );
    let (id, key) = (
        server.secret_id().to_string(),
        server.secret_key().to_string(),
    );
    let sts = Arc::new(Sts {
        token: Mutex::new("tok-1".into()),
        fetches: AtomicU32::new(0),
    });
    // Valid for 2 s, refreshed in their last second.
    let s = sts.clone();
    let provider = Arc::new(RefreshingCredentials::new(
        move |now| {
            s.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Credentials::new(&id, &key)
                .with_security_token(s.token.lock().unwrap().clone())
                .with_expiry(now + Duration::from_secs(2)))
        },
        Duration::from_secs(1),
    ));
    // After part 1: the STS rotates the token, the server accepts only the new one, and the cached
    // credentials reach their refresh time.
    let rotate = {
        let (server, sts) = (server.clone(), sts.clone());
        move |e: &Event| {
            if let Event::PartCompleted { part: 1, .. } = e {
                *sts.token.lock().unwrap() = "tok-2".into();
                server.set_security_token(Some("tok-2"));
                std::thread::sleep(Duration::from_millis(1100));
            }
        }
    };
    let mut base = post_config(&server, server.bucket());
    base.credentials = Credentials::new("unused", "unused");
    let client = D::build_with(
        base.clone(),
        Options {
            credentials: Some(provider),
            on_event: Some(Arc::new(rotate.clone())),
            ..Options::default()
        },
    );
    let data = pattern(3 * PART as usize + 100, 11);
    let out = client
        .run_in_memory(multipart(client.config(), data.len()), data.clone())
        .unwrap();
    assert_eq!(out.key, "long/upload.bin");
    assert_eq!(
        server.object("long/upload.bin").unwrap().data.unwrap(),
        data
    );
    assert_eq!(server.counters().get("UploadPart"), 4);
    // Fetched once at the start and once after the expiry: cached in between (every poll asks).
    let fetches = sts.fetches.load(Ordering::SeqCst);
    assert!((2..=3).contains(&fetches), "{fetches} fetches");

    // Control: the same upload with the first credentials fixed fails once the token rotates.
    server.set_security_token(Some("tok-1"));
    *sts.token.lock().unwrap() = "tok-1".into();
    let mut fixed = base;
    fixed.credentials = server.credentials();
    let client = D::build(fixed, Some(Arc::new(rotate)));
    let err = client
        .run_in_memory(multipart(client.config(), data.len()), data)
        .unwrap_err();
    assert_eq!(code(&err), "403 InvalidAccessKeyId");
}

pub fn provider_credentials_sign_operations_and_presigned_urls<D: Driver>() {
    let server = Server::builder()
        .security_token("tok-a")
        .start_blocking()
        .unwrap();
    let mut base = post_config(&server, server.bucket());
    base.credentials =
        Credentials::new(server.secret_id(), "wrong-key").with_security_token("tok-a");
    // Without the provider the config's (wrong) key fails.
    let plain = D::build(base.clone(), None);
    assert_eq!(
        code(&plain.put_object(PutObject::new("p.txt"), "x").unwrap_err()),
        "403 SignatureDoesNotMatch"
    );
    let provider = Arc::new(server.credentials());
    let client = D::build_with(
        base,
        Options {
            credentials: Some(provider),
            ..Options::default()
        },
    );
    client.put_object(PutObject::new("p.txt"), "x").unwrap();
    let form = client
        .sign_post_policy(&PostPolicy::new(in_10_min()).key("f.txt"))
        .unwrap();
    assert_eq!(form.field("x-cos-security-token"), Some("tok-a"));
    client
        .post_object(&form, "form", "f.txt", "text/plain")
        .unwrap();
    assert_eq!(server.object("f.txt").unwrap().data.unwrap(), b"form");
    let url = client
        .presigned_url(http::Method::GET, "p.txt", Duration::from_secs(60))
        .unwrap();
    assert!(url.to_string().contains("x-cos-security-token=tok-a"));
}
