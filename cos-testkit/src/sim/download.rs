//! The download simulation: the core's [`DownloadTask`] against the server's own request handling
//! ([`MemoryServer`]) in memory, from a seed, with the local files (temporary file, checkpoint,
//! destination) held in memory as a driver would keep them on disk.
//!
//! A seed picks the object's size, the range size, the ranges in flight, the threshold and whether a
//! checkpoint is kept, then rates of faults: a GET refused before the server sees it (a reset, a 503
//! `SlowDown`), a body cut part-way, fetches answered in any order, `kill -9` between steps (the fetches in
//! flight may have written part of their bytes without reporting them), pause and resume, a cancel, the
//! object replaced between two GETs, and the temporary file damaged or truncated between runs. Runs go on
//! from the stored checkpoint bytes until one ends; the last runs have no faults, so the download must then
//! finish.
//!
//! Invariants checked during and after every seed:
//! - a finished download's file is byte-identical to the object version its run's HEAD saw;
//! - every checkpoint stored names only bytes the temporary file holds, with their CRC-64s;
//! - no GET asks for bytes the task already holds (from its checkpoint or a report of this run);
//! - nothing is fetched while paused; `Paused` comes only with nothing in flight;
//! - a failure that does not keep its partial file removes the file and the checkpoint (the destination is
//!   never touched before `Finish`); a cancel keeps nothing;
//! - progress never goes backwards within a run and a finished run's last progress is the total.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cos_core::checksum::Crc64;
use cos_core::download::{
    DownloadCheckpoint, DownloadOptions, DownloadStep, DownloadTask, Fetch, FetchReport,
};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::ops::{GetHead, GetObjectStream, HeadObject, Operation, PutObject};
use cos_core::task::RequestBody;
use cos_core::{Config, Error};

use super::{base_bytes, Failure, Rng, MIB};
use crate::MemoryServer;

const KEY: &str = "sim/download.bin";
/// Runs with faults at most, then clean ones.
const FAULTY_RUNS: u32 = 6;
const CLEAN_RUNS: u32 = 2;

/// What one download seed did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadSummary {
    /// Runs (1 + restarts after kills and failures).
    pub runs: u32,
    /// GETs sent to the server (faulted ones included).
    pub gets: u64,
    /// Kills.
    pub kills: u32,
    /// Bodies cut part-way.
    pub cuts: u64,
    /// Times the object was replaced during a run.
    pub changes: u32,
    /// The user cancelled (else the file was downloaded).
    pub cancelled: bool,
}

#[derive(Clone, Debug)]
struct Scenario {
    size: u64,
    options: DownloadOptions,
    refuse: f64,
    cut: f64,
    kill: f64,
    pause: f64,
    change: f64,
    damage: f64,
    cancel: bool,
}

impl Scenario {
    fn pick(r: &mut Rng) -> Scenario {
        let size = match r.below(6) {
            0 => r.below(3 * 1024),
            1 => MIB,
            _ => r.below(3 * MIB) + 1,
        };
        let range_size = [64 << 10, 256 << 10, 700_000, MIB][r.below(4) as usize];
        let threshold = [0, 128 << 10, MIB][r.below(3) as usize];
        let rate = |r: &mut Rng, max: u64| r.below(max + 1) as f64 / 100.0;
        Scenario {
            size,
            options: DownloadOptions::default()
                .threshold(threshold)
                .range_size(range_size)
                .concurrency(1 + r.below(4) as usize)
                .checkpoint(r.chance(0.7)),
            refuse: rate(r, 25),
            cut: rate(r, 25),
            kill: rate(r, 8),
            pause: rate(r, 5),
            change: rate(r, 2),
            damage: rate(r, 10),
            cancel: r.chance(0.05),
        }
    }
}

/// The local files, as a driver has them on disk.
#[derive(Default)]
struct Files {
    temp: Option<Vec<u8>>,
    checkpoint: Option<Vec<u8>>,
    dest: Option<Vec<u8>>,
}

enum RunEnd {
    Finished,
    Failed,
    Killed,
    Cancelled,
}

