//! Recovery paths of [`MultipartUpload`] (issue 18): what is sent next, and what the task ends with, after
//! failures of the control requests (List Parts, HEAD, Abort, List Multipart Uploads), plus input checks
//! of the stream and upload options. Uses the fake COS and the driver of the parent `tests` module.

use super::*;
use crate::error::InvalidInput;

/// Runs a fresh upload until it has sent its Complete (not delivered), drops it, and returns the last
/// checkpoint it asked to persist: every part is claimed.
fn checkpoint_with_every_part(h: &mut Harness) -> Checkpoint {
    let mut task = new_task();
    let _complete = run_until_sent(h, &mut task, "CompleteMultipartUpload");
    drop(task);
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    assert_eq!(cp.parts.len(), 20);
    cp
}

/// A checkpoint of an upload with some parts done, the process killed mid-way.
fn checkpoint_mid_way(h: &mut Harness) -> Checkpoint {
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(30)) else {
        panic!()
    };
    h.crash();
    let cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
    assert!(cp.parts.len() >= 5, "{}", cp.parts.len());
    cp
}

fn restarted(h: &Harness) -> bool {
    h.events()
        .iter()
        .any(|e| matches!(e, Event::Restarted { .. }))
}

#[test]
fn a_temporary_list_parts_failure_on_resume_is_retried_and_keeps_the_parts() {
    let mut h = Harness::new();
    let cp = checkpoint_mid_way(&mut h);
    let id = cp.upload_id.clone();
    let kept = cp.parts.len();
    h.transcript.clear();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("ListParts", 1) => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(out.upload_id.as_deref(), Some(id.as_str()), "same upload");
    assert!(!restarted(&h));
    let lists = h.sends("ListParts");
    assert_eq!((lists[0].1, lists[1].1), (1, 2), "the same page again");
    assert!(lists[1].2 > lists[0].2, "after a backoff");
    assert!(h.sends("InitiateMultipartUpload").is_empty());
    assert!(h.sends("UploadPart").len() <= 20 - kept);
    h.assert_object_is_source();
}

#[test]
fn a_list_parts_failure_past_the_retry_limit_fails_without_restarting() {
    let mut h = Harness::new();
    let cp = checkpoint_mid_way(&mut h);
    let id = cp.upload_id.clone();
    h.transcript.clear();
    h.faults = Box::new(|op, _, _| match op {
        "ListParts" => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(h.sends("ListParts").len(), 4);
    assert!(h.sends("InitiateMultipartUpload").is_empty());
    assert!(h.sends("AbortMultipartUpload").is_empty());
    assert!(h.server.uploads.contains_key(&id), "the upload is kept");
}

#[test]
fn a_temporary_head_failure_after_a_lost_complete_answer_is_retried() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("CompleteMultipartUpload", 1) => Fault::LoseAnswer,
        ("HeadObject", 1) => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let out = done(h.run(&mut task, None)).unwrap();
    assert!(out.confirmed_by_head);
    assert_eq!(out.crc64, Some(source_crc()));
    let heads = h.sends("HeadObject");
    assert_eq!(heads.iter().map(|s| s.1).collect::<Vec<_>>(), [1, 2]);
    h.assert_object_is_source();
}

#[test]
fn a_head_404_after_a_lost_complete_answer_fails_with_the_complete_error() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("CompleteMultipartUpload", 1) => Fault::LoseAnswer,
        ("HeadObject", _) => Fault::Error(404, "NoSuchKey"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"), "{err}");
    assert_eq!(
        h.sends("HeadObject").len(),
        1,
        "404 is an answer, not retried"
    );
    assert!(h.sends("InitiateMultipartUpload").len() == 1, "no restart");
}

/// Whether the lost Complete went through stays unknown, so the task fails with the HEAD's own (retryable)
/// error, not the Complete's `NoSuchUpload` (which would say the upload is gone when the object may well be
/// there; simulation seeds 10508, 29176, 31120). The checkpoint is kept: a resume asks again.
#[test]
fn a_head_failing_past_the_retry_limit_after_a_lost_complete_fails_with_the_head_error() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("CompleteMultipartUpload", 1) => Fault::LoseAnswer,
        ("HeadObject", _) => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailable"), "{err}");
    assert!(err.is_retryable(), "{err}");
    assert_eq!(h.sends("HeadObject").len(), 4);
    assert!(task.checkpoint().is_some());
}

#[test]
fn a_resumed_all_parts_checkpoint_whose_upload_and_object_are_gone_restarts() {
    let mut h = Harness::new();
    let cp = checkpoint_with_every_part(&mut h);
    // The Complete never arrived, and the upload expired: no upload, no object.
    h.server.uploads.clear();
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert!(!out.confirmed_by_head);
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert!(restarted(&h));
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 1);
    assert_eq!(h.sends("UploadPart").len(), 20, "every part sent again");
    h.assert_object_is_source();
}

#[test]
fn a_resumed_all_parts_checkpoint_with_another_object_in_place_restarts() {
    let mut h = Harness::new();
    let cp = checkpoint_with_every_part(&mut h);
    h.server.uploads.clear();
    // Someone else's object of the same name (a single PUT: not a 20-part ETag).
    h.server.objects.insert(
        KEY.into(),
        StoredObject {
            bytes: Bytes::from_static(b"other"),
            etag: "\"abc\"".into(),
            crc64: Crc64::checksum(b"other"),
        },
    );
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert!(!out.confirmed_by_head);
    assert!(restarted(&h));
    assert_eq!(h.sends("UploadPart").len(), 20);
    h.assert_object_is_source();
}

