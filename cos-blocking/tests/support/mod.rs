//! A tiny scripted HTTP/1.1 server over loopback TCP that records every request it receives, for driver
//! tests that need exact control of the wire (resets, stalls, skewed clocks) or want to see the raw request.
//! Shared by the cos-blocking and cos-async tests and the driver conformance suite in cos-testkit.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Request target (path and query, as sent).
    pub target: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Which connection it came on (0-based, in accept order).
    pub connection: usize,
}

impl Recorded {
    /// All values of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query part of the target.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    /// The `q-header-list` of the Authorization header, split.
    pub fn signed_headers(&self) -> Vec<String> {
        let auth = self.header("authorization").unwrap_or("");
        auth.split('&')
            .find_map(|kv| kv.strip_prefix("q-header-list="))
            .map(|l| {
                l.split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `q-sign-time` start second of the Authorization header.
    pub fn sign_start(&self) -> Option<i64> {
        let auth = self.header("authorization")?;
        let t = auth
            .split('&')
            .find_map(|kv| kv.strip_prefix("q-sign-time="))?;
        t.split(';').next()?.parse().ok()
    }
}

/// What the server does with a request.
pub enum Reply {
    /// Answer with this status, headers and body (`Content-Length` is added, unless a HEAD answer has one).
    Respond {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body (not written for HEAD).
        body: Vec<u8>,
    },
    /// Close the connection without answering.
    Close,
    /// Wait this long, then answer 200 with an empty body.
    Stall(Duration),
}

impl Reply {
    /// An answer with a status, headers and body.
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        Reply::Respond {
            status,
            headers: headers
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    /// A COS `<Error>` document.
    pub fn error(status: u16, code: &str) -> Reply {
        let body = format!(
            "<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>{code}</Code><Message>{code}</Message>\
             <RequestId>req-{code}</RequestId></Error>"
        );
        Reply::new(
            status,
            &[
                ("content-type", "application/xml"),
                ("x-cos-request-id", "req-err"),
            ],
            body,
        )
    }

    /// A PUT Object success for these body bytes (ETag = MD5, with the CRC-64).
    pub fn put_ok(body: &[u8]) -> Reply {
        let d = cos_core::checksum::BodyDigest::of(body);
        Reply::new(
            200,
            &[
                ("etag", &format!("\"{}\"", d.md5_hex().unwrap_or_default())),
                ("x-cos-hash-crc64ecma", &d.crc64.to_string()),
                ("x-cos-request-id", "req-put"),
            ],
            Vec::new(),
        )
    }
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The server; it runs until the test process ends.
pub struct MockServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl MockServer {
    /// Starts a server answering each request with `handler(request, index)` (index counts from 0).
    pub fn start(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let reqs = requests.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (reqs, handler) = (reqs.clone(), handler.clone());
                let conn = connections.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || serve(stream, conn, &reqs, &*handler));
            }
        });
        MockServer { addr, requests }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// A config pointing at this server.
    pub fn config(&self) -> cos_core::Config {
        let mut c = cos_core::Config::new(
            "examplebucket-1250000000",
            "ap-guangzhou",
            cos_core::Credentials::new("AKIDEXAMPLE", "secret-key-example"),
        )
        .unwrap()
        .with_endpoint(cos_core::Endpoint::custom(&self.url()).unwrap())
        .unwrap();
        c.retry.initial_backoff = Duration::from_millis(10);
        c.retry.max_backoff = Duration::from_millis(50);
        c
    }
}

fn serve(stream: TcpStream, connection: usize, reqs: &Mutex<Vec<Recorded>>, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut it = line.split_whitespace();
        let (method, target) = (
            it.next().unwrap_or("").to_string(),
            it.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let rec = Recorded {
            method: method.clone(),
            target,
            headers,
            body,
            connection,
        };
        let index = {
            let mut r = reqs.lock().unwrap();
            r.push(rec.clone());
            r.len() - 1
        };
        let (status, extra, body) = match handler(&rec, index) {
            Reply::Respond {
                status,
                headers,
                body,
            } => (status, headers, body),
            Reply::Close => return,
            Reply::Stall(d) => {
                std::thread::sleep(d);
                (200, Vec::new(), Vec::new())
            }
        };
        let mut out = format!("HTTP/1.1 {status} X\r\n");
        // A HEAD answer may state the length of a body it does not carry.
        if method != "HEAD"
            || !extra
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("date")) {
            out.push_str(&format!(
                "date: {}\r\n",
                cos_core::task::format_http_date(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                )
            ));
        }
        for (n, v) in &extra {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if method != "HEAD" {
            bytes.extend_from_slice(&body);
        }
        if stream.write_all(&bytes).is_err() {
            return;
        }
    }
}
