//! How much of the active datacenter's writes another datacenter lacks, estimated from
//! what the agent last read of both: `INFO replication` of open-source Redis, or the
//! syncer of an Active-Active database read through the Redis Enterprise REST API.
//!
//! The failover asks it before it moves traffic from `a` to `b` (and holds when the
//! estimate exceeds the instance's [`Budget`]); the metrics ask it every scrape. Both
//! read the same figures, so an alert on the lag and a hold agree. Nothing here does
//! I/O: the caller hands in the latest [`EndpointStatus`] and [`ClusterView`] of each side.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::enterprise::ClusterView;
use super::{DatacenterId, EndpointStatus, Info, Snapshot};

/// `max_data_loss`: the most of `a`'s writes a failover to `b` may leave behind. A bound
/// that is `None` is not checked; both `None` is no budget at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
    pub seconds: Option<Duration>,
}

/// Why a failover would lose more than the budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// A figure is over its bound.
    Over { bytes: bool, seconds: bool },
    /// Replication exists but none of the budget's bounds could be estimated: when in
    /// doubt the agent holds.
    Unknown,
}

impl Budget {
    /// The default of a store (`data: store`): Patroni's `maximum_lag_on_failover`
    /// default of 1 MiB, and 10 s of writes.
    pub const STORE: Budget = Budget {
        bytes: Some(1024 * 1024),
        seconds: Some(Duration::from_secs(10)),
    };
    /// `max_data_loss: none`, and the default of a cache (`data: cache`).
    pub const UNBOUNDED: Budget = Budget {
        bytes: None,
        seconds: None,
    };

    pub fn is_unbounded(&self) -> bool {
        self.bytes.is_none() && self.seconds.is_none()
    }

    /// Whether a failover that loses `estimate` is allowed. Without replication between
    /// the datacenters the budget does not apply; a bound the estimate has no figure
    /// for is not checked, but one bound at least must be.
    pub fn check(&self, estimate: &Estimate) -> Result<(), Exceeded> {
        if estimate.basis == Basis::NoReplication || self.is_unbounded() {
            return Ok(());
        }
        let over = |bound: Option<u64>, figure: Option<u64>| match (bound, figure) {
            (Some(bound), Some(figure)) => Some(figure > bound),
            _ => None,
        };
        let bytes = over(self.bytes, estimate.bytes);
        let seconds = over(
            self.seconds.map(|d| d.as_millis() as u64),
            estimate.seconds.map(|d| d.as_millis() as u64),
        );
        match (bytes, seconds) {
            (None, None) => Err(Exceeded::Unknown),
            (Some(false) | None, Some(false) | None) => Ok(()),
            (b, s) => Err(Exceeded::Over {
                bytes: b == Some(true),
                seconds: s == Some(true),
            }),
        }
    }
}

impl fmt::Display for Budget {
    /// `1 MiB / 10 s`, `1 MiB`, `10 s` or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.bytes, self.seconds) {
            (None, None) => f.write_str("none"),
            (Some(b), None) => f.write_str(&show_bytes(b)),
            (None, Some(s)) => f.write_str(&show_seconds(s)),
            (Some(b), Some(s)) => write!(f, "{} / {}", show_bytes(b), show_seconds(s)),
        }
    }
}

/// What the estimate rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// `b`'s Active-Active database has a syncer reading from `a`'s cluster.
    ActiveActive,
    /// `b`'s Redis replicates from `a`'s (open-source replication).
    Replication,
    /// Nothing the agent read says `b` copies `a`'s writes: b serves what b has.
    NoReplication,
}

/// What `b` lacks of `a`'s writes, as far as the agent can tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub basis: Basis,
    /// Bytes of `a`'s replication stream `b` had not received; a lower bound (`a` may
    /// have taken writes after the agent last read it). `None`: not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// How long `a` went on taking writes after `b`'s copy stopped being current.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_seconds")]
    pub seconds: Option<Duration>,
    /// When `b`'s copy was last known current.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_time")]
    pub as_of: Option<SystemTime>,
    /// How the figures were found, for the record and the notice.
    pub detail: String,
}

impl Estimate {
    /// `about 3.2 MiB and 14 s`, `an unknown amount`: of writes.
    pub fn amount(&self) -> String {
        let bytes = self.bytes.map(|b| format!("about {}", show_bytes(b)));
        let seconds = self.seconds.map(show_seconds);
        match (bytes, seconds) {
            (Some(b), Some(s)) => format!("{b} and {s}"),
            (Some(b), None) => b,
            (None, Some(s)) => format!("about {s}"),
            (None, None) => "an unknown amount".into(),
        }
    }
}

