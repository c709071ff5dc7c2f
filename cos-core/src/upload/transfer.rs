//! [`UploadTask`]: a whole file or stream upload as one [`Task`], every decision included, so that a driver
//! only performs what the task asks (see the loop contract in [`crate::task`]).
//!
//! # A file
//!
//! [`UploadTask::file`] takes the file's [`SourceFingerprint`] (size and modification time, measured by the
//! driver) and the options; bad input (key, part size, headers) fails there, before anything is sent or
//! read. Then the task:
//!
//! 1. with a checkpoint path ([`UploadOptions::checkpoint`]), asks for [`IoRequest::LoadCheckpoint`] and
//!    decides with a [`LeaseCheck`] whether a live upload holds it (waiting out a recent lease, reading the
//!    checkpoint again, or failing with [`InvalidInput::Checkpoint`](crate::InvalidInput::Checkpoint)); a checkpoint of another object fails
//!    the same way;
//! 2. with [`UploadOptions::add_meta_md5`], asks for an [`IoRequest::Digest`] of the whole file (with
//!    [`Event::Report`]s `hashing` at 0 and at the end);
//! 3. decides with [`start_file_upload`]: a single PUT at or below the threshold (then aborts the stale
//!    upload a checkpoint of this key names and removes the checkpoint), else a [`MultipartUpload`] resumed
//!    from the checkpoint, or continuing an unfinished upload found on the server, or new; it stores its
//!    checkpoint through [`IoRequest::StoreCheckpoint`];
//! 4. applies the one cleanup rule ([`checkpoint_after`]): success and cancel remove the checkpoint
//!    ([`IoRequest::RemoveCheckpoint`]), a failure keeps it for a resume.
//!
//! Progress reaches the user as throttled [`Event::Report`]s. [`Command::Pause`] keeps the task (its
//! checkpoint is stored, [`Event::Paused`] follows; a pause given before the multipart upload starts
//! applies to it once it does; a single PUT is not paused) until [`Command::Resume`]; [`Command::Cancel`] aborts
//! the upload, or, before one runs, the upload the checkpoint names. [`UploadTask::discard`] does only that
//! last part: abort what a checkpoint names and remove it (a task list's cancel of a paused or failed file).
//!
//! # A stream
//!
//! [`UploadTask::stream`] reads parts of the part size with [`IoRequest::ReadStream`] while the
//! [`MultipartUpload`] has room (at most `concurrency + 1` parts in memory); a stream that ends within its
//! first part is one PUT.

use std::collections::VecDeque;
use std::time::Instant;

use super::checkpoint::{Checkpoint, LeaseCheck, LeaseDecision, SourceFingerprint};
use super::file::{
    check_file_upload, checkpoint_after, checkpoint_from_bytes, start_file_upload,
    start_stream_upload, CheckpointAfter, FileStart,
};
use super::multipart::{MultipartUpload, UploadOutcome};
use super::options::UploadOptions;
use super::progress::ProgressMeter;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::ops::{AbortMultipartUpload, PutObject};
use crate::task::{
    Command, Event, Input, Io, IoRequest, IoResult, Now, OneShot, Output, RequestId, Task,
};

/// The ids of the task's own I/O count down from here, far from its requests' ids (which count up).
const IO_IDS: u64 = u64::MAX / 2;

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per upload
enum Stage {
    /// Read the checkpoint (again at `at`).
    Load {
        at: Option<Instant>,
    },
    /// Hash the file for `x-cos-meta-md5`.
    Hash,
    Put {
        task: OneShot<PutObject>,
        stale: Option<AbortMultipartUpload>,
    },
    /// Abort an upload (stale after a PUT, or cancelled), then remove the checkpoint and end with `then`.
    Abort {
        task: OneShot<AbortMultipartUpload>,
        then: Result<UploadOutcome, Error>,
    },
    Multipart(MultipartUpload),
    /// Remove the checkpoint, then end with this.
    Remove(Result<UploadOutcome, Error>),
    End(Result<UploadOutcome, Error>),
    Ended,
}

/// A whole file or stream upload; see the [module docs](self).
#[derive(Debug)]
pub struct UploadTask {
    config: Config,
    key: String,
    options: UploadOptions,
    source: SourceFingerprint,
    owner: Option<String>,
    lease: Option<LeaseCheck>,
    saved: Option<Checkpoint>,
    meta_md5: Option<String>,
    stage: Stage,
    /// The task's own I/O in flight.
    io: Option<RequestId>,
    next_io: u64,
    events: VecDeque<Event>,
    meter: Option<ProgressMeter>,
    total: Option<u64>,
    paused: bool,
    /// Cancelled before a multipart upload ran: abort what the checkpoint names.
    discard: bool,
}

impl UploadTask {
    fn base(config: Config, key: &str, options: &UploadOptions, source: SourceFingerprint) -> Self {
        UploadTask {
            config,
            key: key.to_string(),
            options: options.clone(),
            source,
            owner: None,
            lease: None,
            saved: None,
            meta_md5: None,
            stage: Stage::Load { at: None },
            io: None,
            next_io: IO_IDS,
            events: VecDeque::new(),
            meter: None,
            total: Some(source.size),
            paused: false,
            discard: false,
        }
    }

