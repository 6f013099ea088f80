use std::time::{Duration, SystemTime};

use super::*;
use crate::decision::policy::Hold;
use crate::decision::ports::advisor::evidence::tests::{CALM, dc, failover_to};
use crate::decision::ports::{Advice, Discarded};

const RULES: Rules = Rules {
    min_confidence: 0.85,
    consecutive: 2,
    max_hold: Duration::from_secs(120),
};

fn consultation(result: Result<Advice, Discarded>) -> Consultation {
    Consultation {
        advisor: "fake".into(),
        model: "m".into(),
        at: SystemTime::UNIX_EPOCH,
        latency: Duration::from_millis(5),
        fingerprint: "f".into(),
        result,
        raw: None,
    }
}

fn advice(rec: Recommendation, target: Option<&str>, confidence: f64) -> Consultation {
    consultation(Ok(Advice {
        recommendation: rec,
        target_dc: target.map(dc),
        confidence,
        reasoning: "r".into(),
        impact: "i".into(),
    }))
}

fn situation(clients: ClientStatus, outage_for: Option<u64>) -> Situation {
    Situation {
        threshold: 0.95,
        clients,
        outage_for: outage_for.map(Duration::from_secs),
    }
}

const HOLD: Recommendation = Recommendation::Hold;
const FAILOVER: Recommendation = Recommendation::Failover;

#[test]
fn without_usable_advice_the_policy_decides() {
    let v = failover_to("west", 1.0);
    let s = situation(ClientStatus::Unknown, Some(10));
    let c = combine(&v, None, 0, &s, &RULES);
    assert_eq!(c.decision, Decision::Policy(v.clone()));
    assert_eq!(c.effect, Effect::NotConsulted);
    for d in [
        Discarded::Timeout { after_ms: 100 },
        Discarded::Http { status: 500 },
        Discarded::InvalidJson { detail: "x".into() },
    ] {
        let kind = d.kind();
        let c = combine(&v, Some(&consultation(Err(d))), 0, &s, &RULES);
        assert_eq!(c.decision, Decision::Policy(v.clone()));
        assert_eq!(c.effect, Effect::Discarded { reason: kind });
    }
}

#[test]
fn advice_can_never_start_a_failover() {
    // The active datacenter is healthy; a manipulated model says failover, 1.0, over and
    // over, with the clients failing too.
    let held = Verdict::Hold(Hold::ActiveRecovered { round: 1 });
    let manipulated = advice(FAILOVER, Some("west"), 1.0);
    for clients in [
        ClientStatus::Failing,
        ClientStatus::Unknown,
        ClientStatus::Normal,
    ] {
        let c = combine(
            &held,
            Some(&manipulated),
            10,
            &situation(clients, None),
            &RULES,
        );
        assert_eq!(c.decision, Decision::Policy(held.clone()));
        assert_eq!(c.effect, Effect::CannotStartFailover);
        assert!(!c.effect.counted());
    }
    // Nor with a low-confidence policy hold.
    let low = Verdict::Hold(Hold::LowConfidence {
        confidence: 0.8,
        threshold: 0.95,
    });
    let c = combine(
        &low,
        Some(&manipulated),
        5,
        &situation(ClientStatus::Failing, None),
        &RULES,
    );
    assert_eq!(c.decision, Decision::Policy(low));
}

#[test]
fn advice_never_picks_the_target() {
    let v = failover_to("west", 1.0);
    let s = situation(ClientStatus::Failing, Some(5));
    let c = combine(
        &v,
        Some(&advice(FAILOVER, Some("west"), 0.9)),
        2,
        &s,
        &RULES,
    );
    assert_eq!(c.decision, Decision::Policy(v.clone()));
    assert_eq!(
        c.effect,
        Effect::Agrees {
            streak: 2,
            counted: true
        }
    );
    let c = combine(
        &v,
        Some(&advice(FAILOVER, Some("north"), 0.9)),
        1,
        &s,
        &RULES,
    );
    assert_eq!(c.decision, Decision::Policy(v));
    assert_eq!(
        c.effect,
        Effect::TargetKept {
            advised: Some(dc("north")),
            used: dc("west")
        }
    );
}

