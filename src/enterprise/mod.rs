//! The Redis Enterprise REST API of each datacenter's cluster: one task per datacenter
//! with an `api_url`, on its own schedule (the API's statistics change once a minute),
//! that reads nodes, databases, shards, their last minute of statistics and, for
//! Active-Active databases, the syncer of every other participating cluster, and
//! publishes a [`ClusterView`](crate::model::enterprise::ClusterView) into the
//! [`EnterpriseStore`] after every poll. A failing API is counted and logged, never
//! fatal; its view keeps what was last read, marked stale.
//!
//! Layout: `config` reads `enterprise`, `datacenters.<dc>.api_*` and
//! `instances[].enterprise_database`; `api` is the HTTP client; `parse` reads the
//! answers (pure); `crdb` tells which datacenter a syncer source is (pure); `poll` is
//! one poll and the view it makes; `task` the loop of one datacenter.

mod api;
pub mod config;
mod crdb;
mod parse;
mod poll;
mod task;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use self::config::{ClusterApi, EnterpriseSettings};
use crate::model::enterprise::EnterpriseStore;
use crate::model::{Datacenter, DatacenterId};

/// Starts, stops and restarts the datacenters' tasks to match the configuration.
#[derive(Debug)]
pub struct Enterprise {
    store: Arc<EnterpriseStore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    running: Mutex<BTreeMap<DatacenterId, Running>>,
}

#[derive(Debug)]
struct Running {
    settings: EnterpriseSettings,
    cancel: CancellationToken,
}

impl Enterprise {
    pub fn new(
        store: Arc<EnterpriseStore>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            store,
            tracker,
            cancel,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes the tasks match `settings`: a datacenter whose API is gone stops (and its
    /// view is dropped), any change restarts every task (counts start again).
    pub fn apply(
        &self,
        settings: &EnterpriseSettings,
        datacenters: &BTreeMap<DatacenterId, Datacenter>,
    ) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|dc, task| {
            let keep = settings.clusters.contains_key(dc) && task.settings == *settings;
            if !keep {
                task.cancel.cancel();
                self.store.remove(dc);
            }
            keep
        });
        let known: Vec<crdb::Known> = settings
            .clusters
            .iter()
            .map(|(id, api)| known(id, api))
            .chain(
                datacenters
                    .iter()
                    .filter(|(id, _)| !settings.clusters.contains_key(*id))
                    .map(|(id, dc)| crdb::Known {
                        id: id.clone(),
                        name: dc.name.to_ascii_lowercase(),
                        api_host: String::new(),
                    }),
            )
            .collect();
        for (dc, api) in &settings.clusters {
            if running.contains_key(dc) {
                continue;
            }
            let client = match api::ApiClient::new(api, settings.timeout) {
                Ok(client) => client,
                Err(e) => {
                    warn!(datacenter = %dc, error = %e, "Redis Enterprise API not polled");
                    continue;
                }
            };
            let cancel = self.cancel.child_token();
            self.tracker.spawn(
                task::ClusterTask {
                    datacenter: dc.clone(),
                    client,
                    interval: settings.poll_interval,
                    context: poll::Context {
                        known: known.clone(),
                        databases: settings.databases.clone(),
                    },
                    store: Arc::clone(&self.store),
                    cancel: cancel.clone(),
                }
                .run(),
            );
            info!(datacenter = %dc, url = %api.url, "Redis Enterprise API polled");
            running.insert(
                dc.clone(),
                Running {
                    settings: settings.clone(),
                    cancel,
                },
            );
        }
    }
}

fn known(id: &DatacenterId, api: &ClusterApi) -> crdb::Known {
    crdb::Known {
        id: id.clone(),
        name: api.datacenter_name.to_ascii_lowercase(),
        api_host: parse::host_of(&api.url),
    }
}
