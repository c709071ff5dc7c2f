//! Download scenarios, written once against [`Driver`] and run against both clients over loopback TCP:
//! one GET or parallel ranged GETs, the file in place only when complete and verified, a body cut mid-way
//! continued from where it stopped, a checkpoint that lets a failed download fetch only what is missing,
//! and a change of the object during the download detected instead of mixed.

use super::*;
use cos_core::download::{checkpoint_path, temp_path};

fn ranged() -> DownloadOptions {
    DownloadOptions::default()
        .threshold(MIB as u64)
        .range_size(MIB as u64)
        .concurrency(3)
}

fn nothing(_: u64, _: u64) {}

/// Stores `data` as `key` through the client's own upload.
fn put<D: Driver>(client: &D, key: &str, data: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = TempDir::new::<D>(&format!("src-{}", N.fetch_add(1, Ordering::SeqCst)));
    let p = d.file("src", data);
    client
        .upload_file(&p, key, &UploadOptions::default())
        .unwrap();
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn gets(server: &Server) -> u64 {
    server.counters().get("GetObject")
}

/// The bytes a checkpoint file names as done.
fn checkpoint_done(path: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["len"].as_u64().unwrap())
        .sum()
}

pub fn small_objects_take_one_get_and_large_ones_ranges<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("dl-ok");
    let small = pattern(1000, 1);
    let big = pattern(5 * MIB + 123, 2);
    put(&client, "small", &small);
    put(&client, "big", &big);
    put(&client, "empty", b"");

    let before = gets(&server);
    let out = client
        .download_file("small", &d.path("small"), &ranged(), &nothing)
        .unwrap();
    assert_eq!((out.size, out.requests, out.resumed), (1000, 1, 0));
    assert_eq!(std::fs::read(d.path("small")).unwrap(), small);
    assert_eq!(gets(&server) - before, 1);

    let before = gets(&server);
    let out = client
        .download_file("big", &d.path("big"), &ranged(), &nothing)
        .unwrap();
    assert_eq!(out.requests, 6);
    assert!(std::fs::read(d.path("big")).unwrap() == big);
    assert_eq!(gets(&server) - before, 6);

    client
        .download_file("empty", &d.path("empty"), &ranged(), &nothing)
        .unwrap();
    assert_eq!(std::fs::read(d.path("empty")).unwrap(), b"");
    // Nothing but the files is left beside them.
    assert_eq!(names(&d.0), ["big", "empty", "small"]);
}

pub fn a_failed_download_leaves_the_destination_untouched<D: Driver>() {
    let server = Server::builder().start_blocking().unwrap();
    let client = client::<D>(&server, 2);
    let d = TempDir::new::<D>("dl-fail");
    put(&client, "big", &pattern(3 * MIB, 3));
    let dest = d.file("big", b"old content");
    for n in 2..=20 {
        server.faults().fail_nth("GetObject", n, Fault::Status(500));
    }
    let e = client
        .download_file("big", &dest, &ranged().concurrency(1), &nothing)
        .unwrap_err();
    assert_eq!(e.status(), Some(500), "{e}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"old content");
    assert_eq!(names(&d.0), ["big"], "no temporary file left");

    let e = client
        .download_file("missing", &d.path("m"), &ranged(), &nothing)
        .unwrap_err();
    assert_eq!(e.code(), Some("NoSuchKey"));
    assert_eq!(names(&d.0), ["big"]);
}

pub fn a_body_cut_mid_way_is_continued_from_where_it_stopped<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("dl-cut");
    let big = pattern(3 * MIB + 5, 4);
    let small = pattern(300_000, 5);
    put(&client, "big", &big);
    put(&client, "small", &small);

    // The second ranged GET sends half its body, then closes the connection.
    server
        .faults()
        .fail_nth("GetObject", 2, Fault::TruncatedBody);
    let before = gets(&server);
    let out = client
        .download_file("big", &d.path("big"), &ranged(), &nothing)
        .unwrap();
    assert_eq!(gets(&server) - before, 5, "4 ranges and one continuation");
    assert_eq!(out.requests, 5);
    assert!(std::fs::read(d.path("big")).unwrap() == big);

    // A single GET cut half-way is continued with a ranged GET of the rest.
    server.faults().clear();
    let before = gets(&server);
    server
        .faults()
        .fail_nth("GetObject", 1, Fault::TruncatedBody);
    let out = client
        .download_file("small", &d.path("small"), &ranged(), &nothing)
        .unwrap();
    assert_eq!((out.requests, gets(&server) - before), (2, 2));
    assert!(std::fs::read(d.path("small")).unwrap() == small);
    assert_eq!(names(&d.0), ["big", "small"]);
}

