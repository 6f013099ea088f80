//! `GET /api/status` as a table, one row per endpoint. Pure: the answer in, text out.
//!
//! Ages are measured against the answer's own `generated_at`, so a clock that differs
//! between the agent and the terminal does not skew them. Every text that came from the
//! agent is escaped before it reaches the terminal (an error message from Redis could
//! hold an ANSI sequence).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::shorten;
use crate::logging::escaped;
use crate::model::rfc3339;

/// The parts of the answer the table shows (docs/api.md, "Status"); the rest is ignored.
#[derive(Debug, Deserialize)]
pub(super) struct Status {
    generated_at: String,
    auto_failover: Option<bool>,
    instances: Vec<Instance>,
    fleet: Option<Fleet>,
}

#[derive(Debug, Deserialize)]
struct Fleet {
    agent: String,
    role: String,
    leader: Option<String>,
    term: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Instance {
    instance_uid: String,
    active_datacenter: String,
    cooldown_until: Option<String>,
    open_incident: Option<u64>,
    datacenters: Vec<Endpoint>,
}

#[derive(Debug, Deserialize)]
struct Endpoint {
    datacenter: String,
    up: bool,
    health_score: Option<f64>,
    health_status: Option<String>,
    anomaly_score: Option<f64>,
    anomalous: Option<bool>,
    anomaly_state: Option<String>,
    last_collection: Option<String>,
    last_error: Option<LastError>,
}

#[derive(Debug, Deserialize)]
struct LastError {
    kind: String,
    message: String,
}

const HEADER: [&str; 8] = [
    "INSTANCE",
    "ACTIVE",
    "DATACENTER",
    "UP",
    "HEALTH",
    "ANOMALY",
    "LAST ROUND",
    "LAST ERROR",
];

/// An error message is cut to this many characters: the table stays one line a row.
const ERROR_CHARS: usize = 60;

pub(super) fn render(status: &Status) -> String {
    let now = rfc3339::parse(&status.generated_at).ok().flatten();
    let mut rows = vec![HEADER.map(str::to_owned).to_vec()];
    let mut notes = Vec::new();
    for instance in &status.instances {
        for (i, endpoint) in instance.datacenters.iter().enumerate() {
            let (name, active) = if i == 0 {
                (
                    escaped(&instance.instance_uid),
                    escaped(&instance.active_datacenter),
                )
            } else {
                (String::new(), String::new())
            };
            rows.push(vec![
                name,
                active,
                escaped(&endpoint.datacenter),
                (if endpoint.up { "up" } else { "down" }).to_owned(),
                health(endpoint),
                anomaly(endpoint),
                age(now, endpoint.last_collection.as_deref()),
                endpoint.last_error.as_ref().map_or_else(String::new, |e| {
                    escaped(&shorten(&format!("{}: {}", e.kind, e.message), ERROR_CHARS))
                }),
            ]);
        }
        if let Some(until) = &instance.cooldown_until {
            notes.push(format!(
                "{}: cooldown until {}",
                escaped(&instance.instance_uid),
                escaped(until)
            ));
        }
        if let Some(incident) = instance.open_incident {
            notes.push(format!(
                "{}: incident {incident} is being evaluated",
                escaped(&instance.instance_uid)
            ));
        }
    }
    let mut out = summary(status);
    out.push_str(&columns(&rows));
    for note in notes {
        out.push_str(&note);
        out.push('\n');
    }
    out
}

/// The line above the table: whether alerts are acted on, and the agent's fleet.
fn summary(status: &Status) -> String {
    let acting = match status.auto_failover {
        Some(true) => "on",
        Some(false) => "off",
        None => "unknown",
    };
    let mut line = format!("auto failover: {acting}");
    if let Some(fleet) = &status.fleet {
        line.push_str(&format!(
            "; fleet: {} is {}",
            escaped(&fleet.agent),
            escaped(&fleet.role)
        ));
        match (&fleet.leader, fleet.term) {
            (Some(leader), Some(term)) if *leader != fleet.agent => {
                line.push_str(&format!(", leader {} (term {term})", escaped(leader)));
            }
            (_, Some(term)) => line.push_str(&format!(" (term {term})")),
            _ => {}
        }
    }
    line.push('\n');
    line
}

fn health(endpoint: &Endpoint) -> String {
    match (endpoint.health_score, &endpoint.health_status) {
        (Some(score), Some(status)) => format!("{score:.2} {}", escaped(status)),
        (Some(score), None) => format!("{score:.2}"),
        _ => "-".to_owned(),
    }
}

fn anomaly(endpoint: &Endpoint) -> String {
    match (endpoint.anomaly_score, endpoint.anomaly_state.as_deref()) {
        (Some(score), _) if endpoint.anomalous == Some(true) => format!("{score:.2} anomalous"),
        (Some(score), _) => format!("{score:.2}"),
        (None, Some("warming_up")) => "warming up".to_owned(),
        (None, Some(state)) if state != "ready" => escaped(state),
        _ => "-".to_owned(),
    }
}

/// How long before `now` the endpoint's latest round ran: `4s ago`, `3m05s ago`.
fn age(now: Option<SystemTime>, at: Option<&str>) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let at = rfc3339::parse(at).ok().flatten();
    let Some(elapsed) = now
        .zip(at)
        .map(|(now, at)| now.duration_since(at).unwrap_or(Duration::ZERO).as_secs())
    else {
        return "?".to_owned();
    };
    match elapsed {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m{:02}s ago", s / 60, s % 60),
        s => format!("{}h{:02}m ago", s / 3600, s % 3600 / 60),
    }
}

