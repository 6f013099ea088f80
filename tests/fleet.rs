//! A fleet of three agent processes (a, b, c) on a real three-member etcd, with real
//! Redis in datacenters a (active) and b and `moto_server` as Route53 behind a proxy
//! that counts the changes moto accepts: one leader, a successor after `kill -9`, one
//! DNS change however many agents and duplicates deliver an outage, a successor that
//! finishes what a crashed leader began, a frozen leader that writes nothing when it
//! wakes, and nobody acting while etcd has no quorum. `lease_ttl` is 3 s.

mod common;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::e2e::{TOKEN, post};
use common::fleet::*;
use common::{Agent, kill, wait_for};
use serde_json::Value as Json;

/// Each test runs its own three etcd members and three agents; one at a time keeps the
/// two cores free enough for etcd's heartbeats and the agents' leases.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a fleet may be without a leader after `kill -9` of its leader: the lease
/// (a successor leads at most `ttl + ttl/6` after the last renewal) and a second or two.
const TAKEOVER_WITHIN: Duration = Duration::from_secs(TTL.as_secs() + 2);

/// `kill -9`, and the agent reaped.
fn kill9(agent: &mut Agent) {
    kill(agent.pid(), "KILL");
    agent.stop_after_signal();
}

/// The agents as references, for the helpers that look at several.
fn all(agents: &[Agent]) -> Vec<&Agent> {
    agents.iter().collect()
}

/// Waits until one of `agents` leads; returns its index and how long it took.
fn wait_successor(agents: &[&Agent], since: Instant) -> (usize, Duration) {
    let leader = wait_one_leader(agents, TAKEOVER_WITHIN + Duration::from_secs(10));
    (leader, since.elapsed())
}

fn leader_gauge(agent: &Agent, name: &str) -> Option<f64> {
    agent
        .metrics()
        .get("redis_agent_leader", &[("agent", name)])
}

