//! What a client impact analysis says, and the two rules that read it: the verdict
//! (are the clients failing?) and, after a failover, whether it helped. The adapters
//! (`advisors::client_impact`) count the log lines; these types carry the conclusions.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::model::InstanceId;

/// Below this many lines in a period nothing is concluded from it: clients that log
/// almost nothing (or a log pipeline that lags) must not look healthy.
pub const MIN_LINES: u64 = 20;
/// Fewer errors than this in the recent period are never "failing".
pub const MIN_ERRORS: u64 = 5;
/// "More errors than usual": the recent rate is at least twice the baseline's and at
/// least 5 points above it, or at least half of all lines are errors.
pub const RATE_FACTOR: f64 = 2.0;
pub const RATE_MARGIN: f64 = 0.05;
pub const FAILING_RATE: f64 = 0.5;

/// Text written by the clients (or by whoever can write to their logs). It is data:
/// never an instruction, never trusted. Serialized as `{"untrusted_text": "..."}` so
/// that it stays marked wherever the report goes (API, AI evidence, alerts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedText(String);

impl UntrustedText {
    /// At most `max_chars` characters (an ellipsis marks a cut), control characters
    /// replaced by spaces.
    pub fn new(text: &str, max_chars: usize) -> Self {
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let clean = clean.trim();
        if clean.chars().count() <= max_chars {
            return Self(clean.to_owned());
        }
        let mut cut: String = clean.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        Self(cut)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for UntrustedText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("untrusted_text", &self.0)?;
        map.end()
    }
}

/// Percentiles of `latency_ms`, in milliseconds; `None` without latency data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One period of the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowStats {
    /// Client log lines about the instance.
    pub lines: u64,
    /// Those at an error level.
    pub errors: u64,
    /// errors / lines; `None` without lines.
    pub error_rate: Option<f64>,
    pub errors_per_minute: f64,
    pub latency_ms: Latency,
}

impl WindowStats {
    fn rate(&self) -> f64 {
        self.error_rate.unwrap_or(0.0)
    }
}

/// A recent histogram bucket far above the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spike {
    /// Start of the bucket (RFC 3339).
    pub at: String,
    pub bucket_seconds: u64,
    pub errors: u64,
    pub baseline_mean: f64,
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleMessage {
    /// When it was logged (RFC 3339, as re-written by us), if the line said.
    pub at: Option<String>,
    pub operation: Option<UntrustedText>,
    pub exception: Option<UntrustedText>,
    pub message: UntrustedText,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExceptionCount {
    pub exception: UntrustedText,
    pub errors: u64,
}

/// What the engine may conclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientVerdict {
    /// More errors than in the baseline, a spike, or at least half of the lines errors.
    Failing,
    /// Enough lines, and no more errors than usual: clients still reach Redis.
    AsUsual,
    /// Too few lines to say either.
    Inconclusive,
}

/// Did a failover help? (baseline = before it, recent = after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverEffect {
    /// The error rate after is at most half the rate before, which had errors.
    Helped,
    NoChange,
    /// More errors than before, by the "failing" rule.
    Worse,
    /// Too few lines before or after.
    Inconclusive,
}

impl FailoverEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverEffect::Helped => "helped",
            FailoverEffect::NoChange => "no_change",
            FailoverEffect::Worse => "worse",
            FailoverEffect::Inconclusive => "inconclusive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactReport {
    pub instance: InstanceId,
    pub baseline_from: String,
    pub recent_from: String,
    pub recent_to: String,
    pub recent: WindowStats,
    pub baseline: WindowStats,
    /// Recent errors by category; every category is present.
    pub errors_by_category: BTreeMap<ErrorCategory, u64>,
    pub top_exceptions: Vec<ExceptionCount>,
    pub spike: Option<Spike>,
    /// The newest recent errors, newest first.
    pub samples: Vec<SampleMessage>,
    pub verdict: ClientVerdict,
}

impl ImpactReport {
    /// Read as "before (baseline) and after (recent) a failover".
    pub fn failover_effect(&self) -> FailoverEffect {
        let (before, after) = (&self.baseline, &self.recent);
        if before.lines < MIN_LINES || after.lines < MIN_LINES {
            FailoverEffect::Inconclusive
        } else if is_worse(after, before) {
            FailoverEffect::Worse
        } else if before.errors >= MIN_ERRORS && after.rate() <= before.rate() * 0.5 {
            FailoverEffect::Helped
        } else {
            FailoverEffect::NoChange
        }
    }
}

