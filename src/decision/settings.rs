//! The part of the configuration the decision reads: the evaluation core and the engine
//! running it take one snapshot of it per evaluation.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Config, FailoverSettings, Limits};
use crate::decision::ports::{RecordRef, SwitchPolicy};
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
}

impl Settings {
    /// `records` is each instance's DNS record, read from `dns_config` by the DNS
    /// integration (`app.rs` builds them): the engine knows records, not their
    /// configuration.
    pub fn from_config(
        config: &Config,
        records: BTreeMap<InstanceId, InstanceRecord>,
        no_failover: bool,
    ) -> Settings {
        let instances: BTreeMap<InstanceId, Instance> = config
            .instances
            .iter()
            .map(|i| (i.uid.clone(), i.clone()))
            .collect();
        Settings {
            instances,
            failover: config.failover.clone(),
            records,
            no_failover,
            switch: SwitchPolicy::default(),
            ai_max_hold: config.ai_max_hold(),
            effect_window: (EFFECT_BEFORE, EFFECT_AFTER),
            limits: config.limits,
        }
    }

    /// Acting is allowed: automatic failover on and not overridden.
    pub fn acts(&self) -> bool {
        self.failover.auto && !self.no_failover
    }
}
