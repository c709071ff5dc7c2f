//! Transfers: whole files and streams, batches and a task list, over the core's upload tasks.
//!
//! Every decision (single PUT or multipart, the part plan, retries, checkpoints and resumption, integrity
//! checks, cleanup, progress throttling, which file of a batch starts next) is made by the core's
//! [`UploadTask`] and [`UploadQueue`](cos_core::upload::UploadQueue); this module only performs what they ask (`LocalIo`: read, store
//! or remove the checkpoint, hash a range, read the stream) and runs threads.
//!
//! * [`Client::upload_file`]: one PUT at or below [`UploadOptions::threshold`], else a concurrent multipart
//!   upload that resumes from a checkpoint file or from an unfinished upload found on the server.
//! * [`Client::upload_stream`]: a reader of unknown length, cut into parts as they fill.
//! * [`Client::upload_files`]: many files, a few at a time.
//! * [`TaskQueue`]: a task list with pause, resume and cancel, driven by background threads.
//!
//! ```no_run
//! use cos_blocking::{Client, Config, Credentials, UploadOptions};
//! let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
//! let client = Client::new(config);
//! let options = UploadOptions::default()
//!     .concurrency(4)
//!     .checkpoint("big.bin.cos-checkpoint.json")
//!     .on_progress(|p| println!("{} / {:?} bytes", p.loaded, p.total));
//! let outcome = client.upload_file("big.bin", "backups/big.bin", &options)?;
//! println!("{} in {} parts", outcome.etag, outcome.parts);
//! # Ok::<(), cos_blocking::Error>(())
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use cos_core::task::{Event, IoRequest, IoResult};
pub use cos_core::upload::{Progress, TaskId, TaskState, UploadOutcome, Waited};
use cos_core::upload::{RangeDigest, Reports, SourceFingerprint, UploadTask};
use cos_core::Error;

use crate::body::{FileSource, NoSource};
use crate::client::{Channel, Client};

pub use crate::queue::{TaskInfo, TaskQueue};
pub use cos_core::upload::options::{
    BatchOptions, FileDoneFn, FileUpload, ProgressFn, UploadOptions, DEFAULT_FILE_PARALLEL,
};

// ---- the local I/O a transfer task asks for ----

/// Performs a transfer task's [`IoRequest`]s on its file, checkpoint file and stream, and hands its
/// progress reports to the user's callbacks. It decides nothing.
#[derive(Default)]
pub(crate) struct LocalIo<'a> {
    path: Option<&'a Path>,
    checkpoint: Option<&'a Path>,
    reader: Option<&'a mut dyn Read>,
    reports: Reports,
    /// Told when the task paused (it is idle, its checkpoint stored).
    on_paused: Option<Box<dyn Fn() + Send + 'a>>,
}

impl LocalIo<'_> {
    /// Performs one request; see [`IoRequest`] for each one's only legal answer.
    pub(crate) fn perform(&mut self, request: IoRequest) -> IoResult {
        match (request, self.checkpoint) {
            (IoRequest::LoadCheckpoint, Some(p)) => IoResult::loaded(p, fs::read(p)),
            (IoRequest::StoreCheckpoint(bytes), Some(p)) => IoResult::done(store(p, &bytes)),
            (IoRequest::RemoveCheckpoint, Some(p)) => IoResult::removed(fs::remove_file(p)),
            (IoRequest::Digest { offset, len }, _) => match self.path {
                Some(p) => digest(p, offset, len),
                None => IoResult::digest(None),
            },
            (IoRequest::ReadStream { len }, _) => IoResult::stream(self.reader.as_mut().map(|r| {
                let mut chunk = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                r.take(len).read_to_end(&mut chunk).map(|_| chunk)
            })),
            (other, _) => IoResult::unavailable(&other),
        }
    }

    /// Hands a report to the user's callbacks.
    pub(crate) fn report(&self, event: &Event) {
        if let (Event::Paused, Some(f)) = (event, &self.on_paused) {
            f();
        }
        self.reports.report(event);
    }
}

