//! Uploads: single PUT and multipart, resume from a checkpoint or by search, batches, streams, faults, and
//! the task queue's pause / resume / cancel.

use super::*;

pub fn a_small_file_is_one_put<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("small");
    let data = pattern(100_000, 1);
    let path = d.file("small.bin", &data);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    let options = UploadOptions::default().on_progress(move |p| r.lock().unwrap().push(*p));
    let out = client
        .upload_file(&path, "dir/small.bin", &options)
        .unwrap();
    let c = server.counters();
    assert_eq!((c.total, c.get("PutObject")), (1, 1), "{c:?}");
    assert_eq!(out.parts, 0);
    assert_eq!(out.upload_id, None);
    assert_eq!(out.total_len, data.len() as u64);
    assert_eq!(out.crc64, Some(Crc64::checksum(&data)));
    assert_eq!(stored(&server, "dir/small.bin"), data);
    let last = *reports.lock().unwrap().last().unwrap();
    assert_eq!((last.loaded, last.percent), (data.len() as u64, Some(1.0)));

    // An empty file is one empty PUT too.
    let empty = d.file("empty", b"");
    client
        .upload_file(&empty, "empty", &UploadOptions::default())
        .unwrap();
    assert_eq!(stored(&server, "empty"), b"");

    // At exactly the threshold it is still one PUT; one byte more is a multipart upload.
    let path = d.file("edge.bin", &pattern(MIB, 2));
    client
        .upload_file(&path, "edge", &UploadOptions::default())
        .unwrap();
    assert_eq!(server.counters().get("PutObject"), 3);
    let path = d.file("over.bin", &pattern(MIB + 1, 3));
    let out = client
        .upload_file(&path, "over", &UploadOptions::default())
        .unwrap();
    assert_eq!(out.parts, 2);
    assert_eq!(server.counters().get("PutObject"), 3);
}

pub fn bad_input_fails_before_sending<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("badinput");
    let path = d.file("a.bin", b"abc");
    let e = client
        .upload_file(&path, "folder/", &UploadOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::Key { .. })),
        "{e:?}"
    );
    let e = client
        .upload_stream(
            Box::new(io::Cursor::new(b"abc".to_vec())),
            "folder/",
            &UploadOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::Key { .. })),
        "{e:?}"
    );
    let e = client
        .upload_file(
            &d.path("missing.bin"),
            "missing.bin",
            &UploadOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::Source(_)), "{e:?}");
    let e = client
        .upload_file(
            &path,
            "a.bin",
            &UploadOptions::default().part_size(1000).threshold(0),
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidInput(InvalidInput::Size { .. })),
        "{e:?}"
    );
    assert_eq!(server.counters().total, 0);
}

pub fn a_multipart_upload_sends_parts_and_verifies_the_crc<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("multipart");
    let data = pattern(21 * MIB + 123, 4);
    let path = d.file("big.bin", &data);
    let out = client
        .upload_file(
            &path,
            "big/file.bin",
            &mib_parts().concurrency(4).object(ObjectOptions {
                content_type: Some("application/x-test".into()),
                ..Default::default()
            }),
        )
        .unwrap();
    assert_eq!(out.parts, 22);
    assert!(out.upload_id.is_some());
    assert!(out.etag.ends_with("-22\""), "{}", out.etag);
    assert_eq!(out.crc64, Some(Crc64::checksum(&data)));
    let obj = server.object("big/file.bin").unwrap();
    assert_eq!(obj.content_type, "application/x-test");
    assert_eq!(obj.crc64, Crc64::checksum(&data));
    assert!(obj.data.unwrap() == data, "byte-identical");
    let c = server.counters();
    assert_eq!(c.get("UploadPart"), 22, "{c:?}");
    assert_eq!(c.get("InitiateMultipartUpload"), 1);
    assert_eq!(c.get("CompleteMultipartUpload"), 1);
    assert_eq!(
        c.get("ListMultipartUploads"),
        1,
        "looked for an unfinished upload"
    );
    assert!(server.multipart_uploads().is_empty());
}

