//! Sending one [`Transmit`] with hyper: the request exactly as the core built it, a source body streamed in
//! 256 KiB chunks with its digest computed on the way, the response read whole.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::fixture::{body_record, ExchangeRecorder, ExchangeResponder};
use cos_core::task::{Input, RequestBody, Transmit};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::body::{AsyncSource, SourceReader};

/// Size of the chunks a source body is read and sent in.
const CHUNK: usize = 256 * 1024;

/// Connection settings of the hyper client.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_idle_connections: usize,
}

/// The request body hyper sends: bytes in memory, or chunks pumped from the source through a channel.
pub(crate) enum ReqBody {
    Full(Option<Bytes>),
    Channel {
        rx: mpsc::Receiver<io::Result<Bytes>>,
        len: u64,
    },
}

impl http_body::Body for ReqBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        match &mut *self {
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Channel { rx, .. } => rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Full(b) => b.as_ref().map_or(true, |b| b.is_empty()),
            ReqBody::Channel { len, .. } => *len == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Channel { len, .. } => SizeHint::with_exact(*len),
        }
    }
}

type HyperClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, ReqBody>;

pub(crate) struct Transport {
    client: HyperClient,
    read_timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

/// The last moment the exchange moved (a chunk accepted, a response head or body frame received).
struct Progress {
    base: Instant,
    nanos: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            base: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let n = self.base.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.nanos.store(n, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    /// Completes once nothing has moved for `limit`.
    async fn stalled(&self, limit: Duration) {
        loop {
            let deadline = self.last() + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// Why pumping the source stopped early.
enum PumpError {
    /// The source failed or ended short: a body error.
    Source(String),
    /// hyper stopped taking the body (the server answered or the connection failed first).
    Gone,
}

impl Transport {
    pub(crate) fn new(s: &Settings) -> Transport {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(s.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(s.max_idle_connections)
            .build(https);
        Transport {
            client,
            read_timeout: s.read_timeout,
        }
    }

    /// Sends the request (or hands it to the responder hook) and turns the outcome into the core's
    /// [`Input`]; the recorder hook sees every completed exchange.
    pub(crate) async fn send(&self, t: Transmit, source: &dyn AsyncSource, hooks: &Hooks) -> Input {
        let span = tracing::debug_span!(
            "cos_request",
            operation = t.operation,
            method = %t.request.method(),
            path = t.request.uri().path(),
            attempt = t.attempt,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        let id = t.id;
        let copy = hooks.recorder.as_ref().map(|_| copy_request(&t.request));
        let result = match &hooks.responder {
            Some(responder) => {
                replay(&**responder, t.request, source)
                    .instrument(span.clone())
                    .await
            }
            None => {
                self.send_inner(t.request, source)
                    .instrument(span.clone())
                    .await
            }
        };
        let _enter = span.enter();
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

    /// Sends a body-less request and returns the response head with its body unread, for a streamed GET
    /// (the caller reads the body; no hooks, no retries). The head must arrive within the read timeout.
    pub(crate) async fn open(
        &self,
        request: http::Request<()>,
    ) -> Result<(http::response::Parts, hyper::body::Incoming), TransportError> {
        let (parts, ()) = request.into_parts();
        let request = http::Request::from_parts(parts, ReqBody::Full(None));
        let response = tokio::time::timeout(self.read_timeout, self.client.request(request))
            .await
            .map_err(|_| {
                TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response head within {:?}", self.read_timeout),
                )
            })?
            .map_err(map_legacy_error)?;
        Ok(response.into_parts())
    }

    /// How long a streamed body may stall.
    pub(crate) fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    async fn send_inner(
        &self,
        request: http::Request<RequestBody>,
        source: &dyn AsyncSource,
    ) -> Result<(http::Response<Bytes>, Option<SentDigest>), TransportError> {
        let (parts, body) = request.into_parts();
        let progress = Progress::new();
        let timeout = || {
            TransportError::new(
                TransportErrorKind::Timeout,
                format!("no progress for {:?}", self.read_timeout),
            )
        };
        match body {
            RequestBody::Empty | RequestBody::Bytes(_) => {
                let full = match body {
                    RequestBody::Bytes(b) => Some(b),
                    _ => None,
                };
                let request = http::Request::from_parts(parts, ReqBody::Full(full));
                tokio::select! {
                    r = self.exchange(request, &progress) => r.map(|r| (r, None)),
                    _ = progress.stalled(self.read_timeout) => Err(timeout()),
                }
            }
            RequestBody::Source { offset, len } => {
                let reader = source
                    .open(offset, len)
                    .await
                    .map_err(|e| open_error(offset, len, e))?;
                progress.touch();
                let (tx, rx) = mpsc::channel(2);
                let request = http::Request::from_parts(parts, ReqBody::Channel { rx, len });
                let both = async {
                    tokio::join!(
                        self.exchange(request, &progress),
                        pump(reader, len, tx, &progress)
                    )
                };
                let (response, pumped) = tokio::select! {
                    r = both => r,
                    _ = progress.stalled(self.read_timeout) => return Err(timeout()),
                };
                match (response, pumped) {
                    (_, Err(PumpError::Source(msg))) => {
                        Err(TransportError::new(TransportErrorKind::Body, msg))
                    }
                    (Err(e), _) => Err(e),
                    (Ok(r), Ok(digest)) => Ok((r, Some(digest))),
                    // The server answered before taking the whole body (an early error): no digest.
                    (Ok(r), Err(PumpError::Gone)) => Ok((r, None)),
                }
            }
        }
    }

    async fn exchange(
        &self,
        request: http::Request<ReqBody>,
        progress: &Progress,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(map_legacy_error)?;
        progress.touch();
        let (parts, mut body) = response.into_parts();
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| map_error_chain(&e, false))?;
            progress.touch();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok(http::Response::from_parts(parts, buf.freeze()))
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
async fn replay(
    responder: &dyn ExchangeResponder,
    request: http::Request<RequestBody>,
    source: &dyn AsyncSource,
) -> Result<(http::Response<Bytes>, Option<SentDigest>), TransportError> {
    let (bytes, sent) = match request.body() {
        RequestBody::Empty => (Bytes::new(), None),
        RequestBody::Bytes(b) => (b.clone(), None),
        RequestBody::Source { offset, len } => {
            let (offset, len) = (*offset, *len);
            let mut reader = source
                .open(offset, len)
                .await
                .map_err(|e| open_error(offset, len, e))?;
            let mut buf = Vec::new();
            let body_error = |msg: String| TransportError::new(TransportErrorKind::Body, msg);
            (&mut reader)
                .take(len)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| body_error(format!("reading the body source failed: {e}")))?;
            if (buf.len() as u64) < len {
                return Err(body_error(format!(
                    "the body source ended after {} of {len} bytes",
                    buf.len()
                )));
            }
            let digest = BodyDigest::of(&buf);
            (Bytes::from(buf), Some(digest))
        }
    };
    let response = responder.respond(&request, &bytes)?;
    Ok((response, sent))
}

/// Reads `len` bytes of the source in chunks into the request body channel, computing their digest.
async fn pump(
    mut reader: SourceReader,
    len: u64,
    tx: mpsc::Sender<io::Result<Bytes>>,
    progress: &Progress,
) -> Result<SentDigest, PumpError> {
    let mut digest = BodyDigest::new();
    let mut remaining = len;
    while remaining > 0 {
        let want = CHUNK.min(usize::try_from(remaining).unwrap_or(CHUNK));
        let mut buf = BytesMut::zeroed(want);
        let failure = match reader.read(&mut buf[..]).await {
            Ok(0) => Some(format!(
                "the body source ended after {} of {len} bytes",
                len - remaining
            )),
            Ok(n) => {
                buf.truncate(n);
                digest.update(&buf);
                remaining -= n as u64;
                if tx.send(Ok(buf.freeze())).await.is_err() {
                    return Err(PumpError::Gone);
                }
                progress.touch();
                None
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => Some(format!("reading the body source failed: {e}")),
        };
        if let Some(msg) = failure {
            // Abort the request so that no truncated body is taken for a whole one.
            let _ = tx.send(Err(io::Error::other(msg.clone()))).await;
            return Err(PumpError::Source(msg));
        }
    }
    Ok(digest.finish())
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

fn map_legacy_error(e: hyper_util::client::legacy::Error) -> TransportError {
    map_error_chain(&e, e.is_connect())
}

/// Classifies an error by walking its source chain for an `io::Error` or a `hyper::Error`.
pub(crate) fn map_error_chain(e: &(dyn StdError + 'static), connecting: bool) -> TransportError {
    let mut message = e.to_string();
    let mut kind = None;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    let mut first = true;
    while let Some(err) = cur {
        if !first {
            message.push_str(": ");
            message.push_str(&err.to_string());
        }
        first = false;
        if kind.is_none() {
            if let Some(io) = err.downcast_ref::<io::Error>() {
                kind = Some(match io_kind(io) {
                    // rustls reports handshake and certificate failures as invalid data.
                    TransportErrorKind::Other
                        if connecting && io.kind() == io::ErrorKind::InvalidData =>
                    {
                        TransportErrorKind::Tls
                    }
                    TransportErrorKind::Other if connecting => TransportErrorKind::Connect,
                    k => k,
                });
            } else if let Some(h) = err.downcast_ref::<hyper::Error>() {
                if h.is_timeout() {
                    kind = Some(TransportErrorKind::Timeout);
                } else if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                    kind = Some(TransportErrorKind::Reset);
                }
            }
        }
        cur = err.source();
    }
    let kind = kind.unwrap_or(if connecting {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Other
    });
    TransportError::new(kind, message)
}
