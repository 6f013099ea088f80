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
    pub fn from_config(config: &Config, no_failover: bool) -> Settings {
        let instances: BTreeMap<InstanceId, Instance> = config
            .instances
            .iter()
            .map(|i| (i.uid.clone(), i.clone()))
            .collect();
        let mut records = BTreeMap::new();
        if let Some(dns) = &config.dns {
            for r in &dns.records {
                let Some(instance) = config.instances.iter().find(|i| i.name == r.instance_name)
                else {
                    continue;
                };
                let Ok(record_type) = r.record_type.parse() else {
                    continue;
                };
                let record = RecordRef::new(&dns.zone_id, &r.name, record_type);
                let values = instance
                    .endpoints
                    .iter()
                    .map(|(dc, ep)| {
                        let value = r.values.get(dc).cloned().unwrap_or_else(|| ep.host.clone());
                        (dc.clone(), value)
                    })
                    .collect();
                records.insert(
                    instance.uid.clone(),
                    InstanceRecord {
                        record,
                        ttl: r.ttl,
                        values,
                    },
                );
            }
        }
        Settings {
            instances,
            failover: config.failover.clone(),
            records,
            no_failover,
            switch: SwitchPolicy::default(),
            ai_max_hold: config
                .azure_openai
                .as_ref()
                .map_or_else(crate::config::default_ai_max_hold, |a| a.max_hold),
            effect_window: (EFFECT_BEFORE, EFFECT_AFTER),
            limits: config.limits,
        }
    }

    /// Acting is allowed: automatic failover on and not overridden.
    pub fn acts(&self) -> bool {
        self.failover.auto && !self.no_failover
    }
}
