//! The task protocol every operation and transfer speaks: the driver feeds [`Input`]s and drains
//! [`Output`]s (see the loop contract in the crate docs).

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::auth::{authorize, KeyTime};
use crate::checksum::SentDigest;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::{Error, TransportError};
use crate::ops::Operation;
use crate::retry::{RetryDecision, Rng};

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

/// The body of an outgoing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// No body.
    Empty,
    /// These bytes.
    Bytes(Bytes),
    /// `len` bytes of the task's source starting at `offset`: the driver streams them (from a file range,
    /// a reader, …) and reports their [`SentDigest`] with the response.
    Source {
        /// Offset in the source.
        offset: u64,
        /// Number of bytes.
        len: u64,
    },
}

impl RequestBody {
    /// The body length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Empty => 0,
            RequestBody::Bytes(b) => b.len() as u64,
            RequestBody::Source { len, .. } => *len,
        }
    }

    /// True for a zero-length body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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
}

impl Input {
    /// The request this input answers.
    pub fn id(&self) -> RequestId {
        match self {
            Input::Response { id, .. } | Input::Failed { id, .. } => *id,
        }
    }
}

/// Something a task reports along the way.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Bytes confirmed by the server so far.
    Progress {
        /// Bytes confirmed.
        loaded: u64,
        /// Total bytes, when known.
        total: Option<u64>,
    },
    /// Nothing is in flight any more and the task is paused; its checkpoint is current.
    Paused,
    /// The checkpoint changed (a part finished, an upload was initiated): persist it if you keep one.
    CheckpointChanged,
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
    /// The driver must compute the [`crate::checksum::BodyDigest`] of this range of the source and report it
    /// (`MultipartUpload::part_digest`): an unfinished upload has a part of this size, and its ETag is
    /// compared with the local MD5 before the part is kept.
    PartDigestNeeded {
        /// Part number.
        part: u32,
        /// Offset in the source.
        offset: u64,
        /// Length.
        len: u64,
    },
}

/// What a task wants next.
#[derive(Debug)]
#[must_use]
pub enum Output<T> {
    /// Send this request.
    Transmit(Transmit),
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
    /// Signs every request emitted from now on with these credentials (refreshed temporary credentials,
    /// from a [`crate::credentials::ProvideCredentials`]). Requests already emitted keep their signature.
    /// The default ignores them: for tasks that sign nothing (a POST form carries its own signature).
    fn set_credentials(&mut self, _credentials: Credentials) {}
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: u64 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as u64
        + 1;
    let year: u64 = parts[3].parse().ok()?;
    let mut hms = parts[4].split(':').map(|x| x.parse::<u64>());
    let (h, mi, se) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se)
}

/// Formats Unix seconds as an HTTP date.
pub fn format_http_date(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let z = days + 719468;
    let era = z / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!("{weekday}, {d:02} {month} {y} {h:02}:{mi:02}:{s:02} GMT")
}

/// The clock offset a `RequestTimeTooSkewed` answer implies: server `Date` minus local time, in seconds.
pub fn skew_offset(response_date: Option<&str>, local: SystemTime) -> Option<i64> {
    let server = parse_http_date(response_date?)? as i64;
    let local = local.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(server - local)
}

/// The signing time after applying a clock offset.
pub fn corrected(now: SystemTime, offset_secs: i64) -> SystemTime {
    if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs as u64)
    } else {
        now - Duration::from_secs(offset_secs.unsigned_abs())
    }
}

/// Signs a request for sending at `now` with the config's credentials, validity and clock offset.
pub fn sign(
    config: &Config,
    request: &mut http::Request<RequestBody>,
    now: SystemTime,
) -> Result<(), Error> {
    let key_time = KeyTime::around(
        corrected(now, config.clock_offset_secs),
        config.signature_validity,
    );
    authorize(request, &config.credentials, key_time)
}

