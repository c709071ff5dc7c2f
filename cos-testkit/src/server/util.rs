//! Small helpers: dates, ids, XML escaping and the response body type.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::mpsc;

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Tue, 15 Nov 1994 08:12:31 GMT` (the core's formatter, so client and server agree on dates).
pub(crate) use cos_core::task::format_http_date as http_date;

/// `2024-01-02T03:04:05.000Z` (the core's formatter).
pub(crate) use cos_core::post_policy::format_iso8601 as iso8601;

thread_local! {
    /// Set while a [`super::MemoryServer`] serves a request on this thread: ids come from this seed.
    static SEEDED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Makes ids deterministic on this thread while alive (splitmix64 over the state in `cell`).
pub(crate) struct SeededIds<'a>(&'a std::cell::Cell<u64>);

impl<'a> SeededIds<'a> {
    pub(crate) fn enter(cell: &'a std::cell::Cell<u64>) -> SeededIds<'a> {
        SEEDED.with(|s| s.set(Some(cell.get())));
        SeededIds(cell)
    }
}

impl Drop for SeededIds<'_> {
    fn drop(&mut self) {
        if let Some(v) = SEEDED.with(|s| s.take()) {
            self.0.set(v);
        }
    }
}

/// A random 64-bit value (not cryptographic; ids only).
pub(crate) fn random_u64() -> u64 {
    if let Some(state) = SEEDED.with(|s| s.get()) {
        let state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        SEEDED.with(|s| s.set(Some(state)));
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        return z ^ (z >> 31);
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// A random lower-case hex id of `n` 64-bit words.
pub(crate) fn random_hex(words: usize) -> String {
    (0..words)
        .map(|_| format!("{:016x}", random_u64()))
        .collect()
}

/// XML text escaping.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An XML element with escaped text.
pub(crate) fn el(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", xml_escape(text))
}

/// The response body: whole bytes, or chunks from a channel (files, truncated bodies).
pub(crate) enum Body {
    Full(Option<Bytes>),
    Chan(mpsc::Receiver<io::Result<Bytes>>),
}

impl Body {
    pub(crate) fn empty() -> Body {
        Body::Full(None)
    }

    pub(crate) fn bytes(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        Body::Full(if b.is_empty() { None } else { Some(b) })
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Chan(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Chan(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(http_date(784_887_151), "Tue, 15 Nov 1994 08:12:31 GMT");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(784_887_151), "1994-11-15T08:12:31.000Z");
    }
}
