//! The lag between datacenters against the data-loss budget, so that a rule can alert
//! before a failover would hold: `redis_cross_datacenter_lag_{bytes,seconds}` of every
//! datacenter that copies the instance's active datacenter's writes, and
//! `redis_data_loss_budget_{bytes,seconds}` of every instance with a budget.
//!
//! The lag is the estimate the failover makes ([`crate::model::replication`]), from the
//! same latest rounds and Enterprise views, with the active datacenter alive: a series
//! exists only where replication between the two exists and its figure is known.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{EndpointLabels, Labels, family};
use super::info_table::Kind;
use super::observer::Observer;
use crate::model::enterprise::EnterpriseStore;
use crate::model::replication::{self, Basis, Budget, Estimate, Side};
use crate::model::{ActiveDatacenters, EndpointKey, InstanceId, SnapshotStore};

/// Every instance's data-loss budget and the names its Enterprise database may go by,
/// replaced on reload.
#[derive(Debug, Default)]
pub struct Budgets {
    instances: RwLock<BTreeMap<InstanceId, (Budget, Vec<String>)>>,
}

impl Budgets {
    pub fn new() -> Self {
        Self::default()
    }

    /// `budgets`: per instance, its budget and its database names (uid, name).
    pub fn set(&self, budgets: BTreeMap<InstanceId, (Budget, Vec<String>)>) {
        *self.instances.write().unwrap_or_else(|e| e.into_inner()) = budgets;
    }

    fn all(&self) -> BTreeMap<InstanceId, (Budget, Vec<String>)> {
        self.instances
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[derive(Debug)]
pub struct ReplicationCollector {
    store: Arc<SnapshotStore>,
    enterprise: Arc<EnterpriseStore>,
    active: Arc<ActiveDatacenters>,
    budgets: Arc<Budgets>,
    observer: Option<Observer>,
}

impl ReplicationCollector {
    pub fn new(
        store: Arc<SnapshotStore>,
        enterprise: Arc<EnterpriseStore>,
        active: Arc<ActiveDatacenters>,
        budgets: Arc<Budgets>,
        observer: Option<Observer>,
    ) -> Self {
        Self {
            store,
            enterprise,
            active,
            budgets,
            observer,
        }
    }

    /// The estimate of every datacenter of every instance against its active one.
    fn lags(&self, budgets: &BTreeMap<InstanceId, (Budget, Vec<String>)>) -> Vec<Lag> {
        let now = SystemTime::now();
        let mut lags = Vec::new();
        for routing in self.active.all() {
            let a = &routing.active;
            let names: Vec<&str> = match budgets.get(&routing.instance) {
                Some((_, names)) => names.iter().map(String::as_str).collect(),
                None => vec![routing.instance.as_str()],
            };
            let status = |dc| {
                self.store.get(&EndpointKey {
                    instance: routing.instance.clone(),
                    datacenter: dc,
                })
            };
            let a_status = status(a.clone());
            let a_cluster = self.enterprise.get(a);
            for b in routing.datacenters.iter().filter(|b| *b != a) {
                let b_status = status(b.clone());
                let b_cluster = self.enterprise.get(b);
                let estimate = replication::estimate(
                    Side {
                        datacenter: a,
                        endpoint: a_status.as_deref(),
                        cluster: a_cluster.as_deref(),
                    },
                    Side {
                        datacenter: b,
                        endpoint: b_status.as_deref(),
                        cluster: b_cluster.as_deref(),
                    },
                    &names,
                    now,
                );
                if estimate.basis != Basis::NoReplication {
                    let key = EndpointKey {
                        instance: routing.instance.clone(),
                        datacenter: b.clone(),
                    };
                    lags.push(Lag {
                        key,
                        source: a.to_string(),
                        estimate,
                    });
                }
            }
        }
        lags
    }
}

/// One replica datacenter's estimate against its instance's active datacenter.
struct Lag {
    /// The instance and the datacenter that copies (b).
    key: EndpointKey,
    /// The active datacenter it copies from (a).
    source: String,
    estimate: Estimate,
}

impl Lag {
    fn labels<'a>(&'a self, endpoint: &'a EndpointLabels<'a>) -> Labels<'a> {
        Labels::of(endpoint).with("source_datacenter", self.source.as_str())
    }
}