/// Runs a stale checkpoint (the source changed) with `fault` on every Abort of the stale upload.
fn stale_resume_with_failing_abort(
    fault: Fault,
) -> (Harness, String, Result<UploadOutcome, Error>) {
    stale_resume(fault, false)
}

/// Runs a stale checkpoint with `fault` on every Abort of the stale upload, cancelled at once if `cancel`.
fn stale_resume(fault: Fault, cancel: bool) -> (Harness, String, Result<UploadOutcome, Error>) {
    let mut h = Harness::new();
    let cp = checkpoint_mid_way(&mut h);
    let old = cp.upload_id.clone();
    let changed = SourceFingerprint {
        mtime_nanos: Some(1),
        ..fingerprint()
    };
    h.transcript.clear();
    h.faults = Box::new(move |op, _, _| match op {
        "AbortMultipartUpload" => fault.clone(),
        _ => Fault::None,
    });
    let mut task = MultipartUpload::resume(config(), cp, changed, upload_config()).unwrap();
    if cancel {
        task.cancel();
    }
    let r = done(h.run(&mut task, None));
    (h, old, r)
}

#[test]
fn a_stale_upload_that_cannot_be_aborted_does_not_stop_the_new_one() {
    let (h, old, r) = stale_resume_with_failing_abort(Fault::Error(403, "AccessDenied"));
    let out = r.unwrap();
    assert_ne!(out.upload_id.as_deref(), Some(old.as_str()));
    assert_eq!(
        h.sends("AbortMultipartUpload").len(),
        1,
        "403 is not retried"
    );
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 1);
    assert!(
        h.server.uploads.contains_key(&old),
        "left to lifecycle rules"
    );
    h.assert_object_is_source();

    let (h, old, r) = stale_resume_with_failing_abort(Fault::Error(503, "ServiceUnavailable"));
    r.unwrap();
    assert_eq!(h.sends("AbortMultipartUpload").len(), 4, "503 is retried");
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 1);
    assert!(h.server.uploads.contains_key(&old));
    h.assert_object_is_source();
}

#[test]
fn a_stale_upload_already_gone_is_not_an_error() {
    let (h, _, r) = stale_resume_with_failing_abort(Fault::Error(404, "NoSuchUpload"));
    r.unwrap();
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 1);
    h.assert_object_is_source();
}

/// Cancels a fresh upload after some parts, with `fault` deciding each Abort attempt.
fn cancel_with_abort_faults(
    fault: impl FnMut(u32) -> Fault + 'static,
) -> (Harness, Result<UploadOutcome, Error>) {
    let mut fault = fault;
    let mut h = Harness::new();
    h.faults = Box::new(move |op, _, attempt| match op {
        "AbortMultipartUpload" => fault(attempt),
        _ => Fault::None,
    });
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(12)) else {
        panic!()
    };
    task.cancel();
    let r = done(h.run(&mut task, None));
    (h, r)
}

