//! The decision engine: takes failover candidates from Alertmanager's webhook (or an
//! operator), runs one evaluation per instance at a time, and records every step in the
//! journal before acting on it.
//!
//! Deliveries that arrive while an instance is being evaluated join that evaluation, so
//! Alertmanager's retries and repeats, however many and however concurrent, lead to at
//! most one DNS change. The journal is written before the caller is answered: an
//! acknowledged delivery is never lost, and a restart finds every incident it left open.

mod advisors;
mod data_loss;
mod dns_sync;
mod failback;
mod fleet;
mod notify;
mod probes;
mod recovery;
mod runner;
mod submit;
mod writer;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use thiserror::Error;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

pub use super::settings::{
    EFFECT_AFTER, EFFECT_BEFORE, InstanceRecord, ObserverSettings, Settings,
};
pub use advisors::Advisors;
pub use dns_sync::DNS_RETRY_MAX;
pub use failback::WATCH_EVERY;
pub use fleet::{FleetStatus, POLL as FLEET_POLL};
pub use submit::{Submitted, UNKNOWN_LOG_EVERY};

use super::advice::book::{AdviceBook, Recorded};
use super::clock::Clock;
use super::counters::DecisionMetrics;
use super::incident::{Incident, Ledger, Outcome, Record, Step};
use super::journal::{Journal, JournalError, JournalLimits, Opening};
use super::ports::{ClientImpact, Coordination, DnsProvider, HookRunner, Notifier, Prober, Window};
use crate::model::enterprise::EnterpriseStore;
use crate::model::{ActiveDatacenters, AnalysisStore, InstanceId, SnapshotStore};
use writer::Writer;

#[derive(Debug, Error)]
pub enum EngineError {
    /// The journal could not record the event: the caller should retry later.
    #[error("the decision journal cannot record: {0}")]
    Journal(#[from] JournalError),
    /// The journal writer is gone; nothing more is recorded until a restart.
    #[error("the decision journal was lost by an earlier failure; restart the agent")]
    JournalLost,
    /// The task doing the work failed (a panic, or the runtime shutting down).
    #[error("the engine task did not finish: {0}")]
    Task(String),
    /// In a fleet: only the leader evaluates.
    #[error("this agent does not lead the fleet; {}", match leader {
        Some(l) => format!("the leader is {l}"),
        None => "no agent leads it now".into(),
    })]
    NotLeader { leader: Option<String> },
    /// In a fleet: the store could not be read.
    #[error("the fleet's coordination store cannot be read: {0}")]
    Coordination(String),
}

/// What the engine acts through.
#[derive(Debug, Clone)]
pub struct Deps {
    pub prober: Arc<dyn Prober>,
    /// `None`: no `dns_provider` configured; evaluations end in a recommendation.
    pub dns: Option<Arc<dyn DnsProvider>>,
    /// `None`: no `alertmanager` configured; notices are only logged.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Runs `hooks.pre_failover` and `hooks.post_failover`.
    pub hooks: Arc<dyn HookRunner>,
    pub analysis: Arc<AnalysisStore>,
    /// The collector's latest rounds: when the agent last reached each endpoint.
    pub store: Arc<SnapshotStore>,
    /// The Enterprise collector's latest view of each datacenter's cluster, for the
    /// data-loss estimate of Active-Active databases (empty without `api_url`s).
    pub enterprise: Arc<EnterpriseStore>,
    pub active: Arc<ActiveDatacenters>,
    pub metrics: DecisionMetrics,
    /// Client impact and AI advice; none configured: the probes decide alone.
    pub advisors: Advisors,
    /// The time of day for every record and decision; the system clock but in tests.
    pub clock: Arc<dyn Clock>,
    /// `None`: a single agent. Otherwise the fleet's leadership and store: only the
    /// leader evaluates, and each of its acts passes the fence first.
    pub coordination: Option<Arc<dyn Coordination>>,
}

/// What replaying the journal built; changed only after the journal recorded it.
struct State {
    ledger: Ledger,
}

