//! The engine in a fleet, through a fleet's store in memory: who evaluates, the fence
//! before each act, the settlement, the hand-off of candidates, and what a new leader
//! does with an unsettled failover. The same behaviour against real etcd and agent
//! processes is in tests/fleet.rs.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::decision::fleet::{self, Handed, OpenAct, SharedInstance};
use crate::decision::incident::StepName;
use crate::decision::ports::{LeaderInfo, Leadership, Table, Term, Write};
use crate::decision::testkit::{MemoryCoordination, MemoryStore};

pub(super) const TERM: i64 = 9;

fn leader(store: &Arc<MemoryStore>) -> Arc<MemoryCoordination> {
    let c = Arc::new(MemoryCoordination::new("agent-a", Arc::clone(store)));
    c.set(Leadership::Leader { term: Term(TERM) });
    store.set_term(TERM);
    c
}

fn follower(store: &Arc<MemoryStore>) -> Arc<MemoryCoordination> {
    let c = Arc::new(MemoryCoordination::new("agent-b", Arc::clone(store)));
    c.set(Leadership::Follower {
        leader: Some(LeaderInfo {
            name: "agent-a".into(),
            term: Term(TERM),
        }),
    });
    c
}

async fn fleet_bed(prober: Arc<ScriptedProber>, coordination: Arc<MemoryCoordination>) -> Bed {
    fleet_bed_with(prober, coordination, "redis-east.example.com").await
}

async fn fleet_bed_with(
    prober: Arc<ScriptedProber>,
    coordination: Arc<MemoryCoordination>,
    pointing_at: &str,
) -> Bed {
    let dns =
        Arc::new(MemoryDns::new().with_record(&record(), RecordValue::single(pointing_at, 60)));
    bed_full(
        tempfile::tempdir().unwrap(),
        prober,
        settings(true, false, HookSettings::default()),
        dns,
        Advisors::default(),
        Some(coordination),
    )
    .await
}

/// Waits until `done`, at most 30 s of real time: paused time runs ahead whenever
/// the runtime idles, the journal's writer thread at work included, so it cannot
/// bound the wait.
pub(super) async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 30 s: {what}");
}

impl Bed {
    /// Stops the fleet's loop, then waits for every task.
    pub(super) async fn stop(&self) -> Vec<Incident> {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        self.engine.history(10).await
    }
}

pub(super) fn shared(store: &MemoryStore) -> Option<SharedInstance> {
    store
        .get(Table::Instances, "cache")
        .map(|v| fleet::decode(&v).unwrap())
}

