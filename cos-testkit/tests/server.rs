//! The local server over raw HTTP: operations, signature checks, errors, faults, counters, persistence, sink.

mod common;

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use common::*;
use cos_core::auth::{presign, KeyTime};
use cos_core::checksum::{content_md5, md5_hex, Crc64};
use cos_core::Credentials;
use cos_testkit::{Fault, FaultPlan, ObjectType, Server};

fn start() -> Server {
    Server::builder().start_blocking().unwrap()
}

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

fn put(s: &Server, key_path: &str, body: &[u8]) -> Resp {
    send(s.addr(), &creds(s), Req::new("PUT", key_path).body(body))
}

#[test]
fn put_head_get_round_trip() {
    let s = start();
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/dir%20a/%E6%B5%8B.txt")
            .header("content-type", "text/plain")
            .header("content-md5", &content_md5(&data))
            .header("x-cos-meta-author", "jane")
            .header("x-cos-storage-class", "STANDARD_IA")
            .body(data.clone()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("ETag").unwrap(), format!("\"{}\"", md5_hex(&data)));
    // Header names are written as COS writes them.
    assert!(r.headers.iter().any(|(k, _)| k == "ETag"));
    assert!(r.headers.iter().any(|(k, _)| k == "x-cos-request-id"));
    assert!(r.headers.iter().any(|(k, _)| k == "Server"));
    assert_eq!(
        r.header("x-cos-hash-crc64ecma").unwrap(),
        Crc64::checksum(&data).to_string()
    );

    let h = send(
        s.addr(),
        &creds(&s),
        Req::new("HEAD", "/dir%20a/%E6%B5%8B.txt"),
    );
    assert_eq!(h.status, 200);
    assert_eq!(h.header("Content-Length"), Some("5000"));
    assert_eq!(h.header("Content-Type"), Some("text/plain"));
    assert_eq!(h.header("x-cos-meta-author"), Some("jane"));
    assert_eq!(h.header("x-cos-storage-class"), Some("STANDARD_IA"));
    assert_eq!(h.header("x-cos-object-type"), Some("normal"));
    assert!(h.header("Last-Modified").unwrap().ends_with("GMT"));
    assert!(h.body.is_empty());

    let g = send(
        s.addr(),
        &creds(&s),
        Req::new("GET", "/dir%20a/%E6%B5%8B.txt"),
    );
    assert_eq!(g.status, 200);
    assert_eq!(g.body, data);

    let g = send(
        s.addr(),
        &creds(&s),
        Req::new("GET", "/dir%20a/%E6%B5%8B.txt").header("range", "bytes=10-19"),
    );
    assert_eq!(g.status, 206);
    assert_eq!(g.body, &data[10..20]);
    assert_eq!(g.header("Content-Range"), Some("bytes 10-19/5000"));

    let stored = s.object("dir a/测.txt").unwrap();
    assert_eq!(stored.data.as_deref(), Some(&data[..]));
    assert_eq!(
        stored.metadata.get("author").map(String::as_str),
        Some("jane")
    );
    assert_eq!(stored.object_type, ObjectType::Normal);

    // STANDARD objects carry no storage-class header.
    put(&s, "/plain", b"x");
    let h = send(s.addr(), &creds(&s), Req::new("HEAD", "/plain"));
    assert_eq!(h.header("x-cos-storage-class"), None);
}

#[test]
fn wrong_secret_shows_string_to_sign() {
    let s = start();
    let bad = Credentials::new(s.secret_id(), "not-the-key");
    let r = send(s.addr(), &bad, Req::new("PUT", "/a").body("x"));
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "SignatureDoesNotMatch");
    assert!(r.xml("StringToSign").unwrap().starts_with("sha1\n"));
    assert!(r.xml("FormatString").unwrap().starts_with("put\n/a\n"));
    assert!(r.xml("RequestId").is_some_and(|v| !v.is_empty()));
    assert!(r.header("x-cos-trace-id").is_some());
    assert!(s.object("a").is_none());
}

