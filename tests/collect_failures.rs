//! Black-box tests of collection when Redis fails: a killed, hung or refusing endpoint,
//! and a datacenter with every endpoint down. The agent binary against real redis-server
//! processes, read through /metrics and the API.

mod common;

use std::time::Duration;

use common::{Agent, Redis, assert_promtool_clean, config};

const WAIT: Duration = Duration::from_secs(15);

fn rounds(agent: &Agent, instance: &str) -> f64 {
    agent
        .metrics()
        .of("redis_agent_collection_rounds_total", instance, "east")
        .unwrap_or(0.0)
}

/// A killed endpoint goes down within two intervals and comes back without a restart of
/// the agent; a hung one times out. Neither slows the healthy endpoint down.
#[test]
fn a_dead_or_hung_endpoint_does_not_delay_the_others() {
    let mut dying = Redis::start(&[]);
    let hung = Redis::start(&[]);
    let healthy = Redis::start(&[]);
    let agent = Agent::start(&config(
        &[
            ("dying", &[("east", dying.port)]),
            ("hung", &[("east", hung.port)]),
            ("healthy", &[("east", healthy.port)]),
        ],
        "api: {api_key: collect-test-key}\n",
    ));
    agent.wait_metrics(WAIT, "all up", |m| {
        ["dying", "hung", "healthy"]
            .iter()
            .all(|i| m.of("redis_up", i, "east") == Some(1.0))
    });

    assert_eq!(failing_since(&agent, "dying"), serde_json::Value::Null);

    // Freeze one server (connections hang, commands time out) and kill another.
    let killed_wall = std::time::SystemTime::now();
    common::kill(hung.pid(), "STOP");
    dying.kill();
    let killed_at = std::time::Instant::now();
    let m = agent.wait_metrics(
        Duration::from_secs(5),
        "the dead and hung endpoints down",
        |m| {
            m.of("redis_up", "dying", "east") == Some(0.0)
                && m.of("redis_up", "hung", "east") == Some(0.0)
        },
    );
    // Two intervals of 1 s, plus scheduling slack on a shared machine.
    assert!(
        killed_at.elapsed() < Duration::from_secs(4),
        "down only after {:?}",
        killed_at.elapsed()
    );
    assert!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "dying"), ("kind", "connect")]
        )
        .is_some()
    );
    assert!(
        m.of("redis_memory_used_bytes", "dying", "east").is_none(),
        "a dead endpoint's data is not shown as fresh"
    );

    // The API says since when each endpoint has been failing: the first failed round,
    // not the latest one (the decision reads the clients' logs from then).
    let since = failing_since(&agent, "dying");
    let at = since.as_str().map(|t| {
        redis_failover_agent::model::rfc3339::parse(t)
            .unwrap()
            .unwrap()
    });
    assert!(
        at.is_some_and(|at| at >= killed_wall),
        "dying: failing_since {since} (killed at {killed_wall:?})"
    );
    assert!(failing_since(&agent, "hung").is_string());

    // The healthy endpoint keeps its one-second cadence meanwhile.
    let before = rounds(&agent, "healthy");
    std::thread::sleep(Duration::from_secs(4));
    let after = rounds(&agent, "healthy");
    assert_eq!(
        failing_since(&agent, "dying"),
        since,
        "moved with later rounds"
    );
    assert_eq!(failing_since(&agent, "healthy"), serde_json::Value::Null);
    assert!(
        after - before >= 3.0,
        "healthy endpoint did only {} rounds in 4 s",
        after - before
    );
    let m = agent.metrics();
    assert_eq!(m.of("redis_up", "healthy", "east"), Some(1.0));
    assert!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "hung"), ("kind", "timeout")]
        )
        .unwrap()
            >= 1.0
    );

    // Both come back without restarting the agent.
    common::kill(hung.pid(), "CONT");
    dying.restart();
    agent.wait_metrics(WAIT, "both back up", |m| {
        m.of("redis_up", "dying", "east") == Some(1.0)
            && m.of("redis_up", "hung", "east") == Some(1.0)
    });
    assert_eq!(failing_since(&agent, "dying"), serde_json::Value::Null);
    assert_eq!(failing_since(&agent, "hung"), serde_json::Value::Null);
}

