//! Downloading an object to a file, decided here once for both clients.
//!
//! [`DownloadTask`] plans and runs one download: one GET below a threshold, ranged GETs (each with
//! `If-Match` on the ETag, so a changed object fails instead of mixing) above it. The driver asks the task
//! what to do next ([`DownloadTask::next_step`]) and reports what happened ([`DownloadTask::fetched`]); it makes
//! no decision of its own:
//!
//! * [`DownloadStep::LoadCheckpoint`] (first, when the task keeps a checkpoint): read the checkpoint file
//!   ([`checkpoint_path`]) and the temporary file's length ([`temp_path`]); answer with
//!   [`DownloadTask::loaded`]. The task decides whether they continue this download.
//! * [`DownloadStep::CheckKept`] (when a checkpoint continues the file): compute the CRC-64 of the ranges
//!   it names as the file holds them now; answer with [`DownloadTask::kept`]. Ranges that differ are
//!   fetched again.
//! * [`DownloadStep::PrepareTemp`] (before the first fetch): create the temporary file with the object's
//!   size, or open the one a checkpoint continues.
//! * [`DownloadStep::Fetch`]: send this GET and write its body at this offset of the temporary file,
//!   computing the CRC-64 of what was written; report how many bytes were written, their CRC-64 and the
//!   error, if any. A body cut part-way is continued from where it stopped: the next `Fetch` asks for the
//!   remainder (a ranged GET with `If-Match`).
//! * [`DownloadStep::StoreCheckpoint`]: replace the checkpoint file with these bytes atomically (write a
//!   temporary file, then rename it). It names the object (bucket, key, ETag, size, CRC-64) and the byte
//!   ranges already in the temporary file with their CRC-64s, so a rerun after `kill -9` fetches only the
//!   missing ranges and the combined CRC-64 still verifies the whole file.
//! * [`DownloadStep::Progress`], [`DownloadStep::Wait`] (a fetch is in flight; report it first).
//! * [`DownloadStep::Finish`]: everything was fetched and verified (CRC-64 of the ranges combined and
//!   compared with the object's `x-cos-hash-crc64ecma`): move the temporary file into place and remove
//!   the checkpoint. [`DownloadStep::Fail`]: give up with this error, keeping or removing the temporary
//!   file and checkpoint as told. Both come once; then [`DownloadStep::Exit`]. A step the driver cannot
//!   carry out (a checkpoint it cannot store, a rename that fails) is reported with
//!   [`DownloadTask::local_failure`], and the task says what to keep with the `Fail` that follows.
//!
//! * [`DownloadStep::Paused`]: after [`DownloadTask::pause`], once the fetches in flight are reported and
//!   their ranges stored in the checkpoint: nothing runs until [`DownloadTask::resume`] (which fetches only
//!   the missing ranges) or [`DownloadTask::cancel`].
//!
//! [`DownloadTask::cancel`] ends the task with [`DownloadStep::Fail`] (`Error::Cancelled`, the temporary
//! file and the checkpoint removed; the destination is never touched); fetches still in flight are stopped
//! by the driver and their reports ignored. [`DownloadTask::command`] applies a [`Command`].
//!
//! The temporary file and the checkpoint live beside the destination ([`temp_path`],
//! [`checkpoint_path`]).

mod local;
pub use local::{file_error, DownloadOutcome, FetchTally};

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checksum::Crc64;
use crate::error::{
    Error, IntegrityError, InvalidInput, TransportError, TransportErrorKind, UnexpectedResponse,
};
use crate::ops::{GetObject, ObjectInfo};
use crate::retry::{RetryPolicy, Rng};
use crate::task::Command;
use crate::upload::plan::MAX_OBJECT_SIZE;

/// Default size above which an object is fetched in ranges.
pub const DEFAULT_RANGE_THRESHOLD: u64 = 16 << 20;
/// Default size of one range.
pub const DEFAULT_RANGE_SIZE: u64 = 8 << 20;
/// Default number of ranges fetched at once.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 4;
/// The download checkpoint format this version writes and reads.
pub const DOWNLOAD_CHECKPOINT_VERSION: u32 = 1;
/// The most ranges one download is split into: larger objects get larger ranges, so the plan stays small
/// whatever the object's size.
pub const MAX_RANGES: u64 = 10_000;

