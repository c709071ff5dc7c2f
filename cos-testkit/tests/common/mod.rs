//! A tiny HTTP/1.1 client over `std::net` for talking raw to the test server, and signing helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

use cos_core::auth::{sign_request, KeyTime};
use cos_core::Credentials;

/// A response as read off the wire.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Names as sent (case preserved).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes the `Content-Length` promised but that never came.
    pub missing: u64,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<tag>` element of the body.
    pub fn xml(&self, tag: &str) -> Option<String> {
        let t = self.text();
        let open = format!("<{tag}>");
        let start = t.find(&open)? + open.len();
        let end = t[start..].find(&format!("</{tag}>"))? + start;
        Some(t[start..end].to_string())
    }

    /// The `<Code>` of an error body.
    pub fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }
}

/// Sends raw request bytes and reads the whole answer (`Connection: close`).
pub fn raw(addr: SocketAddr, request: &[u8], head_request: bool) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if buf.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no response head")
        })?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let declared = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut missing = 0;
    if head_request {
        body.clear();
    } else if let Some(d) = declared {
        missing = d.saturating_sub(body.len() as u64);
        body.truncate(d as usize);
    }
    Ok(Resp {
        status,
        headers,
        body,
        missing,
    })
}

/// A request to build, sign and send.
pub struct Req {
    pub method: String,
    /// Encoded path, starting with `/`.
    pub path: String,
    /// Raw query string (already encoded), without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn query(mut self, q: &str) -> Req {
        self.query = q.into();
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Req {
        self.body = b.into();
        self
    }

    fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// The request as an `http::Request` with `Host` and `Content-Length` set.
    pub fn to_http(&self, host: &str) -> http::Request<()> {
        let mut b = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.uri());
        b = b.header("host", host);
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if !self.body.is_empty() || matches!(self.method.as_str(), "PUT" | "POST") {
            b = b.header("content-length", self.body.len().to_string());
        }
        b.body(()).unwrap()
    }
}

/// Serialises a request head + body.
pub fn serialize(req: &http::Request<()>, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri()).into_bytes();
    for (k, v) in req.headers() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

pub fn now_key_time() -> KeyTime {
    KeyTime::around(SystemTime::now(), Duration::from_secs(600))
}

/// Signs `req` for host `host` and returns the signed request.
pub fn sign(req: &Req, host: &str, creds: &Credentials, kt: KeyTime) -> http::Request<()> {
    let mut h = req.to_http(host);
    sign_request(&mut h, creds, kt).unwrap();
    h
}

/// Signs (Host = the server address) and sends.
pub fn send(addr: SocketAddr, creds: &Credentials, req: Req) -> Resp {
    let h = sign(&req, &addr.to_string(), creds, now_key_time());
    raw(addr, &serialize(&h, &req.body), req.method == "HEAD").unwrap()
}
