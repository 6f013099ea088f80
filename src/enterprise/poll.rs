//! One poll of one cluster: every request, then the view built from the answers and
//! from the previous view (what it carries over).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::Value;

use super::api::{ApiClient, ApiError, ErrorKind};
use super::crdb::{Known, datacenter_of};
use super::parse::{self, Bdb, Participant, ShapeError};
use crate::model::InstanceId;
use crate::model::enterprise::{ClusterView, Database, InSync, Stats, SyncSource, SyncStatus};

/// What a poll needs besides the client: how to name sources and instances.
#[derive(Debug, Clone)]
pub struct Context {
    pub known: Vec<Known>,
    pub databases: BTreeMap<InstanceId, Vec<String>>,
}

/// Everything one successful poll read.
#[derive(Debug)]
pub struct Read {
    pub nodes: Vec<crate::model::enterprise::Node>,
    pub databases: Vec<Database>,
    pub stats: Stats,
}

fn invalid(path: &str, e: ShapeError) -> ApiError {
    ApiError {
        kind: ErrorKind::Invalid,
        path: path.to_owned(),
        message: e.to_string(),
    }
}

async fn get<T>(
    api: &ApiClient,
    path: &str,
    read: impl FnOnce(&Value) -> Result<T, ShapeError>,
) -> Result<T, ApiError> {
    let body = api.get(path).await?;
    read(&body).map_err(|e| invalid(path, e))
}

/// Reads the whole cluster; the first failing request fails the poll, except the
/// Active-Active extras (a CRDB the user may not read, a syncer state the version
/// does not serve), without which sources are matched by address only.
pub async fn read(api: &ApiClient, cx: &Context) -> Result<Read, ApiError> {
    let cluster = get(api, "/v1/cluster/stats/last", parse::cluster_stats).await?;
    let nodes = get(api, "/v1/nodes", parse::nodes).await?;
    let node_stats = get(api, "/v1/nodes/stats/last", |b| {
        parse::stats_by_uid(b, "/v1/nodes/stats/last")
    })
    .await?;
    let bdbs = get(api, "/v1/bdbs", parse::bdbs).await?;
    let bdb_stats = get(api, "/v1/bdbs/stats/last", |b| {
        parse::stats_by_uid(b, "/v1/bdbs/stats/last")
    })
    .await?;
    let shards = get(api, "/v1/shards", parse::shards).await?;
    let shard_stats = get(api, "/v1/shards/stats/last", |b| {
        parse::stats_by_uid(b, "/v1/shards/stats/last")
    })
    .await?;

    let mut databases = Vec::with_capacity(bdbs.len());
    for bdb in bdbs {
        let sources = if bdb.crdt {
            crdt_sources(api, &bdb, cx).await
        } else {
            Vec::new()
        };
        databases.push(Database {
            uid: bdb.uid,
            name: bdb.name,
            status: bdb.status,
            crdt: bdb.crdt,
            shards: shards
                .iter()
                .filter(|(db, _)| *db == bdb.uid)
                .map(|(_, s)| s.clone())
                .collect(),
            sources,
        });
    }
    Ok(Read {
        nodes,
        databases,
        stats: Stats {
            cluster,
            nodes: node_stats,
            databases: bdb_stats,
            shards: shard_stats,
        },
    })
}