/// How a [`DownloadTask`] splits an object, and whether it keeps a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Objects larger than this are fetched in ranges (default 16 MiB).
    pub threshold: u64,
    /// The size of one range (default 8 MiB; at least 1), grown for an object that would need more than
    /// [`MAX_RANGES`] of them.
    pub range_size: u64,
    /// Ranges fetched at once (default 4; at least 1).
    pub concurrency: usize,
    /// Keep a checkpoint beside the temporary file ([`checkpoint_path`]) and the temporary file itself
    /// when a download fails, so that the next download of the same object to the same path fetches only
    /// what is missing (default `false`: a failed download leaves nothing behind).
    pub checkpoint: bool,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            threshold: DEFAULT_RANGE_THRESHOLD,
            range_size: DEFAULT_RANGE_SIZE,
            concurrency: DEFAULT_DOWNLOAD_CONCURRENCY,
            checkpoint: false,
        }
    }
}

impl DownloadOptions {
    /// Sets [`DownloadOptions::threshold`].
    pub fn threshold(mut self, bytes: u64) -> Self {
        self.threshold = bytes;
        self
    }
    /// Sets [`DownloadOptions::range_size`].
    pub fn range_size(mut self, bytes: u64) -> Self {
        self.range_size = bytes;
        self
    }
    /// Sets [`DownloadOptions::concurrency`].
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }
    /// Sets [`DownloadOptions::checkpoint`].
    pub fn checkpoint(mut self, keep: bool) -> Self {
        self.checkpoint = keep;
        self
    }
}

/// One file of a batch download (`download_files` in both clients).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDownload {
    /// The object key.
    pub key: String,
    /// The local destination.
    pub path: PathBuf,
}

impl FileDownload {
    /// Object `key`, downloaded to `path`.
    pub fn new(key: impl Into<String>, path: impl Into<PathBuf>) -> FileDownload {
        FileDownload {
            key: key.into(),
            path: path.into(),
        }
    }
}

/// Where the bytes of a download to `dest` are written until they are verified: `<name>.cos-download`
/// in the same directory (so the final rename stays on one file system).
pub fn temp_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".cos-download");
    dest.with_file_name(name)
}

/// Where the checkpoint of a download to `dest` is kept: `<name>.cos-download.checkpoint` beside the
/// temporary file.
pub fn checkpoint_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".cos-download.checkpoint");
    dest.with_file_name(name)
}

/// Bytes of the temporary file known to hold the object's bytes at the same offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRange {
    /// Offset in the object (and the file).
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC-64 (ECMA) of these bytes.
    pub crc64: u64,
}

/// The resumable state of a download (serde JSON; versioned by [`DownloadCheckpoint::version`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadCheckpoint {
    /// Format version, [`DOWNLOAD_CHECKPOINT_VERSION`].
    pub version: u32,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The object's ETag when the download started (`If-Match` on every ranged GET).
    pub etag: String,
    /// The object's size.
    pub size: u64,
    /// The object's CRC-64, when COS reported one.
    pub crc64: Option<u64>,
    /// The range size the download was planned with.
    pub range_size: u64,
    /// Ranges already in the temporary file, in ascending order.
    pub done: Vec<DoneRange>,
}

/// One GET to send, and where its body goes.
#[derive(Clone, Debug)]
pub struct Fetch {
    /// Route the report back with this id ([`DownloadTask::fetched`]).
    pub id: usize,
    /// The GET (a range with `If-Match` when the object is fetched in ranges or continued).
    pub request: GetObject,
    /// Write the body's first byte at this offset of the temporary file.
    pub offset: u64,
    /// The body's expected length (never write more).
    pub len: u64,
    /// Wait this long before sending (a retry's backoff; zero for a first attempt).
    pub delay: Duration,
    /// Flush the written bytes to stable storage before reporting them (a checkpoint will name them).
    pub sync: bool,
    /// The object's size and ETag, for [`Fetch::check_head`].
    total: u64,
    etag: String,
}

