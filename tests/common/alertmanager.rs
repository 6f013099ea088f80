//! Helpers for tests that talk to Alertmanager: posting alerts the way Prometheus does,
//! reading what Alertmanager holds, and small scripted HTTP servers that stand in for an
//! Alertmanager that fails, hangs or refuses.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value as Json, json};

use super::stack::Alertmanager;

/// POSTs JSON to 127.0.0.1:`port`; returns (status, body).
pub fn post_json(port: u16, path: &str, body: &Json) -> std::io::Result<(u16, String)> {
    let payload = serde_json::to_vec(body).expect("JSON");
    super::http_request(
        port,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &payload,
    )
}

/// Posts alerts to Alertmanager's `/api/v2/alerts`, as Prometheus does; panics unless 200.
pub fn post_alerts(am: &Alertmanager, alerts: &Json) {
    let (status, body) = post_json(am.port, "/api/v2/alerts", alerts).expect("POST alerts");
    assert_eq!(status, 200, "Alertmanager refused {alerts}: {body}");
}

/// An alert as Prometheus sends it for a rule of `prometheus/rules/`: the series labels
/// (`job`, `instance`), the rule's labels, and `endsAt` a few evaluations ahead (firing)
/// or now (resolved).
pub fn prometheus_alert(
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
    starts_at: SystemTime,
    resolved: bool,
) -> Json {
    use redis_failover_agent::model::rfc3339;
    let mut all: serde_json::Map<String, Json> = serde_json::Map::new();
    all.insert("job".into(), "redis-failover-agent".into());
    all.insert("instance".into(), "agent:8080".into());
    for (k, v) in labels {
        all.insert((*k).into(), (*v).into());
    }
    let ann: serde_json::Map<String, Json> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Json::from(*v)))
        .collect();
    let ends_at = if resolved {
        SystemTime::now()
    } else {
        SystemTime::now() + Duration::from_secs(60)
    };
    let alertname = labels
        .iter()
        .find(|(k, _)| *k == "alertname")
        .map_or("", |(_, v)| *v);
    json!({
        "labels": all,
        "annotations": ann,
        "startsAt": rfc3339::format(starts_at),
        "endsAt": rfc3339::format(ends_at),
        "generatorURL": format!(
            "http://prometheus:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{alertname}%22%7D&g0.tab=1"
        ),
    })
}

/// The alerts Alertmanager holds whose labels include all of `labels`.
pub fn held(am: &Alertmanager, labels: &[(&str, &str)]) -> Vec<Json> {
    am.alerts()
        .into_iter()
        .filter(|a| labels.iter().all(|(k, v)| a["labels"][*k] == *v))
        .collect()
}

/// The receivers Alertmanager routed an alert to (`/api/v2/alerts` `receivers[].name`).
pub fn receivers(alert: &Json) -> Vec<String> {
    alert["receivers"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One scripted answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn new(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.to_owned(),
        }
    }
}

/// An HTTP server that answers requests with scripted answers in turn (the last one
/// repeats), and counts them. Stands in for an Alertmanager that fails or refuses.
pub struct Scripted {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    pub fn start(answers: Vec<Answer>) -> Scripted {
        assert!(!answers.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (count, kept) = (Arc::clone(&requests), Arc::clone(&bodies));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let Some(body) = read_request(&stream) else {
                    continue;
                };
                let n = count.fetch_add(1, Ordering::SeqCst);
                kept.lock().unwrap().push(body);
                let answer = &answers[n.min(answers.len() - 1)];
                let reply = format!(
                    "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                    answer.status,
                    answer.body.len(),
                    answer.body
                );
                let mut stream = stream;
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Scripted {
            port,
            requests,
            bodies,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A server that accepts connections and never answers (a hung Alertmanager).
pub struct Silent {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    pub fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Silent { port, accepted }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request's headers and body; returns the body.
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut len = 0usize;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() && !first {
            break;
        }
        first = false;
        match line.split_once(':') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("content-length") => {
                len = v.trim().parse().ok()?;
            }
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The shipped rules' failover candidates, labelled and annotated as Prometheus sends
/// them (shared by the webhook and the notice tests).
pub const INSTANCE_DOWN: &[(&str, &str)] = &[
    ("alertname", "RedisActiveDatacenterDown"),
    ("severity", "critical"),
    ("scope", "instance"),
    ("failover_candidate", "true"),
    ("redis_instance", "redis-app-01"),
    ("datacenter", "east"),
];

pub const INSTANCE_DOWN_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "summary",
        "Redis redis-app-01 does not answer in its active datacenter east",
    ),
    (
        "description",
        "The agent gets no answer from redis-app-01 in east, the datacenter its clients are \
         sent to (redis_up = 0). Failover candidate: the agent now probes every datacenter \
         of the instance before it moves DNS.",
    ),
    (
        "runbook_url",
        "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/RedisActiveDatacenterDown.md",
    ),
    (
        "dashboard",
        "/d/redis-overview/redis-overview?var-redis_instance=redis-app-01&var-datacenter=east",
    ),
];

pub const DATACENTER_COLLAPSED: &[(&str, &str)] = &[
    ("alertname", "RedisDatacenterHealthCollapsed"),
    ("severity", "critical"),
    ("scope", "datacenter"),
    ("failover_candidate", "true"),
    ("datacenter", "east"),
];

pub const DATACENTER_COLLAPSED_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "summary",
        "Redis health in datacenter east collapsed to 0.12",
    ),
    (
        "description",
        "The mean health of the Redis endpoints in east is 0.12 (below 0.3; 1 is healthy, 0 \
         means no endpoint answers). 2 instance(s) send their clients there.",
    ),
    (
        "runbook_url",
        "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/RedisDatacenterHealthCollapsed.md",
    ),
    (
        "dashboard",
        "/d/redis-failover/datacenters-and-failover?var-datacenter=east",
    ),
];