#[test]
fn a_failed_abort_after_cancel_is_retried_while_temporary_and_still_ends_cancelled() {
    let (h, r) = cancel_with_abort_faults(|attempt| match attempt {
        1 => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    assert_eq!(r.unwrap_err(), Error::Cancelled);
    let aborts = h.sends("AbortMultipartUpload");
    assert_eq!(aborts.iter().map(|s| s.1).collect::<Vec<_>>(), [1, 2]);
    assert!(h.server.uploads.is_empty(), "aborted on the retry");

    let (h, r) = cancel_with_abort_faults(|_| Fault::Error(403, "AccessDenied"));
    assert_eq!(r.unwrap_err(), Error::Cancelled);
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
    assert_eq!(h.server.uploads.len(), 1, "could not be aborted");

    let (h, r) = cancel_with_abort_faults(|_| Fault::Error(404, "NoSuchUpload"));
    assert_eq!(r.unwrap_err(), Error::Cancelled);
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
}

fn upload_entry(key: &str, id: &str, initiated: &str) -> String {
    format!("<Upload><Key>{key}</Key><UploadId>{id}</UploadId><Initiated>{initiated}</Initiated></Upload>")
}

fn uploads_result(
    truncated: bool,
    markers: Option<(&str, &str)>,
    entries: &str,
) -> http::Response<Bytes> {
    let markers = markers
        .map(|(k, u)| {
            format!(
                "<NextKeyMarker>{k}</NextKeyMarker><NextUploadIdMarker>{u}</NextUploadIdMarker>"
            )
        })
        .unwrap_or_default();
    xml(
        200,
        format!(
            "<ListMultipartUploadsResult><Bucket>{BUCKET}</Bucket><Prefix>{KEY}</Prefix>\
             <IsTruncated>{truncated}</IsTruncated>{markers}{entries}</ListMultipartUploadsResult>"
        ),
    )
}

/// Runs a find-unfinished search over two pages of List Multipart Uploads; returns what was sent (operation
/// and query) until the first List Parts, which is refused to end the task.
fn search_two_pages(page1: &str, page2: &str) -> Vec<(&'static str, HashMap<String, String>)> {
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let mut sent = Vec::new();
    let (r, _) = answer_all(&mut task, |n, t| {
        sent.push((t.operation, query(&t.request)));
        match (t.operation, n) {
            ("ListMultipartUploads", 1) => uploads_result(true, Some((KEY, "u-a")), page1),
            ("ListMultipartUploads", _) => uploads_result(false, None, page2),
            _ => cos_error(400, "InvalidArgument"),
        }
    });
    assert!(r.is_err());
    sent
}

#[test]
fn the_unfinished_upload_search_follows_the_pages() {
    let sent = search_two_pages(
        &upload_entry(KEY, "u-a", "2026-01-01T00:00:00.000Z"),
        &(upload_entry(KEY, "u-b", "2026-01-02T00:00:00.000Z")
            + &upload_entry(&format!("{KEY}.other"), "u-c", "2026-01-03T00:00:00.000Z")),
    );
    assert_eq!(sent[0].0, "ListMultipartUploads");
    assert_eq!(sent[1].0, "ListMultipartUploads");
    assert_eq!(sent[1].1.get("key-marker").map(String::as_str), Some(KEY));
    assert_eq!(
        sent[1].1.get("upload-id-marker").map(String::as_str),
        Some("u-a")
    );
    // The newest upload of exactly the key, from the second page.
    assert_eq!(sent[2].0, "ListParts");
    assert_eq!(sent[2].1.get("uploadId").map(String::as_str), Some("u-b"));
}

#[test]
fn of_two_uploads_initiated_together_on_two_pages_the_later_listed_is_tried_first() {
    let when = "2026-01-01T00:00:00.000Z";
    let sent = search_two_pages(
        &upload_entry(KEY, "u-a", when),
        &upload_entry(KEY, "u-b", when),
    );
    assert_eq!(sent[2].0, "ListParts");
    assert_eq!(sent[2].1.get("uploadId").map(String::as_str), Some("u-b"));
    // And the other way round: the later listed on page 2 is older, so page 1's wins.
    let sent = search_two_pages(
        &upload_entry(KEY, "u-a", "2026-01-02T00:00:00.000Z"),
        &upload_entry(KEY, "u-b", when),
    );
    assert_eq!(sent[2].1.get("uploadId").map(String::as_str), Some("u-a"));
}

/// Answers the HEAD that confirms a lost Complete with the right length and ETag but no CRC-64.
fn head_without_crc(h: &mut Harness, task: &mut MultipartUpload) -> Result<UploadOutcome, Error> {
    let head = run_until_sent(h, task, "HeadObject");
    let o = h.server.objects.get(KEY).expect("the Complete was applied");
    let response = http::Response::builder()
        .status(200)
        .header("content-length", o.bytes.len())
        .header("etag", &o.etag)
        .body(Bytes::new())
        .unwrap();
    task.handle_input(
        h.now,
        Input::Response {
            id: head.id,
            response,
            sent: None,
        },
    );
    done(h.run(task, None))
}

#[test]
fn head_without_a_crc_confirms_a_lost_complete_by_etag_and_length() {
    let mut h = Harness::losing_the_first_complete_answer();
    let mut task = new_task();
    let out = head_without_crc(&mut h, &mut task).unwrap();
    assert!(out.confirmed_by_head);
    assert_eq!(out.crc64, None);
}

#[test]
fn with_part_crcs_unknown_head_confirms_only_when_verification_is_off() {
    // A checkpoint without the parts' CRC-64 (written before they were recorded): the object's CRC-64
    // cannot be computed. The killed run's Complete went through; the resumed run meets NoSuchUpload.
    let run = |verify_crc64: bool| {
        let mut h = Harness::new();
        let mut task = new_task();
        let complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
        drop(task);
        let _ = h.deliver(complete);
        let mut cp: Checkpoint = serde_json::from_str(h.saved.as_ref().unwrap()).unwrap();
        for p in &mut cp.parts {
            p.crc64 = None;
        }
        h.transcript.clear();
        let cfg = UploadConfig {
            verify_crc64,
            ..upload_config()
        };
        let mut task = MultipartUpload::resume(config(), cp, fingerprint(), cfg).unwrap();
        let out = done(h.run(&mut task, None)).unwrap();
        h.assert_object_is_source();
        (h, out)
    };
    let (h, out) = run(false);
    assert!(out.confirmed_by_head, "accepted on ETag and length");
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert!(h.sends("UploadPart").is_empty());
    let (h, out) = run(true);
    assert!(
        !out.confirmed_by_head,
        "not accepted without a CRC to compare"
    );
    assert!(restarted(&h));
    assert_eq!(h.sends("UploadPart").len(), 20);
}

#[test]
fn verify_crc64_false_accepts_a_complete_whose_crc_differs() {
    let run = |verify_crc64: bool| {
        let mut h = Harness::new();
        h.faults = Box::new(|op, _, _| match op {
            "CompleteMultipartUpload" => Fault::WrongCrc(1),
            _ => Fault::None,
        });
        let cfg = UploadConfig {
            verify_crc64,
            ..upload_config()
        };
        let mut task = MultipartUpload::new(config(), KEY, LEN, cfg)
            .unwrap()
            .source_fingerprint(fingerprint())
            .unwrap();
        done(h.run(&mut task, None))
    };
    let out = run(false).unwrap();
    assert_eq!(out.crc64, Some(1), "reported as COS sent it");
    assert!(matches!(run(true), Err(Error::Integrity(_))));
}

#[test]
fn task_set_credentials_signs_the_next_request_with_the_new_keys() {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(4)) else {
        panic!()
    };
    // Through the trait, as a generic driver refreshing STS credentials calls it.
    Task::set_credentials(
        &mut task,
        Credentials::new("AKIDSTS", "s2").with_security_token("t2"),
    );
    let next = loop {
        match task.poll_output(h.now) {
            Output::Transmit(t) => break t,
            Output::Event(_) => {}
            Output::Wait { .. } => {
                let t = h.in_flight.remove(0);
                let input = h.deliver(t);
                task.handle_input(h.now, input);
            }
            Output::Io(io) => {
                if let Some(result) = h.io(io.request) {
                    task.handle_input(h.now, Input::Io { id: io.id, result });
                }
            }
            Output::Done(r) => panic!("ended: {r:?}"),
        }
    };
    let auth = next.request.headers()["authorization"].to_str().unwrap();
    assert!(auth.contains("q-ak=AKIDSTS"), "{auth}");
    assert_eq!(next.request.headers()["x-cos-security-token"], "t2");
}

#[test]
fn meta_md5_must_be_32_hex_digits() {
    let with = |md5: &str| {
        MultipartUpload::new(
            config(),
            KEY,
            LEN,
            UploadConfig {
                meta_md5: Some(md5.into()),
                ..upload_config()
            },
        )
    };
    let good = "0123456789abcdef0123456789ABCDEF";
    assert!(with(good).is_ok());
    for bad in [
        &good[..31],
        &format!("{good}0"),
        "g123456789abcdef0123456789abcdef",
        "",
    ] {
        match with(bad) {
            Err(Error::InvalidInput(InvalidInput::Parameter { name, .. })) => {
                assert_eq!(name, "meta_md5", "{bad}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn push_part_is_refused_after_finish_stream_or_cancel() {
    let part = || source().slice(0..MIB as usize);
    let mut task = stream_task(3);
    task.push_part(part()).unwrap();
    task.finish_stream();
    assert!(!task.wants_part());
    assert!(task.push_part(part()).is_err(), "after finish_stream");

    let mut task = stream_task(3);
    task.push_part(part()).unwrap();
    task.cancel();
    assert!(!task.wants_part());
    assert!(task.push_part(part()).is_err(), "after cancel");
    assert_eq!(
        done(Harness::new().run(&mut task, None)).unwrap_err(),
        Error::Cancelled
    );

    let mut task = stream_task(3);
    task.fail_source("read error");
    assert!(task.push_part(part()).is_err(), "after a source failure");
}

#[test]
fn a_control_retry_is_announced_with_its_attempt_number() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("InitiateMultipartUpload", 1 | 2) => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = new_task();
    done(h.run(&mut task, None)).unwrap();
    let retries: Vec<(&'static str, Option<u32>, u32)> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled {
                operation,
                part,
                attempt,
                ..
            } => Some((*operation, *part, *attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        retries,
        [
            ("InitiateMultipartUpload", None, 2),
            ("InitiateMultipartUpload", None, 3)
        ]
    );
}

#[test]
fn the_outcome_carries_the_location_complete_reported() {
    let mut h = Harness::new();
    let mut task = new_task();
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(
        out.location.as_deref(),
        Some(format!("{BUCKET}.cos.ap-guangzhou.myqcloud.com/{KEY}").as_str())
    );
}

/// Loses the first Complete answer, then answers the HEAD that should confirm it with these fields.
fn confirm_with_head(len: u64, etag: &str, crc64: u64) -> (Harness, Result<UploadOutcome, Error>) {
    let mut h = Harness::losing_the_first_complete_answer();
    let mut task = new_task();
    let head = run_until_sent(&mut h, &mut task, "HeadObject");
    let response = http::Response::builder()
        .status(200)
        .header("content-length", len)
        .header("etag", etag)
        .header("x-cos-hash-crc64ecma", crc64.to_string())
        .body(Bytes::new())
        .unwrap();
    task.handle_input(
        h.now,
        Input::Response {
            id: head.id,
            response,
            sent: None,
        },
    );
    let r = done(h.run(&mut task, None));
    (h, r)
}

#[test]
fn head_confirms_only_when_etag_length_and_crc_all_match() {
    let multipart_etag = "\"0123456789abcdef0123456789abcdef-20\"";
    let (_, r) = confirm_with_head(LEN, multipart_etag, source_crc());
    assert!(r.unwrap().confirmed_by_head);
    // Each one wrong on its own refutes it: the run fails with the Complete's NoSuchUpload.
    for (len, etag, crc) in [
        (LEN - 1, multipart_etag, source_crc()),
        (LEN, "\"0123456789abcdef0123456789abcdef\"", source_crc()),
        (LEN, "\"0123456789abcdef0123456789abcdef-19\"", source_crc()),
        (LEN, multipart_etag, source_crc() ^ 1),
    ] {
        let (_, r) = confirm_with_head(len, etag, crc);
        assert_eq!(
            r.unwrap_err().code(),
            Some("NoSuchUpload"),
            "{len} {etag} {crc}"
        );
    }
}

#[test]
fn the_search_stops_at_an_untruncated_page_and_follows_a_key_marker_alone() {
    // Not truncated, although markers are present: the listing is over.
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let mut ops = Vec::new();
    let (r, _) = answer_all(&mut task, |_, t| {
        ops.push(t.operation);
        match t.operation {
            "ListMultipartUploads" => uploads_result(false, Some((KEY, "u-a")), ""),
            _ => cos_error(400, "InvalidArgument"),
        }
    });
    assert!(r.is_err());
    assert_eq!(
        ops[..2],
        ["ListMultipartUploads", "InitiateMultipartUpload"]
    );

    // Truncated with only a key marker: the next page is asked for from that key.
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let mut sent = Vec::new();
    let (r, _) = answer_all(&mut task, |n, t| {
        sent.push((t.operation, query(&t.request)));
        match (t.operation, n) {
            ("ListMultipartUploads", 1) => xml(
                200,
                format!(
                    "<ListMultipartUploadsResult><Bucket>{BUCKET}</Bucket><IsTruncated>true</IsTruncated>\
                     <NextKeyMarker>{KEY}</NextKeyMarker></ListMultipartUploadsResult>"
                ),
            ),
            ("ListMultipartUploads", _) => uploads_result(false, None, ""),
            _ => cos_error(400, "InvalidArgument"),
        }
    });
    assert!(r.is_err());
    assert_eq!(sent[1].0, "ListMultipartUploads");
    assert_eq!(sent[1].1.get("key-marker").map(String::as_str), Some(KEY));
    assert_eq!(sent[2].0, "InitiateMultipartUpload");
}

#[test]
fn resume_of_a_vanished_partial_upload_restarts_without_head() {
    let mut h = Harness::new();
    let cp = checkpoint_mid_way(&mut h);
    h.server.uploads.clear();
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert!(!out.confirmed_by_head);
    assert!(
        h.sends("HeadObject").is_empty(),
        "some parts were never done"
    );
    assert!(restarted(&h));
    h.assert_object_is_source();
}

#[test]
fn a_cancel_during_the_stale_abort_starts_no_new_upload() {
    for fault in [Fault::None, Fault::Error(404, "NoSuchUpload")] {
        let mut h = Harness::new();
        let cp = checkpoint_mid_way(&mut h);
        let changed = SourceFingerprint {
            mtime_nanos: Some(1),
            ..fingerprint()
        };
        h.transcript.clear();
        let mut task = MultipartUpload::resume(config(), cp, changed, upload_config()).unwrap();
        let abort = run_until_sent(&mut h, &mut task, "AbortMultipartUpload");
        task.cancel();
        h.faults = Box::new(move |_, _, _| fault.clone());
        let input = h.deliver(abort);
        task.handle_input(h.now, input);
        assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
        assert!(h.sends("InitiateMultipartUpload").is_empty());
    }
}

/// A cancel before the stale upload's Abort went out still aborts it (the cancel removes the checkpoint that
/// names it, so nothing else would), whether the Abort succeeds or fails, and starts no new upload
/// (simulation seed 24933).
#[test]
fn a_cancel_before_the_stale_abort_still_aborts_the_stale_upload() {
    for (fault, aborts, left) in [
        (Fault::None, 1, false),
        (Fault::Error(403, "AccessDenied"), 1, true),
        (Fault::Error(503, "ServiceUnavailable"), 4, true),
    ] {
        let (h, old, r) = stale_resume(fault, true);
        assert_eq!(r.unwrap_err(), Error::Cancelled);
        assert_eq!(h.sends("AbortMultipartUpload").len(), aborts);
        assert!(h.sends("InitiateMultipartUpload").is_empty());
        assert!(h.sends("UploadPart").is_empty());
        assert_eq!(h.server.uploads.contains_key(&old), left);
    }
}

#[test]
fn a_cancel_during_a_failing_search_ends_cancelled() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "ListMultipartUploads" => Fault::Error(403, "AccessDenied"),
        _ => Fault::None,
    });
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let Stop::Step = h.run(&mut task, Some(1)) else {
        panic!()
    };
    task.cancel();
    assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
    // Without a cancel, the listing's error is the result.
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "ListMultipartUploads" => Fault::Error(403, "AccessDenied"),
        _ => Fault::None,
    });
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("AccessDenied"));
}