struct Sim {
    seed: u64,
    rng: Rng,
    sc: Scenario,
    server: MemoryServer,
    config: Config,
    now: SystemTime,
    files: Files,
    /// The object's current content on the server.
    object: Vec<u8>,
    /// Offsets of the temporary file damaged between runs (the final CRC-64 check must catch them).
    damaged: Vec<usize>,
    summary: DownloadSummary,
    trace: Option<Vec<String>>,
}

/// Plays one download seed; `trace` keeps a log of every step (returned in a [`Failure`]).
pub fn run(seed: u64, trace: bool) -> Result<DownloadSummary, Failure> {
    let mut rng = Rng(seed ^ 0xd0_3e10ad);
    let sc = Scenario::pick(&mut rng);
    let (server, config) = super::in_memory(seed, &mut rng)?;
    let mut sim = Sim {
        seed,
        rng,
        object: base_bytes()[..sc.size as usize].to_vec(),
        sc,
        server,
        config,
        now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        files: Files::default(),
        damaged: Vec::new(),
        summary: DownloadSummary::default(),
        trace: trace.then(Vec::new),
    };
    let sc = sim.sc.clone();
    sim.log(|| format!("download seed {seed}: {sc:?}"));
    let r = sim.play();
    if let (Ok(_), Some(t)) = (&r, &sim.trace) {
        for l in t {
            println!("{l}");
        }
    }
    r
}