/// The acts the leader fenced, in order.
fn fenced_acts(store: &MemoryStore) -> Vec<&'static str> {
    store
        .fenced()
        .iter()
        .flatten()
        .filter_map(|w| match w {
            Write::Put {
                table: Table::Instances,
                value,
                ..
            } => fleet::decode::<SharedInstance>(value).ok()?.open,
            _ => None,
        })
        .map(|open| open.act.as_str())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_follower_hands_its_deliveries_to_the_leader_and_evaluates_nothing() {
    let store = Arc::new(MemoryStore::default());
    let b = fleet_bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        follower(&store),
    )
    .await;
    let out = b
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!((out.handed, out.pending), (1, 0));
    assert!(out.opened.is_empty() && out.joined.is_empty());
    let handed: Handed = fleet::decode(&store.get(Table::Candidates, "cache").unwrap()).unwrap();
    assert_eq!(
        (handed.agent.as_str(), handed.trigger.name.as_str()),
        ("agent-b", "RedisActiveDatacenterDown")
    );
    tokio::time::sleep(FLEET_POLL * 5).await;
    assert!(b.stop().await.is_empty(), "a follower opens no incident");
    assert_eq!(b.dns.calls(Op::Write), 0);
    // And an operator's request is for the leader.
    let refused = b
        .engine
        .request(&InstanceId::new("cache"), None, true, "drill".into())
        .await;
    assert!(
        matches!(&refused, Err(EngineError::NotLeader { leader: Some(l) }) if l == "agent-a"),
        "{refused:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_leader_fences_every_act_and_settles_the_failover_in_the_store() {
    let store = Arc::new(MemoryStore::default());
    let b = fleet_bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        leader(&store),
    )
    .await;
    let out = b
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!(
        out.handed, 1,
        "the leader hands its own deliveries too: {out:?}"
    );
    until("the failover is settled", async || {
        shared(&store).is_some_and(|s| s.active.is_some())
    })
    .await;
    let history = b.stop().await;
    assert_eq!(history.len(), 1);
    let incident = &history[0];
    assert!(
        matches!(incident.outcome, Some(Outcome::FailedOver { .. })),
        "{incident:#?}"
    );
    let led = incident
        .led
        .as_ref()
        .expect("the incident names its leader");
    assert_eq!((led.agent.as_str(), led.term), ("agent-a", TERM));
    assert_eq!(b.pointing_at(), "redis-west.example.com");
    assert_eq!(b.dns.calls(Op::Write), 1);
    assert_eq!(
        fenced_acts(&store),
        ["dns"],
        "no hooks or promotion configured: one act"
    );
    let settled = shared(&store).unwrap();
    assert_eq!(settled.active, Some(DatacenterId::new("west")));
    assert!(
        settled.cooldown_until.is_some() && settled.open.is_none(),
        "{settled:?}"
    );
    assert_eq!(
        store.get(Table::Candidates, "cache"),
        None,
        "the candidate is answered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fence_refused_before_the_dns_change_stops_the_evaluation_and_writes_nothing() {
    let store = Arc::new(MemoryStore::default());
    let b = fleet_bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        leader(&store),
    )
    .await;
    // Another agent leads in the store now; this one has not noticed yet.
    store.set_term(TERM + 1);
    store.put_record(
        Table::Candidates,
        "cache",
        &fleet::encode(&Handed {
            trigger: crate::decision::incident::Trigger {
                source: "alert".into(),
                name: "RedisActiveDatacenterDown".into(),
                fingerprint: "f1".into(),
                datacenter: None,
            },
            agent: "agent-c".into(),
            at: crate::decision::testkit::t0(),
        }),
    );
    until("the evaluation closes", async || {
        b.engine
            .history(1)
            .await
            .first()
            .is_some_and(|i| i.outcome.is_some())
    })
    .await;
    let history = b.stop().await;
    let incident = &history[0];
    assert!(
        matches!(&incident.outcome, Some(Outcome::Interrupted { detail }) if detail.contains("not the leader")),
        "{incident:#?}"
    );
    let dns_step = incident
        .steps
        .iter()
        .find(|s| s.name == StepName::Dns)
        .unwrap();
    assert!(dns_step.detail.starts_with("not done"), "{dns_step:?}");
    assert_eq!(b.dns.calls(Op::Write), 0, "a refused fence writes nothing");
    assert_eq!(b.pointing_at(), "redis-east.example.com");
    assert!(
        store.get(Table::Candidates, "cache").is_some(),
        "left for the leader"
    );
}

