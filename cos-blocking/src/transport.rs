//! Sending one [`Transmit`] with ureq: the request exactly as the core built it, the body streamed from the
//! source with its digest computed on the way, the response read up to the limit the core set for it.
//!
//! Deadlines ([`Timeouts`], shared with the async transport): ureq's connect, response-head
//! (`timeout_recv_response`), per-read/per-write idle and whole-body (`timeout_send_body`,
//! `timeout_recv_body`, scaled by size) timeouts, plus a minimum-rate check on every chunk read from the
//! source or the response.

use std::io::{self, Read};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use cos_core::checksum::{BodyDigest, Md5Pool, PooledMd5, SentDigest};
use cos_core::client::{ConnectionSettings, ExchangeHooks};
use cos_core::config::Timeouts;
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::exchange::{
    io_kind, request_id, source_ended, source_open_error, source_read_failed, Exchange,
    ResponseBody,
};
use cos_core::fixture::ExchangeResponder;
use cos_core::task::{Input, RequestBody, ResponseLimits, Transmit};

use crate::body::Source;

pub(crate) struct Transport {
    /// The agent, or why it could not be set up (an unreadable CA certificate…), reported per request.
    agent: Result<ureq::Agent, String>,
    timeouts: Timeouts,
    /// The lanes in which the MD5s of bodies sent at once are hashed two at a time.
    md5s: Md5Pool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(s: &ConnectionSettings) -> Transport {
        let network = crate::network::tls_config(&s.roots)
            .and_then(|tls| Ok((tls, crate::network::ureq_proxy(s.proxy.as_ref())?)));
        let (tls, proxy) = match network {
            Ok(x) => x,
            Err(e) => {
                return Transport {
                    agent: Err(e),
                    timeouts: s.timeouts.clone(),
                    md5s: Md5Pool::default(),
                }
            }
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(proxy)
            // Every status reaches the core, which decides what it means.
            .http_status_as_error(false)
            // Redirects are answers for the core too.
            .max_redirects(0)
            // Send exactly the core's headers: no automatic Accept (User-Agent is always set by the core).
            .accept("")
            .user_agent("")
            .timeout_connect(Some(s.timeouts.connect))
            .timeout_send_request(Some(s.timeouts.idle))
            .timeout_recv_response(Some(s.timeouts.response_head))
            .timeout_per_read(Some(s.timeouts.idle))
            .timeout_per_write(Some(s.timeouts.idle))
            .max_idle_connections(s.max_idle_connections)
            .max_idle_connections_per_host(s.max_idle_connections)
            .build();
        Transport {
            agent: Ok(ureq::Agent::new_with_config(config)),
            timeouts: s.timeouts.clone(),
            md5s: Md5Pool::default(),
        }
    }

    /// Sends the request (or hands it to the responder hook) and turns the outcome into the core's
    /// [`Input`]; the recorder hook sees every completed exchange.
    pub(crate) fn send(&self, t: Transmit, source: &dyn Source, hooks: &ExchangeHooks) -> Input {
        let span = tracing::debug_span!(
            "cos_request",
            operation = t.operation,
            method = %t.request.method(),
            path = t.request.uri().path(),
            attempt = t.attempt,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        let _enter = span.enter();
        let (exchange, request) = Exchange::start(t, hooks);
        let outcome = match &hooks.responder {
            Some(responder) => replay(&**responder, request, source),
            None => self.send_inner(request, source),
        };
        let input = exchange.finish(outcome, hooks);
        match &input {
            Input::Response { response, .. } => {
                span.record("status", response.status().as_u16());
                if let Some(rid) = request_id(response) {
                    span.record("request_id", rid);
                }
            }
            Input::Failed { error, .. } => {
                tracing::debug!(kind = ?error.kind, "request failed: {}", error.message)
            }
            _ => {}
        }
        input
    }

    /// Sends a body-less request and returns the response with its body unread, for a streamed GET (the
    /// caller reads the body; no hooks, no retries).
    pub(crate) fn open(
        &self,
        request: http::Request<()>,
    ) -> Result<http::Response<ureq::Body>, TransportError> {
        let agent = self
            .agent
            .as_ref()
            .map_err(|e| TransportError::new(TransportErrorKind::Tls, e.clone()))?;
        agent.run(request).map_err(map_error)
    }

    fn send_inner(
        &self,
        request: http::Request<RequestBody>,
        source: &dyn Source,
    ) -> Result<(http::Response<Bytes>, Option<SentDigest>), TransportError> {
        let limits = ResponseLimits::of(&request);
        let t = &self.timeouts;
        let (parts, body) = request.into_parts();
        let started = Instant::now();
        let (response, sent) = match body {
            RequestBody::Empty => (self.run(parts, (), 0, &limits)?, None),
            RequestBody::Bytes(b) => {
                let len = b.len() as u64;
                // Read through a rate-checked reader too, so that a slow server is cut off alike.
                let mut reader =
                    DigestReader::new(Box::new(io::Cursor::new(b)), len, None, t, started);
                let body = ureq::SendBody::from_reader(&mut reader);
                let r = self.run(parts, body, len, &limits);
                match (r, reader.failure.take()) {
                    (Err(_), Some((kind, msg))) => return Err(TransportError::new(kind, msg)),
                    (r, _) => (r?, None),
                }
            }
            RequestBody::Source { offset, len, md5 } => {
                let inner = source
                    .open(offset, len)
                    .map_err(|e| source_open_error(offset, len, e))?;
                let md5 = md5.then(|| self.md5s.lane());
                let mut reader = DigestReader::new(inner, len, md5, t, started);
                let sent = self.run(
                    parts,
                    ureq::SendBody::from_reader(&mut reader),
                    len,
                    &limits,
                );
                match (sent, reader.failure.take()) {
                    (Err(_), Some((kind, msg))) => return Err(TransportError::new(kind, msg)),
                    (Err(e), None) => return Err(e),
                    (Ok(r), _) => (r, Some(reader.finish())),
                }
            }
        };
        let (parts, mut body) = response.into_parts();
        let mut kept = ResponseBody::new(&limits, parts.status, body.content_length())?;
        read_limited(&mut body.as_reader(), &mut kept, t)?;
        Ok((kept.finish(parts), sent))
    }

    /// Runs one exchange with the body deadlines scaled to the request body and the accepted answer size.
    fn run(
        &self,
        parts: http::request::Parts,
        body: impl ureq::AsSendBody,
        len: u64,
        limits: &ResponseLimits,
    ) -> Result<http::Response<ureq::Body>, TransportError> {
        let t = &self.timeouts;
        let agent = self
            .agent
            .as_ref()
            .map_err(|e| TransportError::new(TransportErrorKind::Tls, e.clone()))?;
        let request = agent
            .configure_request(http::Request::from_parts(parts, body))
            .timeout_send_body(t.body_deadline(len))
            .timeout_recv_body(t.body_deadline(limits.success.max(limits.error)))
            .build();
        agent.run(request).map_err(map_error)
    }
}

/// Reads a response body into `kept` until it ends or is cut at its limit, failing with a timeout when
/// the body falls below the minimum rate.
fn read_limited(
    body: &mut dyn Read,
    kept: &mut ResponseBody,
    t: &Timeouts,
) -> Result<(), TransportError> {
    let started = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(map_io_body_error(e)),
        };
        if !kept.push(&buf[..n])? {
            return Ok(());
        }
        t.check_rate(kept.len(), started.elapsed())?;
    }
}