pub(crate) struct Inner {
    settings: std::sync::RwLock<Arc<Settings>>,
    deps: Deps,
    /// Held from a decision (join or open?) until its record is in the ledger.
    state: Arc<Mutex<State>>,
    /// The journal's only owner; shared with the append tasks.
    writer: Arc<Writer>,
    /// Candidates about unknown instances since the last log line.
    unknown: std::sync::Mutex<submit::UnknownTargets>,
    /// The advisors in use: those of `deps` until [`Engine::set_advisors`].
    advisors: std::sync::RwLock<Advisors>,
    /// Per instance, the AI advisor's consultations; never held across a call.
    advice: std::sync::Mutex<AdviceBook>,
    /// In a fleet: the coordination, and what the leader took.
    fleet: Option<fleet::Fleet>,
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
    /// Opens the journal in `state_dir`, replays it, finishes what a previous run left
    /// open (see [`Engine::recover`]), and takes each instance's active datacenter from
    /// its DNS record (see [`dns_sync`]). A damaged journal is refused unless `opening`
    /// says to start over.
    pub async fn open(
        state_dir: &std::path::Path,
        settings: Settings,
        deps: Deps,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Engine, EngineError> {
        Self::open_with(state_dir, Opening::Refuse, settings, deps, tracker, cancel).await
    }

    pub async fn open_with(
        state_dir: &std::path::Path,
        opening: Opening,
        settings: Settings,
        deps: Deps,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Engine, EngineError> {
        let dir = state_dir.to_owned();
        let clock = Arc::clone(&deps.clock);
        let (journal, entries) = tokio::task::spawn_blocking(move || {
            Journal::open_on::<Record>(&dir, JournalLimits::default(), opening, clock)
        })
        .await
        .map_err(|e| EngineError::Task(e.to_string()))??;
        let path = journal.path().to_owned();
        let writer = Writer::start(journal).map_err(|source| JournalError::Io {
            path,
            action: "start the writer thread",
            source,
        })?;
        let mut ledger = Ledger::new(settings.limits.max_history);
        for entry in &entries {
            ledger.apply(&entry.record, settings.failover.cooldown);
        }
        for (instance, dc) in &ledger.active {
            deps.active.set(instance, dc);
        }
        deps.metrics.journal_healthy(true);
        let advisors = deps.advisors.clone();
        let fleet = deps.coordination.clone().map(fleet::Fleet::new);
        let engine = Engine {
            inner: Arc::new(Inner {
                settings: std::sync::RwLock::new(Arc::new(settings)),
                deps,
                state: Arc::new(Mutex::new(State { ledger })),
                writer: Arc::new(writer),
                unknown: std::sync::Mutex::new(submit::UnknownTargets::default()),
                advisors: std::sync::RwLock::new(advisors),
                advice: std::sync::Mutex::new(AdviceBook::default()),
                fleet,
                tracker,
                cancel,
            }),
        };
        engine.recover().await?;
        dns_sync::at_start(&engine.inner).await;
        engine.watch_fleet();
        Ok(engine)
    }

    /// False once the journal is lost (a write failed and could not be undone, or its
    /// writer is gone): nothing can be recorded, so nothing is decided, until a restart.
    pub fn journal_healthy(&self) -> bool {
        self.inner.writer.healthy()
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
            recovery::recover(&self.inner, incident).await?;
        }
        let history: Vec<Incident> = {
            let state = self.inner.state.lock().await;
            state.ledger.history.iter().cloned().collect()
        };
        advisors::resume_effects(&self.inner, &history);
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
        let state = self.lock_state().await;
        self.append(state, records).await
    }

    async fn lock_state(&self) -> OwnedMutexGuard<State> {
        Arc::clone(&self.state).lock_owned().await
    }

    /// Writes `records` and applies each to the ledger once it is on disk, in a task of
    /// its own that keeps `state` locked until it is done: a caller dropped mid-way
    /// changes nothing, and a record on disk is always in the ledger too.
    async fn append(
        &self,
        mut state: OwnedMutexGuard<State>,
        records: Vec<Record>,
    ) -> Result<(), EngineError> {
        let writer = Arc::clone(&self.writer);
        let metrics = self.deps.metrics.clone();
        let cooldown = self.settings().failover.cooldown;
        let task = self.tracker.spawn(async move {
            let mut compact = false;
            let mut result = Ok(());
            for record in records {
                match writer.append(record.clone()).await {
                    Ok(appended) => {
                        state.ledger.apply(&record, cooldown);
                        compact |= appended.needs_compaction;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            metrics.journal_healthy(writer.healthy());
            if compact {
                // Keeps the journal bounded: rewrites it as the ledger's snapshot.
                let live = state.ledger.snapshot();
                if let Err(e) = writer.compact(live).await {
                    warn!(error = %e, "journal compaction failed; it will be tried again");
                }
            }
            result
        });
        task.await
            .unwrap_or_else(|e| Err(EngineError::Task(e.to_string())))
    }

    /// Appends a step of an incident.
    async fn step(&self, incident: u64, step: Step) -> Result<(), EngineError> {
        self.record(vec![Record::Step { incident, step }]).await
    }

    async fn close(&self, incident: u64, outcome: Outcome) -> Result<(), EngineError> {
        self.record(vec![Record::Closed {
            incident,
            outcome,
            at: self.deps.clock.now(),
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
mod tests;
