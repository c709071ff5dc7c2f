//! [`Client::get_object_stream`]: GET Object with the body streamed as a `Stream` of [`Bytes`] or an
//! [`AsyncRead`], checked by the core as it arrives, never held whole in memory.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::ops::{BodyCheck, GetHead, GetObject, GetObjectStream, ObjectInfo};
use cos_core::Error;
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, ReadBuf};

use crate::transport::map_error_chain;
use crate::Client;

/// The body of a streamed GET Object: a [`futures_core::Stream`] of [`Bytes`] chunks, or an
/// [`AsyncRead`] (use one or the other).
///
/// Its bytes are checked while they arrive: a body longer or shorter than `Content-Length` (a cut
/// connection) or, for a complete object, one whose CRC-64 differs from `x-cos-hash-crc64ecma`, ends the
/// stream with an error instead of a clean end. A body that stalls longer than the client's read timeout
/// is a [`TransportErrorKind::Timeout`] error.
pub struct ObjectStream {
    info: ObjectInfo,
    range: Option<(u64, u64, u64)>,
    body: hyper::body::Incoming,
    check: BodyCheck,
    stall: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    leftover: Bytes,
    finished: bool,
    /// The error that ended the body, repeated by every later [`AsyncRead`] call so that a reader that
    /// retries after an error never sees a short body end cleanly.
    read_error: Option<(std::io::ErrorKind, String)>,
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("info", &self.info)
            .field("range", &self.range)
            .field("received", &self.check.received())
            .finish_non_exhaustive()
    }
}

impl ObjectStream {
    /// The object's headers (`content_length` is the length of this body).
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// For a ranged GET: `(first, last, total)` from `Content-Range`.
    pub fn range(&self) -> Option<(u64, u64, u64)> {
        self.range
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.check.received()
    }

    /// The next chunk, `None` at the verified end of the body.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => {
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        self.finished = true;
                        return Poll::Ready(Some(Err(Error::Transport(TransportError::new(
                            TransportErrorKind::Timeout,
                            format!("the object body stalled for {:?}", self.stall),
                        )))));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(None) => {
                    self.finished = true;
                    return Poll::Ready(self.check.finish().err().map(Err));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.finished = true;
                    return Poll::Ready(Some(Err(Error::Transport(map_error_chain(&e, false)))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let deadline = tokio::time::Instant::now() + self.stall;
                    self.deadline.as_mut().reset(deadline);
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if let Err(e) = self.check.update(&data) {
                        self.finished = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
            }
        }
    }
}

use std::future::Future as _;

impl futures_core::Stream for ObjectStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

impl AsyncRead for ObjectStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some((kind, message)) = &this.read_error {
            return Poll::Ready(Err(std::io::Error::new(*kind, message.clone())));
        }
        if this.leftover.is_empty() {
            match this.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => {
                    let e = std::io::Error::other(e);
                    this.read_error = Some((e.kind(), e.to_string()));
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Some(Ok(b))) => this.leftover = b,
            }
        }
        let n = this.leftover.len().min(buf.remaining());
        buf.put_slice(&this.leftover[..n]);
        this.leftover.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl Client {
    /// GET Object with the body streamed: the op's range and conditions (`If-Match`, `If-None-Match`,
    /// `If-Modified-Since`, `If-Unmodified-Since`) apply, and the status is interpreted by the core
    /// ([`GetObjectStream`]): a failed condition is the service error `PreconditionFailed` (412) or
    /// `NotModified` (304), an unsatisfiable range `InvalidRange` (416).
    ///
    /// One attempt, without retries (a failure part-way through the body is the stream's error).
    ///
    /// ```no_run
    /// # async fn f(client: cos_async::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use cos_async::ops::GetObject;
    /// let mut body = client.get_object_stream(GetObject::new("big.bin")).await?;
    /// while let Some(chunk) = body.chunk().await {
    ///     let _bytes = chunk?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_object_stream(&self, op: GetObject) -> Result<ObjectStream, Error> {
        let stream = GetObjectStream::new(op);
        let now = SystemTime::now();
        let config = self.signing_config(now)?;
        let mut request = stream.to_request(&config)?;
        cos_core::task::sign(&config, &mut request, now)?;
        let (parts, _) = request.into_parts();
        let transport = self.transport();
        let (parts, mut body) = transport
            .open(http::Request::from_parts(parts, ()))
            .await
            .map_err(Error::Transport)?;
        let stall = transport.read_timeout();
        match stream.head(parts.status, &parts.headers) {
            GetHead::Body { info, range, check } => Ok(ObjectStream {
                info: *info,
                range,
                body,
                check,
                stall,
                deadline: Box::pin(tokio::time::sleep(stall)),
                leftover: Bytes::new(),
                finished: false,
                read_error: None,
            }),
            GetHead::Error { max_body } => {
                let mut bytes = BytesMut::new();
                let read = async {
                    while bytes.len() < max_body {
                        match body.frame().await {
                            Some(Ok(f)) => {
                                if let Ok(d) = f.into_data() {
                                    let room = max_body - bytes.len();
                                    bytes.extend_from_slice(&d[..d.len().min(room)]);
                                }
                            }
                            _ => break,
                        }
                    }
                };
                let _ = tokio::time::timeout(stall, read).await;
                let response = http::Response::from_parts(parts, bytes.freeze());
                Err(stream.error(&response))
            }
            _ => Err(Error::Transport(TransportError::new(
                TransportErrorKind::Other,
                "unknown GET decision",
            ))),
        }
    }
}

