//! What both drivers' download loops keep and word the same way: the outcome of a download
//! ([`DownloadOutcome`]), the bookkeeping of one fetch as its bytes are written ([`FetchTally`]), and the
//! error of a local file that cannot be written ([`file_error`]).

use std::path::Path;

use crate::checksum::Crc64;
use crate::config::Config;
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::ops::ObjectInfo;

use super::{DownloadOptions, DownloadTask, Fetch, FetchReport};

/// What a driver's `download_file` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Bytes written (the object's size).
    pub size: u64,
    /// The ETag of the object downloaded.
    pub etag: Option<String>,
    /// GET requests sent.
    pub requests: usize,
    /// Bytes kept from a checkpoint of an earlier run (not fetched again).
    pub resumed: u64,
}

impl DownloadTask {
    /// [`DownloadTask::new`] with the client's bucket and retry policy.
    pub fn for_client(
        config: &Config,
        key: impl Into<String>,
        info: &ObjectInfo,
        options: &DownloadOptions,
    ) -> Result<DownloadTask, Error> {
        let retry = config.retry.clone();
        DownloadTask::new(config.bucket.as_str(), key, info, options, retry)
    }

    /// The outcome of the finished download of the object whose HEAD answer was `info`.
    pub fn outcome(&self, info: &ObjectInfo) -> DownloadOutcome {
        DownloadOutcome {
            size: self.size(),
            etag: info.etag.clone(),
            requests: self.requests(),
            resumed: self.resumed(),
        }
    }
}

/// The bytes of one fetch written so far and their CRC-64, for its [`FetchReport`].
#[derive(Debug)]
pub struct FetchTally {
    len: u64,
    sync: bool,
    written: u64,
    crc: Crc64,
}

impl Fetch {
    /// An empty tally for this fetch.
    pub fn tally(&self) -> FetchTally {
        FetchTally {
            len: self.len,
            sync: self.sync,
            written: 0,
            crc: Crc64::new(),
        }
    }
}

impl FetchTally {
    /// How many of the `n` bytes just received to write: never past the fetch's length.
    pub fn room(&self, n: usize) -> usize {
        usize::try_from(self.len - self.written).map_or(n, |room| n.min(room))
    }

    /// Counts `bytes` as written at the fetch's offset, after those counted before.
    pub fn wrote(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
    }

    /// Whether the written bytes must reach stable storage before the report (a checkpoint will name
    /// them).
    pub fn needs_sync(&self) -> bool {
        self.sync && self.written > 0
    }

    /// The report of the fetch that ended with `result`; `flushed` is whether the written bytes were
    /// flushed (and synced when asked): bytes that may not be in the file are not reported.
    pub fn report(self, result: Result<(), Error>, flushed: Result<(), Error>) -> FetchReport {
        let (written, error) = match (result, flushed) {
            (result, Ok(())) => (self.written, result.err()),
            (_, Err(e)) => (0, Some(e)),
        };
        FetchReport {
            written,
            crc64: self.crc.finish(),
            error,
        }
    }
}

/// A local file (the temporary file, the destination, the checkpoint) that cannot be written.
pub fn file_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Transport(TransportError::new(
        TransportErrorKind::Body,
        format!("{}: {e}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::GetObject;

    fn fetch(len: u64, sync: bool) -> Fetch {
        Fetch {
            id: 0,
            request: GetObject::new("k"),
            offset: 10,
            len,
            delay: std::time::Duration::ZERO,
            sync,
            total: 100,
            etag: "\"e\"".into(),
        }
    }

    #[test]
    fn a_tally_never_writes_past_the_fetch_and_reports_what_reached_the_file() {
        let f = fetch(5, true);
        let mut t = f.tally();
        assert!(!t.needs_sync(), "nothing written, nothing to sync");
        assert_eq!(t.room(3), 3);
        t.wrote(b"abc");
        assert_eq!(
            t.room(4),
            2,
            "a longer body is clipped to the fetch's length"
        );
        t.wrote(b"de");
        assert_eq!(t.room(1), 0);
        assert!(t.needs_sync());
        let r = t.report(Ok(()), Ok(()));
        let mut crc = Crc64::new();
        crc.update(b"abcde");
        assert_eq!(
            (r.written, r.crc64, r.error.is_none()),
            (5, crc.finish(), true)
        );

        // A fetch cut part-way reports the bytes written and its error.
        let mut t = f.tally();
        t.wrote(b"ab");
        let r = t.report(Err(Error::Cancelled), Ok(()));
        assert_eq!(r.written, 2);
        assert!(matches!(r.error, Some(Error::Cancelled)));

        // Bytes that may not have reached the file are not reported.
        let mut t = fetch(5, false).tally();
        t.wrote(b"ab");
        assert!(
            !t.needs_sync(),
            "no sync unless a checkpoint will name the bytes"
        );
        let r = t.report(Ok(()), Err(file_error(Path::new("/tmp/x"), "disk full")));
        assert_eq!(r.written, 0);
        assert!(r.error.unwrap().to_string().contains("/tmp/x: disk full"));
    }
}
