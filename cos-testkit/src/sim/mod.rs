//! A deterministic simulator of whole transfers: the core's transfer task runs against the server's own request
//! handling ([`MemoryServer`]) in memory, with no sockets, in virtual time, every choice drawn from one seed.
//!
//! A seed picks a scenario: the file (2 to 4 parts of 1 MiB), the parts in flight, whether the driver keeps a
//! checkpoint or resumes by searching unfinished uploads, and rates of faults. Each request then meets a fate:
//! a fault *before* the server applied it (500, 503 `SlowDown`, a reset), or the server applies it and the
//! answer arrives, arrives late (a stall), is lost (applied, answer dropped) or is replaced by a 5xx (*after*).
//! Between outputs of the task the simulator may `kill -9` the process (its requests still in the network may
//! still be applied later, their answers go nowhere) and start it again from the last stored checkpoint bytes
//! (or, without one, by searching unfinished uploads), pause it (then resume in the same run, or end the run as
//! a driver does and start again from the checkpoint), cancel it, and change the source file between runs. The
//! last run has no faults, so an upload that failed must then resume and finish.
//!
//! Invariants checked during and after every seed:
//! - the stored object is byte-identical to the source (as it is at the end), or the user cancelled;
//! - Complete is never sent while parts of this run are in flight;
//! - a part is re-sent only after its previous attempt failed or was lost (never while in flight, never after
//!   it succeeded), and a resumed run never re-sends a part that both its checkpoint and the server hold;
//! - no request is sent while paused (except the abort of a cancel);
//! - no upload the client knew of (stored in a checkpoint, or used, not just listed, by a run that was not
//!   killed) is left unfinished after success or cancel;
//! - progress never goes backwards within a run (unless the upload started over) and ends at the total;
//! - a run never waits with nothing in flight and no timer; failures are only the faults' errors.
//!
//! [`run`] plays one seed; [`replay_command`] is the one-line command that replays it. [`run_stream`] plays
//! a seed with the source uploaded as a stream of unknown length instead, with two more invariants: a stream
//! holds at most `concurrency + 1` parts read and not uploaded, and a failed stream aborts what it started
//! and never reports a failure for a Complete that went through without asking the object (HEAD).

pub mod download;
pub mod driver;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::Bytes;
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::task::{Now, RequestId};
use cos_core::upload::Checkpoint;
use cos_core::{Config, Error};

use crate::{MemoryServer, Server};
use driver::{Out, Source, Start, Upload};

const MIB: u64 = 1 << 20;
const KEY: &str = "sim/object.bin";

/// The one-line command that replays `seed` with a trace.
pub fn replay_command(seed: u64) -> String {
    format!("COS_SIM_SEED={seed} cargo test -p cos-testkit --test sim -- --nocapture")
}

/// What one seed did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Process runs (1 + restarts after kills, pauses and failures).
    pub runs: u32,
    /// Requests the task sent.
    pub requests: u64,
    /// Kills.
    pub kills: u32,
    /// Runs that failed and were resumed.
    pub failed_runs: u32,
    /// The user cancelled (else the object was uploaded).
    pub cancelled: bool,
}

/// An invariant that did not hold.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// Which check failed: `"progress-end"` (success without progress reaching the total), or `"invariant"`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
    /// The run's trace (only when tracing).
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {}\n  replay: {}",
            self.seed,
            self.message,
            replay_command(self.seed)
        )
    }
}

/// splitmix64.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// Shared source bytes (generated once), cut differently for each seed.
fn base_bytes() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut r = Rng(0xc05_51a1);
        let mut v = Vec::with_capacity((6 * MIB) as usize);
        while v.len() < (6 * MIB) as usize {
            v.extend_from_slice(&r.next().to_le_bytes());
        }
        v
    })
}

/// 1 to 4 parts, mostly 2 or 3 (hashing megabytes is what a seed costs), with a tail from a fixed set so that
/// the digests of the unchanged source are shared by all seeds.
fn pick_size(r: &mut Rng) -> u64 {
    const TAILS: [u64; 8] = [0, 1, 17, 4096, 65_536, 333_333, MIB - 1, 100];
    let full = match r.below(20) {
        0..=9 => 1,
        10..=16 => 2,
        _ => 3,
    };
    let tail = TAILS[r.below(TAILS.len() as u64) as usize];
    (full * MIB + tail).max(1)
}

/// Digests of ranges of the unchanged source, shared by all seeds.
fn shared_digest(offset: u64, len: u64) -> SentDigest {
    static CACHE: OnceLock<Mutex<HashMap<(u64, u64), SentDigest>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(d) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&(offset, len))
    {
        return *d;
    }
    let d = BodyDigest::of(&base_bytes()[offset as usize..(offset + len) as usize]);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((offset, len), d);
    d
}

