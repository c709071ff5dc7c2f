//! `x-cos-traffic-limit` (bits per second, per request) enforced on request and response bodies.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;

use super::{ApiError, Body, Ctx};

/// Lowest and highest limits COS accepts (100 KB/s to 100 MB/s, in bit/s).
pub(crate) const RANGE: std::ops::RangeInclusive<u64> = 819_200..=838_860_800;

/// The request's traffic limit in bit/s (header, or query parameter of a presigned URL), validated.
pub(crate) fn limit(ctx: &Ctx) -> Result<Option<u64>, ApiError> {
    let v = ctx
        .header("x-cos-traffic-limit")
        .filter(|v| !v.trim().is_empty())
        .or_else(|| ctx.q("x-cos-traffic-limit").map(str::to_string));
    match v {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if RANGE.contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                "x-cos-traffic-limit must be between 819200 and 838860800 bit/s",
            )),
        },
    }
}

/// Paces a byte stream: after `n` bytes in all, waits until `n * 8 / bps` seconds have passed.
pub(crate) struct Pacer {
    start: Instant,
    bps: u64,
    done: u64,
}

impl Pacer {
    pub(crate) fn new(bps: u64) -> Pacer {
        Pacer {
            start: Instant::now(),
            bps,
            done: 0,
        }
    }

    /// Accounts for `n` more bytes and sleeps while ahead of the limit (sleeps under 2 ms are skipped).
    pub(crate) async fn after(&mut self, n: usize) {
        self.done += n as u64;
        let due = Duration::from_secs_f64(self.done as f64 * 8.0 / self.bps as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed + Duration::from_millis(2) {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// A response body sent no faster than `bps` bits per second, in slices of at most 16 KiB.
pub(crate) fn body(mut inner: Body, bps: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut pacer = Pacer::new(bps);
        while let Some(frame) = inner.frame().await {
            let data: Bytes = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut data = data;
            while !data.is_empty() {
                let piece = data.split_to(data.len().min(16 << 10));
                let n = piece.len();
                if tx.send(Ok(piece)).await.is_err() {
                    return;
                }
                pacer.after(n).await;
            }
        }
    });
    Body::Chan(rx)
}
