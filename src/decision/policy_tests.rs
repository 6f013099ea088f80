//! The failover policy as a table: evidence in, verdict out.

use super::*;

const T: Thresholds = Thresholds {
    confidence: 0.95,
    sentinel_wait: Duration::from_secs(60),
};

fn dc(s: &str) -> DatacenterId {
    DatacenterId::new(s)
}

/// A round from `(datacenter, up, health)`.
fn round(probes: &[(&str, bool, f64)]) -> Round {
    Round {
        at: SystemTime::UNIX_EPOCH,
        probes: probes
            .iter()
            .map(|(d, up, health)| Probe {
                datacenter: dc(d),
                up: *up,
                health: *health,
                sentinel_failover: false,
                sentinel_heard: None,
            })
            .collect(),
        witnesses: None,
    }
}

fn judge_rounds(rounds: &[Round]) -> Verdict {
    let dcs = [dc("east"), dc("west"), dc("north")];
    judge(
        &Evidence {
            active: &dcs[0],
            datacenters: &dcs,
            rounds,
            sentinel_seen_for: None,
            clients: ClientStatus::Unknown,
        },
        T,
    )
}

fn outage() -> Round {
    round(&[
        ("east", false, 0.0),
        ("west", true, 0.95),
        ("north", true, 0.9),
    ])
}

#[test]
fn a_confirmed_outage_fails_over_to_the_healthiest_datacenter() {
    let v = judge_rounds(&[outage(), outage(), outage()]);
    assert_eq!(
        v,
        Verdict::Failover {
            target: dc("west"),
            confidence: 1.0
        }
    );
}

#[test]
fn one_good_round_of_k_holds() {
    let up = round(&[
        ("east", true, 0.9),
        ("west", true, 0.95),
        ("north", true, 0.9),
    ]);
    let v = judge_rounds(&[outage(), up, outage()]);
    assert_eq!(v, Verdict::Hold(Hold::ActiveRecovered { round: 2 }));
}

#[test]
fn a_target_unhealthy_in_any_round_is_never_chosen() {
    // west is the healthiest but dips below 0.5 once; north stays good.
    let dip = round(&[
        ("east", false, 0.0),
        ("west", true, 0.4),
        ("north", true, 0.85),
    ]);
    let v = judge_rounds(&[outage(), dip, outage()]);
    assert_eq!(
        v,
        Verdict::Failover {
            target: dc("north"),
            confidence: 1.0
        }
    );
    // ...and when every other datacenter dips, nobody is.
    let bad = round(&[
        ("east", false, 0.0),
        ("west", true, 0.4),
        ("north", false, 0.0),
    ]);
    assert_eq!(
        judge_rounds(&[outage(), bad, outage()]),
        Verdict::Hold(Hold::NoHealthyTarget)
    );
}

#[test]
fn all_datacenters_down_holds_with_its_own_reason() {
    let down = round(&[
        ("east", false, 0.0),
        ("west", false, 0.0),
        ("north", false, 0.0),
    ]);
    assert_eq!(
        judge_rounds(&[down.clone(), down.clone(), down]),
        Verdict::Hold(Hold::AllDown)
    );
}

#[test]
fn an_unknown_datacenter_or_a_missing_probe_is_never_a_target() {
    // north has no probe in the second round.
    let partial = round(&[("east", false, 0.0), ("west", true, 0.3)]);
    assert_eq!(
        judge_rounds(&[outage(), partial, outage()]),
        Verdict::Hold(Hold::NoHealthyTarget)
    );
}

#[test]
fn a_brownout_is_judged_by_confidence() {
    // Up but failing (health 0.2): severity 0.8, below the default 0.95.
    let slow = round(&[
        ("east", true, 0.2),
        ("west", true, 0.9),
        ("north", true, 0.9),
    ]);
    let v = judge_rounds(&[slow.clone(), slow.clone(), slow.clone()]);
    match v {
        Verdict::Hold(Hold::LowConfidence { confidence, .. }) => {
            assert!((confidence - 0.8).abs() < 1e-9, "{confidence}")
        }
        other => panic!("{other:?}"),
    }
    // An operator who lowers the threshold gets the failover.
    let dcs = [dc("east"), dc("west"), dc("north")];
    let rounds = [slow.clone(), slow.clone(), slow];
    let lenient = Thresholds {
        confidence: 0.75,
        ..T
    };
    let v = judge(
        &Evidence {
            active: &dcs[0],
            datacenters: &dcs,
            rounds: &rounds,
            sentinel_seen_for: None,
            clients: ClientStatus::Unknown,
        },
        lenient,
    );
    assert!(matches!(v, Verdict::Failover { .. }), "{v:?}");
}

fn judge_with_clients(rounds: &[Round], clients: ClientStatus) -> Verdict {
    let dcs = [dc("east"), dc("west"), dc("north")];
    judge(
        &Evidence {
            active: &dcs[0],
            datacenters: &dcs,
            rounds,
            sentinel_seen_for: None,
            clients,
        },
        T,
    )
}