pub fn an_interrupted_upload_resumes_from_its_checkpoint_with_only_the_missing_parts<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("resume");
    let data = pattern(10 * MIB, 6);
    let path = d.file("r.bin", &data);
    let cp_path = d.path("r.checkpoint.json");
    let options = mib_parts().checkpoint(&cp_path);
    let e = crash_after_four_parts::<D>(&server, &path, "r.bin", &options);
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == cos_core::error::TransportErrorKind::Reset),
        "the part's cause: {e:?}"
    );
    let cp: Checkpoint = serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    assert_eq!(
        cp.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        server.multipart_uploads().len(),
        1,
        "the upload is kept for resumption"
    );

    let before = server.counters();
    let out = client
        .upload_file(&path, "r.bin", &options.clone().concurrency(3))
        .unwrap();
    let after = server.counters();
    let delta = |op: &str| after.get(op) - before.get(op);
    assert_eq!(delta("UploadPart"), 6, "{after:?}");
    assert_eq!(delta("ListParts"), 1);
    assert_eq!(delta("InitiateMultipartUpload"), 0);
    assert_eq!(
        delta("ListMultipartUploads"),
        0,
        "the checkpoint is used first"
    );
    assert_eq!(out.upload_id.as_deref(), Some(cp.upload_id.as_str()));
    assert!(stored(&server, "r.bin") == data);
    assert!(
        !cp_path.exists(),
        "a finished upload deletes its checkpoint"
    );
    assert!(server.multipart_uploads().is_empty());
}

pub fn a_changed_file_aborts_the_stale_upload_and_starts_over<D: Driver>() {
    let server = Server::builder().start_blocking().unwrap();
    let d = TempDir::new::<D>("changed");
    for (round, same_size) in [(0u32, false), (1, true)] {
        let key = format!("c{round}.bin");
        let path = d.file(&format!("c{round}.bin"), &pattern(8 * MIB, 7));
        let cp_path = d.path(&format!("c{round}.json"));
        let options = mib_parts().checkpoint(&cp_path);
        crash_after_four_parts::<D>(&server, &path, &key, &options);
        let stale = server.multipart_uploads();
        assert_eq!(stale.len(), 1);

        // Another size, or the same size with other bytes and a later modification time.
        let data = if same_size {
            pattern(8 * MIB, 9)
        } else {
            pattern(8 * MIB + 5, 8)
        };
        std::fs::write(&path, &data).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        drop(f);
        let restarted = Arc::new(AtomicUsize::new(0));
        let r = restarted.clone();
        let client = D::build(
            config(&server, 4),
            Some(Arc::new(move |e: &Event| {
                if matches!(e, Event::Restarted { .. }) {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            })),
        );
        let before = server.counters();
        let out = client.upload_file(&path, &key, &options).unwrap();
        let after = server.counters();
        assert_eq!(restarted.load(Ordering::SeqCst), 1);
        assert_eq!(
            after.get("AbortMultipartUpload") - before.get("AbortMultipartUpload"),
            1
        );
        assert_eq!(
            after.get("InitiateMultipartUpload") - before.get("InitiateMultipartUpload"),
            1
        );
        let parts = data.len().div_ceil(MIB) as u64;
        assert_eq!(after.get("UploadPart") - before.get("UploadPart"), parts);
        assert_ne!(out.upload_id.as_deref(), Some(stale[0].1.as_str()));
        assert!(stored(&server, &key) == data);
        assert!(
            server.multipart_uploads().is_empty(),
            "the stale upload was aborted"
        );
        assert!(!cp_path.exists());
    }
}

pub fn without_a_checkpoint_the_unfinished_upload_is_found_and_parts_are_checked_by_md5<
    D: Driver,
>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("unfinished");
    let mut data = pattern(10 * MIB, 9);
    let path = d.file("u.bin", &data);
    crash_after_four_parts::<D>(&server, &path, "u.bin", &mib_parts());
    let upload = server.multipart_uploads();
    assert_eq!(upload.len(), 1);

    // Part 2 changes locally (same size): its MD5 no longer matches the server's, so it is sent again.
    data[MIB + 10] ^= 0xff;
    std::fs::write(&path, &data).unwrap();
    let before = server.counters();
    let out = client.upload_file(&path, "u.bin", &mib_parts()).unwrap();
    let after = server.counters();
    let delta = |op: &str| after.get(op) - before.get(op);
    assert_eq!(delta("ListMultipartUploads"), 1);
    assert_eq!(delta("ListParts"), 1);
    assert_eq!(delta("InitiateMultipartUpload"), 0);
    assert_eq!(delta("UploadPart"), 7, "parts 5-10, and part 2 again");
    assert_eq!(out.upload_id.as_deref(), Some(upload[0].1.as_str()));
    assert!(stored(&server, "u.bin") == data);
    assert!(server.multipart_uploads().is_empty());

    // With resume_unfinished off, a new upload is started (and the old one is left alone).
    crash_after_four_parts::<D>(&server, &path, "u2.bin", &mib_parts());
    let before = server.counters();
    client
        .upload_file(&path, "u2.bin", &mib_parts().resume_unfinished(false))
        .unwrap();
    let after = server.counters();
    assert_eq!(
        after.get("ListMultipartUploads"),
        before.get("ListMultipartUploads")
    );
    assert_eq!(after.get("UploadPart") - before.get("UploadPart"), 10);
    assert_eq!(
        server.multipart_uploads().len(),
        1,
        "the crashed one remains"
    );
}