    /// The upload of a file of `source.size` bytes to `key`. `lease_owner` names this run in the
    /// checkpoint's lease (unique per process and run); it is used when [`UploadOptions::checkpoint`] is
    /// set. Bad input fails here, before anything is read or sent.
    pub fn file(
        config: Config,
        key: &str,
        options: &UploadOptions,
        source: SourceFingerprint,
        lease_owner: &str,
    ) -> Result<UploadTask, Error> {
        check_file_upload(key, options, source.size)?;
        let mut task = UploadTask::base(config, key, options, source);
        if options.checkpoint.is_some() {
            task.owner = Some(lease_owner.to_string());
            task.lease = Some(LeaseCheck::new(lease_owner));
        } else {
            task.stage = Stage::Hash;
        }
        Ok(task)
    }

    /// Aborts the upload the checkpoint at [`UploadOptions::checkpoint`] names (if any) and removes the
    /// checkpoint; ends with [`Error::Cancelled`].
    pub fn discard(config: Config, key: &str, options: &UploadOptions) -> UploadTask {
        let mut task = UploadTask::base(config, key, options, SourceFingerprint::new(0, None));
        task.discard = true;
        if options.checkpoint.is_none() {
            task.stage = Stage::End(Err(Error::Cancelled));
        }
        task
    }

    /// The upload of a stream of unknown length, read with [`IoRequest::ReadStream`]. Refuses
    /// [`UploadOptions::add_meta_md5`] ([`start_stream_upload`]); ignores [`UploadOptions::checkpoint`] (a
    /// stream cannot be read again, so it cannot be resumed).
    pub fn stream(config: Config, key: &str, options: &UploadOptions) -> Result<UploadTask, Error> {
        let upload = start_stream_upload(config.clone(), key, options)?.read_stream();
        let mut task = UploadTask::base(config, key, options, SourceFingerprint::new(0, None));
        task.options.checkpoint = None;
        task.total = None;
        task.stage = Stage::Multipart(upload);
        Ok(task)
    }

    /// Whether the task is paused and idle.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn io(&mut self, request: IoRequest) -> Output<UploadOutcome> {
        let id = RequestId(self.next_io);
        self.next_io -= 1;
        self.io = Some(id);
        Output::Io(Io { id, request })
    }

    fn report(&mut self, now: Now, loaded: u64, total: Option<u64>) {
        if self.options.on_progress.is_none() {
            return;
        }
        let meter = self
            .meter
            .get_or_insert_with(|| ProgressMeter::new(self.total, now.instant));
        if let Some(t) = total {
            meter.set_total(t);
        }
        if let Some(progress) = meter.update(loaded, now.instant) {
            self.events.push_back(Event::Report {
                hashing: false,
                progress,
            });
        }
    }

    fn hash_report(&mut self, now: Now, loaded: u64) {
        if self.options.on_hash_progress.is_none() {
            return;
        }
        let mut meter = ProgressMeter::new(Some(self.source.size), now.instant);
        if let Some(progress) = meter.update(loaded, now.instant) {
            self.events.push_back(Event::Report {
                hashing: true,
                progress,
            });
        }
    }

    /// The stage after the checkpoint was read: abort what it names (discard), hash, or start.
    fn after_load(&mut self, now: Now) {
        if self.discard {
            self.stage = match self.saved.take() {
                Some(cp) => match OneShot::new(cp.abort_upload(), self.config.clone()) {
                    Ok(task) => Stage::Abort {
                        task,
                        then: Err(Error::Cancelled),
                    },
                    Err(_) => Stage::Remove(Err(Error::Cancelled)),
                },
                None => return self.cancelled_search(),
            };
        } else if self.options.add_meta_md5 && self.meta_md5.is_none() {
            self.stage = Stage::Hash;
        } else {
            self.start(now);
        }
    }

    /// Cancelled before the upload ran, with no checkpoint naming its upload. With
    /// [`UploadOptions::resume_unfinished`], a multipart-sized file would have continued an unfinished
    /// upload found on the server: that one is found and aborted, as a cancel during the search does (an
    /// earlier run's upload is otherwise left behind). Else the task ends at once.
    fn cancelled_search(&mut self) {
        let mut options = self.options.clone();
        options.add_meta_md5 = false; // nothing is uploaded, so no MD5 is needed
        let start = options.resume_unfinished.then(|| {
            let (config, source) = (self.config.clone(), self.source);
            start_file_upload(config, &self.key, &options, source, None, None, None)
        });
        self.stage = match start {
            Some(Ok(FileStart::Multipart(mut task))) => {
                task.cancel();
                Stage::Multipart(task)
            }
            _ => Stage::End(Err(Error::Cancelled)),
        };
    }

    fn start(&mut self, now: Now) {
        let options = &self.options;
        let start = start_file_upload(
            self.config.clone(),
            &self.key,
            options,
            self.source,
            self.saved.take(),
            self.meta_md5.take(),
            self.owner.as_deref(),
        );
        self.stage = match start {
            Ok(FileStart::SinglePut { task, stale }) => {
                self.report(now, 0, Some(self.source.size));
                Stage::Put { task, stale }
            }
            Ok(FileStart::Multipart(mut task)) => {
                if self.paused {
                    task.pause();
                }
                Stage::Multipart(task)
            }
            Err(e) => Stage::End(Err(e)),
        };
    }

    /// The end of the upload proper: remove the checkpoint or not, then end.
    fn finish(&mut self, result: Result<UploadOutcome, Error>) {
        let keep = self.options.checkpoint.is_some();
        self.stage = match checkpoint_after(&result, false) {
            CheckpointAfter::Remove if keep => Stage::Remove(result),
            _ => Stage::End(result),
        };
    }

    fn handle_own_io(&mut self, now: Now, result: IoResult) {
        match std::mem::replace(&mut self.stage, Stage::Ended) {
            Stage::Load { .. } => {
                let bytes = match result {
                    IoResult::Data(b) => b,
                    IoResult::Failed(e) => {
                        let e = Error::Source(format!("cannot read the checkpoint: {e}"));
                        self.stage = Stage::End(Err(e));
                        return;
                    }
                    other => {
                        self.stage = Stage::End(Err(Error::Source(format!(
                            "reading the checkpoint answered {other:?}"
                        ))));
                        return;
                    }
                };
                let cp = match bytes {
                    None => None,
                    Some(b) => {
                        match checkpoint_from_bytes(&b, self.config.bucket.as_str(), &self.key) {
                            Ok(cp) => Some(cp),
                            Err(e) if self.discard => {
                                let _ = e;
                                self.stage = Stage::End(Err(Error::Cancelled));
                                return;
                            }
                            Err(e) => {
                                self.stage = Stage::End(Err(e));
                                return;
                            }
                        }
                    }
                };
                let decision = match (&mut self.lease, self.discard) {
                    (Some(lease), false) => lease.check(cp.as_ref(), now),
                    _ => LeaseDecision::Proceed,
                };
                match decision {
                    LeaseDecision::Proceed => {
                        self.saved = cp;
                        self.after_load(now);
                    }
                    LeaseDecision::ReloadAt(at) => self.stage = Stage::Load { at: Some(at) },
                    LeaseDecision::Busy(e) => self.stage = Stage::End(Err(e)),
                }
            }
            Stage::Hash => match result {
                IoResult::Digest(d) if d.len == self.source.size => {
                    self.hash_report(now, d.len);
                    self.meta_md5 = d.md5_hex();
                    self.start(now);
                }
                IoResult::Failed(e) => self.stage = Stage::End(Err(Error::Source(e))),
                _ => {
                    self.stage = Stage::End(Err(Error::Source(
                        "the file changed while it was hashed".into(),
                    )))
                }
            },
            Stage::Remove(result) => self.stage = Stage::End(result),
            other => self.stage = other,
        }
    }
}

