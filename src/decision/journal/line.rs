//! The on-disk line format, replay, and timestamps.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Entry, JournalError};

pub(super) struct Torn {
    pub(super) line: usize,
    pub(super) reason: String,
}

pub(super) struct Replay<T> {
    pub(super) entries: Vec<Entry<T>>,
    /// The seq of the first whole line; 0 for an empty file.
    pub(super) first_seq: u64,
    pub(super) last_seq: u64,
    /// Bytes of whole, valid lines: the file is cut here when the last line is torn.
    pub(super) valid_len: usize,
    pub(super) torn: Option<Torn>,
}

/// `,"crc":"01234567"}`: how every line written by this version ends.
const CRC_SUFFIX_LEN: usize = 18;

/// One line as written: `line` serialized, then its CRC-32 (of the bytes serialized
/// without the `crc` field) as the last field, then a newline.
pub(super) fn encode<L: Serialize>(line: &L) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(line)?;
    let crc = crc32fast::hash(&bytes);
    // A struct serializes as an object: the last byte is its closing brace.
    bytes.pop();
    bytes.extend_from_slice(format!(",\"crc\":\"{crc:08x}\"}}\n").as_bytes());
    Ok(bytes)
}

/// Checks the checksum of a line that carries one: it must be the last field, as
/// `encode` writes it, and match the bytes before it.
fn verify(text: &[u8], crc: &str) -> Result<(), String> {
    let canonical = text.len() > CRC_SUFFIX_LEN
        && crc.len() == 8
        && crc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && text.ends_with(format!(",\"crc\":\"{crc}\"}}").as_bytes());
    if !canonical {
        return Err("the crc field is not where and how the agent writes it".into());
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&text[..text.len() - CRC_SUFFIX_LEN]);
    hasher.update(b"}");
    let actual = hasher.finalize();
    if format!("{actual:08x}") != crc {
        return Err(format!(
            "checksum mismatch (crc {crc}, the bytes give {actual:08x}): the line was changed after it was written"
        ));
    }
    Ok(())
}

/// Reads a journal file. A last line without a newline, or that is not JSON, is torn
/// (what a crash mid-append leaves); any other damage is [`JournalError::Corrupt`]: a
/// line that is not JSON, has unknown fields, fails its checksum, or breaks the order
/// of `seq`. Lines without a checksum (written before checksums) are accepted.
pub(super) fn replay<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<Replay<T>, JournalError> {
    let mut replay = Replay {
        entries: Vec::new(),
        first_seq: 0,
        last_seq: 0,
        valid_len: 0,
        torn: None,
    };
    let corrupt = |line, reason| JournalError::Corrupt {
        path: path.to_owned(),
        line,
        reason,
    };
    for (index, chunk) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let last = replay.valid_len + chunk.len() == bytes.len();
        let Some(text) = chunk.strip_suffix(b"\n") else {
            replay.torn = Some(Torn {
                line,
                reason: "no newline at the end".into(),
            });
            break;
        };
        let parsed: Line = match serde_json::from_slice(text) {
            Ok(parsed) => parsed,
            Err(e) if last && (e.is_syntax() || e.is_eof()) => {
                replay.torn = Some(Torn {
                    line,
                    reason: e.to_string(),
                });
                break;
            }
            Err(e) => return Err(corrupt(line, e.to_string())),
        };
        if let Some(crc) = &parsed.crc {
            verify(text, crc).map_err(|reason| corrupt(line, reason))?;
        }
        if parsed.seq <= replay.last_seq {
            return Err(corrupt(
                line,
                format!("seq {} does not follow seq {}", parsed.seq, replay.last_seq),
            ));
        }
        if replay.first_seq == 0 {
            replay.first_seq = parsed.seq;
        }
        replay.last_seq = parsed.seq;
        match (parsed.record, parsed.compacted) {
            (Some(value), None) => {
                let record = T::deserialize(value).map_err(|e| JournalError::Record {
                    path: path.to_owned(),
                    line,
                    message: e.to_string(),
                })?;
                replay.entries.push(Entry {
                    seq: parsed.seq,
                    at: parsed.at.0,
                    record,
                });
            }
            (None, Some(_)) => {}
            _ => {
                return Err(corrupt(
                    line,
                    "a line holds either a record or a compaction marker".into(),
                ));
            }
        }
        replay.valid_len += chunk.len();
    }
    Ok(replay)
}

