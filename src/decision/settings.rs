//! The part of the configuration the decision reads: the evaluation core and the engine
//! running it take one snapshot of it per evaluation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config_kit::limits::Limits;
use crate::decision::ports::{RecordRef, SwitchPolicy};
use crate::model::replication::Budget;
use crate::model::{DatacenterId, Instance, InstanceId};

/// After a failover: the error rate over this long after it...
pub const EFFECT_AFTER: Duration = Duration::from_secs(10 * 60);
/// ...against this long before it.
pub const EFFECT_BEFORE: Duration = Duration::from_secs(15 * 60);

/// The DNS record of one instance and its value per datacenter.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    pub record: RecordRef,
    pub ttl: u32,
    pub values: BTreeMap<DatacenterId, String>,
}

/// The part of the configuration the engine reads, replaced as a whole on reload.
#[derive(Debug, Clone)]
pub struct Settings {
    pub instances: BTreeMap<InstanceId, Instance>,
    pub failover: FailoverSettings,
    pub records: BTreeMap<InstanceId, InstanceRecord>,
    /// `--no-failover`: recommend only, whatever `auto_failover` says.
    pub no_failover: bool,
    pub switch: SwitchPolicy,
    /// `ai_max_hold`: the longest AI advice may hold back a hard outage.
    pub ai_max_hold: Duration,
    /// After a failover, client errors this long before it are compared with this long
    /// after it: `(before, after)`.
    pub effect_window: (Duration, Duration),
    /// `limits`: incidents per delivery, label lengths, the history kept.
    pub limits: Limits,
    /// In a fleet: whose views a confirmation round counts.
    pub observers: ObserverSettings,
}

impl Settings {
    /// Acting is allowed: automatic failover on and not overridden.
    pub fn acts(&self) -> bool {
        self.failover.auto && !self.no_failover
    }
}

/// In a fleet (`coordination`): the observers a confirmation round counts
/// (`decision::quorum`). The default, also a single agent's: the agents present, a
/// majority of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObserverSettings {
    /// `coordination.agents`: every configured agent and where it runs (`None`: at a
    /// witness site, outside every datacenter). Empty: the agents present count.
    pub agents: BTreeMap<String, Option<DatacenterId>>,
    /// `coordination.quorum`: how many configured agents outside the failing datacenter
    /// must see it down. `None`: a majority of them.
    pub quorum: Option<usize>,
}

/// When the agent may move traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverSettings {
    /// `auto_failover`: act on confirmed alerts without a person. Default false.
    pub auto: bool,
    /// `failover_confidence_threshold`, in [0, 1]. Default 0.95.
    pub confidence_threshold: f64,
    /// `failover_consecutive_threshold`: rounds of fresh probes that must agree.
    /// Default 3.
    pub consecutive_threshold: u32,
    /// `ai_failover_confidence`, in [0, 1]. Default 0.85.
    pub ai_confidence: f64,
    /// `ai_consecutive_recommendations`. Default 2.
    pub ai_consecutive_recommendations: u32,
    /// `confirm_interval`: time between two confirmation rounds of fresh probes.
    /// Default 2 s.
    pub confirm_interval: Duration,
    /// `failover_cooldown`: after a failover of an instance, no automatic failover of it
    /// until this has passed (an acknowledgement through the API lifts it). Default 30 min.
    pub cooldown: Duration,
    /// `failback_stable_for`: how long the old datacenter must stay healthy before a
    /// failback is recommended. Default 30 min.
    pub failback_stable_for: Duration,
    /// `auto_failback`: fail back by itself once that is recommended. Default false.
    pub auto_failback: bool,
    /// `failover_label`: the label (value "true") that makes an alert a failover
    /// candidate. Default `failover_candidate`.
    pub label: String,
    /// `sentinel_failover_wait`: how long a decision waits while Sentinel fails over
    /// inside the active datacenter, before it decides. Default 60 s.
    pub sentinel_wait: Duration,
    /// Instances with `promote_on_failover: true`: the target's Redis gets
    /// `REPLICAOF NO ONE` before DNS moves.
    pub promote: BTreeSet<InstanceId>,
    /// `hooks`: commands run around a failover.
    pub hooks: HookSettings,
    /// `max_data_loss`: how much of the active datacenter's writes a failover may leave
    /// behind, per instance.
    pub data_loss: DataLossSettings,
}

