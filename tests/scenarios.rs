//! Fault-injection scenarios across two datacenters with every real component running
//! (issue 7): see `common::scenario` for the bed. Each scenario asserts the outcome, the
//! DNS record in moto (or BIND), the journal, and that no acknowledged write was lost
//! where the README ("Scenarios") says it is kept.
//!
//! Scenarios run one at a time (each starts some twenty processes). Measured times are
//! printed as `SCENARIO name measure: X s`, and appended to `$SCENARIO_RESULTS` as JSON
//! lines for `scripts/bench-failover.sh`.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use common::proxy::Fault;
use common::scenario::fleet::LEASE_TTL;
use common::scenario::results::record;
use common::scenario::{Options, World};

/// One scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn s01_hard_down_fails_over_once() {
    let _one = serial();
    let mut w = World::build(Options::from_env());
    assert_eq!(w.pointing_at(), "a");
    let fault = Instant::now();
    let fault_at = SystemTime::now();
    w.a.kill_all();
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s01_hard_down", "fault_to_dns", took);
    assert_eq!(w.wait_closed(1, Duration::from_secs(30)), ["failed_over"]);
    w.wait_notice("RedisFailoverExecuted", Duration::from_secs(30));
    // The clients follow DNS to b and write there.
    common::wait_for(Duration::from_secs(30), "clients writing to b", || {
        w.workload()
            .writes()
            .iter()
            .any(|x| x.datacenter == "b")
            .then_some(())
    });
    // Alertmanager repeats while a stays down; the cooldown holds every repeat.
    assert_eq!(w.count("applied"), 1);
    // Nothing acknowledged in a is lost: a's primary (AOF, fsync always) has every key
    // once it is back.
    w.a.primary.restart();
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    let missing = w.missing_writes("b", SystemTime::now(), w.b.primary.port);
    assert!(missing.is_empty(), "lost in b: {missing:?}");
    w.passed("s01_hard_down");
}

/// Runs `f` until the returned guard is dropped, on its own thread.
struct Background {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    fn start(f: impl Fn() + Send + 'static) -> Background {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                f();
            }
        });
        Background {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn signal_dc(dc: &common::scenario::Dc, signal: &str) {
    dc.primary.signal(signal);
    dc.replica.signal(signal);
    for s in &dc.sentinels {
        s.signal(signal);
    }
}

#[test]
fn s02_a_hang_fails_over_once() {
    let _one = serial();
    let w = World::build(Options::from_env());
    let fault = Instant::now();
    let fault_at = SystemTime::now();
    signal_dc(&w.a, "STOP");
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s02_hang", "fault_to_dns", took);
    assert_eq!(w.wait_closed(1, Duration::from_secs(30)), ["failed_over"]);
    assert_eq!(w.count("applied"), 1);
    // a wakes up: everything acknowledged there before the hang is still there, and
    // DNS stays on b (failing back is a recommendation, not automatic).
    signal_dc(&w.a, "CONT");
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(w.pointing_at(), "b");
    w.passed("s02_hang");
}

#[test]
fn s03_the_agent_alone_cut_off_from_a_holds() {
    let _one = serial();
    // The agent probes a's primary through its proxy only, so cutting the proxy cuts
    // the agent's whole view of a; the clients still reach a directly.
    let w = World::build(Options {
        agent_uses_sentinel: false,
        ..Options::from_env()
    });
    w.a.agent_paths(common::proxy::Fault::Blackhole);
    let outcomes = w.wait_closed(1, Duration::from_secs(60));
    assert_eq!(outcomes[0], "held:partition_suspected", "{outcomes:?}");
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.count("intent"), 0);
    let steps = w.steps();
    assert!(
        steps
            .iter()
            .any(|(n, d)| n == "client_impact" && d.contains("clients as usual")),
        "{steps:#?}"
    );
    w.wait_notice("RedisFailoverHeld", Duration::from_secs(30));
    // The clients never noticed.
    let counts = w.workload().counts();
    assert_eq!(counts.len(), 1, "only successful calls: {counts:?}");
    // Every write the clients made stayed in a, where they kept writing.
    let missing = w.missing_writes("a", SystemTime::now(), w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s03_agent_partition");
}

#[test]
fn s04_a_slow_with_clients_timing_out_fails_over() {
    let _one = serial();
    // The agent's view of a goes through the bed's network only when it dials the
    // configured address: Sentinel hands out real ports, which no proxy sits in front of.
    let w = World::build(Options {
        agent_uses_sentinel: false,
        ..Options::from_env()
    });
    let fault = Instant::now();
    let fault_at = SystemTime::now();
    // The network into a adds 400 ms to every chunk each way: the clients (250 ms) and
    // the agent's rounds (300 ms) time out. Inside a, Sentinel still reaches its Redis,
    // so nothing fails over there: only moving traffic helps.
    w.a.network(common::proxy::Fault::Delay(Duration::from_millis(400)));
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s04_slow", "fault_to_dns", took);
    // A probe that gets through slowly can make an early evaluation a brownout held for
    // low confidence; the next delivery fails over. Holds first, then one failover.
    let outcomes = common::wait_for(Duration::from_secs(30), "the failover to close", || {
        let o = w.outcomes();
        o.contains(&"failed_over".to_owned()).then_some(o)
    });
    assert_eq!(
        outcomes.last().map(String::as_str),
        Some("failed_over"),
        "{outcomes:?}"
    );
    assert!(
        outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o.starts_with("held:"))
    );
    assert_eq!(w.count("applied"), 1);
    let counts = w.workload().counts();
    assert!(
        counts
            .get("RedisCommandTimeoutException")
            .copied()
            .unwrap_or(0)
            > 0,
        "the clients timed out: {counts:?}"
    );
    // Slow is not lost: a (read directly, behind no proxy) has what it acknowledged.
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s04_slow");
}