/// Left-aligned columns two spaces apart, without trailing blanks.
fn columns(rows: &[Vec<String>]) -> String {
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..HEADER.len()).map(width).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/api.md, "Status".
    const ANSWER: &str = r#"{
      "generated_at": "2026-11-22T07:16:52.3Z",
      "auto_failover": false,
      "instances": [{
        "instance_uid": "cache", "name": "cache-service", "active_datacenter": "west",
        "dns_record": "redis.example.com", "cooldown_until": "2026-11-22T07:46:52.36Z",
        "open_incident": null,
        "datacenters": [
          {"datacenter": "east", "active": false, "address": "redis-east.example.com:6379",
           "up": false, "health_score": 0.0, "health_status": "failed",
           "anomaly_score": null, "anomalous": null, "anomaly_state": "ready",
           "last_collection": "2026-11-22T07:16:50Z", "last_success": "2026-11-22T07:12:20Z",
           "failing_since": "2026-11-22T07:12:21.04Z",
           "last_error": {"kind": "connect", "message": "connection refused"}},
          {"datacenter": "west", "active": true, "address": "redis-west.example.com:6379",
           "up": true, "health_score": 0.93, "health_status": "healthy",
           "anomaly_score": 0.21, "anomalous": false, "anomaly_state": "ready",
           "last_collection": "2026-11-22T07:16:52.32Z",
           "last_success": "2026-11-22T07:16:52.32Z", "failing_since": null, "last_error": null}
        ]
      }]
    }"#;

    #[test]
    fn the_documented_answer_reads_as_a_table() {
        let status: Status = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(
            render(&status),
            "auto failover: off\n\
             INSTANCE  ACTIVE  DATACENTER  UP    HEALTH        ANOMALY  LAST ROUND  LAST ERROR\n\
             cache     west    east        down  0.00 failed   -        2s ago      connect: connection refused\n\
             \x20                 west        up    0.93 healthy  0.21     0s ago\n\
             cache: cooldown until 2026-11-22T07:46:52.36Z\n"
        );
    }

    #[test]
    fn warm_up_anomalies_fleets_and_hostile_text() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "generated_at": "2026-11-22T08:00:00Z", "auto_failover": true,
            "fleet": {"agent": "agent-b", "role": "follower", "leader": "agent-a", "term": 4},
            "instances": [{
                "instance_uid": "app\u{1b}[2J", "active_datacenter": "a",
                "cooldown_until": null, "open_incident": 7,
                "datacenters": [
                    {"datacenter": "a", "up": true, "health_score": 0.5,
                     "health_status": "degraded", "anomaly_score": 0.91, "anomalous": true,
                     "anomaly_state": "ready", "last_collection": "2026-11-22T07:56:55Z",
                     "last_error": null},
                    {"datacenter": "b", "up": false, "health_score": null,
                     "health_status": null, "anomaly_score": null, "anomalous": null,
                     "anomaly_state": "warming_up", "last_collection": null,
                     "last_error": {"kind": "timeout", "message": "x".repeat(100)}},
                ],
            }],
        }))
        .unwrap();
        let table = render(&status);
        assert!(
            table.starts_with(
                "auto failover: on; fleet: agent-b is follower, leader agent-a (term 4)\n"
            ),
            "{table}"
        );
        assert!(table.contains("0.91 anomalous"), "{table}");
        assert!(table.contains("3m05s ago"), "{table}");
        assert!(table.contains("warming up"), "{table}");
        assert!(table.contains("never"), "{table}");
        assert!(
            table.contains(&format!("timeout: {}...", "x".repeat(51))),
            "{table}"
        );
        assert!(
            !table.contains('\u{1b}'),
            "an escape reached the terminal: {table}"
        );
        assert!(table.contains("incident 7 is being evaluated"), "{table}");
    }

    #[test]
    fn ages_read_in_the_largest_useful_unit() {
        let now = rfc3339::parse("2026-01-01T02:00:00Z").unwrap();
        assert_eq!(age(now, Some("2026-01-01T01:59:59Z")), "1s ago");
        assert_eq!(age(now, Some("2026-01-01T00:59:00Z")), "1h01m ago");
        assert_eq!(age(now, Some("2026-01-01T02:00:09Z")), "0s ago");
        assert_eq!(age(now, Some("yesterday")), "?");
        assert_eq!(age(now, None), "never");
    }
}
