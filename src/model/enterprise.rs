//! What the Redis Enterprise collector last read of each datacenter's cluster through
//! its REST API: nodes, databases, shards and, for Active-Active (CRDB) databases, the
//! syncers that bring every other participating cluster's writes in.
//!
//! The collector publishes one [`ClusterView`] per datacenter after every poll; the
//! metrics, the health pass and the data-loss estimate read it. Nothing here does I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::{DatacenterId, InstanceId};

/// One datacenter's cluster as of the latest poll of its REST API.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// When the latest poll finished, whether or not it succeeded.
    pub polled_at: Option<SystemTime>,
    /// Why the latest poll failed, without secrets; `None` when it succeeded.
    pub error: Option<String>,
    /// When the cluster was last read whole: what follows is as of then.
    pub read_at: Option<SystemTime>,
    pub nodes: Vec<Node>,
    pub databases: Vec<Database>,
    /// The statistics of the last minute (`/v1/*/stats/last`), as of `read_at`.
    pub stats: Stats,
    /// The database each configured instance is served by in this cluster (its uid),
    /// matched by the collector (`enterprise_database`, else the instance's uid, then
    /// its name).
    pub instances: BTreeMap<InstanceId, u64>,
    /// Failed polls since the collector started, by kind (`unauthorized`, `timeout`,
    /// `unavailable`, `invalid`, `tls`, ...).
    pub api_errors: BTreeMap<String, u64>,
}

/// One minute's statistics, by the API's names (`free_memory`, `avg_latency`, ...), as
/// numbers; the metrics choose which to export and in which unit.
pub type StatSet = BTreeMap<String, f64>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub cluster: StatSet,
    pub nodes: BTreeMap<u64, StatSet>,
    pub databases: BTreeMap<u64, StatSet>,
    pub shards: BTreeMap<u64, StatSet>,
}

impl ClusterView {
    /// The database an instance is served by: matched by uid or by name.
    pub fn database(&self, uid_or_name: &str) -> Option<&Database> {
        self.databases
            .iter()
            .find(|db| db.uid.to_string() == uid_or_name || db.name == uid_or_name)
    }

    /// The database the collector matched to a configured instance.
    pub fn instance_database(&self, instance: &InstanceId) -> Option<&Database> {
        let uid = *self.instances.get(instance)?;
        self.databases.iter().find(|db| db.uid == uid)
    }

    /// The view is as of the latest poll: that poll succeeded.
    pub fn is_fresh(&self) -> bool {
        self.error.is_none() && self.read_at.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub uid: u64,
    /// The API's `status`: `active` when serving; anything else is a node in trouble.
    pub status: String,
}

impl Node {
    pub fn is_up(&self) -> bool {
        self.status == "active"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub uid: u64,
    pub name: String,
    /// The API's `status` (`active`, `pending`, `active-change-pending`, ...).
    pub status: String,
    /// Active-Active: the database is one instance of a CRDB.
    pub crdt: bool,
    pub shards: Vec<Shard>,
    /// Active-Active: one entry per other participating cluster whose writes this
    /// database's syncer brings in. Empty for an ordinary database.
    pub sources: Vec<SyncSource>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    pub uid: u64,
    /// `master` or `slave`, as the API names them.
    pub role: String,
    /// The API's `status`: `active` when serving.
    pub status: String,
}

impl Shard {
    pub fn is_up(&self) -> bool {
        self.status == "active"
    }
}

/// The syncer of one Active-Active database reading from one other participating
/// cluster: how current this cluster's copy of that cluster's writes is.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSource {
    /// The configured datacenter whose cluster this source is, when the collector could
    /// match it (by the participating cluster's name or address).
    pub datacenter: Option<DatacenterId>,
    /// The source's address as the API gives it (never with credentials).
    pub uri: String,
    pub status: SyncStatus,
    /// The API's `lag` (milliseconds while in sync).
    pub lag: Option<Duration>,
    /// The API's `last_update`: when this cluster last received an update from the source.
    pub last_update: Option<SystemTime>,
    /// The latest poll that found this source in sync, and the lag it had then; carried
    /// over by the collector from poll to poll, so that after the source's cluster dies
    /// the estimate still knows how current this copy was.
    pub last_in_sync: Option<InSync>,
}

impl SyncSource {
    /// How metrics name the source: its datacenter, else the host of its URI.
    pub fn label(&self) -> String {
        if let Some(dc) = &self.datacenter {
            return dc.to_string();
        }
        let rest = self
            .uri
            .split_once("://")
            .map_or(self.uri.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        };
        host.to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InSync {
    pub at: SystemTime,
    pub lag: Duration,
}

/// The sync status of a source (`syncer_sources.status`, the values of the API's
/// `replica_sources` status field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncStatus {
    InSync,
    Syncing,
    OutOfSync,
    /// A value this version does not know, kept as given (cleaned).
    Other(String),
}

impl SyncStatus {
    pub fn parse(text: &str) -> Self {
        match text {
            "in-sync" => Self::InSync,
            "syncing" => Self::Syncing,
            "out-of-sync" => Self::OutOfSync,
            other => Self::Other(super::clean_label(other).into_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::InSync => "in-sync",
            Self::Syncing => "syncing",
            Self::OutOfSync => "out-of-sync",
            Self::Other(text) => text,
        }
    }
}

/// The latest view of every datacenter with an `api_url`. The collector writes it;
/// scrapes, the health pass and the decision read it without waiting on the API.
#[derive(Debug, Default)]
pub struct EnterpriseStore {
    clusters: RwLock<BTreeMap<DatacenterId, Arc<ClusterView>>>,
}

impl EnterpriseStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn publish(&self, datacenter: DatacenterId, view: ClusterView) {
        let mut map = self.clusters.write().unwrap_or_else(|e| e.into_inner());
        map.insert(datacenter, Arc::new(view));
    }

    /// Stops tracking a datacenter whose `api_url` was removed.
    pub fn remove(&self, datacenter: &DatacenterId) {
        let mut map = self.clusters.write().unwrap_or_else(|e| e.into_inner());
        map.remove(datacenter);
    }

    pub fn get(&self, datacenter: &DatacenterId) -> Option<Arc<ClusterView>> {
        let map = self.clusters.read().unwrap_or_else(|e| e.into_inner());
        map.get(datacenter).cloned()
    }

    /// Every tracked datacenter, ordered by key.
    pub fn all(&self) -> Vec<(DatacenterId, Arc<ClusterView>)> {
        let map = self.clusters.read().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
