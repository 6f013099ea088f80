//! The data-loss check through the runner: the estimate from the Enterprise store the
//! collector publishes to, the hold with its figures in the journal and the notice, and
//! an operator's forced failover that overrides it on record.

use super::*;
use crate::model::enterprise::{ClusterView, Database, InSync, SyncSource, SyncStatus};

/// West's Active-Active copy of `cache` was last in sync with east a minute before the
/// engine's clock starts.
pub(super) fn west_behind_east(b: &Bed) {
    let now = b.engine.inner.deps.clock.now();
    let source = SyncSource {
        datacenter: Some(DatacenterId::new("east")),
        uri: "redis://east.example:12000".into(),
        status: SyncStatus::OutOfSync,
        lag: None,
        last_update: None,
        last_in_sync: Some(InSync {
            at: now - Duration::from_secs(60),
            lag: Duration::from_millis(300),
        }),
    };
    let west = ClusterView {
        read_at: Some(now),
        databases: vec![Database {
            uid: 1,
            name: "cache".into(),
            status: "active".into(),
            crdt: true,
            shards: Vec::new(),
            sources: vec![source],
        }],
        ..ClusterView::default()
    };
    b.enterprise.publish(DatacenterId::new("west"), west);
    let east = ClusterView {
        read_at: Some(now),
        ..ClusterView::default()
    };
    b.enterprise.publish(DatacenterId::new("east"), east);
}

#[tokio::test(start_paused = true)]
async fn a_target_behind_by_more_than_the_budget_holds_with_the_figures() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    west_behind_east(&b);
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let incident = b.settle().await;
    let Some(Outcome::Held(hold @ Hold::DataLossBudget { estimate, .. })) = &incident.outcome
    else {
        panic!("{incident:#?}");
    };
    assert_eq!(hold.kind(), "data_loss_budget");
    let seconds = estimate.seconds.unwrap().as_secs_f64();
    assert!((60.0..61.0).contains(&seconds), "{estimate:?}");
    let step = incident.steps.last().unwrap();
    assert_eq!(step.name, crate::decision::incident::StepName::DataLoss);
    assert_eq!(step.evidence["estimate"]["basis"], "active_active");
    assert_eq!(b.pointing_at(), "redis-east.example.com");
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverHeld]);
    let told = &b.notifier.alerts()[0];
    assert!(
        told.summary
            .contains("west is behind east by about 60.3 s of writes"),
        "{}",
        told.summary
    );
    assert!(told.description.contains("the syncer from east to west"));
}

#[tokio::test(start_paused = true)]
async fn a_forced_failover_overrides_the_budget_and_says_so() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    west_behind_east(&b);
    b.engine
        .request(&InstanceId::new("cache"), None, true, "drill".into())
        .await
        .unwrap();
    let incident = b.settle().await;
    assert!(
        matches!(&incident.outcome, Some(Outcome::FailedOver { .. })),
        "{incident:#?}"
    );
    let step = incident
        .steps
        .iter()
        .find(|s| s.name.as_str() == "data_loss")
        .unwrap();
    assert_eq!(step.outcome.as_str(), "info");
    assert_eq!(step.evidence["overridden"], true);
    assert!(step.detail.contains("overridden by a forced failover"));
    assert_eq!(b.pointing_at(), "redis-west.example.com");
}