/// What [`Client::download_file`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Bytes written (the object's size).
    pub size: u64,
    /// The ETag of the object downloaded.
    pub etag: Option<String>,
    /// GET requests sent.
    pub requests: usize,
}

impl Client {
    /// Downloads `key` to `path` as [`cos_core::download::DownloadPlan`] decides: one GET below
    /// `options.threshold`, ranged GETs (`options.concurrency` at a time, each with `If-Match` on the ETag)
    /// above it. The bytes go to a temporary file beside `path` (`<name>.cos-download`), their CRC-64 is
    /// computed as they are written and checked against the object's; only then is the file renamed to
    /// `path`. On any error the temporary file is removed and `path` is left as it was.
    pub async fn download_file(
        &self,
        key: &str,
        path: impl AsRef<std::path::Path>,
        options: &cos_core::download::DownloadOptions,
    ) -> Result<DownloadOutcome, Error> {
        let path = path.as_ref();
        let info = self.head_object(key).await?;
        let plan = std::sync::Arc::new(cos_core::download::DownloadPlan::new(key, &info, options)?);
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".cos-download");
        let tmp = path.with_file_name(tmp_name);
        let result = async {
            let crcs = self.download_to(&plan, &tmp).await?;
            plan.verify(&crcs)?;
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(|e| file_error(path, e))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result.map(|()| DownloadOutcome {
            size: plan.size(),
            etag: info.etag.clone(),
            requests: plan.pieces(),
        })
    }

    /// Fetches every piece into `tmp` with `concurrency` workers; returns each piece's CRC-64.
    async fn download_to(
        &self,
        plan: &std::sync::Arc<cos_core::download::DownloadPlan>,
        tmp: &std::path::Path,
    ) -> Result<Vec<u64>, Error> {
        let file = tokio::fs::File::create(tmp)
            .await
            .map_err(|e| file_error(tmp, e))?;
        file.set_len(plan.size())
            .await
            .map_err(|e| file_error(tmp, e))?;
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..plan.concurrency() {
            let (client, plan, next) = (self.clone(), plan.clone(), next.clone());
            let tmp = tmp.to_path_buf();
            workers.spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= plan.pieces() {
                        return Ok::<_, Error>(done);
                    }
                    done.push((i, client.fetch_piece(&plan, i, &tmp).await?));
                }
            });
        }
        let mut crcs = vec![0u64; plan.pieces()];
        while let Some(joined) = workers.join_next().await {
            let pieces = joined.map_err(|e| {
                Error::Transport(TransportError::new(
                    TransportErrorKind::Other,
                    format!("a download worker failed: {e}"),
                ))
            })??; // the first error drops the set, which aborts the other workers
            for (i, crc) in pieces {
                crcs[i] = crc;
            }
        }
        file.sync_all().await.map_err(|e| file_error(tmp, e))?;
        Ok(crcs)
    }

    /// One piece: a streamed GET written at its offset through its own handle, CRC-64 on the way.
    async fn fetch_piece(
        &self,
        plan: &cos_core::download::DownloadPlan,
        i: usize,
        tmp: &std::path::Path,
    ) -> Result<u64, Error> {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        let (offset, _) = plan.piece(i);
        let mut body = self.get_object_stream(plan.request(i)).await?;
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .await
            .map_err(|e| file_error(tmp, e))?;
        out.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| file_error(tmp, e))?;
        let mut crc = cos_core::checksum::Crc64::new();
        while let Some(chunk) = body.chunk().await {
            let chunk = chunk?;
            crc.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| file_error(tmp, e))?;
        }
        out.flush().await.map_err(|e| file_error(tmp, e))?;
        Ok(crc.finish())
    }
}

fn file_error(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::Transport(TransportError::new(
        TransportErrorKind::Body,
        format!("{}: {e}", path.display()),
    ))
}
