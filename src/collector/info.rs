//! Parsers for the text Redis answers to `INFO ALL`, `CLUSTER INFO` and
//! `SENTINEL MASTERS`. Pure functions: text in, our types out.

use std::ops::Range;

use crate::model::{
    ClusterInfo, CommandStat, Fields, Info, KeyspaceDb, LatencyPercentiles, Replica, SentinelMaster,
};

/// Parses `INFO` text (any sections, `\r\n` or `\n` line ends). Lines that do not
/// follow the `field:value` form are skipped: a newer Redis may add sections. The text
/// is kept, not copied field by field.
pub fn parse_info(text: impl Into<String>) -> Info {
    let text = text.into();
    let mut info = Info::default();
    let mut plain = Vec::with_capacity(256);
    for (start, line) in lines(&text) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if let Some(db) = numbered(key, "db") {
            let kv = pairs(value);
            info.keyspace.push(KeyspaceDb {
                db,
                keys: number(&kv, "keys"),
                expires: number(&kv, "expires"),
                avg_ttl_ms: number(&kv, "avg_ttl"),
            });
        } else if let Some(command) = key.strip_prefix("cmdstat_") {
            let kv = pairs(value);
            info.commands.push(CommandStat {
                command: command.to_owned(),
                calls: number(&kv, "calls"),
                usec: number(&kv, "usec"),
                rejected_calls: number(&kv, "rejected_calls"),
                failed_calls: number(&kv, "failed_calls"),
            });
        } else if let Some(prefix) = key.strip_prefix("errorstat_") {
            info.errors
                .push((prefix.to_owned(), number(&pairs(value), "count")));
        } else if let Some(command) = key.strip_prefix("latency_percentiles_usec_") {
            let percentiles = pairs(value)
                .into_iter()
                .filter_map(|(q, v)| Some((q.strip_prefix('p')?.to_owned(), v.parse().ok()?)))
                .collect();
            info.latency.push(LatencyPercentiles {
                command: command.to_owned(),
                percentiles,
            });
        } else if numbered(key, "slave").is_some() && value.contains("ip=") {
            let kv = pairs(value);
            info.replicas.push(Replica {
                ip: text_of(&kv, "ip"),
                port: number(&kv, "port") as u16,
                state: text_of(&kv, "state"),
                offset: number(&kv, "offset"),
                lag: number(&kv, "lag"),
            });
        } else if numbered(key, "master").is_some() && value.contains("name=") {
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
    info.fields = index(text, plain);
    info
}

/// Parses `CLUSTER INFO` text.
pub fn parse_cluster_info(text: impl Into<String>) -> ClusterInfo {
    let text = text.into();
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
    SentinelMaster {
        name: get("name").unwrap_or_default().to_owned(),
        address: format!(
            "{}:{}",
            get("ip").unwrap_or_default(),
            get("port").unwrap_or_default()
        ),
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

fn text_of(pairs: &[(&str, &str)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| (*v).to_owned())
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
}