pub fn add_meta_md5_hashes_the_file_first<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("md5");
    for (name, len) in [("small", 1000), ("big", 3 * MIB + 1)] {
        let data = pattern(len, 10);
        let path = d.file(name, &data);
        let hashed = Arc::new(AtomicU64::new(0));
        let h = hashed.clone();
        let options = mib_parts()
            .add_meta_md5(true)
            .on_hash_progress(move |p| h.store(p.loaded, Ordering::SeqCst));
        client.upload_file(&path, name, &options).unwrap();
        let obj = server.object(name).unwrap();
        assert_eq!(obj.metadata.get("md5"), Some(&md5_hex(&data)), "{name}");
        assert_eq!(hashed.load(Ordering::SeqCst), len as u64, "{name}");
        assert!(obj.data.unwrap() == data);
    }
}

pub fn a_batch_uploads_every_file_even_when_one_fails<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("batch");
    let sizes = [0, 500_000, 3 * MIB + MIB / 2, 2 * MIB + 1, 7];
    let mut files = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let p = d.file(&format!("f{i}"), &pattern(*len, 20 + i as u32));
        files.push(FileUpload::new(p, format!("batch/f{i}")));
    }
    files.insert(2, FileUpload::new(d.path("missing"), "batch/missing"));
    files.push(FileUpload::new(d.path("f0"), "batch/folder/"));
    let done = Arc::new(AtomicUsize::new(0));
    let dn = done.clone();
    let options = BatchOptions::default()
        .file_parallel(2)
        .upload(mib_parts().concurrency(2))
        .on_file_done(move |_, _| {
            dn.fetch_add(1, Ordering::SeqCst);
        });
    let results = client.upload_files(files.clone(), &options);
    assert_eq!(results.len(), files.len());
    assert_eq!(done.load(Ordering::SeqCst), files.len());
    for (f, r) in files.iter().zip(&results) {
        match f.key.as_str() {
            "batch/missing" => assert!(matches!(r, Err(Error::Source(_))), "{r:?}"),
            "batch/folder/" => assert!(matches!(r, Err(Error::InvalidInput(_))), "{r:?}"),
            key => {
                let out = r.as_ref().unwrap();
                assert_eq!(out.key, key);
                assert!(
                    stored(&server, key) == std::fs::read(&f.path).unwrap(),
                    "{key}"
                );
            }
        }
    }
    assert!(server.multipart_uploads().is_empty());
}

/// With MD5 on, the parts of several files in flight at once are hashed two at a time in one pool:
/// every part's MD5 must still match the ETag the server computed from the bytes it got (a chunk fed to
/// the wrong part would fail the upload), and every object is byte-identical.
pub fn md5_on_verifies_every_part_etag_while_parts_in_flight_share_the_hashing<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("md5-parts");
    let mut files = Vec::new();
    for (i, len) in [5 * MIB + 77, 4 * MIB + MIB / 3, 3 * MIB + 1]
        .iter()
        .enumerate()
    {
        let p = d.file(&format!("m{i}"), &pattern(*len, 40 + i as u32));
        files.push(FileUpload::new(p, format!("md5/m{i}")));
    }
    let options = BatchOptions::default()
        .file_parallel(3)
        .upload(mib_parts().concurrency(3).verify_md5(true));
    let results = client.upload_files(files.clone(), &options);
    for (f, r) in files.iter().zip(&results) {
        let out = r.as_ref().unwrap();
        assert!(out.parts > 1, "{out:?}");
        assert!(
            stored(&server, &f.key) == std::fs::read(&f.path).unwrap(),
            "{}",
            f.key
        );
    }
    assert!(server.multipart_uploads().is_empty());
}

