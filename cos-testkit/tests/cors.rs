//! CORS as COS does it, over raw HTTP: the bucket's `?cors` configuration, preflights without a signature,
//! `Access-Control-*` headers on every answer to an allowed origin, `--cors dev`, and the request log.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use cos_core::checksum::content_md5;
use cos_core::ops::{CorsConfiguration, CorsRule};
use cos_core::Credentials;
use cos_testkit::{dev_cors_rule, RequestLog, Server, DEV_EXPOSE_HEADERS};

const PAGE: &str = "http://127.0.0.1:5173";

fn creds(s: &Server) -> Credentials {
    Credentials::new(s.secret_id(), s.secret_key())
}

/// An unsigned request, as a browser's preflight is.
fn unsigned(s: &Server, req: Req) -> Resp {
    let h = req.to_http(&s.addr().to_string());
    raw(s.addr(), &serialize(&h, &req.body), req.method == "HEAD").unwrap()
}

fn preflight(s: &Server, path: &str, origin: &str, method: &str, headers: Option<&str>) -> Resp {
    let mut req = Req::new("OPTIONS", path)
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(h) = headers {
        req = req.header("access-control-request-headers", h);
    }
    unsigned(s, req)
}

fn put_cors(s: &Server, xml: &str) -> Resp {
    send(
        s.addr(),
        &creds(s),
        Req::new("PUT", "/")
            .query("cors")
            .header("content-type", "application/xml")
            .header("content-md5", &content_md5(xml.as_bytes()))
            .body(xml.as_bytes()),
    )
}

fn rules() -> CorsConfiguration {
    CorsConfiguration::new(vec![
        CorsRule::new()
            .id("app")
            .allowed_origin("http://*.example.com")
            .allowed_origin(PAGE)
            .allowed_methods(["PUT", "GET"])
            .allowed_header("Content-Type")
            .allowed_header("x-cos-meta-*")
            .allowed_header("authorization")
            .expose_header("ETag")
            .expose_header("x-cos-request-id")
            .max_age_seconds(300),
        CorsRule::new()
            .id("read-anywhere")
            .allowed_origin("*")
            .allowed_method("HEAD"),
    ])
}

#[test]
fn a_new_bucket_refuses_browsers() {
    let s = Server::builder().start_blocking().unwrap();
    assert_eq!(s.cors(), None);
    let r = preflight(&s, "/a.txt", PAGE, "PUT", Some("content-type"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code(), "AccessForbidden");
    assert!(r.text().contains("CORSResponse"), "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = send(s.addr(), &creds(&s), Req::new("GET", "/").query("cors"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "NoSuchCORSConfiguration")
    );
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/a.txt").header("origin", PAGE).body("x"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(s.counters().get("OptionsObject"), 1);
}

#[test]
fn configuration_is_signed_checked_and_read_back() {
    let s = Server::builder().start_blocking().unwrap();
    let xml = rules().to_xml();
    // Unsigned: refused like any bucket request.
    let r = unsigned(
        &s,
        Req::new("PUT", "/")
            .query("cors")
            .header("content-md5", &content_md5(xml.as_bytes()))
            .body(xml.as_bytes()),
    );
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/").query("cors").body(xml.as_bytes()),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "MissingContentMD5"));
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/")
            .query("cors")
            .header("content-md5", &content_md5(b"other"))
            .body(xml.as_bytes()),
    );
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDigest"));
    let r = put_cors(&s, "<CORSConfiguration><CORSRule>");
    assert_eq!((r.status, r.code().as_str()), (400, "MalformedXML"));
    let r = put_cors(
        &s,
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>\
         <AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
    );
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    assert!(r.text().contains("PATCH"), "{}", r.text());
    assert_eq!(s.cors(), None);

    let r = put_cors(&s, &xml);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.cors(), Some(rules()));
    let r = send(s.addr(), &creds(&s), Req::new("GET", "/").query("cors"));
    assert_eq!(r.status, 200);
    assert_eq!(CorsConfiguration::from_xml(&r.text()).unwrap(), rules());
    let r = send(s.addr(), &creds(&s), Req::new("DELETE", "/").query("cors"));
    assert_eq!(r.status, 204);
    assert_eq!(s.cors(), None);
    let r = preflight(&s, "/a", PAGE, "PUT", None);
    assert_eq!(r.status, 403);
    let c = s.counters();
    assert_eq!(
        (
            c.get("PutBucketCors"),
            c.get("GetBucketCors"),
            c.get("DeleteBucketCors")
        ),
        (6, 1, 1)
    );
}

#[test]
fn preflights_are_evaluated_against_the_rules() {
    let s = Server::builder().cors(rules()).start_blocking().unwrap();
    let r = preflight(
        &s,
        "/dir/a.txt",
        "http://app.example.com",
        "PUT",
        Some("content-type, X-Cos-Meta-Author,authorization"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("PUT, GET"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, X-Cos-Meta-Author,authorization")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("ETag, x-cos-request-id")
    );
    assert_eq!(r.header("access-control-max-age"), Some("300"));
    assert_eq!(r.header("vary"), Some("Origin"));
    assert!(r.body.is_empty());

    // The bucket root and sub-resources too; the second rule for HEAD from anywhere.
    let r = preflight(&s, "/", "https://elsewhere.test", "HEAD", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), None);
    assert_eq!(r.header("access-control-max-age"), None);

    for (origin, method, headers, why) in [
        ("http://evil.test", "PUT", None, "origin"),
        ("https://app.example.com", "PUT", None, "scheme"),
        (PAGE, "DELETE", None, "method"),
        (PAGE, "PUT", Some("content-type,x-secret"), "header"),
    ] {
        let r = preflight(&s, "/a", origin, method, headers);
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "AccessForbidden"),
            "{why}"
        );
        assert_eq!(r.header("access-control-allow-origin"), None, "{why}");
    }
    let r = unsigned(&s, Req::new("OPTIONS", "/a").header("origin", PAGE));
    assert_eq!(r.status, 403, "no Access-Control-Request-Method");
}