/// `recent` has more errors than `baseline` by the rule of [`ClientVerdict::Failing`].
fn is_worse(recent: &WindowStats, baseline: &WindowStats) -> bool {
    let (r, b) = (recent.rate(), baseline.rate());
    recent.errors >= MIN_ERRORS
        && (r >= FAILING_RATE || (r >= b * RATE_FACTOR && r >= b + RATE_MARGIN))
}

/// Failing, as usual, or too little to tell.
pub fn verdict(recent: &WindowStats, baseline: &WindowStats, spike: bool) -> ClientVerdict {
    if spike || is_worse(recent, baseline) {
        ClientVerdict::Failing
    } else if recent.lines >= MIN_LINES {
        ClientVerdict::AsUsual
    } else {
        ClientVerdict::Inconclusive
    }
}

/// What kind of trouble a client error line reports (seed 000: connection, timeout,
/// memory, authentication errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCategory {
    /// Authentication or authorisation refused (NOAUTH, WRONGPASS, NOPERM, ACL).
    Authentication,
    /// Redis out of memory (OOM, maxmemory).
    Memory,
    /// A command or a connection attempt took too long.
    Timeout,
    /// The connection could not be opened or broke (refused, reset, EOF, pool empty).
    Connection,
    /// Anything else.
    Other,
}

impl ErrorCategory {
    pub const ALL: [ErrorCategory; 5] = [
        ErrorCategory::Connection,
        ErrorCategory::Timeout,
        ErrorCategory::Memory,
        ErrorCategory::Authentication,
        ErrorCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Authentication => "authentication",
            ErrorCategory::Memory => "memory",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Connection => "connection",
            ErrorCategory::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five minutes with `lines` lines of which `errors` errors.
    fn stats(lines: u64, errors: u64) -> WindowStats {
        WindowStats {
            lines,
            errors,
            error_rate: (lines > 0).then(|| errors as f64 / lines as f64),
            errors_per_minute: errors as f64 / 5.0,
            latency_ms: Latency::default(),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            verdict(&stats(100, 30), &stats(600, 6), false),
            ClientVerdict::Failing
        );
        assert_eq!(
            verdict(&stats(100, 1), &stats(600, 6), false),
            ClientVerdict::AsUsual
        );
        // A little worse, but not by the margin: as usual.
        assert_eq!(
            verdict(&stats(100, 5), &stats(600, 18), false),
            ClientVerdict::AsUsual
        );
        assert_eq!(
            verdict(&stats(10, 0), &stats(600, 6), false),
            ClientVerdict::Inconclusive
        );
        assert_eq!(
            verdict(&stats(0, 0), &stats(0, 0), false),
            ClientVerdict::Inconclusive
        );
        // Mostly errors is failing even when it always was.
        assert_eq!(
            verdict(&stats(10, 8), &stats(600, 500), false),
            ClientVerdict::Failing
        );
        assert_eq!(
            verdict(&stats(100, 3), &stats(600, 6), true),
            ClientVerdict::Failing
        );
    }

    #[test]
    fn failover_effect_compares_after_with_before() {
        let report = |before: WindowStats, after: WindowStats| ImpactReport {
            instance: InstanceId::new("c"),
            baseline_from: String::new(),
            recent_from: String::new(),
            recent_to: String::new(),
            recent: after,
            baseline: before,
            errors_by_category: BTreeMap::new(),
            top_exceptions: Vec::new(),
            spike: None,
            samples: Vec::new(),
            verdict: ClientVerdict::Inconclusive,
        };
        let effect = |b, a| report(b, a).failover_effect();
        assert_eq!(
            effect(stats(100, 50), stats(100, 2)),
            FailoverEffect::Helped
        );
        assert_eq!(
            effect(stats(100, 2), stats(100, 2)),
            FailoverEffect::NoChange
        );
        assert_eq!(effect(stats(100, 2), stats(100, 40)), FailoverEffect::Worse);
        assert_eq!(
            effect(stats(100, 50), stats(5, 0)),
            FailoverEffect::Inconclusive
        );
    }
}
