//! Retry policy: which failures are retried, how long to wait, and the seeded jitter source.

use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::error::Error;
use crate::task::skew_offset;

/// Bounded exponential backoff with jitter.
///
/// Attempt `n` (1-based, the first retry is attempt 2) waits a random duration in `[d/2, d]` where
/// `d = min(max_backoff, initial_backoff * 2^(n-2))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Seed of the jitter generator, so runs are reproducible.
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            seed: 0x5eed,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Send again after this delay.
    RetryAfter(Duration),
    /// Stop and report the error.
    GiveUp,
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before attempt `next_attempt` (2 for the first retry).
    pub fn backoff(&self, next_attempt: u32, rng: &mut Rng) -> Duration {
        let exp = next_attempt.saturating_sub(2).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = base / 2;
        let extra = base.saturating_sub(half);
        let nanos = extra.as_nanos() as u64;
        half + Duration::from_nanos(if nanos == 0 {
            0
        } else {
            rng.next() % (nanos + 1)
        })
    }

    /// Decides whether `error`, after `attempt` attempts, is retried.
    pub fn decide(&self, error: &Error, attempt: u32, rng: &mut Rng) -> RetryDecision {
        if error.is_retryable() && attempt < self.max_attempts {
            RetryDecision::RetryAfter(self.backoff(attempt + 1, rng))
        } else {
            RetryDecision::GiveUp
        }
    }
}

/// A small deterministic generator (splitmix64) for jitter; the core has no other randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{TransportError, TransportErrorKind};

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = RetryPolicy::default();
        let mut rng = Rng::new(1);
        for attempt in 2..40 {
            let d = p.backoff(attempt, &mut rng);
            let base = p
                .initial_backoff
                .saturating_mul(1 << (attempt - 2).min(30))
                .min(p.max_backoff);
            assert!(
                d >= base / 2 && d <= base,
                "attempt {attempt}: {d:?} vs {base:?}"
            );
        }
    }

    #[test]
    fn decide_limits_attempts() {
        let p = RetryPolicy::default();
        let mut rng = Rng::new(1);
        let e = Error::Transport(TransportError::new(TransportErrorKind::Reset, "reset"));
        assert!(matches!(
            p.decide(&e, 1, &mut rng),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(p.decide(&e, 4, &mut rng), RetryDecision::GiveUp);
        assert_eq!(
            p.decide(&Error::Cancelled, 1, &mut rng),
            RetryDecision::GiveUp
        );
    }

    fn reset() -> Error {
        Error::Transport(TransportError::new(TransportErrorKind::Reset, "reset"))
    }

    #[test]
    fn none_never_retries() {
        let mut rng = Rng::new(1);
        assert_eq!(
            RetryPolicy::none().decide(&reset(), 1, &mut rng),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn the_last_allowed_attempt_is_retried_with_the_next_backoff() {
        let p = RetryPolicy::default();
        let mut rng = Rng::new(1);
        // After attempt 3 of 4, attempt 4 follows after 800 ms halved-to-full: [400 ms, 800 ms].
        match p.decide(&reset(), 3, &mut rng) {
            RetryDecision::RetryAfter(d) => assert!(
                d >= Duration::from_millis(400) && d <= Duration::from_millis(800),
                "{d:?}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // Reference outputs of splitmix64 (Vigna), seed 0 and the default seed 0x5eed.
        let mut rng = Rng::new(0);
        let got: Vec<u64> = (0..3).map(|_| rng.next()).collect();
        assert_eq!(
            got,
            [
                16294208416658607535,
                7960286522194355700,
                487617019471545679
            ]
        );
        let mut rng = Rng::new(0x5eed);
        let got: Vec<u64> = (0..3).map(|_| rng.next()).collect();
        assert_eq!(
            got,
            [716632666546416052, 6139096880363046005, 6727192872932819891]
        );
    }

    #[test]
    fn jitter_spreads_over_the_whole_window_and_is_reproducible() {
        let p = RetryPolicy::default();
        let draws = |seed| {
            let mut rng = Rng::new(seed);
            (0..200).map(|_| p.backoff(2, &mut rng)).collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7), "same seed, same delays");
        assert_ne!(a, draws(8), "another seed, other delays");
        let (lo, hi) = (a.iter().min().unwrap(), a.iter().max().unwrap());
        // 200 uniform draws in [100 ms, 200 ms] reach both ends of the window.
        assert!(*lo < Duration::from_millis(110), "{lo:?}");
        assert!(*hi > Duration::from_millis(190), "{hi:?}");
    }

    #[test]
    fn both_ends_of_a_tiny_window_are_reachable() {
        // d = 2 ns: the delay is 1 ns or 2 ns, both must occur.
        let p = RetryPolicy {
            initial_backoff: Duration::from_nanos(2),
            ..RetryPolicy::default()
        };
        let mut rng = Rng::new(3);
        let seen: std::collections::BTreeSet<Duration> =
            (0..64).map(|_| p.backoff(2, &mut rng)).collect();
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [Duration::from_nanos(1), Duration::from_nanos(2)]
        );
        // d = 1 ns: half is 0, the jitter covers the last nanosecond.
        let p = RetryPolicy {
            initial_backoff: Duration::from_nanos(1),
            ..RetryPolicy::default()
        };
        let seen: std::collections::BTreeSet<Duration> =
            (0..64).map(|_| p.backoff(2, &mut rng)).collect();
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [Duration::ZERO, Duration::from_nanos(1)]
        );
        // d = 0: no delay and no draw needed.
        let p = RetryPolicy {
            initial_backoff: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(2, &mut rng), Duration::ZERO);
    }
}
