//! The data-loss budget against real open-source Redis: east is the primary, west its
//! replica in another "datacenter", replicating through the bed's fault proxy so that
//! the link can be cut. With west behind by more than the budget when east dies, the
//! agent holds (`data_loss_budget`, the figures in the history); with west current, it
//! fails over and the record carries the estimate.

mod common;

use std::time::Duration;

use common::e2e::*;
use common::proxy::{Fault, FaultProxy};
use common::{Agent, wait_for};
use serde_json::Value as Json;

const MIB: f64 = 1024.0 * 1024.0;

/// The e2e bed with west replicating from east through a proxy.
fn replicated() -> (Bed, FaultProxy) {
    let bed = Bed::start();
    let proxy = FaultProxy::start(bed.east.port);
    bed.west
        .cli(&["REPLICAOF", "127.0.0.1", &proxy.port.to_string()]);
    wait_for(Duration::from_secs(20), "west to replicate east", || {
        bed.west
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
            .then_some(())
    });
    (bed, proxy)
}

fn write(bed: &Bed, key: &str, bytes: usize) {
    let mut c = bed.east.client();
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(vec![b'x'; bytes])
        .query(&mut c)
        .unwrap();
}

fn lag_bytes(m: &common::Metrics) -> Option<f64> {
    m.get(
        "redis_cross_datacenter_lag_bytes",
        &[
            ("redis_instance", "app"),
            ("datacenter", "west"),
            ("source_datacenter", "east"),
        ],
    )
}

/// The newest incident of `app`, as the operator API shows it.
fn latest_incident(agent: &Agent) -> Json {
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
    history["incidents"][0].clone()
}

fn data_loss_step(incident: &Json) -> Json {
    incident["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "data_loss")
        .cloned()
        .unwrap_or_else(|| panic!("no data_loss step: {incident:#}"))
}

fn closed(state: &std::path::Path) -> Vec<String> {
    closed_outcomes(&journal(state))
}

#[test]
fn a_replica_behind_by_more_than_the_budget_holds_the_failover_with_the_figures() {
    let (mut bed, proxy) = replicated();
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::start(&bed.config(state.path()));
    agent.wait_metrics(
        Duration::from_secs(20),
        "west replicating on /metrics",
        |m| {
            lag_bytes(m).is_some()
                && m.get("redis_data_loss_budget_bytes", &[("redis_instance", "app")]) == Some(MIB)
        },
    );

    // The link goes quiet (west still thinks it is up) while east takes 3 MiB of writes.
    proxy.set(Fault::Blackhole);
    write(&bed, "orders", 3 * 1024 * 1024);
    let m = agent.wait_metrics(Duration::from_secs(20), "the lag over the budget", |m| {
        lag_bytes(m).is_some_and(|b| b >= 3.0 * MIB)
    });
    common::assert_promtool_clean(&m.text);
    bed.east.kill();
    assert_eq!(post(agent.port, &payload("firing"), TOKEN).0, 200);
    wait_for(Duration::from_secs(30), "the evaluation to close", || {
        (!closed(state.path()).is_empty()).then_some(())
    });
    assert_eq!(closed(state.path()), ["held"]);
    assert_eq!(bed.pointing_at(), EAST, "nothing moved");

    let incident = latest_incident(&agent);
    let outcome = &incident["outcome"];
    assert_eq!(outcome["reason"], "data_loss_budget", "{incident:#}");
    assert_eq!(outcome["from"], "east");
    assert_eq!(outcome["to"], "west");
    assert_eq!(outcome["estimate"]["basis"], "replication");
    let bytes = outcome["estimate"]["bytes"].as_f64().unwrap();
    assert!(bytes >= 3.0 * MIB, "{outcome:#}");
    assert_eq!(outcome["budget"]["bytes"], 1_048_576);
    assert_eq!(outcome["budget"]["seconds"], 10.0);
    let detail = outcome["estimate"]["detail"].as_str().unwrap();
    assert!(detail.contains("master_repl_offset"), "{detail}");
    let step = data_loss_step(&incident);
    assert_eq!(step["outcome"], "hold");
    let said = step["detail"].as_str().unwrap();
    assert!(
        said.starts_with("west is behind east by about 3") && said.contains("Force a failover"),
        "{said}"
    );
    let notice = bed.receiver.wait(
        Duration::from_secs(30),
        "/api/v2/alerts",
        "the agent's RedisFailoverHeld",
        |d| d.body.to_string().contains("RedisFailoverHeld"),
    );
    let told = notice.body.to_string();
    assert!(
        told.contains("the data-loss budget is 1 MiB / 10 s"),
        "{told}"
    );
}

#[test]
fn a_replica_within_the_budget_fails_over_with_the_estimate_on_record() {
    let (mut bed, _proxy) = replicated();
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::start(&bed.config(state.path()));
    write(&bed, "orders", 64 * 1024);
    agent.wait_metrics(Duration::from_secs(20), "west caught up on /metrics", |m| {
        lag_bytes(m) == Some(0.0)
    });
    bed.east.kill();
    assert_eq!(post(agent.port, &payload("firing"), TOKEN).0, 200);
    wait_for(Duration::from_secs(30), "the evaluation to close", || {
        (!closed(state.path()).is_empty()).then_some(())
    });
    assert_eq!(closed(state.path()), ["failed_over"]);
    assert_eq!(bed.pointing_at(), WEST);
    let incident = latest_incident(&agent);
    let step = data_loss_step(&incident);
    assert_eq!(step["outcome"], "ok", "{step:#}");
    assert_eq!(step["evidence"]["estimate"]["basis"], "replication");
    assert_eq!(step["evidence"]["overridden"], false);
    let bytes = step["evidence"]["estimate"]["bytes"].as_f64().unwrap();
    assert!(bytes < MIB, "{step:#}");
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .contains("within the budget of 1 MiB / 10 s")
    );
}
