//! Parsers for what Redis answers to `INFO ALL`, `CLUSTER INFO` and `SENTINEL MASTERS`.
//! Pure functions: bytes in, our types out.
//!
//! What a server sends is bytes, not text: any client allowed to `EVAL` can put bytes
//! that are not UTF-8 into `INFO errorstats`. So a reply is read as bytes, made text
//! lossily (U+FFFD for bad bytes, the lines counted), never refused for it. Every label
//! value taken from a reply is cleaned ([`clean_label`]) and every table of rows that
//! becomes series is capped per endpoint, the rest counted in [`Dropped`].

use std::cmp::Ordering;
use std::ops::Range;

use crate::config::Limits;
use crate::model::{
    ClusterInfo, CommandStat, Dropped, Fields, Info, KeyspaceDb, LatencyPercentiles,
    MAX_PERCENTILES, MAX_REPLICAS, MAX_SENTINEL_MASTERS, Replica, SentinelMaster, Table,
    clean_label,
};

/// The caps on the rows one endpoint's `INFO` may turn into series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoLimits {
    /// `cmdstat_*` rows, and `latency_percentiles_usec_*` rows.
    pub commands: usize,
    /// `errorstat_*` rows.
    pub error_kinds: usize,
    /// `dbN` rows.
    pub databases: usize,
}

impl InfoLimits {
    pub fn from_config(limits: &Limits) -> Self {
        Self {
            commands: limits.max_commands_per_endpoint,
            error_kinds: limits.max_error_kinds_per_endpoint,
            databases: limits.max_databases_per_endpoint,
        }
    }
}

impl Default for InfoLimits {
    fn default() -> Self {
        Self::from_config(&Limits::default())
    }
}

/// Parses `INFO` with the default limits. See [`parse_info_with`].
pub fn parse_info(reply: impl Into<Vec<u8>>) -> Info {
    parse_info_with(reply.into(), &InfoLimits::default())
}

