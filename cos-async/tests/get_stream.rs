//! GET Object streamed as a `Stream` of chunks (`ObjectStream::chunk`), the async client's own reading
//! API. What both clients share (whole objects and ranges, conditions, bodies cut mid-way, read through
//! the `AsyncRead`) is in cos-testkit's driver conformance suite (`cargo test -p cos-testkit --test
//! drivers get_object`).

use cos_async::ops::{GetObject, PutObject};
use cos_async::{Client, Config, Credentials, Endpoint, ObjectStream};
use cos_testkit::{Fault, Server};

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

async fn chunks(s: &mut ObjectStream) -> Result<Vec<u8>, cos_async::Error> {
    let mut v = Vec::new();
    while let Some(c) = s.chunk().await {
        v.extend_from_slice(&c?);
    }
    Ok(v)
}

#[tokio::test]
async fn chunks_of_whole_objects_ranges_and_cut_bodies() {
    let (server, client) = start().await;
    let body: Vec<u8> = (0..(3u32 << 20))
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    client
        .put_object(PutObject::new("big.bin"), body.clone())
        .await
        .unwrap();
    let mut s = client
        .get_object_stream(GetObject::new("big.bin"))
        .await
        .unwrap();
    assert!(chunks(&mut s).await.unwrap() == body);
    assert_eq!(s.received(), body.len() as u64);
    assert!(s.chunk().await.is_none(), "the stream has ended");

    let mut s = client
        .get_object_stream(GetObject::new("big.bin").range(100, Some(199)))
        .await
        .unwrap();
    assert_eq!(chunks(&mut s).await.unwrap(), &body[100..200]);

    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let mut s = client
        .get_object_stream(GetObject::new("big.bin"))
        .await
        .unwrap();
    assert!(chunks(&mut s).await.is_err());
    assert!(s.received() < body.len() as u64);
    assert!(s.chunk().await.is_none(), "the stream has ended");
}
