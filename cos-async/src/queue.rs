//! The task lists [`TaskQueue`] (file uploads) and [`DownloadQueue`] (file downloads): one loop over the
//! core's [`TransferQueue`], which decides which task starts, pauses, resumes, is cancelled or has its
//! leftovers discarded, and when `wait` and `wait_all` return. This module runs each task as a tokio task
//! (a [`Job`]: an upload or a download) and carries out what the core asks; it decides nothing.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use cos_core::download::DownloadOptions;
use cos_core::queue::{
    DownloadEntry, QueueError, QueueOutput, QueuedTask, TransferQueue, UploadEntry,
};
pub use cos_core::queue::{DownloadInfo, TaskInfo};
use cos_core::task::Command;
use cos_core::{Error, InvalidInput};
use tokio::sync::{mpsc, watch};

use crate::client::Client;
use crate::download::DownloadOutcome;
use crate::transfer::{Progress, TaskId, UploadOptions, UploadOutcome, Waited};

type Commands = mpsc::UnboundedReceiver<Command>;
type ChangeFn<I> = Arc<dyn Fn(&[I]) + Send + Sync>;

/// What a run tells its task list: its progress reports, and that it paused (idle, checkpoint stored).
struct Hooks {
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    paused: Arc<dyn Fn() + Send + Sync>,
}

/// One kind of queued task: how a run of it is carried out (to its end, taking commands from
/// `commands`) and how its leftovers are discarded when the core says so.
trait Job: Clone + Send + Sync + 'static {
    type Outcome: Clone + Send + 'static;
    type Info: for<'a> From<&'a QueuedTask<Self, Self::Outcome>> + Send + 'static;
    fn run(
        self,
        client: Client,
        commands: Commands,
        hooks: Hooks,
    ) -> impl Future<Output = Result<Self::Outcome, Error>> + Send;
    fn discard(self, client: Client) -> impl Future<Output = ()> + Send;
}

impl Job for UploadEntry {
    type Outcome = UploadOutcome;
    type Info = TaskInfo;

    async fn run(
        self,
        client: Client,
        mut commands: Commands,
        hooks: Hooks,
    ) -> Result<UploadOutcome, Error> {
        let mut options = self.options.for_file(&self.path).into_owned();
        let (user, report) = (options.on_progress.take(), hooks.progress);
        options.on_progress = Some(Arc::new(move |p: &Progress| {
            report(*p);
            if let Some(f) = &user {
                f(p);
            }
        }));
        let (path, key, paused) = (&self.path, &self.key, Some(hooks.paused));
        client
            .upload_file_with(path, key, &options, Some(&mut commands), paused)
            .await
    }

    async fn discard(self, client: Client) {
        if let Some(checkpoint) = &self.options.checkpoint {
            client.discard(checkpoint, &self.key).await;
        }
    }
}

impl Job for DownloadEntry {
    type Outcome = DownloadOutcome;
    type Info = DownloadInfo;

    async fn run(
        self,
        client: Client,
        commands: Commands,
        hooks: Hooks,
    ) -> Result<DownloadOutcome, Error> {
        let progress = |loaded, total| {
            let (total, speed, percent) = (Some(total), 0.0, None);
            (hooks.progress)(Progress {
                loaded,
                total,
                speed,
                percent,
            })
        };
        let paused = || (hooks.paused)();
        let (key, path, options) = (&self.key, &self.path, &self.options);
        client
            .download_file_inner(key, path, options, &progress, Some(commands), &paused)
            .await
    }

    async fn discard(self, _: Client) {
        for file in self.leftovers() {
            let _ = tokio::fs::remove_file(file).await;
        }
    }
}

struct State<J: Job> {
    queue: TransferQueue<J, J::Outcome>,
    /// How to command each live run.
    runs: HashMap<TaskId, mpsc::UnboundedSender<Command>>,
    on_change: Vec<ChangeFn<J::Info>>,
}

struct Shared<J: Job> {
    client: Client,
    runtime: tokio::runtime::Handle,
    state: Mutex<State<J>>,
    /// Bumped on every change: wakes the waiters.
    changed: watch::Sender<u64>,
}

/// The loop shared by both task lists.
#[derive(Clone)]
struct Queue<J: Job> {
    shared: Arc<Shared<J>>,
    /// Shared by the clones only (the runs hold `shared`): its drop is the last clone's.
    _handle: Arc<Handle<J>>,
}

