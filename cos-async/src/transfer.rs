//! Transfers: whole files (one PUT, or a resumable multipart upload with parts in parallel), streams of
//! unknown length, batches, and a background task list.
//!
//! Every decision is made by [`cos_core::upload`] ([`start_file_upload`], [`MultipartUpload`], [`Checkpoint`],
//! [`UploadQueue`], [`ProgressMeter`](cos_core::upload::ProgressMeter)); this module does the I/O: it reads file ranges (computing their
//! digest on the way), persists checkpoints atomically (a temporary file renamed over the old one), hashes
//! the parts an unfinished upload already has, and runs the per-file tasks on tokio.
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

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::task::Event;
use cos_core::upload::{
    check_file_upload, checkpoint_after, checkpoint_from_bytes, checkpoint_to_bytes,
    derived_checkpoint_name, start_file_upload, start_stream_upload, Checkpoint, CheckpointAfter,
    FileStart, LeaseCheck, LeaseDecision, MultipartUpload, QueueOutput, SourceFingerprint,
    UploadQueue,
};
pub use cos_core::upload::{Progress, TaskId, TaskState, UploadOutcome, Waited};
use cos_core::{Error, InvalidInput};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{mpsc, watch};

use crate::body::{AsyncSource, FileSource};
use crate::client::{Driver, Ended};
use crate::Client;

pub use cos_core::upload::options::{
    BatchOptions, FileDoneFn, FileUpload, ProgressFn, UploadOptions, DEFAULT_FILE_PARALLEL,
};

/// A command to a running upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    Pause,
    Resume,
    Cancel,
}

type LoadedFn = dyn Fn(u64, Option<u64>) + Send + Sync;

/// Turns confirmed byte counts into throttled [`Progress`] reports for the callbacks.
struct Reporter<'a> {
    meter: Option<cos_core::upload::ProgressMeter>,
    on_progress: Option<ProgressFn>,
    on_loaded: Option<&'a LoadedFn>,
}

impl<'a> Reporter<'a> {
    fn new(on_progress: Option<ProgressFn>, on_loaded: Option<&'a LoadedFn>) -> Self {
        Reporter {
            meter: None,
            on_progress,
            on_loaded,
        }
    }

    fn update(&mut self, loaded: u64, total: Option<u64>) {
        if let Some(f) = self.on_loaded {
            f(loaded, total);
        }
        let Some(f) = &self.on_progress else { return };
        let now = Instant::now();
        let meter = self
            .meter
            .get_or_insert_with(|| cos_core::upload::ProgressMeter::new(total, now));
        if let Some(t) = total {
            meter.set_total(t);
        }
        if let Some(p) = meter.update(loaded, now) {
            f(&p);
        }
    }
}

fn source_error(path: &Path, what: &str, e: io::Error) -> Error {
    Error::Source(format!("{what} {}: {e}", path.display()))
}

/// Reads `len` bytes of `source` at `offset` and returns their digest (`hashed` sees each chunk's size).
async fn hash_range(
    source: &dyn AsyncSource,
    offset: u64,
    len: u64,
    mut hashed: impl FnMut(u64),
) -> io::Result<SentDigest> {
    let mut reader = source.open(offset, len).await?;
    let mut digest = BodyDigest::new();
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
        hashed(done);
    }
    Ok(digest.finish())
}

async fn load_checkpoint(
    path: &Path,
    bucket: &str,
    key: &str,
) -> Result<Option<Checkpoint>, Error> {
    match tokio::fs::read(path).await {
        Ok(bytes) => checkpoint_from_bytes(&bytes, bucket, key).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(source_error(path, "cannot read the checkpoint", e)),
    }
}

/// The checkpoint at `path`, once no other live upload holds it: the core's [`LeaseCheck`] decides, this
/// only reads the file again when told to.
async fn load_free_checkpoint(
    path: &Path,
    bucket: &str,
    key: &str,
) -> Result<Option<Checkpoint>, Error> {
    let mut check = LeaseCheck::new(crate::client::lease_owner());
    loop {
        let cp = load_checkpoint(path, bucket, key).await?;
        match check.check(cp.as_ref(), crate::client::now()) {
            LeaseDecision::Proceed => return Ok(cp),
            LeaseDecision::ReloadAt(t) => tokio::time::sleep_until(t.into()).await,
            LeaseDecision::Busy(e) => return Err(e),
        }
    }
}

