//! What comes in: Alertmanager's deliveries, an operator's requests and acknowledgements.
//!
//! Every entry point runs its work in a task of its own and only awaits that task, so a
//! caller that goes away (a client hang-up, a request timeout) cannot stop it half-way:
//! an incident that was opened always gets its evaluation.
//!
//! Input from outside is bounded here, where the engine keeps it: a candidate naming an
//! instance that is not configured opens nothing (counted, logged at most once per
//! [`UNKNOWN_LOG_EVERY`]); a delivery opens at most `limits.max_incidents_per_delivery`
//! incidents (the rest are counted, logged and answered as `deferred`; Alertmanager
//! sends firing alerts again at its `repeat_interval`); label values kept in incidents
//! are cut to `limits.max_label_bytes`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tracing::{info, warn};

use super::fleet::Leading;
use super::{Engine, EngineError, Settings, runner};
use crate::decision::evaluation::Request;
use crate::decision::incident::{Led, Record, Trigger, cut_label};
use crate::decision::webhook::{AlertStatus, Candidate, Target};
use crate::model::{DatacenterId, InstanceId};

/// At most one log line per this long about candidates naming unknown instances.
pub const UNKNOWN_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a delivery led to, for the webhook's answer.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Submitted {
    /// Incidents opened by this delivery.
    pub opened: Vec<u64>,
    /// Incidents this delivery joined.
    pub joined: Vec<u64>,
    /// Resolved alerts recorded.
    pub resolved: usize,
    /// Candidates that named nothing to evaluate (a datacenter no instance is active in).
    pub unmatched: usize,
    /// Candidates naming an instance that is not configured: ignored.
    pub unknown: usize,
    /// Firing candidates that would have opened an incident beyond
    /// `limits.max_incidents_per_delivery`: not opened now. Alertmanager repeats firing
    /// alerts at its `repeat_interval`, so they come back.
    pub deferred: usize,
    /// In a fleet: firing candidates handed to the leader through the fleet's store.
    pub handed: usize,
    /// In a fleet: firing candidates journaled here, handed to the leader as soon as
    /// the fleet's store takes them.
    pub pending: usize,
}

/// Counts candidates about unknown instances between two log lines.
#[derive(Debug, Default)]
pub(super) struct UnknownTargets {
    last_line: Option<SystemTime>,
    since_line: u64,
}

impl UnknownTargets {
    /// Notes one more; returns how many to report when a line is due at `now`.
    pub(super) fn note(&mut self, now: SystemTime) -> Option<u64> {
        self.since_line += 1;
        let due = self
            .last_line
            .is_none_or(|at| now.duration_since(at).unwrap_or_default() >= UNKNOWN_LOG_EVERY);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.since_line))
    }
}

impl Engine {
    /// Records a delivery's candidates and starts the evaluations they call for. Returns
    /// once everything is on disk; the evaluations go on in the background. The work
    /// completes even if the returned future is dropped.
    pub async fn submit(&self, candidates: &[Candidate]) -> Result<Submitted, EngineError> {
        let engine = self.clone();
        let candidates = candidates.to_vec();
        self.detached(async move { engine.submit_now(&candidates).await })
            .await
    }

    /// An operator's request: the same evaluation, with `force` skipping confirmation and
    /// cooldown. Returns the incident.
    pub async fn request(
        &self,
        instance: &InstanceId,
        target: Option<DatacenterId>,
        force: bool,
        reason: String,
    ) -> Result<u64, EngineError> {
        let engine = self.clone();
        let instance = instance.clone();
        self.detached(async move {
            let max = engine.settings().limits.max_label_bytes;
            let target = target.map(|dc| DatacenterId::new(&cut_label(dc.as_str(), max)));
            let trigger = Trigger {
                source: "api".into(),
                name: cut_label(&reason, max),
                fingerprint: String::new(),
                datacenter: target.clone(),
            };
            let mut out = Submitted::default();
            let request = Request {
                target,
                force,
                planned: false,
            };
            engine
                .start_with(&instance, trigger, Some(request), true, &mut out, None)
                .await?;
            Ok(out
                .opened
                .first()
                .or(out.joined.first())
                .copied()
                .unwrap_or(0))
        })
        .await
    }

    /// Lifts the cooldown of an instance. In a fleet the cooldown is the fleet's: only
    /// the leader lifts it, under its fence.
    pub async fn acknowledge(&self, instance: &InstanceId) -> Result<(), EngineError> {
        if let Some(fleet) = &self.inner.fleet {
            fleet.lift_cooldown(instance).await?;
        }
        let record = Record::Acknowledged {
            instance: instance.clone(),
            at: self.inner.deps.clock.now(),
        };
        self.inner.record(vec![record]).await
    }