/// Cancels what has not ended when the last clone of a queue goes (the core says what).
struct Handle<J: Job>(Weak<Shared<J>>);

impl<J: Job> Drop for Handle<J> {
    fn drop(&mut self) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let mut st = shared.lock();
        for id in st.queue.cancel_on_drop() {
            let _ = st.queue.cancel(id);
        }
        shared.settle(st, false);
    }
}

impl<J: Job> Shared<J> {
    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn infos(st: &State<J>) -> Vec<J::Info> {
        st.queue.tasks().iter().map(J::Info::from).collect()
    }

    /// Carries out what the core asks for, wakes the waiters and, if the list changed (or `announce`),
    /// calls the change callbacks outside the lock.
    fn settle(self: &Arc<Self>, mut st: MutexGuard<'_, State<J>>, announce: bool) {
        let mut changed = announce;
        while let Some(out) = st.queue.poll() {
            match out {
                QueueOutput::ListUpdate => changed = true,
                QueueOutput::Start(id) => self.start(&mut st, id),
                QueueOutput::Command(id, command) => {
                    if let Some(send) = st.runs.get(&id) {
                        let _ = send.send(command);
                    }
                }
                QueueOutput::Discard(id) => self.discard(&st, id),
            }
        }
        let call =
            (changed && !st.on_change.is_empty()).then(|| (st.on_change.clone(), Self::infos(&st)));
        drop(st);
        self.changed.send_modify(|n| *n += 1);
        for (f, infos) in call
            .iter()
            .flat_map(|(fs, i)| fs.iter().map(move |f| (f, i)))
        {
            f(infos);
        }
    }

    /// Starts a run of the task as a tokio task; its end is reported to the core.
    fn start(self: &Arc<Self>, st: &mut State<J>, id: TaskId) {
        let Some(job) = st.queue.get(id).map(|t| t.meta.clone()) else {
            return;
        };
        let (send, commands) = mpsc::unbounded_channel();
        st.runs.insert(id, send);
        let shared = self.clone();
        self.runtime.spawn(async move {
            let run = job.run(shared.client.clone(), commands, shared.hooks(id));
            let result = run.await;
            let mut st = shared.lock();
            st.runs.remove(&id);
            let _ = st.queue.finished(id, result);
            shared.settle(st, false);
        });
    }

    /// Discards the task's leftovers as a tokio task and answers the core.
    fn discard(self: &Arc<Self>, st: &State<J>, id: TaskId) {
        let Some(job) = st.queue.get(id).map(|t| t.meta.clone()) else {
            return;
        };
        let shared = self.clone();
        self.runtime.spawn(async move {
            job.discard(shared.client.clone()).await;
            let mut st = shared.lock();
            let _ = st.queue.discarded(id);
            shared.settle(st, false);
        });
    }

    fn hooks(self: &Arc<Self>, id: TaskId) -> Hooks {
        let (a, b) = (Arc::downgrade(self), Arc::downgrade(self));
        Hooks {
            progress: Arc::new(move |p| {
                if let Some(shared) = a.upgrade() {
                    let mut st = shared.lock();
                    let _ = st.queue.report(id, p);
                    shared.settle(st, true);
                }
            }),
            paused: Arc::new(move || {
                if let Some(shared) = b.upgrade() {
                    let mut st = shared.lock();
                    let _ = st.queue.paused(id);
                    shared.settle(st, false);
                }
            }),
        }
    }
}

impl<J: Job> Queue<J> {
    fn new(client: &Client, file_parallel: usize) -> Queue<J> {
        let shared = Arc::new(Shared {
            client: client.clone(),
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(State {
                queue: TransferQueue::new(file_parallel),
                runs: HashMap::new(),
                on_change: Vec::new(),
            }),
            changed: watch::channel(0u64).0,
        });
        Queue {
            _handle: Arc::new(Handle(Arc::downgrade(&shared))),
            shared,
        }
    }

    /// Applies one command to the core's list (one that does not apply is ignored), then carries out
    /// what follows.
    fn with(&self, f: impl FnOnce(&mut TransferQueue<J, J::Outcome>) -> Result<(), QueueError>) {
        let mut st = self.shared.lock();
        let _ = f(&mut st.queue);
        self.shared.settle(st, false);
    }

