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
