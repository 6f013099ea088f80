//! The HTTP listener under hostile clients, black-box: the real agent binary on
//! 127.0.0.1 and raw TCP clients. Slow unauthenticated bodies, silent and half-sent
//! connections, a flood of connections, odd bytes in paths and payloads: `/metrics` and
//! the webhook keep answering, and every answer is JSON.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Agent, free_port, http_request};
use serde_json::{Value, json};

const TOKEN: &str = "a-webhook-token-of-32-characters";
const API_KEY: &str = "an-operator-api-key-of-32-chars!";
const WEBHOOK: &str = "/webhook/alertmanager";

fn agent(limits: &str) -> Agent {
    let config = common::config(
        &[("cache", &[("east", free_port()), ("west", free_port())])],
        &format!(
            "webhook: {{bearer_token: '{TOKEN}'}}\napi: {{api_key: '{API_KEY}'}}\nlimits:\n{limits}"
        ),
    );
    Agent::start_full(&config, &[], &[])
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alertmanager/firing-instance.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Posts a delivery with the token; (status, JSON body).
fn deliver(port: u16, body: &Value) -> (u16, Value) {
    let auth = bearer();
    let (status, text) = http_request(
        port,
        "POST",
        WEBHOOK,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &serde_json::to_vec(body).unwrap(),
    )
    .expect("the delivery is answered");
    (status, json_of(&text))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads one response (headers and a `Content-Length` body) from a kept-alive
/// connection: (status, raw head, body).
fn read_response(s: &mut TcpStream) -> std::io::Result<(u16, String, String)> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body)?;
    Ok((status, head, String::from_utf8_lossy(&body).into_owned()))
}

/// True when the agent closes `s` within `within` (EOF or reset), false when it is
/// still open then.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn counter(agent: &Agent, name: &str, reason: &str) -> f64 {
    agent
        .metrics()
        .get(name, &[("reason", reason)])
        .unwrap_or(0.0)
}

/// Failure 1: unauthenticated POSTs that never finish their bodies, more of them than
/// requests served at once, are answered 401 from their headers, and a real delivery
/// is answered while they are all still open (before the fix it waited for their 30 s
/// request timeout).
#[test]
fn slow_unauthenticated_bodies_never_delay_a_delivery() {
    // 72 on the webhook: more than the 64 requests served at once.
    let agent = agent("  http: {max_concurrent_requests: 64}\n");
    let mut slow = Vec::new();
    for i in 0..80 {
        let mut s = connect(agent.port);
        let (path, auth) = match i % 10 {
            0..=8 if i % 2 == 0 => (WEBHOOK, "Authorization: Bearer wrong-token\r\n"),
            0..=8 => (WEBHOOK, ""),
            _ => ("/api/failover/cache", "X-API-Key: wrong\r\n"),
        };
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 500000\r\n\r\n{{\"version\""
        )
        .unwrap();
        slow.push(s);
    }
    let started = Instant::now();
    let mut deliver_client = connect(agent.port);
    deliver_client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = serde_json::to_vec(&fixture()).unwrap();
    write!(
        deliver_client,
        "POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        bearer(),
        body.len()
    )
    .unwrap();
    deliver_client.write_all(&body).unwrap();
    let (status, _, text) = read_response(&mut deliver_client)
        .expect("the delivery is answered while 80 slow clients hold their requests open");
    assert_eq!(status, 200, "{text}");
    assert_eq!(json_of(&text)["status"], "accepted", "{text}");
    // The figure for docs/hardening.md (`cargo test --test http_hardening slow_ --
    // --nocapture`).
    eprintln!(
        "delivery answered {:?} after connecting, with 80 slow clients holding requests open",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Each slow one was refused from its headers, without its body.
    for (i, s) in slow.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (status, _, text) = read_response(s).unwrap_or_else(|e| panic!("slow {i}: {e}"));
        assert_eq!(status, 401, "slow {i}: {text}");
        assert!(json_of(&text)["error"].is_string(), "{text}");
    }
}

/// Failure 2a and 2b: a half-sent request head is closed after header_timeout; a
/// kept-alive connection with no next request after idle_timeout; both counted.
#[test]
fn half_sent_heads_and_idle_connections_are_closed() {
    let agent = agent("  http: {header_timeout: 1s, idle_timeout: 2s}\n");
    let mut partial = connect(agent.port);
    partial
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut silent = connect(agent.port);
    let mut idle = connect(agent.port);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut idle).unwrap();
    assert_eq!(status, 200);
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );

    assert!(
        closed_within(&mut partial, Duration::from_secs(15)),
        "half-sent head still open"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(15)),
        "silent connection still open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(15)),
        "idle connection still open"
    );
    assert!(
        counter(
            &agent,
            "redis_agent_http_connections_closed_total",
            "header_timeout"
        ) >= 2.0
    );
    assert!(
        counter(
            &agent,
            "redis_agent_http_connections_closed_total",
            "idle_timeout"
        ) >= 1.0
    );
}

