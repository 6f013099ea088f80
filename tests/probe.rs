//! Fresh probes (the engine's confirmation rounds) against real redis-servers.

mod common;

use std::time::{Duration, Instant};

use common::{Redis, free_port, kill};
use redis_failover_agent::collector::probe::{Prober, RedisProber};
use redis_failover_agent::config::CollectorSettings;
use redis_failover_agent::model::{Endpoint, EndpointKey, ErrorKind};

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        key: EndpointKey::new("app", "east"),
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        tls: None,
    }
}

fn prober() -> RedisProber {
    RedisProber::new(CollectorSettings {
        connect_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_millis(300),
        ..CollectorSettings::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_running_server_is_up_with_its_info() {
    let redis = Redis::start(&[]);
    let probe = runtime().block_on(prober().probe(&endpoint(redis.port)));
    assert!(probe.up, "{probe:?}");
    assert!(probe.error.is_none());
    assert!(probe.ping_latency.is_some());
    assert_eq!(probe.info.unwrap().role(), Some("master"));
}

#[test]
fn a_closed_port_is_down_as_a_connect_error() {
    let probe = runtime().block_on(prober().probe(&endpoint(free_port())));
    assert!(!probe.up);
    assert_eq!(probe.error.unwrap().kind, ErrorKind::Connect);
}

#[test]
fn a_hung_server_is_down_within_the_timeouts() {
    let redis = Redis::start(&[]);
    kill(redis.pid(), "STOP");
    let started = Instant::now();
    let probe = runtime().block_on(prober().probe(&endpoint(redis.port)));
    let took = started.elapsed();
    kill(redis.pid(), "CONT");
    assert!(!probe.up, "{probe:?}");
    assert_eq!(probe.error.unwrap().kind, ErrorKind::Timeout);
    // Bounded by the connect and command timeouts (0.3 s each), with room for a busy
    // machine: a probe that waited for the server would take forever.
    assert!(took < Duration::from_secs(10), "{took:?}");
}
