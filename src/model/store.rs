use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{CollectError, Dropped, EndpointKey, ErrorCounts, Snapshot};

/// Everything known about one endpoint after its latest collection round.
///
/// The endpoint's task owns the counters and publishes a fresh copy after every round,
/// so a reader never sees a half-updated status.
#[derive(Debug, Clone)]
pub struct EndpointStatus {
    pub key: EndpointKey,
    /// Which task owns this endpoint: a task replaced after a configuration change
    /// cannot overwrite the status of its successor.
    pub generation: u64,
    /// `host:port`, for the API and logs; never a metric label.
    pub address: String,
    /// The collection interval; a value older than two of them is stale.
    pub interval: Duration,
    /// Rounds finished since the agent started.
    pub rounds: u64,
    /// Time spent in those rounds.
    pub total_duration: Duration,
    pub errors: ErrorCounts,
    /// Entries of replies not kept as sent, since the agent started: rows past a limit
    /// or repeated, lines that were not UTF-8.
    pub dropped: Dropped,
    /// Replies larger than `limits.max_reply_bytes`, since the agent started.
    pub replies_too_large: u64,
    /// When the latest round finished, and how it went.
    pub last_round: Option<Round>,
    /// The latest successful round.
    pub last_success: Option<Arc<Snapshot>>,
    /// While rounds fail: when the first failed round of the current run of failures
    /// finished, i.e. when the agent learnt it had lost the endpoint.
    pub failing_since: Option<SystemTime>,
}

#[derive(Debug, Clone)]
pub struct Round {
    pub finished: Instant,
    pub at: SystemTime,
    pub duration: Duration,
    pub error: Option<CollectError>,
}

impl EndpointStatus {
    pub fn new(key: EndpointKey, generation: u64, address: String, interval: Duration) -> Self {
        Self {
            key,
            generation,
            address,
            interval,
            rounds: 0,
            total_duration: Duration::ZERO,
            errors: ErrorCounts::default(),
            dropped: Dropped::default(),
            replies_too_large: 0,
            last_round: None,
            last_success: None,
            failing_since: None,
        }
    }

    /// The latest snapshot, if the latest round succeeded and is no older than two
    /// intervals. A stuck or failing collection is never shown as fresh data.
    pub fn fresh(&self, now: Instant) -> Option<&Snapshot> {
        let round = self.last_round.as_ref()?;
        if round.error.is_some() {
            return None;
        }
        let snapshot = self.last_success.as_deref()?;
        let age = now.saturating_duration_since(snapshot.finished);
        (age <= self.interval * 2).then_some(snapshot)
    }
}

/// The latest status of every configured endpoint. Collection writes it; scrapes, the
/// API and the detectors read it without ever waiting on Redis.
#[derive(Debug, Default)]
pub struct SnapshotStore {
    endpoints: RwLock<BTreeMap<EndpointKey, Arc<EndpointStatus>>>,
}

impl SnapshotStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking an endpoint (or resets it, when its settings changed).
    pub fn register(&self, status: EndpointStatus) {
        let mut map = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        map.insert(status.key.clone(), Arc::new(status));
    }

    /// Stops tracking an endpoint: its series disappear from the next scrape.
    pub fn remove(&self, key: &EndpointKey) {
        let mut map = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }

    /// Replaces the status of a tracked endpoint. A status from a task that no longer
    /// owns the endpoint (removed, or replaced by a newer generation) is dropped.
    pub fn publish(&self, status: EndpointStatus) {
        let mut map = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = map
            .get_mut(&status.key)
            .filter(|slot| slot.generation == status.generation)
        {
            *slot = Arc::new(status);
        }
    }

    pub fn get(&self, key: &EndpointKey) -> Option<Arc<EndpointStatus>> {
        let map = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        map.get(key).cloned()
    }

    /// Every tracked endpoint, ordered by instance then datacenter.
    pub fn all(&self) -> Vec<Arc<EndpointStatus>> {
        let map = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once every tracked endpoint has finished at least one round.
    pub fn first_round_done(&self) -> bool {
        let map = self.endpoints.read().unwrap_or_else(|e| e.into_inner());
        map.values().all(|s| s.last_round.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ErrorKind, Info};

    fn snapshot(finished: Instant) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            taken_at: SystemTime::now(),
            finished,
            ping_latency: Duration::from_millis(1),
            info: Info::default(),
            cluster: None,
            sentinel_masters: Vec::new(),
        })
    }

    fn status_at(finished: Instant, error: Option<CollectError>) -> EndpointStatus {
        let mut s = EndpointStatus::new(
            EndpointKey::new("cache", "east"),
            1,
            "127.0.0.1:6379".into(),
            Duration::from_secs(5),
        );
        s.last_round = Some(Round {
            finished,
            at: SystemTime::now(),
            duration: Duration::from_millis(2),
            error,
        });
        s.last_success = Some(snapshot(finished));
        s
    }

    #[test]
    fn a_snapshot_is_fresh_for_two_intervals() {
        let t0 = Instant::now();
        let s = status_at(t0, None);
        assert!(s.fresh(t0 + Duration::from_secs(10)).is_some());
        assert!(s.fresh(t0 + Duration::from_millis(10_001)).is_none());
    }

    #[test]
    fn a_failed_round_hides_the_previous_snapshot() {
        let t0 = Instant::now();
        let err = CollectError {
            kind: ErrorKind::Connect,
            message: "refused".into(),
        };
        assert!(status_at(t0, Some(err)).fresh(t0).is_none());
    }

    #[test]
    fn publish_ignores_endpoints_no_longer_tracked() {
        let store = SnapshotStore::new();
        let t0 = Instant::now();
        store.publish(status_at(t0, None));
        assert!(store.is_empty());
        let s = status_at(t0, None);
        store.register(EndpointStatus::new(
            s.key.clone(),
            2,
            s.address.clone(),
            s.interval,
        ));
        store.publish(s.clone());
        assert!(
            !store.first_round_done(),
            "an older generation must not publish"
        );
        store.register(EndpointStatus::new(
            s.key.clone(),
            1,
            s.address.clone(),
            s.interval,
        ));
        assert!(!store.first_round_done());
        store.publish(s.clone());
        assert!(store.first_round_done());
        store.remove(&s.key);
        store.publish(s);
        assert!(store.is_empty());
    }
}
