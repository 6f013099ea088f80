//! Black-box tests of the agent's life: reload on SIGHUP, drain on SIGTERM, JSON logs and
//! Ctrl-C, and the anomaly model kept across a restart.

mod common;

use std::time::Duration;

use common::{Agent, Redis, config};

const WAIT: Duration = Duration::from_secs(15);

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
    let (_held, dead) = common::closed_port();
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
