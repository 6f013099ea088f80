use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::model::enterprise::{Database, InSync, SyncSource, SyncStatus};
use crate::model::{EndpointKey, Fields};

const MIB: u64 = 1024 * 1024;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn info(pairs: &[(&str, &str)]) -> Info {
    let text: String = pairs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut fields = Fields::new(text, pairs.len());
    let mut at = 0;
    for (k, v) in pairs {
        fields.push(
            at..at + k.len(),
            at + k.len() + 1..at + k.len() + 1 + v.len(),
        );
        at += k.len() + v.len() + 2;
    }
    Info {
        fields,
        sections: 1,
        ..Info::default()
    }
}

fn status(dc: &str, address: &str, taken: Option<(SystemTime, Info)>) -> EndpointStatus {
    let key = EndpointKey::new("orders", dc);
    let mut s = EndpointStatus::new(key, 1, address.into(), Duration::from_secs(1));
    s.last_success = taken.map(|(taken_at, info)| {
        Arc::new(Snapshot {
            taken_at,
            finished: Instant::now(),
            ping_latency: Duration::from_millis(1),
            info,
            cluster: None,
            sentinel_masters: Vec::new(),
        })
    });
    s
}

fn primary(offset: &str) -> Info {
    info(&[
        ("role", "master"),
        ("master_replid", "abc123"),
        ("master_repl_offset", offset),
    ])
}

fn replica(replid: &str, offset: &str, link: &[(&'static str, &'static str)]) -> Info {
    let mut pairs = vec![
        ("role", "slave"),
        ("master_host", "10.0.0.9"),
        ("master_port", "6379"),
        ("master_replid", replid),
        ("slave_repl_offset", offset),
    ];
    pairs.extend_from_slice(link);
    info(&pairs)
}

const UP: &[(&str, &str)] = &[
    ("master_link_status", "up"),
    ("master_last_io_seconds_ago", "1"),
];
const DOWN_30: &[(&str, &str)] = &[
    ("master_link_status", "down"),
    ("master_link_down_since_seconds", "30"),
];

struct World {
    a: DatacenterId,
    b: DatacenterId,
    a_status: Option<EndpointStatus>,
    b_status: Option<EndpointStatus>,
    b_cluster: Option<ClusterView>,
    a_cluster: Option<ClusterView>,
}

impl World {
    fn new(a: Option<(SystemTime, Info)>, b: Option<(SystemTime, Info)>) -> Self {
        World {
            a: DatacenterId::new("a"),
            b: DatacenterId::new("b"),
            a_status: Some(status("a", "10.0.0.1:6379", a)),
            b_status: Some(status("b", "10.0.0.2:6379", b)),
            a_cluster: None,
            b_cluster: None,
        }
    }

    fn estimate(&self) -> Estimate {
        let from = Side {
            datacenter: &self.a,
            endpoint: self.a_status.as_ref(),
            cluster: self.a_cluster.as_ref(),
        };
        let to = Side {
            datacenter: &self.b,
            endpoint: self.b_status.as_ref(),
            cluster: self.b_cluster.as_ref(),
        };
        estimate(from, to, &["orders", "orders-db"], t(1000))
    }
}

/// The basis, the bytes and the seconds.
type Figures = (Basis, Option<u64>, Option<f64>);

fn figures(e: &Estimate) -> Figures {
    (e.basis, e.bytes, e.seconds.map(|s| s.as_secs_f64()))
}

