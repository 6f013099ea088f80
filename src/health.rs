//! Health scores: a pure function of what the latest round saw.
//!
//! An endpoint's score starts at 1 and each problem takes away a share of what is left:
//! `score = (1 - p_latency) (1 - p_memory) (1 - p_hits) (1 - p_rejected) (1 - p_errors)
//! (1 - p_anomaly)`, each `p` in [0, 1]. So one severe problem pulls the score down on its
//! own, and several mild ones add up. An endpoint that did not answer scores 0.
//!
//! | input | no penalty at | penalty grows to |
//! |---|---|---|
//! | PING latency | 10 ms | 0.5 at 100 ms (seed 000's alert), 0.9 at 1 s |
//! | memory used / maxmemory (or system memory; only system memory under `allkeys-*`) | 80 % | 0.3 at 90 % (seed 000's alert), 0.8 at 100 % |
//! | hit ratio, with at least 1 lookup/s | 80 % | 0.3 at 50 % (seed 000's alert), 0.5 at 0 % |
//! | rejected connections | none | 0.5 at any |
//! | error replies / commands | 1 % | 0.5 at 10 % and above |
//! | anomaly score | the threshold | 0.5 at 1 |
//!
//! Status: `healthy` from 0.8, `degraded` from 0.5, `failing` above 0, `failed` at 0 (the
//! endpoint did not answer). A datacenter's score is the mean of its endpoints' scores,
//! and it is `failed` when all of them failed.
//!
//! Where the datacenter's Redis Enterprise cluster is read through its REST API, what
//! the API says of the endpoint's database takes its own share ([`cluster_penalty`]):
//! nodes not active (0.2 each, up to 0.6), the database not active (0.3), a master
//! shard not active (0.5) or replica shards (0.1 each, up to 0.3), and an Active-Active
//! syncer not in sync (0.2 while syncing, 0.3 out of sync). An API that does not answer
//! takes nothing away: Redis itself may be fine.
//!
//! This module is the one place health is scored. The anomaly engine calls it once per
//! collection round and publishes the results (endpoints and datacenters) to the
//! `AnalysisStore`; metrics and the API read the store, and the decision engine's fresh
//! probes go through [`probe`].

use std::collections::BTreeMap;

use crate::model::enterprise::{ClusterView, Database, SyncStatus};
use crate::model::{Analysis, DatacenterId, Health, HealthStatus};

/// What the score is computed from. `None` where the round could not tell (no previous
/// round for rates, no model for the anomaly score).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HealthInput {
    pub up: bool,
    pub ping_latency_ms: Option<f64>,
    pub memory_used_ratio: Option<f64>,
    /// Hit ratio and lookups per second over the last interval.
    pub hit_ratio: Option<(f64, f64)>,
    pub rejected_per_second: Option<f64>,
    /// Error replies and commands per second over the last interval.
    pub errors: Option<(f64, f64)>,
    /// Calibrated anomaly score and the threshold.
    pub anomaly: Option<(f64, f64)>,
}

/// Linear interpolation through (x, y) points, flat beyond the ends.
fn ramp(x: f64, points: &[(f64, f64)]) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

