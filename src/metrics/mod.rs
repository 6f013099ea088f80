//! The Prometheus registry: Redis series rendered from the latest snapshots, the agent's
//! own series, and families that other parts register. Built once at start.
//!
//! Layout: `info_table` maps INFO fields to series, `redis` and `agent` are the custom
//! collectors over the store, `encode` holds their shared helpers, `text` converts
//! OpenMetrics to the classic text format for scrapers that ask for it, `process` reads
//! the `process_*` series from `/proc/self`, and `cache` keeps a rendered body (and its
//! gzip) for every scraper of a round; `enterprise` renders the Redis Enterprise
//! clusters' series.

mod agent;
mod analysis;
pub mod cache;
mod encode;
mod enterprise;
mod info_table;
mod observer;
mod process;
mod redis;
mod replication;
mod routing;
mod text;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use info_table::{CLUSTER_METRICS, INFO_METRICS, InfoMetric, Kind};
pub use observer::Observer;
pub use replication::{Budgets, ReplicationCollector};

use cache::{Exposition, Policy, RenderCache};

use crate::model::enterprise::EnterpriseStore;
use crate::model::{ActiveDatacenters, AnalysisStore, SnapshotStore};

/// The exposition format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The classic Prometheus text format, version 0.0.4.
    Text,
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Format::OpenMetrics => "openmetrics",
            Format::Text => "text",
        }
    }

    /// OpenMetrics when the `Accept` header asks for it (Prometheus does), else text.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Size of the previous output, to allocate the next one at once.
    last_len: AtomicUsize,
    scratch: Mutex<String>,
    /// How long the previous `/metrics` took to render, shown by the next one.
    render_seconds: Gauge<f64, AtomicU64>,
    renders: Family<Vec<(&'static str, &'static str)>, Counter>,
    cache: RenderCache,
}

/// Why `/metrics` could not be served.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("encoding failed")]
    Encode(#[from] fmt::Error),
    #[error("the render panicked")]
    Panicked,
}

/// The upper bound of a cached body's age until [`Metrics::set_cache`] says otherwise:
/// the default collection interval.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5);

