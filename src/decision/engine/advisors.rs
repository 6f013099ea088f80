//! The advisors as the runner uses them (DESIGN.md "Deciding"): the clients' report
//! beside the confirmation rounds, the AI advisor's consultations, and after a failover
//! the measurement of its effect. Each call is counted on `/metrics` and can never stop
//! a decision: what each may change is the evaluation core's to say.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::Inner;
use crate::decision::evaluation::effect::{effect_step, unmeasured};
use crate::decision::evaluation::{CLIENT_IMPACT_WAIT, ClientAnswer};
use crate::decision::incident::{Incident, Ledger, Outcome};
use crate::decision::ports::{AdviceRequest, Advisor, Consultation};
use crate::decision::ports::{AnomalyEvidence, Contributor, RecentDecision};
use crate::decision::ports::{ClientImpact, ClientImpactSource, Window};
use crate::model::{AnomalyState, DatacenterId, EndpointKey, Instance, InstanceId};

/// Earlier decisions sent to the AI advisor.
const RECENT_DECISIONS: usize = 5;
/// Anomaly contributors sent per datacenter.
const TOP_FEATURES: usize = 5;

/// The advisors the configuration enables; both optional.
#[derive(Debug, Clone, Default)]
pub struct Advisors {
    pub client_impact: Option<Arc<dyn ClientImpactSource>>,
    pub ai: Option<Arc<dyn Advisor>>,
}

/// A client impact query running beside the confirmation rounds.
pub(super) struct PendingImpact {
    source: &'static str,
    task: JoinHandle<(ClientImpact, Duration)>,
}

/// Starts the clients' report of `instance` over `window` in the background; `None`
/// when no source is configured.
pub(super) fn ask_clients(
    inner: &Inner,
    source: Option<&Arc<dyn ClientImpactSource>>,
    instance: &InstanceId,
    window: Window,
) -> Option<PendingImpact> {
    let source = Arc::clone(source?);
    let instance = instance.clone();
    let name = source.name();
    let clock = Arc::clone(&inner.deps.clock);
    let task = inner.tracker.spawn(async move {
        let started = clock.now();
        let impact = source.impact(&instance, window).await;
        (
            impact,
            clock.now().duration_since(started).unwrap_or_default(),
        )
    });
    Some(PendingImpact { source: name, task })
}

/// Waits at most [`CLIENT_IMPACT_WAIT`] for the report, and counts it.
pub(super) async fn await_clients(inner: &Inner, pending: Option<PendingImpact>) -> ClientAnswer {
    let Some(PendingImpact { source, mut task }) = pending else {
        return ClientAnswer::TaskFailed("the query was not started".into());
    };
    let metrics = &inner.deps.metrics;
    match tokio::time::timeout(CLIENT_IMPACT_WAIT, &mut task).await {
        Ok(Ok((impact, took))) => {
            metrics.advisor_call(source, impact.label(), took);
            ClientAnswer::Answered(impact)
        }
        Ok(Err(e)) => ClientAnswer::TaskFailed(e.to_string()),
        Err(_) => {
            metrics.advisor_call(source, "late", CLIENT_IMPACT_WAIT);
            ClientAnswer::Late
        }
    }
}

/// The latest anomaly scores of every datacenter of the instance.
pub(super) fn anomalies(inner: &Inner, inst: Option<&Instance>) -> Vec<AnomalyEvidence> {
    let Some(inst) = inst else {
        return Vec::new();
    };
    inst.endpoints
        .keys()
        .map(|dc| anomaly(inner, &inst.uid, dc))
        .collect()
}

/// Asks the AI advisor about incident `id`, counts and logs the answer.
pub(super) async fn consult(
    inner: &Inner,
    advisor: &dyn Advisor,
    request: &AdviceRequest,
    id: u64,
) -> Consultation {
    let consultation = advisor.advise(request).await;
    inner.deps.metrics.advisor_call(
        &consultation.advisor,
        consultation.result_label(),
        consultation.latency,
    );
    let uid = &request.instance;
    if consultation.advice().is_some() {
        info!(redis_instance = %uid, incident = id, advice = %consultation.describe(), "AI advisor consulted");
    } else {
        warn!(redis_instance = %uid, incident = id, advice = %consultation.describe(), "AI advice discarded");
    }
    consultation
}