#[test]
fn open_source_replication_estimates() {
    let rows: &[(&str, World, Figures)] = &[
        (
            "same replication id, link up, caught up: nothing lost",
            World::new(
                Some((t(100), primary("5000"))),
                Some((t(101), replica("abc123", "5000", UP))),
            ),
            (Basis::Replication, Some(0), Some(0.0)),
        ),
        (
            "same replication id, link up, behind by 3 MiB: a's last read minus b's last I/O",
            World::new(
                Some((t(100), primary(&(3 * MIB + 5000).to_string()))),
                Some((t(99), replica("abc123", "5000", UP))),
            ),
            (Basis::Replication, Some(3 * MIB), Some(2.0)),
        ),
        (
            "link down for 30 s while a was still read: 30 s lost",
            World::new(
                Some((t(100), primary("9000"))),
                Some((t(100), replica("abc123", "5000", DOWN_30))),
            ),
            (Basis::Replication, Some(4000), Some(30.0)),
        ),
        (
            "a last read long before b: its figures stand, b is not behind a's last state",
            World::new(
                Some((t(10), primary("5000"))),
                Some((t(100), replica("abc123", "5000", DOWN_30))),
            ),
            (Basis::Replication, Some(0), Some(0.0)),
        ),
        (
            "stale a behind a link cut earlier: the window from b's last copy to a's last read",
            World::new(
                Some((t(60), primary("7000"))),
                Some((t(100), replica("abc123", "5000", DOWN_30))),
            ),
            (Basis::Replication, Some(2000), Some(0.0)),
        ),
        (
            "an idle primary's PING not yet at b, whose last I/O was 9 s ago: current",
            World::new(
                Some((t(100), primary("5014"))),
                Some((
                    t(98),
                    replica(
                        "abc123",
                        "5000",
                        &[
                            ("master_link_status", "up"),
                            ("master_last_io_seconds_ago", "9"),
                        ],
                    ),
                )),
            ),
            (Basis::Replication, Some(14), Some(0.0)),
        ),
        (
            "the same 14 bytes behind a link down for 30 s: the window counts",
            World::new(
                Some((t(100), primary("5014"))),
                Some((t(100), replica("abc123", "5000", DOWN_30))),
            ),
            (Basis::Replication, Some(14), Some(30.0)),
        ),
        (
            "b ahead of a's last read (a read earlier): never negative",
            World::new(
                Some((t(100), primary("5000"))),
                Some((t(105), replica("abc123", "6000", UP))),
            ),
            (Basis::Replication, Some(0), Some(0.0)),
        ),
        (
            "another replication id and another primary: no replication",
            World::new(
                Some((t(100), primary("5000"))),
                Some((t(100), replica("other", "5000", UP))),
            ),
            (Basis::NoReplication, None, None),
        ),
        (
            "b is a primary of its own: no replication",
            World::new(
                Some((t(100), primary("5000"))),
                Some((t(100), primary("1"))),
            ),
            (Basis::NoReplication, None, None),
        ),
        (
            "b never read: no replication is known",
            World::new(Some((t(100), primary("5000"))), None),
            (Basis::NoReplication, None, None),
        ),
    ];
    for (name, world, expected) in rows {
        let e = world.estimate();
        assert_eq!(&figures(&e), expected, "{name}: {}", e.detail);
    }
}

#[test]
fn a_replica_of_a_by_address_whose_primary_was_never_read_is_unknown() {
    let mut world = World::new(None, Some((t(100), replica("x", "5000", DOWN_30))));
    world.a_status = Some(status("a", "10.0.0.9:6379", None));
    let e = world.estimate();
    assert_eq!(
        figures(&e),
        (Basis::Replication, None, None),
        "{}",
        e.detail
    );
    assert!(e.detail.contains("never read a's INFO"), "{}", e.detail);
    assert_eq!(Budget::STORE.check(&e), Err(Exceeded::Unknown));
}

#[test]
fn the_detail_says_what_each_figure_came_from() {
    let world = World::new(
        Some((t(100), primary("9000"))),
        Some((t(100), replica("abc123", "5000", DOWN_30))),
    );
    let d = world.estimate().detail;
    for needle in [
        "master_repl_offset 9000",
        "offset 5000",
        "link down for 30 s",
        "lower bound",
    ] {
        assert!(d.contains(needle), "{needle:?} not in {d}");
    }
}

fn crdb(source: SyncSource) -> ClusterView {
    ClusterView {
        read_at: Some(t(100)),
        databases: vec![Database {
            uid: 7,
            name: "orders-db".into(),
            status: "active".into(),
            crdt: true,
            shards: Vec::new(),
            sources: vec![source],
        }],
        ..ClusterView::default()
    }
}

fn source(status: SyncStatus, last_in_sync: Option<(SystemTime, u64)>) -> SyncSource {
    SyncSource {
        datacenter: Some(DatacenterId::new("a")),
        uri: "redis://a.example:12000".into(),
        status,
        lag: None,
        last_update: None,
        last_in_sync: last_in_sync.map(|(at, ms)| InSync {
            at,
            lag: Duration::from_millis(ms),
        }),
    }
}

#[test]
fn active_active_estimates() {
    let rows: &[(&str, SyncSource, Option<SystemTime>, Option<f64>)] = &[
        (
            "in sync at a's last state, 200 ms lag",
            source(SyncStatus::InSync, Some((t(100), 200))),
            Some(t(100)),
            Some(0.2),
        ),
        (
            "lagging: last in sync 20 s before a was last seen",
            source(SyncStatus::Syncing, Some((t(80), 500))),
            Some(t(100)),
            Some(20.5),
        ),
        (
            "out of sync since long ago",
            source(SyncStatus::OutOfSync, Some((t(10), 0))),
            Some(t(100)),
            Some(90.0),
        ),
        (
            "never seen in sync: unknown",
            source(SyncStatus::OutOfSync, None),
            Some(t(100)),
            None,
        ),
        (
            "a never seen: it may have written until now",
            source(SyncStatus::InSync, Some((t(100), 0))),
            None,
            Some(900.0),
        ),
    ];
    for (name, source, a_seen, seconds) in rows {
        let mut world = World::new(None, None);
        world.a_status = Some(status("a", "10.0.0.1:6379", None));
        world.a_cluster = a_seen.map(|at| ClusterView {
            read_at: Some(at),
            ..ClusterView::default()
        });
        world.b_cluster = Some(crdb(source.clone()));
        let e = world.estimate();
        assert_eq!(e.basis, Basis::ActiveActive, "{name}");
        assert_eq!(e.bytes, None, "{name}: the bytes are not known");
        assert_eq!(
            e.seconds.map(|s| s.as_secs_f64()),
            *seconds,
            "{name}: {}",
            e.detail
        );
    }
}

