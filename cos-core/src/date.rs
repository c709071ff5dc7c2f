//! The one calendar of cos-rs: HTTP dates (`Date` headers), ISO-8601 timestamps (POST policies, XML
//! listings), and the clock offset learned from a server's `Date`.
//!
//! Everything here is strict and checked: a date a server sends is accepted only in the fixed
//! IMF-fixdate form with every field in range, years `1970..=9999`, and no arithmetic can overflow or
//! panic whatever the input. A clock offset larger than [`MAX_CLOCK_OFFSET_SECS`] is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, InvalidInput};

/// The largest clock offset (server time minus local time, either sign) the SDK applies when signing:
/// one day. A `RequestTimeTooSkewed` answer whose `Date` implies more is reported as the error it is,
/// not followed; a [`crate::Config::clock_offset_secs`] outside `-86400..=86400` fails signing with
/// [`InvalidInput::Parameter`].
pub const MAX_CLOCK_OFFSET_SECS: i64 = 86_400;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Whether `y` is a Gregorian leap year.
fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1..=12) of year `y`; 0 for a month out of range.
fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Unix seconds of a civil date and time, or `None` when any field is out of range (year outside
/// `1970..=9999`, a day the month does not have, hour ≥ 24, minute ≥ 60, second > 60).
pub fn unix_secs_of(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64) -> Option<u64> {
    if !(1970..=9999).contains(&y)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm); every intermediate value is small for y <= 9999.
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01. Total for every `u64`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // `days` is at most u64::MAX / 86400 when it comes from seconds; saturate anyway.
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        yoe.saturating_add(era.saturating_mul(400))
            .saturating_add(u64::from(m <= 2)),
        m,
        d,
    )
}

/// Parses a fixed-width run of ASCII digits.
fn digits(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most 4 digits are ever asked for: no overflow.
    Some(b.iter().fold(0, |n, c| n * 10 + u64::from(c - b'0')))
}

/// Parses an HTTP date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110) into Unix
/// seconds. Strict: exactly that layout and width, a known weekday and month name, the day valid for the
/// month, hour < 24, minute < 60, second ≤ 60, year `1970..=9999`, and `GMT`. Anything else is `None`.
///
/// ```
/// use cos_core::date::parse_http_date;
/// assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
/// assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:9223372036854776808 GMT"), None);
/// assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
/// ```
pub fn parse_http_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    // "Www, DD Mon YYYY HH:MM:SS GMT" is 29 bytes.
    if b.len() != 29
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    if !WEEKDAYS.iter().any(|w| w.as_bytes() == &b[0..3]) {
        return None;
    }
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as u64 + 1;
    unix_secs_of(
        digits(&b[12..16])?,
        month,
        digits(&b[5..7])?,
        digits(&b[17..19])?,
        digits(&b[20..22])?,
        digits(&b[23..25])?,
    )
}

/// Formats Unix seconds as an HTTP date (`Thu, 01 Jan 1970 00:00:00 GMT`). Total: never panics (years past
/// 9999 print with more digits and do not parse back).
pub fn format_http_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[((days + 3) % 7) as usize];
    let (y, m, d) = civil_from_days(days);
    let month = MONTHS[(m - 1) as usize];
    format!("{weekday}, {d:02} {month} {y} {h:02}:{mi:02}:{s:02} GMT")
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SS.000Z`.
///
/// ```
/// assert_eq!(cos_core::date::format_iso8601(1_567_157_892), "2019-08-30T09:38:12.000Z");
/// ```
pub fn format_iso8601(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` into milliseconds since the Unix epoch, with the same ranges
/// as [`parse_http_date`]; the fraction is cut to milliseconds (at most 9 digits are accepted).
///
/// ```
/// use cos_core::date::parse_iso8601;
/// assert_eq!(parse_iso8601("2019-08-30T09:38:12.414Z"), Some(1_567_157_892_414));
/// assert_eq!(parse_iso8601("2019-08-30 09:38:12"), None);
/// assert_eq!(parse_iso8601("2019-02-30T09:38:12Z"), None);
/// ```
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let secs = unix_secs_of(
        digits(&b[0..4])?,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )?;
    let frac = match b[19..].strip_suffix(b"Z")? {
        b"" => 0,
        f => {
            let f = f.strip_prefix(b".")?;
            if f.is_empty() || f.len() > 9 {
                return None;
            }
            digits(f)?;
            let ms: Vec<u8> = f.iter().chain(b"000").take(3).copied().collect();
            digits(&ms)?
        }
    };
    Some(secs * 1000 + frac)
}

