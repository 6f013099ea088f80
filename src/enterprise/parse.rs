//! The REST API's answers read into our types (pure). Every reader tolerates fields it
//! does not know and values of the wrong type (skipped), and refuses only a body whose
//! shape is not the documented one.
//!
//! References (Redis Software REST API, redis.io/docs/latest/operate/rs/references/rest-api/):
//! - `requests/nodes`, `objects/node`: `GET /v1/nodes`, an array of `{uid, status, ...}`;
//! - `requests/bdbs`, `objects/bdb`: `GET /v1/bdbs`, `{uid, name, status, crdt,
//!   crdt_guid, crdt_sources: [syncer_sources], ...}`;
//! - `objects/bdb/syncer_sources`: `{uid, uri, status, lag (ms), last_update,
//!   last_error}`; `objects/bdb/replica_sources_status`: `in-sync`, `syncing`,
//!   `out-of-sync`;
//! - `requests/shards`, `objects/shard`: `GET /v1/shards`, `{uid: "1", bdb_uid: 1,
//!   role: master|slave, status: active|inactive|trimming, ...}`;
//! - `requests/{cluster,nodes,bdbs,shards}/stats/last`: the last interval's statistics,
//!   `{"<uid>": {"stime": ..., "etime": ..., "<metric>": <number>, ...}}` (the cluster's
//!   without the uid level);
//! - `objects/crdb`, `objects/crdb/instance_info`, `objects/crdb/cluster_info`:
//!   `GET /v1/crdbs/{guid}`, `{guid, name, instances: [{id, db_uid, cluster: {name, url}}]}`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::model::enterprise::{Node, Shard, StatSet, SyncSource, SyncStatus};
use crate::model::{clean_label, rfc3339};

/// A body that is not what the reference documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct ShapeError {
    pub what: &'static str,
    pub problem: &'static str,
}

fn shape(what: &'static str, problem: &'static str) -> ShapeError {
    ShapeError { what, problem }
}

/// A uid as the API writes it: a number, or a number in a string (shards).
fn uid(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_str)
        .map(|s| clean_label(s).into_owned())
        .unwrap_or_default()
}

fn array<'a>(body: &'a Value, what: &'static str) -> Result<&'a Vec<Value>, ShapeError> {
    body.as_array().ok_or(shape(what, "not a JSON array"))
}

/// `GET /v1/nodes`.
pub fn nodes(body: &Value) -> Result<Vec<Node>, ShapeError> {
    Ok(array(body, "/v1/nodes")?
        .iter()
        .filter_map(|n| {
            Some(Node {
                uid: uid(n.get("uid"))?,
                status: text(n.get("status")),
            })
        })
        .collect())
}

/// One database of `GET /v1/bdbs`, before its shards are attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Bdb {
    pub uid: u64,
    pub name: String,
    pub status: String,
    pub crdt: bool,
    /// The CRDB this database is an instance of (`crdt_guid`).
    pub crdt_guid: Option<String>,
    pub sources: Vec<SyncSource>,
}

/// `GET /v1/bdbs`.
pub fn bdbs(body: &Value) -> Result<Vec<Bdb>, ShapeError> {
    Ok(array(body, "/v1/bdbs")?
        .iter()
        .filter_map(|db| {
            let sources = db
                .get("crdt_sources")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(source).collect())
                .unwrap_or_default();
            Some(Bdb {
                uid: uid(db.get("uid"))?,
                name: text(db.get("name")),
                status: text(db.get("status")),
                crdt: db.get("crdt").and_then(Value::as_bool).unwrap_or(false),
                crdt_guid: db
                    .get("crdt_guid")
                    .and_then(Value::as_str)
                    .filter(|g| !g.is_empty())
                    .map(|g| clean_label(g).into_owned()),
                sources,
            })
        })
        .collect())
}

/// `GET /v1/bdbs/{uid}/syncer_state/crdt`: its format is not documented beyond a few
/// fields; the sources are read from it only when it lists them as `syncer_sources` do.
pub fn syncer_state_sources(body: &Value) -> Vec<SyncSource> {
    ["sources", "crdt_sources", "syncer_sources"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_array))
        .map(|s| s.iter().filter_map(source).collect())
        .unwrap_or_default()
}

