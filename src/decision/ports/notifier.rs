//! The notifier port: the agent's own notices about its decisions (executed,
//! recommended, held, failed, failback recommended), and what a notifier says about
//! delivering them. The Alertmanager adapter (`actuators::alertmanager`) turns them into
//! alerts with labels and annotations.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::AdapterErrorKind;
use crate::model::rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgentAlertName {
    /// DNS now points at another datacenter.
    RedisFailoverExecuted,
    /// The evidence says fail over, but the mode (`auto_failover: false`,
    /// `--no-failover`) lets the agent only recommend it.
    RedisFailoverRecommended,
    /// A candidate alert was evaluated and the agent decided not to act (no healthy
    /// target, cooldown, veto, ...); the description says why.
    RedisFailoverHeld,
    /// The agent tried and could not complete the change.
    RedisFailoverFailed,
    /// The original datacenter has been healthy long enough to move back. Standing: it is
    /// sent again while it holds, and resolved when it no longer does.
    RedisFailbackRecommended,
}

impl AgentAlertName {
    pub const ALL: [AgentAlertName; 5] = [
        AgentAlertName::RedisFailoverExecuted,
        AgentAlertName::RedisFailoverRecommended,
        AgentAlertName::RedisFailoverHeld,
        AgentAlertName::RedisFailoverFailed,
        AgentAlertName::RedisFailbackRecommended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentAlertName::RedisFailoverExecuted => "RedisFailoverExecuted",
            AgentAlertName::RedisFailoverRecommended => "RedisFailoverRecommended",
            AgentAlertName::RedisFailoverHeld => "RedisFailoverHeld",
            AgentAlertName::RedisFailoverFailed => "RedisFailoverFailed",
            AgentAlertName::RedisFailbackRecommended => "RedisFailbackRecommended",
        }
    }

    /// Critical when DNS changed or a change failed (someone must look now); warning
    /// when the agent only recommends or holds.
    pub fn severity(self) -> Severity {
        match self {
            AgentAlertName::RedisFailoverExecuted | AgentAlertName::RedisFailoverFailed => {
                Severity::Critical
            }
            AgentAlertName::RedisFailoverRecommended
            | AgentAlertName::RedisFailoverHeld
            | AgentAlertName::RedisFailbackRecommended => Severity::Warning,
        }
    }

    /// A notice about something that happened once. Without an explicit end it is sent
    /// with `endsAt` = send time + `resolve_after`, so it does not fire for ever.
    pub fn is_one_shot(self) -> bool {
        !matches!(self, AgentAlertName::RedisFailbackRecommended)
    }
}

impl fmt::Display for AgentAlertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `severity` label, as the shipped routes read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notice about one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAlert {
    pub name: AgentAlertName,
    pub redis_instance: String,
    /// The datacenter concerned (for a failover, the one traffic left).
    pub datacenter: Option<String>,
    pub severity: Severity,
    pub summary: String,
    pub description: String,
    /// Extra labels (an incident id, the target datacenter, ...). They cannot replace the
    /// agent's own labels; `failover_candidate` and names that are not valid label names
    /// are dropped. Note that Alertmanager groups by alertname, redis_instance and
    /// datacenter: a label that differs makes a new alert of the same group.
    pub labels: BTreeMap<String, String>,
    #[serde(with = "rfc3339::required")]
    pub starts_at: SystemTime,
    /// `None`: a one-shot notice ends `resolve_after` after it is sent; a standing one
    /// (`RedisFailbackRecommended`) is sent without `endsAt` and lapses after
    /// Alertmanager's `resolve_timeout` unless sent again. `Some(now)` resolves it.
    #[serde(with = "rfc3339::optional")]
    pub ends_at: Option<SystemTime>,
}

impl AgentAlert {
    /// A notice with the severity its name calls for, starting `starts_at` (the engine's
    /// clock), no extra labels.
    pub fn new(
        name: AgentAlertName,
        starts_at: SystemTime,
        redis_instance: impl Into<String>,
        datacenter: Option<&str>,
        summary: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name,
            redis_instance: redis_instance.into(),
            datacenter: datacenter.map(str::to_owned),
            severity: name.severity(),
            summary: summary.into(),
            description: description.into(),
            labels: BTreeMap::new(),
            starts_at,
            ends_at: None,
        }
    }
}

