//! Part planning: how an object of a known length is cut into parts, and when a single PUT is used instead.
//!
//! # The rule
//!
//! * The default part size is 1 MiB, as in the official SDKs.
//! * For large objects it grows to `ceil(len / 10,000)` rounded up to a whole MiB, so that no upload needs more
//!   than 10,000 parts (COS's limit).
//! * A part is never smaller than 1 MiB (except the last one) nor larger than 5 GiB.
//! * An explicit part size overrides the default; it is rejected if it is outside `1 MiB..=5 GiB` or if it would
//!   need more than 10,000 parts.
//! * Parts are numbered from 1; their ranges cover `[0, len)` exactly once; only the last may be short. An
//!   empty object is planned as one empty part (COS accepts a short last part), although
//!   [`choose_upload`] sends empty and small objects with a single PUT.
//!
//! ```
//! use cos_core::upload::plan::{PartPlan, MIB};
//! let plan = PartPlan::auto(25 * MIB + 3)?;
//! assert_eq!(plan.part_size(), MIB);
//! assert_eq!(plan.part_count(), 26);
//! let last = plan.part(26).unwrap();
//! assert_eq!((last.offset, last.len), (25 * MIB, 3));
//!
//! // 100 GiB needs bigger parts: ceil(100 GiB / 10,000) rounded up to a whole MiB = 11 MiB.
//! assert_eq!(PartPlan::auto(100 << 30)?.part_size(), 11 * MIB);
//! # Ok::<(), cos_core::InvalidInput>(())
//! ```

use crate::error::InvalidInput;

/// One mebibyte.
pub const MIB: u64 = 1 << 20;
/// The smallest part COS accepts (except the last part of an upload).
pub const MIN_PART_SIZE: u64 = MIB;
/// The largest part COS accepts (5 GiB).
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// The most parts one upload may have.
pub const MAX_PARTS: u32 = 10_000;
/// The part size used when none is given and the object is small enough (1 MiB, as the official SDKs).
pub const DEFAULT_PART_SIZE: u64 = MIB;
/// Objects up to this size are sent with a single PUT by [`choose_upload`] (1 MiB, as the official SDKs).
pub const DEFAULT_SINGLE_PUT_THRESHOLD: u64 = MIB;
/// The largest object a multipart upload can carry: 10,000 parts of 5 GiB.
pub const MAX_OBJECT_SIZE: u64 = MAX_PART_SIZE * MAX_PARTS as u64;

/// One part of a plan: its number and byte range in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartRange {
    /// Part number, 1-based.
    pub number: u32,
    /// Offset of its first byte in the source.
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

/// How an object of known length is cut into parts. See the [module docs](self) for the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    total_len: u64,
    part_size: u64,
    count: u32,
}

/// The part size the rule picks for an object of `total_len` bytes: 1 MiB, or `ceil(total_len / 10,000)`
/// rounded up to a whole MiB when that is larger, capped at 5 GiB.
pub fn auto_part_size(total_len: u64) -> u64 {
    let needed = total_len.div_ceil(MAX_PARTS as u64);
    let rounded = needed.div_ceil(MIB).saturating_mul(MIB);
    rounded.clamp(DEFAULT_PART_SIZE, MAX_PART_SIZE)
}

impl PartPlan {
    /// The plan with the automatic part size ([`auto_part_size`]). Fails only for objects larger than
    /// [`MAX_OBJECT_SIZE`].
    pub fn auto(total_len: u64) -> Result<PartPlan, InvalidInput> {
        PartPlan::new(total_len, auto_part_size(total_len))
    }

