//! GET Object streamed (`get_object_stream`, as chunks and as an `AsyncRead`) against the cos-testkit
//! server over loopback TCP: whole objects and ranges, the four conditions, and bodies cut mid-way.

use cos_async::ops::{GetObject, PutObject};
use cos_async::{Client, Config, Credentials, Endpoint, ObjectStream};
use cos_testkit::{Fault, Server};
use tokio::io::AsyncReadExt;

async fn start() -> (Server, Client) {
    let server = Server::builder().start().await.unwrap();
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

async fn chunks(s: &mut ObjectStream) -> Result<Vec<u8>, cos_async::Error> {
    let mut v = Vec::new();
    while let Some(c) = s.chunk().await {
        v.extend_from_slice(&c?);
    }
    Ok(v)
}

#[tokio::test]
async fn streams_whole_objects_and_ranges() {
    let (_server, client) = start().await;
    let body = pattern(3 << 20);
    let put = client
        .put_object(PutObject::new("big.bin"), body.clone())
        .await
        .unwrap();

    let mut s = client
        .get_object_stream(GetObject::new("big.bin"))
        .await
        .unwrap();
    assert_eq!(s.info().content_length, body.len() as u64);
    assert_eq!(s.info().etag.as_deref(), Some(put.etag.as_str()));
    assert_eq!(s.range(), None);
    assert!(chunks(&mut s).await.unwrap() == body);
    assert_eq!(s.received(), body.len() as u64);

    // The same through AsyncRead.
    let mut s = client
        .get_object_stream(GetObject::new("big.bin"))
        .await
        .unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).await.unwrap();
    assert!(v == body);

    let mut s = client
        .get_object_stream(GetObject::new("big.bin").range(100, Some(199)))
        .await
        .unwrap();
    assert_eq!(s.range(), Some((100, 199, body.len() as u64)));
    assert_eq!(chunks(&mut s).await.unwrap(), &body[100..200]);

    let start = body.len() as u64 - 10;
    let mut s = client
        .get_object_stream(GetObject::new("big.bin").range(start, None))
        .await
        .unwrap();
    assert_eq!(chunks(&mut s).await.unwrap(), &body[body.len() - 10..]);

    let e = client
        .get_object_stream(GetObject::new("big.bin").range(body.len() as u64, None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidRange"));
    let e = client
        .get_object_stream(GetObject::new("missing"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
}

#[tokio::test]
async fn conditional_gets() {
    let (_server, client) = start().await;
    let put = client
        .put_object(PutObject::new("c.txt"), "conditional")
        .await
        .unwrap();
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let c = || GetObject::new("c.txt");
    for (op, code) in [
        (c().if_match("\"0000\""), "PreconditionFailed"),
        (c().if_none_match(put.etag.clone()), "NotModified"),
        (c().if_modified_since(future), "NotModified"),
        (c().if_unmodified_since(past), "PreconditionFailed"),
    ] {
        let e = client.get_object_stream(op).await.unwrap_err();
        assert_eq!(e.code(), Some(code));
    }
    let mut s = client
        .get_object_stream(
            c().if_match(put.etag.clone())
                .if_modified_since(past)
                .if_unmodified_since(future),
        )
        .await
        .unwrap();
    assert_eq!(chunks(&mut s).await.unwrap(), b"conditional");
}

#[tokio::test]
async fn a_body_cut_mid_way_is_an_error_not_a_short_object() {
    let (server, client) = start().await;
    let body = pattern(1 << 20);
    client
        .put_object(PutObject::new("cut.bin"), body.clone())
        .await
        .unwrap();
    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let mut s = client
        .get_object_stream(GetObject::new("cut.bin"))
        .await
        .unwrap();
    assert!(chunks(&mut s).await.is_err());
    assert!(s.received() < body.len() as u64);
    assert!(s.chunk().await.is_none(), "the stream has ended");

    let mut s = client
        .get_object_stream(GetObject::new("cut.bin"))
        .await
        .unwrap();
    let streamed = chunks(&mut s).await.unwrap();
    let whole = client
        .get_object(GetObject::new("cut.bin"))
        .await
        .unwrap()
        .body;
    assert_eq!(streamed, whole);
}
