//! What both drivers' transfer I/O decides the same way, less the I/O itself: the answer each local
//! I/O outcome stands for ([`IoResult::loaded`], [`IoResult::removed`]…), when a hashed range is whole
//! ([`RangeDigest`]), which user callback a report goes to ([`Reports`]), and what a file's metadata means
//! for an upload ([`SourceFingerprint::of_file`]).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::checkpoint::SourceFingerprint;
use super::options::{ProgressFn, UploadOptions};
use crate::checksum::{BodyDigest, SentDigest};
use crate::error::Error;
use crate::task::{Event, IoRequest, IoResult};

/// The hash of a source range asked for with [`IoRequest::Digest`] (CRC-64 and MD5), as the driver
/// reads it: feed it what the source gives until [`RangeDigest::remaining`] is 0 or the source ends, then
/// [`RangeDigest::answer`] is the request's answer (a source that ended short is a failure).
///
/// ```
/// use cos_core::task::IoResult;
/// use cos_core::upload::RangeDigest;
/// let mut d = RangeDigest::new(5);
/// d.update(b"hello");
/// assert_eq!(d.remaining(), 0);
/// assert!(matches!(d.answer(), IoResult::Digest(_)));
/// let mut short = RangeDigest::new(5);
/// short.update(b"hel");
/// assert!(matches!(short.answer(), IoResult::Failed(m) if m.contains("3 of 5")));
/// ```
#[derive(Debug)]
pub struct RangeDigest {
    digest: BodyDigest,
    done: u64,
    len: u64,
}

impl RangeDigest {
    /// The hash of a range of `len` bytes.
    pub fn new(len: u64) -> RangeDigest {
        RangeDigest {
            digest: BodyDigest::with_md5(true),
            done: 0,
            len,
        }
    }

    /// Bytes still to read (the most to feed).
    pub fn remaining(&self) -> u64 {
        self.len - self.done
    }

    /// Hashes the next bytes read (those beyond the range are left out).
    pub fn update(&mut self, bytes: &[u8]) {
        let n = bytes
            .len()
            .min(usize::try_from(self.remaining()).unwrap_or(usize::MAX));
        self.digest.update(&bytes[..n]);
        self.done += n as u64;
    }

    /// The answer: the digest of the whole range, or a failure when the source ended before it.
    pub fn answer(self) -> IoResult {
        if self.done < self.len {
            return IoResult::Failed(format!(
                "{} (did the file change?)",
                crate::exchange::source_ended(self.done, self.len)
            ));
        }
        IoResult::Digest(self.digest.finish())
    }
}

