//! Renders the latest snapshot of every endpoint as redis_exporter-style series.
//! A scrape only reads the store: it never talks to Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{EndpointLabels, Labels, family};
use super::info_table::{CLUSTER_METRICS, INFO_METRICS, Kind};
use super::observer::Observer;
use crate::model::{Snapshot, SnapshotStore, clean_label};

#[derive(Debug)]
pub struct RedisCollector {
    store: Arc<SnapshotStore>,
    observer: Option<Observer>,
}

impl RedisCollector {
    pub fn new(store: Arc<SnapshotStore>, observer: Option<Observer>) -> Self {
        Self { store, observer }
    }
}

/// The endpoints whose latest snapshot is fresh, with their labels.
type Fresh<'a> = Vec<(&'a EndpointLabels<'a>, &'a Snapshot)>;

impl Collector for RedisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let now = Instant::now();
        let all = self.store.all();
        let labels: Vec<EndpointLabels<'_>> = all
            .iter()
            .map(|s| EndpointLabels::new(&s.key, self.observer.as_ref()))
            .collect();
        let fresh: Fresh<'_> = all
            .iter()
            .zip(&labels)
            .filter_map(|(s, l)| s.fresh(now).map(|snap| (l, snap)))
            .collect();
        let e = &mut encoder;

        family(
            e,
            "redis_up",
            "1 when the latest collection succeeded and is at most two intervals old.",
            Kind::Gauge,
            all.iter().zip(&labels).map(|(s, l)| {
                let up = s.fresh(now).is_some();
                (Labels::of(l), f64::from(u8::from(up)))
            }),
        )?;
        family(
            e,
            "redis_ping_latency_seconds",
            "Round trip of PING on the agent's connection, in seconds.",
            Kind::Gauge,
            fresh
                .iter()
                .map(|(s, snap)| (Labels::of(s), snap.ping_latency.as_secs_f64())),
        )?;
        instance_info(e, &fresh)?;
        for m in INFO_METRICS {
            family(
                e,
                m.name,
                m.help,
                m.kind,
                fresh.iter().filter_map(|(s, snap)| {
                    let v = m.value(snap.info.get(m.field)?)?;
                    Some((Labels::of(s), v))
                }),
            )?;
        }
        keyspace(e, &fresh)?;
        commands(e, &fresh)?;
        replication(e, &fresh)?;
        cluster(e, &fresh)?;
        sentinel(e, &fresh)?;
        Ok(())
    }
}

fn instance_info(e: &mut DescriptorEncoder, fresh: &Fresh<'_>) -> fmt::Result {
    family(
        e,
        "redis_instance_info",
        "Version, mode, role and eviction policy of the server; always 1.",
        Kind::Gauge,
        fresh.iter().map(|(s, snap)| {
            // Plain fields are kept as sent: cleaned here, where they become labels.
            let get = |f: &str| clean_label(snap.info.get(f).unwrap_or_default());
            let labels = Labels::of(s)
                .with("redis_version", get("redis_version"))
                .with("redis_mode", get("redis_mode"))
                .with("role", get("role"))
                .with("maxmemory_policy", get("maxmemory_policy"));
            (labels, 1.0)
        }),
    )?;
    family(
        e,
        "redis_start_time_seconds",
        "Unix time the server started.",
        Kind::Gauge,
        fresh.iter().filter_map(|(s, snap)| {
            let now = snap.info.number("server_time_usec")? / 1e6;
            let up = snap.info.number("uptime_in_seconds")?;
            Some((Labels::of(s), (now - up).floor()))
        }),
    )
}

fn keyspace(e: &mut DescriptorEncoder, fresh: &Fresh<'_>) -> fmt::Result {
    let dbs = || {
        fresh.iter().flat_map(|(s, snap)| {
            snap.info
                .keyspace
                .iter()
                .map(move |db| (Labels::of(s).with("db", format!("db{}", db.db)), db))
        })
    };
    family(
        e,
        "redis_db_keys",
        "Keys in the database.",
        Kind::Gauge,
        dbs().map(|(l, db)| (l, db.keys as f64)),
    )?;
    family(
        e,
        "redis_db_keys_expiring",
        "Keys with an expiry in the database.",
        Kind::Gauge,
        dbs().map(|(l, db)| (l, db.expires as f64)),
    )?;
    family(
        e,
        "redis_db_avg_ttl_seconds",
        "Average time to live of the keys with an expiry, in seconds.",
        Kind::Gauge,
        dbs().map(|(l, db)| (l, db.avg_ttl_ms as f64 / 1000.0)),
    )
}

