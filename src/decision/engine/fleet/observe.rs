//! Every agent is an observer (issue 18): it says it is there with what its collector
//! sees of every endpoint (`observations/<agent>`, under its lease, once a collection
//! round), and answers each confirmation round the leader asks for (`rounds/<instance>`)
//! with its own fresh probes (`answers/<instance>/<agent>`, under its lease). The leader
//! asks, waits a bounded time for the answers of the observers present, and counts them
//! against the configured agents (`coordination.agents`) or, without that list, the
//! agents present ([`crate::decision::quorum`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::decision::engine::probes::probe_round;
use crate::decision::engine::{Engine, Inner};
use crate::decision::fleet::{self, Observer, Seen};
use crate::decision::policy::Round;
use crate::decision::ports::{Table, View};
use crate::decision::quorum::{self, Observers, Quorum};
use crate::model::{DatacenterId, InstanceId, SnapshotStore};

/// How often an agent that collects nothing yet says it is there.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);
/// How often an observer looks for rounds to answer.
pub const ANSWER_POLL: Duration = Duration::from_millis(100);
/// How long the leader waits for answers once its own probes are in.
pub const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// A confirmation round the leader asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    pub id: String,
    pub leader: String,
    pub datacenters: Vec<DatacenterId>,
}

/// An observer's answer to a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub round: String,
    pub view: View,
}

impl Engine {
    /// Says this agent is there, with what it sees of every endpoint, under its lease:
    /// once a collection round (the shortest `monitoring_interval` of its endpoints),
    /// checked each poll. Not each poll: every write stays in etcd's history until it
    /// is compacted, and the views change only when a round is collected. A record
    /// lost with a lease that expired comes back with the next round.
    pub(super) async fn announce(&self) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let store = &self.inner.deps.store;
        let every = store
            .all()
            .iter()
            .map(|s| s.interval)
            .min()
            .unwrap_or(SUMMARY_EVERY)
            .max(super::POLL);
        if !fleet.announce_due(every) {
            return;
        }
        let me = Observer {
            agent: fleet.coordination.agent().to_owned(),
            datacenter: fleet.coordination.datacenter(),
            at: self.inner.deps.clock.now(),
            endpoints: summary(store, std::time::Instant::now()),
        };
        let published = fleet
            .coordination
            .publish(Table::Observations, &me.agent, &fleet::encode(&me))
            .await;
        if let Err(e) = published {
            fleet.announce_failed();
            debug!(error = %e, "could not publish this agent's observation");
        }
    }

    /// Reads every agent's observation, for the status. Unreadable, the last read
    /// stays: the answer says when each was published.
    pub(super) async fn read_observations(&self) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let Ok(entries) = fleet.coordination.list(Table::Observations).await else {
            return;
        };
        let read = entries
            .into_iter()
            .filter_map(|e| fleet::decode::<Observer>(&e.value).ok())
            .collect();
        *fleet.observations.lock().unwrap_or_else(|e| e.into_inner()) = read;
    }

    /// Answers the rounds other agents ask for, until the engine stops.
    pub(super) async fn answer_rounds(&self) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let me = fleet.coordination.agent().to_owned();
        let mut answered: BTreeMap<InstanceId, String> = BTreeMap::new();
        while self.inner.sleep(ANSWER_POLL).await {
            let Ok(asks) = fleet.coordination.list(Table::Rounds).await else {
                continue;
            };
            let settings = self.settings();
            for entry in asks {
                let Ok(ask) = fleet::decode::<Ask>(&entry.value) else {
                    continue;
                };
                let uid = InstanceId::new(&entry.key);
                let new = answered.get(&uid) != Some(&ask.id);
                if ask.leader == me || !new {
                    continue;
                }
                answered.insert(uid.clone(), ask.id.clone());
                let Some(inst) = settings.instances.get(&uid).cloned() else {
                    continue;
                };
                let engine = self.clone();
                self.inner.tracker.spawn(async move {
                    let round = probe_round(&engine.inner, Some(&inst), &ask.datacenters).await;
                    engine.inner.send_answer(&uid, ask.id, round).await;
                });
            }
        }
    }
}

/// What this agent's collector saw last of every endpoint it has collected: up when
/// the latest round succeeded and is fresh, with that round's PING latency.
fn summary(store: &SnapshotStore, now: std::time::Instant) -> BTreeMap<InstanceId, Endpoints> {
    let mut seen: BTreeMap<InstanceId, Endpoints> = BTreeMap::new();
    for status in store.all() {
        let Some(round) = &status.last_round else {
            continue;
        };
        let fresh = status.fresh(now);
        let latency_ms = fresh.map(|s| (s.ping_latency.as_secs_f64() * 1e6).round() / 1e3);
        seen.entry(status.key.instance.clone()).or_default().insert(
            status.key.datacenter.clone(),
            Seen {
                up: fresh.is_some(),
                latency_ms,
                at: round.at,
            },
        );
    }
    seen
}