impl Fetch {
    /// Checks the head of the answer before any byte is written: a ranged GET must be answered with
    /// exactly the range asked for (`Content-Range` `first-last/total`), a whole GET with the object's size,
    /// and an answer naming an ETag must name the planned one (a server that ignored `If-Match` must not
    /// mix two versions). `range` is the answer's `Content-Range` as `(first, last, total)`.
    pub fn check_head(
        &self,
        info: &ObjectInfo,
        range: Option<(u64, u64, u64)>,
    ) -> Result<(), Error> {
        let asked = self.request.range_value().is_some();
        let expected = (self.offset, self.offset + self.len.max(1) - 1, self.total);
        let fits = if asked {
            range == Some(expected) && info.content_length == self.len
        } else {
            range.is_none() && info.content_length == self.len
        };
        let etag_ok = match (&info.etag, self.etag.is_empty()) {
            (Some(got), false) => *got == self.etag,
            _ => true,
        };
        if fits && etag_ok {
            return Ok(());
        }
        let reason = if !etag_ok {
            format!(
                "the object changed during the download: ETag {:?}, expected {:?}",
                info.etag.as_deref().unwrap_or_default(),
                self.etag
            )
        } else {
            format!(
                "asked for {} bytes at {} of {}, got {} bytes ({:?})",
                self.len, self.offset, self.total, info.content_length, range
            )
        };
        Err(Error::UnexpectedResponse(Box::new(
            crate::error::UnexpectedResponse {
                status: if asked { 206 } else { 200 },
                reason,
                excerpt: String::new(),
                request_id: info.request_id.clone(),
                context: None,
            },
        )))
    }
}

/// What a fetch did, as the driver reports it.
#[derive(Clone, Debug)]
pub struct FetchReport {
    /// Bytes written at the fetch's offset, in order, before the fetch ended.
    pub written: u64,
    /// CRC-64 of those bytes.
    pub crc64: u64,
    /// Why it ended early; `None` when the body ended cleanly and was checked.
    pub error: Option<Error>,
}

/// What the driver does next; see the [module docs](self).
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one per GET of megabytes: its size does not matter
pub enum DownloadStep {
    /// Read the checkpoint file ([`checkpoint_path`]) and the length of the temporary file ([`temp_path`]),
    /// either of which may be missing, and answer with [`DownloadTask::loaded`]; asked again until then.
    LoadCheckpoint,
    /// Only when continuing from a checkpoint: read these `(offset, length)` ranges of the temporary file
    /// and answer with [`DownloadTask::kept`], giving each one's CRC-64 (`None` for one that cannot be
    /// read); asked again until answered. The bytes a checkpoint names are checked before they are
    /// trusted, so a file damaged since is fetched again instead of finishing with wrong bytes.
    CheckKept {
        /// The ranges the checkpoint names, in order.
        ranges: Vec<(u64, u64)>,
    },
    /// Before the first fetch: open the temporary file for writing (with `create`, created or truncated;
    /// otherwise the existing one, which a checkpoint continues) and set its length to `size`. A failure
    /// is reported with [`DownloadTask::local_failure`].
    PrepareTemp {
        /// Create the file afresh (else open it as it is).
        create: bool,
        /// The object's size: the file's length.
        size: u64,
    },
    /// Send this GET and write its body; report with [`DownloadTask::fetched`].
    Fetch(Fetch),
    /// Replace the checkpoint file with these bytes atomically (temporary file, then rename).
    StoreCheckpoint(Vec<u8>),
    /// Bytes in the temporary file so far, of `total`.
    Progress {
        /// Bytes written and reported.
        done: u64,
        /// The object's size.
        total: u64,
    },
    /// Fetches are in flight: report one, then ask again.
    Wait,
    /// Paused ([`DownloadTask::pause`]): nothing is in flight and the checkpoint (if kept) names every
    /// range written. Wait for a command; ask again after [`DownloadTask::resume`] or
    /// [`DownloadTask::cancel`] (until then every ask answers `Paused`).
    Paused,
    /// Verified: flush the temporary file, rename it to the destination, then remove the checkpoint
    /// file (if any). If the flush or the rename fails, report it with [`DownloadTask::local_failure`]
    /// and ask again (a `Fail` follows).
    Finish,
    /// Failed with `error`. With `keep_partial`, leave the temporary file and the checkpoint for a later
    /// resume; otherwise remove both. The destination is untouched either way.
    Fail {
        /// Why.
        error: Error,
        /// Keep the temporary file and the checkpoint.
        keep_partial: bool,
    },
    /// The task ended (after `Finish` or `Fail`); stop asking.
    Exit,
}