#[test]
fn s05_a_benign_load_spike_does_not_fail_over() {
    let _one = serial();
    let w = World::build(Options::from_env());
    let port = w.a.primary.port;
    let before = w.workload().writes().len();
    // About five times the clients' rate, pipelined: busy, not slow.
    let _load = Background::start(move || {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            && let Ok(mut c) = client.get_connection()
        {
            let mut pipe = redis::pipe();
            for i in 0..10 {
                pipe.cmd("INCR").arg(format!("load:{i}")).ignore();
            }
            let _: redis::RedisResult<()> = pipe.query(&mut c);
        }
        std::thread::sleep(Duration::from_millis(100));
    });
    std::thread::sleep(Duration::from_secs(15));
    // A delivery as if some rule had fired during the spike: the agent holds.
    assert_eq!(w.deliver("firing"), 200);
    let outcomes = w.wait_closed(1, Duration::from_secs(30));
    assert_eq!(outcomes, ["held:active_recovered"]);
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.count("intent"), 0);
    // Prometheus saw nothing worth a failover.
    let firing = w
        .prometheus
        .query("ALERTS{alertstate=\"firing\",failover_candidate=\"true\"}")
        .unwrap();
    assert!(firing.is_empty(), "{firing:?}");
    assert!(w.workload().writes().len() > before + 100);
    let missing = w.missing_writes("a", SystemTime::now(), w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s05_load_spike");
}

#[test]
fn s06_both_datacenters_down_holds_and_tells_people() {
    let _one = serial();
    let mut w = World::build(Options::from_env());
    // b first: a's alert must find no healthy target when it fires.
    let fault_at = SystemTime::now();
    w.b.kill_all();
    w.a.kill_all();
    let outcomes = w.wait_closed(1, Duration::from_secs(60));
    assert_eq!(outcomes[0], "held:all_down", "{outcomes:?}");
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.count("intent"), 0);
    w.wait_notice("RedisFailoverHeld", Duration::from_secs(30));
    // a comes back with everything it acknowledged; DNS never moved.
    w.a.primary.restart();
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s06_both_down");
}

#[test]
fn s07_sentinel_promotion_inside_a_is_not_a_datacenter_failover() {
    let _one = serial();
    let mut w = World::build(Options::from_env());
    let old_replica = w.a.replica.port;
    // Writes acknowledged a second before the fault have reached the replica.
    std::thread::sleep(Duration::from_secs(1));
    let safe_before = SystemTime::now() - Duration::from_secs(1);
    w.a.primary.kill();
    common::wait_for(
        Duration::from_secs(30),
        "Sentinel to promote a's replica",
        || (w.a.primary_port() == Some(old_replica)).then_some(()),
    );
    // Give the alert, the webhook and the agent's confirmation time to act, if they do.
    std::thread::sleep(Duration::from_secs(20));
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.count("intent"), 0, "{:?}", w.outcomes());
    for o in w.outcomes() {
        assert!(o.starts_with("held:"), "{o}");
    }
    let missing = w.missing_writes("a", safe_before, old_replica);
    assert!(missing.is_empty(), "lost at a's new primary: {missing:?}");
    // The clients follow Sentinel to the new primary.
    let n = w.workload().writes().len();
    common::wait_for(Duration::from_secs(20), "clients writing again", || {
        (w.workload().writes().len() > n + 20).then_some(())
    });
    w.passed("s07_sentinel_promotion");
}