/// Answers the first Initiate with `status`/`code` and a `Date` one hour ahead, then runs to the end.
fn initiate_answered_with_a_date_ahead(status: u16, code: &str) -> (Harness, UploadOutcome) {
    let mut h = Harness::new();
    let mut task = new_task();
    let Stop::Step = h.run(&mut task, Some(1)) else {
        panic!()
    };
    let t = h.in_flight.remove(0);
    assert_eq!(t.operation, "InitiateMultipartUpload");
    let response = http::Response::builder()
        .status(status)
        .header("date", crate::task::format_http_date(1_700_000_000 + 3600))
        .body(Bytes::from(format!(
            "<Error><Code>{code}</Code><Message>m</Message></Error>"
        )))
        .unwrap();
    task.handle_input(
        h.now,
        Input::Response {
            id: t.id,
            response,
            sent: None,
        },
    );
    let out = done(h.run(&mut task, None)).unwrap();
    (h, out)
}

#[test]
fn only_request_time_too_skewed_moves_the_clock() {
    // A 503 whose Date is an hour off is an ordinary retry after a backoff; the clock is not adjusted.
    let (h, _) = initiate_answered_with_a_date_ahead(503, "ServiceUnavailable");
    assert!(!h
        .events()
        .iter()
        .any(|e| matches!(e, Event::ClockSkewAdjusted { .. })));
    let initiates = h.sends("InitiateMultipartUpload");
    assert_eq!(initiates.len(), 2);
    assert!(initiates[1].2 > initiates[0].2, "after a backoff");
    // RequestTimeTooSkewed re-signs with the server's clock and sends again at once.
    let (h, _) = initiate_answered_with_a_date_ahead(403, "RequestTimeTooSkewed");
    assert!(h
        .events()
        .contains(&Event::ClockSkewAdjusted { offset_secs: 3600 }));
    let initiates = h.sends("InitiateMultipartUpload");
    assert_eq!(initiates[1].2, initiates[0].2, "no backoff");
}