/// Writes the checkpoint to a temporary file next to `path` and renames it over `path`.
async fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    let json = checkpoint_to_bytes(checkpoint);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&json).await?;
        f.sync_all().await?;
    }
    tokio::fs::rename(&tmp, path).await
}

async fn remove_checkpoint(path: Option<&Path>) {
    if let Some(path) = path {
        match tokio::fs::remove_file(path).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), "cannot delete the checkpoint: {e}"),
        }
    }
}

/// Waits for the next command; never completes without a channel.
async fn next_command(control: &mut Option<&mut mpsc::UnboundedReceiver<Control>>) -> Control {
    loop {
        match control {
            Some(rx) => match rx.recv().await {
                Some(c) => return c,
                None => *control = None,
            },
            None => std::future::pending::<()>().await,
        }
    }
}

fn poll_command(
    control: &mut Option<&mut mpsc::UnboundedReceiver<Control>>,
    task: &mut MultipartUpload,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(rx) = control else {
        return Poll::Pending;
    };
    match rx.poll_recv(cx) {
        Poll::Ready(Some(c)) => {
            match c {
                Control::Pause => task.pause(),
                Control::Resume => task.resume_sending(),
                Control::Cancel => task.cancel(),
            }
            Poll::Ready(())
        }
        Poll::Ready(None) => {
            *control = None;
            Poll::Pending
        }
        Poll::Pending => Poll::Pending,
    }
}

/// The driver duties of a file upload: checkpoints, part digests, progress, commands.
struct FileDriver<'a> {
    source: &'a FileSource,
    checkpoint: Option<&'a Path>,
    reporter: Reporter<'a>,
    control: Option<&'a mut mpsc::UnboundedReceiver<Control>>,
}

impl FileDriver<'_> {
    async fn persist(&self, task: &MultipartUpload) {
        if let (Some(path), Some(cp)) = (self.checkpoint, task.checkpoint()) {
            if let Err(e) = save_checkpoint(path, &cp).await {
                tracing::warn!(path = %path.display(), "cannot write the checkpoint: {e}");
            }
        }
    }
}

impl Driver<MultipartUpload> for FileDriver<'_> {
    async fn event(&mut self, task: &mut MultipartUpload, event: &Event) -> bool {
        match *event {
            Event::CheckpointChanged => self.persist(task).await,
            Event::PartDigestNeeded { part, offset, len } => {
                let digest = match hash_range(self.source, offset, len, |_| {}).await {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::warn!(part, "cannot hash the part: {e}");
                        None
                    }
                };
                task.part_digest(part, digest);
            }
            Event::Progress { loaded, total } => self.reporter.update(loaded, total),
            Event::Paused => {
                self.persist(task).await;
                return false;
            }
            _ => {}
        }
        true
    }

    fn poll_extra(&mut self, task: &mut MultipartUpload, cx: &mut Context<'_>) -> Poll<()> {
        poll_command(&mut self.control, task, cx)
    }

    fn may_wake(&self) -> bool {
        self.control.is_some()
    }
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

/// The driver duties of a stream upload: read the next part while the task wants one, progress.
struct StreamDriver<'a, F> {
    fill: F,
    part_size: usize,
    buf: Option<Vec<u8>>,
    filled: usize,
    ended: bool,
    reporter: Reporter<'a>,
}

impl<F: Fill> Driver<MultipartUpload> for StreamDriver<'_, F> {
    async fn event(&mut self, _: &mut MultipartUpload, event: &Event) -> bool {
        if let Event::Progress { loaded, total } = *event {
            self.reporter.update(loaded, total);
        }
        true
    }

    fn poll_extra(&mut self, task: &mut MultipartUpload, cx: &mut Context<'_>) -> Poll<()> {
        // Read only while the task can take the part: at most `concurrency + 1` parts are held, plus
        // this one while it fills.
        if self.ended || !task.wants_part() {
            return Poll::Pending;
        }
        let part_size = self.part_size;
        let buf = self.buf.get_or_insert_with(|| vec![0; part_size]);
        match self.fill.poll_fill(cx, buf, &mut self.filled) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(eof)) => {
                if self.filled > 0 {
                    let mut bytes = self.buf.take().expect("buffer");
                    bytes.truncate(self.filled);
                    self.filled = 0;
                    if task.push_part(bytes).is_err() {
                        // The task refused the part (too many parts): it is stopping with the reason.
                        self.ended = true;
                        return Poll::Ready(());
                    }
                }
                if eof {
                    task.finish_stream();
                    self.ended = true;
                }
                Poll::Ready(())
            }
            Poll::Ready(Err(e)) => {
                task.fail_source(format!("reading the stream failed: {e}"));
                self.ended = true;
                Poll::Ready(())
            }
        }
    }

    fn may_wake(&self) -> bool {
        !self.ended
    }
}

