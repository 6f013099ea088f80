//! The measurements `scripts/bench-failover.sh` collects.

use std::path::PathBuf;
use std::time::Duration;

use super::World;

/// Where the scenario results go: one JSON line per measurement when
/// `SCENARIO_RESULTS` names a file (scripts/bench-failover.sh reads them).
pub fn record(scenario: &str, measure: &str, value: Duration) {
    write_result(scenario, measure, value.as_secs_f64());
    eprintln!(
        "SCENARIO {scenario} {measure} ai={} profile={}: {:.2} s",
        ai_mode(),
        profile(),
        value.as_secs_f64()
    );
}

fn ai_mode() -> String {
    std::env::var("SCENARIO_AI").unwrap_or_else(|_| "none".into())
}

/// `SCENARIO_PROFILE` when it overrides the fleet scenarios' profile; `default`: each
/// scenario's own (fast for one agent, fleet for a fleet).
fn profile() -> String {
    std::env::var("SCENARIO_PROFILE").unwrap_or_else(|_| "default".into())
}

fn write_result(scenario: &str, measure: &str, value: f64) {
    let Some(path) = std::env::var_os("SCENARIO_RESULTS") else {
        return;
    };
    let line = serde_json::json!({
        "scenario": scenario, "measure": measure, "ai": ai_mode(), "profile": profile(),
        "value": value,
    });
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(PathBuf::from(path))
        .expect("SCENARIO_RESULTS is writable");
    writeln!(f, "{line}").unwrap();
}

impl World {
    /// Records how many DNS changes the scenario made (`dns_changes`) and that it
    /// passed (`passed`, written last: a scenario that failed an assertion has none).
    pub fn passed(&self, scenario: &str) {
        let changes = match self.fleet {
            Some(_) => self.dns_writes(),
            None => self.count("applied"),
        };
        write_result(scenario, "dns_changes", changes as f64);
        write_result(scenario, "passed", 1.0);
    }
}
