//! Features of one endpoint from two consecutive snapshots: rates from counters over the
//! time between them, and gauges from the later one. A pure function.

use std::time::{Duration, SystemTime};

use crate::model::Info;

/// Number of features.
pub const N: usize = 16;

/// A feature vector, in the units of [`FEATURES`].
pub type Features = [f64; N];

/// How a feature is fed to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Rates and counts span orders of magnitude: `ln(1 + x)`.
    Log,
    /// Ratios already live in a narrow range.
    Linear,
}

#[derive(Debug, Clone, Copy)]
pub struct Feature {
    /// The `feature` label.
    pub name: &'static str,
    pub unit: &'static str,
    pub scale: Scale,
    pub help: &'static str,
}

const fn feature(
    name: &'static str,
    unit: &'static str,
    scale: Scale,
    help: &'static str,
) -> Feature {
    Feature {
        name,
        unit,
        scale,
        help,
    }
}

/// The features, in vector order.
#[rustfmt::skip]
pub const FEATURES: [Feature; N] = [
    feature("commands_per_second", "1/s", Scale::Log, "commands processed per second"),
    feature("keyspace_hits_per_second", "1/s", Scale::Log, "successful key lookups per second"),
    feature("keyspace_misses_per_second", "1/s", Scale::Log, "failed key lookups per second"),
    feature("evicted_keys_per_second", "1/s", Scale::Log, "keys evicted for maxmemory per second"),
    feature("expired_keys_per_second", "1/s", Scale::Log, "keys expired per second"),
    feature("rejected_connections_per_second", "1/s", Scale::Log, "connections refused for maxclients per second"),
    feature("error_replies_per_second", "1/s", Scale::Log, "error replies sent per second"),
    feature("net_input_bytes_per_second", "B/s", Scale::Log, "bytes read from the network per second"),
    feature("net_output_bytes_per_second", "B/s", Scale::Log, "bytes written to the network per second"),
    feature("ping_latency_milliseconds", "ms", Scale::Log, "round trip of PING"),
    feature("connected_clients", "clients", Scale::Log, "client connections"),
    feature("blocked_clients", "clients", Scale::Log, "clients blocked on a blocking command"),
    feature("memory_used_ratio", "ratio", Scale::Linear, "used_memory / maxmemory, or / total_system_memory without a limit"),
    feature("fragmentation_ratio", "ratio", Scale::Linear, "used_memory_rss / used_memory"),
    feature("hit_ratio", "ratio", Scale::Linear, "hits / (hits + misses) between the two snapshots; 1 without lookups"),
    feature("replication_lag_seconds", "s", Scale::Log, "primary: largest replica lag; replica: seconds since it heard from its primary (or since the link went down); 0 otherwise"),
];

/// Index of a feature by name.
pub fn index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.name == name)
}

/// What the features are computed from: one snapshot of an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub at: SystemTime,
    pub ping_latency: Duration,
    pub info: &'a Info,
}

/// Why two snapshots give no features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The server restarted or a counter went backwards: a rate over the reset would be a
    /// huge spike that says nothing about the server.
    Reset,
    /// Less than 100 ms apart, or out of order.
    TooClose,
    /// A field every Redis has is missing: not a Redis INFO.
    Missing(&'static str),
}

const COUNTERS: [(&str, usize); 9] = [
    ("total_commands_processed", 0),
    ("keyspace_hits", 1),
    ("keyspace_misses", 2),
    ("evicted_keys", 3),
    ("expired_keys", 4),
    ("rejected_connections", 5),
    ("total_error_replies", 6),
    ("total_net_input_bytes", 7),
    ("total_net_output_bytes", 8),
];

pub fn extract(prev: &Observation<'_>, cur: &Observation<'_>) -> Result<Features, Skip> {
    let dt = cur
        .at
        .duration_since(prev.at)
        .map_err(|_| Skip::TooClose)?
        .as_secs_f64();
    if dt < 0.1 {
        return Err(Skip::TooClose);
    }
    let (p, c) = (prev.info, cur.info);
    if p.get("run_id").is_some() && p.get("run_id") != c.get("run_id") {
        return Err(Skip::Reset);
    }
    let mut f = [0.0; N];
    for (field, i) in COUNTERS {
        // Older servers lack total_error_replies: treat a missing counter as 0.
        let (before, after) = (
            p.number(field).unwrap_or(0.0),
            c.number(field).unwrap_or(0.0),
        );
        if after < before {
            return Err(Skip::Reset);
        }
        f[i] = (after - before) / dt;
    }
    f[9] = cur.ping_latency.as_secs_f64() * 1000.0;
    f[10] = c
        .number("connected_clients")
        .ok_or(Skip::Missing("connected_clients"))?;
    f[11] = c.number("blocked_clients").unwrap_or(0.0);
    c.number("used_memory")
        .ok_or(Skip::Missing("used_memory"))?;
    f[12] = c.memory_used_ratio().unwrap_or(0.0);
    f[13] = c.number("mem_fragmentation_ratio").unwrap_or(1.0);
    let lookups = f[1] + f[2];
    f[14] = if lookups > 0.0 { f[1] / lookups } else { 1.0 };
    f[15] = replication_lag(c);
    Ok(f)
}

fn replication_lag(info: &Info) -> f64 {
    match info.role() {
        Some("slave") => {
            if info.get("master_link_status") == Some("up") {
                info.number("master_last_io_seconds_ago")
                    .unwrap_or(0.0)
                    .max(0.0)
            } else {
                info.number("master_link_down_since_seconds")
                    .filter(|s| *s >= 0.0)
                    .unwrap_or(0.0)
            }
        }
        _ => info
            .replicas
            .iter()
            .map(|r| r.lag as f64)
            .fold(0.0, f64::max),
    }
}