#[test]
fn a_candidate_that_vanishes_during_the_search_gives_way_to_the_next() {
    let mut h = Harness::new();
    let older = h.server.initiate(KEY);
    let plan = PartPlan::auto(LEN).unwrap();
    for n in 1..=5 {
        let r = plan.part(n).unwrap();
        h.server.put_part(
            &older,
            n,
            source().slice(r.offset as usize..(r.offset + r.len) as usize),
        );
    }
    let newer = h.server.initiate(KEY);
    // The newest is listed, then gone (aborted by someone) when its parts are asked for.
    let mut lists = 0;
    h.faults = Box::new(move |op, _, _| match op {
        "ListParts" => {
            lists += 1;
            if lists == 1 {
                Fault::Error(404, "NoSuchUpload")
            } else {
                Fault::None
            }
        }
        _ => Fault::None,
    });
    let mut task = MultipartUpload::find_unfinished(config(), KEY, LEN, upload_config()).unwrap();
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(out.upload_id.as_deref(), Some(older.as_str()));
    assert!(h.sends("InitiateMultipartUpload").is_empty());
    assert_eq!(h.sends("UploadPart").len(), 15, "only the missing parts");
    assert!(h.server.uploads.contains_key(&newer));
    h.assert_object_is_source();
}

#[test]
fn a_list_parts_marker_at_the_last_part_number_is_still_followed() {
    let mut task = resumed_task();
    let mut sent = Vec::new();
    let (r, _) = answer_all(&mut task, |n, t| {
        sent.push((t.operation, query(&t.request)));
        match n {
            1 => list_parts_page(0, MAX_PARTS),
            _ => cos_error(403, "AccessDenied"),
        }
    });
    assert_eq!(r.unwrap_err().code(), Some("AccessDenied"));
    assert_eq!(sent[1].0, "ListParts");
    assert_eq!(
        sent[1].1.get("part-number-marker").map(String::as_str),
        Some(MAX_PARTS.to_string().as_str())
    );
}

