//! What a fleet of agents shares in its store (pure: the records and what a new leader
//! makes of them). The engine writes and reads them through
//! [`Coordination`](super::ports::Coordination), as JSON the adapter never looks into.
//!
//! - `instances/<instance>`: [`SharedInstance`], written by the leader under its fence:
//!   where DNS sends the instance's clients, its cooldown, and the act its leader
//!   fenced last in an evaluation not yet settled ([`OpenAct`]).
//! - `candidates/<instance>`: [`Handed`], the latest candidate any agent took from
//!   Alertmanager, put without a fence; the leader deletes it when the evaluation it
//!   started settles, unless it was delivered again meanwhile.
//! - `fleet/imported`: the agent whose single-agent state became the fleet's.
//! - `observations/<agent>`: [`Observer`], every agent under its own lease: where it
//!   runs, and what its collector saw last of every endpoint (issue 18).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::incident::{StepName, Trigger};
use crate::model::rfc3339;
use crate::model::{DatacenterId, InstanceId};

/// The key of `fleet/` naming the agent whose state directory the fleet imported.
pub const IMPORTED: &str = "imported";

/// What the fleet knows of an instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedInstance {
    /// Where DNS sends the instance's clients, once a leader settled a failover (or
    /// imported a single agent's state); absent: the configured `active_dc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<DatacenterId>,
    #[serde(
        with = "rfc3339::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cooldown_until: Option<SystemTime>,
    /// The act a leader fenced last in an evaluation it has not settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenAct>,
}

/// An act a leader was allowed to begin: the fence recorded it before the act.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenAct {
    pub agent: String,
    pub term: i64,
    /// The incident in that agent's own journal.
    pub incident: u64,
    pub from: DatacenterId,
    pub to: DatacenterId,
    /// `pre_failover_hook`, `promote`, `dns` or `post_failover_hook`.
    pub act: StepName,
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
}

impl OpenAct {
    /// Whether DNS may have been changed: the DNS act was allowed to begin.
    pub fn may_have_switched(&self) -> bool {
        matches!(self.act, StepName::Dns | StepName::PostFailoverHook)
    }
}

/// A candidate handed to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handed {
    pub trigger: Trigger,
    /// The agent that took the delivery.
    pub agent: String,
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
}

/// An agent as it says it is there, with what it sees: published under its lease once
/// a collection round, so that a dead agent's record, and its views, go with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observer {
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<DatacenterId>,
    /// When it published this record.
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
    /// Its latest view of each endpoint, by instance then datacenter. Absent in the
    /// records of agents older than the summaries (and of an agent that collects
    /// nothing yet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<InstanceId, BTreeMap<DatacenterId, Seen>>,
}

/// One endpoint as an observer's collector saw it last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// Its latest collection round succeeded and is no older than two intervals.
    pub up: bool,
    /// The PING latency of that round, in milliseconds (to the microsecond); absent
    /// when it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// When that round finished.
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
}

/// Decodes a record of the store; a record this agent cannot read is logged by the
/// caller and treated as absent (another version of the agent may have written it).
pub fn decode<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(value)
}

pub fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("fleet records serialize")
}

/// What a new leader does with an instance whose last evaluation a leader of an
/// earlier term did not settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfinished {
    /// The DNS change may have been made: read the record; pointing at `to`, complete
    /// the incident without writing; otherwise evaluate afresh.
    CheckDns { to: DatacenterId },
    /// Nothing was written to DNS: evaluate afresh, with new probes. The old plan is
    /// never replayed.
    Afresh,
}

/// The open act of `instance` a leader in `term` must finish, if any: one fenced in an
/// earlier term (by any agent, this one included).
pub fn unfinished(shared: &SharedInstance, term: i64) -> Option<Unfinished> {
    let open = shared.open.as_ref().filter(|o| o.term != term)?;
    Some(match open.may_have_switched() {
        true => Unfinished::CheckDns {
            to: open.to.clone(),
        },
        false => Unfinished::Afresh,
    })
}

