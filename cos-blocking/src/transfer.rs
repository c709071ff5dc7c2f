//! Transfers: whole files and streams, batches and a task list, over the core's upload tasks.
//!
//! Every decision (single PUT or multipart, the part plan, retries, resumption, integrity checks, which
//! file of a batch starts next) is made by [`cos_core::upload`]; this module only reads files and streams,
//! runs requests in parallel, persists checkpoints and reports progress.
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

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::task::Event;
use cos_core::upload::{
    check_file_upload, checkpoint_after, checkpoint_from_bytes, checkpoint_to_bytes,
    derived_checkpoint_name, start_file_upload, start_stream_upload, Checkpoint, CheckpointAfter,
    FileStart, LeaseCheck, LeaseDecision, MultipartUpload, ProgressMeter, QueueOutput,
    SourceFingerprint, UploadQueue,
};
pub use cos_core::upload::{Progress, TaskId, TaskState, UploadOutcome, Waited};
use cos_core::{Error, InvalidInput};

use crate::body::{FileSource, NoSource};
use crate::client::{Client, Steer, Waker};

pub use cos_core::upload::options::{
    BatchOptions, FileDoneFn, FileUpload, ProgressFn, UploadOptions, DEFAULT_FILE_PARALLEL,
};

// ---- progress, hashing, checkpoints ----

/// A [`ProgressMeter`] feeding a callback (nothing at all without one).
struct Meter {
    meter: ProgressMeter,
    f: Option<ProgressFn>,
}

impl Meter {
    fn new(total: Option<u64>, f: Option<ProgressFn>) -> Meter {
        Meter {
            meter: ProgressMeter::new(total, Instant::now()),
            f,
        }
    }

    fn update(&mut self, loaded: u64, total: Option<u64>) {
        let Some(f) = &self.f else { return };
        if let Some(t) = total {
            self.meter.set_total(t);
        }
        if let Some(p) = self.meter.update(loaded, Instant::now()) {
            f(&p);
        }
    }
}

fn source_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Source(format!("{what} {}: {e}", path.display()))
}

/// The digest of `len` bytes of the file from `offset`; `tick(bytes done)` after each chunk may stop it.
fn digest_file(
    path: &Path,
    offset: u64,
    len: u64,
    mut tick: impl FnMut(u64) -> Result<(), Error>,
) -> Result<SentDigest, Error> {
    let mut f = File::open(path).map_err(|e| source_error(path, "cannot open", e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| source_error(path, "cannot seek in", e))?;
    let mut digest = BodyDigest::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = buf
            .len()
            .min(usize::try_from(len - done).unwrap_or(usize::MAX));
        let n = match f.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(source_error(
                    path,
                    &format!("ended after {done} of {len} bytes (did it change?):"),
                    "short read",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(source_error(path, "cannot read", e)),
        };
        digest.update(&buf[..n]);
        done += n as u64;
        tick(done)?;
    }
    Ok(digest.finish())
}

/// Writes the checkpoint atomically: a temporary file next to it, synced, then renamed over it.
fn save_checkpoint(path: &Path, cp: &Checkpoint) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = checkpoint_to_bytes(cp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// The checkpoint at `path` for this bucket and key: `None` when there is no file; an unreadable file is a
/// source error, and one that is not a checkpoint of this object is `InvalidInput::Checkpoint` (nothing is
/// sent: delete the file to start over).
fn load_checkpoint(path: &Path, bucket: &str, key: &str) -> Result<Option<Checkpoint>, Error> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Source(format!(
                "cannot read the checkpoint {}: {e}",
                path.display()
            )))
        }
    };
    checkpoint_from_bytes(&bytes, bucket, key).map(Some)
}

/// The checkpoint at `path`, once no other live upload holds it: the core's [`LeaseCheck`] decides, this
/// only reads the file again when told to.
fn load_free_checkpoint(path: &Path, bucket: &str, key: &str) -> Result<Option<Checkpoint>, Error> {
    let mut check = LeaseCheck::new(crate::client::lease_owner());
    loop {
        let cp = load_checkpoint(path, bucket, key)?;
        match check.check(cp.as_ref(), crate::client::now()) {
            LeaseDecision::Proceed => return Ok(cp),
            LeaseDecision::ReloadAt(t) => {
                std::thread::sleep(t.saturating_duration_since(Instant::now()))
            }
            LeaseDecision::Busy(e) => return Err(e),
        }
    }
}

