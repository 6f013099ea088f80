//! The rules on what an AI advisor's answer may change: policy, so they live in
//! `decision`, beside the verdict they bound. Pure functions, no I/O, no clock.
//!
//! # What may an answer change? ([`combine`]), in order
//! 1. No usable advice (not consulted, discarded): the policy's verdict stands.
//! 2. The policy holds: it stays a hold. Advice can never start a failover
//!    ([`Effect::CannotStartFailover`]); a hold advice merely agrees.
//! 3. The policy fails over and the advice says failover: the policy's failover stands,
//!    to the policy's target ([`Effect::TargetKept`] when the advice named another).
//! 4. The policy fails over and the advice says hold. The hold counts only if all of
//!    these hold, checked in this order:
//!    - its confidence is at least `ai_failover_confidence` ([`Effect::LowConfidence`]);
//!    - the evidence is ambiguous ([`ambiguity`]): the clients are not reported failing
//!      (unknown or normal), or the policy's confidence is below the threshold plus
//!      [`AMBIGUITY_MARGIN`] (capped at 1). Otherwise [`Effect::EvidenceClear`];
//!    - the outage has not lasted `ai_max_hold`: the outage clock runs while the active
//!      datacenter is down in every round of an evaluation and the clients are not
//!      reported normal (failing, or unknown: a model alone cannot stall a hard
//!      outage). [`Effect::MaxHoldReached`] once it has;
//!    - it is the `ai_consecutive_recommendations`-th consecutive eligible hold (see
//!      [`super::book`]); before that the engine probes and consults again
//!      ([`Effect::AwaitingConfirmation`], [`Decision::ConsultAgain`]).
//!
//!    Then [`Effect::HoldsBack`]: during an outage the engine keeps probing for at most
//!    the time left before `ai_max_hold` and then fails over; outside one (a brownout,
//!    or clients reported normal) the evaluation ends held.

use std::time::Duration;

use serde::Serialize;

use crate::decision::policy::Verdict;
use crate::decision::ports::{ClientStatus, Consultation, Recommendation};
use crate::model::DatacenterId;

/// A failover the policy supports with confidence below `threshold + margin` is
/// ambiguous enough for advice to hold it back (with the default threshold 0.95: any
/// confidence below 1).
pub const AMBIGUITY_MARGIN: f64 = 0.05;

/// The advice rules from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// `ai_failover_confidence`: the least confidence for an answer to count.
    pub min_confidence: f64,
    /// `ai_consecutive_recommendations`: agreeing eligible answers in a row needed.
    pub consecutive: u32,
    /// `ai_max_hold`: the longest an outage may be held back.
    pub max_hold: Duration,
}

/// What the evidence says beyond the policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Situation {
    /// `failover_confidence_threshold`.
    pub threshold: f64,
    pub clients: ClientStatus,
    /// How long the active datacenter has been down in every round while the clients
    /// were not reported normal ([`super::book::AdviceHistory::outage_for`]); none
    /// when it is not.
    pub outage_for: Option<Duration>,
}

/// Why a failover the policy supports is open to doubt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Ambiguity {
    /// The clients are not reported failing.
    ClientsNotFailing { clients: ClientStatus },
    /// The policy's confidence is close to its threshold.
    MarginalConfidence { confidence: f64, clear_from: f64 },
}

/// `None`: the evidence is clear (clients failing and the policy's confidence at least
/// the threshold plus [`AMBIGUITY_MARGIN`], capped at 1).
pub fn ambiguity(policy_confidence: f64, s: &Situation) -> Option<Ambiguity> {
    if s.clients != ClientStatus::Failing {
        return Some(Ambiguity::ClientsNotFailing { clients: s.clients });
    }
    let clear_from = (s.threshold + AMBIGUITY_MARGIN).min(1.0);
    (policy_confidence < clear_from).then_some(Ambiguity::MarginalConfidence {
        confidence: policy_confidence,
        clear_from,
    })
}

/// What became of the advice; recorded with the consultation and in the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    NotConsulted,
    Discarded {
        reason: &'static str,
    },
    /// Same recommendation as the policy. `counted`: the streak reached
    /// `ai_consecutive_recommendations` (informational: it changes nothing).
    Agrees {
        streak: u32,
        counted: bool,
    },
    CannotStartFailover,
    TargetKept {
        advised: Option<DatacenterId>,
        used: DatacenterId,
    },
    LowConfidence {
        confidence: f64,
        min: f64,
    },
    EvidenceClear,
    MaxHoldReached {
        outage_s: u64,
        max_hold_s: u64,
    },
    AwaitingConfirmation {
        streak: u32,
        needed: u32,
    },
    HoldsBack {
        streak: u32,
        ambiguity: Ambiguity,
        /// During an outage: how much longer the hold may last.
        remaining_s: Option<u64>,
    },
}

