//! The decision engine's own series on `/metrics`.

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone, Default)]
pub struct DecisionMetrics {
    webhook_requests: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    failovers: Family<Labels, Counter>,
    last_failover: Family<Labels, Gauge<f64, AtomicU64>>,
}

impl DecisionMetrics {
    pub fn register(registry: &mut Registry) -> DecisionMetrics {
        let m = DecisionMetrics::default();
        registry.register(
            "redis_agent_webhook_requests",
            "Requests to /webhook/alertmanager by result (accepted, unauthorized, bad_request, error)",
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
        for result in ["accepted", "unauthorized", "bad_request", "error"] {
            m.webhook_requests
                .get_or_create(&vec![("result", result.to_owned())])
                .inc_by(0);
        }
        m
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

    pub fn failover(&self, instance: &str, from: &str, to: &str, success: bool) {
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
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.last_failover
                .get_or_create(&vec![("redis_instance", instance.to_owned())])
                .set(now);
        }
    }
}
