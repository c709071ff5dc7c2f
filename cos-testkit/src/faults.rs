//! Fault injection for the local server: seeded random faults and "fail the n-th request of an operation" rules.
//!
//! A [`FaultPlan`] is given to [`crate::ServerBuilder::faults`] and can be changed while the server runs through
//! the [`FaultHandle`] that [`crate::Server::faults`] returns. Faults apply to every operation, `HEAD` included,
//! and are decided before the request's signature is checked, as a flaky network or proxy in front of COS would.
//!
//! Random faults draw one number per request from a seeded RNG, in the order requests arrive: with the same
//! seed and the same request sequence (one request at a time) the same requests fail. `fail_nth` rules count the
//! requests of one operation from the moment the rule is installed and fire once.
//!
//! ```
//! use std::time::Duration;
//! use cos_testkit::{Fault, FaultPlan};
//! let plan = FaultPlan::parse("500:0.05,503:0.02,reset:0.02,stall=2s:0.01")?
//!     .seed(7)
//!     .fail_nth("UploadPart", 3, Fault::Status(500));
//! assert_eq!(plan.random_faults()[3], (Fault::Stall(Duration::from_secs(2)), 0.01));
//! # Ok::<(), cos_testkit::FaultSpecError>(())
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One injected failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status and a COS error XML body (503 gives code `SlowDown`, 500 `InternalError`).
    Status(u16),
    /// Close the connection in the middle of the request, without any response.
    Reset,
    /// Wait this long, then handle the request normally.
    Stall(Duration),
    /// `503 SlowDown` with a COS error body.
    SlowDown,
    /// `502 Bad Gateway` with an HTML page and no COS headers, as a proxy in front of COS would send.
    Html502,
    /// Perform the operation, then send the response head with its full `Content-Length` but only half of the
    /// body (or, for an empty body, `Content-Length: 1` and nothing) and close the connection.
    TruncatedBody,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(s) => write!(f, "{s}"),
            Fault::Reset => f.write_str("reset"),
            Fault::Stall(d) => write!(f, "stall={}ms", d.as_millis()),
            Fault::SlowDown => f.write_str("slowdown"),
            Fault::Html502 => f.write_str("html502"),
            Fault::TruncatedBody => f.write_str("truncated"),
        }
    }
}

impl Fault {
    /// Parses one fault name: a status code (`500`), `reset`, `stall=2s` (or `=500ms`), `slowdown`, `html502`,
    /// `truncated`.
    pub fn parse(s: &str) -> Result<Fault, FaultSpecError> {
        let bad = || FaultSpecError(format!("unknown fault {s:?}"));
        let s = s.trim();
        if let Some(d) = s.strip_prefix("stall=") {
            return parse_duration(d).map(Fault::Stall).ok_or_else(bad);
        }
        match s.to_ascii_lowercase().as_str() {
            "reset" => Ok(Fault::Reset),
            "slowdown" => Ok(Fault::SlowDown),
            "html502" => Ok(Fault::Html502),
            "truncated" | "truncate" | "truncatedbody" => Ok(Fault::TruncatedBody),
            n => match n.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Ok(Fault::Status(code)),
                _ => Err(bad()),
            },
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    let secs = s.strip_suffix('s').unwrap_or(s);
    let v: f64 = secs.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v))
}

/// A fault specification that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpecError(pub String);

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad fault spec: {}", self.0)
    }
}

impl std::error::Error for FaultSpecError {}

/// A "fail the n-th request of this operation" rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NthRule {
    op: String,
    n: u64,
    seen: u64,
    fault: Fault,
}

/// Which faults to inject: random ones with probabilities (seeded) and fixed `fail_nth` rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    random: Vec<(Fault, f64)>,
    seed: u64,
    nth: Vec<NthRule>,
}

impl FaultPlan {
    /// A plan that injects nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `"500:0.05,503:0.02,reset:0.02,stall=2s:0.01"`: comma-separated `fault:probability` pairs
    /// (see [`Fault::parse`] for the names). Probabilities must add up to at most 1. The seed is 0 until
    /// [`FaultPlan::seed`] sets it.
    pub fn parse(spec: &str) -> Result<FaultPlan, FaultSpecError> {
        let mut plan = FaultPlan::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, p) = item
                .rsplit_once(':')
                .ok_or_else(|| FaultSpecError(format!("{item:?} has no ':probability'")))?;
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| FaultSpecError(format!("bad probability in {item:?}")))?;
            plan = plan.with(Fault::parse(name)?, p)?;
        }
        Ok(plan)
    }

    /// Adds a random fault with probability `p` (0..=1) per request.
    pub fn with(mut self, fault: Fault, p: f64) -> Result<Self, FaultSpecError> {
        let total: f64 = self.random.iter().map(|(_, q)| q).sum::<f64>() + p;
        if !(0.0..=1.0).contains(&p) || total > 1.0 + 1e-9 {
            return Err(FaultSpecError(format!(
                "probability {p} out of range (total {total})"
            )));
        }
        self.random.push((fault, p));
        Ok(self)
    }

    /// Sets the RNG seed used for the random faults.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fails the `n`-th (1-based) request of operation `op` (e.g. `"UploadPart"`) with `fault`, once.
    pub fn fail_nth(mut self, op: &str, n: u64, fault: Fault) -> Self {
        self.nth.push(NthRule {
            op: op.to_string(),
            n,
            seen: 0,
            fault,
        });
        self
    }

    /// The random faults and their probabilities.
    pub fn random_faults(&self) -> &[(Fault, f64)] {
        &self.random
    }

    /// The seed of the random faults.
    pub fn seed_value(&self) -> u64 {
        self.seed
    }
}

