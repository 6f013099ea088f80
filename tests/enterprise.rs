//! The Redis Enterprise collector against the stand-in REST API (`common::enterprise`):
//! the series and their values, a failing, refusing or slow API counted and its series
//! withdrawn while the agent keeps serving, TLS with and without the cluster's CA, and
//! no password in the log or on /metrics.

mod common;

use std::time::Duration;

use common::certs::certificates;
use common::enterprise::{FakeEnterprise, Mode, REPLICATION_PASSWORD, Spec};
use common::{Agent, Metrics, assert_promtool_clean, closed_port};

const PASSWORD: &str = "api-Pa55word-42";

fn spec(cluster: &'static str, peer: &'static str) -> Spec {
    Spec {
        cluster,
        peer,
        user: "admin@example.com",
        password: PASSWORD,
    }
}

/// One instance whose endpoints refuse connections (the collector of Redis is not what
/// is tested), and two datacenters given as `dcs`.
fn config(port: u16, dcs: &str, extra: &str) -> String {
    format!(
        "instances:\n  - uid: cache-service\n    active_dc: east\n    endpoints:\n      \
         east: {{host: 127.0.0.1, port: {port}}}\n      west: {{host: 127.0.0.1, port: {port}}}\n\
         datacenters:\n{dcs}\n\
         monitoring_interval: 1\n{extra}"
    )
}

fn up(m: &Metrics, dc: &str) -> Option<f64> {
    m.get("redis_enterprise_api_up", &[("datacenter", dc)])
}

fn assert_no_secret(agent: &Agent, m: &Metrics) {
    for secret in [PASSWORD, REPLICATION_PASSWORD] {
        assert!(!m.text.contains(secret), "a secret on /metrics");
        assert!(
            !agent.log().contains(secret),
            "a secret in the log:\n{}",
            agent.log()
        );
    }
}

