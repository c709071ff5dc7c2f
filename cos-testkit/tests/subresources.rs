//! Object tagging, object and bucket ACL, server-side encryption, Delete Multiple Objects, `sign=` signatures and
//! `x-cos-traffic-limit`, over raw HTTP.

mod common;

use std::time::Instant;

use base64::Engine as _;
use common::*;
use cos_core::auth::{get_authorization, SignInput};
use cos_core::checksum::content_md5;
use cos_core::Credentials;
use cos_testkit::Server;

fn start() -> Server {
    Server::builder().start_blocking().unwrap()
}

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

#[test]
fn tagging_header_count_and_tagging_sub_resource() {
    let s = start();
    let c = creds(&s);
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/t.txt")
            .header("x-cos-tagging", "a=1&b%20c=x%26y")
            .body("x"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let h = send(s.addr(), &c, Req::new("HEAD", "/t.txt"));
    assert_eq!(h.header("x-cos-tagging-count"), Some("2"));
    let g = send(s.addr(), &c, Req::new("GET", "/t.txt").query("tagging"));
    assert_eq!(g.status, 200);
    assert_eq!(
        g.text(),
        "<?xml version='1.0' encoding='utf-8' ?>\n<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b c</Key><Value>x&amp;y</Value></Tag></TagSet></Tagging>"
    );
    let body = "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>";
    let p = send(
        s.addr(),
        &c,
        Req::new("PUT", "/t.txt").query("tagging").body(body),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    // The object itself is untouched.
    assert_eq!(s.object("t.txt").unwrap().data.as_deref(), Some(&b"x"[..]));
    let g = send(s.addr(), &c, Req::new("GET", "/t.txt").query("tagging"));
    assert_eq!(g.xml("Key").as_deref(), Some("k"));
    let h = send(s.addr(), &c, Req::new("HEAD", "/t.txt"));
    assert_eq!(h.header("x-cos-tagging-count"), Some("1"));
    let d = send(s.addr(), &c, Req::new("DELETE", "/t.txt").query("tagging"));
    assert_eq!(d.status, 204);
    assert!(s.object("t.txt").is_some());
    let h = send(s.addr(), &c, Req::new("HEAD", "/t.txt"));
    assert_eq!(h.header("x-cos-tagging-count"), None);

    // Errors: malformed XML, too many tags, missing object.
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/t.txt").query("tagging").body("<Tagging>"),
    );
    assert_eq!(r.code(), "MalformedXML");
    let many: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/u")
            .header("x-cos-tagging", &many.join("&"))
            .body("x"),
    );
    assert_eq!(r.status, 400);
    assert!(s.object("u").is_none());
    let r = send(s.addr(), &c, Req::new("GET", "/none").query("tagging"));
    assert_eq!(r.code(), "NoSuchKey");

    // Tags given on Initiate reach the completed object.
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/m")
            .query("uploads")
            .header("x-cos-tagging", "x=1"),
    );
    let id = r.xml("UploadId").unwrap();
    let p = send(
        s.addr(),
        &c,
        Req::new("PUT", "/m")
            .query(&format!("partNumber=1&uploadId={id}"))
            .body("p"),
    );
    let etag = p.header("etag").unwrap().to_string();
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/m").query(&format!("uploadId={id}")).body(format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        )),
    );
    assert_eq!(r.status, 200);
    let h = send(s.addr(), &c, Req::new("HEAD", "/m"));
    assert_eq!(h.header("x-cos-tagging-count"), Some("1"));
}

