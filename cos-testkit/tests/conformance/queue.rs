//! The task queue's `wait_timeout` and `wait_all_timeout`: a task held up by a server that stalls every
//! request times out, goes on running, and then completes with the plain `wait`.

use super::*;

pub fn a_stalled_task_times_out_then_completes<D: Driver>() {
    let plan = FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(1500)), 1.0)
        .unwrap();
    let server = Server::builder().faults(plan).start_blocking().unwrap();
    let dir = TempDir::new::<D>("waits");
    let data = pattern(100_000, 100);
    let path = dir.file("stalled.bin", &data);
    let checkpoint = dir.path("stalled.cp");

    let queue = client::<D>(&server, 4).task_queue(1);
    let id = queue.add(
        &path,
        "queue/stalled.bin",
        UploadOptions::default().checkpoint(&checkpoint),
    );

    let started = Instant::now();
    let waited = queue.wait_timeout(id, Duration::from_millis(200));
    assert!(waited.is_timed_out(), "{waited:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(queue
        .wait_all_timeout(Duration::from_millis(100))
        .is_timed_out());
    assert!(server.object("queue/stalled.bin").is_none());

    // The task went on in the background: with the stalls gone it finishes.
    server.faults().clear();
    let outcome = queue.wait(id).expect("the upload completes");
    assert_eq!(outcome.total_len, data.len() as u64);
    let stored = server.object("queue/stalled.bin").unwrap().data.unwrap();
    assert!(stored == data, "stored bytes differ");

    match queue.wait_timeout(id, Duration::from_millis(1)) {
        Waited::Done(Ok(o)) => assert_eq!(o.total_len, data.len() as u64),
        other => panic!("a finished task is done at once: {other:?}"),
    }
    assert_eq!(
        queue.wait_all_timeout(Duration::from_secs(30)),
        Waited::Done(())
    );
    assert!(
        !checkpoint.exists(),
        "the checkpoint is removed after success"
    );
}

/// Dropping the last handle of a queue with a paused upload cancels it: the multipart upload is aborted,
/// the checkpoint removed, and the paused run (a thread or a tokio task) ends, releasing what it owned.
pub fn dropping_the_queue_aborts_a_paused_upload_and_ends_its_run<D: Driver>() {
    let server = slow_server(30);
    let client = client::<D>(&server, 4);
    let dir = TempDir::new::<D>("dropqueue");
    let path = dir.file("paused.bin", &pattern(8 * MIB, 92));
    let checkpoint = dir.path("paused.cp");
    // Owned by the task's options: it is freed once no run (and no queue state) holds them any more.
    let owned = Arc::new(());
    let released = Arc::downgrade(&owned);

    let queue = client.task_queue(2);
    let id = queue.add(
        &path,
        "drop/paused.bin",
        mib_parts()
            .concurrency(2)
            .checkpoint(&checkpoint)
            .on_progress(move |_| assert!(Arc::strong_count(&owned) > 0)),
    );
    until("progress", || {
        queue.list()[0]
            .progress
            .is_some_and(|p| p.loaded >= MIB as u64)
    });
    queue.pause(id);
    queue.wait_all();
    assert_eq!(queue.list()[0].state, TaskState::Paused);
    assert_eq!(server.multipart_uploads().len(), 1);
    assert!(checkpoint.exists(), "a paused task keeps its checkpoint");
    assert!(released.upgrade().is_some(), "the paused run is parked");

    drop(queue);
    until("the upload aborted", || {
        server.multipart_uploads().is_empty()
    });
    until("the paused run ended", || released.upgrade().is_none());
    assert!(server.object("drop/paused.bin").is_none());
    assert!(
        !checkpoint.exists(),
        "a cancelled task's checkpoint is removed"
    );
}