#[test]
fn unknown_access_key_and_missing_signature() {
    let s = start();
    let other = Credentials::new("AKIDOTHER", s.secret_key());
    let r = send(s.addr(), &other, Req::new("GET", "/a"));
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidAccessKeyId"));
    let r = raw(
        s.addr(),
        b"GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
}

#[test]
fn expired_and_future_key_times() {
    let s = start();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let req = Req::new("GET", "/a");
    let past = KeyTime {
        start: now - 7200,
        end: now - 3600,
    };
    let h = sign(&req, &s.addr().to_string(), &creds(&s), past);
    let r = raw(s.addr(), &serialize(&h, b""), false).unwrap();
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    assert_eq!(r.xml("Message").as_deref(), Some("Request has expired"));
    let future = KeyTime {
        start: now + 3600,
        end: now + 7200,
    };
    let h = sign(&req, &s.addr().to_string(), &creds(&s), future);
    let r = raw(s.addr(), &serialize(&h, b""), false).unwrap();
    assert_eq!((r.status, r.code().as_str()), (403, "RequestTimeTooSkewed"));
    assert!(r.header("Date").is_some());
}

#[test]
fn tampered_header_and_param_are_rejected() {
    let s = start();
    let c = creds(&s);
    put(&s, "/t", b"hello");
    // Header changed after signing.
    let req = Req::new("PUT", "/t")
        .header("x-cos-meta-a", "1")
        .body("hello");
    let mut h = sign(&req, &s.addr().to_string(), &c, now_key_time());
    h.headers_mut().insert("x-cos-meta-a", "2".parse().unwrap());
    let r = raw(s.addr(), &serialize(&h, b"hello"), false).unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch", "{}", r.text());
    assert!(r.xml("FormatString").unwrap().contains("x-cos-meta-a=2"));
    // Query parameter changed after signing.
    let req = Req::new("GET", "/t").query("response-content-type=text%2Fplain");
    let h = sign(&req, &s.addr().to_string(), &c, now_key_time());
    let auth = h.headers()["authorization"].to_str().unwrap().to_string();
    let tampered = format!(
        "GET /t?response-content-type=text%2Fhtml HTTP/1.1\r\nhost: {}\r\nauthorization: {auth}\r\nconnection: close\r\n\r\n",
        s.addr()
    );
    let r = raw(s.addr(), tampered.as_bytes(), false).unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch");
    // Untampered, the signed parameter is honoured.
    let r = raw(s.addr(), &serialize(&h, b""), false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    // Only what the client listed is verified: an extra, unsigned parameter is not covered.
    let h = sign(
        &Req::new("GET", "/t"),
        &s.addr().to_string(),
        &c,
        now_key_time(),
    );
    let auth = h.headers()["authorization"].to_str().unwrap().to_string();
    let extra = format!(
        "GET /t?x-unsigned=1 HTTP/1.1\r\nhost: {}\r\nauthorization: {auth}\r\nconnection: close\r\n\r\n",
        s.addr()
    );
    let r = raw(s.addr(), extra.as_bytes(), false).unwrap();
    assert_eq!(r.body, b"hello");
}

#[test]
fn host_signed_with_or_without_port() {
    let s = start();
    let c = creds(&s);
    let req = Req::new("PUT", "/h").body("x");
    // Signed as the Python SDK does: without the port, sent with it.
    let mut h = sign(&req, "127.0.0.1", &c, now_key_time());
    h.headers_mut()
        .insert("host", s.addr().to_string().parse().unwrap());
    let r = raw(s.addr(), &serialize(&h, b"x"), false).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // Signed for another host: rejected.
    let mut h = sign(&req, "evil.example.com", &c, now_key_time());
    h.headers_mut()
        .insert("host", s.addr().to_string().parse().unwrap());
    let r = raw(s.addr(), &serialize(&h, b"x"), false).unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch");
}

#[test]
fn presigned_urls() {
    let s = start();
    let c = creds(&s);
    let host = s.addr().to_string();
    let put_req = http::Request::put(format!("http://{host}/pre%20signed.txt"))
        .body(())
        .unwrap();
    let url = presign(&put_req, &c, now_key_time()).unwrap();
    let pq = url.path_and_query().unwrap().as_str().to_string();
    let r = raw(
        s.addr(),
        format!("PUT {pq} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc").as_bytes(),
        false,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.object("pre signed.txt").unwrap().data.unwrap(), b"abc");

    let get_req = http::Request::get(format!("http://{host}/pre%20signed.txt"))
        .body(())
        .unwrap();
    let url = presign(&get_req, &c, now_key_time()).unwrap();
    let pq = url.path_and_query().unwrap().as_str().to_string();
    let r = raw(
        s.addr(),
        format!("GET {pq} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
        false,
    )
    .unwrap();
    assert_eq!(r.body, b"abc");

    // Another key with the same signature: rejected.
    let other = pq.replace("/pre%20signed.txt", "/other.txt");
    let r = raw(
        s.addr(),
        format!("GET {other} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
        false,
    )
    .unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch");

    // Expired presigned URL.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let url = presign(
        &get_req,
        &c,
        KeyTime {
            start: now - 100,
            end: now - 50,
        },
    )
    .unwrap();
    let pq = url.path_and_query().unwrap().as_str().to_string();
    let r = raw(
        s.addr(),
        format!("GET {pq} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
        false,
    )
    .unwrap();
    assert_eq!(
        (r.status, r.xml("Message").unwrap_or_default().as_str()),
        (403, "Request has expired")
    );

    // Signed parameters of a presigned URL are checked too.
    let get_req = http::Request::get(format!(
        "http://{host}/pre%20signed.txt?response-content-type=a"
    ))
    .body(())
    .unwrap();
    let url = presign(&get_req, &c, now_key_time()).unwrap();
    let pq = url
        .path_and_query()
        .unwrap()
        .as_str()
        .replace("response-content-type=a", "response-content-type=b");
    let r = raw(
        s.addr(),
        format!("GET {pq} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
        false,
    )
    .unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch");
}

#[test]
fn security_token_when_required() {
    let s = Server::builder()
        .security_token("tok-1")
        .start_blocking()
        .unwrap();
    let r = send(s.addr(), &creds(&s), Req::new("PUT", "/a").body("x"));
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidAccessKeyId"));
    let wrong = creds(&s).with_security_token("tok-2");
    let r = send(s.addr(), &wrong, Req::new("PUT", "/a").body("x"));
    assert_eq!(r.code(), "InvalidAccessKeyId");
    let r = send(s.addr(), &s.credentials(), Req::new("PUT", "/a").body("x"));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn object_errors() {
    let s = start();
    let c = creds(&s);
    let r = send(s.addr(), &c, Req::new("GET", "/missing"));
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    assert!(r.xml("Resource").unwrap().ends_with("/missing"));
    let r = send(s.addr(), &c, Req::new("HEAD", "/missing"));
    assert_eq!(r.status, 404);
    assert!(r.header("x-cos-request-id").is_some());

    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/md5")
            .header("content-md5", &content_md5(b"other"))
            .body("body"),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDigest"));
    assert!(s.object("md5").is_none());

    put(&s, "/once", b"1");
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/once")
            .header("x-cos-forbid-overwrite", "true")
            .body("2"),
    );
    assert_eq!((r.status, r.code().as_str()), (409, "FileAlreadyExists"));
    assert_eq!(s.object("once").unwrap().data.unwrap(), b"1");

    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/tl")
            .header("x-cos-traffic-limit", "100")
            .body("x"),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));

    // A virtual host naming another bucket.
    let req = Req::new("GET", "/once");
    let h = sign(
        &req,
        "otherbucket-1250000000.cos.ap-guangzhou.myqcloud.com",
        &c,
        now_key_time(),
    );
    let r = raw(s.addr(), &serialize(&h, b""), false).unwrap();
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchBucket"));
    // Our own bucket by virtual host.
    let h = sign(
        &req,
        &format!("{}.cos.ap-guangzhou.myqcloud.com", s.bucket()),
        &c,
        now_key_time(),
    );
    let r = raw(s.addr(), &serialize(&h, b""), false).unwrap();
    assert_eq!(r.body, b"1");
}

#[test]
fn append_object() {
    let s = start();
    let c = creds(&s);
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/log")
            .query("append&position=0")
            .body("hello"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-cos-next-append-position"), Some("5"));
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/log")
            .query("append&position=5")
            .body(" world"),
    );
    assert_eq!(r.header("x-cos-next-append-position"), Some("11"));
    assert_eq!(
        r.header("x-cos-hash-crc64ecma").unwrap(),
        Crc64::checksum(b"hello world").to_string()
    );
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/log")
            .query("append&position=3")
            .body("x"),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "PositionNotEqualToLength")
    );
    put(&s, "/normal", b"abc");
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/normal")
            .query("append&position=3")
            .body("x"),
    );
    assert_eq!((r.status, r.code().as_str()), (409, "ObjectNotAppendable"));
    let o = s.object("log").unwrap();
    assert_eq!(o.data.unwrap(), b"hello world");
    assert_eq!(o.object_type, ObjectType::Appendable);
    assert_eq!(o.etag, format!("\"{}\"", md5_hex(b"hello world")));
    let h = send(s.addr(), &c, Req::new("HEAD", "/log"));
    assert_eq!(h.header("x-cos-object-type"), Some("appendable"));
}