/// The clock offset a `RequestTimeTooSkewed` answer implies: the server's `Date` minus local time, in
/// seconds. `None` when there is no date, it does not parse strictly, the local clock is before 1970, or
/// the offset exceeds [`MAX_CLOCK_OFFSET_SECS`] either way.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use cos_core::date::skew_offset;
/// let local = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
/// assert_eq!(skew_offset(Some("Sun, 06 Nov 1994 08:49:37 GMT"), local), Some(30));
/// assert_eq!(skew_offset(Some("Thu, 01 Jan 1970 00:00:00 GMT"), local), None); // 24 years off
/// ```
pub fn skew_offset(response_date: Option<&str>, local: SystemTime) -> Option<i64> {
    let server = i64::try_from(parse_http_date(response_date?)?).ok()?;
    let local = i64::try_from(local.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    let offset = server.checked_sub(local)?;
    (offset.unsigned_abs() <= MAX_CLOCK_OFFSET_SECS as u64).then_some(offset)
}

/// The signing time after applying a clock offset. An offset outside
/// `-MAX_CLOCK_OFFSET_SECS..=MAX_CLOCK_OFFSET_SECS`, or a time that cannot be represented, is an
/// [`InvalidInput::Parameter`] error: nothing is signed with it.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use cos_core::date::corrected;
/// let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
/// assert_eq!(corrected(t, -100).unwrap(), UNIX_EPOCH + Duration::from_secs(999_900));
/// assert!(corrected(t, i64::MAX).is_err());
/// ```
pub fn corrected(now: SystemTime, offset_secs: i64) -> Result<SystemTime, Error> {
    let bad = |reason: String| {
        Error::InvalidInput(InvalidInput::Parameter {
            name: "clock_offset_secs",
            reason,
        })
    };
    if offset_secs.unsigned_abs() > MAX_CLOCK_OFFSET_SECS as u64 {
        return Err(bad(format!(
            "{offset_secs} s is beyond the ±{MAX_CLOCK_OFFSET_SECS} s a clock may be off"
        )));
    }
    let d = Duration::from_secs(offset_secs.unsigned_abs());
    let t = if offset_secs >= 0 {
        now.checked_add(d)
    } else {
        now.checked_sub(d)
    };
    t.ok_or_else(|| bad(format!("{offset_secs} s moves the clock out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_trip() {
        let s = "Sun, 06 Nov 1994 08:49:37 GMT";
        let secs = parse_http_date(s).unwrap();
        assert_eq!(secs, 784_111_777);
        assert_eq!(format_http_date(secs), s);
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
        assert_eq!(
            format_http_date(253_402_300_799),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        // A leap second is accepted as the next second.
        assert_eq!(
            parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT"),
            Some(1_483_228_800)
        );
        for secs in (0..253_402_300_799u64).step_by(7_919_993) {
            assert_eq!(
                parse_http_date(&format_http_date(secs)),
                Some(secs),
                "{secs}"
            );
            assert_eq!(
                parse_iso8601(&format_iso8601(secs)),
                Some(secs * 1000),
                "{secs}"
            );
        }
    }

    #[test]
    fn hostile_http_dates_are_refused() {
        for bad in [
            "Thu, 01 Jan 1970 00:00:9223372036854776808 GMT",
            "Thu, 01 Jan 1970 99999999999999999999:00:00 GMT",
            "Thu, 99999999999999999999 Jan 1970 00:00:00 GMT",
            "Sat, 01 Jan 0 00:00:00 GMT",
            "Sat, 01 Jan 0000 00:00:00 GMT",
            "Mon, 01 Jan 1900 00:00:00 GMT",
            "Mon, 01 Jan 10000 00:00:00 GMT",
            "Thu, 01 Jan 1970 24:00:00 GMT",
            "Thu, 01 Jan 1970 00:60:00 GMT",
            "Thu, 01 Jan 1970 00:00:61 GMT",
            "Thu, 00 Jan 1970 00:00:00 GMT",
            "Thu, 32 Jan 1970 00:00:00 GMT",
            "Thu, 30 Feb 2024 00:00:00 GMT",
            "Thu, 29 Feb 2023 00:00:00 GMT",
            "Thu, 31 Apr 2024 00:00:00 GMT",
            "Thu, 01 Foo 1970 00:00:00 GMT",
            "Xyz, 01 Jan 1970 00:00:00 GMT",
            "Thu, 01 Jan 1970 00:00:00 UTC",
            "Thu, 01 Jan 1970 00:00:00 +0000",
            "Thu, 1 Jan 1970 00:00:00 GMT",
            "Thu,  1 Jan 1970 00:00:00 GMT",
            "Thu, 01 Jan 1970 0:00:00 GMT",
            "Thu, 01 Jan 1970 +1:00:00 GMT",
            "Thu, 01 Jan 197\u{0}  00:00:00 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT ",
            "Thursday, 01-Jan-70 00:00:00 GMT",
            "Thu Jan  1 00:00:00 1970",
            "",
            "Thu, 01 Jan 1970 00:00:0é GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn skew_is_bounded_and_checked() {
        let local = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |secs: u64| format_http_date(secs);
        assert_eq!(skew_offset(Some(&at(1_700_003_600)), local), Some(3600));
        assert_eq!(skew_offset(Some(&at(1_699_996_400)), local), Some(-3600));
        assert_eq!(skew_offset(Some(&at(1_700_086_400)), local), Some(86_400));
        assert_eq!(skew_offset(Some(&at(1_700_086_401)), local), None);
        assert_eq!(skew_offset(Some(&at(1_699_913_599)), local), None);
        assert_eq!(skew_offset(Some(&at(253_402_300_799)), local), None);
        assert_eq!(skew_offset(None, local), None);
        assert_eq!(
            skew_offset(
                Some("Thu, 01 Jan 1970 00:00:9223372036854776808 GMT"),
                local
            ),
            None
        );
        // A local clock far in the future or before the epoch: no panic.
        assert_eq!(
            skew_offset(Some(&at(0)), UNIX_EPOCH - Duration::from_secs(5)),
            None
        );
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert_eq!(skew_offset(Some(&at(0)), far), None);
    }

    #[test]
    fn corrected_never_panics() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for offset in [i64::MIN, i64::MIN + 1, -86_401, 86_401, i64::MAX] {
            assert!(matches!(
                corrected(now, offset),
                Err(Error::InvalidInput(InvalidInput::Parameter {
                    name: "clock_offset_secs",
                    ..
                }))
            ));
        }
        assert_eq!(corrected(now, 0).unwrap(), now);
        assert_eq!(
            corrected(now, 86_400).unwrap(),
            now + Duration::from_secs(86_400)
        );
        // Before the epoch is representable on most platforms; either way, no panic.
        let _ = corrected(UNIX_EPOCH, -86_400);
    }

    #[test]
    fn format_is_total() {
        for secs in [0, 1, u64::MAX, u64::MAX / 86_400 * 86_400, 253_402_300_800] {
            let h = format_http_date(secs);
            let i = format_iso8601(secs);
            assert!(h.ends_with(" GMT") && i.ends_with('Z'), "{h} {i}");
        }
        assert_eq!(parse_http_date(&format_http_date(253_402_300_800)), None);
    }

    #[test]
    fn iso8601_strict() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_iso8601("2019-08-30T09:38:12.4Z"),
            Some(1_567_157_892_400)
        );
        for bad in [
            "2019-13-30T09:38:12Z",
            "2019-02-29T09:38:12Z",
            "1969-12-31T23:59:59Z",
            "2019-08-30T24:38:12Z",
            "2019-08-30T09:38:12.1234567890Z",
            "2019-08-30T09:38:12.Z",
            "+019-08-30T09:38:12Z",
            "2019-08-30T09:38:12",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    /// Many random and mutated strings: parsing never panics, and whatever parses formats back the same.
    #[test]
    fn random_strings_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Thu, 01 Jan 1970 00:00:9223372036854776808 GMT",
            "2019-08-30T09:38:12.414Z",
        ];
        let alphabet = b"0123456789 :,-.TZGMTJanFebSunMon\xff+";
        for i in 0..20_000 {
            let mut s: Vec<u8> = seeds[i % seeds.len()].as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let r = next();
                let pos = (r >> 8) as usize % (s.len() + 1);
                let c = alphabet[(r >> 32) as usize % alphabet.len()];
                match r % 3 {
                    0 if pos < s.len() => s[pos] = c,
                    1 => s.insert(pos, c),
                    _ if pos < s.len() => {
                        s.remove(pos);
                    }
                    _ => {}
                }
            }
            let s = String::from_utf8_lossy(&s);
            if let Some(secs) = parse_http_date(&s) {
                assert!(secs <= 253_402_300_800, "{s}");
            }
            if let Some(ms) = parse_iso8601(&s) {
                assert!(ms / 1000 <= 253_402_300_800, "{s}");
            }
            let _ = skew_offset(Some(&s), UNIX_EPOCH);
        }
    }

    /// Every separator of the fixed layouts is checked on its own.
    #[test]
    fn each_separator_of_the_layouts_is_required() {
        let good = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert!(parse_http_date(good).is_some());
        for at in [3, 4, 7, 11, 16, 19, 22, 25, 26, 27, 28] {
            let mut b = good.as_bytes().to_vec();
            b[at] = if b[at] == b'0' { b'1' } else { b'0' };
            let s = String::from_utf8(b).unwrap();
            assert_eq!(parse_http_date(&s), None, "{s}");
        }
        let good = "2019-08-30T09:38:12Z";
        assert_eq!(parse_iso8601(good), Some(1_567_157_892_000));
        for at in [4, 7, 10, 13, 16, 19] {
            let mut b = good.as_bytes().to_vec();
            b[at] = b'0';
            let s = String::from_utf8(b).unwrap();
            assert_eq!(parse_iso8601(&s), None, "{s}");
        }
        assert_eq!(parse_iso8601("2019-08-30T09:38:1Z"), None);
    }

    #[test]
    fn month_lengths_and_leap_years() {
        let at = |y: u64, m: u64, d: u64| unix_secs_of(y, m, d, 0, 0, 0);
        for (m, days) in [
            (1, 31),
            (2, 28),
            (3, 31),
            (4, 30),
            (5, 31),
            (6, 30),
            (7, 31),
            (8, 31),
            (9, 30),
            (10, 31),
            (11, 30),
            (12, 31),
        ] {
            assert!(at(2023, m, days).is_some(), "{m}");
            assert_eq!(at(2023, m, days + 1), None, "{m}");
            // The next day is the first of the next month.
            let next = if m == 12 {
                at(2024, 1, 1)
            } else {
                at(2023, m + 1, 1)
            };
            assert_eq!(at(2023, m, days).map(|s| s + 86_400), next, "{m}");
        }
        assert_eq!(at(2023, 0, 1), None);
        assert_eq!(at(2023, 13, 1), None);
        for (y, leap) in [
            (2000, true),
            (2024, true),
            (2100, false),
            (2023, false),
            (2400, true),
        ] {
            assert_eq!(at(y, 2, 29).is_some(), leap, "{y}");
        }
        assert_eq!(at(1969, 12, 31), None);
        assert_eq!(at(1970, 1, 1), Some(0));
        assert_eq!(at(9999, 12, 31), Some(253_402_214_400));
        assert_eq!(at(10_000, 1, 1), None);
        assert_eq!(unix_secs_of(1970, 1, 1, 23, 59, 60), Some(86_400));
        assert_eq!(parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT"), None);
        assert_eq!(
            parse_http_date("Wed, 01 Mar 2000 00:00:00 GMT"),
            Some(951_868_800)
        );
        assert_eq!(
            format_http_date(951_868_800),
            "Wed, 01 Mar 2000 00:00:00 GMT"
        );
        assert_eq!(format_iso8601(951_868_799), "2000-02-29T23:59:59.000Z");
    }

    #[test]
    fn iso8601_fractions_are_cut_to_milliseconds() {
        let base = 1_567_157_892_000;
        for (frac, ms) in [
            ("", 0),
            (".4", 400),
            (".41", 410),
            (".414", 414),
            (".123456789", 123),
        ] {
            let s = format!("2019-08-30T09:38:12{frac}Z");
            assert_eq!(parse_iso8601(&s), Some(base + ms), "{s}");
        }
        for bad in [".12345x", ".x", "4", ".4 ", "Z"] {
            let s = format!("2019-08-30T09:38:12{bad}Z");
            assert_eq!(parse_iso8601(&s), None, "{s}");
        }
    }

    #[test]
    fn a_negative_offset_moves_the_clock_back() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            corrected(now, -100).unwrap(),
            UNIX_EPOCH + Duration::from_secs(999_900)
        );
        assert_eq!(
            corrected(now, -86_400).unwrap(),
            UNIX_EPOCH + Duration::from_secs(913_600)
        );
        let local = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        assert_eq!(
            skew_offset(Some("Sun, 06 Nov 1994 08:49:37 GMT"), local),
            Some(30)
        );
    }
}