#[derive(Clone, Debug)]
struct Piece {
    offset: u64,
    len: u64,
    /// Ranges done from `offset` on, contiguous.
    done: Vec<DoneRange>,
    in_flight: bool,
    /// Failed attempts since the last progress.
    failures: u32,
    delay: Duration,
}

impl Piece {
    fn covered(&self) -> u64 {
        self.done.iter().map(|r| r.len).sum()
    }
    fn complete(&self) -> bool {
        self.covered() == self.len && (self.len > 0 || !self.done.is_empty())
    }
}

/// One download, as a state machine; see the [module docs](self).
#[derive(Debug)]
pub struct DownloadTask {
    bucket: String,
    key: String,
    size: u64,
    etag: String,
    crc64: Option<u64>,
    range_size: u64,
    ranged: bool,
    pieces: Vec<Piece>,
    concurrency: usize,
    checkpoint: bool,
    fresh_temp: bool,
    resumed: u64,
    requests: usize,
    retry: RetryPolicy,
    rng: Rng,
    queue: VecDeque<DownloadStep>,
    ended: bool,
    /// Paused by the owner: no new fetch is handed out.
    paused: bool,
    /// [`DownloadStep::Finish`] was handed out: the driver may still fail to carry it out.
    finishing: bool,
    /// Waiting for [`DownloadTask::loaded`].
    loading: bool,
    /// Waiting for [`DownloadTask::kept`].
    checking: bool,
}

impl DownloadTask {
    /// Plans the download of `key` in `bucket` from its HEAD answer `info`. With
    /// [`DownloadOptions::checkpoint`], the first step is [`DownloadStep::LoadCheckpoint`]; otherwise
    /// [`DownloadStep::PrepareTemp`] of a fresh file. Bad options or a bad key fail here, before anything
    /// is sent.
    pub fn new(
        bucket: &str,
        key: impl Into<String>,
        info: &ObjectInfo,
        options: &DownloadOptions,
        retry: RetryPolicy,
    ) -> Result<DownloadTask, Error> {
        let key = key.into();
        crate::config::validate_key(&key)?;
        if options.range_size == 0 || options.concurrency == 0 {
            return Err(InvalidInput::Parameter {
                name: "download options",
                reason: "range_size and concurrency must be at least 1".into(),
            }
            .into());
        }
        let size = info.content_length;
        if size > MAX_OBJECT_SIZE {
            // No COS object is this large: a plan for it would only exhaust memory.
            return Err(Error::UnexpectedResponse(Box::new(UnexpectedResponse {
                status: 200,
                reason: format!(
                    "Content-Length {size} is larger than any COS object ({MAX_OBJECT_SIZE} bytes)"
                ),
                excerpt: String::new(),
                request_id: info.request_id.clone(),
                context: None,
            })));
        }
        let range_size = options.range_size.max(size.div_ceil(MAX_RANGES));
        let etag = info.etag.clone().unwrap_or_default();
        // Ranges need an ETag to pin the object (If-Match); without one, a single GET is the safe choice.
        let ranged = size > options.threshold && !etag.is_empty();
        let mut pieces = Vec::new();
        if ranged {
            let mut at = 0;
            while at < size {
                let len = range_size.min(size - at);
                pieces.push(Piece::new(at, len));
                at += len;
            }
        } else {
            pieces.push(Piece::new(0, size));
        }
        let mut task = DownloadTask {
            bucket: bucket.to_string(),
            key,
            size,
            etag,
            crc64: info.crc64,
            range_size,
            ranged,
            pieces,
            concurrency: options.concurrency,
            checkpoint: options.checkpoint,
            fresh_temp: true,
            resumed: 0,
            requests: 0,
            rng: Rng::new(retry.seed),
            retry,
            queue: VecDeque::new(),
            ended: false,
            paused: false,
            finishing: false,
            loading: options.checkpoint,
            checking: false,
        };
        if !task.loading {
            task.queue
                .push_back(DownloadStep::PrepareTemp { create: true, size });
        }
        Ok(task)
    }

