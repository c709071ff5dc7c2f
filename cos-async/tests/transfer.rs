//! Transfers against the cos-testkit server over loopback TCP: single PUT, multipart (parallelism is
//! measured in `parallel.rs`), checkpoint
//! resume after a crash, changed files, find-unfinished, cancel, pause/resume through the task queue,
//! batches, fault injection, and streams around part boundaries.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cos_async::ops::ListParts;
use cos_async::{
    BatchOptions, Client, Config, Credentials, Endpoint, Error, FileUpload, InvalidInput,
    TaskState, UploadOptions,
};
use cos_core::upload::Checkpoint;
use cos_testkit::{Fault, FaultPlan, Server};
use tokio::io::{AsyncRead, ReadBuf};

const MIB: usize = 1 << 20;

fn config(server: &Server, max_attempts: u32) -> Config {
    let mut c = Config::new(
        server.bucket(),
        "ap-guangzhou",
        Credentials::new(server.secret_id(), server.secret_key()),
    )
    .unwrap()
    .with_endpoint(Endpoint::custom(&server.endpoint()).unwrap())
    .unwrap();
    c.retry.initial_backoff = Duration::from_millis(5);
    c.retry.max_backoff = Duration::from_millis(40);
    c.retry.max_attempts = max_attempts;
    c
}

fn client(server: &Server) -> Client {
    Client::new(config(server, 4))
}

/// Bytes that differ from part to part (so that a misplaced part cannot go unnoticed).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| {
            let x = i
                .wrapping_add(seed.wrapping_mul(0x2545_f491))
                .wrapping_mul(0x9e37_79b1);
            ((x ^ (x >> 15)).wrapping_mul(0x85eb_ca77) >> 24) as u8
        })
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d =
            std::env::temp_dir().join(format!("cos-async-transfer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options() -> UploadOptions {
    UploadOptions::default()
        .part_size(MIB as u64)
        .concurrency(4)
}

fn stored(server: &Server, key: &str) -> Vec<u8> {
    server.object(key).expect("object").data.expect("data")
}

#[tokio::test]
async fn a_small_file_is_one_put() {
    let server = Server::builder().start().await.unwrap();
    let dir = TempDir::new("small");
    let data = pattern(100_000, 1);
    let path = dir.file("small.bin", &data);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    let opts = options().on_progress(move |p| r.lock().unwrap().push(*p));
    let out = client(&server)
        .upload_file(&path, "small.bin", &opts)
        .await
        .unwrap();
    assert_eq!(out.parts, 0);
    assert_eq!(out.upload_id, None);
    assert_eq!(out.total_len, 100_000);
    let c = server.counters();
    assert_eq!((c.total, c.get("PutObject")), (1, 1), "{c:?}");
    assert_eq!(stored(&server, "small.bin"), data);
    let last = *reports.lock().unwrap().last().unwrap();
    assert_eq!((last.loaded, last.percent), (100_000, Some(1.0)));

    // An empty file is one empty PUT too; a folder-like key is refused before sending.
    let empty = dir.file("empty", b"");
    client(&server)
        .upload_file(&empty, "empty", &options())
        .await
        .unwrap();
    assert_eq!(stored(&server, "empty"), b"");
    let before = server.counters().total;
    let err = client(&server)
        .upload_file(&path, "folder/", &options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Key { .. })),
        "{err:?}"
    );
    assert_eq!(server.counters().total, before, "nothing sent");
}

/// Runs an upload that "crashes": the 6th UploadPart is reset and retries are off. Returns the error.
async fn crash(server: &Server, path: &PathBuf, key: &str, opts: &UploadOptions) -> Error {
    server.faults().fail_nth("UploadPart", 6, Fault::Reset);
    let crashing = Client::new(config(server, 1));
    let err = crashing.upload_file(path, key, opts).await.unwrap_err();
    server.faults().clear();
    // Requests dropped by the crash may still reach the server: let it settle before counting.
    let mut last = server.counters();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = server.counters();
        if now == last {
            break;
        }
        last = now;
    }
    err
}

