//! The agent's own series about collection, per endpoint, rendered from the store so
//! they disappear with the endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use super::encode::{EndpointLabels, Labels, family};
use super::info_table::Kind;
use super::observer::Observer;
use crate::model::{ErrorKind, SnapshotStore, Table};

#[derive(Debug)]
pub struct AgentCollector {
    store: Arc<SnapshotStore>,
    observer: Option<Observer>,
}

impl AgentCollector {
    pub fn new(store: Arc<SnapshotStore>, observer: Option<Observer>) -> Self {
        Self { store, observer }
    }
}

impl Collector for AgentCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let all = self.store.all();
        let labels: Vec<EndpointLabels<'_>> = all
            .iter()
            .map(|s| EndpointLabels::new(&s.key, self.observer.as_ref()))
            .collect();
        let all: Vec<_> = all.iter().zip(&labels).collect();
        let e = &mut encoder;

        let endpoints = ConstGauge::new(all.len() as i64);
        endpoints.encode(e.encode_descriptor(
            "redis_agent_endpoints",
            "Endpoints (instance x datacenter) being collected.",
            None,
            endpoints.metric_type(),
        )?)?;
        family(
            e,
            "redis_agent_collection_rounds_total",
            "Collection rounds finished, successful or not.",
            Kind::Counter,
            all.iter().map(|(s, l)| (Labels::of(l), s.rounds as f64)),
        )?;
        family(
            e,
            "redis_agent_collection_duration_seconds_total",
            "Time spent in collection rounds, in seconds; divide its rate by the rate of rounds for the mean.",
            Kind::Counter,
            all.iter()
                .map(|(s, l)| (Labels::of(l), s.total_duration.as_secs_f64())),
        )?;
        family(
            e,
            "redis_agent_last_collection_duration_seconds",
            "Duration of the latest collection round, in seconds.",
            Kind::Gauge,
            all.iter().filter_map(|(s, l)| {
                let round = s.last_round.as_ref()?;
                Some((Labels::of(l), round.duration.as_secs_f64()))
            }),
        )?;
        family(
            e,
            "redis_agent_collection_errors_total",
            "Failed collection steps by kind: connect, timeout, auth, tls, io, server, protocol.",
            Kind::Counter,
            all.iter().flat_map(|(s, l)| {
                ErrorKind::ALL.iter().map(move |kind| {
                    let labels = Labels::of(l).with("kind", kind.as_str());
                    (labels, s.errors.get(*kind) as f64)
                })
            }),
        )?;
        family(
            e,
            "redis_agent_info_entries_dropped_total",
            "INFO rows not turned into series, by table: past their limit (limits.max_commands_per_endpoint, max_error_kinds_per_endpoint, max_databases_per_endpoint) or repeating an earlier row.",
            Kind::Counter,
            all.iter().flat_map(|(s, l)| {
                Table::ALL.iter().map(move |table| {
                    let labels = Labels::of(l).with("table", table.as_str());
                    (labels, s.dropped.rows(*table) as f64)
                })
            }),
        )?;
        family(
            e,
            "redis_agent_info_invalid_utf8_total",
            "Lines of INFO replies that were not valid UTF-8; kept with U+FFFD for the bad bytes.",
            Kind::Counter,
            all.iter()
                .map(|(s, l)| (Labels::of(l), s.dropped.invalid_utf8 as f64)),
        )?;
        family(
            e,
            "redis_agent_reply_too_large_total",
            "Replies larger than limits.max_reply_bytes; each closed its connection and failed its round.",
            Kind::Counter,
            all.iter()
                .map(|(s, l)| (Labels::of(l), s.replies_too_large as f64)),
        )?;
        family(
            e,
            "redis_agent_last_success_timestamp_seconds",
            "Unix time of the latest successful collection round.",
            Kind::Gauge,
            all.iter().filter_map(|(s, l)| {
                let at = s.last_success.as_ref()?.taken_at;
                let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
                Some((Labels::of(l), secs))
            }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::model::{EndpointKey, EndpointStatus};

    #[test]
    fn entries_not_kept_and_replies_too_large_are_counted_per_endpoint() {
        let store = Arc::new(SnapshotStore::new());
        let key = EndpointKey::new("cache", "east");
        let status = || EndpointStatus::new(key.clone(), 1, "x:1".into(), Duration::from_secs(5));
        store.register(status());
        let mut s = status();
        s.dropped.add(Table::Commands, 19_500);
        s.dropped.invalid_utf8 = 2;
        s.replies_too_large = 3;
        store.publish(s);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(AgentCollector::new(store, None)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        let labels = r#"redis_instance="cache",datacenter="east""#;
        for line in [
            format!(r#"redis_agent_info_entries_dropped_total{{{labels},table="commands"}} 19500"#),
            format!(r#"redis_agent_info_entries_dropped_total{{{labels},table="errors"}} 0"#),
            format!("redis_agent_info_invalid_utf8_total{{{labels}}} 2"),
            format!("redis_agent_reply_too_large_total{{{labels}}} 3"),
        ] {
            assert!(out.contains(&format!("{line}\n")), "{line}\n{out}");
        }
    }
}
