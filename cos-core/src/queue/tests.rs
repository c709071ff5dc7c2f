//! The task list's decisions, checked with no I/O: each test plays the driver and asserts the outputs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::*;
use crate::retry::Rng;

type Q = TransferQueue<&'static str, u32>;

fn drain(q: &mut Q) -> Vec<QueueOutput> {
    std::iter::from_fn(|| q.poll()).collect()
}

/// The outputs other than `ListUpdate`.
fn acts(q: &mut Q) -> Vec<QueueOutput> {
    drain(q)
        .into_iter()
        .filter(|o| *o != QueueOutput::ListUpdate)
        .collect()
}

fn starts(outs: &[QueueOutput]) -> Vec<TaskId> {
    outs.iter()
        .filter_map(|o| match o {
            QueueOutput::Start(id) => Some(*id),
            _ => None,
        })
        .collect()
}

fn failed() -> Error {
    Error::Source("disk on fire".into())
}

#[test]
fn dropping_cancels_every_task_that_has_not_ended() {
    let mut q = Q::new(1);
    let ids: Vec<_> = (0..5).map(|_| q.add("f", Some(100))).collect();
    drain(&mut q);
    q.finished(ids[0], Ok(1)).unwrap();
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
    // The live runs (pausing ids[2], running ids[3]) are told to cancel; ids[4] never ran.
    assert_eq!(
        acts(&mut q),
        [
            QueueOutput::Command(ids[2], Command::Cancel),
            QueueOutput::Command(ids[3], Command::Cancel)
        ]
    );
    assert_eq!(q.outcome(ids[4]), Ok(Some(&Err(Error::Cancelled))));
}

#[test]
fn starts_in_order_within_the_limit() {
    let mut q = Q::default();
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
    q.finished(ids[1], Ok(7)).unwrap();
    assert_eq!(q.outcome(ids[1]), Ok(Some(&Ok(7))));
    assert_eq!(starts(&drain(&mut q)), [ids[3]]);
    q.finished(ids[0], Err(Error::Cancelled)).unwrap();
    assert_eq!(q.get(ids[0]).unwrap().state, TaskState::Error);
    assert_eq!(q.get(ids[0]).unwrap().error, Some(Error::Cancelled));
    assert_eq!(starts(&drain(&mut q)), [ids[4]]);
    assert_eq!(q.progress(), (100, 500));
    // A failed task can be restarted; it waits for a slot, and its old result is gone.
    q.resume(ids[0]).unwrap();
    assert_eq!(q.outcome(ids[0]), Ok(None));
    assert!(starts(&drain(&mut q)).is_empty());
    q.finished(ids[2], Ok(2)).unwrap();
    assert_eq!(starts(&drain(&mut q)), [ids[0]]);
}

#[test]
fn pause_and_cancel() {
    let mut q = Q::new(1);
    let a = q.add("a", None);
    let b = q.add("b", None);
    assert_eq!(starts(&drain(&mut q)), [a]);
    q.pause(b).unwrap(); // waiting → paused: no command for the driver
    assert_eq!(drain(&mut q), [QueueOutput::ListUpdate]);
    q.pause(a).unwrap();
    let outs = drain(&mut q);
    assert_eq!(outs[0], QueueOutput::Command(a, Command::Pause));
    assert!(starts(&outs).is_empty(), "both paused");
    assert!(q.is_idle());
    // The paused task's run ends with an error after the pause: it stays paused, with no result.
    q.finished(a, Err(Error::Cancelled)).unwrap();
    assert_eq!(q.get(a).unwrap().state, TaskState::Paused);
    assert_eq!(q.outcome(a), Ok(None));
    q.resume(b).unwrap();
    assert_eq!(starts(&drain(&mut q)), [b]);
    q.cancel(b).unwrap();
    let outs = drain(&mut q);
    assert_eq!(outs[0], QueueOutput::Command(b, Command::Cancel));
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
    assert_eq!(
        q.outcome(TaskId(99)),
        Err(QueueError::UnknownTask(TaskId(99)))
    );
    q.finished(b, Err(Error::Cancelled)).unwrap();
    // `a` ran and has no live run: cancelling it discards what its run left.
    q.cancel(a).unwrap();
    assert_eq!(acts(&mut q), [QueueOutput::Discard(a)]);
    q.clear_finished();
    assert_eq!(
        q.tasks().len(),
        1,
        "a is kept until its discard is answered"
    );
    q.discarded(a).unwrap();
    q.clear_finished();
    assert!(q.tasks().is_empty());
}