/// One datacenter's side of the estimate: the latest status of the instance's endpoint
/// there and the latest view of its Enterprise cluster, either possibly unknown.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub datacenter: &'a DatacenterId,
    pub endpoint: Option<&'a EndpointStatus>,
    pub cluster: Option<&'a ClusterView>,
}

impl Side<'_> {
    fn info(&self) -> Option<&Snapshot> {
        self.endpoint?.last_success.as_deref()
    }
}

/// What `to` lacks of `from`'s writes. `databases` are the names the instance's
/// Enterprise database may go by (its uid, its name). `now` stands in for when `a` was
/// last seen when the agent never saw it.
pub fn estimate(from: Side<'_>, to: Side<'_>, databases: &[&str], now: SystemTime) -> Estimate {
    if let Some(estimate) = active_active(from, to, databases, now) {
        return estimate;
    }
    if let Some(estimate) = replication(from, to) {
        return estimate;
    }
    let (a, b) = (from.datacenter, to.datacenter);
    let read = match (from.info(), to.info()) {
        (_, None) => format!("the agent never read {b}'s INFO"),
        (None, Some(_)) => format!("{b}'s INFO names no primary in {a}"),
        (Some(_), Some(_)) => format!("{b}'s INFO names no primary in {a}, nor {a}'s it"),
    };
    Estimate {
        basis: Basis::NoReplication,
        bytes: None,
        seconds: None,
        as_of: None,
        detail: format!(
            "no replication from {a} to {b} is known ({read}; no Active-Active syncer): \
             {b} serves what {b} has"
        ),
    }
}

/// Active-Active: `b`'s database has a syncer reading from `a`'s cluster.
fn active_active(
    from: Side<'_>,
    to: Side<'_>,
    databases: &[&str],
    now: SystemTime,
) -> Option<Estimate> {
    let cluster = to.cluster?;
    let database = databases.iter().find_map(|name| cluster.database(name))?;
    let source = database
        .sources
        .iter()
        .find(|s| s.datacenter.as_ref() == Some(from.datacenter))?;
    let (a, b) = (from.datacenter, to.datacenter);
    let seen = last_seen(from);
    let a_seen = seen.unwrap_or(now);
    let status = source.status.as_str();
    let Some(in_sync) = source.last_in_sync else {
        return Some(Estimate {
            basis: Basis::ActiveActive,
            bytes: None,
            seconds: None,
            as_of: None,
            detail: format!(
                "Active-Active database {:?}: the syncer from {a} to {b} was never seen in \
                 sync (now {status}); how much {b} lacks is unknown",
                database.name
            ),
        });
    };
    let current = in_sync.at.checked_sub(in_sync.lag).unwrap_or(in_sync.at);
    let as_of = source.last_update.map_or(current, |u| u.max(current));
    let seconds = a_seen.duration_since(as_of).unwrap_or_default();
    let seen = seen.map_or_else(|| "never seen (taken as now)".into(), show_time);
    Some(Estimate {
        basis: Basis::ActiveActive,
        bytes: None,
        seconds: Some(seconds),
        as_of: Some(as_of),
        detail: format!(
            "Active-Active database {:?}: the syncer from {a} to {b} was last in sync at \
             {} with a lag of {} ms (now {status}), so {b} is current as of {}; {a} was \
             last seen at {seen}; the bytes are not known",
            database.name,
            show_time(in_sync.at),
            in_sync.lag.as_millis(),
            show_time(as_of),
        ),
    })
}

/// When the agent last heard from `a`: its INFO or its cluster's REST API.
fn last_seen(side: Side<'_>) -> Option<SystemTime> {
    let info = side.info().map(|s| s.taken_at);
    let cluster = side.cluster.and_then(|c| c.read_at);
    info.max(cluster)
}

