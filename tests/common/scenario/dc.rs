//! One datacenter of the bed: a Redis primary with a replica and three Sentinels, each
//! agent's own fault proxies in front of them (one observer's path can be cut while the
//! others' are not), and the clients' own.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::proxy::{Fault, FaultProxy};
use super::super::{Redis, wait_for};

/// One datacenter.
pub struct Dc {
    pub name: &'static str,
    pub master: String,
    pub primary: Redis,
    pub replica: Redis,
    pub sentinels: Vec<Redis>,
    /// Each agent's paths, by the agent's name: `[primary, sentinel 1, sentinel 2,
    /// sentinel 3]`.
    pub paths: BTreeMap<&'static str, Vec<FaultProxy>>,
    /// The clients' paths, by the real port they lead to (Redis and Sentinels): the
    /// network between the clients and the datacenter.
    pub client_paths: BTreeMap<u16, FaultProxy>,
}

impl Dc {
    /// Starts the datacenter with a set of paths for each of `agents`.
    pub(super) fn start(name: &'static str, primary_extra: &[&str], agents: &[&'static str]) -> Dc {
        let mut args = vec![
            "--repl-diskless-sync-delay",
            "0",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            // DEBUG SLEEP and DEBUG POPULATE inject faults.
            "--enable-debug-command",
            "yes",
        ];
        args.extend_from_slice(primary_extra);
        let primary = Redis::start(&args);
        let port = primary.port.to_string();
        let mut replica_args = args.clone();
        replica_args.extend_from_slice(&["--replicaof", "127.0.0.1", &port]);
        let replica = Redis::start(&replica_args);
        let master = format!("app-{name}");
        let sentinels: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::sentinel_of(
                    primary.port,
                    &master,
                    2,
                    &format!("sentinel failover-timeout {master} 5000\n"),
                )
            })
            .collect();
        let paths = agents
            .iter()
            .map(|agent| {
                let ports = std::iter::once(primary.port).chain(sentinels.iter().map(|s| s.port));
                (*agent, ports.map(FaultProxy::start).collect())
            })
            .collect();
        let client_paths = [primary.port, replica.port]
            .into_iter()
            .chain(sentinels.iter().map(|s| s.port))
            .map(|p| (p, FaultProxy::start(p)))
            .collect();
        let dc = Dc {
            name,
            master,
            primary,
            replica,
            sentinels,
            paths,
            client_paths,
        };
        dc.wait_replicated();
        dc
    }

    /// Waits until the Sentinels know the replica (a failover needs it).
    pub fn wait_replicated(&self) {
        let s = &self.sentinels[0];
        wait_for(
            Duration::from_secs(30),
            &format!("Sentinels of {} to list the replica", self.name),
            || {
                let out = s.cli(&["SENTINEL", "replicas", &self.master]);
                out.contains(&self.replica.port.to_string()).then_some(())
            },
        );
    }

    /// Cuts (or heals) every agent's every path into the datacenter.
    pub fn agent_paths(&self, fault: Fault) {
        for agent in self.paths.keys() {
            self.path_of(agent, fault);
        }
    }

    /// Cuts (or heals) agent `agent`'s paths into the datacenter only: a fault on one
    /// observer's path.
    pub fn path_of(&self, agent: &str, fault: Fault) {
        let paths = self
            .paths
            .get(agent)
            .unwrap_or_else(|| panic!("{agent} has no paths into {}", self.name));
        for p in paths {
            p.set(fault);
        }
    }

    /// Puts `fault` on every path into the datacenter, the agent's and the clients'
    /// (inside it, Sentinel still reaches its Redis).
    pub fn network(&self, fault: Fault) {
        self.agent_paths(fault);
        for p in self.client_paths.values() {
            p.set(fault);
        }
    }

    /// Kills every Redis and Sentinel of the datacenter.
    pub fn kill_all(&mut self) {
        self.primary.kill();
        self.replica.kill();
        for s in &mut self.sentinels {
            s.kill();
        }
    }

    /// The port of the datacenter's primary, as its Sentinels say now.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = std::process::Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &s.port.to_string()])
                .args(["SENTINEL", "get-master-addr-by-name", &self.master])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
    }

    /// The instance's endpoint here, as `agent` reaches it (through its own paths).
    pub(super) fn endpoint_yaml(&self, agent: &str, sentinel: bool) -> String {
        let paths = &self.paths[agent];
        let mut y = format!("{{host: 127.0.0.1, port: {}", paths[0].port);
        if sentinel {
            let addresses: Vec<String> = paths[1..]
                .iter()
                .map(|p| format!("'127.0.0.1:{}'", p.port))
                .collect();
            y.push_str(&format!(
                ", sentinel: {{master: {}, addresses: [{}]}}",
                self.master,
                addresses.join(", ")
            ));
        }
        y.push('}');
        y
    }
}
