//! The resumable state of a multipart upload.
//!
//! A [`Checkpoint`] names the upload (bucket, key, upload id), its plan (part size, total length), the source it
//! was cut from (a [`SourceFingerprint`]: size and modification time, measured by the driver) and the parts
//! COS has confirmed. The core only builds and (de)serializes it through serde; drivers store it as JSON and
//! must write it atomically (temporary file + rename), because a torn checkpoint is worse than none.
//!
//! When the source changed since the checkpoint was written ([`Checkpoint::matches`] is false), the parts
//! on the server are stale: [`MultipartUpload::resume`](super::MultipartUpload::resume) then aborts that
//! upload and starts a new one.
//!
//! ```
//! use cos_core::upload::{Checkpoint, SourceFingerprint};
//! let fp = SourceFingerprint { size: 3 << 20, mtime_nanos: Some(1_700_000_000_000_000_000) };
//! let cp = Checkpoint::new("examplebucket-1250000000", "big.bin", "up-1", 1 << 20, fp);
//! assert!(cp.matches(&fp));
//! assert!(!cp.matches(&SourceFingerprint { mtime_nanos: Some(1), ..fp }));
//! assert_eq!(cp.validate()?.part_count(), 3);
//! # Ok::<(), cos_core::InvalidInput>(())
//! ```

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::plan::PartPlan;
use crate::error::{Error, InvalidInput};
use crate::task::Now;

/// The checkpoint format this version writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Identifies the content of a source cheaply: its size and modification time. The driver measures it (e.g.
/// from file metadata) when it starts and again when it resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceFingerprint {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch (negative before it), when known.
    pub mtime_nanos: Option<i64>,
}

impl SourceFingerprint {
    /// A fingerprint from a size and an optional modification time.
    pub fn new(size: u64, modified: Option<SystemTime>) -> Self {
        let mtime_nanos = modified.map(|t| match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos())
                .map(|n| -n)
                .unwrap_or(i64::MIN),
        });
        SourceFingerprint { size, mtime_nanos }
    }
}

/// A part COS has confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedPart {
    /// Part number, 1-based.
    pub number: u32,
    /// The ETag COS returned, quoted.
    pub etag: String,
    /// CRC-64 of the part's bytes, when known (needed for the end-to-end CRC check).
    pub crc64: Option<u64>,
    /// Its length in bytes.
    pub len: u64,
}

/// The resumable state of a multipart upload (serde; versioned by [`Checkpoint::version`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version, [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The multipart upload id.
    pub upload_id: String,
    /// The plan's part size.
    pub part_size: u64,
    /// The object length.
    pub total_len: u64,
    /// The source the parts were read from.
    pub source: SourceFingerprint,
    /// Parts COS confirmed, in ascending order.
    pub parts: Vec<FinishedPart>,
    /// Who is uploading with this checkpoint, renewed while the upload runs (absent in checkpoints written
    /// before leases existed, and when the task was given no owner). See [`LeaseCheck`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// How often a running upload renews the [`Lease`] in its checkpoint, even when no part finishes.
pub const LEASE_RENEW: Duration = Duration::from_secs(1);
/// A lease not renewed for this long is dead: its upload was killed (or hangs), and another run may take
/// the checkpoint over.
pub const LEASE_TTL: Duration = Duration::from_secs(4);

/// The mark a running upload keeps in its checkpoint: who it is and when it last renewed the checkpoint.
///
/// Two processes must never continue the same upload at once: each would send every remaining part, one
/// would Complete while the other's parts are still in flight, and those would then fail with
/// `NoSuchUpload`. That is what happens when `kill -9` hits `cargo run` (or a shell) rather than the
/// upload itself: the upload lives on, orphaned, and a rerun with the same checkpoint races it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owner, as the driver named it (e.g. `pid 4242 run 1f2e…`).
    pub owner: String,
    /// Wall-clock time of the last renewal, in milliseconds since the Unix epoch.
    pub renewed_unix_ms: u64,
}

/// What a driver does next before resuming from a checkpoint: see [`LeaseCheck`].
#[derive(Debug)]
#[must_use]
pub enum LeaseDecision {
    /// No live upload holds the checkpoint: resume from it (or start without one when there is none).
    Proceed,
    /// Another upload renewed the checkpoint recently: read the checkpoint again at this time and pass it
    /// to [`LeaseCheck::check`] again.
    ReloadAt(Instant),
    /// Another upload is alive (it renewed the lease while we waited): fail with this error, sending
    /// nothing.
    Busy(Error),
}

