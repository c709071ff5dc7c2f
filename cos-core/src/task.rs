//! The task protocol every operation and transfer speaks: the driver feeds [`Input`]s and drains
//! [`Output`]s.
//!
//! # The loop contract
//!
//! A driver owns a [`Task`] and repeats, with the current [`Now`] on every call:
//!
//! 1. **Poll** [`Task::poll_output`] until it returns [`Output::Wait`] or [`Output::Done`]. Each output has
//!    exactly one legal answer:
//!    - [`Output::Transmit`]: send the signed request as given (streaming a
//!      [`RequestBody::Source`] range from the source and measuring its [`SentDigest`]); answer with
//!      [`Input::Response`] (body read within [`ResponseLimits`]) or [`Input::Failed`], same id.
//!    - [`Output::Io`]: perform the local I/O of its [`IoRequest`] (each variant documents its one legal
//!      [`IoResult`]); answer with [`Input::Io`], same id. The driver decides nothing: it does not choose
//!      whether to store, where, or what the bytes mean.
//!    - [`Output::Event`]: report it (logs, callbacks); no answer. Events are never requests.
//!    - [`Output::Wait`]: nothing to do until an answer arrives, a [`Command`] is given, or `until` passes.
//!    - [`Output::Done`]: the task ended; drop it. Answers still in flight may be discarded.
//! 2. **Perform** what was asked and **feed** each answer with [`Task::handle_input`], then poll again.
//!    Requests may run concurrently and be answered in any order. [`Output::Io`] requests are performed
//!    one at a time, in the order asked (a checkpoint store must not overtake an earlier one), beside the
//!    requests; those asked before [`Output::Done`] are still performed before the driver returns.
//! 3. **Command** at any time with [`Task::handle_command`] (the user paused, resumed or cancelled), then
//!    poll again.
//!
//! A task never reads a clock, a file or a socket; everything it needs from outside arrives as an
//! [`Input`] or a [`Command`].

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::checksum::SentDigest;
use crate::credentials::Credentials;
use crate::error::{Error, TransportError};

pub mod oneshot;
pub use oneshot::OneShot;

/// The current time, supplied by the driver on every call that may act: the core never reads a clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for timers and backoff.
    pub instant: Instant,
    /// Wall-clock time, for signatures.
    pub system: SystemTime,
}

impl Now {
    /// Advances both clocks by `d` (handy for virtual time in tests).
    pub fn advance(self, d: Duration) -> Now {
        Now {
            instant: self.instant + d,
            system: self.system + d,
        }
    }
}

/// Identifies one request a task emitted, so its answer can be routed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A signed request the driver must send.
#[derive(Debug)]
pub struct Transmit {
    /// Route the answer back with this id.
    pub id: RequestId,
    /// The operation's name (`PutObject`, `UploadPart`…), for logs and spans.
    pub operation: &'static str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The signed request. Send the method, URI and headers exactly as given.
    pub request: http::Request<RequestBody>,
}

/// Local I/O a task needs from its driver ([`Output::Io`]). Each variant names the one legal
/// [`IoResult`]; any other answer is treated as [`IoResult::Failed`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoRequest {
    /// Read the task's checkpoint file. Answer [`IoResult::Data`]`(Some(bytes))`, or `Data(None)` when
    /// the file does not exist; [`IoResult::Failed`] when it cannot be read.
    LoadCheckpoint,
    /// Replace the task's checkpoint file with these bytes atomically (a temporary file next to it,
    /// synced, renamed over it; create missing directories). Answer [`IoResult::Done`] or
    /// [`IoResult::Failed`].
    StoreCheckpoint(Bytes),
    /// Remove the task's checkpoint file. Answer [`IoResult::Done`] (also when it did not exist) or
    /// [`IoResult::Failed`].
    RemoveCheckpoint,
    /// Read `len` bytes of the task's source from `offset` and hash them with
    /// [`BodyDigest::with_md5`](crate::checksum::BodyDigest::with_md5)`(true)`. Answer
    /// [`IoResult::Digest`]; [`IoResult::Failed`] when the range cannot be read whole.
    Digest {
        /// Offset in the source.
        offset: u64,
        /// Number of bytes.
        len: u64,
    },
    /// Read the next bytes of the task's stream: exactly `len`, fewer only where the stream ends. Answer
    /// [`IoResult::Data`]`(Some(bytes))` (empty at the end) or [`IoResult::Failed`].
    ReadStream {
        /// The most bytes to return.
        len: u64,
    },
}

/// The local I/O a task asks for, with the id its answer carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Io {
    /// Route the answer back with this id.
    pub id: RequestId,
    /// What to do.
    pub request: IoRequest,
}

/// The result of an [`IoRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoResult {
    /// Done ([`IoRequest::StoreCheckpoint`], [`IoRequest::RemoveCheckpoint`]).
    Done,
    /// Bytes read; `None`: the checkpoint file does not exist.
    Data(Option<Bytes>),
    /// The digest of a source range.
    Digest(SentDigest),
    /// The I/O failed, with a message for the user (no secrets in it).
    Failed(String),
}

/// A command from the user to a running task ([`Task::handle_command`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Stop sending new requests; the task reports [`Event::Paused`] once nothing is in flight.
    Pause,
    /// Continue after a pause.
    Resume,
    /// Stop for good: abort what was started and end with [`Error::Cancelled`].
    Cancel,
}