fn initiate(s: &Server, key_path: &str) -> String {
    let r = send(
        s.addr(),
        &creds(s),
        Req::new("POST", key_path).query("uploads"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.xml("UploadId").unwrap()
}

fn upload_part(s: &Server, key_path: &str, id: &str, n: u32, data: &[u8]) -> String {
    let r = send(
        s.addr(),
        &creds(s),
        Req::new("PUT", key_path)
            .query(&format!("partNumber={n}&uploadId={id}"))
            .body(data),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-cos-hash-crc64ecma").unwrap(),
        Crc64::checksum(data).to_string()
    );
    r.header("ETag").unwrap().to_string()
}

fn complete_body(parts: &[(u32, &str)]) -> String {
    let mut b = String::from("<CompleteMultipartUpload>");
    for (n, e) in parts {
        b += &format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            e.replace('"', "&quot;")
        );
    }
    b + "</CompleteMultipartUpload>"
}

#[test]
fn multipart_flow_and_errors() {
    let s = start();
    let c = creds(&s);
    let id = initiate(&s, "/mp.bin");
    assert_eq!(
        s.multipart_uploads(),
        vec![("mp.bin".to_string(), id.clone())]
    );
    let p1 = vec![1u8; 1 << 20];
    let p2 = vec![2u8; 1 << 20];
    let p3 = b"tail".to_vec();
    let e1 = upload_part(&s, "/mp.bin", &id, 1, &p1);
    let e2 = upload_part(&s, "/mp.bin", &id, 2, &p2);
    let e3 = upload_part(&s, "/mp.bin", &id, 3, &p3);

    // List Parts pagination.
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/mp.bin").query(&format!("uploadId={id}&max-parts=2")),
    );
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextPartNumberMarker").as_deref(), Some("2"));
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/mp.bin")
            .query(&format!("uploadId={id}&max-parts=2&part-number-marker=2")),
    );
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    assert_eq!(r.xml("PartNumber").as_deref(), Some("3"));
    assert_eq!(r.xml("Size").as_deref(), Some("4"));

    let complete = |parts: &[(u32, &str)]| {
        send(
            s.addr(),
            &c,
            Req::new("POST", "/mp.bin")
                .query(&format!("uploadId={id}"))
                .header("content-type", "application/xml")
                .body(complete_body(parts)),
        )
    };
    let r = complete(&[(1, &e1), (3, &e3), (2, &e2)]);
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidPartOrder"));
    let r = complete(&[(1, &e1), (2, "\"00000000000000000000000000000000\"")]);
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidPart"));
    let r = complete(&[(1, &e1), (3, &e3), (4, &e3)]);
    assert_eq!(r.code(), "InvalidPart");
    let r = complete(&[(3, &e3), (4, &e3)]);
    assert_eq!(r.code(), "InvalidPart");
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/mp.bin")
            .query(&format!("uploadId={id}"))
            .body("<nope"),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "MalformedXML"));

    let r = complete(&[(1, &e1), (2, &e2), (3, &e3)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let whole: Vec<u8> = [p1.clone(), p2.clone(), p3.clone()].concat();
    let mut md5s = Vec::new();
    for p in [&p1, &p2, &p3] {
        md5s.extend_from_slice(&cos_core::checksum::BodyDigest::of(p).md5.unwrap());
    }
    let etag = format!("\"{}-3\"", md5_hex(&md5s));
    assert_eq!(r.xml("ETag").unwrap(), etag.replace('"', "&quot;"));
    assert_eq!(
        r.header("x-cos-hash-crc64ecma").unwrap(),
        Crc64::checksum(&whole).to_string()
    );
    let o = s.object("mp.bin").unwrap();
    assert_eq!(o.data.unwrap(), whole);
    assert_eq!(o.etag, etag);
    assert!(s.multipart_uploads().is_empty());

    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/mp.bin")
            .query(&format!("partNumber=1&uploadId={id}"))
            .body("x"),
    );
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));

    // EntityTooSmall, part number range, abort.
    let id = initiate(&s, "/small");
    let a = upload_part(&s, "/small", &id, 1, b"aa");
    let b = upload_part(&s, "/small", &id, 2, b"bb");
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/small")
            .query(&format!("uploadId={id}"))
            .body(complete_body(&[(1, &a), (2, &b)])),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "EntityTooSmall"));
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/small")
            .query(&format!("partNumber=10001&uploadId={id}"))
            .body("x"),
    );
    assert_eq!(r.code(), "InvalidArgument");
    let r = send(
        s.addr(),
        &c,
        Req::new("DELETE", "/small").query(&format!("uploadId={id}")),
    );
    assert_eq!(r.status, 204);
    let r = send(
        s.addr(),
        &c,
        Req::new("DELETE", "/small").query(&format!("uploadId={id}")),
    );
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));
}