fn commands(e: &mut DescriptorEncoder, fresh: &Fresh<'_>) -> fmt::Result {
    let cmds = || {
        fresh.iter().flat_map(|(s, snap)| {
            snap.info
                .commands
                .iter()
                .map(move |c| (Labels::of(s).with("cmd", c.command.as_str()), c))
        })
    };
    family(
        e,
        "redis_commands_total",
        "Calls per command.",
        Kind::Counter,
        cmds().map(|(l, c)| (l, c.calls as f64)),
    )?;
    family(
        e,
        "redis_commands_duration_seconds_total",
        "Time spent executing each command, in seconds.",
        Kind::Counter,
        cmds().map(|(l, c)| (l, c.usec as f64 / 1e6)),
    )?;
    family(
        e,
        "redis_commands_rejected_calls_total",
        "Calls refused before execution (arity, OOM, ACL), per command.",
        Kind::Counter,
        cmds().map(|(l, c)| (l, c.rejected_calls as f64)),
    )?;
    family(
        e,
        "redis_commands_failed_calls_total",
        "Calls that failed during execution, per command.",
        Kind::Counter,
        cmds().map(|(l, c)| (l, c.failed_calls as f64)),
    )?;
    family(
        e,
        "redis_errors_total",
        "Error replies by error prefix (ERR, WRONGTYPE, OOM, ...).",
        Kind::Counter,
        fresh.iter().flat_map(|(s, snap)| {
            snap.info
                .errors
                .iter()
                .map(move |(err, n)| (Labels::of(s).with("err", err.as_str()), *n as f64))
        }),
    )?;
    family(
        e,
        "redis_latency_percentiles_seconds",
        "Latency percentiles per command as Redis measures them (latency-tracking), in seconds.",
        Kind::Gauge,
        fresh.iter().flat_map(|(s, snap)| {
            snap.info.latency.iter().flat_map(move |l| {
                l.percentiles.iter().map(move |(q, v)| {
                    let labels = Labels::of(s)
                        .with("cmd", l.command.as_str())
                        .with("percentile", q.as_str());
                    (labels, *v / 1e6)
                })
            })
        }),
    )
}

fn replication(e: &mut DescriptorEncoder, fresh: &Fresh<'_>) -> fmt::Result {
    let replicas = || {
        fresh.iter().flat_map(|(s, snap)| {
            snap.info.replicas.iter().map(move |r| {
                let labels = Labels::of(s)
                    .with("slave_ip", r.ip.as_str())
                    .with("slave_port", r.port.to_string())
                    .with("slave_state", r.state.as_str());
                (labels, r)
            })
        })
    };
    family(
        e,
        "redis_connected_slave_offset_bytes",
        "Replication offset a replica acknowledged, as its primary sees it.",
        Kind::Gauge,
        replicas().map(|(l, r)| (l, r.offset as f64)),
    )?;
    family(
        e,
        "redis_connected_slave_lag_seconds",
        "Seconds since a replica last acknowledged, as its primary sees it.",
        Kind::Gauge,
        replicas().map(|(l, r)| (l, r.lag as f64)),
    )?;

    // On a replica: the link to its primary.
    let links = || {
        fresh.iter().filter_map(|(s, snap)| {
            let info = &snap.info;
            let host = clean_label(info.get("master_host")?);
            let port = clean_label(info.get("master_port").unwrap_or_default());
            Some((
                Labels::of(s)
                    .with("master_host", host)
                    .with("master_port", port),
                *snap,
            ))
        })
    };
    family(
        e,
        "redis_master_link_up",
        "1 when this replica's link to its primary is up.",
        Kind::Gauge,
        links().map(|(l, snap)| {
            (
                l,
                f64::from(u8::from(snap.info.get("master_link_status") == Some("up"))),
            )
        }),
    )?;
    family(
        e,
        "redis_master_last_io_seconds_ago",
        "Seconds since this replica last heard from its primary.",
        Kind::Gauge,
        links().filter_map(|(l, snap)| Some((l, snap.info.number("master_last_io_seconds_ago")?))),
    )?;
    family(
        e,
        "redis_master_sync_in_progress",
        "1 while this replica synchronises from its primary.",
        Kind::Gauge,
        links().filter_map(|(l, snap)| Some((l, snap.info.number("master_sync_in_progress")?))),
    )?;
    family(
        e,
        "redis_slave_repl_offset",
        "Replication offset of this replica, in bytes.",
        Kind::Gauge,
        links().filter_map(|(l, snap)| Some((l, snap.info.number("slave_repl_offset")?))),
    )?;
    family(
        e,
        "redis_slave_info",
        "The primary this replica follows; always 1.",
        Kind::Gauge,
        links().map(|(l, snap)| {
            let read_only = clean_label(snap.info.get("slave_read_only").unwrap_or_default());
            (l.with("read_only", read_only), 1.0)
        }),
    )
}

