//! A sans-IO task list for batch transfers, uploads and downloads alike: which task starts next, what
//! state each one is in, its progress and final result, and what a cancelled one left behind.
//!
//! [`TransferQueue`] holds one entry per task, with a state ([`TaskState`]), progress, a result and
//! whatever the driver attaches to it ([`UploadEntry`], [`DownloadEntry`], an index…). It transfers
//! nothing: through [`TransferQueue::poll`] it tells the driver to start a *run* of a task (a thread or a
//! tokio task carrying out one [`UploadTask`](crate::upload::UploadTask) or
//! [`DownloadTask`](crate::download::DownloadTask)), to send a [`Command`] to a live run, or to remove
//! what a cancelled task left ([`QueueOutput::Discard`]), at most `limit` runs at a time (default 3, as the
//! official SDKs' `FileParallelLimit`), oldest first. The driver reports back: [`report`](TransferQueue::report)
//! (progress), [`paused`](TransferQueue::paused) (the run is idle, its checkpoint stored),
//! [`finished`](TransferQueue::finished) (the run ended, with its result) and
//! [`discarded`](TransferQueue::discarded). [`outcome`](TransferQueue::outcome) and
//! [`is_settled`](TransferQueue::is_settled) say when a `wait` or `wait_all` may return.
//!
//! Every state change also queues a [`QueueOutput::ListUpdate`], the equivalent of the official SDKs'
//! `list-update` event.
//!
//! ```
//! use cos_core::queue::{QueueOutput, TaskState, TransferQueue};
//! let mut q = TransferQueue::new(2);
//! let a = q.add("a.bin", Some(10));
//! let b = q.add("b.bin", Some(20));
//! let c = q.add("c.bin", Some(30));
//! let mut started = vec![];
//! while let Some(out) = q.poll() {
//!     if let QueueOutput::Start(id) = out { started.push(id) }
//! }
//! assert_eq!(started, [a, b]);                      // the limit is 2
//! q.finished(a, Ok(())).unwrap();
//! assert_eq!(q.get(a).unwrap().state, TaskState::Success);
//! assert!(std::iter::from_fn(|| q.poll()).any(|o| o == QueueOutput::Start(c)));
//! ```
//!
//! A task that is paused or cancelled while it runs frees its slot at once, even though its requests may
//! still be finishing in the driver; the next task can therefore start slightly before the old one is idle.
//!
//! The cleanup rules: a cancelled task whose run is alive (running, pausing or paused) is told to cancel
//! (the run aborts its upload or removes its partial files itself); one with no live run that ran before
//! (paused after its run failed, or failed) is discarded ([`QueueOutput::Discard`]); one that never ran
//! has nothing to discard. A run that fails after its task was cancelled, with another error than
//! [`Error::Cancelled`] (it did not get to clean up), is discarded too. Failed tasks keep their leftovers
//! (a checkpoint to resume from) until they are resumed or cancelled.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::download::{checkpoint_path, temp_path, DownloadOptions};
use crate::error::Error;
use crate::task::Command;
use crate::upload::{derived_checkpoint_name, Progress, UploadOptions};

/// Identifies a task in a [`TransferQueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u64);

/// Where a queued task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a free slot.
    Waiting,
    /// Started by the driver.
    Running,
    /// Paused by the owner; [`TransferQueue::resume`] puts it back in line.
    Paused,
    /// Finished successfully.
    Success,
    /// Failed; the error is in [`QueuedTask::error`]. [`TransferQueue::resume`] retries it.
    Error,
    /// Cancelled by the owner.
    Canceled,
}

impl TaskState {
    /// Whether the task has ended (success, error or cancelled).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Success | TaskState::Error | TaskState::Canceled
        )
    }
}

/// Whether a task has a run in the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// No run.
    None,
    /// A run that may have requests in flight.
    Busy,
    /// A paused run with nothing in flight, waiting for a command.
    Idle,
}

/// One entry of the list.
#[derive(Clone, Debug)]
pub struct QueuedTask<M, R = ()> {
    /// Its id.
    pub id: TaskId,
    /// Its state.
    pub state: TaskState,
    /// Bytes confirmed so far.
    pub loaded: u64,
    /// Total bytes, when known.
    pub total: Option<u64>,
    /// The error that ended it, in state [`TaskState::Error`].
    pub error: Option<Error>,
    /// The last progress report, once there was one (the whole total once the task succeeded).
    pub progress: Option<Progress>,
    /// Its final result, once it has ended and nothing of it runs or is being discarded any more.
    pub result: Option<Result<R, Error>>,
    /// What the driver attached (a path, a key…).
    pub meta: M,
    run: Run,
    /// Whether a run was ever started: only then can something be left to discard.
    started: bool,
    /// A [`QueueOutput::Discard`] is not answered yet.
    discarding: bool,
}

