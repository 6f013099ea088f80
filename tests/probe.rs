//! Fresh probes (the engine's confirmation rounds) against real redis-servers.

mod common;

use std::time::{Duration, Instant};

use common::{Redis, free_port, kill};
use redis_failover_agent::collector::probe::RedisProber;
use redis_failover_agent::config::CollectorSettings;
use redis_failover_agent::decision::ports::Prober;
use redis_failover_agent::model::{Endpoint, EndpointKey, ErrorKind, SentinelRef};

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        key: EndpointKey::new("app", "east"),
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        tls: None,
        sentinel: None,
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
fn probes_leave_no_error_replies_on_the_server() {
    // A probed target must not look less healthy for having been probed: Redis before
    // 7.2 answers CLIENT SETINFO with an error, which counts in its error replies.
    let redis = Redis::start(&[]);
    let rt = runtime();
    for _ in 0..3 {
        assert!(rt.block_on(prober().probe(&endpoint(redis.port))).up);
    }
    let stats = redis.cli(&["INFO", "stats"]);
    assert!(
        stats.contains("total_error_replies:0"),
        "{}",
        stats
            .lines()
            .find(|l| l.contains("error_replies"))
            .unwrap_or("")
    );
}

#[test]
fn a_closed_port_is_down_as_a_connect_error() {
    let (_held, port) = common::closed_port();
    let probe = runtime().block_on(prober().probe(&endpoint(port)));
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

#[test]
fn through_sentinel_the_probe_follows_the_primary_sentinel_promotes() {
    let mut primary = Redis::start(&["--repl-diskless-sync-delay", "0"]);
    let replica = Redis::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let sentinel = Redis::sentinel(&primary);
    common::wait_for(
        Duration::from_secs(30),
        "Sentinel to know the replica",
        || {
            let out = sentinel.cli(&["SENTINEL", "replicas", "mymaster"]);
            out.contains(&replica.port.to_string()).then_some(())
        },
    );
    let mut ep = endpoint(primary.port);
    ep.sentinel = Some(SentinelRef {
        master: "mymaster".into(),
        addresses: vec![
            ("127.0.0.1".into(), free_port()),
            ("127.0.0.1".into(), sentinel.port),
        ],
    });
    let rt = runtime();
    let before = rt.block_on(prober().probe(&ep));
    assert!(before.up && !before.sentinel_failover, "{before:?}");
    let primary_port = primary.port;
    primary.kill();
    // Sentinel notices within a second, promotes the replica, and the probe follows it.
    let after = common::wait_for(
        Duration::from_secs(30),
        "the probe to reach the new primary",
        || {
            let p = rt.block_on(prober().probe(&ep));
            (p.up
                && p.info.as_ref().and_then(|i| i.get("tcp_port"))
                    == Some(&*replica.port.to_string()))
            .then_some(p)
        },
    );
    assert_eq!(after.info.unwrap().role(), Some("master"));
    assert_ne!(primary_port, replica.port);
}

/// A primary that refuses the agent's new connection (`maxclients` reached) still answers
/// the Sentinel that watches it over its open link: the probe is down, and says how
/// recently Sentinel heard the primary (the policy's partition witness). A killed primary
/// is not heard.
#[test]
fn a_primary_that_refuses_the_agent_but_answers_its_sentinel_is_heard_and_a_dead_one_is_not() {
    use redis_failover_agent::decision::policy::SENTINEL_HEARD_WITHIN;

    let mut primary = Redis::start(&[]);
    let sentinel = Redis::sentinel(&primary);
    let mut ep = endpoint(primary.port);
    ep.sentinel = Some(SentinelRef {
        master: "mymaster".into(),
        addresses: vec![("127.0.0.1".into(), sentinel.port)],
    });
    let rt = runtime();
    let calm = common::wait_for(
        Duration::from_secs(15),
        "Sentinel to hear the primary",
        || {
            let p = rt.block_on(prober().probe(&ep));
            (p.up && p.sentinel_heard.is_some()).then_some(p)
        },
    );
    assert!(
        calm.sentinel_heard.unwrap() <= SENTINEL_HEARD_WITHIN,
        "{calm:?}"
    );

    // Full (maxclients below the connections already open): those go on, Sentinel's among
    // them; new ones are refused.
    let mut admin = primary.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg("1")
        .query(&mut admin)
        .unwrap();
    let refused = common::wait_for(
        Duration::from_secs(10),
        "a refused probe while Sentinel hears the primary",
        || {
            let p = rt.block_on(prober().probe(&ep));
            (!p.up && p.sentinel_heard.is_some_and(|h| h <= SENTINEL_HEARD_WITHIN)).then_some(p)
        },
    );
    assert!(
        refused
            .error
            .as_ref()
            .is_some_and(|e| e.message.contains("max number of clients")),
        "{refused:?}"
    );

    // Dead: Sentinel stops hearing it (s_down after its 1 s down-after).
    primary.kill();
    std::thread::sleep(SENTINEL_HEARD_WITHIN + Duration::from_millis(500));
    let dead = rt.block_on(prober().probe(&ep));
    assert!(!dead.up, "{dead:?}");
    assert!(
        dead.sentinel_heard
            .is_none_or(|h| h > SENTINEL_HEARD_WITHIN),
        "{dead:?}"
    );
}

// Hostile or broken replies (issue 15): the confirmation probes apply the same checks as
// the collection rounds.

use common::fake_redis::{Answer, FakeRedis, bulk};

#[test]
fn bytes_that_are_not_utf8_in_info_leave_the_probe_up() {
    let redis = Redis::start(&[]);
    let mut c = redis.client();
    let _ = redis::cmd("EVAL")
        .arg("return redis.error_reply(string.char(255,254)..' x')")
        .arg(0)
        .query::<redis::Value>(&mut c);
    assert!(
        redis
            .cli(&["INFO", "errorstats"])
            .contains("errorstat_\u{FFFD}")
    );
    let probe = runtime().block_on(prober().probe(&endpoint(redis.port)));
    assert!(probe.up, "{probe:?}");
    let info = probe.info.unwrap();
    assert_eq!(info.role(), Some("master"));
    assert!(info.errors.iter().any(|(e, _)| e == "\u{FFFD}\u{FFFD}"));
    assert_eq!(info.dropped.invalid_utf8, 1);
}

#[test]
fn a_reply_that_is_not_info_is_a_protocol_error() {
    let rt = runtime();
    for reply in [b":42\r\n".to_vec(), b"+anything\r\n".to_vec(), bulk(b"42")] {
        let fake = FakeRedis::answering_info(Answer::Raw(reply.clone()));
        let probe = rt.block_on(prober().probe(&endpoint(fake.port)));
        let shown = String::from_utf8_lossy(&reply);
        assert!(!probe.up, "{shown:?}: {probe:?}");
        assert_eq!(probe.error.unwrap().kind, ErrorKind::Protocol, "{shown:?}");
    }
    // PING must be answered with PONG.
    let fake = FakeRedis::start(|_| Answer::Raw(b":1\r\n".to_vec()));
    let probe = rt.block_on(prober().probe(&endpoint(fake.port)));
    assert!(!probe.up);
    assert_eq!(probe.error.unwrap().kind, ErrorKind::Protocol);
}

#[test]
fn a_reply_without_end_is_cut_at_the_limit() {
    let fake = FakeRedis::answering_info(Answer::Endless(b"$1900000000\r\n".to_vec()));
    let limits = redis_failover_agent::config::Limits {
        max_reply_bytes: 1024 * 1024,
        ..Default::default()
    };
    let prober = RedisProber::new(CollectorSettings {
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(30),
        ..CollectorSettings::default()
    })
    .with_limits(limits);
    let probe = runtime().block_on(prober.probe(&endpoint(fake.port)));
    assert!(!probe.up);
    let error = probe.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Protocol, "{error}");
    assert!(
        error
            .message
            .contains("limits.max_reply_bytes (1048576 bytes)"),
        "{error}"
    );
}

#[test]
fn an_error_reply_with_control_characters_is_escaped_and_bounded() {
    let mut reply = b"-LOADING x\n2025-01-01T00:00:00Z ERROR forged\x1b[2J".to_vec();
    reply.extend(std::iter::repeat_n(b'y', 5000));
    reply.extend_from_slice(b"\r\n");
    let fake = FakeRedis::start(move |_| Answer::Raw(reply.clone()));
    let probe = runtime().block_on(prober().probe(&endpoint(fake.port)));
    assert!(!probe.up);
    let error = probe.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Server, "{error}");
    assert!(error.message.contains("forged"), "{error}");
    assert!(!error.message.chars().any(char::is_control), "{error:?}");
    assert!(error.message.len() <= 300, "{} bytes", error.message.len());
}
