//! GET Object streamed as a `Read` (`get_object_reader`) against the cos-testkit server over loopback TCP:
//! whole objects and ranges, the four conditions, and bodies cut mid-way.

use std::io::Read;

use cos_blocking::ops::{GetObject, PutObject};
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

fn read_all(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

#[test]
fn streams_whole_objects_and_ranges() {
    let (_server, client) = start();
    let body = pattern(3 << 20);
    let put = client
        .put_object(PutObject::new("big.bin"), body.clone())
        .unwrap();

    let mut r = client.get_object_reader(GetObject::new("big.bin")).unwrap();
    assert_eq!(r.info().content_length, body.len() as u64);
    assert_eq!(r.info().etag.as_deref(), Some(put.etag.as_str()));
    assert_eq!(r.range(), None);
    assert!(read_all(&mut r).unwrap() == body);
    assert_eq!(r.received(), body.len() as u64);

    let mut r = client
        .get_object_reader(GetObject::new("big.bin").range(100, Some(199)))
        .unwrap();
    assert_eq!(r.range(), Some((100, 199, body.len() as u64)));
    assert_eq!(read_all(&mut r).unwrap(), &body[100..200]);

    let start = body.len() as u64 - 10;
    let mut r = client
        .get_object_reader(GetObject::new("big.bin").range(start, None))
        .unwrap();
    assert_eq!(read_all(&mut r).unwrap(), &body[body.len() - 10..]);

    let e = client
        .get_object_reader(GetObject::new("big.bin").range(body.len() as u64, None))
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidRange"));
    let e = client
        .get_object_reader(GetObject::new("missing"))
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
}

#[test]
fn conditional_gets() {
    let (_server, client) = start();
    let put = client
        .put_object(PutObject::new("c.txt"), "conditional")
        .unwrap();
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let code = |op: GetObject| client.get_object_reader(op).map(|_| ()).unwrap_err();
    let c = || GetObject::new("c.txt");
    assert_eq!(
        code(c().if_match("\"0000\"")).code(),
        Some("PreconditionFailed")
    );
    assert_eq!(
        code(c().if_none_match(put.etag.clone())).code(),
        Some("NotModified")
    );
    assert_eq!(
        code(c().if_modified_since(future)).code(),
        Some("NotModified")
    );
    assert_eq!(
        code(c().if_unmodified_since(past)).code(),
        Some("PreconditionFailed")
    );
    let mut r = client
        .get_object_reader(
            c().if_match(put.etag.clone())
                .if_modified_since(past)
                .if_unmodified_since(future),
        )
        .unwrap();
    assert_eq!(read_all(&mut r).unwrap(), b"conditional");
}

#[test]
fn a_body_cut_mid_way_is_an_error_not_a_short_object() {
    let (server, client) = start();
    let body = pattern(1 << 20);
    client
        .put_object(PutObject::new("cut.bin"), body.clone())
        .unwrap();
    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let mut r = client.get_object_reader(GetObject::new("cut.bin")).unwrap();
    let e = read_all(&mut r).unwrap_err();
    assert!(r.received() < body.len() as u64);
    // A later read keeps failing rather than reporting a clean end.
    assert!(r.read(&mut [0u8; 16]).is_err(), "{e}");

    // In-memory and streamed GETs agree on an intact object.
    let mut r = client.get_object_reader(GetObject::new("cut.bin")).unwrap();
    let streamed = read_all(&mut r).unwrap();
    let whole = client.get_object(GetObject::new("cut.bin")).unwrap().body;
    assert_eq!(streamed, whole);
}
