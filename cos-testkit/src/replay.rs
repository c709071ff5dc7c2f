//! Replay: drive a `cos-core` task, or a client, from a recorded fixture with no network.
//!
//! [`run_task`] runs any [`Task`] against a fixture on a virtual clock: it answers each request from the
//! fixture (in order, or by matching for concurrent parts), jumps the clock to every `Wait { until }`, and
//! keeps a transcript of what the task sent and decided. A request the fixture does not expect ends the run
//! with a [`ReplayError::Mismatch`] that lists what differs. [`Replay`] does the same for several tasks in a
//! row (a scenario: PUT, then HEAD, then GET…). [`Recording`] is its mirror image: the same loop, but each
//! request goes to a real transport and the exchange is written down, so that the fixture replays byte for
//! byte (the `record_fixtures` example records `cos-testkit/fixtures/` with it). [`Responder`] and
//! [`Recorder`] plug the same fixtures into the clients' transport hooks.
//!
//! Fixtures are JSON ([`load_fixture`], [`save_fixture`]); the format is [`cos_core::fixture::Fixture`].

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cos_core::checksum::BodyDigest;
use cos_core::fixture::{
    BodyRecord, Exchange, ExchangeRecorder, ExchangeResponder, Fixture, Mismatch, Player,
    RecordedRequest, RecordedResponse, FIXTURE_VERSION,
};
use cos_core::task::{Event, Input, Now, Output, RequestBody, Task};
use cos_core::{Config, Credentials, Endpoint};

/// Reads a fixture file (JSON).
pub fn load_fixture(path: impl AsRef<Path>) -> std::io::Result<Fixture> {
    let text = std::fs::read_to_string(path.as_ref())?;
    let f: Fixture = serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.as_ref().display()),
        )
    })?;
    if f.version != FIXTURE_VERSION {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "fixture version {} (this testkit reads {FIXTURE_VERSION})",
                f.version
            ),
        ));
    }
    Ok(f)
}

/// Writes a fixture file (pretty JSON), atomically. The secret key, signatures and security tokens are
/// written as `<redacted>` ([`Fixture::redact`]), whatever the fixture holds.
pub fn save_fixture(path: impl AsRef<Path>, fixture: &Fixture) -> std::io::Result<()> {
    let mut fixture = fixture.clone();
    fixture.redact();
    write_fixture(path.as_ref(), &fixture)
}

/// Writes a fixture as it is, secrets included: only for fixtures recorded with throwaway test credentials
/// ([`Recorder::with_test_credentials`]), whose exact signatures the replays check.
pub fn save_fixture_with_test_credentials(
    path: impl AsRef<Path>,
    fixture: &Fixture,
) -> std::io::Result<()> {
    write_fixture(path.as_ref(), fixture)
}

fn write_fixture(path: &Path, fixture: &Fixture) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&fixture).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text + "\n")?;
    std::fs::rename(tmp, path)
}

/// The client configuration a fixture was recorded with.
pub fn config_for(fixture: &Fixture) -> Config {
    let creds = Credentials::new(fixture.secret_id.clone(), fixture.secret_key.clone());
    let mut config = Config::new(&fixture.bucket, &fixture.region, creds)
        .expect("fixture bucket, region, credentials");
    if let Some(e) = &fixture.endpoint {
        config = config
            .with_endpoint(Endpoint::custom(e).expect("fixture endpoint"))
            .expect("fixture endpoint");
    }
    config
}

/// The virtual `Now` a fixture was recorded at.
pub fn clock_for(fixture: &Fixture) -> Now {
    Now {
        instant: Instant::now(),
        system: UNIX_EPOCH + Duration::from_secs(fixture.clock_unix),
    }
}