#[test]
fn s08_a_flapping_datacenter_fails_over_at_most_once() {
    let _one = serial();
    let w = World::build(Options::from_env());
    let fault = Instant::now();
    for _ in 0..4 {
        signal_dc(&w.a, "STOP");
        std::thread::sleep(Duration::from_secs(8));
        signal_dc(&w.a, "CONT");
        std::thread::sleep(Duration::from_secs(4));
    }
    std::thread::sleep(Duration::from_secs(5));
    let applied = w.count("applied");
    assert!(applied <= 1, "{:?}", w.outcomes());
    if applied == 1 {
        assert_eq!(w.pointing_at(), "b");
        record("s08_flapping", "fault_to_dns", fault.elapsed());
    }
    // a is resumed: it has everything it acknowledged; b has what went there.
    let missing = w.missing_writes("a", SystemTime::now(), w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    let missing = w.missing_writes("b", SystemTime::now(), w.b.primary.port);
    assert!(missing.is_empty(), "lost in b: {missing:?}");
    w.passed("s08_flapping");
}

#[test]
fn s09_repeated_deliveries_make_one_dns_change() {
    let _one = serial();
    let mut w = World::build(Options::from_env());
    let fault = Instant::now();
    let fault_at = SystemTime::now();
    w.a.kill_all();
    // Alertmanager's own delivery, and ten more at once as retries and an HA pair make.
    let w = std::sync::Arc::new(w);
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let w = std::sync::Arc::clone(&w);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(7));
                w.deliver("firing")
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    w.wait_dns("b", fault, Duration::from_secs(60));
    w.wait_closed(1, Duration::from_secs(30));
    // More deliveries after the change: held by the cooldown.
    for _ in 0..3 {
        assert_eq!(w.deliver("firing"), 200);
    }
    common::wait_for(Duration::from_secs(30), "the repeats to close", || {
        (w.outcomes().len() >= 2).then_some(())
    });
    assert_eq!(w.count("applied"), 1, "{:?}", w.outcomes());
    assert_eq!(w.count("intent"), 1);
    assert!(w.webhook_accepted() >= 13.0);
    assert_eq!(w.pointing_at(), "b");
    let mut w = std::sync::Arc::try_unwrap(w)
        .ok()
        .expect("the threads are done");
    w.a.primary.restart();
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s09_repeated_deliveries");
}

#[test]
fn s10_the_agent_killed_mid_failover_changes_dns_once() {
    let _one = serial();
    let mut w = World::build(Options::from_env());
    w.restart_agent(&[("REDIS_FAILOVER_AGENT_CRASH_AT", "after_dns")]);
    let fault = Instant::now();
    let fault_at = SystemTime::now();
    w.a.kill_all();
    w.wait_dns("b", fault, Duration::from_secs(60));
    // The agent aborted right after the change; start it again on the same journal.
    std::thread::sleep(Duration::from_secs(1));
    w.restart_agent(&[]);
    let outcomes = w.wait_closed(1, Duration::from_secs(30));
    assert_eq!(outcomes[0], "failed_over");
    // Alertmanager keeps delivering; the completed failover's cooldown holds them.
    assert_eq!(w.deliver("firing"), 200);
    w.wait_closed(2, Duration::from_secs(30));
    assert_eq!(w.count("applied"), 1);
    assert_eq!(w.count("intent"), 1);
    assert_eq!(w.pointing_at(), "b");
    let steps = w.steps();
    assert!(steps.iter().any(|(n, _)| n == "recovery"), "{steps:#?}");
    w.a.primary.restart();
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s10_agent_killed");
}