impl Task for UploadTask {
    type Output = UploadOutcome;

    fn poll_output(&mut self, now: Now) -> Output<UploadOutcome> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Output::Event(e);
            }
            if self.io.is_some() {
                return Output::Wait { until: None };
            }
            match &mut self.stage {
                Stage::Load { at } => match at {
                    Some(t) if *t > now.instant => return Output::Wait { until: Some(*t) },
                    _ => return self.io(IoRequest::LoadCheckpoint),
                },
                Stage::Hash => {
                    if !self.options.add_meta_md5 {
                        self.start(now);
                        continue;
                    }
                    self.hash_report(now, 0);
                    let len = self.source.size;
                    return self.io(IoRequest::Digest { offset: 0, len });
                }
                Stage::Put { task, stale } => match task.poll_output(now) {
                    Output::Done(Ok(put)) => {
                        let (bucket, len) = (self.config.bucket.to_string(), self.source.size);
                        let outcome = UploadOutcome::from_put(&bucket, &self.key, len, put);
                        let stale = stale.take();
                        self.report(now, len, Some(len));
                        match stale.map(|a| OneShot::new(a, self.config.clone())) {
                            Some(Ok(task)) => {
                                self.stage = Stage::Abort {
                                    task,
                                    then: Ok(outcome),
                                }
                            }
                            _ => self.finish(Ok(outcome)),
                        }
                    }
                    Output::Done(Err(e)) => self.stage = Stage::End(Err(e)),
                    other => return other.map_done(),
                },
                Stage::Abort { task, then } => match task.poll_output(now) {
                    Output::Done(r) => {
                        let then = std::mem::replace(then, Err(Error::Cancelled));
                        if let Err(e) = r {
                            // The checkpoint stays: it names the upload still to abort.
                            self.events.push_back(Event::CheckpointNotStored {
                                reason: format!("cannot abort the upload it names: {e}"),
                            });
                            self.stage = Stage::End(then);
                        } else {
                            self.stage = Stage::Remove(then);
                        }
                    }
                    other => return other.map_done(),
                },
                Stage::Multipart(task) => match task.poll_output(now) {
                    Output::Event(Event::Progress { loaded, total }) => {
                        self.report(now, loaded, total);
                        return Output::Event(Event::Progress { loaded, total });
                    }
                    Output::Event(Event::Paused) => {
                        self.paused = true;
                        return Output::Event(Event::Paused);
                    }
                    Output::Done(r) => {
                        if let Ok(o) = &r {
                            self.report(now, o.total_len, Some(o.total_len));
                        }
                        self.finish(r);
                    }
                    other => return other.map_done(),
                },
                Stage::Remove(_) => return self.io(IoRequest::RemoveCheckpoint),
                Stage::End(_) => {
                    let Stage::End(r) = std::mem::replace(&mut self.stage, Stage::Ended) else {
                        unreachable!()
                    };
                    return Output::Done(r);
                }
                Stage::Ended => return Output::Wait { until: None },
            }
        }
    }

    fn handle_input(&mut self, now: Now, input: Input) {
        let id = input.id();
        if self.io == Some(id) {
            self.io = None;
            if let Input::Io { result, .. } = input {
                self.handle_own_io(now, result);
            }
            return;
        }
        match &mut self.stage {
            Stage::Put { task, .. } => task.handle_input(now, input),
            Stage::Abort { task, .. } => task.handle_input(now, input),
            Stage::Multipart(task) => task.handle_input(now, input),
            _ => {} // an answer to a request of a finished stage
        }
    }

    fn handle_command(&mut self, now: Now, command: Command) {
        match command {
            Command::Pause => self.paused = true,
            Command::Resume => self.paused = false,
            Command::Cancel => {}
        }
        let hashing = matches!(self.stage, Stage::Hash);
        match &mut self.stage {
            Stage::Multipart(task) => task.handle_command(now, command),
            // Before the upload runs, a cancel aborts what the checkpoint names instead.
            Stage::Load { .. } | Stage::Hash if command == Command::Cancel => {
                self.discard = true;
                if self.io.is_none() || hashing {
                    self.io = None;
                    self.stage = Stage::Load { at: None };
                    if self.options.checkpoint.is_none() {
                        self.cancelled_search();
                    } else if self.saved.is_some() {
                        self.after_load(now);
                    }
                }
            }
            _ => {}
        }
    }

    fn set_credentials(&mut self, credentials: Credentials) {
        self.config.credentials = credentials.clone();
        match &mut self.stage {
            Stage::Put { task, .. } => task.set_credentials(credentials),
            Stage::Abort { task, .. } => task.set_credentials(credentials),
            Stage::Multipart(task) => task.set_credentials(credentials),
            _ => {}
        }
    }
}