#[derive(Clone, Debug)]
struct Scenario {
    size: u64,
    max_in_flight: usize,
    /// Checkpoints are kept; without them a run resumes by searching unfinished uploads.
    checkpoints: bool,
    pre_fault: f64,
    post_fault: f64,
    lost: f64,
    stall: f64,
    kill: f64,
    max_kills: u32,
    pause: f64,
    cancel: f64,
    change: f64,
    max_runs: u32,
    /// The source is uploaded as a stream of unknown length ([`run_stream`]).
    stream: bool,
}

impl Scenario {
    fn pick(r: &mut Rng) -> Scenario {
        let faulty = r.chance(0.8);
        let rate = |r: &mut Rng, max: u64| {
            if faulty {
                r.below(max + 1) as f64 / 100.0
            } else {
                0.0
            }
        };
        Scenario {
            size: pick_size(r),
            max_in_flight: 1 + r.below(4) as usize,
            checkpoints: r.chance(0.7),
            pre_fault: rate(r, 15),
            post_fault: rate(r, 8),
            lost: rate(r, 10),
            stall: rate(r, 20),
            kill: if r.chance(0.6) {
                0.01 + rate(r, 4)
            } else {
                0.0
            },
            max_kills: 1 + r.below(3) as u32,
            pause: if r.chance(0.3) { 0.03 } else { 0.0 },
            cancel: if r.chance(0.1) { 0.01 } else { 0.0 },
            change: if r.chance(0.15) { 0.5 } else { 0.0 },
            max_runs: 8,
            stream: false,
        }
    }
}

/// What happens to one request in the network.
#[derive(Clone, Debug)]
enum Fate {
    /// Refused before the server applied it, with this status and code (`None`: a reset).
    Before(Option<(u16, &'static str)>),
    /// Applied; the answer arrives.
    Answer,
    /// Applied; the answer is lost (the client sees a timeout).
    Lost,
    /// The client times out first; the server applies it later anyway.
    Late,
    /// Applied; the client gets this status instead of the answer.
    After(u16, &'static str),
}

#[derive(Debug)]
struct Flight {
    run: u32,
    id: RequestId,
    op: &'static str,
    part: Option<(String, u32)>,
    request: Option<http::Request<Bytes>>,
    sent: Option<SentDigest>,
    fate: Fate,
    /// When the server applies it (`None`: never, or done).
    apply_at: Option<Instant>,
    /// When the answer reaches the client (`None`: an orphan of a killed run).
    answer_at: Option<Instant>,
    delay_after_apply: Duration,
    response: Option<http::Response<Bytes>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartSend {
    InFlight,
    Ok,
    Failed,
}

enum RunEnd {
    Done(Result<cos_core::upload::UploadOutcome, Error>),
    Killed,
    PausedStop,
}

struct Sim {
    seed: u64,
    rng: Rng,
    sc: Scenario,
    server: MemoryServer,
    config: Config,
    now: Now,
    source: Vec<u8>,
    mtime: u64,
    digests: BTreeMap<(u64, u64), SentDigest>,
    stored: Option<Vec<u8>>,
    flights: BTreeMap<u64, Flight>,
    next_flight: u64,
    /// Upload ids stored in a checkpoint.
    owned: BTreeSet<String>,
    /// Upload ids used (a request other than List Parts) by runs that ended without a kill (in find-unfinished
    /// mode the driver keeps no memory of them between runs).
    used_by_runs: BTreeSet<String>,
    /// Upload ids used by the last run.
    used_last: BTreeSet<String>,
    /// An earlier run's Abort reached the server during the current run.
    orphan_abort: bool,
    /// A Complete of the current run was applied (200) by the server.
    completed_this_run: bool,
    /// The run whose Complete the server applied last.
    last_complete_run: Option<u32>,
    /// The current run.
    current_run: u32,
    /// Parts the server holds, by (upload id, number): ETag. Forgotten when the upload ends.
    server_parts: BTreeMap<(String, u32), String>,
    summary: Summary,
    /// The source differs from the shared base bytes.
    changed: bool,
    trace: Option<Vec<String>>,
    kills_left: u32,
    /// Faults met by the current run.
    run_faults: u32,
    /// The current run meets no faults (the last one).
    clean_run: bool,
}

fn error_response(status: u16, code: &str) -> http::Response<Bytes> {
    let body = format!(
        "<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>{code}</Code><Message>simulated</Message>\
         <RequestId>sim</RequestId></Error>"
    );
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Bytes::from(body))
        .expect("a valid response")
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    let q = uri.query()?;
    cos_core::auth::parse_query(q)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl Sim {
    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(line());
        }
    }

    fn fail(&mut self, message: impl Into<String>) -> Failure {
        self.fail_as("invariant", message)
    }

    fn fail_as(&mut self, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            seed: self.seed,
            kind,
            message: message.into(),
            trace: self.trace.take().unwrap_or_default(),
        }
    }

    fn source(&self) -> Source<'_> {
        Source {
            bytes: &self.source,
            mtime_nanos: self.mtime,
        }
    }