impl Client {
    /// Uploads a file: one PUT at or below [`UploadOptions::threshold`], else a resumable multipart upload
    /// with [`UploadOptions::concurrency`] parts in flight. With a [`checkpoint`](UploadOptions::checkpoint)
    /// an interrupted upload continues with only the missing parts (a file changed since is detected and
    /// uploaded anew); a key ending in `/` is refused before anything is sent.
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
        match self
            .upload_file_with(
                path.as_ref(),
                key,
                &options.for_file(path.as_ref()),
                None,
                None,
            )
            .await
        {
            Ended::Done(r) => r,
            Ended::Stopped => Err(Error::Cancelled),
        }
    }

    async fn upload_file_with(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
        mut control: Option<&mut mpsc::UnboundedReceiver<Control>>,
        on_loaded: Option<&LoadedFn>,
    ) -> Ended<UploadOutcome> {
        let bucket = self.config().bucket.to_string();
        let prepared = async {
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|e| source_error(path, "cannot read", e))?;
            if !meta.is_file() {
                return Err(Error::Source(format!("{} is not a file", path.display())));
            }
            let fingerprint = SourceFingerprint::new(meta.len(), meta.modified().ok());
            check_file_upload(key, options, fingerprint.size)?;
            let checkpoint = match &options.checkpoint {
                Some(p) => load_free_checkpoint(p, &bucket, key).await?,
                None => None,
            };
            Ok((fingerprint, checkpoint))
        };
        let (fingerprint, checkpoint) = match prepared.await {
            Ok(x) => x,
            Err(e) => return Ended::Done(Err(e)),
        };
        let source = FileSource::new(path);
        let size = fingerprint.size;
        let meta_md5 = if options.add_meta_md5 {
            let mut hash_reporter = Reporter::new(options.on_hash_progress.clone(), None);
            hash_reporter.update(0, Some(size));
            match hash_range(&source, 0, size, |done| {
                hash_reporter.update(done, Some(size))
            })
            .await
            {
                Ok(d) => d.md5_hex(),
                Err(e) => return Ended::Done(Err(source_error(path, "cannot read", e))),
            }
        } else {
            None
        };
        let mut reporter = Reporter::new(options.on_progress.clone(), on_loaded);
        let owner = options
            .checkpoint
            .as_ref()
            .map(|_| crate::client::lease_owner());
        let start = start_file_upload(
            self.config(),
            key,
            options,
            fingerprint,
            checkpoint,
            meta_md5,
            owner,
        );
        let mut task = match start {
            Err(e) => return Ended::Done(Err(e)),
            Ok(FileStart::Multipart(task)) => task,
            Ok(FileStart::SinglePut { task, stale }) => {
                let put = self.run(task, &source);
                tokio::pin!(put);
                let result = loop {
                    tokio::select! {
                        r = &mut put => break r,
                        c = next_command(&mut control) => if c == Control::Cancel {
                            return Ended::Done(Err(Error::Cancelled));
                        },
                    }
                };
                if result.is_ok() {
                    if let Some(abort) = stale {
                        // The file shrank below the threshold since a multipart attempt: drop that upload.
                        match self.abort_multipart_upload(abort).await {
                            Ok(_) => remove_checkpoint(options.checkpoint.as_deref()).await,
                            Err(e) => tracing::warn!("cannot abort the stale upload: {e}"),
                        }
                    }
                }
                return Ended::Done(result.map(|put| {
                    reporter.update(size, Some(size));
                    UploadOutcome::from_put(&bucket, key, size, put)
                }));
            }
        };
        let checkpoint_path = options.checkpoint.as_deref();
        let mut driver = FileDriver {
            source: &source,
            checkpoint: checkpoint_path,
            reporter,
            control,
        };
        let ended = self.drive(&mut task, &source, &mut driver).await;
        if let Ended::Done(result) = &ended {
            if let Ok(outcome) = result {
                driver
                    .reporter
                    .update(outcome.total_len, Some(outcome.total_len));
            }
            if checkpoint_after(result, false) == CheckpointAfter::Remove {
                remove_checkpoint(checkpoint_path).await;
            }
        }
        ended
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
        fill: impl Fill,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        let mut task = start_stream_upload(self.config(), key, options)?;
        let part_size = task.part_size();
        let mut driver = StreamDriver {
            fill,
            part_size: usize::try_from(part_size).map_err(|_| InvalidInput::Size {
                what: "part",
                size: part_size,
                limit: "a part must fit in memory",
            })?,
            buf: None,
            filled: 0,
            ended: false,
            reporter: Reporter::new(options.on_progress.clone(), None),
        };
        match self
            .drive(&mut task, &crate::body::NoSource, &mut driver)
            .await
        {
            Ended::Done(Ok(outcome)) => {
                driver
                    .reporter
                    .update(outcome.total_len, Some(outcome.total_len));
                Ok(outcome)
            }
            Ended::Done(Err(e)) => Err(e),
            Ended::Stopped => Err(Error::Cancelled),
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

    /// A task list that uploads files in the background, `file_parallel` at a time (call inside a tokio
    /// runtime: the tasks run on it).
    pub fn task_queue(&self, file_parallel: usize) -> TaskQueue {
        let (changed, _) = watch::channel(0u64);
        TaskQueue {
            shared: Arc::new(QueueShared {
                client: self.clone(),
                runtime: tokio::runtime::Handle::current(),
                state: Mutex::new(QueueState {
                    queue: UploadQueue::new(file_parallel),
                    entries: HashMap::new(),
                }),
                changed,
                callbacks: Mutex::new(Vec::new()),
            }),
        }
    }
}

