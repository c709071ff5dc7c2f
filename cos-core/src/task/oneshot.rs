//! [`OneShot`]: one operation as a task, with retries, backoff and clock-skew correction.

use std::time::Instant;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::ops::Operation;
use crate::retry::{AfterFailure, Attempts, Rng};
use crate::task::{sign, Event, Input, Now, Output, RequestId, Task, Transmit};

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
///     .header("etag", "\"5d41402abc4b2a76b9719d911017c592\"")
///     .header("x-cos-hash-crc64ecma", "11177612005948864433").body(bytes::Bytes::new()).unwrap();
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
            // Never emitted Io, so any Io answer is foreign.
            Input::Io { .. } => return,
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
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;

    use super::*;

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

    /// After a retryable failure the task announces attempt 2 with its delay, waits exactly that long
    /// (polling earlier sends nothing), sends the retry under a new request id, and ignores a late answer
    /// to the first attempt.
    #[test]
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn a_retry_waits_its_delay_and_uses_a_new_request_id() {
        use crate::ops::PutObject;
        let config =
            Config::new("b-1250000000", "ap-guangzhou", Credentials::new("id", "k")).unwrap();
        let mut task = OneShot::new(PutObject::new("a").with_bytes("x"), config).unwrap();
        let now = Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let status = |code: u16| {
            http::Response::builder()
                .status(code)
                .header("etag", "\"9dd4e461268c8034f5c8564e155c67a6\"")
                .header(
                    "x-cos-hash-crc64ecma",
                    crate::checksum::Crc64::checksum(b"x").to_string(),
                )
                .body(Bytes::new())
                .unwrap()
        };
        let Output::Transmit(first) = task.poll_output(now) else {
            panic!("the first attempt is sent at once")
        };
        assert_eq!(first.attempt, 1);
        let answer = |id, code| Input::Response {
            id,
            response: status(code),
            sent: None,
        };
        task.handle_input(now, answer(first.id, 503));
        let delay = match task.poll_output(now) {
            Output::Event(Event::RetryScheduled { attempt, delay, .. }) => {
                assert_eq!(attempt, 2, "the next attempt's number");
                delay
            }
            other => panic!("{other:?}"),
        };
        assert!(delay > Duration::ZERO);
        let due = now.instant + delay;
        for early in [now, now.advance(delay / 2)] {
            match task.poll_output(early) {
                Output::Wait { until } => assert_eq!(until, Some(due)),
                other => panic!("nothing is sent before the delay: {other:?}"),
            }
        }
        let Output::Transmit(second) = task.poll_output(now.advance(delay)) else {
            panic!("the retry is sent once the delay has passed")
        };
        assert_eq!(second.attempt, 2);
        assert_ne!(second.id, first.id);
        // A late answer to the first attempt is not taken for the retry's.
        task.handle_input(now.advance(delay), answer(first.id, 200));
        assert!(matches!(
            task.poll_output(now.advance(delay)),
            Output::Wait { until: None }
        ));
        task.handle_input(now.advance(delay), answer(second.id, 200));
        let out = task.poll_output(now.advance(delay));
        assert!(matches!(out, Output::Done(Ok(_))), "{out:?}");
    }

    /// A `RequestTimeTooSkewed` whose `Date` is hostile (overflowing fields) or implies an offset beyond
    /// one day ends the task with that service error: no panic, no re-signing with an absurd clock.
    #[test]
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn hostile_skew_dates_end_in_the_service_error() {
        use crate::ops::PutObject;
        let now = Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        for (date, retried) in [
            ("Thu, 01 Jan 1970 00:00:9223372036854776808 GMT", false),
            ("Sat, 01 Jan 0 00:00:00 GMT", false),
            ("Mon, 01 Jan 1900 00:00:00 GMT", false),
            ("Thu, 99999999999999999999 Jan 1970 00:00:00 GMT", false),
            ("Fri, 31 Dec 9999 23:59:59 GMT", false),
            ("Thu, 01 Jan 1970 00:00:00 GMT", false),
            // Within a day: followed once.
            ("Tue, 14 Nov 2023 23:13:20 GMT", true),
        ] {
            let config =
                Config::new("b-1250000000", "ap-guangzhou", Credentials::new("id", "k")).unwrap();
            let mut task = OneShot::new(PutObject::new("a").with_bytes("x"), config).unwrap();
            let mut sent = 0;
            let result = loop {
                match task.poll_output(now) {
                    Output::Io(io) => panic!("unexpected {io:?}"),
                    Output::Transmit(t) => {
                        sent += 1;
                        let response = http::Response::builder()
                            .status(403)
                            .header("date", date)
                            .body(Bytes::from_static(
                                b"<Error><Code>RequestTimeTooSkewed</Code><Message>m</Message></Error>",
                            ))
                            .unwrap();
                        task.handle_input(
                            now,
                            Input::Response {
                                id: t.id,
                                response,
                                sent: None,
                            },
                        );
                    }
                    Output::Event(_) => {}
                    Output::Wait { .. } => panic!("waiting"),
                    Output::Done(r) => break r,
                }
            };
            assert_eq!(
                result.unwrap_err().code(),
                Some("RequestTimeTooSkewed"),
                "{date}"
            );
            assert_eq!(sent, if retried { 2 } else { 1 }, "{date}");
        }
    }

    /// A clock offset set by hand beyond the window fails signing with a typed error.
    #[test]
    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn an_absurd_configured_offset_is_an_error() {
        use crate::ops::PutObject;
        let mut config =
            Config::new("b-1250000000", "ap-guangzhou", Credentials::new("id", "k")).unwrap();
        config.clock_offset_secs = i64::MAX;
        let mut task = OneShot::new(PutObject::new("a").with_bytes("x"), config).unwrap();
        let now = Now {
            instant: Instant::now(),
            system: SystemTime::now(),
        };
        let Output::Done(Err(Error::InvalidInput(e))) = task.poll_output(now) else {
            panic!()
        };
        assert!(e.to_string().contains("clock_offset_secs"), "{e}");
    }
}