    /// Sends a request into the network with a fate drawn for it (`clean`: no faults).
    fn send(
        &mut self,
        run: u32,
        id: RequestId,
        op: &'static str,
        part: Option<(String, u32)>,
        request: http::Request<Bytes>,
        sent: Option<SentDigest>,
    ) {
        let clean = self.clean_run;
        let sc = self.sc.clone();
        let r = &mut self.rng;
        let x = if clean {
            1.0
        } else {
            (r.next() >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut fate = Fate::Answer;
        let mut acc = sc.pre_fault;
        if x < acc {
            fate = Fate::Before(match r.below(3) {
                0 => Some((503, "SlowDown")),
                1 => Some((500, "InternalError")),
                _ => None,
            });
        } else {
            acc += sc.lost;
            if x < acc {
                fate = if r.chance(0.5) {
                    Fate::Lost
                } else {
                    Fate::Late
                };
            } else {
                acc += sc.post_fault;
                if x < acc {
                    fate = if r.chance(0.5) {
                        Fate::After(503, "ServiceUnavailable")
                    } else {
                        Fate::After(500, "InternalError")
                    };
                }
            }
        }
        let stall = !clean && r.chance(sc.stall);
        if stall || !matches!(fate, Fate::Answer) {
            self.run_faults += 1;
        }
        let mut to_apply = r.ms(1, 40);
        let mut after = r.ms(1, 40);
        if stall {
            // A slow answer: the server applies it late or answers late.
            if r.chance(0.5) {
                to_apply += r.ms(300, 5000);
            } else {
                after += r.ms(300, 5000);
            }
        }
        if matches!(fate, Fate::Lost | Fate::Late) {
            after += r.ms(1000, 30_000); // the client's read timeout
        }
        let now = self.now.instant;
        let (apply_at, answer_at) = match fate {
            Fate::Before(_) => (None, now + to_apply),
            Fate::Late => (Some(now + after + to_apply), now + after),
            _ => (Some(now + to_apply), now + to_apply + after),
        };
        let n = self.next_flight;
        self.next_flight += 1;
        self.flights.insert(
            n,
            Flight {
                run,
                id,
                op,
                part,
                request: Some(request),
                sent,
                fate,
                apply_at,
                answer_at: Some(answer_at),
                delay_after_apply: after,
                response: None,
            },
        );
    }

    /// The earliest network event.
    fn next_network(&self) -> Option<(Instant, u64)> {
        self.flights
            .iter()
            .filter_map(|(n, f)| {
                let t = match (f.apply_at, f.answer_at) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b)?,
                };
                Some((t, *n))
            })
            .min()
    }

