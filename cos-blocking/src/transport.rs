//! Sending one [`Transmit`] with ureq: the request exactly as the core built it, the body streamed from the
//! source with its digest computed on the way, the response read whole.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::fixture::{body_record, ExchangeRecorder, ExchangeResponder};
use cos_core::task::{Input, RequestBody, Transmit};

use crate::body::Source;

/// Connection settings of the ureq agent.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_idle_connections: usize,
}

pub(crate) struct Transport {
    agent: ureq::Agent,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(s: &Settings) -> Transport {
        let config = ureq::Agent::config_builder()
            // Every status reaches the core, which decides what it means.
            .http_status_as_error(false)
            // Redirects are answers for the core too.
            .max_redirects(0)
            // Send exactly the core's headers: no automatic Accept (User-Agent is always set by the core).
            .accept("")
            .user_agent("")
            .timeout_connect(Some(s.connect_timeout))
            .timeout_per_read(Some(s.read_timeout))
            .timeout_per_write(Some(s.read_timeout))
            .max_idle_connections(s.max_idle_connections)
            .max_idle_connections_per_host(s.max_idle_connections)
            .build();
        Transport {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// Sends the request (or hands it to the responder hook) and turns the outcome into the core's
    /// [`Input`]; the recorder hook sees every completed exchange.
    pub(crate) fn send(&self, t: Transmit, source: &dyn Source, hooks: &Hooks) -> Input {
        let id = t.id;
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
        let copy = hooks.recorder.as_ref().map(|_| copy_request(&t.request));
        let result = match &hooks.responder {
            Some(responder) => replay(&**responder, t.request, source),
            None => self.send_inner(t.request, source),
        };
        match result {
            Ok((response, sent)) => {
                span.record("status", response.status().as_u16());
                if let Some(rid) = response
                    .headers()
                    .get("x-cos-request-id")
                    .and_then(|v| v.to_str().ok())
                {
                    span.record("request_id", rid);
                }
                if let (Some(recorder), Some(request)) = (&hooks.recorder, copy) {
                    let body = body_record(request.body(), sent.as_ref());
                    recorder.record(&request, body, &response);
                }
                Input::Response { id, response, sent }
            }
            Err(error) => {
                tracing::debug!(kind = ?error.kind, "request failed: {}", error.message);
                Input::Failed { id, error }
            }
        }
    }

    /// Sends a body-less request and returns the response with its body unread, for a streamed GET (the
    /// caller reads the body; no hooks, no retries).
    pub(crate) fn open(
        &self,
        request: http::Request<()>,
    ) -> Result<http::Response<ureq::Body>, TransportError> {
        self.agent.run(request).map_err(map_error)
    }

    fn send_inner(
        &self,
        request: http::Request<RequestBody>,
        source: &dyn Source,
    ) -> Result<(http::Response<Bytes>, Option<SentDigest>), TransportError> {
        let (parts, body) = request.into_parts();
        let (response, sent) = match body {
            RequestBody::Empty => (
                self.agent
                    .run(http::Request::from_parts(parts, ()))
                    .map_err(map_error)?,
                None,
            ),
            RequestBody::Bytes(b) => (
                self.agent
                    .run(http::Request::from_parts(parts, &b[..]))
                    .map_err(map_error)?,
                None,
            ),
            RequestBody::Source { offset, len } => {
                let inner = source
                    .open(offset, len)
                    .map_err(|e| open_error(offset, len, e))?;
                let mut reader = DigestReader::new(inner, len);
                let sent = self.agent.run(http::Request::from_parts(
                    parts,
                    ureq::SendBody::from_reader(&mut reader),
                ));
                match (sent, reader.failure.take()) {
                    (Err(_), Some(body_error)) => {
                        return Err(TransportError::new(TransportErrorKind::Body, body_error))
                    }
                    (Err(e), None) => return Err(map_error(e)),
                    (Ok(r), _) => (r, Some(reader.digest.finish())),
                }
            }
        };
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(map_error)?;
        Ok((http::Response::from_parts(parts, Bytes::from(bytes)), sent))
    }
}

/// The optional transport hooks: record every exchange, or answer requests in memory (replay).
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub recorder: Option<Arc<dyn ExchangeRecorder>>,
    pub responder: Option<Arc<dyn ExchangeResponder>>,
}

fn open_error(offset: u64, len: u64, e: io::Error) -> TransportError {
    TransportError::new(
        TransportErrorKind::Body,
        format!("cannot open the body source at {offset}+{len}: {e}"),
    )
}

/// A copy of a request head and body description, for the recorder.
fn copy_request(r: &http::Request<RequestBody>) -> http::Request<RequestBody> {
    let mut c = http::Request::new(r.body().clone());
    *c.method_mut() = r.method().clone();
    *c.uri_mut() = r.uri().clone();
    *c.version_mut() = r.version();
    *c.headers_mut() = r.headers().clone();
    c
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
        RequestBody::Source { offset, len } => {
            let inner = source
                .open(*offset, *len)
                .map_err(|e| open_error(*offset, *len, e))?;
            let mut reader = DigestReader::new(inner, *len);
            let mut buf = Vec::new();
            if let Err(e) = reader.read_to_end(&mut buf) {
                let msg = reader.failure.take().unwrap_or_else(|| e.to_string());
                return Err(TransportError::new(TransportErrorKind::Body, msg));
            }
            (Bytes::from(buf), Some(reader.digest.finish()))
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
    len: u64,
    remaining: u64,
    failure: Option<String>,
}

impl<'a> DigestReader<'a> {
    fn new(inner: Box<dyn Read + Send + 'a>, len: u64) -> Self {
        DigestReader {
            inner,
            digest: BodyDigest::new(),
            len,
            remaining: len,
            failure: None,
        }
    }
}

impl Read for DigestReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..max]) {
            Ok(0) => {
                let msg = format!(
                    "the body source ended after {} of {} bytes",
                    self.len - self.remaining,
                    self.len
                );
                self.failure = Some(msg.clone());
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg))
            }
            Ok(n) => {
                self.digest.update(&buf[..n]);
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failure = Some(format!("reading the body source failed: {e}"));
                Err(e)
            }
        }
    }
}

fn io_kind(e: &io::Error) -> TransportErrorKind {
    use io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused | K::NotConnected | K::AddrNotAvailable => TransportErrorKind::Connect,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            TransportErrorKind::Reset
        }
        K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Other,
    }
}

/// Maps a ureq error to the core's transport error kinds.
fn map_error(e: ureq::Error) -> TransportError {
    use ureq::Error as U;
    let kind = match &e {
        U::Timeout(_) => TransportErrorKind::Timeout,
        U::HostNotFound | U::ConnectionFailed | U::ConnectProxyFailed(_) => {
            TransportErrorKind::Connect
        }
        U::Io(io) => io_kind(io),
        U::Tls(_) | U::Pem(_) | U::Rustls(_) | U::TlsRequired => TransportErrorKind::Tls,
        // The server closed the connection or sent garbage mid-exchange.
        U::Protocol(_) => TransportErrorKind::Reset,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_reader_limits_and_reports_short_sources() {
        let mut r = DigestReader::new(Box::new(io::Cursor::new(b"hello world".to_vec())), 5);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(r.digest.finish(), BodyDigest::of(b"hello"));

        let mut r = DigestReader::new(Box::new(io::Cursor::new(b"abc".to_vec())), 5);
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert!(r.failure.unwrap().contains("3 of 5"));
    }
}
