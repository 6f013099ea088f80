//! What the policy and its adapters exchange about one evaluation: the probes of each
//! confirmation round, what the clients say, and the verdict with the reason for a hold.
//! The AI advisor reads them as evidence; the policy (`decision::policy`) computes them.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::DatacenterId;
use crate::model::replication::{Budget, Estimate};

/// A target must be up with at least this health in every round (status `degraded` or
/// better).
pub const TARGET_GOOD_FROM: f64 = 0.5;
/// A target at or above this health (status `healthy`) costs no confidence.
pub const TARGET_HEALTHY_FROM: f64 = 0.8;

/// What the clients say, as far as the client impact advisor could tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    /// No client impact advisor, or it failed, timed out or found too few logs.
    #[default]
    Unknown,
    /// Clients report no more errors than their baseline.
    Normal,
    /// Clients report errors well above their baseline.
    Failing,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Unknown => "unknown",
            ClientStatus::Normal => "normal",
            ClientStatus::Failing => "failing",
        }
    }
}

/// One datacenter as one confirmation round saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub datacenter: DatacenterId,
    /// The endpoint answered PING and INFO in this round.
    pub up: bool,
    /// Health score of this round, 0 to 1 (0 when down).
    pub health: f64,
    /// Sentinel reports a failover of this datacenter's primary in progress.
    pub sentinel_failover: bool,
    /// How long ago the datacenter's Sentinel last had a valid PING reply from the
    /// primary, when a Sentinel answered and does not consider it down.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
    pub sentinel_heard: Option<Duration>,
}

/// Fresh probes of every datacenter of the instance, taken together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    #[serde(with = "crate::model::rfc3339::required")]
    pub at: SystemTime,
    pub probes: Vec<Probe>,
    /// In a fleet: every observer's view of this round, and how the active datacenter
    /// was counted (`decision::quorum`); `probes` are then the counted ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnesses: Option<Witnesses>,
}

/// One observer's fresh probes in a confirmation round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The agent's `coordination.agent.name`.
    pub observer: String,
    /// Where it runs (`coordination.agent.datacenter`), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<DatacenterId>,
    pub probes: Vec<Probe>,
}

impl View {
    /// Its probe of `dc`, if it probed it.
    pub fn saw(&self, dc: &DatacenterId) -> Option<&Probe> {
        self.probes.iter().find(|p| &p.datacenter == dc)
    }
}

/// What the observers of a round said of the active datacenter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Witnesses {
    /// Observers outside the active datacenter that saw it down.
    pub down: Vec<String>,
    /// Observers, inside it or not, that saw it answer.
    pub up: Vec<String>,
    /// Observers inside it that saw it down (not counted).
    pub inside: Vec<String>,
    /// How many had to see it down.
    pub quorum: usize,
    /// This agent saw it down, fewer than the quorum did, and some observer saw it
    /// answer: a fault on this agent's own path.
    pub partition: bool,
    /// Every observer's view, this agent's first.
    pub views: Vec<View>,
}

impl Round {
    /// The probe of `dc` in this round; `None` when it was not probed.
    pub fn probe(&self, dc: &DatacenterId) -> Option<&Probe> {
        self.probes.iter().find(|p| &p.datacenter == dc)
    }
}

/// Why an evaluation did not fail over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// The alert names an instance the configuration does not have.
    UnknownInstance,
    /// An earlier failover of this instance is too recent.
    Cooldown {
        #[serde(with = "crate::model::rfc3339::required")]
        until: SystemTime,
    },
    /// The active datacenter answered in round `round` (1-based).
    ActiveRecovered { round: usize },
    /// Sentinel is failing over inside the active datacenter; decide again later.
    SentinelFailover {
        #[serde(with = "seconds")]
        waited: Duration,
        #[serde(with = "seconds")]
        wait: Duration,
    },
    /// No other datacenter was up and healthy enough in every round.
    NoHealthyTarget,
    /// Every datacenter of the instance was down.
    AllDown,
    /// The evidence was not strong enough.
    LowConfidence { confidence: f64, threshold: f64 },
    /// The active datacenter was already the requested target.
    AlreadyActive,
    /// The requested target is not one of the instance's datacenters.
    UnknownTarget { datacenter: DatacenterId },
    /// The pre-failover hook said no.
    Vetoed { detail: String },
    /// The probes see the active datacenter bad, but its clients log no more errors
    /// than usual, or (`sentinel_heard`) its Sentinel still hears the primary: the
    /// agent, not Redis, may be cut off.
    PartitionSuspected {
        active: DatacenterId,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
        sentinel_heard: Option<Duration>,
    },
    /// In a fleet: this agent cannot reach the active datacenter, and fewer observers
    /// than the quorum agree while others reach it. Its kind is `partition_suspected`.
    PartitionWitnessed {
        active: DatacenterId,
        /// Observers that could not reach it (this agent among them), and those that
        /// saw it answer.
        down: Vec<String>,
        up: Vec<String>,
        /// How many observers outside it saw it down, and how many had to.
        down_outside: usize,
        quorum: usize,
    },
    /// The AI advisor's hold counted (the evidence was ambiguous; see
    /// `decision::advice::rules`). `confidence` is the policy's.
    Advised {
        target: DatacenterId,
        confidence: f64,
        advice_confidence: f64,
    },
    /// Failing over to `to` would leave more of `from`'s writes behind than
    /// `max_data_loss` allows, or replication exists and how much is not known.
    DataLossBudget {
        from: DatacenterId,
        to: DatacenterId,
        estimate: Box<Estimate>,
        budget: Budget,
    },
}