    /// Applies a request on the server.
    fn apply(&mut self, n: u64) {
        let now = self.now;
        let Some(f) = self.flights.get_mut(&n) else {
            return;
        };
        f.apply_at = None;
        let Some(req) = f.request.take() else { return };
        let upload_id = query_param(req.uri(), "uploadId");
        let resp = match self.server.handle(req, now.system) {
            Ok(r) => r,
            Err(_) => error_response(500, "InternalError"),
        };
        let (op, part, run) = (f.op, f.part.clone(), f.run);
        if f.answer_at.is_some() {
            f.answer_at = Some(now.instant + f.delay_after_apply);
        }
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim_matches('"').to_string());
        f.response = Some(resp);
        self.log(|| format!("  server applied {op} {part:?} (run {run}): {status}"));
        match (op, status) {
            ("UploadPart", 200) => {
                if let (Some(p), Some(e)) = (part, etag) {
                    self.server_parts.insert(p, e);
                }
            }
            ("CompleteMultipartUpload", 200) | ("AbortMultipartUpload", 204 | 200) => {
                if op == "AbortMultipartUpload" && run != self.current_run {
                    self.orphan_abort = true;
                }
                if op == "CompleteMultipartUpload" {
                    self.completed_this_run |= run == self.current_run;
                    self.last_complete_run = Some(run);
                }
                if let Some(u) = upload_id {
                    self.server_parts.retain(|(id, _), _| *id != u);
                }
            }
            _ => {}
        }
    }

    /// Moves the network to `until` (applying requests and delivering answers due), delivering answers of run
    /// `run` to `up`. Returns whether anything was delivered.
    fn advance(
        &mut self,
        until: Instant,
        run: u32,
        up: &mut Upload,
        inflight: &mut BTreeMap<RequestId, Option<(String, u32)>>,
        parts: &mut BTreeMap<(String, u32), PartSend>,
    ) -> bool {
        while let Some((t, n)) = self.next_network() {
            if t > until {
                break;
            }
            if t > self.now.instant {
                self.now = self.now.advance(t - self.now.instant);
            }
            let f = &self.flights[&n];
            if f.apply_at
                .is_some_and(|a| f.answer_at.is_none_or(|b| a <= b))
            {
                self.apply(n);
                continue;
            }
            let mut f = self.flights.remove(&n).expect("flight");
            if f.apply_at.is_some() {
                // The client gave up; the request still reaches the server later.
                let orphan = Flight {
                    run: f.run,
                    id: f.id,
                    op: f.op,
                    part: f.part.clone(),
                    request: f.request.take(),
                    sent: None,
                    fate: Fate::Late,
                    apply_at: f.apply_at,
                    answer_at: None,
                    delay_after_apply: f.delay_after_apply,
                    response: None,
                };
                self.flights.insert(n, orphan);
            }
            if f.run != run {
                continue;
            }
            let answer = match (&f.fate, f.response) {
                (Fate::Before(Some((s, c))), _) => Ok(error_response(*s, c)),
                (Fate::Before(None), _) => Err(TransportError::new(
                    TransportErrorKind::Reset,
                    "simulated reset",
                )),
                (Fate::Lost | Fate::Late, _) => Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    "simulated lost answer",
                )),
                (Fate::After(s, c), _) => Ok(error_response(*s, c)),
                (Fate::Answer, Some(r)) => Ok(r),
                (Fate::Answer, None) => Err(TransportError::new(
                    TransportErrorKind::Other,
                    "no response",
                )),
            };
            let ok = matches!(&answer, Ok(r) if r.status().is_success());
            self.log(|| {
                format!(
                    "  answer {} {:?} {:?}: {}",
                    f.op,
                    f.id,
                    f.part,
                    match &answer {
                        Ok(r) => r.status().to_string(),
                        Err(e) => e.to_string(),
                    }
                )
            });
            inflight.remove(&f.id);
            if let Some(p) = &f.part {
                parts.insert(p.clone(), if ok { PartSend::Ok } else { PartSend::Failed });
            }
            up.answer(self.now, f.id, answer, f.sent);
            return true;
        }
        if until > self.now.instant {
            self.now = self.now.advance(until - self.now.instant);
        }
        false
    }

    /// Lets every request still in the network reach the server (or not); answers go nowhere.
    fn drain(&mut self) {
        for f in self.flights.values_mut() {
            f.answer_at = None;
        }
        while let Some((t, n)) = self.next_network() {
            if t > self.now.instant {
                self.now = self.now.advance(t - self.now.instant);
            }
            self.apply(n);
        }
        self.flights.clear();
    }

    /// One run of the process: from start to done, kill or a pause that ends it.
    fn run_once(&mut self, run: u32, start: Start, last: bool) -> Result<RunEnd, Failure> {
        let claimed: BTreeMap<(String, u32), String> = match &start {
            Start::Checkpoint(b) => match serde_json::from_slice::<Checkpoint>(b) {
                Ok(cp) => cp
                    .parts
                    .iter()
                    .map(|p| {
                        (
                            (cp.upload_id.clone(), p.number),
                            p.etag.trim_matches('"').to_string(),
                        )
                    })
                    .collect(),
                Err(e) => return Err(self.fail(format!("stored checkpoint unreadable: {e}"))),
            },
            _ => BTreeMap::new(),
        };
        self.log(|| {
            format!(
                "run {run}: start {}",
                match &start {
                    Start::Fresh => "fresh",
                    Start::Checkpoint(_) => "from checkpoint",
                    Start::FindUnfinished => "by searching unfinished uploads",
                    Start::Stream => "a stream",
                }
            )
        });
        let mut up = match Upload::start(
            self.config.clone(),
            KEY,
            self.source(),
            MIB,
            self.sc.max_in_flight,
            start,
        ) {
            Ok(u) => u,
            Err(e) => return Err(self.fail(format!("run {run}: the task refused to start: {e}"))),
        };
        let total = self.source.len() as u64;
        self.run_faults = 0;
        self.clean_run = last;
        self.orphan_abort = false;
        self.completed_this_run = false;
        self.current_run = run;
        let mut inflight: BTreeMap<RequestId, Option<(String, u32)>> = BTreeMap::new();
        let mut parts: BTreeMap<(String, u32), PartSend> = BTreeMap::new();
        let mut used: BTreeSet<String> = BTreeSet::new();
        // Uploads this run sent an Abort for.
        let mut aborted: BTreeSet<String> = BTreeSet::new();
        let mut heads = 0u32;
        let mut last_progress: Option<u64> = None;
        let mut restarted = false;
        let mut paused = false;
        let mut cancelled = false;
        let mut resume_at: Option<Instant> = None;
        let mut steps = 0u32;
        let mut completes = 0u32;
        loop {
            steps += 1;
            if steps > 50_000 {
                return Err(self.fail(format!("run {run}: no end after 50,000 steps (livelock)")));
            }
            // A kill -9 may come between any two outputs.
            if !last && self.kills_left > 0 && self.rng.chance(self.sc.kill) {
                self.kills_left -= 1;
                self.summary.kills += 1;
                self.log(|| format!("run {run}: kill -9 ({} requests in flight)", inflight.len()));
                // Requests not yet applied may or may not reach the server.
                let mut drop = Vec::new();
                for (n, f) in self.flights.iter_mut() {
                    f.answer_at = None;
                    if f.apply_at.is_some() && (self.rng.next() & 1) == 0 {
                        drop.push(*n);
                    }
                }
                for n in drop {
                    self.flights.remove(&n);
                }
                return Ok(RunEnd::Killed);
            }
            if !last && !cancelled {
                if !paused && self.rng.chance(self.sc.pause) {
                    self.log(|| format!("run {run}: pause"));
                    paused = true;
                    up.pause(self.now);
                } else if self.rng.chance(self.sc.cancel) {
                    self.log(|| format!("run {run}: cancel"));
                    cancelled = true;
                    up.cancel(self.now);
                }
            }
            let mut digests = std::mem::take(&mut self.digests);
            let src = std::mem::take(&mut self.source);
            let out = {
                let source = Source {
                    bytes: &src,
                    mtime_nanos: self.mtime,
                };
                let changed = self.changed;
                let mut f = |o: u64, l: u64| {
                    if !changed {
                        return Some(shared_digest(o, l));
                    }
                    Some(
                        *digests
                            .entry((o, l))
                            .or_insert_with(|| BodyDigest::of(&src[o as usize..(o + l) as usize])),
                    )
                };
                up.poll(self.now, source, &mut f)
            };
            self.source = src;
            self.digests = digests;
            // A stream holds at most `max_in_flight + 1` parts that are read and not yet uploaded.
            if let Some(read) = up.stream_read() {
                let held = read.saturating_sub(last_progress.unwrap_or(0));
                let bound = (self.sc.max_in_flight as u64 + 1) * MIB;
                if held > bound {
                    return Err(self.fail(format!(
                        "run {run}: the stream holds {held} bytes read and not uploaded (at most {bound})"
                    )));
                }
            }
            match out {
                Out::Send {
                    id,
                    op,
                    request,
                    sent,
                } => {
                    self.summary.requests += 1;
                    let upload_id = query_param(request.uri(), "uploadId");
                    // Listing an upload's parts is looking, not using: a search inspects candidates and
                    // continues only one of them (the others may be someone else's).
                    if let Some(u) = upload_id.as_ref().filter(|_| op != "ListParts") {
                        used.insert(u.clone());
                        if op == "AbortMultipartUpload" {
                            aborted.insert(u.clone());
                        }
                    }
                    if op == "HeadObject" {
                        heads += 1;
                    }
                    let part = match (op, &upload_id) {
                        ("UploadPart", Some(u)) => query_param(request.uri(), "partNumber")
                            .and_then(|n| n.parse::<u32>().ok())
                            .map(|n| (u.clone(), n)),
                        _ => None,
                    };
                    self.log(|| format!("run {run}: send {op} {id:?} {part:?}"));
                    if paused && !cancelled && op != "AbortMultipartUpload" {
                        return Err(self.fail(format!("run {run}: {op} sent while paused")));
                    }
                    if op == "CompleteMultipartUpload" {
                        completes += 1;
                        let busy: Vec<u32> = inflight.values().flatten().map(|(_, n)| *n).collect();
                        if !busy.is_empty() {
                            return Err(self.fail(format!(
                                "run {run}: Complete sent while parts {busy:?} are in flight"
                            )));
                        }
                    }
                    if let Some(p) = &part {
                        match parts.get(p) {
                            Some(PartSend::InFlight) => {
                                return Err(self.fail(format!(
                                    "run {run}: part {} re-sent while its previous attempt is in flight",
                                    p.1
                                )))
                            }
                            Some(PartSend::Ok) => {
                                return Err(self.fail(format!(
                                    "run {run}: part {} re-sent after it succeeded",
                                    p.1
                                )))
                            }
                            Some(PartSend::Failed) => {}
                            None => {
                                if let Some(e) = claimed.get(p) {
                                    if self.server_parts.get(p) == Some(e) {
                                        return Err(self.fail(format!(
                                            "run {run}: part {} re-sent although the checkpoint and the \
                                             server both hold it",
                                            p.1
                                        )));
                                    }
                                }
                            }
                        }
                        parts.insert(p.clone(), PartSend::InFlight);
                    }
                    inflight.insert(id, part.clone());
                    self.send(run, id, op, part, request, sent);
                }
                Out::Progress { loaded, total: t } => {
                    if let Some(prev) = last_progress {
                        if loaded < prev && !restarted {
                            return Err(self.fail(format!(
                                "run {run}: progress went back from {prev} to {loaded}"
                            )));
                        }
                    }
                    let total_ok = t == Some(total) || (self.sc.stream && t.is_none());
                    if !total_ok || loaded > total {
                        return Err(self.fail(format!(
                            "run {run}: progress {loaded}/{t:?}, the total is {total}"
                        )));
                    }
                    last_progress = Some(loaded);
                }
                Out::StoreCheckpoint(bytes) => {
                    if self.sc.checkpoints {
                        if let Ok(cp) = serde_json::from_slice::<Checkpoint>(&bytes) {
                            self.owned.insert(cp.upload_id);
                        }
                        self.stored = Some(bytes);
                    }
                }
                Out::RemoveCheckpoint => {
                    if self.sc.checkpoints {
                        self.stored = None;
                    }
                }
                Out::Restarted => restarted = true,
                Out::Paused => {
                    if !paused {
                        return Err(self.fail(format!("run {run}: Paused without a pause")));
                    }
                    if !inflight.is_empty() {
                        return Err(self.fail(format!(
                            "run {run}: Paused with {} requests in flight",
                            inflight.len()
                        )));
                    }
                    // A stream cannot be read again: its run goes on after a pause.
                    if !self.sc.stream && self.rng.chance(0.5) {
                        self.log(|| format!("run {run}: paused, the run ends"));
                        self.used_by_runs.extend(used.iter().cloned());
                        self.used_last = used;
                        return Ok(RunEnd::PausedStop);
                    }
                    resume_at = Some(self.now.instant + self.rng.ms(10, 5000));
                }
                Out::Wait(until) => {
                    let net = self.next_network().map(|(t, _)| t);
                    let next = [until, net, resume_at].into_iter().flatten().min();
                    let Some(next) = next else {
                        return Err(self.fail(format!(
                            "run {run}: the task waits forever ({} requests in flight, none in the network)",
                            inflight.len()
                        )));
                    };
                    self.advance(next, run, &mut up, &mut inflight, &mut parts);
                    if resume_at.is_some_and(|t| t <= self.now.instant) {
                        resume_at = None;
                        paused = false;
                        self.log(|| format!("run {run}: resume"));
                        up.resume(self.now);
                    }
                }
                Out::Done(r) => {
                    self.log(|| format!("run {run}: done: {r:?}"));
                    if self.sc.stream && r.is_err() && self.completed_this_run && heads == 0 {
                        // A stream cannot be resumed to find out later: a Complete that went through must
                        // not be reported as a failure without asking the object.
                        return Err(self.fail(format!(
                            "run {run}: the stream's Complete went through, but the run failed without a \
                             HEAD to confirm it: {r:?}"
                        )));
                    }
                    if self.sc.stream && r.is_err() {
                        // A stream cannot be resumed: a failed or cancelled one aborts what it started (the
                        // Abort itself may fail under faults, so it is asked to be sent, not to succeed).
                        let unfinished: BTreeSet<String> = (self.server.multipart_uploads())
                            .into_iter()
                            .map(|(_, id)| id)
                            .collect();
                        let kept: Vec<&String> = (used.difference(&aborted))
                            .filter(|id| unfinished.contains(*id))
                            .collect();
                        if !kept.is_empty() {
                            return Err(self.fail(format!(
                                "run {run}: the stream failed without aborting its uploads {kept:?}"
                            )));
                        }
                    } else {
                        self.used_by_runs.extend(used.iter().cloned());
                    }
                    self.used_last = used;
                    if let Ok(o) = &r {
                        if last_progress != Some(total) {
                            return Err(self.fail_as("progress-end", format!(
                                "run {run}: succeeded but progress ended at {last_progress:?} of {total}"
                            )));
                        }
                        if o.total_len != total {
                            return Err(self.fail(format!(
                                "run {run}: outcome says {} bytes, the source has {total}",
                                o.total_len
                            )));
                        }
                    }
                    if let Err(e) = &r {
                        if !cancelled || !matches!(e, Error::Cancelled) {
                            // A retried Complete that meets NoSuchUpload and cannot confirm the object with
                            // HEAD (faults) ends with the Complete's error.
                            let expected = matches!(e, Error::Transport(_))
                                || e.status().is_some_and(|s| s >= 500)
                                || (e.code() == Some("NoSuchUpload")
                                    && completes > 1
                                    && self.run_faults > 0)
                                // The user's cancel of a killed run finished late (its Abort landed now).
                                || (e.code() == Some("NoSuchUpload")
                                    && completes == 0
                                    && self.orphan_abort);
                            if e.code() == Some("NoSuchUpload") && completes == 1 {
                                let there = self
                                    .server
                                    .object(KEY)
                                    .is_some_and(|o| o.data.as_deref() == Some(&self.source[..]));
                                return Err(self.fail_as(
                                    "complete-no-such-upload",
                                    format!(
                                        "run {run}: its first Complete met NoSuchUpload and the run failed \
                                         (object already stored and identical: {there}): {e}"
                                    ),
                                ));
                            }
                            if !expected {
                                return Err(self.fail(format!(
                                    "run {run}: failed with an error no fault explains: {e}"
                                )));
                            }
                        }
                    }
                    return Ok(RunEnd::Done(r));
                }
            }
        }
    }

    /// Changes the source between runs (new bytes, maybe a new length, a new mtime).
    fn change_source(&mut self) {
        let r = &mut self.rng;
        let len = self.source.len() as u64;
        let at = r.below(len) as usize;
        let n = (1 + r.below(4096)) as usize;
        let end = (at + n).min(self.source.len());
        for b in &mut self.source[at..end] {
            *b = b.wrapping_add(1);
        }
        if r.chance(0.3) {
            let new_len = pick_size(r);
            let base = base_bytes();
            self.source.resize(new_len as usize, 0);
            if new_len > len {
                self.source[len as usize..].copy_from_slice(&base[len as usize..new_len as usize]);
            }
        }
        self.mtime += 1_000_000_007;
        self.changed = true;
        self.digests.clear();
        let new_len = self.source.len();
        self.log(|| format!("source changed: {new_len} bytes"));
    }

    fn play(&mut self) -> Result<Summary, Failure> {
        let mut start = match (self.sc.stream, self.sc.checkpoints) {
            (true, _) => Start::Stream,
            (false, true) => Start::Fresh,
            (false, false) => Start::FindUnfinished,
        };
        let mut outcome = None;
        let mut success_run = None;
        for run in 0..self.sc.max_runs {
            let last = run + 1 == self.sc.max_runs;
            self.summary.runs += 1;
            if run > 0 && self.rng.chance(self.sc.change) {
                self.change_source();
            }
            match self.run_once(run, start, last)? {
                RunEnd::Done(r @ (Ok(_) | Err(Error::Cancelled))) => {
                    // The task itself removes its checkpoint after a success or a cancel.
                    if self.stored.is_some() {
                        let what = if r.is_ok() { "success" } else { "cancel" };
                        return Err(self.fail(format!("the checkpoint is left after {what}")));
                    }
                    match r {
                        Ok(o) => {
                            outcome = Some(o);
                            success_run = Some(run);
                        }
                        Err(_) => self.summary.cancelled = true,
                    }
                    break;
                }
                RunEnd::Done(Err(_)) => self.summary.failed_runs += 1,
                RunEnd::Killed | RunEnd::PausedStop => {}
            }
            start = match (&self.stored, self.sc.checkpoints) {
                _ if self.sc.stream => Start::Stream,
                (Some(b), _) => Start::Checkpoint(b.clone()),
                (None, true) => Start::Fresh,
                (None, false) => Start::FindUnfinished,
            };
        }
        self.drain();
        if !self.summary.cancelled {
            let Some(outcome) = outcome else {
                return Err(self.fail(format!(
                    "not uploaded after {} runs (the last one without faults)",
                    self.sc.max_runs
                )));
            };
            let Some(obj) = self.server.object(KEY) else {
                return Err(self.fail("success reported, but the server has no object"));
            };
            // Each stream run is a new upload: a killed run's Complete still in the network may land after
            // the last run's success and replace the object with its older bytes (the last writer wins).
            let replaced_late = self.sc.stream
                && self
                    .last_complete_run
                    .is_some_and(|r| Some(r) != success_run);
            if replaced_late {
                let r = self.last_complete_run;
                self.log(|| format!("the object was replaced by run {r:?}'s late Complete"));
            } else if obj.data.as_deref() != Some(&self.source[..]) {
                return Err(self.fail(format!(
                    "the stored object ({} bytes) differs from the source ({} bytes)",
                    obj.size,
                    self.source.len()
                )));
            }
            if !replaced_late && obj.etag.trim_matches('"') != outcome.etag.trim_matches('"') {
                return Err(self.fail(format!(
                    "outcome ETag {} but the object's is {}",
                    outcome.etag, obj.etag
                )));
            }
        }
        let what = if self.summary.cancelled {
            "cancel"
        } else {
            "success"
        };
        let unfinished: Vec<String> = self
            .server
            .multipart_uploads()
            .into_iter()
            .filter(|(k, _)| k == KEY)
            .map(|(_, id)| id)
            .collect();
        let left: Vec<&String> = unfinished
            .iter()
            .filter(|id| self.owned.contains(*id) || self.used_last.contains(*id))
            .collect();
        if !left.is_empty() {
            let message = format!("after {what}, unfinished uploads are left: {left:?}");
            return Err(self.fail(message));
        }
        let forgotten: Vec<&String> = unfinished
            .iter()
            .filter(|id| self.used_by_runs.contains(*id))
            .collect();
        if !forgotten.is_empty() {
            // Without checkpoints, a later run knows only what List Multipart Uploads shows it.
            let message = format!(
                "after {what}, uploads used by earlier runs are left unfinished: {forgotten:?} (the last \
                 run found another upload, or was cancelled before it found one)"
            );
            return Err(self.fail_as("find-leftover", message));
        }
        Ok(self.summary.clone())
    }
}

