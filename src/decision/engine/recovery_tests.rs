//! Restarts on a journal left by an earlier run, and the way back home (failback).

use super::*;

fn seeded(records: &[Record]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open::<Record>(dir.path(), JournalLimits::default()).unwrap();
    for r in records {
        journal.append(r).unwrap();
    }
    dir
}

fn opened(incident: u64) -> Record {
    Record::Opened {
        incident,
        instance: InstanceId::new("cache"),
        trigger: Trigger {
            source: "alert".into(),
            name: "RedisActiveDatacenterDown".into(),
            fingerprint: "f1".into(),
            datacenter: None,
        },
        at: SystemTime::now(),
    }
}

#[tokio::test]
async fn a_restart_completes_what_was_started_and_never_writes_twice() {
    // A previous run recorded the intent; DNS had already moved when it stopped.
    let cache = InstanceId::new("cache");
    let dir = seeded(&[
        opened(4),
        Record::Intent {
            incident: 4,
            instance: cache,
            from: DatacenterId::new("east"),
            to: DatacenterId::new("west"),
            record: "redis.example.com".into(),
            values: vec!["redis-west.example.com".into()],
        },
    ]);
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
    assert_eq!(b.dns.calls(Op::Upsert), 0);
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
    assert_eq!(b.dns.calls(Op::Upsert), 0);
    drop(b.dir);
}

#[tokio::test]
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
    assert_eq!(b.dns.calls(Op::Upsert), 0);
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverFailed]);
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

#[tokio::test]
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
        let t0 = std::time::Instant::now();
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
            assert_eq!(b.dns.calls(Op::Upsert), 2);
        } else {
            assert_eq!(b.pointing_at(), "redis-west.example.com");
            assert_eq!(b.dns.calls(Op::Upsert), 1);
        }
    }
}
