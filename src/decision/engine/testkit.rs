//! Fixtures shared by the engine's and the API's tests.

use std::time::Duration;

use async_trait::async_trait;

use crate::decision::ports::{FreshProbe, HookContext, HookRun, HookRunner};
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
