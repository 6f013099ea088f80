//! Anomaly detection and health: for every endpoint, features from its consecutive
//! snapshots, an extended isolation forest trained on its own recent normal, robust
//! z-scores for the features that stand out, and the health score. Results go to the
//! [`AnalysisStore`].
//!
//! Layout: `features` (pure extraction), `detector` (window, training, scoring,
//! calibration), `persist` (the training window on disk); the engine that follows the
//! snapshot store is here.

pub mod detector;
pub mod features;
pub mod persist;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::detector::{Detector, DetectorSettings, Model, Scored, TrainError};
use self::features::{FEATURES, Features, Observation};
use crate::health::{self, HealthInput};
use crate::model::enterprise::EnterpriseStore;
use crate::model::{
    Analysis, AnalysisStore, AnomalyScore, AnomalyState, EndpointKey, EndpointStatus, Snapshot,
    SnapshotStore,
};

/// Trainings running at once, so a start with a thousand saved windows does not take
/// every core.
const MAX_TRAININGS: usize = 1;
/// Contributors kept per anomalous sample.
const CONTRIBUTORS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct AnomalySettings {
    pub enabled: bool,
    pub detector: DetectorSettings,
    pub trees: usize,
    /// Where training windows are kept (`model_path`).
    pub state_dir: PathBuf,
    /// How often the engine looks for new rounds.
    pub tick: Duration,
}

/// Follows the snapshot store and keeps the analysis store current.
pub struct AnomalyEngine {
    store: Arc<SnapshotStore>,
    results: Arc<AnalysisStore>,
    settings: AnomalySettings,
    endpoints: HashMap<EndpointKey, Tracked>,
    trainings: usize,
    /// What the Redis Enterprise APIs say of each datacenter's cluster, when read.
    enterprise: Option<Arc<EnterpriseStore>>,
}

struct Tracked {
    generation: u64,
    rounds_seen: u64,
    last: Option<Arc<Snapshot>>,
    detector: Detector,
    training: Option<oneshot::Receiver<Result<Model, TrainError>>>,
    latest: Option<AnomalyScore>,
    last_anomaly: Option<AnomalyScore>,
}

impl AnomalyEngine {
    pub fn new(
        store: Arc<SnapshotStore>,
        results: Arc<AnalysisStore>,
        settings: AnomalySettings,
    ) -> Self {
        Self {
            store,
            results,
            settings,
            endpoints: HashMap::new(),
            trainings: 0,
            enterprise: None,
        }
    }