/// Why a replay (or a recording) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// The task sent a request the fixture does not have.
    Mismatch(Mismatch),
    /// The task waited forever with nothing in flight.
    Stalled,
    /// The task ran longer than the iteration cap.
    TooManySteps,
    /// While recording, the network failed (a fixture holds answers, not transport failures).
    Transport(cos_core::error::TransportError),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Mismatch(m) => write!(f, "{m}"),
            ReplayError::Stalled => {
                f.write_str("the task waits with nothing in flight and no timer")
            }
            ReplayError::TooManySteps => f.write_str("the task did not finish within the step cap"),
            ReplayError::Transport(e) => write!(f, "transport failed while recording: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// The result of a replay.
#[derive(Debug)]
pub struct Replayed<T> {
    /// What the task returned (its own success or error).
    pub result: Result<T, cos_core::Error>,
    /// One line per request sent and per decision (`send PUT /a?partNumber=1`, `retry UploadPart part=2 +200ms`).
    pub transcript: Vec<String>,
    /// Virtual time that passed.
    pub elapsed: Duration,
    /// The player, to check that every exchange was used.
    pub player: Player,
}

/// Runs `task` against `fixture` with no network. `source` is the task's source for
/// [`RequestBody::Source`] bodies (file contents).
///
/// For a fixture that holds several operations in a row, use a [`Replay`] session instead.
pub fn run_task<T: Task>(
    fixture: Fixture,
    task: T,
    source: &[u8],
) -> Result<Replayed<T::Output>, ReplayError> {
    let mut replay = Replay::new(fixture);
    let result = replay.run(task, source)?;
    Ok(Replayed {
        result,
        elapsed: replay.elapsed(),
        transcript: replay.transcript,
        player: replay.player,
    })
}

/// A replay of one fixture by several tasks in a row, on one virtual clock and one transcript.
///
/// The clock starts at the fixture's `clock_unix` and only moves when a task waits (backoff), exactly as
/// it did in the [`Recording`] that made the fixture, so every request is signed byte-identically.
///
/// ```
/// use cos_core::ops::HeadObject;
/// use cos_core::task::OneShot;
/// use cos_testkit::replay::{load_fixture, Replay};
/// let f = load_fixture(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/head_object.json"))?;
/// let mut replay = Replay::new(f);
/// # let put = cos_core::ops::PutObject::new("fixtures/head/hello.txt").with_bytes("hello head")
/// #     .content_type("text/plain");
/// # replay.run(OneShot::new(put, replay.config()).unwrap(), &[]).unwrap().unwrap();
/// let found = replay.run(OneShot::new(HeadObject::new("fixtures/head/hello.txt"), replay.config())?, &[])?;
/// assert_eq!(found?.content_length, 10);
/// let missing = replay.run(OneShot::new(HeadObject::new("fixtures/head/missing.txt"), replay.config())?, &[])?;
/// assert_eq!(missing.unwrap_err().code(), Some("NoSuchKey"));
/// replay.assert_all_consumed();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Replay {
    player: Player,
    start: Now,
    now: Now,
    transcript: Vec<String>,
}

impl Replay {
    /// A session over `fixture`, its clock at the fixture's `clock_unix`.
    pub fn new(fixture: Fixture) -> Replay {
        let start = clock_for(&fixture);
        Replay {
            player: Player::new(fixture),
            start,
            now: start,
            transcript: Vec::new(),
        }
    }

    /// The configuration the fixture was recorded with ([`config_for`]).
    pub fn config(&self) -> Config {
        config_for(self.player.fixture())
    }

    /// Runs `task` to the end against the fixture's next exchanges. The outer `Result` is the replay's
    /// (a request the fixture does not expect), the inner one the task's own outcome.
    pub fn run<T: Task>(
        &mut self,
        task: T,
        source: &[u8],
    ) -> Result<Result<T::Output, cos_core::Error>, ReplayError> {
        let player = &mut self.player;
        drive(
            task,
            source,
            &mut self.now,
            &mut self.transcript,
            &mut |request, body| {
                let rec = RecordedRequest::of(request, body);
                player.answer(&rec).map_err(ReplayError::Mismatch)
            },
        )
    }

    /// What was sent and decided so far, one line each.
    pub fn transcript(&self) -> &[String] {
        &self.transcript
    }

    /// Virtual time that passed.
    pub fn elapsed(&self) -> Duration {
        self.now.instant - self.start.instant
    }

    /// The player (to list unused exchanges).
    pub fn player(&self) -> &Player {
        &self.player
    }

    /// Panics unless every exchange of the fixture was used.
    pub fn assert_all_consumed(&self) {
        self.player.assert_all_consumed();
    }
}

/// Records a fixture by running tasks against a real transport (the local server or COS) on a virtual
/// clock, so that the fixture replays byte for byte with [`Replay`].
///
/// The clock starts at `clock_unix` (use the current time: servers check signatures against their own
/// clock) and moves only when a task waits, by exactly the time it asked for; backoffs are not slept.
/// `send` performs one exchange: the request exactly as given, with these body bytes.
pub struct Recording<S> {
    recorder: Recorder,
    send: S,
    now: Now,
    transcript: Vec<String>,
}