    /// Runs `work` in a task of its own: dropping the returned future does not stop it.
    async fn detached<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, EngineError>> + Send + 'static,
    ) -> Result<T, EngineError> {
        self.inner
            .tracker
            .spawn(work)
            .await
            .unwrap_or_else(|e| Err(EngineError::Task(e.to_string())))
    }

    async fn submit_now(&self, candidates: &[Candidate]) -> Result<Submitted, EngineError> {
        let settings = self.settings();
        let limits = settings.limits;
        let max = limits.max_label_bytes;
        let mut out = Submitted::default();
        for c in candidates {
            let trigger = Trigger {
                source: "alert".into(),
                name: cut_label(&c.alertname, max),
                fingerprint: cut_label(&c.fingerprint, max),
                datacenter: c
                    .datacenter
                    .as_deref()
                    .map(|dc| DatacenterId::new(&cut_label(dc, max))),
            };
            let Some(instances) = self.targets(&settings, &c.target) else {
                out.unknown += 1;
                continue;
            };
            if instances.is_empty() {
                out.unmatched += 1;
                continue;
            }
            for instance in instances {
                if c.status == AlertStatus::Resolved {
                    self.resolved(&instance, trigger.clone(), &mut out).await?;
                } else if self.inner.fleet.is_some() {
                    self.hand(&instance, trigger.clone(), &mut out).await?;
                } else {
                    let may_open = out.opened.len() < limits.max_incidents_per_delivery;
                    self.start_with(&instance, trigger.clone(), None, may_open, &mut out, None)
                        .await?;
                }
            }
        }
        if out.deferred > 0 {
            self.inner
                .deps
                .metrics
                .deferred_incidents(out.deferred as u64);
            warn!(
                deferred = out.deferred,
                opened = out.opened.len(),
                max_incidents_per_delivery = limits.max_incidents_per_delivery,
                "delivery would open more incidents than allowed; the rest are not opened now (Alertmanager sends firing alerts again)"
            );
        }
        Ok(out)
    }

    /// The configured instances a candidate is about; `None` for an instance that is not
    /// configured (counted and logged, rate-limited).
    fn targets(&self, settings: &Settings, target: &Target) -> Option<Vec<InstanceId>> {
        match target {
            Target::Instance(uid) => {
                let uid = InstanceId::new(uid);
                if settings.instances.contains_key(&uid) {
                    return Some(vec![uid]);
                }
                self.inner.deps.metrics.unknown_target();
                let due = self
                    .inner
                    .unknown
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .note(self.inner.deps.clock.now());
                if let Some(dropped) = due {
                    let example = cut_label(uid.as_str(), 64);
                    warn!(dropped, example = ?example, every = ?UNKNOWN_LOG_EVERY,
                        "alerts about instances that are not configured are ignored");
                }
                None
            }
            Target::Datacenter(dc) => {
                let dc = DatacenterId::new(dc);
                Some(
                    self.inner
                        .deps
                        .active
                        .all()
                        .into_iter()
                        .filter(|r| r.active == dc && settings.instances.contains_key(&r.instance))
                        .map(|r| r.instance)
                        .collect(),
                )
            }
        }
    }

    /// Joins the instance's open incident, or opens one (when `may_open`; otherwise the
    /// candidate is counted as deferred) and starts its evaluation. In a fleet only the
    /// leader evaluates: `leading` is the term and shared record it evaluates with
    /// (`None`: read now, and refused unless this agent leads).
    pub(super) async fn start_with(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        request: Option<Request>,
        may_open: bool,
        out: &mut Submitted,
        leading: Option<Leading>,
    ) -> Result<(), EngineError> {
        let leading = match (&self.inner.fleet, leading) {
            (Some(fleet), None) => Some(fleet.leading(instance).await?),
            (_, leading) => leading,
        };
        let opened = self
            .open_incident(instance, trigger, may_open, out, leading.as_ref())
            .await?;
        let Some(id) = opened else {
            return Ok(());
        };
        info!(redis_instance = %instance, incident = id, "evaluation started");
        let inner = Arc::clone(&self.inner);
        let instance = instance.clone();
        self.inner.tracker.spawn(async move {
            runner::run(inner, id, instance, request, leading).await;
        });
        Ok(())
    }

    /// Joins the instance's open incident, or opens one; the id of the one opened.
    pub(super) async fn open_incident(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        may_open: bool,
        out: &mut Submitted,
        leading: Option<&Leading>,
    ) -> Result<Option<u64>, EngineError> {
        let state = self.inner.lock_state().await;
        if let Some(open) = state.ledger.open_for(instance) {
            let id = open.id;
            let record = Record::Joined {
                incident: id,
                trigger,
            };
            self.inner.append(state, vec![record]).await?;
            out.joined.push(id);
            return Ok(None);
        }
        if !may_open {
            out.deferred += 1;
            return Ok(None);
        }
        let id = state.ledger.next_id.max(1);
        let led = leading.and_then(|l| {
            let fleet = self.inner.fleet.as_ref()?;
            Some(Led {
                agent: fleet.coordination.agent().to_owned(),
                term: l.term.0,
            })
        });
        let record = Record::Opened {
            incident: id,
            instance: instance.clone(),
            trigger,
            at: self.inner.deps.clock.now(),
            led,
        };
        self.inner.append(state, vec![record]).await?;
        out.opened.push(id);
        Ok(Some(id))
    }

    async fn resolved(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        out: &mut Submitted,
    ) -> Result<(), EngineError> {
        out.resolved += 1;
        let state = self.inner.lock_state().await;
        // Recorded with the running evaluation; never acted on. An evaluation that is
        // still confirming will find the active datacenter answering by itself.
        if let Some(open) = state.ledger.open_for(instance) {
            let record = Record::Joined {
                incident: open.id,
                trigger: Trigger {
                    source: "alert_resolved".into(),
                    ..trigger
                },
            };
            self.inner.append(state, vec![record]).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_targets_are_logged_at_most_once_per_period_with_the_count() {
        let mut u = UnknownTargets::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(u.note(t0), Some(1));
        for i in 1..=5 {
            assert_eq!(u.note(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(u.note(t0 + UNKNOWN_LOG_EVERY), Some(6));
        assert_eq!(u.note(t0 + UNKNOWN_LOG_EVERY), None);
    }
}