fn unsettled(act: StepName) -> SharedInstance {
    SharedInstance {
        active: None,
        cooldown_until: None,
        open: Some(OpenAct {
            agent: "agent-c".into(),
            term: 5,
            incident: 3,
            from: DatacenterId::new("east"),
            to: DatacenterId::new("west"),
            act,
            at: crate::decision::testkit::t0(),
        }),
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_completes_a_failover_dns_shows_made_without_writing() {
    let store = Arc::new(MemoryStore::default());
    store.put_record(
        Table::Instances,
        "cache",
        &fleet::encode(&unsettled(StepName::Dns)),
    );
    let prober = ScriptedProber::new(&[("east", DOWN), ("west", UP)]);
    let b = fleet_bed_with(prober, leader(&store), "redis-west.example.com").await;
    until("the failover is completed", async || {
        shared(&store).is_some_and(|s| s.open.is_none())
    })
    .await;
    let history = b.stop().await;
    assert_eq!(history.len(), 1);
    let incident = &history[0];
    assert!(
        matches!(incident.outcome, Some(Outcome::FailedOver { .. })),
        "{incident:#?}"
    );
    assert_eq!(incident.steps[0].name, StepName::Recovery);
    assert!(
        incident.triggers[0].name.contains("agent-c"),
        "{:?}",
        incident.triggers
    );
    assert_eq!(b.dns.calls(Op::Write), 0, "never written twice");
    assert_eq!(
        b.active.get(&InstanceId::new("cache")),
        Some(DatacenterId::new("west"))
    );
    let settled = shared(&store).unwrap();
    assert_eq!(settled.active, Some(DatacenterId::new("west")));
    assert!(settled.cooldown_until.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_evaluates_afresh_when_the_change_was_not_made() {
    for act in [StepName::Dns, StepName::PreFailoverHook] {
        let store = Arc::new(MemoryStore::default());
        store.put_record(Table::Instances, "cache", &fleet::encode(&unsettled(act)));
        let prober = ScriptedProber::new(&[("east", DOWN), ("west", UP)]);
        let b = fleet_bed(prober, leader(&store)).await;
        until("the evaluation settles", async || {
            shared(&store).is_some_and(|s| s.open.is_none())
        })
        .await;
        let history = b.stop().await;
        assert_eq!(history.len(), 1, "{act:?}");
        let incident = &history[0];
        assert_eq!(incident.triggers[0].source, "fleet");
        assert!(
            incident
                .steps
                .iter()
                .any(|s| s.name == StepName::ProbeRound),
            "new probes"
        );
        assert!(
            matches!(incident.outcome, Some(Outcome::FailedOver { .. })),
            "{incident:#?}"
        );
        assert_eq!(b.dns.calls(Op::Write), 1, "{act:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_duplicates_to_each_of_two_agents_make_one_dns_change() {
    let store = Arc::new(MemoryStore::default());
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    );
    let mut beds = Vec::new();
    for coordination in [leader(&store), follower(&store)] {
        let prober = ScriptedProber::new(&[("east", DOWN), ("west", UP)]);
        let bed = bed_full(
            tempfile::tempdir().unwrap(),
            prober,
            settings(true, false, HookSettings::default()),
            Arc::clone(&dns),
            Advisors::default(),
            Some(coordination),
        )
        .await;
        beds.push(bed);
    }
    let mut deliveries = tokio::task::JoinSet::new();
    for bed in &beds {
        for _ in 0..20 {
            let engine = bed.engine.clone();
            deliveries.spawn(async move { engine.submit(&[alert(AlertStatus::Firing)]).await });
        }
    }
    while let Some(answer) = deliveries.join_next().await {
        assert_eq!(answer.unwrap().unwrap().handed, 1);
    }
    until("the failover is settled", async || {
        shared(&store).is_some_and(|s| s.active.is_some())
    })
    .await;
    tokio::time::sleep(FLEET_POLL * 5).await;
    let (led, followed) = (beds[0].stop().await, beds[1].stop().await);
    assert_eq!(dns.calls(Op::Write), 1);
    assert!(followed.is_empty());
    let failovers = led
        .iter()
        .filter(|i| matches!(i.outcome, Some(Outcome::FailedOver { .. })))
        .count();
    assert_eq!(failovers, 1, "{led:#?}");
}

#[tokio::test(start_paused = true)]
async fn with_the_store_down_a_delivery_waits_in_the_journal_and_is_handed_over_later() {
    let store = Arc::new(MemoryStore::default());
    store.set_down(true);
    let coordination = follower(&store);
    coordination.set(Leadership::Down);
    let b = fleet_bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        coordination,
    )
    .await;
    let out = b
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!((out.handed, out.pending), (0, 1), "answered, kept");
    tokio::time::sleep(FLEET_POLL * 3).await;
    assert_eq!(store.get(Table::Candidates, "cache"), None);
    store.set_down(false);
    until("the candidate is handed over", async || {
        store.get(Table::Candidates, "cache").is_some()
    })
    .await;
    until("the journal knows", async || {
        b.engine.inner.state.lock().await.ledger.pending.is_empty()
    })
    .await;
    b.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_cooldown_is_the_fleets_and_only_the_leader_lifts_it() {
    let store = Arc::new(MemoryStore::default());
    let cooling = SharedInstance {
        active: Some(DatacenterId::new("west")),
        cooldown_until: Some(crate::decision::testkit::t0() + Duration::from_secs(3600)),
        open: None,
    };
    store.put_record(Table::Instances, "cache", &fleet::encode(&cooling));
    let cache = InstanceId::new("cache");
    let f = fleet_bed(
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        follower(&store),
    )
    .await;
    let refused = f.engine.acknowledge(&cache).await;
    assert!(
        matches!(refused, Err(EngineError::NotLeader { .. })),
        "{refused:?}"
    );
    assert!(shared(&store).unwrap().cooldown_until.is_some());
    f.stop().await;

    // DNS agrees with the store: west.
    let prober = ScriptedProber::new(&[("east", UP), ("west", UP)]);
    let l = fleet_bed_with(prober, leader(&store), "redis-west.example.com").await;
    l.engine.acknowledge(&cache).await.unwrap();
    let lifted = shared(&store).unwrap();
    assert_eq!(lifted.cooldown_until, None);
    assert_eq!(
        lifted.active,
        Some(DatacenterId::new("west")),
        "the rest is kept"
    );
    l.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_first_leader_imports_a_single_agents_state_once() {
    // A single agent fails over to west, then joins a fleet with an empty store.
    let dir = tempfile::tempdir().unwrap();
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    );
    let prober = ScriptedProber::new(&[("east", DOWN), ("west", UP)]);
    let single = bed_in(
        dir,
        prober,
        settings(true, false, HookSettings::default()),
        dns.clone(),
    )
    .await;
    single
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert!(matches!(
        single.settle().await.outcome,
        Some(Outcome::FailedOver { .. })
    ));
    // The single agent stops: its journal is free for the fleet's agent.
    let Bed { engine, dir, .. } = single;
    drop(engine);

    let store = Arc::new(MemoryStore::default());
    let prober = ScriptedProber::new(&[("east", DOWN), ("west", UP)]);
    let fleet = bed_full(
        dir,
        prober,
        settings(true, false, HookSettings::default()),
        dns,
        Advisors::default(),
        Some(leader(&store)),
    )
    .await;
    until("the state is imported", async || {
        store.get(Table::Fleet, fleet::IMPORTED).is_some()
    })
    .await;
    assert_eq!(
        store.get(Table::Fleet, fleet::IMPORTED).as_deref(),
        Some("agent-a")
    );
    let imported = shared(&store).expect("the instance's record");
    assert_eq!(imported.active, Some(DatacenterId::new("west")));
    assert!(
        imported.cooldown_until.is_some(),
        "the cooldown comes along"
    );
    fleet.stop().await;

    // A store that holds a fleet's state keeps it: a second import writes nothing.
    let before = store.fenced().len();
    // DNS agrees with the store: west.
    let prober = ScriptedProber::new(&[("east", UP), ("west", UP)]);
    let other = fleet_bed_with(prober, leader(&store), "redis-west.example.com").await;
    tokio::time::sleep(FLEET_POLL * 3).await;
    other.stop().await;
    assert_eq!(store.fenced().len(), before, "{:?}", store.fenced());
    assert_eq!(
        shared(&store).unwrap().active,
        Some(DatacenterId::new("west"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_takes_dns_word_for_the_active_datacenter() {
    // Someone moved the record by hand while nobody led; the store still says east.
    let store = Arc::new(MemoryStore::default());
    let east = SharedInstance {
        active: Some(DatacenterId::new("east")),
        ..SharedInstance::default()
    };
    store.put_record(Table::Instances, "cache", &fleet::encode(&east));
    store.put_record(Table::Fleet, fleet::IMPORTED, "agent-c");
    let prober = ScriptedProber::new(&[("east", UP), ("west", UP)]);
    let b = fleet_bed_with(prober, leader(&store), "redis-west.example.com").await;
    until("the store follows DNS", async || {
        shared(&store).and_then(|s| s.active) == Some(DatacenterId::new("west"))
    })
    .await;
    assert_eq!(
        b.active.get(&InstanceId::new("cache")),
        Some(DatacenterId::new("west"))
    );
    assert!(b.stop().await.is_empty(), "no evaluation for it");
    assert_eq!(b.dns.calls(Op::Write), 0);
}

#[tokio::test(start_paused = true)]
async fn the_leader_holds_on_the_data_loss_budget_before_fencing_any_act() {
    let store = Arc::new(MemoryStore::default());
    let b = fleet_bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        leader(&store),
    )
    .await;
    super::data_loss_tests::west_behind_east(&b);
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    until("the evaluation closes", async || {
        b.engine
            .history(1)
            .await
            .first()
            .is_some_and(|i| i.outcome.is_some())
    })
    .await;
    let history = b.stop().await;
    let incident = &history[0];
    assert!(
        matches!(
            &incident.outcome,
            Some(Outcome::Held(Hold::DataLossBudget { .. }))
        ),
        "{incident:#?}"
    );
    assert!(fenced_acts(&store).is_empty(), "nothing was begun");
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(shared(&store).and_then(|s| s.active), None);
}