impl<S> std::fmt::Debug for Recording<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("now", &self.now)
            .field("transcript", &self.transcript)
            .finish_non_exhaustive()
    }
}

impl<S> Recording<S>
where
    S: FnMut(
        &http::Request<RequestBody>,
        Bytes,
    ) -> Result<http::Response<Bytes>, cos_core::error::TransportError>,
{
    /// A recording for `config` whose clock starts at `clock_unix`; `docs` says what the scenario shows.
    /// Secrets are redacted as recorded ([`Recorder::new`]).
    pub fn new(docs: &str, config: &Config, clock_unix: u64, send: S) -> Recording<S> {
        Self::with_recorder(Recorder::new(docs, config, clock_unix), clock_unix, send)
    }

    /// Like [`Recording::new`], keeping the key and exact signatures
    /// ([`Recorder::with_test_credentials`]): only for throwaway test credentials.
    pub fn with_test_credentials(
        docs: &str,
        config: &Config,
        clock_unix: u64,
        send: S,
    ) -> Recording<S> {
        let recorder = Recorder::with_test_credentials(docs, config, clock_unix);
        Self::with_recorder(recorder, clock_unix, send)
    }

    fn with_recorder(recorder: Recorder, clock_unix: u64, send: S) -> Recording<S> {
        Recording {
            recorder,
            send,
            now: Now {
                instant: Instant::now(),
                system: UNIX_EPOCH + Duration::from_secs(clock_unix),
            },
            transcript: Vec::new(),
        }
    }

    /// Runs `task` to the end, sending each request and recording each exchange. The outer `Result`
    /// fails only on a transport failure.
    pub fn run<T: Task>(
        &mut self,
        task: T,
        source: &[u8],
    ) -> Result<Result<T::Output, cos_core::Error>, ReplayError> {
        let (recorder, send) = (&self.recorder, &mut self.send);
        drive(
            task,
            source,
            &mut self.now,
            &mut self.transcript,
            &mut |request, body| {
                let response = send(request, body.clone()).map_err(ReplayError::Transport)?;
                recorder.push(RecordedRequest::of(request, body), &response);
                Ok(response)
            },
        )
    }

    /// What was sent and decided so far, one line each (the same lines a [`Replay`] of the fixture makes).
    pub fn transcript(&self) -> &[String] {
        &self.transcript
    }

    /// The fixture recorded so far.
    pub fn fixture(&self) -> Fixture {
        self.recorder.fixture()
    }
}

type Answer<'a> = dyn FnMut(&http::Request<RequestBody>, &Bytes) -> Result<http::Response<Bytes>, ReplayError>
    + 'a;

/// The one loop of replays and recordings: requests are answered one at a time, in the order emitted; the
/// virtual clock jumps to each timer when nothing is in flight.
fn drive<T: Task>(
    mut task: T,
    source: &[u8],
    now: &mut Now,
    transcript: &mut Vec<String>,
    answer: &mut Answer<'_>,
) -> Result<Result<T::Output, cos_core::Error>, ReplayError> {
    let mut pending: std::collections::VecDeque<cos_core::task::Transmit> = Default::default();
    for _ in 0..1_000_000 {
        match task.poll_output(*now) {
            Output::Transmit(t) => {
                transcript.push(format!(
                    "send {} {}",
                    t.request.method(),
                    path_and_query(&t.request)
                ));
                pending.push_back(t);
            }
            Output::Io(io) => {
                use cos_core::task::{IoRequest, IoResult};
                let result = match io.request {
                    IoRequest::Digest { offset, len } => source
                        .get(offset as usize..offset.saturating_add(len) as usize)
                        .map_or(IoResult::Failed("out of the source".into()), |b| {
                            IoResult::Digest(cos_core::checksum::BodyDigest::of_with_md5(b, true))
                        }),
                    IoRequest::StoreCheckpoint(_) | IoRequest::RemoveCheckpoint => IoResult::Done,
                    IoRequest::LoadCheckpoint => IoResult::Data(None),
                    other => IoResult::Failed(format!("not replayed: {other:?}")),
                };
                task.handle_input(*now, Input::Io { id: io.id, result });
            }
            Output::Event(e) => {
                if let Some(line) = describe(&e) {
                    transcript.push(line);
                }
            }
            Output::Wait { until } => {
                if let Some(t) = pending.pop_front() {
                    let (bytes, sent) = body_bytes(&t.request, source);
                    let response = answer(&t.request, &bytes)?;
                    transcript.push(format!("  ← {}", response.status().as_u16()));
                    task.handle_input(
                        *now,
                        Input::Response {
                            id: t.id,
                            response,
                            sent,
                        },
                    );
                } else if let Some(until) = until {
                    if until > now.instant {
                        *now = now.advance(until - now.instant);
                    }
                } else {
                    return Err(ReplayError::Stalled);
                }
            }
            Output::Done(result) => return Ok(result),
        }
    }
    Err(ReplayError::TooManySteps)
}

