//! The advisors inside an evaluation (DESIGN.md "Deciding"): the clients' own view of
//! the instance from their logs, and the AI advisor's opinion. Each is recorded as a
//! step, counted on `/metrics`, and can never stop a decision: whatever either does
//! (fail, stall, lie), the evaluation goes on with what the probes say.
//!
//! - Client impact starts with the evaluation and runs beside the confirmation rounds;
//!   the policy reads its conclusion ([`ClientStatus`]) and the AI advisor its numbers.
//! - The AI advisor is asked only when an alert-driven evaluation's policy supports a
//!   failover (advice can never start one, so asking otherwise would only cost money),
//!   and `advisors::ai::guard` decides what the answer may change.
//! - After a failover, the clients' error rates before and after it are compared once
//!   [`EFFECT_AFTER`] has passed, and the result is added to the incident; a restart
//!   picks up the measurements the previous run left undone ([`resume_effects`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::evaluate::{Judged, judge_alert, recorded_round, step};
use super::{EngineError, Inner};
use crate::advisors::ai::guard::{self, Decision, Rules};
use crate::decision::incident::{Incident, Outcome};
use crate::decision::policy::{ClientStatus, Hold, Round, Verdict};
use crate::decision::ports::{
    AdviceRequest, Advisor, AnomalyEvidence, ClientImpact, ClientImpactSource,
    ClientVerdict as Clients, Consultation, Contributor, RecentDecision, RoundEvidence, Window,
};
use crate::model::{AnomalyState, DatacenterId, EndpointKey, EndpointStatus, Instance, InstanceId};

/// How long an evaluation waits for the client impact once its confirmation rounds are
/// done (the query started with the evaluation). Past it the clients are unknown and
/// the query finishes in the background.
pub const CLIENT_IMPACT_WAIT: Duration = Duration::from_secs(5);
/// The client logs a decision reads: a recent period of at most 5 minutes (see
/// `start_client_impact`) against the 30 minutes before it.
pub const DECISION_WINDOW: (Duration, Duration) =
    (Duration::from_secs(5 * 60), Duration::from_secs(30 * 60));
/// After a failover: the error rate over this long after it...
pub const EFFECT_AFTER: Duration = Duration::from_secs(10 * 60);
/// ...against this long before it.
pub const EFFECT_BEFORE: Duration = Duration::from_secs(15 * 60);
/// After a restart, failovers closed longer ago than this are not measured any more.
pub const EFFECT_RESUME_WITHIN: Duration = Duration::from_secs(24 * 60 * 60);
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

/// What the evaluation learnt from the clients.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientView {
    pub status: ClientStatus,
    /// The report for the AI advisor; `null` when unknown or not configured.
    pub report: Value,
}

/// Starts the client impact query of an evaluation, if a source is configured.
///
/// The clients' lines that matter are those written since the agent lost the active
/// endpoint: "as usual" must mean the clients reached it while the agent could not.
/// Lines from before would drown a fresh outage in successes, and a hang that slows the
/// clients to a few errors a second would look like a partition. So while the
/// collector's rounds of the active endpoint fail, the recent period starts when the
/// first of them failed (at most [`DECISION_WINDOW`]`.0` ago); otherwise (the agent
/// still reaches it: a brownout) it is the last [`DECISION_WINDOW`]`.0`. Either way it
/// ends now, so no answer cached from before the outage is used. Too few lines in a
/// short period are "inconclusive", which changes nothing.
pub(super) fn start_client_impact(
    inner: &Inner,
    instance: &InstanceId,
    active: &DatacenterId,
) -> Option<PendingImpact> {
    let source = inner.advisors().client_impact?;
    let now = SystemTime::now();
    let key = EndpointKey {
        instance: instance.clone(),
        datacenter: active.clone(),
    };
    let recent = lost_since(inner.deps.store.get(&key).as_deref(), now)
        .map_or(DECISION_WINDOW.0, |d| d.min(DECISION_WINDOW.0));
    let window = Window {
        recent,
        baseline: DECISION_WINDOW.1,
        end: Some(now),
    };
    let instance = instance.clone();
    let name = source.name();
    let task = inner.tracker.spawn(async move {
        let started = tokio::time::Instant::now();
        let impact = source.impact(&instance, window).await;
        (impact, started.elapsed())
    });
    Some(PendingImpact { source: name, task })
}