#[test]
fn the_series_come_from_the_api_and_a_failing_api_is_counted_not_shown_stale() {
    let api = FakeEnterprise::start(spec("cluster-east.example", "cluster-west.example"));
    api.set(|s| {
        s.syncer_status = "out-of-sync";
        s.syncer_lag_ms = 4500;
        s.replica_status = "inactive";
    });
    let (_closed, port) = closed_port();
    let dcs = format!(
        "  east:\n    name: cluster-east.example\n    api_url: {}\n    api_user: admin@example.com\n    \
         api_password: ${{RE_PASSWORD}}\n  west:\n    name: cluster-west.example",
        api.url()
    );
    let agent = Agent::start_with_env(
        &config(
            port,
            &dcs,
            "enterprise: {poll_interval: 10s, timeout: 2s}\n",
        ),
        &[("RE_PASSWORD", PASSWORD)],
    );
    let m = agent.wait_metrics(Duration::from_secs(20), "the first poll", |m| {
        up(m, "east") == Some(1.0)
    });
    let east = [("datacenter", "east")];
    let get = |name: &str, labels: &[(&str, &str)]| {
        let all: Vec<(&str, &str)> = east.iter().copied().chain(labels.iter().copied()).collect();
        m.get(name, &all)
    };
    assert_eq!(get("redis_enterprise_node_up", &[("node", "1")]), Some(1.0));
    assert_eq!(
        get(
            "redis_enterprise_database_up",
            &[("database", "1"), ("database_name", "cache-service")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            "redis_enterprise_shard_up",
            &[("shard", "1"), ("role", "master")]
        ),
        Some(1.0)
    );
    assert_eq!(
        get(
            "redis_enterprise_shard_up",
            &[("shard", "2"), ("role", "slave")]
        ),
        Some(0.0)
    );
    // The syncer's source is matched to `west` through the CRDB's participants.
    let source = [("database", "1"), ("source_datacenter", "west")];
    assert_eq!(
        get("redis_enterprise_crdt_syncer_in_sync", &source),
        Some(0.0)
    );
    assert_eq!(
        get("redis_enterprise_crdt_syncer_lag_seconds", &source),
        Some(4.5)
    );
    assert_eq!(
        get(
            "redis_enterprise_database_ops_per_second",
            &[("database", "1")]
        ),
        Some(1200.0)
    );
    assert_eq!(
        get(
            "redis_enterprise_database_used_memory_bytes",
            &[("database", "1")]
        ),
        Some(104857600.0)
    );
    assert_eq!(
        get(
            "redis_enterprise_database_avg_latency_seconds",
            &[("database", "1")]
        ),
        Some(0.00025)
    );
    assert_eq!(
        get("redis_enterprise_node_free_memory_bytes", &[("node", "1")]),
        Some(4294967296.0)
    );
    assert_eq!(
        get("redis_enterprise_node_cpu_idle_ratio", &[("node", "1")]),
        Some(0.75)
    );
    assert_eq!(
        get(
            "redis_enterprise_shard_used_memory_bytes",
            &[("shard", "2")]
        ),
        Some(52428800.0)
    );
    assert_eq!(
        get("redis_enterprise_cluster_requests_per_second", &[]),
        Some(1500.0)
    );
    assert!(get("redis_enterprise_api_last_success_timestamp_seconds", &[]).is_some());
    assert_promtool_clean(&m.text);
    assert_eq!(up(&m, "west"), None, "west has no api_url");
    let asked = api.requests();
    for path in [
        "/v1/cluster/stats/last",
        "/v1/nodes",
        "/v1/nodes/stats/last",
        "/v1/bdbs",
        "/v1/bdbs/stats/last",
        "/v1/shards",
        "/v1/shards/stats/last",
        "/v1/crdbs/1d7a2ed4-fdc2-4b21-a3f2-3a1d6c5b7e90",
    ] {
        assert!(
            asked.iter().any(|p| p == path),
            "{path} not asked: {asked:?}"
        );
    }

    // The API fails: counted, and only api_up, the errors and the last success remain.
    api.set(|s| s.mode = Mode::Failing);
    let m = agent.wait_metrics(Duration::from_secs(30), "the failing poll", |m| {
        up(m, "east") == Some(0.0)
    });
    assert_eq!(
        m.get(
            "redis_enterprise_api_errors_total",
            &[("datacenter", "east"), ("kind", "unavailable")]
        ),
        Some(1.0)
    );
    assert!(
        m.get("redis_enterprise_api_last_success_timestamp_seconds", &east)
            .is_some()
    );
    for stale in [
        "redis_enterprise_node_up",
        "redis_enterprise_shard_up",
        "redis_enterprise_crdt_syncer_in_sync",
        "redis_enterprise_database_ops_per_second",
    ] {
        assert!(
            m.all(stale, &east).is_empty(),
            "{stale} shown stale:\n{}",
            m.text
        );
    }
    assert_eq!(agent.get("/healthz").unwrap().0, 200);
    assert_no_secret(&agent, &m);
}

#[test]
fn a_wrong_password_and_a_slow_api_are_counted_and_the_agent_keeps_serving() {
    let refusing = FakeEnterprise::start(spec("cluster-east.example", "cluster-west.example"));
    let slow = FakeEnterprise::start(spec("cluster-west.example", "cluster-east.example"));
    slow.set(|s| s.mode = Mode::Slow(Duration::from_secs(4)));
    let (_closed, port) = closed_port();
    let dcs = format!(
        "  east:\n    api_url: {}\n    api_user: admin@example.com\n    api_password: ${{RE_WRONG}}\n  \
         west:\n    api_url: {}\n    api_user: admin@example.com\n    api_password: ${{RE_PASSWORD}}",
        refusing.url(),
        slow.url()
    );
    let agent = Agent::start_with_env(
        &config(
            port,
            &dcs,
            "enterprise: {poll_interval: 10s, timeout: 1s}\n",
        ),
        &[("RE_PASSWORD", PASSWORD), ("RE_WRONG", "not-the-Pa55word")],
    );
    let errors = |m: &Metrics, dc: &str, kind: &str| {
        m.get(
            "redis_enterprise_api_errors_total",
            &[("datacenter", dc), ("kind", kind)],
        )
    };
    let m = agent.wait_metrics(Duration::from_secs(20), "both polls to fail", |m| {
        errors(m, "east", "unauthorized") == Some(1.0) && errors(m, "west", "timeout") == Some(1.0)
    });
    assert_eq!(up(&m, "east"), Some(0.0));
    assert_eq!(up(&m, "west"), Some(0.0));
    assert!(
        m.all("redis_enterprise_node_up", &[]).is_empty(),
        "{}",
        m.text
    );
    assert!(
        m.get(
            "redis_enterprise_api_last_success_timestamp_seconds",
            &[("datacenter", "east")]
        )
        .is_none()
    );
    assert_eq!(agent.get("/healthz").unwrap().0, 200);
    let log = agent.log();
    assert!(log.contains("Redis Enterprise API poll failed"), "{log}");
    assert!(!log.contains("not-the-Pa55word"), "{log}");
    assert_no_secret(&agent, &m);
}

#[test]
fn tls_is_verified_against_the_configured_ca() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let api = FakeEnterprise::start_tls(
        spec("cluster-east.example", "cluster-west.example"),
        certs.path(),
    );
    let (_closed, port) = closed_port();
    let ca = certs.path().join("ca.pem");
    let dcs = format!(
        "  east:\n    api_url: {url}\n    api_user: admin@example.com\n    api_password: ${{RE_PASSWORD}}\n    \
         api_ca_file: {ca}\n  west:\n    api_url: {url}\n    api_user: admin@example.com\n    \
         api_password: ${{RE_PASSWORD}}",
        url = api.url(),
        ca = ca.display()
    );
    let agent = Agent::start_with_env(
        &config(
            port,
            &dcs,
            "enterprise: {poll_interval: 10s, timeout: 2s}\n",
        ),
        &[("RE_PASSWORD", PASSWORD)],
    );
    let m = agent.wait_metrics(Duration::from_secs(20), "both polls", |m| {
        up(m, "east") == Some(1.0) && up(m, "west") == Some(0.0)
    });
    assert_eq!(
        m.get(
            "redis_enterprise_api_errors_total",
            &[("datacenter", "west"), ("kind", "tls")]
        ),
        Some(1.0),
        "{}",
        agent.log()
    );
    assert_eq!(
        m.get(
            "redis_enterprise_node_up",
            &[("datacenter", "east"), ("node", "3")]
        ),
        Some(1.0)
    );
    assert_no_secret(&agent, &m);
}