    /// Answers [`DownloadStep::LoadCheckpoint`]: `saved` is the checkpoint file's content, `temp_len` the
    /// temporary file's length (`None` for a file that is missing or cannot be read). The download
    /// continues from the checkpoint only when it names this object (bucket, key, ETag, size, CRC-64,
    /// range size) and the temporary file has the object's size; otherwise it starts over
    /// ([`DownloadTask::fresh_temp`]). A continued download reports the bytes it keeps as its first
    /// [`DownloadStep::Progress`]. No effect unless that step is pending.
    pub fn loaded(&mut self, saved: Option<&[u8]>, temp_len: Option<u64>) {
        if !self.loading || self.ended {
            return;
        }
        self.loading = false;
        if temp_len == Some(self.size) {
            if let Some(cp) =
                saved.and_then(|b| serde_json::from_slice::<DownloadCheckpoint>(b).ok())
            {
                self.resume_from(&cp);
            }
        }
        if self.resumed > 0 {
            self.checking = true;
        } else {
            self.prepare();
        }
    }

    /// Answers [`DownloadStep::CheckKept`]: `crcs[i]` is the CRC-64 the temporary file now holds for the
    /// step's `i`-th range (`None`: unreadable). A range that differs from the checkpoint's, and the rest
    /// of its piece after it, are fetched again. No effect unless that step is pending.
    pub fn kept(&mut self, crcs: &[Option<u64>]) {
        if !self.checking || self.ended {
            return;
        }
        self.checking = false;
        let mut i = 0;
        for p in &mut self.pieces {
            let n = p.done.len();
            let good = p
                .done
                .iter()
                .enumerate()
                .position(|(j, r)| crcs.get(i + j).copied().flatten() != Some(r.crc64))
                .unwrap_or(n);
            p.done.truncate(good);
            i += n;
        }
        self.resumed = self.pieces.iter().map(Piece::covered).sum();
        self.prepare();
    }

    /// The steps before the first fetch: the temporary file, the first checkpoint, the kept bytes.
    fn prepare(&mut self) {
        self.queue.push_back(DownloadStep::PrepareTemp {
            create: self.fresh_temp,
            size: self.size,
        });
        let bytes = self.checkpoint_bytes();
        self.queue.push_back(DownloadStep::StoreCheckpoint(bytes));
        if self.resumed > 0 {
            // The bytes kept count from the start (all of them when nothing is left to fetch).
            self.queue.push_back(DownloadStep::Progress {
                done: self.resumed,
                total: self.size,
            });
        }
    }

    /// Keeps the checkpoint's ranges when it names this object and fits the plan.
    fn resume_from(&mut self, cp: &DownloadCheckpoint) {
        if cp.version != DOWNLOAD_CHECKPOINT_VERSION
            || cp.bucket != self.bucket
            || cp.key != self.key
            || cp.etag != self.etag
            || cp.etag.is_empty()
            || cp.size != self.size
            || cp.crc64 != self.crc64
            || cp.range_size != self.range_size
        {
            return;
        }
        let mut pieces = self.pieces.clone();
        for r in &cp.done {
            // A range is kept only where it continues a piece's done bytes exactly.
            let Some(p) = pieces
                .iter_mut()
                .find(|p| r.offset >= p.offset && r.offset < p.offset + p.len.max(1))
            else {
                return;
            };
            if r.offset != p.offset + p.covered() || r.len == 0 || r.len > p.len - p.covered() {
                return;
            }
            p.done.push(*r);
        }
        self.resumed = pieces.iter().map(Piece::covered).sum();
        self.pieces = pieces;
        self.fresh_temp = false;
    }

    /// Whether the temporary file is made afresh ([`DownloadStep::PrepareTemp`]'s `create`): `false` only
    /// when continuing from a checkpoint, whose file is kept.
    pub fn fresh_temp(&self) -> bool {
        self.fresh_temp
    }

    /// The object's size: the file's final length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's ETag (empty when COS sent none).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// Bytes kept from the checkpoint (not fetched again).
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    /// GET requests handed out so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Bytes in the temporary file so far.
    pub fn done(&self) -> u64 {
        self.pieces.iter().map(Piece::covered).sum()
    }