/// `failing_since` of an instance's only endpoint, from `GET /api/status/{uid}`.
fn failing_since(agent: &Agent, uid: &str) -> serde_json::Value {
    let (code, body) = common::http_request(
        agent.port,
        "GET",
        &format!("/api/status/{uid}"),
        &[("X-API-Key", "collect-test-key")],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["datacenters"][0]["failing_since"].clone()
}

#[test]
fn a_wrong_password_is_an_auth_error_and_never_shown() {
    let redis = Redis::start(&["--requirepass", "right-horse-battery"]);
    let yaml = format!(
        "instances:\n\
         - uid: wrong\n  endpoints: {{east: {{host: 127.0.0.1, port: {p}, password: W0ng-Pa55-qzx}}}}\n\
         - uid: right\n  endpoints: {{east: {{host: 127.0.0.1, port: {p}, password: '${{REDIS_PW}}'}}}}\n\
         monitoring_interval: 1\ntimeouts: {{connect: 300ms, command: 300ms}}\n",
        p = redis.port
    );
    let agent = Agent::start_with_env(&yaml, &[("REDIS_PW", "right-horse-battery")]);
    let m = agent.wait_metrics(WAIT, "an auth error", |m| {
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "wrong"), ("kind", "auth")],
        )
        .is_some_and(|n| n >= 1.0)
            && m.of("redis_up", "right", "east") == Some(1.0)
    });
    assert_eq!(m.of("redis_up", "wrong", "east"), Some(0.0));
    for secret in ["W0ng-Pa55-qzx", "right-horse-battery"] {
        assert!(!m.text.contains(secret), "a password is in /metrics");
        assert!(
            !agent.log().contains(secret),
            "a password is in the log:\n{}",
            agent.log()
        );
    }
    assert!(agent.log().contains("kind=auth"), "{}", agent.log());
}

