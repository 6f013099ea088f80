//! Restarts on a journal left by an earlier run, and the way back home (failback).

use super::*;
use crate::decision::incident::StepName;
use crate::decision::testkit::t0;

fn seeded(records: &[Record]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open::<Record>(dir.path(), JournalLimits::default()).unwrap();
    for r in records {
        journal.append(r).unwrap();
    }
    dir
}

fn opened(incident: u64) -> Record {
    opened_at(incident, t0())
}

fn opened_at(incident: u64, at: SystemTime) -> Record {
    Record::Opened {
        incident,
        instance: InstanceId::new("cache"),
        trigger: Trigger {
            source: "alert".into(),
            name: "RedisActiveDatacenterDown".into(),
            fingerprint: "f1".into(),
            datacenter: None,
        },
        at,
        led: None,
    }
}

/// The DNS intent of a failover of cache from east to west.
fn intent(incident: u64) -> Record {
    Record::Intent {
        incident,
        instance: InstanceId::new("cache"),
        from: DatacenterId::new("east"),
        to: DatacenterId::new("west"),
        record: "redis.example.com".into(),
        values: vec!["redis-west.example.com".into()],
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_completes_what_was_started_and_never_writes_twice() {
    // A previous run recorded the intent; DNS had already moved when it stopped.
    let dir = seeded(&[opened(4), intent(4)]);
    let moved = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-west.example.com", 60)),
    );
    let b = bed_in(
        dir,
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
        moved,
    )
    .await;
    let i = b.engine.incident(4).await.unwrap();
    assert!(
        matches!(i.outcome, Some(Outcome::FailedOver { .. })),
        "{i:#?}"
    );
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(
        b.active.get(&InstanceId::new("cache")).unwrap().as_str(),
        "west"
    );
    // The cooldown holds the alert that is still firing.
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let next = b.settle().await;
    assert!(
        matches!(next.outcome, Some(Outcome::Held(Hold::Cooldown { .. }))),
        "{next:#?}"
    );
    assert_eq!(b.dns.calls(Op::Write), 0);
    drop(b.dir);
}

#[tokio::test(start_paused = true)]
async fn a_restart_before_the_change_records_an_interruption_and_changes_nothing() {
    let dir = seeded(&[opened(1)]);
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    );
    let b = bed_in(
        dir,
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
        dns,
    )
    .await;
    let i = b.engine.incident(1).await.unwrap();
    assert!(
        matches!(i.outcome, Some(Outcome::Interrupted { .. })),
        "{i:#?}"
    );
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverFailed]);
}

/// A failover of incident `id` closed `ago` ago, with or without its effect measured.
fn failed_over(id: u64, ago: Duration, measured: bool) -> Vec<Record> {
    let at = t0() - ago;
    let mut records = vec![
        opened_at(id, at),
        intent(id),
        Record::Applied {
            incident: id,
            instance: InstanceId::new("cache"),
            to: DatacenterId::new("west"),
            change: Some(format!("C{id}")),
        },
    ];
    if measured {
        records.push(Record::Step {
            incident: id,
            step: Step {
                name: StepName::FailoverEffect,
                outcome: crate::decision::incident::StepOutcome::Info,
                detail: "helped".into(),
                evidence: serde_json::Value::Null,
                at,
            },
        });
    }
    records.push(Record::Closed {
        incident: id,
        outcome: Outcome::FailedOver {
            from: DatacenterId::new("east"),
            to: DatacenterId::new("west"),
            confidence: 0.9,
        },
        at,
    });
    records
}