/// One instance's endpoints as an observer saw them, by datacenter.
type Endpoints = BTreeMap<DatacenterId, Seen>;

impl Inner {
    fn view(&self, round: &Round) -> View {
        let fleet = self.fleet.as_ref();
        View {
            observer: fleet.map_or_else(String::new, |f| f.coordination.agent().to_owned()),
            datacenter: fleet.and_then(|f| f.coordination.datacenter()),
            probes: round.probes.clone(),
        }
    }

    async fn send_answer(&self, uid: &InstanceId, round: String, probes: Round) {
        let Some(fleet) = self.fleet.as_ref() else {
            return;
        };
        let answer = Answer {
            round,
            view: self.view(&probes),
        };
        let key = format!("{uid}/{}", answer.view.observer);
        let sent = fleet
            .coordination
            .publish(Table::Answers, &key, &fleet::encode(&answer))
            .await;
        if let Err(e) = sent {
            warn!(redis_instance = %uid, error = %e, "could not answer the leader's round");
        }
    }

    /// The leader's confirmation round in a fleet: asks every observer, probes itself,
    /// waits for the answers of those present at most [`ANSWER_GRACE`] after its own,
    /// and counts them with the quorum as configured.
    pub(in crate::decision::engine) async fn observed_round(
        &self,
        uid: &InstanceId,
        datacenters: &[DatacenterId],
        active: &DatacenterId,
        id: String,
    ) -> Round {
        let settings = self.settings();
        let inst = settings.instances.get(uid);
        let Some(fleet) = self.fleet.as_ref() else {
            return probe_round(self, inst, datacenters).await;
        };
        let ask = Ask {
            id: id.clone(),
            leader: fleet.coordination.agent().to_owned(),
            datacenters: datacenters.to_vec(),
        };
        let key = uid.to_string();
        let asked = fleet
            .coordination
            .put(Table::Rounds, &key, &fleet::encode(&ask))
            .await;
        let own = probe_round(self, inst, datacenters).await;
        let me = fleet.coordination.datacenter();
        let observers = Observers::new(
            &settings.observers.agents,
            &self.present().await,
            (&ask.leader, me.as_ref()),
        );
        let others = match asked {
            Ok(_) => {
                self.answers(uid, &id, observers.awaited(), Instant::now() + ANSWER_GRACE)
                    .await
            }
            Err(_) => Vec::new(),
        };
        let others = others
            .into_iter()
            .filter(|v| observers.counts(&v.observer))
            .collect();
        let quorum = settings
            .observers
            .quorum
            .map_or(Quorum::Majority, Quorum::Fixed);
        quorum::count(
            &own,
            self.view(&own),
            others,
            active,
            observers.outside(active),
            quorum,
        )
    }

    /// The agents there now, with their datacenters.
    async fn present(&self) -> BTreeMap<String, Option<DatacenterId>> {
        let Some(fleet) = self.fleet.as_ref() else {
            return BTreeMap::new();
        };
        let Ok(entries) = fleet.coordination.list(Table::Observations).await else {
            return BTreeMap::new();
        };
        entries
            .into_iter()
            .filter_map(|e| fleet::decode::<Observer>(&e.value).ok())
            .map(|o| (o.agent, o.datacenter))
            .collect()
    }

    /// The answers to round `id` of the other observers, once every `awaited` one is
    /// in or at `deadline`.
    async fn answers(
        &self,
        uid: &InstanceId,
        id: &str,
        awaited: &BTreeSet<String>,
        deadline: Instant,
    ) -> Vec<View> {
        let Some(fleet) = self.fleet.as_ref() else {
            return Vec::new();
        };
        let me = fleet.coordination.agent();
        let prefix = format!("{uid}/");
        loop {
            let views: Vec<View> = match fleet.coordination.list(Table::Answers).await {
                Ok(entries) => entries
                    .into_iter()
                    .filter(|e| e.key.starts_with(&prefix))
                    .filter_map(|e| fleet::decode::<Answer>(&e.value).ok())
                    .filter(|a| a.round == id && a.view.observer != me)
                    .map(|a| a.view)
                    .collect(),
                Err(_) => Vec::new(),
            };
            let all_in = awaited
                .iter()
                .all(|a| views.iter().any(|v| &v.observer == a));
            if all_in || Instant::now() >= deadline {
                return views;
            }
            tokio::time::sleep(ANSWER_POLL / 2).await;
        }
    }
}
