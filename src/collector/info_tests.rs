//! Tests of the INFO parser.

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