impl Collector for ReplicationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let budgets = self.budgets.all();
        let lags = self.lags(&budgets);
        let labels: Vec<EndpointLabels<'_>> = lags
            .iter()
            .map(|l| EndpointLabels::new(&l.key, self.observer.as_ref()))
            .collect();
        let rows = || lags.iter().zip(&labels);
        family(
            &mut encoder,
            "redis_cross_datacenter_lag_bytes",
            "Bytes of the active datacenter's (source_datacenter) replication stream this \
             datacenter had not received at the latest rounds; a lower bound. Only where \
             open-source replication between them exists.",
            Kind::Gauge,
            rows().filter_map(|(lag, l)| Some((lag.labels(l), lag.estimate.bytes? as f64))),
        )?;
        family(
            &mut encoder,
            "redis_cross_datacenter_lag_seconds",
            "Seconds of the active datacenter's (source_datacenter) writes this datacenter \
             lacks: from when its copy was last current to when the source was last seen. \
             Only where replication (open-source or Active-Active) between them exists.",
            Kind::Gauge,
            rows()
                .filter_map(|(lag, l)| Some((lag.labels(l), lag.estimate.seconds?.as_secs_f64()))),
        )?;
        budget_family(
            &mut encoder,
            "redis_data_loss_budget_bytes",
            "The instance's max_data_loss.bytes: a failover holds when the target lacks \
             more. Absent when unbounded.",
            budgets
                .iter()
                .filter_map(|(uid, (b, _))| Some((uid, b.bytes? as f64))),
        )?;
        budget_family(
            &mut encoder,
            "redis_data_loss_budget_seconds",
            "The instance's max_data_loss.seconds: a failover holds when the target lacks \
             more. Absent when unbounded.",
            budgets
                .iter()
                .filter_map(|(uid, (b, _))| Some((uid, b.seconds?.as_secs_f64()))),
        )
    }
}

/// A configured value per instance, labelled with the instance alone: the same for
/// every observer.
fn budget_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (&'a InstanceId, f64)>,
) -> fmt::Result {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (uid, value) in rows {
        let labels = [("redis_instance", uid.as_str())];
        let mut series = metric.encode_family(&labels)?;
        // Whole numbers as integers, as every other gauge of the agent.
        if value.fract() == 0.0 && value < 9.0e15 {
            series.encode_gauge(&(value as i64))?;
        } else {
            series.encode_gauge(&value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::collector::info::parse_info;
    use crate::model::{EndpointStatus, Instance, Snapshot};

    fn publish(store: &SnapshotStore, dc: &str, taken_at: SystemTime, info: &str) {
        let key = EndpointKey::new("orders", dc);
        let mut s = EndpointStatus::new(key, 1, format!("{dc}:6379"), Duration::from_secs(5));
        store.register(s.clone());
        s.last_success = Some(Arc::new(Snapshot {
            taken_at,
            finished: Instant::now(),
            ping_latency: Duration::from_millis(1),
            info: parse_info(format!("# Replication\r\n{info}")),
            cluster: None,
            sentinel_masters: Vec::new(),
        }));
        store.publish(s);
    }

    fn render(budget: Budget, replica: &str) -> String {
        let now = SystemTime::now();
        let store = Arc::new(SnapshotStore::new());
        publish(
            &store,
            "east",
            now,
            "role:master\r\nmaster_replid:r1\r\nmaster_repl_offset:3000000\r\n",
        );
        publish(&store, "west", now, replica);
        let mut instance = crate::decision::testkit::instance("orders");
        instance.uid = InstanceId::new("orders");
        let instances: Vec<Instance> = vec![instance];
        let active = Arc::new(ActiveDatacenters::new());
        active.apply(&instances);
        let budgets = Arc::new(Budgets::new());
        let names = vec!["orders".to_owned()];
        budgets.set([(InstanceId::new("orders"), (budget, names))].into());
        let collector = ReplicationCollector::new(
            store,
            Arc::new(EnterpriseStore::new()),
            active,
            budgets,
            None,
        );
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn a_lagging_replica_and_the_budget_are_exported() {
        let out = render(
            Budget::STORE,
            "role:slave\r\nmaster_host:10.9.9.9\r\nmaster_port:6379\r\nmaster_replid:r1\r\n\
             slave_repl_offset:1000000\r\nmaster_link_status:down\r\n\
             master_link_down_since_seconds:12\r\n",
        );
        let labels = "redis_instance=\"orders\",datacenter=\"west\",source_datacenter=\"east\"";
        for line in [
            format!("redis_cross_datacenter_lag_bytes{{{labels}}} 2000000"),
            format!("redis_cross_datacenter_lag_seconds{{{labels}}} 12"),
            "redis_data_loss_budget_bytes{redis_instance=\"orders\"} 1048576".into(),
            "redis_data_loss_budget_seconds{redis_instance=\"orders\"} 10".into(),
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
        }
    }

    #[test]
    fn without_replication_or_a_budget_nothing_is_exported() {
        let out = render(
            Budget::UNBOUNDED,
            "role:master\r\nmaster_replid:r2\r\nmaster_repl_offset:5\r\n",
        );
        for name in ["redis_cross_datacenter_lag", "redis_data_loss_budget"] {
            assert!(!out.contains(name), "{name} in\n{out}");
        }
    }
}
