//! Secrets never show: every public value a user can reach — config, clients, builders, credentials and
//! providers, transmits, errors (and their `source()` chains), recorders, fixtures, and the tracing output
//! at trace level — is printed with `{}` and `{:?}`, and no SecretKey, security token or signature appears.
//! Also: errors keep their cause down to the `io::Error`, and say which operation, key and attempt failed.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cos_core::credentials::{EnvCredentials, ProvideCredentials, RefreshingCredentials};
use cos_core::fixture::Fixture;
use cos_core::task::{Now, OneShot, Output, Task};
use cos_testkit::replay::{save_fixture, Recorder};
use cos_testkit::Server;

const KEY: &str = "sweep-SECRET-key-0123";
const TOKEN: &str = "sweep-TOKEN-4567";

/// A `tracing` writer that keeps everything written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Everything printed, and the signatures seen on the wire (to look for them too).
#[derive(Default)]
struct Sweep {
    shown: Vec<(String, String)>,
    signatures: Vec<String>,
}

impl Sweep {
    fn show<T: std::fmt::Debug + ?Sized>(&mut self, what: &str, v: &T) {
        self.shown
            .push((format!("{what} {{:?}}"), format!("{v:?}")));
        self.shown
            .push((format!("{what} {{:#?}}"), format!("{v:#?}")));
    }

    fn show_both<T: std::fmt::Debug + std::fmt::Display + ?Sized>(&mut self, what: &str, v: &T) {
        self.show(what, v);
        self.shown.push((format!("{what} {{}}"), format!("{v}")));
    }

    fn error(&mut self, what: &str, e: &(dyn std::error::Error + 'static)) {
        self.shown.push((format!("{what} {{}}"), e.to_string()));
        self.shown
            .push((format!("{what} {{:?}}"), format!("{e:?}")));
        let mut cur = e.source();
        let mut depth = 0;
        while let Some(s) = cur {
            depth += 1;
            self.shown
                .push((format!("{what} source {depth} {{}}"), s.to_string()));
            self.shown
                .push((format!("{what} source {depth} {{:?}}"), format!("{s:?}")));
            cur = s.source();
        }
    }

    fn check(&self) {
        assert!(self.shown.len() > 30, "swept {} values", self.shown.len());
        let mut secrets = vec![KEY.to_string(), TOKEN.to_string()];
        secrets.extend(self.signatures.iter().cloned());
        for (what, text) in &self.shown {
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "{what} shows a secret {s:?}: {text}"
                );
            }
            for marker in ["q-signature=", "x-cos-security-token="] {
                for (i, _) in text.match_indices(marker) {
                    let rest = &text[i + marker.len()..];
                    assert!(
                        rest.starts_with("<redacted>") || rest.is_empty(),
                        "{what}: {marker} not redacted: {text}"
                    );
                }
            }
        }
    }
}