#[tokio::test]
async fn resume_from_a_checkpoint_sends_only_missing_parts() {
    let server = Server::builder().start().await.unwrap();
    let dir = TempDir::new("resume");
    let data = pattern(12 * MIB + 7, 3);
    let path = dir.file("f.bin", &data);
    let cp_path = dir.path("f.cp");
    let opts = options().checkpoint(&cp_path);
    let err = crash(&server, &path, "f.bin", &opts).await;
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    let cp: Checkpoint = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    let done = cp.parts.len() as u64;
    assert!((1..13).contains(&done), "{done} parts in the checkpoint");
    assert_eq!(server.multipart_uploads().len(), 1, "the upload is kept");

    let before = server.counters();
    let out = client(&server)
        .upload_file(&path, "f.bin", &opts)
        .await
        .unwrap();
    let after = server.counters();
    let sent = |op: &str| after.get(op) - before.get(op);
    assert_eq!(sent("UploadPart"), 13 - done, "only the missing parts");
    assert_eq!(sent("InitiateMultipartUpload"), 0);
    assert_eq!(sent("ListParts"), 1);
    assert_eq!(out.upload_id.as_deref(), Some(cp.upload_id.as_str()));
    assert!(stored(&server, "f.bin") == data);
    assert!(
        !cp_path.exists(),
        "a finished upload deletes its checkpoint"
    );
    assert!(server.multipart_uploads().is_empty());
}

#[tokio::test]
async fn a_changed_file_starts_over() {
    let server = Server::builder().start().await.unwrap();
    let dir = TempDir::new("changed");
    let path = dir.file("f.bin", &pattern(8 * MIB, 4));
    let cp_path = dir.path("f.cp");
    let opts = options().checkpoint(&cp_path);
    crash(&server, &path, "f.bin", &opts).await;
    let old: Checkpoint = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();

    // Same size, other bytes, another modification time.
    let new_data = pattern(8 * MIB, 5);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&path, &new_data).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);

    let before = server.counters();
    let out = client(&server)
        .upload_file(&path, "f.bin", &opts)
        .await
        .unwrap();
    let after = server.counters();
    assert_eq!(
        after.get("AbortMultipartUpload") - before.get("AbortMultipartUpload"),
        1
    );
    assert_eq!(after.get("UploadPart") - before.get("UploadPart"), 8);
    assert_ne!(out.upload_id.as_deref(), Some(old.upload_id.as_str()));
    assert!(stored(&server, "f.bin") == new_data);
    assert!(
        server.multipart_uploads().is_empty(),
        "the stale upload is aborted"
    );
}

#[tokio::test]
async fn an_unfinished_upload_is_found_without_a_checkpoint() {
    let server = Server::builder().start().await.unwrap();
    let dir = TempDir::new("unfinished");
    let data = pattern(10 * MIB + 99, 6);
    let path = dir.file("f.bin", &data);
    crash(&server, &path, "u/f.bin", &options()).await;
    let uploads = server.multipart_uploads();
    assert_eq!(uploads.len(), 1);
    let listed = client(&server)
        .list_parts(ListParts::new("u/f.bin", uploads[0].1.clone()))
        .await
        .unwrap()
        .parts
        .len() as u64;
    assert!(listed >= 1);

    let before = server.counters();
    let out = client(&server)
        .upload_file(&path, "u/f.bin", &options())
        .await
        .unwrap();
    let after = server.counters();
    assert_eq!(
        after.get("ListMultipartUploads") - before.get("ListMultipartUploads"),
        1
    );
    assert_eq!(
        after.get("UploadPart") - before.get("UploadPart"),
        11 - listed
    );
    assert_eq!(
        after.get("InitiateMultipartUpload"),
        before.get("InitiateMultipartUpload")
    );
    assert_eq!(out.upload_id.as_deref(), Some(uploads[0].1.as_str()));
    assert!(stored(&server, "u/f.bin") == data);

    // With find-unfinished off, a new upload is started.
    crash(&server, &path, "u/g.bin", &options()).await;
    let before = server.counters();
    client(&server)
        .upload_file(&path, "u/g.bin", &options().resume_unfinished(false))
        .await
        .unwrap();
    let after = server.counters();
    assert_eq!(after.get("UploadPart") - before.get("UploadPart"), 11);
    assert_eq!(
        server.multipart_uploads().len(),
        1,
        "the crashed one remains"
    );
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn slow_server_plan() -> FaultPlan {
    FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(60)), 1.0)
        .unwrap()
}

