//! The engine in a fleet of agents (`coordination` configured; DESIGN.md "The fleet").
//!
//! Every agent watches its leadership, keeps its view of where each instance is active
//! in step with the fleet's store, and hands the candidates it takes from Alertmanager
//! to the leader through the store ([`handoff`]). Only the leader evaluates
//! ([`leader`]): it finishes what an earlier leader left unsettled, starts one
//! evaluation per instance whatever the number of deliveries, fences every act of it
//! (the runner), and settles each evaluation's result in the store under its fence.
//! Without the store nobody acts; everybody still monitors and takes deliveries.

mod handoff;
mod leader;
mod observe;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Engine, EngineError, Inner};
use crate::decision::fleet::{self, Observer, SharedInstance};
use crate::decision::ports::{Coordination, FenceError, Leadership, Table, Term, Write};
use crate::model::InstanceId;

/// How often every agent reads the fleet's store (the leader: its candidates and
/// unsettled acts too), besides being woken by a candidate it handed itself.
pub const POLL: Duration = Duration::from_secs(1);

/// The engine's part in a fleet.
pub(super) struct Fleet {
    pub(super) coordination: Arc<dyn Coordination>,
    /// Per instance evaluated here as leader: the revision of the candidate its
    /// settlement may delete (raised when a later delivery joins the evaluation).
    taken: std::sync::Mutex<BTreeMap<InstanceId, i64>>,
    /// A candidate was handed: the leader need not wait for the next poll.
    wake: Notify,
    /// When this agent last published its observation; `None`: never, or it failed.
    announced: std::sync::Mutex<Option<Instant>>,
    /// Every agent's observation as read at the latest poll, for `GET /api/status`
    /// (which then never waits on the store).
    observations: std::sync::Mutex<Vec<Observer>>,
}

