//! One evaluation, step by step (DESIGN.md "Deciding"): guards, confirmation rounds of
//! fresh probes, the policy, then the plan: pre-failover hook, promotion, the DNS change
//! (intent on disk first), post-failover hook, verification, and telling people.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::json;
use tracing::{error, info};

use super::aftermath::notify;
use super::probes::probe_round;
use super::{EngineError, Inner, act, advice};
use crate::decision::incident::{Outcome, Step};
use crate::decision::policy::{
    self, ClientStatus, Evidence, GuardInput, Hold, Round, Thresholds, Verdict,
};
use crate::model::{DatacenterId, InstanceId};
/// An operator's request through the API.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub target: Option<DatacenterId>,
    /// Skip confirmation and cooldown.
    pub force: bool,
    /// A planned move (a failback): the target must stay healthy; the active
    /// datacenter need not be failing.
    pub planned: bool,
}

pub(super) fn step(
    name: &str,
    outcome: &str,
    detail: impl Into<String>,
    evidence: serde_json::Value,
) -> Step {
    Step {
        name: name.into(),
        outcome: outcome.into(),
        detail: detail.into(),
        evidence,
        at: SystemTime::now(),
    }
}

pub(super) async fn run(
    inner: Arc<Inner>,
    id: u64,
    instance: InstanceId,
    request: Option<Request>,
) {
    let outcome = match evaluate(&inner, id, &instance, request.as_ref()).await {
        Ok(outcome) => outcome,
        Err(e) => {
            error!(redis_instance = %instance, incident = id, error = %e, "evaluation failed");
            Outcome::Failed {
                detail: e.to_string(),
            }
        }
    };
    match &outcome {
        Outcome::FailedOver { from, to, .. } => info!(redis_instance = %instance, incident = id,
            from = %from, to = %to, "failed over"),
        Outcome::Held(h) => info!(redis_instance = %instance, incident = id,
            reason = %h.describe(), "held"),
        other => info!(redis_instance = %instance, incident = id, outcome = other.label(),
            "evaluation finished"),
    }
    inner
        .deps
        .metrics
        .decision(instance.as_str(), outcome.label());
    match &outcome {
        Outcome::FailedOver { from, to, .. } => {
            inner
                .deps
                .metrics
                .failover(instance.as_str(), from.as_str(), to.as_str(), true)
        }
        Outcome::Failed { .. } => {
            if let Some((from, to)) = inner
                .state
                .lock()
                .await
                .ledger
                .open
                .get(&id)
                .and_then(|i| i.intent.clone())
            {
                inner
                    .deps
                    .metrics
                    .failover(instance.as_str(), from.as_str(), to.as_str(), false)
            }
        }
        _ => {}
    }
    if let Err(e) = inner.close(id, outcome.clone()).await {
        error!(redis_instance = %instance, incident = id, error = %e,
            "cannot record the end of the evaluation");
    }
    notify(&inner, id, &instance, &outcome).await;
    if matches!(outcome, Outcome::FailedOver { .. }) {
        advice::measure_effect(&inner, id, &instance, SystemTime::now());
    }
}