#[test]
fn a_datacenter_whose_endpoints_are_all_down_is_failed() {
    let redis = Redis::start(&[]);
    let ((_held_a, dead_a), (_held_b, dead_b)) = (common::closed_port(), common::closed_port());
    let agent = Agent::start(&config(
        &[
            ("cache", &[("east", redis.port), ("west", dead_a)]),
            ("sessions", &[("east", redis.port), ("west", dead_b)]),
        ],
        "",
    ));
    let m = agent.wait_metrics(WAIT, "health of both datacenters", |m| {
        m.get("redis_datacenter_health_score", &[("datacenter", "west")])
            .is_some()
            && m.get("redis_datacenter_health_score", &[("datacenter", "east")])
                .is_some()
    });
    assert_eq!(
        m.get("redis_datacenter_health_score", &[("datacenter", "west")]),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "redis_datacenter_health_status",
            &[("datacenter", "west"), ("status", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "redis_health_score",
            &[("redis_instance", "cache"), ("datacenter", "west")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m.get(
            "redis_health_status",
            &[
                ("redis_instance", "cache"),
                ("datacenter", "west"),
                ("status", "failed")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("redis_datacenter_health_score", &[("datacenter", "east")]),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "redis_datacenter_health_status",
            &[("datacenter", "east"), ("status", "healthy")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.of("redis_anomaly_model_ready", "cache", "east"),
        Some(0.0),
        "warming up"
    );
    assert!(
        m.of("redis_anomaly_score", "cache", "east").is_none(),
        "no score while warming up"
    );
    assert_promtool_clean(&m.text);
}

// Hostile or broken replies (issue 15): bytes that are not UTF-8, replies that are not
// INFO, a reply without end, rows without end, control characters in error replies.

use common::fake_redis::{Answer, FakeRedis, bulk};

/// What `EVAL "return redis.error_reply(string.char(255,254)..' x')" 0` does: any client
/// allowed to EVAL leaves those bytes in `INFO errorstats` until `CONFIG RESETSTAT`.
pub fn inject_non_utf8_error(redis: &Redis) {
    let mut c = redis.client();
    // The reply is an error whose code is not UTF-8; the test client may fail to read it.
    let _ = redis::cmd("EVAL")
        .arg("return redis.error_reply(string.char(255,254)..' x')")
        .arg(0)
        .query::<redis::Value>(&mut c);
    let stats = redis.cli(&["INFO", "errorstats"]);
    assert!(
        stats.contains("errorstat_\u{FFFD}\u{FFFD}:count=1"),
        "the bytes are in INFO: {stats}"
    );
}

#[test]
fn bytes_that_are_not_utf8_in_info_leave_a_healthy_primary_up() {
    let redis = Redis::start(&[]);
    inject_non_utf8_error(&redis);
    let agent = Agent::start(&config(&[("bytes", &[("east", redis.port)])], ""));
    let m = agent.wait_metrics(WAIT, "up with the bytes counted", |m| {
        m.of("redis_up", "bytes", "east") == Some(1.0)
            && m.of("redis_agent_info_invalid_utf8_total", "bytes", "east")
                .is_some_and(|n| n >= 1.0)
    });
    assert_eq!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "bytes"), ("kind", "protocol")]
        ),
        Some(0.0)
    );
    // Kept lossily: the error kind is still counted, under U+FFFD.
    assert_eq!(
        m.get(
            "redis_errors_total",
            &[("redis_instance", "bytes"), ("err", "\u{FFFD}\u{FFFD}")]
        ),
        Some(1.0)
    );
    assert_promtool_clean(&m.text);
}

#[test]
fn replies_that_are_not_info_are_protocol_errors_never_up() {
    let integer = FakeRedis::answering_info(Answer::Raw(b":42\r\n".to_vec()));
    let status = FakeRedis::answering_info(Answer::Raw(b"+anything\r\n".to_vec()));
    let junk = FakeRedis::answering_info(Answer::Raw(bulk(b"42")));
    let names = ["integer", "status", "junk"];
    let agent = Agent::start(&config(
        &[
            ("integer", &[("east", integer.port)]),
            ("status", &[("east", status.port)]),
            ("junk", &[("east", junk.port)]),
        ],
        "",
    ));
    let m = agent.wait_metrics(WAIT, "protocol errors on every fake", |m| {
        names.iter().all(|i| {
            m.get(
                "redis_agent_collection_errors_total",
                &[("redis_instance", i), ("kind", "protocol")],
            )
            .is_some_and(|n| n >= 2.0)
        })
    });
    for i in names {
        assert_eq!(m.of("redis_up", i, "east"), Some(0.0), "{i}");
        assert_eq!(m.of("redis_health_score", i, "east"), Some(0.0), "{i}");
    }
    assert_eq!(
        m.get("redis_datacenter_health_score", &[("datacenter", "east")]),
        Some(0.0)
    );
}

fn vm_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A server that declares `$1900000000` and streams: the agent reads at most
/// `limits.max_reply_bytes` of it per connection, fails the round with an error naming
/// the limit, counts it, and its memory stays bounded; a healthy endpoint stays up.
#[test]
fn a_reply_without_end_is_cut_at_the_limit_and_memory_stays_bounded() {
    let endless = FakeRedis::answering_info(Answer::Endless(b"$1900000000\r\n".to_vec()));
    let healthy = Redis::start(&[]);
    // A long command timeout: without the cap, the agent would read for 5 s per round.
    let yaml = format!(
        "instances:\n\
         - uid: endless\n  endpoints: {{east: {{host: 127.0.0.1, port: {e}}}}}\n\
         - uid: healthy\n  endpoints: {{east: {{host: 127.0.0.1, port: {h}}}}}\n\
         monitoring_interval: 1\ntimeouts: {{connect: 1s, command: 5s}}\nreconnect_max_backoff: 1s\n\
         api: {{api_key: collect-test-key}}\n",
        e = endless.port,
        h = healthy.port
    );
    let agent = Agent::start(&yaml);
    agent.wait_metrics(WAIT, "the healthy endpoint up", |m| {
        m.of("redis_up", "healthy", "east") == Some(1.0)
    });
    let baseline_kb = vm_kb(agent.pid(), "VmRSS:");
    // Every scrape meanwhile: the healthy endpoint is up.
    let healthy_down = std::cell::Cell::new(0);
    let m = agent.wait_metrics(Duration::from_secs(30), "three replies cut", |m| {
        if m.of("redis_up", "healthy", "east") != Some(1.0) {
            healthy_down.set(healthy_down.get() + 1);
        }
        m.of("redis_agent_reply_too_large_total", "endless", "east")
            .is_some_and(|n| n >= 3.0)
    });
    assert_eq!(
        healthy_down.get(),
        0,
        "scrapes with the healthy endpoint down"
    );
    assert_eq!(m.of("redis_up", "endless", "east"), Some(0.0));
    assert!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "endless"), ("kind", "protocol")]
        )
        .is_some_and(|n| n >= 3.0)
    );
    // The healthy endpoint kept its cadence and stayed up all along.
    for _ in 0..10 {
        let m = agent.metrics();
        assert_eq!(m.of("redis_up", "healthy", "east"), Some(1.0), "{}", m.text);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "healthy"), ("kind", "timeout")]
        ),
        Some(0.0)
    );
    // The peak resident size, not just the current one.
    let peak_kb = vm_kb(agent.pid(), "VmHWM:");
    // The figure for docs/hardening.md (`cargo test --test collect_failures
    // a_reply_without_end -- --nocapture`).
    eprintln!("agent RSS: {baseline_kb} kB before, peak {peak_kb} kB while the reply streamed");
    assert!(
        peak_kb < baseline_kb + 200 * 1024,
        "RSS grew from {baseline_kb} kB to a peak of {peak_kb} kB"
    );
    let (code, body) = common::http_request(
        agent.port,
        "GET",
        "/api/status/endless",
        &[("X-API-Key", "collect-test-key")],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("limits.max_reply_bytes (8388608 bytes)"),
        "{body}"
    );
}