/// How a failed attempt is handled; shared by every task so that the decision is made once.
#[derive(Debug)]
pub(crate) enum AfterFailure {
    /// Re-sign with the new clock offset and send again now.
    SkewRetry(i64),
    /// Send again after this delay.
    Backoff(Duration),
    /// Report the error.
    Fail,
}

/// Per-request retry bookkeeping: attempts, the one clock-skew retry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attempts {
    pub attempt: u32,
    pub skew_retried: bool,
}

impl Attempts {
    /// Decides what follows a failure; `replayable` is false for bodies that cannot be sent twice.
    pub fn after_failure(
        &mut self,
        config: &Config,
        error: &Error,
        date: Option<&str>,
        now: SystemTime,
        replayable: bool,
        rng: &mut Rng,
    ) -> AfterFailure {
        if !replayable {
            return AfterFailure::Fail;
        }
        if error.code() == Some("RequestTimeTooSkewed") && !self.skew_retried {
            self.skew_retried = true;
            if let Some(offset) = skew_offset(date, now) {
                return AfterFailure::SkewRetry(offset);
            }
        }
        match config.retry.decide(error, self.attempt, rng) {
            RetryDecision::RetryAfter(d) => AfterFailure::Backoff(d),
            RetryDecision::GiveUp => AfterFailure::Fail,
        }
    }
}

/// Runs one [`Operation`] with retries, backoff and clock-skew correction.
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use cos_core::{ops::PutObject, task::{Now, OneShot, Output, Task, Input}, Config, Credentials};
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY")).unwrap();
/// let mut task = OneShot::new(PutObject::new("a.txt").with_bytes("hello"), config).unwrap();
/// let now = Now { instant: Instant::now(), system: SystemTime::now() };
/// let Output::Transmit(t) = task.poll_output(now) else { panic!() };
/// assert_eq!(t.request.method(), "PUT");
/// let response = http::Response::builder().status(200)
///     .header("etag", "\"5d41402abc4b2a76b9719d911017c592\"").body(bytes::Bytes::new()).unwrap();
/// task.handle_input(now, Input::Response { id: t.id, response, sent: None });
/// let Output::Done(Ok(out)) = task.poll_output(now) else { panic!() };
/// assert_eq!(out.etag, "\"5d41402abc4b2a76b9719d911017c592\"");
/// ```
#[derive(Debug)]
pub struct OneShot<O: Operation> {
    op: O,
    config: Config,
    rng: Rng,
    attempts: Attempts,
    next_id: u64,
    in_flight: Option<RequestId>,
    not_before: Option<Instant>,
    events: std::collections::VecDeque<Event>,
    done: Option<Result<O::Output, Error>>,
    finished: bool,
    replayable: bool,
}

impl<O: Operation> OneShot<O> {
    /// Validates the operation (building its request once) and prepares to run it.
    /// An invalid input fails here, before anything is sent.
    pub fn new(op: O, config: Config) -> Result<Self, Error> {
        op.to_request(&config)?;
        let rng = Rng::new(config.retry.seed ^ 0x0a11_0ca7);
        Ok(OneShot {
            op,
            config,
            rng,
            attempts: Attempts::default(),
            next_id: 0,
            in_flight: None,
            not_before: None,
            events: Default::default(),
            done: None,
            finished: false,
            replayable: true,
        })
    }

    /// Marks the body as one that can be sent only once (a reader that cannot be rewound): no retries.
    pub fn not_replayable(mut self) -> Self {
        self.replayable = false;
        self
    }

    /// The operation.
    pub fn operation(&self) -> &O {
        &self.op
    }

    /// The config, with any clock offset learned so far.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl<O: Operation> Task for OneShot<O> {
    type Output = O::Output;