/// One entry of [`TaskQueue::list`].
#[derive(Clone, Debug)]
pub struct TaskInfo {
    /// Its id.
    pub id: TaskId,
    /// The local file.
    pub path: PathBuf,
    /// The object key.
    pub key: String,
    /// Where it stands.
    pub state: TaskState,
    /// The last progress report, once there is one.
    pub progress: Option<Progress>,
    /// The error that ended it (state `Error`).
    pub error: Option<crate::Error>,
}

type ListFn = Arc<dyn Fn(&[TaskInfo]) + Send + Sync>;

#[derive(Clone)]
struct Meta {
    path: PathBuf,
    key: String,
    options: UploadOptions,
}

#[derive(Default)]
struct Entry {
    /// Commands to the running upload, while its tokio task is alive.
    control: Option<mpsc::UnboundedSender<Control>>,
    /// The upload of a cancelled paused task is being aborted.
    aborting: bool,
    meter: Option<cos_core::upload::ProgressMeter>,
    progress: Option<Progress>,
    result: Option<Result<UploadOutcome, Error>>,
}

struct QueueState {
    queue: UploadQueue<Meta>,
    entries: HashMap<TaskId, Entry>,
}

struct QueueShared {
    client: Client,
    runtime: tokio::runtime::Handle,
    state: Mutex<QueueState>,
    /// Bumped whenever a task ends or the list changes: wakes `wait`.
    changed: watch::Sender<u64>,
    callbacks: Mutex<Vec<ListFn>>,
}