#[test]
fn s11_nonsense_or_a_stall_from_the_model_changes_nothing() {
    let _one = serial();
    for (name, reply) in [
        (
            "s11_ai_nonsense",
            common::openai::Reply::Content("Fail over now!!! {not json".into()),
        ),
        (
            "s11_ai_stall",
            common::openai::Reply::Stall(Duration::from_secs(10)),
        ),
    ] {
        let mut w = World::build(Options {
            ai: Some(vec![reply]),
            ai_timeout_s: 2,
            ..Options::default()
        });
        let fault = Instant::now();
        let fault_at = SystemTime::now();
        w.a.kill_all();
        let took = w.wait_dns("b", fault, Duration::from_secs(60));
        record(name, "fault_to_dns", took);
        assert_eq!(w.wait_closed(1, Duration::from_secs(30)), ["failed_over"]);
        let steps = w.steps();
        assert!(
            steps
                .iter()
                .any(|(n, d)| n == "advisor" && d.contains("discarded")),
            "{steps:#?}"
        );
        // Within scenario 1's bound plus the model's timeout.
        assert!(took < Duration::from_secs(15 + 2), "{took:?}");
        w.a.primary.restart();
        let missing = w.missing_writes("a", fault_at, w.a.primary.port);
        assert!(missing.is_empty(), "lost in a: {missing:?}");
        w.passed(name);
    }
}