pub fn faults_are_retried_and_the_object_is_byte_identical<D: Driver>() {
    let d = TempDir::new::<D>("faults");
    let data = pattern(6 * MIB + 7, 30);
    let path = d.file("f.bin", &data);
    let small = d.file("s.bin", &data[..300_000]);
    let mut injected = 0;
    for seed in [1, 2, 3, 4] {
        let plan = FaultPlan::parse("500:0.05,503:0.05,reset:0.03,stall=300ms:0.02")
            .unwrap()
            .seed(seed);
        let server = Server::builder().faults(plan).start_blocking().unwrap();
        let client = client::<D>(&server, 12);
        let out = client
            .upload_file(&path, "f.bin", &mib_parts().concurrency(3))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(out.crc64, Some(Crc64::checksum(&data)));
        client.upload_file(&small, "s.bin", &mib_parts()).unwrap();
        client
            .upload_stream(
                Box::new(io::Cursor::new(data.clone())),
                "stream.bin",
                &mib_parts(),
            )
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(stored(&server, "f.bin") == data, "seed {seed}");
        assert!(stored(&server, "s.bin") == data[..300_000]);
        assert!(stored(&server, "stream.bin") == data, "seed {seed}");
        assert!(server.multipart_uploads().is_empty());
        injected += server.faults().injected().len();
    }
    assert!(injected > 0, "faults were injected");
}

/// A reader that hands out at most 7,777 bytes per read, and can fail after a number of bytes.
struct Trickle {
    data: io::Cursor<Vec<u8>>,
    fail_after: Option<u64>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fail_after.is_some_and(|n| self.data.position() >= n) {
            return Err(io::Error::other("the pipe broke"));
        }
        let n = buf.len().min(7_777);
        self.data.read(&mut buf[..n])
    }
}

pub fn streams_end_on_before_and_after_part_boundaries<D: Driver>() {
    let (server, client) = start::<D>();
    let cases = [
        (0, 0, 1),
        (MIB - 1, 0, 1), // ends within the first part: a single PUT
        (MIB, 1, 0),     // exactly one full part: a one-part multipart upload
        (MIB + 1, 2, 0),
        (3 * MIB - 1, 3, 0),
        (3 * MIB, 3, 0),
        (3 * MIB + 1, 4, 0),
    ];
    for (i, (len, parts, puts)) in cases.into_iter().enumerate() {
        let data = pattern(len, 40 + i as u32);
        let key = format!("stream/{i}");
        let before = server.counters();
        let reader = Trickle {
            data: io::Cursor::new(data.clone()),
            fail_after: None,
        };
        let out = client
            .upload_stream(Box::new(reader), &key, &mib_parts().concurrency(2))
            .unwrap_or_else(|e| panic!("{len}: {e}"));
        let after = server.counters();
        assert_eq!(out.total_len, len as u64);
        assert_eq!(out.parts, parts as u32, "{len}");
        assert_eq!(
            after.get("UploadPart") - before.get("UploadPart"),
            parts,
            "{len}"
        );
        assert_eq!(
            after.get("PutObject") - before.get("PutObject"),
            puts,
            "{len}"
        );
        assert!(stored(&server, &key) == data, "{len}");

        // The same bytes as a stream of uneven chunks.
        let mut chunks = Vec::new();
        let mut rest = Bytes::from(data.clone());
        let mut size = 1;
        while !rest.is_empty() {
            chunks.push(rest.split_to(size.min(rest.len())));
            size = size * 7 % 300_007 + 1;
        }
        let key = format!("stream/chunks-{i}");
        let out = client
            .upload_chunks(chunks, &key, &mib_parts().concurrency(4))
            .unwrap_or_else(|e| panic!("{len}: {e}"));
        assert_eq!(out.parts, parts as u32, "{key}");
        assert!(stored(&server, &key) == data, "{key}");
    }
    assert!(server.multipart_uploads().is_empty());
}

