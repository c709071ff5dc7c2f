//! Transfers: whole files (one PUT, or a resumable multipart upload with parts in parallel), streams of
//! unknown length, batches, and a background task list.
//!
//! Every decision (single PUT or multipart, checkpoints and resumption, cleanup, progress throttling,
//! which file of a batch starts next) is made by the core's [`UploadTask`] and [`UploadQueue`]; this module
//! only performs what they ask (`LocalIo`: read, store or remove the checkpoint, hash a range, read the
//! stream) and runs the per-file tasks on tokio.
//!
//! ```no_run
//! use cos_async::{Client, Config, Credentials, UploadOptions};
//! # #[tokio::main] async fn main() -> Result<(), cos_async::Error> {
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
//! let client = Client::new(config);
//! let options = UploadOptions::default()
//!     .part_size(8 << 20)
//!     .concurrency(4)
//!     .checkpoint("big.bin.cos-checkpoint")
//!     .on_progress(|p| println!("{} / {:?} bytes", p.loaded, p.total));
//! let outcome = client.upload_file("big.bin", "backups/big.bin", &options).await?;
//! println!("{} ({} parts)", outcome.etag, outcome.parts);
//! # Ok(()) }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cos_core::checksum::BodyDigest;
use cos_core::task::{Command, IoRequest, IoResult};
pub use cos_core::upload::{Progress, TaskId, TaskState, UploadOutcome, Waited};
use cos_core::upload::{QueueOutput, Reports, SourceFingerprint, UploadQueue, UploadTask};
use cos_core::Error;
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::mpsc;

use crate::body::{AsyncSource, FileSource};
use crate::client::Client;

pub use crate::queue::{TaskInfo, TaskQueue};
pub use cos_core::upload::options::{
    BatchOptions, FileDoneFn, FileUpload, ProgressFn, UploadOptions, DEFAULT_FILE_PARALLEL,
};

pub(crate) use cos_core::upload::PausedFn;

// ---- the local I/O a transfer task asks for ----

/// Performs a transfer task's [`IoRequest`]s on its file, checkpoint file and stream. It decides nothing.
#[derive(Default)]
pub(crate) struct LocalIo<'a> {
    source: Option<&'a dyn AsyncSource>,
    checkpoint: Option<&'a Path>,
    fill: Option<&'a mut dyn Fill>,
    reports: Reports,
}

impl LocalIo<'_> {
    pub(crate) fn reports(&self) -> Reports {
        self.reports.clone()
    }

    /// Performs one request; see [`IoRequest`] for each one's only legal answer.
    pub(crate) async fn perform(&mut self, request: IoRequest) -> IoResult {
        match (request, self.checkpoint) {
            (IoRequest::LoadCheckpoint, Some(p)) => IoResult::loaded(p, tokio::fs::read(p).await),
            (IoRequest::StoreCheckpoint(bytes), Some(p)) => IoResult::done(store(p, &bytes).await),
            (IoRequest::RemoveCheckpoint, Some(p)) => {
                IoResult::removed(tokio::fs::remove_file(p).await)
            }
            (IoRequest::Digest { offset, len }, _) => match self.source {
                Some(source) => IoResult::digest(Some(digest(source, offset, len).await)),
                None => IoResult::digest(None),
            },
            (IoRequest::ReadStream { len }, _) => {
                match (self.fill.as_mut(), usize::try_from(len)) {
                    (Some(fill), Ok(len)) => {
                        let mut buf = vec![0u8; len];
                        let mut filled = 0;
                        let r =
                            std::future::poll_fn(|cx| fill.poll_fill(cx, &mut buf, &mut filled))
                                .await
                                .map(|_| {
                                    buf.truncate(filled);
                                    buf
                                });
                        IoResult::stream(Some(r))
                    }
                    _ => IoResult::stream(None),
                }
            }
            (other, _) => IoResult::unavailable(&other),
        }
    }
}

/// The digest (MD5 included) of `len` bytes of `source` at `offset`.
async fn digest(
    source: &dyn AsyncSource,
    offset: u64,
    len: u64,
) -> io::Result<cos_core::checksum::SentDigest> {
    let mut reader = source.open(offset, len).await?;
    let mut digest = BodyDigest::with_md5(true);
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    while done < len {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the source ended after {done} of {len} bytes"),
            ));
        }
        digest.update(&buf[..n]);
        done += n as u64;
    }
    Ok(digest.finish())
}

/// Writes `bytes` to a temporary file next to `path`, synced, and renames it over `path`.
pub(crate) async fn store(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(bytes).await?;
        f.sync_all().await?;
    }
    tokio::fs::rename(&tmp, path).await
}

/// Fills part buffers from a reader or a stream of chunks.
trait Fill: Send + Unpin {
    /// Reads into `buf[*filled..]` until it is full (`Ok(false)`) or the source ended (`Ok(true)`).
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<bool>>;
}

struct ReaderFill<R>(R);

impl<R: AsyncRead + Unpin + Send> Fill for ReaderFill<R> {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<bool>> {
        while *filled < buf.len() {
            let mut rb = ReadBuf::new(&mut buf[*filled..]);
            match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Ok(true));
                    }
                    *filled += n;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(false))
    }
}