    /// Endpoints' health also counts what their cluster's REST API says
    /// ([`health::cluster_penalty`]).
    pub fn with_enterprise(mut self, store: Arc<EnterpriseStore>) -> Self {
        self.enterprise = Some(store);
        self
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => self.step(Instant::now()),
            }
        }
        self.save_all();
    }

    /// One pass over the store: new rounds are analysed, finished trainings installed,
    /// and when any endpoint changed, every datacenter's health is computed again.
    pub fn step(&mut self, now: Instant) {
        let statuses = self.store.all();
        let live: HashMap<&EndpointKey, u64> =
            statuses.iter().map(|s| (&s.key, s.generation)).collect();
        let before = self.endpoints.len();
        self.endpoints
            .retain(|k, t| live.get(k).is_some_and(|g| *g == t.generation));
        let mut changed = self.endpoints.len() != before;
        if changed {
            self.results.retain(|k| live.contains_key(k));
        }
        for status in &statuses {
            changed |= self.follow(status, now);
        }
        if changed {
            let all = self.results.all();
            let endpoints = all
                .iter()
                .map(|(k, a)| (&k.datacenter, a.health_score, a.up));
            self.results
                .publish_datacenters(health::datacenters(endpoints));
        }
    }

    /// Analyses the endpoint's new round, if any; true when it published a result.
    fn follow(&mut self, status: &EndpointStatus, now: Instant) -> bool {
        let settings = &self.settings;
        let tracked = self
            .endpoints
            .entry(status.key.clone())
            .or_insert_with(|| Tracked {
                generation: status.generation,
                rounds_seen: 0,
                last: None,
                detector: load_detector(settings, &status.key),
                training: None,
                latest: None,
                last_anomaly: None,
            });
        if let Some(rx) = tracked.training.as_mut() {
            match rx.try_recv() {
                Ok(Ok(model)) => {
                    debug!(redis_instance = %status.key.instance, datacenter = %status.key.datacenter,
                        samples = model.samples, "anomaly model trained");
                    tracked.detector.install(model);
                    tracked.training = None;
                    self.trainings -= 1;
                }
                Ok(Err(e)) => {
                    warn!(redis_instance = %status.key.instance, datacenter = %status.key.datacenter,
                        error = %e, "anomaly model training failed");
                    tracked.training = None;
                    self.trainings -= 1;
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => {
                    tracked.training = None;
                    self.trainings -= 1;
                }
            }
        }
        if status.rounds == tracked.rounds_seen {
            return false;
        }
        tracked.rounds_seen = status.rounds;

        let fresh = status.fresh(now).is_some();
        let current = status.last_success.clone().filter(|_| fresh);
        let features = match (&tracked.last, &current) {
            (Some(prev), Some(cur)) if !Arc::ptr_eq(prev, cur) => {
                features::extract(&observation(prev), &observation(cur)).ok()
            }
            _ => None,
        };
        if let Some(cur) = &current {
            tracked.last = Some(Arc::clone(cur));
        }
        if let Some(f) = features.filter(|_| self.settings.enabled)
            && let Some(scored) = tracked.detector.observe(f)
        {
            let score = to_score(&scored, current.as_deref());
            if score.anomalous {
                debug!(redis_instance = %status.key.instance, datacenter = %status.key.datacenter,
                        score = score.score, contributors = ?score.contributors, "anomalous sample");
                tracked.last_anomaly = Some(score.clone());
            }
            tracked.latest = Some(score);
        }

        let threshold = self.settings.detector.threshold;
        let anomaly = tracked.latest.as_ref().map(|l| (l.score, threshold));
        let input = health_input(fresh, current.as_deref(), features.as_ref(), anomaly);
        let mut health = health::endpoint(&input);
        if let Some(view) = self
            .enterprise
            .as_ref()
            .and_then(|s| s.get(&status.key.datacenter))
        {
            let database = view.instance_database(&status.key.instance);
            health = health::with_penalty(health, health::cluster_penalty(&view, database), fresh);
        }
        let anomaly_state = match tracked.detector.model() {
            _ if !self.settings.enabled => AnomalyState::Disabled,
            Some(model) => AnomalyState::Ready {
                samples: tracked.detector.window().len(),
                trained_at: model.trained_at,
                latest: tracked.latest.clone(),
                last_anomaly: tracked.last_anomaly.clone(),
            },
            None => AnomalyState::WarmingUp {
                samples: tracked.detector.window().len(),
                needed: tracked.detector.settings().warmup,
            },
        };
        self.results.publish(
            status.key.clone(),
            Analysis {
                anomaly: anomaly_state,
                health_score: health.score,
                health_status: health.status,
                up: fresh,
            },
        );

        if self.settings.enabled
            && tracked.training.is_none()
            && self.trainings < MAX_TRAININGS
            && tracked.detector.wants_training()
        {
            let samples = tracked.detector.training_set();
            let trees = self.settings.trees;
            let path = persist::path_for(&self.settings.state_dir, &status.key);
            let (tx, rx) = oneshot::channel();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = persist::save(&path, &samples) {
                    warn!(error = %e, "cannot save the anomaly training window");
                }
                let _ = tx.send(detector::train(&samples, trees));
            });
            tracked.training = Some(rx);
            self.trainings += 1;
        }
        true
    }

    /// Saves every window (at shutdown), so the next start resumes where this one was.
    fn save_all(&self) {
        if !self.settings.enabled {
            return;
        }
        let mut saved = 0;
        for (key, t) in &self.endpoints {
            let window: Vec<Features> = t.detector.window().iter().copied().collect();
            if window.is_empty() {
                continue;
            }
            match persist::save(&persist::path_for(&self.settings.state_dir, key), &window) {
                Ok(()) => saved += 1,
                Err(e) => warn!(error = %e, "cannot save the anomaly training window"),
            }
        }
        if saved > 0 {
            info!(endpoints = saved, dir = %self.settings.state_dir.display(), "anomaly training windows saved");
        }
    }
}

fn load_detector(settings: &AnomalySettings, key: &EndpointKey) -> Detector {
    if !settings.enabled {
        return Detector::new(settings.detector);
    }
    let path = persist::path_for(&settings.state_dir, key);
    match persist::load(&path) {
        Ok(Some(window)) => {
            info!(redis_instance = %key.instance, datacenter = %key.datacenter, samples = window.len(),
                "anomaly training window restored");
            Detector::with_window(settings.detector, window)
        }
        Ok(None) => Detector::new(settings.detector),
        Err(e) => {
            warn!(error = %e, "ignoring a saved anomaly training window");
            Detector::new(settings.detector)
        }
    }
}