pub fn a_failing_reader_is_a_source_error_and_leaves_no_upload<D: Driver>() {
    let (server, client) = start::<D>();
    for fail_after in [0, MIB as u64 / 2, 5 * MIB as u64 / 2] {
        let reader = Trickle {
            data: io::Cursor::new(pattern(4 * MIB, 50)),
            fail_after: Some(fail_after),
        };
        let e = client
            .upload_stream(Box::new(reader), "broken", &mib_parts().concurrency(2))
            .unwrap_err();
        assert!(
            matches!(&e, Error::Source(m) if m.contains("the pipe broke")),
            "{e:?}"
        );
        assert!(server.multipart_uploads().is_empty(), "{fail_after}");
        assert!(server.object("broken").is_none());
    }
    let c = server.counters();
    assert_eq!(c.get("InitiateMultipartUpload"), 1, "{c:?}");
    assert_eq!(c.get("AbortMultipartUpload"), 1, "{c:?}");
}

pub fn add_meta_md5_is_refused_for_a_stream<D: Driver>() {
    let (server, client) = start::<D>();
    let e = client
        .upload_stream(
            Box::new(io::Cursor::new(b"abc".to_vec())),
            "x",
            &UploadOptions::default().add_meta_md5(true),
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert_eq!(server.counters().total, 0);
}

pub fn stream_memory_stays_within_concurrency_plus_one_parts<D: Driver>() {
    // The reader may run ahead of the confirmed bytes by at most (concurrency + 1) parts.
    let server = slow_server(30);
    let confirmed = Arc::new(AtomicU64::new(0));
    let c = confirmed.clone();
    let client = D::build(
        config(&server, 4),
        Some(Arc::new(move |e: &Event| {
            if let Event::PartCompleted { len, .. } = e {
                c.fetch_add(*len, Ordering::SeqCst);
            }
        })),
    );
    struct Watch {
        inner: io::Cursor<Vec<u8>>,
        confirmed: Arc<AtomicU64>,
        max_ahead: Arc<AtomicU64>,
    }
    impl Read for Watch {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            let ahead = self.inner.position() - self.confirmed.load(Ordering::SeqCst);
            self.max_ahead.fetch_max(ahead, Ordering::SeqCst);
            Ok(n)
        }
    }
    let data = pattern(12 * MIB, 60);
    let max_ahead = Arc::new(AtomicU64::new(0));
    let w = Watch {
        inner: io::Cursor::new(data.clone()),
        confirmed,
        max_ahead: max_ahead.clone(),
    };
    client
        .upload_stream(Box::new(w), "mem", &mib_parts().concurrency(2))
        .unwrap();
    assert!(stored(&server, "mem") == data);
    let max_ahead = max_ahead.load(Ordering::SeqCst);
    assert!(max_ahead <= 3 * MIB as u64, "{max_ahead} bytes read ahead");
    assert!(
        max_ahead > MIB as u64,
        "parts were read ahead while others were sent"
    );
}

pub fn cancel_aborts_the_upload_and_leaves_nothing<D: Driver>() {
    let server = slow_server(40);
    let client = client::<D>(&server, 4);
    let d = TempDir::new::<D>("cancel");
    let path = d.file("c.bin", &pattern(20 * MIB, 70));
    let cp = d.path("c.json");
    let queue = client.task_queue(2);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let id = queue.add(
        &path,
        "cancel/c.bin",
        mib_parts()
            .concurrency(2)
            .checkpoint(&cp)
            .on_progress(move |p| {
                let _ = tx.lock().unwrap().send(p.loaded);
            }),
    );
    // Cancel once some parts are confirmed.
    while rx.recv_timeout(Duration::from_secs(10)).unwrap() < 2 * MIB as u64 {}
    queue.cancel(id);
    assert!(matches!(queue.wait(id), Err(Error::Cancelled)));
    assert_eq!(queue.list()[0].state, TaskState::Canceled);
    queue.wait_all();
    assert!(
        server.multipart_uploads().is_empty(),
        "{:?}",
        server.multipart_uploads()
    );
    assert!(server.object("cancel/c.bin").is_none());
    assert!(!cp.exists());
    assert_eq!(server.counters().get("AbortMultipartUpload"), 1);
}

