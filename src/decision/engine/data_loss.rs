//! The runner's side of the data-loss check: the estimate from the collector's latest
//! rounds of both endpoints and the latest views of both Enterprise clusters.

use std::time::SystemTime;

use super::Inner;
use crate::model::replication::{self, Estimate, Side};
use crate::model::{DatacenterId, EndpointKey, Instance};

/// What `to` lacks of `from`'s writes, as the agent last read them.
pub(super) fn estimate(
    inner: &Inner,
    inst: &Instance,
    from: &DatacenterId,
    to: &DatacenterId,
    now: SystemTime,
) -> Estimate {
    let deps = &inner.deps;
    let status = |dc: &DatacenterId| {
        deps.store.get(&EndpointKey {
            instance: inst.uid.clone(),
            datacenter: dc.clone(),
        })
    };
    let (from_status, to_status) = (status(from), status(to));
    let (from_cluster, to_cluster) = (deps.enterprise.get(from), deps.enterprise.get(to));
    replication::estimate(
        Side {
            datacenter: from,
            endpoint: from_status.as_deref(),
            cluster: from_cluster.as_deref(),
        },
        Side {
            datacenter: to,
            endpoint: to_status.as_deref(),
            cluster: to_cluster.as_deref(),
        },
        &[inst.uid.as_str(), &inst.name],
        now,
    )
}
