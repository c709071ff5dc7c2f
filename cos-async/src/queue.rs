//! The task list of [`TaskQueue`]: the core's [`UploadQueue`] decides which file starts, pauses or is
//! cancelled; this module runs each file's [`UploadTask`](cos_core::upload::UploadTask) as a tokio task
//! (via [`Client::upload_file`]'s loop), delivers the commands and keeps the results for `wait`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cos_core::task::Command;
use cos_core::upload::{derived_checkpoint_name, QueueOutput, UploadQueue};
use cos_core::{Error, InvalidInput};
use tokio::sync::{mpsc, watch};

use crate::client::Client;
use crate::transfer::{
    PausedFn, Progress, TaskId, TaskState, UploadOptions, UploadOutcome, Waited,
};

impl Client {
    /// A task list that uploads files in the background, `file_parallel` at a time (call inside a tokio
    /// runtime: the tasks run on it).
    pub fn task_queue(&self, file_parallel: usize) -> TaskQueue {
        let (changed, _) = watch::channel(0u64);
        let shared = Arc::new(QueueShared {
            client: self.clone(),
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(QueueState {
                queue: UploadQueue::new(file_parallel),
                entries: HashMap::new(),
            }),
            changed,
            callbacks: Mutex::new(Vec::new()),
        });
        TaskQueue {
            _handle: Arc::new(Handle(Arc::downgrade(&shared))),
            shared,
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
/// Dropping the last clone cancels every task that has not ended, as [`cancel`](TaskQueue::cancel)
/// does: waiting tasks never start, running and paused uploads are aborted (nothing is left on the server,
/// their checkpoints are removed), and their tokio tasks end once the aborts are answered (while the
/// runtime runs). Failed tasks keep their checkpoints. To let the tasks finish, await
/// [`wait_all`](TaskQueue::wait_all) before dropping. (A clone moved into
/// [`on_change`](TaskQueue::on_change) or a progress callback keeps the queue alive.)
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
    /// Shared by the clones only (the tokio tasks hold `shared`): its drop is the last clone's.
    _handle: Arc<Handle>,
}

/// Cancels what has not ended when the last [`TaskQueue`] clone goes (see its docs).
struct Handle(Weak<QueueShared>);

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let ids = lock(&shared.state).queue.cancel_on_drop();
        for id in ids {
            shared.cancel(id);
        }
    }
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

    /// [`TaskQueue::cancel`].
    fn cancel(self: &Arc<Self>, id: TaskId) {
        let list = {
            let mut guard = lock(&self.state);
            let state = &mut *guard;
            let before = state.queue.get(id).map(|t| t.state);
            if state.queue.cancel(id).is_ok() {
                let entry = state.entries.entry(id).or_default();
                if let Some(tx) = &entry.control {
                    // Still running (or pausing): the upload aborts itself.
                    let _ = tx.send(Command::Cancel);
                } else if matches!(before, Some(TaskState::Paused | TaskState::Error)) {
                    self.spawn_abort(state, id);
                } else {
                    entry.result = Some(Err(Error::Cancelled));
                }
                self.changed.send_modify(|n| *n += 1);
            }
            self.pump(state)
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
        self.shared.cancel(id);
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