/// The seq of the first and the last whole line of a file; `None` when it has none
/// that parse (an archive is only read for this check).
pub(super) fn seq_range(bytes: &[u8]) -> Option<(u64, u64)> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    let seq = |line: &[u8]| {
        let line = line.strip_suffix(b"\n")?;
        serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
    };
    let lines = || bytes.split_inclusive(|b| *b == b'\n');
    Some((lines().find_map(seq)?, lines().rev().find_map(seq)?))
}

#[derive(Serialize)]
pub(super) struct RecordLine<'a, T> {
    pub(super) seq: u64,
    pub(super) at: Timestamp,
    pub(super) record: &'a T,
}

#[derive(Serialize)]
pub(super) struct MarkerLine {
    pub(super) seq: u64,
    pub(super) at: Timestamp,
    pub(super) compacted: Compacted,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Compacted {
    pub(super) kept: usize,
}

/// A line as read: unknown fields are corruption (a damaged key would otherwise hide).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    at: Timestamp,
    #[serde(default)]
    record: Option<serde_json::Value>,
    #[serde(default)]
    compacted: Option<Compacted>,
    #[serde(default)]
    crc: Option<String>,
}

/// `at` to the millisecond, so that what `append` returns equals what `open` reads.
pub(super) fn to_millis(at: SystemTime) -> SystemTime {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    UNIX_EPOCH + Duration::from_millis(since_epoch.as_millis() as u64)
}

/// A time on disk: RFC 3339 in UTC, `2026-05-01T03:12:07.250Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timestamp(pub(super) SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since_epoch = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs();
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let in_day = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            in_day / 3600,
            in_day % 3600 / 60,
            in_day % 60,
            since_epoch.subsec_millis()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_rfc3339(&text).map(Timestamp).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"at\": {text:?} is not a UTC RFC 3339 time like 2026-05-01T03:12:07.250Z"
            ))
        })
    }
}

/// Parses what `Timestamp` writes: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, from 1970 on.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (main, fraction) = match text.strip_suffix('Z')?.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (text.strip_suffix('Z')?, None),
    };
    let b = main.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = &main[range];
        digits
            .bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let nanos = match fraction {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{f:0<9}").parse().ok()?
        }
        Some(_) => return None,
    };
    if year < 1970 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    if day == 0 || civil_from_days(days) != (year as i64, month as u32, day as u32) {
        return None;
    }
    let secs = days as u64 * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) to days since 1970-01-01; Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339_with_milliseconds() {
        assert_eq!(
            Timestamp(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        let leap = UNIX_EPOCH + Duration::from_millis(951_782_400_123);
        assert_eq!(Timestamp(leap).to_string(), "2000-02-29T00:00:00.123Z");
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00.123Z"), Some(leap));
        let now = to_millis(UNIX_EPOCH + Duration::from_nanos(1_777_605_127_250_999_999));
        assert_eq!(parse_rfc3339(&Timestamp(now).to_string()), Some(now));
        assert_eq!(
            parse_rfc3339("2026-05-01T03:12:07Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_777_605_127))
        );
        for bad in [
            "2026-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-05-01T24:00:00.000Z",
            "2026-05-01 03:12:07.250Z",
            "2026-05-01T03:12:07.250+02:00",
            "2026-05-01T03:12:07.Z",
            "+026-05-01T03:12:07Z",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for days in (0..400_000).step_by(13) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
