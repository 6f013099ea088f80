//! The bed as a fleet (issue 17): a three-member etcd on loopback and three agents,
//! `agent-a` in datacenter a (the World's own agent), `agent-b` in b and `agent-c` at a
//! witness, each with its own port and state directory, Alertmanager delivering to all
//! of them and Prometheus scraping all of them. `agent-a` is started first and leads.

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tempfile::TempDir;

use super::super::etcd::EtcdCluster;
use super::super::{Agent, http_request, kill, wait_for};
use super::{API_KEY, World, env};

/// `coordination.etcd.lease_ttl` in the bed: the figure for the measurements.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// An agent of the fleet beside the World's own.
pub struct Member {
    pub name: &'static str,
    pub agent: Option<Agent>,
    pub port: u16,
    pub state: TempDir,
}

pub struct Fleet {
    pub etcd: EtcdCluster,
    pub others: Vec<Member>,
}

/// The `coordination` section of agent `name`.
pub(super) fn coordination_yaml(
    etcd: &EtcdCluster,
    name: &str,
    datacenter: Option<&str>,
) -> String {
    let endpoints = etcd.client_urls().join(", ");
    let dc = datacenter.map_or(String::new(), |d| format!(", datacenter: {d}"));
    format!(
        "coordination:\n\
         \x20 etcd: {{endpoints: [{endpoints}], prefix: /redis-failover-agent/scenario, lease_ttl: {}s}}\n\
         \x20 agent: {{name: {name}{dc}}}\n",
        LEASE_TTL.as_secs()
    )
}

/// `GET /api/status`'s `fleet` object of the agent on `port`, if it answers.
fn fleet_of(port: u16) -> Option<Json> {
    let (status, body) =
        http_request(port, "GET", "/api/status", &[("X-API-Key", API_KEY)], b"").ok()?;
    if status != 200 {
        return None;
    }
    let json: Json = serde_json::from_str(&body).ok()?;
    Some(json["fleet"].clone())
}

impl World {
    pub fn fleet(&self) -> &Fleet {
        self.fleet.as_ref().expect("the bed runs as a fleet")
    }

    /// (name, port) of every agent of the fleet that runs.
    pub fn running_agents(&self) -> Vec<(&'static str, u16)> {
        let mut all = Vec::new();
        if self.agent.is_some() {
            all.push(("agent-a", self.agent_port));
        }
        for m in &self.fleet().others {
            if m.agent.is_some() {
                all.push((m.name, m.port));
            }
        }
        all
    }

    /// The leader every running agent names, once they agree; waits at most `timeout`.
    pub fn wait_leader(&self, timeout: Duration) -> String {
        wait_for(timeout, "every running agent naming one leader", || {
            let views: Vec<Json> = self
                .running_agents()
                .iter()
                .map(|(_, port)| fleet_of(*port))
                .collect::<Option<_>>()?;
            let leader = views[0]["leader"].as_str()?.to_owned();
            let leaders = views.iter().filter(|v| v["role"] == "leader").count();
            let agree = views.iter().all(|v| v["leader"].as_str() == Some(&leader));
            (agree && leaders == 1).then_some(leader)
        })
    }

    /// Waits for a leader other than `old`; the time since `since`.
    pub fn wait_new_leader(
        &self,
        old: &str,
        since: Instant,
        timeout: Duration,
    ) -> (String, Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.wait_leader(deadline.saturating_duration_since(Instant::now()));
            if leader != old {
                return (leader, since.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`s the fleet's agent `name`.
    pub fn kill_agent(&mut self, name: &str) {
        let agent = match name {
            "agent-a" => self.agent.take(),
            _ => self
                .fleet
                .as_mut()
                .and_then(|f| f.others.iter_mut().find(|m| m.name == name))
                .and_then(|m| m.agent.take()),
        };
        let mut agent = agent.unwrap_or_else(|| panic!("{name} is not running"));
        kill(agent.pid(), "KILL");
        let _ = agent.stop_after_signal();
    }

    /// The DNS changes every agent of the fleet wrote (its journal's `applied` records
    /// with a change id; one a successor completed without writing has none).
    pub fn dns_writes(&self) -> usize {
        let mut dirs = vec![self.state.path()];
        dirs.extend(self.fleet().others.iter().map(|m| m.state.path()));
        dirs.into_iter()
            .flat_map(super::super::e2e::journal)
            .filter(|r| r["type"] == "applied" && !r["change"].is_null())
            .count()
    }

    /// The outcomes of the incidents every agent closed, by agent.
    pub fn fleet_outcomes(&self) -> Vec<(String, String)> {
        let mut dirs = vec![("agent-a", self.state.path())];
        dirs.extend(self.fleet().others.iter().map(|m| (m.name, m.state.path())));
        dirs.into_iter()
            .flat_map(|(name, dir)| {
                super::super::e2e::journal(dir)
                    .into_iter()
                    .filter(|r| r["type"] == "closed")
                    .map(move |r| {
                        (
                            name.to_owned(),
                            r["outcome"]["outcome"].as_str().unwrap_or("").to_owned(),
                        )
                    })
            })
            .collect()
    }
}

/// Starts `agent-b` and `agent-c` once `agent-a` leads.
pub(super) fn start_others(
    leader_port: u16,
    etcd: EtcdCluster,
    others: Vec<(&'static str, Option<&'static str>, u16, TempDir, String)>,
) -> Fleet {
    wait_for(Duration::from_secs(20), "agent-a leading", || {
        (fleet_of(leader_port)?["role"] == "leader").then_some(())
    });
    let others = others
        .into_iter()
        .map(|(name, _, port, state, config)| Member {
            name,
            agent: Some(Agent::start_on(port, &config, &env(), &["--verbose"])),
            port,
            state,
        })
        .collect();
    Fleet { etcd, others }
}