#[tokio::test(start_paused = true)]
async fn a_restart_measures_the_effect_of_a_recent_failover_the_previous_run_left_unmeasured() {
    let day = Duration::from_secs(24 * 60 * 60);
    let records: Vec<Record> = [
        failed_over(1, 2 * day, false),                 // too long ago
        failed_over(2, Duration::from_secs(30), true),  // measured before the restart
        failed_over(3, Duration::from_secs(20), false), // due: measured now
    ]
    .concat();
    let clients = Arc::new(crate::advisors::client_impact::FakeClientImpact::new());
    let cache = InstanceId::new("cache");
    clients.set(
        &cache,
        crate::advisors::client_impact::FakeClientImpact::failing(&cache),
    );
    let mut s = settings(true, false, HookSettings::default());
    s.effect_window = (Duration::from_secs(60), Duration::from_secs(5));
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-west.example.com", 60)),
    );
    let advisors = Advisors {
        client_impact: Some(clients.clone()),
        ai: None,
    };
    let b = bed_advised(
        seeded(&records),
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        s,
        dns,
        advisors,
    )
    .await;
    b.settle().await;
    let effect = b
        .engine
        .incident(3)
        .await
        .unwrap()
        .steps
        .into_iter()
        .find(|s| s.name == StepName::FailoverEffect);
    let effect = effect.expect("incident 3's effect is recorded");
    assert_eq!(effect.evidence["effect"], "worse", "{effect:#?}");
    // Only incident 3 was measured, over the 5 s after it closed, not the 5 s before now.
    let calls = clients.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let closed = b.engine.incident(3).await.unwrap().closed.unwrap();
    assert_eq!(calls[0].1.end, Some(closed + Duration::from_secs(5)));
    assert_eq!(calls[0].1.baseline, Duration::from_secs(60));
    for untouched in [1, 2] {
        let i = b.engine.incident(untouched).await.unwrap();
        let effects = i
            .steps
            .iter()
            .filter(|s| s.name.as_str() == "failover_effect");
        assert_eq!(effects.count(), usize::from(untouched == 2), "{i:#?}");
    }
    assert_eq!(b.dns.calls(Op::Write), 0);
}

fn healthy_home(b: &Bed, healthy: bool) {
    b.analysis.publish(
        EndpointKey::new("cache", "east"),
        crate::model::Analysis {
            anomaly: crate::model::AnomalyState::Disabled,
            health_score: if healthy { 0.95 } else { 0.3 },
            health_status: if healthy {
                crate::model::HealthStatus::Healthy
            } else {
                crate::model::HealthStatus::Failing
            },
            up: true,
        },
    );
}

#[tokio::test(start_paused = true)]
async fn a_stable_home_datacenter_brings_a_recommendation_then_with_auto_failback_the_way_back() {
    for auto_failback in [false, true] {
        let mut s = settings(true, false, HookSettings::default());
        s.failover.auto_failback = auto_failback;
        s.failover.cooldown = Duration::ZERO;
        s.failover.failback_stable_for = Duration::from_secs(600);
        let prober = ScriptedProber::new(&[("east", &[false, false, false, true]), ("west", UP)]);
        let b = bed(prober, s).await;
        b.engine
            .submit(&[alert(AlertStatus::Firing)])
            .await
            .unwrap();
        assert!(matches!(
            b.settle().await.outcome,
            Some(Outcome::FailedOver { .. })
        ));
        assert_eq!(b.pointing_at(), "redis-west.example.com");

        let mut since = BTreeMap::new();
        let t0 = b.engine.inner.deps.clock.now();
        // Home healthy, then a dip: the clock starts again.
        healthy_home(&b, true);
        b.engine.failback_round(&mut since, t0).await;
        healthy_home(&b, false);
        b.engine
            .failback_round(&mut since, t0 + Duration::from_secs(300))
            .await;
        healthy_home(&b, true);
        b.engine
            .failback_round(&mut since, t0 + Duration::from_secs(400))
            .await;
        b.engine
            .failback_round(&mut since, t0 + Duration::from_secs(900))
            .await;
        assert!(
            !b.notifier
                .names()
                .contains(&AgentAlertName::RedisFailbackRecommended),
            "only 500 s of the 600 s"
        );
        b.engine
            .failback_round(&mut since, t0 + Duration::from_secs(1001))
            .await;
        assert!(
            b.notifier
                .names()
                .contains(&AgentAlertName::RedisFailbackRecommended)
        );
        if auto_failback {
            let back = b.settle().await;
            assert!(
                matches!(&back.outcome, Some(Outcome::FailedOver { to, .. }) if to.as_str() == "east"),
                "{back:#?}"
            );
            assert_eq!(b.pointing_at(), "redis-east.example.com");
            assert_eq!(b.dns.calls(Op::Write), 2);
        } else {
            assert_eq!(b.pointing_at(), "redis-west.example.com");
            assert_eq!(b.dns.calls(Op::Write), 1);
        }
    }
}