pub fn pause_keeps_the_checkpoint_and_resume_sends_only_the_missing_parts<D: Driver>() {
    let server = slow_server(40);
    let client = client::<D>(&server, 4);
    let d = TempDir::new::<D>("pause");
    let data = pattern(12 * MIB, 80);
    let path = d.file("p.bin", &data);
    let small = d.file("s.bin", b"small file");
    let cp = d.path("p.json");
    let queue = client.task_queue(1);
    let changes = Arc::new(AtomicUsize::new(0));
    let ch = changes.clone();
    queue.on_change(Box::new(move || {
        ch.fetch_add(1, Ordering::SeqCst);
    }));
    let id = queue.add(
        &path,
        "pause/p.bin",
        mib_parts().concurrency(2).checkpoint(&cp),
    );
    let other = queue.add(&small, "pause/s.bin", UploadOptions::default());
    assert_eq!(
        queue.list()[1].state,
        TaskState::Waiting,
        "one file at a time"
    );
    until("three parts sent", || {
        server.counters().get("UploadPart") >= 3
    });
    queue.pause(id);
    assert_eq!(queue.list()[0].state, TaskState::Paused);
    // The paused task frees its slot: the small file goes through meanwhile.
    assert!(queue.wait(other).is_ok());
    queue.wait_all();
    let saved: Checkpoint = serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    let kept = saved.parts.len() as u64;
    assert!((3..12).contains(&kept), "{kept} parts kept");
    assert_eq!(
        server.counters().get("UploadPart"),
        kept,
        "a pause lets the parts in flight finish, and the checkpoint holds them all"
    );
    assert_eq!(server.multipart_uploads().len(), 1);
    let before = server.counters();
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(server.counters(), before, "nothing is sent while paused");

    queue.resume(id);
    let out = queue.wait(id).unwrap();
    let after = server.counters();
    assert_eq!(
        after.get("UploadPart") - before.get("UploadPart"),
        12 - kept
    );
    assert_eq!(after.get("InitiateMultipartUpload"), 1);
    assert_eq!(out.upload_id.as_deref(), Some(saved.upload_id.as_str()));
    assert!(stored(&server, "pause/p.bin") == data);
    assert!(!cp.exists());
    let list = queue.list();
    assert_eq!(list[0].state, TaskState::Success);
    assert_eq!(list[0].progress.map(|p| p.loaded), Some(12 * MIB as u64));
    assert!(changes.load(Ordering::SeqCst) >= 4);
    assert!(server.multipart_uploads().is_empty());
}

pub fn a_paused_task_cancelled_later_aborts_its_upload<D: Driver>() {
    let server = slow_server(30);
    let client = client::<D>(&server, 4);
    let d = TempDir::new::<D>("pausecancel");
    let path = d.file("p.bin", &pattern(8 * MIB, 90));
    let other = d.file("o.bin", &pattern(16 * MIB, 91));
    let queue = client.task_queue(2);
    // No checkpoint given: the queue derives one.
    let id = queue.add(&path, "pc.bin", mib_parts().concurrency(2));
    // Another task is cancelled while it runs.
    let running = queue.add(&other, "running.bin", mib_parts().concurrency(2));
    until("progress", || {
        queue.list()[0]
            .progress
            .is_some_and(|p| p.loaded >= MIB as u64)
    });
    queue.pause(id);
    queue.cancel(running);
    assert!(matches!(queue.wait(running), Err(Error::Cancelled)));
    queue.wait_all();
    assert_eq!(queue.list()[0].state, TaskState::Paused);
    assert_eq!(server.multipart_uploads().len(), 1);
    queue.cancel(id);
    assert!(matches!(queue.wait(id), Err(Error::Cancelled)));
    queue.wait_all();
    assert!(
        server.multipart_uploads().is_empty(),
        "{:?}",
        server.multipart_uploads()
    );
    assert!(server.object("pc.bin").is_none() && server.object("running.bin").is_none());
    let states: Vec<_> = queue.list().iter().map(|t| t.state).collect();
    assert_eq!(states, [TaskState::Canceled, TaskState::Canceled]);

    // A failed task is listed with its error and can be resumed.
    let bad = queue.add(&d.path("missing"), "missing", UploadOptions::default());
    assert!(matches!(queue.wait(bad), Err(Error::Source(_))));
    let info = queue.list().into_iter().find(|t| t.id == bad).unwrap();
    assert_eq!(info.state, TaskState::Error);
    assert!(matches!(info.error, Some(Error::Source(_))));
    std::fs::write(d.path("missing"), b"now it exists").unwrap();
    queue.resume(bad);
    queue.wait(bad).unwrap();
    assert_eq!(stored(&server, "missing"), b"now it exists");
}

