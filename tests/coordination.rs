//! The etcd adapter of `coordination` against a real three-member etcd on loopback:
//! one leader, takeover when the leader is cut off, fences refused to a deposed or
//! demoted leader, nobody leading without quorum. A lease TTL of 3 s: renewals every
//! 0.5 s, self-demotion 2 s after the last acknowledged renewal.

mod common;

use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use redis_failover_agent::coordination::config::{
    AgentSettings, CoordinationSettings, EtcdSettings,
};
use redis_failover_agent::coordination::etcd::EtcdCoordination;
use redis_failover_agent::decision::ports::{
    Coordination, FenceError, LeaderInfo, Leadership, Table, Term, Write,
};
use tokio::task::block_in_place;
use tokio_util::sync::CancellationToken;

use common::etcd::EtcdCluster;

const TTL: Duration = Duration::from_secs(3);
const PREFIX: &str = "/redis-failover-agent/test";

/// Each test runs its own three members; one at a time keeps the two cores free enough
/// for etcd's heartbeats.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn agent(name: &str, endpoints: Vec<String>, cancel: &CancellationToken) -> EtcdCoordination {
    let settings = CoordinationSettings {
        etcd: EtcdSettings {
            endpoints,
            prefix: PREFIX.into(),
            lease_ttl: TTL,
            auth: None,
            tls: None,
        },
        agent: AgentSettings {
            name: name.into(),
            datacenter: None,
        },
        agents: Vec::new(),
        quorum: None,
    };
    EtcdCoordination::start(&settings, cancel)
}

/// Waits until `agent`'s leadership satisfies `want`; panics naming `what` otherwise.
async fn wait_for(
    agent: &EtcdCoordination,
    within: Duration,
    what: &str,
    want: impl Fn(&Leadership) -> bool,
) -> Leadership {
    let mut rx = agent.leadership();
    let waited = tokio::time::timeout(within, rx.wait_for(|l| want(l)))
        .await
        .map(|seen| seen.map(|seen| seen.clone()));
    match waited {
        Ok(Ok(seen)) => seen,
        _ => panic!(
            "{}: {what} not within {within:?}; it sees {:?}",
            agent.agent(),
            now(agent)
        ),
    }
}

fn leading(l: &Leadership) -> bool {
    l.term().is_some()
}

fn following(leader: &str) -> impl Fn(&Leadership) -> bool + '_ {
    move |l| matches!(l, Leadership::Follower { leader: Some(info) } if info.name == leader)
}

/// The fenced record of step `id` of an incident, under `instances/`.
fn intent(id: &str) -> Vec<Write> {
    vec![Write::Put {
        table: Table::Instances,
        key: id.into(),
        value: record_of(id),
    }]
}

fn record_of(id: &str) -> String {
    format!("{{\"step\":\"dns\",\"id\":\"{id}\"}}")
}