/// Failure 2c: with every general connection taken by silent clients, the API is
/// refused 503 (JSON, connection closed) while /metrics and the webhook are served; at
/// the cap itself, the oldest silent connection makes room for them.
#[test]
fn at_the_connection_cap_metrics_and_the_webhook_are_still_served() {
    let agent =
        agent("  http: {max_connections: 20, reserved_connections: 4, header_timeout: 60s}\n");
    let mut silent: Vec<TcpStream> = (0..16).map(|_| connect(agent.port)).collect();

    let key = [("X-API-Key", API_KEY)];
    let (status, text) = http_request(agent.port, "GET", "/api/status", &key, b"").unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(
        json_of(&text)["error"]
            .as_str()
            .unwrap()
            .contains("max_connections"),
        "{text}"
    );
    let m = agent.metrics();
    assert_eq!(
        m.get(
            "redis_agent_http_connections_refused_total",
            &[("reason", "reserved")]
        ),
        Some(1.0),
        "{}",
        m.text
    );
    assert!(m.get("redis_agent_http_connections_open", &[]).unwrap() >= 17.0);

    // Now every connection is taken: 20 silent ones.
    silent.extend((0..4).map(|_| connect(agent.port)));
    let (status, body) = agent.get("/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, answer) = deliver(agent.port, &fixture());
    assert_eq!(status, 200, "{answer}");
    let (status, text) = http_request(agent.port, "GET", "/api/status", &key, b"").unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(
        closed_within(&mut silent[0], Duration::from_secs(10)),
        "the oldest silent connection was evicted"
    );
    assert!(
        counter(
            &agent,
            "redis_agent_http_connections_closed_total",
            "evicted"
        ) >= 1.0
    );
    let open = agent
        .metrics()
        .get("redis_agent_http_connections_open", &[])
        .unwrap();
    assert!(open <= 20.0, "{open}");
}

/// Failure 3: a multibyte character where the seconds are is a 400 that says which
/// field, not a panic that drops the connection.
#[test]
fn a_multibyte_start_time_is_a_400() {
    let agent = agent("  max_alerts_per_delivery: 1000\n");
    let mut body = fixture();
    body["alerts"][0]["startsAt"] = json!("2025-01-02T03:04:0éZ");
    let (status, answer) = deliver(agent.port, &body);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("alerts[0].startsAt"),
        "{answer}"
    );
    // The agent is still there.
    assert_eq!(deliver(agent.port, &fixture()).0, 200);
}

