//! Several buckets in one server: PUT / HEAD / DELETE Bucket, buckets named by the Host, persistence.

mod common;

use common::*;
use cos_core::Credentials;
use cos_testkit::Server;

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

/// Signs for and sends with `Host: host` to the server.
fn send_to(s: &Server, host: &str, req: Req) -> Resp {
    let h = sign(&req, host, &creds(s), now_key_time());
    raw(s.addr(), &serialize(&h, &req.body), req.method == "HEAD").unwrap()
}

const NEW: &str = "newbucket-1250000000.cos.ap-guangzhou.myqcloud.com";

#[test]
fn create_use_and_delete_a_bucket() {
    let s = Server::builder().start_blocking().unwrap();
    assert_eq!(send_to(&s, NEW, Req::new("HEAD", "/")).status, 404);
    let r = send_to(&s, NEW, Req::new("PUT", "/obj").body("x"));
    assert_eq!(r.code(), "NoSuchBucket", "object writes need the bucket");

    let r = send_to(&s, NEW, Req::new("PUT", "/"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.created_buckets(),
        vec!["newbucket-1250000000".to_string()]
    );
    let r = send_to(&s, NEW, Req::new("PUT", "/"));
    assert_eq!((r.status, r.code().as_str()), (409, "BucketAlreadyExists"));
    assert_eq!(send_to(&s, NEW, Req::new("HEAD", "/")).status, 200);

    // Objects are per bucket.
    let r = send_to(&s, NEW, Req::new("PUT", "/obj").body("in new"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.object("obj").is_none(), "not in the configured bucket");
    let g = send_to(&s, NEW, Req::new("GET", "/obj"));
    assert_eq!(g.body, b"in new");
    // The same bucket through another host form (`<bucket>-<appid>.<anything>`).
    let g = send_to(
        &s,
        "newbucket-1250000000.localhost:1",
        Req::new("GET", "/obj"),
    );
    assert_eq!(g.body, b"in new");
    assert_eq!(
        send(s.addr(), &creds(&s), Req::new("GET", "/obj")).status,
        404
    );

    let r = send_to(&s, NEW, Req::new("DELETE", "/"));
    assert_eq!((r.status, r.code().as_str()), (409, "BucketNotEmpty"));
    assert_eq!(send_to(&s, NEW, Req::new("DELETE", "/obj")).status, 204);
    assert_eq!(send_to(&s, NEW, Req::new("DELETE", "/")).status, 204);
    assert_eq!(send_to(&s, NEW, Req::new("HEAD", "/")).status, 404);
    assert!(s.created_buckets().is_empty());

    // The configured bucket exists already, by its host or by an IP.
    let own = format!("{}.cos.ap-guangzhou.myqcloud.com", s.bucket());
    assert_eq!(send_to(&s, &own, Req::new("HEAD", "/")).status, 200);
    assert_eq!(send_to(&s, &own, Req::new("PUT", "/")).status, 409);
    assert_eq!(
        send(s.addr(), &creds(&s), Req::new("HEAD", "/")).status,
        200
    );
    // A first label that is no bucket name names nothing: the configured bucket answers.
    let r = send_to(&s, "not_a_bucket.example.com", Req::new("PUT", "/"));
    assert_eq!((r.status, r.code().as_str()), (409, "BucketAlreadyExists"));
}

#[test]
fn created_buckets_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("cos-testkit-buckets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
        assert_eq!(send_to(&s, NEW, Req::new("PUT", "/")).status, 200);
        assert_eq!(
            send_to(&s, NEW, Req::new("PUT", "/k").body("kept")).status,
            200
        );
        assert_eq!(
            send(s.addr(), &creds(&s), Req::new("PUT", "/root").body("r")).status,
            200
        );
    }
    let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
    assert_eq!(
        s.created_buckets(),
        vec!["newbucket-1250000000".to_string()]
    );
    assert_eq!(send_to(&s, NEW, Req::new("GET", "/k")).body, b"kept");
    assert_eq!(s.object("root").unwrap().data.as_deref(), Some(&b"r"[..]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_bucket_lists_objects_with_prefix_delimiter_and_pages() {
    let s = Server::builder().start_blocking().unwrap();
    let c = creds(&s);
    for k in ["/a/1", "/a/2", "/b", "/c/x/y", "/d"] {
        assert_eq!(
            send(s.addr(), &c, Req::new("PUT", k).body("xy")).status,
            200
        );
    }
    let r = send(s.addr(), &c, Req::new("GET", "/").query("delimiter=%2F"));
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(t.contains("<Name>examplebucket-1250000000</Name>"), "{t}");
    assert!(t.contains("<Contents><Key>b</Key>"), "{t}");
    assert!(t.contains("<Size>2</Size>"), "{t}");
    assert!(t.contains("<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>c/</Prefix></CommonPrefixes>"), "{t}");
    assert!(!t.contains("<Key>a/1</Key>"), "{t}");

    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("prefix=a%2F&max-keys=1"),
    );
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(r.xml("NextMarker").as_deref(), Some("a/1"));
    let r = send(
        s.addr(),
        &c,
        Req::new("GET", "/").query("prefix=a%2F&max-keys=1&marker=a%2F1"),
    );
    assert_eq!(r.xml("Key").as_deref(), Some("a/2"));
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
}

#[test]
fn every_operation_uses_the_bucket_the_host_names() {
    let s = Server::builder().start_blocking().unwrap();
    assert_eq!(send_to(&s, NEW, Req::new("PUT", "/")).status, 200);
    let r = send_to(&s, NEW, Req::new("POST", "/m").query("uploads"));
    let id = r.xml("UploadId").unwrap();
    let part = vec![7u8; 1 << 20];
    let p = send_to(
        &s,
        NEW,
        Req::new("PUT", "/m")
            .query(&format!("partNumber=1&uploadId={id}"))
            .body(part.clone()),
    );
    assert_eq!(p.status, 200, "{}", p.text());
    let etag = p.header("etag").unwrap().to_string();
    let l = send_to(
        &s,
        NEW,
        Req::new("GET", "/m").query(&format!("uploadId={id}")),
    );
    assert_eq!(l.xml("PartNumber").as_deref(), Some("1"), "{}", l.text());
    let u = send_to(&s, NEW, Req::new("GET", "/").query("uploads"));
    assert_eq!(
        u.xml("UploadId").as_deref(),
        Some(id.as_str()),
        "{}",
        u.text()
    );
    assert!(
        s.multipart_uploads().is_empty(),
        "not in the configured bucket"
    );
    let c = send_to(
        &s,
        NEW,
        Req::new("POST", "/m").query(&format!("uploadId={id}")).body(format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        )),
    );
    assert_eq!(c.status, 200, "{}", c.text());
    assert_eq!(c.xml("Bucket").as_deref(), Some("newbucket-1250000000"));
    let a = send_to(
        &s,
        NEW,
        Req::new("POST", "/app")
            .query("append&position=0")
            .body("ab"),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let t = send_to(
        &s,
        NEW,
        Req::new("PUT", "/m")
            .query("tagging")
            .body("<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"),
    );
    assert_eq!(t.status, 200, "{}", t.text());
    let l = send_to(&s, NEW, Req::new("GET", "/"));
    assert!(l.text().contains("<Key>app</Key>"), "{}", l.text());
    assert!(l.text().contains("<Key>m</Key>"), "{}", l.text());
    let g = send_to(&s, NEW, Req::new("GET", "/m"));
    assert_eq!(g.body, part);
    assert!(
        s.keys().is_empty(),
        "nothing landed in the configured bucket"
    );
}
