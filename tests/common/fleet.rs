//! The fleet's bed: agents `a`, `b` and `c` sharing a three-member etcd on loopback, one
//! `moto_server` as Route53 behind a proxy that counts the changes it accepts, and a
//! real redis-server in each of the datacenters `a` (active) and `b`. Each agent has its
//! own state directory and port; `lease_ttl` is [`TTL`] to keep the tests short.

use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::e2e::{API_KEY, TOKEN, journal, route53_yaml, runtime};
use super::etcd::EtcdCluster;
use super::faulty_http::FaultyHttp;
use super::moto::{Moto, listing, zone_with};
use super::{Agent, Redis, http_request, wait_for};

pub const TTL: Duration = Duration::from_secs(3);
pub const RECORD: &str = "redis.example.com";
pub const IN_A: &str = "redis-a.example.com";
pub const IN_B: &str = "redis-b.example.com";
const PREFIX: &str = "/redis-failover-agent/fleet-test";

pub struct FleetBed {
    pub etcd: EtcdCluster,
    pub redis_a: Redis,
    pub redis_b: Redis,
    pub moto: Moto,
    /// In front of moto: every Route53 call of every agent goes through it.
    pub route53: FaultyHttp,
    pub zone: String,
    /// For the tests' own files (a hook's marker).
    pub dir: tempfile::TempDir,
}

