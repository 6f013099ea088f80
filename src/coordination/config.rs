//! `coordination`: the fleet's etcd and this agent's place in it, read and checked.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::roster::{self, FleetAgent, RawFleetAgent, agent_name, datacenter};
use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::duration::{Seconds, show};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::model::Secret;

/// `coordination`'s keys (see [`KeyBlock`]).
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] = &[
    KeyBlock::new("", "RawCoordination", RawCoordination::KEYS),
    KeyBlock::new("etcd", "RawEtcd", RawEtcd::KEYS),
    KeyBlock::new("etcd.tls", "RawTls", RawTls::KEYS),
    KeyBlock::new("agent", "RawAgent", RawAgent::KEYS),
    roster::KEY_BLOCK,
];

/// `coordination.etcd.prefix`. One fleet per etcd needs nothing more: agents that all
/// leave the key out agree on it. A second fleet on the same etcd must choose its own,
/// else the two fleets share one leader and the other fleet's agents never act.
pub const DEFAULT_PREFIX: &str = "/redis-failover-agent/default";
/// `coordination.etcd.lease_ttl`.
pub const fn default_lease_ttl() -> Duration {
    Duration::from_secs(10)
}
/// Shorter leases demote a leader on one slow disk write of etcd's; etcd itself raises
/// a lease below its election timeout × 1.5 (1.5 s by default).
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
/// Longer leases leave the fleet without a leader for that long after a crash.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(5 * 60);

/// `coordination`: the fleet this agent belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordinationSettings {
    pub etcd: EtcdSettings,
    pub agent: AgentSettings,
    /// `agents`: every agent of the fleet with its datacenter, this one included; the
    /// leader's quorum counts them ([`roster`]). Empty (the default): it counts the
    /// agents present.
    pub agents: Vec<FleetAgent>,
    /// `quorum`: how many configured agents outside a failing datacenter must see it
    /// down, from 1 to those outside the datacenter with most agents; needs `agents`.
    /// Default: a majority of them.
    pub quorum: Option<usize>,
}

/// `coordination.etcd`: where the fleet's leadership and shared state live.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdSettings {
    /// `endpoints`: every member's client URL (`http://` or `https://`), at least one.
    pub endpoints: Vec<String>,
    /// `prefix`: every key of this fleet lives under it. Default
    /// `/redis-failover-agent/default`.
    pub prefix: String,
    /// `lease_ttl`: the leader's lease, whole seconds from 2 s to 5 min. Default 10 s.
    /// The renewal and self-demotion times follow from it (`coordination::etcd`).
    pub lease_ttl: Duration,
    /// `username` and `password` (or `password_file`), for an etcd with auth enabled.
    pub auth: Option<EtcdAuth>,
    /// `tls`: certificates for `https://` endpoints.
    pub tls: Option<EtcdTls>,
}

/// etcd's user and password (etcd's own auth, not TLS client certificates).
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdAuth {
    pub username: String,
    pub password: Secret,
}

/// `coordination.etcd.tls`: PEM files, read when the configuration is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EtcdTls {
    /// `ca_file`: the authorities to trust; required with `https://` endpoints, since no
    /// system roots are loaded.
    pub ca_cert: Option<Vec<u8>>,
    /// `cert_file` and `key_file`: a client certificate, when etcd asks for one.
    pub client_cert: Option<Vec<u8>>,
    pub client_key: Option<Secret>,
}

/// `coordination.agent`: who this agent is in the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// `name`: unique in the fleet; letters, digits, `.`, `_`, `-`. Default: the host
    /// name.
    pub name: String,
    /// `datacenter`: where this agent runs, one of `datacenters` (optional).
    pub datacenter: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawCoordination {
    etcd: Option<Raw<RawEtcd>>,
    agent: Option<Raw<RawAgent>>,
    agents: Option<Raw<Vec<Raw<RawFleetAgent>>>>,
    quorum: Option<Raw<i64>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawCoordination {
    const KEYS: &'static [&'static str] = &["etcd", "agent", "agents", "quorum"];
}

#[derive(Debug, Deserialize)]
struct RawEtcd {
    endpoints: Option<Raw<Vec<String>>>,
    prefix: Option<Raw<String>>,
    lease_ttl: Option<Raw<Seconds>>,
    username: Option<Raw<String>>,
    password: Option<Raw<String>>,
    password_file: Option<Raw<String>>,
    tls: Option<Raw<RawTls>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawEtcd {
    const KEYS: &'static [&'static str] = &[
        "endpoints",
        "prefix",
        "lease_ttl",
        "username",
        "password",
        "password_file",
        "tls",
    ];
}