pub fn a_failed_download_resumes_from_its_checkpoint_with_only_the_missing_ranges<D: Driver>() {
    let server = Server::builder().start_blocking().unwrap();
    let once = client::<D>(&server, 1);
    let d = TempDir::new::<D>("dl-resume");
    let data = pattern(6 * MIB, 6);
    put(&once, "big", &data);
    let dest = d.path("big");
    let options = ranged().concurrency(1).checkpoint(true);
    let cp = cos_core::download::checkpoint_path(&dest);
    let tmp = cos_core::download::temp_path(&dest);

    // Three ranges arrive, the fourth is cut half-way and the download gives up (one attempt only).
    let fail_from = |first: u64| {
        server
            .faults()
            .fail_nth("GetObject", first, Fault::TruncatedBody);
        for n in first + 1..first + 20 {
            server.faults().fail_nth("GetObject", n, Fault::Status(500));
        }
    };
    fail_from(4);
    once.download_file("big", &dest, &options, &nothing)
        .unwrap_err();
    server.faults().clear();
    assert!(!dest.exists());
    assert!(tmp.exists() && cp.exists(), "{:?}", names(&d.0));
    let kept = checkpoint_done(&cp);
    assert_eq!(kept, 3 * MIB as u64 + MIB as u64 / 2);

    // The rerun fetches the rest of the fourth range and the last two: three GETs.
    let client = client::<D>(&server, 4);
    let before = gets(&server);
    let out = client
        .download_file("big", &dest, &options, &nothing)
        .unwrap();
    assert_eq!(gets(&server) - before, 3);
    assert_eq!((out.resumed, out.requests), (kept, 3));
    assert!(std::fs::read(&dest).unwrap() == data);
    assert_eq!(
        names(&d.0),
        ["big"],
        "temporary file and checkpoint removed"
    );

    // A checkpoint of an older version of the object is not used: the new object is fetched whole.
    std::fs::remove_file(&dest).unwrap();
    fail_from(2);
    once.download_file("big", &dest, &options, &nothing)
        .unwrap_err();
    server.faults().clear();
    assert!(checkpoint_done(&cp) > 0);
    let changed = pattern(6 * MIB, 7);
    put(&client, "big", &changed);
    let before = gets(&server);
    let out = client
        .download_file("big", &dest, &options, &nothing)
        .unwrap();
    assert_eq!((out.resumed, gets(&server) - before), (0, 6));
    assert!(std::fs::read(&dest).unwrap() == changed);
    assert_eq!(names(&d.0), ["big"]);
}

/// A range the checkpoint names but the temporary file no longer holds (a byte changed on disk since) is
/// fetched again on the rerun; the rest is kept, and the file ends byte-identical.
pub fn a_kept_range_damaged_on_disk_is_fetched_again<D: Driver>() {
    use std::io::{Seek, SeekFrom, Write};
    let server = Server::builder().start_blocking().unwrap();
    let once = client::<D>(&server, 1);
    let d = TempDir::new::<D>("dl-damaged");
    let data = pattern(6 * MIB, 8);
    put(&once, "big", &data);
    let dest = d.path("big");
    let options = ranged().concurrency(1).checkpoint(true);
    server
        .faults()
        .fail_nth("GetObject", 4, Fault::TruncatedBody);
    for n in 5..25 {
        server.faults().fail_nth("GetObject", n, Fault::Status(500));
    }
    once.download_file("big", &dest, &options, &nothing)
        .unwrap_err();
    server.faults().clear();
    let cp = cos_core::download::checkpoint_path(&dest);
    assert_eq!(checkpoint_done(&cp), 3 * MIB as u64 + MIB as u64 / 2);
    // One byte of the second range changes on disk.
    let tmp = cos_core::download::temp_path(&dest);
    let mut f = std::fs::OpenOptions::new().write(true).open(&tmp).unwrap();
    f.seek(SeekFrom::Start(MIB as u64 + 10)).unwrap();
    f.write_all(&[data[MIB + 10] ^ 0xff]).unwrap();
    drop(f);

    let client = client::<D>(&server, 4);
    let before = gets(&server);
    let out = client
        .download_file("big", &dest, &options, &nothing)
        .unwrap();
    // The second range again, the rest of the fourth, the last two.
    assert_eq!(gets(&server) - before, 4);
    assert_eq!(out.resumed, 2 * MIB as u64 + MIB as u64 / 2);
    assert!(std::fs::read(&dest).unwrap() == data);
    assert_eq!(names(&d.0), ["big"]);
}

