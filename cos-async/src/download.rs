//! [`Client::get_object_stream`]: GET Object with the body streamed as a `Stream` of [`Bytes`] or an
//! [`AsyncRead`], checked by the core as it arrives, never held whole in memory.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Buf, Bytes, BytesMut};
use cos_core::download::file_error;
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
        let config = self.state().signing_config(now)?;
        let request = stream.signed_request(&config, now)?;
        let transport = self.transport();
        let (parts, mut body) = transport.open(request).await.map_err(Error::Transport)?;
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
        }
    }
}

pub use cos_core::download::DownloadOutcome;

/// A download progress callback: bytes in the temporary file so far, and the object's size.
pub type DownloadProgress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

impl Client {
    /// Downloads `key` to `path` as [`cos_core::download::DownloadTask`] decides: one GET below
    /// `options.threshold`, ranged GETs (`options.concurrency` at a time, each with `If-Match` on the ETag)
    /// above it; a body cut part-way is continued with a ranged GET of the rest. The bytes go to a
    /// temporary file beside `path` ([`cos_core::download::temp_path`]), their CRC-64 is computed as they
    /// are written and checked against the object's; only then is the file renamed to `path`.
    ///
    /// With `options.checkpoint`, a checkpoint beside it ([`cos_core::download::checkpoint_path`]) names
    /// the ranges already written: a failed or killed download, run again, fetches only the missing ones.
    /// Without it, a failed download removes the temporary file. `path` is left as it was on any error.
    pub async fn download_file(
        &self,
        key: &str,
        path: impl AsRef<std::path::Path>,
        options: &cos_core::download::DownloadOptions,
    ) -> Result<DownloadOutcome, Error> {
        self.download_file_with_progress(key, path, options, &|_, _| {})
            .await
    }

    /// [`Client::download_file`], calling `progress(done, total)` as ranges are written.
    pub async fn download_file_with_progress(
        &self,
        key: &str,
        path: impl AsRef<std::path::Path>,
        options: &cos_core::download::DownloadOptions,
        progress: DownloadProgress<'_>,
    ) -> Result<DownloadOutcome, Error> {
        self.download_file_inner(key, path.as_ref(), options, progress, None, &|| {})
            .await
    }

