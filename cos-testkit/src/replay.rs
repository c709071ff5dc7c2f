//! Replay: drive a `cos-core` task, or a client, from a recorded fixture with no network.
//!
//! [`run_task`] runs any [`Task`] against a fixture on a virtual clock: it answers each request from the
//! fixture (in order, or by matching for concurrent parts), jumps the clock to every `Wait { until }`, and
//! keeps a transcript of what the task sent and decided. A request the fixture does not expect ends the run
//! with a [`ReplayError::Mismatch`] that lists what differs. [`Responder`] and [`Recorder`] plug the same
//! fixtures into the clients' transport hooks.

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

/// Writes a fixture file (pretty JSON), atomically.
pub fn save_fixture(path: impl AsRef<Path>, fixture: &Fixture) -> std::io::Result<()> {
    let path = path.as_ref();
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(fixture).map_err(std::io::Error::other)?;
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

/// Why a replay failed.
#[derive(Debug)]
pub enum ReplayError {
    /// The task sent a request the fixture does not have.
    Mismatch(Mismatch),
    /// The task waited forever with nothing in flight.
    Stalled,
    /// The task ran longer than the iteration cap.
    TooManySteps,
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::Mismatch(m) => write!(f, "{m}"),
            ReplayError::Stalled => {
                f.write_str("the task waits with nothing in flight and no timer")
            }
            ReplayError::TooManySteps => f.write_str("the task did not finish within the step cap"),
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
pub fn run_task<T: Task>(
    fixture: Fixture,
    mut task: T,
    source: &[u8],
) -> Result<Replayed<T::Output>, ReplayError> {
    let mut player = Player::new(fixture);
    let start = clock_for(player.fixture());
    let mut now = start;
    let mut pending: std::collections::VecDeque<cos_core::task::Transmit> = Default::default();
    let mut transcript = Vec::new();
    for _ in 0..1_000_000 {
        match task.poll_output(now) {
            Output::Transmit(t) => {
                transcript.push(format!(
                    "send {} {}",
                    t.request.method(),
                    path_and_query(&t.request)
                ));
                pending.push_back(t);
            }
            Output::Event(e) => {
                if let Some(line) = describe(&e) {
                    transcript.push(line);
                }
            }
            Output::Wait { until } => {
                if let Some(t) = pending.pop_front() {
                    let (bytes, sent) = body_bytes(&t.request, source);
                    let rec = RecordedRequest::of(&t.request, &bytes);
                    let response = player.answer(&rec).map_err(ReplayError::Mismatch)?;
                    transcript.push(format!("  ← {}", response.status().as_u16()));
                    task.handle_input(
                        now,
                        Input::Response {
                            id: t.id,
                            response,
                            sent,
                        },
                    );
                } else if let Some(until) = until {
                    if until > now.instant {
                        now = now.advance(until - now.instant);
                    }
                } else {
                    return Err(ReplayError::Stalled);
                }
            }
            Output::Done(result) => {
                return Ok(Replayed {
                    result,
                    transcript,
                    elapsed: now.instant - start.instant,
                    player,
                })
            }
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
        RequestBody::Source { offset, len } => {
            let start = (*offset as usize).min(source.len());
            let end = (start + *len as usize).min(source.len());
            let b = Bytes::copy_from_slice(&source[start..end]);
            let d = BodyDigest::of(&b);
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
                cos_core::error::TransportErrorKind::Other,
                format!("replay: {m}"),
            )
        })
    }
}

/// An [`ExchangeRecorder`] that collects a client's exchanges into a fixture.
#[derive(Debug)]
pub struct Recorder {
    fixture: Mutex<Fixture>,
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
                secret_key: config.credentials.secret_key().to_string(),
                bucket: config.bucket.to_string(),
                region: config.region.as_str().to_string(),
                endpoint,
                match_mode: Default::default(),
                exchanges: Vec::new(),
            }),
        }
    }

    /// The recorded fixture so far.
    pub fn fixture(&self) -> Fixture {
        self.fixture.lock().unwrap().clone()
    }

    /// Records one exchange directly (for harnesses that drive a task themselves).
    pub fn push(&self, request: RecordedRequest, response: &http::Response<Bytes>) {
        self.fixture.lock().unwrap().exchanges.push(Exchange {
            request,
            response: RecordedResponse::of(response),
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