async fn evaluate(
    inner: &Inner,
    id: u64,
    instance: &InstanceId,
    request: Option<&Request>,
) -> Result<Outcome, EngineError> {
    let settings = inner.settings();
    let now = SystemTime::now();
    let force = request.is_some_and(|r| r.force);
    let planned = request.is_some_and(|r| r.planned);

    // 1. Guards.
    let Some(inst) = settings.instances.get(instance) else {
        let hold = Hold::UnknownInstance;
        inner
            .step(id, step("guard", "hold", hold.describe(), json!(null)))
            .await?;
        return Ok(Outcome::Held(hold));
    };
    let datacenters: Vec<DatacenterId> = inst.endpoints.keys().cloned().collect();
    let active = inner
        .deps
        .active
        .get(instance)
        .unwrap_or_else(|| inst.active_dc.clone());
    let cooldown_until = inner
        .state
        .lock()
        .await
        .ledger
        .cooldown_until
        .get(instance)
        .copied();
    let guarded = policy::guard(&GuardInput {
        instance,
        datacenters: Some(&datacenters),
        cooldown_until: if force { None } else { cooldown_until },
        now,
    });
    if let Some(hold) = guarded {
        inner
            .step(id, step("guard", "hold", hold.describe(), json!(null)))
            .await?;
        return Ok(Outcome::Held(hold));
    }
    // An operator's target must be one of the instance's datacenters, and not the active.
    let candidates: Vec<DatacenterId> = match request.and_then(|r| r.target.clone()) {
        Some(t) if !datacenters.contains(&t) => {
            let hold = Hold::UnknownTarget { datacenter: t };
            inner
                .step(id, step("guard", "hold", hold.describe(), json!(null)))
                .await?;
            return Ok(Outcome::Held(hold));
        }
        Some(t) if t == active => {
            inner
                .step(
                    id,
                    step("guard", "hold", Hold::AlreadyActive.describe(), json!(null)),
                )
                .await?;
            return Ok(Outcome::Held(Hold::AlreadyActive));
        }
        Some(t) => vec![active.clone(), t],
        None => datacenters.clone(),
    };
    inner
        .step(
            id,
            step(
                "guard",
                "ok",
                format!("active datacenter {active}"),
                json!({
                    "active": active, "datacenters": datacenters, "force": force,
                }),
            ),
        )
        .await?;

    // Client impact runs beside the confirmation rounds (not for a forced or planned
    // move: the active datacenter's state does not matter there).
    let pending = if force || planned {
        None
    } else {
        advice::start_client_impact(inner, instance, &active)
    };

    // 2. Confirmation rounds.
    let k = if force {
        1
    } else {
        settings.failover.consecutive_threshold.max(1)
    };
    let mut rounds = Vec::new();
    for n in 0..k {
        if n > 0 && !inner.sleep(settings.failover.confirm_interval).await {
            return Ok(stopped("during confirmation"));
        }
        let round = recorded_round(
            inner,
            id,
            inst,
            &candidates,
            format!("round {} of {k}", n + 1),
        )
        .await?;
        let active_good = round
            .probes
            .iter()
            .any(|p| p.datacenter == active && p.up && p.health >= policy::ACTIVE_BAD_BELOW);
        rounds.push(round);
        if active_good && !force && !planned {
            break;
        }
    }

    let clients = advice::finish_client_impact(inner, id, pending).await?;

    // 3-6. The policy, then the AI advisor (alert-driven evaluations only: an operator's
    // request is a person's decision already).
    let requested = request.and_then(|r| r.target.as_ref());
    let verdict = if force {
        forced_verdict(&rounds, &active, requested)
    } else if let (true, Some(target)) = (planned, requested) {
        policy::judge_planned(&rounds, target)
    } else {
        let judged = Judged {
            inst,
            active: &active,
            candidates: &candidates,
            clients: clients.status,
        };
        let Some(verdict) = judge_alert(inner, id, &judged, &mut rounds).await? else {
            return Ok(stopped("while Sentinel was failing over"));
        };
        match (inner.advisors().ai, request, &verdict) {
            (Some(ai), None, Verdict::Failover { .. }) => {
                let ctx = advice::AiContext {
                    id,
                    inst,
                    active: &active,
                    clients: &clients,
                    since: now,
                };
                match advice::consult(inner, &ctx, &ai, &judged, &mut rounds, verdict).await? {
                    Some(v) => v,
                    None => return Ok(stopped("while the AI advice held the failover back")),
                }
            }
            _ => verdict,
        }
    };
    let (target, confidence) = match verdict {
        Verdict::Hold(hold) => {
            inner
                .step(id, step("policy", "hold", hold.describe(), json!(hold)))
                .await?;
            return Ok(Outcome::Held(hold));
        }
        Verdict::Failover { target, confidence } => (target, confidence),
    };
    inner
        .step(
            id,
            step(
                "policy",
                "ok",
                format!("fail over from {active} to {target} (confidence {confidence:.2})"),
                json!({ "from": active, "to": target, "confidence": confidence }),
            ),
        )
        .await?;

    // Mode: an operator's request acts unless --no-failover; alerts act only with
    // auto_failover.
    let acts = !settings.no_failover && (request.is_some() || settings.failover.auto);
    let record = settings.records.get(instance);
    let dns = inner.deps.dns.as_ref();
    let (Some(record), Some(dns), true) = (record, dns, acts) else {
        let why = if !acts {
            "automatic failover is off (auto_failover: false or --no-failover)"
        } else {
            "no DNS record is configured for this instance"
        };
        inner
            .step(
                id,
                step(
                    "plan",
                    "info",
                    format!("would fail over: {why}"),
                    json!(null),
                ),
            )
            .await?;
        return Ok(Outcome::WouldFailOver {
            from: active,
            to: target,
            confidence,
        });
    };
    let Some(value) = record.values.get(&target).cloned() else {
        let detail = format!("no DNS value for datacenter {target}");
        inner
            .step(id, step("plan", "failed", detail.clone(), json!(null)))
            .await?;
        return Ok(Outcome::Failed { detail });
    };

    // 6. Plan and act.
    let plan = act::Plan {
        id,
        instance,
        inst,
        active: &active,
        target: &target,
        confidence,
        record,
        dns: dns.as_ref(),
        value,
        action: if planned { "failback" } else { "failover" },
    };
    act::act(inner, &settings, plan).await
}