fn path_and_query<B>(r: &http::Request<B>) -> String {
    r.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

fn describe(e: &Event) -> Option<String> {
    match e {
        Event::RetryScheduled {
            operation,
            part,
            attempt,
            delay,
            ..
        } => Some(format!(
            "retry {operation}{} attempt {attempt} +{}ms",
            part.map(|p| format!(" part={p}")).unwrap_or_default(),
            delay.as_millis()
        )),
        Event::ClockSkewAdjusted { offset_secs } => Some(format!("clock skew {offset_secs:+}s")),
        Event::Initiated { upload_id } => Some(format!("initiated {upload_id}")),
        Event::PartCompleted { part, .. } => Some(format!("part {part} done")),
        Event::Paused => Some("paused".into()),
        _ => None,
    }
}

/// The bytes of a request body and, for a source range, its digest as a driver would report it.
fn body_bytes(
    request: &http::Request<RequestBody>,
    source: &[u8],
) -> (Bytes, Option<cos_core::checksum::SentDigest>) {
    match request.body() {
        RequestBody::Empty => (Bytes::new(), None),
        RequestBody::Bytes(b) => (b.clone(), None),
        RequestBody::Source { offset, len, md5 } => {
            let start = (*offset as usize).min(source.len());
            let end = (start + *len as usize).min(source.len());
            let b = Bytes::copy_from_slice(&source[start..end]);
            let d = BodyDigest::of_with_md5(&b, *md5);
            (b, Some(d))
        }
    }
}

/// An [`ExchangeResponder`] that answers a client's requests from a fixture (plug it into a client's
/// transport hook to replay with no network).
#[derive(Debug)]
pub struct Responder(Mutex<Player>);

impl Responder {
    /// A responder over a fixture.
    pub fn new(fixture: Fixture) -> Responder {
        Responder(Mutex::new(Player::new(fixture)))
    }

    /// Panics unless every exchange was used.
    pub fn assert_all_consumed(&self) {
        self.0.lock().unwrap().assert_all_consumed();
    }
}

impl ExchangeResponder for Responder {
    fn respond(
        &self,
        request: &http::Request<RequestBody>,
        body: &[u8],
    ) -> Result<http::Response<Bytes>, cos_core::error::TransportError> {
        let rec = RecordedRequest::of(request, body);
        self.0.lock().unwrap().answer(&rec).map_err(|m| {
            cos_core::error::TransportError::new(
                cos_core::error::TransportErrorKind::ReplayMismatch,
                format!("replay: {m}"),
            )
        })
    }
}

/// An [`ExchangeRecorder`] that collects a client's exchanges into a fixture.
///
/// Secrets are redacted as they arrive: the fixture holds the SecretId but never the SecretKey, and each
/// request's `q-signature` and security token read `<redacted>` (a replay checks the signed header and
/// parameter lists instead).
#[derive(Debug)]
pub struct Recorder {
    fixture: Mutex<Fixture>,
    keep_secrets: bool,
}

impl Recorder {
    /// Starts a fixture for `config` signed at `clock_unix`; `docs` says what the scenario shows.
    pub fn new(docs: &str, config: &Config, clock_unix: u64) -> Recorder {
        let endpoint = match &config.endpoint {
            Endpoint::Custom { scheme, authority } => Some(format!("{scheme}://{authority}")),
            _ => None,
        };
        Recorder {
            fixture: Mutex::new(Fixture {
                version: FIXTURE_VERSION,
                docs: docs.to_string(),
                clock_unix,
                secret_id: config.credentials.secret_id().to_string(),
                secret_key: cos_core::fixture::REDACTED.to_string(),
                bucket: config.bucket.to_string(),
                region: config.region.as_str().to_string(),
                endpoint,
                match_mode: Default::default(),
                exchanges: Vec::new(),
            }),
            keep_secrets: false,
        }
    }

    /// Like [`Recorder::new`] but keeps the SecretKey, signatures and tokens, so that a replay checks the
    /// signatures exactly. Only for throwaway test credentials against a local server (the committed
    /// fixtures use the testkit's published `DEFAULT_SECRET_KEY`); never for real ones.
    pub fn with_test_credentials(docs: &str, config: &Config, clock_unix: u64) -> Recorder {
        let r = Recorder::new(docs, config, clock_unix);
        r.fixture.lock().unwrap().secret_key = config.credentials.secret_key().to_string();
        Recorder {
            keep_secrets: true,
            ..r
        }
    }

    /// The recorded fixture so far.
    pub fn fixture(&self) -> Fixture {
        self.fixture.lock().unwrap().clone()
    }

    /// Records one exchange directly (for harnesses that drive a task themselves).
    pub fn push(&self, mut request: RecordedRequest, response: &http::Response<Bytes>) {
        let mut response = RecordedResponse::of(response);
        if !self.keep_secrets {
            request.redact();
            response.redact();
        }
        self.fixture.lock().unwrap().exchanges.push(Exchange {
            request,
            response,
            times: 1,
        });
    }
}

impl ExchangeRecorder for Recorder {
    fn record(
        &self,
        request: &http::Request<RequestBody>,
        body: BodyRecord,
        response: &http::Response<Bytes>,
    ) {
        let mut rec = RecordedRequest::of(request, &[]);
        rec.body = body;
        self.push(rec, response);
    }
}

/// Unix seconds of a `SystemTime` (helper for fixed-clock recordings).
pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Deterministic bytes for recorded scenarios and their replays: byte `i` is `(31 i + i / 4096) mod 251`.
/// Large bodies are recorded as a digest, so a replay regenerates them with this function.
pub fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + i / 4096) % 251) as u8)
        .collect()
}

