//! The fleet: who leads, and the fence every side effect passes first.
//!
//! Leadership alone gives no safety (client-go's leader election warns as much): a
//! leader paused for longer than its lease wakes up believing it still leads. So the
//! engine acts only after [`Coordination::fence`] has succeeded: a transaction the
//! store applies only while this agent's leadership term is still the current one,
//! and which records what the agent is about to do, so that a successor can finish it.
//!
//! What comes next (issue 17): the shared ledger (active datacenters, cooldowns, open
//! incidents and their intents), candidates handed from followers to the leader, and
//! the observations every agent publishes. They extend this trait.

use std::fmt;

use async_trait::async_trait;
use thiserror::Error;
use tokio::sync::watch;

use super::error::AdapterErrorKind;

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

/// What the leader is about to do, recorded by the fence before it does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Names the record under the fleet's `intents/`: one per incident, rewritten at
    /// each step (e.g. `cache-1/42`).
    pub id: String,
    /// The record itself (the engine's serialized intent).
    pub record: String,
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
    #[error("coordination store {kind}: {message}")]
    Store {
        kind: AdapterErrorKind,
        message: String,
    },
}

/// The fleet's coordination, as the engine acts through it.
#[async_trait]
pub trait Coordination: Send + Sync + fmt::Debug {
    /// This agent's name in the fleet.
    fn agent(&self) -> &str;

    /// This agent's leadership, kept current by the adapter: the engine reads the
    /// latest value or waits for the next one.
    fn leadership(&self) -> watch::Receiver<Leadership>;

    /// Records `intent` if, and only if, this agent still leads in `term`, in one
    /// transaction of the store. An `Ok` allows the one side effect the intent names.
    async fn fence(&self, term: Term, intent: &Intent) -> Result<(), FenceError>;
}