#[test]
fn s12_memory_pressure_with_oom_errors() {
    let _one = serial();
    let w = World::build(Options {
        a_extra: ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]
            .map(String::from)
            .to_vec(),
        ..Options::from_env()
    });
    // Fill a past maxmemory (DEBUG POPULATE ignores the limit): from now on every
    // write is refused with OOM, as on a noeviction store that outgrew its memory.
    let fault_at = SystemTime::now();
    w.a.primary
        .cli(&["DEBUG", "POPULATE", "20000", "fill", "512"]);
    let fault = Instant::now();
    common::wait_for(Duration::from_secs(30), "clients to get OOM errors", || {
        (w.workload()
            .counts()
            .get("RedisOutOfMemoryException")
            .copied()
            .unwrap_or(0)
            > 10)
            .then_some(())
    });
    // The README's decision ("Scenarios"): the health of a collapses, the candidate
    // fires, and with the clients' writes failing the agent fails over.
    let took = w.wait_dns("b", fault, Duration::from_secs(90));
    record("s12_memory", "fault_to_dns", took);
    assert_eq!(w.wait_closed(1, Duration::from_secs(30)), ["failed_over"]);
    // The candidate was the health collapse; the memory alerts are on their way (their
    // `for:` is minutes: they tell people, the collapse asks the agent).
    let opened: Vec<String> = w
        .journal()
        .iter()
        .filter(|r| r["type"] == "opened")
        .filter_map(|r| r["trigger"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(opened, ["RedisDatacenterHealthCollapsed"]);
    let memory = w
        .prometheus
        .query("ALERTS{alertname=~\"RedisMemoryHigh|RedisOutOfMemoryErrors\"}")
        .unwrap();
    assert!(
        !memory.is_empty(),
        "the memory alerts are pending or firing"
    );
    let steps = w.steps();
    assert!(
        steps
            .iter()
            .any(|(n, d)| n == "client_impact" && d.contains("clients failing")),
        "{steps:#?}"
    );
    // Refused writes were never acknowledged; the acknowledged ones are all in a.
    let missing = w.missing_writes("a", fault_at, w.a.primary.port);
    assert!(missing.is_empty(), "lost in a: {missing:?}");
    w.passed("s12_memory");
}

/// The bed as a fleet, on the fleet profile (`profiles/fleet.yaml`).
fn fleet() -> World {
    World::build(Options::fleet_from_env())
}

/// The fleet as issue 18 asks for it: every agent an observer with its own paths, and no
/// client impact advisor, so the observers alone tell a dead datacenter from a fault on
/// one observer's path. Each agent probes the primaries' addresses only (no Sentinel):
/// Sentinel hands out real ports, which no proxy sits in front of, so only then does a
/// cut on an agent's path take its whole view, collection and probes alike.
fn observers() -> World {
    World::build(Options {
        agent_uses_sentinel: false,
        client_impact: false,
        ..Options::fleet_from_env()
    })
}

#[test]
fn s13_fleet_redis_in_a_dies_one_leader_fails_over_once() {
    let _one = serial();
    let mut w = fleet();
    assert_eq!(w.wait_leader(Duration::from_secs(20)), "agent-a");
    let fault = Instant::now();
    w.a.kill_all();
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s13_fleet_redis_a_dies", "fault_to_dns", took);
    // Alertmanager delivered to all three agents; only the leader evaluated.
    common::wait_for(
        Duration::from_secs(30),
        "the leader's incident closed",
        || (!w.fleet_outcomes().is_empty()).then_some(()),
    );
    std::thread::sleep(LEASE_TTL);
    assert_eq!(w.dns_writes(), 1, "{:?}", w.fleet_outcomes());
    assert!(
        w.fleet_outcomes()
            .iter()
            .all(|(agent, _)| agent == "agent-a"),
        "only the leader evaluates: {:?}",
        w.fleet_outcomes()
    );
    assert_eq!(
        w.fleet_outcomes()
            .iter()
            .filter(|(_, o)| o == "failed_over")
            .count(),
        1
    );
    w.passed("s13_fleet_redis_a_dies");
}

#[test]
fn s14_fleet_a_dies_with_the_leading_agent_the_successor_fails_over() {
    let _one = serial();
    a_dies_with_the_leader_a_successor_fails_over(fleet(), "s14_fleet_a_dies_with_leader");
}

/// All of `a` and the leading agent (in `a`) `kill -9`ed together: a successor leads,
/// fails over to `b` once, and no other agent writes DNS.
fn a_dies_with_the_leader_a_successor_fails_over(mut w: World, name: &str) {
    assert_eq!(w.wait_leader(Duration::from_secs(20)), "agent-a");
    let fault = Instant::now();
    w.kill_agent("agent-a");
    w.a.kill_all();
    let (leader, _) = w.wait_new_leader("agent-a", fault, LEASE_TTL * 4);
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record(name, "fault_to_dns", took);
    common::wait_for(
        Duration::from_secs(30),
        "the successor's incident closed",
        || {
            w.fleet_outcomes()
                .iter()
                .any(|(agent, o)| *agent == leader && o == "failed_over")
                .then_some(())
        },
    );
    std::thread::sleep(LEASE_TTL);
    assert_eq!(w.dns_writes(), 1, "{:?}", w.fleet_outcomes());
    let failed_over = w
        .fleet_outcomes()
        .iter()
        .filter(|(_, o)| o == "failed_over")
        .count();
    assert_eq!(failed_over, 1, "{:?}", w.fleet_outcomes());
    assert_eq!(w.pointing_at(), "b");
    w.passed(name);
}

#[test]
fn s15_fleet_takeover_after_kill_9_changes_nothing() {
    let _one = serial();
    let mut w = fleet();
    assert_eq!(w.wait_leader(Duration::from_secs(20)), "agent-a");
    let killed = Instant::now();
    w.kill_agent("agent-a");
    // Within four TTLs, or the test fails; the goal (the TTL plus a second) is the
    // benchmark's to report, not an assertion on a shared machine.
    let (leader, took) = w.wait_new_leader("agent-a", killed, LEASE_TTL * 4);
    record("s15_fleet_takeover", "takeover", took);
    assert_ne!(leader, "agent-a");
    std::thread::sleep(LEASE_TTL);
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.dns_writes(), 0);
    w.passed("s15_fleet_takeover");
}

