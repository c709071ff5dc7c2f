//! Response header-name case, as COS writes it (`ETag`, `Content-Length`, `x-cos-request-id`).
//!
//! hyper writes header names in lower case and offers no public way to choose their case on a response, but
//! clients exist that copy response headers into a case-sensitive map (the official Python SDK reads
//! `response["ETag"]` and `response["x-cos-hash-crc64ecma"]`). This wrapper around the connection rewrites the
//! names in each response head as it is written: `ETag`, Title-Case for standard headers, `x-…` headers left in
//! lower case. Only letter case changes, so byte counts are unaffected. It follows the framing (status line,
//! `Content-Length`, whether the request was a `HEAD`) to touch only response heads, never bodies.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shared with the service: one entry per request, `true` when it was a `HEAD` (no response body).
pub(crate) type HeadQueue = Arc<Mutex<VecDeque<bool>>>;

#[derive(Clone, Debug)]
enum Phase {
    /// Inside a response head.
    Head,
    /// Inside a body with this many bytes left.
    Body(u64),
    /// Unknown framing: pass everything through.
    Raw,
}

#[derive(Clone, Debug)]
struct Scanner {
    phase: Phase,
    /// The current head line so far (capped).
    line: Vec<u8>,
    first_line: bool,
    status: u16,
    content_length: Option<u64>,
    /// Position within the header name on this line, `None` once past the `:`.
    name_pos: Option<usize>,
    name_first: u8,
    prev: u8,
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            phase: Phase::Head,
            line: Vec::new(),
            first_line: true,
            status: 0,
            content_length: None,
            name_pos: Some(0),
            name_first: 0,
            prev: 0,
        }
    }

    fn start_head(&mut self) {
        self.phase = Phase::Head;
        self.first_line = true;
        self.status = 0;
        self.content_length = None;
        self.line.clear();
        self.name_pos = Some(0);
    }

    /// Runs over `buf`, writing the (re-cased) bytes to `out` when given.
    fn scan(&mut self, buf: &[u8], mut out: Option<&mut Vec<u8>>, heads: &HeadQueue) {
        let mut i = 0;
        while i < buf.len() {
            match self.phase {
                Phase::Raw => {
                    if let Some(o) = out.as_deref_mut() {
                        o.extend_from_slice(&buf[i..]);
                    }
                    return;
                }
                Phase::Body(left) => {
                    let n = (left as usize).min(buf.len() - i);
                    if let Some(o) = out.as_deref_mut() {
                        o.extend_from_slice(&buf[i..i + n]);
                    }
                    i += n;
                    let left = left - n as u64;
                    if left == 0 {
                        self.start_head();
                    } else {
                        self.phase = Phase::Body(left);
                    }
                }
                Phase::Head => {
                    let b = buf[i];
                    i += 1;
                    let mut c = b;
                    if !self.first_line {
                        if let Some(pos) = self.name_pos {
                            if b == b':' {
                                self.name_pos = None;
                            } else if b != b'\r' && b != b'\n' {
                                if pos == 0 {
                                    self.name_first = b.to_ascii_lowercase();
                                }
                                if self.name_first != b'x' {
                                    let upper = pos == 0
                                        || self.prev == b'-'
                                        || (pos == 1
                                            && self.name_first == b'e'
                                            && b.eq_ignore_ascii_case(&b't'));
                                    c = if upper {
                                        b.to_ascii_uppercase()
                                    } else {
                                        b.to_ascii_lowercase()
                                    };
                                }
                                self.name_pos = Some(pos + 1);
                            }
                        }
                    }
                    self.prev = b;
                    if let Some(o) = out.as_deref_mut() {
                        o.push(c);
                    }
                    if b != b'\n' {
                        if self.line.len() < 8192 {
                            self.line.push(b);
                        }
                        continue;
                    }
                    // End of a line.
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.name_pos = Some(0);
                    if self.first_line {
                        self.first_line = false;
                        self.status = std::str::from_utf8(line)
                            .ok()
                            .and_then(|l| l.split(' ').nth(1)?.parse().ok())
                            .unwrap_or(0);
                        continue;
                    }
                    if !line.is_empty() {
                        if let Ok(l) = std::str::from_utf8(line) {
                            if let Some((n, v)) = l.split_once(':') {
                                if n.trim().eq_ignore_ascii_case("content-length") {
                                    self.content_length = v.trim().parse().ok();
                                }
                            }
                        }
                        continue;
                    }
                    // End of the head.
                    if (100..200).contains(&self.status) {
                        self.start_head();
                        continue;
                    }
                    let was_head = heads
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pop_front()
                        .unwrap_or(false);
                    let len = if was_head || self.status == 204 || self.status == 304 {
                        Some(0)
                    } else {
                        self.content_length
                    };
                    match len {
                        Some(0) => self.start_head(),
                        Some(n) => self.phase = Phase::Body(n),
                        None => self.phase = Phase::Raw,
                    }
                }
            }
        }
    }
}

