//! [`MultipartUpload`]: a whole multipart upload as one sans-IO [`Task`].
//!
//! # What it does
//!
//! 1. **Initiate** (`POST ?uploads`), with the object's headers and `x-cos-forbid-overwrite` when asked.
//! 2. **Upload the parts**: at most `max_in_flight` `UploadPart` requests at a time, lowest pending part
//!    first, each a [`RequestBody::Source`] range the driver streams while computing its [`SentDigest`]. The
//!    UploadPart operation checks the ETag against the MD5 the driver measured; the task records each part's
//!    CRC-64. A failed part is retried with backoff (the [`RetryPolicy`](crate::retry::RetryPolicy) of the
//!    config, seeded jitter), one clock-skew retry included; retry timers are ordered by `Instant` and the
//!    task answers `Wait { until: next timer }`.
//! 3. **Complete** with the parts sorted and their ETags quoted (`x-cos-forbid-overwrite` again when asked).
//!    The CRC-64s of the parts, combined with [`Crc64::combine`], must equal the whole object's
//!    `x-cos-hash-crc64ecma`, else the task fails with [`Error::Integrity`]. A Complete that gets
//!    `NoSuchUpload` when an earlier Complete may have gone through (a retried one, whose first attempt
//!    succeeded but lost its answer; or any, in an upload taken over from an earlier run by
//!    [`resume`](MultipartUpload::resume) or [`find_unfinished`](MultipartUpload::find_unfinished), whose
//!    Complete may land late) is confirmed with a HEAD: the object is accepted if its ETag ends with
//!    `-<part count>`, its length matches and its CRC-64 matches. If no object stands there after the
//!    first Complete of a taken-over upload, that upload was aborted or expired: the upload starts over
//!    ([`Event::Restarted`]); another object, or none after a retried Complete, fails the task with the
//!    `NoSuchUpload`; a HEAD that keeps failing fails it with the HEAD's error (the outcome is unknown;
//!    the checkpoint is kept). Every success ends with an [`Event::Progress`] at the total.
//!
//! # Failure and resumption
//!
//! * A part that still fails after the retry limit **fails the task with its cause, and the upload is not
//!   aborted**: [`MultipartUpload::checkpoint`] stays valid, and [`MultipartUpload::resume`] continues later.
//!   A Complete that still fails (5xx, lost answers) may have gone through all the same: a HEAD decides
//!   first, as after a lost answer, and only an object that does not match fails the task. A stream, which
//!   cannot be resumed, aborts its upload whenever it fails.
//! * [`MultipartUpload::resume`] starts from a [`Checkpoint`]: it lists the upload's parts (List Parts) and
//!   keeps only those whose ETag and size match the checkpoint; the others are sent again. If the source's
//!   fingerprint changed, it aborts the stale upload id first and starts a new upload
//!   ([`Event::Restarted`]); if the upload no longer exists, it starts a new one too. So does an upload
//!   taken over from an earlier run (a checkpoint or a search) whose part meets `NoSuchUpload` mid-way (that
//!   run's late Complete or Abort landed), once the parts still in flight are answered.
//! * [`MultipartUpload::find_unfinished`] does what the official SDKs do without a checkpoint: List Multipart
//!   Uploads with `prefix=key`, take the newest upload of exactly this key that holds a part of the planned
//!   size (of the [`MAX_CANDIDATES`] newest; the newest if none does: an upload whose Initiate answer was lost
//!   is empty and may be as new as the one that holds the parts), list its parts, and keep the parts
//!   whose size matches the plan **and whose MD5 matches the local bytes**. The core cannot read the source,
//!   so for each such part it asks for an [`IoRequest::Digest`] of that range (an [`Output::Io`]); the
//!   driver hashes it (with [`BodyDigest`]) and answers [`IoResult::Digest`]. Parts that need no digest
//!   are uploaded meanwhile; Complete waits for every answer. A driver that cannot hash answers
//!   [`IoResult::Failed`], and the part is sent again.
//!
//! # Checkpoint storage
//!
//! With [`persist_checkpoint`](MultipartUpload::persist_checkpoint) (implied by
//! [`lease_owner`](MultipartUpload::lease_owner)), the task asks for an [`IoRequest::StoreCheckpoint`]
//! with the checkpoint's bytes ([`checkpoint_to_bytes`](super::file::checkpoint_to_bytes)) whenever it
//! changes (the upload was initiated or resumed, a part finished, the lease is due, the task paused).
//! Without it, the checkpoint is only available from [`MultipartUpload::checkpoint`].
//!
//! # Commands
//!
//! [`pause`](MultipartUpload::pause) stops new requests and emits [`Event::Paused`] once nothing is in flight
//! (the checkpoint is then final for this run: drop the task and resume it later, or call
//! [`resume_sending`](MultipartUpload::resume_sending)). [`cancel`](MultipartUpload::cancel) drops pending
//! parts, aborts the upload and ends with [`Error::Cancelled`]; a cancel that arrives once Complete was sent
//! waits for its answer, and a successful Complete then wins. A cancel during a find-unfinished search lets
//! the search finish and aborts the upload it would have continued. [`set_credentials`](MultipartUpload::set_credentials)
//! swaps (STS) credentials for the following requests.
//!
//! # Streams of unknown length
//!
//! [`MultipartUpload::stream`] uploads bytes the driver pushes part by part ([`push_part`](MultipartUpload::push_part),
//! [`finish_stream`](MultipartUpload::finish_stream)) as [`RequestBody::Bytes`]. The task keeps at most
//! `max_in_flight + 1` parts in memory; [`wants_part`](MultipartUpload::wants_part) says when the driver may push
//! the next one (check it whenever the task returns `Wait`). A stream that ends before its first part is full
//! is sent with a single PUT Object. The 10,001st part fails the task with [`InvalidInput`] and aborts the
//! upload; so does a source failure reported with [`fail_source`](MultipartUpload::fail_source), ending with
//! [`Error::Source`]. Streams have no checkpoint (their bytes cannot be read again).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::checkpoint::{
    unix_ms, Checkpoint, FinishedPart, Lease, SourceFingerprint, CHECKPOINT_VERSION, LEASE_RENEW,
};
use super::plan::{PartPlan, DEFAULT_PART_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::checksum::{BodyDigest, Crc64, SentDigest};
use crate::config::{validate_file_key, Config};
use crate::credentials::Credentials;
use crate::error::{Error, InvalidInput};
use crate::ops::{
    AbortMultipartUpload, CompleteMultipartUpload, CompletedPart, HeadObject,
    InitiateMultipartUpload, ListMultipartUploads, ListParts, ObjectOptions, Operation, PutObject,
    UploadPart,
};
use crate::retry::{AfterFailure, Attempts, Rng};
use crate::task::{
    sign, Command, Event, Input, Io, IoRequest, IoResult, Now, Output, RequestBody, RequestId,
    Task, Transmit,
};

/// The most List Multipart Uploads pages a search for an unfinished upload reads: a server whose listing
/// never ends fails the task with [`Error::UnexpectedResponse`] instead of looping forever.
pub const MAX_LIST_PAGES: u32 = 1000;

/// The most uploads of the key a search for an unfinished upload considers (the newest ones): it continues
/// the newest that holds a part of the plan, or the newest if none does.
pub const MAX_CANDIDATES: usize = 8;

/// The default number of parts in flight at once (as the official SDKs' `ChunkParallelLimit`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 3;

/// How a multipart upload is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadConfig {
    /// Part size; `None` picks it with [`PartPlan::auto`] (for streams: [`DEFAULT_PART_SIZE`], which limits
    /// a stream to 10,000 MiB; set a larger size for larger streams).
    pub part_size: Option<u64>,
    /// Parts in flight at once (at least 1; default 3).
    pub max_in_flight: usize,
    /// Headers of the object, sent with Initiate (Upload Part takes only the traffic limit from them).
    pub options: ObjectOptions,
    /// Fail rather than replace an existing object: `x-cos-forbid-overwrite: true` on Initiate *and*
    /// Complete.
    pub forbid_overwrite: bool,
    /// Check the whole object's CRC-64 against the parts' (default true).
    pub verify_crc64: bool,
    /// UploadAddMetaMd5: the hex MD5 of the whole source, stored as `x-cos-meta-md5`. The driver computes it
    /// (it costs a read of the source before the upload).
    pub meta_md5: Option<String>,
    /// Also compute every part's MD5 while sending it and check the ETags against them (default false: each
    /// part's `x-cos-hash-crc64ecma` is checked against the CRC-64 computed while sending, and the
    /// object's against the combined CRC-64). MD5 costs about 1.3 s of CPU per GiB here, CRC-64 about 0.08 s.
    /// A `Content-MD5` in [`UploadConfig::options`] turns it on for a single PUT. With it off, a part answer
    /// without a CRC-64 is an [`crate::error::IntegrityError::Unverified`] error.
    pub verify_md5: bool,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            part_size: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            options: ObjectOptions::default(),
            forbid_overwrite: false,
            verify_crc64: true,
            meta_md5: None,
            verify_md5: false,
        }
    }
}

