//! The agent's own alerts (`RedisFailoverExecuted`, `RedisFailoverHeld`, ...), pushed to
//! Alertmanager's `POST /api/v2/alerts` so that the shipped routes tell people, the way
//! they tell them about any Prometheus alert. The agent writes no Slack, e-mail or
//! PagerDuty code; an Alertmanager silence mutes its notices like any other.
//!
//! Labels: `alertname`, `severity`, `scope="instance"`, `redis_instance`, `datacenter`
//! (when one is concerned), `source="redis-failover-agent"`, and never
//! `failover_candidate`: a notice routed back to the agent's webhook would be a loop.
//!
//! Like Prometheus, [`AlertmanagerNotifier`] (`http.rs`) posts every alert to each
//! configured Alertmanager (the members of an HA cluster de-duplicate among themselves),
//! retries connection failures and 5xx answers with backoff, and counts the notification
//! as delivered when at least one of them took it. [`RecordingNotifier`] is the fake for
//! engine tests. [`config`] reads the `alertmanager` block and builds the notifier.

pub mod config;
mod http;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::decision::ports::AdapterErrorKind;
use crate::model::rfc3339;

pub use http::{AlertmanagerNotifier, Auth, NotifierSettings};

/// `source` label of every agent alert.
pub const SOURCE: &str = "redis-failover-agent";
/// `runbook` annotation of every agent alert (the templates prefix the repository URL).
pub const RUNBOOK: &str = "README.md#agent-failover-notices";
/// The Grafana dashboard an agent alert links to, before `?var-redis_instance=`.
pub const DASHBOARD: &str = "/d/redis-failover/datacenters-and-failover";

/// Labels the agent sets itself; extra labels cannot replace them.
const RESERVED: [&str; 6] = [
    "alertname",
    "severity",
    "scope",
    "redis_instance",
    "datacenter",
    "source",
];
/// Never on an agent alert: the shipped routes send it to the agent's own webhook.
const CANDIDATE_LABEL: &str = "failover_candidate";

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
    /// A notice with the severity its name calls for, starting now, no extra labels.
    pub fn new(
        name: AgentAlertName,
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
            starts_at: SystemTime::now(),
            ends_at: None,
        }
    }

    /// The labels Alertmanager gets.
    pub fn label_set(&self) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self
            .labels
            .iter()
            .filter(|(k, v)| {
                !v.is_empty()
                    && is_label_name(k)
                    && k.as_str() != CANDIDATE_LABEL
                    && !RESERVED.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut set = |k: &str, v: &str| {
            if !v.is_empty() {
                labels.insert(k.to_owned(), v.to_owned());
            }
        };
        set("alertname", self.name.as_str());
        set("severity", self.severity.as_str());
        set("scope", "instance");
        set("redis_instance", &self.redis_instance);
        set("datacenter", self.datacenter.as_deref().unwrap_or(""));
        set("source", SOURCE);
        labels
    }

    /// The annotations Alertmanager gets: summary, description, runbook, dashboard.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("summary".to_owned(), self.summary.clone()),
            ("description".to_owned(), self.description.clone()),
            ("runbook".to_owned(), RUNBOOK.to_owned()),
            (
                "dashboard".to_owned(),
                format!(
                    "{DASHBOARD}?var-redis_instance={}",
                    encode_query(&self.redis_instance)
                ),
            ),
        ])
    }
}

/// Prometheus's label name syntax, which Alertmanager 0.25 enforces.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    pub(super) fn executed() -> AgentAlert {
        let mut a = AgentAlert::new(
            AgentAlertName::RedisFailoverExecuted,
            "redis-app-01",
            Some("east"),
            "redis-app-01 moved from east to west",
            "DNS for redis-app-01 now points at west.",
        );
        a.starts_at = UNIX_EPOCH + Duration::from_secs(1_735_787_045);
        a
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
            AgentAlert::new(RedisFailoverHeld, "r", None, "", "").severity,
            Severity::Warning
        );
    }

    #[test]
    fn labels_are_the_agents_and_never_a_failover_candidate() {
        let mut a = executed();
        a.labels = BTreeMap::from(
            [
                ("failover_candidate", "true"),
                ("severity", "info"),
                ("alertname", "Other"),
                ("source", "me"),
                ("incident", "42"),
                ("target_datacenter", "west"),
                ("bad-name", "x"),
                ("0digit", "x"),
                ("empty", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let labels = a.label_set();
        let got: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("alertname", "RedisFailoverExecuted"),
                ("datacenter", "east"),
                ("incident", "42"),
                ("redis_instance", "redis-app-01"),
                ("scope", "instance"),
                ("severity", "critical"),
                ("source", "redis-failover-agent"),
                ("target_datacenter", "west"),
            ]
        );
        let mut no_dc = executed();
        no_dc.datacenter = None;
        assert!(!no_dc.label_set().contains_key("datacenter"));
    }

    #[test]
    fn annotations_link_the_runbook_and_the_instance_dashboard() {
        let mut a = executed();
        a.redis_instance = "app 1&x".into();
        let ann = a.annotations();
        assert_eq!(ann["summary"], "redis-app-01 moved from east to west");
        assert_eq!(
            ann["description"],
            "DNS for redis-app-01 now points at west."
        );
        assert_eq!(ann["runbook"], "README.md#agent-failover-notices");
        assert_eq!(
            ann["dashboard"],
            "/d/redis-failover/datacenters-and-failover?var-redis_instance=app%201%26x"
        );
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
}
