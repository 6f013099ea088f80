//! Black-box tests: the agent binary against real redis-server and redis-sentinel
//! processes, read through its /metrics as Prometheus would.

mod common;

use std::time::Duration;

use common::{Agent, Redis, assert_promtool_clean, config, wait_for};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn keyspace_counts_keys_and_expiring_keys() {
    let redis = Redis::start(&[]);
    let mut conn = redis.client();
    let mut pipe = redis::pipe();
    for i in 0..100 {
        pipe.set(format!("key:{i}"), i).ignore();
        if i < 40 {
            pipe.expire(format!("key:{i}"), 3600).ignore();
        }
    }
    pipe.exec(&mut conn).unwrap();

    let agent = Agent::start(&config(&[("cache", &[("east", redis.port)])], ""));
    let m = agent.wait_metrics(WAIT, "db0 keys", |m| {
        m.get(
            "redis_db_keys",
            &[
                ("redis_instance", "cache"),
                ("datacenter", "east"),
                ("db", "db0"),
            ],
        )
        .is_some()
    });
    let db0 = [
        ("redis_instance", "cache"),
        ("datacenter", "east"),
        ("db", "db0"),
    ];
    assert_eq!(m.get("redis_db_keys", &db0), Some(100.0));
    assert_eq!(m.get("redis_db_keys_expiring", &db0), Some(40.0));
    assert_eq!(m.of("redis_up", "cache", "east"), Some(1.0));
    assert!(m.of("redis_ping_latency_seconds", "cache", "east").unwrap() > 0.0);
    assert!(
        m.of("redis_commands_processed_total", "cache", "east")
            .unwrap()
            >= 140.0
    );
    assert!(
        m.get(
            "redis_commands_total",
            &[("redis_instance", "cache"), ("cmd", "set")]
        )
        .unwrap()
            >= 100.0
    );
    assert_eq!(
        m.get(
            "redis_instance_info",
            &[("redis_instance", "cache"), ("role", "master")]
        ),
        Some(1.0)
    );
    assert_eq!(agent.get("/readyz").unwrap().0, 200);
    assert_promtool_clean(&m.text);
}

#[test]
fn replica_link_follows_its_primary() {
    let mut primary = Redis::start(&["--repl-diskless-sync-delay", "0"]);
    let port = primary.port.to_string();
    let replica = Redis::start(&["--replicaof", "127.0.0.1", &port]);

    let agent = Agent::start(&config(
        &[("cache", &[("east", primary.port), ("west", replica.port)])],
        "",
    ));
    let m = agent.wait_metrics(WAIT, "the replica's link up", |m| {
        m.get(
            "redis_master_link_up",
            &[("redis_instance", "cache"), ("datacenter", "west")],
        ) == Some(1.0)
            && m.of("redis_connected_slaves", "cache", "east") == Some(1.0)
            // The primary marks its replica online a moment after the replica's link is up.
            && m.get(
                "redis_connected_slave_lag_seconds",
                &[("datacenter", "east"), ("slave_state", "online")],
            )
            .is_some()
    });
    assert_eq!(
        m.get(
            "redis_master_link_up",
            &[("datacenter", "west"), ("master_port", &port)]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "redis_connected_slave_lag_seconds",
            &[("datacenter", "east"), ("slave_state", "online")]
        )
        .map(|lag| lag < 5.0),
        Some(true)
    );
    assert_eq!(
        m.get(
            "redis_instance_info",
            &[("datacenter", "west"), ("role", "slave")]
        ),
        Some(1.0)
    );
    assert_promtool_clean(&m.text);

    primary.kill();
    // The replica may see its link go before the agent's next round of the primary.
    let m = agent.wait_metrics(WAIT, "the replica's link and the primary down", |m| {
        m.get(
            "redis_master_link_up",
            &[("redis_instance", "cache"), ("datacenter", "west")],
        ) == Some(0.0)
            && m.of("redis_up", "cache", "east") == Some(0.0)
    });
    assert_eq!(m.of("redis_up", "cache", "west"), Some(1.0));
    assert!(
        m.of("redis_connected_slaves", "cache", "east").is_none(),
        "no stale values of a dead primary"
    );
}

