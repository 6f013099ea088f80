//! The client impact port: how the applications that use a Redis instance are doing,
//! from their own logs. A source answers every question, with [`ClientImpact::Unknown`]
//! and a reason when it cannot tell, so the engine decides as if no advisor were
//! configured. Text from the logs is [`UntrustedText`]: whoever shows it to a person or
//! a model must treat it as data.

pub mod report;

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::AdapterErrorKind;
use crate::model::InstanceId;

pub use report::{
    ClientVerdict, ErrorCategory, ExceptionCount, FailoverEffect, ImpactReport, Latency,
    SampleMessage, Spike, UntrustedText, WindowStats,
};

/// Where client logs come from. Implementations answer every call: a failure is
/// [`ClientImpact::Unknown`], never an error or a panic.
#[async_trait::async_trait]
pub trait ClientImpactSource: Send + Sync + fmt::Debug {
    /// `elasticsearch`, `fake`, ...: for logs and the decision record.
    fn name(&self) -> &'static str;
    /// How clients of `instance` fared during `window`.
    async fn impact(&self, instance: &InstanceId, window: Window) -> ClientImpact;
}

/// Which logs one analysis reads: the `recent` period that ends at `end`, compared with
/// the `baseline` period just before it.
///
/// For the decision: `Window::default()` (the last 5 min against the 30 min before).
/// After a failover: [`Window::around`] (after against before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub recent: Duration,
    pub baseline: Duration,
    /// End of the recent period; `None`: the moment of the query.
    pub end: Option<SystemTime>,
}

impl Window {
    pub const DEFAULT_RECENT: Duration = Duration::from_secs(5 * 60);
    pub const DEFAULT_BASELINE: Duration = Duration::from_secs(30 * 60);

    /// The last `recent` against the `baseline` before it, ending now.
    pub const fn last(recent: Duration, baseline: Duration) -> Self {
        Self {
            recent,
            baseline,
            end: None,
        }
    }

    /// Around a failover at `at`: `before` it is the baseline, `after` it the recent
    /// period. Ask once `at + after` has passed, or the recent period is cut short.
    pub fn around(at: SystemTime, before: Duration, after: Duration) -> Self {
        Self {
            recent: after,
            baseline: before,
            end: Some(at + after),
        }
    }

    /// The absolute times, with `now` standing in for an open end, in whole
    /// milliseconds (Elasticsearch's resolution, so histogram buckets line up).
    pub fn bounds(&self, now: SystemTime) -> Bounds {
        let end = whole_millis(self.end.unwrap_or(now));
        let recent_from = end.checked_sub(self.recent).unwrap_or(end);
        let baseline_from = recent_from
            .checked_sub(self.baseline)
            .unwrap_or(recent_from);
        Bounds {
            baseline_from,
            recent_from,
            end,
        }
    }
}

fn whole_millis(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => t - Duration::from_nanos(u64::from(d.subsec_nanos() % 1_000_000)),
        Err(_) => t,
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::last(Self::DEFAULT_RECENT, Self::DEFAULT_BASELINE)
    }
}

/// A [`Window`] placed in time: baseline `[baseline_from, recent_from)`, recent
/// `[recent_from, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub baseline_from: SystemTime,
    pub recent_from: SystemTime,
    pub end: SystemTime,
}

/// The answer of a [`ClientImpactSource`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ClientImpact {
    Known(Box<ImpactReport>),
    /// Nothing can be said: the source failed, stalled, or the logs are not there.
    Unknown {
        reason: String,
    },
}

impl ClientImpact {
    pub fn unknown(reason: impl Into<String>) -> Self {
        ClientImpact::Unknown {
            reason: reason.into(),
        }
    }

    pub fn report(&self) -> Option<&ImpactReport> {
        match self {
            ClientImpact::Known(r) => Some(r),
            ClientImpact::Unknown { .. } => None,
        }
    }