fn cluster(e: &mut DescriptorEncoder, fresh: &Fresh<'_>) -> fmt::Result {
    for m in CLUSTER_METRICS {
        family(
            e,
            m.name,
            m.help,
            m.kind,
            fresh.iter().filter_map(|(s, snap)| {
                let v = m.value(snap.cluster.as_ref()?.fields.get(m.field)?)?;
                Some((Labels::of(s), v))
            }),
        )?;
    }
    Ok(())
}

fn sentinel(e: &mut DescriptorEncoder, fresh: &Fresh<'_>) -> fmt::Result {
    let masters = || {
        fresh.iter().flat_map(|(s, snap)| {
            snap.sentinel_masters.iter().map(move |m| {
                let labels = Labels::of(s)
                    .with("master_name", m.name.as_str())
                    .with("master_address", m.address.as_str());
                (labels, m)
            })
        })
    };
    family(
        e,
        "redis_sentinel_master_status",
        "1 when Sentinel sees the primary as ok; master_status says ok, sdown or odown.",
        Kind::Gauge,
        masters().map(|(l, m)| {
            (
                l.with("master_status", m.status.as_str()),
                f64::from(u8::from(m.status == "ok")),
            )
        }),
    )?;
    family(
        e,
        "redis_sentinel_master_slaves",
        "Replicas of the primary, as Sentinel knows them.",
        Kind::Gauge,
        masters().map(|(l, m)| (l, m.slaves as f64)),
    )?;
    family(
        e,
        "redis_sentinel_master_sentinels",
        "Sentinels watching the primary, this one included.",
        Kind::Gauge,
        masters().map(|(l, m)| (l, m.sentinels as f64)),
    )?;
    family(
        e,
        "redis_sentinel_master_setting_ckquorum",
        "The quorum configured for the primary.",
        Kind::Gauge,
        masters().filter_map(|(l, m)| Some((l, m.quorum? as f64))),
    )?;
    family(
        e,
        "redis_sentinel_master_ckquorum_status",
        "1 when SENTINEL CKQUORUM says enough Sentinels are reachable to fail the primary over.",
        Kind::Gauge,
        masters().filter_map(|(l, m)| Some((l, f64::from(u8::from(m.quorum_ok?))))),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use prometheus_client::registry::Registry;

    use super::*;
    use crate::collector::info::parse_info;
    use crate::model::{EndpointKey, EndpointStatus, Round};

    /// Plain INFO fields are kept as sent; where they become labels they are cleaned.
    #[test]
    fn plain_fields_used_as_labels_are_cleaned() {
        let store = Arc::new(SnapshotStore::new());
        let key = EndpointKey::new("cache", "east");
        let status = || EndpointStatus::new(key.clone(), 1, "x:1".into(), Duration::from_secs(5));
        store.register(status());
        let mut s = status();
        let now = Instant::now();
        s.last_round = Some(Round {
            finished: now,
            at: SystemTime::now(),
            duration: Duration::from_millis(1),
            error: None,
        });
        s.last_success = Some(Arc::new(Snapshot {
            taken_at: SystemTime::now(),
            finished: now,
            ping_latency: Duration::from_millis(1),
            info: parse_info(format!(
                "# Server\r\nredis_version:7\x1b[2J\rX\r\nrole:sl\x07ave\r\nmaster_host:{}\r\n\
                 master_port:1\x00\r\nslave_read_only:1\r\n",
                "h".repeat(500)
            )),
            cluster: None,
            sentinel_masters: Vec::new(),
        }));
        store.publish(s);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RedisCollector::new(store, None)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(
            out.contains("redis_version=\"7\u{FFFD}[2J\u{FFFD}X\""),
            "{out}"
        );
        assert!(out.contains("role=\"sl\u{FFFD}ave\""), "{out}");
        let host = format!("master_host=\"{}\"", "h".repeat(128));
        assert!(out.contains(&host), "{out}");
    }
}