/// What a finished upload reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadOutcome {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The multipart upload id (`None` when a stream was sent with a single PUT).
    pub upload_id: Option<String>,
    /// The object's ETag, quoted (`"<hex>-<parts>"` for a multipart object).
    pub etag: String,
    /// The whole object's CRC-64 as COS reported it.
    pub crc64: Option<u64>,
    /// `Location` from Complete.
    pub location: Option<String>,
    /// `x-cos-version-id`, when the bucket is versioned.
    pub version_id: Option<String>,
    /// Number of parts (0 for a single PUT).
    pub parts: u32,
    /// Object length in bytes.
    pub total_len: u64,
    /// `x-cos-request-id` of the last request.
    pub request_id: Option<String>,
    /// True when a lost Complete answer was confirmed with HEAD Object.
    pub confirmed_by_head: bool,
}

impl UploadOutcome {
    /// The outcome of a file sent with a single PUT Object (below the multipart threshold).
    pub fn from_put(
        bucket: &str,
        key: &str,
        total_len: u64,
        put: crate::ops::PutObjectOutput,
    ) -> UploadOutcome {
        UploadOutcome {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: None,
            etag: put.etag,
            crc64: put.crc64,
            location: None,
            version_id: put.version_id,
            parts: 0,
            total_len,
            request_id: put.request_id,
            confirmed_by_head: false,
        }
    }
}

/// Bytes confirmed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadProgress {
    /// Bytes in confirmed parts.
    pub loaded: u64,
    /// Total bytes (`None` for a stream that has not ended).
    pub total: Option<u64>,
    /// Confirmed parts.
    pub parts_done: u32,
    /// All parts (`None` for a stream that has not ended).
    pub parts_total: Option<u32>,
}

#[derive(Clone, Debug)]
enum PartState {
    Pending,
    InFlight,
    Backoff(Instant),
    /// Listed on the server with the planned size; waiting for the driver's digest to compare ETags.
    NeedDigest {
        etag: String,
    },
    Done {
        etag: String,
        crc64: Option<u64>,
    },
}

#[derive(Debug)]
struct Part {
    offset: u64,
    len: u64,
    state: PartState,
    attempts: Attempts,
    /// Stream mode: the part's bytes and their digest, until the part is done.
    bytes: Option<(Bytes, SentDigest)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Stream mode: waiting for a full first part (or the end of the stream).
    AwaitFirstPart,
    /// Abort a checkpoint's upload whose source changed, then initiate.
    AbortStale {
        upload_id: String,
    },
    Initiate,
    /// List Multipart Uploads, looking for the newest uploads of the key.
    FindUploads {
        key_marker: Option<String>,
        upload_id_marker: Option<String>,
        /// The newest uploads of the key so far, newest first: (initiated, listing index, upload id).
        best: Vec<(String, u64, String)>,
        /// Pages read so far.
        pages: u32,
    },
    /// List Parts of `upload_id`; `from_checkpoint` selects the comparison.
    ListParts {
        marker: Option<u32>,
        from_checkpoint: bool,
    },
    Upload,
    Complete,
    /// HEAD the object to see whether a Complete went through after all. When it did not: see
    /// [`Unconfirmed`].
    Head {
        complete_error: Box<Error>,
        unconfirmed: Unconfirmed,
    },
    /// Stream mode: the whole stream in one PUT.
    SinglePut,
    /// Abort after a cancel, a stream failure or a stream that grew too long; then end with `reason`.
    Abort {
        reason: Box<Error>,
    },
    Finished,
}

/// What follows a HEAD that does not confirm a Complete (the object is absent, or is another one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unconfirmed {
    /// Fail with the Complete's error: our own Complete may have gone through and been overwritten since.
    Fail,
    /// Start the upload over when the object is absent (the upload taken over was aborted or expired
    /// before any Complete landed); fail when another object stands there (it is not ours to replace).
    RestartIfAbsent,
    /// Start the upload over either way (a checkpoint's upload found gone before any Complete of this run).
    Restart,
    /// The upload is gone (an Abort after a Complete of ours answered `NoSuchUpload`): fail with the error
    /// that stopped the task; there is nothing left to abort.
    Gone,
}

#[derive(Debug, Default)]
struct Control {
    in_flight: Option<RequestId>,
    not_before: Option<Instant>,
    attempts: Attempts,
}

#[derive(Debug)]
struct StreamState {
    ended: bool,
    /// The last pushed part was short: no more parts may follow.
    short_tail: bool,
    total: u64,
}

/// A multipart upload as a [`Task`]; see the [module docs](self).
#[derive(Debug)]
pub struct MultipartUpload {
    config: Config,
    key: String,
    upload: UploadConfig,
    part_size: u64,
    plan: Option<PartPlan>,
    stream: Option<StreamState>,
    source: SourceFingerprint,
    upload_id: Option<String>,
    parts: Vec<Part>,
    pending: BTreeSet<u32>,
    timers: BTreeSet<(Instant, u32)>,
    in_flight: HashMap<RequestId, u32>,
    /// Parts listed by the server while verifying: number → (etag, size).
    listed: BTreeMap<u32, (String, u64)>,
    /// The checkpoint's parts, while they are being verified.
    claimed: Vec<FinishedPart>,
    /// Find-unfinished mode: the next candidates (older, or listed earlier in the same second) to try if
    /// the one being listed holds no part of the plan; the newest, to fall back on if none does.
    candidates: VecDeque<String>,
    newest_candidate: Option<String>,
    step: Step,
    control: Control,
    rng: Rng,
    next_id: u64,
    events: VecDeque<Event>,
    done: Option<Result<UploadOutcome, Error>>,
    finished: bool,
    paused: bool,
    paused_announced: bool,
    /// Set by cancel, a source failure or a too-long stream: the error the task will end with once the
    /// upload is aborted.
    stopping: Option<Error>,
    complete_sent: u32,
    /// The upload was taken over from an earlier run (a checkpoint or a search): that run may have sent a
    /// Complete that lands before ours, so a `NoSuchUpload` from our first Complete is confirmed with HEAD.
    taken_over: bool,
    /// The `loaded` of the last [`Event::Progress`] emitted.
    reported: Option<u64>,
    /// [`MAX_PARTS`]; lowered by tests of the stream limit.
    max_parts: u32,
    /// The lease owner written into checkpoints (see [`MultipartUpload::lease_owner`]).
    owner: Option<String>,
    /// When the lease is renewed next (a checkpoint store even if no part finished).
    renew_at: Option<Instant>,
    /// The wall-clock time of the last call that carried one: the lease's renewal time.
    clock: Option<SystemTime>,
    /// Ask the driver to store the checkpoint when it changes.
    persist: bool,
    /// The checkpoint changed since it was last handed out for storage.
    store_due: bool,
    /// Paused and idle: [`Event::Paused`] follows once the checkpoint is stored.
    pause_to_announce: bool,
    /// A part of a taken-over upload met `NoSuchUpload`: once the parts in flight are answered (their
    /// answers no longer count), the upload starts over.
    restart_when_idle: bool,
    /// Checkpoint stores asked for and not answered yet.
    stores: BTreeSet<RequestId>,
    /// Part digests to ask for (find-unfinished mode): part numbers.
    digests_due: VecDeque<u32>,
    /// Part digests asked for: id → part number.
    digests: HashMap<RequestId, u32>,
    /// Stream mode: read parts with [`IoRequest::ReadStream`].
    stream_reads: bool,
    /// The stream read asked for and not answered yet.
    reading: Option<RequestId>,
}

