//! The Prometheus registry: Redis series rendered from the latest snapshots, the agent's
//! own series, and families that other parts register. Built once at start.
//!
//! Layout: `info_table` maps INFO fields to series, `redis` and `agent` are the custom
//! collectors over the store, `encode` holds their shared helpers, `text` converts
//! OpenMetrics to the classic text format for scrapers that ask for it.

mod agent;
mod encode;
mod info_table;
mod redis;
mod text;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use info_table::{CLUSTER_METRICS, INFO_METRICS, InfoMetric, Kind};

use crate::model::SnapshotStore;

/// The exposition format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The classic Prometheus text format, version 0.0.4.
    Text,
}

impl Format {
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
}

impl Metrics {
    pub fn new(store: Arc<SnapshotStore>) -> Self {
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
        registry.register_collector(Box::new(redis::RedisCollector::new(Arc::clone(&store))));
        registry.register_collector(Box::new(agent::AgentCollector::new(store)));
        Self {
            registry,
            last_len: AtomicUsize::new(64 * 1024),
        }
    }

    /// For later parts that add their own families.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn render(&self, format: Format) -> Result<String, fmt::Error> {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        let out = match format {
            Format::OpenMetrics => out,
            Format::Text => text::openmetrics_to_text(&out),
        };
        self.last_len.store(out.len(), Ordering::Relaxed);
        Ok(out)
    }
}