fn anomaly(inner: &Inner, instance: &InstanceId, dc: &DatacenterId) -> AnomalyEvidence {
    let key = EndpointKey {
        instance: instance.clone(),
        datacenter: dc.clone(),
    };
    let latest = inner
        .deps
        .analysis
        .get(&key)
        .and_then(|a| match &a.anomaly {
            AnomalyState::Ready { latest, .. } => latest.clone(),
            _ => None,
        });
    AnomalyEvidence {
        datacenter: dc.clone(),
        score: latest.as_ref().map(|s| s.score),
        anomalous: latest.as_ref().is_some_and(|s| s.anomalous),
        top_features: latest
            .map(|s| {
                s.contributors
                    .iter()
                    .take(TOP_FEATURES)
                    .map(|(feature, zscore)| Contributor {
                        feature: (*feature).to_owned(),
                        zscore: *zscore,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The instance's latest closed incidents but `current`, newest first, for the AI
/// advisor.
pub(super) fn recent_decisions(
    ledger: &Ledger,
    instance: &InstanceId,
    current: u64,
) -> Vec<RecentDecision> {
    ledger
        .history
        .iter()
        .rev()
        .filter(|i| &i.instance == instance && i.id != current)
        .take(RECENT_DECISIONS)
        .filter_map(|i| {
            let outcome = i.outcome.as_ref()?;
            let detail = match outcome {
                Outcome::FailedOver { from, to, .. } => format!("failed over from {from} to {to}"),
                Outcome::WouldFailOver { from, to, .. } => {
                    format!("recommended a failover from {from} to {to}")
                }
                Outcome::Held(h) => h.describe(),
                Outcome::Failed { detail } | Outcome::Interrupted { detail } => detail.clone(),
                Outcome::Resolved => "the alert resolved".into(),
            };
            Some(RecentDecision {
                at: i.closed.unwrap_or(i.opened),
                outcome: outcome.label().to_owned(),
                detail,
            })
        })
        .collect()
}

/// After a failover at `at`: once `effect_window.1` has passed since `at`, compares the
/// clients' errors after it with those before, and adds the result to the incident. Runs
/// in the background; after a restart [`resume_effects`] starts it again.
pub(super) fn measure_effect(inner: &Arc<Inner>, id: u64, instance: &InstanceId, at: SystemTime) {
    let Some(source) = inner.advisors().client_impact else {
        return;
    };
    let inner2 = Arc::clone(inner);
    let instance = instance.clone();
    inner.tracker.spawn(async move {
        let window = inner2.settings().effect_window;
        let (before, after) = window;
        let now = inner2.deps.clock.now();
        let due = (at + after).duration_since(now).unwrap_or_default();
        if !inner2.sleep(due).await {
            return;
        }
        let started = inner2.deps.clock.now();
        let impact = source.impact(&instance, Window::around(at, before, after)).await;
        let took = inner2.deps.clock.now().duration_since(started);
        inner2
            .deps
            .metrics
            .advisor_call(source.name(), impact.label(), took.unwrap_or_default());
        let step = effect_step(&impact, window, inner2.deps.clock.now());
        info!(redis_instance = %instance, incident = id, effect = step.evidence["effect"].as_str().unwrap_or("unknown"), "{}", step.detail);
        if let Err(e) = inner2.step(id, step).await {
            warn!(redis_instance = %instance, incident = id, error = %e,
                "cannot record the effect of the failover");
        }
    });
}

/// After a restart: measures the effect of every recent failover whose measurement the
/// previous run did not record (it stopped first), each when it falls due.
pub(super) fn resume_effects(inner: &Arc<Inner>, history: &[Incident]) {
    for (id, instance, closed) in unmeasured(history, inner.deps.clock.now()) {
        info!(redis_instance = %instance, incident = id,
            "the effect of this failover was not measured before the restart; measuring it");
        measure_effect(inner, id, &instance, closed);
    }
}
