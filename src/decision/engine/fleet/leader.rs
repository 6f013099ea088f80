//! What the leader does each poll: once per term, take a single agent's state into an
//! empty store; finish the acts earlier leaders left unsettled; start one evaluation
//! per instance with a candidate, and let later deliveries join it.

use std::collections::BTreeMap;

use serde_json::json;
use tracing::{info, warn};

use super::{Leading, POLL};
use crate::decision::engine::dns_sync::datacenter_named;
use crate::decision::engine::notify::tell;
use crate::decision::engine::{Engine, Submitted};
use crate::decision::evaluation::notice::{Said, notice};
use crate::decision::fleet::{
    self, Handed, IMPORTED, OpenAct, SharedInstance, Unfinished, successor_trigger,
};
use crate::decision::incident::{Outcome, Record, Step, StepName, StepOutcome};
use crate::decision::ports::{Entry, RecordValue, Table, Term, Write};
use crate::model::InstanceId;

impl Engine {
    /// The first leader of a fleet brings its state directory's active datacenters and
    /// cooldowns into the store, once (the store then says `fleet/imported`). A store
    /// that holds a fleet's state already keeps it: this agent's own differing view is
    /// logged, and the fleet's is used.
    pub(super) async fn import(&self, term: Term, shared: &BTreeMap<InstanceId, SharedInstance>) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let agent = fleet.coordination.agent().to_owned();
        let local: Vec<(InstanceId, SharedInstance)> = {
            let state = self.inner.state.lock().await;
            let ledger = &state.ledger;
            ledger
                .active
                .iter()
                .map(|(uid, dc)| {
                    let record = SharedInstance {
                        active: Some(dc.clone()),
                        cooldown_until: ledger.cooldown_until.get(uid).copied(),
                        open: None,
                    };
                    (uid.clone(), record)
                })
                .collect()
        };
        let imported = match fleet.coordination.list(Table::Fleet).await {
            Ok(entries) => entries.into_iter().find(|e| e.key == IMPORTED),
            Err(_) => return,
        };
        if let Some(by) = imported {
            for (uid, mine) in &local {
                let theirs = shared.get(uid).and_then(|s| s.active.as_ref());
                if theirs.is_some_and(|t| Some(t) != mine.active.as_ref()) {
                    warn!(redis_instance = %uid, here = ?mine.active, fleet = ?theirs,
                        imported_by = %by.value,
                        "this agent's state directory disagrees with the fleet's store; the fleet's is used");
                }
            }
            return;
        }
        let mut writes: Vec<Write> = local
            .iter()
            .filter(|(uid, _)| !shared.contains_key(uid))
            .map(|(uid, record)| Write::Put {
                table: Table::Instances,
                key: uid.to_string(),
                value: fleet::encode(record),
            })
            .collect();
        let count = writes.len();
        writes.push(Write::Put {
            table: Table::Fleet,
            key: IMPORTED.into(),
            value: agent.clone(),
        });
        match fleet.coordination.fence(term, &writes).await {
            Ok(()) => info!(%agent, instances = count,
                "this agent's state directory became the fleet's state (once per fleet)"),
            Err(e) => warn!(%agent, error = %e,
                "could not import this agent's state into the fleet's store; tried again at the next leadership"),
        }
    }

    /// At the start of a term: DNS is where the clients go. An instance whose record
    /// names another datacenter than the fleet's store (someone moved it by hand while
    /// nobody led, or a leader died between its change and its settlement) gets DNS's
    /// in the store, as a single agent adopts DNS's at start. Instances being
    /// evaluated, or whose record cannot be read, are left to their evaluation.
    pub(super) async fn adopt_dns(
        &self,
        term: Term,
        shared: &BTreeMap<InstanceId, SharedInstance>,
    ) {
        let (Some(fleet), Some(dns)) = (self.inner.fleet.as_ref(), self.inner.deps.dns.as_ref())
        else {
            return;
        };
        if !dns.reads_the_zone() {
            return;
        }
        let settings = self.settings();
        for (uid, record) in &settings.records {
            let Some(instance) = settings.instances.get(uid) else {
                continue;
            };
            let current = shared.get(uid).cloned().unwrap_or_default();
            if current.open.is_some() || self.evaluating(uid).await {
                continue;
            }
            let read = tokio::time::timeout(settings.switch.call_timeout, dns.read(&record.record));
            let Ok(Ok(Some(value))) = read.await else {
                continue;
            };
            let Some(in_dns) = datacenter_named(record, &value) else {
                continue;
            };
            let believed = current
                .active
                .clone()
                .unwrap_or_else(|| instance.active_dc.clone());
            if *in_dns == believed {
                continue;
            }
            self.inner
                .deps
                .metrics
                .mismatch(uid.as_str(), "other_datacenter");
            warn!(redis_instance = %uid, dns = %in_dns, fleet = %believed,
                "DNS sends the clients to another datacenter than the fleet's store says; taking DNS's");
            let adopted = SharedInstance {
                active: Some(in_dns.clone()),
                ..current
            };
            let write = Write::Put {
                table: Table::Instances,
                key: uid.to_string(),
                value: fleet::encode(&adopted),
            };
            match fleet.coordination.fence(term, &[write]).await {
                Ok(()) => {
                    self.inner.deps.active.set(uid, in_dns);
                }
                Err(e) => warn!(redis_instance = %uid, error = %e,
                    "could not record DNS's active datacenter in the fleet's store"),
            }
        }
    }

    /// One poll of the leader.
    pub(super) async fn lead(&self, term: Term, shared: &BTreeMap<InstanceId, SharedInstance>) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let settings = self.settings();
        for (uid, record) in shared {
            if !settings.instances.contains_key(uid) || self.evaluating(uid).await {
                continue;
            }
            let (Some(open), Some(unfinished)) = (&record.open, fleet::unfinished(record, term.0))
            else {
                continue;
            };
            let leading = Leading {
                term,
                shared: record.clone(),
            };
            self.finish(uid, open, unfinished, leading).await;
        }
        // Read again: an incident completed above settled its instance in the store, and
        // an evaluation started from the older record would settle that record back.
        let (Ok(shared), Ok(candidates)) = (
            fleet.instances().await,
            fleet.coordination.list(Table::Candidates).await,
        ) else {
            return;
        };
        for entry in candidates {
            let record = shared.get(&InstanceId::new(&entry.key));
            self.take(term, entry, record.cloned().unwrap_or_default())
                .await;
        }
    }

    async fn evaluating(&self, uid: &InstanceId) -> bool {
        self.inner.state.lock().await.ledger.open_for(uid).is_some()
    }

    /// A candidate: joins the instance's running evaluation, or starts one.
    async fn take(&self, term: Term, entry: Entry, shared: SharedInstance) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let uid = InstanceId::new(&entry.key);
        let handed: Handed = match fleet::decode(&entry.value) {
            Ok(handed) => handed,
            Err(error) => {
                warn!(key = %entry.key, %error, "a candidate cannot be read; deleted");
                return self.drop_candidate(term, &entry).await;
            }
        };
        if !self.settings().instances.contains_key(&uid) {
            warn!(redis_instance = %uid, agent = %handed.agent,
                "a candidate names an instance this agent does not have configured; deleted");
            return self.drop_candidate(term, &entry).await;
        }
        let mut trigger = handed.trigger;
        trigger.name = format!("{} (via {})", trigger.name, handed.agent);
        let known = fleet.taken().get(&uid).copied();
        if known.is_some_and(|r| r >= entry.revision) {
            return;
        }
        let mut out = Submitted::default();
        fleet.taken().insert(uid.clone(), entry.revision);
        let leading = Leading { term, shared };
        let started = self
            .start_with(&uid, trigger, None, true, &mut out, Some(leading))
            .await;
        if let Err(e) = started {
            fleet.taken().remove(&uid);
            warn!(redis_instance = %uid, error = %e, "could not take a candidate; tried again");
        }
    }

    async fn drop_candidate(&self, term: Term, entry: &Entry) {
        let Some(fleet) = self.inner.fleet.as_ref() else {
            return;
        };
        let write = Write::DeleteUpTo {
            table: Table::Candidates,
            key: entry.key.clone(),
            revision: entry.revision,
        };
        if let Err(e) = fleet.coordination.fence(term, &[write]).await {
            warn!(key = %entry.key, error = %e, "could not delete a candidate");
        }
    }

    /// An act an earlier leader began and did not settle. Its plan is never replayed:
    /// either DNS shows the change was made, and the incident is completed without a
    /// write, or the leader evaluates afresh with new probes.
    async fn finish(&self, uid: &InstanceId, open: &OpenAct, what: Unfinished, leading: Leading) {
        if let Unfinished::CheckDns { to } = &what {
            match self.points_at(uid, to).await {
                Ok(true) => return self.complete(uid, open, leading).await,
                Ok(false) => {}
                Err(e) => {
                    return warn!(redis_instance = %uid, error = %e, every = ?POLL,
                        "cannot read DNS to finish an earlier leader's failover; trying again");
                }
            }
        }
        info!(redis_instance = %uid, agent = %open.agent, term = open.term, act = open.act.as_str(),
            "an earlier leader's failover was not finished: evaluating afresh");
        let trigger = successor_trigger(uid, open);
        let mut out = Submitted::default();
        if let Err(e) = self
            .start_with(uid, trigger, None, true, &mut out, Some(leading))
            .await
        {
            warn!(redis_instance = %uid, error = %e, "could not start the evaluation");
        }
    }

    /// Whether the instance's record points at `to`'s value now.
    async fn points_at(
        &self,
        uid: &InstanceId,
        to: &crate::model::DatacenterId,
    ) -> Result<bool, String> {
        let settings = self.settings();
        let (Some(record), Some(dns)) = (settings.records.get(uid), self.inner.deps.dns.as_ref())
        else {
            return Err("no DNS record is configured for this instance".into());
        };
        let Some(value) = record.values.get(to) else {
            return Err(format!("no DNS value for datacenter {to}"));
        };
        let target = RecordValue::single(value.clone(), record.ttl);
        let current = dns.read(&record.record).await.map_err(|e| e.to_string())?;
        Ok(current.is_some_and(|c| c.points_at(&target, record.record.record_type)))
    }

    /// DNS shows the earlier leader's change: the failover is done. Recorded here as an
    /// incident of its own, settled in the store (active, cooldown), and told.
    async fn complete(&self, uid: &InstanceId, open: &OpenAct, leading: Leading) {
        let inner = &self.inner;
        let mut out = Submitted::default();
        let trigger = successor_trigger(uid, open);
        if let Err(e) = self
            .open_incident(uid, trigger, true, &mut out, Some(&leading))
            .await
        {
            return warn!(redis_instance = %uid, error = %e, "could not record the finished failover");
        }
        let Some(&id) = out.opened.first() else {
            return;
        };
        let now = inner.deps.clock.now();
        let detail = format!(
            "DNS points at {}: the change {} made in term {} was made; completed without a write",
            open.to, open.agent, open.term
        );
        let evidence = json!({ "agent": open.agent, "term": open.term, "incident": open.incident });
        let step = Step::new(StepName::Recovery, StepOutcome::Ok, detail, evidence, now);
        let outcome = Outcome::FailedOver {
            from: open.from.clone(),
            to: open.to.clone(),
            confidence: 0.0,
        };
        let records = vec![
            Record::Step { incident: id, step },
            Record::Applied {
                incident: id,
                instance: uid.clone(),
                to: open.to.clone(),
                change: None,
            },
            Record::Closed {
                incident: id,
                outcome: outcome.clone(),
                at: now,
            },
        ];
        if let Err(e) = inner.record(records).await {
            return warn!(redis_instance = %uid, error = %e, "could not record the finished failover");
        }
        inner.deps.active.set(uid, &open.to);
        let cooldown = self.settings().failover.cooldown;
        let shared = SharedInstance {
            active: Some(open.to.clone()),
            cooldown_until: Some(now + cooldown),
            open: None,
        };
        inner.settle(uid, &leading, shared).await;
        if let Some(alert) = notice(id, uid, &outcome, &Said::default(), now) {
            tell(inner, id, uid, alert).await;
        }
    }
}
