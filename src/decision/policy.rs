//! The failover policy: pure functions from evidence to a verdict. No I/O, no clock:
//! the engine gathers the evidence (fresh probes of every datacenter, `K` rounds apart)
//! and passes the time in.
//!
//! The rules, in order:
//! 1. Guards: an unknown instance, a cooldown after an earlier failover, or a datacenter
//!    the instance does not have stop the evaluation before any probe.
//! 2. Confirmation: the active datacenter must be bad in every round (down, or up with a
//!    health score below [`ACTIVE_BAD_BELOW`]). One good round means it recovered or the
//!    fault was brief: hold.
//! 3. Sentinel: while Sentinel is failing over inside the active datacenter, hold for up
//!    to `sentinel_wait` so its own promotion can finish first.
//! 4. Someone else still reaches Redis, so the agent's own view is suspect (it may be cut
//!    off from the datacenter while the clients are not): hold.
//!    - Clients (when a client impact advisor is configured): the applications that use
//!      the instance log no more errors than usual while the probes see the active
//!      datacenter bad. Unknown changes nothing.
//!    - Sentinel (when the endpoint names its Sentinels): in the last round the agent
//!      could not reach the active primary, yet the datacenter's Sentinel had a PING
//!      reply from it at most [`SENTINEL_HEARD_WITHIN`] before, and the clients are not
//!      reported failing (failing clients outweigh it: Redis may answer its Sentinel and
//!      still not its clients).
//! 5. Target: the healthiest datacenter that was up with a health of at least
//!    [`TARGET_GOOD_FROM`] in every round. None: hold.
//! 6. Confidence: how bad the active datacenter was times how good the target stayed,
//!    compared with `failover_confidence_threshold`. Clients reported failing are a
//!    second witness: the remaining doubt shrinks to [`CLIENTS_FAILING_DOUBT`] of itself.

use std::time::{Duration, SystemTime};

pub use super::ports::{
    ClientStatus, Hold, Probe, Round, TARGET_GOOD_FROM, TARGET_HEALTHY_FROM, Verdict,
};
use crate::model::{DatacenterId, InstanceId};

/// An active datacenter counts as bad in a round when it is down or its health is
/// below this (status `failing`).
pub const ACTIVE_BAD_BELOW: f64 = 0.5;

/// Sentinel PINGs a primary every second; a valid reply this recent means the primary
/// answered within the datacenter just now. Kept short: an outage older than this can
/// never look heard, and every evaluation starts after the alert's `for:`.
pub const SENTINEL_HEARD_WITHIN: Duration = Duration::from_millis(1500);

/// Of the doubt the probes leave (1 - confidence), what remains once the clients are
/// reported failing too: 0.25 turns a confidence of 0.8 into 0.95.
pub const CLIENTS_FAILING_DOUBT: f64 = 0.25;

/// The guards, checked before any probe.
#[derive(Debug, Clone)]
pub struct GuardInput<'a> {
    pub instance: &'a InstanceId,
    /// Datacenters of the instance; `None`: the instance is not configured.
    pub datacenters: Option<&'a [DatacenterId]>,
    /// End of the cooldown of the last failover of this instance, if any.
    pub cooldown_until: Option<SystemTime>,
    pub now: SystemTime,
}

pub fn guard(g: &GuardInput<'_>) -> Option<Hold> {
    if g.datacenters.is_none() {
        return Some(Hold::UnknownInstance);
    }
    match g.cooldown_until {
        Some(until) if until > g.now => Some(Hold::Cooldown { until }),
        _ => None,
    }
}

/// What the confirmation rounds found.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    pub active: &'a DatacenterId,
    /// Every datacenter of the instance, the active one included.
    pub datacenters: &'a [DatacenterId],
    pub rounds: &'a [Round],
    /// How long Sentinel has been seen failing over the active datacenter, if it is.
    pub sentinel_seen_for: Option<Duration>,
    /// What the client impact advisor says (rules 4 and 6).
    pub clients: ClientStatus,
}

/// Thresholds of the policy.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub confidence: f64,
    pub sentinel_wait: Duration,
}

/// Judges the confirmation rounds (rules 2 to 6 of the module documentation).
pub fn judge(e: &Evidence<'_>, t: Thresholds) -> Verdict {
    let rounds = e.rounds;
    if rounds.is_empty() {
        return Verdict::Hold(Hold::ActiveRecovered { round: 0 });
    }
    // 2. The active datacenter must be bad in every round.
    for (i, round) in rounds.iter().enumerate() {
        let bad = round
            .probe(e.active)
            .is_none_or(|p| !p.up || p.health < ACTIVE_BAD_BELOW);
        if !bad {
            return Verdict::Hold(Hold::ActiveRecovered { round: i + 1 });
        }
    }
    // 3. Let Sentinel finish a promotion inside the datacenter first.
    let sentinel_now = rounds
        .last()
        .and_then(|r| r.probe(e.active))
        .is_some_and(|p| p.sentinel_failover);
    if let Some(waited) = e.sentinel_seen_for.filter(|_| sentinel_now)
        && waited < t.sentinel_wait
    {
        return Verdict::Hold(Hold::SentinelFailover {
            waited,
            wait: t.sentinel_wait,
        });
    }
    if let Some(hold) = partition_suspected(e) {
        return Verdict::Hold(hold);
    }
    let (target, target_health) = match best_target(e) {
        Ok(best) => best,
        Err(hold) => return Verdict::Hold(hold),
    };
    // 6. Confidence.
    let mut confidence = active_severity(rounds, e.active) * target_quality(target_health);
    if e.clients == ClientStatus::Failing {
        confidence = 1.0 - (1.0 - confidence) * CLIENTS_FAILING_DOUBT;
    }
    if confidence < t.confidence {
        return Verdict::Hold(Hold::LowConfidence {
            confidence,
            threshold: t.confidence,
        });
    }
    Verdict::Failover {
        target: target.clone(),
        confidence,
    }
}

