//! Progress as users see it: loaded, total, speed and percent, throttled to a sane reporting rate.

use std::time::{Duration, Instant};

/// A progress report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Bytes done.
    pub loaded: u64,
    /// Total bytes, when known (`None` for a stream that has not ended).
    pub total: Option<u64>,
    /// Bytes per second, averaged over the last few seconds.
    pub speed: f64,
    /// `loaded / total` in `0.0..=1.0`, when the total is known (1.0 for an empty object).
    pub percent: Option<f64>,
}

/// Turns raw byte counts into throttled [`Progress`] reports. Pure: the driver passes the time.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cos_core::upload::ProgressMeter;
/// let t0 = Instant::now();
/// let mut m = ProgressMeter::new(Some(1000), t0);
/// assert!(m.update(100, t0).is_some());                               // the first report is immediate
/// assert!(m.update(200, t0 + Duration::from_millis(10)).is_none());  // throttled
/// let p = m.update(1000, t0 + Duration::from_millis(20)).unwrap();     // the last one always passes
/// assert_eq!(p.percent, Some(1.0));
/// ```
#[derive(Clone, Debug)]
pub struct ProgressMeter {
    total: Option<u64>,
    interval: Duration,
    last_report: Option<Instant>,
    samples: std::collections::VecDeque<(Instant, u64)>,
    finished: bool,
}

/// How often reports pass the throttle by default.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

impl ProgressMeter {
    /// A meter for `total` bytes, started at `start`.
    pub fn new(total: Option<u64>, start: Instant) -> ProgressMeter {
        let mut samples = std::collections::VecDeque::new();
        samples.push_back((start, 0));
        ProgressMeter {
            total,
            interval: DEFAULT_PROGRESS_INTERVAL,
            last_report: None,
            samples,
            finished: false,
        }
    }

    /// Changes the reporting interval.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the total once it is known (streams).
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// Records `loaded` bytes at `now`; returns a report when one is due (the first, every `interval`, and
    /// the one that reaches the total).
    pub fn update(&mut self, loaded: u64, now: Instant) -> Option<Progress> {
        self.samples.push_back((now, loaded));
        while self.samples.len() > 2
            && now.duration_since(self.samples[0].0) > Duration::from_secs(3)
        {
            self.samples.pop_front();
        }
        let complete = self.total.is_some_and(|t| loaded >= t);
        let due = match self.last_report {
            None => true,
            Some(t) => now.duration_since(t) >= self.interval,
        };
        if !self.finished && (complete || due) {
            self.finished = complete;
            self.last_report = Some(now);
            Some(self.report(loaded))
        } else {
            None
        }
    }

    fn report(&self, loaded: u64) -> Progress {
        let (t0, b0) = self.samples[0];
        let (t1, b1) = *self.samples.back().expect("non-empty");
        let secs = t1.duration_since(t0).as_secs_f64();
        let speed = if secs > 0.0 {
            b1.saturating_sub(b0) as f64 / secs
        } else {
            0.0
        };
        let percent = self.total.map(|t| {
            if t == 0 {
                1.0
            } else {
                (loaded as f64 / t as f64).min(1.0)
            }
        });
        Progress {
            loaded,
            total: self.total,
            speed,
            percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant for virtual time
    fn speed_and_throttle() {
        let t0 = Instant::now();
        let mut m = ProgressMeter::new(Some(10_000), t0);
        assert!(m.update(0, t0).is_some());
        let mut reports = 0;
        for i in 1..=100u64 {
            if m.update(i * 100, t0 + Duration::from_millis(i * 10))
                .is_some()
            {
                reports += 1;
            }
        }
        // 1 s of updates at 100 Hz with a 200 ms throttle: about 5 reports, the last included.
        assert!((4..=6).contains(&reports), "{reports}");
        let p = m.report(10_000);
        assert!((p.speed - 10_000.0).abs() < 1500.0, "{}", p.speed);
        assert!(
            m.update(10_000, t0 + Duration::from_secs(2)).is_none(),
            "no report after completion"
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base instant for virtual time
    fn reports_come_every_interval_and_once_at_the_total() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut m = ProgressMeter::new(None, t0).with_interval(Duration::from_millis(100));
        assert!(m.update(1, t0).is_some(), "the first");
        assert!(m.update(2, ms(99)).is_none());
        assert!(m.update(3, ms(100)).is_some(), "one interval later");
        // A stream's total, once known, ends the reports at it.
        m.set_total(10);
        let last = m
            .update(10, ms(101))
            .expect("the total is reported at once");
        assert_eq!((last.total, last.percent), (Some(10), Some(1.0)));
        assert!(m.update(10, ms(500)).is_none(), "nothing after the total");
        // The speed is measured over the last 3 s only.
        let mut m = ProgressMeter::new(Some(1 << 40), t0);
        m.update(0, t0);
        m.update(1_000_000, ms(1_000));
        for s in 2..=10u64 {
            m.update(1_000_000 + (s - 1) * 1000, ms(s * 1000));
        }
        let p = m.update(1_000_000 + 10_000, ms(11_000)).unwrap();
        assert!(p.speed < 2_000.0, "old samples are dropped: {}", p.speed);
        assert!(p.speed > 500.0, "{}", p.speed);
    }
}