#[tokio::test]
async fn pause_and_resume_through_the_task_queue() {
    let server = Server::builder()
        .faults(slow_server_plan())
        .start()
        .await
        .unwrap();
    let dir = TempDir::new("pause");
    let data = pattern(16 * MIB, 7);
    let path = dir.file("f.bin", &data);
    let cp_path = dir.path("f.cp");
    let client = client(&server);
    let queue = client.task_queue(2);
    let updates = Arc::new(AtomicUsize::new(0));
    let u = updates.clone();
    queue.on_change(move |_| {
        u.fetch_add(1, Ordering::SeqCst);
    });
    let id = queue.add(
        &path,
        "q/f.bin",
        options().concurrency(2).checkpoint(&cp_path),
    );
    wait_for(|| server.counters().get("UploadPart") >= 3).await;
    queue.pause(id);
    queue.wait_all().await;
    assert_eq!(queue.list()[0].state, TaskState::Paused);
    let cp: Checkpoint = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    let done = cp.parts.len() as u64;
    let sent = server.counters().get("UploadPart");
    assert_eq!(sent, done, "a pause lets the parts in flight finish");
    assert!(done < 16, "paused before the end");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.counters().get("UploadPart"),
        sent,
        "nothing sent while paused"
    );

    queue.resume(id);
    let out = queue.wait(id).await.unwrap();
    assert_eq!(out.parts, 16);
    assert_eq!(
        server.counters().get("UploadPart"),
        16,
        "only the missing parts"
    );
    assert!(stored(&server, "q/f.bin") == data);
    assert!(!cp_path.exists());
    let info = &queue.list()[0];
    assert_eq!(info.state, TaskState::Success);
    assert_eq!(info.progress.unwrap().loaded, 16 * MIB as u64);
    assert!(updates.load(Ordering::SeqCst) >= 4);
}

#[tokio::test]
async fn cancel_leaves_no_multipart_upload() {
    let server = Server::builder()
        .faults(slow_server_plan())
        .start()
        .await
        .unwrap();
    let dir = TempDir::new("cancel");
    let a = dir.file("a.bin", &pattern(16 * MIB, 8));
    let b = dir.file("b.bin", &pattern(8 * MIB, 9));
    let client = client(&server);
    let queue = client.task_queue(2);
    // Task a is cancelled while it runs; task b is paused, then cancelled.
    let ia = queue.add(&a, "a.bin", options().concurrency(2));
    let ib = queue.add(&b, "b.bin", options().concurrency(2));
    wait_for(|| server.counters().get("UploadPart") >= 4).await;
    queue.pause(ib);
    queue.cancel(ia);
    assert!(matches!(queue.wait(ia).await, Err(Error::Cancelled)));
    queue.wait_all().await;
    assert_eq!(queue.list()[1].state, TaskState::Paused);
    queue.cancel(ib);
    assert!(matches!(queue.wait(ib).await, Err(Error::Cancelled)));
    queue.wait_all().await;
    assert!(
        server.multipart_uploads().is_empty(),
        "{:?}",
        server.multipart_uploads()
    );
    assert!(server.object("a.bin").is_none() && server.object("b.bin").is_none());
    let states: Vec<_> = queue.list().iter().map(|t| t.state).collect();
    assert_eq!(states, [TaskState::Canceled, TaskState::Canceled]);
}

#[tokio::test]
async fn a_batch_with_one_failing_file() {
    let server = Server::builder().start().await.unwrap();
    let dir = TempDir::new("batch");
    let files: Vec<_> = (0..4)
        .map(|i| {
            let data = pattern(i * MIB + 1000 * i, i as u32);
            (dir.file(&format!("f{i}"), &data), data)
        })
        .collect();
    let mut uploads: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, (p, _))| FileUpload::new(p, format!("batch/f{i}")))
        .collect();
    uploads.insert(2, FileUpload::new(dir.path("missing"), "batch/missing"));
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let opts = BatchOptions {
        file_parallel: 2,
        upload: options(),
        on_file_done: Some(Arc::new(move |_, _| {
            d.fetch_add(1, Ordering::SeqCst);
        })),
        ..Default::default()
    };
    let results = client(&server).upload_files(uploads, &opts).await;
    assert_eq!(results.len(), 5);
    assert!(
        matches!(results[2], Err(Error::Source(_))),
        "{:?}",
        results[2]
    );
    for (i, r) in [0, 1, 3, 4].into_iter().enumerate() {
        let out = results[r].as_ref().unwrap();
        assert_eq!(out.key, format!("batch/f{i}"));
        assert!(stored(&server, &out.key) == files[i].1);
    }
    assert_eq!(done.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn random_faults_never_corrupt_an_upload() {
    let dir = TempDir::new("faults");
    let data = pattern(9 * MIB + 5, 10);
    let path = dir.file("f.bin", &data);
    for seed in 1..=4u64 {
        let plan = FaultPlan::parse("500:0.05,503:0.05,reset:0.03,stall=300ms:0.02")
            .unwrap()
            .seed(seed);
        let server = Server::builder().faults(plan).start().await.unwrap();
        let client = Client::new(config(&server, 10));
        let key = format!("faults/{seed}");
        let out = client.upload_file(&path, &key, &options()).await.unwrap();
        assert_eq!(out.parts, 10);
        assert!(stored(&server, &key) == data, "seed {seed}");
        let skey = format!("faults/stream-{seed}");
        client
            .upload_stream(Chunked::new(data.clone(), 100_003), &skey, &options())
            .await
            .unwrap();
        assert!(stored(&server, &skey) == data, "stream, seed {seed}");
        assert!(server.multipart_uploads().is_empty());
        assert!(
            !server.faults().injected().is_empty(),
            "faults were injected"
        );
    }
}

/// A reader that yields its data in chunks of `chunk` bytes, then fails if `fail` is set.
struct Chunked {
    data: Bytes,
    chunk: usize,
    fail: bool,
}

impl Chunked {
    fn new(data: Vec<u8>, chunk: usize) -> Self {
        Chunked {
            data: data.into(),
            chunk,
            fail: false,
        }
    }
}

impl AsyncRead for Chunked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.data.is_empty() && self.fail {
            return Poll::Ready(Err(io::Error::other("disk on fire")));
        }
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let chunk = self.data.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

/// A stream of chunks of varying sizes.
struct ByteChunks(Vec<Bytes>);

impl futures_core::Stream for ByteChunks {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(if self.0.is_empty() {
            None
        } else {
            Some(Ok(self.0.remove(0)))
        })
    }
}

