//! What the anomaly detector and the health score concluded about each endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::{DatacenterId, EndpointKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Failing,
    Failed,
}

impl HealthStatus {
    pub const ALL: [HealthStatus; 4] = [
        HealthStatus::Healthy,
        HealthStatus::Degraded,
        HealthStatus::Failing,
        HealthStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Failing => "failing",
            HealthStatus::Failed => "failed",
        }
    }
}

/// A health score in [0, 1] and the status it stands for; see `health`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub score: f64,
    pub status: HealthStatus,
}

/// The detector's state for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum AnomalyState {
    /// `anomaly_detection: false`.
    Disabled,
    /// Learning what normal looks like: no score yet.
    WarmingUp { samples: usize, needed: usize },
    /// A model exists; `latest` is the latest scored sample, if any since start, and
    /// `last_anomaly` the latest anomalous one, kept for the API and the decisions.
    Ready {
        samples: usize,
        trained_at: SystemTime,
        latest: Option<AnomalyScore>,
        last_anomaly: Option<AnomalyScore>,
    },
}

/// One scored sample.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyScore {
    pub at: SystemTime,
    /// Calibrated score in [0, 1]; see `anomaly::detector`.
    pub score: f64,
    pub anomalous: bool,
    /// Every feature's robust z-score against the training window, by feature name.
    pub zscores: Vec<(&'static str, f64)>,
    /// The features that made the sample stand out, largest |z| first.
    pub contributors: Vec<(&'static str, f64)>,
}

/// Everything concluded about one endpoint after its latest round.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub anomaly: AnomalyState,
    pub health_score: f64,
    pub health_status: HealthStatus,
    pub up: bool,
}

/// Latest analysis per endpoint, and the health of each datacenter computed from them in
/// the same pass, so every reader (metrics, engine, API) sees the one health.
#[derive(Debug, Default)]
pub struct AnalysisStore {
    endpoints: RwLock<BTreeMap<EndpointKey, Arc<Analysis>>>,
    datacenters: RwLock<Arc<BTreeMap<DatacenterId, Health>>>,
}

impl AnalysisStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn publish(&self, key: EndpointKey, analysis: Analysis) {
        let mut map = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        map.insert(key, Arc::new(analysis));
    }

    pub fn remove(&self, key: &EndpointKey) {
        let mut map = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }

    pub fn get(&self, key: &EndpointKey) -> Option<Arc<Analysis>> {
        let map = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        map.get(key).cloned()
    }

    pub fn all(&self) -> Vec<(EndpointKey, Arc<Analysis>)> {
        let map = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// Keeps only the endpoints `keep` says yes to, and the health of the datacenters
    /// that still have one: an endpoint removed by a reload leaves no series behind,
    /// whenever the anomaly engine's next pass comes.
    pub fn retain(&self, mut keep: impl FnMut(&EndpointKey) -> bool) {
        let mut map = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| keep(k));
        let left: BTreeSet<&DatacenterId> = map.keys().map(|k| &k.datacenter).collect();
        let mut slot = self.datacenters.write().unwrap_or_else(|e| e.into_inner());
        if slot.keys().any(|dc| !left.contains(dc)) {
            let kept = slot
                .iter()
                .filter(|(dc, _)| left.contains(dc))
                .map(|(dc, h)| (dc.clone(), *h))
                .collect();
            *slot = Arc::new(kept);
        }
    }

    /// Replaces every datacenter's health (after a pass over the endpoints).
    pub fn publish_datacenters(&self, datacenters: BTreeMap<DatacenterId, Health>) {
        let mut slot = self.datacenters.write().unwrap_or_else(|e| e.into_inner());
        *slot = Arc::new(datacenters);
    }

    /// The health of every datacenter with at least one analysed endpoint.
    pub fn datacenters(&self) -> Arc<BTreeMap<DatacenterId, Health>> {
        let slot = self.datacenters.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dc: &str) -> EndpointKey {
        EndpointKey::new("cache", dc)
    }

    #[test]
    fn retain_forgets_the_datacenters_left_without_an_endpoint() {
        let store = AnalysisStore::new();
        let analysis = Analysis {
            anomaly: AnomalyState::Disabled,
            health_score: 1.0,
            health_status: HealthStatus::Healthy,
            up: true,
        };
        let health = Health {
            score: 1.0,
            status: HealthStatus::Healthy,
        };
        for dc in ["east", "west"] {
            store.publish(key(dc), analysis.clone());
        }
        store.publish_datacenters(
            [("east", health), ("west", health)]
                .into_iter()
                .map(|(dc, h)| (DatacenterId::new(dc), h))
                .collect(),
        );

        store.retain(|k| k.datacenter.as_str() == "east");

        assert_eq!(store.all().len(), 1);
        let left: Vec<_> = store.datacenters().keys().map(|d| d.to_string()).collect();
        assert_eq!(left, ["east"]);
    }
}