fn remove_checkpoint(path: Option<&Path>) {
    if let Some(p) = path {
        if let Err(e) = fs::remove_file(p) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %p.display(), "cannot delete the checkpoint: {e}");
            }
        }
    }
}

// ---- commands from a task queue ----

/// Pause and cancel requests for a running upload, from another thread.
#[derive(Default)]
struct Control {
    inner: Mutex<ControlInner>,
}

#[derive(Default)]
struct ControlInner {
    pause: bool,
    cancel: bool,
    waker: Option<Waker>,
}

impl Control {
    fn lock(&self) -> MutexGuard<'_, ControlInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pause(&self) {
        let mut c = self.lock();
        c.pause = true;
        if let Some(w) = &c.waker {
            w.wake();
        }
    }

    fn cancel(&self) {
        let mut c = self.lock();
        c.cancel = true;
        if let Some(w) = &c.waker {
            w.wake();
        }
    }

    /// (pause, cancel)
    fn flags(&self) -> (bool, bool) {
        let c = self.lock();
        (c.pause, c.cancel)
    }

    /// Err when the upload must stop before it starts sending.
    fn check(&self) -> Result<(), Error> {
        match self.flags() {
            (false, false) => Ok(()),
            _ => Err(Error::Cancelled),
        }
    }
}

/// The driver duties of a file upload: commands, checkpoints, part digests, progress.
struct FileSteer<'a> {
    path: &'a Path,
    checkpoint: Option<&'a Path>,
    meter: Meter,
    control: Option<&'a Control>,
    pause_sent: bool,
    cancel_sent: bool,
    /// The run ended because the task paused (its checkpoint is kept).
    paused: bool,
}

impl Steer<MultipartUpload> for FileSteer<'_> {
    fn start(&mut self, waker: Waker) {
        if let Some(c) = self.control {
            c.lock().waker = Some(waker);
        }
    }

    fn prepare(&mut self, task: &mut MultipartUpload) -> bool {
        let Some(c) = self.control else { return false };
        let (pause, cancel) = c.flags();
        if cancel && !self.cancel_sent {
            self.cancel_sent = true;
            task.cancel();
            true
        } else if pause && !self.pause_sent && !self.cancel_sent {
            self.pause_sent = true;
            task.pause();
            true
        } else {
            false
        }
    }

    fn event(&mut self, task: &mut MultipartUpload, event: &Event) -> Option<Error> {
        match event {
            Event::CheckpointChanged => {
                if let (Some(path), Some(cp)) = (self.checkpoint, task.checkpoint()) {
                    if let Err(e) = save_checkpoint(path, &cp) {
                        tracing::warn!(path = %path.display(), "cannot write the checkpoint: {e}");
                    }
                }
            }
            Event::PartDigestNeeded { part, offset, len } => {
                let digest = match digest_file(self.path, *offset, *len, |_| Ok(())) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        tracing::warn!(part, "cannot hash the part, it is sent again: {e}");
                        None
                    }
                };
                task.part_digest(*part, digest);
            }
            Event::Progress { loaded, total } => self.meter.update(*loaded, *total),
            Event::Paused if self.pause_sent && !self.cancel_sent => {
                // The checkpoint is final for this run: store it (as the async client does).
                if let (Some(path), Some(cp)) = (self.checkpoint, task.checkpoint()) {
                    if let Err(e) = save_checkpoint(path, &cp) {
                        tracing::warn!(path = %path.display(), "cannot write the checkpoint: {e}");
                    }
                }
                self.paused = true;
                return Some(Error::Cancelled);
            }
            _ => {}
        }
        None
    }

    fn expects_wake(&self) -> bool {
        self.control.is_some()
    }
}

/// The driver duties of a stream upload: read part-size chunks when the task wants them.
struct StreamSteer<'a> {
    reader: &'a mut dyn Read,
    part_size: u64,
    ended: bool,
    meter: Meter,
}

