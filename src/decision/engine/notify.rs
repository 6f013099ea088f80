//! After an evaluation: telling people through Alertmanager what it decided, with what
//! the advisors said.

use tracing::{info, warn};

use super::Inner;
use crate::decision::incident::{Outcome, StepName};
use crate::decision::policy::Hold;
use crate::decision::ports::{AgentAlert, AgentAlertName};
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
            inner.deps.clock.now(),
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
            inner.deps.clock.now(),
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
            inner.deps.clock.now(),
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
            inner.deps.clock.now(),
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
    let latest = |name: StepName| incident.steps.iter().rev().find(|s| s.name == name);
    let said: Vec<String> = [
        ("client impact", StepName::ClientImpact),
        ("AI", StepName::Advisor),
    ]
    .into_iter()
    .filter_map(|(who, step)| latest(step).map(|s| format!("{who}: {}", s.detail)))
    .collect();
    (!said.is_empty()).then(|| said.join("; "))
}