impl Metrics {
    /// `threshold` is the configured `anomaly_threshold`, shown with the scores;
    /// `observer` is this agent in a fleet, whose view every series of an endpoint or a
    /// datacenter is (`observer`), `None` for an agent alone.
    pub fn new(
        store: Arc<SnapshotStore>,
        analysis: Arc<AnalysisStore>,
        active: Arc<ActiveDatacenters>,
        threshold: f64,
        observer: Option<Observer>,
    ) -> Self {
        let mut registry = Registry::default();
        let build_info = Family::<Vec<(String, String)>, Gauge>::default();
        build_info
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        registry.register(
            "redis_agent_build_info",
            "Version of the agent; always 1",
            build_info,
        );
        let render_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "redis_agent_metrics_render_seconds",
            "Time the previous /metrics took to render, in seconds",
            render_seconds.clone(),
        );
        let renders = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        registry.register(
            "redis_agent_metrics_renders",
            "Bodies of /metrics rendered, by format; a scrape served a body already \
             rendered (see docs/metrics.md, \"Serving a scrape\") renders none",
            renders.clone(),
        );
        for format in [Format::Text, Format::OpenMetrics] {
            renders
                .get_or_create(&vec![("format", format.label())])
                .inc_by(0);
        }
        registry.register_collector(Box::new(process::ProcessCollector));
        registry.register_collector(Box::new(redis::RedisCollector::new(
            Arc::clone(&store),
            observer.clone(),
        )));
        registry.register_collector(Box::new(agent::AgentCollector::new(
            store,
            observer.clone(),
        )));
        registry.register_collector(Box::new(analysis::AnalysisCollector::new(
            analysis,
            threshold,
            observer.clone(),
        )));
        registry.register_collector(Box::new(routing::RoutingCollector::new(active, observer)));
        Self {
            registry,
            last_len: AtomicUsize::new(64 * 1024),
            scratch: Mutex::new(String::new()),
            render_seconds,
            renders,
            cache: RenderCache::new(Policy::for_interval(DEFAULT_MAX_AGE)),
        }
    }

    /// When a rendered body may be served again: [`Policy::for_interval`] of the
    /// collection interval, but in tests.
    pub fn set_cache(&mut self, policy: Policy) {
        self.cache = RenderCache::new(policy);
    }

    /// The next scrape renders afresh (a reload changed what is collected).
    pub fn invalidate(&self) {
        self.cache.invalidate();
    }

    /// The body of `format` for a scrape: the one rendered for this round, or a new one
    /// rendered on the blocking pool (concurrent scrapes wait for the same render).
    pub async fn exposition(
        self: &Arc<Self>,
        format: Format,
    ) -> Result<Arc<Exposition>, RenderError> {
        let metrics = Arc::clone(self);
        self.cache
            .get(format, move || metrics.render(format))
            .await
            .map_err(|e| e.map_or(RenderError::Panicked, RenderError::Encode))
    }

    /// The Redis Enterprise clusters' series (`redis_enterprise_*`), as the collector
    /// last read them.
    pub fn add_enterprise(&mut self, store: Arc<EnterpriseStore>, observer: Option<Observer>) {
        self.registry
            .register_collector(Box::new(enterprise::EnterpriseCollector::new(
                store, observer,
            )));
    }

    /// For later parts that add their own families.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn render(&self, format: Format) -> Result<String, fmt::Error> {
        let started = Instant::now();
        let size = self.last_len.load(Ordering::Relaxed) + 4096;
        let out = match format {
            Format::OpenMetrics => {
                let mut out = String::with_capacity(size);
                prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
                out
            }
            Format::Text => {
                // The OpenMetrics stage goes into a buffer kept between scrapes: its
                // memory is already mapped, which saves a page fault every 4 KiB.
                let mut fresh = String::new();
                let mut kept = self.scratch.try_lock();
                let scratch = match kept.as_deref_mut() {
                    Ok(buffer) => buffer,
                    Err(_) => &mut fresh,
                };
                scratch.clear();
                scratch.reserve(size);
                prometheus_client::encoding::text::encode(scratch, &self.registry)?;
                text::openmetrics_to_text(scratch)
            }
        };
        self.last_len.store(out.len(), Ordering::Relaxed);
        self.render_seconds.set(started.elapsed().as_secs_f64());
        self.renders
            .get_or_create(&vec![("format", format.label())])
            .inc();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::collector::info::{parse_cluster_info, parse_info};
    use crate::model::{
        Analysis, AnomalyScore, AnomalyState, EndpointKey, EndpointStatus, HealthStatus, Round,
        SentinelMaster, Snapshot,
    };

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn publish(store: &SnapshotStore, instance: &str, info: &str, cluster: Option<&str>) {
        let key = EndpointKey::new(instance, "east");
        store.register(EndpointStatus::new(
            key.clone(),
            1,
            "127.0.0.1:1".into(),
            Duration::from_secs(5),
        ));
        let info = parse_info(fixture(info));
        let sentinel_masters = info
            .sentinel_masters
            .iter()
            .map(|m| SentinelMaster {
                quorum: Some(2),
                quorum_ok: Some(false),
                ..m.clone()
            })
            .collect();
        let now = Instant::now();
        let mut status = EndpointStatus::new(key, 1, "127.0.0.1:1".into(), Duration::from_secs(5));
        status.rounds = 3;
        status.last_round = Some(Round {
            finished: now,
            at: SystemTime::now(),
            duration: Duration::from_millis(2),
            error: None,
        });
        status.last_success = Some(Arc::new(Snapshot {
            taken_at: SystemTime::now(),
            finished: now,
            ping_latency: Duration::from_micros(250),
            info,
            cluster: cluster.map(|c| parse_cluster_info(fixture(c))),
            sentinel_masters,
        }));
        store.publish(status);
    }

    fn rendered() -> String {
        rendered_by(None)
    }

    fn rendered_by(observer: Option<Observer>) -> String {
        let store = Arc::new(SnapshotStore::new());
        publish(&store, "primary", "info-master.txt", None);
        publish(&store, "replica", "info-replica.txt", None);
        publish(&store, "broken-replica", "info-replica-link-down.txt", None);
        publish(
            &store,
            "node",
            "info-cluster-node.txt",
            Some("cluster-info.txt"),
        );
        publish(&store, "sentinel", "info-sentinel.txt", None);
        let analysis = Arc::new(AnalysisStore::new());
        let score = AnomalyScore {
            at: SystemTime::now(),
            score: 0.93,
            anomalous: true,
            zscores: vec![("ping_latency_milliseconds", 41.5), ("hit_ratio", -0.2)],
            contributors: vec![("ping_latency_milliseconds", 41.5)],
        };
        analysis.publish(
            EndpointKey::new("primary", "east"),
            Analysis {
                anomaly: AnomalyState::Ready {
                    samples: 500,
                    trained_at: SystemTime::now(),
                    latest: Some(score.clone()),
                    last_anomaly: Some(score),
                },
                health_score: 0.5,
                health_status: HealthStatus::Degraded,
                up: true,
            },
        );
        analysis.publish(
            EndpointKey::new("replica", "west"),
            Analysis {
                anomaly: AnomalyState::WarmingUp {
                    samples: 3,
                    needed: 120,
                },
                health_score: 0.0,
                health_status: HealthStatus::Failed,
                up: false,
            },
        );
        // What the anomaly engine publishes after its pass.
        let all = analysis.all();
        analysis.publish_datacenters(crate::health::datacenters(
            all.iter()
                .map(|(k, a)| (&k.datacenter, a.health_score, a.up)),
        ));
        let active = Arc::new(ActiveDatacenters::new());
        active.apply(&[crate::model::Instance {
            uid: crate::model::InstanceId::new("primary"),
            name: "primary".into(),
            endpoints: ["east", "west"]
                .into_iter()
                .map(|dc| {
                    let endpoint = crate::model::Endpoint {
                        key: EndpointKey::new("primary", dc),
                        host: "127.0.0.1".into(),
                        port: 1,
                        username: None,
                        password: None,
                        tls: None,
                        sentinel: None,
                    };
                    (crate::model::DatacenterId::new(dc), endpoint)
                })
                .collect(),
            active_dc: crate::model::DatacenterId::new("west"),
        }]);
        Metrics::new(store, analysis, active, 0.8, observer)
            .render(Format::Text)
            .unwrap()
    }

    fn line(text: &str, prefix: &str) -> String {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix}"))
            .to_owned()
    }

    #[test]
    fn every_role_renders_its_series() {
        let text = rendered();
        let l = |p: &str| line(&text, p);
        assert_eq!(
            l("redis_active_datacenter{redis_instance=\"primary\",datacenter=\"east\"}"),
            "redis_active_datacenter{redis_instance=\"primary\",datacenter=\"east\"} 0"
        );
        assert_eq!(
            l("redis_active_datacenter{redis_instance=\"primary\",datacenter=\"west\"}"),
            "redis_active_datacenter{redis_instance=\"primary\",datacenter=\"west\"} 1"
        );
        assert_eq!(
            l("redis_connected_slaves{redis_instance=\"primary\""),
            "redis_connected_slaves{redis_instance=\"primary\",datacenter=\"east\"} 2"
        );
        assert!(l("redis_master_link_up{redis_instance=\"replica\"").ends_with("} 1"));
        assert!(l("redis_master_link_up{redis_instance=\"broken-replica\"").ends_with("} 0"));
        assert!(l("redis_cluster_state{redis_instance=\"node\"").ends_with("} 1"));
        assert!(l("redis_cluster_slots_assigned{redis_instance=\"node\"").ends_with("} 16384"));
        assert!(
            l("redis_sentinel_master_status{redis_instance=\"sentinel\"")
                .contains("master_status=\"ok\"} 1")
        );
        assert!(
            l("redis_sentinel_master_ckquorum_status{redis_instance=\"sentinel\"").ends_with("} 0")
        );
        assert!(
            l("redis_db_keys_expiring{redis_instance=\"primary\",datacenter=\"east\",db=\"db0\"}")
                .ends_with(" 40")
        );
        assert!(
            l("redis_commands_total{redis_instance=\"primary\",datacenter=\"east\",cmd=\"get\"}")
                .ends_with(" 260")
        );
        assert!(
            l("redis_errors_total{redis_instance=\"node\",datacenter=\"east\",err=\"MOVED\"}")
                .ends_with(" 145")
        );
        assert!(l("redis_memory_max_bytes{redis_instance=\"primary\"").ends_with(" 104857600"));
        assert_eq!(
            l("redis_ping_latency_seconds{redis_instance=\"primary\""),
            "redis_ping_latency_seconds{redis_instance=\"primary\",datacenter=\"east\"} 0.00025"
        );
        assert!(l("redis_agent_collection_rounds_total{redis_instance=\"node\"").ends_with(" 3"));
        assert_eq!(
            l("redis_anomaly_score{redis_instance=\"primary\""),
            "redis_anomaly_score{redis_instance=\"primary\",datacenter=\"east\"} 0.93"
        );
        assert!(text.contains("redis_anomaly_top_contributor_zscore{redis_instance=\"primary\",datacenter=\"east\",rank=\"1\",feature=\"ping_latency_milliseconds\"} 41.5"));
        assert!(text.contains(
            "redis_anomaly_model_ready{redis_instance=\"replica\",datacenter=\"west\"} 0"
        ));
        assert!(text.contains(
            "redis_anomaly_model_warmup_samples{redis_instance=\"replica\",datacenter=\"west\"} 120"
        ));
        assert!(
            !text.contains("redis_anomaly_score{redis_instance=\"replica\""),
            "no score while warming up"
        );
        assert!(text.contains("redis_health_status{redis_instance=\"primary\",datacenter=\"east\",status=\"degraded\"} 1"));
        assert!(text.contains("redis_datacenter_health_score{datacenter=\"west\"} 0"));
        assert!(
            text.contains(
                "redis_datacenter_health_status{datacenter=\"west\",status=\"failed\"} 1"
            )
        );
        // Families appear once, with HELP and TYPE, counters named with _total.
        assert_eq!(text.matches("# TYPE redis_up gauge").count(), 1);
        assert!(text.contains("# TYPE redis_commands_processed_total counter"));
    }

    /// The labels' part of every sample line (between the braces), for lines with a
    /// `datacenter` label: every series of an endpoint or of a datacenter.
    fn endpoint_series(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| Some(&l[l.find('{')? + 1..l.rfind('}')?]))
            .filter(|labels| labels.contains("datacenter=\""))
            .collect()
    }

    #[test]
    fn a_fleet_agents_series_say_whose_view_they_are() {
        let observer = |dc: Option<&str>| Observer {
            name: "agent-b".into(),
            datacenter: dc.map(crate::model::DatacenterId::new),
        };
        let text = rendered_by(Some(observer(Some("west"))));
        let l = |p: &str| line(&text, p);
        let east = r#"redis_instance="primary",datacenter="east",observer="agent-b",observer_datacenter="west",vantage="outside""#;
        let west = r#"redis_instance="primary",datacenter="west",observer="agent-b",observer_datacenter="west",vantage="inside""#;
        assert_eq!(
            l(&format!("redis_up{{{east}}}")),
            format!("redis_up{{{east}}} 1")
        );
        assert_eq!(
            l(&format!("redis_ping_latency_seconds{{{east}}}")),
            format!("redis_ping_latency_seconds{{{east}}} 0.00025")
        );
        assert_eq!(
            l(&format!("redis_active_datacenter{{{west}}}")),
            format!("redis_active_datacenter{{{west}}} 1")
        );
        assert!(text.contains(&format!("redis_commands_total{{{east},cmd=\"get\"}} 260\n")));
        assert!(text.contains(&format!(
            "redis_agent_collection_rounds_total{{{east}}} 3\n"
        )));
        assert!(text.contains(&format!("redis_health_score{{{east}}} 0.5\n")));
        assert!(text.contains(
            "redis_datacenter_health_score{datacenter=\"west\",observer=\"agent-b\",observer_datacenter=\"west\",vantage=\"inside\"} 0"
        ));
        assert!(text.contains(
            "redis_datacenter_health_status{datacenter=\"east\",observer=\"agent-b\",observer_datacenter=\"west\",vantage=\"outside\",status=\"degraded\"} 1\n"
        ));
        let series = endpoint_series(&text);
        assert!(series.len() > 100, "{text}");
        for labels in series {
            assert!(labels.contains(",observer=\"agent-b\","), "{labels}");
        }
        // An agent at a site without Redis (a witness) is outside everywhere.
        let text = rendered_by(Some(observer(None)));
        for labels in endpoint_series(&text) {
            assert!(
                labels.contains(",observer=\"agent-b\",vantage=\"outside\""),
                "{labels}"
            );
            assert!(!labels.contains("observer_datacenter"), "{labels}");
        }
    }

    #[test]
    fn a_single_agents_series_carry_no_observer() {
        let text = rendered();
        let series = endpoint_series(&text);
        assert!(series.len() > 100, "{text}");
        for labels in series {
            assert!(
                !labels.contains("observer") && !labels.contains("vantage"),
                "{labels}"
            );
        }
    }

    #[test]
    fn the_docs_document_every_family() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        // The reference pages; the runbooks below docs/runbooks/ are not one.
        for page in std::fs::read_dir(root.join("docs")).unwrap() {
            let path = page.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                readme += &std::fs::read_to_string(path).unwrap();
            }
        }
        let text = rendered();
        let names = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .chain(CLUSTER_METRICS.iter().map(|m| m.name));
        for name in names {
            assert!(
                readme.contains(&format!("`{name}`")),
                "neither README.md nor docs/ documents {name}"
            );
        }
    }
}