/// A list of file uploads run in the background (the official SDKs' task list): add files, pause,
/// resume, cancel, watch the list. Driven by the core [`UploadQueue`]; each file runs as a tokio task.
/// Clones share the list.
///
/// A paused upload keeps its checkpoint (the task's [`UploadOptions::checkpoint`], or a file in the
/// system temp directory named after the bucket, path and key) and resumes with only the missing parts; a
/// cancelled one is aborted, leaving nothing on the server.
///
/// Without [`UploadOptions::checkpoint`], a task's checkpoint is `cos-rs-checkpoints/NAME` in
/// [`std::env::temp_dir`], where `NAME` is [`cos_core::upload::file::derived_checkpoint_name`] of the bucket,
/// the file's absolute (canonical when possible) path and the key: the same file for both clients, so
/// either can resume the other's upload. It is removed when the task succeeds or is cancelled and kept when
/// it is paused or fails.
///
/// Progress reaches [`TaskQueue::list`], [`TaskQueue::on_change`] and the task's own
/// [`UploadOptions::on_progress`] at most once per [`cos_core::upload::DEFAULT_PROGRESS_INTERVAL`] (200 ms)
/// per task; the first and the last report always pass.
///
/// [`wait`](TaskQueue::wait) and [`wait_all`](TaskQueue::wait_all) wait without limit;
/// [`wait_timeout`](TaskQueue::wait_timeout) and [`wait_all_timeout`](TaskQueue::wait_all_timeout) return
/// [`Waited::TimedOut`] once the limit passes, leaving the tasks running.
///
/// ```no_run
/// # use cos_async::{Client, UploadOptions};
/// # async fn f(client: Client) -> Result<(), cos_async::Error> {
/// let queue = client.task_queue(3);
/// queue.on_change(|list| println!("{} tasks", list.len()));
/// let id = queue.add("a.bin", "backups/a.bin", UploadOptions::default());
/// queue.pause(id);
/// queue.resume(id);
/// let outcome = queue.wait(id).await?;
/// if queue.wait_all_timeout(std::time::Duration::from_secs(60)).await.is_timed_out() {
///     println!("still busy: {:?}", queue.list());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TaskQueue {
    shared: Arc<QueueShared>,
}