    /// The most fetches in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency.min(self.pieces.len()).max(1)
    }

    /// The current checkpoint, serialized.
    pub fn checkpoint_bytes(&self) -> Vec<u8> {
        let cp = DownloadCheckpoint {
            version: DOWNLOAD_CHECKPOINT_VERSION,
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            etag: self.etag.clone(),
            size: self.size,
            crc64: self.crc64,
            range_size: self.range_size,
            done: self.pieces.iter().flat_map(|p| p.done.clone()).collect(),
        };
        serde_json::to_vec(&cp).unwrap_or_default()
    }

    /// What to do next.
    pub fn next_step(&mut self) -> DownloadStep {
        if let Some(step) = self.queue.pop_front() {
            return step;
        }
        if self.ended {
            return DownloadStep::Exit;
        }
        if self.loading {
            return DownloadStep::LoadCheckpoint;
        }
        if self.checking {
            let ranges = self
                .pieces
                .iter()
                .flat_map(|p| p.done.iter().map(|r| (r.offset, r.len)))
                .collect();
            return DownloadStep::CheckKept { ranges };
        }
        let in_flight = self.pieces.iter().filter(|p| p.in_flight).count();
        if self.paused {
            return match in_flight {
                0 => DownloadStep::Paused,
                _ => DownloadStep::Wait,
            };
        }
        if in_flight < self.concurrency() {
            if let Some(i) = self
                .pieces
                .iter()
                .position(|p| !p.in_flight && !p.complete())
            {
                return DownloadStep::Fetch(self.fetch(i));
            }
        }
        if in_flight > 0 {
            return DownloadStep::Wait;
        }
        self.ended = true;
        match self.verify() {
            Ok(()) => {
                self.finishing = true;
                DownloadStep::Finish
            }
            Err(error) => DownloadStep::Fail {
                error,
                keep_partial: false,
            },
        }
    }

    fn fetch(&mut self, i: usize) -> Fetch {
        let (key, etag, ranged, sync) = (
            self.key.clone(),
            self.etag.clone(),
            self.ranged,
            self.checkpoint,
        );
        let p = &mut self.pieces[i];
        p.in_flight = true;
        self.requests += 1;
        let start = p.offset + p.covered();
        let len = p.len - p.covered();
        let get = GetObject::new(key);
        let get = if etag.is_empty() {
            get
        } else {
            get.if_match(etag)
        };
        let request = if ranged || start > p.offset {
            get.range(start, Some(start + len - 1))
        } else {
            get
        };
        Fetch {
            id: i,
            request,
            offset: start,
            len,
            delay: std::mem::take(&mut p.delay),
            sync,
            total: self.size,
            etag: self.etag.clone(),
        }
    }

    /// Pauses: no new fetch is handed out; once the fetches in flight are reported (and their ranges
    /// stored in the checkpoint), [`DownloadTask::next_step`] answers [`DownloadStep::Paused`]. No effect
    /// after the end.
    pub fn pause(&mut self) {
        if !self.ended {
            self.paused = true;
        }
    }

    /// Continues after [`DownloadTask::pause`] with the ranges still missing.
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Whether the task is paused ([`DownloadTask::pause`] without a [`DownloadTask::resume`] since).
    pub fn is_paused(&self) -> bool {
        self.paused && !self.ended
    }

    /// Cancels: the next step is [`DownloadStep::Fail`] with [`Error::Cancelled`] and `keep_partial`
    /// false (remove the temporary file and the checkpoint; the destination is untouched), then
    /// [`DownloadStep::Exit`]. Steps not yet taken are dropped (no later checkpoint store), and reports of
    /// fetches still in flight are ignored. No effect after the end.
    pub fn cancel(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.paused = false;
        self.queue.clear();
        self.queue.push_back(DownloadStep::Fail {
            error: Error::Cancelled,
            keep_partial: false,
        });
    }

    /// Reports that the driver could not carry out a step of its own: store the checkpoint, create,
    /// flush or rename the file at [`DownloadStep::Finish`], or collect a fetch. The next step is
    /// [`DownloadStep::Fail`] with `error`, keeping the temporary file and the checkpoint only when the
    /// task keeps a checkpoint (a rerun continues from them), then [`DownloadStep::Exit`]. Steps not yet
    /// taken are dropped. No effect after a `Fail` (the first failure is the one reported).
    pub fn local_failure(&mut self, error: Error) {
        if self.ended && !self.finishing {
            return;
        }
        self.ended = true;
        self.finishing = false;
        self.paused = false;
        self.queue.clear();
        self.queue.push_back(DownloadStep::Fail {
            error,
            keep_partial: self.checkpoint,
        });
    }

    /// Applies a user's [`Command`]: [`pause`](DownloadTask::pause), [`resume`](DownloadTask::resume)
    /// or [`cancel`](DownloadTask::cancel).
    pub fn command(&mut self, command: Command) {
        match command {
            Command::Pause => self.pause(),
            Command::Resume => self.resume(),
            Command::Cancel => self.cancel(),
        }
    }

    /// Reports what fetch `id` did. A retryable failure (a cut connection, a timeout, 5xx) fetches the
    /// rest again after a backoff, as long as attempts without progress stay within the retry policy's
    /// `max_attempts`; any other failure (the object changed: `PreconditionFailed`) ends the download.
    pub fn fetched(&mut self, id: usize, report: FetchReport) {
        if self.ended || id >= self.pieces.len() || !self.pieces[id].in_flight {
            return;
        }
        let checkpoint = self.checkpoint;
        let total = self.size;
        let p = &mut self.pieces[id];
        p.in_flight = false;
        let remaining = p.len - p.covered();
        let error = if report.written > remaining {
            Some(Error::Transport(TransportError::new(
                TransportErrorKind::Other,
                format!(
                    "{} bytes written for a range of {remaining}",
                    report.written
                ),
            )))
        } else if matches!(report.error, Some(Error::Integrity(_))) {
            // The body failed its own check: its bytes are not kept.
            report.error
        } else {
            if report.written > 0 || (p.len == 0 && report.error.is_none()) {
                p.done.push(DoneRange {
                    offset: p.offset + p.covered(),
                    len: report.written,
                    crc64: report.crc64,
                });
            }
            match report.error {
                None if !p.complete() => Some(Error::Transport(TransportError::new(
                    TransportErrorKind::Reset,
                    "the body ended before the range did",
                ))),
                e => e,
            }
        };
        let progressed = report.written > 0 && !matches!(error, Some(Error::Integrity(_)));
        if progressed {
            p.failures = 0;
        }
        let mut failed = None;
        if let Some(e) = error {
            p.failures += 1;
            if e.is_retryable() && p.failures < self.retry.max_attempts {
                if self.etag.is_empty() {
                    // Nothing pins the object: bytes of another version must not be mixed in.
                    p.done.clear();
                }
                p.delay = self.retry.backoff(p.failures + 1, &mut self.rng);
            } else {
                failed = Some(e);
            }
        }
        if progressed {
            let done = self.done();
            if checkpoint {
                let bytes = self.checkpoint_bytes();
                self.queue.push_back(DownloadStep::StoreCheckpoint(bytes));
            }
            self.queue.push_back(DownloadStep::Progress { done, total });
        }
        if let Some(error) = failed {
            self.ended = true;
            // A changed object makes the kept bytes worthless; other failures keep them for a resume.
            let changed = matches!(error.code(), Some("PreconditionFailed"))
                || matches!(error, Error::Integrity(_));
            self.queue.push_back(DownloadStep::Fail {
                error,
                keep_partial: checkpoint && !changed,
            });
        }
    }

    /// The CRC-64 of the ranges, combined, against the object's.
    fn verify(&self) -> Result<(), Error> {
        let Some(expected) = self.crc64 else {
            return Ok(());
        };
        // The CRC-64 of nothing is 0, so folding from 0 gives the CRC-64 of the concatenation.
        let combined = self
            .pieces
            .iter()
            .flat_map(|p| p.done.iter())
            .fold(0u64, |acc, r| Crc64::combine(acc, r.crc64, r.len));
        if combined != expected {
            return Err(Error::Integrity(IntegrityError::Crc64 {
                part: None,
                expected,
                actual: combined,
            }));
        }
        Ok(())
    }
}

impl Piece {
    fn new(offset: u64, len: u64) -> Piece {
        Piece {
            offset,
            len,
            done: Vec::new(),
            in_flight: false,
            failures: 0,
            delay: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests;
