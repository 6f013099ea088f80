//! `coordination.agents` and `coordination.quorum`: the fleet as configured, which the
//! leader counts its confirmation rounds against (issue 18), and the rules every
//! agent's name and datacenter follow.
//!
//! Without the list the leader counts the observers present, so an agent that dies
//! with its datacenter (or any agent whose lease lapsed) shrinks the quorum. With it,
//! the quorum is a number of the configured agents outside the failing datacenter
//! whether they are alive or not: one surviving observer alone never confirms an
//! outage a second configured observer would have had to see too.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config_kit::ctx::{Ctx, join};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};

/// `coordination.agents`' keys (see [`KeyBlock`]), under `coordination`.
#[cfg(test)]
pub(super) const KEY_BLOCK: KeyBlock =
    KeyBlock::new("agents[]", "RawFleetAgent", RawFleetAgent::KEYS);

/// Agent names go into etcd keys and values and into log lines: a host name's alphabet.
const NAME_MAX: usize = 63;

/// After a datacenter that is not configured, in `coordination.agents`.
const WITNESS_HINT: &str = "; leave it out for an agent at a witness site";

/// One agent of `coordination.agents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetAgent {
    /// `name`: its `coordination.agent.name`.
    pub name: String,
    /// `datacenter`: where it runs, one of `datacenters`; `None` for an agent at a
    /// witness site outside every datacenter (it counts as outside each of them).
    pub datacenter: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawFleetAgent {
    name: Option<Raw<String>>,
    datacenter: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawFleetAgent {
    const KEYS: &'static [&'static str] = &["name", "datacenter"];
}

/// `coordination.agents`: every configured agent, names unique. Empty when the list is
/// not given; `None` when it has problems.
pub(super) fn agents(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<Vec<Raw<RawFleetAgent>>>>,
    datacenters: &[String],
) -> Option<Vec<FleetAgent>> {
    let p = "coordination.agents";
    let Some(given) = raw else {
        return Some(Vec::new());
    };
    let given = cx.value(p, Some(given))?;
    if given.is_empty() {
        cx.problem(
            p,
            "must list at least one agent, or be left out (the leader then counts the agents \
             present)",
        );
        return None;
    }
    let count = given.len();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut agents = Vec::new();
    for (i, raw) in given.into_iter().enumerate() {
        let at = format!("{p}[{i}]");
        let Some(raw) = cx.value(&at, Some(raw)) else {
            continue;
        };
        cx.unknown(&at, &raw.unknown, &[RawFleetAgent::KEYS]);
        let key = join(&at, "name");
        let name = cx
            .required(&key, raw.name)
            .and_then(|name| agent_name(cx, &key, name));
        let datacenter = match raw.datacenter {
            None => Some(None),
            Some(dc) => {
                datacenter(cx, &join(&at, "datacenter"), dc, datacenters, WITNESS_HINT).map(Some)
            }
        };
        let Some(name) = name else { continue };
        if let Some(first) = seen.insert(name.clone(), i) {
            cx.problem(
                &key,
                format!("{name:?} is listed twice (also {p}[{first}])"),
            );
            continue;
        }
        if let Some(datacenter) = datacenter {
            agents.push(FleetAgent { name, datacenter });
        }
    }
    (agents.len() == count).then_some(agents)
}

/// This agent (`coordination.agent`) must be one of the configured agents, in the same
/// datacenter: the leader counts the list, the observers say where they are. False
/// when the problem is recorded.
pub(super) fn includes(
    cx: &mut Ctx<'_>,
    agents: &[FleetAgent],
    name: &str,
    datacenter: Option<&str>,
) -> bool {
    if agents.is_empty() {
        return true;
    }
    let p = "coordination.agents";
    let Some(i) = agents.iter().position(|a| a.name == name) else {
        cx.problem(
            p,
            format!(
                "this agent, {name:?} (coordination.agent.name), is not listed; the list names \
                 every agent of the fleet, this one included"
            ),
        );
        return false;
    };
    let listed = agents[i].datacenter.as_deref();
    if listed != datacenter {
        let show =
            |dc: Option<&str>| dc.map_or("none (a witness)".to_owned(), |d| format!("{d:?}"));
        cx.problem(
            &format!("{p}[{i}].datacenter"),
            format!(
                "{} differs from coordination.agent.datacenter, {}, for this agent",
                show(listed),
                show(datacenter)
            ),
        );
        return false;
    }
    true
}

/// `coordination.quorum`: at least 1, and no more than the configured agents outside
/// any datacenter one of them runs in, else an outage of that datacenter could never be
/// confirmed. Needs `coordination.agents`.
pub(super) fn quorum(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<i64>>,
    agents: Option<&[FleetAgent]>,
) -> Result<Option<usize>, ()> {
    let key = "coordination.quorum";
    if raw.is_none() {
        return Ok(None);
    }
    let n = cx.value(key, raw).ok_or(())?;
    let Some(n) = usize::try_from(n).ok().filter(|n| *n >= 1) else {
        cx.problem(key, format!("{n} is not allowed, use 1 or more"));
        return Err(());
    };
    // The list has problems of its own, already reported.
    let agents = agents.ok_or(())?;
    if agents.is_empty() {
        cx.problem(
            key,
            "needs coordination.agents: the quorum is a number of the configured agents",
        );
        return Err(());
    }
    if n > agents.len() {
        cx.problem(
            key,
            format!(
                "{n} is more than the {} configured agents (coordination.agents)",
                agents.len()
            ),
        );
        return Err(());
    }
    let fewest_outside = agents
        .iter()
        .filter_map(|a| a.datacenter.as_deref())
        .map(|dc| {
            let outside: Vec<&str> = agents
                .iter()
                .filter(|a| a.datacenter.as_deref() != Some(dc))
                .map(|a| a.name.as_str())
                .collect();
            (dc, outside)
        })
        .min_by_key(|(_, outside)| outside.len());
    if let Some((dc, outside)) = fewest_outside.filter(|(_, outside)| n > outside.len()) {
        cx.problem(
            key,
            format!(
                "{n} is more than the {} configured agents outside {dc} ({}): an outage of \
                 {dc} could never be confirmed",
                outside.len(),
                outside.join(", ")
            ),
        );
        return Err(());
    }
    Ok(Some(n))
}

/// `datacenter` of an agent: one of the configured datacenters. A witness site is no
/// datacenter: its agent leaves the key out. A name that is not configured is refused
/// rather than read as "outside every datacenter", so that a typo cannot make the
/// agent inside a datacenter count as a witness of its outage. `hint` follows the
/// message.
pub(super) fn datacenter(
    cx: &mut Ctx<'_>,
    key: &str,
    raw: Raw<String>,
    datacenters: &[String],
    hint: &str,
) -> Option<String> {
    let dc = cx.text(key, Some(raw))?;
    if !datacenters.contains(&dc) {
        cx.problem(
            key,
            format!(
                "{dc:?} is not a configured datacenter (datacenters: {}){hint}",
                datacenters.join(", ")
            ),
        );
        return None;
    }
    Some(dc)
}

pub(super) fn agent_name(cx: &mut Ctx<'_>, key: &str, name: String) -> Option<String> {
    let valid = name.len() <= NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        cx.problem(
            key,
            format!(
                "{name:?} is not a valid agent name: use up to {NAME_MAX} letters, \
                 digits, `.`, `_` or `-`"
            ),
        );
        return None;
    }
    Some(name)
}
