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
//! as delivered when at least one of them took it. [`config`] reads the `alertmanager`
//! block and builds the notifier.

pub mod config;
mod http;

use std::collections::BTreeMap;

use crate::decision::ports::AgentAlert;

pub use http::{AlertmanagerNotifier, Auth, NotifierSettings};

/// `source` label of every agent alert.
pub const SOURCE: &str = "redis-failover-agent";
/// The base of every agent alert's `runbook_url` when `alertmanager.runbook_url_base`
/// is not given: the rules' base (absolute, since receivers link it as it is), which
/// `scripts/runbook-base.sh` rewrites here too.
pub const DEFAULT_RUNBOOK_URL_BASE: &str =
    "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/";
/// The runbook page of every agent alert, under the base.
pub const RUNBOOK_PAGE: &str = "agent-failover-notices.md";
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

/// The labels Alertmanager gets for `alert`.
pub fn label_set(alert: &AgentAlert) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = alert
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
    set("alertname", alert.name.as_str());
    set("severity", alert.severity.as_str());
    set("scope", "instance");
    set("redis_instance", &alert.redis_instance);
    set("datacenter", alert.datacenter.as_deref().unwrap_or(""));
    set("source", SOURCE);
    labels
}

/// The annotations Alertmanager gets for `alert`: summary, description, runbook_url
/// (the page under `runbook_url_base`), dashboard.
pub fn annotations(alert: &AgentAlert, runbook_url_base: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("summary".to_owned(), alert.summary.clone()),
        ("description".to_owned(), alert.description.clone()),
        (
            "runbook_url".to_owned(),
            format!("{runbook_url_base}{RUNBOOK_PAGE}"),
        ),
        (
            "dashboard".to_owned(),
            format!(
                "{DASHBOARD}?var-redis_instance={}",
                encode_query(&alert.redis_instance)
            ),
        ),
    ])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ports::notifier::tests::executed;

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
        let labels = label_set(&a);
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
        assert!(!label_set(&no_dc).contains_key("datacenter"));
    }

    #[test]
    fn annotations_link_the_runbook_and_the_instance_dashboard() {
        let mut a = executed();
        a.redis_instance = "app 1&x".into();
        let ann = annotations(&a, DEFAULT_RUNBOOK_URL_BASE);
        assert_eq!(ann["summary"], "redis-app-01 moved from east to west");
        assert_eq!(
            ann["description"],
            "DNS for redis-app-01 now points at west."
        );
        assert_eq!(
            ann["runbook_url"],
            "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/agent-failover-notices.md"
        );
        assert_eq!(
            ann["dashboard"],
            "/d/redis-failover/datacenters-and-failover?var-redis_instance=app%201%26x"
        );
        let elsewhere = annotations(&a, "https://wiki.example/redis/");
        assert_eq!(
            elsewhere["runbook_url"],
            "https://wiki.example/redis/agent-failover-notices.md"
        );
    }
}
