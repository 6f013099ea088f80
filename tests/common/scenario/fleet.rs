//! The bed as a fleet (issues 17 and 18): a three-member etcd on loopback and three
//! agents, `agent-a` in datacenter a (the World's own agent), `agent-b` in b and
//! `agent-c` in c, an observer datacenter without Redis (a witness's site), each with
//! its own port, state directory and fault proxies into a and b, Alertmanager
//! delivering to all of them and Prometheus scraping all of them. `agent-a` is started
//! first and leads.

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tempfile::TempDir;

use super::super::etcd::EtcdCluster;
use super::super::{Agent, http_request, kill, wait_for};
use super::{API_KEY, World, env};

/// `coordination.etcd.lease_ttl` in the bed: the figure for the measurements.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// The fleet's agents and the datacenters they run in, the World's own first.
pub const AGENTS: [(&str, &str); 3] = [("agent-a", "a"), ("agent-b", "b"), ("agent-c", "c")];

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
pub(super) fn coordination_yaml(etcd: &EtcdCluster, name: &str, datacenter: &str) -> String {
    let endpoints = etcd.client_urls().join(", ");
    format!(
        "coordination:\n\
         \x20 etcd: {{endpoints: [{endpoints}], prefix: /redis-failover-agent/scenario, lease_ttl: {}s}}\n\
         \x20 agent: {{name: {name}, datacenter: {datacenter}}}\n",
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

    /// The fleet's agent `name`, running.
    pub fn fleet_agent(&self, name: &str) -> &Agent {
        let agent = match name {
            "agent-a" => self.agent.as_ref(),
            _ => self
                .fleet()
                .others
                .iter()
                .find(|m| m.name == name)
                .and_then(|m| m.agent.as_ref()),
        };
        agent.unwrap_or_else(|| panic!("{name} is not running"))
    }

    /// Waits until agent `name`'s own collection sees the instance in `dc` up or down
    /// (its `redis_up`): a fault on its path has reached its view.
    pub fn wait_sees(&self, name: &str, dc: &str, up: bool, timeout: Duration) {
        let agent = self.fleet_agent(name);
        let want = if up { 1.0 } else { 0.0 };
        let what = format!("{name} to see {dc} {}", if up { "up" } else { "down" });
        wait_for(timeout, &what, || {
            let seen = agent
                .metrics()
                .get("redis_up", &[("redis_instance", "app"), ("datacenter", dc)]);
            (seen == Some(want)).then_some(())
        });
    }

    /// Delivers the candidate for `app` in `a` to every running agent, as Alertmanager
    /// does; every delivery is accepted.
    pub fn deliver_to_all(&self, status: &str) {
        for (name, port) in self.running_agents() {
            assert_eq!(self.deliver_to(port, status), 200, "delivery to {name}");
        }
    }

    /// The confirmation rounds the leader `agent-a` journaled with observers' views
    /// (`Round.witnesses`), in order.
    pub fn witnessed_rounds(&self) -> Vec<Json> {
        self.journal()
            .into_iter()
            .filter(|r| r["type"] == "step" && r["step"]["name"] == "probe_round")
            .map(|r| r["step"]["evidence"]["witnesses"].clone())
            .filter(|w| !w.is_null())
            .collect()
    }

    /// With one agent's view of `a` wrong: the shipped candidate rule, which counts a
    /// quorum of observers, stays silent for `watch`, and a candidate delivered to every
    /// agent anyway (as Alertmanager would with a rule that did not count) is held as
    /// that agent's partition, and so is every later evaluation.
    pub fn hold_one_observers_view(&self, watch: Duration) {
        self.deliver_to_all("firing");
        let first = self.wait_closed(1, Duration::from_secs(60));
        assert_eq!(first[0], "held:partition_witnessed", "{first:?}");
        // Long enough for a rule on that view to fire (the fleet profile's `for: 2s`).
        std::thread::sleep(watch);
        let raised: Vec<Json> = self
            .prometheus
            .alerts()
            .into_iter()
            .filter(|a| a["labels"]["failover_candidate"] == "true")
            .collect();
        assert!(
            raised.is_empty(),
            "one observer's view raised a candidate: {raised:#?}"
        );
        let outcomes = self.outcomes();
        assert!(
            outcomes.iter().all(|o| o.starts_with("held:")),
            "{outcomes:?}"
        );
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
    others: Vec<(&'static str, u16, TempDir, String)>,
) -> Fleet {
    wait_for(Duration::from_secs(20), "agent-a leading", || {
        (fleet_of(leader_port)?["role"] == "leader").then_some(())
    });
    let others = others
        .into_iter()
        .map(|(name, port, state, config)| Member {
            name,
            agent: Some(Agent::start_on(port, &config, &env(), &["--verbose"])),
            port,
            state,
        })
        .collect();
    Fleet { etcd, others }
}