#[derive(Debug, Deserialize)]
struct RawTls {
    ca_file: Option<Raw<String>>,
    cert_file: Option<Raw<String>>,
    key_file: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawTls {
    const KEYS: &'static [&'static str] = &["ca_file", "cert_file", "key_file"];
}

#[derive(Debug, Deserialize)]
struct RawAgent {
    name: Option<Raw<String>>,
    datacenter: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawAgent {
    const KEYS: &'static [&'static str] = &["name", "datacenter"];
}

/// This machine's host name, the default agent name.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// `coordination`. `None` when it is not given (one agent, no etcd) or has problems.
/// `host_name` is the default agent name; `datacenters` the configured ones, which
/// `agent.datacenter` must name.
pub fn read(
    cx: &mut Ctx<'_>,
    block: Option<Value>,
    host_name: Option<String>,
    datacenters: &[String],
) -> Option<CoordinationSettings> {
    let p = "coordination";
    let raw = cx.value(p, block.map(Raw::<RawCoordination>::from_value))?;
    cx.unknown(p, &raw.unknown, &[RawCoordination::KEYS]);
    let etcd = cx
        .required(&join(p, "etcd"), raw.etcd)
        .and_then(|etcd| read_etcd(cx, "coordination.etcd", etcd));
    let agent = match cx.value(&join(p, "agent"), raw.agent) {
        Some(agent) => read_agent(cx, agent, host_name, datacenters),
        None => default_name(cx, host_name).map(|name| AgentSettings {
            name,
            datacenter: None,
        }),
    };
    let mut agents = roster::agents(cx, raw.agents, datacenters);
    if let (Some(list), Some(agent)) = (&agents, &agent)
        && !roster::includes(cx, list, &agent.name, agent.datacenter.as_deref())
    {
        agents = None;
    }
    let quorum = roster::quorum(cx, raw.quorum, agents.as_deref());
    Some(CoordinationSettings {
        etcd: etcd?,
        agent: agent?,
        agents: agents?,
        quorum: quorum.ok()?,
    })
}

fn read_etcd(cx: &mut Ctx<'_>, p: &str, raw: RawEtcd) -> Option<EtcdSettings> {
    cx.unknown(p, &raw.unknown, &[RawEtcd::KEYS]);
    let key = join(p, "endpoints");
    let given = cx.required(&key, raw.endpoints).unwrap_or_default();
    if given.is_empty() && cx.problems.iter().all(|problem| problem.key != key) {
        cx.problem(&key, "must list at least one etcd member's client URL");
    }
    let count = given.len();
    let endpoints: Vec<String> = given
        .into_iter()
        .enumerate()
        .filter_map(|(i, url)| cx.url(&format!("{p}.endpoints[{i}]"), Some(Raw::Valid(url))))
        .map(|url| url.trim_end_matches('/').to_owned())
        .collect();
    let prefix = prefix(cx, &join(p, "prefix"), raw.prefix);
    let lease_ttl = lease_ttl(cx, &join(p, "lease_ttl"), raw.lease_ttl);
    let auth = auth(cx, p, raw.username, raw.password, raw.password_file);
    let tls = cx
        .value(&join(p, "tls"), raw.tls)
        .map(|tls| read_tls(cx, &join(p, "tls"), tls));
    let secure = endpoints.iter().any(|url| url.starts_with("https://"));
    let tls_key = join(p, "tls");
    let tls_reported = cx.problems.iter().any(|pr| pr.key.starts_with(&tls_key));
    let untrusted = secure && tls.as_ref().is_none_or(|t| t.ca_cert.is_none());
    if untrusted && !tls_reported {
        cx.problem(
            &join(p, "tls.ca_file"),
            "an https:// endpoint needs the authority that signed etcd's certificate: \
             the agent trusts no other (it loads no system roots)",
        );
    }
    let failed = endpoints.len() != count || count == 0 || untrusted;
    Some(EtcdSettings {
        endpoints: (!failed).then_some(endpoints)?,
        prefix: prefix?,
        lease_ttl: lease_ttl?,
        auth: auth.ok()?,
        tls,
    })
}

