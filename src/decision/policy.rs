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

use serde::{Deserialize, Serialize};

use crate::model::{DatacenterId, InstanceId};

/// An active datacenter counts as bad in a round when it is down or its health is
/// below this (status `failing`).
pub const ACTIVE_BAD_BELOW: f64 = 0.5;
/// A target must be up with at least this health in every round (status `degraded` or
/// better).
pub const TARGET_GOOD_FROM: f64 = 0.5;
/// A target at or above this health (status `healthy`) costs no confidence.
pub const TARGET_HEALTHY_FROM: f64 = 0.8;

/// Sentinel PINGs a primary every second; a valid reply this recent means the primary
/// answered within the datacenter just now. Kept short: an outage older than this can
/// never look heard, and every evaluation starts after the alert's `for:`.
pub const SENTINEL_HEARD_WITHIN: Duration = Duration::from_millis(1500);

/// Of the doubt the probes leave (1 - confidence), what remains once the clients are
/// reported failing too: 0.25 turns a confidence of 0.8 into 0.95.
pub const CLIENTS_FAILING_DOUBT: f64 = 0.25;

/// What the clients say, as far as the client impact advisor could tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    /// No client impact advisor, or it failed, timed out or found too few logs.
    #[default]
    Unknown,
    /// Clients report no more errors than their baseline.
    Normal,
    /// Clients report errors well above their baseline.
    Failing,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Unknown => "unknown",
            ClientStatus::Normal => "normal",
            ClientStatus::Failing => "failing",
        }
    }
}

/// One datacenter as one confirmation round saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub datacenter: DatacenterId,
    /// The endpoint answered PING and INFO in this round.
    pub up: bool,
    /// Health score of this round, 0 to 1 (0 when down).
    pub health: f64,
    /// Sentinel reports a failover of this datacenter's primary in progress.
    pub sentinel_failover: bool,
    /// How long ago the datacenter's Sentinel last had a valid PING reply from the
    /// primary, when a Sentinel answered and does not consider it down.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
    pub sentinel_heard: Option<Duration>,
}

/// Fresh probes of every datacenter of the instance, taken together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    #[serde(with = "crate::model::rfc3339::required")]
    pub at: SystemTime,
    pub probes: Vec<Probe>,
}

impl Round {
    fn probe(&self, dc: &DatacenterId) -> Option<&Probe> {
        self.probes.iter().find(|p| &p.datacenter == dc)
    }
}

/// Why an evaluation did not fail over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// The alert names an instance the configuration does not have.
    UnknownInstance,
    /// An earlier failover of this instance is too recent.
    Cooldown {
        #[serde(with = "crate::model::rfc3339::required")]
        until: SystemTime,
    },
    /// The active datacenter answered in round `round` (1-based).
    ActiveRecovered { round: usize },
    /// Sentinel is failing over inside the active datacenter; decide again later.
    SentinelFailover {
        #[serde(with = "seconds")]
        waited: Duration,
        #[serde(with = "seconds")]
        wait: Duration,
    },
    /// No other datacenter was up and healthy enough in every round.
    NoHealthyTarget,
    /// Every datacenter of the instance was down.
    AllDown,
    /// The evidence was not strong enough.
    LowConfidence { confidence: f64, threshold: f64 },
    /// The active datacenter was already the requested target.
    AlreadyActive,
    /// The requested target is not one of the instance's datacenters.
    UnknownTarget { datacenter: DatacenterId },
    /// The pre-failover hook said no.
    Vetoed { detail: String },
    /// The probes see the active datacenter bad, but its clients log no more errors
    /// than usual, or (`sentinel_heard`) its Sentinel still hears the primary: the
    /// agent, not Redis, may be cut off.
    PartitionSuspected {
        active: DatacenterId,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
        sentinel_heard: Option<Duration>,
    },
    /// The AI advisor's hold counted (the evidence was ambiguous; see
    /// `decision::advice::rules`). `confidence` is the policy's.
    Advised {
        target: DatacenterId,
        confidence: f64,
        advice_confidence: f64,
    },
}