fn bare(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

fn same_etag(a: &str, b: &str) -> bool {
    bare(a).eq_ignore_ascii_case(bare(b))
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", bare(etag))
}

fn response_date(response: &http::Response<Bytes>) -> Option<String> {
    crate::ops::header(response, "date")
}

impl MultipartUpload {
    fn base(
        config: Config,
        key: String,
        upload: UploadConfig,
        part_size: u64,
        source: SourceFingerprint,
    ) -> Self {
        let rng = Rng::new(config.retry.seed ^ 0x6d75_6c74_6970_6172);
        MultipartUpload {
            config,
            key,
            upload,
            part_size,
            plan: None,
            stream: None,
            source,
            upload_id: None,
            parts: Vec::new(),
            pending: BTreeSet::new(),
            timers: BTreeSet::new(),
            in_flight: HashMap::new(),
            listed: BTreeMap::new(),
            claimed: Vec::new(),
            candidates: VecDeque::new(),
            newest_candidate: None,
            step: Step::Initiate,
            control: Control::default(),
            rng,
            next_id: 0,
            events: VecDeque::new(),
            done: None,
            finished: false,
            paused: false,
            paused_announced: false,
            stopping: None,
            max_parts: MAX_PARTS,
            complete_sent: 0,
            taken_over: false,
            reported: None,
            owner: None,
            renew_at: None,
            clock: None,
            persist: false,
            store_due: false,
            pause_to_announce: false,
            restart_when_idle: false,
            stores: BTreeSet::new(),
            digests_due: VecDeque::new(),
            digests: HashMap::new(),
            stream_reads: false,
            reading: None,
        }
    }

    fn check_inputs(config: &Config, key: &str, upload: &UploadConfig) -> Result<(), Error> {
        validate_file_key(key)?;
        if let Some(md5) = &upload.meta_md5 {
            if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(InvalidInput::Parameter {
                    name: "meta_md5",
                    reason: "expected 32 hex digits".into(),
                }
                .into());
            }
        }
        // Build the Initiate request once so that bad headers fail before anything is sent.
        Self::initiate_op(key, upload).to_request(config)?;
        Ok(())
    }

    fn with_plan(mut self, plan: PartPlan) -> Self {
        self.parts = plan
            .parts()
            .map(|r| Part {
                offset: r.offset,
                len: r.len,
                state: PartState::Pending,
                attempts: Attempts::default(),
                bytes: None,
            })
            .collect();
        self.pending = (1..=plan.part_count()).collect();
        self.plan = Some(plan);
        self
    }

    /// A new upload of `total_len` bytes of the driver's source to `key`. Invalid input (key, part size,
    /// headers) fails here, before anything is sent.
    ///
    /// ```
    /// use std::time::{Instant, SystemTime};
    /// use cos_core::task::{Now, Output, Task};
    /// use cos_core::upload::{MultipartUpload, UploadConfig};
    /// use cos_core::{Config, Credentials};
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let mut task = MultipartUpload::new(config, "big.bin", 5 << 20, UploadConfig::default())?;
    /// assert_eq!(task.plan().unwrap().part_count(), 5);
    /// let now = Now { instant: Instant::now(), system: SystemTime::now() };
    /// let Output::Transmit(t) = task.poll_output(now) else { panic!() };
    /// assert_eq!(t.operation, "InitiateMultipartUpload");
    /// # Ok::<(), cos_core::Error>(())
    /// ```
    pub fn new(
        config: Config,
        key: impl Into<String>,
        total_len: u64,
        upload: UploadConfig,
    ) -> Result<Self, Error> {
        let key = key.into();
        Self::check_inputs(&config, &key, &upload)?;
        let plan = PartPlan::with_part_size(total_len, upload.part_size)?;
        let source = SourceFingerprint {
            size: total_len,
            mtime_nanos: None,
        };
        Ok(Self::base(config, key, upload, plan.part_size(), source).with_plan(plan))
    }

    /// Records the source's fingerprint in the checkpoints this task writes (by default only the length is
    /// recorded). The size must equal the upload's length.
    pub fn source_fingerprint(mut self, source: SourceFingerprint) -> Result<Self, Error> {
        if Some(source.size) != self.plan.map(|p| p.total_len()) {
            return Err(InvalidInput::Checkpoint(format!(
                "the source is {} bytes, the upload {:?}",
                source.size,
                self.plan.map(|p| p.total_len())
            ))
            .into());
        }
        self.source = source;
        Ok(self)
    }

    /// Marks the checkpoints this task writes with a [`Lease`] held by `owner` (a name unique to this
    /// process and run, e.g. its pid and a random number), and renews it every
    /// [`super::checkpoint::LEASE_RENEW`] with a checkpoint store while the upload runs, even
    /// when no part finishes. Another run that finds the lease live refuses to continue the same upload
    /// ([`LeaseCheck`](super::checkpoint::LeaseCheck)). Implies
    /// [`persist_checkpoint`](Self::persist_checkpoint).
    pub fn lease_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self.persist = true;
        self
    }

    /// Asks the driver to store the checkpoint ([`IoRequest::StoreCheckpoint`]) whenever it changes (see
    /// the [module docs](self#checkpoint-storage)). Streams have no checkpoint.
    pub fn persist_checkpoint(mut self) -> Self {
        self.persist = true;
        self
    }

    /// Stream mode: the task reads its parts itself with [`IoRequest::ReadStream`] (instead of the driver
    /// pushing them with [`push_part`](Self::push_part)).
    pub fn read_stream(mut self) -> Self {
        self.stream_reads = true;
        self
    }

    /// Continues the upload of a [`Checkpoint`]; `current` is the source's fingerprint now.
    ///
    /// The checkpoint's parts are verified with List Parts: a part whose ETag or size differs on the server,
    /// or that is missing there, is sent again. If `current` does not match the checkpoint, the stale upload
    /// is aborted and a new one started (emitting [`Event::Restarted`]); so too if the upload no longer
    /// exists. `upload` gives the headers used if a new upload has to be initiated; its part size is ignored
    /// unless the upload starts over.
    pub fn resume(
        config: Config,
        checkpoint: Checkpoint,
        current: SourceFingerprint,
        upload: UploadConfig,
    ) -> Result<Self, Error> {
        let plan = checkpoint.validate()?;
        if checkpoint.bucket != config.bucket.as_str() {
            return Err(InvalidInput::Checkpoint(format!(
                "it belongs to bucket {}, not {}",
                checkpoint.bucket, config.bucket
            ))
            .into());
        }
        Self::check_inputs(&config, &checkpoint.key, &upload)?;
        if !checkpoint.matches(&current) {
            let plan = PartPlan::with_part_size(current.size, upload.part_size)?;
            let mut task = Self::base(config, checkpoint.key, upload, plan.part_size(), current)
                .with_plan(plan);
            task.step = Step::AbortStale {
                upload_id: checkpoint.upload_id.clone(),
            };
            task.events.push_back(Event::Restarted {
                previous_upload_id: checkpoint.upload_id,
                reason: "the source changed since the checkpoint was written",
            });
            return Ok(task);
        }
        let mut task =
            Self::base(config, checkpoint.key, upload, plan.part_size(), current).with_plan(plan);
        task.upload_id = Some(checkpoint.upload_id);
        task.taken_over = true;
        task.claimed = checkpoint.parts;
        task.step = Step::ListParts {
            marker: None,
            from_checkpoint: true,
        };
        Ok(task)
    }

    /// Continues the newest unfinished upload of exactly `key` that holds a part of the plan (else the
    /// newest), found with List Multipart Uploads, as the official SDKs do; starts a new upload when there is
    /// none. Other uploads of the key are left alone (they may be someone else's). Listed parts of the planned size are kept
    /// only once the driver confirmed their MD5 (see [`IoRequest::Digest`]). The plan must be the one the unfinished upload was started with,
    /// so give the same part size.
    pub fn find_unfinished(
        config: Config,
        key: impl Into<String>,
        total_len: u64,
        upload: UploadConfig,
    ) -> Result<Self, Error> {
        let mut task = Self::new(config, key, total_len, upload)?;
        task.step = Step::FindUploads {
            key_marker: None,
            upload_id_marker: None,
            best: Vec::new(),
            pages: 0,
        };
        Ok(task)
    }

    /// An upload of a stream of unknown length whose bytes the driver pushes part by part (see the
    /// [module docs](self#streams-of-unknown-length)).
    pub fn stream(
        config: Config,
        key: impl Into<String>,
        upload: UploadConfig,
    ) -> Result<Self, Error> {
        let key = key.into();
        Self::check_inputs(&config, &key, &upload)?;
        let part_size = upload.part_size.unwrap_or(DEFAULT_PART_SIZE);
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(InvalidInput::Size {
                what: "part",
                size: part_size,
                limit: "a part size must be in 1 MiB..=5 GiB",
            }
            .into());
        }
        let source = SourceFingerprint {
            size: 0,
            mtime_nanos: None,
        };
        let mut task = Self::base(config, key, upload, part_size, source);
        task.stream = Some(StreamState {
            ended: false,
            short_tail: false,
            total: 0,
        });
        task.step = Step::AwaitFirstPart;
        Ok(task)
    }

    // ---- getters ----

    /// The plan (`None` for a stream).
    pub fn plan(&self) -> Option<PartPlan> {
        self.plan
    }

    /// The part size: every part but the last has this length (for a stream, the bytes of each
    /// [`push_part`](Self::push_part)).
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The object key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The upload id, once initiated (or taken from a checkpoint).
    pub fn upload_id(&self) -> Option<&str> {
        self.upload_id.as_deref()
    }

    /// The config, with any clock offset learned so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes and parts confirmed so far.
    pub fn progress(&self) -> UploadProgress {
        let (mut loaded, mut done) = (0, 0);
        for p in &self.parts {
            if matches!(p.state, PartState::Done { .. }) {
                loaded += p.len;
                done += 1;
            }
        }
        let known = self.stream.as_ref().map_or(true, |s| s.ended);
        UploadProgress {
            loaded,
            total: known.then(|| self.total_len()),
            parts_done: done,
            parts_total: known.then_some(self.parts.len() as u32),
        }
    }

    fn total_len(&self) -> u64 {
        match (&self.plan, &self.stream) {
            (Some(p), _) => p.total_len(),
            (None, Some(s)) => s.total,
            (None, None) => 0,
        }
    }

    /// The resumable state, once the upload has an id (`None` before, and always for streams). It stays
    /// available after the task failed or was paused.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let plan = self.plan?;
        let upload_id = self.upload_id.clone()?;
        if matches!(self.step, Step::AbortStale { .. }) {
            return None;
        }
        let mut parts: Vec<FinishedPart> = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.state {
                PartState::Done { etag, crc64 } => Some(FinishedPart {
                    number: i as u32 + 1,
                    etag: etag.clone(),
                    crc64: *crc64,
                    len: p.len,
                }),
                _ => None,
            })
            .collect();
        if matches!(
            self.step,
            Step::ListParts {
                from_checkpoint: true,
                ..
            }
        ) {
            // Still verifying: the checkpoint's parts are not confirmed yet, but not refuted either.
            parts = self.claimed.clone();
        }
        Some(Checkpoint {
            version: CHECKPOINT_VERSION,
            bucket: self.config.bucket.to_string(),
            key: self.key.clone(),
            upload_id,
            part_size: plan.part_size(),
            total_len: plan.total_len(),
            source: self.source,
            parts,
            lease: self.owner.as_ref().map(|owner| Lease {
                owner: owner.clone(),
                renewed_unix_ms: self.clock.map_or(0, unix_ms),
            }),
        })
    }

    // ---- commands ----

    /// Stops sending new requests. Once nothing is in flight (and, with
    /// [`persist_checkpoint`](Self::persist_checkpoint), the checkpoint is stored) the task emits
    /// [`Event::Paused`]; its checkpoint is then final until [`resume_sending`](Self::resume_sending).
    pub fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            self.paused_announced = false;
        }
    }

    /// Starts sending again after [`pause`](Self::pause).
    pub fn resume_sending(&mut self) {
        self.paused = false;
        self.paused_announced = false;
        self.pause_to_announce = false;
    }

    /// Whether the task is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Drops pending parts, aborts the upload and ends with [`Error::Cancelled`] (see the module docs for a
    /// cancel during Complete).
    pub fn cancel(&mut self) {
        self.stop_with(Error::Cancelled);
    }

    /// Uses these credentials for every request signed from now on (e.g. refreshed STS credentials).
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.config.credentials = credentials;
    }

    /// Find-unfinished mode: the digest of part `part`'s bytes, as asked by an [`IoRequest::Digest`]
    /// (`None` if the driver cannot compute it: the part is then sent again). A part whose MD5 differs from
    /// the ETag on the server is sent again.
    pub(crate) fn part_digest(&mut self, part: u32, digest: Option<SentDigest>) {
        let Some(p) = part
            .checked_sub(1)
            .and_then(|i| self.parts.get_mut(i as usize))
        else {
            return;
        };
        let PartState::NeedDigest { etag } = &p.state else {
            return;
        };
        let etag = quoted(etag);
        match digest {
            Some(d) if d.len == p.len && d.md5_hex().is_some_and(|m| same_etag(&etag, &m)) => {
                p.state = PartState::Done {
                    etag: etag.clone(),
                    crc64: Some(d.crc64),
                };
                let len = p.len;
                self.part_done_events(part, etag, len);
            }
            _ => {
                p.state = PartState::Pending;
                self.pending.insert(part);
            }
        }
    }

    /// Stream mode: whether the task can take the next part now (the stream has not ended and fewer than
    /// `max_in_flight + 1` parts are held).
    pub fn wants_part(&self) -> bool {
        let Some(s) = &self.stream else { return false };
        !s.ended
            && !s.short_tail
            && self.done.is_none()
            && !self.finished
            && self.stopping.is_none()
            && self.buffered() <= self.max_in_flight()
    }

    fn buffered(&self) -> usize {
        self.parts.iter().filter(|p| p.bytes.is_some()).count()
    }

    fn max_in_flight(&self) -> usize {
        self.upload.max_in_flight.max(1)
    }

    /// Stream mode: the bytes of the next part: exactly the part size, except the last part, which may be
    /// shorter (no part may follow a short one). Refused without effect when [`wants_part`](Self::wants_part)
    /// is false; the 10,001st part fails the task (and aborts the upload).
    pub fn push_part(&mut self, bytes: impl Into<Bytes>) -> Result<(), Error> {
        let bytes = bytes.into();
        let part_size = self.part_size;
        let Some(s) = &self.stream else {
            return Err(InvalidInput::Parameter {
                name: "push_part",
                reason: "the upload is not a stream".into(),
            }
            .into());
        };
        let refuse = |reason: &str| -> Result<(), Error> {
            Err(InvalidInput::Parameter {
                name: "push_part",
                reason: reason.into(),
            }
            .into())
        };
        if s.ended || self.finished || self.done.is_some() || self.stopping.is_some() {
            return refuse("the stream has ended or the upload is stopping");
        }
        if s.short_tail {
            return refuse("a part shorter than the part size was the last one");
        }
        if bytes.is_empty() || bytes.len() as u64 > part_size {
            return Err(InvalidInput::Size {
                what: "stream part",
                size: bytes.len() as u64,
                limit: "a pushed part must hold 1..=part size bytes",
            }
            .into());
        }
        if self.buffered() > self.max_in_flight() {
            return refuse("too many parts held: wait until wants_part() is true");
        }
        if self.parts.len() >= self.max_parts as usize {
            let e = Error::InvalidInput(InvalidInput::Size {
                what: "stream",
                size: self.total_len() + bytes.len() as u64,
                limit: "a multipart upload has at most 10,000 parts: use a larger part size for this stream",
            });
            self.stop_with(e.clone());
            return Err(e);
        }
        let len = bytes.len() as u64;
        let digest = BodyDigest::of_with_md5(&bytes, self.upload.verify_md5);
        let offset = self.total_len();
        let s = self.stream.as_mut().expect("stream");
        s.total += len;
        s.short_tail = len < part_size;
        self.parts.push(Part {
            offset,
            len,
            state: PartState::Pending,
            attempts: Attempts::default(),
            bytes: Some((bytes, digest)),
        });
        self.pending.insert(self.parts.len() as u32);
        if self.step == Step::AwaitFirstPart && len == part_size {
            self.set_step(Step::Initiate);
        }
        Ok(())
    }

    /// Stream mode: the stream ended after the parts pushed so far.
    pub fn finish_stream(&mut self) {
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        if s.ended {
            return;
        }
        s.ended = true;
        if self.step == Step::AwaitFirstPart && self.stopping.is_none() {
            self.set_step(Step::SinglePut);
        }
    }

    /// The source could not be read: abort the upload (if one was initiated) and end with [`Error::Source`].
    pub fn fail_source(&mut self, message: impl Into<String>) {
        self.stop_with(Error::Source(message.into()));
    }

    /// Stream mode: parts whose bytes are held.
    #[cfg(test)]
    pub(super) fn held_parts(&self) -> usize {
        self.buffered()
    }

    #[cfg(test)]
    pub(super) fn persist_for_tests(&mut self) {
        self.persist = true;
    }

    /// The part numbers List Parts answers kept so far.
    #[cfg(test)]
    pub(super) fn listed_numbers(&self) -> Vec<u32> {
        self.listed.keys().copied().collect()
    }

    #[cfg(test)]
    pub(super) fn set_max_parts(&mut self, n: u32) {
        self.max_parts = n;
    }

    // ---- internals ----

    fn set_step(&mut self, step: Step) {
        self.step = step;
        self.control = Control::default();
    }

    /// Ends the task with `reason` after aborting the upload, if there is one. Parts in flight are
    /// forgotten (their answers are ignored).
    fn stop_with(&mut self, reason: Error) {
        if self.finished || self.done.is_some() || self.stopping.is_some() {
            return;
        }
        self.stopping = Some(reason.clone());
        self.restart_when_idle = false;
        self.pending.clear();
        self.timers.clear();
        self.in_flight.clear();
        for p in &mut self.parts {
            if !matches!(p.state, PartState::Done { .. }) {
                p.state = PartState::Pending;
            }
            p.bytes = None;
        }
        match &self.step {
            // Wait for the answer: an Initiate's id must be aborted; a Complete or PUT may have won.
            Step::Initiate | Step::Complete | Step::SinglePut
                if self.control.in_flight.is_some() => {}
            // The stale upload a changed source left is aborted (sent now if not yet), then the task ends:
            // the checkpoint naming it is removed after a cancel, so nothing else would abort it.
            Step::AbortStale { .. } => {}
            // The object is being confirmed after Complete: nothing left to abort.
            Step::Head { .. } | Step::Finished | Step::Abort { .. } => {}
            // Find the upload this task would have continued, and abort that.
            Step::FindUploads { .. }
            | Step::ListParts {
                from_checkpoint: false,
                ..
            } => {}
            _ => self.abort_or_finish(reason),
        }
    }

    /// Aborts the upload (when it has an id) and then ends with `reason`; ends at once otherwise.
    fn abort_or_finish(&mut self, reason: Error) {
        if self.upload_id.is_some() {
            self.set_step(Step::Abort {
                reason: Box::new(reason),
            })
        } else {
            self.fail(reason)
        }
    }

    /// What follows a HEAD that did not confirm a Complete: the object is `absent`, or another one.
    fn unconfirmed(&mut self, unconfirmed: Unconfirmed, complete_error: Error, absent: bool) {
        match unconfirmed {
            Unconfirmed::Restart => self.restart_upload(),
            Unconfirmed::RestartIfAbsent if absent => self.restart_upload(),
            Unconfirmed::Gone => self.fail(complete_error),
            Unconfirmed::Fail | Unconfirmed::RestartIfAbsent => {
                self.complete_failed(complete_error)
            }
        }
    }

    /// Ends the task with `error` after a Complete that did not go through (or may not have): a file keeps
    /// its upload for a resume from the checkpoint; a stream, which cannot be resumed, aborts it first (an
    /// upload the Complete did finish answers the Abort `NoSuchUpload`, which is fine).
    fn complete_failed(&mut self, error: Error) {
        if self.stream.is_some() {
            self.abort_or_finish(error)
        } else {
            self.fail(error)
        }
    }

    fn fail(&mut self, error: Error) {
        self.set_step(Step::Finished);
        self.in_flight.clear();
        self.timers.clear();
        self.done = Some(Err(error));
    }

    fn succeed(&mut self, outcome: UploadOutcome) {
        // Every success ends with the progress at the total, also when no part finished in this run (a HEAD
        // confirmed an earlier run's Complete, or a stream went out as one PUT).
        if self.reported != Some(outcome.total_len) {
            self.push_progress(outcome.total_len, Some(outcome.total_len));
        }
        self.set_step(Step::Finished);
        self.in_flight.clear();
        self.done = Some(Ok(outcome));
    }

    fn initiate_op(key: &str, upload: &UploadConfig) -> InitiateMultipartUpload {
        let mut options = upload.options.clone();
        if upload.forbid_overwrite {
            options.forbid_overwrite = true;
        }
        if let Some(md5) = &upload.meta_md5 {
            super::file::push_meta_md5(&mut options, md5);
        }
        InitiateMultipartUpload::new(key).options(options)
    }

    fn forbid_overwrite(&self) -> bool {
        self.upload.forbid_overwrite || self.upload.options.forbid_overwrite
    }

    fn complete_op(&self) -> CompleteMultipartUpload {
        let parts = self
            .parts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match &p.state {
                PartState::Done { etag, .. } => Some(CompletedPart {
                    part_number: i as u32 + 1,
                    etag: quoted(etag),
                }),
                _ => None,
            })
            .collect();
        let mut op = CompleteMultipartUpload::new(
            &self.key,
            self.upload_id.clone().unwrap_or_default(),
            parts,
        );
        if self.forbid_overwrite() {
            op = op.forbid_overwrite();
        }
        match self.combined_crc64() {
            Some(crc) if self.upload.verify_crc64 => op.expected_crc64(crc),
            _ => op,
        }
    }

    fn part_op(&self, number: u32) -> UploadPart {
        let p = &self.parts[number as usize - 1];
        let op = UploadPart::new(
            &self.key,
            self.upload_id.clone().unwrap_or_default(),
            number,
        );
        // A stream part is described as a source range too: its request gets the bytes swapped in by
        // `part_transmit`, and its answer is checked against the digest taken when it was pushed, so that the
        // bytes are hashed once.
        let op = op
            .with_source(p.offset, p.len)
            .verify_md5(self.upload.verify_md5);
        match self.upload.options.traffic_limit {
            Some(limit) => op.traffic_limit(limit),
            None => op,
        }
    }

    fn single_put_op(&self) -> PutObject {
        let bytes = self
            .parts
            .first()
            .and_then(|p| p.bytes.as_ref())
            .map(|(b, _)| b.clone())
            .unwrap_or_default();
        let mut options = self.upload.options.clone();
        if self.upload.forbid_overwrite {
            options.forbid_overwrite = true;
        }
        let put = PutObject::new(&self.key)
            .with_bytes(bytes)
            .options(options)
            .verify_md5(self.upload.verify_md5);
        if self.upload.meta_md5.is_some() {
            put.add_meta_md5()
        } else {
            put
        }
    }

    fn part_transmit(&mut self, now: Now, number: u32, attempt: u32) -> Result<Transmit, Error> {
        let mut request = self.part_op(number).to_request(&self.config)?;
        if let Some((bytes, _)) = &self.parts[number as usize - 1].bytes {
            *request.body_mut() = RequestBody::Bytes(bytes.clone());
        }
        sign(&self.config, &mut request, now.system)?;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        Ok(Transmit {
            id,
            operation: UploadPart::NAME,
            attempt,
            request,
        })
    }

    fn transmit<O: Operation>(
        &mut self,
        now: Now,
        op: &O,
        attempt: u32,
    ) -> Result<Transmit, Error> {
        let mut request = op.to_request(&self.config)?;
        sign(&self.config, &mut request, now.system)?;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        Ok(Transmit {
            id,
            operation: O::NAME,
            attempt,
            request,
        })
    }

    /// The control request the current step needs, if any.
    fn control_transmit(&mut self, now: Now) -> Option<Result<Transmit, Error>> {
        if matches!(
            self.step,
            Step::AwaitFirstPart | Step::Upload | Step::Finished
        ) {
            return None;
        }
        self.control.attempts.attempt += 1;
        let attempt = self.control.attempts.attempt;
        let t = match self.step.clone() {
            Step::AbortStale { upload_id } => self.transmit(
                now,
                &AbortMultipartUpload::new(&self.key, upload_id),
                attempt,
            ),
            Step::Initiate => {
                let op = Self::initiate_op(&self.key, &self.upload);
                self.transmit(now, &op, attempt)
            }
            Step::FindUploads {
                key_marker,
                upload_id_marker,
                ..
            } => {
                let mut op = ListMultipartUploads::new().prefix(&self.key);
                if let Some(k) = key_marker {
                    op = op.key_marker(k);
                }
                if let Some(u) = upload_id_marker {
                    op = op.upload_id_marker(u);
                }
                self.transmit(now, &op, attempt)
            }
            Step::ListParts { marker, .. } => {
                let mut op = ListParts::new(&self.key, self.upload_id.clone().unwrap_or_default());
                if let Some(m) = marker {
                    op = op.part_number_marker(m);
                }
                self.transmit(now, &op, attempt)
            }
            Step::Complete => {
                self.complete_sent += 1;
                let op = self.complete_op();
                self.transmit(now, &op, attempt)
            }
            Step::Head { .. } => self.transmit(now, &HeadObject::new(&self.key), attempt),
            Step::SinglePut => {
                let op = self.single_put_op();
                self.transmit(now, &op, attempt)
            }
            Step::Abort { .. } => {
                let op = AbortMultipartUpload::new(
                    &self.key,
                    self.upload_id.clone().unwrap_or_default(),
                );
                self.transmit(now, &op, attempt)
            }
            Step::AwaitFirstPart | Step::Upload | Step::Finished => return None,
        };
        if let Ok(t) = &t {
            self.control.in_flight = Some(t.id);
        }
        Some(t)
    }

    fn all_parts_done(&self) -> bool {
        let ended = self.stream.as_ref().map_or(true, |s| s.ended);
        ended
            && self
                .parts
                .iter()
                .all(|p| matches!(p.state, PartState::Done { .. }))
    }

    /// The next timer after `now`. (A control retry that is already due can only be waiting for a pause to
    /// end: it is not a timer then, or the driver would spin.)
    fn next_timer(&self, now: Now) -> Option<Instant> {
        let part = self.timers.first().map(|(t, _)| *t);
        let control = self.control.not_before.filter(|t| *t > now.instant);
        let renew = self.renew_at.filter(|t| *t > now.instant);
        [part, control, renew].into_iter().flatten().min()
    }

    /// Renews the lease when it is due: while the upload has a checkpoint and has not ended, every
    /// [`LEASE_RENEW`], so that a run that finds this checkpoint knows the upload is alive.
    fn renew_lease(&mut self, now: Now) {
        let active = self.owner.is_some()
            && !self.finished
            && self.done.is_none()
            && self.stopping.is_none()
            && self.checkpoint_exists();
        if !active {
            self.renew_at = None;
            return;
        }
        match self.renew_at {
            Some(t) if t > now.instant => {}
            Some(_) => {
                self.renew_at = Some(now.instant + LEASE_RENEW);
                self.store_due = true;
            }
            // The first checkpoint is announced by the step that creates it; renewals follow.
            None => self.renew_at = Some(now.instant + LEASE_RENEW),
        }
    }

    fn checkpoint_exists(&self) -> bool {
        self.plan.is_some()
            && self.upload_id.is_some()
            && !matches!(self.step, Step::AbortStale { .. })
    }

    fn nothing_in_flight(&self) -> bool {
        self.in_flight.is_empty() && self.control.in_flight.is_none()
    }

    fn part_done_events(&mut self, part: u32, etag: String, len: u64) {
        self.events
            .push_back(Event::PartCompleted { part, etag, len });
        let p = self.progress();
        self.push_progress(p.loaded, p.total);
        self.store_due = true;
    }

    fn push_progress(&mut self, loaded: u64, total: Option<u64>) {
        self.reported = Some(loaded);
        self.events.push_back(Event::Progress { loaded, total });
    }

    /// The combined CRC-64 of all parts, if every part's is known.
    fn combined_crc64(&self) -> Option<u64> {
        let mut crc: Option<u64> = None;
        for p in &self.parts {
            let PartState::Done { crc64: Some(c), .. } = p.state else {
                return None;
            };
            crc = Some(match crc {
                None => c,
                Some(acc) => Crc64::combine(acc, c, p.len),
            });
        }
        crc.or(Some(0))
    }

    fn outcome(&self) -> UploadOutcome {
        UploadOutcome {
            bucket: self.config.bucket.to_string(),
            key: self.key.clone(),
            upload_id: self.upload_id.clone(),
            etag: String::new(),
            crc64: None,
            location: None,
            version_id: None,
            parts: self.parts.len() as u32,
            total_len: self.total_len(),
            request_id: None,
            confirmed_by_head: false,
        }
    }

    /// Applies the shared retry decision to a failed control request.
    fn control_failed(
        &mut self,
        now: Now,
        operation: &'static str,
        error: Error,
        date: Option<&str>,
    ) {
        match self.control.attempts.after_failure(
            &self.config,
            &error,
            date,
            now.system,
            true,
            &mut self.rng,
        ) {
            AfterFailure::SkewRetry(offset) => {
                self.config.clock_offset_secs = offset;
                self.events.push_back(Event::ClockSkewAdjusted {
                    offset_secs: offset,
                });
            }
            AfterFailure::Backoff(delay) => {
                self.control.not_before = Some(now.instant + delay);
                self.events.push_back(Event::RetryScheduled {
                    operation,
                    part: None,
                    attempt: self.control.attempts.attempt + 1,
                    delay,
                    error,
                });
            }
            AfterFailure::Fail => match self.step.clone() {
                // The stale upload could not be aborted: it is left to the bucket's lifecycle rules, and the
                // new upload does not depend on it (none starts after a cancel).
                Step::AbortStale { .. } => match self.stopping.clone() {
                    Some(reason) => self.fail(reason),
                    None => self.set_step(Step::Initiate),
                },
                Step::Abort { reason } => self.fail(*reason),
                // A Complete that kept failing may have gone through all the same (a lost answer, a 5xx
                // after the server applied it): the object decides before the task fails.
                Step::Complete if error.is_retryable() && self.stopping.is_none() => {
                    self.set_step(Step::Head {
                        complete_error: Box::new(error),
                        unconfirmed: Unconfirmed::Fail,
                    })
                }
                // A HEAD confirming a Complete included: whether the Complete went through is unknown, and
                // the HEAD's own error says so (a resume from the checkpoint, kept, asks again).
                Step::Head {
                    unconfirmed: Unconfirmed::Gone,
                    complete_error,
                } => self.fail(*complete_error),
                Step::Complete | Step::Head { .. } => self.complete_failed(error),
                _ if self.stopping.is_some() && self.searching() => {
                    let reason = self.stopping.clone().expect("stopping");
                    self.fail(reason)
                }
                _ => self.fail(error),
            },
        }
    }

    fn handle_control(&mut self, now: Now, input: Input) {
        self.control.in_flight = None;
        let (response, sent) = match input {
            // Never emitted Io, so any Io answer is foreign.
            Input::Io { .. } => return,
            Input::Response { response, sent, .. } => (response, sent),
            Input::Failed { error, .. } => {
                let name = self.step_operation();
                let error = Error::Transport(error);
                if let Some(reason) = self.stopping.clone() {
                    if matches!(self.step, Step::Initiate | Step::Complete | Step::SinglePut) {
                        // The answer is lost: abort what is known and stop.
                        self.abort_or_finish(reason);
                        return;
                    }
                }
                self.control_failed(now, name, error, None);
                return;
            }
        };
        let date = response_date(&response);
        let date = date.as_deref();
        match self.step.clone() {
            Step::AbortStale { upload_id } => {
                let op = AbortMultipartUpload::new(&self.key, upload_id);
                match op.parse_response(&response, None) {
                    Err(e) if e.code() != Some("NoSuchUpload") => {
                        self.control_failed(now, AbortMultipartUpload::NAME, e, date)
                    }
                    _ => match self.stopping.clone() {
                        Some(reason) => self.fail(reason),
                        None => self.set_step(Step::Initiate),
                    },
                }
            }
            Step::Initiate => {
                let op = Self::initiate_op(&self.key, &self.upload);
                match op.parse_response(&response, None) {
                    Ok(out) => {
                        self.upload_id = Some(out.upload_id.clone());
                        self.events.push_back(Event::Initiated {
                            upload_id: out.upload_id,
                        });
                        if let Some(reason) = self.stopping.clone() {
                            self.abort_or_finish(reason);
                        } else {
                            self.store_due = true;
                            self.set_step(Step::Upload);
                        }
                    }
                    Err(e) => match self.stopping.clone() {
                        Some(reason) => self.fail(reason),
                        None => self.control_failed(now, InitiateMultipartUpload::NAME, e, date),
                    },
                }
            }
            Step::FindUploads {
                mut best,
                key_marker: prev_key,
                upload_id_marker: prev_id,
                pages,
            } => {
                let op = ListMultipartUploads::new().prefix(&self.key);
                match op.parse_response(&response, None) {
                    Ok(out) => {
                        for (i, u) in out
                            .uploads
                            .iter()
                            .enumerate()
                            .filter(|(_, u)| u.key == self.key)
                        {
                            let index = (u64::from(pages) << 32) | i as u64;
                            // `Initiated` is ISO 8601 in one format, so text order is time order; of two
                            // uploads listed with the same time, the later listed comes first.
                            let initiated = u.initiated.clone().unwrap_or_default();
                            best.push((initiated, index, u.upload_id.clone()));
                        }
                        best.sort_by(|a, b| (&b.0, b.1).cmp(&(&a.0, a.1)));
                        best.truncate(MAX_CANDIDATES);
                        // Keys are listed in order: past `key` itself, no upload of exactly it can follow.
                        let more = out.is_truncated
                            && (out.next_key_marker.is_some()
                                || out.next_upload_id_marker.is_some())
                            && out
                                .next_key_marker
                                .as_deref()
                                .map_or(true, |k| k <= self.key.as_str());
                        if more {
                            let next = (out.next_key_marker, out.next_upload_id_marker);
                            let advances =
                                next.0 >= prev_key && next != (prev_key.clone(), prev_id.clone());
                            if !advances || pages + 1 >= MAX_LIST_PAGES {
                                self.fail(crate::ops::unexpected(
                                    &response,
                                    &format!(
                                        "List Multipart Uploads does not advance (page {}, next \
                                         markers {:?} after {:?})",
                                        pages + 1,
                                        next,
                                        (prev_key, prev_id)
                                    ),
                                ));
                                return;
                            }
                            self.set_step(Step::FindUploads {
                                key_marker: next.0,
                                upload_id_marker: next.1,
                                best,
                                pages: pages + 1,
                            });
                        } else if !best.is_empty() {
                            self.candidates = best.into_iter().map(|b| b.2).collect();
                            self.newest_candidate = self.candidates.front().cloned();
                            self.try_next_candidate();
                        } else if let Some(reason) = self.stopping.clone() {
                            // Cancelled during the search, which found nothing to abort.
                            self.fail(reason);
                        } else {
                            self.set_step(Step::Initiate);
                        }
                    }
                    Err(e) => self.control_failed(now, ListMultipartUploads::NAME, e, date),
                }
            }
            Step::ListParts {
                from_checkpoint,
                marker: prev,
            } => {
                let op = ListParts::new(&self.key, self.upload_id.clone().unwrap_or_default());
                match op.parse_response(&response, None) {
                    Ok(out) => {
                        // Part numbers COS cannot have are not kept: the map stays within MAX_PARTS.
                        for p in out
                            .parts
                            .into_iter()
                            .filter(|p| (1..=MAX_PARTS).contains(&p.part_number))
                        {
                            self.listed.insert(p.part_number, (p.etag, p.size));
                        }
                        match (out.is_truncated, out.next_part_number_marker) {
                            // Part numbers only go up to MAX_PARTS, so a marker that must grow ends
                            // the listing within MAX_PARTS pages.
                            (true, Some(m)) if m <= prev.unwrap_or(0) || m > MAX_PARTS => {
                                self.fail(crate::ops::unexpected(
                                    &response,
                                    &format!(
                                        "List Parts does not advance (next part number marker {m} \
                                         after {})",
                                        prev.unwrap_or(0)
                                    ),
                                ));
                            }
                            (true, Some(m)) => self.set_step(Step::ListParts {
                                marker: Some(m),
                                from_checkpoint,
                            }),
                            _ if !from_checkpoint => self.candidate_listed(),
                            _ => self.adopt_listed_parts(from_checkpoint),
                        }
                    }
                    Err(e) if e.code() == Some("NoSuchUpload") => {
                        let all_claimed = from_checkpoint && self.claimed.len() == self.parts.len();
                        if !from_checkpoint {
                            // The candidate vanished: try the next one (and never fall back to it).
                            self.listed.clear();
                            if self.newest_candidate == self.upload_id {
                                self.newest_candidate = None;
                            }
                            self.upload_id = None;
                            if !self.candidates.is_empty() {
                                self.try_next_candidate();
                            } else if let Some(reason) = self.stopping.clone() {
                                self.fail(reason);
                            } else {
                                self.taken_over = false;
                                self.set_step(Step::Initiate);
                            }
                        } else if all_claimed {
                            // Every part was done: the crash may have come after Complete went through. The
                            // object decides (HEAD), as after a lost Complete answer.
                            for c in std::mem::take(&mut self.claimed) {
                                self.parts[c.number as usize - 1].state = PartState::Done {
                                    etag: quoted(&c.etag),
                                    crc64: c.crc64,
                                };
                                self.pending.remove(&c.number);
                            }
                            self.set_step(Step::Head {
                                complete_error: Box::new(e),
                                unconfirmed: Unconfirmed::Restart,
                            });
                        } else {
                            self.restart_upload();
                        }
                    }
                    Err(e) => self.control_failed(now, ListParts::NAME, e, date),
                }
            }
            Step::Complete => {
                let op = self.complete_op();
                match op.parse_response(&response, None) {
                    Ok(out) => {
                        // The op has checked the object's CRC-64 against the parts' (see `complete_op`).
                        let mut outcome = self.outcome();
                        outcome.etag = out.etag;
                        outcome.crc64 = out.crc64;
                        outcome.location = Some(out.location).filter(|l| !l.is_empty());
                        outcome.version_id = out.version_id;
                        outcome.request_id = out.request_id;
                        self.succeed(outcome);
                    }
                    // NoSuchUpload after a Complete of ours whose answer was lost, or of the earlier run this
                    // upload was taken over from: the object decides. Absent after our first Complete of
                    // a taken-over upload, the upload was aborted (say a killed run's late cancel) or
                    // expired, not completed: start over (simulation seed 28849).
                    Err(e)
                        if e.code() == Some("NoSuchUpload")
                            && (self.complete_sent > 1 || self.taken_over) =>
                    {
                        let unconfirmed = if self.complete_sent == 1 {
                            Unconfirmed::RestartIfAbsent
                        } else {
                            Unconfirmed::Fail
                        };
                        self.set_step(Step::Head {
                            complete_error: Box::new(e),
                            unconfirmed,
                        });
                    }
                    Err(e) => match self.stopping.clone() {
                        Some(reason) => self.abort_or_finish(reason),
                        None => self.control_failed(now, CompleteMultipartUpload::NAME, e, date),
                    },
                }
            }
            Step::Head {
                complete_error,
                unconfirmed,
            } => match HeadObject::new(&self.key).parse_response(&response, None) {
                Ok(info) => {
                    let count = self.parts.len();
                    let etag = info.etag.clone().unwrap_or_default();
                    let etag_ok = bare(&etag).ends_with(&format!("-{count}"));
                    let len_ok = info.content_length == self.total_len();
                    let crc_ok = match (self.combined_crc64(), info.crc64) {
                        (Some(a), Some(b)) => a == b,
                        _ => !self.upload.verify_crc64 || info.crc64.is_none(),
                    };
                    if etag_ok && len_ok && crc_ok {
                        let mut outcome = self.outcome();
                        outcome.etag = etag;
                        outcome.crc64 = info.crc64;
                        outcome.version_id = info.version_id;
                        outcome.request_id = info.request_id;
                        outcome.confirmed_by_head = true;
                        self.succeed(outcome);
                    } else {
                        self.unconfirmed(unconfirmed, *complete_error, false);
                    }
                }
                Err(e) if e.status() == Some(404) => {
                    self.unconfirmed(unconfirmed, *complete_error, true)
                }
                Err(e) => self.control_failed(now, HeadObject::NAME, e, date),
            },
            Step::SinglePut => {
                let op = self.single_put_op();
                match op.parse_response(&response, sent.as_ref()) {
                    Ok(out) => {
                        let mut outcome = self.outcome();
                        outcome.parts = 0;
                        outcome.etag = out.etag;
                        outcome.crc64 = out.crc64;
                        outcome.version_id = out.version_id;
                        outcome.request_id = out.request_id;
                        if let Some(p) = self.parts.first_mut() {
                            p.bytes = None;
                        }
                        self.succeed(outcome);
                    }
                    Err(e) => match self.stopping.clone() {
                        Some(reason) => self.fail(reason),
                        None => self.control_failed(now, PutObject::NAME, e, date),
                    },
                }
            }
            Step::Abort { reason } => {
                let op = AbortMultipartUpload::new(
                    &self.key,
                    self.upload_id.clone().unwrap_or_default(),
                );
                match op.parse_response(&response, None) {
                    Ok(_) => self.fail(*reason),
                    // Gone after a Complete of ours was sent: it may have gone through (a 5xx or lost
                    // answer, then a cancel during the retry's backoff), and then it won: the object decides
                    // (stream simulation seed 5881).
                    Err(e) if e.code() == Some("NoSuchUpload") && self.complete_sent > 0 => self
                        .set_step(Step::Head {
                            complete_error: reason,
                            unconfirmed: Unconfirmed::Gone,
                        }),
                    Err(e) if e.code() == Some("NoSuchUpload") => self.fail(*reason),
                    Err(e) => self.control_failed(now, AbortMultipartUpload::NAME, e, date),
                }
            }
            Step::AwaitFirstPart | Step::Upload | Step::Finished => {}
        }
    }

    fn step_operation(&self) -> &'static str {
        match &self.step {
            Step::AbortStale { .. } | Step::Abort { .. } => AbortMultipartUpload::NAME,
            Step::Initiate => InitiateMultipartUpload::NAME,
            Step::FindUploads { .. } => ListMultipartUploads::NAME,
            Step::ListParts { .. } => ListParts::NAME,
            Step::Complete => CompleteMultipartUpload::NAME,
            Step::Head { .. } => HeadObject::NAME,
            Step::SinglePut => PutObject::NAME,
            Step::AwaitFirstPart | Step::Upload | Step::Finished => "",
        }
    }

    /// The upload is gone: start a new one and send every part.
    fn restart_upload(&mut self) {
        let previous = self.upload_id.take().unwrap_or_default();
        self.events.push_back(Event::Restarted {
            previous_upload_id: previous,
            reason: "the upload no longer exists",
        });
        self.claimed.clear();
        self.listed.clear();
        self.taken_over = false;
        for p in &mut self.parts {
            p.state = PartState::Pending;
            p.attempts = Attempts::default();
        }
        self.pending = (1..=self.parts.len() as u32).collect();
        self.set_step(Step::Initiate);
    }

    /// Find-unfinished mode: lists the parts of the next candidate.
    fn try_next_candidate(&mut self) {
        self.listed.clear();
        self.upload_id = self.candidates.pop_front();
        self.taken_over = true;
        self.set_step(Step::ListParts {
            marker: None,
            from_checkpoint: false,
        });
    }

    /// Find-unfinished mode, after listing a candidate's parts: continue it if it holds a part of the plan;
    /// else try the next candidate; else continue the newest. After a cancel, abort the chosen upload
    /// instead: it was this task's to continue.
    fn candidate_listed(&mut self) {
        let holds_a_part = self.listed.iter().any(|(n, (_, size))| {
            n.checked_sub(1)
                .and_then(|i| self.parts.get(i as usize))
                .is_some_and(|p| p.len == *size)
        });
        if !holds_a_part {
            if !self.candidates.is_empty() {
                self.try_next_candidate();
                return;
            }
            if self.newest_candidate.is_some() && self.newest_candidate != self.upload_id {
                self.listed.clear();
                self.upload_id = self.newest_candidate.clone();
            }
        }
        self.candidates.clear();
        match self.stopping.clone() {
            Some(reason) => {
                self.listed.clear();
                self.abort_or_finish(reason);
            }
            None => self.adopt_listed_parts(false),
        }
    }

    /// Whether a cancelled task still has to finish its search for an unfinished upload (to abort it).
    fn searching(&self) -> bool {
        matches!(
            self.step,
            Step::FindUploads { .. }
                | Step::ListParts {
                    from_checkpoint: false,
                    ..
                }
        )
    }

    /// After List Parts: keep the parts that match, mark the others pending.
    fn adopt_listed_parts(&mut self, from_checkpoint: bool) {
        let listed = std::mem::take(&mut self.listed);
        if from_checkpoint {
            for c in std::mem::take(&mut self.claimed) {
                let Some(p) = self.parts.get_mut(c.number as usize - 1) else {
                    continue;
                };
                match listed.get(&c.number) {
                    Some((etag, size))
                        if same_etag(etag, &c.etag) && *size == p.len && c.len == p.len =>
                    {
                        p.state = PartState::Done {
                            etag: quoted(&c.etag),
                            crc64: c.crc64,
                        };
                        self.pending.remove(&c.number);
                    }
                    _ => {}
                }
            }
        } else {
            for (number, (etag, size)) in listed {
                let Some(p) = number
                    .checked_sub(1)
                    .and_then(|i| self.parts.get_mut(i as usize))
                else {
                    continue;
                };
                if size == p.len {
                    p.state = PartState::NeedDigest { etag: etag.clone() };
                    self.pending.remove(&number);
                    self.digests_due.push_back(number);
                }
            }
        }
        let progress = self.progress();
        self.events.push_back(Event::Resumed {
            upload_id: self.upload_id.clone().unwrap_or_default(),
            parts_done: progress.parts_done,
        });
        self.push_progress(progress.loaded, progress.total);
        self.store_due = true;
        self.set_step(Step::Upload);
    }

    fn handle_part(&mut self, now: Now, number: u32, input: Input) {
        if self.restart_when_idle {
            return; // the upload it was sent to is gone
        }
        let idx = number as usize - 1;
        let (error, date) = match input {
            // Never emitted Io, so any Io answer is foreign.
            Input::Io { .. } => return,
            Input::Response { response, sent, .. } => {
                let op = self.part_op(number);
                let local = self.parts[idx].bytes.as_ref().map(|(_, d)| *d);
                let sent = sent.or(local);
                let len = self.parts[idx].len;
                if let Some(s) = &sent {
                    if s.len != len {
                        self.fail(Error::Source(format!(
                            "part {number}: the driver sent {} bytes, the plan says {len}: the source changed or \
                             is shorter than announced",
                            s.len
                        )));
                        return;
                    }
                }
                match op.parse_response(&response, sent.as_ref()) {
                    Ok(out) => {
                        // The op checked the ETag against the MD5 and the CRC-64 against the bytes sent.
                        let crc64 = out.sent.map(|d| d.crc64).or(out.crc64);
                        let etag = quoted(&out.etag);
                        let p = &mut self.parts[idx];
                        p.state = PartState::Done {
                            etag: etag.clone(),
                            crc64,
                        };
                        p.bytes = None;
                        self.part_done_events(number, etag, len);
                        return;
                    }
                    Err(e) => (e, response_date(&response)),
                }
            }
            Input::Failed { error, .. } => (Error::Transport(error), None),
        };
        let p = &mut self.parts[idx];
        match p.attempts.after_failure(
            &self.config,
            &error,
            date.as_deref(),
            now.system,
            true,
            &mut self.rng,
        ) {
            AfterFailure::SkewRetry(offset) => {
                self.config.clock_offset_secs = offset;
                p.state = PartState::Pending;
                self.pending.insert(number);
                self.events.push_back(Event::ClockSkewAdjusted {
                    offset_secs: offset,
                });
            }
            AfterFailure::Backoff(delay) => {
                let at = now.instant + delay;
                p.state = PartState::Backoff(at);
                let attempt = p.attempts.attempt + 1;
                self.timers.insert((at, number));
                self.events.push_back(Event::RetryScheduled {
                    operation: UploadPart::NAME,
                    part: Some(number),
                    attempt,
                    delay,
                    error,
                });
            }
            // The upload taken over from an earlier run is gone: that run's late Complete landed (with
            // parts this run does not have: the source changed) or it was aborted. Start over once the
            // parts in flight are answered (simulation seed 43777).
            AfterFailure::Fail
                if error.code() == Some("NoSuchUpload")
                    && self.taken_over
                    && self.stream.is_none() =>
            {
                p.state = PartState::Pending;
                self.restart_when_idle = true;
                self.pending.clear();
                self.timers.clear();
            }
            AfterFailure::Fail => {
                p.state = PartState::Pending;
                if self.stream.is_some() {
                    // A stream cannot be resumed: do not leave its parts behind.
                    self.stop_with(error);
                } else {
                    self.fail(error);
                }
            }
        }
    }
}