/// What the driver must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOutput {
    /// Start a run of this task (it resumes from its checkpoint, if it ran before). Report its end with
    /// [`TransferQueue::finished`].
    Start(TaskId),
    /// Send this command to the task's live run (pause, resume a paused run, or cancel).
    Command(TaskId, Command),
    /// The task was cancelled with no live run: remove what its earlier run left (abort the upload its
    /// checkpoint names and remove the checkpoint; remove a download's [`DownloadEntry::leftovers`]),
    /// then answer with [`TransferQueue::discarded`].
    Discard(TaskId),
    /// The list changed (a task was added, removed or changed state): redraw it.
    ListUpdate,
}

/// Why a queue command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// No task has this id.
    UnknownTask(TaskId),
    /// The command does not apply in the task's current state.
    WrongState(TaskId, TaskState),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::UnknownTask(id) => write!(f, "no task {}", id.0),
            QueueError::WrongState(id, s) => write!(f, "task {} is {s:?}", id.0),
        }
    }
}

impl std::error::Error for QueueError {}

/// The default number of tasks run at once.
pub const DEFAULT_FILE_PARALLEL_LIMIT: usize = 3;

/// The task list; see the [module docs](self). `M` is what the driver attaches to a task, `R` what a
/// successful run returns.
#[derive(Clone, Debug)]
pub struct TransferQueue<M, R = ()> {
    /// In id order (ids only grow and removals keep the order): a task is found by binary search.
    tasks: Vec<QueuedTask<M, R>>,
    limit: usize,
    next_id: u64,
    out: VecDeque<QueueOutput>,
    /// How many tasks are `Running` (kept, not counted, so that a batch of 10,000 files is not quadratic).
    running: usize,
    /// No task below this index is `Waiting`: the next one to start is searched from here.
    waiting_from: usize,
}

/// The task list under its first name (it began as the uploads' list).
pub type UploadQueue<M, R = ()> = TransferQueue<M, R>;

impl<M, R> Default for TransferQueue<M, R> {
    fn default() -> Self {
        TransferQueue::new(DEFAULT_FILE_PARALLEL_LIMIT)
    }
}

impl<M, R> TransferQueue<M, R> {
    /// An empty queue running at most `limit` tasks at once (at least 1).
    pub fn new(limit: usize) -> Self {
        TransferQueue {
            tasks: Vec::new(),
            limit: limit.max(1),
            next_id: 1,
            out: VecDeque::new(),
            running: 0,
            waiting_from: 0,
        }
    }

    /// Sets the state of the task at `i`, keeping the running count and the waiting hint, and announces
    /// the change.
    fn set_state(&mut self, i: usize, new: TaskState) {
        let old = std::mem::replace(&mut self.tasks[i].state, new);
        if old == new {
            return;
        }
        if old == TaskState::Running {
            self.running -= 1;
        }
        if new == TaskState::Running {
            self.running += 1;
        }
        if new == TaskState::Waiting {
            self.waiting_from = self.waiting_from.min(i);
        }
        self.out.push_back(QueueOutput::ListUpdate);
    }

    fn index(&self, id: TaskId) -> Result<usize, QueueError> {
        self.tasks
            .binary_search_by_key(&id, |t| t.id)
            .map_err(|_| QueueError::UnknownTask(id))
    }

    /// Changes the parallel limit (at least 1). Running tasks above a lowered limit keep running.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Adds a waiting task.
    pub fn add(&mut self, meta: M, total: Option<u64>) -> TaskId {
        let id = TaskId(self.next_id);
        self.next_id += 1;
        self.tasks.push(QueuedTask {
            id,
            state: TaskState::Waiting,
            loaded: 0,
            total,
            error: None,
            progress: None,
            result: None,
            meta,
            run: Run::None,
            started: false,
            discarding: false,
        });
        self.out.push_back(QueueOutput::ListUpdate);
        id
    }

