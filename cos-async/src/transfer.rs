//! Transfers: whole files (one PUT, or a resumable multipart upload with parts in parallel), streams of
//! unknown length, batches, and a background task list.
//!
//! Every decision (single PUT or multipart, checkpoints and resumption, cleanup, progress throttling,
//! which file of a batch starts next) is made by the core's [`UploadTask`] and [`UploadQueue`](cos_core::upload::UploadQueue); this module
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

use bytes::Bytes;
use cos_core::task::{Command, IoRequest, IoResult};
pub use cos_core::upload::{Progress, TaskId, TaskState, UploadOutcome, Waited};
use cos_core::upload::{RangeDigest, Reports, SourceFingerprint, UploadTask};
use cos_core::Error;
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::body::{AsyncSource, FileSource, Fill, ReaderFill, StreamFill};
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
                Some(source) => digest(source, offset, len).await,
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

/// The answer to a digest request: `len` bytes of `source` at `offset`, hashed as read.
async fn digest(source: &dyn AsyncSource, offset: u64, len: u64) -> IoResult {
    let mut digest = RangeDigest::new(len);
    let read = async {
        let mut reader = source.open(offset, len).await?;
        let mut buf = vec![0u8; 256 * 1024];
        while digest.remaining() > 0 {
            match reader.read(&mut buf).await? {
                0 => break,
                n => digest.update(&buf[..n]),
            }
        }
        Ok::<_, io::Error>(())
    };
    match read.await {
        Ok(()) => digest.answer(),
        Err(e) => IoResult::digest(Some(Err(e))),
    }
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
        // Every file's length in one trip to the blocking pool, not one trip per file.
        let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        let lens = tokio::task::spawn_blocking(move || {
            let len = |p: &PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
            paths.iter().map(len).collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|_| vec![None; files.len()]);
        let run = |i: usize| {
            let (client, file) = (self.clone(), files[i].clone());
            // The file's own options (per_file), else the batch's less its checkpoint.
            let upload = options.options_for(&file).into_owned();
            async move { client.upload_file(&file.path, &file.key, &upload).await }
        };
        let done = |i: usize, r: &Result<UploadOutcome, Error>| {
            if let Some(f) = &options.on_file_done {
                f(&files[i], r);
            }
        };
        crate::queue::run_batch(&lens, options.file_parallel, run, done).await
    }
}