impl Effect {
    /// The advice changed what the agent does.
    pub fn counted(&self) -> bool {
        matches!(self, Effect::HoldsBack { .. })
    }

    /// One sentence for the decision record and the alert.
    pub fn describe(&self) -> String {
        match self {
            Effect::NotConsulted => "not consulted".into(),
            Effect::Discarded { reason } => format!("discarded ({reason}); the policy decides"),
            Effect::Agrees { streak, counted } => {
                format!("agrees with the policy ({streak} in a row, counted: {counted})")
            }
            Effect::CannotStartFailover => {
                "recommended a failover the probes do not support; advice cannot start one".into()
            }
            Effect::TargetKept { advised, used } => format!(
                "recommended {}; the policy's target {used} is kept",
                advised
                    .as_ref()
                    .map_or("no target".into(), |d| d.to_string())
            ),
            Effect::LowConfidence { confidence, min } => format!(
                "hold with confidence {confidence:.2}, below ai_failover_confidence {min:.2}"
            ),
            Effect::EvidenceClear => {
                "hold ignored: the active datacenter is down, clients are failing and the \
                 policy is confident"
                    .into()
            }
            Effect::MaxHoldReached {
                outage_s,
                max_hold_s,
            } => format!(
                "hold ignored: the outage has lasted {outage_s} s (ai_max_hold {max_hold_s} s)"
            ),
            Effect::AwaitingConfirmation { streak, needed } => {
                format!("hold {streak} of {needed} in a row; probing and asking again")
            }
            Effect::HoldsBack { remaining_s, .. } => match remaining_s {
                Some(s) => format!("holds the failover back for at most {s} s more"),
                None => "holds the failover back: the evidence is ambiguous".into(),
            },
        }
    }
}

/// What the engine does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Act on the policy's verdict.
    Policy(Verdict),
    /// Hold back the policy's failover. With `wait`, during an outage: probe again
    /// every `confirm_interval` for at most `wait`, re-judging, then fail over. Without,
    /// end the evaluation held.
    AdvisedHold {
        target: DatacenterId,
        confidence: f64,
        wait: Option<Duration>,
    },
    /// A hold awaits confirmation: probe a fresh round after `confirm_interval`, consult
    /// again (the rate limit lets it), and combine again.
    ConsultAgain,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    pub decision: Decision,
    pub effect: Effect,
}

/// The combination rule (module documentation). `streak`: consecutive eligible answers
/// agreeing with `latest`, itself included ([`super::book::AdviceHistory::streak`]).
pub fn combine(
    verdict: &Verdict,
    latest: Option<&Consultation>,
    streak: u32,
    s: &Situation,
    rules: &Rules,
) -> Combined {
    let stands = |effect| Combined {
        decision: Decision::Policy(verdict.clone()),
        effect,
    };
    let advice = match latest.map(|c| &c.result) {
        None => return stands(Effect::NotConsulted),
        Some(Err(d)) => return stands(Effect::Discarded { reason: d.kind() }),
        Some(Ok(a)) => a,
    };
    let agrees = Effect::Agrees {
        streak,
        counted: streak >= rules.consecutive && advice.confidence >= rules.min_confidence,
    };
    let (target, confidence) = match (verdict, advice.recommendation) {
        (Verdict::Hold(_), Recommendation::Failover) => {
            return stands(Effect::CannotStartFailover);
        }
        (Verdict::Hold(_), Recommendation::Hold) => return stands(agrees),
        (Verdict::Failover { target, .. }, Recommendation::Failover) => {
            if advice.target_dc.as_ref() == Some(target) {
                return stands(agrees);
            }
            return stands(Effect::TargetKept {
                advised: advice.target_dc.clone(),
                used: target.clone(),
            });
        }
        (Verdict::Failover { target, confidence }, Recommendation::Hold) => (target, *confidence),
    };
    if advice.confidence < rules.min_confidence {
        return stands(Effect::LowConfidence {
            confidence: advice.confidence,
            min: rules.min_confidence,
        });
    }
    let Some(ambiguity) = ambiguity(confidence, s) else {
        return stands(Effect::EvidenceClear);
    };
    if let Some(outage) = s.outage_for.filter(|d| *d >= rules.max_hold) {
        return stands(Effect::MaxHoldReached {
            outage_s: outage.as_secs(),
            max_hold_s: rules.max_hold.as_secs(),
        });
    }
    let needed = rules.consecutive.max(1);
    if streak < needed {
        return Combined {
            decision: Decision::ConsultAgain,
            effect: Effect::AwaitingConfirmation { streak, needed },
        };
    }
    let wait = s.outage_for.map(|d| rules.max_hold.saturating_sub(d));
    Combined {
        decision: Decision::AdvisedHold {
            target: target.clone(),
            confidence,
            wait,
        },
        effect: Effect::HoldsBack {
            streak,
            ambiguity,
            remaining_s: wait.map(|w| w.as_secs()),
        },
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
