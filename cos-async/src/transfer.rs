//! Transfers: whole files (one PUT, or a resumable multipart upload with parts in parallel), streams of
//! unknown length, batches, and a background task list.
//!
//! Every decision (single PUT or multipart, checkpoints and resumption, cleanup, progress throttling,
//! which file of a batch starts next) is made by the core's [`UploadTask`] and [`UploadQueue`]; this module
//! only performs what they ask ([`LocalIo`]: read, store or remove the checkpoint, hash a range, read the
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

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cos_core::checksum::BodyDigest;
use cos_core::task::{Command, Event, IoRequest, IoResult};
use cos_core::upload::{
    derived_checkpoint_name, QueueOutput, SourceFingerprint, UploadQueue, UploadTask,
};
pub use cos_core::upload::{Progress, TaskId, TaskState, UploadOutcome, Waited};
use cos_core::{Error, InvalidInput};
use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{mpsc, watch};

use crate::body::{AsyncSource, FileSource};
use crate::client::Client;

pub use cos_core::upload::options::{
    BatchOptions, FileDoneFn, FileUpload, ProgressFn, UploadOptions, DEFAULT_FILE_PARALLEL,
};

type PausedFn = Arc<dyn Fn() + Send + Sync>;

// ---- the local I/O a transfer task asks for ----

/// Performs a transfer task's [`IoRequest`]s on its file, checkpoint file and stream. It decides nothing.
#[derive(Default)]
pub(crate) struct LocalIo<'a> {
    source: Option<&'a dyn AsyncSource>,
    checkpoint: Option<&'a Path>,
    fill: Option<&'a mut dyn Fill>,
    reports: Reports,
}

/// Hands a task's progress reports and pauses to the user's callbacks.
#[derive(Clone, Default)]
pub(crate) struct Reports {
    on_progress: Option<ProgressFn>,
    on_hash_progress: Option<ProgressFn>,
    on_paused: Option<PausedFn>,
}

impl Reports {
    pub(crate) fn report(&self, event: &Event) {
        if let (Event::Paused, Some(f)) = (event, &self.on_paused) {
            f();
        }
        if let Event::Report { hashing, progress } = event {
            let f = if *hashing {
                &self.on_hash_progress
            } else {
                &self.on_progress
            };
            if let Some(f) = f {
                f(progress);
            }
        }
    }
}