/// One `syncer_sources` entry; the datacenter is matched later.
fn source(entry: &Value) -> Option<SyncSource> {
    let uri = entry.get("uri").and_then(Value::as_str)?;
    Some(SyncSource {
        datacenter: None,
        uri: clean_label(&without_credentials(uri)).into_owned(),
        status: SyncStatus::parse(entry.get("status").and_then(Value::as_str).unwrap_or("")),
        lag: entry
            .get("lag")
            .and_then(Value::as_f64)
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
        last_update: entry
            .get("last_update")
            .and_then(Value::as_str)
            .and_then(|t| rfc3339::parse(t).ok().flatten()),
        last_in_sync: None,
    })
}

/// A source's URI as it may be shown: `scheme://host:port`, without the credentials a
/// replication URI carries (`redis://admin:secret@host:port`) or any path.
pub fn without_credentials(uri: &str) -> String {
    let (scheme, rest) = match uri.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), uri),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}")
}

/// The host of a source's URI, lower case, without port: what is matched against the
/// participating clusters.
pub fn host_of(uri: &str) -> String {
    let shown = without_credentials(uri);
    let authority = shown.split_once("://").map_or(shown.as_str(), |(_, r)| r);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    host.to_ascii_lowercase()
}

/// `GET /v1/shards`: each shard with the uid of its database.
pub fn shards(body: &Value) -> Result<Vec<(u64, Shard)>, ShapeError> {
    Ok(array(body, "/v1/shards")?
        .iter()
        .filter_map(|s| {
            let shard = Shard {
                uid: uid(s.get("uid"))?,
                role: text(s.get("role")),
                status: text(s.get("status")),
            };
            Some((uid(s.get("bdb_uid"))?, shard))
        })
        .collect())
}

/// The numbers of one statistics object; times and text are left out.
fn stat_set(object: &serde_json::Map<String, Value>) -> StatSet {
    object
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64().filter(|x| x.is_finite())?)))
        .collect()
}

/// `GET /v1/{nodes,bdbs,shards}/stats/last`: statistics by uid.
pub fn stats_by_uid(
    body: &Value,
    what: &'static str,
) -> Result<BTreeMap<u64, StatSet>, ShapeError> {
    let object = body.as_object().ok_or(shape(what, "not a JSON object"))?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| Some((k.trim().parse().ok()?, stat_set(v.as_object()?))))
        .collect())
}

/// `GET /v1/cluster/stats/last`: one statistics object (or, as the interval requests
/// answer, `{"intervals": [...]}`, of which the last is taken).
pub fn cluster_stats(body: &Value) -> Result<StatSet, ShapeError> {
    let what = "/v1/cluster/stats/last";
    let object = body.as_object().ok_or(shape(what, "not a JSON object"))?;
    match object.get("intervals").and_then(Value::as_array) {
        Some(intervals) => Ok(intervals
            .last()
            .and_then(Value::as_object)
            .map(stat_set)
            .unwrap_or_default()),
        None => Ok(stat_set(object)),
    }
}

/// One participating cluster of a CRDB (`instances[].cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// `cluster.name`, the cluster's FQDN; lower case.
    pub name: String,
    /// The host of `cluster.url`, lower case.
    pub url_host: String,
}

/// `GET /v1/crdbs/{guid}`.
pub fn crdb_participants(body: &Value) -> Result<Vec<Participant>, ShapeError> {
    let what = "/v1/crdbs/{guid}";
    let instances = body
        .get("instances")
        .and_then(Value::as_array)
        .ok_or(shape(what, "no instances array"))?;
    Ok(instances
        .iter()
        .filter_map(|i| {
            let cluster = i.get("cluster")?;
            Some(Participant {
                name: text(cluster.get("name")).to_ascii_lowercase(),
                url_host: cluster
                    .get("url")
                    .and_then(Value::as_str)
                    .map(host_of)
                    .unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