/// Parses `INFO` (any sections, `\r\n` or `\n` line ends). Lines that do not follow the
/// `field:value` form are skipped: a newer Redis may add sections. The text is kept, not
/// copied field by field.
pub fn parse_info_with(reply: Vec<u8>, limits: &InfoLimits) -> Info {
    let (text, invalid_utf8) = lossy(reply);
    let mut info = Info::default();
    info.dropped.invalid_utf8 = invalid_utf8;
    let mut plain = Vec::with_capacity(256);
    for (start, line) in lines(&text) {
        if line.starts_with('#') {
            info.sections += usize::from(line.starts_with("# "));
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if let Some(db) = numbered(key, "db") {
            if !room(
                &mut info.dropped,
                Table::Databases,
                info.keyspace.len(),
                limits.databases,
            ) {
                continue;
            }
            let kv = pairs(value);
            info.keyspace.push(KeyspaceDb {
                db,
                keys: number(&kv, "keys"),
                expires: number(&kv, "expires"),
                avg_ttl_ms: number(&kv, "avg_ttl"),
            });
        } else if let Some(command) = key.strip_prefix("cmdstat_") {
            if !room(
                &mut info.dropped,
                Table::Commands,
                info.commands.len(),
                limits.commands,
            ) {
                continue;
            }
            let kv = pairs(value);
            info.commands.push(CommandStat {
                command: clean_label(command).into_owned(),
                calls: number(&kv, "calls"),
                usec: number(&kv, "usec"),
                rejected_calls: number(&kv, "rejected_calls"),
                failed_calls: number(&kv, "failed_calls"),
            });
        } else if let Some(prefix) = key.strip_prefix("errorstat_") {
            if !room(
                &mut info.dropped,
                Table::Errors,
                info.errors.len(),
                limits.error_kinds,
            ) {
                continue;
            }
            let count = number(&pairs(value), "count");
            info.errors.push((clean_label(prefix).into_owned(), count));
        } else if let Some(command) = key.strip_prefix("latency_percentiles_usec_") {
            if !room(
                &mut info.dropped,
                Table::Latency,
                info.latency.len(),
                limits.commands,
            ) {
                continue;
            }
            let row = latency_row(command, value, &mut info.dropped);
            info.latency.push(row);
        } else if numbered(key, "slave").is_some() && value.contains("ip=") {
            if !room(
                &mut info.dropped,
                Table::Replicas,
                info.replicas.len(),
                MAX_REPLICAS,
            ) {
                continue;
            }
            let kv = pairs(value);
            info.replicas.push(Replica {
                ip: text_of(&kv, "ip"),
                port: number(&kv, "port") as u16,
                state: text_of(&kv, "state"),
                offset: number(&kv, "offset"),
                lag: number(&kv, "lag"),
            });
        } else if numbered(key, "master").is_some() && value.contains("name=") {
            let (table, len) = (Table::SentinelMasters, info.sentinel_masters.len());
            if !room(&mut info.dropped, table, len, MAX_SENTINEL_MASTERS) {
                continue;
            }
            let kv = pairs(value);
            info.sentinel_masters.push(SentinelMaster {
                name: text_of(&kv, "name"),
                address: text_of(&kv, "address"),
                status: text_of(&kv, "status"),
                slaves: number(&kv, "slaves"),
                sentinels: number(&kv, "sentinels"),
                quorum: None,
                quorum_ok: None,
            });
        } else {
            let value_start = start + key.len() + 1;
            plain.push((
                start..start + key.len(),
                value_start..value_start + value.len(),
            ));
        }
    }
    drop_repeats(&mut info);
    info.fields = index(text, plain);
    info
}

/// Parses `CLUSTER INFO`; bytes that are not UTF-8 are replaced, as in `INFO`.
pub fn parse_cluster_info(reply: impl Into<Vec<u8>>) -> ClusterInfo {
    let (text, _) = lossy(reply.into());
    let plain = lines(&text)
        .filter_map(|(start, line)| {
            let (key, value) = line.split_once(':')?;
            let value_start = start + key.len() + 1;
            Some((
                start..start + key.len(),
                value_start..value_start + value.len(),
            ))
        })
        .collect();
    ClusterInfo {
        fields: index(text, plain),
    }
}

/// The reply as text: as is (no copy) when it is UTF-8, else with U+FFFD for each bad
/// sequence, and the number of lines that had one.
pub fn lossy(reply: Vec<u8>) -> (String, u64) {
    match String::from_utf8(reply) {
        Ok(text) => (text, 0),
        Err(e) => {
            let bytes = e.into_bytes();
            let bad = bytes
                .split(|&b| b == b'\n')
                .filter(|line| std::str::from_utf8(line).is_err())
                .count();
            (String::from_utf8_lossy(&bytes).into_owned(), bad as u64)
        }
    }
}

/// Whether a table has room for one more row; counts the row as dropped when not.
fn room(dropped: &mut Dropped, table: Table, len: usize, cap: usize) -> bool {
    let room = len < cap;
    if !room {
        dropped.add(table, 1);
    }
    room
}

fn latency_row(command: &str, value: &str, dropped: &mut Dropped) -> LatencyPercentiles {
    let mut percentiles: Vec<(String, f64)> = Vec::new();
    for (q, v) in pairs(value) {
        let (Some(q), Ok(v)) = (q.strip_prefix('p'), v.parse::<f64>()) else {
            continue;
        };
        let q = clean_label(q);
        if percentiles.len() >= MAX_PERCENTILES || percentiles.iter().any(|(p, _)| *p == q) {
            dropped.add(Table::Latency, 1);
            continue;
        }
        percentiles.push((q.into_owned(), v));
    }
    LatencyPercentiles {
        command: clean_label(command).into_owned(),
        percentiles,
    }
}

/// A row whose labels repeat an earlier row's would be a second series with the same
/// labels, which Prometheus refuses: only the first is kept, the others counted.
fn drop_repeats(info: &mut Info) {
    let d = &mut info.dropped;
    d.add(
        Table::Commands,
        keep_first(&mut info.commands, |a, b| a.command.cmp(&b.command)),
    );
    d.add(
        Table::Errors,
        keep_first(&mut info.errors, |a, b| a.0.cmp(&b.0)),
    );
    d.add(
        Table::Databases,
        keep_first(&mut info.keyspace, |a, b| a.db.cmp(&b.db)),
    );
    d.add(
        Table::Latency,
        keep_first(&mut info.latency, |a, b| a.command.cmp(&b.command)),
    );
    d.add(
        Table::Replicas,
        keep_first(&mut info.replicas, |a, b| {
            (&a.ip, a.port, &a.state).cmp(&(&b.ip, b.port, &b.state))
        }),
    );
    d.add(
        Table::SentinelMasters,
        keep_first(&mut info.sentinel_masters, same_master),
    );
}

fn same_master(a: &SentinelMaster, b: &SentinelMaster) -> Ordering {
    (&a.name, &a.address).cmp(&(&b.name, &b.address))
}

/// Caps the primaries read from `SENTINEL MASTERS` and drops repeats, as for `INFO`.
pub fn bound_sentinel_masters(masters: &mut Vec<SentinelMaster>, dropped: &mut Dropped) {
    if masters.len() > MAX_SENTINEL_MASTERS {
        dropped.add(
            Table::SentinelMasters,
            (masters.len() - MAX_SENTINEL_MASTERS) as u64,
        );
        masters.truncate(MAX_SENTINEL_MASTERS);
    }
    dropped.add(Table::SentinelMasters, keep_first(masters, same_master));
}

/// Removes the rows equal (by `cmp`) to an earlier one, keeping the order; returns how
/// many went. O(n log n): the rows are at most a table's cap.
fn keep_first<T>(rows: &mut Vec<T>, cmp: impl Fn(&T, &T) -> Ordering) -> u64 {
    if rows.len() < 2 {
        return 0;
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| cmp(&rows[a], &rows[b]).then(a.cmp(&b)));
    let mut keep = vec![true; rows.len()];
    let mut repeats = 0;
    for pair in order.windows(2) {
        if cmp(&rows[pair[0]], &rows[pair[1]]) == Ordering::Equal {
            keep[pair[1]] = false;
            repeats += 1;
        }
    }
    if repeats > 0 {
        let mut i = 0;
        rows.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    repeats
}

type Pair = (Range<usize>, Range<usize>);

fn index(text: String, plain: Vec<Pair>) -> Fields {
    let mut fields = Fields::new(text, plain.len());
    for (key, value) in plain {
        fields.push(key, value);
    }
    fields
}

/// Lines without their `\r\n` or `\n`, each with its byte offset.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |raw| {
        let start = offset;
        offset += raw.len();
        (start, raw.trim_end_matches(['\n', '\r']))
    })
}