/// Decides whether a checkpoint may be taken over, sans-IO: the driver loads the checkpoint, asks
/// [`check`](Self::check), and on [`LeaseDecision::ReloadAt`] waits, loads it again and asks again.
///
/// A lease renewed less than [`LEASE_TTL`] ago by another owner is waited out once: if it is renewed
/// meanwhile, its upload is alive and the check ends with [`LeaseDecision::Busy`]; if not, its upload is
/// dead (killed) and the checkpoint is taken over. A checkpoint without a lease, with our own lease, or
/// that disappeared while we waited (the other upload ended) is used at once.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use cos_core::task::Now;
/// use cos_core::upload::checkpoint::{Lease, LeaseCheck, LeaseDecision, LEASE_TTL};
/// use cos_core::upload::{Checkpoint, SourceFingerprint};
/// let now = Now { instant: Instant::now(), system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000) };
/// let mut cp = Checkpoint::new("examplebucket-1250000000", "a.bin", "up-1", 1 << 20,
///     SourceFingerprint { size: 3 << 20, mtime_nanos: None });
/// cp.lease = Some(Lease { owner: "pid 1".into(), renewed_unix_ms: 999_500 });
/// let mut check = LeaseCheck::new("pid 2");
/// let LeaseDecision::ReloadAt(at) = check.check(Some(&cp), now) else { panic!() };
/// assert_eq!(at, now.instant + LEASE_TTL - Duration::from_millis(500));
/// cp.lease.as_mut().unwrap().renewed_unix_ms += 1_000; // the other upload is alive
/// assert!(matches!(check.check(Some(&cp), now.advance(LEASE_TTL)), LeaseDecision::Busy(_)));
/// ```
#[derive(Clone, Debug)]
pub struct LeaseCheck {
    owner: String,
    seen: Option<Lease>,
}

impl LeaseCheck {
    /// A check for the upload that will run as `owner`.
    pub fn new(owner: impl Into<String>) -> LeaseCheck {
        LeaseCheck {
            owner: owner.into(),
            seen: None,
        }
    }

    /// Decides on the checkpoint as it was just read (`None`: there is none).
    pub fn check(&mut self, checkpoint: Option<&Checkpoint>, now: Now) -> LeaseDecision {
        let Some(lease) = checkpoint.and_then(|c| c.lease.as_ref()) else {
            return LeaseDecision::Proceed;
        };
        if lease.owner == self.owner {
            return LeaseDecision::Proceed;
        }
        if let Some(seen) = &self.seen {
            if seen == lease {
                return LeaseDecision::Proceed; // not renewed for a whole TTL: its upload is dead
            }
            return LeaseDecision::Busy(
                InvalidInput::Checkpoint(format!(
                    "another upload ({}) is still running with this checkpoint (it renewed it while we \
                     waited): wait for that upload to end or stop it, then run again",
                    lease.owner
                ))
                .into(),
            );
        }
        let now_ms = unix_ms(now.system);
        let age = Duration::from_millis(now_ms.saturating_sub(lease.renewed_unix_ms));
        if age >= LEASE_TTL {
            return LeaseDecision::Proceed;
        }
        self.seen = Some(lease.clone());
        LeaseDecision::ReloadAt(now.instant + (LEASE_TTL - age))
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Checkpoint {
    /// A checkpoint with no finished parts yet.
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<String>,
        upload_id: impl Into<String>,
        part_size: u64,
        source: SourceFingerprint,
    ) -> Self {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            bucket: bucket.into(),
            key: key.into(),
            upload_id: upload_id.into(),
            part_size,
            total_len: source.size,
            source,
            parts: Vec::new(),
            lease: None,
        }
    }

    /// Checks that this checkpoint records an upload of `key` in `bucket`: resuming another object's
    /// upload would write the wrong object.
    pub fn ensure_for(&self, bucket: &str, key: &str) -> Result<(), crate::error::InvalidInput> {
        if self.bucket != bucket || self.key != key {
            return Err(crate::error::InvalidInput::Checkpoint(format!(
                "it records an upload of {}/{}, not {bucket}/{key}",
                self.bucket, self.key
            )));
        }
        Ok(())
    }