#[test]
fn forbid_overwrite_on_complete() {
    let s = start();
    let c = creds(&s);
    let id = initiate(&s, "/k");
    let e = upload_part(&s, "/k", &id, 1, b"new");
    put(&s, "/k", b"old");
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/k")
            .query(&format!("uploadId={id}"))
            .header("x-cos-forbid-overwrite", "true")
            .body(complete_body(&[(1, &e)])),
    );
    assert_eq!((r.status, r.code().as_str()), (409, "FileAlreadyExists"));
    assert_eq!(s.object("k").unwrap().data.unwrap(), b"old");
    assert_eq!(
        s.multipart_uploads().len(),
        1,
        "the upload survives a refused Complete"
    );
}

#[test]
fn list_multipart_uploads_pages_and_prefixes() {
    let s = start();
    let c = creds(&s);
    let mut ids = Vec::new();
    for k in ["a/1", "a/2", "b", "c"] {
        ids.push(initiate(&s, &format!("/{k}")));
    }
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("uploads&max-uploads=2"),
    );
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextKeyMarker").as_deref(), Some("a/2"));
    let marker = r.xml("NextUploadIdMarker").unwrap();
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query(&format!(
            "uploads&max-uploads=2&key-marker=a%2F2&upload-id-marker={marker}"
        )),
    );
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    assert!(r.text().contains("<Key>b</Key>") && r.text().contains("<Key>c</Key>"));
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("uploads&delimiter=%2F"),
    );
    assert!(
        r.text()
            .contains("<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("<Key>a/1</Key>"));
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("uploads&prefix=a%2F&encoding-type=url"),
    );
    assert!(r.text().contains("<Key>a%2F1</Key>"), "{}", r.text());
    assert!(!r.text().contains("<Key>b</Key>"));
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("uploads&max-uploads=0"),
    );
    assert_eq!(r.code(), "InvalidArgument");
}