/// The last step fails (the destination is a directory, so the rename is refused): without a checkpoint
/// the temporary file is removed; with one, the fetched bytes are kept and a rerun, once the way is clear,
/// finishes with no GET at all.
pub fn a_destination_that_cannot_be_replaced_fails_and_keeps_only_what_a_rerun_can_use<
    D: Driver,
>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("dl-rename");
    let data = pattern(3 * MIB, 9);
    put(&client, "big", &data);
    let dest = d.path("big");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("inside"), b"x").unwrap();

    let e = client
        .download_file("big", &dest, &ranged(), &nothing)
        .unwrap_err();
    assert!(e.to_string().contains("big"), "{e}");
    assert_eq!(names(&d.0), ["big"], "no temporary file left");
    assert_eq!(std::fs::read(dest.join("inside")).unwrap(), b"x");

    let options = ranged().checkpoint(true);
    client
        .download_file("big", &dest, &options, &nothing)
        .unwrap_err();
    let (tmp, cp) = (
        cos_core::download::temp_path(&dest),
        cos_core::download::checkpoint_path(&dest),
    );
    assert!(tmp.exists() && cp.exists(), "{:?}", names(&d.0));
    assert_eq!(checkpoint_done(&cp), 3 * MIB as u64);

    std::fs::remove_dir_all(&dest).unwrap();
    let before = gets(&server);
    let out = client
        .download_file("big", &dest, &options, &nothing)
        .unwrap();
    assert_eq!((gets(&server) - before, out.resumed), (0, 3 * MIB as u64));
    assert!(std::fs::read(&dest).unwrap() == data);
    assert_eq!(names(&d.0), ["big"]);
}

/// A HEAD claiming more bytes than any COS object holds fails the download before any GET or file.
pub fn a_head_claiming_an_impossible_size_fails_before_any_get<D: Driver>() {
    let server = crate::support::MockServer::start(|_, _| {
        crate::support::Reply::new(
            200,
            &[
                ("content-length", "18446744073709551615"),
                ("etag", "\"e\""),
            ],
            "",
        )
    });
    let client = D::build(server.config(), None);
    let d = TempDir::new::<D>("dl-huge");
    let dest = d.path("huge");
    let e = client
        .download_file("huge", &dest, &ranged().checkpoint(true), &nothing)
        .unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
    assert!(e.to_string().contains("larger than any COS object"), "{e}");
    let methods: Vec<String> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["HEAD"]);
    assert!(names(&d.0).is_empty(), "no file made");
}

pub fn an_object_changed_during_the_download_is_detected<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("dl-changed");
    put(&client, "big", &pattern(4 * MIB, 8));
    let dest = d.file("big", b"old content");
    // Every GET after the first waits, and the object is replaced meanwhile.
    let first = gets(&server) + 1;
    for n in 2..5 {
        server
            .faults()
            .fail_nth("GetObject", n, Fault::Stall(Duration::from_millis(400)));
    }
    let writer = {
        let server_gets = {
            let s = &server;
            move || gets(s)
        };
        let other = cos_blocking::Client::new(config(&server, 4));
        std::thread::scope(|scope| {
            let h = scope.spawn(move || {
                until("the first GET", || server_gets() >= first);
                other
                    .put_object(cos_core::ops::PutObject::new("big"), pattern(4 * MIB, 9))
                    .unwrap();
            });
            let r = client.download_file(
                "big",
                &dest,
                &ranged().concurrency(1).checkpoint(true),
                &nothing,
            );
            h.join().unwrap();
            r
        })
    };
    let e = writer.unwrap_err();
    assert_eq!(e.code(), Some("PreconditionFailed"), "{e}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"old content");
    assert_eq!(
        names(&d.0),
        ["big"],
        "no temporary file or checkpoint of the changed object"
    );
}