    /// Whether the source still looks like the one the checkpoint was made from (same size and modification
    /// time). If not, the uploaded parts are stale and the upload must start over.
    pub fn matches(&self, source: &SourceFingerprint) -> bool {
        self.source == *source && self.total_len == source.size
    }

    /// Checks that the checkpoint is usable: a known version, a valid plan, and finished parts that are
    /// within the plan, ascending, unique and of the planned length. Returns the plan.
    pub fn validate(&self) -> Result<PartPlan, InvalidInput> {
        let bad = |m: String| InvalidInput::Checkpoint(m);
        if self.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "version {} is not supported (expected {CHECKPOINT_VERSION})",
                self.version
            )));
        }
        if self.upload_id.is_empty() {
            return Err(bad("the upload id is empty".into()));
        }
        crate::config::validate_key(&self.key)?;
        let plan = PartPlan::new(self.total_len, self.part_size)?;
        let mut last = 0;
        for p in &self.parts {
            if p.number <= last {
                return Err(bad(format!(
                    "part {} is out of order or repeated",
                    p.number
                )));
            }
            last = p.number;
            match plan.part(p.number) {
                Some(range) if range.len == p.len => {}
                Some(range) => {
                    return Err(bad(format!(
                        "part {} has length {}, the plan says {}",
                        p.number, p.len, range.len
                    )))
                }
                None => {
                    return Err(bad(format!(
                        "part {} is beyond the plan's {} parts",
                        p.number,
                        plan.part_count()
                    )))
                }
            }
        }
        Ok(plan)
    }

    /// The request that aborts this checkpoint's upload (after a cancel, or when the file is now sent
    /// with a single PUT); an upload that is already gone counts as aborted.
    pub fn abort_upload(&self) -> crate::ops::AbortMultipartUpload {
        crate::ops::AbortMultipartUpload::new(&self.key, &self.upload_id).missing_ok()
    }

    /// Bytes confirmed so far.
    pub fn loaded(&self) -> u64 {
        self.parts.iter().map(|p| p.len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::plan::MIB;

    fn cp() -> Checkpoint {
        let fp = SourceFingerprint {
            size: 5 * MIB + 10,
            mtime_nanos: Some(42),
        };
        let mut cp = Checkpoint::new("examplebucket-1250000000", "a/b.bin", "id-1", 2 * MIB, fp);
        cp.parts.push(FinishedPart {
            number: 1,
            etag: "\"aa\"".into(),
            crc64: Some(7),
            len: 2 * MIB,
        });
        cp.parts.push(FinishedPart {
            number: 3,
            etag: "\"bb\"".into(),
            crc64: None,
            len: MIB + 10,
        });
        cp
    }

    #[test]
    fn json_round_trip() {
        let cp = cp();
        let json = serde_json::to_string_pretty(&cp).unwrap();
        assert!(json.contains("\"version\": 1"), "{json}");
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cp);
        assert_eq!(back.validate().unwrap().part_count(), 3);
        assert_eq!(back.loaded(), 3 * MIB + 10);
    }

    #[test]
    fn validation() {
        let mut c = cp();
        c.version = 2;
        assert!(matches!(c.validate(), Err(InvalidInput::Checkpoint(_))));
        let mut c = cp();
        c.parts[1].len = 1;
        assert!(c.validate().is_err());
        let mut c = cp();
        c.parts[1].number = 4;
        assert!(c.validate().is_err());
        let mut c = cp();
        c.parts[1].number = 1;
        assert!(c.validate().is_err());
        let mut c = cp();
        c.part_size = 1;
        assert!(c.validate().is_err());
        let mut c = cp();
        c.upload_id.clear();
        assert!(c.validate().is_err());
    }

    #[test]
    fn fingerprints() {
        let c = cp();
        assert!(c.matches(&c.source));
        assert!(!c.matches(&SourceFingerprint {
            size: 1,
            ..c.source
        }));
        assert!(!c.matches(&SourceFingerprint {
            mtime_nanos: None,
            ..c.source
        }));
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1234);
        assert_eq!(SourceFingerprint::new(3, Some(t)).mtime_nanos, Some(1234));
        let before = SystemTime::UNIX_EPOCH - std::time::Duration::from_nanos(5);
        assert_eq!(
            SourceFingerprint::new(3, Some(before)).mtime_nanos,
            Some(-5)
        );
    }
}