/// A fault that was injected, as recorded by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedFault {
    /// 1-based index of the request among all requests the server received.
    pub request: u64,
    /// Operation name of the request (`"PutObject"`, …).
    pub operation: String,
    /// What was done.
    pub fault: Fault,
}

#[derive(Debug)]
pub(crate) struct FaultState {
    plan: FaultPlan,
    rng: u64,
    log: Vec<InjectedFault>,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        let rng = plan.seed;
        FaultState {
            plan,
            rng,
            log: Vec::new(),
        }
    }

    /// splitmix64, uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Decides the fault for request number `request` of operation `op`.
    pub(crate) fn decide(&mut self, request: u64, op: &str) -> Option<Fault> {
        let mut chosen = None;
        for rule in self.plan.nth.iter_mut().filter(|r| r.op == op) {
            rule.seen += 1;
            if rule.seen == rule.n && chosen.is_none() {
                chosen = Some(rule.fault.clone());
            }
        }
        if !self.plan.random.is_empty() {
            // Always draw, so that a fixed rule does not shift the random sequence.
            let u = self.next_f64();
            if chosen.is_none() {
                let mut acc = 0.0;
                for (fault, p) in &self.plan.random {
                    acc += p;
                    if u < acc {
                        chosen = Some(fault.clone());
                        break;
                    }
                }
            }
        }
        if let Some(f) = &chosen {
            self.log.push(InjectedFault {
                request,
                operation: op.to_string(),
                fault: f.clone(),
            });
        }
        chosen
    }
}

/// Changes the fault plan of a running server.
#[derive(Clone, Debug)]
pub struct FaultHandle(pub(crate) Arc<Mutex<FaultState>>);

impl FaultHandle {
    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole plan (the RNG restarts from the new plan's seed).
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut s = self.state();
        s.rng = plan.seed;
        s.plan = plan;
    }

    /// Fails the `n`-th request of `op` from now on (1 = the next one) with `fault`, once.
    ///
    /// ```
    /// # let server = cos_testkit::Server::builder().start_blocking()?;
    /// use cos_testkit::Fault;
    /// server.faults().fail_nth("UploadPart", 3, Fault::Status(500));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fail_nth(&self, op: &str, n: u64, fault: Fault) {
        self.state().plan.nth.push(NthRule {
            op: op.to_string(),
            n,
            seen: 0,
            fault,
        });
    }

    /// Removes every rule and random fault.
    pub fn clear(&self) {
        self.set_plan(FaultPlan::new());
    }

    /// Every fault injected so far, in order.
    pub fn injected(&self) -> Vec<InjectedFault> {
        self.state().log.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_spec() {
        let p = FaultPlan::parse(
            "500:0.05, 503:0.02,reset:0.02,stall=2s:0.01,stall=250ms:0.1,html502:0.1,truncated:0.1",
        )
        .unwrap();
        assert_eq!(p.random[0], (Fault::Status(500), 0.05));
        assert_eq!(p.random[2].0, Fault::Reset);
        assert_eq!(p.random[4].0, Fault::Stall(Duration::from_millis(250)));
        assert_eq!(p.random[5].0, Fault::Html502);
        assert_eq!(p.random[6].0, Fault::TruncatedBody);
        assert!(FaultPlan::parse("500:0.7,503:0.7").is_err());
        assert!(FaultPlan::parse("boom:0.1").is_err());
        assert!(FaultPlan::parse("500").is_err());
    }

    #[test]
    fn seeded_decisions_repeat() {
        let run = |seed| {
            let mut s = FaultState::new(FaultPlan::parse("500:0.3,reset:0.2").unwrap().seed(seed));
            (1..=200)
                .map(|i| s.decide(i, "PutObject"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let hits = run(7).iter().filter(|f| f.is_some()).count();
        assert!((60..=140).contains(&hits), "{hits}");
    }

    #[test]
    fn nth_fires_once() {
        let mut s = FaultState::new(FaultPlan::new().fail_nth("UploadPart", 2, Fault::Reset));
        assert_eq!(s.decide(1, "UploadPart"), None);
        assert_eq!(s.decide(2, "PutObject"), None);
        assert_eq!(s.decide(3, "UploadPart"), Some(Fault::Reset));
        assert_eq!(s.decide(4, "UploadPart"), None);
        assert_eq!(s.log.len(), 1);
        assert_eq!(s.log[0].request, 3);
    }
}