#[test]
fn clients_as_usual_hold_as_a_suspected_partition_and_unknown_changes_nothing() {
    let rounds = [outage(), outage(), outage()];
    assert_eq!(
        judge_with_clients(&rounds, ClientStatus::Normal),
        Verdict::Hold(Hold::PartitionSuspected {
            active: dc("east"),
            sentinel_heard: None
        })
    );
    assert_eq!(
        judge_with_clients(&rounds, ClientStatus::Unknown),
        judge_rounds(&rounds)
    );
    // Everything looks down from here, yet the clients are fine: the agent is cut off.
    let down = round(&[
        ("east", false, 0.0),
        ("west", false, 0.0),
        ("north", false, 0.0),
    ]);
    let v = judge_with_clients(&[down.clone(), down], ClientStatus::Normal);
    assert!(matches!(v, Verdict::Hold(Hold::PartitionSuspected { .. })));
    // The clients never turn an active datacenter that answered into a failover.
    let fine = round(&[
        ("east", true, 0.9),
        ("west", true, 0.9),
        ("north", true, 0.9),
    ]);
    assert_eq!(
        judge_with_clients(&[fine], ClientStatus::Failing),
        Verdict::Hold(Hold::ActiveRecovered { round: 1 })
    );
}

/// An outage round in which east's Sentinel last heard its primary `heard_ms` ago.
fn outage_heard(heard_ms: Option<u64>) -> Round {
    let mut r = outage();
    r.probes[0].sentinel_heard = heard_ms.map(Duration::from_millis);
    r
}

#[test]
fn a_primary_its_sentinel_still_hears_is_held_as_a_suspected_partition() {
    let heard = |ms| Some(Duration::from_millis(ms));
    let rounds = [outage_heard(Some(400)), outage_heard(Some(600))];
    let hold = Hold::PartitionSuspected {
        active: dc("east"),
        sentinel_heard: heard(600),
    };
    // The last round counts; unknown or normal clients do not change it.
    assert_eq!(judge_rounds(&rounds), Verdict::Hold(hold.clone()));
    assert_eq!(
        judge_with_clients(&rounds, ClientStatus::Normal),
        Verdict::Hold(Hold::PartitionSuspected {
            active: dc("east"),
            sentinel_heard: None
        }),
        "the clients are the first witness"
    );
    let said = hold.describe();
    assert!(
        said.contains("east's Sentinel had a PING reply from it 0.6 s ago"),
        "{said}"
    );
    // Failing clients outweigh Sentinel: Redis may answer it and not them.
    assert!(matches!(
        judge_with_clients(&rounds, ClientStatus::Failing),
        Verdict::Failover { .. }
    ));
    // Not heard recently, heard only in an earlier round, or no Sentinel: the probes decide.
    for rounds in [
        [outage_heard(Some(400)), outage_heard(Some(1600))],
        [outage_heard(Some(400)), outage_heard(None)],
        [outage_heard(None), outage_heard(None)],
    ] {
        assert!(
            matches!(judge_rounds(&rounds), Verdict::Failover { .. }),
            "{rounds:?}"
        );
    }
    // A primary that answers the agent (a brownout) is judged on its health, not on this.
    let mut brownout = round(&[
        ("east", true, 0.2),
        ("west", true, 0.95),
        ("north", true, 0.9),
    ]);
    brownout.probes[0].sentinel_heard = heard(300);
    assert!(matches!(
        judge_rounds(&[brownout.clone(), brownout]),
        Verdict::Hold(Hold::LowConfidence { .. })
    ));
}

#[test]
fn the_sentinel_witness_reads_as_seconds_and_older_records_still_load() {
    let hold = Hold::PartitionSuspected {
        active: dc("east"),
        sentinel_heard: Some(Duration::from_millis(250)),
    };
    let json = serde_json::to_value(&hold).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"reason": "partition_suspected", "active": "east", "sentinel_heard": 0.25})
    );
    assert_eq!(serde_json::from_value::<Hold>(json).unwrap(), hold);
    // Written before the field existed.
    let old: Hold =
        serde_json::from_str(r#"{"reason": "partition_suspected", "active": "east"}"#).unwrap();
    assert_eq!(
        old,
        Hold::PartitionSuspected {
            active: dc("east"),
            sentinel_heard: None
        }
    );
    let probe: Probe = serde_json::from_str(
        r#"{"datacenter": "east", "up": false, "health": 0.0, "sentinel_failover": false}"#,
    )
    .unwrap();
    assert_eq!(probe.sentinel_heard, None);
}

#[test]
fn clients_failing_strengthen_a_brownout_past_the_threshold() {
    // Health 0.2: the probes alone give 0.8 (held); the clients' errors leave a
    // quarter of the doubt: 0.95.
    let slow = round(&[
        ("east", true, 0.2),
        ("west", true, 0.9),
        ("north", true, 0.9),
    ]);
    let rounds = [slow.clone(), slow.clone(), slow];
    assert!(matches!(
        judge_with_clients(&rounds, ClientStatus::Unknown),
        Verdict::Hold(Hold::LowConfidence { .. })
    ));
    match judge_with_clients(&rounds, ClientStatus::Failing) {
        Verdict::Failover { target, confidence } => {
            assert_eq!(target, dc("west"));
            assert!((confidence - 0.95).abs() < 1e-9, "{confidence}");
        }
        other => panic!("{other:?}"),
    }
    // A hard down is already certain; failing clients keep it at 1.
    let v = judge_with_clients(&[outage(), outage()], ClientStatus::Failing);
    assert_eq!(
        v,
        Verdict::Failover {
            target: dc("west"),
            confidence: 1.0
        }
    );
}