impl Hold {
    /// A short sentence for logs, notifications and the API.
    pub fn describe(&self) -> String {
        match self {
            Hold::UnknownInstance => "unknown instance".into(),
            Hold::Cooldown { until } => format!(
                "cooldown: an earlier failover of this instance; no automatic failover until {}",
                crate::model::rfc3339::format(*until)
            ),
            Hold::ActiveRecovered { round } => {
                format!("the active datacenter answered in confirmation round {round}")
            }
            Hold::SentinelFailover { waited, wait } => format!(
                "Sentinel is failing over inside the active datacenter (waited {} of {})",
                crate::config::show_duration(*waited),
                crate::config::show_duration(*wait)
            ),
            Hold::NoHealthyTarget => "no healthy target".into(),
            Hold::AllDown => "every datacenter of the instance is down".into(),
            Hold::LowConfidence {
                confidence,
                threshold,
            } => format!("confidence {confidence:.2} is below the threshold {threshold:.2}"),
            Hold::AlreadyActive => "the target is already the active datacenter".into(),
            Hold::UnknownTarget { datacenter } => {
                format!("{datacenter} is not one of the instance's datacenters")
            }
            Hold::Vetoed { detail } => format!("vetoed by the pre-failover hook: {detail}"),
            Hold::PartitionSuspected {
                active,
                sentinel_heard: None,
            } => format!(
                "agent-side partition suspected: the probes see {active} failing, but its \
                 clients log no more errors than usual"
            ),
            Hold::PartitionSuspected {
                active,
                sentinel_heard: Some(heard),
            } => format!(
                "agent-side partition suspected: the agent cannot reach {active}'s primary, \
                 but {active}'s Sentinel had a PING reply from it {:.1} s ago and the clients \
                 are not reported failing",
                heard.as_secs_f64()
            ),
            Hold::Advised {
                target,
                confidence,
                advice_confidence,
            } => format!(
                "the AI advisor advised holding (confidence {advice_confidence:.2}) while the \
                 evidence was ambiguous; the policy supported {target} with confidence \
                 {confidence:.2}"
            ),
        }
    }

    /// Short machine name, for metrics labels and alert labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::UnknownInstance => "unknown_instance",
            Hold::Cooldown { .. } => "cooldown",
            Hold::ActiveRecovered { .. } => "active_recovered",
            Hold::SentinelFailover { .. } => "sentinel_failover",
            Hold::NoHealthyTarget => "no_healthy_target",
            Hold::AllDown => "all_down",
            Hold::LowConfidence { .. } => "low_confidence",
            Hold::AlreadyActive => "already_active",
            Hold::UnknownTarget { .. } => "unknown_target",
            Hold::Vetoed { .. } => "vetoed",
            Hold::PartitionSuspected { .. } => "partition_suspected",
            Hold::Advised { .. } => "advised",
        }
    }
}

/// Durations as seconds (a float) in records people read.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Optional durations as seconds (a float), absent when `None`.
mod opt_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::seconds::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// What the evidence supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Failover {
        target: DatacenterId,
        confidence: f64,
    },
    Hold(Hold),
}

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
    // 4. The clients still reach Redis (this also explains an everything-down view), or
    //    the datacenter's Sentinel still hears the primary the agent cannot reach.
    if e.clients == ClientStatus::Normal {
        return Verdict::Hold(Hold::PartitionSuspected {
            active: e.active.clone(),
            sentinel_heard: None,
        });
    }
    let heard = rounds
        .last()
        .and_then(|r| r.probe(e.active))
        .filter(|p| !p.up)
        .and_then(|p| p.sentinel_heard)
        .filter(|heard| *heard <= SENTINEL_HEARD_WITHIN);
    if let Some(heard) = heard
        && e.clients != ClientStatus::Failing
    {
        return Verdict::Hold(Hold::PartitionSuspected {
            active: e.active.clone(),
            sentinel_heard: Some(heard),
        });
    }
    // 5. The healthiest datacenter that stayed good in every round.
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
    let Some((target, target_health)) = best else {
        let active_up = rounds
            .iter()
            .any(|r| r.probe(e.active).is_some_and(|p| p.up));
        return Verdict::Hold(if any_up || active_up {
            Hold::NoHealthyTarget
        } else {
            Hold::AllDown
        });
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
