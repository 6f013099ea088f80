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
#[path = "info_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "info_fuzz.rs"]
mod fuzz;