    fn add(&self, job: J, total: Option<u64>) -> TaskId {
        let mut st = self.shared.lock();
        let id = st.queue.add(job, total);
        self.shared.settle(st, false);
        id
    }

    async fn wait(&self, id: TaskId) -> Result<J::Outcome, Error> {
        let mut changed = self.shared.changed.subscribe();
        loop {
            let outcome = self
                .shared
                .lock()
                .queue
                .outcome(id)
                .map(Option::<&_>::cloned);
            match outcome {
                Err(_) => {
                    return Err(InvalidInput::Parameter {
                        name: "task id",
                        reason: format!("no task {}", id.0),
                    }
                    .into())
                }
                Ok(Some(r)) => return r,
                Ok(None) => {}
            }
            if changed.changed().await.is_err() {
                return Err(Error::Cancelled);
            }
        }
    }

    async fn wait_all(&self) {
        let mut changed = self.shared.changed.subscribe();
        while !self.shared.lock().queue.is_settled() {
            if changed.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Runs `run(i)` for each of the `lens.len()` items of a batch as tokio tasks, in the order and at most
/// `parallel` at a time as the core's [`TransferQueue`] starts them, and calls `done(i, &result)` as each
/// ends. One result per item, in input order; a failing item does not stop the others.
pub(crate) async fn run_batch<T, F>(
    lens: &[Option<u64>],
    parallel: usize,
    run: impl Fn(usize) -> F,
    done: impl Fn(usize, &Result<T, Error>),
) -> Vec<Result<T, Error>>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let mut queue: TransferQueue<usize, T> = TransferQueue::new(parallel.max(1));
    let ids: Vec<TaskId> = (lens.iter().enumerate())
        .map(|(i, len)| queue.add(i, *len))
        .collect();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while let Some(out) = queue.poll() {
            let QueueOutput::Start(id) = out else {
                continue;
            };
            let Some(&i) = queue.get(id).map(|t| &t.meta) else {
                continue;
            };
            let f = run(i);
            running.spawn(async move { (id, i, f.await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, i, r) = match joined {
            Ok(x) => x,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => continue,
        };
        done(i, &r);
        let _ = queue.finished(id, r);
    }
    // Each item's outcome, as the core's queue keeps it.
    let outcome = |id: &TaskId| queue.outcome(*id).ok().flatten().cloned();
    ids.iter()
        .map(|id| outcome(id).unwrap_or(Err(Error::Cancelled)))
        .collect()
}

/// The methods both task lists share, each over its own kind of task.
macro_rules! task_list_methods {
    ($list:ident, $outcome:ty, $info:ty) => {
        impl $list {
            /// Pauses a waiting or running task: a running one stops starting requests, lets those in
            /// flight finish and keeps its checkpoint.
            pub fn pause(&self, id: TaskId) {
                self.0.with(|q| q.pause(id));
            }

            /// Puts a paused or failed task back in line; it continues from its checkpoint with only
            /// what is missing.
            pub fn resume(&self, id: TaskId) {
                self.0.with(|q| q.resume(id));
            }

            /// Cancels a task that has not ended, or a failed one; see the type's docs for what is
            /// cleaned up.
            pub fn cancel(&self, id: TaskId) {
                self.0.with(|q| q.cancel(id));
            }

            /// Every task, oldest first.
            pub fn list(&self) -> Vec<$info> {
                Shared::infos(&self.0.shared.lock())
            }

            /// Calls `f` with the whole list whenever it changes (a task added, started, paused,
            /// ended…) and on progress reports, besides the callbacks given before. Do not block in it.
            pub fn on_change(&self, f: impl Fn(&[$info]) + Send + Sync + 'static) {
                self.0.shared.lock().on_change.push(Arc::new(f));
            }

            /// Waits until the task has succeeded, failed or been cancelled (a paused task is waited
            /// for until it is resumed and ends) and nothing of it runs any more, and returns its
            /// result. An unknown id is an [`Error::InvalidInput`].
            pub async fn wait(&self, id: TaskId) -> Result<$outcome, Error> {
                self.0.wait(id).await
            }

            /// [`wait`](Self::wait) for at most `timeout`: [`Waited::TimedOut`] if the task has not
            /// ended by then (it goes on running), else [`Waited::Done`] with its result.
            pub async fn wait_timeout(
                &self,
                id: TaskId,
                timeout: Duration,
            ) -> Waited<Result<$outcome, Error>> {
                match tokio::time::timeout(timeout, self.0.wait(id)).await {
                    Ok(r) => Waited::Done(r),
                    Err(_) => Waited::TimedOut,
                }
            }

            /// Waits until no task is waiting or running, every paused one is idle (its checkpoint
            /// stored) and every cleanup is done.
            pub async fn wait_all(&self) {
                self.0.wait_all().await
            }

            /// [`wait_all`](Self::wait_all) for at most `timeout`: [`Waited::TimedOut`] if tasks are
            /// still waiting or running by then (they go on), else [`Waited::Done`].
            pub async fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
                match tokio::time::timeout(timeout, self.0.wait_all()).await {
                    Ok(()) => Waited::Done(()),
                    Err(_) => Waited::TimedOut,
                }
            }
        }

        impl std::fmt::Debug for $list {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($list))
                    .field("tasks", &self.list())
                    .finish_non_exhaustive()
            }
        }
    };
}

impl Client {
    /// A task list that uploads files in the background, `file_parallel` at a time (call inside a tokio
    /// runtime: the tasks run on it).
    pub fn task_queue(&self, file_parallel: usize) -> TaskQueue {
        TaskQueue(Queue::new(self, file_parallel))
    }