#[test]
fn counters_count_operations() {
    let s = start();
    put(&s, "/a", b"1");
    put(&s, "/b", b"2");
    send(s.addr(), &creds(&s), Req::new("HEAD", "/a"));
    send(s.addr(), &creds(&s), Req::new("GET", "/zzz"));
    let c = s.counters();
    assert_eq!(c.get("PutObject"), 2);
    assert_eq!(c.get("HeadObject"), 1);
    assert_eq!(c.get("GetObject"), 1);
    assert_eq!(c.get("UploadPart"), 0);
    assert_eq!(c.total, 4);
}

/// Sends `n` sequential PUTs and returns each outcome (status, or 0 for a dropped connection).
fn outcomes(s: &Server, n: usize) -> Vec<u16> {
    (0..n)
        .map(|i| {
            let req = Req::new("PUT", &format!("/f{i}")).body("x");
            let h = sign(&req, &s.addr().to_string(), &creds(s), now_key_time());
            raw(s.addr(), &serialize(&h, b"x"), false).map_or(0, |r| r.status)
        })
        .collect()
}

#[test]
fn faults_are_deterministic_by_seed() {
    let spec = "500:0.2,503:0.1,reset:0.1,html502:0.1";
    let run = |seed| {
        let s = Server::builder()
            .faults(FaultPlan::parse(spec).unwrap().seed(seed))
            .start_blocking()
            .unwrap();
        let o = outcomes(&s, 40);
        let log: Vec<(u64, Fault)> = s
            .faults()
            .injected()
            .into_iter()
            .map(|f| (f.request, f.fault))
            .collect();
        (o, log)
    };
    let (a, log_a) = run(7);
    let (b, log_b) = run(7);
    let (c, _) = run(8);
    assert_eq!(a, b);
    assert_eq!(log_a, log_b);
    assert_ne!(a, c);
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
    for (i, status) in a.iter().enumerate() {
        let injected = log_a
            .iter()
            .find(|(r, _)| *r == i as u64 + 1)
            .map(|(_, f)| f.clone());
        let expected = match injected {
            None => 200,
            Some(Fault::Status(code)) => code,
            Some(Fault::Reset) => 0,
            Some(Fault::Html502) => 502,
            Some(f) => panic!("unexpected {f:?}"),
        };
        assert_eq!(*status, expected, "request {}", i + 1);
    }
}

