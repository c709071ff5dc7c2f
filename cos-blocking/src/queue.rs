//! The task list of [`TaskQueue`]: the core's [`UploadQueue`] decides which file starts, pauses or is
//! cancelled; this module runs each file's [`UploadTask`](cos_core::upload::UploadTask) on a thread (via
//! [`Client::upload_file`]'s loop), delivers the commands and keeps the results for `wait`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use cos_core::task::Command;
use cos_core::upload::{derived_checkpoint_name, QueueOutput, UploadQueue};
use cos_core::{Error, InvalidInput};

use crate::client::{Channel, Client, Commands};
use crate::transfer::{Progress, TaskId, TaskState, UploadOptions, UploadOutcome, Waited};

impl Client {
    /// A task list that uploads up to `file_parallel` files at once in background threads.
    pub fn task_queue(&self, file_parallel: usize) -> TaskQueue {
        let shared = Arc::new(QueueShared {
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
        });
        TaskQueue {
            _handle: Arc::new(Handle(Arc::downgrade(&shared))),
            shared,
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
    commands: Commands,
    /// Paused with nothing in flight.
    idle: bool,
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
/// Dropping the last clone cancels every task that has not ended, as [`cancel`](TaskQueue::cancel)
/// does: waiting tasks never start, running and paused uploads are aborted (nothing is left on the server,
/// their checkpoints are removed), and their threads end once the aborts are answered. Failed tasks keep
/// their checkpoints. To let the tasks finish, call [`wait_all`](TaskQueue::wait_all) before dropping. (A
/// clone moved into [`on_change`](TaskQueue::on_change) or a progress callback keeps the queue alive.)
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
    /// Shared by the clones only (the threads hold `shared`): its drop is the last clone's.
    _handle: Arc<Handle>,
}

/// Cancels what has not ended when the last [`TaskQueue`] clone goes (see its docs).
struct Handle(Weak<QueueShared>);

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let ids = shared.lock().queue.cancel_on_drop();
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
                        // A paused run keeps its task: it continues.
                        Some(run) => {
                            run.commands.send(Command::Resume);
                            run.idle = false;
                        }
                        None => self.spawn_run(st, id),
                    }
                }
                QueueOutput::Pause(id) | QueueOutput::Cancel(id) => {
                    let command = match out {
                        QueueOutput::Pause(_) => Command::Pause,
                        _ => Command::Cancel,
                    };
                    if let Some(run) = st.runs.get(&id) {
                        run.commands.send(command);
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
        let channel = Channel::new();
        let commands = channel.commands();
        st.runs.insert(
            id,
            Run {
                commands,
                idle: false,
            },
        );
        let shared = self.clone();
        std::thread::spawn(move || {
            let weak = Arc::downgrade(&shared);
            let on_paused = Box::new(move || {
                if let Some(shared) = weak.upgrade() {
                    let mut st = shared.lock();
                    if let Some(run) = st.runs.get_mut(&id) {
                        run.idle = true;
                    }
                    shared.settle(st);
                }
            });
            let options_for_file = options.for_file(&path);
            let result = shared.client.upload_file_inner(
                &path,
                &key,
                &options_for_file,
                channel,
                Some(on_paused),
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
        result: Result<UploadOutcome, Error>,
        options: &UploadOptions,
        key: &str,
    ) {
        let mut st = self.lock();
        st.runs.remove(&id);
        let state = st.queue.get(id).map(|t| t.state);
        match result {
            Ok(outcome) => {
                let _ = st.queue.finished(id, Ok(()));
                st.results.insert(id, Ok(outcome));
            }
            Err(e) => match state {
                Some(TaskState::Canceled) => {
                    // Failed before the cancel reached it: abort what its checkpoint names.
                    st.cleanups += 1;
                    drop(st);
                    if let (Some(cp), false) = (&options.checkpoint, matches!(e, Error::Cancelled))
                    {
                        self.client.discard(cp, key);
                    }
                    st = self.lock();
                    st.cleanups -= 1;
                    st.results.insert(id, Err(Error::Cancelled));
                }
                Some(TaskState::Running) => {
                    let _ = st.queue.finished(id, Err(e.clone()));
                    st.results.insert(id, Err(e));
                }
                _ => {
                    let _ = st.queue.finished(id, Err(e));
                }
            },
        }
        self.settle(st);
    }

    /// [`TaskQueue::cancel`].
    fn cancel(self: &Arc<Self>, id: TaskId) {
        let mut st = self.lock();
        let before = st.queue.get(id).map(|t| t.state);
        if st.queue.cancel(id).is_err() {
            return;
        }
        if let Some(run) = st.runs.get(&id) {
            // Its thread is alive: its task aborts the upload (even while paused) and reports.
            run.commands.send(Command::Cancel);
        } else if before.is_some_and(|s| s != TaskState::Running) {
            let entry = st.queue.get(id).map(|t| {
                let mut cp = t.meta.options.checkpoint.clone();
                if cp.is_none() {
                    let bucket = self.client.config().bucket.to_string();
                    cp = Some(derived_checkpoint(&bucket, &t.meta.path, &t.meta.key));
                }
                (cp, t.meta.key.clone())
            });
            match entry {
                Some((Some(cp), key)) if cp.exists() => {
                    st.cleanups += 1;
                    let shared = self.clone();
                    std::thread::spawn(move || {
                        shared.client.discard(&cp, &key);
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
        self.shared.cancel(id);
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
        // A paused task keeps its run (idle, its checkpoint stored) until it is resumed or cancelled.
        let settled = |st: &QueueState| {
            st.queue.is_idle()
                && st.cleanups == 0
                && st.runs.iter().all(|(id, run)| {
                    run.idle
                        && st
                            .queue
                            .get(*id)
                            .is_some_and(|t| t.state == TaskState::Paused)
                })
        };
        while !settled(&st) {
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