/// A ureq body read error: ureq wraps its own errors (timeouts, protocol) in `io::Error`.
fn map_io_body_error(e: io::Error) -> TransportError {
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<ureq::Error>() {
            Ok(u) => map_error(*u),
            Err(other) => TransportError::new(io_kind(kind), other.to_string()),
        },
        None => TransportError::new(io_kind(kind), kind.to_string()),
    }
}

/// Answers a request with the responder hook: the body is read whole (and digested) instead of sent.
fn replay(
    responder: &dyn ExchangeResponder,
    request: http::Request<RequestBody>,
    source: &dyn Source,
) -> Result<(http::Response<Bytes>, Option<SentDigest>), TransportError> {
    let (bytes, sent) = match request.body() {
        RequestBody::Empty => (Bytes::new(), None),
        RequestBody::Bytes(b) => (b.clone(), None),
        RequestBody::Source { offset, len, md5 } => {
            let inner = source
                .open(*offset, *len)
                .map_err(|e| source_open_error(*offset, *len, e))?;
            let mut no_rate = Timeouts::default();
            no_rate.min_rate = 0;
            let md5 = md5.then(|| Md5Pool::default().lane());
            let mut reader = DigestReader::new(inner, *len, md5, &no_rate, Instant::now());
            let mut buf = Vec::new();
            if let Err(e) = reader.read_to_end(&mut buf) {
                let msg = reader.failure.take().map_or_else(|| e.to_string(), |f| f.1);
                return Err(TransportError::new(TransportErrorKind::Body, msg));
            }
            (Bytes::from(buf), Some(reader.finish()))
        }
    };
    let response = responder.respond(&request, &bytes)?;
    Ok((response, sent))
}