impl Hold {
    /// A short sentence for logs, notifications and the API.
    pub fn describe(&self) -> String {
        match self {
            Hold::UnknownInstance => "unknown instance".into(),
            Hold::Cooldown { until } => format!(
                "cooldown: an earlier failover of this instance; no automatic failover until {}",
                crate::model::rfc3339::format(*until)
            ),
            Hold::ActiveRecovered { round } => {
                format!("the active datacenter answered in confirmation round {round}")
            }
            Hold::SentinelFailover { waited, wait } => format!(
                "Sentinel is failing over inside the active datacenter (waited {} of {})",
                crate::config_kit::duration::show(*waited),
                crate::config_kit::duration::show(*wait)
            ),
            Hold::NoHealthyTarget => "no healthy target".into(),
            Hold::AllDown => "every datacenter of the instance is down".into(),
            Hold::LowConfidence {
                confidence,
                threshold,
            } => format!("confidence {confidence:.2} is below the threshold {threshold:.2}"),
            Hold::AlreadyActive => "the target is already the active datacenter".into(),
            Hold::UnknownTarget { datacenter } => {
                format!("{datacenter} is not one of the instance's datacenters")
            }
            Hold::Vetoed { detail } => format!("vetoed by the pre-failover hook: {detail}"),
            Hold::PartitionSuspected {
                active,
                sentinel_heard: None,
            } => format!(
                "agent-side partition suspected: the probes see {active} failing, but its \
                 clients log no more errors than usual"
            ),
            Hold::PartitionSuspected {
                active,
                sentinel_heard: Some(heard),
            } => format!(
                "agent-side partition suspected: the agent cannot reach {active}'s primary, \
                 but {active}'s Sentinel had a PING reply from it {:.1} s ago and the clients \
                 are not reported failing",
                heard.as_secs_f64()
            ),
            Hold::PartitionWitnessed {
                active,
                down,
                up,
                down_outside,
                quorum,
            } => format!(
                "agent-side partition suspected: {} cannot reach {active}, but {} \
                 reach it ({down_outside} of the {quorum} observers outside {active} needed \
                 saw it down)",
                down.join(", "),
                up.join(", "),
            ),
            Hold::Advised {
                target,
                confidence,
                advice_confidence,
            } => format!(
                "the AI advisor advised holding (confidence {advice_confidence:.2}) while the \
                 evidence was ambiguous; the policy supported {target} with confidence \
                 {confidence:.2}"
            ),
            Hold::DataLossBudget {
                from,
                to,
                estimate,
                budget,
            } => {
                let behind = match (estimate.bytes, estimate.seconds) {
                    (None, None) => format!(
                        "{to} copies {from}'s writes, but how far behind it is cannot be told"
                    ),
                    _ => format!("{to} is behind {from} by {} of writes", estimate.amount()),
                };
                format!(
                    "{behind}; the data-loss budget is {budget}; held. Force a failover to \
                     accept the loss"
                )
            }
        }
    }

    /// Short machine name, for metrics labels and alert labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::UnknownInstance => "unknown_instance",
            Hold::Cooldown { .. } => "cooldown",
            Hold::ActiveRecovered { .. } => "active_recovered",
            Hold::SentinelFailover { .. } => "sentinel_failover",
            Hold::NoHealthyTarget => "no_healthy_target",
            Hold::AllDown => "all_down",
            Hold::LowConfidence { .. } => "low_confidence",
            Hold::AlreadyActive => "already_active",
            Hold::UnknownTarget { .. } => "unknown_target",
            Hold::Vetoed { .. } => "vetoed",
            Hold::PartitionSuspected { .. } | Hold::PartitionWitnessed { .. } => {
                "partition_suspected"
            }
            Hold::Advised { .. } => "advised",
            Hold::DataLossBudget { .. } => "data_loss_budget",
        }
    }
}

/// Durations as seconds (a float) in records people read.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// Optional durations as seconds (a float), absent when `None`.
mod opt_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::seconds::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// What the evidence supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Failover {
        target: DatacenterId,
        confidence: f64,
    },
    Hold(Hold),
}