pub fn progress_reaches_the_total<D: Driver>() {
    let (_server, client) = start::<D>();
    let d = TempDir::new::<D>("dl-progress");
    let data = pattern(4 * MIB + 7, 10);
    put(&client, "big", &data);
    let seen = Mutex::new(Vec::new());
    let record = |done: u64, total: u64| seen.lock().unwrap().push((done, total));
    client
        .download_file("big", &d.path("big"), &ranged(), &record)
        .unwrap();
    let seen = seen.into_inner().unwrap();
    let total = data.len() as u64;
    assert_eq!(seen.len(), 5, "one report per range: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert!(seen.iter().all(|&(_, t)| t == total));
    assert_eq!(seen.last().unwrap().0, total);
}

pub fn a_batch_downloads_every_file_even_when_one_fails<D: Driver>() {
    let (_server, client) = start::<D>();
    let d = TempDir::new::<D>("dl-batch");
    let a = pattern(100_000, 11);
    let b = pattern(2 * MIB + 1, 12);
    put(&client, "dir/a", &a);
    put(&client, "dir/b", &b);
    let files = [
        FileDownload::new("dir/a", d.path("a")),
        FileDownload::new("dir/missing", d.path("missing")),
        FileDownload::new("dir/b", d.path("b")),
    ];
    let results = client.download_files(&files, &ranged(), 2);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap().size, a.len() as u64);
    assert_eq!(results[1].as_ref().unwrap_err().code(), Some("NoSuchKey"));
    assert_eq!(results[2].as_ref().unwrap().requests, 3);
    assert_eq!(std::fs::read(d.path("a")).unwrap(), a);
    assert!(std::fs::read(d.path("b")).unwrap() == b);
    assert_eq!(names(&d.0), ["a", "b"]);
}

