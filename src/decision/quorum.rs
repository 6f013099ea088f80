//! Counting witnesses (issue 18; pure). In a fleet every agent probes every datacenter
//! from where it runs; a confirmation round of the leader collects each observer's
//! fresh probes and this module turns them into the one round the policy judges, with
//! the principle kept in every case: **a fault on one observer's own path never causes a
//! failover and never blocks one by itself.**
//!
//! - The active datacenter is down when a quorum of the observers that are not in it
//!   saw it down (the quorum: a majority of the configured agents outside it, or
//!   `coordination.quorum`). The down views of observers inside it do not count: when
//!   it dies they die with it, and what they cannot reach they cannot reach from within.
//! - One observer outside seeing it down while another sees it answer is not the
//!   default quorum, even where a majority is one (a fleet of two): that is one path
//!   against another. A `coordination.quorum` the operator set is taken as set.
//! - Seen down by this agent, below the quorum, and seen answering by any observer: an
//!   agent-side partition, held, naming who saw what.
//! - Seen down by this agent, below the quorum, and answering for nobody (the others
//!   did not answer in time): this agent's own view, judged as a single agent's.
//! - Any other datacenter (a target) is up when at least as many observers saw it up
//!   as down: one observer cut off from it does not block the failover.
//! - With no other observer (one agent, or none answered) the round is this agent's
//!   own, as before.
//!
//! Sentinel's objectively-down needs a quorum of Sentinels the same way; orchestrator
//! asks a dead primary's replicas to agree; Route53 counts a target healthy when more
//! than 18 % of its checkers say so.

use std::collections::{BTreeMap, BTreeSet};

use super::ports::{Probe, Round, View, Witnesses};
use crate::model::DatacenterId;

/// How many observers outside the active datacenter must see it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// A majority of the configured agents that are not in the failing datacenter.
    Majority,
    /// Exactly this many (`coordination.quorum`).
    Fixed(usize),
}

impl Quorum {
    /// The number for `outside` configured agents outside the failing datacenter.
    pub fn of(self, outside: usize) -> usize {
        match self {
            Quorum::Majority => outside / 2 + 1,
            Quorum::Fixed(n) => n,
        }
    }
}

/// The observers one round counts, each with where it runs: the configured agents
/// (`coordination.agents`) when the list is given, else the agents present.
///
/// Counted against the list, an observer that died is still one the quorum needed: the
/// survivors alone do not make a majority of a fleet they are the smaller part of.
/// Nobody waits for the dead, though: the leader waits only for those present.
#[derive(Debug, Clone, PartialEq)]
pub struct Observers {
    counted: BTreeMap<String, Option<DatacenterId>>,
    configured: bool,
    awaited: BTreeSet<String>,
}

impl Observers {
    /// `configured`: the list, empty when not given; `present`: the agents that said
    /// they are there; `me`: this agent and where it runs.
    pub fn new(
        configured: &BTreeMap<String, Option<DatacenterId>>,
        present: &BTreeMap<String, Option<DatacenterId>>,
        me: (&str, Option<&DatacenterId>),
    ) -> Self {
        let mut counted = if configured.is_empty() {
            present.clone()
        } else {
            configured.clone()
        };
        counted
            .entry(me.0.to_owned())
            .or_insert_with(|| me.1.cloned());
        let awaited = present
            .keys()
            .filter(|a| a.as_str() != me.0 && counted.contains_key(*a))
            .cloned()
            .collect();
        Self {
            counted,
            configured: !configured.is_empty(),
            awaited,
        }
    }

    /// Whose answers the leader waits for: the counted agents present, but itself.
    pub fn awaited(&self) -> &BTreeSet<String> {
        &self.awaited
    }

    /// Whether `observer`'s view counts: with a list, only a configured agent's does.
    pub fn counts(&self, observer: &str) -> bool {
        !self.configured || self.counted.contains_key(observer)
    }

    /// How many counted observers are not in `active`: the quorum is taken of them.
    pub fn outside(&self, active: &DatacenterId) -> usize {
        self.counted
            .values()
            .filter(|dc| dc.as_ref() != Some(active))
            .count()
    }
}

/// Counts the views of one round: the round the policy judges, with its witnesses.
/// `own` is this agent's view (its probes are `round`'s); `others` the observers that
/// answered in time; `agents_outside` how many configured agents are not in `active`.
pub fn count(
    round: &Round,
    own: View,
    others: Vec<View>,
    active: &DatacenterId,
    agents_outside: usize,
    quorum: Quorum,
) -> Round {
    let mut views = vec![own];
    views.extend(others);
    let mut witnesses = witnesses(&views, active, quorum.of(agents_outside).max(1));
    let own_down = round.probe(active).is_some_and(|p| !p.up);
    // A single "down" against an "up" is one observer's path against another's: by
    // default it never outweighs it, even where a majority is one (a fleet of two). A
    // quorum the operator set is taken as set, as Sentinel takes its own.
    let single =
        quorum == Quorum::Majority && witnesses.down.len() == 1 && !witnesses.up.is_empty();
    let quorum_down = witnesses.down.len() >= witnesses.quorum && !single;
    witnesses.partition = own_down && !quorum_down && !witnesses.up.is_empty();
    let mut counted = round.clone();
    if views.len() > 1 {
        for probe in &mut counted.probes {
            if &probe.datacenter != active {
                *probe = target(&views, probe);
            } else if quorum_down {
                (probe.up, probe.health) = (false, 0.0);
            }
            // Otherwise this agent's own view of the active datacenter: answering, or
            // held as a partition when others see it answer, or (seen answering by
            // nobody, below the quorum) judged as a single agent's, the clients'
            // evidence still guarding it.
        }
    }
    witnesses.views = views;
    counted.witnesses = Some(witnesses);
    counted
}

/// Who saw `active` how. Down counts only from observers outside it; up counts from
/// any observer, as evidence that it answers.
fn witnesses(views: &[View], active: &DatacenterId, quorum: usize) -> Witnesses {
    let (mut down, mut up, mut inside) = (Vec::new(), Vec::new(), Vec::new());
    for v in views {
        let Some(p) = v.saw(active) else { continue };
        let name = v.observer.clone();
        match (p.up, v.datacenter.as_ref() == Some(active)) {
            (true, _) => up.push(name),
            (false, false) => down.push(name),
            (false, true) => inside.push(name),
        }
    }
    Witnesses {
        down,
        up,
        inside,
        quorum,
        partition: false,
        views: Vec::new(),
    }
}

/// A target by its votes: up when at least as many observers saw it up as down, with
/// the best health seen; down otherwise.
fn target(views: &[View], own: &Probe) -> Probe {
    let seen: Vec<&Probe> = views
        .iter()
        .filter_map(|v| v.saw(&own.datacenter))
        .collect();
    let up = seen.iter().filter(|p| p.up).count();
    if up > 0 && up * 2 >= seen.len() {
        return best_up(views, &own.datacenter).unwrap_or_else(|| own.clone());
    }
    Probe {
        up: false,
        health: 0.0,
        ..own.clone()
    }
}

/// The healthiest probe of `dc` among the views that saw it up.
fn best_up(views: &[View], dc: &DatacenterId) -> Option<Probe> {
    views
        .iter()
        .filter_map(|v| v.saw(dc))
        .filter(|p| p.up)
        .max_by(|a, b| a.health.total_cmp(&b.health))
        .cloned()
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;