/// The connection wrapper.
pub(crate) struct CaseIo<T> {
    inner: T,
    scanner: Scanner,
    heads: HeadQueue,
    buf: Vec<u8>,
}

impl<T> CaseIo<T> {
    pub(crate) fn new(inner: T, heads: HeadQueue) -> Self {
        CaseIo {
            inner,
            scanner: Scanner::new(),
            heads,
            buf: Vec::new(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CaseIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CaseIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Phase::Body(left) = this.scanner.phase {
            if left as usize >= data.len() {
                // Plain body bytes: no copy.
                let r = Pin::new(&mut this.inner).poll_write(cx, data);
                if let Poll::Ready(Ok(n)) = r {
                    this.scanner.scan(&data[..n], None, &this.heads);
                }
                return r;
            }
        }
        if let Phase::Raw = this.scanner.phase {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        // Re-case on a copy of the scanner, then advance the real one over what was written.
        let mut out = std::mem::take(&mut this.buf);
        out.clear();
        let mut probe = this.scanner.clone();
        let heads: HeadQueue = Arc::new(Mutex::new(
            this.heads.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        ));
        probe.scan(data, Some(&mut out), &heads);
        let r = Pin::new(&mut this.inner).poll_write(cx, &out);
        if let Poll::Ready(Ok(n)) = r {
            this.scanner.scan(&data[..n], None, &this.heads);
        }
        this.buf = out;
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], heads: &[bool]) -> Vec<u8> {
        let q: HeadQueue = Arc::new(Mutex::new(heads.iter().copied().collect()));
        let mut s = Scanner::new();
        let mut out = Vec::new();
        for c in chunks {
            s.scan(c, Some(&mut out), &q);
        }
        out
    }

    #[test]
    fn recases_heads_only() {
        let resp1 =
            b"HTTP/1.1 200 OK\r\netag: \"x\"\r\ncontent-length: 20\r\nx-cos-request-id: ab\r\n\r\n";
        let body = b"etag: content-length";
        let resp2 = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nlast-modified: y\r\n\r\n";
        let out = run(&[resp1, body, resp2], &[false, false]);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("ETag: \"x\"\r\nContent-Length: 20\r\nx-cos-request-id: ab"));
        assert!(s.contains("etag: content-length"), "{s}");
        assert!(s.contains("Content-Length: 5\r\nLast-Modified: y"));
    }

    #[test]
    fn head_and_continue() {
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n";
        let next =
            b"HTTP/1.1 404 Not Found\r\ncontent-type: application/xml\r\ncontent-length: 0\r\n\r\n";
        let s = String::from_utf8(run(&[cont, head, next], &[true, false])).unwrap();
        assert!(
            s.ends_with("Content-Type: application/xml\r\nContent-Length: 0\r\n\r\n"),
            "{s}"
        );
    }
}
