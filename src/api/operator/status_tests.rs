//! The status and metrics routes: what the agent knows now.

use std::time::Instant;

use super::*;
use crate::collector::info::parse_info;
use crate::model::{
    Analysis, AnomalyState, EndpointKey, EndpointStatus, HealthStatus, Round, Snapshot,
};

fn publish(store: &SnapshotStore, analysis: &AnalysisStore, dc: &str, info: &str) {
    let key = EndpointKey::new("cache", dc);
    let mut status = EndpointStatus::new(
        key.clone(),
        1,
        format!("redis-{dc}.example.com:6379"),
        Duration::from_secs(5),
    );
    store.register(status.clone());
    let now = Instant::now();
    status.last_round = Some(Round {
        finished: now,
        at: SystemTime::now(),
        duration: Duration::from_millis(2),
        error: None,
    });
    status.last_success = Some(Arc::new(Snapshot {
        taken_at: SystemTime::now(),
        finished: now,
        ping_latency: Duration::from_micros(500),
        info: parse_info(info),
        cluster: None,
        sentinel_masters: Vec::new(),
    }));
    store.publish(status);
    analysis.publish(
        key,
        Analysis {
            anomaly: AnomalyState::WarmingUp {
                samples: 3,
                needed: 30,
            },
            health_score: 0.93,
            health_status: HealthStatus::Healthy,
            up: true,
        },
    );
}

#[tokio::test]
async fn status_and_metrics_show_the_latest_collection() {
    let b = bed(Some(KEY)).await;
    let info = "# Server\r\nredis_version:7.2.4\r\nuptime_in_seconds:100\r\n\
        # Clients\r\nconnected_clients:12\r\nblocked_clients:0\r\n\
        # Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\nmem_fragmentation_ratio:1.25\r\n\
        # Stats\r\ninstantaneous_ops_per_sec:42\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\n\
        # Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:7\r\n\
        # Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\n";
    publish(&b.state.store, &b.state.analysis, "west", info);

    let a = get(&b.state, "/api/status").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json["generated_at"].is_string());
    let cache = &a.json["instances"][0];
    assert_eq!(cache["instance_uid"], "cache");
    assert_eq!(cache["name"], "cache-service");
    assert_eq!(cache["active_datacenter"], "east");
    assert_eq!(cache["cooldown_until"], Value::Null);
    let dcs = cache["datacenters"].as_array().unwrap();
    assert_eq!(dcs.len(), 2);
    let (east, west) = (&dcs[0], &dcs[1]);
    assert_eq!(east["datacenter"], "east");
    assert_eq!(east["active"], true);
    assert_eq!(east["up"], false);
    assert_eq!(east["last_collection"], Value::Null);
    assert_eq!(west["up"], true);
    assert_eq!(west["health_score"], 0.93);
    assert_eq!(west["health_status"], "healthy");
    assert_eq!(west["anomaly_state"], "warming_up");
    assert_eq!(west["anomaly_score"], Value::Null);
    // A single agent has no observers to show.
    assert!(west.get("observers").is_none(), "{west}");
    let at = west["last_collection"].as_str().unwrap();
    assert!(at.ends_with('Z') && crate::model::rfc3339::parse(at).unwrap().is_some());
    let one = get(&b.state, "/api/status/cache").await;
    assert_eq!(one.json["datacenters"], cache["datacenters"]);

    let a = get(&b.state, "/api/metrics/cache/latest").await;
    assert_eq!(a.status, StatusCode::OK);
    let west = &a.json["datacenters"][1];
    assert_eq!(west["datacenter"], "west");
    assert_eq!(west["fresh"], true);
    assert_eq!(west["memory"]["used_memory"], 1_048_576);
    assert_eq!(west["memory"]["mem_fragmentation_ratio"], 1.25);
    assert_eq!(west["clients"]["connected_clients"], 12);
    assert_eq!(west["stats"]["instantaneous_ops_per_sec"], 42);
    assert_eq!(west["keyspace"]["hit_ratio"], 0.9);
    assert_eq!(west["keyspace"]["keys"], 5);
    assert_eq!(west["replication"]["role"], "master");
    assert_eq!(west["server"]["redis_version"], "7.2.4");
    assert!(west.get("health").is_none());
    assert_eq!(a.json["datacenters"][0]["collected_at"], Value::Null);

    let a = get(&b.state, "/api/metrics/cache").await;
    let west = &a.json["datacenters"][1];
    assert_eq!(west["memory"]["used_memory"], 1_048_576);
    assert_eq!(west["health"]["status"], "healthy");
    assert_eq!(west["anomaly"]["state"], "warming_up");
    assert_eq!(a.json["history"], Value::Null);
    assert!(
        a.json["history_note"]
            .as_str()
            .unwrap()
            .contains("Prometheus")
    );
}