#[test]
fn fail_nth_and_fault_kinds() {
    let s = start();
    let id = initiate(&s, "/m");
    s.faults().fail_nth("UploadPart", 2, Fault::Status(503));
    let part = |n: u32| {
        let req = Req::new("PUT", "/m")
            .query(&format!("partNumber={n}&uploadId={id}"))
            .body("x");
        let h = sign(&req, &s.addr().to_string(), &creds(&s), now_key_time());
        raw(s.addr(), &serialize(&h, b"x"), false)
    };
    assert_eq!(part(1).unwrap().status, 200);
    let r = part(2).unwrap();
    assert_eq!((r.status, r.code().as_str()), (503, "SlowDown"));
    assert!(r.header("x-cos-request-id").is_some());
    assert_eq!(part(2).unwrap().status, 200, "fires once");

    s.faults().fail_nth("PutObject", 1, Fault::Reset);
    let req = Req::new("PUT", "/r").body("x");
    let h = sign(&req, &s.addr().to_string(), &creds(&s), now_key_time());
    let r = raw(s.addr(), &serialize(&h, b"x"), false);
    assert!(r.is_err(), "{r:?}");
    assert!(s.object("r").is_none());

    s.faults().fail_nth("GetObject", 1, Fault::Html502);
    let r = send(s.addr(), &creds(&s), Req::new("GET", "/x"));
    assert_eq!(r.status, 502);
    assert!(r.text().contains("<html>"));
    assert_eq!(r.header("Content-Type"), Some("text/html"));

    put(&s, "/big", &[7u8; 1000]);
    s.faults().fail_nth("GetObject", 1, Fault::TruncatedBody);
    let r = send(s.addr(), &creds(&s), Req::new("GET", "/big"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 500);
    assert_eq!(r.missing, 500);

    s.faults()
        .fail_nth("HeadObject", 1, Fault::Stall(Duration::from_millis(300)));
    let t = Instant::now();
    let r = send(s.addr(), &creds(&s), Req::new("HEAD", "/big"));
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    s.faults().fail_nth("PutObject", 1, Fault::SlowDown);
    assert_eq!(put(&s, "/sd", b"x").code(), "SlowDown");
    assert!(s.object("sd").is_none());
    let log = s.faults().injected();
    assert_eq!(log.len(), 6);
    assert_eq!(log[0].operation, "UploadPart");
}

#[test]
fn data_dir_survives_restart() {
    let dir = std::env::temp_dir().join(format!("cos-testkit-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let big: Vec<u8> = (0..(1u32 << 20) + 3)
        .map(|i| (i * 31 % 256) as u8)
        .collect();
    let (id, e1) = {
        let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
        assert_eq!(put(&s, "/kept", &big).status, 200);
        send(
            s.addr(),
            &creds(&s),
            Req::new("POST", "/app")
                .query("append&position=0")
                .body("ab"),
        );
        let id = initiate(&s, "/later");
        let e1 = upload_part(&s, "/later", &id, 1, &big);
        s.stop();
        (id, e1)
    };
    let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
    let g = send(s.addr(), &creds(&s), Req::new("GET", "/kept"));
    assert_eq!(g.body, big);
    assert_eq!(g.header("ETag").unwrap(), format!("\"{}\"", md5_hex(&big)));
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("POST", "/app")
            .query("append&position=2")
            .body("cd"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.object("app").unwrap().data.unwrap(), b"abcd");
    assert_eq!(
        s.multipart_uploads(),
        vec![("later".to_string(), id.clone())]
    );
    let e2 = upload_part(&s, "/later", &id, 2, b"end");
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("POST", "/later")
            .query(&format!("uploadId={id}"))
            .body(complete_body(&[(1, &e1), (2, &e2)])),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.object("later").unwrap().data.unwrap(),
        [big.clone(), b"end".to_vec()].concat()
    );
    s.stop();
    // Nothing left over: one blob per object, no temp files.
    let blobs = std::fs::read_dir(dir.join("blobs")).unwrap().count();
    assert_eq!(blobs, 3);
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sink_mode_checks_then_discards() {
    let s = Server::builder().sink(true).start_blocking().unwrap();
    let data = vec![9u8; 100_000];
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/s")
            .header("content-md5", &content_md5(&data))
            .body(data.clone()),
    );
    assert_eq!(r.status, 200);
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/s2")
            .header("content-md5", &content_md5(b"no"))
            .body(data.clone()),
    );
    assert_eq!(r.code(), "InvalidDigest");
    let o = s.object("s").unwrap();
    assert_eq!(
        (o.size, o.crc64, o.data),
        (100_000, Crc64::checksum(&data), None)
    );
    let h = send(s.addr(), &creds(&s), Req::new("HEAD", "/s"));
    assert_eq!(h.header("Content-Length"), Some("100000"));
    let g = send(s.addr(), &creds(&s), Req::new("GET", "/s"));
    assert_eq!(g.status, 501);
}

fn post_form(s: &Server, fields: &[(&str, String)], file: &[u8]) -> Resp {
    let b = "----cosboundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: multipart/form-data; boundary={b}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        s.addr(),
        body.len()
    );
    raw(s.addr(), &[head.into_bytes(), body].concat(), false).unwrap()
}