/// A CRDB instance's sources, each with its datacenter when it can be told.
async fn crdt_sources(api: &ApiClient, bdb: &Bdb, cx: &Context) -> Vec<SyncSource> {
    let mut sources = bdb.sources.clone();
    if sources.is_empty() {
        let path = format!("/v1/bdbs/{}/syncer_state/crdt", bdb.uid);
        if let Ok(body) = api.get(&path).await {
            sources = parse::syncer_state_sources(&body);
        }
    }
    let participants: Vec<Participant> = match &bdb.crdt_guid {
        Some(guid) if guid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            get(api, &format!("/v1/crdbs/{guid}"), parse::crdb_participants)
                .await
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    for source in &mut sources {
        source.datacenter = datacenter_of(&source.uri, &participants, &cx.known);
    }
    sources
}

/// The view after a successful poll at `now`: carries `last_in_sync` over from
/// `previous` and matches the configured instances.
pub fn succeeded(previous: &ClusterView, read: Read, cx: &Context, now: SystemTime) -> ClusterView {
    let mut databases = read.databases;
    for db in &mut databases {
        for source in &mut db.sources {
            source.last_in_sync = if source.status == SyncStatus::InSync {
                Some(InSync {
                    at: now,
                    lag: source.lag.unwrap_or_default(),
                })
            } else {
                previous
                    .databases
                    .iter()
                    .filter(|p| p.uid == db.uid)
                    .flat_map(|p| &p.sources)
                    .find(|p| p.uri == source.uri)
                    .and_then(|p| p.last_in_sync)
            };
        }
    }
    let mut view = ClusterView {
        polled_at: Some(now),
        error: None,
        read_at: Some(now),
        nodes: read.nodes,
        databases,
        stats: read.stats,
        instances: BTreeMap::new(),
        api_errors: previous.api_errors.clone(),
    };
    for (instance, names) in &cx.databases {
        if let Some(db) = names.iter().find_map(|n| view.database(n)) {
            view.instances.insert(instance.clone(), db.uid);
        }
    }
    view
}

/// The view after a failed poll: what was last read, marked stale, the error counted.
pub fn failed(previous: &ClusterView, error: &ApiError, now: SystemTime) -> ClusterView {
    let mut view = previous.clone();
    view.polled_at = Some(now);
    view.error = Some(error.to_string());
    *view
        .api_errors
        .entry(error.kind.as_str().to_owned())
        .or_default() += 1;
    view
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::model::enterprise::Node;

    fn source(status: SyncStatus, lag_ms: u64) -> SyncSource {
        SyncSource {
            datacenter: None,
            uri: "redis://redis-1.cluster2:12000".into(),
            status,
            lag: Some(Duration::from_millis(lag_ms)),
            last_update: None,
            last_in_sync: None,
        }
    }

    fn read(status: SyncStatus, lag_ms: u64) -> Read {
        Read {
            nodes: vec![Node {
                uid: 1,
                status: "active".into(),
            }],
            databases: vec![Database {
                uid: 3,
                name: "cache".into(),
                status: "active".into(),
                crdt: true,
                shards: Vec::new(),
                sources: vec![source(status, lag_ms)],
            }],
            stats: Stats::default(),
        }
    }

    fn cx() -> Context {
        Context {
            known: Vec::new(),
            databases: [(
                InstanceId::new("cache-service"),
                vec!["cache-service".into(), "cache".into()],
            )]
            .into(),
        }
    }

    #[test]
    fn last_in_sync_is_carried_over_until_the_source_syncs_again() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(60);
        let first = succeeded(
            &ClusterView::default(),
            read(SyncStatus::InSync, 40),
            &cx(),
            t0,
        );
        let want = Some(InSync {
            at: t0,
            lag: Duration::from_millis(40),
        });
        assert_eq!(first.databases[0].sources[0].last_in_sync, want);
        let second = succeeded(&first, read(SyncStatus::OutOfSync, 0), &cx(), t1);
        assert_eq!(second.databases[0].sources[0].last_in_sync, want);
        let error = ApiError {
            kind: ErrorKind::Timeout,
            path: "/v1/nodes".into(),
            message: "timed out".into(),
        };
        let third = failed(&second, &error, t1 + Duration::from_secs(60));
        assert_eq!(third.databases[0].sources[0].last_in_sync, want);
        assert_eq!(third.read_at, Some(t1));
        assert!(!third.is_fresh());
        assert_eq!(third.api_errors["timeout"], 1);
        let fourth = succeeded(
            &third,
            read(SyncStatus::InSync, 5),
            &cx(),
            t1 + Duration::from_secs(120),
        );
        assert_eq!(fourth.api_errors["timeout"], 1, "the count is kept");
        assert_eq!(
            fourth.databases[0].sources[0].last_in_sync.unwrap().lag,
            Duration::from_millis(5)
        );
    }

    #[test]
    fn an_instance_is_matched_by_uid_then_name() {
        let view = succeeded(
            &ClusterView::default(),
            read(SyncStatus::InSync, 0),
            &cx(),
            UNIX_EPOCH,
        );
        let db = view
            .instance_database(&InstanceId::new("cache-service"))
            .expect("matched by its name");
        assert_eq!(db.uid, 3);
    }
}
