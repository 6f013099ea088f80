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
    let m = agent.wait_metrics(WAIT, "the replica's link down", |m| {
        m.get(
            "redis_master_link_up",
            &[("redis_instance", "cache"), ("datacenter", "west")],
        ) == Some(0.0)
    });
    assert_eq!(m.of("redis_up", "cache", "east"), Some(0.0));
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

fn rounds(agent: &Agent, instance: &str) -> f64 {
    agent
        .metrics()
        .of("redis_agent_collection_rounds_total", instance, "east")
        .unwrap_or(0.0)
}

/// A killed endpoint goes down within two intervals and comes back without a restart of
/// the agent; a hung one times out. Neither slows the healthy endpoint down.
#[test]
fn a_dead_or_hung_endpoint_does_not_delay_the_others() {
    let mut dying = Redis::start(&[]);
    let hung = Redis::start(&[]);
    let healthy = Redis::start(&[]);
    let agent = Agent::start(&config(
        &[
            ("dying", &[("east", dying.port)]),
            ("hung", &[("east", hung.port)]),
            ("healthy", &[("east", healthy.port)]),
        ],
        "api: {api_key: collect-test-key}\n",
    ));
    agent.wait_metrics(WAIT, "all up", |m| {
        ["dying", "hung", "healthy"]
            .iter()
            .all(|i| m.of("redis_up", i, "east") == Some(1.0))
    });

    assert_eq!(failing_since(&agent, "dying"), serde_json::Value::Null);

    // Freeze one server (connections hang, commands time out) and kill another.
    let killed_wall = std::time::SystemTime::now();
    common::kill(hung.pid(), "STOP");
    dying.kill();
    let killed_at = std::time::Instant::now();
    let m = agent.wait_metrics(
        Duration::from_secs(5),
        "the dead and hung endpoints down",
        |m| {
            m.of("redis_up", "dying", "east") == Some(0.0)
                && m.of("redis_up", "hung", "east") == Some(0.0)
        },
    );
    // Two intervals of 1 s, plus scheduling slack on a shared machine.
    assert!(
        killed_at.elapsed() < Duration::from_secs(4),
        "down only after {:?}",
        killed_at.elapsed()
    );
    assert!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "dying"), ("kind", "connect")]
        )
        .is_some()
    );
    assert!(
        m.of("redis_memory_used_bytes", "dying", "east").is_none(),
        "a dead endpoint's data is not shown as fresh"
    );

    // The API says since when each endpoint has been failing: the first failed round,
    // not the latest one (the decision reads the clients' logs from then).
    let since = failing_since(&agent, "dying");
    let at = since.as_str().map(|t| {
        redis_failover_agent::model::rfc3339::parse(t)
            .unwrap()
            .unwrap()
    });
    assert!(
        at.is_some_and(|at| at >= killed_wall),
        "dying: failing_since {since} (killed at {killed_wall:?})"
    );
    assert!(failing_since(&agent, "hung").is_string());

    // The healthy endpoint keeps its one-second cadence meanwhile.
    let before = rounds(&agent, "healthy");
    std::thread::sleep(Duration::from_secs(4));
    let after = rounds(&agent, "healthy");
    assert_eq!(
        failing_since(&agent, "dying"),
        since,
        "moved with later rounds"
    );
    assert_eq!(failing_since(&agent, "healthy"), serde_json::Value::Null);
    assert!(
        after - before >= 3.0,
        "healthy endpoint did only {} rounds in 4 s",
        after - before
    );
    let m = agent.metrics();
    assert_eq!(m.of("redis_up", "healthy", "east"), Some(1.0));
    assert!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "hung"), ("kind", "timeout")]
        )
        .unwrap()
            >= 1.0
    );

    // Both come back without restarting the agent.
    common::kill(hung.pid(), "CONT");
    dying.restart();
    agent.wait_metrics(WAIT, "both back up", |m| {
        m.of("redis_up", "dying", "east") == Some(1.0)
            && m.of("redis_up", "hung", "east") == Some(1.0)
    });
    assert_eq!(failing_since(&agent, "dying"), serde_json::Value::Null);
    assert_eq!(failing_since(&agent, "hung"), serde_json::Value::Null);
}