    /// `None` when unknown.
    pub fn verdict(&self) -> Option<ClientVerdict> {
        self.report().map(|r| r.verdict)
    }

    /// Clients report more errors than usual (or a spike, or mostly errors).
    pub fn clients_failing(&self) -> bool {
        self.verdict() == Some(ClientVerdict::Failing)
    }

    /// Clients log enough lines, and no more errors than usual: they still reach
    /// Redis. False when unknown or when too few lines were logged to tell.
    pub fn clients_as_usual(&self) -> bool {
        self.verdict() == Some(ClientVerdict::AsUsual)
    }

    /// Bounded name for metrics labels: `failing`, `as_usual`, `inconclusive` or
    /// `unknown`.
    pub fn label(&self) -> &'static str {
        match self.verdict() {
            Some(ClientVerdict::Failing) => "failing",
            Some(ClientVerdict::AsUsual) => "as_usual",
            Some(ClientVerdict::Inconclusive) => "inconclusive",
            None => "unknown",
        }
    }

    /// One line for the decision record and the agent's notices. Only numbers and
    /// category names: no text from the logs.
    pub fn describe(&self) -> String {
        let r = match self {
            ClientImpact::Unknown { reason } => return format!("unknown ({reason})"),
            ClientImpact::Known(r) => r,
        };
        let pct = |rate: Option<f64>| rate.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
        let state = match r.verdict {
            ClientVerdict::Failing => "clients failing",
            ClientVerdict::AsUsual => "clients as usual",
            ClientVerdict::Inconclusive => "too few client log lines to tell",
        };
        let categories: Vec<String> = r
            .errors_by_category
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{} {n}", c.as_str()))
            .collect();
        let mut out = format!(
            "{state}: {} errors in {} lines ({}) against {} before",
            r.recent.errors,
            r.recent.lines,
            pct(r.recent.error_rate),
            pct(r.baseline.error_rate),
        );
        if !categories.is_empty() {
            out.push_str(&format!("; {}", categories.join(", ")));
        }
        if let Some(p95) = r.recent.latency_ms.p95 {
            out.push_str(&format!("; p95 {p95:.0} ms"));
        }
        if let Some(spike) = &r.spike {
            out.push_str(&format!("; error spike at {}", spike.at));
        }
        out
    }
}

impl From<ClientImpactError> for ClientImpact {
    fn from(e: ClientImpactError) -> Self {
        ClientImpact::unknown(e.to_string())
    }
}

/// A failure inside a source. Never contains the password: adapters redact what their
/// libraries say before building one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ClientImpactError {
    pub kind: AdapterErrorKind,
    pub message: String,
}

impl ClientImpactError {
    pub fn new(kind: AdapterErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_follow_each_other() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let b = Window::default().bounds(now);
        assert_eq!(b.end, now);
        assert_eq!(now.duration_since(b.recent_from).unwrap().as_secs(), 300);
        assert_eq!(
            b.recent_from
                .duration_since(b.baseline_from)
                .unwrap()
                .as_secs(),
            1800
        );

        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(5_000);
        let w = Window::around(at, Duration::from_secs(900), Duration::from_secs(600));
        let b = w.bounds(now);
        assert_eq!(b.recent_from, at);
        assert_eq!(at.duration_since(b.baseline_from).unwrap().as_secs(), 900);
        assert_eq!(b.end.duration_since(at).unwrap().as_secs(), 600);
    }

    #[test]
    fn unknown_is_neither_failing_nor_as_usual() {
        let u = ClientImpact::from(ClientImpactError::new(
            AdapterErrorKind::Timeout,
            "no answer in 2 s",
        ));
        assert_eq!(u, ClientImpact::unknown("timeout: no answer in 2 s"));
        assert!(!u.clients_failing() && !u.clients_as_usual());
        assert_eq!(u.verdict(), None);
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(json["status"], "unknown");
        assert_eq!(json["reason"], "timeout: no answer in 2 s");
    }
}