impl LocalIo<'_> {
    pub(crate) fn reports(&self) -> Reports {
        self.reports.clone()
    }

    /// Performs one request; see [`IoRequest`] for each one's only legal answer.
    pub(crate) async fn perform(&mut self, request: IoRequest) -> IoResult {
        let done = |r: io::Result<()>| {
            r.map_or_else(|e| IoResult::Failed(e.to_string()), |_| IoResult::Done)
        };
        match (request, self.checkpoint) {
            (IoRequest::LoadCheckpoint, Some(p)) => match tokio::fs::read(p).await {
                Ok(b) => IoResult::Data(Some(b.into())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => IoResult::Data(None),
                Err(e) => IoResult::Failed(format!("{}: {e}", p.display())),
            },
            (IoRequest::StoreCheckpoint(bytes), Some(p)) => done(store(p, &bytes).await),
            (IoRequest::RemoveCheckpoint, Some(p)) => done(match tokio::fs::remove_file(p).await {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            }),
            (IoRequest::Digest { offset, len }, _) => match self.source {
                Some(source) => match digest(source, offset, len).await {
                    Ok(d) => IoResult::Digest(d),
                    Err(e) => IoResult::Failed(e.to_string()),
                },
                None => IoResult::Failed("no file".into()),
            },
            (IoRequest::ReadStream { len }, _) => {
                match (self.fill.as_mut(), usize::try_from(len)) {
                    (Some(fill), Ok(len)) => {
                        let mut buf = vec![0u8; len];
                        let mut filled = 0;
                        match std::future::poll_fn(|cx| fill.poll_fill(cx, &mut buf, &mut filled))
                            .await
                        {
                            Ok(_) => {
                                buf.truncate(filled);
                                IoResult::Data(Some(Bytes::from(buf)))
                            }
                            Err(e) => IoResult::Failed(e.to_string()),
                        }
                    }
                    _ => IoResult::Failed("no stream".into()),
                }
            }
            (other, _) => IoResult::Failed(format!("not available here: {other:?}")),
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
async fn store(path: &Path, bytes: &[u8]) -> io::Result<()> {
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
    async fn upload_file_with(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
        commands: Option<&mut mpsc::UnboundedReceiver<Command>>,
        on_paused: Option<PausedFn>,
    ) -> Result<UploadOutcome, Error> {
        let source_error = |e: &dyn std::fmt::Display| {
            Error::Source(format!("cannot read {}: {e}", path.display()))
        };
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| source_error(&e))?;
        if !meta.is_file() {
            return Err(source_error(&"not a file"));
        }
        let fingerprint = SourceFingerprint::new(meta.len(), meta.modified().ok());
        let owner = crate::client::lease_owner();
        let mut task = UploadTask::file(self.config(), key, options, fingerprint, owner)?;
        let source = FileSource::new(path);
        let io = LocalIo {
            source: Some(&source),
            checkpoint: options.checkpoint.as_deref(),
            fill: None,
            reports: Reports {
                on_progress: options.on_progress.clone(),
                on_hash_progress: options.on_hash_progress.clone(),
                on_paused,
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
    async fn discard(&self, path: &Path, key: &str) {
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
        for (i, f) in files.iter().enumerate() {
            let len = tokio::fs::metadata(&f.path).await.ok().map(|m| m.len());
            queue.add(i, len);
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
    control: Option<mpsc::UnboundedSender<Command>>,
    /// Its upload is paused with nothing in flight (the tokio task waits for a command).
    idle: bool,
    /// The upload of a cancelled paused task is being aborted.
    aborting: bool,
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
                    entry.idle = false;
                    let alive = entry
                        .control
                        .as_ref()
                        .is_some_and(|tx| tx.send(Command::Resume).is_ok());
                    // A paused upload keeps its task: it just continues.
                    if !alive {
                        let meta = state.queue.get(id).expect("started task").meta.clone();
                        self.spawn_upload(state, id, meta);
                    }
                }
                QueueOutput::Pause(id) => self.command(state, id, Command::Pause),
                QueueOutput::Cancel(id) => self.command(state, id, Command::Cancel),
                QueueOutput::ListUpdate => changed = true,
            }
        }
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
        changed.then(|| Self::snapshot(state))
    }

    fn command(&self, state: &mut QueueState, id: TaskId, c: Command) {
        if let Some(tx) = state.entries.get(&id).and_then(|e| e.control.as_ref()) {
            let _ = tx.send(c);
        }
    }

    fn spawn_upload(self: &Arc<Self>, state: &mut QueueState, id: TaskId, meta: Meta) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        state.entries.entry(id).or_default().control = Some(tx);
        let shared = self.clone();
        self.runtime.spawn(async move {
            let mut options = meta.options.for_file(&meta.path).into_owned();
            let user = options.on_progress.take();
            let weak = Arc::downgrade(&shared);
            options.on_progress = Some(Arc::new(move |p: &Progress| {
                if let Some(shared) = weak.upgrade() {
                    shared.progress(id, p);
                }
                if let Some(f) = &user {
                    f(p);
                }
            }));
            let weak = Arc::downgrade(&shared);
            let on_paused: PausedFn = Arc::new(move || {
                if let Some(shared) = weak.upgrade() {
                    let mut state = lock(&shared.state);
                    if let Some(e) = state.entries.get_mut(&id) {
                        e.idle = true;
                    }
                    shared.changed.send_modify(|n| *n += 1);
                }
            });
            let result = shared
                .client
                .upload_file_with(
                    &meta.path,
                    &meta.key,
                    &options,
                    Some(&mut rx),
                    Some(on_paused),
                )
                .await;
            shared.ended(id, result);
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
                shared.client.discard(&path, &key).await;
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

    fn progress(&self, id: TaskId, p: &Progress) {
        let list = {
            let mut state = lock(&self.state);
            let _ = state.queue.set_progress(id, p.loaded, p.total);
            state.entries.entry(id).or_default().progress = Some(*p);
            Some(Self::snapshot(&state))
        };
        self.announce(list);
    }

    fn ended(self: &Arc<Self>, id: TaskId, result: Result<UploadOutcome, Error>) {
        let list = {
            let mut state = lock(&self.state);
            let entry = state.entries.entry(id).or_default();
            entry.control = None;
            entry.idle = false;
            {
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
                let _ = tx.send(Command::Cancel);
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
                    .any(|e| (e.control.is_some() && !e.idle) || e.aborting);
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