/// `failing_since` of an instance's only endpoint, from `GET /api/status/{uid}`.
fn failing_since(agent: &Agent, uid: &str) -> serde_json::Value {
    let (code, body) = common::http_request(
        agent.port,
        "GET",
        &format!("/api/status/{uid}"),
        &[("X-API-Key", "collect-test-key")],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["datacenters"][0]["failing_since"].clone()
}

#[test]
fn a_wrong_password_is_an_auth_error_and_never_shown() {
    let redis = Redis::start(&["--requirepass", "right-horse-battery"]);
    let yaml = format!(
        "instances:\n\
         - uid: wrong\n  endpoints: {{east: {{host: 127.0.0.1, port: {p}, password: W0ng-Pa55-qzx}}}}\n\
         - uid: right\n  endpoints: {{east: {{host: 127.0.0.1, port: {p}, password: '${{REDIS_PW}}'}}}}\n\
         monitoring_interval: 1\ntimeouts: {{connect: 300ms, command: 300ms}}\n",
        p = redis.port
    );
    let agent = Agent::start_with_env(&yaml, &[("REDIS_PW", "right-horse-battery")]);
    let m = agent.wait_metrics(WAIT, "an auth error", |m| {
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "wrong"), ("kind", "auth")],
        )
        .is_some_and(|n| n >= 1.0)
            && m.of("redis_up", "right", "east") == Some(1.0)
    });
    assert_eq!(m.of("redis_up", "wrong", "east"), Some(0.0));
    for secret in ["W0ng-Pa55-qzx", "right-horse-battery"] {
        assert!(!m.text.contains(secret), "a password is in /metrics");
        assert!(
            !agent.log().contains(secret),
            "a password is in the log:\n{}",
            agent.log()
        );
    }
    assert!(agent.log().contains("kind=auth"), "{}", agent.log());
}

#[test]
fn removed_endpoints_disappear_on_reload_and_sigterm_drains() {
    let a = Redis::start(&[]);
    let b = Redis::start(&[]);
    let mut agent = Agent::start(&config(
        &[("cache", &[("east", a.port), ("west", b.port)])],
        "",
    ));
    agent.wait_metrics(WAIT, "both up", |m| {
        m.of("redis_up", "cache", "east") == Some(1.0)
            && m.of("redis_up", "cache", "west") == Some(1.0)
    });

    std::fs::write(&agent.config, config(&[("cache", &[("east", a.port)])], "")).unwrap();
    common::kill(agent.pid(), "HUP");
    let m = agent.wait_metrics(WAIT, "west gone", |m| {
        m.of("redis_up", "cache", "west").is_none()
    });
    assert!(
        !m.text.contains("datacenter=\"west\""),
        "series of a removed endpoint remain:\n{}",
        m.text
    );
    assert_eq!(m.of("redis_up", "cache", "east"), Some(1.0));
    assert_eq!(
        m.get("redis_agent_config_reloads_total", &[("result", "success")]),
        Some(1.0)
    );

    // A broken file is refused and the running configuration kept.
    std::fs::write(&agent.config, "monitoring_interval: 0\n").unwrap();
    common::kill(agent.pid(), "HUP");
    let m = agent.wait_metrics(WAIT, "the refused reload", |m| {
        m.get("redis_agent_config_reloads_total", &[("result", "failure")]) == Some(1.0)
    });
    assert_eq!(m.of("redis_up", "cache", "east"), Some(1.0));

    let status = agent.stop();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(agent.log().contains("stopped"), "{}", agent.log());
}

