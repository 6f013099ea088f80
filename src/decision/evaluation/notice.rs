//! What people are told when an incident closes: its outcome in words, with what the
//! observers saw and what the advisors said, as the agent's notice through the notifier
//! port. A recovery after a restart is not news, and neither is an incident that
//! resolved itself.

use std::time::SystemTime;

use crate::decision::incident::{Outcome, Step, StepName};
use crate::decision::policy::Hold;
use crate::decision::ports::{AgentAlert, AgentAlertName, Witnesses};
use crate::model::InstanceId;

/// What was said in an incident: by the observers of its latest confirmation round (in
/// a fleet), and by the advisors in the latest `client_impact` and `advisor` steps (the
/// AI advisor's consultation with what the rules made of it). Heard from the steps as
/// recorded, so a notice sent after a restart says the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    observers: Option<String>,
    client_impact: Option<String>,
    ai: Option<String>,
    /// The data-loss check: what it found, and how the figures were found.
    data_loss: Option<(String, String)>,
}

impl Said {
    /// Takes in an incident's steps, in the order they were recorded.
    pub fn hear<'a>(&mut self, steps: impl IntoIterator<Item = &'a Step>) {
        for step in steps {
            match step.name {
                StepName::ProbeRound => {
                    self.observers = step
                        .evidence
                        .get("witnesses")
                        .and_then(|w| serde_json::from_value::<Witnesses>(w.clone()).ok())
                        .map(|w| observers(&w));
                }
                StepName::ClientImpact => self.client_impact = Some(step.detail.clone()),
                StepName::Advisor => self.ai = Some(step.detail.clone()),
                StepName::DataLoss => {
                    let how = step.evidence["estimate"]["detail"]
                        .as_str()
                        .unwrap_or_default();
                    self.data_loss = Some((step.detail.clone(), how.to_owned()));
                }
                _ => {}
            }
        }
    }

    /// For people: `client impact: …; AI: …`. `None`: no advisor was consulted.
    fn describe(&self) -> Option<String> {
        let said: Vec<String> = [("client impact", &self.client_impact), ("AI", &self.ai)]
            .into_iter()
            .filter_map(|(who, detail)| detail.as_ref().map(|d| format!("{who}: {d}")))
            .collect();
        (!said.is_empty()).then(|| said.join("; "))
    }
}

/// The notice of incident `id` of `instance` closing with `outcome`, sent `at`; `None`
/// when the outcome is not told.
pub fn notice(
    id: u64,
    instance: &InstanceId,
    outcome: &Outcome,
    said: &Said,
    at: SystemTime,
) -> Option<AgentAlert> {
    let uid = instance.as_str();
    let mut alert = match outcome {
        Outcome::FailedOver {
            from,
            to,
            confidence,
        } => AgentAlert::new(
            AgentAlertName::RedisFailoverExecuted,
            at,
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
            at,
            uid,
            Some(from.as_str()),
            format!("{uid} should fail over from {from} to {to}"),
            format!(
                "The evidence supports a failover (confidence {confidence:.2}, incident {id}), \
                     but the agent does not act: automatic failover is off or no DNS record is configured."
            ),
        ),
        Outcome::Held(Hold::ActiveRecovered { .. }) | Outcome::Resolved => return None,
        Outcome::Held(hold) => AgentAlert::new(
            AgentAlertName::RedisFailoverHeld,
            at,
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
            at,
            uid,
            None,
            format!("{uid}: failover failed"),
            format!("Incident {id}: {detail}"),
        ),
    };
    alert.labels.insert("incident".into(), id.to_string());
    if let Some(observers) = &said.observers {
        alert.description.push_str(&format!(
            " Observers of the active datacenter in the last confirmation round: {observers}."
        ));
    }
    if let Some((found, how)) = &said.data_loss {
        let found = match outcome {
            // The summary says it already.
            Outcome::Held(Hold::DataLossBudget { .. }) => String::new(),
            _ => format!(" Data: {found}."),
        };
        alert
            .description
            .push_str(&format!("{found} How the figures were found: {how}."));
    }
    if let Some(said) = said.describe() {
        alert.description.push_str(&format!(" Advisors: {said}."));
    }
    Some(alert)
}

/// Who saw the active datacenter down from outside it (what the quorum counts), who saw
/// it answer, and who saw it down from inside it (not counted).
fn observers(w: &Witnesses) -> String {
    let names = |v: &[String]| match v {
        [] => "nobody".to_owned(),
        v => v.join(", "),
    };
    let mut said = format!(
        "down for {} outside it ({} needed), answering for {}",
        names(&w.down),
        w.quorum,
        names(&w.up)
    );
    if !w.inside.is_empty() {
        said.push_str(&format!(
            ", down for {} inside it (not counted)",
            w.inside.join(", ")
        ));
    }
    said
}
