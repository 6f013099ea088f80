//! Fresh probes for the decision engine: a new connection to one endpoint, PING and
//! INFO, within the collector's timeouts. Separate from the collection loop on purpose:
//! a confirmation must not trust a connection or a snapshot from before the fault.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::info::parse_info;
use super::redis::connect;
use crate::config::CollectorSettings;
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
}

impl FreshProbe {
    pub fn down(error: CollectError) -> Self {
        Self {
            up: false,
            ping_latency: None,
            info: None,
            error: Some(error),
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

/// Probes real Redis servers with the configured timeouts.
#[derive(Debug, Clone)]
pub struct RedisProber {
    settings: CollectorSettings,
}

impl RedisProber {
    pub fn new(settings: CollectorSettings) -> Self {
        Self { settings }
    }
}

#[async_trait]
impl Prober for RedisProber {
    async fn probe(&self, endpoint: &Endpoint) -> FreshProbe {
        let mut conn = match connect(endpoint, &self.settings).await {
            Ok(conn) => conn,
            Err(e) => return FreshProbe::down(e),
        };
        let (latency, reply_error) = match conn.ping().await {
            Ok(answer) => answer,
            Err(e) => return FreshProbe::down(e),
        };
        if let Some(e) = reply_error {
            // LOADING, MASTERDOWN, BUSY: the server answers but cannot serve.
            return FreshProbe {
                ping_latency: Some(latency),
                ..FreshProbe::down(e)
            };
        }
        match conn.info().await {
            Ok(text) => FreshProbe {
                up: true,
                ping_latency: Some(latency),
                info: Some(parse_info(text)),
                error: None,
            },
            Err(e) => FreshProbe {
                ping_latency: Some(latency),
                ..FreshProbe::down(e)
            },
        }
    }

    async fn promote(&self, endpoint: &Endpoint) -> Result<(), CollectError> {
        connect(endpoint, &self.settings)
            .await?
            .replicaof_no_one()
            .await
    }
}
