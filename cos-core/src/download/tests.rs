use super::*;
use crate::ops::Operation;

fn info(data: &[u8]) -> ObjectInfo {
    let r = http::Response::builder()
        .header("content-length", data.len().to_string())
        .header("etag", "\"e\"")
        .header("x-cos-hash-crc64ecma", Crc64::checksum(data).to_string())
        .body(bytes::Bytes::new())
        .unwrap();
    ObjectInfo::from_headers(&r)
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 7 + (i >> 8)) as u8).collect()
}

fn opts() -> DownloadOptions {
    DownloadOptions::default()
        .threshold(1000)
        .range_size(1000)
        .concurrency(2)
}

fn ok(data: &[u8], f: &Fetch) -> FetchReport {
    let bytes = &data[f.offset as usize..(f.offset + f.len) as usize];
    FetchReport {
        written: f.len,
        crc64: Crc64::checksum(bytes),
        error: None,
    }
}

fn cut(data: &[u8], f: &Fetch, n: u64) -> FetchReport {
    let bytes = &data[f.offset as usize..(f.offset + n) as usize];
    FetchReport {
        written: n,
        crc64: Crc64::checksum(bytes),
        error: Some(Error::Transport(TransportError::new(
            TransportErrorKind::Reset,
            "cut",
        ))),
    }
}

fn task(data: &[u8], o: &DownloadOptions, saved: Option<&[u8]>, temp: Option<u64>) -> DownloadTask {
    let t = DownloadTask::new("b-1", "k", &info(data), o, RetryPolicy::default());
    begin(t, saved, temp).unwrap()
}

/// Takes a new task through its first steps as a driver would: `LoadCheckpoint` (when it keeps one),
/// answered with `saved` and `temp`, `CheckKept` (when it continues), answered as if the file held what
/// the checkpoint names, then `PrepareTemp`.
fn begin(
    t: Result<DownloadTask, Error>,
    saved: Option<&[u8]>,
    temp: Option<u64>,
) -> Result<DownloadTask, Error> {
    let mut t = t?;
    let mut step = t.next_step();
    if let DownloadStep::LoadCheckpoint = step {
        assert!(
            matches!(t.next_step(), DownloadStep::LoadCheckpoint),
            "asked until answered"
        );
        t.loaded(saved, temp);
        step = t.next_step();
    }
    if let DownloadStep::CheckKept { ranges } = step {
        // The file holds what the checkpoint says.
        let cp: DownloadCheckpoint = serde_json::from_slice(saved.unwrap()).unwrap();
        let named: Vec<(u64, u64)> = cp.done.iter().map(|r| (r.offset, r.len)).collect();
        assert_eq!(ranges, named);
        let crcs: Vec<Option<u64>> = cp.done.iter().map(|r| Some(r.crc64)).collect();
        t.kept(&crcs);
        step = t.next_step();
    }
    match step {
        DownloadStep::PrepareTemp { create, size } => {
            assert_eq!((create, size), (t.fresh_temp(), t.size()));
        }
        other => panic!("{other:?} before the temporary file"),
    }
    Ok(t)
}

/// Runs the task to its end, answering every fetch with the right bytes; returns the fetches and the end.
fn run(t: &mut DownloadTask, data: &[u8]) -> (Vec<Fetch>, DownloadStep) {
    let mut fetches = Vec::new();
    loop {
        match t.next_step() {
            DownloadStep::Fetch(f) => {
                t.fetched(f.id, ok(data, &f));
                fetches.push(f);
                assert!(fetches.len() < 1000, "fetching forever");
            }
            DownloadStep::Wait => panic!("nothing in flight"),
            DownloadStep::StoreCheckpoint(_) | DownloadStep::Progress { .. } => {}
            end => return (fetches, end),
        }
    }
}

#[test]
fn small_objects_take_one_get() {
    let d = data(100);
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    assert!(t.fresh_temp());
    let (fetches, end) = run(&mut t, &d);
    assert_eq!(fetches.len(), 1);
    assert_eq!(fetches[0].request.range_value(), None);
    assert!(!fetches[0].sync);
    assert!(matches!(end, DownloadStep::Finish));
    assert!(matches!(t.next_step(), DownloadStep::Exit));
}

#[test]
fn large_objects_take_ranges_with_if_match_and_combine_their_crcs() {
    let d = data(2500);
    let mut t = task(&d, &opts(), None, None);
    // Two at a time: the third waits.
    let DownloadStep::Fetch(a) = t.next_step() else {
        panic!()
    };
    let DownloadStep::Fetch(b) = t.next_step() else {
        panic!()
    };
    assert!(matches!(t.next_step(), DownloadStep::Wait));
    assert_eq!(b.request.range_value(), Some((1000, Some(1999))));
    let req = b
        .request
        .to_request(&crate::ops::test_util::config())
        .unwrap();
    assert_eq!(req.headers()["if-match"], "\"e\"");
    assert_eq!(req.headers()["range"], "bytes=1000-1999");
    t.fetched(b.id, ok(&d, &b));
    t.fetched(a.id, ok(&d, &a));
    let (rest, end) = run(&mut t, &d);
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].offset, rest[0].len), (2000, 500));
    assert!(matches!(end, DownloadStep::Finish));
    assert_eq!(t.requests(), 3);
}