#[test]
fn a_paused_run_is_resumed_not_restarted() {
    let mut q = Q::new(1);
    let a = q.add("a", Some(10));
    assert_eq!(acts(&mut q), [QueueOutput::Start(a)]);
    q.pause(a).unwrap();
    assert_eq!(acts(&mut q), [QueueOutput::Command(a, Command::Pause)]);
    assert!(!q.is_settled(), "the run still has requests in flight");
    q.paused(a).unwrap();
    assert!(q.is_settled(), "a paused, idle run");
    q.resume(a).unwrap();
    assert!(!q.is_settled());
    assert_eq!(acts(&mut q), [QueueOutput::Command(a, Command::Resume)]);
    assert_eq!(q.running(), 1);
    // A second pause while it waits for a slot sends nothing: the run is still idle.
    let b = q.add("b", None);
    q.pause(a).unwrap();
    q.paused(a).unwrap();
    assert_eq!(
        acts(&mut q),
        [
            QueueOutput::Command(a, Command::Pause),
            QueueOutput::Start(b)
        ]
    );
    q.resume(a).unwrap();
    assert!(acts(&mut q).is_empty(), "b holds the only slot");
    q.pause(a).unwrap();
    assert!(acts(&mut q).is_empty());
    // Its run ends well: success even though it was paused; the progress shows the whole file.
    q.report(
        a,
        Progress {
            loaded: 4,
            total: Some(10),
            speed: 2.0,
            percent: Some(0.4),
        },
    )
    .unwrap();
    assert_eq!(q.get(a).unwrap().loaded, 4);
    q.finished(a, Ok(3)).unwrap();
    let t = q.get(a).unwrap();
    assert_eq!((t.state, t.loaded), (TaskState::Success, 10));
    assert_eq!(
        t.progress,
        Some(Progress {
            loaded: 10,
            total: Some(10),
            speed: 2.0,
            percent: Some(1.0)
        })
    );
    assert_eq!(q.outcome(a), Ok(Some(&Ok(3))));
    assert_eq!(
        q.paused(a),
        Err(QueueError::WrongState(a, TaskState::Success))
    );
}