#[test]
fn object_acl_from_headers_and_body() {
    let s = start();
    let c = creds(&s);
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/a")
            .header("x-cos-acl", "public-read")
            .header("x-cos-grant-read", "id=\"qcs::cam::uin/1:uin/2\"")
            .body("x"),
    );
    assert_eq!(r.status, 200);
    let g = send(s.addr(), &c, Req::new("GET", "/a").query("acl"));
    assert_eq!(g.status, 200);
    let t = g.text();
    assert!(
        t.contains(
            "<AccessControlPolicy><Owner><ID>qcs::cam::uin/100000000001:uin/100000000001</ID>"
        ),
        "{t}"
    );
    assert!(t.contains("<URI>http://cam.qcloud.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission>"), "{t}");
    assert!(t.contains("<ID>qcs::cam::uin/1:uin/2</ID><DisplayName>2</DisplayName></Grantee><Permission>READ</Permission>"), "{t}");
    assert_eq!(g.header("x-cos-acl"), Some("public-read"));

    let body = "<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>qcs::cam::uin/3:uin/4</ID></Grantee><Permission>WRITE_ACP</Permission></Grant></AccessControlList></AccessControlPolicy>";
    let p = send(s.addr(), &c, Req::new("PUT", "/a").query("acl").body(body));
    assert_eq!(p.status, 200, "{}", p.text());
    let t = send(s.addr(), &c, Req::new("GET", "/a").query("acl")).text();
    assert!(t.contains("<ID>qcs::cam::uin/3:uin/4</ID>"), "{t}");
    assert!(t.contains("<Permission>WRITE_ACP</Permission>"), "{t}");
    assert!(!t.contains("AllUsers"), "{t}");
    // A policy body is the whole list: one grant, no implicit owner grant.
    assert_eq!(t.matches("<Grant>").count(), 1, "{t}");
    assert_eq!(s.object("a").unwrap().data.as_deref(), Some(&b"x"[..]));

    let p = send(
        s.addr(),
        &c,
        Req::new("PUT", "/a")
            .query("acl")
            .header("x-cos-acl", "private")
            .body(""),
    );
    assert_eq!(p.status, 200);
    let p = send(
        s.addr(),
        &c,
        Req::new("PUT", "/a")
            .query("acl")
            .header("x-cos-acl", "everyone")
            .body(""),
    );
    assert_eq!(p.code(), "InvalidArgument");
    let r = send(s.addr(), &c, Req::new("GET", "/none").query("acl"));
    assert_eq!(r.code(), "NoSuchKey");
}