/// The trigger of an evaluation a new leader starts for an unfinished one.
pub fn successor_trigger(instance: &InstanceId, open: &OpenAct) -> Trigger {
    Trigger {
        source: "fleet".into(),
        name: format!(
            "{instance}: {} began a failover to {} in term {} and stopped after fencing {}",
            open.agent,
            open.to,
            open.term,
            open.act.as_str()
        ),
        fingerprint: String::new(),
        datacenter: Some(open.from.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(act: StepName, term: i64) -> SharedInstance {
        SharedInstance {
            active: Some(DatacenterId::new("a")),
            cooldown_until: None,
            open: Some(OpenAct {
                agent: "agent-a".into(),
                term,
                incident: 7,
                from: DatacenterId::new("a"),
                to: DatacenterId::new("b"),
                act,
                at: SystemTime::UNIX_EPOCH,
            }),
        }
    }

    #[test]
    fn a_successor_reads_dns_only_when_the_dns_act_was_fenced() {
        let b = DatacenterId::new("b");
        assert_eq!(
            unfinished(&open(StepName::Dns, 5), 9),
            Some(Unfinished::CheckDns { to: b.clone() })
        );
        assert_eq!(
            unfinished(&open(StepName::PostFailoverHook, 5), 9),
            Some(Unfinished::CheckDns { to: b })
        );
        for act in [StepName::PreFailoverHook, StepName::Promote] {
            assert_eq!(unfinished(&open(act, 5), 9), Some(Unfinished::Afresh));
        }
    }

    #[test]
    fn the_leaders_own_term_and_settled_instances_are_not_unfinished() {
        assert_eq!(unfinished(&open(StepName::Dns, 9), 9), None);
        assert_eq!(unfinished(&SharedInstance::default(), 9), None);
    }

    #[test]
    fn observations_read_both_ways() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_735_787_045);
        let seen = |up: bool| Seen {
            up,
            latency_ms: up.then_some(0.512),
            at,
        };
        let observer = Observer {
            agent: "agent-a".into(),
            datacenter: Some(DatacenterId::new("a")),
            at,
            endpoints: [(
                InstanceId::new("cache"),
                [
                    (DatacenterId::new("a"), seen(true)),
                    (DatacenterId::new("b"), seen(false)),
                ]
                .into_iter()
                .collect(),
            )]
            .into_iter()
            .collect(),
        };
        let text = encode(&observer);
        assert_eq!(
            text,
            r#"{"agent":"agent-a","datacenter":"a","at":"2025-01-02T03:04:05Z","endpoints":{"cache":{"a":{"up":true,"latency_ms":0.512,"at":"2025-01-02T03:04:05Z"},"b":{"up":false,"at":"2025-01-02T03:04:05Z"}}}}"#
        );
        assert_eq!(decode::<Observer>(&text).unwrap(), observer);
        // A record of an agent before the summaries reads with no endpoints...
        let old = r#"{"agent":"agent-b","at":"2025-01-02T03:04:05Z"}"#;
        let read = decode::<Observer>(old).unwrap();
        assert!(read.endpoints.is_empty() && read.datacenter.is_none());
        // ...and such an agent reads this one, the summary aside.
        #[derive(Deserialize)]
        struct Before {
            agent: String,
            #[serde(with = "rfc3339::required")]
            at: SystemTime,
        }
        let before = decode::<Before>(&text).unwrap();
        assert_eq!((before.agent.as_str(), before.at), ("agent-a", at));
    }

    #[test]
    fn records_read_back_as_written_and_stay_small() {
        let shared = open(StepName::Dns, 5);
        assert_eq!(decode::<SharedInstance>(&encode(&shared)).unwrap(), shared);
        assert_eq!(encode(&SharedInstance::default()), "{}");
        assert!(decode::<SharedInstance>("not json").is_err());
    }
}
