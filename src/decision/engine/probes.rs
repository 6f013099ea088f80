//! Confirmation rounds: fresh probes of every datacenter, and the policy's view of them.

use std::sync::Arc;

use super::Inner;
use crate::decision::policy::{Probe, Round};
use crate::decision::ports::FreshProbe;
use crate::health::{self, HealthInput};
use crate::model::{DatacenterId, EndpointKey, Instance};

/// Fresh probes of `datacenters` of the instance, all at once.
/// `inst`: `None` when the instance is no longer configured (nothing is probed).
pub(super) async fn probe_round(
    inner: &Inner,
    inst: Option<&Instance>,
    datacenters: &[DatacenterId],
) -> Round {
    let mut set = tokio::task::JoinSet::new();
    let Some(inst) = inst else {
        return Round {
            at: inner.deps.clock.now(),
            probes: Vec::new(),
            witnesses: None,
        };
    };
    for (i, dc) in datacenters.iter().enumerate() {
        let Some(endpoint) = inst.endpoints.get(dc).cloned() else {
            continue;
        };
        let prober = Arc::clone(&inner.deps.prober);
        set.spawn(async move { (i, prober.probe(&endpoint).await) });
    }
    let mut fresh: Vec<(usize, FreshProbe)> = set.join_all().await;
    fresh.sort_by_key(|(i, _)| *i);
    let probes = fresh
        .iter()
        .map(|(i, f)| {
            let dc = &datacenters[*i];
            let key = EndpointKey {
                instance: inst.uid.clone(),
                datacenter: dc.clone(),
            };
            to_probe(dc, f, inner.deps.analysis.get(&key).as_deref())
        })
        .collect();
    Round {
        at: inner.deps.clock.now(),
        probes,
        witnesses: None,
    }
}

/// The policy's view of a fresh probe: up, and the health `health::probe` gives what the
/// probe saw (latency, memory) next to the latest full analysis of the endpoint.
fn to_probe(
    dc: &DatacenterId,
    fresh: &FreshProbe,
    latest: Option<&crate::model::Analysis>,
) -> Probe {
    let seen = HealthInput {
        up: fresh.up,
        ping_latency_ms: fresh.ping_latency.map(|d| d.as_secs_f64() * 1000.0),
        memory_used_ratio: fresh.info.as_ref().and_then(|i| i.memory_pressure()),
        ..HealthInput::default()
    };
    Probe {
        datacenter: dc.clone(),
        up: fresh.up,
        health: health::probe(&seen, latest),
        sentinel_failover: fresh.sentinel_failover,
        sentinel_heard: fresh.sentinel_heard,
    }
}
