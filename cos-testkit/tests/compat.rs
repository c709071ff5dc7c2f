//! What the official SDKs send and expect, over raw HTTP: keys starting with `/`, empty header values,
//! Content-Type from the key's extension.

mod common;

use common::*;
use cos_core::auth::{get_authorization, SignInput};
use cos_core::Credentials;
use cos_testkit::Server;

fn start() -> Server {
    Server::builder().start_blocking().unwrap()
}

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

/// Sends `method path` signed over exactly `path` (as the Node and Python SDKs sign: the path as sent).
fn send_signed_path(s: &Server, method: &str, path: &str, body: &[u8]) -> Resp {
    let host = s.addr().to_string();
    let len = body.len().to_string();
    let headers = vec![
        ("host".to_string(), host.clone()),
        ("content-length".to_string(), len.clone()),
    ];
    let sig = get_authorization(
        &creds(s),
        &SignInput {
            method,
            key: path,
            query: &[],
            headers: &headers,
            key_time: now_key_time(),
        },
    );
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len}\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
        sig.authorization
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw(s.addr(), &req, method == "HEAD").unwrap()
}

#[test]
fn keys_starting_with_slash_verify_over_the_whole_path() {
    let s = start();
    // The Node SDK sends and signs "/" + key; the Python SDK drops one leading "/" from the key first.
    let r = send_signed_path(&s, "PUT", "////abc/.//def//../../", b"node");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send_signed_path(&s, "PUT", "///abc/.//def//../../", b"python");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.object("///abc/.//def//../../").unwrap().data.as_deref(),
        Some(&b"node"[..])
    );
    assert_eq!(
        s.object("//abc/.//def//../../").unwrap().data.as_deref(),
        Some(&b"python"[..])
    );
    let r = send_signed_path(&s, "GET", "////abc/.//def//../../", b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"node"[..]));
    // Signing the path with one slash fewer is a mismatch, and the FormatString shows the path as sent.
    let r = send_signed_path(&s, "GET", "//x", b"");
    assert_eq!(r.status, 404, "{}", r.text());
    let host = s.addr().to_string();
    let sig = get_authorization(
        &creds(&s),
        &SignInput {
            method: "GET",
            key: "/x",
            query: &[],
            headers: &[("host".to_string(), host.clone())],
            key_time: now_key_time(),
        },
    );
    let req = format!(
        "GET //x HTTP/1.1\r\nhost: {host}\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
        sig.authorization
    );
    let r = raw(s.addr(), req.as_bytes(), false).unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch");
    assert!(r.xml("FormatString").unwrap().starts_with("get\n//x\n"));
    // cos-core's own signer sends and signs the same path.
    let r = send(s.addr(), &creds(&s), Req::new("PUT", "//core").body("c"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.object("/core").is_some());
}

#[test]
fn empty_header_values_are_neither_stored_nor_echoed() {
    let s = start();
    let c = creds(&s);
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/e.txt")
            .header("cache-control", "")
            .header("content-disposition", "")
            .header("content-type", "")
            .body("x"),
    );
    assert_eq!(r.status, 200);
    let h = send(s.addr(), &c, Req::new("HEAD", "/e.txt"));
    assert_eq!(h.header("cache-control"), None);
    assert_eq!(h.header("content-disposition"), None);
    assert_eq!(h.header("content-type"), Some("text/plain"));

    // Initiate with an empty Content-Type: the object gets the default.
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/m.bin")
            .query("uploads")
            .header("content-type", "")
            .header("cache-control", ""),
    );
    let id = r.xml("UploadId").unwrap();
    let p = send(
        s.addr(),
        &c,
        Req::new("PUT", "/m.bin")
            .query(&format!("partNumber=1&uploadId={id}"))
            .body("part"),
    );
    let etag = p.header("etag").unwrap().to_string();
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/m.bin")
            .query(&format!("uploadId={id}"))
            .body(body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let h = send(s.addr(), &c, Req::new("HEAD", "/m.bin"));
    assert_eq!(h.header("content-type"), Some("application/octet-stream"));
    assert_eq!(h.header("cache-control"), None);
}

#[test]
fn content_type_from_the_key_extension() {
    let s = start();
    let c = creds(&s);
    for (key, want) in [
        ("/1.zip", "application/zip"),
        ("/dir/photo.JPG", "image/jpeg"),
        ("/page.html", "text/html"),
        ("/noext", "application/octet-stream"),
    ] {
        let r = send(s.addr(), &c, Req::new("PUT", key).body("x"));
        assert_eq!(r.status, 200);
        let h = send(s.addr(), &c, Req::new("HEAD", key));
        assert_eq!(h.header("content-type"), Some(want), "{key}");
    }
    // A given Content-Type wins.
    send(
        s.addr(),
        &c,
        Req::new("PUT", "/2.zip")
            .header("content-type", "text/plain")
            .body("x"),
    );
    let h = send(s.addr(), &c, Req::new("HEAD", "/2.zip"));
    assert_eq!(h.header("content-type"), Some("text/plain"));
}