    /// The plan with an explicit part size, which must be in `1 MiB..=5 GiB` and give at most 10,000 parts.
    ///
    /// ```
    /// use cos_core::upload::plan::{PartPlan, MIB};
    /// assert_eq!(PartPlan::new(10 * MIB, 4 * MIB)?.part_count(), 3);
    /// assert!(PartPlan::new(10 * MIB, 1000).is_err());           // under 1 MiB
    /// assert!(PartPlan::new(20_000 * MIB, MIB).is_err());        // 20,000 parts
    /// # Ok::<(), cos_core::InvalidInput>(())
    /// ```
    pub fn new(total_len: u64, part_size: u64) -> Result<PartPlan, InvalidInput> {
        if total_len > MAX_OBJECT_SIZE {
            return Err(InvalidInput::Size {
                what: "multipart object",
                size: total_len,
                limit: "at most 10,000 parts of 5 GiB",
            });
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(InvalidInput::Size {
                what: "part",
                size: part_size,
                limit: "a part size must be in 1 MiB..=5 GiB",
            });
        }
        let count = total_len.div_ceil(part_size).max(1);
        if count > MAX_PARTS as u64 {
            return Err(InvalidInput::Size {
                what: "part",
                size: part_size,
                limit: "too small for this object: it would need more than 10,000 parts",
            });
        }
        Ok(PartPlan {
            total_len,
            part_size,
            count: count as u32,
        })
    }

    /// The plan with `part_size` when given, else the automatic one.
    pub fn with_part_size(
        total_len: u64,
        part_size: Option<u64>,
    ) -> Result<PartPlan, InvalidInput> {
        match part_size {
            Some(size) => PartPlan::new(total_len, size),
            None => PartPlan::auto(total_len),
        }
    }

    /// The object length.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// The size of every part but the last.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The number of parts (at least 1).
    pub fn part_count(&self) -> u32 {
        self.count
    }

    /// Part `number` (1-based), or `None` outside `1..=part_count()`.
    pub fn part(&self, number: u32) -> Option<PartRange> {
        if number == 0 || number > self.count {
            return None;
        }
        let offset = (number as u64 - 1) * self.part_size;
        let len = self.part_size.min(self.total_len - offset);
        Some(PartRange {
            number,
            offset,
            len,
        })
    }

    /// All parts in order.
    pub fn parts(&self) -> impl Iterator<Item = PartRange> + '_ {
        (1..=self.count).filter_map(|n| self.part(n))
    }
}

/// How [`choose_upload`] decided to send an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMethod {
    /// One PUT Object request.
    SinglePut,
    /// A multipart upload with this plan.
    Multipart(PartPlan),
}