impl std::fmt::Debug for TaskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskQueue")
            .field("tasks", &self.list())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl QueueShared {
    fn snapshot(state: &QueueState) -> Vec<TaskInfo> {
        state
            .queue
            .tasks()
            .iter()
            .map(|t| TaskInfo {
                id: t.id,
                path: t.meta.path.clone(),
                key: t.meta.key.clone(),
                state: t.state,
                progress: state.entries.get(&t.id).and_then(|e| e.progress),
                error: t.error.clone(),
            })
            .collect()
    }

    /// Carries out what the queue decided; returns the list to announce, if it changed.
    fn pump(self: &Arc<Self>, state: &mut QueueState) -> Option<Vec<TaskInfo>> {
        let mut changed = false;
        while let Some(out) = state.queue.poll() {
            match out {
                QueueOutput::Start(id) => {
                    let entry = state.entries.entry(id).or_default();
                    entry.result = None;
                    let alive = entry
                        .control
                        .as_ref()
                        .is_some_and(|tx| tx.send(Control::Resume).is_ok());
                    // A paused upload that has not stopped yet just continues (if it stops meanwhile,
                    // `ended` starts it again).
                    if !alive {
                        let meta = state.queue.get(id).expect("started task").meta.clone();
                        self.spawn_upload(state, id, meta);
                    }
                }
                QueueOutput::Pause(id) => self.command(state, id, Control::Pause),
                QueueOutput::Cancel(id) => self.command(state, id, Control::Cancel),
                QueueOutput::ListUpdate => changed = true,
            }
        }
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
        changed.then(|| Self::snapshot(state))
    }

    fn command(&self, state: &mut QueueState, id: TaskId, c: Control) {
        if let Some(tx) = state.entries.get(&id).and_then(|e| e.control.as_ref()) {
            let _ = tx.send(c);
        }
    }

    fn spawn_upload(self: &Arc<Self>, state: &mut QueueState, id: TaskId, meta: Meta) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        state.entries.entry(id).or_default().control = Some(tx);
        let shared = self.clone();
        self.runtime.spawn(async move {
            let progress = {
                let shared = shared.clone();
                move |loaded: u64, total: Option<u64>| shared.progress(id, loaded, total)
            };
            let ended = shared
                .client
                .upload_file_with(
                    &meta.path,
                    &meta.key,
                    &meta.options.for_file(&meta.path),
                    Some(&mut rx),
                    Some(&progress),
                )
                .await;
            shared.ended(id, ended);
        });
    }

    fn spawn_abort(self: &Arc<Self>, state: &mut QueueState, id: TaskId) {
        let Some(t) = state.queue.get(id) else { return };
        let checkpoint = t.meta.options.checkpoint.clone();
        let key = t.meta.key.clone();
        state.entries.entry(id).or_default().aborting = true;
        let shared = self.clone();
        self.runtime.spawn(async move {
            if let Some(path) = checkpoint {
                let bucket = shared.client.config().bucket.to_string();
                match load_checkpoint(&path, &bucket, &key).await {
                    Ok(Some(cp)) => {
                        let op = cp.abort_upload();
                        match shared.client.abort_multipart_upload(op).await {
                            Ok(_) => remove_checkpoint(Some(&path)).await,
                            Err(e) => tracing::warn!("cannot abort the cancelled upload: {e}"),
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("cannot read the cancelled upload's checkpoint: {e}"),
                }
            }
            let list = {
                let mut state = lock(&shared.state);
                let entry = state.entries.entry(id).or_default();
                entry.aborting = false;
                entry.result = Some(Err(Error::Cancelled));
                shared.changed.send_modify(|n| *n += 1);
                shared.pump(&mut state)
            };
            shared.announce(list);
        });
    }

    fn progress(&self, id: TaskId, loaded: u64, total: Option<u64>) {
        let list = {
            let mut state = lock(&self.state);
            let _ = state.queue.set_progress(id, loaded, total);
            let entry = state.entries.entry(id).or_default();
            let now = Instant::now();
            let meter = entry
                .meter
                .get_or_insert_with(|| cos_core::upload::ProgressMeter::new(total, now));
            if let Some(t) = total {
                meter.set_total(t);
            }
            match meter.update(loaded, now) {
                Some(p) => {
                    entry.progress = Some(p);
                    Some(Self::snapshot(&state))
                }
                None => None,
            }
        };
        self.announce(list);
    }

    fn ended(self: &Arc<Self>, id: TaskId, ended: Ended<UploadOutcome>) {
        let list = {
            let mut state = lock(&self.state);
            state.entries.entry(id).or_default().control = None;
            let current = state.queue.get(id).map(|t| t.state);
            match ended {
                // Paused, but resumed before it stopped: start it again from its checkpoint.
                Ended::Stopped if current == Some(TaskState::Running) => {
                    let meta = state.queue.get(id).expect("running task").meta.clone();
                    self.spawn_upload(&mut state, id, meta);
                }
                Ended::Stopped => {
                    let _ = state.queue.finished(id, Err(Error::Cancelled));
                    if current == Some(TaskState::Canceled) {
                        self.spawn_abort(&mut state, id);
                    }
                }
                Ended::Done(result) => {
                    let _ = state
                        .queue
                        .finished(id, result.as_ref().map(|_| ()).map_err(Clone::clone));
                    let now = state.queue.get(id).map(|t| t.state);
                    let entry = state.entries.entry(id).or_default();
                    match now {
                        Some(TaskState::Success | TaskState::Error) => {
                            if let Ok(o) = &result {
                                entry.progress = Some(Progress {
                                    loaded: o.total_len,
                                    total: Some(o.total_len),
                                    speed: entry.progress.map_or(0.0, |p| p.speed),
                                    percent: Some(1.0),
                                });
                            }
                            entry.result = Some(result);
                        }
                        Some(TaskState::Canceled) => match result {
                            Err(Error::Cancelled) => entry.result = Some(Err(Error::Cancelled)),
                            // Failed before the cancel reached it: abort from the checkpoint.
                            _ => self.spawn_abort(&mut state, id),
                        },
                        _ => {}
                    }
                }
            }
            self.changed.send_modify(|n| *n += 1);
            self.pump(&mut state)
        };
        self.announce(list);
    }

    fn announce(&self, list: Option<Vec<TaskInfo>>) {
        if let Some(list) = list {
            let callbacks = lock(&self.callbacks).clone();
            for f in callbacks {
                f(&list);
            }
        }
    }
}

impl TaskQueue {
    fn with_state<R>(&self, f: impl FnOnce(&Arc<QueueShared>, &mut QueueState) -> R) -> R {
        let (r, list) = {
            let mut state = lock(&self.shared.state);
            let r = f(&self.shared, &mut state);
            (r, self.shared.pump(&mut state))
        };
        self.shared.announce(list);
        r
    }

    /// Adds a file; it starts when a slot is free. Without a checkpoint path in `options`, one is derived
    /// in the system temp directory (so that a pause or a failure can be resumed).
    pub fn add(&self, path: impl Into<PathBuf>, key: &str, options: UploadOptions) -> TaskId {
        let path = path.into();
        let mut options = options;
        if options.checkpoint.is_none() {
            let bucket = self.shared.client.config().bucket.to_string();
            let absolute = std::fs::canonicalize(&path)
                .or_else(|_| std::path::absolute(&path))
                .unwrap_or_else(|_| path.clone());
            let name = derived_checkpoint_name(&bucket, &absolute.display().to_string(), key);
            options.checkpoint = Some(std::env::temp_dir().join("cos-rs-checkpoints").join(name));
        }
        let total = std::fs::metadata(&path).ok().map(|m| m.len());
        let meta = Meta {
            path,
            key: key.to_string(),
            options,
        };
        self.with_state(|_, state| {
            let id = state.queue.add(meta, total);
            state.entries.insert(id, Entry::default());
            id
        })
    }

    /// Pauses a waiting or running task: no new parts are sent, the checkpoint is kept. A task that is
    /// not waiting or running is left as it is.
    pub fn pause(&self, id: TaskId) {
        self.with_state(|_, state| {
            let _ = state.queue.pause(id);
        })
    }

    /// Puts a paused or failed task back in line; it continues with only the missing parts.
    pub fn resume(&self, id: TaskId) {
        self.with_state(|_, state| {
            if state.queue.resume(id).is_ok() {
                if let Some(e) = state.entries.get_mut(&id) {
                    e.result = None;
                }
            }
        })
    }

    /// Cancels a task that has not ended; its multipart upload is aborted (nothing is left on the server)
    /// and its checkpoint deleted.
    pub fn cancel(&self, id: TaskId) {
        self.with_state(|shared, state| {
            let before = state.queue.get(id).map(|t| t.state);
            if state.queue.cancel(id).is_err() {
                return;
            }
            let entry = state.entries.entry(id).or_default();
            if let Some(tx) = &entry.control {
                // Still running (or pausing): the upload aborts itself.
                let _ = tx.send(Control::Cancel);
            } else if matches!(before, Some(TaskState::Paused | TaskState::Error)) {
                shared.spawn_abort(state, id);
            } else {
                entry.result = Some(Err(Error::Cancelled));
            }
            shared.changed.send_modify(|n| *n += 1);
        })
    }

    /// All tasks, oldest first.
    pub fn list(&self) -> Vec<TaskInfo> {
        QueueShared::snapshot(&lock(&self.shared.state))
    }

    /// Calls `f` with the whole list whenever it changes (a task added, started, paused, ended, or its
    /// progress reported).
    pub fn on_change(&self, f: impl Fn(&[TaskInfo]) + Send + Sync + 'static) {
        lock(&self.shared.callbacks).push(Arc::new(f));
    }

    /// Waits until the task succeeded, failed or was cancelled (a paused task is waited for until it is
    /// resumed and ends).
    pub async fn wait(&self, id: TaskId) -> Result<UploadOutcome, Error> {
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let state = lock(&self.shared.state);
                match state.entries.get(&id) {
                    None => {
                        return Err(InvalidInput::Parameter {
                            name: "id",
                            reason: format!("no task {}", id.0),
                        }
                        .into())
                    }
                    Some(Entry {
                        result: Some(r), ..
                    }) => return r.clone(),
                    Some(_) => {}
                }
            }
            if changed.changed().await.is_err() {
                return Err(Error::Cancelled);
            }
        }
    }

    /// Waits until nothing runs or waits any more (paused tasks stay paused).
    pub async fn wait_all(&self) {
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let state = lock(&self.shared.state);
                let busy = state
                    .entries
                    .values()
                    .any(|e| e.control.is_some() || e.aborting);
                if !busy && state.queue.is_idle() {
                    return;
                }
            }
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// [`wait`](TaskQueue::wait) for at most `timeout`: [`Waited::TimedOut`] if the task has not ended by
    /// then (it goes on running), else [`Waited::Done`] with its result.
    pub async fn wait_timeout(
        &self,
        id: TaskId,
        timeout: Duration,
    ) -> Waited<Result<UploadOutcome, Error>> {
        match tokio::time::timeout(timeout, self.wait(id)).await {
            Ok(r) => Waited::Done(r),
            Err(_) => Waited::TimedOut,
        }
    }

    /// [`wait_all`](TaskQueue::wait_all) for at most `timeout`: [`Waited::TimedOut`] if tasks are still
    /// waiting or running by then (they go on), else [`Waited::Done`].
    pub async fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
        match tokio::time::timeout(timeout, self.wait_all()).await {
            Ok(()) => Waited::Done(()),
            Err(_) => Waited::TimedOut,
        }
    }
}