/// PUT / GET Bucket ACL: private with the owner's FULL_CONTROL until set, then what the headers or a policy
/// body say; kept across a restart on the same data directory; a bad canned ACL or an empty PUT refused.
#[test]
fn bucket_acl_from_headers_and_body_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("cos-testkit-bucket-acl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
    let c = creds(&s);
    let t = send(s.addr(), &c, Req::new("GET", "/").query("acl")).text();
    assert_eq!(t.matches("<Grant>").count(), 1, "{t}");
    assert!(t.contains("<Permission>FULL_CONTROL</Permission>"), "{t}");
    let p = send(
        s.addr(),
        &c,
        Req::new("PUT", "/")
            .query("acl")
            .header("x-cos-acl", "public-read")
            .header("x-cos-grant-write", "id=\"qcs::cam::uin/1:uin/2\"")
            .body(""),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    let g = send(s.addr(), &c, Req::new("GET", "/").query("acl"));
    assert_eq!(g.header("x-cos-acl"), Some("public-read"));
    let t = g.text();
    assert!(t.contains("<URI>http://cam.qcloud.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission>"), "{t}");
    assert!(t.contains("<ID>qcs::cam::uin/1:uin/2</ID><DisplayName>2</DisplayName></Grantee><Permission>WRITE</Permission>"), "{t}");
    // The bucket's ACL is not an object's.
    let r = send(s.addr(), &c, Req::new("PUT", "/o").body("x"));
    assert_eq!(r.status, 200);
    let t = send(s.addr(), &c, Req::new("GET", "/o").query("acl")).text();
    assert!(!t.contains("AllUsers"), "{t}");

    let body = "<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>qcs::cam::uin/3:uin/4</ID></Grantee><Permission>READ_ACP</Permission></Grant></AccessControlList></AccessControlPolicy>";
    let p = send(s.addr(), &c, Req::new("PUT", "/").query("acl").body(body));
    assert_eq!(p.status, 200, "{}", p.text());
    for (bad, code) in [
        (
            Req::new("PUT", "/")
                .query("acl")
                .header("x-cos-acl", "everyone"),
            "InvalidArgument",
        ),
        (Req::new("PUT", "/").query("acl"), "InvalidArgument"),
    ] {
        assert_eq!(send(s.addr(), &c, bad.body("")).code(), code);
    }
    drop(s);
    let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
    let t = send(s.addr(), &creds(&s), Req::new("GET", "/").query("acl")).text();
    assert_eq!(t.matches("<Grant>").count(), 1, "{t}");
    assert!(t.contains("<ID>qcs::cam::uin/3:uin/4</ID>"), "{t}");
    assert!(t.contains("<Permission>READ_ACP</Permission>"), "{t}");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

fn sse_c_headers(key: &[u8; 32]) -> [(String, String); 3] {
    let b64 = base64::engine::general_purpose::STANDARD;
    [
        (
            "x-cos-server-side-encryption-customer-algorithm".into(),
            "AES256".into(),
        ),
        (
            "x-cos-server-side-encryption-customer-key".into(),
            b64.encode(key),
        ),
        (
            "x-cos-server-side-encryption-customer-key-MD5".into(),
            content_md5(key),
        ),
    ]
}

fn with(mut r: Req, hs: &[(String, String)]) -> Req {
    for (k, v) in hs {
        r = r.header(k, v);
    }
    r
}

#[test]
fn server_side_encryption_echo_and_customer_keys() {
    let s = start();
    let c = creds(&s);
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/sse")
            .header("x-cos-server-side-encryption", "AES256")
            .body("x"),
    );
    assert_eq!(r.header("x-cos-server-side-encryption"), Some("AES256"));
    let h = send(s.addr(), &c, Req::new("HEAD", "/sse"));
    assert_eq!(h.header("x-cos-server-side-encryption"), Some("AES256"));

    let key = [7u8; 32];
    let hs = sse_c_headers(&key);
    let r = send(
        s.addr(),
        &c,
        with(Req::new("PUT", "/ssec"), &hs).body("secret"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-cos-server-side-encryption-customer-algorithm"),
        Some("AES256")
    );
    assert_eq!(
        r.header("x-cos-server-side-encryption-customer-key-md5"),
        Some(content_md5(&key).as_str())
    );
    // Reads need the key: none is 400, another is 403, the right one works.
    let h = send(s.addr(), &c, Req::new("HEAD", "/ssec"));
    assert_eq!(h.status, 400);
    let g = send(s.addr(), &c, Req::new("GET", "/ssec"));
    assert_eq!((g.status, g.code().as_str()), (400, "InvalidRequest"));
    assert_ne!(g.body, b"secret");
    let g = send(
        s.addr(),
        &c,
        with(Req::new("GET", "/ssec"), &sse_c_headers(&[8u8; 32])),
    );
    assert_eq!((g.status, g.code().as_str()), (403, "AccessDenied"));
    let g = send(s.addr(), &c, with(Req::new("GET", "/ssec"), &hs));
    assert_eq!((g.status, g.body.as_slice()), (200, &b"secret"[..]));
    assert_eq!(
        g.header("x-cos-server-side-encryption-customer-key-md5"),
        Some(content_md5(&key).as_str())
    );
    // The key itself is never stored.
    let o = s.object("ssec").unwrap();
    assert!(!o
        .headers
        .iter()
        .any(|(k, _)| k == "x-cos-server-side-encryption-customer-key"));
    // A key whose MD5 does not match is refused before storing.
    let mut bad = hs.clone();
    bad[2].1 = content_md5(b"other");
    let r = send(s.addr(), &c, with(Req::new("PUT", "/bad"), &bad).body("x"));
    assert_eq!(r.status, 400);
    assert!(s.object("bad").is_none());
}

#[test]
fn delete_multiple_objects_verbose_and_quiet() {
    let s = start();
    let c = creds(&s);
    for k in ["/a", "/b", "/c"] {
        send(s.addr(), &c, Req::new("PUT", k).body("x"));
    }
    let body = "<Delete><Quiet>false</Quiet><Object><Key>a</Key></Object><Object><Key>missing</Key></Object></Delete>";
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/")
            .query("delete")
            .header("content-md5", &content_md5(body.as_bytes()))
            .body(body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "<?xml version='1.0' encoding='utf-8' ?>\n<DeleteResult><Deleted><Key>a</Key></Deleted><Deleted><Key>missing</Key></Deleted></DeleteResult>"
    );
    let body = "<Delete><Quiet>true</Quiet><Object><Key>b</Key></Object></Delete>";
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/").query("delete").body(body),
    );
    assert_eq!(r.xml("Deleted"), None, "{}", r.text());
    assert_eq!(s.keys(), vec!["c".to_string()]);
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/").query("delete").body("<Delete/>"),
    );
    assert_eq!(r.code(), "MalformedXML");
}

