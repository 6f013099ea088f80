//! RFC 3339 times as Alertmanager writes and reads them (Go's `time.Time` JSON form),
//! without a date-time dependency. Go's zero time, "0001-01-01T00:00:00Z", means "not
//! set" and reads as `None`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 0001-01-01 to 1970-01-01: Go's zero time.
const GO_ZERO: i64 = -62_135_596_800;

/// Parses `2025-01-02T03:04:05.123456789Z` or `...+02:00`; `Ok(None)` for Go's zero
/// time. The error says what was expected (and quotes at most the first
/// [`QUOTED_CHARS`] characters of the text).
///
/// The text is read as bytes after checking it is ASCII, as every RFC 3339 time is: no
/// index below can fall inside a multibyte character.
pub fn parse(text: &str) -> Result<Option<SystemTime>, String> {
    let bad = || {
        let quoted: String = text.chars().take(QUOTED_CHARS).collect();
        let more = if quoted.len() < text.len() { "..." } else { "" };
        format!("{quoted:?}{more} is not an RFC 3339 time such as \"2025-01-02T03:04:05Z\"")
    };
    if !text.is_ascii() {
        return Err(bad());
    }
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let num = |digits: &[u8]| -> Result<i64, String> { digits_value(digits).ok_or_else(bad) };
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &b[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        let value = u32::try_from(num(&frac[..digits])?).map_err(|_| bad())?;
        nanos = value * 10u32.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let sign = if *sign == b'+' { 1 } else { -1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset;
    if secs == GO_ZERO && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(at(secs, nanos)))
}

/// How much of a bad time an error message quotes.
pub const QUOTED_CHARS: usize = 40;

/// The value of a run of ASCII digits (at most 9 of them); `None` for anything else.
fn digits_value(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
    )
}

/// `2025-01-02T03:04:05.5Z`: UTC, fraction only when there is one.
pub fn format(time: SystemTime) -> String {
    let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let whole = d.as_secs() as i64 + i64::from(d.subsec_nanos() > 0);
            let nanos = (1_000_000_000 - d.subsec_nanos()) % 1_000_000_000;
            (-whole, nanos)
        }
    };
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn at(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `#[serde(with = "rfc3339::required")]` for a `SystemTime`.
pub mod required {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text)
            .map_err(serde::de::Error::custom)?
            .ok_or_else(|| serde::de::Error::custom("a time is required, not Go's zero time"))
    }
}

/// `#[serde(with = "rfc3339::optional")]` for an `Option<SystemTime>`: `None` is
/// written as Go's zero time, as Alertmanager does.
pub mod optional {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format(*t)),
            None => s.serialize_str("0001-01-01T00:00:00Z"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => super::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// 9999-12-31T23:59:59Z: the last second a four-digit year can write.
    const LAST: i64 = 253_402_300_799;

    #[test]
    fn reads_what_alertmanager_writes() {
        let t = parse("2025-01-02T03:04:05.5Z").unwrap().unwrap();
        assert_eq!(format(t), "2025-01-02T03:04:05.5Z");
        let shifted = parse("2025-01-02T05:04:05.5+02:00").unwrap().unwrap();
        assert_eq!(shifted, t);
        assert_eq!(parse("0001-01-01T00:00:00Z"), Ok(None));
    }

    #[test]
    fn a_multibyte_character_is_an_error_not_a_panic() {
        for text in [
            "2025-01-02T03:04:0éZ",
            "2025-01-02T03:04:05.é",
            "2025-01-02T03:04:05+0é:00",
            "é025-01-02T03:04:05Z",
            "2025-01-02T03:04:05.000000000éZ",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("is not an RFC 3339 time"), "{e}");
        }
    }

    #[test]
    fn an_error_quotes_a_long_text_only_in_part() {
        let long = "9".repeat(100_000);
        let e = parse(&long).unwrap_err();
        assert!(e.len() < 200, "{}", e.len());
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(2048))]

        /// Any text: an answer, never a panic; what parses formats to a text that parses
        /// to the same time.
        #[test]
        fn fuzz_rfc3339_any_text(text in "\\PC{0,40}") {
            if let Ok(Some(t)) = parse(&text) {
                let secs = match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_secs() as i64,
                    Err(e) => -(e.duration().as_secs() as i64),
                };
                if (GO_ZERO..=LAST).contains(&secs) {
                    prop_assert_eq!(parse(&format(t)), Ok(Some(t)));
                }
            }
        }

        /// Texts shaped like times, with any character anywhere.
        #[test]
        fn fuzz_rfc3339_near_misses(
            at in 0usize..30,
            c in any::<char>(),
            base in prop::sample::select(vec![
                "2025-01-02T03:04:05Z",
                "2025-01-02T03:04:05.123456789Z",
                "2025-01-02T03:04:05-07:30",
                "0001-01-01T00:00:00Z",
            ]),
        ) {
            let mut text: Vec<char> = base.chars().collect();
            let i = at.min(text.len() - 1);
            text[i] = c;
            let text: String = text.into_iter().collect();
            let _ = parse(&text);
            let mut longer = base.to_owned();
            longer.insert(at.min(base.len()), c);
            let _ = parse(&longer);
        }

        /// Every time from year 1 to 9999 round-trips through its text.
        #[test]
        fn fuzz_rfc3339_round_trip(secs in (GO_ZERO + 1)..=LAST, nanos in 0u32..1_000_000_000) {
            let t = at(secs, nanos);
            prop_assert_eq!(parse(&format(t)), Ok(Some(t)));
        }
    }
}