pub fn a_corrupt_or_foreign_checkpoint_is_a_typed_error_and_nothing_is_sent<D: Driver>() {
    let (server, client) = start::<D>();
    let d = TempDir::new::<D>("badcheckpoint");
    let file = d.file("f.bin", &pattern(3 * MIB, 9));
    let cp = d.path("f.checkpoint");
    // Not a checkpoint at all.
    std::fs::write(&cp, "{ not json").unwrap();
    let err = client
        .upload_file(&file, "cp/a.bin", &mib_parts().checkpoint(&cp))
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidInput(InvalidInput::Checkpoint(_))),
        "{err}"
    );
    // A real checkpoint, of another key: resuming it would write the wrong object.
    let other = Checkpoint {
        version: cos_core::upload::CHECKPOINT_VERSION,
        bucket: server.bucket().to_string(),
        key: "cp/other.bin".into(),
        upload_id: "u-1".into(),
        part_size: MIB as u64,
        total_len: 3 * MIB as u64,
        source: cos_core::upload::SourceFingerprint::new(3 * MIB as u64, None),
        parts: vec![],
        lease: None,
    };
    std::fs::write(&cp, serde_json::to_vec(&other).unwrap()).unwrap();
    let err = client
        .upload_file(&file, "cp/a.bin", &mib_parts().checkpoint(&cp))
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
}

/// The server's request log, kept as `(operation, start, end)` spans: the end is when the line is written
/// (the answer's head is out), the start that less the logged duration.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<(Vec<u8>, Vec<Span>)>>);

/// A request's operation, and when the server started and answered it.
type Span = (String, Instant, Instant);

impl io::Write for Spans {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let now = Instant::now();
        let mut g = self.0.lock().unwrap();
        g.0.extend_from_slice(buf);
        while let Some(i) = g.0.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = g.0.drain(..=i).collect();
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let took = Duration::from_secs_f64(v["duration_ms"].as_f64().unwrap() / 1e3);
            g.1.push((
                v["operation"].as_str().unwrap().to_string(),
                now - took,
                now,
            ));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Spans {
    /// The most `op` requests the server was serving at once (spans that overlap by more than 1 ms).
    fn max_open(&self, op: &str) -> usize {
        let g = self.0.lock().unwrap();
        let spans: Vec<_> = g.1.iter().filter(|s| s.0 == op).collect();
        spans
            .iter()
            .map(|a| {
                let at = a.1 + Duration::from_millis(1);
                spans.iter().filter(|b| b.1 <= at && at < b.2).count()
            })
            .max()
            .unwrap_or(0)
    }

    fn clear(&self) {
        self.0.lock().unwrap().1.clear();
    }
}

pub fn parts_go_out_in_parallel_up_to_the_concurrency_asked<D: Driver>() {
    // Every request stalls 100 ms before the server reads its body, so the parts in flight overlap.
    let spans = Spans::default();
    let plan = FaultPlan::new()
        .with(Fault::Stall(Duration::from_millis(100)), 1.0)
        .unwrap();
    let server = Server::builder()
        .faults(plan)
        .request_log(cos_testkit::RequestLog::new(spans.clone()))
        .start_blocking()
        .unwrap();
    let client = client::<D>(&server, 4);
    let d = TempDir::new::<D>("parallel");
    let data = pattern(20 * MIB + 12_345, 2);
    let path = d.file("big.bin", &data);
    let out = client
        .upload_file(&path, "dir/big.bin", &mib_parts().concurrency(4))
        .unwrap();
    assert_eq!(out.parts, 21);
    assert!(out.etag.ends_with("-21\""), "{}", out.etag);
    let c = server.counters();
    assert_eq!(c.get("UploadPart"), 21, "{c:?}");
    assert_eq!(c.get("InitiateMultipartUpload"), 1);
    assert_eq!(c.get("CompleteMultipartUpload"), 1);
    assert!(stored(&server, "dir/big.bin") == data, "byte-identical");
    assert!(server.multipart_uploads().is_empty());
    assert_eq!(
        spans.max_open("UploadPart"),
        4,
        "4 parts in flight at most, and at times"
    );

    // One at a time when asked.
    spans.clear();
    let out = client
        .upload_file(
            &path,
            "dir/big1.bin",
            &mib_parts().concurrency(1).part_size(4 * MIB as u64),
        )
        .unwrap();
    assert_eq!(out.parts, 6);
    assert_eq!(spans.max_open("UploadPart"), 1);
    assert!(stored(&server, "dir/big1.bin") == data);
}
