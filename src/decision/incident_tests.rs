use super::*;

const COOLDOWN: Duration = Duration::from_secs(600);

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn trigger() -> Trigger {
    Trigger {
        source: "alert".into(),
        name: "RedisActiveDatacenterDown".into(),
        fingerprint: "abc".into(),
        datacenter: Some(DatacenterId::new("east")),
    }
}

fn failover_records() -> Vec<Record> {
    let cache = InstanceId::new("cache");
    let (east, west) = (DatacenterId::new("east"), DatacenterId::new("west"));
    vec![
        Record::Opened {
            incident: 7,
            instance: cache.clone(),
            trigger: trigger(),
            at: t(0),
            led: None,
        },
        Record::Joined {
            incident: 7,
            trigger: trigger(),
        },
        Record::Step {
            incident: 7,
            step: Step {
                name: StepName::Policy,
                outcome: StepOutcome::Ok,
                detail: "fail over to west".into(),
                evidence: serde_json::Value::Null,
                at: t(6),
            },
        },
        Record::Intent {
            incident: 7,
            instance: cache.clone(),
            from: east.clone(),
            to: west.clone(),
            record: "redis.example.com".into(),
            values: vec!["west.example.com".into()],
        },
        Record::Applied {
            incident: 7,
            instance: cache.clone(),
            to: west.clone(),
            change: Some("C1".into()),
        },
        Record::Closed {
            incident: 7,
            outcome: Outcome::FailedOver {
                from: east,
                to: west,
                confidence: 1.0,
            },
            at: t(8),
        },
    ]
}

#[test]
fn a_failover_moves_the_instance_and_starts_its_cooldown() {
    let mut l = Ledger::default();
    for r in failover_records() {
        l.apply(&r, COOLDOWN);
    }
    let cache = InstanceId::new("cache");
    assert_eq!(l.active[&cache].as_str(), "west");
    assert_eq!(l.cooldown_until[&cache], t(6) + COOLDOWN);
    assert!(l.open.is_empty());
    assert_eq!(l.history.len(), 1);
    assert_eq!(l.history[0].triggers.len(), 2);
    assert_eq!(l.next_id, 8);
    // An acknowledgement lifts the cooldown.
    l.apply(
        &Record::Acknowledged {
            instance: cache.clone(),
            at: t(9),
        },
        COOLDOWN,
    );
    assert!(!l.cooldown_until.contains_key(&cache));
}

#[test]
fn an_interrupted_incident_stays_open_with_its_intent() {
    let mut l = Ledger::default();
    for r in &failover_records()[..4] {
        l.apply(r, COOLDOWN);
    }
    let open = l.open_for(&InstanceId::new("cache")).unwrap();
    assert!(open.intent.is_some() && !open.applied);
    assert!(l.active.is_empty(), "nothing is known to have changed");
}

#[test]
fn step_names_and_outcomes_are_written_as_their_names() {
    for name in StepName::ALL {
        assert_eq!(serde_json::to_value(name).unwrap(), name.as_str());
    }
    for outcome in [
        StepOutcome::Ok,
        StepOutcome::Hold,
        StepOutcome::Info,
        StepOutcome::Failed,
    ] {
        assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
    }
}

#[test]
fn records_round_trip_through_json() {
    for r in failover_records() {
        let json = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "{json}");
    }
    let held = Record::Closed {
        incident: 1,
        outcome: Outcome::Held(Hold::NoHealthyTarget),
        at: t(0),
    };
    let json = serde_json::to_string(&held).unwrap();
    assert!(json.contains("\"reason\":\"no_healthy_target\""), "{json}");
    assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), held);
}

#[test]
fn a_snapshot_rebuilds_the_same_ledger() {
    let mut l = Ledger::default();
    for r in failover_records() {
        l.apply(&r, COOLDOWN);
    }
    // And an incident still open.
    for r in &failover_records()[..3] {
        let r = match r.clone() {
            Record::Opened {
                instance,
                trigger,
                at,
                ..
            } => Record::Opened {
                incident: 9,
                instance,
                trigger,
                at,
                led: None,
            },
            Record::Joined { trigger, .. } => Record::Joined {
                incident: 9,
                trigger,
            },
            Record::Step { step, .. } => Record::Step { incident: 9, step },
            other => other,
        };
        l.apply(&r, COOLDOWN);
    }
    let mut again = Ledger::default();
    for r in l.snapshot() {
        again.apply(&r, COOLDOWN);
    }
    assert_eq!(again.active, l.active);
    assert_eq!(again.cooldown_until, l.cooldown_until);
    assert_eq!(again.history, l.history);
    assert_eq!(again.open, l.open);
    assert_eq!(again.next_id, l.next_id);
}

#[test]
fn the_history_keeps_at_most_max_history_closed_incidents() {
    let mut l = Ledger::new(3);
    for id in 1..=5 {
        l.apply(
            &Record::Opened {
                incident: id,
                instance: InstanceId::new("cache"),
                trigger: trigger(),
                at: t(id),
                led: None,
            },
            COOLDOWN,
        );
        l.apply(
            &Record::Closed {
                incident: id,
                outcome: Outcome::Resolved,
                at: t(id),
            },
            COOLDOWN,
        );
    }
    let ids: Vec<u64> = l.history.iter().map(|i| i.id).collect();
    assert_eq!(ids, [3, 4, 5]);
    assert_eq!(Ledger::default().max_history, 200);
}

#[test]
fn labels_are_cut_at_a_char_boundary_with_a_marker() {
    assert_eq!(cut_label("short", 256), "short");
    let huge = "é".repeat(1 << 19);
    let cut = cut_label(&huge, 256);
    assert!(cut.len() <= 256, "{}", cut.len());
    assert!(cut.ends_with(CUT_MARKER));
    assert!(cut.trim_end_matches(CUT_MARKER).chars().all(|c| c == 'é'));
    assert_eq!(cut_label("abcdefghijkl", 10), format!("ab{CUT_MARKER}"));
}