/// The feature vector as the model sees it: heavy-tailed quantities on a log scale.
pub fn transform(f: &Features) -> Features {
    let mut t = *f;
    for (x, feature) in t.iter_mut().zip(FEATURES.iter()) {
        if feature.scale == Scale::Log {
            *x = x.max(0.0).ln_1p();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::info::parse_info;

    fn info(pairs: &[(&str, &str)]) -> Info {
        let text: String = pairs.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect();
        parse_info(text)
    }

    fn base(commands: u64, hits: u64, misses: u64, run_id: &str) -> Info {
        info(&[
            ("run_id", run_id),
            ("role", "master"),
            ("total_commands_processed", &commands.to_string()),
            ("keyspace_hits", &hits.to_string()),
            ("keyspace_misses", &misses.to_string()),
            ("connected_clients", "7"),
            ("used_memory", "50"),
            ("maxmemory", "200"),
            ("total_system_memory", "1000"),
            ("mem_fragmentation_ratio", "1.5"),
        ])
    }

    fn obs(at_secs: u64, info: &Info) -> Observation<'_> {
        Observation {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at_secs),
            ping_latency: Duration::from_micros(1500),
            info,
        }
    }

    #[test]
    fn a_full_cache_that_evicts_is_not_memory_pressure() {
        let at = |policy: &str| {
            info(&[
                ("used_memory", "199"),
                ("maxmemory", "200"),
                ("total_system_memory", "1000"),
                ("maxmemory_policy", policy),
            ])
        };
        assert_eq!(at("allkeys-lru").memory_pressure(), Some(0.199));
        assert_eq!(at("noeviction").memory_pressure(), Some(0.995));
        // volatile-* evicts only keys with a TTL, and refuses writes when there are none.
        assert_eq!(at("volatile-lru").memory_pressure(), Some(0.995));
        // The model's feature is unchanged: a cache filling up is still worth learning.
        assert_eq!(at("allkeys-lru").memory_used_ratio(), Some(0.995));
    }

    #[test]
    fn rates_and_gauges() {
        let (a, b) = (base(1000, 100, 0, "r1"), base(3000, 250, 50, "r1"));
        let f = extract(&obs(10, &a), &obs(20, &b)).unwrap();
        assert_eq!(f[index("commands_per_second").unwrap()], 200.0);
        assert_eq!(f[index("keyspace_hits_per_second").unwrap()], 15.0);
        assert_eq!(f[index("keyspace_misses_per_second").unwrap()], 5.0);
        assert_eq!(f[index("hit_ratio").unwrap()], 0.75);
        assert_eq!(f[index("memory_used_ratio").unwrap()], 0.25);
        assert_eq!(f[index("fragmentation_ratio").unwrap()], 1.5);
        assert_eq!(f[index("connected_clients").unwrap()], 7.0);
        assert_eq!(f[index("ping_latency_milliseconds").unwrap()], 1.5);
        assert_eq!(f[index("replication_lag_seconds").unwrap()], 0.0);
        assert_eq!(f[index("hit_ratio").unwrap()], 0.75);
    }

    #[test]
    fn a_restart_is_skipped_not_a_spike() {
        let (a, b) = (base(1_000_000, 10, 0, "r1"), base(5, 0, 0, "r2"));
        assert_eq!(extract(&obs(10, &a), &obs(20, &b)), Err(Skip::Reset));
        // Same run id but a counter went backwards (CONFIG RESETSTAT).
        let (a, b) = (base(1_000_000, 10, 0, "r1"), base(5, 0, 0, "r1"));
        assert_eq!(extract(&obs(10, &a), &obs(20, &b)), Err(Skip::Reset));
    }

    #[test]
    fn out_of_order_or_too_close_is_skipped() {
        let a = base(1, 1, 1, "r");
        assert_eq!(extract(&obs(20, &a), &obs(10, &a)), Err(Skip::TooClose));
        assert_eq!(extract(&obs(20, &a), &obs(20, &a)), Err(Skip::TooClose));
    }

    #[test]
    fn memory_ratio_falls_back_to_system_memory_and_lag_follows_the_role() {
        let a = info(&[
            ("connected_clients", "1"),
            ("used_memory", "100"),
            ("maxmemory", "0"),
            ("total_system_memory", "400"),
        ]);
        let f = extract(&obs(0, &a), &obs(1, &a)).unwrap();
        assert_eq!(f[index("memory_used_ratio").unwrap()], 0.25);
        assert_eq!(
            f[index("hit_ratio").unwrap()],
            1.0,
            "no lookups is not a bad hit ratio"
        );

        let down = info(&[
            ("role", "slave"),
            ("connected_clients", "1"),
            ("used_memory", "1"),
            ("master_link_status", "down"),
            ("master_link_down_since_seconds", "42"),
        ]);
        let f = extract(&obs(0, &down), &obs(1, &down)).unwrap();
        assert_eq!(f[index("replication_lag_seconds").unwrap()], 42.0);

        let primary = parse_info(
            "connected_clients:1\r\nused_memory:1\r\nrole:master\r\nslave0:ip=1.2.3.4,port=1,state=online,offset=5,lag=3\r\nslave1:ip=1.2.3.5,port=1,state=online,offset=5,lag=9\r\n",
        );
        let f = extract(&obs(0, &primary), &obs(1, &primary)).unwrap();
        assert_eq!(f[index("replication_lag_seconds").unwrap()], 9.0);
    }

    #[test]
    fn names_are_unique_and_transform_logs_only_log_features() {
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), N);
        let mut f = [0.0; N];
        f[0] = std::f64::consts::E - 1.0;
        f[12] = 0.5;
        let t = transform(&f);
        assert!((t[0] - 1.0).abs() < 1e-12);
        assert_eq!(t[12], 0.5);
    }
}