/// How long ago the agent found it had lost the endpoint, when its latest round failed.
fn lost_since(status: Option<&EndpointStatus>, now: SystemTime) -> Option<Duration> {
    let status = status?;
    let failed = status.last_round.as_ref()?.error.is_some();
    if !failed {
        return None;
    }
    Some(match status.failing_since {
        Some(at) => now.duration_since(at).unwrap_or_default(),
        None => DECISION_WINDOW.0,
    })
}

/// Waits (at most [`CLIENT_IMPACT_WAIT`]) for the query, counts and records it.
pub(super) async fn finish_client_impact(
    inner: &Inner,
    id: u64,
    pending: Option<PendingImpact>,
) -> Result<ClientView, EngineError> {
    let Some(PendingImpact { source, mut task }) = pending else {
        return Ok(ClientView::default());
    };
    let impact = match tokio::time::timeout(CLIENT_IMPACT_WAIT, &mut task).await {
        Ok(Ok((impact, took))) => {
            inner
                .deps
                .metrics
                .advisor_call(source, impact.label(), took);
            impact
        }
        Ok(Err(e)) => ClientImpact::unknown(format!("the query task failed: {e}")),
        Err(_) => {
            inner
                .deps
                .metrics
                .advisor_call(source, "late", CLIENT_IMPACT_WAIT);
            ClientImpact::unknown(format!(
                "no answer within the decision's {} s",
                CLIENT_IMPACT_WAIT.as_secs()
            ))
        }
    };
    let status = match impact.verdict() {
        Some(Clients::Failing) => ClientStatus::Failing,
        Some(Clients::AsUsual) => ClientStatus::Normal,
        Some(Clients::Inconclusive) | None => ClientStatus::Unknown,
    };
    let report = match &impact {
        ClientImpact::Known(r) => serde_json::to_value(r).unwrap_or_default(),
        ClientImpact::Unknown { .. } => Value::Null,
    };
    inner
        .step(
            id,
            step(
                "client_impact",
                "info",
                format!("{source}: {}", impact.describe()),
                json!({ "advisor": source, "clients": status, "impact": impact }),
            ),
        )
        .await?;
    Ok(ClientView { status, report })
}

/// What the evaluation does after asking the AI advisor.
enum Next {
    /// The verdict to act on.
    Decide(Verdict),
    /// Probe another round after `confirm_interval`, judge again, and ask again.
    Probe,
}

/// Asks the AI advisor about the policy's failover until the guard lets the evaluation
/// decide: probing another round after `confirm_interval` and judging it again whenever
/// the advice holds the failover back or awaits confirmation. `None`: the agent stopped
/// meanwhile.
pub(super) async fn consult(
    inner: &Inner,
    ctx: &AiContext<'_>,
    ai: &Arc<dyn Advisor>,
    judged: &Judged<'_>,
    rounds: &mut Vec<Round>,
    mut verdict: Verdict,
) -> Result<Option<Verdict>, EngineError> {
    let settings = inner.settings();
    let f = &settings.failover;
    // The guard bounds the loop (ai_max_hold, the confirmation count); this bounds it
    // again, should the guard ever be wrong.
    let bound = settings.ai_max_hold.as_millis() / f.confirm_interval.as_millis().max(1)
        + u128::from(f.ai_consecutive_recommendations)
        + 5;
    let mut probed = 0u128;
    let mut last_effect = None;
    loop {
        match advise(inner, ctx, ai, rounds, &verdict, &mut last_effect).await? {
            Next::Decide(v) => return Ok(Some(v)),
            Next::Probe if probed >= bound => {
                let detail = format!(
                    "the advice kept the decision waiting past {probed} rounds; the policy decides"
                );
                inner
                    .step(ctx.id, step("advisor", "info", detail, json!(null)))
                    .await?;
                return Ok(Some(verdict));
            }
            Next::Probe => probed += 1,
        }
        if !inner.sleep(f.confirm_interval).await {
            return Ok(None);
        }
        let label = format!("round {} (AI advice)", rounds.len() + 1);
        rounds.push(recorded_round(inner, ctx.id, ctx.inst, judged.candidates, label).await?);
        match judge_alert(inner, ctx.id, judged, rounds).await? {
            None => return Ok(None),
            Some(v @ Verdict::Hold(_)) => return Ok(Some(v)),
            Some(v) => verdict = v,
        }
    }
}

/// What one consultation needs besides the rounds and the verdict.
pub(super) struct AiContext<'a> {
    pub id: u64,
    pub inst: &'a Instance,
    pub active: &'a DatacenterId,
    pub clients: &'a ClientView,
    /// When the evaluation started: the earliest the outage is known to have run.
    pub since: SystemTime,
}

