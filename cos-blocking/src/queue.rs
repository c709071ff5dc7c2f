//! The task lists [`TaskQueue`] (file uploads) and [`DownloadQueue`] (file downloads): one loop over the
//! core's [`TransferQueue`], which decides which task starts, pauses, resumes, is cancelled or has its
//! leftovers discarded, and when `wait` and `wait_all` return. This module runs each task on a thread
//! (a [`Job`]: an upload or a download) and carries out what the core asks; it decides nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use cos_core::download::DownloadOptions;
use cos_core::queue::{
    DownloadEntry, QueueError, QueueOutput, QueuedTask, TransferQueue, UploadEntry,
};
pub use cos_core::queue::{DownloadInfo, TaskInfo};
use cos_core::task::Command;
use cos_core::{Error, InvalidInput};

use crate::client::{Channel, Client};
use crate::download::{DownloadMsg, DownloadOutcome};
use crate::transfer::{Progress, TaskId, UploadOptions, UploadOutcome, Waited};

/// Sends a command to a live run.
type CommandFn = Box<dyn Fn(Command) + Send + Sync>;
type ChangeFn<I> = Arc<dyn Fn(&[I]) + Send + Sync>;

/// What a run tells its task list: its progress reports, and that it paused (idle, checkpoint stored).
struct Hooks {
    progress: Arc<dyn Fn(Progress) + Send + Sync>,
    paused: Arc<dyn Fn() + Send + Sync>,
}

/// One kind of queued task: how a run of it is carried out (to its end, taking commands from its
/// channel) and how its leftovers are discarded when the core says so.
trait Job: Clone + Send + 'static {
    type Outcome: Clone + Send + 'static;
    type Info: for<'a> From<&'a QueuedTask<Self, Self::Outcome>> + Send + 'static;
    type Channel: Send + 'static;
    fn channel() -> (CommandFn, Self::Channel);
    fn run(
        &self,
        client: &Client,
        channel: Self::Channel,
        hooks: Hooks,
    ) -> Result<Self::Outcome, Error>;
    fn discard(&self, client: &Client);
}

impl Job for UploadEntry {
    type Outcome = UploadOutcome;
    type Info = TaskInfo;
    type Channel = Channel;

    fn channel() -> (CommandFn, Channel) {
        let channel = Channel::new();
        let commands = channel.commands();
        (Box::new(move |c| commands.send(c)), channel)
    }

    fn run(&self, client: &Client, channel: Channel, hooks: Hooks) -> Result<UploadOutcome, Error> {
        let mut options = self.options.for_file(&self.path).into_owned();
        let (user, report, paused) = (options.on_progress.take(), hooks.progress, hooks.paused);
        options.on_progress = Some(Arc::new(move |p: &Progress| {
            report(*p);
            if let Some(f) = &user {
                f(p);
            }
        }));
        let on_paused = Box::new(move || paused());
        client.upload_file_inner(&self.path, &self.key, &options, channel, Some(on_paused))
    }

    fn discard(&self, client: &Client) {
        if let Some(checkpoint) = &self.options.checkpoint {
            client.discard(checkpoint, &self.key);
        }
    }
}

impl Job for DownloadEntry {
    type Outcome = DownloadOutcome;
    type Info = DownloadInfo;
    type Channel = (Sender<DownloadMsg>, Receiver<DownloadMsg>);

    fn channel() -> (CommandFn, Self::Channel) {
        let (tx, rx) = mpsc::channel();
        let commands = tx.clone();
        let send = move |c| {
            let _ = commands.send(DownloadMsg::Command(c));
        };
        (Box::new(send), (tx, rx))
    }

    fn run(
        &self,
        client: &Client,
        channel: Self::Channel,
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
        client.download_file_inner(
            &self.key,
            &self.path,
            &self.options,
            &progress,
            channel,
            &paused,
        )
    }

    fn discard(&self, _: &Client) {
        for file in self.leftovers() {
            let _ = std::fs::remove_file(file);
        }
    }
}

struct State<J: Job> {
    queue: TransferQueue<J, J::Outcome>,
    /// How to command each live run.
    runs: HashMap<TaskId, CommandFn>,
    on_change: Vec<ChangeFn<J::Info>>,
}