impl<T> Output<T> {
    /// The same output for a task whose result is another type; [`Output::Done`] must have been handled.
    fn map_done<U>(self) -> Output<U> {
        match self {
            Output::Transmit(t) => Output::Transmit(t),
            Output::Io(io) => Output::Io(io),
            Output::Event(e) => Output::Event(e),
            Output::Wait { until } => Output::Wait { until },
            Output::Done(_) => unreachable!("Done is handled by the caller"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;

    use super::*;
    use crate::checksum::BodyDigest;
    use crate::task::{RequestBody, Transmit};
    use crate::upload::checkpoint::{Lease, LEASE_TTL};
    use crate::upload::plan::MIB;
    use crate::Credentials;

    const DATA: &[u8] = b"ten bytes!";

    fn config() -> Config {
        Config::new("b-1250000000", "ap-guangzhou", Credentials::new("id", "k")).unwrap()
    }

    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn now() -> Now {
        Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn fp(size: u64) -> SourceFingerprint {
        SourceFingerprint {
            size,
            mtime_nanos: Some(7),
        }
    }

    fn with_checkpoint() -> UploadOptions {
        UploadOptions {
            checkpoint: Some("ck.json".into()),
            ..UploadOptions::default()
        }
    }

    /// A checkpoint of a multipart attempt of `k` (the file was 3 MiB then).
    fn stale(lease: Option<Lease>) -> Bytes {
        let mut cp = Checkpoint::new("b-1250000000", "k", "up-1", MIB, fp(3 * MIB));
        cp.lease = lease;
        super::super::file::checkpoint_to_bytes(&cp).into()
    }

    fn expect_io(task: &mut UploadTask, now: Now) -> Io {
        match task.poll_output(now) {
            Output::Io(io) => io,
            other => panic!("expected I/O, got {other:?}"),
        }
    }

    fn expect_transmit(task: &mut UploadTask, now: Now) -> Transmit {
        loop {
            match task.poll_output(now) {
                Output::Transmit(t) => return t,
                Output::Event(_) => {}
                other => panic!("expected a request, got {other:?}"),
            }
        }
    }

    fn answer(task: &mut UploadTask, now: Now, t: &Transmit, status: u16) {
        let sent = matches!(t.request.body(), RequestBody::Source { .. })
            .then(|| BodyDigest::of_with_md5(DATA, true));
        let mut response = http::Response::builder().status(status);
        if let Some(d) = &sent {
            response = response
                .header("etag", format!("\"{}\"", d.md5_hex().unwrap()))
                .header("x-cos-hash-crc64ecma", d.crc64.to_string());
        }
        let response = response.body(Bytes::new()).unwrap();
        task.handle_input(
            now,
            Input::Response {
                id: t.id,
                response,
                sent,
            },
        );
    }

    fn done(task: &mut UploadTask, now: Now) -> Result<UploadOutcome, Error> {
        loop {
            match task.poll_output(now) {
                Output::Done(r) => return r,
                Output::Event(_) => {}
                other => panic!("expected the end, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_small_file_with_a_stale_checkpoint_is_one_put_then_the_stale_upload_is_aborted_and_removed(
    ) {
        let now = now();
        let o = with_checkpoint();
        let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::LoadCheckpoint);
        let result = IoResult::Data(Some(stale(None)));
        task.handle_input(now, Input::Io { id: io.id, result });
        let put = expect_transmit(&mut task, now);
        assert_eq!(
            (put.operation, put.request.method().as_str()),
            ("PutObject", "PUT")
        );
        answer(&mut task, now, &put, 200);
        let abort = expect_transmit(&mut task, now);
        assert_eq!(abort.operation, "AbortMultipartUpload");
        assert!(abort
            .request
            .uri()
            .query()
            .unwrap()
            .contains("uploadId=up-1"));
        answer(&mut task, now, &abort, 204);
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::RemoveCheckpoint);
        task.handle_input(
            now,
            Input::Io {
                id: io.id,
                result: IoResult::Done,
            },
        );
        assert_eq!(done(&mut task, now).unwrap().total_len, 10);
    }

    #[test]
    fn a_live_lease_is_waited_out_once_and_a_renewed_one_fails_before_anything_is_sent() {
        let now = now();
        let o = with_checkpoint();
        let lease = |ms| {
            Some(Lease {
                owner: "other".into(),
                renewed_unix_ms: ms,
            })
        };
        let base = 1_700_000_000_000 - 1_000;
        let mut task = UploadTask::file(config(), "k", &o, fp(3 * MIB), "me").unwrap();
        let io = expect_io(&mut task, now);
        let result = IoResult::Data(Some(stale(lease(base))));
        task.handle_input(now, Input::Io { id: io.id, result });
        let Output::Wait { until: Some(at) } = task.poll_output(now) else {
            panic!("a recent lease is waited out")
        };
        assert_eq!(at, now.instant + LEASE_TTL - Duration::from_secs(1));
        let later = now.advance(LEASE_TTL);
        let io = expect_io(&mut task, later);
        assert_eq!(io.request, IoRequest::LoadCheckpoint);
        let result = IoResult::Data(Some(stale(lease(base + 5_000))));
        task.handle_input(later, Input::Io { id: io.id, result });
        let e = done(&mut task, later).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }

    #[test]
    fn add_meta_md5_hashes_the_file_through_the_driver_first() {
        let now = now();
        let o = UploadOptions::default().add_meta_md5(true);
        let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::Digest { offset: 0, len: 10 });
        let result = IoResult::Digest(BodyDigest::of_with_md5(DATA, true));
        task.handle_input(now, Input::Io { id: io.id, result });
        let put = expect_transmit(&mut task, now);
        let md5 = BodyDigest::of_with_md5(DATA, true).md5_hex().unwrap();
        assert_eq!(put.request.headers()["x-cos-meta-md5"], md5.as_str());
        // A hash that fails is a source error, before anything is sent.
        let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        let result = IoResult::Failed("gone".into());
        task.handle_input(now, Input::Io { id: io.id, result });
        assert!(matches!(done(&mut task, now), Err(Error::Source(_))));
    }

    #[test]
    fn a_cancel_before_the_upload_runs_aborts_what_the_checkpoint_names() {
        let now = now();
        let o = with_checkpoint();
        let mut task = UploadTask::file(config(), "k", &o, fp(3 * MIB), "me").unwrap();
        task.handle_command(now, Command::Cancel);
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::LoadCheckpoint);
        let result = IoResult::Data(Some(stale(None)));
        task.handle_input(now, Input::Io { id: io.id, result });
        let abort = expect_transmit(&mut task, now);
        assert_eq!(abort.operation, "AbortMultipartUpload");
        answer(&mut task, now, &abort, 204);
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::RemoveCheckpoint);
        task.handle_input(
            now,
            Input::Io {
                id: io.id,
                result: IoResult::Done,
            },
        );
        assert!(matches!(done(&mut task, now), Err(Error::Cancelled)));
        // The same through `discard`; without a checkpoint there is nothing to do.
        let mut task = UploadTask::discard(config(), "k", &UploadOptions::default());
        assert!(matches!(done(&mut task, now), Err(Error::Cancelled)));
    }

    #[test]
    fn a_stream_reads_its_parts_through_the_driver() {
        let now = now();
        let mut task = UploadTask::stream(config(), "k", &UploadOptions::default()).unwrap();
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::ReadStream { len: MIB });
        let result = IoResult::Data(Some(Bytes::from_static(DATA)));
        task.handle_input(now, Input::Io { id: io.id, result });
        // Shorter than a part: the stream ended, and it is one PUT.
        let put = expect_transmit(&mut task, now);
        assert_eq!(put.operation, "PutObject");
    }

    fn give(task: &mut UploadTask, now: Now, io: &Io, result: IoResult) {
        task.handle_input(now, Input::Io { id: io.id, result });
    }

    fn access_key(t: &Transmit) -> String {
        let auth = t.request.headers()["authorization"].to_str().unwrap();
        let f = crate::auth::AuthorizationFields::parse(auth).unwrap();
        f.secret_id
    }

    /// The next request, waiting out retry backoffs (events skipped).
    fn next_transmit(task: &mut UploadTask, now: &mut Now) -> Transmit {
        for _ in 0..100 {
            match task.poll_output(*now) {
                Output::Transmit(t) => return t,
                Output::Event(_) => {}
                Output::Wait { until: Some(at) } => *now = now.advance(at - now.instant),
                Output::Io(io) => read_part(task, *now, &io),
                other => panic!("expected a request, got {other:?}"),
            }
        }
        panic!("no request")
    }

    fn reports(task: &mut UploadTask, now: Now) -> (Vec<(bool, u64)>, Output<UploadOutcome>) {
        let mut seen = Vec::new();
        loop {
            match task.poll_output(now) {
                Output::Event(Event::Report { hashing, progress }) => {
                    seen.push((hashing, progress.loaded))
                }
                Output::Event(_) => {}
                other => return (seen, other),
            }
        }
    }

    /// Progress reaches the user as `Report`s (hashing first, then the upload), only when asked for.
    #[test]
    fn hashing_and_upload_progress_are_reported_when_asked_for() {
        let now = now();
        for asked in [false, true] {
            let mut o = UploadOptions::default().add_meta_md5(true);
            if asked {
                o = o.on_progress(|_| {}).on_hash_progress(|_| {});
            }
            let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
            let (seen, out) = reports(&mut task, now);
            let Output::Io(io) = out else { panic!() };
            give(
                &mut task,
                now,
                &io,
                IoResult::Digest(BodyDigest::of_with_md5(DATA, true)),
            );
            let (more, out) = reports(&mut task, now);
            let Output::Transmit(put) = out else { panic!() };
            answer(&mut task, now, &put, 200);
            let (last, out) = reports(&mut task, now);
            assert!(matches!(out, Output::Done(Ok(_))));
            let all: Vec<_> = seen.into_iter().chain(more).chain(last).collect();
            if asked {
                assert_eq!(all, [(true, 0), (true, 10), (false, 0), (false, 10)]);
            } else {
                assert_eq!(all, []);
            }
        }
    }

    /// A digest of another length than the file's means the file changed: a source error; a failed hash
    /// says why.
    #[test]
    fn a_hash_of_another_length_or_a_failed_hash_is_a_source_error() {
        let now = now();
        let o = UploadOptions::default().add_meta_md5(true);
        let mut task = UploadTask::file(config(), "k", &o, fp(11), "me").unwrap();
        let io = expect_io(&mut task, now);
        give(
            &mut task,
            now,
            &io,
            IoResult::Digest(BodyDigest::of_with_md5(DATA, true)),
        );
        match done(&mut task, now) {
            Err(Error::Source(m)) => assert!(m.contains("changed"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        give(&mut task, now, &io, IoResult::Failed("disk gone".into()));
        match done(&mut task, now) {
            Err(Error::Source(m)) => assert_eq!(m, "disk gone"),
            other => panic!("{other:?}"),
        }
    }

    /// Without a checkpoint nothing is read or removed: the upload is the PUT alone.
    #[test]
    fn without_a_checkpoint_a_small_file_is_one_put_and_nothing_else() {
        let now = now();
        let mut task =
            UploadTask::file(config(), "k", &UploadOptions::default(), fp(10), "me").unwrap();
        let put = expect_transmit(&mut task, now);
        answer(&mut task, now, &put, 200);
        assert_eq!(done(&mut task, now).unwrap().total_len, 10);
        assert!(matches!(
            task.poll_output(now),
            Output::Wait { until: None }
        ));
    }

    /// With a checkpoint path, a finished upload removes the checkpoint file (even when none was found).
    #[test]
    fn with_a_checkpoint_path_success_removes_the_checkpoint() {
        let now = now();
        let mut task = UploadTask::file(config(), "k", &with_checkpoint(), fp(10), "me").unwrap();
        let load = expect_io(&mut task, now);
        give(&mut task, now, &load, IoResult::Data(None));
        let put = expect_transmit(&mut task, now);
        answer(&mut task, now, &put, 200);
        let remove = expect_io(&mut task, now);
        assert_eq!(remove.request, IoRequest::RemoveCheckpoint);
        give(&mut task, now, &remove, IoResult::Done);
        assert_eq!(done(&mut task, now).unwrap().total_len, 10);
    }

    /// The task's own I/O requests have ids of their own: neither equals the other or a request's.
    #[test]
    fn io_and_request_ids_are_distinct() {
        let now = now();
        let mut task = UploadTask::file(config(), "k", &with_checkpoint(), fp(10), "me").unwrap();
        let load = expect_io(&mut task, now);
        give(&mut task, now, &load, IoResult::Data(Some(stale(None))));
        let put = expect_transmit(&mut task, now);
        answer(&mut task, now, &put, 200);
        let abort = expect_transmit(&mut task, now);
        answer(&mut task, now, &abort, 204);
        let remove = expect_io(&mut task, now);
        assert_ne!(load.id, remove.id);
        for own in [load.id, remove.id] {
            assert!(own != put.id && own != abort.id, "{own:?}");
        }
    }

    /// A checkpoint that is not one fails the upload; when the task only discards, it ends `Cancelled`.
    #[test]
    fn an_unreadable_checkpoint_fails_an_upload_but_not_a_discard() {
        let now = now();
        let garbage = IoResult::Data(Some(Bytes::from_static(b"{torn")));
        let mut task = UploadTask::file(config(), "k", &with_checkpoint(), fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        give(&mut task, now, &io, garbage.clone());
        assert!(matches!(
            done(&mut task, now),
            Err(Error::InvalidInput(crate::InvalidInput::Checkpoint(_)))
        ));
        let mut task = UploadTask::discard(config(), "k", &with_checkpoint());
        let io = expect_io(&mut task, now);
        assert_eq!(io.request, IoRequest::LoadCheckpoint);
        give(&mut task, now, &io, garbage);
        assert!(matches!(done(&mut task, now), Err(Error::Cancelled)));
        // A discard with a good checkpoint aborts its upload even when another run's lease is fresh.
        let mut task = UploadTask::discard(config(), "k", &with_checkpoint());
        let io = expect_io(&mut task, now);
        let lease = Lease {
            owner: "other".into(),
            renewed_unix_ms: 1_700_000_000_000,
        };
        give(
            &mut task,
            now,
            &io,
            IoResult::Data(Some(stale(Some(lease)))),
        );
        let abort = expect_transmit(&mut task, now);
        assert_eq!(abort.operation, "AbortMultipartUpload");
    }

    /// The checkpoint is read again exactly when the lease it names expires, not before.
    #[test]
    fn a_lease_is_read_again_at_its_expiry() {
        let now = now();
        let lease = Lease {
            owner: "other".into(),
            renewed_unix_ms: 1_700_000_000_000 - 1_000,
        };
        let mut task =
            UploadTask::file(config(), "k", &with_checkpoint(), fp(3 * MIB), "me").unwrap();
        let io = expect_io(&mut task, now);
        give(
            &mut task,
            now,
            &io,
            IoResult::Data(Some(stale(Some(lease)))),
        );
        let Output::Wait { until: Some(at) } = task.poll_output(now) else {
            panic!()
        };
        let before = now.advance(at - now.instant - Duration::from_millis(1));
        assert!(matches!(task.poll_output(before), Output::Wait { until: Some(t) } if t == at));
        let exactly = now.advance(at - now.instant);
        assert_eq!(
            expect_io(&mut task, exactly).request,
            IoRequest::LoadCheckpoint
        );
    }

    /// New credentials sign the retry of the request in flight (a PUT, an abort) and every later request.
    #[test]
    fn new_credentials_sign_retries_and_later_requests() {
        let mut now = now();
        let o = with_checkpoint();
        let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        task.set_credentials(Credentials::new("id2", "k2"));
        give(&mut task, now, &io, IoResult::Data(Some(stale(None))));
        let put = next_transmit(&mut task, &mut now);
        assert_eq!(access_key(&put), "id2", "a request made after the change");
        answer(&mut task, now, &put, 503);
        task.set_credentials(Credentials::new("id3", "k3"));
        let put = next_transmit(&mut task, &mut now);
        assert_eq!(
            (put.operation, access_key(&put).as_str()),
            ("PutObject", "id3")
        );
        answer(&mut task, now, &put, 200);
        let abort = next_transmit(&mut task, &mut now);
        answer(&mut task, now, &abort, 503);
        task.set_credentials(Credentials::new("id4", "k4"));
        let abort = next_transmit(&mut task, &mut now);
        assert_eq!(
            (abort.operation, access_key(&abort).as_str()),
            ("AbortMultipartUpload", "id4")
        );
    }

    /// Answers a stream read with a whole part.
    fn read_part(task: &mut UploadTask, now: Now, io: &Io) {
        let IoRequest::ReadStream { len } = io.request else {
            panic!("{io:?}")
        };
        let part = Bytes::from(vec![7u8; len as usize]);
        give(task, now, io, IoResult::Data(Some(part)));
    }

    /// Answers the Initiate `init` with upload id `u1`.
    fn answer_initiate(task: &mut UploadTask, now: Now, init: &Transmit) {
        let body = "<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>";
        let response = http::Response::builder()
            .status(200)
            .body(Bytes::from(body))
            .unwrap();
        let id = init.id;
        task.handle_input(
            now,
            Input::Response {
                id,
                response,
                sent: None,
            },
        );
    }

    /// A stream's multipart upload, up to its Initiate (two full parts read).
    fn stream_at_initiate(now: Now) -> (UploadTask, Transmit) {
        let mut task = UploadTask::stream(config(), "k", &UploadOptions::default()).unwrap();
        for _ in 0..100 {
            match task.poll_output(now) {
                Output::Io(io) => read_part(&mut task, now, &io),
                Output::Transmit(t) => {
                    assert_eq!(t.operation, "InitiateMultipartUpload");
                    return (task, t);
                }
                Output::Event(_) => {}
                other => panic!("{other:?}"),
            }
        }
        panic!("no Initiate")
    }

    /// A stream's multipart upload gets the answers, the new credentials and the commands.
    #[test]
    fn a_multipart_upload_gets_answers_credentials_and_commands() {
        let mut now = now();
        let (mut task, init) = stream_at_initiate(now);
        answer(&mut task, now, &init, 503);
        task.set_credentials(Credentials::new("id2", "k2"));
        let init = next_transmit(&mut task, &mut now);
        assert_eq!(
            (init.operation, access_key(&init).as_str()),
            ("InitiateMultipartUpload", "id2")
        );
        answer_initiate(&mut task, now, &init);
        let part = next_transmit(&mut task, &mut now);
        assert_eq!(part.operation, "UploadPart");
        task.handle_command(now, Command::Cancel);
        let abort = loop {
            let t = next_transmit(&mut task, &mut now);
            if t.operation == "AbortMultipartUpload" {
                break t;
            }
        };
        assert!(abort.request.uri().query().unwrap().contains("uploadId=u1"));
    }

    /// A pause during a multipart upload pauses it (`is_paused`), and resume continues it.
    #[test]
    fn pause_and_resume_reach_the_multipart_upload() {
        let now = now();
        let (mut task, init) = stream_at_initiate(now);
        assert!(!task.is_paused());
        task.handle_command(now, Command::Pause);
        answer_initiate(&mut task, now, &init);
        let mut paused = false;
        for _ in 0..100 {
            match task.poll_output(now) {
                Output::Event(Event::Paused) => paused = true,
                Output::Event(_) => {}
                Output::Io(io) => read_part(&mut task, now, &io),
                Output::Wait { until: None } => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(paused && task.is_paused());
        task.handle_command(now, Command::Resume);
        assert!(!task.is_paused());
        let mut now = now;
        assert_eq!(next_transmit(&mut task, &mut now).operation, "UploadPart");
    }

    /// A pause while the checkpoint is read is not a cancel: the upload goes ahead.
    #[test]
    fn a_pause_before_the_upload_runs_does_not_cancel_it() {
        let now = now();
        let mut task = UploadTask::file(config(), "k", &with_checkpoint(), fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        task.handle_command(now, Command::Pause);
        give(&mut task, now, &io, IoResult::Data(None));
        assert_eq!(expect_transmit(&mut task, now).operation, "PutObject");
    }

    fn answer_xml(task: &mut UploadTask, now: Now, t: &Transmit, body: &str) {
        let response = http::Response::builder()
            .status(200)
            .body(Bytes::from(body.to_string()))
            .unwrap();
        let (id, sent) = (t.id, None);
        task.handle_input(now, Input::Response { id, response, sent });
    }

    /// A cancel before the upload runs, with no checkpoint: with `resume_unfinished` (the default) the task
    /// still finds the upload it would have continued (an earlier run's) and aborts it, as a cancel during
    /// the search does (simulation seed 20396); without it, the task ends at once.
    #[test]
    fn a_cancel_before_the_search_aborts_the_upload_it_would_have_continued() {
        let now = now();
        let o = UploadOptions::default().add_meta_md5(true);
        let mut task = UploadTask::file(config(), "k", &o, fp(3 * MIB), "me").unwrap();
        let io = expect_io(&mut task, now);
        assert!(matches!(io.request, IoRequest::Digest { .. }));
        task.handle_command(now, Command::Cancel);
        let list = expect_transmit(&mut task, now);
        assert_eq!(list.operation, "ListMultipartUploads");
        answer_xml(
            &mut task,
            now,
            &list,
            "<ListMultipartUploadsResult><Bucket>b-1250000000</Bucket><IsTruncated>false</IsTruncated>\
             <Upload><Key>k</Key><UploadId>u9</UploadId><Initiated>2024-01-01T00:00:00.000Z</Initiated>\
             </Upload></ListMultipartUploadsResult>",
        );
        let parts = expect_transmit(&mut task, now);
        assert_eq!(parts.operation, "ListParts");
        answer_xml(
            &mut task,
            now,
            &parts,
            "<ListPartsResult><Bucket>b-1250000000</Bucket><Key>k</Key><UploadId>u9</UploadId>\
             <IsTruncated>false</IsTruncated></ListPartsResult>",
        );
        let abort = expect_transmit(&mut task, now);
        assert_eq!(abort.operation, "AbortMultipartUpload");
        assert!(abort.request.uri().query().unwrap().contains("uploadId=u9"));
        answer(&mut task, now, &abort, 204);
        assert!(matches!(done(&mut task, now), Err(Error::Cancelled)));

        let o = o.resume_unfinished(false);
        let mut task = UploadTask::file(config(), "k", &o, fp(3 * MIB), "me").unwrap();
        expect_io(&mut task, now);
        task.handle_command(now, Command::Cancel);
        assert!(matches!(done(&mut task, now), Err(Error::Cancelled)));
    }

    /// A cancel while the file is hashed ends the task at once: nothing is sent, and the upload a
    /// checkpoint names is aborted.
    #[test]
    fn a_cancel_while_hashing_ends_without_uploading() {
        let now = now();
        let o = UploadOptions::default().add_meta_md5(true);
        let mut task = UploadTask::file(config(), "k", &o, fp(10), "me").unwrap();
        let io = expect_io(&mut task, now);
        assert!(matches!(io.request, IoRequest::Digest { .. }));
        task.handle_command(now, Command::Cancel);
        give(
            &mut task,
            now,
            &io,
            IoResult::Digest(BodyDigest::of_with_md5(DATA, true)),
        );
        assert!(matches!(done(&mut task, now), Err(Error::Cancelled)));

        let o = with_checkpoint().add_meta_md5(true);
        let mut task = UploadTask::file(config(), "k", &o, fp(3 * MIB), "me").unwrap();
        let io = expect_io(&mut task, now);
        give(&mut task, now, &io, IoResult::Data(Some(stale(None))));
        let io = expect_io(&mut task, now);
        assert!(matches!(io.request, IoRequest::Digest { .. }));
        task.handle_command(now, Command::Cancel);
        let abort = expect_transmit(&mut task, now);
        assert_eq!(abort.operation, "AbortMultipartUpload");
    }
}
