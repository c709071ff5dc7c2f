//! A sans-IO task list for batch uploads: which file starts next, and what state each one is in.
//!
//! [`UploadQueue`] holds one entry per file, with a state ([`TaskState`]), progress and whatever the driver
//! attaches to it (a path and a key, say). It does not upload anything: it tells the driver, through
//! [`UploadQueue::poll`], to start, pause or cancel the per-file tasks (a [`MultipartUpload`](super::MultipartUpload)
//! or a single PUT), at most `limit` at a time (default 3, as the official SDKs' `FileParallelLimit`), oldest
//! first. The driver reports back with [`UploadQueue::set_progress`] and [`UploadQueue::finished`].
//!
//! Every state change also queues a [`QueueOutput::ListUpdate`], the equivalent of the official SDKs'
//! `list-update` event.
//!
//! ```
//! use cos_core::upload::queue::{QueueOutput, TaskState, UploadQueue};
//! let mut q = UploadQueue::new(2);
//! let a = q.add("a.bin", Some(10));
//! let b = q.add("b.bin", Some(20));
//! let c = q.add("c.bin", Some(30));
//! let mut started = vec![];
//! while let Some(out) = q.poll() {
//!     if let QueueOutput::Start(id) = out { started.push(id) }
//! }
//! assert_eq!(started, [a, b]);                      // the limit is 2
//! q.finished(a, Ok(()));
//! assert_eq!(q.get(a).unwrap().state, TaskState::Success);
//! assert!(std::iter::from_fn(|| q.poll()).any(|o| o == QueueOutput::Start(c)));
//! ```
//!
//! A task that is paused or cancelled while it runs frees its slot at once, even though its requests may
//! still be finishing in the driver; the next task can therefore start slightly before the old one is idle.

use std::collections::VecDeque;

use crate::error::Error;

/// Identifies a task in an [`UploadQueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(pub u64);

/// Where a queued task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a free slot.
    Waiting,
    /// Started by the driver.
    Running,
    /// Paused by the owner; [`UploadQueue::resume`] puts it back in line.
    Paused,
    /// Finished successfully.
    Success,
    /// Failed; the error is in [`QueuedTask::error`]. [`UploadQueue::resume`] retries it.
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

/// One entry of the list.
#[derive(Clone, Debug)]
pub struct QueuedTask<M> {
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
    /// What the driver attached (a path, a key…).
    pub meta: M,
}

/// What the driver must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOutput {
    /// Start this task (or resume it from its checkpoint, if it ran before).
    Start(TaskId),
    /// Pause this running task (e.g. [`MultipartUpload::pause`](super::MultipartUpload::pause)).
    Pause(TaskId),
    /// Cancel this running task (e.g. [`MultipartUpload::cancel`](super::MultipartUpload::cancel)).
    Cancel(TaskId),
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

/// The default number of files uploaded at once.
pub const DEFAULT_FILE_PARALLEL_LIMIT: usize = 3;

/// The task list; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct UploadQueue<M> {
    /// In id order (ids only grow and removals keep the order): a task is found by binary search.
    tasks: Vec<QueuedTask<M>>,
    limit: usize,
    next_id: u64,
    out: VecDeque<QueueOutput>,
    /// How many tasks are `Running` (kept, not counted, so that a batch of 10,000 files is not quadratic).
    running: usize,
    /// No task below this index is `Waiting`: the next one to start is searched from here.
    waiting_from: usize,
}

impl<M> Default for UploadQueue<M> {
    fn default() -> Self {
        UploadQueue::new(DEFAULT_FILE_PARALLEL_LIMIT)
    }
}

impl<M> UploadQueue<M> {
    /// An empty queue running at most `limit` tasks at once (at least 1).
    pub fn new(limit: usize) -> Self {
        UploadQueue {
            tasks: Vec::new(),
            limit: limit.max(1),
            next_id: 1,
            out: VecDeque::new(),
            running: 0,
            waiting_from: 0,
        }
    }

