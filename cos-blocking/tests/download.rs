//! `download_file` against the cos-testkit server over loopback TCP: one GET or parallel ranged GETs, the
//! file in place only when complete and verified.

use cos_blocking::ops::PutObject;
use cos_blocking::DownloadOptions;
use cos_blocking::{Client, Config, Credentials, Endpoint};
use cos_testkit::{Fault, Server};

fn start() -> (Server, Client) {
    let server = Server::builder().start_blocking().unwrap();
    let config = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    (server, Client::new(config))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cos-blocking-dl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ranged() -> DownloadOptions {
    DownloadOptions {
        threshold: 1 << 20,
        range_size: 1 << 20,
        concurrency: 3,
    }
}

#[test]
fn single_and_ranged_downloads() {
    let (server, client) = start();
    let d = dir("ok");
    let small = pattern(1000);
    let big = pattern((5 << 20) + 123);
    client
        .put_object(PutObject::new("small"), small.clone())
        .unwrap();
    client
        .put_object(PutObject::new("big"), big.clone())
        .unwrap();

    let gets = server.counters().get("GetObject");
    let out = client
        .download_file("small", d.join("small"), &ranged())
        .unwrap();
    assert_eq!((out.size, out.requests), (1000, 1));
    assert_eq!(std::fs::read(d.join("small")).unwrap(), small);
    assert_eq!(server.counters().get("GetObject") - gets, 1);

    let gets = server.counters().get("GetObject");
    let out = client
        .download_file("big", d.join("big"), &ranged())
        .unwrap();
    assert_eq!(out.requests, 6);
    assert!(std::fs::read(d.join("big")).unwrap() == big);
    assert_eq!(server.counters().get("GetObject") - gets, 6);
    // Nothing but the two files is left beside them.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_failed_download_leaves_the_destination_untouched() {
    let (server, client) = start();
    let d = dir("fail");
    client
        .put_object(PutObject::new("big"), pattern(3 << 20))
        .unwrap();
    std::fs::write(d.join("big"), b"old content").unwrap();
    server
        .faults()
        .fail_nth("GetObject", 2, Fault::TruncatedBody);
    assert!(client
        .download_file("big", d.join("big"), &ranged())
        .is_err());
    assert_eq!(std::fs::read(d.join("big")).unwrap(), b"old content");
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        1,
        "no temporary file left"
    );

    let e = client
        .download_file("missing", d.join("m"), &ranged())
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
    assert!(!d.join("m").exists());
    let _ = std::fs::remove_dir_all(&d);
}
