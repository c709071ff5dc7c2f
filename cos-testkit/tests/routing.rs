//! Routing: every COS request the server does not implement answers `501 NotImplemented` with COS's XML
//! error body, and never runs another operation (no object bytes, no stored part, no changed object).

mod common;

use common::*;
use cos_core::Credentials;
use cos_testkit::Server;

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

/// `(method, path, query, extra headers)` of requests that must be refused with 501.
/// One request: method, path, query, extra headers.
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

fn unimplemented() -> Vec<Case> {
    let copy = vec![("x-cos-copy-source", "b-1.cos.ap-guangzhou.myqcloud.com/obj")];
    let mut v = vec![
        ("PUT", "/copy", "rename", copy.clone()),
        ("PUT", "/obj", "partNumber=1&uploadId=UPLOAD&symlink", copy),
        ("POST", "/obj", "restore", vec![]),
        ("POST", "/obj", "select&select-type=2", vec![]),
        ("PUT", "/obj", "rename", vec![]),
        ("PUT", "/obj", "symlink", vec![]),
        ("GET", "/obj", "symlink", vec![]),
        ("PUT", "/obj", "retention", vec![]),
        ("GET", "/obj", "torrent", vec![]),
        ("GET", "/obj", "ci-process=videoinfo", vec![]),
        ("GET", "/obj", "versionId=MTg0NDUx", vec![]),
        ("HEAD", "/obj", "versionId=MTg0NDUx", vec![]),
        ("PUT", "/obj", "unknownparam=1", vec![]),
        ("DELETE", "/obj", "versionId=MTg0NDUx", vec![]),
        ("PATCH", "/obj", "", vec![]),
        ("GET", "/", "versions", vec![]),
        ("GET", "/", "location", vec![]),
        // GET and PUT Bucket ACL are implemented (tests/subresources.rs); COS has no DELETE.
        ("DELETE", "/", "acl", vec![]),
    ];
    // `cors` and OPTIONS preflights are implemented (tests/cors.rs).
    for sub in [
        "versioning",
        "lifecycle",
        "policy",
        "website",
        "referer",
        "logging",
        "inventory",
        "replication",
        "domain",
        "object-lock",
        "intelligenttiering",
        "encryption",
        "accelerate",
        "origin",
        "notification",
        "tagging",
    ] {
        for m in ["GET", "PUT", "DELETE"] {
            v.push((m, "/", sub, vec![]));
        }
    }
    v
}

#[test]
fn every_unimplemented_request_answers_501_and_changes_nothing() {
    let s = Server::builder().start_blocking().unwrap();
    let c = creds(&s);
    let r = send(s.addr(), &c, Req::new("PUT", "/obj").body("original"));
    assert_eq!(r.status, 200);
    let r = send(s.addr(), &c, Req::new("POST", "/obj").query("uploads"));
    let id = r.xml("UploadId").unwrap();
    let before = s.object("obj").unwrap();
    for (method, path, query, headers) in unimplemented() {
        let query = query.replace("UPLOAD", &id);
        let mut req = Req::new(method, path).query(&query);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        if method == "PUT" || method == "POST" {
            req = req.body("<x/>");
        }
        let r = send(s.addr(), &c, req);
        let what = format!("{method} {path}?{query} {headers:?}");
        assert_eq!(r.status, 501, "{what}: {}", r.text());
        if method != "HEAD" {
            assert_eq!(r.code(), "NotImplemented", "{what}");
            assert!(r.text().starts_with("<?xml"), "{what}");
            assert!(r.xml("RequestId").is_some(), "{what}");
            assert_ne!(r.body, b"original", "{what}");
        }
        assert_eq!(r.header("content-type"), Some("application/xml"), "{what}");
    }
    // Nothing changed: the object, no new object, the upload without parts.
    let after = s.object("obj").unwrap();
    assert_eq!(after.data, before.data);
    assert_eq!(after.etag, before.etag);
    assert_eq!(s.keys(), vec!["obj".to_string()]);
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/obj").query(&format!("uploadId={id}")),
    );
    assert_eq!(r.status, 200);
    assert!(r.xml("Part").is_none(), "{}", r.text());
    assert!(s.counters().get("Unsupported") >= unimplemented().len() as u64);
}

#[test]
fn the_501_message_names_the_sub_resource() {
    let s = Server::builder().start_blocking().unwrap();
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("GET", "/obj").query("torrent"),
    );
    assert_eq!(r.status, 501);
    assert!(
        r.xml("Message").unwrap().contains("?torrent"),
        "{}",
        r.text()
    );
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/obj")
            .query("rename")
            .header("x-cos-copy-source", "b-1.cos.ap-guangzhou.myqcloud.com/a")
            .body(""),
    );
    assert!(r.xml("Message").unwrap().contains("x-cos-copy-source"));
}