struct Shared<J: Job> {
    client: Client,
    state: Mutex<State<J>>,
    changed: Condvar,
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
                        send(command);
                    }
                }
                QueueOutput::Discard(id) => self.discard(&st, id),
            }
        }
        let call =
            (changed && !st.on_change.is_empty()).then(|| (st.on_change.clone(), Self::infos(&st)));
        drop(st);
        self.changed.notify_all();
        for (f, infos) in call
            .iter()
            .flat_map(|(fs, i)| fs.iter().map(move |f| (f, i)))
        {
            f(infos);
        }
    }

    /// Starts a run of the task on a thread; its end is reported to the core.
    fn start(self: &Arc<Self>, st: &mut State<J>, id: TaskId) {
        let Some(job) = st.queue.get(id).map(|t| t.meta.clone()) else {
            return;
        };
        let (send, channel) = J::channel();
        st.runs.insert(id, send);
        let shared = self.clone();
        std::thread::spawn(move || {
            let result = job.run(&shared.client, channel, shared.hooks(id));
            let mut st = shared.lock();
            st.runs.remove(&id);
            let _ = st.queue.finished(id, result);
            shared.settle(st, false);
        });
    }

    /// Discards the task's leftovers on a thread and answers the core.
    fn discard(self: &Arc<Self>, st: &State<J>, id: TaskId) {
        let Some(job) = st.queue.get(id).map(|t| t.meta.clone()) else {
            return;
        };
        let shared = self.clone();
        std::thread::spawn(move || {
            job.discard(&shared.client);
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
            state: Mutex::new(State {
                queue: TransferQueue::new(file_parallel),
                runs: HashMap::new(),
                on_change: Vec::new(),
            }),
            changed: Condvar::new(),
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

    fn wait_until(
        &self,
        id: TaskId,
        deadline: Option<Instant>,
    ) -> Waited<Result<J::Outcome, Error>> {
        let mut st = self.shared.lock();
        loop {
            match st.queue.outcome(id) {
                Err(_) => {
                    return Waited::Done(Err(InvalidInput::Parameter {
                        name: "task id",
                        reason: format!("no task {}", id.0),
                    }
                    .into()))
                }
                Ok(Some(r)) => return Waited::Done(r.clone()),
                Ok(None) => {}
            }
            st = match self.wait_changed(st, deadline) {
                Some(st) => st,
                None => return Waited::TimedOut,
            };
        }
    }

    fn wait_all_until(&self, deadline: Option<Instant>) -> Waited<()> {
        let mut st = self.shared.lock();
        while !st.queue.is_settled() {
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
        st: MutexGuard<'a, State<J>>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, State<J>>> {
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

/// Runs `run(i)` for each of the `lens.len()` items of a batch on scoped threads, in the order and at most
/// `parallel` at a time as the core's [`TransferQueue`] starts them, and calls `done(i, &result)` as each
/// ends. One result per item, in input order; a failing item does not stop the others.
pub(crate) fn run_batch<T: Clone + Send>(
    lens: &[Option<u64>],
    parallel: usize,
    run: &(dyn Fn(usize) -> Result<T, Error> + Sync),
    done: &dyn Fn(usize, &Result<T, Error>),
) -> Vec<Result<T, Error>> {
    let mut queue: TransferQueue<usize, T> = TransferQueue::new(parallel.max(1));
    let ids: Vec<TaskId> = (lens.iter().enumerate())
        .map(|(i, len)| queue.add(i, *len))
        .collect();
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
                let tx = tx.clone();
                running += 1;
                scope.spawn(move || {
                    let _ = tx.send((id, i, run(i)));
                });
            }
            if running == 0 {
                break;
            }
            let Ok((id, i, r)) = rx.recv() else { break };
            running -= 1;
            done(i, &r);
            let _ = queue.finished(id, r);
        }
    });
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
            /// ended…) and on progress reports, besides the callbacks given before. It runs on the
            /// thread that made the change; do not block in it.
            pub fn on_change(&self, f: impl Fn(&[$info]) + Send + Sync + 'static) {
                self.0.shared.lock().on_change.push(Arc::new(f));
            }

            /// Blocks until the task has succeeded, failed or been cancelled (a paused task is
            /// waited for until it is resumed and ends) and nothing of it runs any more, and
            /// returns its result. An unknown id is an [`Error::InvalidInput`].
            pub fn wait(&self, id: TaskId) -> Result<$outcome, Error> {
                match self.0.wait_until(id, None) {
                    Waited::Done(r) => r,
                    Waited::TimedOut => unreachable!("a wait without a deadline does not time out"),
                }
            }

            /// [`wait`](Self::wait) for at most `timeout`: [`Waited::TimedOut`] if the task has not
            /// ended by then (it goes on running), else [`Waited::Done`] with its result.
            pub fn wait_timeout(
                &self,
                id: TaskId,
                timeout: Duration,
            ) -> Waited<Result<$outcome, Error>> {
                self.0.wait_until(id, Instant::now().checked_add(timeout))
            }

            /// Blocks until no task is waiting or running, every paused one is idle (its checkpoint
            /// stored) and every cleanup is done.
            pub fn wait_all(&self) {
                let _ = self.0.wait_all_until(None);
            }

            /// [`wait_all`](Self::wait_all) for at most `timeout`: [`Waited::TimedOut`] if tasks are
            /// still waiting or running by then (they go on), else [`Waited::Done`].
            pub fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
                self.0.wait_all_until(Instant::now().checked_add(timeout))
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
    /// A task list that uploads up to `file_parallel` files at once in background threads.
    pub fn task_queue(&self, file_parallel: usize) -> TaskQueue {
        TaskQueue(Queue::new(self, file_parallel))
    }

    /// A task list that downloads up to `file_parallel` files at once in background threads.
    pub fn download_queue(&self, file_parallel: usize) -> DownloadQueue {
        DownloadQueue(Queue::new(self, file_parallel))
    }
}

/// A task list of file uploads run in background threads, [`file_parallel`](Client::task_queue) at a
/// time, oldest first (the core's `TransferQueue` decides). Cheap to clone; clones share the list.
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
pub struct TaskQueue(Queue<UploadEntry>);

impl TaskQueue {
    /// Adds the upload of the file at `path` as `key`; it starts when a slot is free.
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

/// A task list of file downloads ([`Client::download_file`]) run in background threads,
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
