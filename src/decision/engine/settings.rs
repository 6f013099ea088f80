//! The part of the configuration the engine reads.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{EFFECT_AFTER, EFFECT_BEFORE};
use crate::config::{Config, FailoverSettings, Limits};
use crate::decision::ports::{RecordRef, SwitchPolicy};
use crate::model::{DatacenterId, Instance, InstanceId};

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