    /// The next thing the driver must do, or `None` when there is nothing until the next command or report.
    /// Call it until it returns `None` after every command or report.
    pub fn poll(&mut self) -> Option<QueueOutput> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        if self.running >= self.limit {
            return None;
        }
        let Some(i) = self.tasks[self.waiting_from..]
            .iter()
            .position(|t| t.state == TaskState::Waiting)
            .map(|i| i + self.waiting_from)
        else {
            self.waiting_from = self.tasks.len();
            return None;
        };
        self.waiting_from = i + 1;
        self.set_state(i, TaskState::Running);
        let t = &mut self.tasks[i];
        // A paused run keeps its task: it continues.
        let out = match t.run {
            Run::None => QueueOutput::Start(t.id),
            Run::Busy | Run::Idle => QueueOutput::Command(t.id, Command::Resume),
        };
        t.run = Run::Busy;
        t.started = true;
        Some(out)
    }

    /// All tasks, oldest first.
    pub fn tasks(&self) -> &[QueuedTask<M, R>] {
        &self.tasks
    }

    /// One task.
    pub fn get(&self, id: TaskId) -> Option<&QueuedTask<M, R>> {
        self.index(id).ok().map(|i| &self.tasks[i])
    }

    /// The number of running tasks.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether every task has ended (or been paused): nothing is running or waiting.
    pub fn is_idle(&self) -> bool {
        !self
            .tasks
            .iter()
            .any(|t| matches!(t.state, TaskState::Running | TaskState::Waiting))
    }

    /// Whether a `wait_all` may return: nothing is waiting or running, every live run is a paused task's
    /// idle run (its checkpoint stored), and no discard is unanswered.
    pub fn is_settled(&self) -> bool {
        self.is_idle()
            && self.tasks.iter().all(|t| {
                !t.discarding
                    && match t.run {
                        Run::None => true,
                        Run::Idle => t.state == TaskState::Paused,
                        Run::Busy => false,
                    }
            })
    }

    /// The task's final result once a `wait` for it may return (it ended, its run is over and any discard
    /// answered), `Ok(None)` before, or [`QueueError::UnknownTask`].
    pub fn outcome(&self, id: TaskId) -> Result<Option<&Result<R, Error>>, QueueError> {
        let t = &self.tasks[self.index(id)?];
        Ok(t.result
            .as_ref()
            .filter(|_| t.run == Run::None && !t.discarding))
    }

    /// Bytes confirmed and total bytes over all tasks with a known total.
    pub fn progress(&self) -> (u64, u64) {
        self.tasks
            .iter()
            .filter_map(|t| t.total.map(|total| (t.loaded, total)))
            .fold((0, 0), |(l, t), (a, b)| (l + a, t + b))
    }

    fn task_mut(&mut self, id: TaskId) -> Result<&mut QueuedTask<M, R>, QueueError> {
        let i = self.index(id)?;
        Ok(&mut self.tasks[i])
    }

    /// Records a running task's progress.
    pub fn set_progress(
        &mut self,
        id: TaskId,
        loaded: u64,
        total: Option<u64>,
    ) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        t.loaded = loaded;
        if total.is_some() {
            t.total = total;
        }
        Ok(())
    }

    /// Records a run's progress report (what [`QueuedTask::progress`] shows).
    pub fn report(&mut self, id: TaskId, progress: Progress) -> Result<(), QueueError> {
        self.set_progress(id, progress.loaded, progress.total)?;
        self.task_mut(id)?.progress = Some(progress);
        Ok(())
    }

    /// Pauses a waiting or running task (a running one is told to with [`Command::Pause`]).
    pub fn pause(&mut self, id: TaskId) -> Result<(), QueueError> {
        let i = self.index(id)?;
        match self.tasks[i].state {
            TaskState::Waiting => {}
            TaskState::Running => self.out.push_back(QueueOutput::Command(id, Command::Pause)),
            s => return Err(QueueError::WrongState(id, s)),
        }
        self.set_state(i, TaskState::Paused);
        Ok(())
    }

    /// Reports that the task's run paused: nothing is in flight, its checkpoint is stored, it waits for a
    /// command.
    pub fn paused(&mut self, id: TaskId) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        match t.run {
            Run::Busy | Run::Idle => t.run = Run::Idle,
            Run::None => return Err(QueueError::WrongState(id, t.state)),
        }
        Ok(())
    }

    /// Puts a paused or failed task back in line (the official SDKs' `restartTask`).
    pub fn resume(&mut self, id: TaskId) -> Result<(), QueueError> {
        let i = self.index(id)?;
        let t = &mut self.tasks[i];
        match t.state {
            TaskState::Paused | TaskState::Error => {
                t.error = None;
                t.result = None;
                self.set_state(i, TaskState::Waiting);
                Ok(())
            }
            s => Err(QueueError::WrongState(id, s)),
        }
    }

    /// Cancels a task that has not ended, or a failed one: a live run (running or paused) is told to
    /// with [`Command::Cancel`]; without one, what an earlier run left is discarded
    /// ([`QueueOutput::Discard`]); a task that never ran just ends.
    pub fn cancel(&mut self, id: TaskId) -> Result<(), QueueError> {
        let i = self.index(id)?;
        let t = &mut self.tasks[i];
        match t.state {
            TaskState::Waiting | TaskState::Running | TaskState::Paused | TaskState::Error => {}
            s => return Err(QueueError::WrongState(id, s)),
        }
        t.result = None;
        if t.run != Run::None {
            self.out
                .push_back(QueueOutput::Command(id, Command::Cancel));
        } else if t.started {
            t.discarding = true;
            self.out.push_back(QueueOutput::Discard(id));
        } else {
            t.result = Some(Err(Error::Cancelled));
        }
        self.set_state(i, TaskState::Canceled);
        Ok(())
    }

    /// Pauses every waiting and running task.
    pub fn pause_all(&mut self) {
        let ids: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|t| matches!(t.state, TaskState::Waiting | TaskState::Running))
            .map(|t| t.id)
            .collect();
        for id in ids {
            let _ = self.pause(id);
        }
    }

    /// The tasks a driver cancels when the last handle to its queue is dropped: every waiting, running or
    /// paused task, oldest first. Nobody could resume, wait for or watch them any more, so they end as
    /// [`cancel`](Self::cancel) ends them (started multipart uploads aborted, nothing left on the server)
    /// instead of holding a thread or task forever. Failed tasks have ended: they keep their checkpoints.
    pub fn cancel_on_drop(&self) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|t| !t.state.is_finished())
            .map(|t| t.id)
            .collect()
    }

    /// Reports that the task's run ended with `result`. A task that succeeds is `Success` even if a pause
    /// or cancel came too late to stop it; a failure after a pause leaves it `Paused` (resumable, no
    /// result yet), while running `Error`. A cancelled task's run that ended with [`Error::Cancelled`]
    /// cleaned up after itself; one that failed otherwise is discarded ([`QueueOutput::Discard`]).
    pub fn finished(&mut self, id: TaskId, result: Result<R, Error>) -> Result<(), QueueError> {
        let i = self.index(id)?;
        let t = &mut self.tasks[i];
        if t.run == Run::None {
            return Err(QueueError::WrongState(id, t.state));
        }
        t.run = Run::None;
        let new = match (&result, t.state) {
            (Ok(_), _) => TaskState::Success,
            (Err(_), TaskState::Running) => TaskState::Error,
            (Err(_), s) => s,
        };
        match (new, result) {
            (TaskState::Success, r) => {
                if let Some(total) = t.total {
                    t.loaded = total;
                    t.progress = Some(Progress {
                        loaded: total,
                        total: Some(total),
                        speed: t.progress.map_or(0.0, |p| p.speed),
                        percent: Some(1.0),
                    });
                }
                t.result = Some(r);
            }
            (TaskState::Error, Err(e)) => {
                t.error = Some(e.clone());
                t.result = Some(Err(e));
            }
            (TaskState::Canceled, Err(Error::Cancelled)) => t.result = Some(Err(Error::Cancelled)),
            (TaskState::Canceled, Err(_)) => {
                // Failed before the cancel reached it: what it started is left to discard.
                t.discarding = true;
                self.out.push_back(QueueOutput::Discard(id));
            }
            // Paused or waiting again: a later run continues from the checkpoint.
            _ => {}
        }
        self.set_state(i, new);
        Ok(())
    }

    /// Answers a [`QueueOutput::Discard`]: the task's leftovers are gone; it ends as cancelled.
    pub fn discarded(&mut self, id: TaskId) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        if !t.discarding {
            return Err(QueueError::WrongState(id, t.state));
        }
        t.discarding = false;
        t.result = Some(Err(Error::Cancelled));
        Ok(())
    }

    /// Removes an ended, paused or waiting task from the list (one with a live run or an unanswered
    /// discard must end first).
    pub fn remove(&mut self, id: TaskId) -> Result<QueuedTask<M, R>, QueueError> {
        let pos = self.index(id)?;
        let t = &self.tasks[pos];
        if t.run != Run::None || t.discarding {
            return Err(QueueError::WrongState(id, t.state));
        }
        self.out.push_back(QueueOutput::ListUpdate);
        // The tasks after `pos` move down by one: none below `pos` is waiting.
        self.waiting_from = self.waiting_from.min(pos);
        Ok(self.tasks.remove(pos))
    }

    /// Removes every ended task (but not one whose run or discard is not over).
    pub fn clear_finished(&mut self) {
        let before = self.tasks.len();
        self.tasks
            .retain(|t| !t.state.is_finished() || t.run != Run::None || t.discarding);
        self.waiting_from = 0;
        if self.tasks.len() != before {
            self.out.push_back(QueueOutput::ListUpdate);
        }
    }
}