/// The in-memory server of seed `seed` and a client configuration for it, with its retry jitter seeded from
/// `rng`.
fn in_memory(seed: u64, rng: &mut Rng) -> Result<(MemoryServer, Config), Failure> {
    let fail = |m: String| Failure {
        seed,
        kind: "invariant",
        message: m,
        trace: Vec::new(),
    };
    let server = Server::builder()
        .in_memory(seed)
        .map_err(|e| fail(format!("server: {e}")))?;
    let mut config = Config::new(server.bucket(), "ap-guangzhou", server.credentials())
        .map_err(|e| fail(format!("config: {e}")))?;
    config.retry.seed = rng.next();
    Ok((server, config))
}

/// Plays one seed; `trace` keeps a log of every step (returned in a [`Failure`], printed by the caller).
pub fn run(seed: u64, trace: bool) -> Result<Summary, Failure> {
    play_seed(seed, trace, false)
}

/// Plays one seed of the stream simulation: the source is uploaded as a stream of unknown length
/// ([`UploadTask::stream`](cos_core::upload::UploadTask::stream)), with the same faults, kills, pauses,
/// cancels and source changes as [`run`] (a killed or failed stream starts again from its first byte). Besides
/// the invariants of the module docs: a stream holds at most `concurrency + 1` parts read and not uploaded,
/// and a failed or cancelled stream sends an Abort for every upload it started.
pub fn run_stream(seed: u64, trace: bool) -> Result<Summary, Failure> {
    play_seed(seed, trace, true)
}