#[test]
fn cancel_decides_what_is_discarded() {
    let mut q = Q::new(10);
    let [run_ok, run_cancelled, run_failed, failed_task, never, idle, paused_dead] =
        ["a", "b", "c", "d", "e", "f", "g"].map(|m| q.add(m, None));
    q.pause(never).unwrap();
    assert_eq!(starts(&drain(&mut q)).len(), 6);
    q.finished(failed_task, Err(failed())).unwrap();
    q.pause(idle).unwrap();
    q.paused(idle).unwrap();
    q.pause(paused_dead).unwrap();
    q.finished(paused_dead, Err(failed())).unwrap();
    drain(&mut q);
    for id in [
        run_ok,
        run_cancelled,
        run_failed,
        failed_task,
        never,
        idle,
        paused_dead,
    ] {
        q.cancel(id).unwrap();
    }
    assert_eq!(
        acts(&mut q),
        [
            // Live runs (running, or paused and idle) clean up after themselves.
            QueueOutput::Command(run_ok, Command::Cancel),
            QueueOutput::Command(run_cancelled, Command::Cancel),
            QueueOutput::Command(run_failed, Command::Cancel),
            // No live run, but one ran before: its leftovers go.
            QueueOutput::Discard(failed_task),
            // `never` never ran: nothing to discard.
            QueueOutput::Command(idle, Command::Cancel),
            QueueOutput::Discard(paused_dead),
        ]
    );
    assert_eq!(q.outcome(never), Ok(Some(&Err(Error::Cancelled))));
    for id in [
        run_ok,
        run_cancelled,
        run_failed,
        failed_task,
        idle,
        paused_dead,
    ] {
        assert_eq!(q.outcome(id), Ok(None), "not over yet");
    }
    assert!(!q.is_settled());
    // The cancel came too late: the upload is there.
    q.finished(run_ok, Ok(5)).unwrap();
    assert_eq!(q.get(run_ok).unwrap().state, TaskState::Success);
    assert_eq!(q.outcome(run_ok), Ok(Some(&Ok(5))));
    // The run saw the cancel: it cleaned up itself.
    q.finished(run_cancelled, Err(Error::Cancelled)).unwrap();
    q.finished(idle, Err(Error::Cancelled)).unwrap();
    // The run failed before the cancel reached it: what it started is discarded.
    q.finished(run_failed, Err(failed())).unwrap();
    assert_eq!(acts(&mut q), [QueueOutput::Discard(run_failed)]);
    assert_eq!(q.outcome(run_failed), Ok(None));
    for id in [run_cancelled, idle] {
        assert_eq!(q.outcome(id), Ok(Some(&Err(Error::Cancelled))));
    }
    assert!(!q.is_settled(), "three discards are not answered");
    assert!(q.remove(run_failed).is_err());
    for id in [run_failed, failed_task, paused_dead] {
        q.discarded(id).unwrap();
        assert_eq!(q.outcome(id), Ok(Some(&Err(Error::Cancelled))));
        assert_eq!(q.get(id).unwrap().state, TaskState::Canceled);
    }
    assert!(q.is_settled());
    assert_eq!(
        q.discarded(run_failed),
        Err(QueueError::WrongState(run_failed, TaskState::Canceled))
    );
    assert!(acts(&mut q).is_empty());
}

