//! After a failover: did it help the clients? Once `effect_window.1` has passed, the
//! clients' error rate after the failover is compared with the rate before it, and the
//! result is added to the incident as its `failover_effect` step. A restart picks up
//! the measurements the previous run left undone ([`unmeasured`]).

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::decision::incident::{Incident, Outcome, Step, StepName, StepOutcome};
use crate::decision::ports::ClientImpact;
use crate::model::InstanceId;

/// After a restart, failovers closed longer ago than this are not measured any more.
pub const EFFECT_RESUME_WITHIN: Duration = Duration::from_secs(24 * 60 * 60);

/// The `failover_effect` step for the clients' report over `(before, after)` a failover.
pub fn effect_step(
    impact: &ClientImpact,
    (before, after): (Duration, Duration),
    at: SystemTime,
) -> Step {
    let (outcome, detail) = match impact.report() {
        Some(r) => {
            let effect = r.failover_effect();
            let pct = |x: Option<f64>| x.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
            (
                effect.as_str(),
                format!(
                    "client errors {} in the {} min before the failover, {} in the {} min after: {}",
                    pct(r.baseline.error_rate),
                    before.as_secs() / 60,
                    pct(r.recent.error_rate),
                    after.as_secs() / 60,
                    effect.as_str().replace('_', " ")
                ),
            )
        }
        None => ("unknown", format!("no comparison: {}", impact.describe())),
    };
    Step::new(
        StepName::FailoverEffect,
        StepOutcome::Info,
        detail,
        json!({ "effect": outcome, "impact": impact }),
        at,
    )
}

/// The failovers of `history` whose effect was not recorded and that closed at most
/// [`EFFECT_RESUME_WITHIN`] before `now`: (incident, instance, when it closed).
pub fn unmeasured(history: &[Incident], now: SystemTime) -> Vec<(u64, InstanceId, SystemTime)> {
    history
        .iter()
        .filter_map(|incident| {
            let (Some(Outcome::FailedOver { .. }), Some(closed)) =
                (&incident.outcome, incident.closed)
            else {
                return None;
            };
            let measured = incident
                .steps
                .iter()
                .any(|s| s.name == StepName::FailoverEffect);
            let recent = now.duration_since(closed).unwrap_or_default() <= EFFECT_RESUME_WITHIN;
            (!measured && recent).then(|| (incident.id, incident.instance.clone(), closed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advisors::client_impact::FakeClientImpact;
    use crate::decision::incident::Trigger;
    use crate::model::DatacenterId;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn failover(id: u64, closed: SystemTime, measured: bool) -> Incident {
        let step = effect_step(
            &ClientImpact::unknown("x"),
            (EFFECT_RESUME_WITHIN, EFFECT_RESUME_WITHIN),
            closed,
        );
        Incident {
            id,
            instance: InstanceId::new("cache"),
            opened: closed,
            triggers: vec![Trigger {
                source: "alert".into(),
                name: "RedisActiveDatacenterDown".into(),
                fingerprint: String::new(),
                datacenter: None,
            }],
            steps: if measured { vec![step] } else { Vec::new() },
            intent: None,
            applied: true,
            led: None,
            outcome: Some(Outcome::FailedOver {
                from: DatacenterId::new("east"),
                to: DatacenterId::new("west"),
                confidence: 1.0,
            }),
            closed: Some(closed),
        }
    }

    #[test]
    fn the_effect_compares_the_clients_before_and_after() {
        let cache = InstanceId::new("cache");
        let window = (Duration::from_secs(900), Duration::from_secs(600));
        let step = effect_step(&FakeClientImpact::failing(&cache), window, t(0));
        // The fake gives the same counts for any window: 60 % errors "after" against
        // 1 % "before" reads as worse.
        assert_eq!(step.evidence["effect"], "worse");
        assert_eq!(
            step.detail,
            "client errors 1.0% in the 15 min before the failover, 60.0% in the 10 min after: worse"
        );
        let unknown = effect_step(&ClientImpact::unknown("no index"), window, t(0));
        assert_eq!(unknown.evidence["effect"], "unknown");
        assert_eq!(unknown.detail, "no comparison: unknown (no index)");
    }

    #[test]
    fn a_restart_measures_only_recent_failovers_left_unmeasured() {
        let day = EFFECT_RESUME_WITHIN.as_secs();
        let now = t(3 * day);
        let history = [
            failover(1, t(0), false),                          // too long ago
            failover(2, now - Duration::from_secs(30), true),  // measured before
            failover(3, now - Duration::from_secs(20), false), // due
        ];
        let due: Vec<u64> = unmeasured(&history, now).iter().map(|d| d.0).collect();
        assert_eq!(due, [3]);
    }
}