/// An absolute key prefix: `/`, then names separated by single `/`, no trailing `/`
/// (the adapter appends `/leader`, `/intents/…`).
fn prefix(cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<String>>) -> Option<String> {
    if raw.is_none() {
        return Some(DEFAULT_PREFIX.into());
    }
    let prefix = cx.text(key, raw)?;
    let well_formed = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && !prefix.contains("//")
        && !prefix.contains(|c: char| c.is_whitespace() || c.is_control());
    if !well_formed {
        cx.problem(
            key,
            format!(
                "{prefix:?} is not an absolute key prefix; write it as \
                 {DEFAULT_PREFIX:?}: a leading `/`, no trailing `/`, no spaces"
            ),
        );
        return None;
    }
    Some(prefix)
}

fn lease_ttl(cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<Seconds>>) -> Option<Duration> {
    if raw.is_none() {
        return Some(default_lease_ttl());
    }
    let Seconds(ttl) = cx.value(key, raw)?;
    if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        cx.problem(
            key,
            format!(
                "{} is outside {} to {}",
                show(ttl),
                show(MIN_LEASE_TTL),
                show(MAX_LEASE_TTL)
            ),
        );
        return None;
    }
    if ttl.subsec_nanos() != 0 {
        cx.problem(
            key,
            format!(
                "{} is not a whole number of seconds (etcd leases count whole seconds)",
                show(ttl)
            ),
        );
        return None;
    }
    Some(ttl)
}

/// `Ok(None)` without auth; `Err(())` when the problems are recorded.
fn auth(
    cx: &mut Ctx<'_>,
    p: &str,
    username: Option<Raw<String>>,
    password: Option<Raw<String>>,
    password_file: Option<Raw<String>>,
) -> Result<Option<EtcdAuth>, ()> {
    let given = username.is_some();
    let username = cx.text(&join(p, "username"), username);
    let before = cx.problems.len();
    let password = cx.secret(p, "password", password, password_file);
    if cx.problems.len() > before || (given && username.is_none()) {
        return Err(());
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(Some(EtcdAuth { username, password })),
        (None, None) => Ok(None),
        (Some(_), None) => {
            cx.problem(
                &join(p, "password"),
                "is required with username (or give password_file)",
            );
            Err(())
        }
        (None, Some(_)) => {
            cx.problem(&join(p, "username"), "is required with a password");
            Err(())
        }
    }
}

fn read_tls(cx: &mut Ctx<'_>, p: &str, raw: RawTls) -> EtcdTls {
    cx.unknown(p, &raw.unknown, &[RawTls::KEYS]);
    let read = |cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<String>>| {
        let key = join(p, key);
        let file = cx.text(&key, raw)?;
        cx.read_file(&key, &file)
    };
    let ca_cert = read(cx, "ca_file", raw.ca_file);
    let client_cert = read(cx, "cert_file", raw.cert_file);
    let client_key = read(cx, "key_file", raw.key_file)
        .map(|k| Secret::new(String::from_utf8_lossy(&k).into_owned()));
    if client_cert.is_some() != client_key.is_some() {
        cx.problem(
            p,
            "cert_file and key_file go together: give both or neither",
        );
    }
    EtcdTls {
        ca_cert,
        client_cert,
        client_key,
    }
}

fn read_agent(
    cx: &mut Ctx<'_>,
    raw: RawAgent,
    host_name: Option<String>,
    datacenters: &[String],
) -> Option<AgentSettings> {
    let p = "coordination.agent";
    cx.unknown(p, &raw.unknown, &[RawAgent::KEYS]);
    let datacenter = match raw.datacenter {
        None => Some(None),
        Some(dc) => datacenter(cx, &join(p, "datacenter"), dc, datacenters, "").map(Some),
    };
    let name = match raw.name {
        Some(name) => {
            let key = join(p, "name");
            cx.text(&key, Some(name))
                .and_then(|name| agent_name(cx, &key, name))
        }
        None => default_name(cx, host_name),
    };
    Some(AgentSettings {
        name: name?,
        datacenter: datacenter?,
    })
}

/// The host name as the agent's name, when `agent.name` is not given.
fn default_name(cx: &mut Ctx<'_>, host_name: Option<String>) -> Option<String> {
    let key = "coordination.agent.name";
    let Some(host) = host_name else {
        cx.problem(
            key,
            "is required: the host name could not be read to name this agent",
        );
        return None;
    };
    agent_name(cx, key, host)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