fn form_fields(
    s: &Server,
    secret: &str,
    policy: &str,
    kt: KeyTime,
    extra: &[(&str, &str)],
) -> Vec<(&'static str, String)> {
    use hmac::{Hmac, Mac};
    use sha1::{Digest, Sha1};
    let sign_key = cos_core::auth::sign_key(secret, &kt);
    let sts = cos_core::checksum::hex(&Sha1::digest(policy.as_bytes()));
    let mut mac = Hmac::<Sha1>::new_from_slice(sign_key.as_bytes()).unwrap();
    mac.update(sts.as_bytes());
    let sig = cos_core::checksum::hex(&mac.finalize().into_bytes());
    let mut v: Vec<(&'static str, String)> = vec![
        ("key", "uploads/${filename}".into()),
        (
            "policy",
            base64::engine::general_purpose::STANDARD.encode(policy),
        ),
        ("q-sign-algorithm", "sha1".into()),
        ("q-ak", s.secret_id().into()),
        ("q-key-time", kt.to_string()),
        ("q-signature", sig),
    ];
    for (k, val) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        v.push((k, val.to_string()));
    }
    v
}

fn policy(s: &Server, kt: KeyTime, expiration: &str, range: (u64, u64)) -> String {
    format!(
        r#"{{"expiration":"{expiration}","conditions":[{{"q-sign-algorithm":"sha1"}},{{"q-ak":"{}"}},{{"q-sign-time":"{kt}"}},{{"bucket":"{}"}},["starts-with","$key","uploads/"],["content-length-range",{},{}]]}}"#,
        s.secret_id(),
        s.bucket(),
        range.0,
        range.1
    )
}

