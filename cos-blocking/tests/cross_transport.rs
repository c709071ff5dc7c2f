//! The same calls through cos-blocking (ureq) and cos-async (hyper) put the same request on the wire:
//! method, path, query, signed header list and every header value except the time-dependent signature.

mod support;

use support::{MockServer, Recorded, Reply};

/// What must match between transports.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    method: String,
    path: String,
    query: String,
    signed: Vec<String>,
    /// All headers but `Authorization`, sorted, with the (per-server) host replaced.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn wire_shape(r: &Recorded) -> Shape {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| n != "authorization")
        .map(|(n, v)| {
            (
                n.clone(),
                if n == "host" {
                    "<host>".into()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    headers.sort();
    let mut signed = r.signed_headers();
    signed.sort();
    Shape {
        method: r.method.clone(),
        path: r.path().to_string(),
        query: r.query().to_string(),
        signed,
        headers,
        body: r.body.clone(),
    }
}

fn echo_server() -> MockServer {
    MockServer::start(|r, _| match r.method.as_str() {
        "PUT" => Reply::put_ok(&r.body),
        _ => Reply::error(404, "NoSuchKey"),
    })
}

#[test]
fn blocking_and_async_send_the_same_requests() {
    let file = std::env::temp_dir().join(format!("cos-cross-{}.bin", std::process::id()));
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();

    let put = || {
        cos_core::ops::PutObject::new("dir/ü b+c.txt")
            .content_type("text/plain")
            .metadata("project", "cos-rs")
            .forbid_overwrite()
    };

    let blocking_server = echo_server();
    let client = cos_blocking::Client::new(blocking_server.config());
    client.put_object(put(), "hello").unwrap();
    client
        .put_object(put(), cos_blocking::Body::file(&file).unwrap())
        .unwrap();
    client
        .put_object(put(), cos_blocking::Body::file_range(&file, 10, 0))
        .unwrap();

    let async_server = echo_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = cos_async::Client::new(async_server.config());
        client.put_object(put(), "hello").await.unwrap();
        client
            .put_object(put(), cos_async::Body::file(&file).unwrap())
            .await
            .unwrap();
        client
            .put_object(put(), cos_async::Body::file_range(&file, 10, 0))
            .await
            .unwrap();
    });
    std::fs::remove_file(&file).unwrap();

    let b = blocking_server.requests();
    let a = async_server.requests();
    assert_eq!(a.len(), b.len());
    assert_eq!(b.len(), 3);
    for (x, y) in b.iter().zip(&a) {
        assert_eq!(x.all("host").len(), 1);
        assert_eq!(y.all("host").len(), 1);
        assert_eq!(
            wire_shape(x),
            wire_shape(y),
            "\nureq:  {:?}\nhyper: {:?}",
            x.headers,
            y.headers
        );
    }
}