#[test]
fn requests_in_flight_together_have_distinct_ids() {
    let mut h = Harness::new();
    let mut task = new_task();
    let a = run_until_sent(&mut h, &mut task, "UploadPart");
    let b = run_until_sent(&mut h, &mut task, "UploadPart");
    assert_ne!(a.id, b.id);
    assert_ne!(a.request.uri(), b.request.uri());
    // A retried control request goes out under a new id, so that a late answer to the first attempt
    // cannot be taken for the retry's.
    let mut h = Harness::new();
    let mut task = new_task();
    let first = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    task.handle_input(
        h.now,
        Input::Failed {
            id: first.id,
            error: TransportError::new(TransportErrorKind::Timeout, "read timeout"),
        },
    );
    let retry = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    assert_eq!(retry.attempt, 2);
    assert_ne!(first.id, retry.id);
    // The retry is announced under the operation whose answer was lost.
    let announced: Vec<(&str, u32)> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RetryScheduled {
                operation, attempt, ..
            } => Some((operation, attempt)),
            _ => None,
        })
        .collect();
    assert!(
        announced.contains(&("CompleteMultipartUpload", 2)),
        "{announced:?}"
    );
}

#[test]
fn a_cancel_while_head_confirms_a_lost_complete_aborts_nothing() {
    let mut h = Harness::losing_the_first_complete_answer();
    let mut task = new_task();
    let head = run_until_sent(&mut h, &mut task, "HeadObject");
    task.cancel();
    let input = h.deliver(head);
    task.handle_input(h.now, input);
    let _ = done(h.run(&mut task, None));
    assert!(h.sends("AbortMultipartUpload").is_empty());
    h.assert_object_is_source();
}

#[test]
fn a_complete_that_wins_over_a_cancel_is_verified_like_any_other() {
    let mut h = Harness::new();
    let mut task = new_task();
    let complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    task.cancel();
    let input = h.deliver(complete);
    task.handle_input(h.now, input);
    let out = done(h.run(&mut task, None)).unwrap();
    assert_eq!(out.crc64, Some(source_crc()));
    assert!(h.sends("AbortMultipartUpload").is_empty());
    h.assert_object_is_source();
}

