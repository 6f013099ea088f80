//! `redis_active_datacenter`: where each instance's clients are sent.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{EndpointLabels, Labels, family};
use super::info_table::Kind;
use super::observer::Observer;
use crate::model::{ActiveDatacenters, EndpointKey};

#[derive(Debug)]
pub struct RoutingCollector {
    active: Arc<ActiveDatacenters>,
    observer: Option<Observer>,
}

impl RoutingCollector {
    pub fn new(active: Arc<ActiveDatacenters>, observer: Option<Observer>) -> Self {
        Self { active, observer }
    }
}

impl Collector for RoutingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let rows: Vec<(EndpointKey, bool)> = self
            .active
            .all()
            .into_iter()
            .flat_map(|r| {
                let active = r.active;
                let instance = r.instance;
                r.datacenters.into_iter().map(move |dc| {
                    let is_active = dc == active;
                    let key = EndpointKey {
                        instance: instance.clone(),
                        datacenter: dc,
                    };
                    (key, is_active)
                })
            })
            .collect();
        let labels: Vec<EndpointLabels<'_>> = rows
            .iter()
            .map(|(k, _)| EndpointLabels::new(k, self.observer.as_ref()))
            .collect();
        family(
            &mut encoder,
            "redis_active_datacenter",
            "1 on the datacenter the instance's clients are sent to (DNS points there), 0 on its other datacenters.",
            Kind::Gauge,
            rows.iter()
                .zip(&labels)
                .map(|((_, active), l)| (Labels::of(l), if *active { 1.0 } else { 0.0 })),
        )
    }
}