impl Task for MultipartUpload {
    type Output = UploadOutcome;

    fn set_credentials(&mut self, credentials: Credentials) {
        MultipartUpload::set_credentials(self, credentials);
    }

    fn poll_output(&mut self, now: Now) -> Output<UploadOutcome> {
        self.clock = Some(now.system);
        self.renew_lease(now);
        loop {
            if let Some(io) = self.next_io() {
                return Output::Io(io);
            }
            if let Some(e) = self.events.pop_front() {
                return Output::Event(e);
            }
            if let Some(done) = self.done.take() {
                self.finished = true;
                return Output::Done(done);
            }
            if self.finished {
                return Output::Wait { until: None };
            }
            if self.restart_when_idle {
                if !self.in_flight.is_empty() {
                    return Output::Wait { until: None };
                }
                self.restart_when_idle = false;
                self.restart_upload();
            }
            // Due retry timers: back to pending.
            while let Some(&(at, number)) = self.timers.first() {
                if at > now.instant {
                    break;
                }
                self.timers.pop_first();
                if let Some(p) = self.parts.get_mut(number as usize - 1) {
                    if matches!(p.state, PartState::Backoff(t) if t == at) {
                        p.state = PartState::Pending;
                        self.pending.insert(number);
                    }
                }
            }
            let aborting = matches!(self.step, Step::Abort { .. })
                || (self.stopping.is_some() && self.searching());
            // Pause holds every request back, except the abort that follows a cancel.
            let may_send = !self.paused || aborting;
            // A control request (initiate, list, complete, abort…): one at a time, none during the parts.
            let due = self.control.not_before.map_or(true, |t| t <= now.instant);
            if may_send && due && self.control.in_flight.is_none() {
                self.control.not_before = None;
                match self.control_transmit(now) {
                    Some(Ok(t)) => return Output::Transmit(t),
                    Some(Err(e)) => {
                        self.fail(e);
                        continue;
                    }
                    None => {}
                }
            }
            if self.step == Step::Upload {
                if self.all_parts_done() {
                    if self.nothing_in_flight() {
                        self.set_step(Step::Complete);
                        continue;
                    }
                } else if may_send && self.in_flight.len() < self.max_in_flight() {
                    if let Some(number) = self.pending.pop_first() {
                        let p = &mut self.parts[number as usize - 1];
                        p.attempts.attempt += 1;
                        let attempt = p.attempts.attempt;
                        match self.part_transmit(now, number, attempt) {
                            Ok(t) => {
                                self.parts[number as usize - 1].state = PartState::InFlight;
                                self.in_flight.insert(t.id, number);
                                return Output::Transmit(t);
                            }
                            Err(e) => {
                                self.fail(e);
                                continue;
                            }
                        }
                    }
                }
            }
            if self.paused && !aborting && self.nothing_in_flight() && !self.paused_announced {
                // The checkpoint is final for this run: store it, then announce the pause.
                self.paused_announced = true;
                self.store_due = true;
                self.pause_to_announce = true;
                continue;
            }
            if self.pause_to_announce
                && self.paused
                && !aborting
                && self.nothing_in_flight()
                && self.stores.is_empty()
                && !self.store_due
            {
                self.pause_to_announce = false;
                return Output::Event(Event::Paused);
            }
            if self.stream_reads && self.reading.is_none() && self.wants_part() {
                let id = self.next_request_id();
                self.reading = Some(id);
                let len = self.part_size;
                return Output::Io(Io {
                    id,
                    request: IoRequest::ReadStream { len },
                });
            }
            return Output::Wait {
                until: self.next_timer(now),
            };
        }
    }