fn now(agent: &EtcdCoordination) -> Leadership {
    agent.leadership().borrow().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_leads_and_the_others_name_it() {
    let _serial = SERIAL.lock().await;
    let cluster = block_in_place(EtcdCluster::start);
    let cancel = CancellationToken::new();
    let agents: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| agent(name, cluster.client_urls(), &cancel))
        .collect();
    let mut leader = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while leader.is_none() && Instant::now() < deadline {
        leader = agents.iter().find(|a| leading(&now(a)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = leader.expect("one agent leads within 10 s");
    let term = now(leader).term().unwrap();
    for other in agents.iter().filter(|a| a.agent() != leader.agent()) {
        let seen = wait_for(
            other,
            TTL,
            "following the leader",
            following(leader.agent()),
        )
        .await;
        assert_eq!(
            seen,
            Leadership::Follower {
                leader: Some(LeaderInfo {
                    name: leader.agent().into(),
                    term
                })
            }
        );
    }
    let leaders = agents.iter().filter(|a| leading(&now(a))).count();
    assert_eq!(leaders, 1, "exactly one leader");

    // A leader that stops (its adapter dropped) revokes its lease: a successor leads
    // within a renewal or two, not after the TTL.
    let leader_name = leader.agent().to_owned();
    let (gone, rest): (Vec<_>, Vec<_>) = agents.into_iter().partition(|a| a.agent() == leader_name);
    let stopped = Instant::now();
    drop(gone);
    let successor = tokio::select! {
        l = wait_for(&rest[0], TTL, "leading after the leader stopped", leading) => l,
        l = wait_for(&rest[1], TTL, "leading after the leader stopped", leading) => l,
    };
    println!(
        "takeover after the leader's adapter stopped: {:?}",
        stopped.elapsed()
    );
    assert!(successor.term().unwrap() > term, "a new term");
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_leads_within_the_ttl_when_the_leaders_etcd_dies() {
    let _serial = SERIAL.lock().await;
    let mut cluster = block_in_place(EtcdCluster::start);
    let cancel = CancellationToken::new();
    let urls = cluster.client_urls();
    // `a` talks to member 0 only, and leads first.
    let a = agent("a", vec![urls[0].clone()], &cancel);
    wait_for(&a, Duration::from_secs(10), "leading", leading).await;
    let b = agent("b", urls[1..].to_vec(), &cancel);
    let c = agent("c", urls[1..].to_vec(), &cancel);
    wait_for(&b, TTL, "following a", following("a")).await;
    wait_for(&c, TTL, "following a", following("a")).await;

    let cut = Instant::now();
    block_in_place(|| cluster.stop(0));
    let successor = tokio::select! {
        l = wait_for(&b, TTL * 4, "leading after a was cut off", leading) => l,
        l = wait_for(&c, TTL * 4, "leading after a was cut off", leading) => l,
    };
    let takeover = cut.elapsed();
    println!(
        "takeover after kill -9 of the leader's etcd member: {takeover:?} (lease TTL {TTL:?})"
    );
    assert!(
        !leading(&now(&a)),
        "a demoted itself before its successor led"
    );
    // The bound (TTL plus a second or two), with slack for a loaded machine and
    // for etcd's own election when member 0 was etcd's leader (etcd then renews every
    // lease for a full TTL: up to 7 s seen here).
    assert!(takeover < TTL * 2 + Duration::from_secs(3), "{takeover:?}");
    assert!(successor.term().is_some());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_fence_is_refused_and_the_new_leaders_is_recorded() {
    let _serial = SERIAL.lock().await;
    let cluster = block_in_place(EtcdCluster::start);
    let cancel = CancellationToken::new();
    let a = agent("a", cluster.client_urls(), &cancel);
    let old = wait_for(&a, Duration::from_secs(10), "leading", leading).await;
    let old = old.term().unwrap();
    a.fence(old, &intent("cache-1/1"))
        .await
        .expect("the leader's fence passes");

    // Another holder takes the leader key behind a's back (as if a's lease had expired
    // and a successor had won): a still believes it leads, etcd refuses its fence.
    let mut etcd = etcd_client::Client::connect(cluster.client_urls(), None)
        .await
        .unwrap();
    let key = format!("{PREFIX}/leader");
    let lease = etcd.lease_grant(3, None).await.unwrap().id();
    // Delete the key, then create it for the intruder: two requests, since etcd takes
    // one operation per key in a transaction. Should a win it back in between (it
    // campaigns every TTL/6), take it again.
    let mut taken = false;
    for _ in 0..10 {
        let held = etcd.get(key.as_str(), None).await.unwrap();
        if let Some(kv) = held.kvs().first() {
            let current = kv.create_revision();
            etcd.txn(
                Txn::new()
                    .when([Compare::create_revision(
                        key.as_str(),
                        CompareOp::Equal,
                        current,
                    )])
                    .and_then([TxnOp::delete(key.as_str(), None)]),
            )
            .await
            .unwrap();
        }
        let put = etcd
            .txn(
                Txn::new()
                    .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        key.as_str(),
                        "intruder",
                        Some(PutOptions::new().with_lease(lease)),
                    )]),
            )
            .await
            .unwrap();
        if put.succeeded() {
            taken = true;
            break;
        }
    }
    assert!(taken, "the intruder takes the leader key within 10 tries");
    let refused = a.fence(old, &intent("cache-1/2")).await;
    match refused {
        Err(FenceError::NotLeader { term, leader }) => {
            assert_eq!(term, old);
            // Named by etcd's answer, unless a's own round saw the intruder first.
            if let Some(leader) = leader {
                assert_eq!(leader.name, "intruder");
                assert!(leader.term > old);
            }
        }
        other => panic!("a deposed leader's fence must be refused: {other:?}"),
    }
    wait_for(&a, TTL, "following the intruder", following("intruder")).await;

    // The intruder goes; a leads again, in a new term, and its fence is recorded.
    etcd.lease_revoke(lease).await.unwrap();
    let new = wait_for(&a, TTL, "leading again", leading).await;
    let new = new.term().unwrap();
    assert!(new > old);
    assert!(matches!(
        a.fence(old, &intent("cache-1/3")).await,
        Err(FenceError::NotLeader { .. })
    ));
    a.fence(new, &intent("cache-1/4")).await.unwrap();
    let intents = etcd
        .get(
            format!("{PREFIX}/instances/"),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let recorded: Vec<(String, String)> = intents
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().to_owned(),
                kv.value_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (
                format!("{PREFIX}/instances/cache-1/1"),
                record_of("cache-1/1")
            ),
            (
                format!("{PREFIX}/instances/cache-1/4"),
                record_of("cache-1/4")
            ),
        ],
        "only the fences that passed wrote their intent"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_demotes_itself_before_its_lease_can_expire() {
    let _serial = SERIAL.lock().await;
    let cluster = block_in_place(EtcdCluster::start);
    let cancel = CancellationToken::new();
    let urls = cluster.client_urls();
    let a = agent("a", vec![urls[0].clone()], &cancel);
    let term = wait_for(&a, Duration::from_secs(10), "leading", leading)
        .await
        .term()
        .unwrap();
    let b = agent("b", urls[1..].to_vec(), &cancel);
    wait_for(&b, TTL, "following a", following("a")).await;

    // a's etcd stops answering (SIGSTOP): a cannot renew; its lease runs on in etcd.
    let frozen = Instant::now();
    cluster.freeze(0);
    wait_for(&a, TTL, "demoting itself", |l| !leading(l)).await;
    let demoted = frozen.elapsed();
    assert!(
        !leading(&now(&b)),
        "b must not lead before a has demoted itself"
    );
    assert!(matches!(
        a.fence(term, &intent("cache-1/1")).await,
        Err(FenceError::NotLeader { .. })
    ));
    wait_for(&b, TTL * 4, "leading after a's lease expired", leading).await;
    let taken = frozen.elapsed();
    println!("a demoted itself {demoted:?} after its etcd froze; b led after {taken:?}");
    assert!(
        demoted < TTL,
        "demoted before the lease could expire: {demoted:?}"
    );

    // a's etcd wakes up: a follows b, and its old term stays refused.
    cluster.thaw(0);
    wait_for(&a, TTL * 3, "following b", following("b")).await;
    assert!(matches!(
        a.fence(term, &intent("cache-1/2")).await,
        Err(FenceError::NotLeader { .. })
    ));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_quorum_nobody_leads_and_fences_fail() {
    let _serial = SERIAL.lock().await;
    let mut cluster = block_in_place(EtcdCluster::start);
    let cancel = CancellationToken::new();
    let a = agent("a", cluster.client_urls(), &cancel);
    let term = wait_for(&a, Duration::from_secs(10), "leading", leading)
        .await
        .term()
        .unwrap();
    let b = agent("b", cluster.client_urls(), &cancel);
    wait_for(&b, TTL, "following a", following("a")).await;

    let lost = Instant::now();
    block_in_place(|| {
        cluster.stop(1);
        cluster.stop(2);
    });
    // Within the TTL plus etcd's election timeout (the last member notices it has no
    // quorum) and a round.
    let bound = TTL + Duration::from_secs(3);
    wait_for(&a, bound, "down", |l| *l == Leadership::Down).await;
    wait_for(&b, bound, "down", |l| *l == Leadership::Down).await;
    println!(
        "both agents down {:?} after quorum was lost",
        lost.elapsed()
    );
    assert!(a.fence(term, &intent("cache-1/1")).await.is_err());
    tokio::time::sleep(TTL).await;
    assert_eq!(now(&a), Leadership::Down);
    assert_eq!(now(&b), Leadership::Down);

    block_in_place(|| {
        cluster.restart(1);
        cluster.restart(2);
    });
    let back = Instant::now();
    let new = tokio::select! {
        l = wait_for(&a, Duration::from_secs(15), "leading with quorum back", leading) => l,
        l = wait_for(&b, Duration::from_secs(15), "leading with quorum back", leading) => l,
    };
    println!("a leader again {:?} after quorum came back", back.elapsed());
    assert!(new.term().unwrap() > term);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_etcd_at_start_is_down_not_an_error() {
    let (_closed, port) = common::closed_port();
    let cancel = CancellationToken::new();
    let a = agent("a", vec![format!("http://127.0.0.1:{port}")], &cancel);
    // Several rounds fail (connection refused); the agent keeps running, down.
    tokio::time::sleep(TTL).await;
    assert_eq!(now(&a), Leadership::Down);
    let refused = a.fence(Term(1), &intent("cache-1/1")).await;
    assert!(matches!(refused, Err(FenceError::NotLeader { .. })));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_put_by_anyone_are_deleted_by_the_leader_only_if_not_delivered_again() {
    let _serial = SERIAL.lock().await;
    let cluster = block_in_place(EtcdCluster::start);
    let cancel = CancellationToken::new();
    let a = agent("a", cluster.client_urls(), &cancel);
    let term = wait_for(&a, Duration::from_secs(10), "leading", leading)
        .await
        .term()
        .unwrap();
    let b = agent("b", cluster.client_urls(), &cancel);
    wait_for(&b, TTL, "following a", following("a")).await;

    // A follower hands two candidates; the leader lists them with their revisions.
    let first = b.put(Table::Candidates, "cache-1", "one").await.unwrap();
    b.put(Table::Candidates, "cache/2", "two").await.unwrap();
    let listed = a.list(Table::Candidates).await.unwrap();
    let keys: Vec<_> = listed
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(keys, [("cache-1", "one"), ("cache/2", "two")]);
    assert_eq!(listed[0].revision, first);

    // cache-1 is delivered again after the leader read it: the fenced delete leaves it,
    // and the put beside it still applies.
    let again = b
        .put(Table::Candidates, "cache-1", "one again")
        .await
        .unwrap();
    assert!(again > first);
    let writes = [
        Write::DeleteUpTo {
            table: Table::Candidates,
            key: "cache-1".into(),
            revision: first,
        },
        Write::DeleteUpTo {
            table: Table::Candidates,
            key: "cache/2".into(),
            revision: listed[1].revision,
        },
        Write::Put {
            table: Table::Instances,
            key: "cache-1".into(),
            value: "settled".into(),
        },
    ];
    a.fence(term, &writes)
        .await
        .expect("the leader's fence passes");
    let left = a.list(Table::Candidates).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.value.as_str()).collect::<Vec<_>>(),
        ["one again"],
        "the newer delivery stays, the one read is gone"
    );
    let settled = b.list(Table::Instances).await.unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(
        (settled[0].key.as_str(), settled[0].value.as_str()),
        ("cache-1", "settled")
    );

    // A follower's fence writes nothing.
    let refused = b.fence(term, &writes[2..]).await;
    assert!(
        matches!(refused, Err(FenceError::NotLeader { .. })),
        "{refused:?}"
    );
    cancel.cancel();
}