    /// The download loop, taking [`Command`](cos_core::task::Command)s from `commands` beside the fetch
    /// reports and calling `on_paused` whenever the task is paused with nothing in flight.
    pub(crate) async fn download_file_inner(
        &self,
        key: &str,
        path: &std::path::Path,
        options: &cos_core::download::DownloadOptions,
        progress: DownloadProgress<'_>,
        mut commands: Option<tokio::sync::mpsc::UnboundedReceiver<cos_core::task::Command>>,
        on_paused: &(dyn Fn() + Sync),
    ) -> Result<DownloadOutcome, Error> {
        use cos_core::download::{checkpoint_path, temp_path, DownloadStep, DownloadTask};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        // Commands from the owner; without an owner, none ever comes.
        async fn command(
            commands: &mut Option<tokio::sync::mpsc::UnboundedReceiver<cos_core::task::Command>>,
        ) -> Option<cos_core::task::Command> {
            match commands {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        }
        let info = self.head_object(key).await?;
        let (tmp, cp_path) = (temp_path(path), checkpoint_path(path));
        let mut task = DownloadTask::for_client(&self.config(), key, &info, options)?;
        let mut file = None;
        let stop = Arc::new(AtomicBool::new(false));
        let tmp_shared: Arc<std::path::Path> = Arc::from(tmp.as_path());
        let mut fetches = tokio::task::JoinSet::new();
        let result = loop {
            match task.next_step() {
                DownloadStep::Fetch(fetch) => {
                    let (client, tmp, stop) = (self.clone(), tmp_shared.clone(), stop.clone());
                    fetches.spawn(async move {
                        if !fetch.delay.is_zero() {
                            tokio::time::sleep(fetch.delay).await;
                        }
                        let report = client.fetch_range(&fetch, &tmp, &stop).await;
                        (fetch.id, report)
                    });
                }
                DownloadStep::Paused => {
                    // Nothing in flight, the checkpoint stored: wait for a command (a dropped owner
                    // cancels).
                    on_paused();
                    let c = command(&mut commands).await;
                    task.command(c.unwrap_or(cos_core::task::Command::Cancel));
                }
                DownloadStep::Wait => match tokio::select! {
                    joined = fetches.join_next() => Ok(joined),
                    c = command(&mut commands) => Err(c),
                } {
                    Err(c) => {
                        let c = c.unwrap_or(cos_core::task::Command::Cancel);
                        task.command(c);
                    }
                    Ok(Some(Ok((id, report)))) => task.fetched(id, report),
                    Ok(Some(Err(e))) => task.local_failure(file_error(
                        &tmp,
                        std::io::Error::other(format!("a download fetch failed: {e}")),
                    )),
                    Ok(None) => task
                        .local_failure(file_error(&tmp, std::io::Error::other("a fetch vanished"))),
                },
                DownloadStep::LoadCheckpoint => task.loaded(
                    tokio::fs::read(&cp_path).await.ok().as_deref(),
                    tokio::fs::metadata(&tmp).await.ok().map(|m| m.len()),
                ),
                DownloadStep::CheckKept { ranges } => {
                    let path = tmp.clone();
                    let crcs = tokio::task::spawn_blocking(move || crcs_of(&path, &ranges)).await;
                    task.kept(&crcs.unwrap_or_default());
                }
                DownloadStep::PrepareTemp { create, size } => {
                    let mut open = tokio::fs::OpenOptions::new();
                    let opened = async {
                        let f = open
                            .write(true)
                            .create(create)
                            .truncate(create)
                            .open(&tmp)
                            .await?;
                        f.set_len(size).await?;
                        Ok::<_, std::io::Error>(f)
                    };
                    match opened.await {
                        Ok(f) => file = Some(f),
                        Err(e) => task.local_failure(file_error(&tmp, e)),
                    }
                }
                DownloadStep::StoreCheckpoint(bytes) => {
                    if let Err(e) = crate::transfer::store(&cp_path, &bytes).await {
                        task.local_failure(file_error(&cp_path, e));
                    }
                }
                DownloadStep::Progress { done, total } => progress(done, total),
                DownloadStep::Finish => {
                    let done = async {
                        if let Some(file) = &file {
                            file.sync_all().await?;
                        }
                        tokio::fs::rename(&tmp, path).await
                    };
                    match done.await {
                        Ok(()) => {
                            let _ = tokio::fs::remove_file(&cp_path).await;
                            break Ok(());
                        }
                        Err(e) => task.local_failure(file_error(path, e)),
                    }
                }
                DownloadStep::Fail {
                    error,
                    keep_partial,
                } => {
                    // Stop the fetches before their file goes.
                    stop.store(true, Ordering::SeqCst);
                    fetches.shutdown().await;
                    if !keep_partial {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        let _ = tokio::fs::remove_file(&cp_path).await;
                    }
                    break Err(error);
                }
                _ => {
                    break Err(file_error(
                        &tmp,
                        std::io::Error::other("unknown download step"),
                    ))
                }
            }
        };
        stop.store(true, Ordering::SeqCst);
        fetches.shutdown().await;
        result.map(|()| task.outcome(&info))
    }

    /// One fetch: a streamed GET written at its offset through its own handle, CRC-64 on the way; stops
    /// early when `stop` is set.
    async fn fetch_range(
        &self,
        fetch: &cos_core::download::Fetch,
        tmp: &std::path::Path,
        stop: &std::sync::atomic::AtomicBool,
    ) -> cos_core::download::FetchReport {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        let mut tally = fetch.tally();
        let mut out: Option<tokio::fs::File> = None;
        let result = async {
            let mut body = self.get_object_stream(fetch.request.clone()).await?;
            fetch.check_head(body.info(), body.range())?;
            // An own handle per fetch: a cloned handle would share the file position with the others.
            let file = out.insert(
                tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(tmp)
                    .await
                    .map_err(|e| file_error(tmp, e))?,
            );
            file.seek(std::io::SeekFrom::Start(fetch.offset))
                .await
                .map_err(|e| file_error(tmp, e))?;
            while let Some(chunk) = body.chunk().await {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(Error::Cancelled);
                }
                let chunk = chunk?;
                let n = tally.room(chunk.len());
                file.write_all(&chunk[..n])
                    .await
                    .map_err(|e| file_error(tmp, e))?;
                tally.wrote(&chunk[..n]);
            }
            Ok(())
        }
        .await;
        // Bytes a checkpoint will name reach the disk first, also those of a body cut part-way.
        let flushed = match out.as_mut() {
            Some(file) => match file.flush().await {
                Ok(()) if tally.needs_sync() => file.sync_data().await,
                other => other,
            }
            .map_err(|e| file_error(tmp, e)),
            None => Ok(()),
        };
        tally.report(result, flushed)
    }
}

impl Client {
    /// Downloads every file of `files` with [`Client::download_file`], `file_parallel` files at a time
    /// (at least 1, in the order the core's queue starts them: oldest first), each with `options`. One result per file, in the order of `files`: a failed file does
    /// not stop the others.
    pub async fn download_files(
        &self,
        files: &[cos_core::download::FileDownload],
        options: &cos_core::download::DownloadOptions,
        file_parallel: usize,
    ) -> Vec<Result<DownloadOutcome, Error>> {
        let run = |i: usize| {
            let (client, f, options) = (self.clone(), files[i].clone(), options.clone());
            async move { client.download_file(&f.key, &f.path, &options).await }
        };
        crate::queue::run_batch(&vec![None; files.len()], file_parallel, run, |_, _| {}).await
    }
}

/// The CRC-64 of each `(offset, len)` range of the file at `path`, `None` for one that cannot be read
/// (run on a blocking thread: positional reads of a local file).
fn crcs_of(path: &std::path::Path, ranges: &[(u64, u64)]) -> Vec<Option<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok();
    let mut buf = vec![0u8; 256 << 10];
    let mut crc_of = |(offset, len): (u64, u64)| -> std::io::Result<u64> {
        let f = file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("cannot open"))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut crc = cos_core::checksum::Crc64::new();
        let mut left = len;
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            f.read_exact(&mut buf[..n])?;
            crc.update(&buf[..n]);
            left -= n as u64;
        }
        Ok(crc.finish())
    };
    ranges.iter().map(|&r| crc_of(r).ok()).collect()
}