    fn handle_input(&mut self, now: Now, input: Input) {
        self.clock = Some(now.system);
        if self.finished || self.done.is_some() {
            return;
        }
        let id = input.id();
        if let Input::Io { result, .. } = input {
            self.handle_io(id, result);
        } else if self.control.in_flight == Some(id) {
            self.handle_control(now, input);
        } else if let Some(number) = self.in_flight.remove(&id) {
            self.handle_part(now, number, input);
        }
        // Anything else answers a request this task no longer waits for (e.g. a part sent before a cancel).
    }

    fn handle_command(&mut self, _now: Now, command: Command) {
        match command {
            Command::Pause => self.pause(),
            Command::Resume => self.resume_sending(),
            Command::Cancel => self.cancel(),
        }
    }
}

impl MultipartUpload {
    fn next_request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        id
    }

    /// The next local I/O to ask for: a due checkpoint store, then part digests.
    fn next_io(&mut self) -> Option<Io> {
        if self.store_due {
            self.store_due = false;
            if self.persist && self.stream.is_none() {
                if let Some(cp) = self.checkpoint() {
                    let id = self.next_request_id();
                    self.stores.insert(id);
                    let bytes = super::file::checkpoint_to_bytes(&cp);
                    return Some(Io {
                        id,
                        request: IoRequest::StoreCheckpoint(bytes.into()),
                    });
                }
            }
        }
        let number = self.digests_due.pop_front()?;
        let p = &self.parts[number as usize - 1];
        let (offset, len) = (p.offset, p.len);
        let id = self.next_request_id();
        self.digests.insert(id, number);
        Some(Io {
            id,
            request: IoRequest::Digest { offset, len },
        })
    }

    fn handle_io(&mut self, id: RequestId, result: IoResult) {
        if self.stores.remove(&id) {
            if let IoResult::Failed(reason) = result {
                self.events.push_back(Event::CheckpointNotStored { reason });
            }
        } else if let Some(part) = self.digests.remove(&id) {
            match result {
                IoResult::Digest(d) => self.part_digest(part, Some(d)),
                _ => self.part_digest(part, None),
            }
        } else if self.reading == Some(id) {
            self.reading = None;
            match result {
                IoResult::Data(Some(bytes)) => {
                    let full = bytes.len() as u64 == self.part_size;
                    // A refused part (the 10,001st) fails the task, which aborts on its own.
                    if !bytes.is_empty() && self.push_part(bytes).is_err() {
                        return;
                    }
                    if !full {
                        self.finish_stream();
                    }
                }
                IoResult::Failed(e) => self.fail_source(format!("reading the stream failed: {e}")),
                other => self.fail_source(format!("a stream read answered {other:?}")),
            }
        }
    }
}