/// Streams at most `len` bytes of the source, computing their digest; notes a failure or a short source so
/// that it is reported as a body error rather than a network one.
struct DigestReader<'a> {
    inner: Box<dyn Read + Send + 'a>,
    digest: BodyDigest,
    /// The body's MD5 lane, when the request asks for MD5, and the bytes not yet handed to it.
    md5: Option<(PooledMd5, BytesMut)>,
    len: u64,
    remaining: u64,
    /// Why reading stopped: a body error, or a timeout when the server takes the body too slowly.
    failure: Option<(TransportErrorKind, String)>,
    timeouts: Timeouts,
    started: Instant,
}

impl<'a> DigestReader<'a> {
    /// `md5`: the lane that computes the body's MD5 too (CRC-64 always), when the request asks for it.
    fn new(
        inner: Box<dyn Read + Send + 'a>,
        len: u64,
        md5: Option<PooledMd5>,
        timeouts: &Timeouts,
        started: Instant,
    ) -> Self {
        DigestReader {
            inner,
            digest: BodyDigest::with_md5(false),
            md5: md5.map(|lane| (lane, BytesMut::new())),
            len,
            remaining: len,
            failure: None,
            timeouts: timeouts.clone(),
            started,
        }
    }
}

impl Read for DigestReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        // ureq asks for more only once it has written what it had: the bytes taken so far are the bytes
        // the server accepted (give or take one buffer).
        // The rate is counted from the connect deadline on (connecting takes no body bytes).
        let taken = self.len - self.remaining;
        let elapsed = self.started.elapsed().saturating_sub(self.timeouts.connect);
        if let Err(e) = self.timeouts.check_rate(taken, elapsed) {
            self.failure = Some((e.kind, e.message.clone()));
            return Err(io::Error::new(io::ErrorKind::TimedOut, e.message));
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                let msg = source_ended(self.len - self.remaining, self.len);
                self.failure = Some((TransportErrorKind::Body, msg.clone()));
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg))
            }
            Ok(n) => {
                self.digest.update(&buf[..n]);
                if let Some((lane, staged)) = &mut self.md5 {
                    // Handed over in chunks of up to MD5_CHUNK: fewer trips to the pool's lock.
                    if staged.len() + n > MD5_CHUNK && !staged.is_empty() {
                        push_md5(lane, staged.split().freeze());
                    }
                    if staged.is_empty() {
                        staged.reserve(MD5_CHUNK.max(n));
                    }
                    staged.extend_from_slice(&buf[..n]);
                }
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failure = Some((TransportErrorKind::Body, source_read_failed(&e)));
                Err(e)
            }
        }
    }
}

