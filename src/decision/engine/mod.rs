//! The decision engine: takes failover candidates from Alertmanager's webhook (or an
//! operator), runs one evaluation per instance at a time, and records every step in the
//! journal before acting on it.
//!
//! Deliveries that arrive while an instance is being evaluated join that evaluation, so
//! Alertmanager's retries and repeats, however many and however concurrent, lead to at
//! most one DNS change. The journal is written before the caller is answered: an
//! acknowledged delivery is never lost, and a restart finds every incident it left open.

mod act;
mod advice;
mod aftermath;
mod evaluate;
mod failback;
mod probes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use thiserror::Error;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use advice::{Advisors, CLIENT_IMPACT_WAIT, DECISION_WINDOW, EFFECT_AFTER, EFFECT_BEFORE};
pub use failback::WATCH_EVERY;

use super::counters::DecisionMetrics;
use super::incident::{Incident, Ledger, Outcome, Record, Step, Trigger};
use super::journal::{Journal, JournalError, JournalLimits};
use super::webhook::{AlertStatus, Candidate, Target};
use crate::actuators::alertmanager::Notifier;
use crate::actuators::dns::{DnsProvider, RecordRef, SwitchPolicy};
use crate::advisors::ai::history::{AdviceBook, Recorded};
use crate::advisors::client_impact::{ClientImpact, Window};
use crate::collector::probe::Prober;
use crate::config::{Config, FailoverSettings};
use crate::model::{
    ActiveDatacenters, AnalysisStore, DatacenterId, Instance, InstanceId, SnapshotStore,
};

#[derive(Debug, Error)]
pub enum EngineError {
    /// The journal could not record the event: the caller should retry later.
    #[error("the decision journal cannot record: {0}")]
    Journal(#[from] JournalError),
    /// A journal write panicked earlier; nothing more is recorded until a restart.
    #[error("the decision journal was lost by an earlier failure; restart the agent")]
    JournalLost,
}

/// What the engine acts through.
#[derive(Debug, Clone)]
pub struct Deps {
    pub prober: Arc<dyn Prober>,
    /// `None`: no `dns_provider` configured; evaluations end in a recommendation.
    pub dns: Option<Arc<dyn DnsProvider>>,
    /// `None`: no `alertmanager` configured; notices are only logged.
    pub notifier: Option<Arc<dyn Notifier>>,
    pub analysis: Arc<AnalysisStore>,
    /// The collector's latest rounds: when the agent last reached each endpoint.
    pub store: Arc<SnapshotStore>,
    pub active: Arc<ActiveDatacenters>,
    pub metrics: DecisionMetrics,
    /// Client impact and AI advice; none configured: the probes decide alone.
    pub advisors: Advisors,
}

/// The DNS record of one instance and its value per datacenter.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub record: RecordRef,
    pub ttl: u32,
    pub values: BTreeMap<DatacenterId, String>,
}

/// The part of the configuration the engine reads, replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct Settings {
    pub instances: BTreeMap<InstanceId, Instance>,
    pub failover: FailoverSettings,
    pub records: BTreeMap<InstanceId, InstanceRecord>,
    /// `--no-failover`: recommend only, whatever `auto_failover` says.
    pub no_failover: bool,
    pub switch: SwitchPolicy,
    /// `ai_max_hold`: the longest AI advice may hold back a hard outage.
    pub ai_max_hold: Duration,
    /// After a failover, client errors this long before it are compared with this long
    /// after it: `(before, after)`.
    pub effect_window: (Duration, Duration),
}