#[test]
fn every_answer_to_an_allowed_origin_carries_the_headers() {
    let s = Server::builder().cors(rules()).start_blocking().unwrap();
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/a.txt")
            .header("origin", PAGE)
            .body("hello"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("ETag, x-cos-request-id")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    // Errors too: a missing key, a bad signature.
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("GET", "/missing").header("origin", PAGE),
    );
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    let r = send(
        s.addr(),
        &Credentials::new(s.secret_id(), "wrong"),
        Req::new("GET", "/a.txt").header("origin", PAGE),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(PAGE));
    // HEAD from anywhere (rule 2, origin "*"), but not PUT from there; no Origin, no headers.
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("HEAD", "/a.txt").header("origin", "https://x.test"),
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("vary"), None);
    let r = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/b.txt")
            .header("origin", "https://x.test")
            .body("b"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = send(s.addr(), &creds(&s), Req::new("GET", "/a.txt"));
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[test]
fn dev_rule_and_persistence() {
    let dir = std::env::temp_dir().join(format!("cos-testkit-cors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    {
        let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
        assert_eq!(put_cors(&s, &rules().to_xml()).status, 200);
    }
    {
        let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
        assert_eq!(s.cors(), Some(rules()), "kept across a restart");
    }
    {
        let s = Server::builder()
            .data_dir(&dir)
            .cors_dev()
            .start_blocking()
            .unwrap();
        assert_eq!(s.cors().unwrap().rules, vec![dev_cors_rule()]);
        let r = preflight(
            &s,
            "/k",
            "http://localhost:3000",
            "POST",
            Some("authorization,content-type,x-cos-security-token"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some(DEV_EXPOSE_HEADERS.join(", ").as_str())
        );
        assert_eq!(
            send(s.addr(), &creds(&s), Req::new("DELETE", "/").query("cors")).status,
            204
        );
    }
    let s = Server::builder().data_dir(&dir).start_blocking().unwrap();
    assert_eq!(s.cors(), None, "the delete was kept");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn request_log_has_a_json_line_per_request() {
    let lines = Lines::default();
    let s = Server::builder()
        .request_log(RequestLog::new(lines.clone()))
        .start_blocking()
        .unwrap();
    let put = send(
        s.addr(),
        &creds(&s),
        Req::new("PUT", "/dir/a%20b.txt").body("hello"),
    );
    let get = send(s.addr(), &creds(&s), Req::new("GET", "/missing"));
    preflight(&s, "/dir/a%20b.txt", PAGE, "PUT", None);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let v: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 3, "{text}");
    assert_eq!(v[0]["operation"], "PutObject");
    assert_eq!(v[0]["method"], "PUT");
    assert_eq!(v[0]["key"], "dir/a b.txt");
    assert_eq!(v[0]["status"], 200);
    assert_eq!(v[0]["bytes_in"], 5);
    assert_eq!(v[0]["bytes_out"], 0);
    assert_eq!(v[0]["error"], serde_json::Value::Null);
    assert_eq!(v[0]["request_id"].as_str(), put.header("x-cos-request-id"));
    assert!(v[0]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(v[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v[1]["operation"], "GetObject");
    assert_eq!(v[1]["status"], 404);
    assert_eq!(v[1]["error"], "NoSuchKey");
    assert_eq!(v[1]["bytes_out"].as_u64(), Some(get.body.len() as u64));
    assert_eq!(v[2]["operation"], "OptionsObject");
    assert_eq!(v[2]["status"], 403);
    assert_eq!(v[2]["error"], "AccessForbidden");
    assert_eq!(v[2]["origin"], PAGE);
}

#[test]
fn serve_command_takes_cors_and_log() {
    let help = Command::new(env!("CARGO_BIN_EXE_cos-testkit"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--cors dev") && help.contains("--log FILE|-"),
        "{help}"
    );

    let dir = std::env::temp_dir().join(format!("cos-testkit-cors-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cos-testkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--cors", "dev", "--log"])
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: std::net::SocketAddr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    let req = Req::new("OPTIONS", "/a.txt")
        .header("origin", PAGE)
        .header("access-control-request-method", "PUT");
    let r = raw(
        addr,
        &serialize(&req.to_http(&addr.to_string()), b""),
        false,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"operation\":\"OptionsObject\""), "{text}");
    assert!(text.contains("\"status\":200"), "{text}");

    // --cors FILE.xml: the rules of a PUT Bucket cors body; a bad file is refused at start.
    let xml = dir.join("cors.xml");
    std::fs::write(&xml, rules().to_xml()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cos-testkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--cors"])
        .arg(&xml)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: std::net::SocketAddr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    let ask = |origin: &str| {
        let req = Req::new("OPTIONS", "/a.txt")
            .header("origin", origin)
            .header("access-control-request-method", "PUT");
        raw(
            addr,
            &serialize(&req.to_http(&addr.to_string()), b""),
            false,
        )
        .unwrap()
    };
    let (allowed, refused) = (ask(PAGE), ask("http://evil.test"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(allowed.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(refused.status, 403);
    std::fs::write(&xml, "<CORSConfiguration/>").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cos-testkit"))
        .args(["serve", "--addr", "127.0.0.1:0", "--cors"])
        .arg(&xml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least one rule"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
