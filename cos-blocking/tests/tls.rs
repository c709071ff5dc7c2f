//! HTTPS end to end, through both clients: the testkit server serves TLS with a certificate from a test
//! CA generated at start; uploads succeed with that CA added through the config, and are refused (before
//! any request reaches the server) without it.

use std::sync::Arc;

use cos_core::error::TransportErrorKind;
use cos_core::{Config, Endpoint, Error};
use cos_testkit::Server;

fn config(server: &Server) -> Config {
    Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .unwrap()
        .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
        .unwrap()
        .without_proxy()
}

fn file(len: usize) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("cos-tls-{}.bin", std::process::id()));
    std::fs::write(&p, (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>()).unwrap();
    p
}

#[test]
fn both_clients_upload_over_tls_with_the_test_ca_and_are_refused_without_it() {
    let server = Arc::new(Server::builder().tls(true).start_blocking().unwrap());
    assert!(server.endpoint().starts_with("https://127.0.0.1:"));
    let ca = server.ca_pem().unwrap().to_string();
    let trusted = config(&server).with_ca_pem(&ca).unwrap();
    let path = file(2 * 1024 * 1024 + 3);
    let options = cos_blocking::UploadOptions::default()
        .threshold(1024 * 1024)
        .part_size(1024 * 1024);

    // Trusting the test CA: a PUT and a multipart upload on each client.
    let blocking = cos_blocking::Client::new(trusted.clone());
    blocking
        .put_object(cos_core::ops::PutObject::new("tls/b.txt"), "over tls")
        .unwrap();
    blocking.upload_file(&path, "tls/b.bin", &options).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = cos_async::Client::new(trusted.clone());
        client
            .put_object(cos_core::ops::PutObject::new("tls/a.txt"), "over tls")
            .await
            .unwrap();
        client
            .upload_file(&path, "tls/a.bin", &options)
            .await
            .unwrap();
    });
    for (key, size) in [
        ("tls/b.txt", 8),
        ("tls/a.txt", 8),
        ("tls/b.bin", 2 * 1024 * 1024 + 3),
        ("tls/a.bin", 2 * 1024 * 1024 + 3),
    ] {
        assert_eq!(server.object(key).unwrap().size, size, "{key}");
    }

    // The default roots (Mozilla's) do not include the test CA; neither does another CA.
    let other_ca = Server::builder().tls(true).start_blocking().unwrap();
    let before = server.counters().total;
    for config in [
        config(&server),
        config(&server)
            .with_ca_pem(other_ca.ca_pem().unwrap())
            .unwrap(),
    ] {
        let mut config = config;
        config.retry.max_attempts = 1;
        let e = cos_blocking::Client::new(config.clone())
            .put_object(cos_core::ops::PutObject::new("tls/no.txt"), "x")
            .unwrap_err();
        let a = rt.block_on(async {
            cos_async::Client::new(config)
                .put_object(cos_core::ops::PutObject::new("tls/no.txt"), "x")
                .await
                .unwrap_err()
        });
        for e in [e, a] {
            let Error::Transport(t) = &e else {
                panic!("{e:?}")
            };
            assert_eq!(t.kind, TransportErrorKind::Tls, "{e} {e:?}");
            assert!(std::error::Error::source(t).is_some(), "cause kept: {e:?}");
        }
    }
    assert_eq!(
        server.counters().total,
        before,
        "no request got through an untrusted handshake"
    );
    assert!(server.object("tls/no.txt").is_none());

    // A config whose CA text is not a certificate is refused when it is given.
    assert!(config(&server).with_ca_pem("not a pem").is_err());
    let _ = std::fs::remove_file(path);
}

#[test]
fn native_roots_need_the_feature() {
    let server = Server::builder().tls(true).start_blocking().unwrap();
    let config = config(&server).with_tls_roots(cos_core::network::TlsRoots::Native);
    let e = cos_blocking::Client::new(config)
        .put_object(cos_core::ops::PutObject::new("n.txt"), "x")
        .unwrap_err();
    if cfg!(feature = "native-roots") {
        // The platform's store does not hold the test CA either.
        assert!(
            matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Tls),
            "{e}"
        );
    } else {
        assert!(e.to_string().contains("native-roots"), "{e}");
    }
}
