//! The decision engine's own series on `/metrics`.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

/// Bounds of `redis_agent_advisor_call_duration_seconds`: Elasticsearch answers in
/// milliseconds, a model in seconds, a stalled one at its timeout.
const ADVISOR_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The side effects a leader fences, as `redis_agent_fenced_refusals_total` names them:
/// the four steps of a failover, then `settle`, the write of an incident's result.
const FENCED_ACTIONS: [&str; 5] = [
    "pre_failover_hook",
    "promote",
    "dns",
    "post_failover_hook",
    "settle",
];

type Durations = Family<Labels, Histogram, fn() -> Histogram>;

fn advisor_histogram() -> Histogram {
    Histogram::new(ADVISOR_BUCKETS)
}

#[derive(Debug, Clone)]
pub struct DecisionMetrics {
    webhook_requests: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    failovers: Family<Labels, Counter>,
    last_failover: Family<Labels, Gauge<f64, AtomicU64>>,
    advisor_calls: Family<Labels, Counter>,
    advisor_durations: Durations,
    journal_healthy: Gauge,
    unknown_targets: Counter,
    labels_cut: Counter,
    deferred_incidents: Counter,
    mismatches: Family<Labels, Counter>,
    dns_checks: Family<Labels, Counter>,
    dns_verified: Family<Labels, Gauge>,
    coordination_up: Family<Labels, Gauge>,
    leader: Family<Labels, Gauge>,
    leader_changes: Family<Labels, Counter>,
    fenced_refusals: Family<Labels, Counter>,
}

impl Default for DecisionMetrics {
    fn default() -> Self {
        Self {
            webhook_requests: Family::default(),
            decisions: Family::default(),
            failovers: Family::default(),
            last_failover: Family::default(),
            advisor_calls: Family::default(),
            advisor_durations: Family::new_with_constructor(advisor_histogram),
            journal_healthy: Gauge::default(),
            unknown_targets: Counter::default(),
            labels_cut: Counter::default(),
            deferred_incidents: Counter::default(),
            mismatches: Family::default(),
            dns_checks: Family::default(),
            dns_verified: Family::default(),
            coordination_up: Family::default(),
            leader: Family::default(),
            leader_changes: Family::default(),
            fenced_refusals: Family::default(),
        }
    }
}

impl DecisionMetrics {
    pub fn register(registry: &mut Registry) -> DecisionMetrics {
        let m = DecisionMetrics::default();
        registry.register(
            "redis_agent_webhook_requests",
            "Requests to /webhook/alertmanager by result (accepted, unauthorized, bad_request, too_many_alerts, error)",
            m.webhook_requests.clone(),
        );
        registry.register(
            "redis_agent_decisions",
            "Evaluations finished, by instance and outcome (failover, would_failover, hold, error, interrupted)",
            m.decisions.clone(),
        );
        registry.register(
            "redis_agent_failovers",
            "DNS failovers, by instance, datacenters and result (success, failure)",
            m.failovers.clone(),
        );
        registry.register(
            "redis_agent_last_failover_timestamp_seconds",
            "Unix time of the latest failover of the instance",
            m.last_failover.clone(),
        );
        registry.register(
            "redis_agent_advisor_calls",
            "Calls to the advisors made for decisions, by advisor (elasticsearch, azure_openai, openai_compatible) and result",
            m.advisor_calls.clone(),
        );
        registry.register(
            "redis_agent_advisor_call_duration_seconds",
            "How long the advisors took to answer, by advisor",
            m.advisor_durations.clone(),
        );
        registry.register(
            "redis_agent_journal_healthy",
            "1 while the decision journal can record; 0 once it is lost (a write could not be undone, or its writer is gone): nothing is decided until a restart",
            m.journal_healthy.clone(),
        );
        registry.register(
            "redis_agent_webhook_unknown_targets",
            "Alert candidates naming an instance that is not configured; ignored",
            m.unknown_targets.clone(),
        );
        registry.register(
            "redis_agent_webhook_labels_cut",
            "Label values of webhook deliveries cut to limits.max_label_bytes",
            m.labels_cut.clone(),
        );
        registry.register(
            "redis_agent_webhook_deferred_incidents",
            "Incidents a delivery did not open because it reached limits.max_incidents_per_delivery (Alertmanager repeats firing alerts)",
            m.deferred_incidents.clone(),
        );
        registry.register(
            "redis_agent_active_datacenter_mismatches",
            "Reads of an instance's DNS record that disagreed with the journal's active datacenter, by what DNS said (other_datacenter: adopted; unknown_value, missing: kept the journal's view)",
            m.mismatches.clone(),
        );
        registry.register(
            "redis_agent_active_datacenter_dns_reads",
            "Reads of an instance's DNS record to learn its active datacenter (at start, then retried until one succeeds), by result (ok, error)",
            m.dns_checks.clone(),
        );
        registry.register(
            "redis_agent_active_datacenter_verified",
            "1 once the instance's active datacenter was read from DNS since the start; 0 while DNS could not be read",
            m.dns_verified.clone(),
        );
        registry.register(
            "redis_agent_coordination_up",
            "1 while this agent reaches the fleet's etcd with quorum, 0 while it cannot (then nobody acts on its word); only with a coordination section",
            m.coordination_up.clone(),
        );
        registry.register(
            "redis_agent_leader",
            "1 while this agent leads the fleet (only the leader evaluates and acts), 0 on the others; only with a coordination section",
            m.leader.clone(),
        );
        registry.register(
            "redis_agent_leader_changes",
            "Changes of the fleet's leadership this agent saw: it became leader, lost leadership, or saw another leader replace one",
            m.leader_changes.clone(),
        );
        registry.register(
            "redis_agent_fenced_refusals",
            "Side effects etcd refused to fence because this agent no longer led in its term, by action (pre_failover_hook, promote, dns, post_failover_hook, settle); the evaluation stopped as interrupted",
            m.fenced_refusals.clone(),
        );
        for result in ["accepted", "unauthorized", "bad_request", "error"] {
            m.webhook_requests
                .get_or_create(&vec![("result", result.to_owned())])
                .inc_by(0);
        }
        m
    }