#[test]
fn delete_multiple_objects_with_a_wrong_content_md5_deletes_nothing() {
    let s = start();
    let c = creds(&s);
    for k in ["/a", "/b"] {
        send(s.addr(), &c, Req::new("PUT", k).body("x"));
    }
    // The MD5 of the list that was meant (only b), the body that arrived (a and b): 400, both objects kept.
    let meant = "<Delete><Object><Key>b</Key></Object></Delete>";
    let arrived = "<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object></Delete>";
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/")
            .query("delete")
            .header("content-md5", &content_md5(meant.as_bytes()))
            .body(arrived),
    );
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidDigest".into()),
        "{}",
        r.text()
    );
    assert_eq!(s.keys(), vec!["a".to_string(), "b".to_string()]);
    // Not base64 of 16 bytes at all: refused the same way.
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/")
            .query("delete")
            .header("content-md5", "not-an-md5")
            .body(meant),
    );
    assert_eq!(
        (r.status, r.code()),
        (400, "InvalidDigest".into()),
        "{}",
        r.text()
    );
    assert_eq!(s.keys(), vec!["a".to_string(), "b".to_string()]);
    // The right MD5: deleted.
    let r = send(
        s.addr(),
        &c,
        Req::new("POST", "/")
            .query("delete")
            .header("content-md5", &content_md5(meant.as_bytes()))
            .body(meant),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.keys(), vec!["a".to_string()]);
}

#[test]
fn sign_query_parameter_carries_a_whole_authorization() {
    let s = start();
    let c = creds(&s);
    send(s.addr(), &c, Req::new("PUT", "/signed").body("hello"));
    let host = s.addr().to_string();
    let sig = get_authorization(
        &c,
        &SignInput {
            method: "GET",
            key: "/signed",
            query: &[],
            headers: &[("host".to_string(), host.clone())],
            key_time: now_key_time(),
        },
    );
    let get = |auth: &str| {
        let req = format!(
            "GET /signed?sign={} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n",
            cos_core::auth::encode(auth)
        );
        raw(s.addr(), req.as_bytes(), false).unwrap()
    };
    let r = get(&sig.authorization);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello"[..]),
        "{}",
        r.text()
    );
    let tampered = sig.authorization.replace("q-signature=", "q-signature=0");
    assert_eq!(get(&tampered).code(), "SignatureDoesNotMatch");
}

#[test]
fn traffic_limit_paces_uploads_and_downloads() {
    let s = start();
    let c = creds(&s);
    // 819200 bit/s is 100 KiB/s: 160 KiB take at least 1.6 s each way.
    let data = vec![1u8; 160 << 10];
    let t = Instant::now();
    let r = send(
        s.addr(),
        &c,
        Req::new("PUT", "/slow")
            .header("x-cos-traffic-limit", "819200")
            .body(data.clone()),
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed().as_secs_f64() >= 1.4, "{:?}", t.elapsed());
    let t = Instant::now();
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/slow").header("x-cos-traffic-limit", "819200"),
    );
    assert_eq!(r.body, data);
    assert!(t.elapsed().as_secs_f64() >= 1.4, "{:?}", t.elapsed());
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/slow").header("x-cos-traffic-limit", "100"),
    );
    assert_eq!(r.code(), "InvalidArgument");
}
