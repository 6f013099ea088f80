//! Which datacenter each instance's clients are sent to.
//!
//! It starts from the configuration's `active_dc`. A failover moves it; a configuration
//! reload keeps the moved value unless the operator changed `active_dc` in the file.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{DatacenterId, Instance, InstanceId};

/// Where one instance's traffic goes, and where it could go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub instance: InstanceId,
    /// The datacenter DNS points to.
    pub active: DatacenterId,
    /// Every datacenter the instance has an endpoint in, the active one included.
    pub datacenters: Vec<DatacenterId>,
}

#[derive(Debug, Clone)]
struct Entry {
    active: DatacenterId,
    /// `active_dc` as the configuration said it when this entry was last applied.
    configured: DatacenterId,
    datacenters: Vec<DatacenterId>,
}

#[derive(Debug, Default)]
pub struct ActiveDatacenters {
    instances: RwLock<BTreeMap<InstanceId, Entry>>,
}

impl ActiveDatacenters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the configured instances: new ones start on their `active_dc`, removed ones
    /// are forgotten, and a kept instance stays where it is unless the file now names a
    /// different `active_dc` or its current datacenter is no longer configured.
    pub fn apply(&self, instances: &[Instance]) {
        let mut map = self.instances.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::new();
        for instance in instances {
            let datacenters: Vec<DatacenterId> = instance.endpoints.keys().cloned().collect();
            let active = match map.remove(&instance.uid) {
                Some(old)
                    if old.configured == instance.active_dc
                        && datacenters.contains(&old.active) =>
                {
                    old.active
                }
                _ => instance.active_dc.clone(),
            };
            next.insert(
                instance.uid.clone(),
                Entry {
                    active,
                    configured: instance.active_dc.clone(),
                    datacenters,
                },
            );
        }
        *map = next;
    }

    /// Records that the instance's traffic now goes to `datacenter`. Refuses (and
    /// returns false for) an unknown instance or a datacenter it has no endpoint in.
    pub fn set(&self, instance: &InstanceId, datacenter: &DatacenterId) -> bool {
        let mut map = self.instances.write().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(instance) {
            Some(entry) if entry.datacenters.contains(datacenter) => {
                entry.active = datacenter.clone();
                true
            }
            _ => false,
        }
    }

    pub fn get(&self, instance: &InstanceId) -> Option<DatacenterId> {
        let map = self.instances.read().unwrap_or_else(|e| e.into_inner());
        map.get(instance).map(|e| e.active.clone())
    }

    /// Every instance, in uid order.
    pub fn all(&self) -> Vec<Routing> {
        let map = self.instances.read().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|(uid, e)| Routing {
                instance: uid.clone(),
                active: e.active.clone(),
                datacenters: e.datacenters.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, EndpointKey};

    fn instance(uid: &str, active: &str, dcs: &[&str]) -> Instance {
        let endpoints = dcs
            .iter()
            .map(|dc| {
                let endpoint = Endpoint {
                    key: EndpointKey::new(uid, dc),
                    host: format!("{dc}.example"),
                    port: 6379,
                    username: None,
                    password: None,
                    tls: None,
                    sentinel: None,
                };
                (DatacenterId::new(dc), endpoint)
            })
            .collect();
        Instance {
            uid: InstanceId::new(uid),
            name: uid.to_owned(),
            endpoints,
            active_dc: DatacenterId::new(active),
        }
    }

    fn active_of(a: &ActiveDatacenters, uid: &str) -> Option<String> {
        a.get(&InstanceId::new(uid)).map(|d| d.as_str().to_owned())
    }

    #[test]
    fn starts_on_the_configured_datacenter() {
        let a = ActiveDatacenters::new();
        a.apply(&[instance("cache", "east", &["east", "west"])]);
        let all = a.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].active.as_str(), "east");
        assert_eq!(all[0].datacenters.len(), 2);
    }

    #[test]
    fn a_failover_survives_a_reload_of_the_same_file() {
        let a = ActiveDatacenters::new();
        let config = [instance("cache", "east", &["east", "west"])];
        a.apply(&config);
        assert!(a.set(&InstanceId::new("cache"), &DatacenterId::new("west")));
        a.apply(&config);
        assert_eq!(active_of(&a, "cache").as_deref(), Some("west"));
    }

    #[test]
    fn a_changed_active_dc_in_the_file_wins() {
        let a = ActiveDatacenters::new();
        a.apply(&[instance("cache", "east", &["east", "west", "north"])]);
        a.set(&InstanceId::new("cache"), &DatacenterId::new("west"));
        a.apply(&[instance("cache", "north", &["east", "west", "north"])]);
        assert_eq!(active_of(&a, "cache").as_deref(), Some("north"));
    }

    #[test]
    fn a_removed_datacenter_falls_back_to_the_configured_one() {
        let a = ActiveDatacenters::new();
        a.apply(&[instance("cache", "east", &["east", "west"])]);
        a.set(&InstanceId::new("cache"), &DatacenterId::new("west"));
        a.apply(&[instance("cache", "east", &["east", "north"])]);
        assert_eq!(active_of(&a, "cache").as_deref(), Some("east"));
    }

    #[test]
    fn removed_instances_are_forgotten_and_unknown_targets_refused() {
        let a = ActiveDatacenters::new();
        a.apply(&[
            instance("cache", "east", &["east", "west"]),
            instance("sessions", "west", &["east", "west"]),
        ]);
        assert!(!a.set(&InstanceId::new("cache"), &DatacenterId::new("mars")));
        assert!(!a.set(&InstanceId::new("nope"), &DatacenterId::new("east")));
        a.apply(&[instance("sessions", "west", &["east", "west"])]);
        assert_eq!(active_of(&a, "cache"), None);
        assert_eq!(a.all().len(), 1);
    }
}