/// Writes `bytes` atomically: a temporary file next to `path`, synced, then renamed over it.
pub(crate) fn store(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// The answer to a digest request: `len` bytes of the file from `offset`, hashed as read.
fn digest(path: &Path, offset: u64, len: u64) -> IoResult {
    fn read(path: &Path, offset: u64, digest: &mut RangeDigest) -> io::Result<()> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; 256 * 1024];
        while digest.remaining() > 0 {
            let want = buf
                .len()
                .min(usize::try_from(digest.remaining()).unwrap_or(usize::MAX));
            match f.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => digest.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    let mut digest = RangeDigest::new(len);
    match read(path, offset, &mut digest) {
        Ok(()) => digest.answer(),
        Err(e) => IoResult::digest(Some(Err(e))),
    }
}

// ---- the client's transfer methods ----

impl Client {
    /// Uploads a file: one PUT at or below [`UploadOptions::threshold`], a resumable concurrent multipart
    /// upload above (the core's [`UploadTask`] decides everything).
    ///
    /// A multipart upload resumes from [`UploadOptions::checkpoint`] when that file holds a checkpoint of
    /// this bucket and key (only the parts missing on the server are sent; a file that changed since is
    /// uploaded again after the stale upload is aborted), else, with
    /// [`UploadOptions::resume_unfinished`], from the newest unfinished upload of the key. A part that
    /// still fails after the retry limit fails the upload with its cause and keeps the checkpoint.
    ///
    /// A key ending in `/` (a folder) is refused with [`Error::InvalidInput`]; a file that cannot be read
    /// fails with [`Error::Source`].
    pub fn upload_file(
        &self,
        path: impl AsRef<Path>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        let options = options.for_file(path.as_ref()); // the guessed Content-Type
        self.upload_file_inner(path.as_ref(), key, &options, Channel::new(), None)
    }

    /// `upload_file` commanded through `channel` by a task list, which `on_paused` tells of pauses.
    pub(crate) fn upload_file_inner(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
        channel: Channel,
        on_paused: Option<Box<dyn Fn() + Send + '_>>,
    ) -> Result<UploadOutcome, Error> {
        let commanded = on_paused.is_some();
        let meta = fs::metadata(path).map(|m| (m.is_file(), m.len(), m.modified().ok()));
        let fingerprint = SourceFingerprint::of_file(path, meta)?;
        let owner = crate::client::lease_owner();
        let mut task = UploadTask::file(self.config(), key, options, fingerprint, owner)?;
        let mut io = LocalIo {
            path: Some(path),
            checkpoint: options.checkpoint.as_deref(),
            reports: Reports::of(options),
            on_paused,
            ..LocalIo::default()
        };
        self.drive(
            &mut task,
            &FileSource::new(path),
            Some(&mut io),
            channel,
            commanded,
        )
    }

    /// Uploads a stream of unknown length: parts are read as they fill and sent while the next ones are
    /// read, so memory stays within `(concurrency + 1) * part size`. A stream that ends within its first
    /// part is sent with a single PUT. A read error fails the upload with [`Error::Source`] and aborts the
    /// multipart upload. Checkpoints do not apply (a stream cannot be read again), nor does
    /// [`UploadOptions::add_meta_md5`] (refused with [`Error::InvalidInput`]).
    ///
    /// ```no_run
    /// # use cos_blocking::{Client, Config, Credentials, UploadOptions};
    /// # let client = Client::new(Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?);
    /// let stdin = std::io::stdin(); // any `Read + Send`
    /// let outcome = client.upload_stream(stdin, "logs/today.log", &UploadOptions::default())?;
    /// # Ok::<(), cos_blocking::Error>(())
    /// ```
    pub fn upload_stream(
        &self,
        mut reader: impl Read + Send,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        let mut task = UploadTask::stream(self.config(), key, options)?;
        let mut io = LocalIo {
            reader: Some(&mut reader),
            reports: Reports {
                on_progress: options.on_progress.clone(),
                ..Reports::default()
            },
            ..LocalIo::default()
        };
        self.drive(&mut task, &NoSource, Some(&mut io), Channel::new(), false)
    }

    /// Uploads many files, [`BatchOptions::file_parallel`] at a time (the order is decided by the core's
    /// [`UploadQueue`](cos_core::upload::UploadQueue): oldest first). Returns one result per file, in input order; a failing file does not
    /// stop the others.
    pub fn upload_files(
        &self,
        files: Vec<FileUpload>,
        options: &BatchOptions,
    ) -> Vec<Result<UploadOutcome, Error>> {
        let lens: Vec<_> = files
            .iter()
            .map(|f| fs::metadata(&f.path).ok().map(|m| m.len()))
            .collect();
        let run = |i: usize| {
            let f = &files[i];
            self.upload_file(&f.path, &f.key, &options.options_for(f))
        };
        let done = |i: usize, r: &Result<UploadOutcome, Error>| {
            if let Some(f) = &options.on_file_done {
                f(&files[i], r);
            }
        };
        crate::queue::run_batch(&lens, options.file_parallel, &run, &done)
    }

    /// Aborts the upload the checkpoint at `path` names and deletes the checkpoint (the core's
    /// [`UploadTask::discard`]).
    pub(crate) fn discard(&self, path: &Path, key: &str) {
        let options = UploadOptions {
            checkpoint: Some(path.to_path_buf()),
            ..UploadOptions::default()
        };
        let mut task = UploadTask::discard(self.config(), key, &options);
        let mut io = LocalIo {
            checkpoint: Some(path),
            ..LocalIo::default()
        };
        match self.drive(&mut task, &NoSource, Some(&mut io), Channel::new(), false) {
            Ok(_) | Err(Error::Cancelled) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot abort the cancelled upload: {e}")
            }
        }
    }
}