impl Fleet {
    pub(super) fn new(coordination: Arc<dyn Coordination>) -> Self {
        Self {
            coordination,
            taken: std::sync::Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            announced: std::sync::Mutex::new(None),
            observations: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether this agent's observation is due (`every` since the last one), taking
    /// note that it is about to be published.
    fn announce_due(&self, every: Duration) -> bool {
        let mut last = self.announced.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// The observation was not published: the next poll tries again.
    fn announce_failed(&self) {
        *self.announced.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, BTreeMap<InstanceId, i64>> {
        self.taken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The term this agent leads in, or why it may not start an evaluation.
    pub(super) fn term(&self) -> Result<Term, EngineError> {
        match &*self.coordination.leadership().borrow() {
            Leadership::Leader { term } => Ok(*term),
            Leadership::Follower { leader } => Err(EngineError::NotLeader {
                leader: leader.as_ref().map(|l| l.name.clone()),
            }),
            Leadership::Down => Err(EngineError::NotLeader { leader: None }),
        }
    }

    /// The term and shared record to evaluate `instance` with, if this agent leads.
    pub(super) async fn leading(&self, instance: &InstanceId) -> Result<Leading, EngineError> {
        let term = self.term()?;
        let shared = self.instances().await?;
        Ok(Leading {
            term,
            shared: shared.get(instance).cloned().unwrap_or_default(),
        })
    }

    /// Clears the instance's cooldown in the store, if this agent leads.
    pub(super) async fn lift_cooldown(&self, instance: &InstanceId) -> Result<(), EngineError> {
        let leading = self.leading(instance).await?;
        let shared = SharedInstance {
            cooldown_until: None,
            ..leading.shared
        };
        let write = Write::Put {
            table: Table::Instances,
            key: instance.to_string(),
            value: fleet::encode(&shared),
        };
        self.coordination
            .fence(leading.term, &[write])
            .await
            .map_err(|e| match e {
                FenceError::NotLeader { leader, .. } => EngineError::NotLeader {
                    leader: leader.map(|l| l.name),
                },
                FenceError::Store(e) => EngineError::Coordination(e.to_string()),
            })
    }

    /// What the store says of every instance; unreadable records are logged and left
    /// out.
    async fn instances(&self) -> Result<BTreeMap<InstanceId, SharedInstance>, EngineError> {
        let entries = self
            .coordination
            .list(Table::Instances)
            .await
            .map_err(|e| EngineError::Coordination(e.to_string()))?;
        Ok(entries
            .into_iter()
            .filter_map(|e| match fleet::decode(&e.value) {
                Ok(shared) => Some((InstanceId::new(&e.key), shared)),
                Err(error) => {
                    warn!(key = %e.key, %error, "a shared instance record cannot be read; ignored");
                    None
                }
            })
            .collect())
    }
}

/// What an evaluation started by the leader carries.
#[derive(Debug, Clone)]
pub(super) struct Leading {
    pub term: Term,
    /// The instance's shared record when the evaluation started.
    pub shared: SharedInstance,
}

/// This agent in its fleet, for `GET /api/status`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetStatus {
    pub agent: String,
    /// `leader`, `follower` or `down` (the store cannot be reached, or has no quorum).
    pub role: &'static str,
    /// The leader's name, as far as this agent knows.
    pub leader: Option<String>,
    pub term: Option<i64>,
}

impl Engine {
    /// This agent's place in its fleet; `None` without `coordination`.
    pub fn fleet_status(&self) -> Option<FleetStatus> {
        let fleet = self.inner.fleet.as_ref()?;
        let agent = fleet.coordination.agent().to_owned();
        let status = match &*fleet.coordination.leadership().borrow() {
            Leadership::Leader { term } => FleetStatus {
                role: "leader",
                leader: Some(agent.clone()),
                term: Some(term.0),
                agent,
            },
            Leadership::Follower { leader } => FleetStatus {
                role: "follower",
                leader: leader.as_ref().map(|l| l.name.clone()),
                term: leader.as_ref().map(|l| l.term.0),
                agent,
            },
            Leadership::Down => FleetStatus {
                role: "down",
                leader: None,
                term: None,
                agent,
            },
        };
        Some(status)
    }

    /// Every agent's latest observation (this one's included) as read at the latest
    /// poll; `None` without `coordination`.
    pub fn observations(&self) -> Option<Vec<Observer>> {
        let fleet = self.inner.fleet.as_ref()?;
        Some(
            fleet
                .observations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// Starts the fleet's loop on the engine's task tracker (with `coordination` only).
    pub(super) fn watch_fleet(&self) {
        if self.inner.fleet.is_none() {
            return;
        }
        let engine = self.clone();
        self.inner
            .tracker
            .spawn(async move { engine.fleet_loop().await });
        let engine = self.clone();
        self.inner
            .tracker
            .spawn(async move { engine.answer_rounds().await });
    }

    async fn fleet_loop(&self) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let agent = fleet.coordination.agent().to_owned();
        let mut leadership = fleet.coordination.leadership();
        let mut seen = leadership.borrow_and_update().clone();
        self.inner.deps.metrics.coordination(
            &agent,
            seen != Leadership::Down,
            seen.term().is_some(),
        );
        let mut elected = None;
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => break,
                _ = tokio::time::sleep(POLL) => {}
                _ = fleet.wake.notified() => {}
                changed = leadership.changed() => if changed.is_err() { break },
            }
            let now = leadership.borrow_and_update().clone();
            self.observed(&agent, &seen, &now);
            seen = now;
            self.hand_pending().await;
            self.announce().await;
            self.read_observations().await;
            let Ok(mut shared) = fleet.instances().await else {
                continue;
            };
            if let Leadership::Leader { term } = seen
                && elected != Some(term)
            {
                // Candidates taken in an earlier term are the new term's to take.
                fleet.taken().clear();
                self.import(term, &shared).await;
                self.adopt_dns(term, &fleet.instances().await.unwrap_or(shared))
                    .await;
                let Ok(now) = fleet.instances().await else {
                    continue;
                };
                (shared, elected) = (now, Some(term));
            }
            self.adopt(&shared);
            if let Leadership::Leader { term } = seen {
                self.lead(term, &shared).await;
            }
        }
    }

    /// Counts and logs a change of leadership as this agent sees it.
    fn observed(&self, agent: &str, before: &Leadership, now: &Leadership) {
        let metrics = &self.inner.deps.metrics;
        metrics.coordination(agent, *now != Leadership::Down, now.term().is_some());
        let leader_of = |l: &Leadership| match l {
            Leadership::Leader { term } => Some((agent.to_owned(), *term)),
            Leadership::Follower { leader } => leader.as_ref().map(|l| (l.name.clone(), l.term)),
            Leadership::Down => None,
        };
        if leader_of(before) == leader_of(now) {
            return;
        }
        if leader_of(now).is_some() {
            metrics.leader_changed(agent);
        }
        match now {
            Leadership::Leader { term } => info!(%agent, %term, "this agent leads the fleet"),
            Leadership::Follower { leader: Some(l) } => {
                info!(%agent, leader = %l.name, term = %l.term, "following")
            }
            Leadership::Follower { leader: None } => info!(%agent, "the fleet has no leader"),
            Leadership::Down => warn!(
                %agent,
                "the fleet's store cannot be reached or has no quorum: nobody acts on this agent's word"
            ),
        }
    }

    /// Takes the fleet's word for where each configured instance is active.
    fn adopt(&self, shared: &BTreeMap<InstanceId, SharedInstance>) {
        let settings = self.settings();
        for (uid, record) in shared {
            if let (Some(active), true) = (&record.active, settings.instances.contains_key(uid)) {
                self.inner.deps.active.set(uid, active);
            }
        }
    }
}

impl Inner {
    /// The instance's shared record as the store holds it now (this leader's own
    /// writes since the evaluation started included), or `started` if the store cannot
    /// be read: each write of the evaluation changes only its own fields.
    pub(super) async fn shared_now(
        &self,
        instance: &InstanceId,
        started: &SharedInstance,
    ) -> SharedInstance {
        let Some(fleet) = self.fleet.as_ref() else {
            return started.clone();
        };
        match fleet.instances().await {
            Ok(mut all) => all.remove(instance).unwrap_or_default(),
            Err(_) => started.clone(),
        }
    }

    /// After an evaluation the leader ran closes: its result becomes the fleet's (where
    /// the instance is active, its cooldown), its open act is cleared, and the candidate
    /// it answered is deleted unless delivered again since; all under the fence of the
    /// term it ran in. Refused, a successor finds the act unsettled and finishes it.
    pub(super) async fn settle(
        &self,
        instance: &InstanceId,
        leading: &Leading,
        shared: SharedInstance,
    ) {
        let Some(fleet) = self.fleet.as_ref() else {
            return;
        };
        let mut writes = vec![Write::Put {
            table: Table::Instances,
            key: instance.to_string(),
            value: fleet::encode(&shared),
        }];
        let taken = fleet.taken().get(instance).copied();
        if let Some(revision) = taken {
            writes.push(Write::DeleteUpTo {
                table: Table::Candidates,
                key: instance.to_string(),
                revision,
            });
        }
        let fenced = fleet.coordination.fence(leading.term, &writes).await;
        if fenced.is_ok() {
            fleet.taken().remove(instance);
        }
        // Refused, the candidate stays taken for the rest of this term: this agent does
        // not start on it again, a successor does.
        if let Err(e) = fenced {
            let agent = fleet.coordination.agent();
            self.deps.metrics.fenced_refusal(agent, "settle");
            warn!(redis_instance = %instance, term = %leading.term, error = %e,
                "the evaluation's result could not be settled in the fleet's store; the next leader finishes it");
        }
    }
}
