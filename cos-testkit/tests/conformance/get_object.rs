//! GET Object streamed (blocking `get_object_reader`, async `get_object_stream` through its `AsyncRead`):
//! whole objects and ranges, the four conditions, and bodies cut mid-way.

use super::*;
use cos_core::ops::PutObject;

fn read_all(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

pub fn streams_whole_objects_and_ranges<D: Driver>() {
    let (_server, client) = start::<D>();
    let body = pattern(3 << 20, 1);
    let put = client
        .put_object(PutObject::new("big.bin"), body.clone())
        .unwrap();

    let mut r = client.get_object_stream(GetObject::new("big.bin")).unwrap();
    assert_eq!(r.info().content_length, body.len() as u64);
    assert_eq!(r.info().etag.as_deref(), Some(put.etag.as_str()));
    assert_eq!(r.range(), None);
    assert!(read_all(&mut r).unwrap() == body);
    assert_eq!(r.received(), body.len() as u64);

    let mut r = client
        .get_object_stream(GetObject::new("big.bin").range(100, Some(199)))
        .unwrap();
    assert_eq!(r.range(), Some((100, 199, body.len() as u64)));
    assert_eq!(read_all(&mut r).unwrap(), &body[100..200]);

    let start = body.len() as u64 - 10;
    let mut r = client
        .get_object_stream(GetObject::new("big.bin").range(start, None))
        .unwrap();
    assert_eq!(read_all(&mut r).unwrap(), &body[body.len() - 10..]);

    let e = client
        .get_object_stream(GetObject::new("big.bin").range(body.len() as u64, None))
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidRange"));
    let e = client
        .get_object_stream(GetObject::new("missing"))
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
}

pub fn conditional_gets<D: Driver>() {
    let (_server, client) = start::<D>();
    let put = client
        .put_object(PutObject::new("c.txt"), "conditional")
        .unwrap();
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let code = |op: GetObject| client.get_object_stream(op).map(|_| ()).unwrap_err();
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
        .get_object_stream(
            c().if_match(put.etag.clone())
                .if_modified_since(past)
                .if_unmodified_since(future),
        )
        .unwrap();
    assert_eq!(read_all(&mut r).unwrap(), b"conditional");
}

pub fn a_body_cut_mid_way_is_an_error_not_a_short_object<D: Driver>() {
    let (server, client) = start::<D>();
    let body = pattern(1 << 20, 2);
    client
        .put_object(PutObject::new("cut.bin"), body.clone())
        .unwrap();
    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let mut r = client.get_object_stream(GetObject::new("cut.bin")).unwrap();
    read_all(&mut r).unwrap_err();
    assert!(r.received() < body.len() as u64);
    // The body has ended with the error: no further bytes come.
    assert!(!matches!(r.read(&mut [0u8; 16]), Ok(n) if n > 0));
    drop(r);

    // In-memory and streamed GETs agree on an intact object.
    let mut r = client.get_object_stream(GetObject::new("cut.bin")).unwrap();
    let streamed = read_all(&mut r).unwrap();
    let whole = client.get_object(GetObject::new("cut.bin")).unwrap().body;
    assert_eq!(streamed, whole);
}

/// After a cut body every later read fails too: a caller that retries a read after an error must never see a
/// short object end cleanly (`Ok(0)`). Async once reported a clean end here.
pub fn a_read_after_a_cut_body_keeps_failing<D: Driver>() {
    let (server, client) = start::<D>();
    client
        .put_object(PutObject::new("cut.bin"), pattern(1 << 20, 3))
        .unwrap();
    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let mut r = client.get_object_stream(GetObject::new("cut.bin")).unwrap();
    let e = read_all(&mut r).unwrap_err();
    assert!(r.read(&mut [0u8; 16]).is_err(), "{e}");
}
