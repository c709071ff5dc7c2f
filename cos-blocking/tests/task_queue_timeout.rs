//! `TaskQueue::wait_timeout` and `wait_all_timeout` over real TCP: a task held up by a server that stalls
//! every request times out, goes on running, and then completes with the plain `wait`. The async client's
//! twin is `cos-async/tests/task_queue_timeout.rs`.

use std::time::{Duration, Instant};

use cos_blocking::{Client, Config, Credentials, Endpoint, UploadOptions, Waited};
use cos_testkit::{Fault, FaultPlan, Server};

fn client(server: &Server) -> Client {
    let mut c = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    c.retry.initial_backoff = Duration::from_millis(5);
    Client::new(c)
}

#[test]
fn a_stalled_task_times_out_then_completes() {
    let plan = FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(1500)), 1.0)
        .unwrap();
    let server = Server::builder().faults(plan).start_blocking().unwrap();
    let dir = std::env::temp_dir().join(format!("cos-blocking-waits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stalled.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let checkpoint = dir.join("stalled.cp");

    let queue = client(&server).task_queue(1);
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
    let _ = std::fs::remove_dir_all(&dir);
}