/// Random commands and driver reports never break the invariants: at most `limit` running, starts only
/// for waiting tasks with no live run (oldest first), commands only to live runs, discards only without
/// one, results only once nothing of the task is left, every state change announced.
#[test]
fn random_commands_keep_invariants() {
    for seed in 0..60 {
        let mut rng = Rng::new(seed);
        let limit = 1 + (rng.next() % 4) as usize;
        let mut q = Q::new(limit);
        let mut live: HashSet<TaskId> = HashSet::new();
        let mut idle: HashSet<TaskId> = HashSet::new();
        let mut discarding: HashSet<TaskId> = HashSet::new();
        for _ in 0..400 {
            let ids: Vec<TaskId> = q.tasks().iter().map(|t| t.id).collect();
            let pick = |rng: &mut Rng, from: &[TaskId]| {
                from.get((rng.next() % from.len().max(1) as u64) as usize)
                    .copied()
            };
            let sorted = |s: &HashSet<TaskId>| {
                let mut v: Vec<TaskId> = s.iter().copied().collect();
                v.sort();
                v
            };
            let (live_ids, discard_ids) = (sorted(&live), sorted(&discarding));
            let before: Vec<(TaskId, TaskState)> =
                q.tasks().iter().map(|t| (t.id, t.state)).collect();
            match rng.next() % 9 {
                0 | 1 => {
                    q.add("x", Some(10));
                }
                2 => {
                    if let Some(id) = pick(&mut rng, &live_ids) {
                        let r = match rng.next() % 3 {
                            0 => Ok(1),
                            1 => Err(Error::Cancelled),
                            _ => Err(failed()),
                        };
                        q.finished(id, r).unwrap();
                        live.remove(&id);
                        idle.remove(&id);
                    }
                }
                3 => {
                    if let Some(id) = pick(&mut rng, &ids) {
                        let _ = q.pause(id);
                    }
                }
                4 => {
                    if let Some(id) = pick(&mut rng, &ids) {
                        let _ = q.resume(id);
                    }
                }
                5 => {
                    if let Some(id) = pick(&mut rng, &ids) {
                        let _ = q.cancel(id);
                    }
                }
                6 => {
                    if let Some(id) = pick(&mut rng, &live_ids) {
                        q.paused(id).unwrap();
                        idle.insert(id);
                    }
                }
                7 => {
                    if let Some(id) = pick(&mut rng, &discard_ids) {
                        q.discarded(id).unwrap();
                        discarding.remove(&id);
                    }
                }
                _ if rng.next() % 8 == 0 => q.clear_finished(),
                _ => {
                    if let Some(id) = pick(&mut rng, &ids) {
                        let removable = !live.contains(&id) && !discarding.contains(&id);
                        assert_eq!(q.remove(id).is_ok(), removable);
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
            let mut started = vec![];
            for o in &outs {
                match *o {
                    QueueOutput::Start(id) => {
                        assert!(live.insert(id), "a second run of {id:?}");
                        started.push(id);
                    }
                    QueueOutput::Command(id, c) => {
                        assert!(live.contains(&id), "{c:?} to {id:?} with no run");
                        if c == Command::Resume {
                            started.push(id);
                            idle.remove(&id);
                        }
                    }
                    QueueOutput::Discard(id) => {
                        assert!(!live.contains(&id));
                        assert!(discarding.insert(id), "discarded twice");
                        assert_eq!(q.get(id).unwrap().state, TaskState::Canceled);
                    }
                    QueueOutput::ListUpdate => {}
                }
            }
            for id in &started {
                assert_eq!(q.get(*id).unwrap().state, TaskState::Running);
            }
            // The kept count is the real one, and the oldest waiting tasks start first.
            let running = q.tasks().iter().filter(|t| t.state == TaskState::Running);
            assert_eq!(q.running(), running.count());
            assert_eq!(started, waiting[..started.len()]);
            assert!(q.running() <= limit);
            if q.running() < limit {
                assert!(!q.tasks().iter().any(|t| t.state == TaskState::Waiting));
            }
            for t in q.tasks() {
                let over = !live.contains(&t.id) && !discarding.contains(&t.id);
                if q.outcome(t.id).unwrap().is_some() {
                    assert!(over && t.state.is_finished(), "{t:?}");
                }
                if t.state.is_finished() && over {
                    assert!(q.outcome(t.id).unwrap().is_some(), "no result: {t:?}");
                }
            }
            let settled = discarding.is_empty()
                && q.is_idle()
                && live
                    .iter()
                    .all(|id| idle.contains(id) && q.get(*id).unwrap().state == TaskState::Paused);
            assert_eq!(q.is_settled(), settled);
        }
    }
}

#[test]
fn entries_fill_in_their_checkpoints_and_name_their_leftovers() {
    let (abs, tmp) = (Path::new("/data/a.bin"), Path::new("/tmp"));
    let e = UploadEntry::new(
        "a.bin".into(),
        "k",
        UploadOptions::default(),
        "b-1",
        abs,
        tmp,
    );
    let name = derived_checkpoint_name("b-1", "/data/a.bin", "k");
    assert_eq!(
        e.options.checkpoint,
        Some(tmp.join("cos-rs-checkpoints").join(name))
    );
    let mine = UploadOptions::default().checkpoint("mine.json");
    let e = UploadEntry::new("a.bin".into(), "k", mine, "b-1", abs, tmp);
    assert_eq!(e.options.checkpoint, Some(PathBuf::from("mine.json")));

    let dest = PathBuf::from("/x/out.bin");
    let d = DownloadEntry::new("k", dest.clone(), DownloadOptions::default());
    assert!(d.options.checkpoint, "a queued download can always resume");
    assert_eq!(d.leftovers(), [temp_path(&dest), checkpoint_path(&dest)]);
    assert!(!d.leftovers().contains(&dest), "never the destination");

    // What the lists show.
    let mut q: TransferQueue<DownloadEntry, u8> = TransferQueue::new(1);
    let id = q.add(d, None);
    drain_any(&mut q);
    q.set_progress(id, 5, Some(9)).unwrap();
    q.finished(id, Err(failed())).unwrap();
    let row = DownloadInfo::from(&q.tasks()[0]);
    assert_eq!(
        (row.id, row.key.as_str(), row.path, row.state),
        (id, "k", dest, TaskState::Error)
    );
    assert_eq!(
        (row.loaded, row.total, row.error),
        (5, Some(9), Some(failed()))
    );
    let mut q: TransferQueue<UploadEntry> = TransferQueue::new(1);
    let id = q.add(e, Some(9));
    drain_any(&mut q);
    let p = Progress {
        loaded: 3,
        total: Some(9),
        speed: 1.5,
        percent: Some(1.0 / 3.0),
    };
    q.report(id, p).unwrap();
    let row = TaskInfo::from(&q.tasks()[0]);
    assert_eq!(
        (row.id, row.key.as_str(), row.state),
        (id, "k", TaskState::Running)
    );
    assert_eq!(
        (row.path, row.progress, row.error),
        (PathBuf::from("a.bin"), Some(p), None)
    );
}

fn drain_any<M, R>(q: &mut TransferQueue<M, R>) {
    while q.poll().is_some() {}
}

#[test]
fn refusals_name_the_task_and_its_state() {
    assert_eq!(
        QueueError::UnknownTask(TaskId(99)).to_string(),
        "no task 99"
    );
    assert_eq!(
        QueueError::WrongState(TaskId(4), TaskState::Canceled).to_string(),
        "task 4 is Canceled"
    );
}

#[test]
fn a_timed_out_wait_has_no_value() {
    assert_eq!(Waited::Done(7).done(), Some(7));
    assert!(!Waited::Done(7).is_timed_out());
    assert_eq!(Waited::<u32>::TimedOut.done(), None);
    assert!(Waited::<u32>::TimedOut.is_timed_out());
}

#[test]
fn a_raised_limit_starts_more_and_a_zero_limit_still_runs_one() {
    let mut q = Q::new(1);
    let ids: Vec<_> = (0..4).map(|_| q.add("f", Some(10))).collect();
    assert_eq!(starts(&drain(&mut q)), ids[..1]);
    q.set_limit(3);
    assert_eq!(starts(&drain(&mut q)), ids[1..3]);
    q.set_limit(0);
    q.finished(ids[0], Ok(0)).unwrap();
    q.finished(ids[1], Ok(1)).unwrap();
    assert!(starts(&drain(&mut q)).is_empty(), "one still runs");
    q.finished(ids[2], Ok(2)).unwrap();
    assert_eq!(starts(&drain(&mut q)), ids[3..]);
    // Totals add up over the tasks that know theirs; a finished task counts whole.
    q.set_progress(ids[3], 3, None).unwrap();
    let unknown = q.add("g", None);
    q.set_progress(unknown, 5, None).unwrap();
    assert_eq!(q.progress(), (33, 40));
}

#[test]
fn a_queue_with_a_waiting_or_running_task_is_not_idle() {
    let mut q = Q::new(1);
    assert!(q.is_idle(), "empty");
    let a = q.add("a", None);
    let b = q.add("b", None);
    assert!(!q.is_idle(), "two waiting");
    assert_eq!(starts(&drain(&mut q)), [a]);
    q.pause(b).unwrap();
    assert!(!q.is_idle(), "one running");
    q.finished(a, Ok(1)).unwrap();
    assert!(q.is_idle(), "one done, one paused");
    q.resume(b).unwrap();
    assert!(!q.is_idle(), "waiting again");
}

#[test]
fn pause_all_pauses_what_waits_or_runs_and_leaves_the_rest() {
    let mut q = Q::new(2);
    let ids: Vec<_> = (0..4).map(|_| q.add("f", None)).collect();
    assert_eq!(starts(&drain(&mut q)), ids[..2]);
    q.finished(ids[0], Ok(0)).unwrap();
    assert_eq!(starts(&drain(&mut q)), [ids[2]]);
    q.pause_all();
    assert_eq!(
        acts(&mut q),
        [
            QueueOutput::Command(ids[1], Command::Pause),
            QueueOutput::Command(ids[2], Command::Pause)
        ]
    );
    let states: Vec<_> = q.tasks().iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        [
            TaskState::Success,
            TaskState::Paused,
            TaskState::Paused,
            TaskState::Paused
        ]
    );
    assert!(q.is_idle());
}