    /// Sets the state of the task at `i`, keeping the running count and the waiting hint.
    fn set_state(&mut self, i: usize, new: TaskState) {
        let old = std::mem::replace(&mut self.tasks[i].state, new);
        if old == TaskState::Running {
            self.running -= 1;
        }
        if new == TaskState::Running {
            self.running += 1;
        }
        if new == TaskState::Waiting {
            self.waiting_from = self.waiting_from.min(i);
        }
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
            meta,
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
        self.out.push_back(QueueOutput::ListUpdate);
        Some(QueueOutput::Start(self.tasks[i].id))
    }

    /// All tasks, oldest first.
    pub fn tasks(&self) -> &[QueuedTask<M>] {
        &self.tasks
    }

    /// One task.
    pub fn get(&self, id: TaskId) -> Option<&QueuedTask<M>> {
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

    /// Bytes confirmed and total bytes over all tasks with a known total.
    pub fn progress(&self) -> (u64, u64) {
        self.tasks
            .iter()
            .filter_map(|t| t.total.map(|total| (t.loaded, total)))
            .fold((0, 0), |(l, t), (a, b)| (l + a, t + b))
    }

    fn task_mut(&mut self, id: TaskId) -> Result<&mut QueuedTask<M>, QueueError> {
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

    /// Pauses a waiting or running task (a running one is asked to pause with [`QueueOutput::Pause`]).
    pub fn pause(&mut self, id: TaskId) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        match t.state {
            TaskState::Waiting => {}
            TaskState::Running => self.out.push_back(QueueOutput::Pause(id)),
            s => return Err(QueueError::WrongState(id, s)),
        }
        let i = self.index(id)?;
        self.set_state(i, TaskState::Paused);
        self.out.push_back(QueueOutput::ListUpdate);
        Ok(())
    }

    /// Puts a paused or failed task back in line (the official SDKs' `restartTask`).
    pub fn resume(&mut self, id: TaskId) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        match t.state {
            TaskState::Paused | TaskState::Error => {
                t.error = None;
                let i = self.index(id)?;
                self.set_state(i, TaskState::Waiting);
                self.out.push_back(QueueOutput::ListUpdate);
                Ok(())
            }
            s => Err(QueueError::WrongState(id, s)),
        }
    }

    /// Cancels a task that has not ended (a running one is told to with [`QueueOutput::Cancel`]).
    pub fn cancel(&mut self, id: TaskId) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        match t.state {
            TaskState::Waiting | TaskState::Paused | TaskState::Error => {}
            TaskState::Running => self.out.push_back(QueueOutput::Cancel(id)),
            s => return Err(QueueError::WrongState(id, s)),
        }
        let i = self.index(id)?;
        self.set_state(i, TaskState::Canceled);
        self.out.push_back(QueueOutput::ListUpdate);
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

    /// Reports that the driver's task ended. A task that succeeds is `Success` even if a pause or cancel
    /// came too late to stop it; a failure after a pause leaves it `Paused` (resumable), after a cancel
    /// `Canceled`.
    pub fn finished(&mut self, id: TaskId, result: Result<(), Error>) -> Result<(), QueueError> {
        let t = self.task_mut(id)?;
        let new = match (t.state, &result) {
            (TaskState::Running | TaskState::Paused | TaskState::Canceled, Ok(())) => {
                TaskState::Success
            }
            (TaskState::Running, Err(_)) => TaskState::Error,
            (s @ (TaskState::Paused | TaskState::Canceled), Err(_)) => s,
            (s, _) => return Err(QueueError::WrongState(id, s)),
        };
        if new == TaskState::Success {
            if let Some(total) = t.total {
                t.loaded = total;
            }
        }
        if new == TaskState::Error {
            t.error = result.err();
        }
        if new != t.state {
            let i = self.index(id)?;
            self.set_state(i, new);
            self.out.push_back(QueueOutput::ListUpdate);
        }
        Ok(())
    }

