//! The scenario bed (issue 7): two datacenters on loopback, each a Redis primary with a
//! replica and three Sentinels; the agent with the shipped fast profile; real Prometheus
//! and Alertmanager with the shipped rules and routes (Alertmanager's webhook goes to the
//! agent); `moto_server` as Route53 with the instance's CNAME pointing at `a` (or, with
//! [`Options::dns_via_bind`], BIND 9 serving it, which the clients resolve through);
//! `osmem-server` fed by a client workload; optionally the scripted AI server. As a
//! fleet ([`fleet`]): three agents on a three-member etcd, on the fleet profile.
//!
//! Each agent reaches each datacenter through fault proxies of its own (one in front of
//! the primary and one per Sentinel), so one agent's path alone can be cut while the
//! other agents' and the clients', which connect through proxies of their own, still
//! reach Redis.
//!
//! The timings come from a profile of `profiles/`, applied through overlays ([`Profile`]).

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value as Json;
use tempfile::TempDir;

use super::bind::{Bind, KEY_NAME, KEY_SECRET, dig_at};
use super::moto::{Moto, listing, zone_with};
use super::openai::{Reply, ScriptedOpenAi};
use super::osmem::{Osmem, ok};
use super::stack::{Alertmanager, Prometheus, Receiver};
use super::workload::{Routes, Workload};
use super::{Agent, free_port, http_request, wait_for};

mod config;
mod dc;
pub mod fleet;
mod profile;
pub mod results;

pub use dc::Dc;
pub use profile::Profile;

use config::{Peers, agent_config};

pub const RECORD: &str = "app.example.com";
pub const API_KEY: &str = "scenario-operator-api-key-0123456789";
pub const AI_KEY: &str = "scenario-azure-openai-key-0123456789";
pub const INDEX: &str = "client-logs-scenario";

/// The CNAME's value for a datacenter.
pub fn host_of(dc: &str) -> String {
    format!("redis-{dc}.example.com")
}

/// How a scenario wants the bed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The agent follows each datacenter's Sentinels (default), or probes the primary's
    /// address only.
    pub agent_uses_sentinel: bool,
    /// The scripted model's answers; `None`: no AI advisor.
    pub ai: Option<Vec<Reply>>,
    /// `azure_openai.timeout`, seconds.
    pub ai_timeout_s: u64,
    /// Extra `redis-server` arguments for datacenter `a`'s Redis.
    pub a_extra: Vec<String>,
    /// Appended to the agent's configuration.
    pub agent_extra: String,
    /// Three agents on a three-member etcd instead of one ([`fleet`]).
    pub fleet: bool,
    /// The agents read the clients' errors from osmem-server (default); `false`: no
    /// client impact advisor, the clients still log there.
    pub client_impact: bool,
    /// The timing profile, `profiles/<profile>.yaml`.
    pub profile: String,
    /// BIND 9 serves the zone and takes the agent's RFC 2136 updates
    /// (`dns_provider: rfc2136`), and the clients resolve the record by querying it;
    /// default: moto as Route53, which the clients read by listing the zone.
    pub dns_via_bind: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            agent_uses_sentinel: true,
            ai: None,
            ai_timeout_s: 5,
            a_extra: Vec::new(),
            agent_extra: String::new(),
            fleet: false,
            client_impact: true,
            profile: "fast".into(),
            dns_via_bind: false,
        }
    }
}

impl Options {
    /// With the scripted AI when `SCENARIO_AI=scripted` (the benchmark's second pass):
    /// it agrees with whatever the policy says.
    pub fn from_env() -> Options {
        let ai = (std::env::var("SCENARIO_AI").as_deref() == Ok("scripted"))
            .then(|| vec![Reply::advice("failover", Some("b"), 0.95)]);
        Options {
            ai,
            ..Options::default()
        }
    }

    /// The bed as a fleet on the fleet profile, or on `SCENARIO_PROFILE` when set (the
    /// benchmark compares profiles), with the AI as [`Options::from_env`] says.
    pub fn fleet_from_env() -> Options {
        Options {
            fleet: true,
            profile: std::env::var("SCENARIO_PROFILE").unwrap_or_else(|_| "fleet".into()),
            ..Options::from_env()
        }
    }
}