impl Settings {
    pub fn from_config(config: &Config, no_failover: bool) -> Settings {
        let instances: BTreeMap<InstanceId, Instance> = config
            .instances
            .iter()
            .map(|i| (i.uid.clone(), i.clone()))
            .collect();
        let mut records = BTreeMap::new();
        if let Some(dns) = &config.dns {
            for r in &dns.records {
                let Some(instance) = config.instances.iter().find(|i| i.name == r.instance_name)
                else {
                    continue;
                };
                let Ok(record) = RecordRef::from_config(dns, r) else {
                    continue;
                };
                let values = instance
                    .endpoints
                    .iter()
                    .map(|(dc, ep)| {
                        let value = r.values.get(dc).cloned().unwrap_or_else(|| ep.host.clone());
                        (dc.clone(), value)
                    })
                    .collect();
                records.insert(
                    instance.uid.clone(),
                    InstanceRecord {
                        record,
                        ttl: r.ttl,
                        values,
                    },
                );
            }
        }
        Settings {
            instances,
            failover: config.failover.clone(),
            records,
            no_failover,
            switch: SwitchPolicy::default(),
            ai_max_hold: config
                .azure_openai
                .as_ref()
                .map_or_else(crate::config::default_ai_max_hold, |a| a.max_hold),
            effect_window: (EFFECT_BEFORE, EFFECT_AFTER),
        }
    }

    /// Acting is allowed: automatic failover on and not overridden.
    pub fn acts(&self) -> bool {
        self.failover.auto && !self.no_failover
    }
}

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
}

/// The ledger and the journal, changed together under one lock.
struct State {
    ledger: Ledger,
    /// Taken out while a blocking append runs.
    journal: Option<Journal>,
}

