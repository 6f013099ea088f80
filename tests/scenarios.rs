//! Fault-injection scenarios across two datacenters with every real component running
//! (issue 7): see `common::scenario` for the bed. Each scenario asserts the outcome, the
//! DNS record in moto, the journal, and that no acknowledged write was lost where the
//! README ("Scenarios") says it is kept.
//!
//! Scenarios run one at a time (each starts some twenty processes). Measured times are
//! printed as `SCENARIO name measure: X s`, and appended to `$SCENARIO_RESULTS` as JSON
//! lines for `scripts/bench-failover.sh`.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use common::scenario::{Options, World, record};

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
}