/// Builds a primary from one entry of `SENTINEL MASTERS` (alternating field names and
/// values). The status follows Sentinel's flags the way `INFO sentinel` reports it.
pub fn sentinel_master_from_pairs(fields: &[(String, String)]) -> SentinelMaster {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let count = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
    let flags = get("flags").unwrap_or_default();
    let status = if flags.split(',').any(|f| f == "o_down") {
        "odown"
    } else if flags.split(',').any(|f| f == "s_down") {
        "sdown"
    } else {
        "ok"
    };
    let address = format!(
        "{}:{}",
        get("ip").unwrap_or_default(),
        get("port").unwrap_or_default()
    );
    SentinelMaster {
        name: clean_label(get("name").unwrap_or_default()).into_owned(),
        address: clean_label(&address).into_owned(),
        status: status.to_owned(),
        slaves: count("num-slaves").unwrap_or(0),
        sentinels: count("num-other-sentinels").unwrap_or(0) + 1,
        quorum: count("quorum"),
        quorum_ok: None,
    }
}

/// `db3` -> 3 for prefix `db`; `None` when the rest is not a number.
fn numbered(key: &str, prefix: &str) -> Option<u32> {
    key.strip_prefix(prefix)?.parse().ok()
}

fn pairs(value: &str) -> Vec<(&str, &str)> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn number(pairs: &[(&str, &str)], key: &str) -> u64 {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A value that becomes a label, cleaned.
fn text_of(pairs: &[(&str, &str)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| clean_label(v).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn master_with_two_replicas() {
        let info = parse_info(fixture("info-master.txt"));
        assert_eq!(info.role(), Some("master"));
        assert_eq!(info.get("redis_version"), Some("7.0.15"));
        assert_eq!(info.number("connected_slaves"), Some(2.0));
        assert_eq!(info.replicas.len(), 2);
        assert!(
            info.replicas
                .iter()
                .all(|r| r.state == "online" && r.ip == "127.0.0.1")
        );
        assert_eq!(info.replicas[0].port, 27002);
        let db0 = info.keyspace.iter().find(|d| d.db == 0).unwrap();
        assert_eq!(db0.expires, 40);
        assert!(db0.keys >= 40);
        assert!(info.keyspace.iter().any(|d| d.db == 3));
        let get = info.commands.iter().find(|c| c.command == "get").unwrap();
        assert_eq!((get.calls, get.usec, get.rejected_calls), (260, 30, 1));
        assert!(info.commands.iter().any(|c| c.command == "config|set"));
        assert!(info.errors.contains(&("WRONGTYPE".to_owned(), 1)));
        assert!(
            info.latency
                .iter()
                .any(|l| l.command == "get" && l.percentiles.iter().any(|(q, _)| q == "99.9"))
        );
        assert_eq!(info.number("maxmemory"), Some(104_857_600.0));
        assert!(!info.is_cluster_enabled());
        assert!(!info.is_sentinel());
        // Structured lines are not also kept as plain fields.
        assert!(info.get("slave0").is_none() && info.get("db0").is_none());
    }

    #[test]
    fn replica_with_link_up_and_down() {
        let up = parse_info(fixture("info-replica.txt"));
        assert_eq!(up.role(), Some("slave"));
        assert_eq!(up.get("master_link_status"), Some("up"));
        assert!(up.replicas.is_empty());
        assert!(up.number("slave_repl_offset").is_some());
        let down = parse_info(fixture("info-replica-link-down.txt"));
        assert_eq!(down.get("master_link_status"), Some("down"));
    }

    #[test]
    fn cluster_node_and_cluster_info() {
        let info = parse_info(fixture("info-cluster-node.txt"));
        assert!(info.is_cluster_enabled());
        assert_eq!(info.get("redis_mode"), Some("cluster"));
        assert!(info.errors.iter().any(|(e, n)| e == "MOVED" && *n == 145));
        let cluster = parse_cluster_info(fixture("cluster-info.txt"));
        assert_eq!(cluster.state_ok(), Some(true));
        assert_eq!(cluster.number("cluster_slots_assigned"), Some(16384.0));
        assert_eq!(cluster.number("cluster_known_nodes"), Some(3.0));
    }

    #[test]
    fn sentinel_info() {
        let info = parse_info(fixture("info-sentinel.txt"));
        assert!(info.is_sentinel());
        assert_eq!(info.sentinel_masters.len(), 1);
        let m = &info.sentinel_masters[0];
        assert_eq!(
            (
                m.name.as_str(),
                m.status.as_str(),
                m.address.as_str(),
                m.slaves,
                m.sentinels
            ),
            ("mymaster", "ok", "127.0.0.1:27001", 2, 1)
        );
        assert!(info.number("sentinel_masters").is_some());
    }

    #[test]
    fn sentinel_masters_reply() {
        let bytes = std::fs::read(format!(
            "{}/tests/fixtures/sentinel-masters.resp",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let value = redis::parse_redis_value(&bytes).unwrap();
        let entries: Vec<Vec<String>> = redis::from_redis_value(value).unwrap();
        assert_eq!(entries.len(), 1);
        let pairs: Vec<(String, String)> = entries[0]
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        let m = sentinel_master_from_pairs(&pairs);
        assert_eq!(m.name, "mymaster");
        assert_eq!(m.address, "127.0.0.1:27001");
        assert_eq!(m.status, "ok");
        assert_eq!(m.quorum, Some(2));
        assert_eq!(m.slaves, 2);
        assert_eq!(m.sentinels, 1);
    }

    #[test]
    fn sentinel_flags_give_the_status() {
        let with_flags =
            |flags: &str| sentinel_master_from_pairs(&[("flags".into(), flags.into())]).status;
        assert_eq!(with_flags("master"), "ok");
        assert_eq!(with_flags("s_down,master"), "sdown");
        assert_eq!(with_flags("o_down,s_down,master"), "odown");
    }

    #[test]
    fn odd_lines_are_skipped_not_fatal() {
        let info = parse_info("# Server\r\nno colon here\r\nrole:master\r\ndbx:keys=1\r\n\r\n");
        assert_eq!(info.role(), Some("master"));
        assert_eq!(info.get("dbx"), Some("keys=1"));
        assert!(info.keyspace.is_empty());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept_lossily_and_counted() {
        // What `EVAL "return redis.error_reply(string.char(255,254)..' x')" 0` leaves in
        // INFO errorstats until CONFIG RESETSTAT.
        let mut reply = fixture("info-master.txt").into_bytes();
        reply.extend_from_slice(b"errorstat_\xff\xfe:count=3\r\ncmdstat_g\xc3\x28t:calls=1\r\n");
        let info = parse_info(reply);
        assert!(info.looks_like_info());
        assert_eq!(info.role(), Some("master"));
        assert_eq!(info.get("redis_version"), Some("7.0.15"));
        assert!(
            info.errors.contains(&("\u{FFFD}\u{FFFD}".to_owned(), 3)),
            "{:?}",
            info.errors
        );
        assert!(info.commands.iter().any(|c| c.command == "g\u{FFFD}(t"));
        assert_eq!(info.dropped.invalid_utf8, 2);
        assert_eq!(
            parse_info(fixture("info-master.txt")).dropped.invalid_utf8,
            0
        );
    }

    #[test]
    fn label_values_lose_control_characters_and_length() {
        let long = "x".repeat(1000);
        let info = parse_info(format!(
            "# Server\r\nredis_version:7.0.15\r\ncmdstat_get\x1b[2J\r:calls=1\r\n\
             errorstat_{long}:count=2\r\nslave0:ip=10.0.0.1\r,port=1,state=on\x07line,offset=1,lag=0\r\n\
             latency_percentiles_usec_get\x00:p5\x1b0=1,p99=2\r\n"
        ));
        let labels: Vec<&str> = info
            .commands
            .iter()
            .map(|c| c.command.as_str())
            .chain(info.errors.iter().map(|e| e.0.as_str()))
            .chain(
                info.replicas
                    .iter()
                    .flat_map(|r| [r.ip.as_str(), r.state.as_str()]),
            )
            .chain(info.latency.iter().map(|l| l.command.as_str()))
            .chain(
                info.latency
                    .iter()
                    .flat_map(|l| l.percentiles.iter().map(|p| p.0.as_str())),
            )
            .collect();
        assert_eq!(labels.len(), 7, "{labels:?}");
        for label in labels {
            assert!(!label.chars().any(char::is_control), "{label:?}");
            assert!(
                label.len() <= crate::model::MAX_LABEL_BYTES,
                "{}",
                label.len()
            );
        }
    }

    #[test]
    fn rows_past_their_limits_are_dropped_and_counted() {
        let mut text = String::from("# Server\r\nredis_version:7.0.15\r\n");
        for i in 0..20_000 {
            text.push_str(&format!(
                "cmdstat_c{i}:calls=1,usec=1\r\nerrorstat_E{i}:count=1\r\ndb{i}:keys=1,expires=0\r\n\
                 latency_percentiles_usec_c{i}:p50=1\r\n"
            ));
        }
        // Repeats of kept rows would be second series with the same labels.
        text.push_str("cmdstat_c0:calls=9\r\n");
        let limits = InfoLimits::default();
        let info = parse_info_with(text.into_bytes(), &limits);
        assert_eq!(
            (
                info.commands.len(),
                info.errors.len(),
                info.keyspace.len(),
                info.latency.len()
            ),
            (500, 128, 256, 500)
        );
        let d = info.dropped;
        assert_eq!(d.rows(Table::Commands), 20_000 - 500 + 1);
        assert_eq!(d.rows(Table::Errors), 20_000 - 128);
        assert_eq!(d.rows(Table::Databases), 20_000 - 256);
        assert_eq!(d.rows(Table::Latency), 20_000 - 500);
        assert_eq!(
            info.commands[0].calls, 1,
            "the first of a repeated row is kept"
        );
    }

    #[test]
    fn repeated_rows_keep_the_first_and_the_order() {
        let info = parse_info(
            "# Keyspace\r\ndb1:keys=1\r\ndb0:keys=2\r\ndb1:keys=3\r\nerrorstat_ERR:count=1\r\n\
             errorstat_ERR:count=5\r\nslave0:ip=a,port=1,state=online\r\n\
             slave1:ip=a,port=1,state=online\r\nlatency_percentiles_usec_get:p50=1,p50=2\r\n",
        );
        let dbs: Vec<(u32, u64)> = info.keyspace.iter().map(|d| (d.db, d.keys)).collect();
        assert_eq!(dbs, vec![(1, 1), (0, 2)]);
        assert_eq!(info.errors, vec![("ERR".to_owned(), 1)]);
        assert_eq!(info.replicas.len(), 1);
        assert_eq!(info.latency[0].percentiles, vec![("50".to_owned(), 1.0)]);
        let d = info.dropped;
        let counts = Table::ALL.map(|t| d.rows(t));
        assert_eq!(counts, [0, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn replies_that_are_not_info_are_recognised() {
        for name in [
            "info-master.txt",
            "info-replica.txt",
            "info-sentinel.txt",
            "info-cluster-node.txt",
        ] {
            assert!(parse_info(fixture(name)).looks_like_info(), "{name}");
        }
        for junk in ["", "42", "anything", "OK", "x:1\r\ny:2\r\n", "#nospace\r\n"] {
            assert!(!parse_info(junk).looks_like_info(), "{junk:?}");
        }
    }
}

/// Fuzz targets (see `crate::fuzz`): the INFO parser on arbitrary bytes and on mutated
/// real replies never panics, never yields a label value with a control character, an
/// over-long one or (by construction, `String`) invalid UTF-8, and respects its caps.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::model::MAX_LABEL_BYTES;

    const SMALL: InfoLimits = InfoLimits {
        commands: 7,
        error_kinds: 3,
        databases: 2,
    };

    fn fixtures() -> Vec<Vec<u8>> {
        [
            "info-master.txt",
            "info-replica.txt",
            "info-sentinel.txt",
            "info-cluster-node.txt",
        ]
        .iter()
        .map(|name| {
            let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .collect()
    }

    fn check(info: &Info, limits: &InfoLimits) -> Result<(), TestCaseError> {
        prop_assert!(info.commands.len() <= limits.commands);
        prop_assert!(info.latency.len() <= limits.commands);
        prop_assert!(info.errors.len() <= limits.error_kinds);
        prop_assert!(info.keyspace.len() <= limits.databases);
        prop_assert!(info.replicas.len() <= MAX_REPLICAS);
        prop_assert!(info.sentinel_masters.len() <= MAX_SENTINEL_MASTERS);
        let labels = info
            .commands
            .iter()
            .map(|c| c.command.as_str())
            .chain(info.errors.iter().map(|e| e.0.as_str()))
            .chain(
                info.replicas
                    .iter()
                    .flat_map(|r| [r.ip.as_str(), r.state.as_str()]),
            )
            .chain(info.latency.iter().flat_map(|l| {
                std::iter::once(l.command.as_str())
                    .chain(l.percentiles.iter().map(|p| p.0.as_str()))
            }))
            .chain(
                info.sentinel_masters
                    .iter()
                    .flat_map(|m| [m.name.as_str(), m.address.as_str(), m.status.as_str()]),
            );
        for label in labels {
            prop_assert!(!label.chars().any(char::is_control), "{label:?}");
            prop_assert!(label.len() <= MAX_LABEL_BYTES, "{}", label.len());
        }
        for l in &info.latency {
            prop_assert!(l.percentiles.len() <= MAX_PERCENTILES);
        }
        // Plain fields become labels after `clean_label`, which must hold the same.
        for (_, value) in info.fields.iter() {
            let label = clean_label(value);
            prop_assert!(!label.chars().any(char::is_control) && label.len() <= MAX_LABEL_BYTES);
        }
        Ok(())
    }

    /// Bytes that matter to the parser, and bytes that are not UTF-8.
    fn interesting() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => any::<u8>(),
            1 => prop::sample::select(vec![b'\r', b'\n', b':', b',', b'=', b'#', b' ', 0x1b, 0, 0xff, 0xfe, 0xc3]),
        ]
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(256))]

        #[test]
        fn fuzz_info_arbitrary_bytes(bytes in prop::collection::vec(interesting(), 0..2048)) {
            let info = parse_info_with(bytes.clone(), &SMALL);
            check(&info, &SMALL)?;
            let _ = parse_cluster_info(bytes);
        }

        #[test]
        fn fuzz_info_mutated_replies(
            which in 0usize..4,
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::collection::vec(interesting(), 1..8)), 1..24),
        ) {
            let mut reply = fixtures().swap_remove(which);
            for (at, op, bytes) in edits {
                let i = at.index(reply.len() + 1);
                match op {
                    0 => { reply.splice(i..i, bytes); }
                    1 => {
                        let end = (i + bytes.len()).min(reply.len());
                        reply.splice(i..end, bytes);
                    }
                    _ => {
                        // Repeat a slice: rows past the caps, repeated names.
                        let end = (i + 400).min(reply.len());
                        let copy = reply[i..end].to_vec();
                        for _ in 0..bytes.len() {
                            reply.splice(i..i, copy.iter().copied());
                        }
                    }
                }
            }
            let info = parse_info_with(reply, &SMALL);
            check(&info, &SMALL)?;
        }
    }
}
