//! Proxies, through both clients, over real sockets: a local CONNECT proxy started by the test carries
//! uploads to HTTP and HTTPS (test CA) servers; an explicit proxy with credentials sends
//! `Proxy-Authorization`, and wrong credentials fail with the proxy's refusal; `HTTP_PROXY`/`HTTPS_PROXY`
//! are honoured the same way by both clients, `NO_PROXY` and `without_proxy()` bypass the proxy.
//!
//! One test function: the proxy variables are process-wide, and this binary has no other test to disturb.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use cos_core::{Config, Endpoint, Error};
use cos_testkit::Server;

/// Each tunnel: `CONNECT target` and its `Proxy-Authorization`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A CONNECT proxy: records each tunnel's target and `Proxy-Authorization`, refuses with 407 when
/// `required` credentials are not given.
struct TestProxy {
    url: String,
    seen: Seen,
}

impl TestProxy {
    fn start(required: Option<&'static str>) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let s = s.clone();
                std::thread::spawn(move || tunnel(client, required, &s));
            }
        });
        TestProxy { url, seen }
    }

    fn tunnels(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }
}

fn tunnel(client: TcpStream, required: Option<&str>, seen: &Mutex<Vec<(String, Option<String>)>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("proxy-authorization") {
                auth = Some(v.trim().to_string());
            }
        }
    }
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    seen.lock()
        .unwrap()
        .push((format!("{method} {target}"), auth.clone()));
    let mut out = client.try_clone().unwrap();
    if method != "CONNECT" {
        let _ = out.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    if let Some(want) = required {
        if auth.as_deref() != Some(want) {
            let _ = out.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        }
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = out.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let _ = out.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
    let early = reader.buffer().to_vec();
    let mut up_w = upstream.try_clone().unwrap();
    let _ = up_w.write_all(&early);
    let mut up_r = upstream;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut out);
        let _ = out.shutdown(std::net::Shutdown::Write);
    });
    let mut client_r = reader.into_inner();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match client_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if up_w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = up_w.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

fn config(server: &Server) -> Config {
    let mut c = Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap();
    if let Some(ca) = server.ca_pem() {
        c = c.with_ca_pem(ca).unwrap();
    }
    c.retry.max_attempts = 1;
    c
}

/// Uploads `key` through both clients (`key.b` and `key.a`); returns the errors, if any.
fn put_both(config: &Config, key: &str, rt: &tokio::runtime::Runtime) -> [Result<(), Error>; 2] {
    let b = cos_blocking::Client::new(config.clone())
        .put_object(cos_core::ops::PutObject::new(format!("{key}.b")), "via")
        .map(drop);
    let a = rt.block_on(async {
        cos_async::Client::new(config.clone())
            .put_object(cos_core::ops::PutObject::new(format!("{key}.a")), "via")
            .await
            .map(drop)
    });
    [b, a]
}

const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