/// Polls until the task waits, answering its local I/O, and returns the wait's deadline.
fn poll_until_wait(h: &mut Harness, task: &mut MultipartUpload, now: Now) -> Option<Instant> {
    loop {
        match task.poll_output(now) {
            Output::Wait { until } => return until,
            Output::Event(_) => {}
            Output::Io(io) => {
                let result = h.io(io.request).expect("an answer");
                task.handle_input(now, Input::Io { id: io.id, result });
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_control_retry_due_while_paused_is_no_timer() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, attempt| match (op, attempt) {
        ("CompleteMultipartUpload", 1) => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    let mut task = new_task();
    let first = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    let input = h.deliver(first);
    task.handle_input(h.now, input);
    task.pause();
    let now = h.now;
    let due = poll_until_wait(&mut h, &mut task, now).expect("the retry's time");
    assert!(due > h.now.instant);
    let at_due = h.now.advance(due - h.now.instant);
    // Paused at the retry's time: nothing to wake up for (a deadline of `now` would make the driver spin).
    let until = poll_until_wait(&mut h, &mut task, at_due);
    assert!(until.map_or(true, |t| t > at_due.instant), "{until:?}");
    assert!(
        h.sends("CompleteMultipartUpload").len() == 1,
        "nothing sent while paused"
    );
}

#[test]
fn a_leased_upload_sets_no_renewal_timer_before_it_has_an_id() {
    let mut h = Harness::new();
    let mut task = leased_task("pid 1 run a", 2);
    let _initiate = run_until_sent(&mut h, &mut task, "InitiateMultipartUpload");
    let now = h.now;
    // Waiting for the Initiate's answer only: no lease to renew yet, so no timer to wake up for.
    assert_eq!(poll_until_wait(&mut h, &mut task, now), None);
}

#[test]
fn push_part_is_refused_once_the_upload_has_failed() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "InitiateMultipartUpload" => Fault::Error(403, "AccessDenied"),
        _ => Fault::None,
    });
    let mut task = stream_task(3);
    let c = chunks();
    task.push_part(c[0].clone()).unwrap();
    task.push_part(c[1].clone()).unwrap();
    let init = run_until_sent(&mut h, &mut task, "InitiateMultipartUpload");
    let input = h.deliver(init);
    task.handle_input(h.now, input);
    assert!(
        task.push_part(c[2].clone()).is_err(),
        "the failure waits to be polled"
    );
    assert!(done(h.run(&mut task, None)).is_err());
    assert!(task.push_part(c[2].clone()).is_err(), "after the end");
}

/// Simulation seed 43777: a part of an upload taken over from an earlier run meets `NoSuchUpload` (that run's
/// late Complete landed with other bytes, or the upload was aborted). The parts in flight are answered first
/// (nothing more is sent to the vanished upload), then the upload starts over and the file is uploaded. An
/// upload this run initiated itself still fails: someone else removed it.
#[test]
fn a_taken_over_upload_that_vanishes_mid_way_starts_over_once_idle() {
    let mut h = Harness::new();
    let cp = checkpoint_mid_way(&mut h);
    let old = cp.upload_id.clone();
    h.transcript.clear();
    let mut task = MultipartUpload::resume(config(), cp, fingerprint(), upload_config()).unwrap();
    let first = run_until_sent(&mut h, &mut task, "UploadPart");
    let second = run_until_sent(&mut h, &mut task, "UploadPart");
    h.server.uploads.remove(&old);
    let input = h.deliver(first);
    task.handle_input(h.now, input);
    // The second part is still in flight: nothing is sent until it is answered.
    loop {
        match task.poll_output(h.now) {
            Output::Event(_) => {}
            Output::Wait { .. } => break,
            other => panic!("sent while a part of the vanished upload is in flight: {other:?}"),
        }
    }
    let input = h.deliver(second);
    task.handle_input(h.now, input);
    let out = done(h.run(&mut task, None)).expect("uploaded anew");
    assert_ne!(out.upload_id.as_deref(), Some(old.as_str()));
    assert!(restarted(&h));
    assert_eq!(h.sends("InitiateMultipartUpload").len(), 1);
    h.assert_object_is_source();

    let mut h = Harness::new();
    let mut task = new_task();
    let part = run_until_sent(&mut h, &mut task, "UploadPart");
    h.server.uploads.clear();
    let input = h.deliver(part);
    task.handle_input(h.now, input);
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
    assert!(!restarted(&h));
}

/// Every Complete answer is lost (the first attempt was applied): once the retries are spent, the object
/// decides. It is there and whole, so the upload succeeds instead of reporting a failure for an upload that
/// went through (the stream simulation's seed 1207: a stream cannot be resumed to find out later).
#[test]
fn a_complete_whose_answers_are_all_lost_is_confirmed_by_head() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "CompleteMultipartUpload" => Fault::LoseAnswer,
        _ => Fault::None,
    });
    let mut task = new_task();
    let out = done(h.run(&mut task, None)).expect("confirmed");
    assert!(out.confirmed_by_head);
    assert_eq!(h.sends("CompleteMultipartUpload").len(), 4);
    assert_eq!(h.sends("HeadObject").len(), 1);
    h.assert_object_is_source();
}

/// Every Complete fails with 503 before the server applies it: HEAD finds no object, so a file upload fails
/// with the Complete's error and keeps its upload for a resume, and a stream (which cannot be resumed)
/// aborts its upload before failing.
#[test]
fn a_complete_failing_past_the_retry_limit_keeps_a_files_upload_and_aborts_a_streams() {
    let refuse = |op: &str, _: Option<u32>, _: u32| match op {
        "CompleteMultipartUpload" => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    };
    let mut h = Harness::new();
    h.faults = Box::new(refuse);
    let mut task = new_task();
    let err = done(h.run(&mut task, None)).unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert!(h.sends("AbortMultipartUpload").is_empty());
    assert_eq!(h.server.uploads.len(), 1, "kept for a resume");
    assert!(task.checkpoint().is_some());

    let mut h = Harness::new();
    h.faults = Box::new(refuse);
    let mut task = stream_task(2);
    let err = run_stream(&mut h, &mut task, &chunks(), 2).unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    assert_eq!(h.sends("HeadObject").len(), 1);
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
    assert!(h.server.uploads.is_empty(), "aborted");
}