/// Probes every candidate datacenter once and records the round.
pub(super) async fn recorded_round(
    inner: &Inner,
    id: u64,
    inst: &crate::model::Instance,
    candidates: &[DatacenterId],
    label: String,
) -> Result<Round, EngineError> {
    let round = probe_round(inner, inst, candidates).await;
    let summary: Vec<String> = round
        .probes
        .iter()
        .map(|p| {
            let state = if p.up { "up" } else { "down" };
            let sentinel = if p.sentinel_failover {
                " (Sentinel failing over)"
            } else {
                ""
            };
            format!("{} {state} {:.2}{sentinel}", p.datacenter, p.health)
        })
        .collect();
    inner
        .step(
            id,
            step(
                "probe_round",
                "info",
                format!("{label}: {}", summary.join(", ")),
                serde_json::to_value(&round).unwrap_or_default(),
            ),
        )
        .await?;
    Ok(round)
}

fn stopped(when: &str) -> Outcome {
    Outcome::Interrupted {
        detail: format!("the agent stopped {when}; nothing was changed"),
    }
}

/// What an alert-driven judgement is about.
pub(super) struct Judged<'a> {
    pub inst: &'a crate::model::Instance,
    pub active: &'a DatacenterId,
    pub candidates: &'a [DatacenterId],
    pub clients: ClientStatus,
}

/// The policy on the rounds so far. While Sentinel is failing over inside the active
/// datacenter, keeps probing (up to `sentinel_failover_wait`) and lets its promotion
/// finish first. `None`: the agent stopped meanwhile.
pub(super) async fn judge_alert(
    inner: &Inner,
    id: u64,
    j: &Judged<'_>,
    rounds: &mut Vec<Round>,
) -> Result<Option<Verdict>, EngineError> {
    let settings = inner.settings();
    let thresholds = Thresholds {
        confidence: settings.failover.confidence_threshold,
        sentinel_wait: settings.failover.sentinel_wait,
    };
    loop {
        let seen_since = rounds.iter().find_map(|r| {
            r.probes
                .iter()
                .any(|p| &p.datacenter == j.active && p.sentinel_failover)
                .then_some(r.at)
        });
        let verdict = policy::judge(
            &Evidence {
                active: j.active,
                datacenters: j.candidates,
                rounds,
                sentinel_seen_for: seen_since
                    .map(|t| SystemTime::now().duration_since(t).unwrap_or_default()),
                clients: j.clients,
            },
            thresholds,
        );
        let Verdict::Hold(hold @ Hold::SentinelFailover { .. }) = &verdict else {
            return Ok(Some(verdict));
        };
        inner
            .step(
                id,
                step("sentinel_wait", "info", hold.describe(), json!(hold)),
            )
            .await?;
        if !inner.sleep(settings.failover.confirm_interval).await {
            return Ok(None);
        }
        let label = format!("round {} (waiting for Sentinel)", rounds.len() + 1);
        rounds.push(recorded_round(inner, id, j.inst, j.candidates, label).await?);
    }
}

/// A forced request: no confirmation, but never a target that is down or unknown.
fn forced_verdict(
    rounds: &[Round],
    active: &DatacenterId,
    target: Option<&DatacenterId>,
) -> Verdict {
    let last = rounds.last();
    let probe =
        |dc: &DatacenterId| last.and_then(|r| r.probes.iter().find(|p| &p.datacenter == dc));
    let chosen = match target {
        Some(t) => probe(t).filter(|p| p.up),
        None => last.and_then(|r| {
            r.probes
                .iter()
                .filter(|p| &p.datacenter != active && p.up)
                .max_by(|a, b| a.health.total_cmp(&b.health))
        }),
    };
    match chosen {
        Some(p) => Verdict::Failover {
            target: p.datacenter.clone(),
            confidence: 1.0,
        },
        None => Verdict::Hold(Hold::NoHealthyTarget),
    }
}
