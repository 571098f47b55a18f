//! HTTP-date (RFC 9110 §5.6.7) to Unix seconds.

#[cfg(feature = "obsolete-dates")]
use super::Cur;

use crate::write::same_bytes;

/// Three-letter day names (the full names extend them up to `day`).
const DAYS: &[u8; 21] = b"MonTueWedThuFriSatSun";

/// Month names, three letters each.
const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";

/// Days per month in a common year.
const MONTH_DAYS: [u8; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// The three formats after the day name, as patterns (`0` a digit, `_` a
/// digit or SP, `?` any byte: month names are checked against [`MONTHS`];
/// other bytes match themselves), with the offsets of day, month, year, the
/// year's digit count, and the time.
const FORMATS: &[(&[u8], [u8; 5])] = &[
    // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
    (b", 00 ??? 0000 00:00:00 GMT", [2, 5, 9, 4, 14]),
    // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
    #[cfg(feature = "obsolete-dates")]
    (b", 00-???-00 00:00:00 GMT", [2, 5, 9, 2, 12]),
    // asctime: `Sun Nov  6 08:49:37 1994`
    #[cfg(feature = "obsolete-dates")]
    (b" ??? _0 00:00:00 0000", [5, 1, 17, 4, 8]),
];

/// The year two-digit RFC 850 years are interpreted against (see
/// [`parse_http_date`]).
#[cfg(feature = "obsolete-dates")]
const PIVOT_YEAR: u32 = 2025;

/// The last second of 9999-12-31, the largest time an HTTP-date can express.
pub(crate) const MAX_TIME: u64 = 253_402_300_799;

/// Parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds.
///
/// Accepts the three formats recipients must accept, exactly as RFC 9110
/// spells them (case-sensitive, single spaces, `GMT`):
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
/// - asctime: `Sun Nov  6 08:49:37 1994`
///
/// The two obsolete formats need the `obsolete-dates` feature (on by
/// default); without it only IMF-fixdate, which every current server sends,
/// is accepted.
///
/// Fields are range-checked (day of month against the month and leap year,
/// hour ≤ 23, minute ≤ 59, second ≤ 60 for a leap second); years before 1970
/// give `None`. The day name must start with a real three-letter day name
/// (the RFC 850 form: followed by lower-case letters ending in `day`) but is
/// not checked against the date. Two-digit RFC 850 years follow RFC 9110's
/// "not more than 50 years in the future" rule evaluated at the year 2025
/// (this parser has no clock): `00`–`75` are 2000–2075, `76`–`99` are
/// 1976–1999.
pub fn parse_http_date(s: &[u8]) -> Option<u64> {
    let (name, rest) = s.split_at_checked(3)?;
    find3(DAYS, name)?;
    #[cfg(feature = "obsolete-dates")]
    let (long, rest) = {
        let mut c = Cur(rest);
        (c.take_while(|b| b.is_ascii_lowercase()), c.0)
    };
    let (_, at) = FORMATS.iter().find(|(pat, at)| {
        // RFC 850 (the 2-digit year) has the full day name, the others the
        // three-letter one.
        #[cfg(feature = "obsolete-dates")]
        {
            let day = long.get(long.len().wrapping_sub(3)..);
            if (at.get(3) == Some(&2) && !day.is_some_and(|d| same_bytes(d, b"day")))
                || (at.get(3) != Some(&2) && !long.is_empty())
            {
                return false;
            }
        }
        let _ = at;
        pat.len() == rest.len()
            && pat.iter().zip(rest).all(|(&p, &b)| match p {
                b'0' => b.is_ascii_digit(),
                #[cfg(feature = "obsolete-dates")]
                b'_' => b.is_ascii_digit() || b == b' ',
                b'?' => true,
                _ => p == b,
            })
    })?;
    let [day, month, year, ylen, time] = at.map(usize::from);
    let num = |i: usize, n: usize| {
        rest.iter().skip(i).take(n).fold(0u32, |v, &b| {
            // Digits (or the SP of asctime's day), checked by the pattern.
            v.wrapping_mul(10).wrapping_add(u32::from(b & 0x0f))
        })
    };
    let month = find3(MONTHS, rest.get(month..month.wrapping_add(3))?)?;
    #[cfg_attr(not(feature = "obsolete-dates"), allow(unused_mut))]
    let mut year = num(year, ylen);
    #[cfg(feature = "obsolete-dates")]
    if ylen == 2 {
        year = year.wrapping_add(2000);
        if year > PIVOT_YEAR.wrapping_add(50) {
            year = year.wrapping_sub(100);
        }
    }
    let (h, m, sec) = (
        num(time, 2),
        num(time.wrapping_add(3), 2),
        num(time.wrapping_add(6), 2),
    );
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // All fields are at most 2 digits: no overflow.
    let secs = h
        .wrapping_mul(3600)
        .wrapping_add(m.wrapping_mul(60))
        .wrapping_add(sec);
    unix(year, month, num(day, 2), secs)
}

/// The 1-based position of a three-letter `name` in `table`.
fn find3(table: &[u8], name: &[u8]) -> Option<u32> {
    let i = table.chunks_exact(3).position(|x| same_bytes(x, name))?;
    u32::try_from(i).ok()?.checked_add(1)
}

/// Unix seconds of a civil date (Hinnant's days-from-civil), after checking
/// the year (1970–9999), month and day. 32-bit arithmetic (no 64-bit division
/// on Cortex-M); every intermediate value is small and non-negative once the
/// ranges hold, so the wrapping operations never wrap.
fn unix(year: u32, month: u32, day: u32, secs: u32) -> Option<u64> {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let dim = MONTH_DAYS.get(usize::try_from(month.checked_sub(1)?).ok()?)?;
    let dim = u32::from(*dim).wrapping_add(u32::from(leap && month == 2));
    if !(1970..=9999).contains(&year) || day == 0 || day > dim {
        return None;
    }
    // Days since 0000-03-01 of the March-based year, minus those of 1970-01-01
    // (Hinnant's days-from-civil with the 400-year eras folded in).
    let y = year.wrapping_sub(u32::from(month <= 2));
    let mp = month.wrapping_add(9) % 12;
    let days = y
        .wrapping_mul(365)
        .wrapping_add(y / 4)
        .wrapping_sub(y / 100)
        .wrapping_add(y / 400)
        .wrapping_add(mp.wrapping_mul(153).wrapping_add(2) / 5)
        .wrapping_add(day)
        .wrapping_sub(719_469);
    Some(
        u64::from(days)
            .wrapping_mul(86_400)
            .wrapping_add(u64::from(secs)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    fn d(s: &str) -> Option<u64> {
        parse_http_date(s.as_bytes())
    }

    #[test]
    fn http_date_rfc9110_examples() {
        assert_eq!(d("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        // The obsolete formats need the feature.
        let obsolete = cfg!(feature = "obsolete-dates").then_some(784_111_777);
        assert_eq!(d("Sunday, 06-Nov-94 08:49:37 GMT"), obsolete);
        assert_eq!(d("Sun Nov  6 08:49:37 1994"), obsolete);
    }

    #[test]
    fn http_date_known_values() {
        assert_eq!(d("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(d("Sat, 01 Jan 2022 00:00:00 GMT"), Some(1_640_995_200));
        assert_eq!(d("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(d("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_TIME));
        assert_eq!(d("Sat, 01 Mar 2025 00:00:00 GMT"), Some(1_740_787_200));
        // Leap second is accepted (it reads as the next minute's :00).
        assert_eq!(d("Sat, 31 Dec 2016 23:59:60 GMT"), Some(1_483_228_800));
        #[cfg(feature = "obsolete-dates")]
        assert_eq!(d("Sat Jan  1 00:00:00 2022"), Some(1_640_995_200));
        #[cfg(feature = "obsolete-dates")]
        assert_eq!(d("Sat Jan 01 00:00:00 2022"), Some(1_640_995_200));
    }

    #[test]
    #[cfg(feature = "obsolete-dates")]
    fn http_date_two_digit_years() {
        assert_eq!(d("Saturday, 01-Jan-22 00:00:00 GMT"), Some(1_640_995_200));
        let y75 = d("Monday, 01-Jan-75 00:00:00 GMT").unwrap();
        assert_eq!(y75, d("Mon, 01 Jan 2075 00:00:00 GMT").unwrap());
        let y76 = d("Monday, 01-Jan-76 00:00:00 GMT").unwrap();
        assert_eq!(y76, d("Mon, 01 Jan 1976 00:00:00 GMT").unwrap());
    }

    #[test]
    fn http_date_matches_brute_force_day_count() {
        // Walk every day from 1970 to 2100 and compare with a naive count.
        let mut days = 0u64;
        for year in 1970u32..2100 {
            for month in 1u32..=12 {
                let leap = year.is_multiple_of(4)
                    && (!year.is_multiple_of(100) || year.is_multiple_of(400));
                let n = u32::from(MONTH_DAYS[month as usize - 1]) + u32::from(leap && month == 2);
                // Under Miri (tests/miri.sh) every 13th year (leap and
                // common ones) and 2000.
                if cfg!(miri) && year % 13 != 0 && year != 2000 {
                    days += u64::from(n);
                    continue;
                }
                for day in 1..=n {
                    assert_eq!(unix(year, month, day, 0), Some(days * 86_400));
                    days += 1;
                }
                assert_eq!(unix(year, month, n + 1, 0), None);
            }
        }
    }

    #[test]
    fn http_date_rejects() {
        for s in [
            "",
            "Sun",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            " Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Su, 06 Nov 1994 08:49:37 GMT",
            "Sundays, 06 Nov 1994 08:49:37 GMT",
            "Sunny, 06 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 29 Feb 2023 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 23:60:00 GMT",
            "Sun, 06 Nov 1994 23:59:61 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 06 Nov 0000 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov  6 08:49:37 1994 ",
            "Sun Nov  6 08:49:37 94",
            "Sunday Nov  6 08:49:37 1994",
            "Sun, 06 Nox 1994 08:49:37 GMT",
            "Sun, 06 No",
            "Sun, 0",
            "120",
            "Sun, 06 Nov 1994 08:49:37 GMT\0",
            "Sun, \u{ff}6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(d(s), None, "{s:?}");
        }
        // Every prefix of a valid date is invalid.
        let full = "Sun, 06 Nov 1994 08:49:37 GMT";
        for i in 0..full.len() {
            assert_eq!(d(&full[..i]), None);
        }
    }
}
