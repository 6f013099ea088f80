//! The readers against the bodies of the REST API reference's examples (pages named in
//! `parse.rs`), with the fields the examples elide filled in as the object pages
//! describe them.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn nodes_read_uid_and_status_and_skip_what_they_cannot_read() {
    let body = json!([
        {"uid": 1, "status": "active", "addr": "10.0.0.1", "shard_count": 2},
        {"uid": 2, "status": "down"},
        {"status": "active"}
    ]);
    let read = nodes(&body).unwrap();
    assert_eq!(read.len(), 2);
    assert!(read[0].is_up());
    assert!(!read[1].is_up());
    assert_eq!(nodes(&json!({"uid": 1})).unwrap_err().what, "/v1/nodes");
}

#[test]
fn a_crdb_database_reads_its_sources_without_credentials() {
    // objects/bdb and objects/bdb/syncer_sources.
    let body = json!([{
        "uid": 1,
        "name": "cache-service",
        "status": "active",
        "crdt": true,
        "crdt_guid": "1d7a2ed4-fdc2-4b21-a3f2-3a1d6c5b7e90",
        "crdt_sources": [{
            "uid": 1,
            "uri": "redis://admin:s3cret@redis-12000.cluster2.example.com:12000/0",
            "status": "in-sync",
            "lag": 35,
            "last_update": "2026-12-06T12:00:00Z",
            "last_error": "",
            "compression": 3,
            "encryption": false
        }, {
            "uid": 2,
            "uri": "redis://redis-12000.cluster3.example.com:12000",
            "status": "out-of-sync",
            "last_error": "Connection refused"
        }],
        "shards_count": 1,
        "memory_size": 1073741824
    }, {"uid": 2, "name": "plain", "status": "pending"}]);
    let dbs = bdbs(&body).unwrap();
    assert_eq!(dbs.len(), 2);
    let crdb = &dbs[0];
    assert!(crdb.crdt);
    assert_eq!(
        crdb.crdt_guid.as_deref(),
        Some("1d7a2ed4-fdc2-4b21-a3f2-3a1d6c5b7e90")
    );
    let s = &crdb.sources[0];
    assert_eq!(s.uri, "redis://redis-12000.cluster2.example.com:12000");
    assert_eq!(s.status, SyncStatus::InSync);
    assert_eq!(s.lag, Some(Duration::from_millis(35)));
    assert!(s.last_update.is_some());
    assert_eq!(crdb.sources[1].status, SyncStatus::OutOfSync);
    assert_eq!(crdb.sources[1].lag, None);
    assert!(!dbs[1].crdt && dbs[1].sources.is_empty());
}

#[test]
fn shards_read_string_uids_roles_and_status() {
    // requests/shards, the example body.
    let body = json!([
        {"uid": "1", "role": "master", "assigned_slots": "0-16383", "bdb_uid": 1,
         "detailed_status": "ok", "loading": {"status": "idle"}, "node_uid": "1",
         "redis_info": {"connected_clients": 14, "used_memory_rss": 12263424},
         "report_timestamp": "2024-06-28T18:44:01Z", "status": "active"},
        {"uid": 2, "role": "slave", "bdb_uid": "1", "status": "inactive"}
    ]);
    let read = shards(&body).unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].0, 1);
    assert_eq!(read[0].1.role, "master");
    assert!(read[0].1.is_up());
    assert_eq!(read[1].1.uid, 2);
    assert!(!read[1].1.is_up());
}

#[test]
fn last_statistics_are_read_by_uid_and_for_the_cluster() {
    // requests/nodes/stats/last: by uid, numbers and times.
    let body = json!({
        "1": {"stime": "2015-05-28T08:40:11Z", "etime": "2015-05-28T08:40:12Z",
              "conns": 0.0, "cpu_idle": 0.55, "free_memory": 893485056.0},
        "x": {"free_memory": 1.0}
    });
    let stats = stats_by_uid(&body, "/v1/nodes/stats/last").unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[&1]["free_memory"], 893485056.0);
    assert!(!stats[&1].contains_key("stime"));

    let cluster = cluster_stats(&json!({"conns": 3.0, "etime": "2015-05-28T08:40:12Z"})).unwrap();
    assert_eq!(cluster["conns"], 3.0);
    let cluster = cluster_stats(&json!({"intervals": [{"conns": 1.0}, {"conns": 2.0}]})).unwrap();
    assert_eq!(cluster["conns"], 2.0);
    assert!(cluster_stats(&json!([])).is_err());
}

#[test]
fn crdb_participants_are_the_instances_clusters() {
    // objects/crdb, objects/crdb/instance_info, objects/crdb/cluster_info.
    let body = json!({
        "guid": "1d7a2ed4-fdc2-4b21-a3f2-3a1d6c5b7e90",
        "name": "cache-service",
        "instances": [
            {"id": 1, "db_uid": "1", "cluster": {"name": "cluster1.example.com",
             "url": "https://cluster1.example.com:9443",
             "credentials": {"username": "admin", "password": "hidden"}}},
            {"id": 2, "cluster": {"name": "Cluster2.example.com", "url": "https://10.0.2.5:9443"}}
        ]
    });
    let p = crdb_participants(&body).unwrap();
    assert_eq!(p[0].name, "cluster1.example.com");
    assert_eq!(p[0].url_host, "cluster1.example.com");
    assert_eq!(p[1].name, "cluster2.example.com");
    assert_eq!(p[1].url_host, "10.0.2.5");
}

#[test]
fn a_syncer_state_is_read_only_when_it_lists_sources() {
    // requests/bdbs/syncer_state: `{"DB": 22, "RunID": 1584086516, ...}`.
    assert!(syncer_state_sources(&json!({"DB": 22, "RunID": 1584086516})).is_empty());
    let listed = json!({"sources": [{"uri": "redis://a:b@h:1", "status": "syncing"}]});
    let s = syncer_state_sources(&listed);
    assert_eq!(s[0].uri, "redis://h:1");
    assert_eq!(s[0].status, SyncStatus::Syncing);
}

#[test]
fn uris_lose_credentials_paths_and_queries() {
    assert_eq!(without_credentials("redis://u:p@w@h:1/0?x"), "redis://h:1");
    assert_eq!(without_credentials("h:1"), "h:1");
    assert_eq!(host_of("rediss://[::1]:12000"), "::1");
    assert_eq!(host_of("redis://U:P@Redis-1.Example:1"), "redis-1.example");
}