/// A notification that did not reach an Alertmanager. The message names the URL (without
/// credentials) and what happened; it never contains a password or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub kind: AdapterErrorKind,
    pub message: String,
}

impl NotifyError {
    pub(crate) fn new(kind: AdapterErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Which Alertmanagers took a notification. Returned when at least one did; the others
/// are in `failed` (and logged) so that the caller can record them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// Base URLs, without credentials.
    pub delivered: Vec<String>,
    pub failed: Vec<(String, NotifyError)>,
}

#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// Sends `alerts` (nothing to do for an empty slice). `Err` only when no Alertmanager
    /// took them.
    async fn notify(&self, alerts: &[AgentAlert]) -> Result<NotifyReport, NotifyError>;
}

/// A [`Notifier`] that keeps what it is given, for engine tests. It can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    sent: Mutex<Vec<AgentAlert>>,
    failing: Mutex<Option<AdapterErrorKind>>,
}

impl RecordingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every alert taken so far, in order.
    pub fn alerts(&self) -> Vec<AgentAlert> {
        self.sent.lock().expect("lock").clone()
    }

    /// The names of every alert taken so far, in order.
    pub fn names(&self) -> Vec<AgentAlertName> {
        self.alerts().iter().map(|a| a.name).collect()
    }

    /// From now on `notify` fails with `kind` (and records nothing); `None` heals it.
    pub fn set_failing(&self, kind: Option<AdapterErrorKind>) {
        *self.failing.lock().expect("lock") = kind;
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, alerts: &[AgentAlert]) -> Result<NotifyReport, NotifyError> {
        if let Some(kind) = *self.failing.lock().expect("lock") {
            return Err(NotifyError::new(kind, "recording notifier told to fail"));
        }
        self.sent.lock().expect("lock").extend_from_slice(alerts);
        Ok(NotifyReport {
            delivered: vec!["recording".to_owned()],
            failed: Vec::new(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// An executed failover of `redis-app-01` from east to west, at a fixed time.
    pub(crate) fn executed() -> AgentAlert {
        AgentAlert::new(
            AgentAlertName::RedisFailoverExecuted,
            UNIX_EPOCH + Duration::from_secs(1_735_787_045),
            "redis-app-01",
            Some("east"),
            "redis-app-01 moved from east to west",
            "DNS for redis-app-01 now points at west.",
        )
    }

    #[test]
    fn severity_follows_the_name() {
        use AgentAlertName::*;
        let got: Vec<(&str, &str, bool)> = AgentAlertName::ALL
            .iter()
            .map(|n| (n.as_str(), n.severity().as_str(), n.is_one_shot()))
            .collect();
        assert_eq!(
            got,
            [
                ("RedisFailoverExecuted", "critical", true),
                ("RedisFailoverRecommended", "warning", true),
                ("RedisFailoverHeld", "warning", true),
                ("RedisFailoverFailed", "critical", true),
                ("RedisFailbackRecommended", "warning", false),
            ]
        );
        assert_eq!(
            AgentAlert::new(RedisFailoverHeld, SystemTime::UNIX_EPOCH, "r", None, "", "").severity,
            Severity::Warning
        );
    }

    #[test]
    fn agent_alerts_serialize_for_the_journal() {
        let a = executed();
        let text = serde_json::to_string(&a).unwrap();
        assert!(
            text.contains(r#""starts_at":"2025-01-02T03:04:05Z""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<AgentAlert>(&text).unwrap(), a);
    }

    #[tokio::test]
    async fn the_recording_notifier_keeps_what_it_gets_and_can_fail() {
        let r = RecordingNotifier::new();
        let report = r.notify(&[executed()]).await.unwrap();
        assert_eq!(report.delivered.len(), 1);
        r.set_failing(Some(AdapterErrorKind::Unavailable));
        let e = r.notify(&[executed()]).await.unwrap_err();
        assert_eq!(e.kind, AdapterErrorKind::Unavailable);
        r.set_failing(None);
        r.notify(&[]).await.unwrap();
        assert_eq!(r.names(), [AgentAlertName::RedisFailoverExecuted]);
        assert_eq!(r.alerts()[0], executed());
    }
}