/// The `upload_file` decision: a single PUT when `total_len <= threshold` (default
/// [`DEFAULT_SINGLE_PUT_THRESHOLD`]), else a multipart upload with `part_size` or the automatic size.
///
/// A threshold above 5 GiB is capped at 5 GiB (the largest single PUT).
///
/// ```
/// use cos_core::upload::plan::{choose_upload, UploadMethod, MIB};
/// assert_eq!(choose_upload(MIB, None, None)?, UploadMethod::SinglePut);
/// assert!(matches!(choose_upload(MIB + 1, None, None)?, UploadMethod::Multipart(p) if p.part_count() == 2));
/// # Ok::<(), cos_core::InvalidInput>(())
/// ```
pub fn choose_upload(
    total_len: u64,
    threshold: Option<u64>,
    part_size: Option<u64>,
) -> Result<UploadMethod, InvalidInput> {
    let threshold = threshold
        .unwrap_or(DEFAULT_SINGLE_PUT_THRESHOLD)
        .min(MAX_PART_SIZE); // the largest single PUT is also 5 GiB
    if total_len <= threshold {
        Ok(UploadMethod::SinglePut)
    } else {
        PartPlan::with_part_size(total_len, part_size).map(UploadMethod::Multipart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Rng;

    /// Sizes around every interesting boundary plus a seeded random spread up to the maximum.
    fn sizes() -> Vec<u64> {
        let mut v = vec![
            0,
            1,
            MIB - 1,
            MIB,
            MIB + 1,
            2 * MIB,
            10_000 * MIB,
            10_000 * MIB + 1,
        ];
        for k in [1u64, 2, 3, 7, 512, 4096, 5120] {
            let base = k * MIB * 10_000;
            v.extend([base - 1, base, base + 1]);
        }
        v.extend([MAX_OBJECT_SIZE - 1, MAX_OBJECT_SIZE]);
        let mut rng = Rng::new(42);
        for _ in 0..2000 {
            let bits = rng.next() % 53; // spread over magnitudes
            v.push(rng.next() % (1u64 << bits).max(1));
        }
        v
    }

    fn check(plan: &PartPlan) {
        let mut next = 0;
        let mut count = 0;
        for (i, p) in plan.parts().enumerate() {
            assert_eq!(p.number as usize, i + 1);
            assert_eq!(p.offset, next, "no gap, no overlap");
            assert!(p.len <= plan.part_size());
            if p.number < plan.part_count() {
                assert_eq!(p.len, plan.part_size(), "only the last part may be short");
            }
            next += p.len;
            count += 1;
        }
        assert_eq!(next, plan.total_len(), "covers [0, len)");
        assert_eq!(count, plan.part_count());
        assert!(plan.part_count() >= 1 && plan.part_count() <= MAX_PARTS);
        assert!(plan.part(0).is_none() && plan.part(plan.part_count() + 1).is_none());
    }

    #[test]
    fn auto_plans_cover_every_size() {
        for len in sizes() {
            if len > MAX_OBJECT_SIZE {
                assert!(PartPlan::auto(len).is_err());
                continue;
            }
            let plan = PartPlan::auto(len).unwrap();
            check(&plan);
            let size = plan.part_size();
            assert_eq!(size % MIB, 0, "whole MiB");
            assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size));
            // Smallest whole-MiB size (at least 1 MiB) that fits in 10,000 parts.
            if size > MIB {
                assert!(
                    (size - MIB) * (MAX_PARTS as u64) < len,
                    "{len}: {size} is not minimal"
                );
            }
        }
    }

    #[test]
    fn explicit_part_sizes() {
        let mut rng = Rng::new(7);
        for len in sizes().into_iter().step_by(7) {
            let size = MIN_PART_SIZE + rng.next() % (64 * MIB);
            match PartPlan::new(len, size) {
                Ok(plan) => {
                    assert!(len.div_ceil(size) <= MAX_PARTS as u64);
                    assert_eq!(plan.part_size(), size);
                    check(&plan);
                }
                Err(InvalidInput::Size { .. }) => assert!(len.div_ceil(size) > MAX_PARTS as u64),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(PartPlan::new(10, MIB - 1).is_err());
        assert!(PartPlan::new(10, MAX_PART_SIZE + 1).is_err());
        assert!(PartPlan::new(10_000 * MIB, MIB).is_ok());
        assert!(PartPlan::new(10_000 * MIB + 1, MIB).is_err());
        assert!(PartPlan::auto(MAX_OBJECT_SIZE + 1).is_err());
    }

    #[test]
    fn single_put_threshold() {
        assert_eq!(
            choose_upload(0, None, None).unwrap(),
            UploadMethod::SinglePut
        );
        assert_eq!(
            choose_upload(MIB, None, None).unwrap(),
            UploadMethod::SinglePut
        );
        assert!(matches!(
            choose_upload(MIB + 1, None, None).unwrap(),
            UploadMethod::Multipart(_)
        ));
        assert_eq!(
            choose_upload(10 * MIB, Some(10 * MIB), None).unwrap(),
            UploadMethod::SinglePut
        );
        match choose_upload(10 * MIB, Some(0), Some(4 * MIB)).unwrap() {
            UploadMethod::Multipart(p) => assert_eq!(p.part_count(), 3),
            m => panic!("{m:?}"),
        }
        assert!(matches!(
            choose_upload(6 << 30, Some(u64::MAX), None).unwrap(),
            UploadMethod::Multipart(_)
        ));
        assert!(choose_upload(10 * MIB, Some(0), Some(1)).is_err());
    }
}