#[test]
fn post_object_form_upload() {
    let s = start();
    let kt = now_key_time();
    let p = policy(&s, kt, "2099-01-01T00:00:00.000Z", (1, 100));
    let r = post_form(
        &s,
        &form_fields(&s, s.secret_key(), &p, kt, &[("x-cos-meta-a", "b")]),
        b"form body",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let o = s.object("uploads/up.txt").unwrap();
    assert_eq!(o.data.unwrap(), b"form body");
    assert_eq!(o.content_type, "text/plain");
    assert_eq!(o.metadata.get("a").map(String::as_str), Some("b"));
    assert_eq!(
        r.header("ETag").unwrap(),
        format!("\"{}\"", md5_hex(b"form body"))
    );

    let r = post_form(
        &s,
        &form_fields(
            &s,
            s.secret_key(),
            &p,
            kt,
            &[("success_action_status", "201")],
        ),
        b"x",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.xml("Key").as_deref(), Some("uploads/up.txt"));

    let r = post_form(&s, &form_fields(&s, "wrong", &p, kt, &[]), b"x");
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    assert_eq!(
        r.xml("FormatString").map(|f| f.replace("&quot;", "\"")),
        Some(p.clone())
    );
    assert_eq!(
        r.xml("StringToSign"),
        Some(cos_core::checksum::hex(
            &<sha1::Sha1 as sha1::Digest>::digest(p.as_bytes())
        ))
    );

    // The protocol requires a condition on the bucket (and on the key).
    let unpinned = p.replace(&format!(r#"{{"bucket":"{}"}},"#, s.bucket()), "");
    assert_ne!(unpinned, p);
    let r = post_form(
        &s,
        &form_fields(&s, s.secret_key(), &unpinned, kt, &[]),
        b"x",
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidPolicyDocument")
    );

    let r = post_form(
        &s,
        &form_fields(&s, s.secret_key(), &p, kt, &[]),
        &[0u8; 101],
    );
    assert_eq!((r.status, r.code().as_str()), (400, "EntityTooLarge"));
    let r = post_form(&s, &form_fields(&s, s.secret_key(), &p, kt, &[]), b"");
    assert_eq!((r.status, r.code().as_str()), (400, "EntityTooSmall"));

    let expired = policy(&s, kt, "2001-01-01T00:00:00Z", (1, 100));
    let r = post_form(
        &s,
        &form_fields(&s, s.secret_key(), &expired, kt, &[]),
        b"x",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));

    let mut f = form_fields(&s, s.secret_key(), &p, kt, &[]);
    f[0].1 = "elsewhere/${filename}".into();
    let r = post_form(&s, &f, b"x");
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    assert!(s.object("elsewhere/up.txt").is_none());
    assert_eq!(s.counters().get("PostObject"), 8);
}

#[test]
fn expect_100_continue() {
    use std::io::{Read, Write};
    let s = start();
    let body = vec![5u8; 300_000];
    let req = Req::new("PUT", "/cont")
        .header("expect", "100-continue")
        .body(body.clone());
    let h = sign(&req, &s.addr().to_string(), &creds(&s), now_key_time());
    let full = serialize(&h, &body);
    let head_len = full.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut conn = std::net::TcpStream::connect(s.addr()).unwrap();
    conn.write_all(&full[..head_len]).unwrap();
    let mut buf = [0u8; 25];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(&body).unwrap();
    let mut rest = String::new();
    conn.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert!(
        rest.contains(&format!("ETag: \"{}\"", md5_hex(&body))),
        "{rest}"
    );
    assert_eq!(s.object("cont").unwrap().size, 300_000);

    // A request refused before its body is never told to continue.
    let bad = Credentials::new(s.secret_id(), "wrong");
    let h = sign(&req, &s.addr().to_string(), &bad, now_key_time());
    let full = serialize(&h, &body);
    let mut conn = std::net::TcpStream::connect(s.addr()).unwrap();
    conn.write_all(&full[..head_len]).unwrap();
    let mut rest = String::new();
    conn.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{rest}");
}

#[test]
fn parts_in_parallel() {
    let s = Server::builder()
        .data_dir(std::env::temp_dir().join(format!("cos-testkit-par-{}", std::process::id())))
        .start_blocking()
        .unwrap();
    let id = initiate(&s, "/par");
    let parts: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; (1 << 20) + i as usize]).collect();
    let etags: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (s, id) = (&s, &id);
                scope.spawn(move || upload_part(s, "/par", id, i as u32 + 1, p))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let list: Vec<(u32, &str)> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u32 + 1, e.as_str()))
        .collect();
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("POST", "/par")
            .query(&format!("uploadId={id}"))
            .body(complete_body(&list)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let whole = parts.concat();
    let o = s.object("par").unwrap();
    assert_eq!(o.crc64, Crc64::checksum(&whole));
    assert!(o.data.unwrap() == whole);
    assert_eq!(s.counters().get("UploadPart"), 8);
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("cos-testkit-par-{}", std::process::id())),
    );
}