    /// A task list that downloads up to `file_parallel` files at once as tokio tasks (on the current
    /// runtime: call it inside one).
    pub fn download_queue(&self, file_parallel: usize) -> DownloadQueue {
        DownloadQueue(Queue::new(self, file_parallel))
    }
}

/// A list of file uploads run in the background (the official SDKs' task list): add files, pause,
/// resume, cancel, watch the list. Driven by the core's `TransferQueue`; each file runs as a tokio task.
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
pub struct TaskQueue(Queue<UploadEntry>);

impl TaskQueue {
    /// Adds a file; it starts when a slot is free. Without a checkpoint path in `options`, one is derived
    /// in the system temp directory (so that a pause or a failure can be resumed).
    pub fn add(&self, path: impl Into<PathBuf>, key: &str, options: UploadOptions) -> TaskId {
        let path = path.into();
        let total = std::fs::metadata(&path).ok().map(|m| m.len());
        let absolute = std::fs::canonicalize(&path)
            .or_else(|_| std::path::absolute(&path))
            .unwrap_or_else(|_| path.clone());
        let bucket = self.0.shared.client.config().bucket.to_string();
        let temp = std::env::temp_dir();
        let entry = UploadEntry::new(path, key, options, &bucket, &absolute, &temp);
        self.0.add(entry, total)
    }
}

task_list_methods!(TaskQueue, UploadOutcome, TaskInfo);

/// A task list of file downloads ([`Client::download_file`]) run as tokio tasks,
/// [`file_parallel`](Client::download_queue) at a time, oldest first, with the same states, commands and
/// waits as the uploads' [`TaskQueue`]. Cheap to clone; clones share the list.
///
/// Every download keeps a checkpoint ([`DownloadOptions::checkpoint`] is forced on). Pausing a running
/// download stops starting ranges, lets the ranges in flight finish and stores them in the checkpoint;
/// resuming fetches only the missing ranges. Cancelling stops it and removes its temporary file and
/// checkpoint; the destination is never touched. A failed task can be resumed (from its checkpoint).
/// Dropping the last clone cancels every download that has not ended (waiting ones never start, running
/// and paused ones stop and remove their temporary files and checkpoints); failed ones keep theirs. To let
/// the downloads finish, wait with [`wait_all`](DownloadQueue::wait_all) before dropping.
#[derive(Clone)]
pub struct DownloadQueue(Queue<DownloadEntry>);

impl DownloadQueue {
    /// Adds the download of `key` to `path`; it starts when a slot is free.
    pub fn add(&self, key: &str, path: impl Into<PathBuf>, options: DownloadOptions) -> TaskId {
        self.0
            .add(DownloadEntry::new(key, path.into(), options), None)
    }
}

task_list_methods!(DownloadQueue, DownloadOutcome, DownloadInfo);
