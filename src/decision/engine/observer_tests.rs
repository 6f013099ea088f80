//! Every agent an observer, through a fleet's store in memory: the leader's
//! confirmation rounds counted from every agent's view (`decision::quorum`).

use std::sync::Arc;

use super::fleet_tests::{TERM, shared, until};
use super::*;
use crate::decision::incident::StepName;
use crate::decision::ports::{Leadership, Term};
use crate::decision::testkit::{MemoryCoordination, MemoryStore};

/// Three agents on one store: `agent-east` (leading), `agent-west`, `agent-c` at a
/// witness, each with its own view of east and west.
async fn observers(
    store: &Arc<MemoryStore>,
    east_seen_by: [(&'static str, Option<&str>, bool); 3],
    dns: &Arc<MemoryDns>,
) -> Vec<(Bed, Arc<MemoryCoordination>)> {
    observers_of(store, &east_seen_by, dns, ObserverSettings::default()).await
}

/// The agents of `east_seen_by` on one store, the first leading, each with its own view
/// of east (west is up for all), counted as `counted` says.
async fn observers_of(
    store: &Arc<MemoryStore>,
    east_seen_by: &[(&'static str, Option<&str>, bool)],
    dns: &Arc<MemoryDns>,
    counted: ObserverSettings,
) -> Vec<(Bed, Arc<MemoryCoordination>)> {
    let mut beds = Vec::new();
    for (i, &(name, dc, east_up)) in east_seen_by.iter().enumerate() {
        let mut c = MemoryCoordination::new(name, Arc::clone(store));
        if let Some(dc) = dc {
            c = c.in_datacenter(dc);
        }
        let c = Arc::new(c);
        if i == 0 {
            c.set(Leadership::Leader { term: Term(TERM) });
            store.set_term(TERM);
        } else {
            c.set(Leadership::Follower { leader: None });
        }
        let east: &[bool] = if east_up { UP } else { DOWN };
        let prober = ScriptedProber::new(&[("east", east), ("west", UP)]);
        let bed = bed_full(
            tempfile::tempdir().unwrap(),
            prober,
            Settings {
                observers: counted.clone(),
                ..settings(true, false, HookSettings::default())
            },
            Arc::clone(dns),
            Advisors::default(),
            Some(c.clone()),
        )
        .await;
        beds.push((bed, c));
    }
    // Every agent has said it is there before the outage is delivered.
    tokio::time::sleep(FLEET_POLL * 2).await;
    beds
}

/// Delivers a firing candidate to `bed` and waits until its evaluation closes.
async fn evaluated(bed: &Bed) {
    bed.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    until("the evaluation closes", async || {
        bed.engine
            .history(1)
            .await
            .first()
            .is_some_and(|i| i.outcome.is_some())
    })
    .await;
}

fn east_dns() -> Arc<MemoryDns> {
    Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    )
}

#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_from_the_active_datacenter_holds_when_the_other_observers_reach_it() {
    let store = Arc::new(MemoryStore::default());
    let dns = east_dns();
    let beds: Vec<Bed> = observers(
        &store,
        [
            ("agent-east", Some("east"), false),
            ("agent-west", Some("west"), true),
            ("agent-c", None, true),
        ],
        &dns,
    )
    .await
    .into_iter()
    .map(|(bed, _)| bed)
    .collect();
    evaluated(&beds[0]).await;
    let incident = beds[0].engine.history(1).await.remove(0);
    let Some(Outcome::Held(hold)) = &incident.outcome else {
        panic!("{incident:#?}");
    };
    assert_eq!(hold.kind(), "partition_suspected");
    let said = hold.describe();
    assert!(
        said.contains("agent-east cannot reach east")
            && said.contains("agent-west")
            && said.contains("agent-c")
            && said.contains("0 of the 2 observers outside east"),
        "{said}"
    );
    // The round's record lists every observer's view.
    let round = incident
        .steps
        .iter()
        .find(|s| s.name == StepName::ProbeRound)
        .unwrap();
    let views = &round.evidence["witnesses"]["views"];
    assert_eq!(
        views.as_array().map(Vec::len),
        Some(3),
        "{}",
        round.evidence
    );
    assert_eq!(dns.calls(Op::Write), 0);
    for b in &beds {
        b.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_active_datacenter_down_for_the_observers_outside_it_fails_over() {
    let store = Arc::new(MemoryStore::default());
    let dns = east_dns();
    // The agent in east sees east answer from within; the two outside do not. Then it
    // dies: its observation goes with its lease, and nobody waits for its answer.
    let mut all = observers(
        &store,
        [
            ("agent-west", Some("west"), false),
            ("agent-east", Some("east"), true),
            ("agent-c", None, false),
        ],
        &dns,
    )
    .await;
    let (east, coordination) = all.remove(1);
    east.stop().await;
    coordination.lose_lease();
    let beds: Vec<Bed> = all.into_iter().map(|(bed, _)| bed).collect();
    beds[0]
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    until("the failover is settled", async || {
        shared(&store).is_some_and(|s| s.active == Some(DatacenterId::new("west")))
    })
    .await;
    let incident = beds[0].engine.history(1).await.remove(0);
    assert!(
        matches!(incident.outcome, Some(Outcome::FailedOver { .. })),
        "{incident:#?}"
    );
    let round = incident
        .steps
        .iter()
        .find(|s| s.name == StepName::ProbeRound)
        .unwrap();
    assert_eq!(
        round.evidence["witnesses"]["down"],
        serde_json::json!(["agent-west", "agent-c"])
    );
    assert_eq!(dns.calls(Op::Write), 1);
    for b in &beds {
        b.stop().await;
    }
}

/// `agent-east` in east, `agent-west` in west, `agent-c` at a witness: the fleet as
/// configured, with `quorum`.
fn configured(quorum: Option<usize>) -> ObserverSettings {
    ObserverSettings {
        agents: [
            ("agent-east", Some("east")),
            ("agent-west", Some("west")),
            ("agent-c", None),
        ]
        .into_iter()
        .map(|(name, dc)| (name.to_owned(), dc.map(DatacenterId::new)))
        .collect(),
        quorum,
    }
}

/// Three agents configured, `agent-c` dead (never there): `agent-west` leads and cannot
/// reach east, `agent-east` sees it answer from within.
async fn c_dead(quorum: Option<usize>) -> (Vec<Bed>, Arc<MemoryStore>, Arc<MemoryDns>) {
    let store = Arc::new(MemoryStore::default());
    let dns = east_dns();
    let beds = observers_of(
        &store,
        &[
            ("agent-west", Some("west"), false),
            ("agent-east", Some("east"), true),
        ],
        &dns,
        configured(quorum),
    )
    .await
    .into_iter()
    .map(|(bed, _)| bed)
    .collect::<Vec<_>>();
    evaluated(&beds[0]).await;
    (beds, store, dns)
}

#[tokio::test(start_paused = true)]
async fn one_observer_outside_is_no_quorum_of_the_configured_agents_when_the_third_is_dead() {
    let (beds, _store, dns) = c_dead(None).await;
    let incident = beds[0].engine.history(1).await.remove(0);
    let Some(Outcome::Held(hold)) = &incident.outcome else {
        panic!("{incident:#?}");
    };
    assert_eq!(hold.kind(), "partition_suspected");
    let said = hold.describe();
    assert!(
        said.contains("agent-west cannot reach east")
            && said.contains("but agent-east reach")
            && said.contains("1 of the 2 observers outside east"),
        "{said}"
    );
    // The notice names who saw east how.
    until("the notice is sent", async || {
        !beds[0].notifier.alerts().is_empty()
    })
    .await;
    let told = beds[0].notifier.alerts().remove(0).description;
    assert!(
        told.contains(
            "Observers of the active datacenter in the last confirmation round: down for \
             agent-west outside it (2 needed), answering for agent-east."
        ),
        "{told}"
    );
    assert_eq!(dns.calls(Op::Write), 0);
    for b in &beds {
        b.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn with_a_quorum_of_one_configured_one_observer_outside_confirms() {
    let (beds, store, dns) = c_dead(Some(1)).await;
    until("the failover is settled", async || {
        shared(&store).is_some_and(|s| s.active == Some(DatacenterId::new("west")))
    })
    .await;
    let incident = beds[0].engine.history(1).await.remove(0);
    assert!(
        matches!(incident.outcome, Some(Outcome::FailedOver { .. })),
        "{incident:#?}"
    );
    until("the notice is sent", async || {
        !beds[0].notifier.alerts().is_empty()
    })
    .await;
    let told = beds[0].notifier.alerts().remove(0).description;
    assert!(
        told.contains("down for agent-west outside it (1 needed), answering for agent-east."),
        "{told}"
    );
    assert_eq!(dns.calls(Op::Write), 1);
    for b in &beds {
        b.stop().await;
    }
}

/// West collected by this agent: up in 0.5 ms, a round every 5 s.
fn collected_west(store: &crate::model::SnapshotStore) {
    use crate::model::{EndpointKey, EndpointStatus, Round as Collected, Snapshot};
    let key = EndpointKey::new("cache", "west");
    let mut status = EndpointStatus::new(key, 1, "w:6379".into(), Duration::from_secs(5));
    store.register(status.clone());
    let finished = std::time::Instant::now();
    status.last_round = Some(Collected {
        finished,
        at: crate::decision::testkit::t0(),
        duration: Duration::from_millis(1),
        error: None,
    });
    status.last_success = Some(Arc::new(Snapshot {
        taken_at: crate::decision::testkit::t0(),
        finished,
        ping_latency: Duration::from_micros(512),
        info: Default::default(),
        cluster: None,
        sentinel_masters: Vec::new(),
    }));
    store.publish(status);
}

#[tokio::test(start_paused = true)]
async fn an_agent_publishes_what_it_sees_once_a_collection_round() {
    use crate::decision::fleet::{Observer, decode};
    use crate::decision::ports::Table;

    let store = Arc::new(MemoryStore::default());
    let c = MemoryCoordination::new("agent-east", Arc::clone(&store)).in_datacenter("east");
    c.set(Leadership::Follower { leader: None });
    let bed = bed_full(
        tempfile::tempdir().unwrap(),
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
        east_dns(),
        Advisors::default(),
        Some(Arc::new(c)),
    )
    .await;
    collected_west(&bed.store);
    let published = || -> Observer {
        decode(
            &store
                .get(Table::Observations, "agent-east")
                .expect("published"),
        )
        .unwrap()
    };
    tokio::time::sleep(FLEET_POLL + Duration::from_millis(100)).await;
    let first = published();
    assert_eq!(first.datacenter, Some(DatacenterId::new("east")));
    let west = &first.endpoints[&InstanceId::new("cache")][&DatacenterId::new("west")];
    assert!(west.up, "{first:?}");
    assert_eq!(west.latency_ms, Some(0.512));
    assert_eq!(west.at, crate::decision::testkit::t0());
    // Polled every second, published again only once the collection interval passed.
    tokio::time::sleep(FLEET_POLL * 3).await;
    assert_eq!(published().at, first.at);
    tokio::time::sleep(FLEET_POLL * 2).await;
    assert!(published().at > first.at);
    // The engine reads every agent's observation back for the status.
    assert_eq!(bed.engine.observations().unwrap()[0].agent, "agent-east");
    bed.stop().await;
}
