//! Collection: one task per endpoint (instance x datacenter), each on its own
//! persistent connection and its own schedule, so a dead, slow or refusing endpoint
//! never delays the others. Results go to the [`SnapshotStore`].
//!
//! Layout: `info` parses what Redis answers (pure), `redis` is the adapter to the
//! `redis` crate, `stream` caps the size of a reply under it, `tls` sets up rustls,
//! `task` is the per-endpoint loop, `probe` the fresh probes of the decision engine.

pub mod info;
pub mod probe;
mod redis;
mod stream;
mod task;
mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

pub use task::Backoff;

use crate::config::{CollectorSettings, Config, Limits};
use crate::model::{Endpoint, EndpointKey, EndpointStatus, SnapshotStore};

/// Starts, stops and restarts endpoint tasks to match the configuration.
#[derive(Debug)]
pub struct Collector {
    store: Arc<SnapshotStore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    running: Mutex<BTreeMap<EndpointKey, Running>>,
    generation: AtomicU64,
}

#[derive(Debug)]
struct Running {
    endpoint: Endpoint,
    settings: CollectorSettings,
    limits: Limits,
    cancel: CancellationToken,
}

/// What [`Collector::apply`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub started: usize,
    pub stopped: usize,
    pub restarted: usize,
    pub unchanged: usize,
}

impl Collector {
    /// Tasks are spawned on `tracker` and stop when `cancel` is cancelled.
    pub fn new(store: Arc<SnapshotStore>, tracker: TaskTracker, cancel: CancellationToken) -> Self {
        Self {
            store,
            tracker,
            cancel,
            running: Mutex::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Makes the running tasks match `config`: new endpoints start, removed ones stop
    /// (and their series disappear), changed ones restart with fresh counters.
    pub fn apply(&self, config: &Config) -> Changes {
        let wanted: BTreeMap<EndpointKey, Endpoint> = config
            .instances
            .iter()
            .flat_map(|i| i.endpoints.values())
            .map(|e| (e.key.clone(), e.clone()))
            .collect();
        let settings = config.collector;
        let limits = config.limits;
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut changes = Changes::default();

        let gone: Vec<EndpointKey> = running
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(task) = running.remove(&key) {
                task.cancel.cancel();
            }
            self.store.remove(&key);
            info!(redis_instance = %key.instance, datacenter = %key.datacenter, "endpoint removed");
            changes.stopped += 1;
        }

        for (key, endpoint) in wanted {
            match running.get(&key) {
                Some(task)
                    if task.endpoint == endpoint
                        && task.settings == settings
                        && task.limits == limits =>
                {
                    changes.unchanged += 1;
                    continue;
                }
                Some(task) => {
                    task.cancel.cancel();
                    changes.restarted += 1;
                }
                None => changes.started += 1,
            }
            let cancel = self.cancel.child_token();
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            self.store.register(EndpointStatus::new(
                key.clone(),
                generation,
                endpoint.address(),
                settings.interval,
            ));
            self.tracker.spawn(
                task::EndpointTask {
                    generation,
                    endpoint: endpoint.clone(),
                    settings,
                    limits,
                    store: Arc::clone(&self.store),
                    cancel: cancel.clone(),
                }
                .run(),
            );
            running.insert(
                key,
                Running {
                    endpoint,
                    settings,
                    limits,
                    cancel,
                },
            );
        }
        changes
    }
}