/// Delivers the held first `complete` under `faults` (kept for the rest of the run), then cancels: the
/// cancel meets the backoff before the Complete's retry.
fn cancel_during_complete_backoff(
    h: &mut Harness,
    task: &mut MultipartUpload,
    complete: Transmit,
    faults: impl FnMut(&'static str, Option<u32>, u32) -> Fault + 'static,
) {
    h.faults = Box::new(faults);
    let input = h.deliver(complete);
    task.handle_input(h.now, input);
    task.cancel();
}

/// A cancel during the backoff before a Complete is retried: the Abort decides. If the first Complete went
/// through (its answer was lost), the Abort meets `NoSuchUpload` and a HEAD finds the object, so the
/// Complete won and the upload succeeds (stream simulation seed 5881); if it did not, the upload is
/// aborted and the task ends `Cancelled` without a HEAD.
#[test]
fn a_cancel_while_a_complete_waits_for_its_retry_lets_the_object_decide() {
    for (fault, won) in [(Fault::LoseAnswer, true), (Fault::Drop, false)] {
        let mut h = Harness::new();
        let mut task = new_task();
        let complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
        cancel_during_complete_backoff(&mut h, &mut task, complete, move |op, _, _| match op {
            "CompleteMultipartUpload" => fault.clone(),
            _ => Fault::None,
        });
        let r = done(h.run(&mut task, None));
        assert_eq!(h.sends("CompleteMultipartUpload").len(), 1, "not retried");
        assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
        if won {
            assert!(r.expect("the Complete won").confirmed_by_head);
            h.assert_object_is_source();
        } else {
            assert_eq!(r.unwrap_err(), Error::Cancelled);
            assert!(h.sends("HeadObject").is_empty());
            assert!(h.server.uploads.is_empty());
        }
    }
}

/// Runs a stream upload (every part pushed, the stream finished) until it sends its Complete, and returns
/// that Complete undelivered.
fn stream_until_complete(h: &mut Harness, task: &mut MultipartUpload) -> Transmit {
    let chunks = chunks();
    let (mut pushed, mut finished) = (0, false);
    for _ in 0..100_000 {
        if let Some(i) = (h.in_flight.iter()).position(|t| t.operation == "CompleteMultipartUpload")
        {
            return h.in_flight.remove(i);
        }
        match task.poll_output(h.now) {
            Output::Io(io) => {
                let result = h.io(io.request).unwrap();
                task.handle_input(h.now, Input::Io { id: io.id, result });
            }
            Output::Transmit(t) => h.in_flight.push(t),
            Output::Event(_) => {}
            Output::Done(r) => panic!("ended before its Complete: {r:?}"),
            Output::Wait { until } => {
                if task.wants_part() && pushed < chunks.len() {
                    task.push_part(chunks[pushed].clone()).unwrap();
                    pushed += 1;
                } else if pushed == chunks.len() && !finished {
                    task.finish_stream();
                    finished = true;
                } else if !h.in_flight.is_empty() {
                    let t = h.in_flight.remove(0);
                    let input = h.deliver(t);
                    task.handle_input(h.now, input);
                } else if let Some(until) = until {
                    h.now = h.now.advance(until - h.now.instant);
                } else {
                    panic!("stuck");
                }
            }
        }
    }
    panic!("no Complete")
}

/// A cancel while a stream's Complete waits for its retry (the first was refused before the server applied
/// it), and meanwhile the upload vanished: the Abort meets `NoSuchUpload`, so a HEAD asks whether the
/// Complete went through. It did not (no object, or someone else's): the stream ends `Cancelled`, with one
/// Abort and one HEAD, no new upload and no second Abort.
#[test]
fn a_cancelled_streams_upload_found_gone_and_not_completed_ends_cancelled() {
    for someone_elses in [false, true] {
        let mut h = Harness::new();
        let mut task = stream_task(2);
        let complete = stream_until_complete(&mut h, &mut task);
        h.server.uploads.clear();
        if someone_elses {
            h.server.objects.insert(
                KEY.into(),
                StoredObject {
                    bytes: Bytes::from_static(b"other"),
                    etag: "\"abc\"".into(),
                    crc64: Crc64::checksum(b"other"),
                },
            );
        }
        // The Complete is refused before the server sees it, so only the vanished upload answers the Abort.
        cancel_during_complete_backoff(&mut h, &mut task, complete, |op, _, _| match op {
            "CompleteMultipartUpload" => Fault::Drop,
            _ => Fault::None,
        });
        let err = done(h.run(&mut task, None)).unwrap_err();
        assert_eq!(err, Error::Cancelled);
        assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
        assert_eq!(h.sends("HeadObject").len(), 1);
        assert!(
            h.sends("InitiateMultipartUpload").len() <= 1,
            "no new upload"
        );
    }
}

/// The same for a file whose first Complete went through, but the HEAD that would confirm it keeps failing:
/// the task ends with the user's `Cancelled` (nothing is left to abort), not the HEAD's error.
#[test]
fn a_cancel_whose_confirming_head_keeps_failing_ends_cancelled() {
    let mut h = Harness::new();
    let mut task = new_task();
    let complete = run_until_sent(&mut h, &mut task, "CompleteMultipartUpload");
    cancel_during_complete_backoff(&mut h, &mut task, complete, |op, _, _| match op {
        "CompleteMultipartUpload" => Fault::LoseAnswer,
        "HeadObject" => Fault::Error(503, "ServiceUnavailable"),
        _ => Fault::None,
    });
    assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
    assert_eq!(h.sends("HeadObject").len(), 4);
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
}

/// A stream whose Complete is refused for good (a 4xx, not retried, no HEAD) aborts its upload.
#[test]
fn a_stream_whose_complete_is_refused_aborts_its_upload() {
    let mut h = Harness::new();
    h.faults = Box::new(|op, _, _| match op {
        "CompleteMultipartUpload" => Fault::Error(400, "InvalidPart"),
        _ => Fault::None,
    });
    let mut task = stream_task(2);
    let err = run_stream(&mut h, &mut task, &chunks(), 2).unwrap_err();
    assert_eq!(err.code(), Some("InvalidPart"));
    assert!(h.sends("HeadObject").is_empty());
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
    assert!(h.server.uploads.is_empty(), "aborted");
}

/// A cancel before any Complete, of an upload someone else removed: the Abort's `NoSuchUpload` ends the task
/// `Cancelled` at once (no Complete of ours could have gone through, so no HEAD).
#[test]
fn a_cancel_before_any_complete_of_a_vanished_upload_asks_nothing_more() {
    let mut h = Harness::new();
    let mut task = new_task();
    let part = run_until_sent(&mut h, &mut task, "UploadPart");
    let input = h.deliver(part);
    task.handle_input(h.now, input);
    h.server.uploads.clear();
    task.cancel();
    assert_eq!(done(h.run(&mut task, None)).unwrap_err(), Error::Cancelled);
    assert_eq!(h.sends("AbortMultipartUpload").len(), 1);
    assert!(h.sends("HeadObject").is_empty());
    assert!(h.sends("CompleteMultipartUpload").is_empty());
}