#[tokio::test]
async fn in_a_fleet_each_endpoint_shows_every_observers_latest_view() {
    use crate::decision::fleet::{self, Observer, Seen};
    use crate::decision::ports::{Leadership, Table};
    use crate::decision::testkit::{MemoryCoordination, MemoryStore};
    use crate::model::DatacenterId;

    let store = Arc::new(MemoryStore::default());
    let me = MemoryCoordination::new("agent-east", Arc::clone(&store)).in_datacenter("east");
    me.set(Leadership::Follower { leader: None });
    // Another agent, at a witness site: east does not answer it, west does in 1.5 ms.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_787_045);
    let seen = |up: bool| Seen {
        up,
        latency_ms: up.then_some(1.5),
        at,
    };
    let witness = Observer {
        agent: "agent-c".into(),
        datacenter: None,
        at,
        endpoints: [(
            InstanceId::new("cache"),
            [
                (DatacenterId::new("east"), seen(false)),
                (DatacenterId::new("west"), seen(true)),
            ]
            .into_iter()
            .collect(),
        )]
        .into_iter()
        .collect(),
    };
    store.put_record(Table::Observations, "agent-c", &fleet::encode(&witness));
    let b = bed_full(
        Some(KEY),
        true,
        Fixed::new(&[("east", false), ("west", true)]),
        Advisors::default(),
        Some(Arc::new(me)),
    )
    .await;
    // This agent collected west (0.5 ms) and nothing of east yet.
    publish(
        &b.state.store,
        &b.state.analysis,
        "west",
        "# Server\r\nredis_version:7.2.4\r\n",
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let cache = loop {
        let a = get(&b.state, "/api/status").await;
        let cache = a.json["instances"][0].clone();
        if cache["datacenters"][1]["observers"]
            .as_array()
            .map(Vec::len)
            == Some(2)
        {
            break cache;
        }
        assert!(
            Instant::now() < deadline,
            "no observers within 10 s: {}",
            a.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let west = &cache["datacenters"][1]["observers"];
    assert_eq!(
        west[0],
        json!({"observer": "agent-c", "datacenter": null, "up": true, "latency_ms": 1.5,
            "at": "2025-01-02T03:04:05Z"})
    );
    assert_eq!(west[1]["observer"], "agent-east");
    assert_eq!(west[1]["datacenter"], "east");
    assert_eq!(west[1]["up"], true);
    assert_eq!(west[1]["latency_ms"], 0.5);
    assert!(west[1]["at"].as_str().unwrap().ends_with('Z'));
    // East: only the witness has a view of it, down and without a latency.
    assert_eq!(
        cache["datacenters"][0]["observers"],
        json!([{"observer": "agent-c", "datacenter": null, "up": false, "latency_ms": null,
            "at": "2025-01-02T03:04:05Z"}])
    );
    let one = get(&b.state, "/api/status/cache").await;
    assert_eq!(
        one.json["datacenters"][1]["observers"][0]["observer"],
        "agent-c"
    );
}