struct StreamFill<S> {
    stream: S,
    leftover: Bytes,
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin + Send> Fill for StreamFill<S> {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<bool>> {
        loop {
            if !self.leftover.is_empty() {
                let n = self.leftover.len().min(buf.len() - *filled);
                buf[*filled..*filled + n].copy_from_slice(&self.leftover.split_to(n));
                *filled += n;
            }
            if *filled == buf.len() {
                return Poll::Ready(Ok(false));
            }
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.leftover = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

// ---- the client's transfer methods ----

impl Client {
    /// Uploads a file: one PUT at or below [`UploadOptions::threshold`], else a resumable multipart upload
    /// with [`UploadOptions::concurrency`] parts in flight (the core's [`UploadTask`] decides everything).
    /// With a [`checkpoint`](UploadOptions::checkpoint) an interrupted upload continues with only the
    /// missing parts (a file changed since is detected and uploaded anew); a key ending in `/` is refused
    /// before anything is sent.
    ///
    /// ```no_run
    /// # use cos_async::{Client, UploadOptions};
    /// # async fn f(client: Client) -> Result<(), cos_async::Error> {
    /// let out = client.upload_file("photo.jpg", "photos/photo.jpg", &UploadOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upload_file(
        &self,
        path: impl AsRef<Path>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        let options = options.for_file(path.as_ref());
        self.upload_file_with(path.as_ref(), key, &options, None, None)
            .await
    }

    /// `upload_file` commanded by a task list, which `on_paused` tells of pauses.
    pub(crate) async fn upload_file_with(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
        commands: Option<&mut mpsc::UnboundedReceiver<Command>>,
        on_paused: Option<PausedFn>,
    ) -> Result<UploadOutcome, Error> {
        let meta = tokio::fs::metadata(path).await;
        let meta = meta.map(|m| (m.is_file(), m.len(), m.modified().ok()));
        let fingerprint = SourceFingerprint::of_file(path, meta)?;
        let owner = crate::client::lease_owner();
        let mut task = UploadTask::file(self.config(), key, options, fingerprint, owner)?;
        let source = FileSource::new(path);
        let io = LocalIo {
            source: Some(&source),
            checkpoint: options.checkpoint.as_deref(),
            fill: None,
            reports: Reports {
                on_paused,
                ..Reports::of(options)
            },
        };
        self.drive(&mut task, &source, Some(io), commands).await
    }

    /// Uploads a reader of unknown length: parts are read as they fill, at most
    /// `(concurrency + 1) * part size` bytes are held, and a stream shorter than one part is sent with a
    /// single PUT. A read error aborts the upload and ends with [`Error::Source`]. Streams have no
    /// checkpoint.
    pub async fn upload_stream(
        &self,
        reader: impl AsyncRead + Unpin + Send,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.upload_fill(ReaderFill(reader), key, options).await
    }

    /// Like [`upload_stream`](Self::upload_stream), for a stream of byte chunks of any size.
    pub async fn upload_byte_stream(
        &self,
        stream: impl Stream<Item = io::Result<Bytes>> + Unpin + Send,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        let fill = StreamFill {
            stream,
            leftover: Bytes::new(),
        };
        self.upload_fill(fill, key, options).await
    }

    async fn upload_fill(
        &self,
        mut fill: impl Fill,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        let mut task = UploadTask::stream(self.config(), key, options)?;
        let io = LocalIo {
            fill: Some(&mut fill),
            reports: Reports {
                on_progress: options.on_progress.clone(),
                ..Reports::default()
            },
            ..LocalIo::default()
        };
        self.drive(&mut task, &crate::body::NoSource, Some(io), None)
            .await
    }

    /// Aborts the upload the checkpoint at `path` names and deletes the checkpoint (the core's
    /// [`UploadTask::discard`]).
    pub(crate) async fn discard(&self, path: &Path, key: &str) {
        let options = UploadOptions {
            checkpoint: Some(path.to_path_buf()),
            ..UploadOptions::default()
        };
        let mut task = UploadTask::discard(self.config(), key, &options);
        let io = LocalIo {
            checkpoint: Some(path),
            ..LocalIo::default()
        };
        match self
            .drive(&mut task, &crate::body::NoSource, Some(io), None)
            .await
        {
            Ok(_) | Err(Error::Cancelled) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot abort the cancelled upload: {e}")
            }
        }
    }

    /// Uploads many files, `file_parallel` at a time; one result per file, in input order. A failing file
    /// does not stop the others.
    pub async fn upload_files(
        &self,
        files: Vec<FileUpload>,
        options: &BatchOptions,
    ) -> Vec<Result<UploadOutcome, Error>> {
        // The core's queue decides which file starts next, as in the blocking client.
        let mut queue: UploadQueue<usize> = UploadQueue::new(options.file_parallel.max(1));
        // Every file's length in one trip to the blocking pool, not one trip per file.
        let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        let lens = tokio::task::spawn_blocking(move || {
            let len = |p: &PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
            paths.iter().map(len).collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for i in 0..files.len() {
            queue.add(i, lens.get(i).copied().flatten());
        }
        let mut results: Vec<Option<Result<UploadOutcome, Error>>> =
            files.iter().map(|_| None).collect();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while let Some(out) = queue.poll() {
                let QueueOutput::Start(id) = out else {
                    continue;
                };
                let Some(&i) = queue.get(id).map(|t| &t.meta) else {
                    continue;
                };
                let (client, file) = (self.clone(), files[i].clone());
                // The file's own options (per_file), else the batch's less its checkpoint.
                let upload = options.options_for(&file).into_owned();
                running.spawn(async move {
                    let r = client.upload_file(&file.path, &file.key, &upload).await;
                    (id, i, r)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (id, i, r) = match joined {
                Ok(x) => x,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => continue,
            };
            let _ = queue.finished(id, r.as_ref().map(|_| ()).map_err(Clone::clone));
            if let Some(f) = &options.on_file_done {
                f(&files[i], &r);
            }
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Cancelled)))
            .collect()
    }
}