/// Rule 4: in a fleet, other observers reach the active datacenter this agent cannot
/// and fewer than the quorum agree with it (`decision::quorum`); or the clients still
/// reach Redis (this also explains an everything-down view); or the datacenter's
/// Sentinel still hears the primary the agent cannot reach.
fn partition_suspected(e: &Evidence<'_>) -> Option<Hold> {
    if let Some(w) = e
        .rounds
        .last()
        .and_then(|r| r.witnesses.as_ref())
        .filter(|w| w.partition)
    {
        return Some(Hold::PartitionWitnessed {
            active: e.active.clone(),
            down: w.inside.iter().chain(&w.down).cloned().collect(),
            up: w.up.clone(),
            down_outside: w.down.len(),
            quorum: w.quorum,
        });
    }
    if e.clients == ClientStatus::Normal {
        return Some(Hold::PartitionSuspected {
            active: e.active.clone(),
            sentinel_heard: None,
        });
    }
    let heard = e
        .rounds
        .last()
        .and_then(|r| r.probe(e.active))
        .filter(|p| !p.up)
        .and_then(|p| p.sentinel_heard)
        .filter(|heard| *heard <= SENTINEL_HEARD_WITHIN)?;
    (e.clients != ClientStatus::Failing).then(|| Hold::PartitionSuspected {
        active: e.active.clone(),
        sentinel_heard: Some(heard),
    })
}

/// Rule 5: the healthiest datacenter that stayed good in every round, with its worst
/// health; or why there is none.
fn best_target<'a>(e: &Evidence<'a>) -> Result<(&'a DatacenterId, f64), Hold> {
    let rounds = e.rounds;
    let others = e.datacenters.iter().filter(|dc| *dc != e.active);
    let mut best: Option<(&DatacenterId, f64)> = None;
    let mut any_up = false;
    for dc in others {
        let probes: Vec<Option<&Probe>> = rounds.iter().map(|r| r.probe(dc)).collect();
        any_up |= probes.iter().any(|p| p.is_some_and(|p| p.up));
        let good = probes
            .iter()
            .all(|p| p.is_some_and(|p| p.up && p.health >= TARGET_GOOD_FROM));
        if !good {
            continue;
        }
        let worst = probes
            .iter()
            .flatten()
            .map(|p| p.health)
            .fold(f64::INFINITY, f64::min);
        if best.is_none_or(|(_, h)| worst > h) {
            best = Some((dc, worst));
        }
    }
    best.ok_or_else(|| {
        let active_up = rounds
            .iter()
            .any(|r| r.probe(e.active).is_some_and(|p| p.up));
        if any_up || active_up {
            Hold::NoHealthyTarget
        } else {
            Hold::AllDown
        }
    })
}

/// A planned move (a failback, or an operator's request while the active datacenter is
/// fine): the target must have been up and healthy (at least [`TARGET_HEALTHY_FROM`]) in
/// every round; the active datacenter's state does not matter.
pub fn judge_planned(rounds: &[Round], target: &DatacenterId) -> Verdict {
    let healthy = !rounds.is_empty()
        && rounds.iter().all(|r| {
            r.probe(target)
                .is_some_and(|p| p.up && p.health >= TARGET_HEALTHY_FROM)
        });
    if healthy {
        Verdict::Failover {
            target: target.clone(),
            confidence: 1.0,
        }
    } else {
        Verdict::Hold(Hold::NoHealthyTarget)
    }
}

/// 1 when the active datacenter was down in every round; for an endpoint that answered
/// but was failing, one minus its health, averaged over the rounds.
fn active_severity(rounds: &[Round], active: &DatacenterId) -> f64 {
    let sum: f64 = rounds
        .iter()
        .map(|r| match r.probe(active) {
            Some(p) if p.up => 1.0 - p.health.clamp(0.0, 1.0),
            _ => 1.0,
        })
        .sum();
    sum / rounds.len() as f64
}

/// 1 for a target that stayed healthy; down to 0.9 for one that was merely degraded.
fn target_quality(worst_health: f64) -> f64 {
    if worst_health >= TARGET_HEALTHY_FROM {
        return 1.0;
    }
    let span = TARGET_HEALTHY_FROM - TARGET_GOOD_FROM;
    0.9 + 0.1 * ((worst_health - TARGET_GOOD_FROM) / span).clamp(0.0, 1.0)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