#[tokio::test]
async fn streams_around_part_boundaries() {
    let server = Server::builder().start().await.unwrap();
    let client = client(&server);
    let cases = [
        (0, 0),
        (MIB - 1, 0),
        (MIB, 1),
        (MIB + 1, 2),
        (3 * MIB - 1, 3),
        (3 * MIB, 3),
        (3 * MIB + 1, 4),
    ];
    for (i, (len, parts)) in cases.into_iter().enumerate() {
        let data = pattern(len, i as u32);
        let key = format!("s/reader-{len}");
        let out = client
            .upload_stream(Chunked::new(data.clone(), 65_537), &key, &options())
            .await
            .unwrap();
        assert_eq!((out.parts, out.total_len), (parts, len as u64), "{key}");
        assert!(stored(&server, &key) == data, "{key}");

        // The same bytes as a stream of uneven chunks.
        let mut chunks = Vec::new();
        let mut rest = Bytes::from(data.clone());
        let mut size = 1;
        while !rest.is_empty() {
            chunks.push(rest.split_to(size.min(rest.len())));
            size = size * 7 % 300_007 + 1;
        }
        let key = format!("s/stream-{len}");
        let out = client
            .upload_byte_stream(ByteChunks(chunks), &key, &options())
            .await
            .unwrap();
        assert_eq!(out.parts, parts, "{key}");
        assert!(stored(&server, &key) == data, "{key}");
    }
    assert!(server.multipart_uploads().is_empty());
}

#[tokio::test]
async fn a_failing_stream_leaves_nothing_on_the_server() {
    let server = Server::builder().start().await.unwrap();
    let client = client(&server);
    for len in [MIB / 2, 5 * MIB / 2] {
        let mut reader = Chunked::new(pattern(len, 1), 100_000);
        reader.fail = true;
        let err = client
            .upload_stream(reader, "s/broken", &options())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Source(ref m) if m.contains("disk on fire")),
            "{err:?}"
        );
        assert!(server.object("s/broken").is_none());
        assert!(server.multipart_uploads().is_empty(), "{len}");
    }
    let c = server.counters();
    assert_eq!(c.get("InitiateMultipartUpload"), 1, "{c:?}");
    assert_eq!(c.get("AbortMultipartUpload"), 1, "{c:?}");
}

#[tokio::test]
async fn a_corrupt_or_foreign_checkpoint_is_a_typed_error_and_nothing_is_sent() {
    let server = Server::builder().start().await.unwrap();
    let c = client(&server);
    let dir = std::env::temp_dir().join(format!("cos-async-badcheckpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("f.bin");
    std::fs::write(&file, pattern(3 * MIB, 9)).unwrap();
    let cp = dir.join("f.checkpoint");
    std::fs::write(&cp, "{ not json").unwrap();
    let err = c
        .upload_file(&file, "cp/a.bin", &options().checkpoint(&cp))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Checkpoint(_))),
        "{err}"
    );
    let other = Checkpoint {
        version: cos_core::upload::CHECKPOINT_VERSION,
        bucket: server.bucket().to_string(),
        key: "cp/other.bin".into(),
        upload_id: "u-1".into(),
        part_size: MIB as u64,
        total_len: 3 * MIB as u64,
        source: cos_core::upload::SourceFingerprint::new(3 * MIB as u64, None),
        parts: vec![],
    };
    std::fs::write(&cp, serde_json::to_vec(&other).unwrap()).unwrap();
    let err = c
        .upload_file(&file, "cp/a.bin", &options().checkpoint(&cp))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Checkpoint(_))),
        "{err}"
    );
    assert_eq!(
        server.counters().total,
        0,
        "{:?}",
        server.counters().by_operation
    );
    let _ = std::fs::remove_dir_all(&dir);
}