/// Asks the AI advisor about the policy's failover (or reuses its latest answer, as the
/// rate limit says), combines the answer with the verdict under the guard's rules, and
/// records what came of it.
async fn advise(
    inner: &Inner,
    ctx: &AiContext<'_>,
    advisor: &Arc<dyn Advisor>,
    rounds: &[Round],
    verdict: &Verdict,
    last_effect: &mut Option<String>,
) -> Result<Next, EngineError> {
    let settings = inner.settings();
    let f = &settings.failover;
    let rules = Rules {
        min_confidence: f.ai_confidence,
        consecutive: f.ai_consecutive_recommendations,
        max_hold: settings.ai_max_hold,
    };
    let request = request(inner, ctx, rounds, verdict, f.confidence_threshold).await;
    let uid = &ctx.inst.uid;
    let now = SystemTime::now();
    let permit = {
        let mut book = inner.advice();
        let history = book.entry(uid);
        history.observe(&request, ctx.since);
        history.permit(&request.fingerprint(), now, &rules)
    };
    let called = if permit.allows_call() {
        let consultation = advisor.advise(&request).await;
        inner.deps.metrics.advisor_call(
            &consultation.advisor,
            consultation.result_label(),
            consultation.latency,
        );
        log_consultation(uid, ctx.id, &consultation);
        inner.advice().entry(uid).record(Some(ctx.id), consultation);
        true
    } else {
        false
    };
    let now = SystemTime::now();
    let (combined, latest) = {
        let mut book = inner.advice();
        let history = book.entry(uid);
        let latest = history.latest().cloned();
        let streak = history.streak(now, rules.min_confidence);
        let situation = history.situation(&request, now);
        let combined = guard::combine(verdict, latest.as_ref(), streak, &situation, &rules);
        if latest.is_some() {
            history.note_effect(combined.effect.clone());
        }
        (combined, latest)
    };
    let effect = combined.effect.describe();
    if called || last_effect.as_deref() != Some(effect.as_str()) {
        let said = latest.as_ref().map_or_else(
            || "not consulted".to_owned(),
            |c| {
                let reused = if called {
                    ""
                } else {
                    " (earlier answer reused: rate limit)"
                };
                format!("{}{reused}", c.describe())
            },
        );
        let outcome = if combined.effect.counted() {
            "hold"
        } else {
            "info"
        };
        inner
            .step(
                ctx.id,
                step(
                    "advisor",
                    outcome,
                    format!("{said}; {effect}"),
                    json!({
                        "consultation": latest,
                        "effect": combined.effect,
                        "counted": combined.effect.counted(),
                        "called": called,
                    }),
                ),
            )
            .await?;
        *last_effect = Some(effect);
    }
    Ok(match combined.decision {
        Decision::Policy(v) => Next::Decide(v),
        Decision::AdvisedHold {
            target,
            confidence,
            wait: None,
        } => Next::Decide(Verdict::Hold(Hold::Advised {
            target,
            confidence,
            advice_confidence: latest
                .as_ref()
                .and_then(|c| c.advice())
                .map_or(0.0, |a| a.confidence),
        })),
        Decision::AdvisedHold { wait: Some(_), .. } | Decision::ConsultAgain => Next::Probe,
    })
}

fn log_consultation(instance: &InstanceId, id: u64, c: &Consultation) {
    if c.advice().is_some() {
        info!(redis_instance = %instance, incident = id, advice = %c.describe(), "AI advisor consulted");
    } else {
        warn!(redis_instance = %instance, incident = id, advice = %c.describe(), "AI advice discarded");
    }
}

