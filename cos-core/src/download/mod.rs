//! Downloading an object to a file, decided here once for both clients: one GET below a threshold,
//! ranged GETs (each with `If-Match` on the ETag, so a changed object fails instead of mixing) above it,
//! and the CRC-64 of the ranges combined and compared with the object's `x-cos-hash-crc64ecma` before the
//! driver may move the temporary file into place.

use crate::checksum::Crc64;
use crate::error::{Error, IntegrityError, InvalidInput};
use crate::ops::{GetObject, ObjectInfo};

/// Default size above which an object is fetched in ranges.
pub const DEFAULT_RANGE_THRESHOLD: u64 = 16 << 20;
/// Default size of one range.
pub const DEFAULT_RANGE_SIZE: u64 = 8 << 20;
/// Default number of ranges fetched at once.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: usize = 4;

/// How [`DownloadPlan`] splits an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Objects larger than this are fetched in ranges (default 16 MiB).
    pub threshold: u64,
    /// The size of one range (default 8 MiB; at least 1).
    pub range_size: u64,
    /// Ranges fetched at once (default 4; at least 1).
    pub concurrency: usize,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            threshold: DEFAULT_RANGE_THRESHOLD,
            range_size: DEFAULT_RANGE_SIZE,
            concurrency: DEFAULT_DOWNLOAD_CONCURRENCY,
        }
    }
}

/// The requests that download one object, and the check of what they brought.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadPlan {
    key: String,
    size: u64,
    etag: String,
    crc64: Option<u64>,
    ranged: bool,
    /// `(offset, len)` of each request.
    pieces: Vec<(u64, u64)>,
    concurrency: usize,
}

impl DownloadPlan {
    /// Plans the download of `key` from its HEAD answer.
    pub fn new(
        key: impl Into<String>,
        info: &ObjectInfo,
        options: &DownloadOptions,
    ) -> Result<DownloadPlan, Error> {
        let key = key.into();
        crate::config::validate_key(&key)?;
        if options.range_size == 0 || options.concurrency == 0 {
            return Err(InvalidInput::Parameter {
                name: "download options",
                reason: "range_size and concurrency must be at least 1".into(),
            }
            .into());
        }
        let size = info.content_length;
        let etag = info.etag.clone().unwrap_or_default();
        // Ranges need an ETag to pin the object (If-Match); without one, a single GET is the safe choice.
        let ranged = size > options.threshold && !etag.is_empty();
        let pieces = if ranged {
            let mut v = Vec::new();
            let mut at = 0;
            while at < size {
                let len = options.range_size.min(size - at);
                v.push((at, len));
                at += len;
            }
            v
        } else {
            vec![(0, size)]
        };
        Ok(DownloadPlan {
            key,
            size,
            etag,
            crc64: info.crc64,
            ranged,
            pieces,
            concurrency: options.concurrency,
        })
    }

    /// The object's size: the file's final length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of requests.
    pub fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// `(offset, len)` in the file of piece `i`'s bytes.
    pub fn piece(&self, i: usize) -> (u64, u64) {
        self.pieces[i]
    }

    /// How many pieces to fetch at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency.min(self.pieces.len()).max(1)
    }

    /// The GET for piece `i`: the whole object (single GET, its body checked by the core against the
    /// object's CRC-64), or a byte range with `If-Match` on the ETag.
    pub fn request(&self, i: usize) -> GetObject {
        let (offset, len) = self.pieces[i];
        let get = GetObject::new(self.key.clone());
        let get = if self.etag.is_empty() {
            get
        } else {
            get.if_match(self.etag.clone())
        };
        if self.ranged {
            get.range(offset, Some(offset + len - 1))
        } else {
            get
        }
    }

    /// Checks what the pieces brought: `crcs[i]` is the CRC-64 of piece `i`'s bytes as written. The file may
    /// be moved into place only when this succeeds.
    pub fn verify(&self, crcs: &[u64]) -> Result<(), Error> {
        if crcs.len() != self.pieces.len() {
            return Err(InvalidInput::Parameter {
                name: "crcs",
                reason: format!("{} checksums for {} pieces", crcs.len(), self.pieces.len()),
            }
            .into());
        }
        let Some(expected) = self.crc64 else {
            return Ok(());
        };
        // The CRC-64 of nothing is 0, so folding from 0 gives the CRC-64 of the concatenation.
        let combined = crcs
            .iter()
            .zip(&self.pieces)
            .fold(0u64, |acc, (crc, (_, len))| Crc64::combine(acc, *crc, *len));
        if combined != expected {
            return Err(Error::Integrity(IntegrityError::Crc64 {
                part: None,
                expected,
                actual: combined,
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(data: &[u8]) -> ObjectInfo {
        let r = http::Response::builder()
            .header("content-length", data.len().to_string())
            .header("etag", "\"e\"")
            .header("x-cos-hash-crc64ecma", Crc64::checksum(data).to_string())
            .body(bytes::Bytes::new())
            .unwrap();
        ObjectInfo::from_headers(&r)
    }

    #[test]
    fn small_objects_take_one_get() {
        let data = vec![7u8; 100];
        let p = DownloadPlan::new("k", &info(&data), &DownloadOptions::default()).unwrap();
        assert_eq!(p.pieces(), 1);
        assert_eq!(p.request(0).range_value(), None);
        p.verify(&[Crc64::checksum(&data)]).unwrap();
    }

    #[test]
    fn large_objects_take_ranges_and_combine_their_crcs() {
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
        let opts = DownloadOptions {
            threshold: 1000,
            range_size: 1000,
            concurrency: 8,
        };
        let p = DownloadPlan::new("k", &info(&data), &opts).unwrap();
        assert_eq!(p.pieces(), 3);
        assert_eq!(p.piece(2), (2000, 500));
        assert_eq!(p.concurrency(), 3);
        assert_eq!(p.request(1).range_value(), Some((1000, Some(1999))));
        let config = crate::ops::test_util::config();
        let req = crate::ops::Operation::to_request(&p.request(1), &config).unwrap();
        assert_eq!(req.headers()["if-match"], "\"e\"");
        assert_eq!(req.headers()["range"], "bytes=1000-1999");
        let crcs: Vec<u64> = (0..3)
            .map(|i| {
                let (o, l) = p.piece(i);
                Crc64::checksum(&data[o as usize..(o + l) as usize])
            })
            .collect();
        p.verify(&crcs).unwrap();
        let mut bad = crcs.clone();
        bad[1] ^= 1;
        assert!(matches!(
            p.verify(&bad),
            Err(Error::Integrity(IntegrityError::Crc64 { .. }))
        ));
        assert!(p.verify(&crcs[..2]).is_err());
    }

    #[test]
    fn empty_objects_and_bad_options() {
        let p = DownloadPlan::new("k", &info(b""), &DownloadOptions::default()).unwrap();
        p.verify(&[Crc64::checksum(b"")]).unwrap();
        let opts = DownloadOptions {
            range_size: 0,
            ..DownloadOptions::default()
        };
        assert!(DownloadPlan::new("k", &info(b"x"), &opts).is_err());
        assert!(DownloadPlan::new("", &info(b"x"), &DownloadOptions::default()).is_err());
    }
}