/// Each penalty with its name, for explanations.
pub fn penalties(input: &HealthInput) -> [(&'static str, f64); 6] {
    let latency = input.ping_latency_ms.map_or(0.0, |ms| {
        ramp(ms, &[(10.0, 0.0), (100.0, 0.5), (1000.0, 0.9)])
    });
    let memory = input
        .memory_used_ratio
        .map_or(0.0, |r| ramp(r, &[(0.8, 0.0), (0.9, 0.3), (1.0, 0.8)]));
    let hits = match input.hit_ratio {
        Some((ratio, lookups)) if lookups >= 1.0 => {
            ramp(ratio, &[(0.0, 0.5), (0.5, 0.3), (0.8, 0.0)])
        }
        _ => 0.0,
    };
    let rejected = match input.rejected_per_second {
        Some(r) if r > 0.0 => 0.5,
        _ => 0.0,
    };
    let errors = match input.errors {
        Some((errors, commands)) if commands > 0.0 => {
            ramp(errors / commands, &[(0.01, 0.0), (0.1, 0.5)])
        }
        Some((errors, _)) if errors > 0.0 => 0.5,
        _ => 0.0,
    };
    let anomaly = match input.anomaly {
        Some((score, threshold)) if score >= threshold && threshold < 1.0 => {
            0.5 * ((score - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
        }
        _ => 0.0,
    };
    [
        ("latency", latency),
        ("memory", memory),
        ("hit_ratio", hits),
        ("rejected_connections", rejected),
        ("error_replies", errors),
        ("anomaly", anomaly),
    ]
}

/// The health score of one endpoint, in [0, 1].
pub fn endpoint_score(input: &HealthInput) -> f64 {
    if !input.up {
        return 0.0;
    }
    penalties(input)
        .iter()
        .fold(1.0, |score, (_, p)| score * (1.0 - p.clamp(0.0, 1.0)))
}

/// The health of one endpoint after a full collection round.
pub fn endpoint(input: &HealthInput) -> Health {
    let score = endpoint_score(input);
    Health {
        score,
        status: status(score, input.up),
    }
}

/// The health of an endpoint in a confirmation round: what a fresh probe saw (only
/// latency and memory), capped by the latest full round's score when that round found
/// the endpoint up, so a quick PING does not hide what the full round knew (errors,
/// hits, anomalies). Down is 0.
pub fn probe(fresh: &HealthInput, latest: Option<&Analysis>) -> f64 {
    if !fresh.up {
        return 0.0;
    }
    let now = endpoint_score(fresh);
    match latest.filter(|a| a.up) {
        Some(a) => now.min(a.health_score),
        None => now,
    }
}

/// The share of an endpoint's health that its cluster's API takes away, in [0, 1]:
/// what the latest poll said of the cluster's nodes and of the endpoint's `database`
/// (its shards and syncers). 0 when the latest poll failed.
pub fn cluster_penalty(view: &ClusterView, database: Option<&Database>) -> f64 {
    if !view.is_fresh() {
        return 0.0;
    }
    let nodes_down = view.nodes.iter().filter(|n| !n.is_up()).count();
    let mut penalties = vec![(0.2 * nodes_down as f64).min(0.6)];
    if let Some(db) = database {
        penalties.push(if db.status == "active" { 0.0 } else { 0.3 });
        let (masters, replicas): (Vec<_>, Vec<_>) = db
            .shards
            .iter()
            .filter(|s| !s.is_up())
            .partition(|s| s.role == "master");
        penalties.push(if masters.is_empty() {
            (0.1 * replicas.len() as f64).min(0.3)
        } else {
            0.5
        });
        let syncers = db.sources.iter().map(|s| match s.status {
            SyncStatus::InSync => 0.0,
            SyncStatus::Syncing => 0.2,
            SyncStatus::OutOfSync | SyncStatus::Other(_) => 0.3,
        });
        penalties.push(syncers.fold(0.0, f64::max));
    }
    1.0 - penalties.iter().fold(1.0, |kept, p| kept * (1.0 - p))
}

/// `health` with a further share `penalty` taken away.
pub fn with_penalty(health: Health, penalty: f64, up: bool) -> Health {
    let score = health.score * (1.0 - penalty.clamp(0.0, 1.0));
    Health {
        score,
        status: status(score, up),
    }
}

/// The status a score stands for.
pub fn status(score: f64, up: bool) -> HealthStatus {
    if !up || score <= 0.0 {
        HealthStatus::Failed
    } else if score >= 0.8 {
        HealthStatus::Healthy
    } else if score >= 0.5 {
        HealthStatus::Degraded
    } else {
        HealthStatus::Failing
    }
}

/// A datacenter's health from its endpoints' (score, up) pairs; `None` for a datacenter
/// without endpoints.
pub fn datacenter(endpoints: &[(f64, bool)]) -> Option<Health> {
    if endpoints.is_empty() {
        return None;
    }
    let score = endpoints.iter().map(|(s, _)| s).sum::<f64>() / endpoints.len() as f64;
    let any_up = endpoints.iter().any(|(_, up)| *up);
    Some(Health {
        score,
        status: status(score, any_up),
    })
}

/// Every datacenter's health from its endpoints' (datacenter, score, up), across
/// instances; datacenters without endpoints are absent.
pub fn datacenters<'a>(
    endpoints: impl IntoIterator<Item = (&'a DatacenterId, f64, bool)>,
) -> BTreeMap<DatacenterId, Health> {
    let mut by_dc: BTreeMap<&DatacenterId, Vec<(f64, bool)>> = BTreeMap::new();
    for (dc, score, up) in endpoints {
        by_dc.entry(dc).or_default().push((score, up));
    }
    by_dc
        .into_iter()
        .filter_map(|(dc, e)| Some((dc.clone(), datacenter(&e)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AnomalyState;

    use HealthStatus::{Degraded, Failed, Failing, Healthy};

    fn healthy() -> HealthInput {
        HealthInput {
            up: true,
            ping_latency_ms: Some(0.5),
            memory_used_ratio: Some(0.3),
            hit_ratio: Some((0.95, 100.0)),
            rejected_per_second: Some(0.0),
            errors: Some((0.0, 1000.0)),
            anomaly: Some((0.4, 0.8)),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn endpoint_scores() {
        let bare = HealthInput {
            up: true,
            ..HealthInput::default()
        };
        let down = HealthInput {
            up: false,
            ..healthy()
        };
        let with = |f: fn(&mut HealthInput)| {
            let mut i = healthy();
            f(&mut i);
            i
        };
        // (case, input, score, status)
        let cases: Vec<(&str, HealthInput, f64, HealthStatus)> = vec![
            ("quiet and healthy", healthy(), 1.0, Healthy),
            ("nothing known but that it answers", bare, 1.0, Healthy),
            ("down", down, 0.0, Failed),
            (
                "latency 10 ms",
                with(|i| i.ping_latency_ms = Some(10.0)),
                1.0,
                Healthy,
            ),
            (
                "latency 100 ms",
                with(|i| i.ping_latency_ms = Some(100.0)),
                0.5,
                Degraded,
            ),
            (
                "latency 5 s",
                with(|i| i.ping_latency_ms = Some(5000.0)),
                0.1,
                Failing,
            ),
            (
                "memory 80 %",
                with(|i| i.memory_used_ratio = Some(0.8)),
                1.0,
                Healthy,
            ),
            (
                "memory 90 %",
                with(|i| i.memory_used_ratio = Some(0.9)),
                0.7,
                Degraded,
            ),
            (
                "memory 100 %",
                with(|i| i.memory_used_ratio = Some(1.0)),
                0.2,
                Failing,
            ),
            (
                "hit ratio 50 %",
                with(|i| i.hit_ratio = Some((0.5, 100.0))),
                0.7,
                Degraded,
            ),
            (
                "too few lookups to judge",
                with(|i| i.hit_ratio = Some((0.1, 0.5))),
                1.0,
                Healthy,
            ),
            (
                "rejected connections",
                with(|i| i.rejected_per_second = Some(0.1)),
                0.5,
                Degraded,
            ),
            (
                "1 % error replies",
                with(|i| i.errors = Some((10.0, 1000.0))),
                1.0,
                Healthy,
            ),
            (
                "10 % error replies",
                with(|i| i.errors = Some((100.0, 1000.0))),
                0.5,
                Degraded,
            ),
            (
                "anomaly below threshold",
                with(|i| i.anomaly = Some((0.79, 0.8))),
                1.0,
                Healthy,
            ),
            (
                "anomaly at 1",
                with(|i| i.anomaly = Some((1.0, 0.8))),
                0.5,
                Degraded,
            ),
            (
                "problems compound",
                with(|i| {
                    i.ping_latency_ms = Some(100.0);
                    i.memory_used_ratio = Some(0.9);
                }),
                0.35,
                Failing,
            ),
        ];
        for (case, input, score, status) in cases {
            let h = endpoint(&input);
            assert!(close(h.score, score), "{case}: score {}", h.score);
            assert!(close(endpoint_score(&input), score), "{case}");
            assert_eq!(h.status, status, "{case}");
        }
    }

    #[test]
    fn status_boundaries() {
        // (score, up, status)
        let cases = [
            (1.0, true, Healthy),
            (0.8, true, Healthy),
            (0.7999, true, Degraded),
            (0.5, true, Degraded),
            (0.4999, true, Failing),
            (0.35, true, Failing),
            (0.0, true, Failed),
            (0.0, false, Failed),
            (0.9, false, Failed),
        ];
        for (score, up, expected) in cases {
            assert_eq!(status(score, up), expected, "{score} up={up}");
        }
    }

    #[test]
    fn a_fresh_probe_is_capped_by_the_latest_round() {
        let analysis = |score: f64, up: bool| Analysis {
            anomaly: AnomalyState::Disabled,
            health_score: score,
            health_status: status(score, up),
            up,
        };
        let probe_at = |up: bool, ms: f64| HealthInput {
            up,
            ping_latency_ms: Some(ms),
            ..HealthInput::default()
        };
        // (case, fresh probe, latest analysis, health)
        let cases = [
            ("down", probe_at(false, 0.5), Some(analysis(1.0, true)), 0.0),
            ("no analysis yet", probe_at(true, 100.0), None, 0.5),
            (
                "the round knew worse",
                probe_at(true, 0.5),
                Some(analysis(0.3, true)),
                0.3,
            ),
            (
                "the probe sees worse",
                probe_at(true, 100.0),
                Some(analysis(0.9, true)),
                0.5,
            ),
            (
                "a round that found it down is ignored",
                probe_at(true, 0.5),
                Some(analysis(0.0, false)),
                1.0,
            ),
        ];
        for (case, fresh, latest, expected) in cases {
            let h = probe(&fresh, latest.as_ref());
            assert!(close(h, expected), "{case}: {h}");
        }
    }

    mod cluster {
        use std::time::{Duration, UNIX_EPOCH};

        use super::*;
        use crate::model::enterprise::{Node, Shard, SyncSource};

        fn view() -> ClusterView {
            ClusterView {
                polled_at: Some(UNIX_EPOCH),
                read_at: Some(UNIX_EPOCH),
                nodes: (1..=3)
                    .map(|uid| Node {
                        uid,
                        status: "active".into(),
                    })
                    .collect(),
                databases: vec![Database {
                    uid: 1,
                    name: "cache".into(),
                    status: "active".into(),
                    crdt: true,
                    shards: vec![
                        Shard {
                            uid: 1,
                            role: "master".into(),
                            status: "active".into(),
                        },
                        Shard {
                            uid: 2,
                            role: "slave".into(),
                            status: "active".into(),
                        },
                    ],
                    sources: vec![SyncSource {
                        datacenter: None,
                        uri: "redis://db.west:12000".into(),
                        status: SyncStatus::InSync,
                        lag: Some(Duration::from_millis(3)),
                        last_update: None,
                        last_in_sync: None,
                    }],
                }],
                ..ClusterView::default()
            }
        }

        fn penalty(change: impl FnOnce(&mut ClusterView)) -> f64 {
            let mut v = view();
            change(&mut v);
            let db = v.databases.first().cloned();
            cluster_penalty(&v, db.as_ref())
        }

        #[test]
        fn each_problem_the_api_reports_takes_its_share() {
            // (what, the change, the penalty)
            type Case = (&'static str, fn(&mut ClusterView), f64);
            let cases: [Case; 8] = [
                ("all well", |_| {}, 0.0),
                ("a node down", |v| v.nodes[0].status = "down".into(), 0.2),
                (
                    "four nodes down at most 0.6",
                    |v| {
                        v.nodes = (1..=4)
                            .map(|uid| Node {
                                uid,
                                status: "down".into(),
                            })
                            .collect()
                    },
                    0.6,
                ),
                (
                    "the master shard down",
                    |v| v.databases[0].shards[0].status = "inactive".into(),
                    0.5,
                ),
                (
                    "a replica shard down",
                    |v| v.databases[0].shards[1].status = "inactive".into(),
                    0.1,
                ),
                (
                    "the syncer syncing",
                    |v| v.databases[0].sources[0].status = SyncStatus::Syncing,
                    0.2,
                ),
                (
                    "the syncer out of sync",
                    |v| v.databases[0].sources[0].status = SyncStatus::OutOfSync,
                    0.3,
                ),
                (
                    "the API failing says nothing",
                    |v| {
                        v.error = Some("timeout".into());
                        v.nodes[0].status = "down".into();
                    },
                    0.0,
                ),
            ];
            for (what, change, expected) in cases {
                assert!(
                    close(penalty(change), expected),
                    "{what}: {}",
                    penalty(change)
                );
            }
            // Several problems add up as the endpoint's penalties do.
            let both = penalty(|v| {
                v.nodes[0].status = "down".into();
                v.databases[0].sources[0].status = SyncStatus::OutOfSync;
            });
            assert!(close(both, 1.0 - 0.8 * 0.7), "{both}");
        }

        #[test]
        fn a_penalty_lowers_the_score_and_the_status() {
            let healthy = Health {
                score: 1.0,
                status: Healthy,
            };
            let master_down = penalty(|v| v.databases[0].shards[0].status = "inactive".into());
            let got = with_penalty(healthy, master_down, true);
            assert_eq!(got.status, Degraded);
            assert!(close(got.score, 0.5));
            let got = with_penalty(healthy, 0.8, true);
            assert_eq!(got.status, Failing);
            // Without the database, only the nodes count.
            let mut v = view();
            v.databases[0].sources[0].status = SyncStatus::OutOfSync;
            assert!(close(cluster_penalty(&v, None), 0.0));
        }
    }

    #[test]
    fn datacenter_is_the_mean_and_fails_when_all_fail() {
        let health = |score, status| Some(Health { score, status });
        // (endpoints' (score, up), health)
        type Endpoints = &'static [(f64, bool)];
        let cases: [(Endpoints, Option<Health>); 4] = [
            (&[], None),
            (&[(0.0, false), (0.0, false)], health(0.0, Failed)),
            (&[(1.0, true), (0.0, false)], health(0.5, Degraded)),
            (&[(1.0, true), (0.9, true)], health(0.95, Healthy)),
        ];
        for (endpoints, expected) in cases {
            assert_eq!(datacenter(endpoints), expected, "{endpoints:?}");
        }
    }

    #[test]
    fn datacenters_group_endpoints_across_instances() {
        let (east, west) = (DatacenterId::new("east"), DatacenterId::new("west"));
        let got = datacenters([
            (&east, 1.0, true),
            (&west, 0.0, false),
            (&east, 0.5, true),
            (&west, 0.0, false),
        ]);
        let expected = BTreeMap::from([
            (
                east.clone(),
                Health {
                    score: 0.75,
                    status: Degraded,
                },
            ),
            (
                west.clone(),
                Health {
                    score: 0.0,
                    status: Failed,
                },
            ),
        ]);
        assert_eq!(got, expected);
        assert!(datacenters([]).is_empty());
    }
}
