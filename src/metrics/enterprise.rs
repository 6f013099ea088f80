//! `redis_enterprise_*`: what the Redis Enterprise collector last read of each
//! datacenter's cluster, rendered from the `EnterpriseStore`. A view whose latest poll
//! failed shows only `api_up` (0), the error counts and the time of the last success:
//! its other series disappear rather than repeat stale values.

use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::family;
use super::info_table::Kind;
use super::observer::Observer;
use crate::model::DatacenterId;
use crate::model::enterprise::{ClusterView, EnterpriseStore, StatSet, SyncStatus};

/// A statistic of `/v1/*/stats/last` exported as a gauge: the API's name, ours (unit
/// in the name), the help, and the factor to that unit.
type Stat = (&'static str, &'static str, &'static str, f64);

/// The REST API's statistics are described in its reference, `objects/statistics`
/// (cluster, node, database and shard metrics); `avg_latency` is in microseconds
/// (<https://redis.io/docs/latest/operate/rs/references/rest-api/objects/statistics/db-metrics>).
const CLUSTER_STATS: &[Stat] = &[
    (
        "conns",
        "redis_enterprise_cluster_connections",
        "Client connections to the cluster's databases.",
        1.0,
    ),
    (
        "free_memory",
        "redis_enterprise_cluster_free_memory_bytes",
        "Free memory of the cluster's nodes, in bytes.",
        1.0,
    ),
    (
        "total_req",
        "redis_enterprise_cluster_requests_per_second",
        "Requests per second to the cluster's databases.",
        1.0,
    ),
];

const NODE_STATS: &[Stat] = &[
    (
        "free_memory",
        "redis_enterprise_node_free_memory_bytes",
        "Free memory of the node, in bytes.",
        1.0,
    ),
    (
        "cpu_idle",
        "redis_enterprise_node_cpu_idle_ratio",
        "Share of the node's CPU time idle, 0 to 1.",
        1.0,
    ),
    (
        "conns",
        "redis_enterprise_node_connections",
        "Client connections to the node's endpoints.",
        1.0,
    ),
    (
        "persistent_storage_avail",
        "redis_enterprise_node_persistent_storage_available_bytes",
        "Persistent storage left on the node, in bytes.",
        1.0,
    ),
];

const DATABASE_STATS: &[Stat] = &[
    (
        "instantaneous_ops_per_sec",
        "redis_enterprise_database_ops_per_second",
        "Requests per second to the database.",
        1.0,
    ),
    (
        "used_memory",
        "redis_enterprise_database_used_memory_bytes",
        "Memory the database uses, in bytes.",
        1.0,
    ),
    (
        "avg_latency",
        "redis_enterprise_database_avg_latency_seconds",
        "Average latency of the database's operations, in seconds (when it has traffic).",
        1e-6,
    ),
    (
        "conns",
        "redis_enterprise_database_connections",
        "Client connections to the database.",
        1.0,
    ),
    (
        "no_of_keys",
        "redis_enterprise_database_keys",
        "Keys in the database.",
        1.0,
    ),
    (
        "evicted_objects",
        "redis_enterprise_database_evicted_objects_per_second",
        "Keys evicted per second.",
        1.0,
    ),
    (
        "ingress_bytes",
        "redis_enterprise_database_ingress_bytes_per_second",
        "Bytes per second received by the database.",
        1.0,
    ),
    (
        "egress_bytes",
        "redis_enterprise_database_egress_bytes_per_second",
        "Bytes per second sent by the database.",
        1.0,
    ),
];

const SHARD_STATS: &[Stat] = &[
    (
        "used_memory",
        "redis_enterprise_shard_used_memory_bytes",
        "Memory the shard uses, in bytes.",
        1.0,
    ),
    (
        "no_of_keys",
        "redis_enterprise_shard_keys",
        "Keys in the shard.",
        1.0,
    ),
];

type LabelSet = Vec<(&'static str, String)>;

#[derive(Debug)]
pub struct EnterpriseCollector {
    store: Arc<EnterpriseStore>,
    observer: Option<Observer>,
}

impl EnterpriseCollector {
    pub fn new(store: Arc<EnterpriseStore>, observer: Option<Observer>) -> Self {
        Self { store, observer }
    }

    /// `datacenter` with whose view it is in a fleet, then `extra`.
    fn labels(&self, dc: &DatacenterId, extra: &[(&'static str, String)]) -> LabelSet {
        let mut labels = vec![("datacenter", dc.to_string())];
        if let Some(observer) = &self.observer {
            labels.extend(
                observer
                    .labels(dc)
                    .into_iter()
                    .map(|(k, v)| (k, v.to_owned())),
            );
        }
        labels.extend(extra.iter().cloned());
        labels
    }
}

fn bool_value(b: bool) -> f64 {
    f64::from(u8::from(b))
}

impl Collector for EnterpriseCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let all = self.store.all();
        let e = &mut encoder;
        family(
            e,
            "redis_enterprise_api_up",
            "1 when the latest poll of the datacenter's Redis Enterprise REST API succeeded.",
            Kind::Gauge,
            all.iter()
                .map(|(dc, v)| (self.labels(dc, &[]), bool_value(v.is_fresh()))),
        )?;
        family(
            e,
            "redis_enterprise_api_errors_total",
            "Failed polls of the Redis Enterprise REST API, by kind (unauthorized, not_found, timeout, unavailable, tls, invalid).",
            Kind::Counter,
            all.iter().flat_map(|(dc, v)| {
                v.api_errors
                    .iter()
                    .map(|(kind, n)| (self.labels(dc, &[("kind", kind.clone())]), *n as f64))
            }),
        )?;
        family(
            e,
            "redis_enterprise_api_last_success_timestamp_seconds",
            "Unix time of the latest successful poll of the REST API.",
            Kind::Gauge,
            all.iter().filter_map(|(dc, v)| {
                let at = v.read_at?.duration_since(UNIX_EPOCH).ok()?;
                Some((self.labels(dc, &[]), at.as_secs_f64()))
            }),
        )?;
        let fresh: Vec<(&DatacenterId, &ClusterView)> = all
            .iter()
            .filter(|(_, v)| v.is_fresh())
            .map(|(dc, v)| (dc, v.as_ref()))
            .collect();
        self.status(e, &fresh)?;
        self.syncers(e, &fresh)?;
        self.stats(e, &fresh)
    }
}

impl EnterpriseCollector {
    fn status(
        &self,
        e: &mut DescriptorEncoder,
        fresh: &[(&DatacenterId, &ClusterView)],
    ) -> fmt::Result {
        family(
            e,
            "redis_enterprise_node_up",
            "1 when the cluster node's status is active.",
            Kind::Gauge,
            fresh.iter().flat_map(|(dc, v)| {
                v.nodes.iter().map(|n| {
                    (
                        self.labels(dc, &[("node", n.uid.to_string())]),
                        bool_value(n.is_up()),
                    )
                })
            }),
        )?;
        family(
            e,
            "redis_enterprise_database_up",
            "1 when the database's status is active.",
            Kind::Gauge,
            fresh.iter().flat_map(|(dc, v)| {
                v.databases.iter().map(|db| {
                    let extra = [
                        ("database", db.uid.to_string()),
                        ("database_name", db.name.clone()),
                    ];
                    (self.labels(dc, &extra), bool_value(db.status == "active"))
                })
            }),
        )?;
        family(
            e,
            "redis_enterprise_shard_up",
            "1 when the shard's status is active; role is master or slave, as the API names them.",
            Kind::Gauge,
            fresh.iter().flat_map(|(dc, v)| {
                v.databases.iter().flat_map(move |db| {
                    db.shards.iter().map(move |s| {
                        let extra = [
                            ("database", db.uid.to_string()),
                            ("shard", s.uid.to_string()),
                            ("role", s.role.clone()),
                        ];
                        (self.labels(dc, &extra), bool_value(s.is_up()))
                    })
                })
            }),
        )
    }

    fn syncers(
        &self,
        e: &mut DescriptorEncoder,
        fresh: &[(&DatacenterId, &ClusterView)],
    ) -> fmt::Result {
        let sources: Vec<(LabelSet, &crate::model::enterprise::SyncSource)> = fresh
            .iter()
            .flat_map(|(dc, v)| {
                v.databases.iter().flat_map(move |db| {
                    db.sources.iter().map(move |s| {
                        let extra = [
                            ("database", db.uid.to_string()),
                            ("source_datacenter", s.label()),
                        ];
                        (self.labels(dc, &extra), s)
                    })
                })
            })
            .collect();
        family(
            e,
            "redis_enterprise_crdt_syncer_in_sync",
            "1 when the Active-Active syncer bringing source_datacenter's writes into this database is in sync; 0 while syncing or out of sync.",
            Kind::Gauge,
            sources
                .iter()
                .map(|(l, s)| (l.clone(), bool_value(s.status == SyncStatus::InSync))),
        )?;
        family(
            e,
            "redis_enterprise_crdt_syncer_lag_seconds",
            "Lag of this database behind source_datacenter's, as its syncer reports it, in seconds.",
            Kind::Gauge,
            sources
                .iter()
                .filter_map(|(l, s)| Some((l.clone(), s.lag?.as_secs_f64()))),
        )
    }

    fn stats(
        &self,
        e: &mut DescriptorEncoder,
        fresh: &[(&DatacenterId, &ClusterView)],
    ) -> fmt::Result {
        for (api, name, help, factor) in CLUSTER_STATS {
            family(
                e,
                name,
                help,
                Kind::Gauge,
                fresh.iter().filter_map(|(dc, v)| {
                    Some((self.labels(dc, &[]), v.stats.cluster.get(*api)? * factor))
                }),
            )?;
        }
        let by_uid =
            |e: &mut DescriptorEncoder,
             table: &[Stat],
             label: &'static str,
             sets: &dyn Fn(&ClusterView) -> &std::collections::BTreeMap<u64, StatSet>| {
                for (api, name, help, factor) in table {
                    family(
                        e,
                        name,
                        help,
                        Kind::Gauge,
                        fresh.iter().flat_map(|(dc, v)| {
                            sets(v).iter().filter_map(move |(uid, set)| {
                                let value = set.get(*api)? * factor;
                                Some((self.labels(dc, &[(label, uid.to_string())]), value))
                            })
                        }),
                    )?;
                }
                Ok::<(), fmt::Error>(())
            };
        by_uid(e, NODE_STATS, "node", &|v| &v.stats.nodes)?;
        by_uid(e, DATABASE_STATS, "database", &|v| &v.stats.databases)?;
        by_uid(e, SHARD_STATS, "shard", &|v| &v.stats.shards)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    use super::*;
    use crate::model::enterprise::{Database, Node, Shard, SyncSource};

    fn view() -> ClusterView {
        ClusterView {
            polled_at: Some(UNIX_EPOCH + Duration::from_secs(120)),
            error: None,
            read_at: Some(UNIX_EPOCH + Duration::from_secs(120)),
            nodes: vec![Node {
                uid: 1,
                status: "down".into(),
            }],
            databases: vec![Database {
                uid: 4,
                name: "cache".into(),
                status: "active".into(),
                crdt: true,
                shards: vec![Shard {
                    uid: 7,
                    role: "master".into(),
                    status: "active".into(),
                }],
                sources: vec![SyncSource {
                    datacenter: None,
                    uri: "redis://redis-1.elsewhere.example:12000".into(),
                    status: SyncStatus::Syncing,
                    lag: Some(Duration::from_millis(1500)),
                    last_update: None,
                    last_in_sync: None,
                }],
            }],
            stats: crate::model::enterprise::Stats {
                databases: [(4, [("avg_latency".to_owned(), 2000.0)].into())].into(),
                ..Default::default()
            },
            ..ClusterView::default()
        }
    }

    fn render(store: Arc<EnterpriseStore>, observer: Option<Observer>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(EnterpriseCollector::new(store, observer)));
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn a_fresh_view_renders_its_series_with_units() {
        let store = Arc::new(EnterpriseStore::new());
        store.publish(DatacenterId::new("east"), view());
        let text = render(Arc::clone(&store), None);
        for line in [
            "redis_enterprise_api_up{datacenter=\"east\"} 1\n",
            "redis_enterprise_api_last_success_timestamp_seconds{datacenter=\"east\"} 120\n",
            "redis_enterprise_node_up{datacenter=\"east\",node=\"1\"} 0\n",
            "redis_enterprise_database_up{datacenter=\"east\",database=\"4\",database_name=\"cache\"} 1\n",
            "redis_enterprise_shard_up{datacenter=\"east\",database=\"4\",shard=\"7\",role=\"master\"} 1\n",
            "redis_enterprise_crdt_syncer_in_sync{datacenter=\"east\",database=\"4\",source_datacenter=\"redis-1.elsewhere.example\"} 0\n",
            "redis_enterprise_crdt_syncer_lag_seconds{datacenter=\"east\",database=\"4\",source_datacenter=\"redis-1.elsewhere.example\"} 1.5\n",
            "redis_enterprise_database_avg_latency_seconds{datacenter=\"east\",database=\"4\"} 0.002\n",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(!text.contains("redis_enterprise_api_errors"), "{text}");
    }

    #[test]
    fn a_failed_poll_leaves_only_the_api_series() {
        let store = Arc::new(EnterpriseStore::new());
        let mut failed = view();
        failed.error = Some("GET /v1/nodes: HTTP 500".into());
        failed.api_errors.insert("unavailable".into(), 2);
        store.publish(DatacenterId::new("east"), failed);
        let observer = Observer {
            name: "agent-a".into(),
            datacenter: Some(DatacenterId::new("west")),
        };
        let text = render(store, Some(observer));
        assert_eq!(
            text,
            "# HELP redis_enterprise_api_up 1 when the latest poll of the datacenter's Redis Enterprise REST API succeeded.\n\
             # TYPE redis_enterprise_api_up gauge\n\
             redis_enterprise_api_up{datacenter=\"east\",observer=\"agent-a\",observer_datacenter=\"west\",vantage=\"outside\"} 0\n\
             # HELP redis_enterprise_api_errors Failed polls of the Redis Enterprise REST API, by kind (unauthorized, not_found, timeout, unavailable, tls, invalid).\n\
             # TYPE redis_enterprise_api_errors counter\n\
             redis_enterprise_api_errors_total{datacenter=\"east\",observer=\"agent-a\",observer_datacenter=\"west\",vantage=\"outside\",kind=\"unavailable\"} 2\n\
             # HELP redis_enterprise_api_last_success_timestamp_seconds Unix time of the latest successful poll of the REST API.\n\
             # TYPE redis_enterprise_api_last_success_timestamp_seconds gauge\n\
             redis_enterprise_api_last_success_timestamp_seconds{datacenter=\"east\",observer=\"agent-a\",observer_datacenter=\"west\",vantage=\"outside\"} 120\n\
             # EOF\n"
        );
    }
}
