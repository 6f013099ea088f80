//! What the journal records, and the state replaying it gives back (the ledger). Pure:
//! the engine appends records and applies them to the ledger in the same order, and a
//! restarted agent rebuilds the same ledger from the journal.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::policy::Hold;
use crate::model::rfc3339;
use crate::model::{DatacenterId, InstanceId};

/// The default of `limits.max_history`: closed incidents kept in memory for the API.
pub const HISTORY: usize = crate::config_kit::limits::default_max_history();

/// Appended to a label value cut to `limits.max_label_bytes`.
pub const CUT_MARKER: &str = "…(cut)";

/// `value` if it fits in `max` bytes; otherwise its start, cut at a char boundary, and
/// [`CUT_MARKER`], in `max` bytes at most (unless `max` is smaller than the marker).
pub fn cut_label(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max.saturating_sub(CUT_MARKER.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARKER}", &value[..end])
}

/// What started or joined an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// `alert` (Alertmanager's webhook) or `api` (an operator).
    pub source: String,
    /// The alert's name, or the operator's reason.
    pub name: String,
    /// Alertmanager's fingerprint of the alert; empty for the API.
    #[serde(default)]
    pub fingerprint: String,
    /// The datacenter the alert was about, if it named one.
    #[serde(default)]
    pub datacenter: Option<DatacenterId>,
}

/// What a step of an evaluation was; written to the journal as its snake_case name
/// (`probe_round`), as every version of the agent has written it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    Guard,
    ProbeRound,
    ClientImpact,
    SentinelWait,
    Advisor,
    Policy,
    Plan,
    /// Before a failover: what the target lacks of the active datacenter's writes,
    /// against `max_data_loss`.
    DataLoss,
    PreFailoverHook,
    Promote,
    Dns,
    PostFailoverHook,
    Verify,
    /// After a failover: the clients' errors before and after it.
    FailoverEffect,
    /// After a restart: what became of an incident the previous run left open.
    Recovery,
}

impl StepName {
    pub const ALL: [StepName; 15] = [
        StepName::Guard,
        StepName::ProbeRound,
        StepName::ClientImpact,
        StepName::SentinelWait,
        StepName::Advisor,
        StepName::Policy,
        StepName::Plan,
        StepName::DataLoss,
        StepName::PreFailoverHook,
        StepName::Promote,
        StepName::Dns,
        StepName::PostFailoverHook,
        StepName::Verify,
        StepName::FailoverEffect,
        StepName::Recovery,
    ];

    /// The name as the journal and the API write it.
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Guard => "guard",
            StepName::ProbeRound => "probe_round",
            StepName::ClientImpact => "client_impact",
            StepName::SentinelWait => "sentinel_wait",
            StepName::Advisor => "advisor",
            StepName::Policy => "policy",
            StepName::Plan => "plan",
            StepName::DataLoss => "data_loss",
            StepName::PreFailoverHook => "pre_failover_hook",
            StepName::Promote => "promote",
            StepName::Dns => "dns",
            StepName::PostFailoverHook => "post_failover_hook",
            StepName::Verify => "verify",
            StepName::FailoverEffect => "failover_effect",
            StepName::Recovery => "recovery",
        }
    }
}

/// How a step went; written as `ok`, `hold`, `info` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    /// The step holds the failover back.
    Hold,
    /// For the record; changes nothing by itself.
    Info,
    Failed,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Hold => "hold",
            StepOutcome::Info => "info",
            StepOutcome::Failed => "failed",
        }
    }
}

/// One step of an evaluation, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: StepName,
    pub outcome: StepOutcome,
    pub detail: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub evidence: serde_json::Value,
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
}

impl Step {
    pub fn new(
        name: StepName,
        outcome: StepOutcome,
        detail: impl Into<String>,
        evidence: serde_json::Value,
        at: SystemTime,
    ) -> Step {
        Step {
            name,
            outcome,
            detail: detail.into(),
            evidence,
            at,
        }
    }
}

/// How an incident ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// DNS now sends the instance's clients to `to`.
    FailedOver {
        from: DatacenterId,
        to: DatacenterId,
        confidence: f64,
    },
    /// The evidence supported a failover, but the agent only recommends (auto_failover
    /// false, or --no-failover).
    WouldFailOver {
        from: DatacenterId,
        to: DatacenterId,
        confidence: f64,
    },
    Held(Hold),
    /// A step failed; `detail` says which and why.
    Failed {
        detail: String,
    },
    /// The agent stopped during the evaluation and nothing had been changed.
    Interrupted {
        detail: String,
    },
    /// The alert resolved before anything was decided.
    Resolved,
}

impl Outcome {
    /// The `outcome` label of `redis_agent_decisions_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::FailedOver { .. } => "failover",
            Outcome::WouldFailOver { .. } => "would_failover",
            Outcome::Held(_) => "hold",
            Outcome::Failed { .. } => "error",
            Outcome::Interrupted { .. } => "interrupted",
            Outcome::Resolved => "resolved",
        }
    }
}

