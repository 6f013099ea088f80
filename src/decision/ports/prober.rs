//! Fresh probes: how the engine sees an endpoint now rather than trusting the last
//! collection round, and how it promotes a replica (`promote_on_failover`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{CollectError, Endpoint, Info};

/// What one fresh probe saw.
#[derive(Debug, Clone)]
pub struct FreshProbe {
    /// PING and INFO both answered without an error reply.
    pub up: bool,
    pub ping_latency: Option<Duration>,
    pub info: Option<Info>,
    /// Why it is not up.
    pub error: Option<CollectError>,
    /// The datacenter's Sentinel reports a failover of the primary in progress.
    pub sentinel_failover: bool,
    /// How long ago the datacenter's Sentinel last had a valid PING reply from the
    /// primary (`last-ok-ping-reply`), when a Sentinel answered and does not consider the
    /// primary down. Redis answering its Sentinel while refusing the agent points at the
    /// agent's own path (policy rule 4).
    pub sentinel_heard: Option<Duration>,
}

impl FreshProbe {
    pub fn down(error: CollectError) -> Self {
        Self {
            up: false,
            ping_latency: None,
            info: None,
            error: Some(error),
            sentinel_failover: false,
            sentinel_heard: None,
        }
    }
}

/// Probes endpoints on demand. The engine's tests use a scripted fake.
#[async_trait]
pub trait Prober: Send + Sync + fmt::Debug {
    async fn probe(&self, endpoint: &Endpoint) -> FreshProbe;
    /// `REPLICAOF NO ONE` on the endpoint (`promote_on_failover`).
    async fn promote(&self, endpoint: &Endpoint) -> Result<(), CollectError>;
}
