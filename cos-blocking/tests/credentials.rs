//! Credentials where servers keep them, over real TCP, through both clients: the CVM instance role from a
//! local mock of the metadata service (role discovery, temporary keys, refresh ahead of expiry mid-upload),
//! the provider chain, `Config::from_env`, and a client built from a provider alone.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cos_core::credentials::{EnvCredentials, ProvideCredentials};
use cos_core::instance_role::{ChainCredentials, InstanceRole};
use cos_testkit::Server;

/// A local stand-in for `metadata.tencentyun.com`: answers the role list with `role`, and the role's
/// credentials valid for `ttl` seconds with the token of the current `generation`. When a fetch hands out
/// a new generation's token, the COS server accepts only that one from then on (the old keys are revoked).
struct MetadataMock {
    url: String,
    role_lists: Arc<AtomicU32>,
    fetches: Arc<AtomicU32>,
    generation: Arc<AtomicU32>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl MetadataMock {
    fn start(server: Arc<Server>, role: &'static str, ttl: u64) -> MetadataMock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let role_lists = Arc::new(AtomicU32::new(0));
        let fetches = Arc::new(AtomicU32::new(0));
        let generation = Arc::new(AtomicU32::new(1));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (r, f, p, g) = (
            role_lists.clone(),
            fetches.clone(),
            paths.clone(),
            generation.clone(),
        );
        let mut issued = 0;
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                p.lock().unwrap().push(path.clone());
                let base = "/latest/meta-data/cam/security-credentials/";
                let (status, body) = if path == base {
                    r.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", role.to_string())
                } else if path == format!("{base}{role}") {
                    f.fetch_add(1, Ordering::SeqCst);
                    let n = g.load(Ordering::SeqCst);
                    let token = format!("role-token-{n}");
                    if n != issued {
                        server.set_security_token(Some(&token));
                        issued = n;
                    }
                    let expires = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        + ttl;
                    (
                        "200 OK",
                        format!(
                            r#"{{"TmpSecretId":"{}","TmpSecretKey":"{}","ExpiredTime":{expires},"Expiration":"x","Token":"{token}","Code":"Success"}}"#,
                            server.secret_id(),
                            server.secret_key()
                        ),
                    )
                } else {
                    ("404 Not Found", "not found".to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        MetadataMock {
            url,
            role_lists,
            fetches,
            generation,
            paths,
        }
    }
}

fn server() -> Arc<Server> {
    let s = Server::builder()
        .security_token("not-yet-known")
        .start_blocking()
        .unwrap();
    Arc::new(s)
}

fn config_for(server: &Server) -> cos_core::Config {
    cos_core::Config::for_provider(server.bucket(), "ap-guangzhou")
        .unwrap()
        .with_endpoint(cos_core::Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap()
}

fn file(name: &str, len: usize) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("cos-cred-{}-{name}", std::process::id()));
    std::fs::write(&p, (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    p
}

#[test]
fn instance_role_credentials_refresh_mid_upload_on_both_clients() {
    let server = server();
    // The keys live 60 s and are refreshed 3600 s ahead, so every step asks the metadata service; after
    // each part the mock issues a new token and revokes the old one, so the later parts (and Complete) only
    // succeed when signed with keys refreshed mid-upload.
    let mock = MetadataMock::start(server.clone(), "cos-uploader", 60);
    let rotate = {
        let g = mock.generation.clone();
        move |e: &cos_core::task::Event| {
            if matches!(e, cos_core::task::Event::PartCompleted { .. }) {
                g.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let options = cos_blocking::UploadOptions::default()
        .threshold(1024 * 1024)
        .part_size(1024 * 1024)
        .concurrency(1);
    let path = file("role.bin", 3 * 1024 * 1024 + 5);

    let provider = cos_blocking::instance_role_credentials()
        .endpoint(&mock.url)
        .refresh_before(Duration::from_secs(3600));
    let client = cos_blocking::Client::builder(config_for(&server))
        .credentials_provider(Arc::new(provider))
        .on_event(rotate.clone())
        .build();
    client
        .upload_file(&path, "role/blocking.bin", &options)
        .unwrap();
    assert_eq!(
        mock.generation.load(Ordering::SeqCst),
        5,
        "4 parts, 4 rotations"
    );
    let blocking_fetches = mock.fetches.load(Ordering::SeqCst);
    assert!(
        blocking_fetches >= 5,
        "initiate, 4 parts, complete each signed with fresh keys: {blocking_fetches}"
    );
    assert_eq!(
        mock.role_lists.load(Ordering::SeqCst),
        1,
        "role discovered once"
    );

    let provider = cos_async::instance_role_credentials()
        .endpoint(&mock.url)
        .refresh_before(Duration::from_secs(3600));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = cos_async::Client::builder(config_for(&server))
        .credentials_provider(Arc::new(provider))
        .on_event(rotate)
        .build();
    rt.block_on(client.upload_file(&path, "role/async.bin", &options))
        .unwrap();
    assert!(mock.fetches.load(Ordering::SeqCst) >= blocking_fetches + 5);
    assert_eq!(mock.generation.load(Ordering::SeqCst), 9);
    for key in ["role/blocking.bin", "role/async.bin"] {
        assert_eq!(
            server.object(key).unwrap().size,
            3 * 1024 * 1024 + 5,
            "{key}"
        );
    }
    assert!(mock
        .paths
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.starts_with("/latest/meta-data/cam/security-credentials/")));
    let _ = std::fs::remove_file(path);
}

#[test]
fn instance_role_keys_are_cached_until_the_refresh_window() {
    let server = server();
    let mock = MetadataMock::start(server.clone(), "r1", 7200);
    let provider = cos_blocking::instance_role_credentials().endpoint(&mock.url);
    let now = SystemTime::now();
    let c = provider.credentials(now).unwrap();
    assert_eq!(c.security_token(), Some("role-token-1"));
    assert_eq!(provider.role_name().as_deref(), Some("r1"));
    assert_eq!(mock.fetches.load(Ordering::SeqCst), 1);
    // An hour later: still cached. 1 h 56 min later (inside the 5 min window): fetched again.
    provider
        .credentials(now + Duration::from_secs(3600))
        .unwrap();
    assert_eq!(mock.fetches.load(Ordering::SeqCst), 1);
    mock.generation.store(2, Ordering::SeqCst);
    assert_eq!(
        provider
            .credentials(now + Duration::from_secs(7200 - 240))
            .unwrap()
            .security_token(),
        Some("role-token-2")
    );
    assert_eq!(mock.fetches.load(Ordering::SeqCst), 2);
    // A given role name is not looked up.
    let named = cos_async::instance_role_credentials()
        .endpoint(&mock.url)
        .role("r1");
    named.credentials(now).unwrap();
    assert_eq!(mock.role_lists.load(Ordering::SeqCst), 1);
    // A role that does not exist: a clear error, no keys.
    let e = cos_blocking::instance_role_credentials()
        .endpoint(&mock.url)
        .role("nope")
        .credentials(now)
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
}

#[test]
fn chain_falls_through_explicit_env_instance_role_and_reports_the_last_failure() {
    let server = server();
    let mock = MetadataMock::start(server.clone(), "chain-role", 7200);
    let now = SystemTime::now();
    let env = |vars: &'static [(&'static str, &'static str)]| {
        EnvCredentials::with_lookup(move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    };
    let role = || cos_blocking::instance_role_credentials().endpoint(&mock.url);
    let chain = ChainCredentials::new()
        .or(cos_core::Credentials::new("EXPLICIT", "k"))
        .or(env(&[
            ("TENCENTCLOUD_SECRETID", "ENV"),
            ("TENCENTCLOUD_SECRETKEY", "k"),
        ]))
        .or(role());
    assert_eq!(chain.credentials(now).unwrap().secret_id(), "EXPLICIT");
    let chain = ChainCredentials::new()
        .or(env(&[
            ("TENCENTCLOUD_SECRETID", "ENV"),
            ("TENCENTCLOUD_SECRETKEY", "k"),
        ]))
        .or(role());
    assert_eq!(chain.credentials(now).unwrap().secret_id(), "ENV");
    let chain = ChainCredentials::new().or(env(&[])).or(role());
    assert_eq!(
        chain.credentials(now).unwrap().security_token(),
        Some("role-token-1")
    );
    // Off a CVM: nothing listens where the metadata service would be.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chain = ChainCredentials::new()
        .or(env(&[]))
        .or(InstanceRole::endpoint(
            cos_blocking::instance_role_credentials(),
            &format!("http://127.0.0.1:{port}"),
        ));
    let e = chain.credentials(now).unwrap_err();
    assert!(
        e.to_string()
            .contains("instance metadata service: cannot connect"),
        "{e}"
    );
}

#[test]
fn from_env_reads_cos_and_tencentcloud_variables() {
    let server = Server::builder().start_blocking().unwrap();
    // The only test in this binary that touches the process environment.
    for (k, v) in [
        ("COS_BUCKET", server.bucket()),
        ("TENCENTCLOUD_REGION", "ap-shanghai"),
        ("COS_ENDPOINT", &server.endpoint()),
        ("TENCENTCLOUD_SECRETID", server.secret_id()),
        ("TENCENTCLOUD_SECRETKEY", server.secret_key()),
    ] {
        std::env::set_var(k, v);
    }
    let config = cos_core::Config::from_env().unwrap();
    assert_eq!(config.region.as_str(), "ap-shanghai");
    assert_eq!(config.credentials.secret_id(), server.secret_id());
    cos_blocking::Client::new(config.clone())
        .put_object(cos_core::ops::PutObject::new("env.txt"), "from env")
        .unwrap();
    // The default chain (no explicit credentials) finds the same variables.
    let chain = cos_async::default_credentials_chain(None);
    assert_eq!(
        chain.credentials(SystemTime::now()).unwrap().secret_id(),
        server.secret_id()
    );
    std::env::remove_var("COS_BUCKET");
    let e = cos_core::Config::from_env().unwrap_err();
    assert!(e.to_string().contains("COS_BUCKET"), "{e}");
    for k in [
        "TENCENTCLOUD_REGION",
        "COS_ENDPOINT",
        "TENCENTCLOUD_SECRETID",
        "TENCENTCLOUD_SECRETKEY",
    ] {
        std::env::remove_var(k);
    }
    assert_eq!(server.object("env.txt").unwrap().size, 8);
}

#[test]
fn a_client_from_a_provider_alone_and_one_with_no_credentials_at_all() {
    let server = Server::builder().start_blocking().unwrap();
    let config = config_for(&server);
    let creds = server.credentials();
    let client = cos_blocking::Client::builder(config.clone())
        .credentials_provider(Arc::new(creds))
        .build();
    client
        .put_object(cos_core::ops::PutObject::new("p.txt"), "x")
        .unwrap();
    // Neither credentials nor a provider: refused before anything is sent.
    let before = server.counters().total;
    let e = cos_blocking::Client::new(config)
        .put_object(cos_core::ops::PutObject::new("q.txt"), "x")
        .unwrap_err();
    assert_eq!(
        e,
        cos_core::Error::InvalidInput(cos_core::InvalidInput::MissingCredentials)
    );
    assert_eq!(server.counters().total, before);
}