/// 20k `cmdstat_`, `errorstat_` and `db` lines: at most the limits in /metrics, the rest
/// counted per table, each round.
#[test]
fn twenty_thousand_rows_become_at_most_the_limits() {
    let mut info = String::from("# Server\r\nredis_version:7.0.15\r\nrole:master\r\n");
    for i in 0..20_000 {
        info.push_str(&format!(
            "cmdstat_c{i}:calls=1,usec=1\r\nerrorstat_E{i}:count=1\r\ndb{i}:keys=1,expires=0\r\n"
        ));
    }
    let fake = FakeRedis::answering_info(Answer::Raw(bulk(info.as_bytes())));
    let agent = Agent::start(&config(&[("rows", &[("east", fake.port)])], ""));
    let m = agent.wait_metrics(WAIT, "two rounds", |m| {
        m.of("redis_up", "rows", "east") == Some(1.0)
            && m.of("redis_agent_collection_rounds_total", "rows", "east")
                .is_some_and(|n| n >= 2.0)
    });
    let series = |name: &str| m.all(name, &[("redis_instance", "rows")]).len();
    assert_eq!(series("redis_commands_total"), 500);
    assert_eq!(series("redis_errors_total"), 128);
    assert_eq!(series("redis_db_keys"), 256);
    let rounds = m
        .of("redis_agent_collection_rounds_total", "rows", "east")
        .unwrap();
    for (table, kept) in [("commands", 500.0), ("errors", 128.0), ("databases", 256.0)] {
        let dropped = m.get(
            "redis_agent_info_entries_dropped_total",
            &[("redis_instance", "rows"), ("table", table)],
        );
        assert_eq!(dropped, Some((20_000.0 - kept) * rounds), "{table}");
    }
}

/// An error reply with CR, LF and ESC reaches the API (and the log, and incident steps)
/// escaped and bounded: it cannot forge a log line or a terminal sequence.
#[test]
fn control_characters_in_error_replies_are_escaped_at_the_source() {
    let mut reply = b"-ERR boom\r2025-01-01T00:00:00Z ERROR forged\x1b[2J".to_vec();
    reply.extend(std::iter::repeat_n(b'y', 2000));
    reply.extend_from_slice(b"\r\n");
    let fake = FakeRedis::answering_info(Answer::Raw(reply));
    let agent = Agent::start(&config(
        &[("errors", &[("east", fake.port)])],
        "api: {api_key: collect-test-key}\n",
    ));
    agent.wait_metrics(WAIT, "a server error", |m| {
        m.get(
            "redis_agent_collection_errors_total",
            &[("redis_instance", "errors"), ("kind", "server")],
        )
        .is_some_and(|n| n >= 1.0)
    });
    let (code, body) = common::http_request(
        agent.port,
        "GET",
        "/api/status/errors",
        &[("X-API-Key", "collect-test-key")],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let message = status["datacenters"][0]["last_error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    assert!(message.contains("boom"), "{message}");
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(message.len() <= 300, "{} bytes", message.len());
    assert!(!agent.log().contains("\x1b[2J"), "{}", agent.log());
}