#[test]
fn cluster_state_and_slots() {
    let nodes: Vec<Redis> = (0..3)
        .map(|_| {
            let bus = common::free_port().to_string();
            Redis::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus,
                "--cluster-node-timeout",
                "2000",
            ])
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.push("--cluster-yes");
    nodes[0].cli(&args);
    wait_for(WAIT, "cluster_state:ok on every node", || {
        nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            .then_some(())
    });

    let agent = Agent::start(&config(
        &[
            ("shard-a", &[("east", nodes[0].port)]),
            ("shard-b", &[("east", nodes[1].port)]),
            ("shard-c", &[("east", nodes[2].port)]),
        ],
        "",
    ));
    let m = agent.wait_metrics(WAIT, "cluster state on all nodes", |m| {
        ["shard-a", "shard-b", "shard-c"]
            .iter()
            .all(|s| m.of("redis_cluster_state", s, "east") == Some(1.0))
    });
    for shard in ["shard-a", "shard-b", "shard-c"] {
        assert_eq!(
            m.of("redis_cluster_slots_assigned", shard, "east"),
            Some(16384.0)
        );
        assert_eq!(m.of("redis_cluster_slots_ok", shard, "east"), Some(16384.0));
        assert_eq!(m.of("redis_cluster_known_nodes", shard, "east"), Some(3.0));
        assert_eq!(m.of("redis_cluster_enabled", shard, "east"), Some(1.0));
    }
    assert_promtool_clean(&m.text);
}

#[test]
fn sentinel_reports_its_primary_and_quorum() {
    let primary = Redis::start(&[]);
    let sentinel = Redis::sentinel(&primary);
    let agent = Agent::start(&config(&[("sentinels", &[("east", sentinel.port)])], ""));
    let address = format!("127.0.0.1:{}", primary.port);
    let master = [
        ("redis_instance", "sentinels"),
        ("master_name", "mymaster"),
        ("master_address", &address),
    ];
    let m = agent.wait_metrics(WAIT, "the sentinel's primary", |m| {
        m.get("redis_sentinel_master_status", &master) == Some(1.0)
    });
    assert_eq!(
        m.get(
            "redis_sentinel_master_status",
            &[("master_name", "mymaster"), ("master_status", "ok")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("redis_sentinel_master_setting_ckquorum", &master),
        Some(1.0)
    );
    assert_eq!(
        m.get("redis_sentinel_master_ckquorum_status", &master),
        Some(1.0)
    );
    assert_eq!(m.get("redis_sentinel_master_sentinels", &master), Some(1.0));
    assert_eq!(
        m.of("redis_sentinel_masters", "sentinels", "east"),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "redis_instance_info",
            &[("redis_instance", "sentinels"), ("redis_mode", "sentinel")]
        ),
        Some(1.0)
    );
    assert_promtool_clean(&m.text);
}

#[test]
fn an_endpoint_behind_sentinel_is_collected_from_the_primary_sentinel_promotes() {
    let mut primary = Redis::start(&["--repl-diskless-sync-delay", "0"]);
    let replica = Redis::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let sentinel = Redis::sentinel(&primary);
    common::wait_for(
        Duration::from_secs(30),
        "Sentinel to know the replica",
        || {
            let out = sentinel.cli(&["SENTINEL", "replicas", "mymaster"]);
            out.contains(&replica.port.to_string()).then_some(())
        },
    );
    let yaml = format!(
        "instances:\n  - uid: app\n    endpoints:\n      east:\n        host: 127.0.0.1\n        \
         port: {}\n        sentinel: {{master: mymaster, addresses: ['127.0.0.1:{}']}}\n\
         monitoring_interval: 1\ntimeouts: {{connect: 300ms, command: 300ms}}\n\
         reconnect_max_backoff: 1s\n",
        primary.port, sentinel.port
    );
    let agent = Agent::start(&yaml);
    agent.wait_metrics(Duration::from_secs(20), "the primary collected", |m| {
        m.of("redis_up", "app", "east") == Some(1.0)
    });
    primary.kill();
    // Sentinel promotes the replica; collection follows it, as a Sentinel-aware client
    // would, instead of reporting the old address down for ever.
    let m = agent.wait_metrics(
        Duration::from_secs(30),
        "collection from the new primary",
        |m| {
            m.of("redis_up", "app", "east") == Some(1.0)
                && m.get(
                    "redis_instance_info",
                    &[("redis_instance", "app"), ("role", "master")],
                ) == Some(1.0)
                && m.of("redis_connected_slaves", "app", "east").is_some()
                && m.text.contains(&format!(
                    "redis_process_id{{redis_instance=\"app\",datacenter=\"east\"}} {}",
                    replica.pid()
                ))
        },
    );
    assert_eq!(m.of("redis_up", "app", "east"), Some(1.0));
}