/// A journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Opened {
        incident: u64,
        instance: InstanceId,
        trigger: Trigger,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
        /// In a fleet: the leader that opened it, and its term.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        led: Option<Led>,
    },
    /// Another delivery for an incident that is being evaluated.
    Joined {
        incident: u64,
        trigger: Trigger,
    },
    Step {
        incident: u64,
        step: Step,
    },
    /// About to change DNS: on disk before the call.
    Intent {
        incident: u64,
        instance: InstanceId,
        from: DatacenterId,
        to: DatacenterId,
        record: String,
        values: Vec<String>,
    },
    /// DNS points at `to`: changed (`change` set) or it already did.
    Applied {
        incident: u64,
        instance: InstanceId,
        to: DatacenterId,
        change: Option<String>,
    },
    Closed {
        incident: u64,
        outcome: Outcome,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
    },
    /// An operator lifted the cooldown of an instance.
    Acknowledged {
        instance: InstanceId,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
    },
    /// Kept by compaction: what the ledger knew about an instance.
    Instance {
        instance: InstanceId,
        active: DatacenterId,
        #[serde(with = "rfc3339::optional", default)]
        cooldown_until: Option<SystemTime>,
    },
    /// Kept by compaction: a closed incident of the history.
    Past {
        incident: Box<Incident>,
    },
    /// The agent found DNS sending the instance's clients to `active` at start, where
    /// the journal (or the configuration) said `previous`, and took DNS's word for it.
    Adopted {
        instance: InstanceId,
        active: DatacenterId,
        previous: DatacenterId,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
    },
    /// In a fleet: a firing candidate this agent took from Alertmanager, to be handed
    /// to the leader through the fleet's store (kept until [`Record::HandedOver`]).
    Received {
        instance: InstanceId,
        trigger: Trigger,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
    },
    /// In a fleet: the candidate is in the fleet's store, at `revision`.
    HandedOver {
        instance: InstanceId,
        revision: i64,
    },
    /// The instance's home datacenter has been healthy long enough to go back to it.
    FailbackRecommended {
        instance: InstanceId,
        to: DatacenterId,
        #[serde(with = "rfc3339::required")]
        at: SystemTime,
    },
}

/// The fleet leader that ran an evaluation, and its leadership term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Led {
    pub agent: String,
    pub term: i64,
}

/// One evaluation, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub instance: InstanceId,
    #[serde(with = "rfc3339::required")]
    pub opened: SystemTime,
    pub triggers: Vec<Trigger>,
    pub steps: Vec<Step>,
    /// The DNS change about to be made, once the intent is recorded.
    pub intent: Option<(DatacenterId, DatacenterId)>,
    /// Set once DNS points at the target.
    pub applied: bool,
    pub outcome: Option<Outcome>,
    #[serde(with = "rfc3339::optional", default)]
    pub closed: Option<SystemTime>,
    /// In a fleet: the leader that ran it, and its term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub led: Option<Led>,
}

impl Incident {
    fn opened(
        id: u64,
        instance: &InstanceId,
        trigger: &Trigger,
        at: SystemTime,
        led: Option<Led>,
    ) -> Incident {
        Incident {
            id,
            instance: instance.clone(),
            opened: at,
            triggers: vec![trigger.clone()],
            steps: Vec::new(),
            intent: None,
            applied: false,
            outcome: None,
            closed: None,
            led,
        }
    }
}

/// What the journal says, replayed.
#[derive(Debug)]
pub struct Ledger {
    /// Where DNS sends each instance, as far as the journal knows (a failover's result;
    /// instances never failed over are absent).
    pub active: BTreeMap<InstanceId, DatacenterId>,
    pub cooldown_until: BTreeMap<InstanceId, SystemTime>,
    /// Incidents still open, by id.
    pub open: BTreeMap<u64, Incident>,
    /// Closed incidents, newest last, at most `max_history`.
    pub history: VecDeque<Incident>,
    /// `limits.max_history`.
    pub max_history: usize,
    /// The id the next incident gets.
    pub next_id: u64,
    /// Failbacks recommended and not yet made, by instance.
    pub failback: BTreeMap<InstanceId, DatacenterId>,
    /// In a fleet: candidates received and not yet handed to the leader, by instance.
    pub pending: BTreeMap<InstanceId, (Trigger, SystemTime)>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new(HISTORY)
    }
}