// ---- what the drivers' task lists carry and show ----

/// A queued file upload: what `TaskQueue::add` was given, its checkpoint filled in.
#[derive(Clone)]
pub struct UploadEntry {
    /// The local file.
    pub path: PathBuf,
    /// The object key.
    pub key: String,
    /// Its options; [`UploadOptions::checkpoint`] is always set.
    pub options: UploadOptions,
}

impl UploadEntry {
    /// The upload of the file at `path` as `key`. Without [`UploadOptions::checkpoint`], its checkpoint
    /// is `cos-rs-checkpoints/NAME` in `temp_dir`, where `NAME` is [`derived_checkpoint_name`] of
    /// `bucket`, `absolute` (the file's absolute path, canonical when possible, which the driver finds)
    /// and `key`: the same file for both clients, so either can resume the other's upload.
    pub fn new(
        path: PathBuf,
        key: &str,
        mut options: UploadOptions,
        bucket: &str,
        absolute: &Path,
        temp_dir: &Path,
    ) -> UploadEntry {
        if options.checkpoint.is_none() {
            let name = derived_checkpoint_name(bucket, &absolute.display().to_string(), key);
            options.checkpoint = Some(temp_dir.join("cos-rs-checkpoints").join(name));
        }
        UploadEntry {
            path,
            key: key.to_string(),
            options,
        }
    }
}