fn play_seed(seed: u64, trace: bool, stream: bool) -> Result<Summary, Failure> {
    let mut rng = Rng(seed ^ 0x51d_c0de);
    let mut sc = Scenario::pick(&mut rng);
    if stream {
        sc.stream = true;
        sc.checkpoints = false;
    }
    let (server, config) = in_memory(seed, &mut rng)?;
    let system = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + rng.below(100_000_000));
    let source = base_bytes()[..sc.size as usize].to_vec();
    let kills_left = sc.max_kills;
    let mut sim = Sim {
        seed,
        rng,
        sc,
        server,
        config,
        now: Now {
            instant: Instant::now(),
            system,
        },
        source,
        mtime: 1_000,
        digests: BTreeMap::new(),
        stored: None,
        flights: BTreeMap::new(),
        next_flight: 0,
        owned: BTreeSet::new(),
        used_by_runs: BTreeSet::new(),
        used_last: BTreeSet::new(),
        orphan_abort: false,
        completed_this_run: false,
        last_complete_run: None,
        current_run: 0,
        server_parts: BTreeMap::new(),
        summary: Summary::default(),
        changed: false,
        trace: trace.then(Vec::new),
        kills_left,
        run_faults: 0,
        clean_run: false,
    };
    let sc = sim.sc.clone();
    sim.log(|| format!("seed {seed}: {sc:?}"));
    let r = sim.play();
    match r {
        Ok(s) => {
            if let Some(t) = &sim.trace {
                for l in t {
                    println!("{l}");
                }
            }
            Ok(s)
        }
        Err(f) => Err(f),
    }
}