/// Everything running.
pub struct World {
    pub a: Dc,
    pub b: Dc,
    pub moto: Moto,
    pub zone: String,
    /// With [`Options::dns_via_bind`]: the zone's server, in moto's place.
    pub bind: Option<Bind>,
    pub osmem: Osmem,
    pub receiver: Receiver,
    pub alertmanager: Alertmanager,
    pub prometheus: Prometheus,
    pub agent: Option<Agent>,
    pub agent_port: u16,
    pub config: String,
    pub state: TempDir,
    pub workload: Option<Workload>,
    pub ai: Option<ScriptedOpenAi>,
    /// With [`Options::fleet`]: etcd and the other agents.
    pub fleet: Option<fleet::Fleet>,
    rt: tokio::runtime::Runtime,
}

impl World {
    pub fn build(opts: Options) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let a_extra: Vec<&str> = opts.a_extra.iter().map(String::as_str).collect();
        // The agents and where they run: the World's own first (it leads a fleet).
        let agents: Vec<(&'static str, &'static str)> = match opts.fleet {
            true => fleet::AGENTS.to_vec(),
            false => vec![fleet::AGENTS[0]],
        };
        let names: Vec<&'static str> = agents.iter().map(|(name, _)| *name).collect();
        let a = Dc::start("a", &a_extra, &names);
        let b = Dc::start("b", &[], &names);
        let moto = Moto::start();
        let zone = rt.block_on(zone_with(&moto, &[(RECORD, &host_of("a"))]));
        let bind = opts.dns_via_bind.then(|| {
            let (zone, target) = (RECORD.split_once('.').unwrap().1, host_of("a") + ".");
            let grant = format!("grant {KEY_NAME} name {RECORD}. CNAME;");
            Bind::serving(zone, &[(RECORD, &target)], &grant)
        });
        let osmem = Osmem::start();
        // Half an hour of calm client history, so the decision has a baseline.
        let history: Vec<Json> = (0..300)
            .map(|i| ok("app", Duration::from_secs(330 + i * 6), 2))
            .collect();
        osmem.load(INDEX, &history);
        let ai = opts
            .ai
            .clone()
            .map(|script| rt.block_on(ScriptedOpenAi::start(AI_KEY, script)));
        let receiver = Receiver::start();
        let ports: Vec<u16> = agents.iter().map(|_| free_port()).collect();
        let agent_port = ports[0];
        let etcd = opts.fleet.then(super::etcd::EtcdCluster::start);
        let bases: Vec<String> = ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect();
        let alertmanager = Alertmanager::start_shipped_to_all(&receiver, &bases);
        let profile = Profile::load(&opts.profile);
        let peers = Peers {
            a: &a,
            b: &b,
            moto: &moto,
            zone: &zone,
            bind: bind.as_ref(),
            osmem: &osmem,
            alertmanager: &alertmanager,
            opts: &opts,
            profile: &profile,
            ai: ai.as_ref(),
        };
        let config_of = |(name, dc): (&str, &str), state: &std::path::Path| {
            let mut config = agent_config(&peers, name, state);
            if let Some(etcd) = &etcd {
                config.push_str(&fleet::coordination_yaml(etcd, name, dc));
            }
            config
        };
        let state = tempfile::tempdir().unwrap();
        let config = config_of(agents[0], state.path());
        let agent = Agent::start_on(agent_port, &config, &env(), &["--verbose"]);
        let others: Vec<_> = agents[1..]
            .iter()
            .zip(&ports[1..])
            .map(|(&(name, dc), &port)| {
                let state = tempfile::tempdir().unwrap();
                let config = config_of((name, dc), state.path());
                (name, port, state, config)
            })
            .collect();
        let fleet = etcd.map(|etcd| fleet::start_others(agent_port, etcd, others));
        let prometheus = Prometheus::start_shipped_with(
            &ports,
            Some(alertmanager.port),
            &profile.prometheus_interval,
            &profile.rule_for,
        );
        prometheus.wait_targets_up();
        let routes = Routes {
            datacenter_of: [("a", &a), ("b", &b)]
                .into_iter()
                .map(|(n, _)| (host_of(n), n.to_owned()))
                .collect(),
            sentinels: [&a, &b]
                .into_iter()
                .map(|dc| {
                    let ports = dc
                        .sentinels
                        .iter()
                        .map(|s| dc.client_paths[&s.port].port)
                        .collect();
                    (dc.name.to_owned(), (ports, dc.master.clone()))
                })
                .collect(),
            via: [&a, &b]
                .into_iter()
                .flat_map(|dc| dc.client_paths.iter().map(|(real, p)| (*real, p.port)))
                .collect(),
        };
        let mut world = World {
            a,
            b,
            moto,
            zone,
            bind,
            osmem,
            receiver,
            alertmanager,
            prometheus,
            agent: Some(agent),
            agent_port,
            config,
            state,
            workload: None,
            ai,
            fleet,
            rt,
        };
        let moto_url = world.moto.url();
        let zone = world.zone.clone();
        let bind_port = world.bind.as_ref().map(|b| b.port);
        let map = routes.datacenter_of.clone();
        let resolve = move || {
            let value = match bind_port {
                // A DNS query, as a client's resolver makes.
                Some(port) => dig_at(port, RECORD, "CNAME")?
                    .trim_end_matches('.')
                    .to_owned(),
                None => {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    let records = rt.block_on(listing_at(&moto_url, &zone));
                    records
                        .into_iter()
                        .find(|(name, kind, _)| {
                            name.trim_end_matches('.') == RECORD && kind == "CNAME"
                        })?
                        .2
                        .join(",")
                }
            };
            map.get(&value).cloned()
        };
        world.workload = Some(Workload::start(
            "app",
            routes,
            resolve,
            world.osmem.port,
            INDEX,
        ));
        world.wait_ready();
        world
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("the agent runs")
    }

    /// Both datacenters up in Prometheus, the clients writing, nothing firing.
    fn wait_ready(&self) {
        wait_for(
            Duration::from_secs(60),
            "both datacenters up in Prometheus",
            || {
                // One series per agent that scrapes: count the datacenters.
                let r = self
                    .prometheus
                    .query("count by (datacenter) (redis_up{redis_instance=\"app\"} == 1)")
                    .ok()?;
                (r.len() == 2).then_some(())
            },
        );
        wait_for(Duration::from_secs(30), "the clients to write", || {
            (self.workload().writes().len() >= 20).then_some(())
        });
    }

    pub fn workload(&self) -> &Workload {
        self.workload.as_ref().expect("the workload runs")
    }

    /// Where the CNAME points (`a` or `b`), as moto (or BIND) holds it.
    pub fn pointing_at(&self) -> String {
        let value = match &self.bind {
            Some(bind) => bind
                .dig(RECORD, "CNAME")
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_owned(),
            None => self
                .rt
                .block_on(listing(&self.moto, &self.zone))
                .into_iter()
                .find(|(name, kind, _)| name.trim_end_matches('.') == RECORD && kind == "CNAME")
                .map(|(_, _, values)| values.join(","))
                .unwrap_or_default(),
        };
        value
            .strip_prefix("redis-")
            .and_then(|v| v.strip_suffix(".example.com"))
            .unwrap_or(&value)
            .to_owned()
    }

    /// Waits until the CNAME points at `dc`; the time from `since`.
    pub fn wait_dns(&self, dc: &str, since: Instant, timeout: Duration) -> Duration {
        let deadline = Instant::now() + timeout;
        while self.pointing_at() != dc {
            if Instant::now() > deadline {
                panic!(
                    "DNS does not point at {dc} after {timeout:?}\n{}",
                    self.diagnose()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        since.elapsed()
    }

    /// What the journal, Prometheus and the clients say: for a failed scenario.
    pub fn diagnose(&self) -> String {
        let alerts: Vec<String> = self
            .prometheus
            .query("ALERTS")
            .unwrap_or_default()
            .iter()
            .map(|a| format!("{}:{}", a["metric"]["alertname"], a["metric"]["alertstate"]))
            .collect();
        let steps: Vec<String> = self
            .steps()
            .into_iter()
            .map(|(n, d)| format!("  {n}: {d}"))
            .collect();
        format!(
            "outcomes: {:?}\nalerts: {alerts:?}\nclients: {:?}\nsteps:\n{}",
            self.outcomes(),
            self.workload().counts(),
            steps.join("\n")
        )
    }

    /// The journal's records, in order.
    pub fn journal(&self) -> Vec<Json> {
        super::e2e::journal(self.state.path())
    }

    pub fn count(&self, kind: &str) -> usize {
        self.journal().iter().filter(|r| r["type"] == kind).count()
    }

    /// Outcomes of closed incidents, in order (`failed_over`, `held:all_down`, ...).
    pub fn outcomes(&self) -> Vec<String> {
        self.journal()
            .iter()
            .filter(|r| r["type"] == "closed")
            .map(|r| {
                let o = &r["outcome"];
                match o["reason"].as_str() {
                    Some(reason) => format!("{}:{reason}", o["outcome"].as_str().unwrap_or("")),
                    None => o["outcome"].as_str().unwrap_or("").to_owned(),
                }
            })
            .collect()
    }

    /// Waits until `n` incidents are closed.
    pub fn wait_closed(&self, n: usize, timeout: Duration) -> Vec<String> {
        wait_for(timeout, &format!("{n} closed incident(s)"), || {
            let o = self.outcomes();
            (o.len() >= n).then_some(o)
        })
    }

    /// Steps of every incident: (name, detail).
    pub fn steps(&self) -> Vec<(String, String)> {
        super::e2e::steps(&self.journal())
    }

    /// The agent's notices Alertmanager holds, by alert name.
    pub fn notices(&self) -> Vec<String> {
        self.alertmanager
            .alerts()
            .iter()
            .filter(|a| a["labels"]["source"] == "redis-failover-agent")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until Alertmanager holds the agent's notice `name`.
    pub fn wait_notice(&self, name: &str, timeout: Duration) {
        wait_for(timeout, &format!("{name} in Alertmanager"), || {
            self.notices().iter().any(|n| n == name).then_some(())
        });
    }

    /// Alertmanager's webhook deliveries of the candidate to the agent, as the agent
    /// counted them.
    pub fn webhook_accepted(&self) -> f64 {
        self.agent()
            .metrics()
            .get(
                "redis_agent_webhook_requests_total",
                &[("result", "accepted")],
            )
            .unwrap_or(0.0)
    }

    /// POSTs Alertmanager's payload for `app` in `a` straight to the agent's webhook.
    pub fn deliver(&self, status: &str) -> u16 {
        self.deliver_to(self.agent_port, status)
    }

    /// POSTs Alertmanager's payload for `app` in `a` to the webhook on `port`.
    pub fn deliver_to(&self, port: u16, status: &str) -> u16 {
        let body = super::e2e::payload(status).replace("\"east\"", "\"a\"");
        let auth = format!("Bearer {}", self.alertmanager.webhook_token);
        http_request(
            port,
            "POST",
            "/webhook/alertmanager",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .expect("the agent answers")
        .0
    }

    /// GET on the operator API.
    pub fn api(&self, path: &str) -> Json {
        let (status, body) =
            http_request(self.agent_port, "GET", path, &[("X-API-Key", API_KEY)], b"")
                .expect("the agent answers");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// `kill -9`s the agent (if running) and starts it again on the same port, journal
    /// and configuration, with `env`.
    pub fn restart_agent(&mut self, extra_env: &[(&str, &str)]) {
        if let Some(mut agent) = self.agent.take() {
            super::kill(agent.pid(), "KILL");
            let _ = agent.stop_after_signal();
        }
        let mut env = env();
        env.extend_from_slice(extra_env);
        self.agent = Some(Agent::start_on(
            self.agent_port,
            &self.config,
            &env,
            &["--verbose"],
        ));
    }

    /// Keys the clients wrote to `dc` before `before` whose value `port` does not hold.
    pub fn missing_writes(&self, dc: &str, before: SystemTime, port: u16) -> Vec<String> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut c = client
            .get_connection()
            .expect("the datacenter's Redis answers");
        // A restarted server accepts connections while it still loads its AOF, and
        // answers -LOADING meanwhile: read only once a GET is answered. (`INFO`'s
        // `loading:0` is not enough: Redis 7.0 loads a multi-part AOF file by file, and
        // was seen answering -LOADING after it.)
        wait_for(Duration::from_secs(30), "the AOF to be loaded", || {
            let r: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg("scenario:probe").query(&mut c);
            match r {
                Ok(_) => Some(()),
                Err(e) if e.code() == Some("LOADING") => None,
                Err(e) => panic!("GET on port {port}: {e}"),
            }
        });
        self.workload()
            .writes()
            .into_iter()
            .filter(|w| w.datacenter == dc && w.at < before)
            .filter(|w| {
                let got: Option<String> = redis::cmd("GET")
                    .arg(&w.key)
                    .query(&mut c)
                    .unwrap_or_else(|e| panic!("GET {} on port {port}: {e}", w.key));
                got.as_deref() != Some(w.value.as_str())
            })
            .map(|w| w.key)
            .collect()
    }
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AZURE_OPENAI_API_KEY", AI_KEY),
        ("TSIG_SECRET", KEY_SECRET),
    ]
}

async fn listing_at(url: &str, zone: &str) -> Vec<(String, String, Vec<String>)> {
    let sdk = super::moto::sdk(url);
    let Ok(out) = sdk
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
    else {
        return Vec::new();
    };
    out.resource_record_sets()
        .iter()
        .map(|r| {
            (
                r.name().to_owned(),
                r.r#type().as_str().to_owned(),
                r.resource_records()
                    .iter()
                    .map(|v| v.value().to_owned())
                    .collect(),
            )
        })
        .collect()
}