#[test]
fn s16_fleet_the_leaders_path_to_a_cut_holds_naming_the_observers() {
    let _one = serial();
    let w = observers();
    // The leader is the agent cut off: the one deciding is the one that cannot see.
    assert_eq!(w.wait_leader(Duration::from_secs(20)), "agent-a");
    w.a.path_of("agent-a", Fault::Blackhole);
    w.wait_sees("agent-a", "a", false, Duration::from_secs(30));
    w.hold_one_observers_view(Duration::from_secs(10));
    // The record names the observers: agent a could not reach a, b and c reached it.
    let held = w
        .journal()
        .into_iter()
        .find(|r| r["type"] == "closed")
        .expect("a closed incident");
    let names = |key: &str| -> Vec<String> {
        held["outcome"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(names("down"), ["agent-a"], "{held}");
    let mut up = names("up");
    up.sort();
    assert_eq!(up, ["agent-b", "agent-c"], "{held}");
    // Every round lists every observer's view, agent a's first.
    let rounds = w.witnessed_rounds();
    assert!(!rounds.is_empty(), "{:#?}", w.steps());
    for round in &rounds {
        let observers: Vec<&str> = round["views"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["observer"].as_str())
            .collect();
        assert_eq!(observers.first(), Some(&"agent-a"), "{round}");
        assert_eq!(observers.len(), 3, "{round}");
        assert_eq!(round["partition"], true, "{round}");
    }
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.dns_writes(), 0);
    assert_eq!(w.count("intent"), 0);
    // The clients never noticed.
    let counts = w.workload().counts();
    assert_eq!(counts.len(), 1, "only successful calls: {counts:?}");
    w.passed("s16_fleet_leader_cut_from_a");
}

#[test]
fn s17_fleet_redis_a_and_agent_a_killed_together_fail_over_once() {
    let _one = serial();
    // As s14, with no client impact advisor: the observers alone confirm.
    let w = World::build(Options {
        client_impact: false,
        ..Options::fleet_from_env()
    });
    a_dies_with_the_leader_a_successor_fails_over(w, "s17_fleet_redis_and_agent_a_die");
}

#[test]
fn s18_fleet_a_dies_while_agent_b_cannot_reach_b_fails_over_to_b_once() {
    let _one = serial();
    let mut w = observers();
    assert_eq!(w.wait_leader(Duration::from_secs(20)), "agent-a");
    w.b.path_of("agent-b", Fault::Blackhole);
    w.wait_sees("agent-b", "b", false, Duration::from_secs(30));
    let fault = Instant::now();
    w.a.kill_all();
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s18_fleet_a_dies_b_cut_for_one", "fault_to_dns", took);
    common::wait_for(
        Duration::from_secs(30),
        "the leader's incident closed",
        || (!w.fleet_outcomes().is_empty()).then_some(()),
    );
    std::thread::sleep(LEASE_TTL);
    assert_eq!(w.dns_writes(), 1, "{:?}", w.fleet_outcomes());
    let outcomes = w.outcomes();
    assert_eq!(
        outcomes.iter().filter(|o| *o == "failed_over").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        w.fleet_outcomes()
            .iter()
            .all(|(agent, _)| agent == "agent-a"),
        "only the leader evaluates: {:?}",
        w.fleet_outcomes()
    );
    // b's observer saw b down and was outvoted: one observer cannot block the failover.
    let b_seen_down_by_b = w.witnessed_rounds().iter().any(|round| {
        round["views"].as_array().into_iter().flatten().any(|v| {
            v["observer"] == "agent-b"
                && v["probes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|p| p["datacenter"] == "b" && p["up"] == false)
        })
    });
    assert!(b_seen_down_by_b, "{:#?}", w.witnessed_rounds());
    assert_eq!(w.pointing_at(), "b");
    w.passed("s18_fleet_a_dies_b_cut_for_one");
}

#[test]
fn s19_fleet_400_ms_on_agent_a_s_paths_does_not_fail_over() {
    let _one = serial();
    let w = observers();
    assert_eq!(w.wait_leader(Duration::from_secs(20)), "agent-a");
    // 400 ms on every chunk each way of agent a's every path: its rounds (300 ms) time
    // out against both datacenters; the others and the clients see nothing wrong.
    for dc in [&w.a, &w.b] {
        dc.path_of("agent-a", Fault::Delay(Duration::from_millis(400)));
    }
    w.wait_sees("agent-a", "a", false, Duration::from_secs(30));
    w.hold_one_observers_view(Duration::from_secs(15));
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.dns_writes(), 0);
    assert_eq!(w.count("intent"), 0);
    w.passed("s19_fleet_slow_paths_of_agent_a");
}

/// `b`'s primary replicates `a`'s across the datacenters, through a link of its own
/// that can be cut; the agent probes the primaries' addresses. `b`'s Sentinels are
/// stopped first: they would take their primary turned replica for a failed one.
fn b_replicating_a() -> (World, common::proxy::FaultProxy) {
    let mut w = World::build(Options {
        agent_uses_sentinel: false,
        ..Options::from_env()
    });
    for s in &mut w.b.sentinels {
        s.kill();
    }
    let link = common::proxy::FaultProxy::start(w.a.primary.port);
    w.b.primary
        .cli(&["REPLICAOF", "127.0.0.1", &link.port.to_string()]);
    common::wait_for(
        Duration::from_secs(30),
        "b's primary to replicate a's",
        || {
            w.b.primary
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
                .then_some(())
        },
    );
    (w, link)
}

/// `redis_cross_datacenter_lag_bytes` of `b` against `a`, once the agent reports it.
fn wait_lag(w: &World, what: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let labels = [
        ("redis_instance", "app"),
        ("datacenter", "b"),
        ("source_datacenter", "a"),
    ];
    let m = w.agent().wait_metrics(Duration::from_secs(30), what, |m| {
        m.get("redis_cross_datacenter_lag_bytes", &labels)
            .is_some_and(&ok)
    });
    m.get("redis_cross_datacenter_lag_bytes", &labels).unwrap()
}

/// The `data_loss` step of the newest incident, as the operator API shows it.
fn data_loss_step(w: &World) -> serde_json::Value {
    let history = w.api("/api/failover/history?instance_uid=app");
    let incident = &history["incidents"][0];
    incident["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "data_loss")
        .cloned()
        .unwrap_or_else(|| panic!("no data_loss step: {incident:#}"))
}

#[test]
fn s20_a_dies_while_b_s_replica_lags_holds_with_the_figures() {
    let _one = serial();
    let (mut w, link) = b_replicating_a();
    // The link between the datacenters goes quiet while a takes 3 MiB of writes.
    link.set(Fault::Blackhole);
    let mut c = w.a.primary.client();
    let _: () = redis::cmd("SET")
        .arg("s20-bulk")
        .arg(vec![b'x'; 3 << 20])
        .query(&mut c)
        .unwrap();
    let lag = wait_lag(&w, "b behind a by more than 1 MiB", |b| b > 2.0 * 1048576.0);
    w.a.kill_all();
    let outcomes = w.wait_closed(1, Duration::from_secs(60));
    assert_eq!(outcomes, ["held:data_loss_budget"]);
    assert_eq!(w.pointing_at(), "a");
    assert_eq!(w.count("intent"), 0);
    let step = data_loss_step(&w);
    assert_eq!(step["outcome"], "hold", "{step:#}");
    let bytes = step["evidence"]["estimate"]["bytes"].as_f64().unwrap();
    assert!(bytes >= lag, "{step:#}");
    assert!(
        step["detail"]
            .as_str()
            .unwrap()
            .starts_with("b is behind a by about"),
        "{step:#}"
    );
    w.wait_notice("RedisFailoverHeld", Duration::from_secs(30));
    w.passed("s20_data_loss_budget_holds");
}

#[test]
fn s21_a_dies_with_b_s_replica_current_fails_over() {
    let _one = serial();
    let (mut w, _link) = b_replicating_a();
    wait_lag(&w, "b replicating a on /metrics", |b| b < 1048576.0);
    let fault = Instant::now();
    w.a.kill_all();
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s21_data_loss_within_budget", "fault_to_dns", took);
    assert_eq!(w.wait_closed(1, Duration::from_secs(30)), ["failed_over"]);
    let step = data_loss_step(&w);
    assert_eq!(step["outcome"], "ok", "{step:#}");
    assert_eq!(step["evidence"]["estimate"]["basis"], "replication");
    w.passed("s21_data_loss_within_budget");
}

#[test]
fn s22_dns_through_bind_a_dies_the_clients_follow_bind_to_b() {
    let _one = serial();
    let mut w = World::build(Options {
        dns_via_bind: true,
        ..Options::from_env()
    });
    assert_eq!(w.pointing_at(), "a");
    let fault = Instant::now();
    w.a.kill_all();
    let took = w.wait_dns("b", fault, Duration::from_secs(60));
    record("s22_dns_through_bind", "fault_to_dns", took);
    assert_eq!(w.wait_closed(1, Duration::from_secs(30)), ["failed_over"]);
    // The clients, resolving the record at BIND, follow it to b and write there.
    common::wait_for(Duration::from_secs(30), "clients writing to b", || {
        w.workload()
            .writes()
            .iter()
            .any(|x| x.datacenter == "b")
            .then_some(())
    });
    assert_eq!(w.count("applied"), 1);
    let bind = w.bind.as_ref().expect("BIND serves the zone");
    assert_eq!(
        bind.agent_updates(),
        1,
        "one UPDATE, signed with the agent's key"
    );
    w.passed("s22_dns_through_bind");
}