fn config(server: &Server, key: &str) -> cos_core::Config {
    cos_core::Config::new(
        server.bucket(),
        "ap-guangzhou",
        cos_core::Credentials::new(server.secret_id(), key).with_security_token(TOKEN),
    )
    .unwrap()
    .with_endpoint(cos_core::Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap()
}

#[test]
fn no_secret_token_or_signature_in_anything_printed() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    // Global (not per-thread): callsite interest is process-wide, and the other test of this binary runs
    // at the same time on another thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server = Server::builder()
        .credentials("AKIDSWEEP", KEY)
        .security_token(TOKEN)
        .start_blocking()
        .unwrap();
    let mut sweep = Sweep::default();
    let good = config(&server, KEY);
    let bad = config(&server, "not-the-key");

    // Credentials, providers, config.
    sweep.show("credentials", &good.credentials);
    sweep.show("config", &good);
    let env = EnvCredentials::with_lookup(|n| match n {
        "COS_SECRET_ID" => Some("AKIDSWEEP".into()),
        "COS_SECRET_KEY" => Some(KEY.into()),
        "COS_SECURITY_TOKEN" => Some(TOKEN.into()),
        _ => None,
    });
    sweep.show("env credentials", &env);
    sweep.show(
        "env credentials value",
        &env.credentials(SystemTime::now()).unwrap(),
    );
    let refreshing = RefreshingCredentials::new(
        |now| {
            Ok(cos_core::Credentials::new("AKIDSWEEP", KEY)
                .with_security_token(TOKEN)
                .with_expiry(now + Duration::from_secs(600)))
        },
        Duration::from_secs(60),
    );
    refreshing.credentials(SystemTime::now()).unwrap();
    sweep.show("refreshing credentials", &refreshing);

    // A transmit as a task hands it out, and the signature in it (looked for everywhere).
    let mut task = OneShot::new(
        cos_core::ops::PutObject::new("t.txt").with_bytes("x"),
        good.clone(),
    )
    .unwrap();
    let now = Now {
        instant: Instant::now(),
        system: SystemTime::now(),
    };
    let Output::Transmit(t) = task.poll_output(now) else {
        panic!("no transmit")
    };
    let auth = t.request.headers()["authorization"].to_str().unwrap();
    let sig = auth.split("q-signature=").nth(1).unwrap().to_string();
    assert!(sig.len() >= 40, "{auth}");
    sweep.signatures.push(sig);
    sweep.show("transmit", &t);
    sweep.show("task", &task);
    let signature = cos_core::auth::sign_request(
        &mut http::Request::builder()
            .uri("http://h/k")
            .header("host", "h")
            .body(())
            .unwrap(),
        &good.credentials,
        cos_core::auth::KeyTime {
            start: 1_700_000_000,
            end: 1_700_003_600,
        },
    )
    .unwrap();
    sweep.signatures.push(signature.signature.clone());
    sweep.signatures.push(signature.sign_key.clone());
    sweep.show("signature", &signature);

    // Both clients, with a recorder, through real TCP: a good upload, then a wrong key.
    let recorder = Arc::new(Recorder::new("sweep", &good, 0));
    let blocking = cos_blocking::Client::builder(good.clone())
        .recorder(recorder.clone())
        .build();
    sweep.show("blocking client", &blocking);
    sweep.show(
        "blocking builder",
        &cos_blocking::Client::builder(good.clone()),
    );
    blocking
        .put_object(cos_core::ops::PutObject::new("ok.txt"), "hello")
        .unwrap();
    let dir = std::env::temp_dir().join(format!("cos-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("f.bin");
    std::fs::write(&file, vec![7u8; 64 * 1024]).unwrap();

    let wrong = cos_blocking::Client::builder(bad.clone())
        .recorder(recorder.clone())
        .build();
    let e = wrong
        .put_object(cos_core::ops::PutObject::new("dir/x.txt"), "hello")
        .unwrap_err();
    assert_eq!(e.code(), Some("SignatureDoesNotMatch"), "{e}");
    let Some(cos_core::Error::Service(se)) = Some(&e) else {
        panic!()
    };
    assert!(
        se.format_string
            .as_deref()
            .unwrap_or("")
            .contains("x-cos-security-token=<redacted>"),
        "the server echoed the signed token header: {se:?}"
    );
    let ctx = e.context().expect("context");
    assert_eq!(
        (ctx.operation, ctx.key.as_str(), ctx.attempt),
        ("PutObject", "dir/x.txt", 1)
    );
    assert!(
        e.to_string()
            .contains("in PutObject (PUT /dir/x.txt, attempt 1)"),
        "{e}"
    );
    sweep.error("blocking SignatureDoesNotMatch", &e);
    let e = wrong
        .upload_file(&file, "big.bin", &cos_blocking::UploadOptions::default())
        .unwrap_err();
    assert!(e.context().is_some(), "{e}");
    sweep.error("blocking upload_file wrong key", &e);

    // The async client, the same.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = cos_async::Client::builder(bad.clone())
            .recorder(recorder.clone())
            .build();
        sweep.show("async client", &client);
        let e = client
            .put_object(cos_core::ops::PutObject::new("y.txt"), "hello")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("SignatureDoesNotMatch"), "{e}");
        sweep.error("async SignatureDoesNotMatch", &e);
        let good_client = cos_async::Client::new(good.clone());
        good_client
            .put_object(cos_core::ops::PutObject::new("ok2.txt"), "hello")
            .await
            .unwrap();
    });

    // Recorder and fixture, in memory and as saved.
    sweep.show("recorder", &*recorder);
    let fixture = recorder.fixture();
    assert!(fixture.exchanges.len() >= 3);
    sweep.show("fixture", &fixture);
    let path = dir.join("fixture.json");
    save_fixture(&path, &fixture).unwrap();
    let saved = std::fs::read_to_string(&path).unwrap();
    sweep.shown.push(("saved fixture".into(), saved));
    let mut unredacted: Fixture = fixture.clone();
    unredacted.secret_key = KEY.into();
    save_fixture(&path, &unredacted).unwrap();
    sweep.shown.push((
        "saved fixture given a secret key".into(),
        std::fs::read_to_string(&path).unwrap(),
    ));

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("cos_request"), "trace output captured: {log}");
    sweep.shown.push(("trace log".into(), log));
    sweep.show_both(
        "server",
        &format!("{server:?}"), // the test server's own Debug
    );
    sweep.check();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connection_errors_keep_their_io_cause_and_read_the_same_on_both_transports() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = cos_core::Config::new(
        "examplebucket-1250000000",
        "ap-guangzhou",
        cos_core::Credentials::new("AKID", KEY),
    )
    .unwrap()
    .with_endpoint(cos_core::Endpoint::custom(&format!("http://127.0.0.1:{port}")).unwrap())
    .unwrap();
    let mut config = config;
    config.retry.max_attempts = 1;
    let blocking = cos_blocking::Client::new(config.clone())
        .put_object(cos_core::ops::PutObject::new("k/a.txt"), "x")
        .unwrap_err();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let async_ = rt.block_on(async {
        cos_async::Client::new(config)
            .put_object(cos_core::ops::PutObject::new("k/a.txt"), "x")
            .await
            .unwrap_err()
    });
    for e in [&blocking, &async_] {
        let cos_core::Error::Transport(t) = e else {
            panic!("{e:?}")
        };
        assert_eq!(t.kind, cos_core::error::TransportErrorKind::Connect, "{e}");
        // The chain ends in the io::Error.
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut io = None;
        while let Some(s) = cur {
            if let Some(x) = s.downcast_ref::<std::io::Error>() {
                io = Some(x.kind());
            }
            cur = s.source();
        }
        assert_eq!(io, Some(std::io::ErrorKind::ConnectionRefused), "{e:?}");
        let ctx = e.context().unwrap();
        assert_eq!(
            (ctx.operation, ctx.key.as_str(), ctx.attempt),
            ("PutObject", "k/a.txt", 1)
        );
    }
    assert_eq!(blocking.to_string(), async_.to_string());
    assert!(
        blocking
            .to_string()
            .starts_with(&format!("transport error (Connect) in PutObject (PUT /k/a.txt, attempt 1): cannot connect to 127.0.0.1:{port}: ")),
        "{blocking}"
    );
}