/// Waits (at most 30 s) until the one task of `q` has bytes in its temporary file.
fn until_loaded(q: &dyn DownloadList) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while q.list()[0].1 == 0 {
        assert!(Instant::now() < deadline, "no progress: {:?}", q.list());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The download queue: a download paused mid-way (the server slowed by a delay on every request) finishes
/// the ranges in flight, stores them in its checkpoint and stops; resumed, it fetches only the missing
/// ranges and the file is byte-identical. A cancelled download leaves no temporary file, no checkpoint
/// and no destination, and so does a paused one whose queue is dropped.
pub fn a_queued_download_pauses_resumes_with_only_the_missing_ranges_and_cancels_cleanly<
    D: Driver,
>() {
    let (server, client) = start::<D>();
    let data = pattern(7 * MIB, 31);
    put(&client, "queued", &data);
    let ranges = 7;
    let slow = || {
        server.faults().set_plan(
            FaultPlan::new()
                .with(Fault::Stall(Duration::from_millis(200)), 1.0)
                .unwrap(),
        )
    };
    let options = ranged().concurrency(2);

    // Pause, then resume.
    let d = TempDir::new::<D>("dl-queue");
    let dest = d.path("out.bin");
    let q = client.download_queue(1);
    slow();
    let before = gets(&server);
    let id = q.add("queued", &dest, options.clone());
    until_loaded(&*q);
    q.pause(id);
    q.wait_all(); // returns once the ranges in flight are in and the run is idle
    assert_eq!(q.list()[0].0, TaskState::Paused);
    let at_pause = gets(&server) - before;
    let done = checkpoint_done(&checkpoint_path(&dest));
    assert!(done > 0 && done < data.len() as u64, "{done}");
    assert_eq!(done % MIB as u64, 0, "only whole ranges are stored");
    assert_eq!(
        at_pause,
        done / MIB as u64,
        "every range started was finished"
    );
    assert!(!dest.exists(), "nothing at the destination while paused");
    assert!(temp_path(&dest).exists());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(gets(&server) - before, at_pause, "no GET while paused");

    server.faults().clear();
    q.resume(id);
    let outcome = q.wait(id).expect("the resumed download completes");
    assert_eq!(outcome.size, data.len() as u64);
    let after = gets(&server) - before - at_pause;
    assert_eq!(
        after,
        ranges - at_pause,
        "only the missing ranges are fetched"
    );
    assert!(after < ranges, "fewer GETs than a full restart");
    assert!(std::fs::read(&dest).unwrap() == data, "file differs");
    assert_eq!(names(&d.0), vec!["out.bin".to_string()]);

    // Cancel.
    let d = TempDir::new::<D>("dl-queue-cancel");
    let dest = d.path("out.bin");
    let q = client.download_queue(1);
    slow();
    let id = q.add("queued", &dest, options);
    until_loaded(&*q);
    q.cancel(id);
    assert!(matches!(q.wait(id), Err(Error::Cancelled)));
    q.wait_all();
    assert_eq!(q.list()[0].0, TaskState::Canceled);
    assert!(
        names(&d.0).is_empty(),
        "no temporary file, checkpoint or destination: {:?}",
        names(&d.0)
    );

    // Dropping the queue cancels a paused download: its run ends and removes its files.
    let d = TempDir::new::<D>("dl-queue-drop");
    let dest = d.path("out.bin");
    let q = client.download_queue(1);
    let id = q.add("queued", &dest, ranged().concurrency(1));
    until_loaded(&*q);
    q.pause(id);
    q.wait_all();
    assert!(temp_path(&dest).exists());
    drop(q);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !names(&d.0).is_empty() {
        assert!(Instant::now() < deadline, "left behind: {:?}", names(&d.0));
        std::thread::sleep(Duration::from_millis(10));
    }
    server.faults().clear();
}

/// The download queue watches and waits as the upload queue does (`on_change`, `wait_timeout`,
/// `wait_all_timeout`), and follows the same cleanup rules: a failed download keeps its temporary file
/// and checkpoint (it can be resumed) until it is cancelled, which removes them.
pub fn a_queued_download_is_watched_and_waited_for_with_a_limit_and_a_failed_one_cancels_cleanly<
    D: Driver,
>() {
    let (server, client) = start::<D>();
    let data = pattern(4 * MIB, 17);
    put(&client, "watched", &data);
    let d = TempDir::new::<D>("dl-queue-watch");
    let q = client.download_queue(1);
    let changes = Arc::new(AtomicUsize::new(0));
    let seen = changes.clone();
    q.on_change(Box::new(move || {
        seen.fetch_add(1, Ordering::SeqCst);
    }));

    // Slowed down, a short wait times out and the download goes on.
    server.faults().set_plan(
        FaultPlan::new()
            .with(Fault::Stall(Duration::from_millis(300)), 1.0)
            .unwrap(),
    );
    let dest = d.path("out.bin");
    let id = q.add("watched", &dest, ranged().concurrency(1));
    assert!(q.wait_timeout(id, Duration::from_millis(50)).is_timed_out());
    assert!(q.wait_all_timeout(Duration::from_millis(50)).is_timed_out());
    server.faults().clear();
    match q.wait_timeout(id, Duration::from_secs(60)) {
        Waited::Done(Ok(o)) => assert_eq!(o.size, data.len() as u64),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        q.wait_all_timeout(Duration::from_secs(60)),
        Waited::Done(())
    );
    assert!(std::fs::read(&dest).unwrap() == data, "file differs");
    assert!(
        changes.load(Ordering::SeqCst) >= 3,
        "added, started, ended: {}",
        changes.load(Ordering::SeqCst)
    );

    // Refused after two ranges: it fails and keeps what it wrote, until it is cancelled.
    let dest = d.path("failed.bin");
    for n in 3..=20 {
        server.faults().fail_nth("GetObject", n, Fault::Status(403));
    }
    let id = q.add("watched", &dest, ranged().concurrency(1));
    let e = q.wait(id).unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert_eq!(q.list()[1].0, TaskState::Error);
    assert!(temp_path(&dest).exists() && checkpoint_path(&dest).exists());
    q.cancel(id);
    assert!(matches!(q.wait(id), Err(Error::Cancelled)));
    q.wait_all();
    assert_eq!(q.list()[1].0, TaskState::Canceled);
    assert_eq!(
        names(&d.0),
        ["out.bin"],
        "the failed download's files are gone"
    );
    server.faults().clear();
}