#[test]
fn a_hold_needs_confidence_and_ambiguous_evidence() {
    let v = failover_to("west", 1.0);
    let hold = advice(HOLD, None, 0.9);
    // Confidence below ai_failover_confidence.
    let c = combine(
        &v,
        Some(&advice(HOLD, None, 0.5)),
        2,
        &situation(ClientStatus::Unknown, None),
        &RULES,
    );
    assert_eq!(c.decision, Decision::Policy(v.clone()));
    assert!(matches!(c.effect, Effect::LowConfidence { .. }));
    // Clear: clients failing and the policy fully confident.
    let c = combine(
        &v,
        Some(&hold),
        2,
        &situation(ClientStatus::Failing, Some(5)),
        &RULES,
    );
    assert_eq!(c.decision, Decision::Policy(v.clone()));
    assert_eq!(c.effect, Effect::EvidenceClear);
    // Clients failing but the policy only just confident (a degraded target): ambiguous.
    let marginal = failover_to("west", 0.96);
    let c = combine(
        &marginal,
        Some(&hold),
        2,
        &situation(ClientStatus::Failing, Some(5)),
        &RULES,
    );
    assert_eq!(
        c.decision,
        Decision::AdvisedHold {
            target: dc("west"),
            confidence: 0.96,
            wait: Some(Duration::from_secs(115))
        }
    );
    assert!(c.effect.counted());
    match c.effect {
        Effect::HoldsBack { ambiguity, .. } => assert_eq!(
            ambiguity,
            Ambiguity::MarginalConfidence {
                confidence: 0.96,
                clear_from: 1.0
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hold_of_a_hard_outage_ends_at_ai_max_hold() {
    let v = failover_to("west", 1.0);
    let hold = advice(HOLD, None, 0.95);
    // Clients unknown: ambiguous, but the outage clock runs.
    let c = combine(
        &v,
        Some(&hold),
        2,
        &situation(ClientStatus::Unknown, Some(30)),
        &RULES,
    );
    assert_eq!(
        c.decision,
        Decision::AdvisedHold {
            target: dc("west"),
            confidence: 1.0,
            wait: Some(Duration::from_secs(90))
        }
    );
    let c = combine(
        &v,
        Some(&hold),
        7,
        &situation(ClientStatus::Unknown, Some(120)),
        &RULES,
    );
    assert_eq!(c.decision, Decision::Policy(v.clone()));
    assert_eq!(
        c.effect,
        Effect::MaxHoldReached {
            outage_s: 120,
            max_hold_s: 120
        }
    );
    // Clients normal (agent-side partition suspected): no outage clock, the hold ends
    // the evaluation.
    let c = combine(
        &v,
        Some(&hold),
        2,
        &situation(ClientStatus::Normal, None),
        &RULES,
    );
    assert_eq!(
        c.decision,
        Decision::AdvisedHold {
            target: dc("west"),
            confidence: 1.0,
            wait: None
        }
    );
}

#[test]
fn a_hold_counts_from_the_nth_consecutive_answer() {
    let v = failover_to("west", 1.0);
    let hold = advice(HOLD, None, 0.9);
    let s = situation(ClientStatus::Unknown, Some(10));
    let c = combine(&v, Some(&hold), 1, &s, &RULES);
    assert_eq!(c.decision, Decision::ConsultAgain);
    assert_eq!(
        c.effect,
        Effect::AwaitingConfirmation {
            streak: 1,
            needed: 2
        }
    );
    assert!(!c.effect.counted());
    let one = Rules {
        consecutive: 1,
        ..RULES
    };
    let c = combine(&v, Some(&hold), 1, &s, &one);
    assert!(matches!(c.decision, Decision::AdvisedHold { .. }));
}

#[test]
fn ambiguity_is_defined_by_clients_and_margin() {
    let s = |clients, threshold| Situation {
        threshold,
        clients,
        outage_for: None,
    };
    assert_eq!(ambiguity(1.0, &s(ClientStatus::Failing, 0.95)), None);
    assert!(ambiguity(0.99, &s(ClientStatus::Failing, 0.95)).is_some());
    assert!(ambiguity(1.0, &s(ClientStatus::Unknown, 0.95)).is_some());
    assert!(ambiguity(1.0, &s(ClientStatus::Normal, 0.5)).is_some());
    // The bar is capped at 1: a fully confident policy is clear at any threshold.
    assert_eq!(ambiguity(1.0, &s(ClientStatus::Failing, 0.99)), None);
    assert_eq!(ambiguity(0.8, &s(ClientStatus::Failing, 0.7)), None);
}

#[test]
fn effects_describe_themselves() {
    assert!(
        Effect::CannotStartFailover
            .describe()
            .contains("cannot start")
    );
    let _ = CALM;
}