    pub fn journal_healthy(&self, healthy: bool) {
        self.journal_healthy.set(i64::from(healthy));
    }

    pub fn unknown_target(&self) {
        self.unknown_targets.inc();
    }

    pub fn deferred_incidents(&self, n: u64) {
        self.deferred_incidents.inc_by(n);
    }

    /// Every series of an instance's DNS check at zero, so `increase()` sees the first.
    pub fn dns_check_started(&self, instance: &str) {
        for dns in ["other_datacenter", "unknown_value", "missing"] {
            self.mismatches
                .get_or_create(&vec![
                    ("redis_instance", instance.to_owned()),
                    ("dns", dns.to_owned()),
                ])
                .inc_by(0);
        }
        for result in ["ok", "error"] {
            self.dns_checks
                .get_or_create(&vec![
                    ("redis_instance", instance.to_owned()),
                    ("result", result.to_owned()),
                ])
                .inc_by(0);
        }
        self.dns_verified
            .get_or_create(&vec![("redis_instance", instance.to_owned())])
            .set(0);
    }

    /// One read of an instance's record: `verified` when it answered.
    pub fn dns_check(&self, instance: &str, verified: bool) {
        let result = if verified { "ok" } else { "error" };
        self.dns_checks
            .get_or_create(&vec![
                ("redis_instance", instance.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
        if verified {
            self.dns_verified
                .get_or_create(&vec![("redis_instance", instance.to_owned())])
                .set(1);
        }
    }

    /// DNS disagreed with the journal: `dns` is `other_datacenter`, `unknown_value` or
    /// `missing`.
    pub fn mismatch(&self, instance: &str, dns: &'static str) {
        self.mismatches
            .get_or_create(&vec![
                ("redis_instance", instance.to_owned()),
                ("dns", dns.to_owned()),
            ])
            .inc();
    }

    /// Test access to the counters.
    #[cfg(test)]
    pub(crate) fn mismatches_of(&self, instance: &str, dns: &'static str) -> u64 {
        self.mismatches
            .get_or_create(&vec![
                ("redis_instance", instance.to_owned()),
                ("dns", dns.to_owned()),
            ])
            .get()
    }

    #[cfg(test)]
    pub(crate) fn unknown_targets_count(&self) -> u64 {
        self.unknown_targets.get()
    }

    #[cfg(test)]
    pub(crate) fn deferred_count(&self) -> u64 {
        self.deferred_incidents.get()
    }

    #[cfg(test)]
    pub(crate) fn journal_healthy_value(&self) -> i64 {
        self.journal_healthy.get()
    }

    /// Label values of a delivery cut to `limits.max_label_bytes`.
    pub fn labels_cut(&self, n: usize) {
        self.labels_cut.inc_by(n as u64);
    }

    pub fn webhook(&self, result: &'static str) {
        self.webhook_requests
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    pub fn decision(&self, instance: &str, outcome: &'static str) {
        self.decisions
            .get_or_create(&vec![
                ("redis_instance", instance.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// A failover made (`success`) or attempted; `at`: when, for the last-failover gauge.
    pub fn failover(&self, instance: &str, from: &str, to: &str, success: bool, at: SystemTime) {
        self.failovers
            .get_or_create(&vec![
                ("redis_instance", instance.to_owned()),
                ("from_datacenter", from.to_owned()),
                ("to_datacenter", to.to_owned()),
                (
                    "result",
                    if success { "success" } else { "failure" }.to_owned(),
                ),
            ])
            .inc();
        if success {
            let now = at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_failover
                .get_or_create(&vec![("redis_instance", instance.to_owned())])
                .set(now);
        }
    }

    /// One call to an advisor: `result` is a bounded name (a verdict or an error kind).
    pub fn advisor_call(&self, advisor: &str, result: &'static str, took: Duration) {
        self.advisor_calls
            .get_or_create(&vec![
                ("advisor", advisor.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
        self.advisor_durations
            .get_or_create(&vec![("advisor", advisor.to_owned())])
            .observe(took.as_secs_f64());
    }

    /// This agent's place in the fleet: `up` while it reaches etcd with quorum, `leader`
    /// while it leads. Only an agent with a `coordination` section calls it, so a single
    /// agent exports no fleet series at all (and no alert of the fleet's can fire on it).
    /// Also brings this agent's fleet counters to zero, so `increase()` sees their first.
    pub fn coordination(&self, agent: &str, up: bool, leader: bool) {
        let of_agent = || vec![("agent", agent.to_owned())];
        self.coordination_up
            .get_or_create(&of_agent())
            .set(i64::from(up));
        self.leader
            .get_or_create(&of_agent())
            .set(i64::from(leader));
        self.leader_changes.get_or_create(&of_agent()).inc_by(0);
        for action in FENCED_ACTIONS {
            self.fenced_refusals
                .get_or_create(&fenced(agent, action))
                .inc_by(0);
        }
    }

    /// The fleet's leadership changed hands, as this agent saw it: it became leader, lost
    /// leadership, or saw another leader replace one.
    pub fn leader_changed(&self, agent: &str) {
        self.leader_changes
            .get_or_create(&vec![("agent", agent.to_owned())])
            .inc();
    }

    /// etcd refused the fence before `action` (one of `pre_failover_hook`, `promote`,
    /// `dns`, `post_failover_hook`, `settle`): this agent no longer led in its term.
    pub fn fenced_refusal(&self, agent: &str, action: &str) {
        self.fenced_refusals
            .get_or_create(&fenced(agent, action))
            .inc();
    }
}

fn fenced(agent: &str, action: &str) -> Labels {
    vec![("agent", agent.to_owned()), ("action", action.to_owned())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    fn assert_lines(out: &str, lines: &[&str]) {
        for line in lines {
            assert!(out.contains(&format!("{line}\n")), "{line}\n{out}");
        }
    }

    #[test]
    fn a_single_agent_exports_no_fleet_series() {
        let mut registry = Registry::default();
        DecisionMetrics::register(&mut registry);
        let out = exposition(&registry);
        for series in [
            "redis_agent_coordination_up{",
            "redis_agent_leader{",
            "redis_agent_leader_changes_total{",
            "redis_agent_fenced_refusals_total{",
        ] {
            assert!(!out.contains(series), "{series} in\n{out}");
        }
    }

    #[test]
    fn the_leader_reports_itself_and_its_counters_start_at_zero() {
        let mut registry = Registry::default();
        let metrics = DecisionMetrics::register(&mut registry);
        metrics.coordination("agent-a", true, true);
        assert_lines(
            &exposition(&registry),
            &[
                r#"redis_agent_coordination_up{agent="agent-a"} 1"#,
                r#"redis_agent_leader{agent="agent-a"} 1"#,
                r#"redis_agent_leader_changes_total{agent="agent-a"} 0"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-a",action="pre_failover_hook"} 0"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-a",action="promote"} 0"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-a",action="dns"} 0"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-a",action="post_failover_hook"} 0"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-a",action="settle"} 0"#,
            ],
        );
    }

    #[test]
    fn a_leader_that_loses_etcd_reports_down_and_a_change() {
        let mut registry = Registry::default();
        let metrics = DecisionMetrics::register(&mut registry);
        metrics.coordination("agent-b", true, true);
        metrics.coordination("agent-b", false, false);
        metrics.leader_changed("agent-b");
        assert_lines(
            &exposition(&registry),
            &[
                r#"redis_agent_coordination_up{agent="agent-b"} 0"#,
                r#"redis_agent_leader{agent="agent-b"} 0"#,
                r#"redis_agent_leader_changes_total{agent="agent-b"} 1"#,
            ],
        );
    }

    #[test]
    fn a_follower_reports_zero_and_counts_refusals_by_action() {
        let mut registry = Registry::default();
        let metrics = DecisionMetrics::register(&mut registry);
        metrics.coordination("agent-c", true, false);
        metrics.fenced_refusal("agent-c", "dns");
        metrics.fenced_refusal("agent-c", "dns");
        metrics.fenced_refusal("agent-c", "settle");
        assert_lines(
            &exposition(&registry),
            &[
                r#"redis_agent_coordination_up{agent="agent-c"} 1"#,
                r#"redis_agent_leader{agent="agent-c"} 0"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-c",action="dns"} 2"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-c",action="settle"} 1"#,
                r#"redis_agent_fenced_refusals_total{agent="agent-c",action="promote"} 0"#,
            ],
        );
    }
}