#[test]
fn wrong_bytes_fail_the_combined_crc_and_drop_the_partial_file() {
    let d = data(2500);
    let mut t = task(&d, &opts().checkpoint(true), None, None);
    let mut bad = d.clone();
    bad[1500] ^= 1;
    let (_, end) = run(&mut t, &bad);
    match end {
        DownloadStep::Fail {
            error: Error::Integrity(IntegrityError::Crc64 { .. }),
            keep_partial: false,
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cut_body_is_continued_from_where_it_stopped() {
    let d = data(700);
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    t.fetched(f.id, cut(&d, &f, 300));
    assert!(matches!(
        t.next_step(),
        DownloadStep::Progress {
            done: 300,
            total: 700
        }
    ));
    let DownloadStep::Fetch(g) = t.next_step() else {
        panic!()
    };
    assert_eq!((g.offset, g.len), (300, 400));
    assert_eq!(g.request.range_value(), Some((300, Some(699))));
    assert!(g.delay > Duration::ZERO);
    let req = g
        .request
        .to_request(&crate::ops::test_util::config())
        .unwrap();
    assert_eq!(req.headers()["if-match"], "\"e\"");
    t.fetched(g.id, ok(&d, &g));
    let (_, end) = run(&mut t, &d);
    assert!(matches!(end, DownloadStep::Finish), "{end:?}");
}

#[test]
fn attempts_without_progress_are_bounded() {
    let d = data(700);
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    let mut sent = 0;
    loop {
        match t.next_step() {
            DownloadStep::Fetch(f) => {
                sent += 1;
                assert!(sent < 100, "retrying forever");
                t.fetched(f.id, cut(&d, &f, 0));
            }
            DownloadStep::Fail { error, .. } => {
                assert!(matches!(error, Error::Transport(_)));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sent, RetryPolicy::default().max_attempts);
}

#[test]
fn a_changed_object_fails_at_once_and_drops_the_partial_file() {
    let d = data(2500);
    let mut t = task(&d, &opts().checkpoint(true), None, None);
    assert!(matches!(t.next_step(), DownloadStep::StoreCheckpoint(_)));
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    assert!(f.sync);
    let e = Error::Service(Box::new(crate::error::ServiceError {
        status: 412,
        code: "PreconditionFailed".into(),
        ..Default::default()
    }));
    t.fetched(
        f.id,
        FetchReport {
            written: 0,
            crc64: 0,
            error: Some(e),
        },
    );
    match t.next_step() {
        DownloadStep::Fail {
            error,
            keep_partial: false,
        } => assert_eq!(error.code(), Some("PreconditionFailed")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(t.next_step(), DownloadStep::Exit));
}

#[test]
fn a_checkpoint_resumes_with_only_the_missing_ranges() {
    let d = data(4500);
    let mut t = task(&d, &opts().checkpoint(true), None, None);
    let mut last = None;
    // Pieces 0 and 1 finish; piece 2 is cut after 250 bytes, then the process dies.
    let mut fetched = 0;
    while fetched < 3 {
        match t.next_step() {
            DownloadStep::Fetch(f) => {
                fetched += 1;
                let r = if f.offset == 2000 {
                    cut(&d, &f, 250)
                } else {
                    ok(&d, &f)
                };
                t.fetched(f.id, r);
            }
            DownloadStep::StoreCheckpoint(b) => last = Some(b),
            DownloadStep::Progress { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    while let Some(step) = t.queue.pop_front() {
        if let DownloadStep::StoreCheckpoint(b) = step {
            last = Some(b);
        }
    }
    let saved = last.unwrap();
    let cp: DownloadCheckpoint = serde_json::from_slice(&saved).unwrap();
    assert_eq!(cp.version, DOWNLOAD_CHECKPOINT_VERSION);
    assert_eq!(cp.done.len(), 3);

    let mut t = task(&d, &opts().checkpoint(true), Some(&saved), Some(4500));
    assert!(!t.fresh_temp());
    assert_eq!(t.resumed(), 2250);
    let (fetches, end) = run(&mut t, &d);
    let got: Vec<_> = fetches.iter().map(|f| (f.offset, f.len)).collect();
    assert_eq!(got, vec![(2250, 750), (3000, 1000), (4000, 500)]);
    assert!(matches!(end, DownloadStep::Finish), "{end:?}");

    // Another object, another size of temporary file, or no file: start over.
    let other = data(4501);
    let t = task(&other, &opts().checkpoint(true), Some(&saved), Some(4501));
    assert!(t.fresh_temp());
    let t = task(&d, &opts().checkpoint(true), Some(&saved), Some(10));
    assert!(t.fresh_temp());
    let t = task(&d, &opts().checkpoint(true), Some(b"{torn"), Some(4500));
    assert!(t.fresh_temp());
    let t = task(
        &d,
        &opts().range_size(500).checkpoint(true),
        Some(&saved),
        Some(4500),
    );
    assert!(t.fresh_temp());
    let t = task(&d, &opts(), Some(&saved), Some(4500));
    assert!(t.fresh_temp(), "no checkpoint asked for");
}

#[test]
fn empty_objects_and_bad_options() {
    let mut t = task(b"", &DownloadOptions::default(), None, None);
    let (fetches, end) = run(&mut t, b"");
    assert_eq!(fetches.len(), 1);
    assert!(matches!(end, DownloadStep::Finish));
    let o = DownloadOptions::default().range_size(0);
    assert!(begin(
        DownloadTask::new("b", "k", &info(b"x"), &o, RetryPolicy::default()),
        None,
        None
    )
    .is_err());
    let o = DownloadOptions::default();
    assert!(begin(
        DownloadTask::new("b", "", &info(b"x"), &o, RetryPolicy::default()),
        None,
        None
    )
    .is_err());
}

#[test]
fn temp_and_checkpoint_paths_sit_beside_the_destination() {
    let p = Path::new("/x/y/file.bin");
    assert_eq!(temp_path(p), Path::new("/x/y/file.bin.cos-download"));
    assert_eq!(
        checkpoint_path(p),
        Path::new("/x/y/file.bin.cos-download.checkpoint")
    );
}

#[test]
fn an_answer_must_be_the_range_asked_for_of_the_planned_object() {
    let d = data(2500);
    let mut t = task(&d, &opts(), None, None);
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    assert_eq!((f.offset, f.len), (0, 1000));
    let head = |status: u16, len: u64, range: Option<&str>, etag: &str| {
        let mut b = http::Response::builder()
            .status(status)
            .header("content-length", len.to_string())
            .header("etag", etag);
        if let Some(r) = range {
            b = b.header("content-range", r);
        }
        ObjectInfo::from_headers(&b.body(bytes::Bytes::new()).unwrap())
    };
    let ok = head(206, 1000, Some("bytes 0-999/2500"), "\"e\"");
    f.check_head(&ok, Some((0, 999, 2500))).unwrap();
    // The whole object for a range (a server ignoring Range), another range, another ETag.
    assert!(f.check_head(&head(200, 2500, None, "\"e\""), None).is_err());
    assert!(f
        .check_head(&head(206, 1000, None, "\"e\""), Some((1000, 1999, 2500)))
        .is_err());
    let e = f
        .check_head(&head(206, 1000, None, "\"other\""), Some((0, 999, 2500)))
        .unwrap_err();
    assert!(e.to_string().contains("changed"), "{e}");
    // A whole GET must bring the whole object.
    let mut t = task(&d[..700], &DownloadOptions::default(), None, None);
    let DownloadStep::Fetch(g) = t.next_step() else {
        panic!()
    };
    g.check_head(&head(200, 700, None, "\"e\""), None).unwrap();
    assert!(g.check_head(&head(200, 699, None, "\"e\""), None).is_err());
}

#[test]
fn pause_lets_fetches_in_flight_finish_stores_them_and_resume_fetches_only_the_rest() {
    let d = data(4500);
    let mut t = task(&d, &opts().checkpoint(true), None, None);
    let mut stored = None;
    let mut in_flight = Vec::new();
    // Two fetches go out (concurrency 2), then the owner pauses.
    while in_flight.len() < 2 {
        match t.next_step() {
            DownloadStep::Fetch(f) => in_flight.push(f),
            DownloadStep::StoreCheckpoint(b) => stored = Some(b),
            other => panic!("{other:?}"),
        }
    }
    t.command(Command::Pause);
    assert!(t.is_paused());
    assert!(matches!(t.next_step(), DownloadStep::Wait));
    for f in in_flight.drain(..) {
        t.fetched(f.id, ok(&d, &f));
    }
    // The finished ranges are stored, then Paused, and nothing new starts while paused.
    let mut steps = Vec::new();
    loop {
        match t.next_step() {
            DownloadStep::StoreCheckpoint(b) => stored = Some(b),
            DownloadStep::Progress { .. } => {}
            DownloadStep::Paused => break,
            other => steps.push(format!("{other:?}")),
        }
        assert!(steps.len() < 100, "{:?}", &steps[..10]);
    }
    assert!(steps.is_empty(), "{steps:?}");
    assert!(matches!(t.next_step(), DownloadStep::Paused));
    let cp: DownloadCheckpoint = serde_json::from_slice(&stored.unwrap()).unwrap();
    let done: Vec<_> = cp.done.iter().map(|r| (r.offset, r.len)).collect();
    assert_eq!(done, vec![(0, 1000), (1000, 1000)]);

    t.command(Command::Resume);
    assert!(!t.is_paused());
    let (fetches, end) = run(&mut t, &d);
    let got: Vec<_> = fetches.iter().map(|f| (f.offset, f.len)).collect();
    assert_eq!(got, vec![(2000, 1000), (3000, 1000), (4000, 500)]);
    assert!(matches!(end, DownloadStep::Finish), "{end:?}");
    assert_eq!(t.requests(), 5, "no range fetched twice");
}

#[test]
fn cancel_ends_with_cancelled_removes_the_partial_file_and_ignores_late_reports() {
    let d = data(4500);
    for paused in [false, true] {
        let mut t = task(&d, &opts().checkpoint(true), None, None);
        let f = next_fetch(&mut t);
        if paused {
            t.pause();
        }
        t.command(Command::Cancel);
        match t.next_step() {
            DownloadStep::Fail {
                error: Error::Cancelled,
                keep_partial: false,
            } => {}
            other => panic!("{other:?}"),
        }
        // A report arriving after the cancel changes nothing: no checkpoint is stored again.
        t.fetched(f.id, ok(&d, &f));
        assert!(matches!(t.next_step(), DownloadStep::Exit));
        assert!(!t.is_paused());
        t.resume();
        t.cancel();
        assert!(matches!(t.next_step(), DownloadStep::Exit));
    }
}

/// An object of `size` bytes with ETag `"e"` and no CRC-64 (for plans that fetch nothing).
fn sized(size: u64) -> ObjectInfo {
    let r = http::Response::builder()
        .header("content-length", size.to_string())
        .header("etag", "\"e\"")
        .body(bytes::Bytes::new())
        .unwrap();
    ObjectInfo::from_headers(&r)
}

/// The (offset, len, ranged) of the fetches handed out before the first `Wait`.
fn first_fetches(t: &mut DownloadTask) -> Vec<(u64, u64, bool)> {
    let mut out = Vec::new();
    loop {
        match t.next_step() {
            DownloadStep::Fetch(f) => {
                out.push((f.offset, f.len, f.request.range_value().is_some()))
            }
            DownloadStep::StoreCheckpoint(_) | DownloadStep::Progress { .. } => {}
            _ => return out,
        }
    }
}

#[test]
fn by_default_up_to_16_mib_is_one_get_and_more_is_fetched_in_8_mib_ranges_4_at_a_time() {
    let new = |size: u64| {
        let o = DownloadOptions::default();
        begin(
            DownloadTask::new("b", "k", &sized(size), &o, RetryPolicy::default()),
            None,
            None,
        )
        .unwrap()
    };
    const MIB: u64 = 1 << 20;
    let mut t = new(16 * MIB);
    assert_eq!(first_fetches(&mut t), [(0, 16 * MIB, false)]);
    assert_eq!(t.concurrency(), 1);
    let mut t = new(40 * MIB + 1);
    assert_eq!(t.concurrency(), 4);
    assert_eq!(
        first_fetches(&mut t),
        [
            (0, 8 * MIB, true),
            (8 * MIB, 8 * MIB, true),
            (16 * MIB, 8 * MIB, true),
            (24 * MIB, 8 * MIB, true)
        ]
    );
    assert_eq!(
        (t.size(), t.etag(), t.requests()),
        (40 * MIB + 1, "\"e\"", 4)
    );
}

#[test]
fn an_object_without_etag_is_one_get_whatever_its_size() {
    let r = http::Response::builder()
        .header("content-length", "5000")
        .body(bytes::Bytes::new())
        .unwrap();
    let info = ObjectInfo::from_headers(&r);
    let mut t = begin(
        DownloadTask::new("b", "k", &info, &opts(), RetryPolicy::default()),
        None,
        None,
    )
    .unwrap();
    assert_eq!(t.etag(), "");
    assert_eq!(first_fetches(&mut t), [(0, 5000, false)]);
}

/// A checkpoint is taken only when everything it names matches this download; one field off and the
/// download starts over.
#[test]
fn a_checkpoint_naming_anything_else_is_not_resumed() {
    let d = data(2500);
    let o = opts().checkpoint(true);
    let mut t = task(&d, &o, None, None);
    let DownloadStep::StoreCheckpoint(_) = t.next_step() else {
        panic!()
    };
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    t.fetched(f.id, ok(&d, &f));
    let cp: DownloadCheckpoint = serde_json::from_slice(&t.checkpoint_bytes()).unwrap();
    assert_eq!(cp.done.len(), 1);
    let resumes = |cp: &DownloadCheckpoint| {
        let saved = serde_json::to_vec(cp).unwrap();
        let t = task(&d, &o, Some(&saved), Some(2500));
        assert_eq!(t.resumed() > 0, !t.fresh_temp());
        !t.fresh_temp()
    };
    assert!(resumes(&cp));
    type Change = fn(&mut DownloadCheckpoint);
    let changes: [(&str, Change); 8] = [
        ("version", |c| c.version += 1),
        ("bucket", |c| c.bucket.push('x')),
        ("key", |c| c.key.push('x')),
        ("etag", |c| c.etag.push('x')),
        ("size", |c| c.size += 1),
        ("crc64", |c| c.crc64 = c.crc64.map(|x| x ^ 1)),
        ("no crc64", |c| c.crc64 = None),
        ("range size", |c| c.range_size += 1),
    ];
    for (what, change) in changes {
        let mut other = cp.clone();
        change(&mut other);
        assert!(!resumes(&other), "{what}");
    }
}

/// The ranges of a checkpoint are kept only when each continues a range's done bytes exactly: a gap, an
/// empty range or one longer than its range makes the download start over.
#[test]
fn a_checkpoint_with_ranges_that_do_not_fit_the_plan_is_not_resumed() {
    let d = data(2500);
    let o = opts().checkpoint(true);
    let info = info(&d);
    let cp = |done: &[(u64, u64)]| DownloadCheckpoint {
        version: DOWNLOAD_CHECKPOINT_VERSION,
        bucket: "b-1".into(),
        key: "k".into(),
        etag: "\"e\"".into(),
        size: 2500,
        crc64: info.crc64,
        range_size: 1000,
        done: done
            .iter()
            .map(|&(offset, len)| DoneRange {
                offset,
                len,
                crc64: Crc64::checksum(
                    d.get(offset as usize..(offset + len) as usize)
                        .unwrap_or_default(),
                ),
            })
            .collect(),
    };
    let resumed = |done: &[(u64, u64)]| {
        let saved = serde_json::to_vec(&cp(done)).unwrap();
        let t = task(&d, &o, Some(&saved), Some(2500));
        (!t.fresh_temp()).then(|| t.resumed())
    };
    assert_eq!(
        resumed(&[(0, 400), (400, 600), (1000, 1000), (2000, 1)]),
        Some(2001)
    );
    assert_eq!(resumed(&[(2000, 500)]), Some(500));
    assert_eq!(resumed(&[(1000, 400)]), Some(400));
    assert_eq!(resumed(&[]), Some(0));
    for bad in [
        &[(0, 400), (500, 500)][..], // a gap
        &[(100, 400)],               // not at the start of its range
        &[(0, 0)],                   // empty
        &[(0, 1001)],                // longer than its range
        &[(0, 400), (400, 601)],     // longer than the rest of its range
        &[(0, 1000), (0, 10)],       // again
        &[(2000, 501)],              // past the end
        &[(2500, 1)],                // beyond the object
    ] {
        assert_eq!(resumed(bad), None, "{bad:?}");
    }
    // The resumed download fetches only the rest of a part-done range, as a range.
    let saved = serde_json::to_vec(&cp(&[(1000, 400)])).unwrap();
    let mut t = task(&d, &o, Some(&saved), Some(2500));
    assert_eq!(t.done(), 400);
    assert_eq!(first_fetches(&mut t), [(0, 1000, true), (1400, 600, true)]);
}

/// An object without an ETag is never resumed: nothing proves the bytes on disk are of this version.
#[test]
fn a_checkpoint_of_an_object_without_etag_is_not_resumed() {
    let r = http::Response::builder()
        .header("content-length", "700")
        .body(bytes::Bytes::new())
        .unwrap();
    let info = ObjectInfo::from_headers(&r);
    let o = DownloadOptions::default().checkpoint(true);
    let new = |saved: Option<&[u8]>| {
        begin(
            DownloadTask::new("b", "k", &info, &o, RetryPolicy::default()),
            saved,
            Some(700),
        )
        .unwrap()
    };
    let mut t = new(None);
    let DownloadStep::StoreCheckpoint(_) = t.next_step() else {
        panic!()
    };
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    t.fetched(
        f.id,
        FetchReport {
            written: 300,
            crc64: 1,
            error: Some(Error::Transport(TransportError::new(
                TransportErrorKind::Reset,
                "cut",
            ))),
        },
    );
    let saved = t.checkpoint_bytes();
    let t = new(Some(&saved));
    assert!(t.fresh_temp());
    assert_eq!(t.resumed(), 0);
}

#[test]
fn reports_of_unknown_or_finished_fetches_are_ignored() {
    let d = data(2500);
    let mut t = task(&d, &opts(), None, None);
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    t.fetched(99, ok(&d, &f)); // no such fetch
    t.fetched(1, ok(&d, &f)); // not sent yet
    assert_eq!(t.done(), 0);
    t.fetched(f.id, ok(&d, &f));
    assert!(matches!(
        t.next_step(),
        DownloadStep::Progress {
            done: 1000,
            total: 2500
        }
    ));
    t.fetched(f.id, ok(&d, &f)); // twice
    assert_eq!(t.done(), 1000);
    let (fetches, end) = run(&mut t, &d);
    assert_eq!(fetches.len(), 2);
    assert!(matches!(end, DownloadStep::Finish), "{end:?}");
}

/// The next fetch (skipping progress and checkpoint stores).
fn next_fetch(t: &mut DownloadTask) -> Fetch {
    loop {
        match t.next_step() {
            DownloadStep::Fetch(f) => return f,
            DownloadStep::Progress { .. } | DownloadStep::StoreCheckpoint(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A driver reporting more bytes than the range holds is an error: nothing of it is kept and the range is
/// fetched again; exactly the range's length is fine.
#[test]
fn more_bytes_than_the_range_are_not_kept() {
    let d = data(2500);
    let mut t = task(&d, &opts().concurrency(1), None, None);
    let f = next_fetch(&mut t);
    let mut over = ok(&d, &f);
    over.written += 1;
    t.fetched(f.id, over);
    assert_eq!(t.done(), 0);
    let g = next_fetch(&mut t);
    assert_eq!((g.offset, g.len), (0, 1000));
    assert!(g.delay > Duration::ZERO);
    t.fetched(g.id, ok(&d, &g));
    assert_eq!(t.done(), 1000);
}

/// A body that ends cleanly but short counts as a failed attempt: the rest is fetched after a backoff, and
/// with one attempt allowed the download fails.
#[test]
fn a_short_clean_body_is_a_failed_attempt() {
    let d = data(700);
    let short = |_: &Fetch| FetchReport {
        written: 300,
        crc64: Crc64::checksum(&d[..300]),
        error: None,
    };
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    let f = next_fetch(&mut t);
    t.fetched(f.id, short(&f));
    let g = next_fetch(&mut t);
    assert_eq!((g.offset, g.len), (300, 400));
    assert!(g.delay > Duration::ZERO);

    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let o = DownloadOptions::default();
    let mut t = begin(DownloadTask::new("b", "k", &info(&d), &o, once), None, None).unwrap();
    let f = next_fetch(&mut t);
    t.fetched(f.id, short(&f));
    loop {
        match t.next_step() {
            DownloadStep::Progress { .. } => {}
            DownloadStep::Fail {
                error: Error::Transport(e),
                keep_partial: false,
            } => {
                assert_eq!(e.kind, TransportErrorKind::Reset);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Attempts without progress back off as the retry policy says (its jitter sequence, growing), and a
/// fetch that makes progress starts the count again.
#[test]
fn retries_back_off_as_the_policy_says() {
    let d = data(700);
    let policy = RetryPolicy::default();
    let mut rng = Rng::new(policy.seed);
    let expected = [
        policy.backoff(2, &mut rng),
        policy.backoff(3, &mut rng),
        policy.backoff(2, &mut rng),
    ];
    assert!(expected[1] > expected[0]);
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    let f = next_fetch(&mut t);
    assert_eq!(f.delay, Duration::ZERO);
    t.fetched(f.id, cut(&d, &f, 0));
    let g = next_fetch(&mut t);
    t.fetched(g.id, cut(&d, &g, 0));
    let h = next_fetch(&mut t);
    t.fetched(h.id, cut(&d, &h, 100));
    let i = next_fetch(&mut t);
    assert_eq!([g.delay, h.delay, i.delay], expected);
    assert_eq!((i.offset, i.len), (100, 600));
}

/// Reports of no bytes leave no empty range in the checkpoint (a resume would reject it).
#[test]
fn empty_reports_leave_no_empty_range_in_the_checkpoint() {
    let d = data(2500);
    let o = opts().checkpoint(true).concurrency(1);
    let mut t = task(&d, &o, None, None);
    let f = next_fetch(&mut t);
    t.fetched(f.id, cut(&d, &f, 0));
    let g = next_fetch(&mut t);
    let empty = FetchReport {
        written: 0,
        crc64: 0,
        error: None,
    };
    t.fetched(g.id, empty);
    let h = next_fetch(&mut t);
    assert_eq!((h.offset, h.len), (0, 1000));
    t.fetched(h.id, ok(&d, &h));
    let saved = t.checkpoint_bytes();
    let cp: DownloadCheckpoint = serde_json::from_slice(&saved).unwrap();
    let done: Vec<_> = cp.done.iter().map(|r| (r.offset, r.len)).collect();
    assert_eq!(done, [(0, 1000)]);
    let resumed = task(&d, &o, Some(&saved), Some(2500));
    assert_eq!(resumed.resumed(), 1000);
}

/// A body that failed its own check (its bytes are not kept) ends the download at once, with nothing
/// kept even with a checkpoint.
#[test]
fn a_body_failing_its_own_check_ends_the_download() {
    let d = data(2500);
    let mut t = task(&d, &opts().checkpoint(true), None, None);
    let f = next_fetch(&mut t);
    let e = Error::Integrity(IntegrityError::Crc64 {
        part: None,
        expected: 1,
        actual: 2,
    });
    t.fetched(
        f.id,
        FetchReport {
            written: 1000,
            crc64: 2,
            error: Some(e),
        },
    );
    match t.next_step() {
        DownloadStep::Fail {
            error: Error::Integrity(_),
            keep_partial: false,
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(t.done(), 0);
}

/// A download that runs out of attempts keeps its bytes and checkpoint for a later resume when a checkpoint
/// was asked for, and removes them otherwise.
#[test]
fn out_of_attempts_keeps_the_partial_file_only_with_a_checkpoint() {
    let d = data(700);
    for checkpoint in [false, true] {
        let o = DownloadOptions::default().checkpoint(checkpoint);
        let mut t = task(&d, &o, None, None);
        let keep = loop {
            match t.next_step() {
                DownloadStep::Fetch(f) => {
                    assert!(t.requests() < 100, "retrying forever");
                    t.fetched(f.id, cut(&d, &f, 0))
                }
                DownloadStep::StoreCheckpoint(_) => {}
                DownloadStep::Fail {
                    error: Error::Transport(_),
                    keep_partial,
                } => break keep_partial,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(keep, checkpoint);
    }
}

#[test]
fn pause_after_the_end_changes_nothing() {
    let d = data(100);
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    let (_, end) = run(&mut t, &d);
    assert!(matches!(end, DownloadStep::Finish));
    t.pause();
    assert!(!t.is_paused());
    assert!(matches!(t.next_step(), DownloadStep::Exit));
}

/// After a cut, more bytes than the rest of the range are refused too (nothing of them kept).
#[test]
fn more_bytes_than_the_rest_of_a_continued_range_are_not_kept() {
    let d = data(700);
    let mut t = task(&d, &DownloadOptions::default(), None, None);
    let f = next_fetch(&mut t);
    t.fetched(f.id, cut(&d, &f, 300));
    let g = next_fetch(&mut t);
    assert_eq!((g.offset, g.len), (300, 400));
    let mut over = ok(&d, &g);
    over.written += 1;
    t.fetched(g.id, over);
    assert_eq!(t.done(), 300);
    let h = next_fetch(&mut t);
    assert_eq!((h.offset, h.len), (300, 400));
}

/// With one attempt allowed, a download whose every body arrives whole succeeds: a whole body is no
/// failure.
#[test]
fn whole_bodies_use_no_attempt_of_the_retry_budget() {
    let d = data(2500);
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let mut t = begin(
        DownloadTask::new("b", "k", &info(&d), &opts(), once),
        None,
        None,
    )
    .unwrap();
    let (fetches, end) = run(&mut t, &d);
    assert_eq!(fetches.len(), 3);
    assert!(matches!(end, DownloadStep::Finish), "{end:?}");
}

fn local(msg: &str) -> Error {
    Error::Source(msg.to_string())
}

/// A step the driver could not carry out (a checkpoint it could not store, a rename that failed at
/// `Finish`) ends the download with that error: the partial file is kept for a rerun only when the task
/// keeps a checkpoint, the first failure is the one reported, and a `Fail` already given stands.
#[test]
fn a_local_failure_ends_the_download_keeping_the_partial_file_only_with_a_checkpoint() {
    let d = data(4500);
    for checkpoint in [false, true] {
        // Part-way: a fetch in flight, its late report ignored.
        let mut t = task(&d, &opts().checkpoint(checkpoint), None, None);
        let f = next_fetch(&mut t);
        t.local_failure(local("disk full"));
        t.local_failure(local("second"));
        t.fetched(f.id, ok(&d, &f));
        match t.next_step() {
            DownloadStep::Fail {
                error: Error::Source(m),
                keep_partial,
            } => assert_eq!((m.as_str(), keep_partial), ("disk full", checkpoint)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.next_step(), DownloadStep::Exit));

        // At the end: `Finish` handed out, then the rename fails.
        let mut t = task(&d, &opts().checkpoint(checkpoint), None, None);
        let (_, end) = run(&mut t, &d);
        assert!(matches!(end, DownloadStep::Finish), "{end:?}");
        t.local_failure(local("rename"));
        match t.next_step() {
            DownloadStep::Fail {
                error: Error::Source(m),
                keep_partial,
            } => assert_eq!((m.as_str(), keep_partial), ("rename", checkpoint)),
            other => panic!("{other:?}"),
        }
        t.local_failure(local("again"));
        assert!(matches!(t.next_step(), DownloadStep::Exit));
    }
    // After the task's own `Fail` (cancelled), a local failure changes nothing.
    let mut t = task(&d, &opts(), None, None);
    let _ = next_fetch(&mut t);
    t.cancel();
    t.local_failure(local("late"));
    assert!(matches!(
        t.next_step(),
        DownloadStep::Fail {
            error: Error::Cancelled,
            ..
        }
    ));
    assert!(matches!(t.next_step(), DownloadStep::Exit));
}

/// The local steps come first and in order: `LoadCheckpoint` (only with a checkpoint, asked until
/// answered), then `PrepareTemp`, then the checkpoint's first store; a temporary file that cannot be
/// prepared ends the download before any GET, and a cancel while loading ends it at once.
#[test]
fn the_temporary_file_is_prepared_before_any_fetch() {
    let d = data(2500);
    let new = |o: &DownloadOptions| {
        DownloadTask::new("b-1", "k", &info(&d), o, RetryPolicy::default()).unwrap()
    };
    // A checkpoint that continues the file: opened as it is.
    let mut t = new(&opts().checkpoint(true));
    assert!(matches!(t.next_step(), DownloadStep::LoadCheckpoint));
    let mut first = new(&opts().checkpoint(true));
    first.loaded(None, None);
    let DownloadStep::PrepareTemp {
        create: true,
        size: 2500,
    } = first.next_step()
    else {
        panic!("a fresh file")
    };
    let DownloadStep::StoreCheckpoint(_) = first.next_step() else {
        panic!()
    };
    let DownloadStep::Fetch(f) = first.next_step() else {
        panic!()
    };
    first.fetched(f.id, ok(&d, &f));
    let saved = first.checkpoint_bytes();
    t.loaded(Some(&saved), Some(2500));
    t.loaded(None, None); // answered once: a second answer changes nothing
                          // The kept bytes are checked first, asked until answered.
    for _ in 0..2 {
        let DownloadStep::CheckKept { ranges } = t.next_step() else {
            panic!("the kept bytes are checked")
        };
        assert_eq!(ranges, [(0, 1000)]);
    }
    t.kept(&[Some(Crc64::checksum(&d[..1000]))]);
    t.kept(&[None]); // answered once
    assert!(matches!(
        t.next_step(),
        DownloadStep::PrepareTemp {
            create: false,
            size: 2500
        }
    ));
    assert!(matches!(t.next_step(), DownloadStep::StoreCheckpoint(_)));
    assert!(matches!(
        t.next_step(),
        DownloadStep::Progress {
            done: 1000,
            total: 2500
        }
    ));
    assert_eq!(t.resumed(), 1000);
    // A temporary file of another length: starts over.
    let mut t = new(&opts().checkpoint(true));
    t.loaded(Some(&saved), Some(2499));
    assert!(matches!(
        t.next_step(),
        DownloadStep::PrepareTemp { create: true, .. }
    ));
    // No checkpoint: nothing to load.
    let mut t = new(&opts());
    t.loaded(Some(&saved), Some(2500));
    assert!(matches!(
        t.next_step(),
        DownloadStep::PrepareTemp { create: true, .. }
    ));
    // The file cannot be made: no GET, the failure as told.
    t.local_failure(local("read-only directory"));
    match t.next_step() {
        DownloadStep::Fail {
            error: Error::Source(m),
            keep_partial: false,
        } => assert_eq!(m, "read-only directory"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(t.next_step(), DownloadStep::Exit));
    assert_eq!(t.requests(), 0);
    // Cancelled while loading.
    let mut t = new(&opts().checkpoint(true));
    assert!(matches!(t.next_step(), DownloadStep::LoadCheckpoint));
    t.cancel();
    assert!(matches!(
        t.next_step(),
        DownloadStep::Fail {
            error: Error::Cancelled,
            ..
        }
    ));
    t.loaded(None, None);
    assert!(matches!(t.next_step(), DownloadStep::Exit));
}

/// A HEAD that claims more than any COS object holds is refused before anything is planned (a hostile
/// `Content-Length` cannot exhaust memory), and the largest real objects are split into at most
/// `MAX_RANGES` ranges, whatever `range_size` asks for.
#[test]
fn a_huge_content_length_is_refused_and_ranges_stay_few() {
    let o = DownloadOptions::default().range_size(1);
    for size in [u64::MAX, MAX_OBJECT_SIZE + 1] {
        let e = DownloadTask::new("b", "k", &sized(size), &o, RetryPolicy::default()).unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
        assert!(e.to_string().contains("larger than any COS object"), "{e}");
    }
    let mut t = begin(
        DownloadTask::new(
            "b",
            "k",
            &sized(MAX_OBJECT_SIZE),
            &o,
            RetryPolicy::default(),
        ),
        None,
        None,
    )
    .unwrap();
    assert_eq!(t.pieces.len() as u64, MAX_RANGES);
    let DownloadStep::Fetch(f) = t.next_step() else {
        panic!()
    };
    assert_eq!(f.len, MAX_OBJECT_SIZE / MAX_RANGES);
    // An object within MAX_RANGES ranges keeps the asked size.
    let o = DownloadOptions::default().threshold(0).range_size(1000);
    let t = begin(
        DownloadTask::new("b", "k", &sized(5_000_000), &o, RetryPolicy::default()),
        None,
        None,
    )
    .unwrap();
    assert_eq!(t.pieces.len(), 5000);
    // The checkpoint names the grown range size, so a rerun plans the same ranges and resumes.
    let o = DownloadOptions::default()
        .threshold(0)
        .range_size(1)
        .checkpoint(true);
    let size = 3 * MAX_RANGES + 1;
    let mut t = DownloadTask::new("b", "k", &sized(size), &o, RetryPolicy::default()).unwrap();
    t.loaded(None, None);
    let f = (0..10)
        .find_map(|_| match t.next_step() {
            DownloadStep::Fetch(f) => Some(f),
            _ => None,
        })
        .expect("a fetch within the first steps");
    assert_eq!(f.len, 4);
    t.fetched(
        f.id,
        FetchReport {
            written: f.len,
            crc64: 7,
            error: None,
        },
    );
    let saved = t.checkpoint_bytes();
    let again = begin(
        DownloadTask::new("b", "k", &sized(size), &o, RetryPolicy::default()),
        Some(&saved),
        Some(size),
    )
    .unwrap();
    assert_eq!(again.resumed(), 4);
}

/// Bytes a checkpoint names are trusted only once the file is seen to hold them: a range damaged (or
/// unreadable) since, and the rest of its piece after it, are fetched again, and the download still ends
/// with the object's bytes; a file that holds everything finishes with progress at the total.
#[test]
fn kept_ranges_that_the_file_no_longer_holds_are_fetched_again() {
    let d = data(2500);
    let o = opts().checkpoint(true);
    // A checkpoint naming every byte, the first range in two parts.
    let mut first = task(&d, &o, None, None);
    let (_, end) = run(&mut first, &d);
    assert!(matches!(end, DownloadStep::Finish));
    let mut cp: DownloadCheckpoint = serde_json::from_slice(&first.checkpoint_bytes()).unwrap();
    let whole = cp.done[0];
    let split = |offset: u64, len: u64| DoneRange {
        offset,
        len,
        crc64: Crc64::checksum(&d[offset as usize..(offset + len) as usize]),
    };
    cp.done.splice(0..1, [split(0, 300), split(300, 700)]);
    assert_eq!(whole.len, 1000);
    let saved = serde_json::to_vec(&cp).unwrap();
    type Crcs<'a> = &'a dyn Fn(&[(u64, u64)]) -> Vec<Option<u64>>;
    let start = |crcs: Crcs| {
        let mut t = DownloadTask::new("b-1", "k", &info(&d), &o, RetryPolicy::default()).unwrap();
        t.loaded(Some(&saved), Some(2500));
        let DownloadStep::CheckKept { ranges } = t.next_step() else {
            panic!("checked")
        };
        assert_eq!(ranges, [(0, 300), (300, 700), (1000, 1000), (2000, 500)]);
        t.kept(&crcs(&ranges));
        assert!(matches!(
            t.next_step(),
            DownloadStep::PrepareTemp { create: false, .. }
        ));
        t
    };
    let truth = |ranges: &[(u64, u64)]| -> Vec<Option<u64>> {
        ranges
            .iter()
            .map(|&(o, l)| Some(Crc64::checksum(&d[o as usize..(o + l) as usize])))
            .collect()
    };
    // All held: nothing to fetch, progress at the total, finished.
    let mut t = start(&truth);
    assert_eq!(t.resumed(), 2500);
    let mut steps = Vec::new();
    loop {
        match t.next_step() {
            DownloadStep::Finish => break,
            DownloadStep::Fetch(f) => panic!("fetched {f:?}"),
            other => steps.push(format!("{other:?}")),
        }
        assert!(steps.len() < 100, "{:?}", &steps[..10]);
    }
    assert!(
        steps
            .last()
            .unwrap()
            .starts_with("Progress { done: 2500, total: 2500"),
        "{steps:?}"
    );
    // The first part of range 0 damaged, range 1000.. unreadable: both fetched again, range 2000.. kept.
    let mut t = start(&|r: &[(u64, u64)]| {
        let mut c = truth(r);
        c[0] = c[0].map(|x| x ^ 1);
        c[2] = None;
        c
    });
    assert_eq!(t.resumed(), 500);
    let (fetches, end) = run(&mut t, &d);
    let got: Vec<(u64, u64)> = fetches.iter().map(|f| (f.offset, f.len)).collect();
    assert_eq!(got, [(0, 1000), (1000, 1000)]);
    assert!(matches!(end, DownloadStep::Finish));
    // Only the second part damaged: the first part is kept, the rest of its range fetched.
    let mut t = start(&|r: &[(u64, u64)]| {
        let mut c = truth(r);
        c[1] = Some(0);
        c
    });
    assert_eq!(t.resumed(), 300 + 1000 + 500);
    let (fetches, _) = run(&mut t, &d);
    let got: Vec<(u64, u64)> = fetches.iter().map(|f| (f.offset, f.len)).collect();
    assert_eq!(got, [(300, 700)]);
}
