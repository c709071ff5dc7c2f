//! [`DownloadQueue`]: the task list of file downloads. The core's [`UploadQueue`] (generic over what a
//! task carries) decides which download starts, pauses or is cancelled; the core's
//! [`DownloadTask`](cos_core::download::DownloadTask) decides what pause, resume and cancel do to one
//! download; this module runs each download on a thread and delivers the commands.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use cos_core::download::{checkpoint_path, temp_path, DownloadOptions};
use cos_core::task::Command;
use cos_core::upload::{QueueOutput, UploadQueue};
use cos_core::{Error, InvalidInput};

use crate::download::{DownloadMsg, DownloadOutcome};
use crate::transfer::{TaskId, TaskState};
use crate::Client;

impl Client {
    /// A task list that downloads up to `file_parallel` files at once in background threads.
    pub fn download_queue(&self, file_parallel: usize) -> DownloadQueue {
        let shared = Arc::new(Shared {
            client: self.clone(),
            state: Mutex::new(State {
                queue: UploadQueue::new(file_parallel.max(1)),
                runs: HashMap::new(),
                results: HashMap::new(),
            }),
            changed: Condvar::new(),
        });
        DownloadQueue {
            _handle: Arc::new(Handle(Arc::downgrade(&shared))),
            shared,
        }
    }
}

/// One entry of a [`DownloadQueue`] as [`DownloadQueue::list`] shows it.
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

struct Entry {
    key: String,
    path: PathBuf,
    options: DownloadOptions,
}

struct Run {
    commands: Sender<DownloadMsg>,
    /// Paused with nothing in flight.
    idle: bool,
}

struct State {
    queue: UploadQueue<Entry>,
    runs: HashMap<TaskId, Run>,
    results: HashMap<TaskId, Result<DownloadOutcome, Error>>,
}

struct Shared {
    client: Client,
    state: Mutex<State>,
    changed: Condvar,
}

/// A task list of file downloads ([`Client::download_file`]) run in background threads,
/// [`file_parallel`](Client::download_queue) at a time, oldest first, with the same states and commands
/// as the uploads' [`TaskQueue`](crate::TaskQueue). Cheap to clone; clones share the list.
///
/// Every download keeps a checkpoint ([`DownloadOptions::checkpoint`] is forced on). Pausing a running
/// download stops starting ranges, lets the ranges in flight finish and stores them in the checkpoint;
/// resuming fetches only the missing ranges. Cancelling stops it and removes its temporary file and
/// checkpoint; the destination is never touched. A failed task can be resumed (from its checkpoint).
/// Dropping the last clone cancels every download that has not ended (waiting ones never start, running
/// and paused ones stop and remove their temporary files and checkpoints); failed ones keep theirs. To let
/// the downloads finish, wait with [`wait_all`](DownloadQueue::wait_all) before dropping.
#[derive(Clone)]
pub struct DownloadQueue {
    shared: Arc<Shared>,
    /// Shared by the clones only (the runs hold `shared`): its drop is the last clone's.
    _handle: Arc<Handle>,
}

/// Cancels what has not ended when the last [`DownloadQueue`] clone goes.
struct Handle(Weak<Shared>);

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