/// Open-source replication: `b`'s Redis replicates from `a`'s, by the replication id
/// (robust through proxies and NAT) or the primary's address.
fn replication(from: Side<'_>, to: Side<'_>) -> Option<Estimate> {
    let b_snap = to.info()?;
    let b = &b_snap.info;
    if b.role() != Some("slave") {
        return None;
    }
    let a_snap = from.info();
    let same_id = a_snap.is_some_and(|a| {
        let id = a.info.get("master_replid");
        id.is_some() && id == b.get("master_replid")
    });
    let b_primary = format!(
        "{}:{}",
        b.get("master_host").unwrap_or_default(),
        b.get("master_port").unwrap_or_default()
    );
    let same_address = from.endpoint.is_some_and(|e| e.address == b_primary);
    if !same_id && !same_address {
        return None;
    }
    let (a_name, b_name) = (from.datacenter, to.datacenter);
    let Some(a_snap) = a_snap else {
        return Some(Estimate {
            basis: Basis::Replication,
            bytes: None,
            seconds: None,
            as_of: None,
            detail: format!(
                "{b_name} replicates from {a_name} ({b_primary}), but the agent never read \
                 {a_name}'s INFO: how much {b_name} lacks is unknown"
            ),
        });
    };
    Some(replication_figures(a_snap, b_snap, a_name, b_name))
}

fn replication_figures(
    a_snap: &Snapshot,
    b_snap: &Snapshot,
    a_name: &DatacenterId,
    b_name: &DatacenterId,
) -> Estimate {
    let (a, b) = (&a_snap.info, &b_snap.info);
    let a_offset = offset(a, "master_repl_offset");
    let b_offset = offset(b, "slave_repl_offset").or_else(|| offset(b, "master_repl_offset"));
    let bytes = a_offset.zip(b_offset).map(|(a, b)| a.saturating_sub(b));
    let link_up = b.get("master_link_status") == Some("up");
    let (behind, why) = if link_up {
        let io = b.number("master_last_io_seconds_ago").unwrap_or(0.0);
        (io, format!("link up, last I/O {io} s before"))
    } else {
        let down = b.number("master_link_down_since_seconds").unwrap_or(0.0);
        (down, format!("link down for {down} s"))
    };
    let behind = Duration::try_from_secs_f64(behind.max(0.0)).unwrap_or_default();
    let as_of = b_snap
        .taken_at
        .checked_sub(behind)
        .unwrap_or(b_snap.taken_at);
    // `b` held every byte `a` had when last read (but for what a connected replica
    // has in flight, such as the PINGs an idle primary sends every
    // `repl-ping-replica-period`): nothing `a` wrote before then is missing, however
    // long the link was quiet.
    let slack = if link_up { IN_FLIGHT } else { 0 };
    let as_of = if bytes.is_some_and(|b| b <= slack) {
        as_of.max(a_snap.taken_at)
    } else {
        as_of
    };
    let seconds = a_snap.taken_at.duration_since(as_of).unwrap_or_default();
    let show = |o: Option<u64>| o.map_or_else(|| "unknown".into(), |o| o.to_string());
    let detail = format!(
        "{b_name} replicates from {a_name}: {a_name}'s master_repl_offset {} at {}, \
         {b_name}'s offset {} at {} ({why}), so {b_name} is current as of {} and \
         {a_name} was last seen at {}; the bytes are a lower bound ({a_name} may have \
         taken writes after the agent last read it)",
        show(a_offset),
        show_time(a_snap.taken_at),
        show(b_offset),
        show_time(b_snap.taken_at),
        show_time(as_of),
        show_time(a_snap.taken_at),
    );
    Estimate {
        basis: Basis::Replication,
        bytes,
        seconds: Some(seconds),
        as_of: Some(as_of),
        detail,
    }
}

/// Bytes of the replication stream a replica whose link is up may simply not have
/// received yet when it was read: a few replication PINGs (14 bytes each) or REPLCONF
/// GETACKs. Behind by no more, it counts as current for the seconds figure, so that an
/// idle primary's periodic PING does not read as seconds of lost writes.
const IN_FLIGHT: u64 = 64;

fn offset(info: &Info, field: &str) -> Option<u64> {
    info.get(field)?.parse().ok()
}

fn show_time(t: SystemTime) -> String {
    super::rfc3339::format(t)
}

/// `812 bytes`, `3.2 MiB`.
pub fn show_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let value = format!("{value:.1}");
    let value = value.strip_suffix(".0").unwrap_or(&value);
    format!("{value} {}", UNITS[unit])
}

/// `10 s`, `14.2 s`.
pub fn show_seconds(d: Duration) -> String {
    let value = format!("{:.1}", d.as_secs_f64());
    let value = value.strip_suffix(".0").unwrap_or(&value);
    format!("{value} s")
}

/// Optional durations as seconds (a float), absent when `None`.
mod opt_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Optional times in RFC 3339, absent when `None`.
mod opt_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::super::rfc3339::required::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => super::super::rfc3339::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
#[path = "replication_tests.rs"]
mod tests;