/// What the driver feeds back into a task.
#[derive(Debug)]
pub enum Input {
    /// A complete response (body read to the end).
    Response {
        /// The request it answers.
        id: RequestId,
        /// Status, headers and body.
        response: http::Response<Bytes>,
        /// Digest of a [`RequestBody::Source`] body as it was sent; `None` for other bodies.
        sent: Option<SentDigest>,
    },
    /// The request failed in the transport, or its source could not be read.
    Failed {
        /// The request that failed.
        id: RequestId,
        /// Why.
        error: TransportError,
    },
    /// The result of an [`Output::Io`].
    Io {
        /// The I/O it answers.
        id: RequestId,
        /// What happened.
        result: IoResult,
    },
}

impl Input {
    /// The request this input answers.
    pub fn id(&self) -> RequestId {
        match self {
            Input::Response { id, .. } | Input::Failed { id, .. } | Input::Io { id, .. } => *id,
        }
    }
}

/// Something a task reports along the way.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A request failed and will be sent again at `at`.
    RetryScheduled {
        /// The operation.
        operation: &'static str,
        /// The part, for part uploads.
        part: Option<u32>,
        /// The attempt that will be made.
        attempt: u32,
        /// How long until then.
        delay: Duration,
        /// Why it failed.
        error: Error,
    },
    /// The server clock differs from ours: sign with this many seconds added from now on.
    ClockSkewAdjusted {
        /// Server time minus local time, in seconds.
        offset_secs: i64,
    },
    /// A multipart upload was initiated.
    Initiated {
        /// Its id.
        upload_id: String,
    },
    /// A part was uploaded and verified.
    PartCompleted {
        /// Part number.
        part: u32,
        /// Its ETag.
        etag: String,
        /// Its length.
        len: u64,
    },
    /// Bytes confirmed by the server so far (every change; [`Event::Report`] is the throttled view).
    Progress {
        /// Bytes confirmed.
        loaded: u64,
        /// Total bytes, when known.
        total: Option<u64>,
    },
    /// Nothing is in flight any more and the task is paused; its checkpoint is current.
    Paused,
    /// Storing the checkpoint failed ([`IoRequest::StoreCheckpoint`] answered [`IoResult::Failed`]): the
    /// upload goes on, but a resume may send parts again.
    CheckpointNotStored {
        /// Why, as the driver reported it.
        reason: String,
    },
    /// A progress report for the user, throttled (at most one per
    /// [`DEFAULT_PROGRESS_INTERVAL`](crate::upload::DEFAULT_PROGRESS_INTERVAL); the first and the last
    /// always pass): of the upload, or of the pre-upload hash when `hashing`.
    Report {
        /// True while hashing the file for `x-cos-meta-md5`.
        hashing: bool,
        /// The report.
        progress: crate::upload::Progress,
    },
    /// An existing multipart upload (from a checkpoint, or found unfinished) was checked and is continued.
    Resumed {
        /// Its id.
        upload_id: String,
        /// Parts kept so far (in find-unfinished mode, more may be kept once their digests arrive).
        parts_done: u32,
    },
    /// A multipart upload is started over: the previous upload is stale or gone.
    Restarted {
        /// The upload id given up (aborted when the source changed).
        previous_upload_id: String,
        /// Why.
        reason: &'static str,
    },
}

/// What a task wants next.
#[derive(Debug)]
#[must_use]
pub enum Output<T> {
    /// Send this request.
    Transmit(Transmit),
    /// Perform this local I/O.
    Io(Io),
    /// Report this event.
    Event(Event),
    /// Nothing to do until an input arrives or `until` passes (`None`: only an input can wake the task).
    Wait {
        /// The next timer.
        until: Option<Instant>,
    },
    /// The task ended.
    Done(Result<T, Error>),
}

/// A sans-IO task: a state machine that emits requests and consumes responses.
pub trait Task {
    /// What the task produces.
    type Output;
    /// Pulls the next thing to do. Call until it returns [`Output::Wait`] or [`Output::Done`].
    fn poll_output(&mut self, now: Now) -> Output<Self::Output>;
    /// Pushes the answer to a request this task emitted.
    fn handle_input(&mut self, now: Now, input: Input);
    /// Gives a user command. The default ignores it: single operations cannot be paused.
    fn handle_command(&mut self, _now: Now, _command: Command) {}
    /// Signs every request emitted from now on with these credentials (refreshed temporary credentials,
    /// from a [`crate::credentials::ProvideCredentials`]). Requests already emitted keep their signature.
    /// The default ignores them: for tasks that sign nothing (a POST form carries its own signature).
    fn set_credentials(&mut self, _credentials: Credentials) {}
}

pub use crate::auth::sign;
pub use crate::body::{BodyLimit, BodyTruncated, RequestBody, ResponseLimits};
pub use crate::date::{corrected, format_http_date, parse_http_date, skew_offset};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant for virtual time
    fn advancing_now_moves_both_clocks_forward() {
        let start = Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
        };
        let later = start.advance(Duration::from_secs(5));
        assert_eq!(later.instant - start.instant, Duration::from_secs(5));
        assert_eq!(
            later.system,
            SystemTime::UNIX_EPOCH + Duration::from_secs(105)
        );
    }
}
