//! After a failover: did it help the clients? Once `effect_window.1` has passed, the
//! clients' error rate after the failover is compared with the rate before it, and the
//! result is added to the incident as its `failover_effect` step. A restart picks up
//! the measurements the previous run left undone ([`unmeasured`]).

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::advisors::client_impact::ClientImpact;
use crate::decision::incident::{Incident, Outcome, Step, StepName, StepOutcome};
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