fn webhook_answer(status: u16, body: &str) -> Json {
    assert_eq!(status, 200, "the webhook refused a delivery: {body}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Lets a stray second change show up before "exactly one" is asserted: the leader
/// polls the store every second.
fn settle() {
    std::thread::sleep(Duration::from_secs(3));
}

/// The fleet's store holds the failover to b with its cooldown, and no open act.
fn assert_settled_in_b(bed: &FleetBed) {
    let shared = wait_for(Duration::from_secs(5), "the store to settle", || {
        let shared = bed.shared_record();
        shared["open"].is_null().then_some(shared)
    });
    assert_eq!(shared["active"], "b", "instances/app in etcd: {shared}");
    assert!(
        shared["cooldown_until"].is_string(),
        "no cooldown in etcd: {shared}"
    );
}

#[test]
fn three_agents_elect_one_leader_and_a_successor_takes_over_after_kill_9() {
    let _serial = serial();
    let bed = FleetBed::start();
    let mut agents = bed.agents();
    let leader = wait_one_leader(&all(&agents), Duration::from_secs(20));
    let names = ["a", "b", "c"];
    for (i, agent) in agents.iter().enumerate() {
        let want = if i == leader { 1.0 } else { 0.0 };
        let m = agent.wait_metrics(Duration::from_secs(5), "the leader gauge", |m| {
            m.get("redis_agent_leader", &[("agent", names[i])]) == Some(want)
        });
        assert_eq!(
            m.get("redis_agent_coordination_up", &[("agent", names[i])]),
            Some(1.0),
            "agent {} reports coordination down",
            names[i]
        );
    }
    let old = names[leader];

    let killed = Instant::now();
    kill9(&mut agents[leader]);
    let rest: Vec<&Agent> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| &agents[i])
        .collect();
    let (successor, took) = wait_successor(&rest, killed);
    let new = place(rest[successor]).unwrap().agent;
    eprintln!("kill -9 of leader {old}: {new} leads after {took:?} (lease_ttl {TTL:?})");
    assert_ne!(new, old);
    assert!(
        took <= TAKEOVER_WITHIN,
        "{new} took {took:?} to lead after kill -9 of {old}; at most {TAKEOVER_WITHIN:?}"
    );
    assert_eq!(leader_gauge(rest[successor], &new), Some(1.0));
    let follower = rest[1 - successor];
    let follower_name = place(follower).unwrap().agent;
    assert_eq!(leader_gauge(follower, &follower_name), Some(0.0));
    assert_eq!(
        bed.dns_changes(),
        0,
        "a change of leader changed DNS:\n{}",
        bed.dns_calls()
    );
    assert_eq!(bed.pointing_at(), IN_A);
}

#[test]
fn twenty_duplicate_deliveries_to_each_agent_make_one_dns_change() {
    let _serial = serial();
    let mut bed = FleetBed::start();
    let agents = bed.agents();
    let leader = wait_one_leader(&all(&agents), Duration::from_secs(20));
    wait_redis_seen(&all(&agents));
    // Every agent shows every observer's view of each endpoint, read from the store.
    let follower = &agents[(leader + 1) % 3];
    let seen = wait_for(Duration::from_secs(15), "three views of b", || {
        let seen = observers(follower, "b");
        (seen.len() == 3).then_some(seen)
    });
    let names: Vec<&str> = seen.iter().filter_map(|o| o["observer"].as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "{seen:#?}");
    assert!(
        seen.iter()
            .all(|o| o["up"] == true && o["latency_ms"].is_number() && o["at"].is_string()),
        "{seen:#?}"
    );
    assert_eq!(seen[1]["datacenter"], "b");
    assert_eq!(seen[2]["datacenter"], Json::Null);

    bed.redis_a.kill();
    let started = Instant::now();
    let body = payload("a");
    let threads: Vec<_> = agents
        .iter()
        .enumerate()
        .flat_map(|(i, agent)| (0..20).map(move |_| (i, agent.port)))
        .map(|(i, port)| {
            let body = body.clone();
            std::thread::spawn(move || (i, post(port, &body, TOKEN)))
        })
        .collect();
    for t in threads {
        let (i, (status, body)) = t.join().unwrap();
        let answer = webhook_answer(status, &body);
        assert_eq!(
            answer["handed"], 1,
            "agent {i} (leader: {leader}) did not hand the candidate over: {answer}"
        );
        assert_eq!(answer["pending"], 0, "{answer}");
        assert_eq!(answer["opened"], serde_json::json!([]), "{answer}");
    }
    bed.wait_pointing_at(Duration::from_secs(60), IN_B);
    eprintln!(
        "3 agents × 20 deliveries: webhook to DNS switched in {:?}",
        started.elapsed()
    );
    let incident = wait_outcome(&agents[leader], "failed_over", Duration::from_secs(30));
    // Each confirmation round in the history lists the observers' views, the leader's
    // first.
    let leader_name = place(&agents[leader]).unwrap().agent;
    let rounds: Vec<&Json> = incident["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "probe_round")
        .collect();
    assert!(!rounds.is_empty(), "{incident:#}");
    for round in rounds {
        let witnesses = &round["evidence"]["witnesses"];
        assert_eq!(witnesses["views"][0]["observer"], leader_name, "{round:#}");
        assert!(
            witnesses["down"].is_array() && witnesses["quorum"] == 2,
            "{round:#}"
        );
    }
    settle();
    assert_eq!(
        bed.dns_changes(),
        1,
        "not exactly one DNS change:\n{}",
        bed.dns_calls()
    );
    let outcomes = outcomes(&agents[leader]);
    assert_eq!(
        outcomes.iter().filter(|o| *o == "failed_over").count(),
        1,
        "the leader's outcomes: {outcomes:?}"
    );
    for (i, agent) in agents.iter().enumerate().filter(|(i, _)| *i != leader) {
        assert!(
            history(agent).is_empty(),
            "follower {i} evaluated: {:#?}",
            history(agent)
        );
        assert_eq!(journaled(agent, "applied"), 0);
    }
    assert_eq!(journaled(&agents[leader], "applied"), 1);
    assert_settled_in_b(&bed);
}

/// Agent a leads with `REDIS_FAILOVER_AGENT_CRASH_AT=point` (started first, and alone
/// until it leads), b and c follow; Redis in a dies and the leader takes the outage
/// and aborts at `point`, having made `changed` DNS changes. Returns the bed, the
/// surviving agents and the successor's index among them.
fn crash_leader_at(point: &str, changed: usize) -> (FleetBed, Vec<Agent>, usize) {
    let mut bed = FleetBed::start();
    let mut doomed = bed.agent("a", &[("REDIS_FAILOVER_AGENT_CRASH_AT", point)], "");
    wait_one_leader(&[&doomed], Duration::from_secs(20));
    let rest = vec![bed.agent("b", &[], ""), bed.agent("c", &[], "")];
    let leader = wait_one_leader(&[&doomed, &rest[0], &rest[1]], Duration::from_secs(20));
    assert_eq!(leader, 0, "agent a should lead, having started first");
    wait_redis_seen(&[&doomed, &rest[0], &rest[1]]);

    bed.redis_a.kill();
    let (status, body) = post(doomed.port, &payload("a"), TOKEN);
    webhook_answer(status, &body);
    let exit = doomed.stop_after_signal();
    let crashed = Instant::now();
    assert!(
        !exit.success(),
        "agent a should have aborted at {point}:\n{}",
        doomed.log()
    );
    assert!(
        doomed.log().contains("aborting as asked"),
        "agent a did not reach {point}:\n{}",
        doomed.log()
    );
    assert_eq!(
        bed.dns_changes(),
        changed,
        "DNS changes when agent a aborted at {point}:\n{}",
        bed.dns_calls()
    );
    let (successor, took) = wait_successor(&[&rest[0], &rest[1]], crashed);
    eprintln!("{point}: a successor leads {took:?} after the crash");
    (bed, rest, successor)
}

#[test]
fn a_successor_makes_the_change_a_leader_fenced_and_died_before() {
    let _serial = serial();
    let (bed, agents, successor) = crash_leader_at("after_fence_dns", 0);
    bed.wait_pointing_at(Duration::from_secs(60), IN_B);
    let incident = wait_outcome(&agents[successor], "failed_over", Duration::from_secs(30));
    settle();
    assert_eq!(bed.dns_changes(), 1, "{}", bed.dns_calls());
    assert_eq!(bed.pointing_at(), IN_B);
    // Evaluated afresh, with its own probes, and made the change itself.
    let steps = step_names(&incident);
    assert!(
        steps.iter().any(|s| s == "probe_round") && steps.iter().any(|s| s == "dns"),
        "the successor did not evaluate afresh and switch: {incident:#}"
    );
    assert_eq!(journaled(&agents[successor], "applied"), 1);
    assert_eq!(journaled(&agents[1 - successor], "applied"), 0);
    assert_settled_in_b(&bed);
}

#[test]
fn a_successor_completes_a_change_the_dead_leader_made_without_writing() {
    let _serial = serial();
    let (bed, agents, successor) = crash_leader_at("after_dns", 1);
    assert_eq!(
        bed.pointing_at(),
        IN_B,
        "the change was made before the crash"
    );

    let incident = wait_outcome(&agents[successor], "failed_over", Duration::from_secs(30));
    settle();
    assert_eq!(
        bed.dns_changes(),
        1,
        "the successor wrote DNS again:\n{}",
        bed.dns_calls()
    );
    assert_eq!(bed.pointing_at(), IN_B);
    let steps = step_names(&incident);
    assert!(
        steps.iter().any(|s| s == "recovery") && !steps.iter().any(|s| s == "dns"),
        "the successor should complete the incident without a DNS step: {incident:#}"
    );
    // Every agent takes the store's word.
    assert_settled_in_b(&bed);
    for agent in &agents {
        agent.wait_metrics(Duration::from_secs(10), "b active", |m| {
            m.of("redis_active_datacenter", "app", "b") == Some(1.0)
        });
    }
}

#[test]
fn a_leader_frozen_past_its_lease_mid_failover_writes_nothing_when_it_wakes() {
    let _serial = serial();
    let mut bed = FleetBed::start();
    let marker = bed.dir.path().join("hook-started");
    // The leader's pre-failover hook runs for twice the lease: it is frozen meanwhile.
    let hook = format!(
        "hooks: {{pre_failover: [sh, -c, 'touch {} && sleep {}'], timeout: 30s}}\n",
        marker.display(),
        2 * TTL.as_secs()
    );
    let frozen = bed.agent("a", &[], &hook);
    wait_one_leader(&[&frozen], Duration::from_secs(20));
    let rest = [bed.agent("b", &[], ""), bed.agent("c", &[], "")];
    let leader = wait_one_leader(&[&frozen, &rest[0], &rest[1]], Duration::from_secs(20));
    assert_eq!(leader, 0, "agent a should lead, having started first");
    wait_redis_seen(&[&frozen, &rest[0], &rest[1]]);

    bed.redis_a.kill();
    let (status, body) = post(frozen.port, &payload("a"), TOKEN);
    webhook_answer(status, &body);
    wait_for(
        Duration::from_secs(30),
        "the leader's hook to start",
        || marker.exists().then_some(()),
    );
    kill(frozen.pid(), "STOP");
    let stopped = Instant::now();
    let (successor, took) = wait_successor(&[&rest[0], &rest[1]], stopped);
    eprintln!("SIGSTOP of the leader in its hook: a successor leads after {took:?}");
    kill(frozen.pid(), "CONT");

    // Woken, the old leader's next fence is refused, and it does not act.
    let m = frozen.wait_metrics(Duration::from_secs(30), "a fenced refusal", |m| {
        m.all("redis_agent_fenced_refusals_total", &[("agent", "a")])
            .iter()
            .sum::<f64>()
            >= 1.0
    });
    eprintln!(
        "refusals on the woken leader: dns={:?} settle={:?}",
        m.get(
            "redis_agent_fenced_refusals_total",
            &[("agent", "a"), ("action", "dns")]
        ),
        m.get(
            "redis_agent_fenced_refusals_total",
            &[("agent", "a"), ("action", "settle")]
        ),
    );
    assert!(
        frozen.log().contains("the fence refused the act"),
        "{}",
        frozen.log()
    );
    let interrupted = wait_outcome(&frozen, "interrupted", Duration::from_secs(30));
    let dns_done = interrupted["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["name"] == "dns" && s["outcome"] != "failed");
    assert!(
        !dns_done,
        "the woken leader's DNS step was not refused: {interrupted:#}"
    );
    assert_eq!(journaled(&frozen, "applied"), 0);

    // The successor decided afresh.
    wait_outcome(&rest[successor], "failed_over", Duration::from_secs(30));
    bed.wait_pointing_at(Duration::from_secs(10), IN_B);
    settle();
    // At most one change, the successor's.
    assert_eq!(
        bed.dns_changes(),
        1,
        "not exactly the successor's change:\n{}",
        bed.dns_calls()
    );
}

#[test]
fn without_an_etcd_quorum_nobody_acts_and_with_it_back_the_outage_is_handled() {
    let _serial = serial();
    let mut bed = FleetBed::start();
    let agents = bed.agents();
    let names = ["a", "b", "c"];
    wait_one_leader(&all(&agents), Duration::from_secs(20));
    wait_redis_seen(&all(&agents));

    bed.etcd.stop(0);
    bed.etcd.stop(1);
    let lost = Instant::now();
    for (i, agent) in agents.iter().enumerate() {
        wait_for(
            Duration::from_secs(15),
            "every agent to report the fleet down",
            || (place(agent)?.role == "down").then_some(()),
        );
        agent.wait_metrics(Duration::from_secs(5), "coordination down", |m| {
            m.get("redis_agent_coordination_up", &[("agent", names[i])]) == Some(0.0)
                && m.get("redis_agent_leader", &[("agent", names[i])]) == Some(0.0)
        });
    }
    eprintln!(
        "2 of 3 etcd members stopped: every agent down after {:?}",
        lost.elapsed()
    );

    bed.redis_a.kill();
    for (i, agent) in agents.iter().enumerate() {
        let (status, body) = post(agent.port, &payload("a"), TOKEN);
        let answer = webhook_answer(status, &body);
        assert_eq!(answer["pending"], 1, "agent {}: {answer}", names[i]);
        assert_eq!(answer["handed"], 0, "agent {}: {answer}", names[i]);
    }
    // Several polls and leases long: nobody may act.
    std::thread::sleep(2 * TTL);
    assert_eq!(bed.dns_changes(), 0, "{}", bed.dns_calls());
    assert_eq!(bed.pointing_at(), IN_A);
    for agent in &agents {
        assert_eq!(place(agent).unwrap().role, "down");
        assert!(history(agent).is_empty(), "{:#?}", history(agent));
    }

    let back = Instant::now();
    bed.etcd.restart(0);
    bed.etcd.restart(1);
    bed.wait_pointing_at(Duration::from_secs(60), IN_B);
    eprintln!(
        "etcd members restarted: DNS switched {:?} later",
        back.elapsed()
    );
    let leader = wait_one_leader(&all(&agents), Duration::from_secs(20));
    wait_outcome(&agents[leader], "failed_over", Duration::from_secs(30));
    settle();
    assert_eq!(bed.dns_changes(), 1, "{}", bed.dns_calls());
    assert_settled_in_b(&bed);
}