#[test]
fn a_degraded_target_costs_confidence() {
    let r = round(&[
        ("east", false, 0.0),
        ("west", true, 0.6),
        ("north", false, 0.0),
    ]);
    match judge_rounds(&[r.clone(), r.clone(), r]) {
        Verdict::Hold(Hold::LowConfidence { confidence, .. }) => {
            assert!(
                (confidence - (0.9 + 0.1 / 3.0)).abs() < 1e-9,
                "{confidence}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sentinel_failing_over_inside_the_datacenter_holds_then_decides() {
    let mut r = outage();
    r.probes[0].sentinel_failover = true;
    let dcs = [dc("east"), dc("west"), dc("north")];
    let rounds = [r.clone(), r.clone(), r];
    let with = |seen: Duration| {
        judge(
            &Evidence {
                active: &dcs[0],
                datacenters: &dcs,
                rounds: &rounds,
                sentinel_seen_for: Some(seen),
                clients: ClientStatus::Unknown,
            },
            T,
        )
    };
    assert_eq!(
        with(Duration::from_secs(10)),
        Verdict::Hold(Hold::SentinelFailover {
            waited: Duration::from_secs(10),
            wait: Duration::from_secs(60)
        })
    );
    // Sentinel did not finish within the bound: decide on the evidence.
    assert!(matches!(
        with(Duration::from_secs(61)),
        Verdict::Failover { .. }
    ));
}

#[test]
fn a_planned_move_needs_a_target_healthy_in_every_round() {
    let good = round(&[("east", true, 0.95), ("west", true, 0.9)]);
    let dip = round(&[("east", true, 0.95), ("west", true, 0.7)]);
    assert_eq!(
        judge_planned(&[good.clone(), good.clone()], &dc("east")),
        Verdict::Failover {
            target: dc("east"),
            confidence: 1.0
        }
    );
    assert_eq!(
        judge_planned(&[good, dip], &dc("west")),
        Verdict::Hold(Hold::NoHealthyTarget)
    );
    assert_eq!(
        judge_planned(&[], &dc("east")),
        Verdict::Hold(Hold::NoHealthyTarget)
    );
}

#[test]
fn guards_stop_unknown_instances_and_cooldowns() {
    let id = InstanceId::new("cache");
    let dcs = [dc("east"), dc("west")];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    let g = |datacenters, cooldown_until| {
        guard(&GuardInput {
            instance: &id,
            datacenters,
            cooldown_until,
            now,
        })
    };
    assert_eq!(g(None, None), Some(Hold::UnknownInstance));
    let until = now + Duration::from_secs(60);
    assert_eq!(g(Some(&dcs), Some(until)), Some(Hold::Cooldown { until }));
    assert_eq!(g(Some(&dcs), Some(now - Duration::from_secs(1))), None);
    assert_eq!(g(Some(&dcs), None), None);
}

#[test]
fn holds_describe_themselves() {
    let h = Hold::LowConfidence {
        confidence: 0.8,
        threshold: 0.95,
    };
    assert_eq!(h.describe(), "confidence 0.80 is below the threshold 0.95");
    assert_eq!(h.kind(), "low_confidence");
    assert_eq!(Hold::NoHealthyTarget.describe(), "no healthy target");
}

#[test]
fn observers_that_reach_the_active_datacenter_hold_a_partition_whatever_the_clients_say() {
    use crate::decision::ports::{View, Witnesses};
    let mut cut_off = round(&[
        ("east", false, 0.0),
        ("west", true, 0.9),
        ("north", true, 0.9),
    ]);
    cut_off.witnesses = Some(Witnesses {
        down: Vec::new(),
        up: vec!["agent-west".into(), "agent-north".into()],
        inside: vec!["agent-east".into()],
        quorum: 2,
        partition: true,
        views: Vec::<View>::new(),
    });
    let rounds = [cut_off.clone(), cut_off];
    let dcs = [dc("east"), dc("west"), dc("north")];
    for clients in [ClientStatus::Unknown, ClientStatus::Failing] {
        let verdict = judge(
            &Evidence {
                active: &dc("east"),
                datacenters: &dcs,
                rounds: &rounds,
                clients,
                sentinel_seen_for: None,
            },
            T,
        );
        let Verdict::Hold(hold) = verdict else {
            panic!("{clients:?}: {verdict:?}");
        };
        assert_eq!(hold.kind(), "partition_suspected");
        let said = hold.describe();
        assert!(
            said.contains("agent-east cannot reach east")
                && said.contains("agent-west, agent-north"),
            "{said}"
        );
    }
}
