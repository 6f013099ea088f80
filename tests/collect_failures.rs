//! Black-box tests of collection when Redis fails: a killed, hung or refusing endpoint,
//! and a datacenter with every endpoint down. The agent binary against real redis-server
//! processes, read through /metrics and the API.

mod common;

use std::time::Duration;

use common::{Agent, Redis, assert_promtool_clean, config};

const WAIT: Duration = Duration::from_secs(15);

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