/// Failure 4: a path segment that is not UTF-8 is refused in JSON, after the key.
#[test]
fn a_path_that_is_not_utf8_is_a_json_400_after_the_key() {
    let agent = agent("  max_history: 1000\n");
    let (status, text) = agent.get("/api/status/%FF").unwrap();
    assert_eq!(status, 401, "{text}");
    let key = [("X-API-Key", API_KEY)];
    let (status, text) = http_request(agent.port, "GET", "/api/status/%FF", &key, b"").unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(json_of(&text)["error"].is_string(), "{text}");
    let (status, text) = http_request(
        agent.port,
        "GET",
        "/api/failover/history?limit=%FF",
        &key,
        b"",
    )
    .unwrap();
    assert_eq!(status, 400, "{text}");
    assert!(json_of(&text)["error"].is_string(), "{text}");
}

/// Failure 5: more alerts than max_alerts_per_delivery are refused (413, counted).
#[test]
fn more_alerts_than_max_alerts_per_delivery_are_refused() {
    let agent = agent("  max_alerts_per_delivery: 1000\n");
    let mut body = fixture();
    let one = body["alerts"][0].clone();
    body["alerts"] = Value::Array(vec![one; 1001]);
    let (status, answer) = deliver(agent.port, &body);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_alerts_per_delivery (1000)"),
        "{answer}"
    );
    let m = agent.metrics();
    assert_eq!(
        m.get(
            "redis_agent_webhook_requests_total",
            &[("result", "too_many_alerts")]
        ),
        Some(1.0)
    );
}

/// Failure 5: a label of hundreds of kilobytes is cut (to max_label_bytes) when the
/// delivery is read, so neither the journal nor a history answer holds it.
#[test]
fn a_huge_label_is_cut_before_it_is_stored_or_answered() {
    let agent = agent("  max_label_bytes: 256\n");
    // About 900 KiB in all, under the 1 MiB body limit.
    let huge = "x".repeat(400 * 1024);
    let mut body = fixture();
    body["alerts"][0]["labels"]["redis_instance"] = json!(huge);
    body["alerts"][0]["labels"]["alertname"] = json!(huge[..300 * 1024]);
    body["alerts"][0]["fingerprint"] = json!(huge[..200 * 1024]);
    for _ in 0..3 {
        let (status, answer) = deliver(agent.port, &body);
        assert!(status == 200 || status / 100 == 4, "{status} {answer}");
        assert!(
            answer.to_string().len() < 4096,
            "{}",
            answer.to_string().len()
        );
    }
    let key = [("X-API-Key", API_KEY)];
    let (status, history) = http_request(
        agent.port,
        "GET",
        "/api/failover/history?limit=500",
        &key,
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{history}");
    assert!(
        !history.contains(&"x".repeat(257)),
        "a label longer than 256 bytes in the history"
    );
    assert!(history.len() < 64 * 1024, "{}", history.len());
    let stored: u64 = walk(&agent.dir.path().join("state"));
    assert!(stored < 256 * 1024, "state_dir holds {stored} bytes");
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The fixture's alert, about the configured instance `cache`.
fn about_cache() -> Value {
    let text = serde_json::to_string(&fixture())
        .unwrap()
        .replace("redis-app-01", "cache");
    serde_json::from_str(&text).unwrap()
}

/// Failure "a client hang-up switches off failover until restart": deliveries whose
/// clients close their sockets (half of them with a reset) right after sending, so the
/// agent drops their requests wherever they were, leave the journal whole: the next
/// delivery is recorded (200, not 503 "the journal was lost") and the journal stays
/// healthy.
#[test]
fn deliveries_whose_clients_hang_up_never_switch_failover_off() {
    let agent = agent("  max_alerts_per_delivery: 1000\n");
    let body = serde_json::to_vec(&about_cache()).unwrap();
    for i in 0..40 {
        let mut s = connect(agent.port);
        write!(
            s,
            "POST {WEBHOOK} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            bearer(),
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        if i % 2 == 0 {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(s);
    }
    let (status, answer) = deliver(agent.port, &about_cache());
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["opened"].as_array().unwrap().len() + answer["joined"].as_array().unwrap().len()
            == 1,
        "{answer}"
    );
    assert_eq!(
        agent.metrics().get("redis_agent_journal_healthy", &[]),
        Some(1.0)
    );
}