impl FailoverSettings {
    /// The data-loss budget of an instance.
    pub fn budget(&self, instance: &InstanceId) -> Budget {
        self.data_loss
            .instances
            .get(instance)
            .copied()
            .unwrap_or(self.data_loss.default)
    }
}

/// `max_data_loss`, resolved per instance: an instance's own key wins; else a cache is
/// unbounded and a store takes the top-level key, or [`Budget::STORE`].
#[derive(Debug, Clone, PartialEq)]
pub struct DataLossSettings {
    /// The budget of every instance not listed: the top-level `max_data_loss`, default
    /// [`Budget::STORE`] (1 MiB and 10 s).
    pub default: Budget,
    /// Instances whose budget is not the default.
    pub instances: BTreeMap<InstanceId, Budget>,
}

impl Default for DataLossSettings {
    fn default() -> Self {
        Self {
            default: Budget::STORE,
            instances: BTreeMap::new(),
        }
    }
}

/// `instances[].data`: what the instance holds, which decides its default budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataKind {
    /// Data that exists nowhere else: a failover that drops writes loses them. Default.
    #[default]
    Store,
    /// Data that refills from its source: an outage costs more than cold keys, so a
    /// cache has no budget unless it says so.
    Cache,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            auto: false,
            confidence_threshold: default_failover_confidence_threshold(),
            consecutive_threshold: default_failover_consecutive_threshold(),
            ai_confidence: default_ai_failover_confidence(),
            ai_consecutive_recommendations: default_ai_consecutive_recommendations(),
            confirm_interval: default_confirm_interval(),
            cooldown: default_failover_cooldown(),
            failback_stable_for: default_failback_stable_for(),
            auto_failback: false,
            label: DEFAULT_FAILOVER_LABEL.to_owned(),
            sentinel_wait: default_sentinel_failover_wait(),
            promote: BTreeSet::new(),
            hooks: HookSettings::default(),
            data_loss: DataLossSettings::default(),
        }
    }
}

/// Commands run around a failover, each with the environment `REDIS_INSTANCE`,
/// `FROM_DATACENTER` and `TO_DATACENTER`.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSettings {
    /// `hooks.pre_failover`: runs before anything changes; a non-zero exit vetoes.
    pub pre_failover: Option<Vec<String>>,
    /// `hooks.post_failover`: runs after DNS moved; its failure is recorded only.
    pub post_failover: Option<Vec<String>>,
    /// `hooks.timeout`: a hook running longer is killed (and a pre hook vetoes).
    /// Default 30 s.
    pub timeout: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            pre_failover: None,
            post_failover: None,
            timeout: default_hook_timeout(),
        }
    }
}

pub const fn default_failover_confidence_threshold() -> f64 {
    0.95
}
pub const fn default_failover_consecutive_threshold() -> u32 {
    3
}
pub const fn default_ai_failover_confidence() -> f64 {
    0.85
}
pub const fn default_ai_consecutive_recommendations() -> u32 {
    2
}
pub const fn default_confirm_interval() -> Duration {
    Duration::from_secs(2)
}
pub const fn default_failover_cooldown() -> Duration {
    Duration::from_secs(30 * 60)
}
pub const fn default_failback_stable_for() -> Duration {
    Duration::from_secs(30 * 60)
}
pub const fn default_sentinel_failover_wait() -> Duration {
    Duration::from_secs(60)
}
pub const fn default_hook_timeout() -> Duration {
    Duration::from_secs(30)
}
/// The alert label that marks an alert as a reason to consider failing over.
pub const DEFAULT_FAILOVER_LABEL: &str = "failover_candidate";
