//! End to end: real redis-servers as two datacenters, `moto_server` as Route53, the agent
//! binary, Alertmanager's webhook payload posted as Alertmanager would, and a receiver
//! standing in for Alertmanager's API to catch the agent's notices.

mod common;

use std::time::Duration;

use common::e2e::*;
use common::moto::SECRET_KEY;
use common::{Agent, wait_for};
use serde_json::Value as Json;

#[test]
fn an_outage_fails_over_once_however_often_it_is_delivered() {
    let mut bed = Bed::start();
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::start(&bed.config(state.path()));
    agent.wait_metrics(Duration::from_secs(20), "both endpoints up", |m| {
        m.of("redis_up", "app", "east") == Some(1.0) && m.of("redis_up", "app", "west") == Some(1.0)
    });
    assert_eq!(bed.pointing_at(), EAST);

    bed.east.kill();
    // Twenty deliveries at once, as Alertmanager's retries and an HA pair can make.
    let started = std::time::Instant::now();
    let body = payload("firing");
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let body = body.clone();
            let port = agent.port;
            std::thread::spawn(move || post(port, &body, TOKEN))
        })
        .collect();
    for t in threads {
        let (status, answer) = t.join().unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    wait_for(Duration::from_secs(60), "DNS to point at west", || {
        (bed.pointing_at() == WEST).then_some(())
    });
    // README "Advisors" compares this with tests/advised_failover.rs.
    eprintln!(
        "without advisors: webhook to DNS switched in {:?}",
        started.elapsed()
    );
    wait_for(Duration::from_secs(30), "the incident to close", || {
        (!closed_outcomes(&journal(state.path())).is_empty()).then_some(())
    });
    let records = journal(state.path());
    assert_eq!(count(&records, "opened"), 1, "{records:#?}");
    assert_eq!(count(&records, "joined"), 19);
    assert_eq!(count(&records, "intent"), 1);
    assert_eq!(count(&records, "applied"), 1);
    assert_eq!(closed_outcomes(&records), ["failed_over"]);
    let steps: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "step")
        .filter_map(|r| r["step"]["name"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "guard",
            "probe_round",
            "probe_round",
            "policy",
            "dns",
            "verify"
        ]
    );

    // The operator API shows the same incident, step by step.
    let (status, history) = common::http_request(
        agent.port,
        "GET",
        "/api/failover/history?instance_uid=app",
        &[("X-API-Key", API_KEY)],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{history}");
    let history: Json = serde_json::from_str(&history).unwrap();
    let incident = &history["incidents"][0];
    assert_eq!(incident["outcome"]["outcome"], "failed_over", "{incident}");
    let api_steps: Vec<&str> = incident["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(api_steps, steps);
    assert_eq!(incident["triggers"].as_array().unwrap().len(), 20);

    // /metrics says where traffic goes now and what happened.
    let m = agent.wait_metrics(Duration::from_secs(10), "the failover on /metrics", |m| {
        m.of("redis_active_datacenter", "app", "west") == Some(1.0)
    });
    assert_eq!(m.of("redis_active_datacenter", "app", "east"), Some(0.0));
    assert_eq!(
        m.get(
            "redis_agent_failovers_total",
            &[("redis_instance", "app"), ("result", "success")]
        ),
        Some(1.0)
    );
    // People are told through Alertmanager's API.
    let notice = bed.receiver.wait(
        Duration::from_secs(30),
        "/api/v2/alerts",
        "the agent's RedisFailoverExecuted",
        |d| d.body.to_string().contains("RedisFailoverExecuted"),
    );
    let alert = &notice.body[0];
    assert_eq!(alert["labels"]["redis_instance"], "app");
    assert_eq!(alert["labels"]["datacenter"], "east");
    assert!(alert["labels"].get("failover_candidate").is_none());

    // A delivery after the failover (Alertmanager repeats) is held by the cooldown, and
    // a resolved one changes nothing.
    assert_eq!(post(agent.port, &body, TOKEN).0, 200);
    assert_eq!(post(agent.port, &payload("resolved"), TOKEN).0, 200);
    wait_for(Duration::from_secs(30), "the repeat to be held", || {
        let outcomes = closed_outcomes(&journal(state.path()));
        (outcomes.len() == 2).then_some(outcomes)
    });
    let records = journal(state.path());
    assert_eq!(count(&records, "applied"), 1);
    assert!(
        records.iter().any(|r| r["outcome"]["reason"] == "cooldown"),
        "{records:#?}"
    );
    assert_eq!(bed.pointing_at(), WEST);
    // No secret anywhere in what the agent said.
    let log = agent.log();
    for secret in [TOKEN, SECRET_KEY, API_KEY] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[test]
fn with_both_datacenters_down_nothing_changes_and_the_reason_is_recorded() {
    let mut bed = Bed::start();
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::start(&bed.config(state.path()));
    bed.east.kill();
    bed.west.kill();
    assert_eq!(post(agent.port, &payload("firing"), TOKEN).0, 200);
    wait_for(Duration::from_secs(30), "the evaluation to end", || {
        (!closed_outcomes(&journal(state.path())).is_empty()).then_some(())
    });
    let records = journal(state.path());
    let closed = records.iter().find(|r| r["type"] == "closed").unwrap();
    assert_eq!(closed["outcome"]["outcome"], "held", "{closed}");
    assert_eq!(closed["outcome"]["reason"], "all_down", "{closed}");
    assert_eq!(bed.pointing_at(), EAST);
    bed.receiver.wait(
        Duration::from_secs(30),
        "/api/v2/alerts",
        "the agent's RedisFailoverHeld",
        |d| d.body.to_string().contains("RedisFailoverHeld"),
    );
}

/// `kill -9` at a crash point, then a restart on the same journal.
fn crash_and_restart(point: &str) -> (Bed, tempfile::TempDir, Agent) {
    let mut bed = Bed::start();
    let state = tempfile::tempdir().unwrap();
    let config = bed.config(state.path());
    let mut crashing = Agent::start_full(
        &config,
        &[("REDIS_FAILOVER_AGENT_CRASH_AT", point)],
        &["--verbose"],
    );
    bed.east.kill();
    assert_eq!(post(crashing.port, &payload("firing"), TOKEN).0, 200);
    let status = crashing.stop_after_signal();
    assert!(
        !status.success(),
        "the agent should have aborted at {point}"
    );
    let records = journal(state.path());
    assert_eq!(count(&records, "intent"), 1, "{records:#?}");
    assert_eq!(count(&records, "closed"), 0);
    let restarted = Agent::start(&config);
    (bed, state, restarted)
}

#[test]
fn a_crash_after_the_intent_changes_nothing_twice() {
    let (bed, state, agent) = crash_and_restart("after_intent");
    // Nothing had been written: the incident closes as interrupted, DNS unchanged.
    wait_for(Duration::from_secs(30), "recovery", || {
        (!closed_outcomes(&journal(state.path())).is_empty()).then_some(())
    });
    assert_eq!(closed_outcomes(&journal(state.path())), ["interrupted"]);
    assert_eq!(bed.pointing_at(), EAST);
    // Alertmanager repeats the still-firing alert: a fresh evaluation makes the change once.
    assert_eq!(post(agent.port, &payload("firing"), TOKEN).0, 200);
    wait_for(Duration::from_secs(60), "DNS to point at west", || {
        (bed.pointing_at() == WEST).then_some(())
    });
    wait_for(
        Duration::from_secs(30),
        "the second incident to close",
        || (closed_outcomes(&journal(state.path())).len() == 2).then_some(()),
    );
    let records = journal(state.path());
    assert_eq!(closed_outcomes(&records), ["interrupted", "failed_over"]);
    assert_eq!(count(&records, "applied"), 1);
}

#[test]
fn a_crash_after_the_dns_change_completes_the_incident_without_a_second_change() {
    let (bed, state, agent) = crash_and_restart("after_dns");
    assert_eq!(
        bed.pointing_at(),
        WEST,
        "the change was made before the crash"
    );
    wait_for(Duration::from_secs(30), "recovery", || {
        (!closed_outcomes(&journal(state.path())).is_empty()).then_some(())
    });
    let records = journal(state.path());
    assert_eq!(closed_outcomes(&records), ["failed_over"], "{records:#?}");
    assert_eq!(count(&records, "applied"), 1);
    agent.wait_metrics(
        Duration::from_secs(10),
        "west active after the restart",
        |m| m.of("redis_active_datacenter", "app", "west") == Some(1.0),
    );
    // The repeat is held by the cooldown the recovered failover started.
    assert_eq!(post(agent.port, &payload("firing"), TOKEN).0, 200);
    wait_for(Duration::from_secs(30), "the repeat to be held", || {
        (closed_outcomes(&journal(state.path())).len() == 2).then_some(())
    });
    let records = journal(state.path());
    assert_eq!(closed_outcomes(&records), ["failed_over", "held"]);
    assert_eq!(count(&records, "applied"), 1);
    assert_eq!(bed.pointing_at(), WEST);
}