#[test]
fn proxies_explicit_and_from_the_environment_on_both_clients() {
    for v in PROXY_VARS {
        std::env::remove_var(v);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http = Server::builder().start_blocking().unwrap();
    let https = Server::builder().tls(true).start_blocking().unwrap();
    let http_target = format!("CONNECT {}", http.addr());
    let https_target = format!("CONNECT {}", https.addr());

    // 1. Explicit proxy with credentials, HTTP and HTTPS targets: tunnelled, with Proxy-Authorization.
    let proxy = TestProxy::start(Some("Basic YWxpY2U6czNjcmV0")); // alice:s3cret
    let with_creds = proxy.url.replace("http://", "http://alice:s3cret@");
    for (server, target) in [(&http, &http_target), (&https, &https_target)] {
        let c = config(server).with_proxy(&with_creds, "").unwrap();
        for r in put_both(&c, "explicit", &rt) {
            r.unwrap();
        }
        let tunnels = proxy.tunnels();
        let mine: Vec<_> = tunnels.iter().filter(|(t, _)| t == target).collect();
        assert_eq!(mine.len(), 2, "one tunnel per client: {tunnels:?}");
        assert!(mine
            .iter()
            .all(|(_, a)| a.as_deref() == Some("Basic YWxpY2U6czNjcmV0")));
        assert!(server.object("explicit.b").is_some() && server.object("explicit.a").is_some());
        // The config's Debug names the proxy but not its password.
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
    // Wrong credentials: the proxy refuses, the request never reaches the server, both say so alike.
    let before = http.counters().total;
    let wrong = config(&http)
        .with_proxy(&proxy.url.replace("http://", "http://alice:nope@"), "")
        .unwrap();
    let errors = put_both(&wrong, "refused", &rt);
    for e in &errors {
        let e = e.as_ref().unwrap_err();
        assert!(matches!(e, Error::Transport(_)), "{e:?}");
        assert!(
            e.to_string().contains("407") || e.to_string().to_lowercase().contains("auth"),
            "{e}"
        );
    }
    assert_eq!(http.counters().total, before);
    // NO_PROXY-style bypass of an explicit proxy.
    let n = proxy.tunnels().len();
    let bypass = config(&http)
        .with_proxy(&with_creds, "localhost, 127.0.0.1")
        .unwrap();
    for r in put_both(&bypass, "bypass-explicit", &rt) {
        r.unwrap();
    }
    assert_eq!(proxy.tunnels().len(), n, "bypassed");

    // 2. From the environment, read when a client is built.
    let env_proxy = TestProxy::start(None);
    std::env::set_var("HTTP_PROXY", &env_proxy.url);
    std::env::set_var("https_proxy", &env_proxy.url);
    for r in put_both(&config(&http), "env-http", &rt) {
        r.unwrap();
    }
    for r in put_both(&config(&https), "env-https", &rt) {
        r.unwrap();
    }
    let t = env_proxy.tunnels();
    assert_eq!(
        t.iter().filter(|(x, _)| *x == http_target).count(),
        2,
        "{t:?}"
    );
    assert_eq!(
        t.iter().filter(|(x, _)| *x == https_target).count(),
        2,
        "{t:?}"
    );
    assert!(t.iter().all(|(_, a)| a.is_none()));
    // An explicit setting wins over the environment.
    for r in put_both(
        &config(&http).with_proxy(&with_creds, "").unwrap(),
        "explicit-wins",
        &rt,
    ) {
        r.unwrap();
    }
    assert_eq!(env_proxy.tunnels().len(), 4);

    // NO_PROXY (with a port, and as a host) and without_proxy(): direct.
    std::env::set_var(
        "NO_PROXY",
        format!("example.com,127.0.0.1:{}", http.addr().port()),
    );
    for r in put_both(&config(&http), "env-bypass", &rt) {
        r.unwrap();
    }
    assert_eq!(env_proxy.tunnels().len(), 4, "NO_PROXY host:port bypassed");
    for r in put_both(&config(&https), "env-https-2", &rt) {
        r.unwrap();
    }
    assert_eq!(env_proxy.tunnels().len(), 6, "another port still proxied");
    std::env::set_var("no_proxy", "127.0.0.1");
    for r in put_both(&config(&https), "env-bypass-2", &rt) {
        r.unwrap();
    }
    assert_eq!(
        env_proxy.tunnels().len(),
        6,
        "no_proxy (lower case first) bypassed"
    );
    std::env::remove_var("no_proxy");
    std::env::remove_var("NO_PROXY");
    for r in put_both(&config(&http).without_proxy(), "direct", &rt) {
        r.unwrap();
    }
    assert_eq!(
        env_proxy.tunnels().len(),
        6,
        "without_proxy() ignores HTTP_PROXY"
    );

    // A proxy that is not there: a connection error naming the proxy, the same on both clients.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    std::env::set_var("HTTP_PROXY", format!("http://{dead}"));
    let [b, a] = put_both(&config(&http), "dead", &rt);
    for e in [b.unwrap_err(), a.unwrap_err()] {
        let Error::Transport(t) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(t.kind, cos_core::error::TransportErrorKind::Connect, "{e}");
    }
    for v in PROXY_VARS {
        std::env::remove_var(v);
    }
}
