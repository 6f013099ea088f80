//! After an evaluation: telling people through Alertmanager, and finishing, after a
//! restart, the incidents a previous run left open.

use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};

use super::evaluate::step;
use super::{EngineError, Inner, Settings};
use crate::decision::incident::{Incident, Outcome, Record};
use crate::decision::policy::Hold;
use crate::decision::ports::{AgentAlert, AgentAlertName, RecordValue};
use crate::model::InstanceId;

/// Tells people through Alertmanager; a failure is logged, never fatal.
pub(super) async fn notify(inner: &Inner, id: u64, instance: &InstanceId, outcome: &Outcome) {
    let uid = instance.as_str();
    let alert = match outcome {
        Outcome::FailedOver {
            from,
            to,
            confidence,
        } => AgentAlert::new(
            AgentAlertName::RedisFailoverExecuted,
            uid,
            Some(from.as_str()),
            format!("{uid} failed over from {from} to {to}"),
            format!(
                "DNS now sends {uid}'s clients to {to} (confidence {confidence:.2}, incident {id})."
            ),
        ),
        Outcome::WouldFailOver {
            from,
            to,
            confidence,
        } => AgentAlert::new(
            AgentAlertName::RedisFailoverRecommended,
            uid,
            Some(from.as_str()),
            format!("{uid} should fail over from {from} to {to}"),
            format!(
                "The evidence supports a failover (confidence {confidence:.2}, incident {id}), \
                     but the agent does not act: automatic failover is off or no DNS record is configured."
            ),
        ),
        Outcome::Held(Hold::ActiveRecovered { .. }) | Outcome::Resolved => return,
        Outcome::Held(hold) => AgentAlert::new(
            AgentAlertName::RedisFailoverHeld,
            uid,
            None,
            format!("{uid}: failover held: {}", hold.describe()),
            format!(
                "Incident {id}: the agent did not fail over: {}.",
                hold.describe()
            ),
        ),
        Outcome::Failed { detail } | Outcome::Interrupted { detail } => AgentAlert::new(
            AgentAlertName::RedisFailoverFailed,
            uid,
            None,
            format!("{uid}: failover failed"),
            format!("Incident {id}: {detail}"),
        ),
    };
    let Some(notifier) = &inner.deps.notifier else {
        info!(redis_instance = %instance, incident = id, notice = alert.name.as_str(),
            summary = %alert.summary, "notice (no alertmanager configured)");
        return;
    };
    let mut alert = alert;
    alert.labels.insert("incident".into(), id.to_string());
    if let Some(said) = advisors_said(inner, id).await {
        alert.description.push_str(&format!(" Advisors: {said}."));
    }
    if let Err(e) = notifier.notify(std::slice::from_ref(&alert)).await {
        warn!(redis_instance = %instance, incident = id, error = %e,
            "cannot tell Alertmanager about the decision");
    }
}

/// What the advisors said in an incident, for people: the client impact and the AI
/// advisor's latest consultation with what the guard made of it. `None`: none consulted.
async fn advisors_said(inner: &Inner, id: u64) -> Option<String> {
    let state = inner.state.lock().await;
    let incident = state
        .ledger
        .history
        .iter()
        .rev()
        .find(|i| i.id == id)
        .or_else(|| state.ledger.open.get(&id))?;
    let latest = |name: &str| incident.steps.iter().rev().find(|s| s.name == name);
    let said: Vec<String> = [("client impact", "client_impact"), ("AI", "advisor")]
        .into_iter()
        .filter_map(|(who, step)| latest(step).map(|s| format!("{who}: {}", s.detail)))
        .collect();
    (!said.is_empty()).then(|| said.join("; "))
}

/// Finishes an incident a previous run left open (see `Engine::recover`).
pub(super) async fn recover(inner: &Arc<Inner>, incident: Incident) -> Result<(), EngineError> {
    let settings: Arc<Settings> = inner.settings();
    let id = incident.id;
    let outcome = match (&incident.intent, incident.applied) {
        (Some((from, to)), true) => Outcome::FailedOver {
            from: from.clone(),
            to: to.clone(),
            confidence: confidence_of(&incident),
        },
        (Some((from, to)), false) => {
            let record = settings.records.get(&incident.instance);
            let current = match (record, inner.deps.dns.as_ref()) {
                (Some(r), Some(dns)) => dns.read(&r.record).await.map_err(|e| e.to_string()),
                _ => Err("no DNS record configured".into()),
            };
            let target = record.and_then(|r| {
                r.values
                    .get(to)
                    .map(|v| RecordValue::single(v.clone(), r.ttl))
            });
            match (current, target, record) {
                (Ok(Some(current)), Some(target), Some(r))
                    if current.points_at(&target, r.record.record_type) =>
                {
                    inner
                        .step(
                            id,
                            step(
                                "recovery",
                                "ok",
                                format!(
                                    "after a restart: {} points at {to}; the change was made",
                                    r.record.name
                                ),
                                json!(null),
                            ),
                        )
                        .await?;
                    inner
                        .record(vec![Record::Applied {
                            incident: id,
                            instance: incident.instance.clone(),
                            to: to.clone(),
                            change: None,
                        }])
                        .await?;
                    inner.deps.active.set(&incident.instance, to);
                    Outcome::FailedOver {
                        from: from.clone(),
                        to: to.clone(),
                        confidence: confidence_of(&incident),
                    }
                }
                (Ok(_), _, _) => Outcome::Interrupted {
                    detail: format!(
                        "the agent stopped before DNS moved to {to}; nothing was changed"
                    ),
                },
                (Err(e), _, _) => Outcome::Interrupted {
                    detail: format!(
                        "the agent stopped before confirming the DNS change to {to}, \
                                     and the record cannot be read now ({e}): check it by hand"
                    ),
                },
            }
        }
        (None, _) => Outcome::Interrupted {
            detail: "the agent stopped during the evaluation; nothing was changed".into(),
        },
    };
    inner.close(id, outcome.clone()).await?;
    notify(inner, id, &incident.instance, &outcome).await;
    Ok(())
}

fn confidence_of(incident: &Incident) -> f64 {
    incident
        .steps
        .iter()
        .rev()
        .find(|s| s.name == "policy")
        .and_then(|s| s.evidence.get("confidence"))
        .and_then(|c| c.as_f64())
        .unwrap_or(0.0)
}