impl Steer<MultipartUpload> for StreamSteer<'_> {
    fn prepare(&mut self, task: &mut MultipartUpload) -> bool {
        if self.ended || !task.wants_part() {
            return false;
        }
        let mut chunk = Vec::with_capacity(usize::try_from(self.part_size).unwrap_or(usize::MAX));
        if let Err(e) = (&mut *self.reader)
            .take(self.part_size)
            .read_to_end(&mut chunk)
        {
            self.ended = true;
            task.fail_source(format!("reading the stream failed: {e}"));
            return true;
        }
        let full = chunk.len() as u64 == self.part_size;
        if !chunk.is_empty() {
            if let Err(e) = task.push_part(Bytes::from(chunk)) {
                // The task refused it (the 10,001st part): it fails and aborts on its own.
                tracing::debug!("part refused: {e}");
                self.ended = true;
                return true;
            }
        }
        if !full {
            self.ended = true;
            task.finish_stream();
        }
        true
    }

    fn event(&mut self, _task: &mut MultipartUpload, event: &Event) -> Option<Error> {
        if let Event::Progress { loaded, total } = event {
            self.meter.update(*loaded, *total);
        }
        None
    }
}

// ---- the client's transfer methods ----

impl Client {
    /// Uploads a file: one PUT at or below [`UploadOptions::threshold`], a resumable concurrent multipart
    /// upload above.
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
        self.upload_file_inner(path.as_ref(), key, &options, None)
            .map(|(outcome, _)| outcome)
            .map_err(|(e, _)| e)
    }

    /// `upload_file` with commands; the flag says whether a run that did not succeed stopped on a pause.
    fn upload_file_inner(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
        control: Option<&Control>,
    ) -> Result<(UploadOutcome, bool), (Error, bool)> {
        let fail = |e: Error| (e, false);
        let meta = fs::metadata(path).map_err(|e| fail(source_error(path, "cannot read", e)))?;
        if !meta.is_file() {
            return Err(fail(source_error(path, "cannot upload", "not a file")));
        }
        let len = meta.len();
        let fingerprint = SourceFingerprint::new(len, meta.modified().ok());
        check_file_upload(key, options, len).map_err(fail)?;
        if let Some(c) = control {
            c.check().map_err(fail)?;
        }
        let meta_md5 = if options.add_meta_md5 {
            let mut meter = Meter::new(Some(len), options.on_hash_progress.clone());
            meter.update(0, Some(len));
            let d = digest_file(path, 0, len, |done| {
                meter.update(done, Some(len));
                control.map_or(Ok(()), Control::check)
            })
            .map_err(fail)?;
            meter.update(len, Some(len));
            d.md5_hex()
        } else {
            None
        };
        let config = self.config();
        let bucket = config.bucket.to_string();
        let mut meter = Meter::new(Some(len), options.on_progress.clone());
        let source = FileSource::new(path);
        let checkpoint = options.checkpoint.as_deref();
        let saved = match checkpoint {
            Some(p) => load_free_checkpoint(p, &bucket, key).map_err(fail)?,
            None => None,
        };
        let owner = checkpoint.map(|_| crate::client::lease_owner());
        let start = start_file_upload(config, key, options, fingerprint, saved, meta_md5, owner)
            .map_err(fail)?;
        match start {
            FileStart::SinglePut { task, stale } => {
                meter.update(0, Some(len));
                let put = self.run(task, &source).map_err(fail)?;
                meter.update(len, Some(len));
                if let Some(abort) = stale {
                    // The file shrank below the threshold since a multipart attempt: drop that upload.
                    match self.abort_multipart_upload(abort) {
                        Ok(_) => remove_checkpoint(checkpoint),
                        Err(e) => tracing::warn!("cannot abort the stale upload: {e}"),
                    }
                }
                Ok((UploadOutcome::from_put(&bucket, key, len, put), false))
            }
            FileStart::Multipart(mut task) => {
                let mut steer = FileSteer {
                    path,
                    checkpoint,
                    meter,
                    control,
                    pause_sent: false,
                    cancel_sent: false,
                    paused: false,
                };
                let result = self.drive(&mut task, &source, &mut steer);
                if result.is_ok() {
                    steer.meter.update(len, Some(len));
                }
                if checkpoint_after(&result, steer.paused) == CheckpointAfter::Remove {
                    remove_checkpoint(checkpoint);
                }
                result.map(|o| (o, false)).map_err(|e| (e, steer.paused))
            }
        }
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
        let mut task = start_stream_upload(self.config(), key, options)?;
        let mut steer = StreamSteer {
            reader: &mut reader,
            part_size: task.part_size(),
            ended: false,
            meter: Meter::new(None, options.on_progress.clone()),
        };
        let outcome = self.drive(&mut task, &NoSource, &mut steer)?;
        steer
            .meter
            .update(outcome.total_len, Some(outcome.total_len));
        Ok(outcome)
    }

    /// Uploads many files, [`BatchOptions::file_parallel`] at a time (the order is decided by the core's
    /// `UploadQueue`: oldest first). Returns one result per file, in input order; a failing file does not
    /// stop the others.
    pub fn upload_files(
        &self,
        files: Vec<FileUpload>,
        options: &BatchOptions,
    ) -> Vec<Result<UploadOutcome, Error>> {
        let mut queue: UploadQueue<usize> = UploadQueue::new(options.file_parallel.max(1));
        for (i, f) in files.iter().enumerate() {
            queue.add(i, fs::metadata(&f.path).ok().map(|m| m.len()));
        }
        let mut results: Vec<Option<Result<UploadOutcome, Error>>> =
            files.iter().map(|_| None).collect();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|scope| {
            let mut running = 0usize;
            loop {
                while let Some(out) = queue.poll() {
                    let QueueOutput::Start(id) = out else {
                        continue;
                    };
                    let Some(&i) = queue.get(id).map(|t| &t.meta) else {
                        continue;
                    };
                    let (tx, file) = (tx.clone(), &files[i]);
                    running += 1;
                    scope.spawn(move || {
                        let upload = options.options_for(file);
                        let r = self.upload_file(&file.path, &file.key, &upload);
                        let _ = tx.send((id, i, r));
                    });
                }
                if running == 0 {
                    break;
                }
                let Ok((id, i, r)) = rx.recv() else { break };
                running -= 1;
                let _ = queue.finished(id, r.as_ref().map(|_| ()).map_err(Clone::clone));
                if let Some(f) = &options.on_file_done {
                    f(&files[i], &r);
                }
                results[i] = Some(r);
            }
        });
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Cancelled)))
            .collect()
    }

    /// A task list that uploads up to `file_parallel` files at once in background threads.
    pub fn task_queue(&self, file_parallel: usize) -> TaskQueue {
        TaskQueue {
            shared: Arc::new(QueueShared {
                client: self.clone(),
                state: Mutex::new(QueueState {
                    queue: UploadQueue::new(file_parallel.max(1)),
                    runs: HashMap::new(),
                    results: HashMap::new(),
                    progress: HashMap::new(),
                    cleanups: 0,
                    on_change: None,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// Aborts the upload a checkpoint names and deletes the checkpoint.
    fn abort_checkpoint(&self, path: &Path, key: &str) {
        let bucket = self.config().bucket.to_string();
        let cp = match load_checkpoint(path, &bucket, key) {
            Ok(Some(cp)) => cp,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot abort from the checkpoint: {e}");
                return;
            }
        };
        match self.abort_multipart_upload(cp.abort_upload()) {
            Ok(_) => remove_checkpoint(Some(path)),
            Err(e) => {
                tracing::warn!(upload_id = %cp.upload_id, "cannot abort the cancelled upload: {e}")
            }
        }
    }
}

// ---- the task queue ----

/// One entry of a [`TaskQueue`] as [`TaskQueue::list`] shows it.
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
    /// The last progress report, once there was one.
    pub progress: Option<Progress>,
    /// Why it failed, in state [`TaskState::Error`].
    pub error: Option<Error>,
}

type ChangeFn = Arc<dyn Fn(&[TaskInfo]) + Send + Sync>;

struct Entry {
    path: PathBuf,
    key: String,
    options: UploadOptions,
}

struct Run {
    control: Arc<Control>,
    /// The task was started again while this run was still ending: run it again afterwards.
    restart: bool,
}

struct QueueState {
    queue: UploadQueue<Entry>,
    /// Runs whose thread is alive.
    runs: HashMap<TaskId, Run>,
    /// Final results (success, error, cancelled).
    results: HashMap<TaskId, Result<UploadOutcome, Error>>,
    progress: HashMap<TaskId, Progress>,
    /// Cancelled uploads being aborted.
    cleanups: usize,
    on_change: Option<ChangeFn>,
}

struct QueueShared {
    client: Client,
    state: Mutex<QueueState>,
    changed: Condvar,
}

/// A task list of file uploads run in background threads, [`file_parallel`](Client::task_queue) at a
/// time, oldest first (the core's `UploadQueue` decides). Cheap to clone; clones share the list.
///
/// Pausing a running upload keeps its checkpoint (the task's [`UploadOptions::checkpoint`], or one derived
/// from the bucket, path and key in the temporary directory) and stops sending parts; resuming sends only
/// the missing parts. Cancelling aborts the multipart upload, so nothing is left on the server. A failed
/// task can be resumed too.
///
/// A task's checkpoint is its [`UploadOptions::checkpoint`] when set; otherwise it is
/// `cos-rs-checkpoints/NAME` in [`std::env::temp_dir`], where `NAME` is
/// [`cos_core::upload::file::derived_checkpoint_name`] of the bucket, the file's absolute (canonical when
/// possible) path and the key: the same file for both clients, so either can resume the other's upload.
/// It is removed when the task succeeds or is cancelled and kept when it is paused or fails.
///
/// Progress reaches [`TaskQueue::list`], [`TaskQueue::on_change`] and the task's own
/// [`UploadOptions::on_progress`] at most once per [`cos_core::upload::DEFAULT_PROGRESS_INTERVAL`] (200 ms)
/// per task; the first and the last report always pass.
///
/// [`wait`](TaskQueue::wait) and [`wait_all`](TaskQueue::wait_all) block without limit;
/// [`wait_timeout`](TaskQueue::wait_timeout) and [`wait_all_timeout`](TaskQueue::wait_all_timeout) return
/// [`Waited::TimedOut`] once the limit passes, leaving the tasks running.
///
/// ```no_run
/// # use cos_blocking::{Client, Config, Credentials, UploadOptions};
/// # let client = Client::new(Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?);
/// let queue = client.task_queue(2);
/// queue.on_change(|tasks| println!("{} tasks", tasks.len()));
/// let a = queue.add("a.bin", "a.bin", UploadOptions::default());
/// let b = queue.add("b.bin", "b.bin", UploadOptions::default());
/// queue.pause(b);
/// queue.resume(b);
/// println!("{:?}", queue.wait(a)?);
/// if queue.wait_timeout(b, std::time::Duration::from_secs(60)).is_timed_out() {
///     queue.cancel(b);
/// }
/// queue.wait_all();
/// # Ok::<(), cos_blocking::Error>(())
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

fn task_infos(st: &QueueState) -> Vec<TaskInfo> {
    st.queue
        .tasks()
        .iter()
        .map(|t| TaskInfo {
            id: t.id,
            path: t.meta.path.clone(),
            key: t.meta.key.clone(),
            state: t.state,
            progress: st.progress.get(&t.id).copied(),
            error: t.error.clone(),
        })
        .collect()
}

/// The checkpoint a queued task uses when it has none: in the temporary directory, named after the
/// bucket, the file and the key.
fn derived_checkpoint(bucket: &str, path: &Path, key: &str) -> PathBuf {
    let path = fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let name = derived_checkpoint_name(bucket, &path.display().to_string(), key);
    std::env::temp_dir().join("cos-rs-checkpoints").join(name)
}

impl QueueShared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carries out what the core queue asks for; returns whether the list changed.
    fn pump(self: &Arc<Self>, st: &mut QueueState) -> bool {
        let mut changed = false;
        while let Some(out) = st.queue.poll() {
            match out {
                QueueOutput::ListUpdate => changed = true,
                QueueOutput::Start(id) => {
                    st.results.remove(&id);
                    match st.runs.get_mut(&id) {
                        // Its previous run is still ending (a quick pause and resume): start after it.
                        Some(run) => run.restart = true,
                        None => self.spawn_run(st, id),
                    }
                }
                QueueOutput::Pause(id) => {
                    if let Some(run) = st.runs.get(&id) {
                        run.control.pause();
                    }
                }
                QueueOutput::Cancel(id) => {
                    if let Some(run) = st.runs.get_mut(&id) {
                        run.restart = false;
                        run.control.cancel();
                    }
                }
            }
        }
        changed
    }

    fn spawn_run(self: &Arc<Self>, st: &mut QueueState, id: TaskId) {
        let Some(task) = st.queue.get(id) else { return };
        let (path, key) = (task.meta.path.clone(), task.meta.key.clone());
        let mut options = task.meta.options.clone();
        if options.checkpoint.is_none() {
            let bucket = self.client.config().bucket.to_string();
            options.checkpoint = Some(derived_checkpoint(&bucket, &path, &key));
        }
        let user = options.on_progress.take();
        let weak = Arc::downgrade(self);
        options.on_progress = Some(Arc::new(move |p: &Progress| {
            if let Some(shared) = weak.upgrade() {
                shared.progress(id, p);
            }
            if let Some(f) = &user {
                f(p);
            }
        }));
        let control = Arc::new(Control::default());
        st.runs.insert(
            id,
            Run {
                control: control.clone(),
                restart: false,
            },
        );
        let shared = self.clone();
        std::thread::spawn(move || {
            let result = shared.client.upload_file_inner(
                &path,
                &key,
                &options.for_file(&path),
                Some(&control),
            );
            shared.run_ended(id, result, &options, &key);
        });
    }

    fn progress(self: &Arc<Self>, id: TaskId, p: &Progress) {
        let (infos, f) = {
            let mut st = self.lock();
            st.progress.insert(id, *p);
            let _ = st.queue.set_progress(id, p.loaded, p.total);
            (task_infos(&st), st.on_change.clone())
        };
        if let Some(f) = f {
            f(&infos);
        }
    }

    fn run_ended(
        self: &Arc<Self>,
        id: TaskId,
        result: Result<(UploadOutcome, bool), (Error, bool)>,
        options: &UploadOptions,
        key: &str,
    ) {
        let mut st = self.lock();
        let run = st.runs.remove(&id);
        let state = st.queue.get(id).map(|t| t.state);
        match result {
            Ok((outcome, _)) => {
                let _ = st.queue.finished(id, Ok(()));
                st.results.insert(id, Ok(outcome));
            }
            Err(_) if run.as_ref().is_some_and(|r| r.restart) => self.spawn_run(&mut st, id),
            Err((e, _)) => match state {
                Some(TaskState::Canceled) => {
                    // Paused or failed before the cancel reached it: abort what its checkpoint names.
                    st.cleanups += 1;
                    drop(st);
                    if let Some(cp) = &options.checkpoint {
                        self.client.abort_checkpoint(cp, key);
                    }
                    st = self.lock();
                    st.cleanups -= 1;
                    st.results.insert(id, Err(Error::Cancelled));
                }
                Some(TaskState::Running) => {
                    let _ = st.queue.finished(id, Err(e.clone()));
                    st.results.insert(id, Err(e));
                }
                // Paused: the checkpoint stays for a resume.
                _ => {
                    let _ = st.queue.finished(id, Err(e));
                }
            },
        }
        self.settle(st);
    }

    /// Pumps the queue, wakes waiters and calls the change callback (outside the lock).
    fn settle(self: &Arc<Self>, mut st: MutexGuard<'_, QueueState>) {
        let changed = self.pump(&mut st);
        let call = changed
            .then(|| st.on_change.clone().map(|f| (f, task_infos(&st))))
            .flatten();
        drop(st);
        self.changed.notify_all();
        if let Some((f, infos)) = call {
            f(&infos);
        }
    }
}

impl TaskQueue {
    /// Adds the upload of the file at `path` as `key`; it starts when a slot is free.
    pub fn add(&self, path: impl Into<PathBuf>, key: &str, options: UploadOptions) -> TaskId {
        let path = path.into();
        let total = fs::metadata(&path).ok().map(|m| m.len());
        let mut st = self.shared.lock();
        let id = st.queue.add(
            Entry {
                path,
                key: key.to_string(),
                options,
            },
            total,
        );
        self.shared.settle(st);
        id
    }

    /// Pauses a waiting or running task: a running upload stops sending parts and keeps its checkpoint.
    pub fn pause(&self, id: TaskId) {
        let mut st = self.shared.lock();
        let _ = st.queue.pause(id);
        self.shared.settle(st);
    }

    /// Puts a paused or failed task back in line; it continues from its checkpoint.
    pub fn resume(&self, id: TaskId) {
        let mut st = self.shared.lock();
        let _ = st.queue.resume(id);
        self.shared.settle(st);
    }

    /// Cancels a task: a running upload is aborted, and so is the upload a paused or failed task left.
    pub fn cancel(&self, id: TaskId) {
        let mut st = self.shared.lock();
        let before = st.queue.get(id).map(|t| t.state);
        if st.queue.cancel(id).is_err() {
            return;
        }
        if let Some(run) = st.runs.get_mut(&id) {
            // Its thread is alive: it aborts the upload (even while paused) and reports.
            run.restart = false;
            run.control.cancel();
        } else if before.is_some_and(|s| s != TaskState::Running) {
            let entry = st.queue.get(id).map(|t| {
                let mut cp = t.meta.options.checkpoint.clone();
                if cp.is_none() {
                    let bucket = self.shared.client.config().bucket.to_string();
                    cp = Some(derived_checkpoint(&bucket, &t.meta.path, &t.meta.key));
                }
                (cp, t.meta.key.clone())
            });
            match entry {
                Some((Some(cp), key)) if cp.exists() => {
                    st.cleanups += 1;
                    let shared = self.shared.clone();
                    std::thread::spawn(move || {
                        shared.client.abort_checkpoint(&cp, &key);
                        let mut st = shared.lock();
                        st.cleanups -= 1;
                        st.results.insert(id, Err(Error::Cancelled));
                        shared.settle(st);
                    });
                }
                _ => {
                    st.results.insert(id, Err(Error::Cancelled));
                }
            }
        }
        self.shared.settle(st);
    }

    /// Every task, oldest first.
    pub fn list(&self) -> Vec<TaskInfo> {
        task_infos(&self.shared.lock())
    }

    /// Calls `f` with the whole list whenever it changes (a task added, started, paused, finished…) and on
    /// progress reports. It runs on the thread that made the change; do not block in it.
    pub fn on_change(&self, f: impl Fn(&[TaskInfo]) + Send + Sync + 'static) {
        self.shared.lock().on_change = Some(Arc::new(f));
    }

    /// Blocks until the task has succeeded, failed or been cancelled (a paused task is waited for until
    /// it is resumed and ends), and returns its result. An unknown id is an [`Error::InvalidInput`].
    pub fn wait(&self, id: TaskId) -> Result<UploadOutcome, Error> {
        match self.wait_until(id, None) {
            Waited::Done(r) => r,
            Waited::TimedOut => unreachable!("a wait without a deadline does not time out"),
        }
    }

    /// [`wait`](TaskQueue::wait) for at most `timeout`: [`Waited::TimedOut`] if the task has not ended by
    /// then (it goes on running), else [`Waited::Done`] with its result.
    pub fn wait_timeout(
        &self,
        id: TaskId,
        timeout: Duration,
    ) -> Waited<Result<UploadOutcome, Error>> {
        self.wait_until(id, Instant::now().checked_add(timeout))
    }

    fn wait_until(
        &self,
        id: TaskId,
        deadline: Option<Instant>,
    ) -> Waited<Result<UploadOutcome, Error>> {
        let mut st = self.shared.lock();
        loop {
            let Some(task) = st.queue.get(id) else {
                return Waited::Done(Err(InvalidInput::Parameter {
                    name: "task id",
                    reason: format!("no task {}", id.0),
                }
                .into()));
            };
            if task.state.is_finished() && !st.runs.contains_key(&id) {
                if let Some(r) = st.results.get(&id) {
                    return Waited::Done(r.clone());
                }
            }
            st = match self.wait_changed(st, deadline) {
                Some(st) => st,
                None => return Waited::TimedOut,
            };
        }
    }

    /// Blocks until no task is waiting or running (paused tasks stay paused) and every background thread
    /// has ended.
    pub fn wait_all(&self) {
        let _ = self.wait_all_until(None);
    }

    /// [`wait_all`](TaskQueue::wait_all) for at most `timeout`: [`Waited::TimedOut`] if tasks are still
    /// waiting or running by then (they go on), else [`Waited::Done`].
    pub fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
        self.wait_all_until(Instant::now().checked_add(timeout))
    }

    fn wait_all_until(&self, deadline: Option<Instant>) -> Waited<()> {
        let mut st = self.shared.lock();
        while !(st.queue.is_idle() && st.runs.is_empty() && st.cleanups == 0) {
            st = match self.wait_changed(st, deadline) {
                Some(st) => st,
                None => return Waited::TimedOut,
            };
        }
        Waited::Done(())
    }

    /// Waits for the next change, until `deadline` if there is one (`None` once it has passed).
    fn wait_changed<'a>(
        &self,
        st: MutexGuard<'a, QueueState>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, QueueState>> {
        let changed = &self.shared.changed;
        match deadline {
            None => Some(changed.wait(st).unwrap_or_else(|e| e.into_inner())),
            Some(deadline) => {
                let left = deadline.checked_duration_since(Instant::now())?;
                if left.is_zero() {
                    return None;
                }
                let (st, _) = changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner());
                Some(st)
            }
        }
    }
}