pub(crate) struct Inner {
    settings: std::sync::RwLock<Arc<Settings>>,
    deps: Deps,
    state: Mutex<State>,
    /// The advisors in use: those of `deps` until [`Engine::set_advisors`].
    advisors: std::sync::RwLock<Advisors>,
    /// Per instance, the AI advisor's consultations; never held across a call.
    advice: std::sync::Mutex<AdviceBook>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

/// Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the journal in `state_dir`, replays it, and finishes what a previous run left
    /// open (see [`Engine::recover`]).
    pub async fn open(
        state_dir: &std::path::Path,
        settings: Settings,
        deps: Deps,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Engine, EngineError> {
        let dir = state_dir.to_owned();
        let (journal, entries) = tokio::task::spawn_blocking(move || {
            Journal::open::<Record>(&dir, JournalLimits::default())
        })
        .await
        .expect("the journal task does not panic")?;
        let mut ledger = Ledger::default();
        for entry in &entries {
            ledger.apply(&entry.record, settings.failover.cooldown);
        }
        for (instance, dc) in &ledger.active {
            deps.active.set(instance, dc);
        }
        let advisors = deps.advisors.clone();
        let engine = Engine {
            inner: Arc::new(Inner {
                settings: std::sync::RwLock::new(Arc::new(settings)),
                deps,
                state: Mutex::new(State {
                    ledger,
                    journal: Some(journal),
                }),
                advisors: std::sync::RwLock::new(advisors),
                advice: std::sync::Mutex::new(AdviceBook::default()),
                tracker,
                cancel,
            }),
        };
        engine.recover().await?;
        Ok(engine)
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.inner.settings()
    }

    /// Takes a reloaded configuration; running evaluations finish with the old one.
    pub fn reload(&self, settings: Settings) {
        self.inner
            .advice()
            .retain(|i| settings.instances.contains_key(i));
        *self
            .inner
            .settings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(settings);
    }

    /// Records a delivery's candidates and starts the evaluations they call for. Returns
    /// once everything is on disk; the evaluations go on in the background.
    pub async fn submit(&self, candidates: &[Candidate]) -> Result<Submitted, EngineError> {
        let settings = self.settings();
        let mut out = Submitted::default();
        for c in candidates {
            let trigger = Trigger {
                source: "alert".into(),
                name: c.alertname.clone(),
                fingerprint: c.fingerprint.clone(),
                datacenter: c.datacenter.as_deref().map(DatacenterId::new),
            };
            let instances = self.targets(&settings, &c.target);
            if instances.is_empty() {
                out.unmatched += 1;
                continue;
            }
            for instance in instances {
                if c.status == AlertStatus::Resolved {
                    self.resolved(&instance, trigger.clone(), &mut out).await?;
                } else {
                    self.start(&instance, trigger.clone(), &mut out).await?;
                }
            }
        }
        Ok(out)
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
        let trigger = Trigger {
            source: "api".into(),
            name: reason,
            fingerprint: String::new(),
            datacenter: target.clone(),
        };
        let mut out = Submitted::default();
        let request = evaluate::Request {
            target,
            force,
            planned: false,
        };
        self.start_with(instance, trigger, Some(request), &mut out)
            .await?;
        Ok(out
            .opened
            .first()
            .or(out.joined.first())
            .copied()
            .unwrap_or(0))
    }

    /// Lifts the cooldown of an instance.
    pub async fn acknowledge(&self, instance: &InstanceId) -> Result<(), EngineError> {
        let record = Record::Acknowledged {
            instance: instance.clone(),
            at: SystemTime::now(),
        };
        self.inner.record(vec![record]).await
    }

    /// The newest closed incidents first, then the open ones.
    pub async fn history(&self, limit: usize) -> Vec<Incident> {
        let state = self.inner.state.lock().await;
        let mut out: Vec<Incident> = state.ledger.open.values().cloned().collect();
        out.extend(state.ledger.history.iter().rev().cloned());
        out.truncate(limit);
        out
    }

    pub async fn incident(&self, id: u64) -> Option<Incident> {
        let state = self.inner.state.lock().await;
        state
            .ledger
            .open
            .get(&id)
            .cloned()
            .or_else(|| state.ledger.history.iter().find(|i| i.id == id).cloned())
    }

    /// The client impact analysis of an instance (the last 5 minutes against the 30
    /// before, cached `elk.cache_ttl`); `None` when no source is configured.
    pub async fn client_errors(&self, instance: &InstanceId) -> Option<ClientImpact> {
        let source = self.inner.advisors().client_impact?;
        Some(source.impact(instance, Window::default()).await)
    }

    /// Which advisors are configured: (client impact, AI).
    pub fn advisors(&self) -> (bool, bool) {
        let a = self.inner.advisors();
        (a.client_impact.is_some(), a.ai.is_some())
    }

    /// Replaces the advisors (a reload changed `elk` or `azure_openai`); running
    /// evaluations finish with the old ones.
    pub fn set_advisors(&self, advisors: Advisors) {
        *self
            .inner
            .advisors
            .write()
            .unwrap_or_else(|e| e.into_inner()) = advisors;
    }

    /// The AI advisor's consultations about an instance, newest first.
    pub fn ai_recommendations(&self, instance: &InstanceId, limit: usize) -> Vec<Recorded> {
        self.inner
            .advice()
            .get(instance)
            .map(|h| h.recent().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// When the AI advisor's outage clock for an instance started, if it runs.
    pub fn ai_outage_since(&self, instance: &InstanceId) -> Option<String> {
        self.inner
            .advice()
            .get(instance)
            .and_then(|h| h.outage_since())
    }

    /// The end of an instance's cooldown, if one runs.
    pub async fn cooldown_until(&self, instance: &InstanceId) -> Option<SystemTime> {
        let state = self.inner.state.lock().await;
        state.ledger.cooldown_until.get(instance).copied()
    }

    /// The instances a candidate is about.
    fn targets(&self, settings: &Settings, target: &Target) -> Vec<InstanceId> {
        match target {
            Target::Instance(uid) => vec![InstanceId::new(uid)],
            Target::Datacenter(dc) => {
                let dc = DatacenterId::new(dc);
                self.inner
                    .deps
                    .active
                    .all()
                    .into_iter()
                    .filter(|r| r.active == dc && settings.instances.contains_key(&r.instance))
                    .map(|r| r.instance)
                    .collect()
            }
        }
    }

    async fn start(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        out: &mut Submitted,
    ) -> Result<(), EngineError> {
        self.start_with(instance, trigger, None, out).await
    }

    async fn start_with(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        request: Option<evaluate::Request>,
        out: &mut Submitted,
    ) -> Result<(), EngineError> {
        let mut state = self.inner.state.lock().await;
        if let Some(open) = state.ledger.open_for(instance) {
            let id = open.id;
            let record = Record::Joined {
                incident: id,
                trigger,
            };
            self.inner.append(&mut state, vec![record]).await?;
            out.joined.push(id);
            return Ok(());
        }
        let id = state.ledger.next_id.max(1);
        let record = Record::Opened {
            incident: id,
            instance: instance.clone(),
            trigger,
            at: SystemTime::now(),
        };
        self.inner.append(&mut state, vec![record]).await?;
        drop(state);
        out.opened.push(id);
        info!(redis_instance = %instance, incident = id, "evaluation started");
        let inner = Arc::clone(&self.inner);
        let instance = instance.clone();
        self.inner.tracker.spawn(async move {
            evaluate::run(inner, id, instance, request).await;
        });
        Ok(())
    }

    async fn resolved(
        &self,
        instance: &InstanceId,
        trigger: Trigger,
        out: &mut Submitted,
    ) -> Result<(), EngineError> {
        out.resolved += 1;
        let mut state = self.inner.state.lock().await;
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
            self.inner.append(&mut state, vec![record]).await?;
        }
        Ok(())
    }

    /// Finishes incidents a previous run left open. One whose DNS intent was recorded is
    /// checked against the provider: if the record points at the target the change was
    /// made and the incident completes as a failover; otherwise nothing changed and it
    /// closes as interrupted. Nothing is ever written to DNS here: a still-firing alert
    /// comes back within Alertmanager's repeat interval and starts a fresh evaluation.
    /// Recent failovers whose effect on the clients was not measured yet are measured
    /// when due.
    async fn recover(&self) -> Result<(), EngineError> {
        let open: Vec<Incident> = {
            let state = self.inner.state.lock().await;
            state.ledger.open.values().cloned().collect()
        };
        for incident in open {
            aftermath::recover(&self.inner, incident).await?;
        }
        let history: Vec<Incident> = {
            let state = self.inner.state.lock().await;
            state.ledger.history.iter().cloned().collect()
        };
        advice::resume_effects(&self.inner, &history);
        Ok(())
    }
}

impl Inner {
    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn advisors(&self) -> Advisors {
        self.advisors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn advice(&self) -> std::sync::MutexGuard<'_, AdviceBook> {
        self.advice.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends records durably, then applies them to the ledger.
    async fn record(&self, records: Vec<Record>) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        self.append(&mut state, records).await
    }

    async fn append(&self, state: &mut State, records: Vec<Record>) -> Result<(), EngineError> {
        let Some(mut journal) = state.journal.take() else {
            return Err(EngineError::JournalLost);
        };
        let to_write = records.clone();
        let (journal, result) = tokio::task::spawn_blocking(move || {
            let result = to_write
                .iter()
                .try_for_each(|r| journal.append(r).map(drop));
            (journal, result)
        })
        .await
        .expect("the journal task does not panic");
        state.journal = Some(journal);
        result?;
        let cooldown = self.settings().failover.cooldown;
        for r in &records {
            state.ledger.apply(r, cooldown);
        }
        self.compact_if_needed(state).await;
        Ok(())
    }

    /// Keeps the journal bounded: rewrites it as the ledger's snapshot when it grew.
    async fn compact_if_needed(&self, state: &mut State) {
        let needs = state.journal.as_ref().is_some_and(|j| j.needs_compaction());
        if !needs {
            return;
        }
        let live = state.ledger.snapshot();
        let Some(mut journal) = state.journal.take() else {
            return;
        };
        let (journal, result) = tokio::task::spawn_blocking(move || {
            let r = journal.compact(&live);
            (journal, r)
        })
        .await
        .expect("the journal task does not panic");
        state.journal = Some(journal);
        if let Err(e) = result {
            warn!(error = %e, "journal compaction failed; it will be tried again");
        }
    }

    /// Appends a step of an incident, logging (not failing) when the journal cannot.
    async fn step(&self, incident: u64, step: Step) -> Result<(), EngineError> {
        self.record(vec![Record::Step { incident, step }]).await
    }

    async fn close(&self, incident: u64, outcome: Outcome) -> Result<(), EngineError> {
        self.record(vec![Record::Closed {
            incident,
            outcome,
            at: SystemTime::now(),
        }])
        .await
    }

    /// Sleeps, or returns false early on shutdown.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.cancel.cancelled() => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