#[test]
fn json_logs_and_ctrl_c() {
    let redis = Redis::start(&[]);
    let dead = common::free_port();
    let mut agent = Agent::start_full(
        &config(&[("cache", &[("east", redis.port), ("west", dead)])], ""),
        &[],
        &["--log-format", "json"],
    );
    agent.wait_metrics(WAIT, "one up, one down", |m| {
        m.of("redis_up", "cache", "east") == Some(1.0)
            && m.of("redis_up", "cache", "west") == Some(0.0)
    });
    common::kill(agent.pid(), "INT");
    let status = agent.stop_after_signal();
    assert!(status.success(), "exit status after Ctrl-C: {status}");
    let log = agent.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let failed = lines
        .iter()
        .find(|l| l["message"] == "collection failed")
        .unwrap_or_else(|| panic!("no failure logged:\n{log}"));
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["redis_instance"], "cache");
    assert_eq!(failed["datacenter"], "west");
    assert_eq!(failed["kind"], "connect");
    assert!(lines.iter().any(|l| l["message"] == "stopped"), "{log}");
}

#[test]
fn a_datacenter_whose_endpoints_are_all_down_is_failed() {
    let redis = Redis::start(&[]);
    let (dead_a, dead_b) = (common::free_port(), common::free_port());
    let agent = Agent::start(&config(
        &[
            ("cache", &[("east", redis.port), ("west", dead_a)]),
            ("sessions", &[("east", redis.port), ("west", dead_b)]),
        ],
        "",
    ));
    let m = agent.wait_metrics(WAIT, "health of both datacenters", |m| {
        m.get("redis_datacenter_health_score", &[("datacenter", "west")])
            .is_some()
            && m.get("redis_datacenter_health_score", &[("datacenter", "east")])
                .is_some()
    });
    assert_eq!(
        m.get("redis_datacenter_health_score", &[("datacenter", "west")]),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "redis_datacenter_health_status",
            &[("datacenter", "west"), ("status", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "redis_health_score",
            &[("redis_instance", "cache"), ("datacenter", "west")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "redis_health_status",
            &[
                ("redis_instance", "cache"),
                ("datacenter", "west"),
                ("status", "failed")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("redis_datacenter_health_score", &[("datacenter", "east")]),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "redis_datacenter_health_status",
            &[("datacenter", "east"), ("status", "healthy")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.of("redis_anomaly_model_ready", "cache", "east"),
        Some(0.0),
        "warming up"
    );
    assert!(
        m.of("redis_anomaly_score", "cache", "east").is_none(),
        "no score while warming up"
    );
    assert_promtool_clean(&m.text);
}

/// The training window survives a restart: the model is back at once, without a new
/// warm-up.
#[test]
fn a_restart_keeps_the_anomaly_model() {
    let redis = Redis::start(&[]);
    let state = tempfile::tempdir().unwrap();
    let yaml = config(
        &[("cache", &[("east", redis.port)])],
        &format!(
            "anomaly_warmup_samples: 16\nmodel_path: {}\n",
            state.path().display()
        ),
    );
    let mut agent = Agent::start(&yaml);
    let m = agent.wait_metrics(Duration::from_secs(40), "a trained model", |m| {
        m.of("redis_anomaly_model_ready", "cache", "east") == Some(1.0)
            && m.of("redis_anomaly_score", "cache", "east").is_some()
    });
    assert!(
        m.of("redis_anomaly_model_samples", "cache", "east")
            .unwrap()
            >= 16.0
    );
    assert!(agent.stop().success());
    assert!(
        std::fs::read_dir(state.path()).unwrap().count() >= 1,
        "no training window saved"
    );

    let started = std::time::Instant::now();
    let agent = Agent::start(&yaml);
    let m = agent.metrics();
    assert!(
        m.of("redis_anomaly_model_samples", "cache", "east")
            .is_none_or(|n| n >= 16.0)
    );
    agent.wait_metrics(
        Duration::from_secs(10),
        "the model back without a warm-up",
        |m| {
            m.of("redis_anomaly_model_ready", "cache", "east") == Some(1.0)
                && m.of("redis_anomaly_score", "cache", "east").is_some()
        },
    );
    // A warm-up would take 16 rounds of 1 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        agent.log().contains("anomaly training window restored"),
        "{}",
        agent.log()
    );
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