    fn poll_output(&mut self, now: Now) -> Output<O::Output> {
        if let Some(e) = self.events.pop_front() {
            return Output::Event(e);
        }
        if let Some(done) = self.done.take() {
            self.finished = true;
            return Output::Done(done);
        }
        if self.finished || self.in_flight.is_some() {
            return Output::Wait { until: None };
        }
        if let Some(t) = self.not_before {
            if now.instant < t {
                return Output::Wait { until: Some(t) };
            }
            self.not_before = None;
        }
        let mut request = match self.op.to_request(&self.config) {
            Ok(r) => r,
            Err(e) => {
                self.finished = true;
                return Output::Done(Err(e));
            }
        };
        if let Err(e) = sign(&self.config, &mut request, now.system) {
            self.finished = true;
            return Output::Done(Err(e));
        }
        self.attempts.attempt += 1;
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.in_flight = Some(id);
        Output::Transmit(Transmit {
            id,
            operation: O::NAME,
            attempt: self.attempts.attempt,
            request,
        })
    }

    fn set_credentials(&mut self, credentials: Credentials) {
        self.config.credentials = credentials;
    }

    fn handle_input(&mut self, now: Now, input: Input) {
        if self.in_flight != Some(input.id()) {
            return; // a stale or foreign answer
        }
        self.in_flight = None;
        let (error, date) = match input {
            Input::Response { response, sent, .. } => {
                match self.op.parse_response(&response, sent.as_ref()) {
                    Ok(out) => {
                        self.done = Some(Ok(out));
                        return;
                    }
                    Err(e) => {
                        let date = response
                            .headers()
                            .get(http::header::DATE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        (e, date)
                    }
                }
            }
            Input::Failed { error, .. } => (Error::Transport(error), None),
        };
        match self.attempts.after_failure(
            &self.config,
            &error,
            date.as_deref(),
            now.system,
            self.replayable,
            &mut self.rng,
        ) {
            AfterFailure::SkewRetry(offset) => {
                self.config.clock_offset_secs = offset;
                self.events.push_back(Event::ClockSkewAdjusted {
                    offset_secs: offset,
                });
            }
            AfterFailure::Backoff(delay) => {
                self.not_before = Some(now.instant + delay);
                self.events.push_back(Event::RetryScheduled {
                    operation: O::NAME,
                    part: None,
                    attempt: self.attempts.attempt + 1,
                    delay,
                    error,
                });
            }
            AfterFailure::Fail => self.done = Some(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let s = "Sun, 06 Nov 1994 08:49:37 GMT";
        let secs = parse_http_date(s).unwrap();
        assert_eq!(secs, 784111777);
        assert_eq!(format_http_date(secs), s);
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn set_credentials_signs_the_next_attempt_with_the_new_token() {
        use crate::ops::PutObject;
        let config = Config::new(
            "b-1250000000",
            "ap-guangzhou",
            Credentials::new("id1", "k1"),
        )
        .unwrap();
        let mut task = OneShot::new(PutObject::new("a").with_bytes("x"), config).unwrap();
        let now = Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let auth = |t: &Transmit| {
            let h = t.request.headers();
            (
                h["authorization"].to_str().unwrap().to_string(),
                h.get("x-cos-security-token")
                    .map(|v| v.to_str().unwrap().to_string()),
            )
        };
        let Output::Transmit(t) = task.poll_output(now) else {
            panic!()
        };
        let (a1, tok1) = auth(&t);
        assert!(a1.contains("q-ak=id1&") && tok1.is_none(), "{a1}");
        let response = http::Response::builder()
            .status(503)
            .body(Bytes::new())
            .unwrap();
        task.handle_input(
            now,
            Input::Response {
                id: t.id,
                response,
                sent: None,
            },
        );
        Task::set_credentials(
            &mut task,
            Credentials::new("id2", "k2").with_security_token("tok2"),
        );
        let later = now.advance(Duration::from_secs(60));
        let t = loop {
            match task.poll_output(later) {
                Output::Transmit(t) => break t,
                Output::Event(_) => {}
                other => panic!("{other:?}"),
            }
        };
        let (a2, tok2) = auth(&t);
        assert!(a2.contains("q-ak=id2&"), "{a2}");
        assert_eq!(tok2.as_deref(), Some("tok2"));
    }
}
