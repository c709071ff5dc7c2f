//! Sending one [`Transmit`] with hyper: the request exactly as the core built it, a source body streamed in
//! 256 KiB chunks with its digest computed on the way, the response read up to the limit the core set for it.
//!
//! Deadlines ([`Timeouts`], shared with the blocking transport): the connector's connect timeout, and a
//! watchdog that follows the exchange through its phases — sending the body (idle time and minimum
//! rate), awaiting the response head (`response_head`), receiving the body (idle time and minimum rate).

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::network::Conn;
use bytes::Bytes;
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
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::body::{AsyncSource, ChunkPool, SourceReader};

/// Size of the chunks a source body is read and sent in.
const CHUNK: usize = 256 * 1024;

/// Size of the frames a body in memory is handed to hyper in (so that its progress can be followed).
const FRAME: usize = 64 * 1024;

/// The request body hyper sends: bytes in memory, or chunks pumped from the source through a channel;
/// every frame hyper takes is counted in the exchange's [`Progress`].
pub(crate) struct ReqBody {
    kind: ReqKind,
    remaining: u64,
    progress: Arc<Progress>,
}

enum ReqKind {
    Full(Bytes),
    Channel(mpsc::Receiver<io::Result<Bytes>>),
}

impl http_body::Body for ReqBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        let next = match &mut this.kind {
            ReqKind::Full(b) if b.is_empty() => Poll::Ready(None),
            ReqKind::Full(b) => Poll::Ready(Some(Ok(b.split_to(FRAME.min(b.len()))))),
            ReqKind::Channel(rx) => rx.poll_recv(cx),
        };
        if let Poll::Ready(Some(Ok(data))) = &next {
            this.remaining = this.remaining.saturating_sub(data.len() as u64);
            this.progress.sent(data.len() as u64, this.remaining == 0);
        }
        next.map(|c| c.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

type HyperClient = hyper_util::client::legacy::Client<HttpsConnector<Conn>, ReqBody>;

pub(crate) struct Transport {
    /// The client, or why it could not be set up (an unreadable CA certificate…), reported per request.
    client: Result<HyperClient, String>,
    timeouts: Timeouts,
    /// Chunk buffers shared by every request of the client, so that a batch of files does not allocate
    /// (and fault in) a fresh buffer for each body.
    pool: ChunkPool,
    /// The lanes in which the MD5s of bodies sent at once are hashed two at a time.
    md5s: Md5Pool,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

/// Where an exchange stands, for the watchdog: nanoseconds since `base` (0: not yet) of the last byte
/// moved, of the end of the request body and of the response head, and the bytes moved each way.
struct Progress {
    base: Instant,
    last: AtomicU64,
    body_done: AtomicU64,
    head: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            base: Instant::now(),
            last: AtomicU64::new(0),
            body_done: AtomicU64::new(0),
            head: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    fn stamp(&self) -> u64 {
        (self.base.elapsed().as_nanos().min(u64::MAX as u128 - 1) as u64) + 1
    }

    fn at(&self, stamp: u64) -> Instant {
        self.base + Duration::from_nanos(stamp.saturating_sub(1))
    }

    fn sent(&self, n: u64, done: bool) {
        let now = self.stamp();
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.last.store(now, Ordering::Relaxed);
        if done {
            self.body_done.store(now, Ordering::Relaxed);
        }
    }

    fn head(&self) {
        let now = self.stamp();
        self.last.store(now, Ordering::Relaxed);
        self.head.store(now, Ordering::Relaxed);
    }

    fn received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
        self.last.store(self.stamp(), Ordering::Relaxed);
    }

    /// Where the exchange stands, for the core's [`Timeouts::next_deadline`].
    fn times(&self, has_body: bool) -> cos_core::config::ExchangeTimes {
        let at = |a: &AtomicU64| match a.load(Ordering::Relaxed) {
            0 => None,
            stamp => Some(self.at(stamp)),
        };
        cos_core::config::ExchangeTimes {
            started: self.base,
            last_byte: at(&self.last),
            body_sent: at(&self.body_done),
            head: at(&self.head),
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            has_body,
        }
    }

    /// Completes with a timeout error once the exchange misses a deadline.
    async fn watchdog(&self, t: &Timeouts, has_body: bool) -> TransportError {
        loop {
            let next = t.next_deadline(&self.times(has_body));
            let Some(deadline) = next.at else {
                // No deadline can be represented: wait for the next change of phase.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            if Instant::now() >= deadline {
                return TransportError::new(TransportErrorKind::Timeout, next.reason);
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
    pub(crate) fn new(s: &ConnectionSettings) -> Transport {
        let client = crate::network::connector(&s.roots, s.proxy.as_ref(), s.timeouts.connect).map(
            |https| {
                hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(50))
                    .pool_max_idle_per_host(s.max_idle_connections)
                    .build(https)
            },
        );
        Transport {
            client,
            timeouts: s.timeouts.clone(),
            pool: ChunkPool::default(),
            md5s: Md5Pool::default(),
        }
    }

    /// Sends the request (or hands it to the responder hook) and turns the outcome into the core's
    /// [`Input`]; the recorder hook sees every completed exchange.
    pub(crate) async fn send(
        &self,
        t: Transmit,
        source: &dyn AsyncSource,
        hooks: &ExchangeHooks,
    ) -> Input {
        let span = tracing::debug_span!(
            "cos_request",
            operation = t.operation,
            method = %t.request.method(),
            path = t.request.uri().path(),
            attempt = t.attempt,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        let (exchange, request) = Exchange::start(t, hooks);
        let outcome = match &hooks.responder {
            Some(responder) => {
                replay(&**responder, request, source)
                    .instrument(span.clone())
                    .await
            }
            None => {
                self.send_inner(request, source)
                    .instrument(span.clone())
                    .await
            }
        };
        let _enter = span.enter();
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

    /// Sends a body-less request and returns the response head with its body unread, for a streamed GET
    /// (the caller reads the body; no hooks, no retries). The head must arrive within the read timeout.
    pub(crate) async fn open(
        &self,
        request: http::Request<()>,
    ) -> Result<(http::response::Parts, hyper::body::Incoming), TransportError> {
        let (parts, ()) = request.into_parts();
        let body = ReqBody {
            kind: ReqKind::Full(Bytes::new()),
            remaining: 0,
            progress: Arc::new(Progress::new()),
        };
        let request = http::Request::from_parts(parts, body);
        let client = self
            .client
            .as_ref()
            .map_err(|e| TransportError::new(TransportErrorKind::Tls, e.clone()))?;
        let head = self.timeouts.response_head;
        let response = tokio::time::timeout(head, client.request(request))
            .await
            .map_err(|_| {
                TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response head within {head:?}"),
                )
            })?
            .map_err(map_legacy_error)?;
        Ok(response.into_parts())
    }

    /// How long a streamed body may stall ([`Timeouts::idle`]).
    pub(crate) fn read_timeout(&self) -> Duration {
        self.timeouts.idle
    }

    async fn send_inner(
        &self,
        request: http::Request<RequestBody>,
        source: &dyn AsyncSource,
    ) -> Result<(http::Response<Bytes>, Option<SentDigest>), TransportError> {
        let limits = ResponseLimits::of(&request);
        let (parts, body) = request.into_parts();
        let progress = Arc::new(Progress::new());
        let t = &self.timeouts;
        let len = body.len();
        let req_body = |kind| ReqBody {
            kind,
            remaining: len,
            progress: progress.clone(),
        };
        match body {
            RequestBody::Empty | RequestBody::Bytes(_) => {
                let full = match body {
                    RequestBody::Bytes(b) => b,
                    _ => Bytes::new(),
                };
                let request = http::Request::from_parts(parts, req_body(ReqKind::Full(full)));
                tokio::select! {
                    r = self.exchange(request, &progress, &limits) => r.map(|r| (r, None)),
                    e = progress.watchdog(t, len > 0) => Err(e),
                }
            }
            RequestBody::Source { offset, len, md5 } => {
                let reader = source
                    .open(offset, len)
                    .await
                    .map_err(|e| source_open_error(offset, len, e))?;
                let (tx, rx) = mpsc::channel(2);
                let request = http::Request::from_parts(parts, req_body(ReqKind::Channel(rx)));
                let both = async {
                    tokio::join!(
                        self.exchange(request, &progress, &limits),
                        pump(reader, len, md5.then(|| self.md5s.lane()), tx, &self.pool)
                    )
                };
                let (response, pumped) = tokio::select! {
                    r = both => r,
                    e = progress.watchdog(t, len > 0) => return Err(e),
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
        limits: &ResponseLimits,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| TransportError::new(TransportErrorKind::Tls, e.clone()))?;
        let response = client.request(request).await.map_err(map_legacy_error)?;
        progress.head();
        let (parts, mut body) = response.into_parts();
        let declared = http_body::Body::size_hint(&body).exact();
        let mut kept = ResponseBody::new(limits, parts.status, declared)?;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| map_error_chain(&e, false).with_cause(e))?;
            if let Ok(data) = frame.into_data() {
                progress.received(data.len() as u64);
                // Past a cut, the rest of the body is not read: dropping it closes the connection.
                if !kept.push(&data)? {
                    break;
                }
            }
        }
        Ok(kept.finish(parts))
    }
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
        RequestBody::Source { offset, len, md5 } => {
            let (offset, len, md5) = (*offset, *len, *md5);
            let mut reader = source
                .open(offset, len)
                .await
                .map_err(|e| source_open_error(offset, len, e))?;
            let mut buf = Vec::new();
            let body_error = |msg: String| TransportError::new(TransportErrorKind::Body, msg);
            (&mut reader)
                .take(len)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| body_error(source_read_failed(&e)))?;
            if (buf.len() as u64) < len {
                return Err(body_error(source_ended(buf.len() as u64, len)));
            }
            let digest = BodyDigest::of_with_md5(&buf, md5);
            (Bytes::from(buf), Some(digest))
        }
    };
    let response = responder.respond(&request, &bytes)?;
    Ok((response, sent))
}

/// Reads `len` bytes of the source in chunks into the request body channel, computing their CRC-64 and,
/// with an `md5` lane (the request asks for MD5), handing each chunk to it.
async fn pump(
    mut reader: SourceReader,
    len: u64,
    mut md5: Option<PooledMd5>,
    tx: mpsc::Sender<io::Result<Bytes>>,
    pool: &ChunkPool,
) -> Result<SentDigest, PumpError> {
    let mut digest = BodyDigest::with_md5(false);
    let mut remaining = len;
    while remaining > 0 {
        let want = CHUNK.min(usize::try_from(remaining).unwrap_or(CHUNK));
        let failure = match pool.read(&mut reader, want).await {
            Ok(buf) if buf.is_empty() => Some(source_ended(len - remaining, len)),
            Ok(buf) => {
                digest.update(&buf);
                if let Some(lane) = md5.as_mut() {
                    push_md5(lane, buf.clone()).await;
                }
                remaining -= buf.len() as u64;
                if tx.send(Ok(buf)).await.is_err() {
                    return Err(PumpError::Gone);
                }
                None
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            Err(e) => Some(source_read_failed(&e)),
        };
        if let Some(msg) = failure {
            // Abort the request so that no truncated body is taken for a whole one.
            let _ = tx.send(Err(io::Error::other(msg.clone()))).await;
            return Err(PumpError::Source(msg));
        }
    }
    let mut sent = digest.finish();
    if let Some(lane) = md5 {
        sent.md5 = finish_md5(lane).await;
    }
    Ok(sent)
}

/// Hands a chunk to an MD5 lane, waiting while the lane's earlier chunk is hashed by another request.
async fn push_md5(lane: &mut PooledMd5, chunk: Bytes) {
    let mut chunk = Some(chunk);
    std::future::poll_fn(|cx| match chunk.take().map(|c| lane.push(c, cx.waker())) {
        Some(Err(back)) => {
            chunk = Some(back);
            Poll::Pending
        }
        _ => Poll::Ready(()),
    })
    .await
}

/// The lane's MD5, waiting while another request hashes one of its chunks (`None` only if polled again
/// after it returned: no digest rather than a made-up one).
async fn finish_md5(lane: PooledMd5) -> Option<[u8; 16]> {
    let mut lane = Some(lane);
    std::future::poll_fn(|cx| match lane.take().map(|l| l.finish(cx.waker())) {
        Some(Ok(d)) => Poll::Ready(Some(d)),
        Some(Err(back)) => {
            lane = Some(back);
            Poll::Pending
        }
        None => Poll::Ready(None),
    })
    .await
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

fn map_legacy_error(e: hyper_util::client::legacy::Error) -> TransportError {
    map_error_chain(&e, e.is_connect()).with_cause(e)
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
                let tls = is_tls(io);
                kind = Some(match io_kind(io.kind()) {
                    _ if tls => TransportErrorKind::Tls,
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
