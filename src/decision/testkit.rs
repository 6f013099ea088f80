//! Fixtures shared by the decision's, the engine's and the API's tests.

use std::time::Duration;

use async_trait::async_trait;

use crate::decision::ports::{
    FreshProbe, HookContext, HookRun, HookRunner, RecordRef, RecordType, SwitchPolicy,
};
use crate::decision::settings::{FailoverSettings, HookSettings};
use crate::decision::settings::{InstanceRecord, Settings};
use crate::model::{
    CollectError, DatacenterId, Endpoint, EndpointKey, ErrorKind, Instance, InstanceId,
};

/// Instance `cache` (named `name`) in `east` (active) and `west`, hosts
/// `redis-<dc>.example.com`.
pub(crate) fn instance(name: &str) -> Instance {
    let endpoints = ["east", "west"]
        .into_iter()
        .map(|dc| {
            let endpoint = Endpoint {
                key: EndpointKey::new("cache", dc),
                host: format!("redis-{dc}.example.com"),
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
        uid: InstanceId::new("cache"),
        name: name.into(),
        endpoints,
        active_dc: DatacenterId::new("east"),
    }
}

/// A probe that answered (1 ms), or one refused.
pub(crate) fn fresh(up: bool) -> FreshProbe {
    if up {
        FreshProbe {
            up: true,
            ping_latency: Some(Duration::from_millis(1)),
            info: None,
            error: None,
            sentinel_failover: false,
            sentinel_heard: None,
        }
    } else {
        FreshProbe::down(CollectError {
            kind: ErrorKind::Connect,
            message: "connection refused".into(),
        })
    }
}

/// The hook runner of a test that configures no hooks: the engine never asks it.
#[derive(Debug)]
pub(crate) struct NoHooks;

#[async_trait]
impl HookRunner for NoHooks {
    async fn run(&self, args: &[String], _: &HookContext<'_>, _: Duration) -> HookRun {
        unreachable!("no hook is configured, yet {args:?} was run")
    }
}

/// The record of instance `cache`: a CNAME to `redis-<dc>.example.com`.
pub(crate) fn record() -> RecordRef {
    RecordRef::new("Z1", "redis.example.com", RecordType::Cname)
}

/// Instance `cache` with its record (TTL 60), 3 confirmation rounds 10 ms apart.
pub(crate) fn settings(auto: bool, no_failover: bool, hooks: HookSettings) -> Settings {
    let inst = instance("cache");
    let values = inst
        .endpoints
        .iter()
        .map(|(dc, e)| (dc.clone(), e.host.clone()))
        .collect();
    let mut failover = FailoverSettings {
        auto,
        confirm_interval: Duration::from_millis(10),
        hooks,
        ..FailoverSettings::default()
    };
    failover.consecutive_threshold = 3;
    Settings {
        instances: [(inst.uid.clone(), inst)].into_iter().collect(),
        failover,
        records: [(
            InstanceId::new("cache"),
            InstanceRecord {
                record: record(),
                ttl: 60,
                values,
            },
        )]
        .into_iter()
        .collect(),
        no_failover,
        switch: SwitchPolicy {
            poll_interval: Duration::from_millis(10),
            ..SwitchPolicy::default()
        },
        ai_max_hold: Duration::from_secs(120),
        effect_window: (Duration::from_secs(900), Duration::from_secs(600)),
        limits: crate::config_kit::limits::Limits::default(),
    }
}

/// The time of day every test clock starts at.
pub(crate) fn t0() -> std::time::SystemTime {
    std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A clock that follows tokio's from [`t0`]: in a test with paused time, it moves only
/// as the runtime's timers do.
#[derive(Debug)]
pub(crate) struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl crate::decision::clock::Clock for TokioClock {
    fn now(&self) -> std::time::SystemTime {
        t0() + self.start.elapsed()
    }
}
