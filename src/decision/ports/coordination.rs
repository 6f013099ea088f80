//! The fleet: who leads, and the fence every side effect passes first.
//!
//! Leadership alone gives no safety (client-go's leader election warns as much): a
//! leader paused for longer than its lease wakes up believing it still leads. So the
//! engine acts only after [`Coordination::fence`] has succeeded: a transaction the
//! store applies only while this agent's leadership term is still the current one,
//! and which records what the agent is about to do, so that a successor can finish it.
//!
//! Besides leadership, the store keeps what every agent must see the same: a few tables
//! of records ([`Table`]) whose values the engine writes and reads, opaque to the
//! adapter. The leader writes the shared ledger only under its fence; every agent
//! hands the candidates it took from Alertmanager to the leader with [`Coordination::put`].

use std::fmt;

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::watch;

use super::error::AdapterErrorKind;
use crate::model::DatacenterId;

/// A leadership term: the revision at which the leader's key was created. Terms only
/// grow, and two leaderships never share one, so an action fenced on a term cannot
/// pass once another agent has led.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub i64);

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The leader as an agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's `coordination.agent.name`.
    pub name: String,
    pub term: Term,
}

/// This agent's view of the fleet's leadership, as the engine watches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// This agent leads in `term`, and renewed its lease recently enough that it cannot
    /// have expired (the adapter demotes itself with a margin).
    Leader { term: Term },
    /// Another agent leads, or nobody does at this moment (`None`: the old leader's
    /// lease expired and no successor has taken the key yet).
    Follower { leader: Option<LeaderInfo> },
    /// The store cannot be reached, or has no quorum: nobody may act on this agent's
    /// word, whatever it was before.
    Down,
}

impl Leadership {
    /// The term in which this agent may act, if it leads.
    pub fn term(&self) -> Option<Term> {
        match self {
            Self::Leader { term } => Some(*term),
            _ => None,
        }
    }
}

/// The fleet's shared records, by kind. Each is a table of keys (instance names, or the
/// fleet's own keys) to values the engine writes and reads (JSON): the adapter stores
/// them and never looks inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Per instance: its active datacenter, its cooldown, and the open incident with the
    /// step its leader fenced last. Written only through [`Coordination::fence`].
    Instances,
    /// Per instance: the latest candidate any agent took from Alertmanager, waiting for
    /// the leader. Written by every agent with [`Coordination::put`].
    Candidates,
    /// The fleet's own keys (e.g. whether a single agent's state was imported).
    Fleet,
    /// Per agent: what it sees of every endpoint, published under its lease each
    /// collection round, so a dead agent's observations vanish with it.
    Observations,
    /// Per instance: the confirmation round the leader asks every observer for.
    Rounds,
    /// Per instance and agent (`<instance>/<agent>`): its answer to the latest round,
    /// under its lease.
    Answers,
}

impl Table {
    /// The table's name in the store's keys (`<prefix>/<name>/<key>`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Instances => "instances",
            Table::Candidates => "candidates",
            Table::Fleet => "fleet",
            Table::Observations => "observations",
            Table::Rounds => "rounds",
            Table::Answers => "answers",
        }
    }
}

/// One record of a table, with the store's revision of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// Grows with every change of the store: a record written later has a larger one.
    pub revision: i64,
}

/// A write the leader makes under its fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put {
        table: Table,
        key: String,
        value: String,
    },
    /// Deletes the record unless it changed after `revision` (a candidate delivered again
    /// while the leader was evaluating the one it read stays for the next evaluation).
    /// Absent, or changed since: nothing happens, and the other writes still apply.
    DeleteUpTo {
        table: Table,
        key: String,
        revision: i64,
    },
}

/// The store did not answer, or failed.
#[derive(Debug, Clone, Error)]
#[error("coordination store {kind}: {message}")]
pub struct StoreError {
    pub kind: AdapterErrorKind,
    pub message: String,
}

/// Why a fence did not pass.
#[derive(Debug, Error)]
pub enum FenceError {
    /// This agent does not lead in `term` (any more): another agent leads, the lease
    /// expired, or the agent demoted itself. The action must not happen.
    #[error("not the leader in term {term}")]
    NotLeader {
        term: Term,
        /// The leader the store named when it refused, if any.
        leader: Option<LeaderInfo>,
    },
    /// The store did not answer, or failed: the action must not happen either, and may
    /// be fenced again while this agent still leads.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The fleet's coordination, as the engine acts through it.
#[async_trait]
pub trait Coordination: Send + Sync + fmt::Debug {
    /// This agent's name in the fleet.
    fn agent(&self) -> &str;

    /// Where this agent runs (`coordination.agent.datacenter`), if it said.
    fn datacenter(&self) -> Option<DatacenterId>;

    /// This agent's leadership, kept current by the adapter: the engine reads the
    /// latest value or waits for the next one.
    fn leadership(&self) -> watch::Receiver<Leadership>;

    /// Applies `writes` if, and only if, this agent still leads in `term`, in one
    /// transaction of the store. An `Ok` allows the one side effect they record.
    async fn fence(&self, term: Term, writes: &[Write]) -> Result<(), FenceError>;

    /// Every record of `table`, read from the store's quorum (never a stale replica).
    async fn list(&self, table: Table) -> Result<Vec<Entry>, StoreError>;

    /// Writes one record without a fence (what every agent may write: candidates).
    /// Returns the record's new revision.
    async fn put(&self, table: Table, key: &str, value: &str) -> Result<i64, StoreError>;

    /// Writes one record bound to this agent's lease: it goes when the agent does (its
    /// lease expires or is revoked). Fails while the agent has no lease.
    async fn publish(&self, table: Table, key: &str, value: &str) -> Result<i64, StoreError>;
}