/// The evidence sent: the last `K` rounds, anomaly scores, client impact, earlier
/// decisions.
async fn request(
    inner: &Inner,
    ctx: &AiContext<'_>,
    rounds: &[Round],
    verdict: &Verdict,
    threshold: f64,
) -> AdviceRequest {
    let keep = inner.settings().failover.consecutive_threshold.max(1) as usize;
    let rounds: Vec<RoundEvidence> = rounds
        .iter()
        .skip(rounds.len().saturating_sub(keep))
        .map(RoundEvidence::from)
        .collect();
    let datacenters: Vec<DatacenterId> = ctx.inst.endpoints.keys().cloned().collect();
    let anomalies = datacenters
        .iter()
        .map(|dc| anomaly(inner, &ctx.inst.uid, dc))
        .collect();
    AdviceRequest {
        instance: ctx.inst.uid.clone(),
        active_datacenter: ctx.active.clone(),
        datacenters,
        at: SystemTime::now(),
        rounds,
        anomalies,
        clients: ctx.clients.status,
        client_impact: ctx.clients.report.clone(),
        policy: verdict.clone(),
        threshold,
        recent_decisions: recent_decisions(inner, &ctx.inst.uid, ctx.id).await,
    }
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

async fn recent_decisions(
    inner: &Inner,
    instance: &InstanceId,
    current: u64,
) -> Vec<RecentDecision> {
    let state = inner.state.lock().await;
    state
        .ledger
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

/// After a failover at `at`: once [`EFFECT_AFTER`] has passed since `at`, compares the
/// clients' errors after it with those before, and adds the result to the incident. Runs
/// in the background; after a restart [`resume_effects`] starts it again.
pub(super) fn measure_effect(inner: &Arc<Inner>, id: u64, instance: &InstanceId, at: SystemTime) {
    let Some(source) = inner.advisors().client_impact else {
        return;
    };
    let inner2 = Arc::clone(inner);
    let instance = instance.clone();
    inner.tracker.spawn(async move {
        let (before, after) = inner2.settings().effect_window;
        let due = (at + after)
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if !inner2.sleep(due).await {
            return;
        }
        let started = tokio::time::Instant::now();
        let impact = source.impact(&instance, Window::around(at, before, after)).await;
        inner2
            .deps
            .metrics
            .advisor_call(source.name(), impact.label(), started.elapsed());
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
        info!(redis_instance = %instance, incident = id, effect = outcome, "{detail}");
        let record = step(
            "failover_effect",
            "info",
            detail,
            json!({ "effect": outcome, "impact": impact }),
        );
        if let Err(e) = inner2.step(id, record).await {
            warn!(redis_instance = %instance, incident = id, error = %e,
                "cannot record the effect of the failover");
        }
    });
}

/// After a restart: measures the effect of every recent failover whose measurement the
/// previous run did not record (it stopped first), each when it falls due. A failover
/// closed more than [`EFFECT_RESUME_WITHIN`] ago is left unmeasured.
pub(super) fn resume_effects(inner: &Arc<Inner>, history: &[Incident]) {
    let now = SystemTime::now();
    for incident in history {
        let (Some(Outcome::FailedOver { .. }), Some(closed)) = (&incident.outcome, incident.closed)
        else {
            continue;
        };
        let measured = incident.steps.iter().any(|s| s.name == "failover_effect");
        let recent = now.duration_since(closed).unwrap_or_default() <= EFFECT_RESUME_WITHIN;
        if !measured && recent {
            info!(redis_instance = %incident.instance, incident = incident.id,
                "the effect of this failover was not measured before the restart; measuring it");
            measure_effect(inner, incident.id, &incident.instance, closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CollectError, ErrorKind, Round as CollectRound};
    use std::time::Instant;

    fn status(failing_for: Option<u64>, now: SystemTime) -> EndpointStatus {
        let mut s = EndpointStatus::new(
            EndpointKey::new("app", "a"),
            1,
            "127.0.0.1:6379".into(),
            Duration::from_secs(1),
        );
        s.failing_since = failing_for.map(|ago| now - Duration::from_secs(ago));
        s.last_round = Some(CollectRound {
            finished: Instant::now(),
            at: now,
            duration: Duration::from_millis(1),
            error: failing_for.map(|_| CollectError {
                kind: ErrorKind::Connect,
                message: "connection refused".into(),
            }),
        });
        s
    }

    #[test]
    fn the_clients_are_read_from_when_the_agent_lost_the_endpoint() {
        let now = SystemTime::now();
        // The first failed round ended 8 s ago: read the 8 s since, not the time since
        // the last success (the clients' successes before the fault are not evidence).
        assert_eq!(
            lost_since(Some(&status(Some(8), now)), now),
            Some(Duration::from_secs(8))
        );
        // Failing, with no start known: the whole recent period.
        let mut unknown = status(Some(8), now);
        unknown.failing_since = None;
        assert_eq!(lost_since(Some(&unknown), now), Some(DECISION_WINDOW.0));
        // Still reached (a brownout), or not collected yet: the default period.
        assert_eq!(lost_since(Some(&status(None, now)), now), None);
        assert_eq!(lost_since(None, now), None);
    }
}