impl DigestReader<'_> {
    /// The digest of the body read, its MD5 once every chunk is hashed.
    fn finish(&mut self) -> SentDigest {
        let mut sent = std::mem::replace(&mut self.digest, BodyDigest::new()).finish();
        if let Some((mut lane, staged)) = self.md5.take() {
            push_md5(&mut lane, staged.freeze());
            let waker = thread_waker();
            sent.md5 = Some(loop {
                match lane.finish(&waker) {
                    Ok(d) => break d,
                    Err(back) => {
                        lane = back;
                        std::thread::park();
                    }
                }
            });
        }
        sent
    }
}

/// Bytes handed to an MD5 lane at a time.
const MD5_CHUNK: usize = 128 * 1024;

/// Hands a chunk to an MD5 lane, parking while the lane's earlier chunk is hashed by another thread.
fn push_md5(lane: &mut PooledMd5, mut chunk: Bytes) {
    if lane.would_hash_alone() {
        // Another sending thread may be about to hand over a chunk to pair with.
        std::thread::yield_now();
    }
    let waker = thread_waker();
    while let Err(back) = lane.push(chunk, &waker) {
        chunk = back;
        std::thread::park();
    }
}

/// A waker that unparks the current thread.
fn thread_waker() -> std::task::Waker {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())))
}

/// Whether an `io::Error` carries a rustls error (a failed handshake or an untrusted certificate), possibly
/// wrapped in further `io::Error`s.
fn is_tls(e: &io::Error) -> bool {
    let mut inner = e.get_ref();
    while let Some(e) = inner {
        if e.is::<rustls::Error>() {
            return true;
        }
        inner = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref);
    }
    false
}

/// Maps a ureq error to the core's transport error kinds.
fn map_error(e: ureq::Error) -> TransportError {
    use ureq::Error as U;
    let kind = match &e {
        U::Timeout(_) => TransportErrorKind::Timeout,
        U::HostNotFound | U::ConnectionFailed | U::ConnectProxyFailed(_) => {
            TransportErrorKind::Connect
        }
        // rustls reports handshake and certificate failures through an io::Error.
        U::Io(io) if is_tls(io) => TransportErrorKind::Tls,
        U::Io(io) => io_kind(io.kind()),
        U::Tls(_) | U::Pem(_) | U::Rustls(_) | U::TlsRequired => TransportErrorKind::Tls,
        // The server closed the connection or sent garbage mid-exchange.
        U::Protocol(_) => TransportErrorKind::Reset,
        _ => TransportErrorKind::Other,
    };
    let message = e.to_string();
    // Keep the cause: the `io::Error` itself for I/O failures (ureq's error has no `source`).
    match e {
        U::Io(io) => TransportError::new(kind, message).with_cause(io),
        e => TransportError::new(kind, message).with_cause(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_reader_limits_and_reports_short_sources() {
        let t = Timeouts::default();
        let mut r = DigestReader::new(
            Box::new(io::Cursor::new(b"hello world".to_vec())),
            5,
            Some(Md5Pool::default().lane()),
            &t,
            Instant::now(),
        );
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(r.finish(), BodyDigest::of(b"hello"));

        // Without MD5 asked for, only the CRC-64 and length are computed.
        let mut r = DigestReader::new(
            Box::new(io::Cursor::new(b"hello world".to_vec())),
            5,
            None,
            &t,
            Instant::now(),
        );
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let d = r.finish();
        assert_eq!(d.md5, None);
        assert_eq!((d.crc64, d.len), (BodyDigest::of(b"hello").crc64, 5));

        let mut r = DigestReader::new(
            Box::new(io::Cursor::new(b"abc".to_vec())),
            5,
            Some(Md5Pool::default().lane()),
            &t,
            Instant::now(),
        );
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(r.failure.unwrap().1.contains("3 of 5"));
    }
}
