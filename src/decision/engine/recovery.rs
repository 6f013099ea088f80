//! After a restart: finishing the incidents a previous run left open (see
//! `Engine::recover`). Nothing is ever written to DNS here.

use std::sync::Arc;

use serde_json::json;

use super::notify::tell;
use super::{EngineError, Inner, Settings};
use crate::decision::evaluation::notice::{Said, notice};
use crate::decision::incident::{Incident, Outcome, Record, Step, StepName, StepOutcome};
use crate::decision::ports::RecordValue;

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
                    let detail = format!(
                        "after a restart: {} points at {to}; the change was made",
                        r.record.name
                    );
                    let (name, ok) = (StepName::Recovery, StepOutcome::Ok);
                    let at = inner.deps.clock.now();
                    inner
                        .step(id, Step::new(name, ok, detail, json!(null), at))
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
    let mut said = Said::default();
    said.hear(&incident.steps);
    let now = inner.deps.clock.now();
    if let Some(alert) = notice(id, &incident.instance, &outcome, &said, now) {
        tell(inner, id, &incident.instance, alert).await;
    }
    Ok(())
}

fn confidence_of(incident: &Incident) -> f64 {
    incident
        .steps
        .iter()
        .rev()
        .find(|s| s.name == StepName::Policy)
        .and_then(|s| s.evidence.get("confidence"))
        .and_then(|c| c.as_f64())
        .unwrap_or(0.0)
}