impl std::fmt::Debug for DownloadQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadQueue")
            .field("tasks", &self.list())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carries out what the core queue asks for, then wakes the waiters.
    fn settle(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        while let Some(out) = st.queue.poll() {
            match out {
                QueueOutput::ListUpdate => {}
                QueueOutput::Start(id) => {
                    st.results.remove(&id);
                    match st.runs.get_mut(&id) {
                        Some(run) => {
                            let _ = run.commands.send(DownloadMsg::Command(Command::Resume));
                            run.idle = false;
                        }
                        None => self.spawn_run(&mut st, id),
                    }
                }
                QueueOutput::Pause(id) | QueueOutput::Cancel(id) => {
                    let command = match out {
                        QueueOutput::Pause(_) => Command::Pause,
                        _ => Command::Cancel,
                    };
                    if let Some(run) = st.runs.get(&id) {
                        let _ = run.commands.send(DownloadMsg::Command(command));
                    }
                }
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// [`DownloadQueue::cancel`].
    fn cancel(self: &Arc<Self>, id: TaskId) {
        let mut st = self.lock();
        let before = st.queue.get(id).map(|t| t.state);
        if st.queue.cancel(id).is_err() {
            return;
        }
        if let Some(run) = st.runs.get(&id) {
            // Its run is alive (also while paused): its task stops and removes its files.
            let _ = run.commands.send(DownloadMsg::Command(Command::Cancel));
        } else if before.is_some_and(|s| s != TaskState::Running) {
            // No run: remove what an earlier (failed) run left.
            if let Some(t) = st.queue.get(id) {
                let _ = std::fs::remove_file(temp_path(&t.meta.path));
                let _ = std::fs::remove_file(checkpoint_path(&t.meta.path));
            }
            st.results.insert(id, Err(Error::Cancelled));
        }
        self.settle(st);
    }

    fn spawn_run(self: &Arc<Self>, st: &mut State, id: TaskId) {
        let Some(task) = st.queue.get(id) else { return };
        let (key, path) = (task.meta.key.clone(), task.meta.path.clone());
        let options = task.meta.options.clone().checkpoint(true);
        let (tx, rx) = mpsc::channel();
        st.runs.insert(
            id,
            Run {
                commands: tx.clone(),
                idle: false,
            },
        );
        let shared = self.clone();
        std::thread::spawn(move || {
            let progress = |done: u64, total: u64| {
                let mut st = shared.lock();
                let _ = st.queue.set_progress(id, done, Some(total));
                drop(st);
                shared.changed.notify_all();
            };
            let on_paused = || {
                let mut st = shared.lock();
                if let Some(run) = st.runs.get_mut(&id) {
                    run.idle = true;
                }
                shared.settle(st);
            };
            let result = shared.client.download_file_inner(
                &key,
                &path,
                &options,
                &progress,
                (tx, rx),
                &on_paused,
            );
            let mut st = shared.lock();
            st.runs.remove(&id);
            let state = st.queue.get(id).map(|t| t.state);
            match (result, state) {
                (Ok(outcome), _) => {
                    let _ = st.queue.finished(id, Ok(()));
                    st.results.insert(id, Ok(outcome));
                }
                (Err(_), Some(TaskState::Canceled)) => {
                    // Failed before the cancel reached it: its partial files go too.
                    let _ = std::fs::remove_file(temp_path(&path));
                    let _ = std::fs::remove_file(checkpoint_path(&path));
                    st.results.insert(id, Err(Error::Cancelled));
                }
                (Err(e), _) => {
                    let _ = st.queue.finished(id, Err(e.clone()));
                    st.results.insert(id, Err(e));
                }
            }
            shared.settle(st);
        });
    }
}

impl DownloadQueue {
    /// Adds the download of `key` to `path`; it starts when a slot is free.
    pub fn add(&self, key: &str, path: impl Into<PathBuf>, options: DownloadOptions) -> TaskId {
        let mut st = self.shared.lock();
        let id = st.queue.add(
            Entry {
                key: key.to_string(),
                path: path.into(),
                options,
            },
            None,
        );
        self.shared.settle(st);
        id
    }

    /// Pauses a waiting or running download: a running one stops starting ranges, finishes those in
    /// flight and stores them in its checkpoint.
    pub fn pause(&self, id: TaskId) {
        let mut st = self.shared.lock();
        let _ = st.queue.pause(id);
        self.shared.settle(st);
    }

    /// Puts a paused or failed download back in line; it fetches only the missing ranges.
    pub fn resume(&self, id: TaskId) {
        let mut st = self.shared.lock();
        let _ = st.queue.resume(id);
        self.shared.settle(st);
    }

    /// Cancels a download: it stops and its temporary file and checkpoint are removed; the destination
    /// is never touched.
    pub fn cancel(&self, id: TaskId) {
        self.shared.cancel(id);
    }
    /// Every download, oldest first.
    pub fn list(&self) -> Vec<DownloadInfo> {
        let st = self.shared.lock();
        st.queue
            .tasks()
            .iter()
            .map(|t| DownloadInfo {
                id: t.id,
                key: t.meta.key.clone(),
                path: t.meta.path.clone(),
                state: t.state,
                loaded: t.loaded,
                total: t.total,
                error: t.error.clone(),
            })
            .collect()
    }

    /// Blocks until the download has succeeded, failed or been cancelled (a paused one is waited for
    /// until it is resumed and ends), and returns its result. An unknown id is an
    /// [`Error::InvalidInput`].
    pub fn wait(&self, id: TaskId) -> Result<DownloadOutcome, Error> {
        let mut st = self.shared.lock();
        loop {
            let Some(task) = st.queue.get(id) else {
                return Err(InvalidInput::Parameter {
                    name: "task id",
                    reason: format!("no task {}", id.0),
                }
                .into());
            };
            if task.state.is_finished() && !st.runs.contains_key(&id) {
                if let Some(r) = st.results.get(&id) {
                    return r.clone();
                }
            }
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Blocks until no download is waiting or running: paused ones have stored their checkpoints.
    pub fn wait_all(&self) {
        let mut st = self.shared.lock();
        while !(st.queue.is_idle() && st.runs.values().all(|r| r.idle)) {
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}