/// Complete Multipart Upload with the parts listed exactly in the given order, duplicates included.
///
/// `cos_core::ops::CompleteMultipartUpload` sorts its parts and refuses duplicates before sending, so it
/// cannot provoke COS's `InvalidPartOrder`; this operation can (the recorded fixtures and their replays use
/// it). The answer is parsed as Complete's.
///
/// ```
/// use cos_core::ops::{CompletedPart, Operation};
/// use cos_testkit::replay::CompleteInOrder;
/// let p = |n| CompletedPart { part_number: n, etag: "\"e\"".into() };
/// let op = CompleteInOrder::new("k", "id", vec![p(2), p(1)]);
/// let config = cos_core::Config::new("examplebucket-1250000000", "ap-guangzhou",
///     cos_core::Credentials::new("AKID", "KEY"))?;
/// let req = op.to_request(&config)?;
/// let cos_core::task::RequestBody::Bytes(body) = req.body() else { panic!() };
/// assert!(std::str::from_utf8(body)?.starts_with("<CompleteMultipartUpload><Part><PartNumber>2<"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct CompleteInOrder {
    inner: cos_core::ops::CompleteMultipartUpload,
    parts: Vec<cos_core::ops::CompletedPart>,
}

impl CompleteInOrder {
    /// Completes `upload_id` of `key` listing `parts` in this order.
    pub fn new(
        key: impl Into<String>,
        upload_id: impl Into<String>,
        parts: Vec<cos_core::ops::CompletedPart>,
    ) -> CompleteInOrder {
        let one = parts.first().cloned().into_iter().collect();
        CompleteInOrder {
            inner: cos_core::ops::CompleteMultipartUpload::new(key, upload_id, one),
            parts,
        }
    }

    fn body_xml(&self) -> String {
        let mut s = String::from("<CompleteMultipartUpload>");
        for p in &self.parts {
            let bare = p.etag.trim().trim_matches('"');
            s.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>&quot;{}&quot;</ETag></Part>",
                p.part_number,
                bare.replace('&', "&amp;").replace('<', "&lt;")
            ));
        }
        s + "</CompleteMultipartUpload>"
    }
}

impl cos_core::ops::Operation for CompleteInOrder {
    type Output = cos_core::ops::CompleteMultipartUploadOutput;
    const NAME: &'static str = "CompleteMultipartUpload";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, cos_core::Error> {
        let mut req = self.inner.to_request(config)?;
        let body = Bytes::from(self.body_xml());
        req.headers_mut()
            .insert(http::header::CONTENT_LENGTH, body.len().into());
        *req.body_mut() = RequestBody::Bytes(body);
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        sent: Option<&cos_core::checksum::SentDigest>,
    ) -> Result<Self::Output, cos_core::Error> {
        self.inner.parse_response(response, sent)
    }
}