impl Ledger {
    /// An empty ledger keeping at most `max_history` closed incidents.
    pub fn new(max_history: usize) -> Self {
        Self {
            active: BTreeMap::new(),
            cooldown_until: BTreeMap::new(),
            open: BTreeMap::new(),
            history: VecDeque::new(),
            max_history,
            next_id: 0,
            failback: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Applies one record. `cooldown` is the configured `failover_cooldown`.
    pub fn apply(&mut self, record: &Record, cooldown: Duration) {
        match record {
            Record::Opened {
                incident,
                instance,
                trigger,
                at,
                led,
            } => {
                self.next_id = self.next_id.max(incident + 1);
                let opened = Incident::opened(*incident, instance, trigger, *at, led.clone());
                self.open.insert(*incident, opened);
            }
            Record::Joined { incident, trigger } => {
                if let Some(i) = self.open.get_mut(incident) {
                    i.triggers.push(trigger.clone());
                }
            }
            Record::Step { incident, step } => self.step(*incident, step),
            Record::Intent {
                incident, from, to, ..
            } => {
                if let Some(i) = self.open.get_mut(incident) {
                    i.intent = Some((from.clone(), to.clone()));
                }
            }
            Record::Applied {
                incident,
                instance,
                to,
                ..
            } => self.applied(*incident, instance, to, cooldown),
            Record::Closed {
                incident,
                outcome,
                at,
            } => {
                if let Some(mut i) = self.open.remove(incident) {
                    (i.outcome, i.closed) = (Some(outcome.clone()), Some(*at));
                    self.push_history(i);
                }
            }
            Record::Acknowledged { instance, .. } => {
                self.cooldown_until.remove(instance);
            }
            Record::Instance {
                instance,
                active,
                cooldown_until,
            } => {
                self.active.insert(instance.clone(), active.clone());
                if let Some(until) = cooldown_until {
                    self.cooldown_until.insert(instance.clone(), *until);
                }
            }
            Record::Past { incident } => {
                self.next_id = self.next_id.max(incident.id + 1);
                self.push_history((**incident).clone());
            }
            Record::Adopted {
                instance, active, ..
            } => {
                self.active.insert(instance.clone(), active.clone());
                if self.failback.get(instance) == Some(active) {
                    self.failback.remove(instance);
                }
            }
            Record::FailbackRecommended { instance, to, .. } => {
                self.failback.insert(instance.clone(), to.clone());
            }
            Record::Received {
                instance,
                trigger,
                at,
            } => {
                self.pending
                    .insert(instance.clone(), (trigger.clone(), *at));
            }
            Record::HandedOver { instance, .. } => {
                self.pending.remove(instance);
            }
        }
    }

    /// A closed incident takes late steps too (the effect of a failover, measured
    /// minutes after it).
    fn step(&mut self, incident: u64, step: &Step) {
        let target = match self.open.get_mut(&incident) {
            Some(i) => Some(i),
            None => self.history.iter_mut().rev().find(|i| i.id == incident),
        };
        if let Some(i) = target {
            i.steps.push(step.clone());
        }
    }

    /// DNS points at `to`: the instance moved, its cooldown starts at the last step.
    fn applied(
        &mut self,
        incident: u64,
        instance: &InstanceId,
        to: &DatacenterId,
        cooldown: Duration,
    ) {
        if let Some(i) = self.open.get_mut(&incident) {
            i.applied = true;
            let at = i.steps.last().map_or(i.opened, |s| s.at);
            self.cooldown_until.insert(instance.clone(), at + cooldown);
        }
        self.active.insert(instance.clone(), to.clone());
        self.failback.remove(instance);
    }

    fn push_history(&mut self, incident: Incident) {
        self.history.push_back(incident);
        while self.history.len() > self.max_history {
            self.history.pop_front();
        }
    }

    /// The open incident of an instance, if one is being evaluated.
    pub fn open_for(&self, instance: &InstanceId) -> Option<&Incident> {
        self.open.values().find(|i| &i.instance == instance)
    }

    /// The records that rebuild this ledger: what compaction keeps. Open incidents are
    /// replayed as they were recorded, so a restart still finds them.
    pub fn snapshot(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for (instance, active) in &self.active {
            out.push(Record::Instance {
                instance: instance.clone(),
                active: active.clone(),
                cooldown_until: self.cooldown_until.get(instance).copied(),
            });
        }
        for (instance, to) in &self.failback {
            out.push(Record::FailbackRecommended {
                instance: instance.clone(),
                to: to.clone(),
                at: SystemTime::UNIX_EPOCH,
            });
        }
        for (instance, (trigger, at)) in &self.pending {
            out.push(Record::Received {
                instance: instance.clone(),
                trigger: trigger.clone(),
                at: *at,
            });
        }
        for incident in &self.history {
            out.push(Record::Past {
                incident: Box::new(incident.clone()),
            });
        }
        for i in self.open.values() {
            out.push(Record::Opened {
                incident: i.id,
                instance: i.instance.clone(),
                trigger: i.triggers[0].clone(),
                at: i.opened,
                led: i.led.clone(),
            });
            for t in &i.triggers[1..] {
                out.push(Record::Joined {
                    incident: i.id,
                    trigger: t.clone(),
                });
            }
            for s in &i.steps {
                out.push(Record::Step {
                    incident: i.id,
                    step: s.clone(),
                });
            }
            if let Some((from, to)) = &i.intent {
                out.push(Record::Intent {
                    incident: i.id,
                    instance: i.instance.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    record: String::new(),
                    values: Vec::new(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "incident_tests.rs"]
mod tests;
