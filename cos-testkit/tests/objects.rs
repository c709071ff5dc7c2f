//! List Objects with keys XML cannot carry (encoding-type=url), copies across buckets, and the GET
//! conditions and ranges, over raw HTTP.

mod common;

use common::*;
use cos_core::Credentials;
use cos_testkit::Server;

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

fn send_to(s: &Server, host: &str, req: Req) -> Resp {
    let h = sign(&req, host, &creds(s), now_key_time());
    raw(s.addr(), &serialize(&h, &req.body), req.method == "HEAD").unwrap()
}

#[test]
fn list_encodes_keys_with_control_characters() {
    let s = Server::builder().start_blocking().unwrap();
    let c = creds(&s);
    for k in ["/a%01b", "/a%20c", "/b"] {
        assert_eq!(send(s.addr(), &c, Req::new("PUT", k).body("x")).status, 200);
    }
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("encoding-type=url&max-keys=1&prefix=a"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("EncodingType").as_deref(), Some("url"));
    assert_eq!(r.xml("Key").as_deref(), Some("a%01b"));
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextMarker").as_deref(), Some("a%01b"));
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("marker=a%01b&prefix=a"),
    );
    assert_eq!(r.xml("Key").as_deref(), Some("a c"));
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    assert!(r.xml("NextMarker").is_none());
    let r = send(s.addr(), &c, Req::new("GET", "/").query("encoding-type=x"));
    assert_eq!(r.status, 400);
}

#[test]
fn copy_across_buckets() {
    let s = Server::builder().start_blocking().unwrap();
    let other = "otherbucket-1250000000.cos.ap-guangzhou.myqcloud.com";
    assert_eq!(send_to(&s, other, Req::new("PUT", "/")).status, 200);
    let r = send_to(
        &s,
        other,
        Req::new("PUT", "/src").body("from the other bucket"),
    );
    assert_eq!(r.status, 200);
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/dst")
            .header("x-cos-copy-source", &format!("{other}/src"))
            .body(""),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.xml("ETag").is_some());
    assert_eq!(
        s.object("dst").unwrap().data.unwrap(),
        b"from the other bucket"
    );
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/dst")
            .header(
                "x-cos-copy-source",
                "nobucket-1250000000.cos.ap-guangzhou.myqcloud.com/src",
            )
            .body(""),
    );
    assert_eq!(r.code(), "NoSuchBucket");
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/dst")
            .header("x-cos-copy-source", "not a source")
            .body(""),
    );
    assert_eq!(r.code(), "InvalidArgument");
}

#[test]
fn get_conditions_and_ranges() {
    let s = Server::builder().start_blocking().unwrap();
    let c = creds(&s);
    assert_eq!(
        send(s.addr(), &c, Req::new("PUT", "/o").body("0123456789")).status,
        200
    );
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let get = |h: &[(&str, &str)]| {
        let mut r = Req::new("GET", "/o");
        for (k, v) in h {
            r = r.header(k, v);
        }
        send(s.addr(), &c, r)
    };
    assert_eq!(get(&[("if-modified-since", future)]).status, 304);
    assert_eq!(get(&[("if-modified-since", past)]).status, 200);
    let r = get(&[("if-unmodified-since", past)]);
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
    assert_eq!(get(&[("if-unmodified-since", future)]).status, 200);
    // If-None-Match wins over If-Modified-Since.
    assert_eq!(
        get(&[("if-none-match", "\"nope\""), ("if-modified-since", future)]).status,
        200
    );
    let r = get(&[("range", "bytes=-3")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &b"789"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 7-9/10"));
    let r = get(&[("range", "bytes=8-")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &b"89"[..]));
    assert_eq!(get(&[("range", "bytes=10-")]).status, 416);
}