    /// Removes an ended, paused or waiting task from the list (a running one must be cancelled first).
    pub fn remove(&mut self, id: TaskId) -> Result<QueuedTask<M>, QueueError> {
        let pos = self.index(id)?;
        if self.tasks[pos].state == TaskState::Running {
            return Err(QueueError::WrongState(id, TaskState::Running));
        }
        self.out.push_back(QueueOutput::ListUpdate);
        // The tasks after `pos` move down by one: none below `pos` is waiting.
        self.waiting_from = self.waiting_from.min(pos);
        Ok(self.tasks.remove(pos))
    }

    /// Removes every ended task.
    pub fn clear_finished(&mut self) {
        let before = self.tasks.len();
        self.tasks.retain(|t| !t.state.is_finished());
        self.waiting_from = 0;
        if self.tasks.len() != before {
            self.out.push_back(QueueOutput::ListUpdate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Rng;

    fn drain(q: &mut UploadQueue<&'static str>) -> Vec<QueueOutput> {
        std::iter::from_fn(|| q.poll()).collect()
    }

    fn starts(outs: &[QueueOutput]) -> Vec<TaskId> {
        outs.iter()
            .filter_map(|o| match o {
                QueueOutput::Start(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dropping_cancels_every_task_that_has_not_ended() {
        let mut q = UploadQueue::new(1);
        let ids: Vec<_> = (0..5).map(|_| q.add("f", Some(100))).collect();
        drain(&mut q);
        q.finished(ids[0], Ok(())).unwrap();
        drain(&mut q);
        q.finished(ids[1], Err(Error::Cancelled)).unwrap();
        drain(&mut q);
        // ids[2] runs, then pauses; ids[3] runs; ids[4] waits; ids[0] succeeded and ids[1] failed.
        q.pause(ids[2]).unwrap();
        drain(&mut q);
        assert_eq!(q.get(ids[3]).unwrap().state, TaskState::Running);
        assert_eq!(q.cancel_on_drop(), ids[2..]);
        for id in q.cancel_on_drop() {
            q.cancel(id).unwrap();
        }
        assert!(q.cancel_on_drop().is_empty());
        assert!(q.is_idle());
        assert_eq!(q.get(ids[1]).unwrap().state, TaskState::Error);
    }

    #[test]
    fn starts_in_order_within_the_limit() {
        let mut q = UploadQueue::default();
        let ids: Vec<_> = (0..5).map(|_| q.add("f", Some(100))).collect();
        let outs = drain(&mut q);
        assert_eq!(starts(&outs), ids[..3]);
        assert!(
            outs.iter()
                .filter(|o| **o == QueueOutput::ListUpdate)
                .count()
                >= 8
        );
        assert_eq!(q.running(), 3);
        q.set_progress(ids[1], 40, None).unwrap();
        q.finished(ids[1], Ok(())).unwrap();
        assert_eq!(starts(&drain(&mut q)), [ids[3]]);
        q.finished(ids[0], Err(Error::Cancelled)).unwrap();
        assert_eq!(q.get(ids[0]).unwrap().state, TaskState::Error);
        assert_eq!(q.get(ids[0]).unwrap().error, Some(Error::Cancelled));
        assert_eq!(starts(&drain(&mut q)), [ids[4]]);
        assert_eq!(q.progress(), (100, 500));
        // A failed task can be restarted; it waits for a slot.
        q.resume(ids[0]).unwrap();
        assert!(starts(&drain(&mut q)).is_empty());
        q.finished(ids[2], Ok(())).unwrap();
        assert_eq!(starts(&drain(&mut q)), [ids[0]]);
    }

    #[test]
    fn pause_and_cancel() {
        let mut q = UploadQueue::new(1);
        let a = q.add("a", None);
        let b = q.add("b", None);
        assert_eq!(starts(&drain(&mut q)), [a]);
        q.pause(b).unwrap(); // waiting → paused: no command for the driver
        assert_eq!(drain(&mut q), [QueueOutput::ListUpdate]);
        q.pause(a).unwrap();
        let outs = drain(&mut q);
        assert_eq!(outs[0], QueueOutput::Pause(a));
        assert!(starts(&outs).is_empty(), "both paused");
        assert!(q.is_idle());
        // The paused task's driver task ends with an error after the pause: it stays paused.
        q.finished(a, Err(Error::Cancelled)).unwrap();
        assert_eq!(q.get(a).unwrap().state, TaskState::Paused);
        q.resume(b).unwrap();
        assert_eq!(starts(&drain(&mut q)), [b]);
        q.cancel(b).unwrap();
        let outs = drain(&mut q);
        assert_eq!(outs[0], QueueOutput::Cancel(b));
        assert!(starts(&outs).is_empty(), "a is paused");
        assert_eq!(
            q.cancel(b),
            Err(QueueError::WrongState(b, TaskState::Canceled))
        );
        assert_eq!(
            q.resume(b),
            Err(QueueError::WrongState(b, TaskState::Canceled))
        );
        assert_eq!(
            q.pause(TaskId(99)),
            Err(QueueError::UnknownTask(TaskId(99)))
        );
        q.cancel(a).unwrap();
        q.clear_finished();
        assert!(q.tasks().is_empty());
    }

    /// Random command sequences never break the invariants: at most `limit` running, starts only for tasks
    /// that were waiting, every state change announced.
    #[test]
    fn random_commands_keep_invariants() {
        for seed in 0..50 {
            let mut rng = Rng::new(seed);
            let limit = 1 + (rng.next() % 4) as usize;
            let mut q: UploadQueue<&str> = UploadQueue::new(limit);
            for _ in 0..300 {
                let ids: Vec<TaskId> = q.tasks().iter().map(|t| t.id).collect();
                let pick = |rng: &mut Rng| {
                    ids.get((rng.next() % ids.len().max(1) as u64) as usize)
                        .copied()
                };
                let before: Vec<(TaskId, TaskState)> =
                    q.tasks().iter().map(|t| (t.id, t.state)).collect();
                match rng.next() % 7 {
                    0 | 1 => {
                        q.add("x", Some(10));
                    }
                    2 => {
                        if let Some(id) = pick(&mut rng) {
                            let _ = q.finished(
                                id,
                                if rng.next() % 2 == 0 {
                                    Ok(())
                                } else {
                                    Err(Error::Cancelled)
                                },
                            );
                        }
                    }
                    3 => {
                        if let Some(id) = pick(&mut rng) {
                            let _ = q.pause(id);
                        }
                    }
                    4 => {
                        if let Some(id) = pick(&mut rng) {
                            let _ = q.resume(id);
                        }
                    }
                    5 => {
                        if let Some(id) = pick(&mut rng) {
                            let _ = q.cancel(id);
                        }
                    }
                    _ if rng.next() % 8 == 0 => q.clear_finished(),
                    _ => {
                        if let Some(id) = pick(&mut rng) {
                            let _ = q.remove(id);
                        }
                    }
                }
                let changed = q.tasks().iter().any(|t| !before.contains(&(t.id, t.state)))
                    || before.len() != q.tasks().len();
                let waiting: Vec<TaskId> = q
                    .tasks()
                    .iter()
                    .filter(|t| t.state == TaskState::Waiting)
                    .map(|t| t.id)
                    .collect();
                let outs = drain(&mut q);
                if changed {
                    assert!(outs.contains(&QueueOutput::ListUpdate));
                }
                for id in starts(&outs) {
                    assert!(waiting.contains(&id));
                    assert_eq!(q.get(id).unwrap().state, TaskState::Running);
                }
                // The kept count is the real one, and the oldest waiting tasks start first.
                let running = q.tasks().iter().filter(|t| t.state == TaskState::Running);
                assert_eq!(q.running(), running.count());
                let started = starts(&outs);
                assert_eq!(started, waiting[..started.len()]);
                assert!(q.running() <= limit);
                if q.running() < limit {
                    assert!(!q.tasks().iter().any(|t| t.state == TaskState::Waiting));
                }
            }
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
