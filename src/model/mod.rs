//! Domain types shared by every part of the agent: what an instance, a datacenter and an
//! endpoint are, what one collection round produced, and where the latest rounds are kept.
//!
//! Nothing here does I/O.

mod active;
mod analysis;
pub mod enterprise;
mod fields;
pub mod replication;
pub mod rfc3339;
mod secret;
mod snapshot;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use active::{ActiveDatacenters, Routing};
pub use analysis::{Analysis, AnalysisStore, AnomalyScore, AnomalyState, Health, HealthStatus};
pub use fields::{Fields, MAX_LABEL_BYTES, MAX_MESSAGE_BYTES, clean_label, clean_message};
pub use secret::Secret;
pub use snapshot::{
    ClusterInfo, CollectError, CommandStat, Dropped, ErrorCounts, ErrorKind, Info, KeyspaceDb,
    LatencyPercentiles, MAX_PERCENTILES, MAX_REPLICAS, MAX_SENTINEL_MASTERS, Replica,
    SentinelMaster, Snapshot, Table,
};
pub use store::{EndpointStatus, Round, SnapshotStore};

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(name: &str) -> Self {
                Self(Arc::from(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::new(&name))
            }
        }
    };
}

name_type!(
    /// The configured `uid` of a Redis instance: the `redis_instance` label.
    InstanceId
);
name_type!(
    /// The configured key of a datacenter: the `datacenter` label.
    DatacenterId
);

/// One Redis endpoint is one instance as served from one datacenter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointKey {
    pub instance: InstanceId,
    pub datacenter: DatacenterId,
}

impl EndpointKey {
    pub fn new(instance: &str, datacenter: &str) -> Self {
        Self {
            instance: InstanceId::new(instance),
            datacenter: DatacenterId::new(datacenter),
        }
    }
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.instance, self.datacenter)
    }
}

/// TLS settings of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// PEM bundle of the certificate authorities to trust instead of the system's.
    pub ca_cert: Option<Vec<u8>>,
    /// PEM client certificate and key, for servers that ask for one.
    pub client_cert: Option<Vec<u8>>,
    pub client_key: Option<Secret>,
    /// Skip hostname verification (the certificate chain is still verified).
    pub insecure_skip_verify: bool,
}

/// Where and how to reach one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub key: EndpointKey,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub tls: Option<Tls>,
    /// Sentinel watches this datacenter's primary: confirmation probes ask it where the
    /// primary is and whether it is failing over.
    pub sentinel: Option<SentinelRef>,
}

/// The Sentinels of one datacenter and the name they know the primary by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelRef {
    /// `SENTINEL MASTER <master>`.
    pub master: String,
    /// `(host, port)` of each Sentinel; the first that answers is asked.
    pub addresses: Vec<(String, u16)>,
}

impl Endpoint {
    /// `host:port`, for logs. Never carries credentials.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A Redis deployment served from one or more datacenters, one of which is active.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub uid: InstanceId,
    /// Human name, as in the seed configuration (`cache-service`).
    pub name: String,
    pub endpoints: BTreeMap<DatacenterId, Endpoint>,
    /// The datacenter that clients are sent to when the agent starts.
    pub active_dc: DatacenterId,
}

/// A datacenter as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Datacenter {
    pub id: DatacenterId,
    /// Display name (`US-EAST`).
    pub name: String,
}