fn observation(s: &Snapshot) -> Observation<'_> {
    Observation {
        at: s.taken_at,
        ping_latency: s.ping_latency,
        info: &s.info,
    }
}

fn to_score(scored: &Scored, snapshot: Option<&Snapshot>) -> AnomalyScore {
    AnomalyScore {
        at: snapshot.map_or_else(std::time::SystemTime::now, |s| s.taken_at),
        score: scored.score,
        anomalous: scored.anomalous,
        zscores: FEATURES
            .iter()
            .zip(scored.zscores)
            .map(|(f, z)| (f.name, z))
            .collect(),
        contributors: if scored.anomalous {
            scored
                .contributors(CONTRIBUTORS)
                .into_iter()
                .map(|(i, z)| (FEATURES[i].name, z))
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn health_input(
    up: bool,
    snapshot: Option<&Snapshot>,
    features: Option<&Features>,
    anomaly: Option<(f64, f64)>,
) -> HealthInput {
    let at = |name: &str| Some(features?[features::index(name)?]);
    HealthInput {
        up,
        ping_latency_ms: snapshot.map(|s| s.ping_latency.as_secs_f64() * 1000.0),
        memory_used_ratio: snapshot.and_then(|s| s.info.memory_pressure()),
        hit_ratio: at("hit_ratio").zip(
            at("keyspace_hits_per_second")
                .zip(at("keyspace_misses_per_second"))
                .map(|(h, m)| h + m),
        ),
        rejected_per_second: at("rejected_connections_per_second"),
        errors: at("error_replies_per_second").zip(at("commands_per_second")),
        anomaly,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use super::*;
    use crate::collector::info::parse_info;
    use crate::model::{Health, HealthStatus, Round};

    /// An engine over `store` and `results` with a 60-sample warm-up.
    fn test_engine(
        store: &Arc<SnapshotStore>,
        results: &Arc<AnalysisStore>,
        state_dir: &std::path::Path,
        enabled: bool,
    ) -> AnomalyEngine {
        AnomalyEngine::new(
            Arc::clone(store),
            Arc::clone(results),
            AnomalySettings {
                enabled,
                detector: DetectorSettings {
                    warmup: 60,
                    window: 1024,
                    retrain_every: 1000,
                    threshold: 0.8,
                },
                trees: 64,
                state_dir: state_dir.to_owned(),
                tick: Duration::from_millis(100),
            },
        )
    }

    struct Feed {
        store: Arc<SnapshotStore>,
        status: EndpointStatus,
        at: SystemTime,
    }

    impl Feed {
        fn new(store: &Arc<SnapshotStore>) -> Self {
            let status = EndpointStatus::new(
                EndpointKey::new("cache", "east"),
                1,
                "127.0.0.1:1".into(),
                Duration::from_secs(1),
            );
            store.register(status.clone());
            Self {
                store: Arc::clone(store),
                status,
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            }
        }

        /// One successful round with these counters.
        fn round(&mut self, run_id: &str, commands: u64, hits: u64) {
            self.at += Duration::from_secs(1);
            let info = parse_info(format!(
                "run_id:{run_id}\r\nrole:master\r\ntotal_commands_processed:{commands}\r\n\
                 keyspace_hits:{hits}\r\nkeyspace_misses:{}\r\nconnected_clients:10\r\n\
                 used_memory:1000000\r\nmaxmemory:10000000\r\nmem_fragmentation_ratio:1.2\r\n\
                 total_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n",
                hits / 10,
                commands * 40,
                commands * 60
            ));
            let now = Instant::now();
            self.status.rounds += 1;
            self.status.last_round = Some(Round {
                finished: now,
                at: self.at,
                duration: Duration::from_millis(1),
                error: None,
            });
            self.status.last_success = Some(Arc::new(Snapshot {
                taken_at: self.at,
                finished: now,
                ping_latency: Duration::from_micros(300),
                info,
                cluster: None,
                sentinel_masters: Vec::new(),
            }));
            self.store.publish(self.status.clone());
        }
    }

    fn latest(results: &AnalysisStore) -> Option<AnomalyScore> {
        match &results.get(&EndpointKey::new("cache", "east"))?.anomaly {
            AnomalyState::Ready { latest, .. } => latest.clone(),
            _ => None,
        }
    }

    #[test]
    fn each_pass_publishes_the_health_of_endpoints_and_datacenters() {
        let store = Arc::new(SnapshotStore::new());
        let results = Arc::new(AnalysisStore::new());
        let dir = tempfile::tempdir().unwrap();
        let mut engine = test_engine(&store, &results, dir.path(), false);
        let key = EndpointKey::new("cache", "east");
        let mut feed = Feed::new(&store);
        feed.round("a", 1000, 700);
        engine.step(Instant::now());
        let a = results.get(&key).expect("an analysis");
        assert!(a.up);
        assert_eq!(
            (a.health_score, a.health_status),
            (1.0, HealthStatus::Healthy)
        );
        let healthy = Health {
            score: 1.0,
            status: HealthStatus::Healthy,
        };
        assert_eq!(
            *results.datacenters(),
            BTreeMap::from([(key.datacenter.clone(), healthy)])
        );

        // The endpoint leaves the configuration: its datacenter goes with it.
        store.remove(&key);
        engine.step(Instant::now());
        assert!(results.get(&key).is_none());
        assert!(results.datacenters().is_empty());
    }

    #[test]
    fn what_the_cluster_api_says_lowers_the_endpoint_and_its_datacenter() {
        use crate::model::enterprise::{ClusterView, Database, Shard};

        let store = Arc::new(SnapshotStore::new());
        let results = Arc::new(AnalysisStore::new());
        let enterprise = Arc::new(EnterpriseStore::new());
        let dir = tempfile::tempdir().unwrap();
        let mut engine = test_engine(&store, &results, dir.path(), false)
            .with_enterprise(Arc::clone(&enterprise));
        let key = EndpointKey::new("cache", "east");
        // The cluster's API: the instance's database has its master shard down.
        let mut view = ClusterView {
            polled_at: Some(SystemTime::UNIX_EPOCH),
            read_at: Some(SystemTime::UNIX_EPOCH),
            databases: vec![Database {
                uid: 1,
                name: "cache".into(),
                status: "active".into(),
                crdt: false,
                shards: vec![Shard {
                    uid: 1,
                    role: "master".into(),
                    status: "inactive".into(),
                }],
                sources: Vec::new(),
            }],
            ..ClusterView::default()
        };
        view.instances.insert(key.instance.clone(), 1);
        enterprise.publish(key.datacenter.clone(), view.clone());
        let mut feed = Feed::new(&store);
        feed.round("a", 1000, 700);
        engine.step(Instant::now());
        let a = results.get(&key).expect("an analysis");
        assert_eq!(
            (a.health_score, a.health_status),
            (0.5, HealthStatus::Degraded)
        );
        assert_eq!(
            results.datacenters()[&key.datacenter].status,
            HealthStatus::Degraded
        );

        // An API that stops answering takes nothing away.
        view.error = Some("timeout".into());
        enterprise.publish(key.datacenter.clone(), view);
        feed.round("a", 2000, 1400);
        engine.step(Instant::now());
        let a = results.get(&key).expect("an analysis");
        assert_eq!(a.health_status, HealthStatus::Healthy);
    }

    #[tokio::test]
    async fn a_counter_reset_is_not_an_anomaly() {
        let store = Arc::new(SnapshotStore::new());
        let results = Arc::new(AnalysisStore::new());
        let dir = tempfile::tempdir().unwrap();
        let mut engine = test_engine(&store, &results, dir.path(), true);
        let mut feed = Feed::new(&store);
        let (mut commands, mut hits) = (1_000_000u64, 500_000u64);
        for i in 0..80u64 {
            commands += 1000 + (i * 37) % 200;
            hits += 700 + (i * 53) % 100;
            feed.round("before", commands, hits);
            engine.step(Instant::now());
        }
        // Wait for the training that the warm-up started, with more of the same load
        // (however many rounds a busy machine needs, they look like the warm-up's).
        for i in 80..280u64 {
            if latest(&results).is_some() {
                break;
            }
            commands += 1000 + (i * 37) % 200;
            hits += 700 + (i * 53) % 100;
            feed.round("before", commands, hits);
            engine.step(Instant::now());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = latest(&results).expect("a model and a score");
        assert!(!before.anomalous, "normal load scored {}", before.score);

        // The server restarts: every counter starts again from zero.
        feed.round("after", 1000, 700);
        engine.step(Instant::now());
        let after = latest(&results).unwrap();
        assert_eq!(after, before, "the reset pair must give no sample");
        feed.round("after", 2100, 1410);
        engine.step(Instant::now());
        let next = latest(&results).unwrap();
        assert!(
            !next.anomalous,
            "the first rates after a restart scored {}",
            next.score
        );
    }
}