/// A queued file download: what `DownloadQueue::add` was given.
#[derive(Clone, Debug)]
pub struct DownloadEntry {
    /// The object key.
    pub key: String,
    /// The local destination.
    pub path: PathBuf,
    /// Its options; [`DownloadOptions::checkpoint`] is forced on (a pause or failure resumes).
    pub options: DownloadOptions,
}

impl DownloadEntry {
    /// The download of `key` to `path`, with a checkpoint.
    pub fn new(key: &str, path: PathBuf, options: DownloadOptions) -> DownloadEntry {
        DownloadEntry {
            key: key.to_string(),
            path,
            options: options.checkpoint(true),
        }
    }

    /// What a discarded download leaves behind and the driver removes: its temporary file and its
    /// checkpoint (never the destination).
    pub fn leftovers(&self) -> [PathBuf; 2] {
        [temp_path(&self.path), checkpoint_path(&self.path)]
    }
}

/// One entry of an upload task list (`TaskQueue::list`).
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

impl<R> From<&QueuedTask<UploadEntry, R>> for TaskInfo {
    fn from(t: &QueuedTask<UploadEntry, R>) -> TaskInfo {
        TaskInfo {
            id: t.id,
            path: t.meta.path.clone(),
            key: t.meta.key.clone(),
            state: t.state,
            progress: t.progress,
            error: t.error.clone(),
        }
    }
}

/// One entry of a download task list (`DownloadQueue::list`).
#[derive(Clone, Debug)]
pub struct DownloadInfo {
    /// Its id.
    pub id: TaskId,
    /// The object key.
    pub key: String,
    /// The local destination.
    pub path: PathBuf,
    /// Where it stands.
    pub state: TaskState,
    /// Bytes in the temporary file so far.
    pub loaded: u64,
    /// The object's size, once known.
    pub total: Option<u64>,
    /// Why it failed, in state [`TaskState::Error`].
    pub error: Option<Error>,
}

impl<R> From<&QueuedTask<DownloadEntry, R>> for DownloadInfo {
    fn from(t: &QueuedTask<DownloadEntry, R>) -> DownloadInfo {
        DownloadInfo {
            id: t.id,
            key: t.meta.key.clone(),
            path: t.meta.path.clone(),
            state: t.state,
            loaded: t.loaded,
            total: t.total,
            error: t.error.clone(),
        }
    }
}

/// How a wait with a time limit on a task queue ended (`TaskQueue::wait_timeout` and `wait_all_timeout` in
/// both drivers).
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Waited<T> {
    /// What was waited for ended within the limit, with this.
    Done(T),
    /// The limit passed first; the tasks go on running in the background.
    TimedOut,
}

impl<T> Waited<T> {
    /// The value, unless the wait timed out.
    pub fn done(self) -> Option<T> {
        match self {
            Waited::Done(v) => Some(v),
            Waited::TimedOut => None,
        }
    }

    /// Whether the limit passed first.
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Waited::TimedOut)
    }
}

#[cfg(test)]
mod tests;