impl Sim {
    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(line());
        }
    }

    fn violation(&mut self, message: String) -> Failure {
        Failure {
            seed: self.seed,
            kind: "invariant",
            message: format!("download: {message}"),
            trace: self.trace.take().unwrap_or_default(),
        }
    }

    fn put(&mut self, data: Vec<u8>) -> Result<(), Failure> {
        let request = PutObject::new(KEY)
            .with_bytes(Bytes::from(data.clone()))
            .to_request(&self.config)
            .and_then(|mut r| cos_core::auth::sign(&self.config, &mut r, self.now).map(|()| r));
        let request = request.map_err(|e| self.violation(format!("PUT: {e}")))?;
        let request = request.map(|b| match b {
            RequestBody::Bytes(b) => b,
            _ => Bytes::new(),
        });
        match self.server.handle(request, self.now) {
            Ok(r) if r.status() == 200 => {
                self.object = data;
                Ok(())
            }
            other => Err(self.violation(format!("PUT answered {other:?}"))),
        }
    }

    fn play(&mut self) -> Result<DownloadSummary, Failure> {
        self.put(self.object.clone())?;
        for run in 0..FAULTY_RUNS + CLEAN_RUNS {
            let clean = run >= FAULTY_RUNS;
            self.summary.runs += 1;
            if !clean && self.files.temp.is_some() && self.rng.chance(self.sc.damage) {
                self.damage_temp();
            }
            let head = HeadObject::new(KEY);
            let request = head
                .to_request(&self.config)
                .and_then(|mut r| cos_core::auth::sign(&self.config, &mut r, self.now).map(|()| r))
                .map_err(|e| self.violation(format!("HEAD: {e}")))?
                .map(|_| Bytes::new());
            let response = self
                .server
                .handle(request, self.now)
                .map_err(|e| self.violation(format!("HEAD: {e}")))?;
            let info = head
                .parse_response(&response, None)
                .map_err(|e| self.violation(format!("HEAD: {e}")))?;
            let pinned = self.object.clone();
            let task = DownloadTask::new(
                self.server.bucket(),
                KEY,
                &info,
                &self.sc.options,
                self.config.retry.clone(),
            )
            .map_err(|e| self.violation(format!("plan: {e}")))?;
            self.log(|| format!("run {run}: size {}", pinned.len()));
            match self.run_once(task, &pinned, clean)? {
                RunEnd::Finished => {
                    if self.files.dest.as_deref() != Some(&pinned[..]) {
                        return Err(self.violation(
                            "the finished file differs from the object its HEAD saw".into(),
                        ));
                    }
                    return Ok(self.summary.clone());
                }
                RunEnd::Cancelled => {
                    if self.files.temp.is_some() || self.files.checkpoint.is_some() {
                        return Err(self.violation("a cancel left a file behind".into()));
                    }
                    self.summary.cancelled = true;
                    return Ok(self.summary.clone());
                }
                RunEnd::Failed | RunEnd::Killed => {}
            }
            if self.files.dest.is_some() {
                return Err(self
                    .violation("the destination was written by a run that did not finish".into()));
            }
        }
        Err(self.violation(format!(
            "not finished after {} runs, the last {CLEAN_RUNS} without faults",
            FAULTY_RUNS + CLEAN_RUNS
        )))
    }

    /// Between runs: flips a byte of the temporary file, or cuts it short.
    fn damage_temp(&mut self) {
        let Some(temp) = self.files.temp.as_mut() else {
            return;
        };
        if temp.is_empty() || self.rng.chance(0.3) {
            let keep = self.rng.below(temp.len() as u64 + 1) as usize;
            temp.truncate(keep);
            self.log(|| format!("temporary file cut to {keep} bytes"));
        } else {
            let at = self.rng.below(temp.len() as u64) as usize;
            temp[at] ^= 0x5a;
            self.damaged.push(at);
            self.log(|| format!("temporary file byte {at} damaged"));
        }
    }

    fn run_once(
        &mut self,
        mut task: DownloadTask,
        pinned: &[u8],
        clean: bool,
    ) -> Result<RunEnd, Failure> {
        let mut in_flight: BTreeMap<usize, Fetch> = BTreeMap::new();
        // Bytes the task holds: its checkpoint's ranges when it continues the file, then what it was told.
        let mut held: Vec<(u64, u64)> = Vec::new();
        let mut progress = 0u64;
        let mut last_progress = None;
        let mut paused = false;
        let mut cancelled = false;
        let mut first_store = false;
        for _ in 0..100_000 {
            if !clean && !paused && !cancelled {
                if self.rng.chance(self.sc.kill / 4.0) {
                    self.kill(&in_flight, pinned);
                    return Ok(RunEnd::Killed);
                }
                if self.rng.chance(self.sc.change / 4.0) {
                    let mut changed = self.object.clone();
                    changed.push(0x42);
                    changed.rotate_left(1);
                    self.put(changed)?;
                    self.summary.changes += 1;
                    self.log(|| "the object was replaced".into());
                }
                if self.rng.chance(self.sc.pause / 4.0) {
                    task.pause();
                    paused = true;
                    self.log(|| "pause".into());
                }
                if self.sc.cancel && self.rng.chance(0.02) {
                    task.cancel();
                    cancelled = true;
                    self.log(|| "cancel".into());
                }
            }
            match task.next_step() {
                DownloadStep::LoadCheckpoint => {
                    let temp_len = self.files.temp.as_ref().map(|t| t.len() as u64);
                    task.loaded(self.files.checkpoint.as_deref(), temp_len);
                }
                DownloadStep::CheckKept { ranges } => {
                    let temp = self.files.temp.as_deref().unwrap_or_default();
                    let crcs: Vec<Option<u64>> = ranges
                        .iter()
                        .map(|&(o, l)| {
                            let (a, b) = (o as usize, (o + l) as usize);
                            (b <= temp.len()).then(|| Crc64::checksum(&temp[a..b]))
                        })
                        .collect();
                    task.kept(&crcs);
                }
                DownloadStep::PrepareTemp { create, size } => {
                    if create {
                        self.files.temp = Some(vec![0; size as usize]);
                        self.damaged.clear();
                    } else {
                        if self.files.temp.as_ref().map(|t| t.len() as u64) != Some(size) {
                            return Err(self
                                .violation("continues a temporary file of another length".into()));
                        }
                        let cp = self
                            .files
                            .checkpoint
                            .as_deref()
                            .and_then(|b| serde_json::from_slice::<DownloadCheckpoint>(b).ok());
                        if cp.is_none() {
                            return Err(self.violation(
                                "continues a temporary file without a readable checkpoint".into(),
                            ));
                        }
                        // What it keeps (after checking the file) is what it stores next.
                        first_store = true;
                    }
                    self.log(|| format!("temporary file: create {create}, {size} bytes"));
                }
                DownloadStep::StoreCheckpoint(bytes) => {
                    self.check_checkpoint(&bytes, pinned)?;
                    if std::mem::take(&mut first_store) {
                        let cp: Option<DownloadCheckpoint> = serde_json::from_slice(&bytes).ok();
                        held.extend(
                            cp.iter()
                                .flat_map(|c| c.done.iter().map(|d| (d.offset, d.len))),
                        );
                    }
                    self.files.checkpoint = Some(bytes);
                }
                DownloadStep::Progress { done, total } => {
                    if done < progress || done > total {
                        return Err(
                            self.violation(format!("progress {done} of {total} after {progress}"))
                        );
                    }
                    progress = done;
                    last_progress = Some((done, total));
                }
                DownloadStep::Fetch(f) => {
                    if paused {
                        return Err(self.violation("a GET while paused".into()));
                    }
                    let (a, b) = (f.offset, f.offset + f.len);
                    if let Some(&(o, l)) = held.iter().find(|&&(o, l)| l > 0 && o < b && a < o + l)
                    {
                        return Err(self.violation(format!(
                            "GET of {a}..{b} asks again for bytes {o}..{} the task holds",
                            o + l
                        )));
                    }
                    self.log(|| format!("fetch {}: {a}..{b}", f.id));
                    in_flight.insert(f.id, f);
                }
                DownloadStep::Wait => {
                    if in_flight.is_empty() {
                        return Err(self.violation("waits with nothing in flight".into()));
                    }
                    let pick = self.rng.below(in_flight.len() as u64) as usize;
                    let id = *in_flight.keys().nth(pick).unwrap_or(&0);
                    let Some(f) = in_flight.remove(&id) else {
                        continue;
                    };
                    let report = self.perform(&f, clean);
                    if report.written > 0 && !matches!(report.error, Some(Error::Integrity(_))) {
                        held.push((f.offset, report.written));
                    }
                    self.log(|| {
                        format!("fetch {id}: wrote {}, {:?}", report.written, report.error)
                    });
                    task.fetched(id, report);
                }
                DownloadStep::Paused => {
                    if !in_flight.is_empty() {
                        return Err(self.violation("paused with fetches in flight".into()));
                    }
                    if !clean && self.rng.chance(0.3) {
                        // The driver ends here; the next run goes on from the checkpoint.
                        self.kill(&in_flight, pinned);
                        return Ok(RunEnd::Killed);
                    }
                    task.resume();
                    paused = false;
                    self.log(|| "resume".into());
                }
                DownloadStep::Finish => {
                    let total = pinned.len() as u64;
                    if total > 0 && last_progress != Some((total, total)) {
                        return Err(self.violation(format!(
                            "finished with progress at {last_progress:?} of {}",
                            pinned.len()
                        )));
                    }
                    self.files.dest = self.files.temp.take();
                    self.files.checkpoint = None;
                    return Ok(RunEnd::Finished);
                }
                DownloadStep::Fail {
                    error,
                    keep_partial,
                } => {
                    self.log(|| format!("fail: {error} (keep partial: {keep_partial})"));
                    if !keep_partial {
                        self.files.temp = None;
                        self.files.checkpoint = None;
                    }
                    if matches!(error, Error::Cancelled) {
                        if keep_partial {
                            return Err(self.violation("a cancel keeps its partial file".into()));
                        }
                        return Ok(RunEnd::Cancelled);
                    }
                    if clean && !matches!(error, Error::Integrity(_)) {
                        return Err(self.violation(format!("a run without faults failed: {error}")));
                    }
                    return Ok(RunEnd::Failed);
                }
                DownloadStep::Exit => {
                    return Err(self.violation("Exit before Finish or Fail".into()));
                }
                other => return Err(self.violation(format!("unknown step {other:?}"))),
            }
        }
        Err(self.violation("the run does not end".into()))
    }

    /// `kill -9`: the fetches in flight may have written a part of their bytes, unreported.
    fn kill(&mut self, in_flight: &BTreeMap<usize, Fetch>, pinned: &[u8]) {
        self.summary.kills += 1;
        for f in in_flight.values() {
            let n = self.rng.below(f.len + 1);
            if let Some(temp) = self.files.temp.as_mut() {
                let (a, b) = (f.offset as usize, (f.offset + n) as usize);
                if b <= temp.len() && b <= pinned.len() {
                    temp[a..b].copy_from_slice(&pinned[a..b]);
                }
            }
        }
        self.log(|| format!("kill -9 with {} fetches in flight", in_flight.len()));
    }

    /// Every range a checkpoint names holds those bytes, with that CRC-64 (but for bytes damaged between
    /// runs, which the task cannot know of before its final check).
    fn check_checkpoint(&mut self, bytes: &[u8], pinned: &[u8]) -> Result<(), Failure> {
        let cp: DownloadCheckpoint = serde_json::from_slice(bytes)
            .map_err(|e| self.violation(format!("an unreadable checkpoint: {e}")))?;
        let temp = self.files.temp.as_deref().unwrap_or_default();
        for d in &cp.done {
            let (a, b) = (d.offset as usize, (d.offset + d.len) as usize);
            if self.damaged.iter().any(|&x| (a..b).contains(&x)) {
                continue;
            }
            let ok = b <= temp.len()
                && b <= pinned.len()
                && temp[a..b] == pinned[a..b]
                && Crc64::checksum(&temp[a..b]) == d.crc64;
            if !ok {
                return Err(self.violation(format!(
                    "the checkpoint names bytes {a}..{b} the temporary file does not hold"
                )));
            }
        }
        Ok(())
    }

    /// One GET as a driver performs it: refused, or answered and written (maybe cut part-way).
    fn perform(&mut self, f: &Fetch, clean: bool) -> FetchReport {
        self.summary.gets += 1;
        let transport = |kind, m: &str| Error::Transport(TransportError::new(kind, m.to_string()));
        if !clean && self.rng.chance(self.sc.refuse) {
            let error = if self.rng.chance(0.5) {
                transport(TransportErrorKind::Reset, "sim: connection reset")
            } else {
                let r = http::Response::builder()
                    .status(503)
                    .header("x-cos-request-id", "sim")
                    .body(Bytes::from_static(
                        b"<Error><Code>SlowDown</Code><Message>sim</Message></Error>",
                    ))
                    .unwrap_or_default();
                GetObjectStream::new(f.request.clone()).error(&r)
            };
            return f.tally().report(Err(error), Ok(()));
        }
        let stream = GetObjectStream::new(f.request.clone());
        let request = match stream.signed_request(&self.config, self.now) {
            Ok(r) => r.map(|()| Bytes::new()),
            Err(e) => return f.tally().report(Err(e), Ok(())),
        };
        let response = match self.server.handle(request, self.now) {
            Ok(r) => r,
            Err(e) => {
                return f.tally().report(
                    Err(transport(TransportErrorKind::Reset, &e.to_string())),
                    Ok(()),
                )
            }
        };
        let (mut check, info, range) = match stream.head(response.status(), response.headers()) {
            GetHead::Body { info, range, check } => (check, info, range),
            GetHead::Error { .. } => return f.tally().report(Err(stream.error(&response)), Ok(())),
        };
        if let Err(e) = f.check_head(&info, range) {
            return f.tally().report(Err(e), Ok(()));
        }
        let body = response.body();
        let cut = !clean && !body.is_empty() && self.rng.chance(self.sc.cut);
        let n = if cut {
            self.summary.cuts += 1;
            self.rng.below(body.len() as u64) as usize
        } else {
            body.len()
        };
        let mut tally = f.tally();
        let mut at = f.offset as usize;
        let temp = self.files.temp.get_or_insert_with(Vec::new);
        let mut result = Ok(());
        for chunk in body[..n].chunks(48 << 10) {
            if let Err(e) = check.update(chunk) {
                result = Err(e);
                break;
            }
            let k = tally.room(chunk.len());
            if at + k > temp.len() {
                break;
            }
            temp[at..at + k].copy_from_slice(&chunk[..k]);
            tally.wrote(&chunk[..k]);
            at += k;
        }
        let result = match (result, cut) {
            (Err(e), _) => Err(e),
            (Ok(()), true) => Err(transport(TransportErrorKind::Reset, "sim: body cut")),
            (Ok(()), false) => check.finish(),
        };
        tally.report(result, Ok(()))
    }
}