impl FleetBed {
    pub fn start() -> FleetBed {
        let etcd = EtcdCluster::start();
        let redis_a = Redis::start(&[]);
        let redis_b = Redis::start(&[]);
        let moto = Moto::start();
        let zone = runtime().block_on(zone_with(&moto, &[(RECORD, IN_A)]));
        let route53 = FaultyHttp::start(moto.port);
        FleetBed {
            etcd,
            redis_a,
            redis_b,
            moto,
            route53,
            zone,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Agent `name`'s configuration: instance `app` active in `a`, its CNAME in moto
    /// (through the proxy), the fleet's etcd, and `extra` appended.
    pub fn config(&self, name: &str, extra: &str) -> String {
        let endpoints = self.etcd.client_urls().join(", ");
        // Agent c runs in neither datacenter (a witness's host).
        let datacenter = match name {
            "a" | "b" => format!(", datacenter: {name}"),
            _ => String::new(),
        };
        super::config(
            &[("app", &[("a", self.redis_a.port), ("b", self.redis_b.port)])],
            &format!(
                "auto_failover: true\n\
                 failover_consecutive_threshold: 2\n\
                 confirm_interval: 200ms\n\
                 webhook: {{bearer_token: {TOKEN}}}\n\
                 api: {{api_key: {API_KEY}}}\n\
                 {dns}\
                 coordination:\n\
                 \x20 etcd: {{endpoints: [{endpoints}], prefix: {PREFIX}, lease_ttl: {ttl}s}}\n\
                 \x20 agent: {{name: {name}{datacenter}}}\n\
                 {extra}",
                dns = route53_yaml(
                    &self.zone,
                    &self.route53.url(),
                    RECORD,
                    60,
                    &[("a", IN_A), ("b", IN_B)]
                ),
                ttl = TTL.as_secs(),
            ),
        )
    }

    /// Starts agent `name` with `env` and `extra` configuration.
    pub fn agent(&self, name: &str, env: &[(&str, &str)], extra: &str) -> Agent {
        Agent::start_full(&self.config(name, extra), env, &["--verbose"])
    }

    /// Agents a, b and c, plain.
    pub fn agents(&self) -> Vec<Agent> {
        ["a", "b", "c"]
            .iter()
            .map(|name| self.agent(name, &[], ""))
            .collect()
    }

    /// Where the record points, as moto holds it.
    pub fn pointing_at(&self) -> String {
        let all = runtime().block_on(listing(&self.moto, &self.zone));
        all.into_iter()
            .find(|(name, kind, _)| name.trim_end_matches('.') == RECORD && kind == "CNAME")
            .map(|(_, _, values)| values.join(","))
            .unwrap_or_default()
    }

    /// The changes to the zone moto accepted from the agents (a change refused, as a
    /// compare-and-swap on a stale read is, does not count).
    pub fn dns_changes(&self) -> usize {
        self.route53
            .log()
            .iter()
            .filter(|e| e.method == "POST" && e.path.contains("/rrset") && e.status == 200)
            .count()
    }

    /// Every Route53 change the agents asked for, with moto's answer, for messages.
    pub fn dns_calls(&self) -> String {
        let calls: Vec<String> = self
            .route53
            .log()
            .iter()
            .filter(|e| e.method == "POST")
            .map(|e| format!("{} {} -> {}\n{}", e.method, e.path, e.status, e.body))
            .collect();
        calls.join("\n")
    }

    /// What the fleet's store holds of instance `app` (`instances/app`), as JSON; `Null`
    /// when nothing is recorded.
    pub fn shared_record(&self) -> Json {
        let out = std::process::Command::new("etcdctl")
            .args(["--endpoints", &self.etcd.client_urls().join(",")])
            .args(["--command-timeout", "2s", "get", "--print-value-only"])
            .arg(format!("{PREFIX}/instances/app"))
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl runs");
        assert!(out.status.success(), "etcdctl get: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim() {
            "" => Json::Null,
            value => serde_json::from_str(value)
                .unwrap_or_else(|e| panic!("instances/app is not JSON ({e}): {value}")),
        }
    }

    pub fn wait_pointing_at(&self, within: Duration, value: &str) {
        let deadline = Instant::now() + within;
        while self.pointing_at() != value {
            assert!(
                Instant::now() < deadline,
                "DNS did not point at {value} within {within:?}; it points at {}; changes:\n{}",
                self.pointing_at(),
                self.dns_calls()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An agent's place in the fleet as its `GET /api/status` says: (name, role, leader).
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub agent: String,
    pub role: String,
    pub leader: Option<String>,
}

/// The `fleet` object of the agent's `/api/status`; `None` when it does not answer.
pub fn place(agent: &Agent) -> Option<Place> {
    let (status, body) = api(agent, "/api/status")?;
    assert_eq!(status, 200, "GET /api/status: {body}");
    let body: Json = serde_json::from_str(&body).expect("/api/status answers JSON");
    let fleet = &body["fleet"];
    assert!(fleet.is_object(), "/api/status has no fleet object: {body}");
    Some(Place {
        agent: fleet["agent"].as_str().unwrap_or_default().to_owned(),
        role: fleet["role"].as_str().unwrap_or_default().to_owned(),
        leader: fleet["leader"].as_str().map(str::to_owned),
    })
}

/// Every observer's latest view of `app` in `dc`, as the agent's `/api/status` shows it.
pub fn observers(agent: &Agent, dc: &str) -> Vec<Json> {
    let (status, body) = api(agent, "/api/status/app").expect("the agent answers");
    assert_eq!(status, 200, "GET /api/status/app: {body}");
    let body: Json = serde_json::from_str(&body).expect("/api/status answers JSON");
    body["datacenters"]
        .as_array()
        .and_then(|dcs| dcs.iter().find(|d| d["datacenter"] == dc))
        .and_then(|d| d["observers"].as_array().cloned())
        .unwrap_or_default()
}

/// GET `path` on the operator API; `None` when the agent does not answer (killed).
fn api(agent: &Agent, path: &str) -> Option<(u16, String)> {
    http_request(agent.port, "GET", path, &[("X-API-Key", API_KEY)], b"").ok()
}

/// Waits until exactly one of `agents` leads and every other one names it; returns its
/// index in `agents`.
pub fn wait_one_leader(agents: &[&Agent], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let places: Vec<Option<Place>> = agents.iter().map(|a| place(a)).collect();
        let leaders: Vec<usize> = (0..places.len())
            .filter(|&i| places[i].as_ref().is_some_and(|p| p.role == "leader"))
            .collect();
        if let [leader] = leaders[..] {
            let name = places[leader].as_ref().map(|p| p.agent.clone());
            let all_follow = places.iter().enumerate().all(|(i, p)| {
                i == leader
                    || p.as_ref()
                        .is_some_and(|p| p.role == "follower" && p.leader == name)
            });
            if all_follow {
                return leader;
            }
        }
        assert!(
            leaders.len() <= 1,
            "more than one agent leads at once: {places:#?}"
        );
        if Instant::now() > deadline {
            panic!("no single leader that all agents name within {within:?}: {places:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until every agent's `/metrics` sees Redis up in both datacenters.
pub fn wait_redis_seen(agents: &[&Agent]) {
    for agent in agents {
        agent.wait_metrics(Duration::from_secs(20), "Redis up in a and b", |m| {
            m.of("redis_up", "app", "a") == Some(1.0) && m.of("redis_up", "app", "b") == Some(1.0)
        });
    }
}

/// Alertmanager's delivery: `app` does not answer in datacenter `dc`, firing.
pub fn payload(dc: &str) -> String {
    super::e2e::payload_in("firing", dc)
}

/// The agent's incidents of `app`, from `GET /api/failover/history`.
pub fn history(agent: &Agent) -> Vec<Json> {
    let (status, body) =
        api(agent, "/api/failover/history?instance_uid=app").expect("the agent answers");
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    body["incidents"].as_array().cloned().unwrap_or_default()
}

/// The outcomes of the agent's closed incidents of `app`, oldest first.
pub fn outcomes(agent: &Agent) -> Vec<String> {
    let mut incidents = history(agent);
    incidents.sort_by_key(|i| i["id"].as_u64());
    incidents
        .iter()
        .filter_map(|i| i["outcome"]["outcome"].as_str().map(str::to_owned))
        .collect()
}

/// Waits until the agent's history shows an incident closed as `outcome`; returns it.
pub fn wait_outcome(agent: &Agent, outcome: &str, within: Duration) -> Json {
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(within, "the outcome", || {
            history(agent)
                .into_iter()
                .find(|i| i["outcome"]["outcome"] == outcome)
        })
    }));
    found.unwrap_or_else(|_| {
        panic!(
            "agent on port {} shows no incident closed as {outcome} within {within:?}; \
             its history: {:#?}\n--- its log ---\n{}",
            agent.port,
            history(agent),
            agent.log()
        )
    })
}

/// The names of an incident's steps, in order.
pub fn step_names(incident: &Json) -> Vec<String> {
    incident["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many records of `kind` the agent's own journal holds.
pub fn journaled(agent: &Agent, kind: &str) -> usize {
    super::e2e::count(&journal(&agent.dir.path().join("state")), kind)
}