#[test]
fn active_active_takes_the_last_update_when_later() {
    let mut s = source(SyncStatus::InSync, Some((t(80), 0)));
    s.last_update = Some(t(95));
    let mut world = World::new(Some((t(100), primary("1"))), None);
    world.b_cluster = Some(crdb(s));
    assert_eq!(world.estimate().seconds, Some(Duration::from_secs(5)));
}

#[test]
fn a_database_without_a_source_in_a_is_no_replication() {
    let mut s = source(SyncStatus::InSync, Some((t(80), 0)));
    s.datacenter = Some(DatacenterId::new("c"));
    let mut world = World::new(Some((t(100), primary("1"))), None);
    world.b_cluster = Some(crdb(s));
    assert_eq!(world.estimate().basis, Basis::NoReplication);
}

fn est(basis: Basis, bytes: Option<u64>, seconds: Option<u64>) -> Estimate {
    Estimate {
        basis,
        bytes,
        seconds: seconds.map(Duration::from_secs),
        as_of: None,
        detail: String::new(),
    }
}

#[test]
fn the_budget_checks_the_bounds_it_can() {
    let bytes_only = Budget {
        bytes: Some(MIB),
        seconds: None,
    };
    let over = |bytes, seconds| Err(Exceeded::Over { bytes, seconds });
    let rows: &[(&str, Budget, Estimate, Result<(), Exceeded>)] = &[
        (
            "within both",
            Budget::STORE,
            est(Basis::Replication, Some(MIB), Some(10)),
            Ok(()),
        ),
        (
            "over in bytes",
            Budget::STORE,
            est(Basis::Replication, Some(MIB + 1), Some(1)),
            over(true, false),
        ),
        (
            "over in both",
            Budget::STORE,
            est(Basis::Replication, Some(3 * MIB), Some(14)),
            over(true, true),
        ),
        (
            "Active-Active: the bytes are not checked",
            Budget::STORE,
            est(Basis::ActiveActive, None, Some(3)),
            Ok(()),
        ),
        (
            "Active-Active against a bytes-only budget: nothing to check, hold",
            bytes_only,
            est(Basis::ActiveActive, None, Some(3)),
            Err(Exceeded::Unknown),
        ),
        (
            "replication with no figure: hold",
            Budget::STORE,
            est(Basis::Replication, None, None),
            Err(Exceeded::Unknown),
        ),
        (
            "no replication: the budget does not apply",
            Budget::STORE,
            est(Basis::NoReplication, None, None),
            Ok(()),
        ),
        (
            "unbounded: anything goes",
            Budget::UNBOUNDED,
            est(Basis::Replication, Some(u64::MAX), None),
            Ok(()),
        ),
    ];
    for (name, budget, estimate, expected) in rows {
        assert_eq!(&budget.check(estimate), expected, "{name}");
    }
}

#[test]
fn figures_read_as_people_write_them() {
    assert_eq!(Budget::STORE.to_string(), "1 MiB / 10 s");
    assert_eq!(Budget::UNBOUNDED.to_string(), "none");
    assert_eq!(show_bytes(812), "812 bytes");
    assert_eq!(show_bytes(3_355_443), "3.2 MiB");
    assert_eq!(show_seconds(Duration::from_millis(14_200)), "14.2 s");
    let e = est(Basis::Replication, Some(3_355_443), Some(14));
    assert_eq!(e.amount(), "about 3.2 MiB and 14 s");
}

#[test]
fn estimates_and_budgets_round_trip_through_json() {
    let e = Estimate {
        as_of: Some(t(5)),
        detail: "d".into(),
        ..est(Basis::Replication, Some(10), Some(3))
    };
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["basis"], "replication");
    assert_eq!(json["seconds"], 3.0);
    assert_eq!(serde_json::from_value::<Estimate>(json).unwrap(), e);
    let b = serde_json::to_value(Budget::STORE).unwrap();
    assert_eq!(b, serde_json::json!({ "bytes": MIB, "seconds": 10.0 }));
    assert_eq!(serde_json::from_value::<Budget>(b).unwrap(), Budget::STORE);
}