impl IoResult {
    /// The answer to [`IoRequest::LoadCheckpoint`] from reading the checkpoint file at `path`: a missing
    /// file is no checkpoint, any other failure names the file.
    pub fn loaded(path: &Path, read: io::Result<Vec<u8>>) -> IoResult {
        match read {
            Ok(b) => IoResult::Data(Some(Bytes::from(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => IoResult::Data(None),
            Err(e) => IoResult::Failed(format!("{}: {e}", path.display())),
        }
    }

    /// The answer to [`IoRequest::StoreCheckpoint`] (or any request answered with `Done`).
    pub fn done(result: io::Result<()>) -> IoResult {
        result.map_or_else(|e| IoResult::Failed(e.to_string()), |()| IoResult::Done)
    }

    /// The answer to [`IoRequest::RemoveCheckpoint`]: a file already gone is removed.
    pub fn removed(result: io::Result<()>) -> IoResult {
        match result {
            Err(e) if e.kind() == io::ErrorKind::NotFound => IoResult::Done,
            r => IoResult::done(r),
        }
    }

    /// The answer to [`IoRequest::Digest`]; `None`: the task has no file to hash.
    pub fn digest(result: Option<io::Result<SentDigest>>) -> IoResult {
        match result {
            Some(Ok(d)) => IoResult::Digest(d),
            Some(Err(e)) => IoResult::Failed(e.to_string()),
            None => IoResult::Failed("no file".into()),
        }
    }

    /// The answer to [`IoRequest::ReadStream`]: the bytes read (fewer than asked at the stream's end);
    /// `None`: the task has no stream.
    pub fn stream(result: Option<io::Result<Vec<u8>>>) -> IoResult {
        match result {
            Some(Ok(chunk)) => IoResult::Data(Some(Bytes::from(chunk))),
            Some(Err(e)) => IoResult::Failed(e.to_string()),
            None => IoResult::Failed("no stream".into()),
        }
    }

    /// The answer to a request the driver has nothing for (a checkpoint request without a checkpoint).
    pub fn unavailable(request: &IoRequest) -> IoResult {
        IoResult::Failed(format!("not available here: {request:?}"))
    }
}

/// A callback told when a transfer task paused (it is idle, its checkpoint stored).
pub type PausedFn = Arc<dyn Fn() + Send + Sync>;

/// Hands a transfer task's reports to the user's callbacks: progress, hashing progress, pauses.
#[derive(Clone, Default)]
pub struct Reports {
    /// Told of the upload's progress.
    pub on_progress: Option<ProgressFn>,
    /// Told of the pre-hash's progress.
    pub on_hash_progress: Option<ProgressFn>,
    /// Told when the task paused.
    pub on_paused: Option<PausedFn>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("on_progress", &self.on_progress.is_some())
            .field("on_hash_progress", &self.on_hash_progress.is_some())
            .field("on_paused", &self.on_paused.is_some())
            .finish()
    }
}

impl Reports {
    /// The progress callbacks of `options` (no pause callback).
    pub fn of(options: &UploadOptions) -> Reports {
        Reports {
            on_progress: options.on_progress.clone(),
            on_hash_progress: options.on_hash_progress.clone(),
            on_paused: None,
        }
    }

    /// Hands `event` to the callback it is for, if any.
    pub fn report(&self, event: &Event) {
        match event {
            Event::Paused => {
                if let Some(f) = &self.on_paused {
                    f();
                }
            }
            Event::Report { hashing, progress } => {
                let f = if *hashing {
                    &self.on_hash_progress
                } else {
                    &self.on_progress
                };
                if let Some(f) = f {
                    f(progress);
                }
            }
            _ => {}
        }
    }
}

impl SourceFingerprint {
    /// The fingerprint of the file at `path` from its metadata (`is_file`, length, modification time),
    /// or the [`Error::Source`] of a file that cannot be uploaded: unreadable, or not a file.
    pub fn of_file(
        path: &Path,
        metadata: io::Result<(bool, u64, Option<SystemTime>)>,
    ) -> Result<SourceFingerprint, Error> {
        let error = |e: &dyn std::fmt::Display| {
            Error::Source(format!("cannot read {}: {e}", path.display()))
        };
        match metadata {
            Ok((true, len, modified)) => Ok(SourceFingerprint::new(len, modified)),
            Ok((false, ..)) => Err(error(&"not a file")),
            Err(e) => Err(error(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::Progress;
    use std::sync::Mutex;

    /// A range is hashed in whatever pieces it is read, bytes past it are left out, and a range that
    /// ends short is a failure naming how much arrived.
    #[test]
    fn a_range_digest_covers_exactly_its_range() {
        let mut d = RangeDigest::new(8);
        d.update(b"hel");
        assert_eq!(d.remaining(), 5);
        d.update(b"lo, world");
        assert_eq!(d.remaining(), 0);
        let IoResult::Digest(got) = d.answer() else {
            panic!("a whole range")
        };
        assert_eq!(got, BodyDigest::of(b"hello, w"));
        assert!(got.md5.is_some());
        assert!(matches!(RangeDigest::new(0).answer(), IoResult::Digest(d) if d.len == 0));
        let mut short = RangeDigest::new(8);
        short.update(b"hello");
        match short.answer() {
            IoResult::Failed(m) => assert_eq!(
                m,
                "the body source ended after 5 of 8 bytes (did the file change?)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_take_the_options_progress_callbacks_and_show_which_are_set() {
        let options = crate::upload::UploadOptions::default()
            .on_progress(|_| {})
            .on_hash_progress(|_| {});
        let r = Reports::of(&options);
        assert!(r.on_progress.is_some() && r.on_hash_progress.is_some());
        assert!(r.on_paused.is_none());
        assert_eq!(
            format!("{r:?}"),
            "Reports { on_progress: true, on_hash_progress: true, on_paused: false }"
        );
        let none = Reports::of(&crate::upload::UploadOptions::default());
        assert!(none.on_progress.is_none() && none.on_hash_progress.is_none());
    }

    #[test]
    fn io_outcomes_become_the_answers_the_task_expects() {
        let p = Path::new("/cp.json");
        let missing = || Err(io::Error::from(io::ErrorKind::NotFound));
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(IoResult::loaded(p, missing()), IoResult::Data(None));
        assert_eq!(
            IoResult::loaded(p, Ok(b"{}".to_vec())),
            IoResult::Data(Some(Bytes::from_static(b"{}")))
        );
        assert!(
            matches!(IoResult::loaded(p, Err(denied())), IoResult::Failed(m) if m.starts_with("/cp.json: "))
        );
        assert_eq!(
            IoResult::removed(Err(io::ErrorKind::NotFound.into())),
            IoResult::Done
        );
        assert!(matches!(
            IoResult::removed(Err(denied())),
            IoResult::Failed(_)
        ));
        assert_eq!(IoResult::done(Ok(())), IoResult::Done);
        assert_eq!(IoResult::digest(None), IoResult::Failed("no file".into()));
        assert_eq!(IoResult::stream(None), IoResult::Failed("no stream".into()));
        assert_eq!(
            IoResult::stream(Some(Ok(b"ab".to_vec()))),
            IoResult::Data(Some(Bytes::from_static(b"ab")))
        );
        assert!(
            matches!(IoResult::unavailable(&IoRequest::LoadCheckpoint), IoResult::Failed(m) if m.contains("LoadCheckpoint"))
        );
    }

    #[test]
    fn reports_go_to_their_callbacks() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (a, b, c) = (seen.clone(), seen.clone(), seen.clone());
        let reports = Reports {
            on_progress: Some(Arc::new(move |p: &Progress| {
                a.lock().unwrap().push(("up", p.loaded))
            })),
            on_hash_progress: Some(Arc::new(move |p: &Progress| {
                b.lock().unwrap().push(("hash", p.loaded))
            })),
            on_paused: Some(Arc::new(move || c.lock().unwrap().push(("paused", 0)))),
        };
        let progress = |loaded| Progress {
            loaded,
            total: None,
            speed: 0.0,
            percent: None,
        };
        reports.report(&Event::Report {
            hashing: true,
            progress: progress(1),
        });
        reports.report(&Event::Report {
            hashing: false,
            progress: progress(2),
        });
        reports.report(&Event::Paused);
        reports.report(&Event::ClockSkewAdjusted { offset_secs: 1 });
        assert_eq!(
            *seen.lock().unwrap(),
            [("hash", 1), ("up", 2), ("paused", 0)]
        );
        Reports::default().report(&Event::Paused);
    }

    #[test]
    fn a_file_is_fingerprinted_and_anything_else_refused() {
        let p = Path::new("/data/a.bin");
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(
            SourceFingerprint::of_file(p, Ok((true, 5, Some(t)))).unwrap(),
            SourceFingerprint::new(5, Some(t))
        );
        let dir = SourceFingerprint::of_file(p, Ok((false, 0, None))).unwrap_err();
        assert!(dir
            .to_string()
            .contains("cannot read /data/a.bin: not a file"));
        let gone = SourceFingerprint::of_file(p, Err(io::ErrorKind::NotFound.into())).unwrap_err();
        assert!(matches!(gone, Error::Source(m) if m.starts_with("cannot read /data/a.bin: ")));
    }
}
