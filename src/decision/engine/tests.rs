//! The runner end to end, through fakes: a scripted prober, the in-memory DNS, the
//! recording notifier, and a real journal in a temporary directory. What the evaluation
//! decides is the core's decision table (`decision::evaluation`); these tests check the
//! wiring: the ports are called, the journal and the ledger follow, people are told.
//! Most run on tokio's paused time with a clock that follows it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::actuators::hooks::ProcessHooks;
use crate::decision::incident::Trigger;
use crate::decision::policy::Hold;
use crate::decision::ports::dns::{MemoryDns, Op};
use crate::decision::ports::notifier::RecordingNotifier;
use crate::decision::ports::{AgentAlertName, FreshProbe, RecordValue};
use crate::decision::settings::HookSettings;
use crate::decision::testkit::{record, settings};
use crate::decision::webhook::{AlertStatus, Candidate, Target};
use crate::model::{CollectError, Endpoint, EndpointKey};
use crate::model::{DatacenterId, Instance};

/// Answers per datacenter from a script (`true`: up and healthy); the last answer
/// repeats.
#[derive(Debug, Default)]
struct ScriptedProber {
    script: StdMutex<BTreeMap<String, VecDeque<bool>>>,
    /// Datacenters told `REPLICAOF NO ONE`.
    promoted: StdMutex<Vec<String>>,
    /// East's Sentinel last heard its primary this long before each probe.
    east_heard: StdMutex<Option<Duration>>,
}

impl ScriptedProber {
    fn new(script: &[(&str, &[bool])]) -> Arc<Self> {
        let map = script
            .iter()
            .map(|(dc, answers)| (dc.to_string(), answers.iter().copied().collect()))
            .collect();
        Arc::new(Self {
            script: StdMutex::new(map),
            promoted: StdMutex::new(Vec::new()),
            east_heard: StdMutex::new(None),
        })
    }

    fn east_heard(self: Arc<Self>, ago: Duration) -> Arc<Self> {
        *self.east_heard.lock().unwrap() = Some(ago);
        self
    }
}

#[async_trait]
impl Prober for ScriptedProber {
    async fn probe(&self, endpoint: &Endpoint) -> FreshProbe {
        let mut script = self.script.lock().unwrap();
        let answers = script.get_mut(endpoint.key.datacenter.as_str()).unwrap();
        let up = if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers[0]
        };
        let mut probe = crate::decision::testkit::fresh(up);
        if endpoint.key.datacenter.as_str() == "east" {
            probe.sentinel_heard = *self.east_heard.lock().unwrap();
        }
        probe
    }

    async fn promote(&self, endpoint: &Endpoint) -> Result<(), CollectError> {
        self.promoted
            .lock()
            .unwrap()
            .push(endpoint.key.datacenter.to_string());
        Ok(())
    }
}

fn instance() -> Instance {
    crate::decision::testkit::instance("cache")
}

struct Bed {
    engine: Engine,
    analysis: Arc<AnalysisStore>,
    /// The collector's latest rounds, as the engine reads them (nothing collects here).
    store: Arc<crate::model::SnapshotStore>,
    /// The Enterprise clusters' latest views, as the engine reads them.
    enterprise: Arc<crate::model::enterprise::EnterpriseStore>,
    dns: Arc<MemoryDns>,
    notifier: Arc<RecordingNotifier>,
    active: Arc<ActiveDatacenters>,
    dir: tempfile::TempDir,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

async fn bed_in(
    dir: tempfile::TempDir,
    prober: Arc<ScriptedProber>,
    settings: Settings,
    dns: Arc<MemoryDns>,
) -> Bed {
    bed_advised(dir, prober, settings, dns, Advisors::default()).await
}

async fn bed_advised(
    dir: tempfile::TempDir,
    prober: Arc<ScriptedProber>,
    settings: Settings,
    dns: Arc<MemoryDns>,
    advisors: Advisors,
) -> Bed {
    bed_full(dir, prober, settings, dns, advisors, None).await
}

async fn bed_full(
    dir: tempfile::TempDir,
    prober: Arc<ScriptedProber>,
    settings: Settings,
    dns: Arc<MemoryDns>,
    advisors: Advisors,
    coordination: Option<Arc<dyn Coordination>>,
) -> Bed {
    let notifier = Arc::new(RecordingNotifier::new());
    let active = Arc::new(ActiveDatacenters::new());
    active.apply(&[instance()]);
    let tracker = TaskTracker::new();
    let analysis = Arc::new(AnalysisStore::new());
    let store = Arc::new(crate::model::SnapshotStore::new());
    let enterprise = Arc::new(crate::model::enterprise::EnterpriseStore::new());
    let deps = Deps {
        prober,
        dns: Some(dns.clone()),
        notifier: Some(notifier.clone()),
        hooks: Arc::new(ProcessHooks),
        analysis: Arc::clone(&analysis),
        store: Arc::clone(&store),
        enterprise: Arc::clone(&enterprise),
        active: Arc::clone(&active),
        metrics: DecisionMetrics::default(),
        advisors,
        clock: Arc::new(crate::decision::testkit::TokioClock::new()),
        coordination,
    };
    let cancel = CancellationToken::new();
    let engine = Engine::open(dir.path(), settings, deps, tracker.clone(), cancel.clone())
        .await
        .unwrap();
    Bed {
        engine,
        analysis,
        store,
        enterprise,
        dns,
        notifier,
        active,
        dir,
        tracker,
        cancel,
    }
}

async fn bed(prober: Arc<ScriptedProber>, settings: Settings) -> Bed {
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    );
    bed_in(tempfile::tempdir().unwrap(), prober, settings, dns).await
}

fn alert(status: AlertStatus) -> Candidate {
    Candidate {
        target: Target::Instance("cache".into()),
        datacenter: Some("east".into()),
        alertname: "RedisActiveDatacenterDown".into(),
        fingerprint: "f1".into(),
        status,
        starts_at: crate::decision::testkit::t0(),
        ends_at: None,
    }
}

impl Bed {
    /// Waits for every task of the engine to end (evaluations, notices, effect
    /// measurements); returns the newest incident.
    async fn settle(&self) -> Incident {
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
        let all = self.engine.history(10).await;
        assert!(all.iter().all(|i| i.outcome.is_some()), "{all:#?}");
        all[0].clone()
    }

    fn pointing_at(&self) -> String {
        self.dns.get(&record()).unwrap().values[0].clone()
    }
}

const DOWN: &[bool] = &[false];
const UP: &[bool] = &[true];

#[path = "advice_tests.rs"]
mod advice;
#[path = "data_loss_tests.rs"]
mod data_loss_tests;
#[path = "fleet_tests.rs"]
mod fleet_tests;
#[path = "observer_tests.rs"]
mod observer_tests;
#[path = "recovery_tests.rs"]
mod recovery;

#[tokio::test(start_paused = true)]
async fn a_confirmed_outage_fails_over_once_and_says_so() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let out = b
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!(out.opened.len(), 1);
    let incident = b.settle().await;
    assert!(
        matches!(&incident.outcome, Some(Outcome::FailedOver { to, .. }) if to.as_str() == "west"),
        "{incident:#?}"
    );
    assert_eq!(b.pointing_at(), "redis-west.example.com");
    assert_eq!(b.dns.calls(Op::Write), 1);
    assert_eq!(
        b.active.get(&InstanceId::new("cache")).unwrap().as_str(),
        "west"
    );
    let names: Vec<&str> = incident.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "guard",
            "probe_round",
            "probe_round",
            "probe_round",
            "policy",
            "dns",
            "verify"
        ]
    );
    // The rounds were confirm_interval apart, on the engine's clock.
    let rounds: Vec<SystemTime> = incident
        .steps
        .iter()
        .filter(|s| s.name.as_str() == "probe_round")
        .map(|s| s.at)
        .collect();
    assert!(rounds[2].duration_since(rounds[0]).unwrap() >= Duration::from_millis(20));
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverExecuted]);
    // A second alert is held by the cooldown the journal recorded.
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let second = b.settle().await;
    assert!(
        matches!(second.outcome, Some(Outcome::Held(Hold::Cooldown { .. }))),
        "{second:#?}"
    );
    assert_eq!(b.dns.calls(Op::Write), 1);
}

/// Someone changes the record between the switch's read and its write: the
/// conditional write is refused, nothing is overwritten, and the incident fails saying
/// what the record holds now.
#[tokio::test(start_paused = true)]
async fn a_record_changed_behind_the_agent_is_not_overwritten() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let elsewhere = RecordValue::single("redis-elsewhere.example.com", 60);
    b.dns.change_after_next_read(&record(), Some(elsewhere));
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let incident = b.settle().await;
    let Some(Outcome::Failed { detail }) = &incident.outcome else {
        panic!("{incident:#?}");
    };
    assert!(
        detail.starts_with(
            "DNS change failed: stale: redis.example.com CNAME changed since it was read: \
             now redis-elsewhere.example.com (ttl 60 s), expected redis-east.example.com \
             (ttl 60 s); nothing written"
        ),
        "{detail}"
    );
    let dns_step = incident.steps.iter().find(|s| s.name.as_str() == "dns");
    assert_eq!(dns_step.map(|s| &s.detail), Some(detail), "{incident:#?}");
    assert_eq!(b.pointing_at(), "redis-elsewhere.example.com");
    assert_eq!(b.dns.calls(Op::Write), 1);
    assert!(b.dns.writes().is_empty());
    assert_eq!(
        b.active.get(&InstanceId::new("cache")).unwrap().as_str(),
        "east"
    );
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverFailed]);
}

#[tokio::test(start_paused = true)]
async fn a_recovery_is_not_news() {
    let b = bed(
        ScriptedProber::new(&[("east", &[false, true, false]), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let i = b.settle().await;
    assert_eq!(
        i.outcome,
        Some(Outcome::Held(Hold::ActiveRecovered { round: 2 }))
    );
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert!(b.notifier.names().is_empty(), "a recovery is not news");
}

#[tokio::test(start_paused = true)]
async fn a_hold_is_told_with_its_reason() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]).east_heard(Duration::from_millis(700)),
        settings(true, false, HookSettings::default()),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let incident = b.settle().await;
    assert!(
        matches!(
            incident.outcome,
            Some(Outcome::Held(Hold::PartitionSuspected { .. }))
        ),
        "{incident:#?}"
    );
    // The prober's view of Sentinel reaches the record.
    let round = &incident.steps[1];
    assert!(
        round
            .evidence
            .to_string()
            .contains("\"sentinel_heard\":0.7"),
        "{round:#?}"
    );
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(b.pointing_at(), "redis-east.example.com");
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverHeld]);
    let notice = &b.notifier.alerts()[0];
    let said = format!("{} {}", notice.summary, notice.description);
    assert!(said.contains("Sentinel had a PING reply"), "{said}");
}

#[tokio::test(start_paused = true)]
async fn a_recommendation_is_told_and_changes_nothing() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(false, false, HookSettings::default()),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let i = b.settle().await;
    assert!(
        matches!(i.outcome, Some(Outcome::WouldFailOver { .. })),
        "{i:#?}"
    );
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(
        b.notifier.names(),
        [AgentAlertName::RedisFailoverRecommended]
    );
}

#[tokio::test(start_paused = true)]
async fn many_concurrent_deliveries_make_one_change() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let engine = b.engine.clone();
        set.spawn(async move { engine.submit(&[alert(AlertStatus::Firing)]).await.unwrap() });
    }
    let results = set.join_all().await;
    let opened: usize = results.iter().map(|r| r.opened.len()).sum();
    let joined: usize = results.iter().map(|r| r.joined.len()).sum();
    assert_eq!((opened, joined), (1, 19));
    let i = b.settle().await;
    assert!(matches!(i.outcome, Some(Outcome::FailedOver { .. })));
    assert_eq!(i.triggers.len(), 20);
    assert_eq!(b.dns.calls(Op::Write), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resolved_alert_never_acts() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let out = b
        .engine
        .submit(&[alert(AlertStatus::Resolved)])
        .await
        .unwrap();
    assert_eq!((out.opened.len(), out.resolved), (0, 1));
    b.tracker.close();
    b.tracker.wait().await;
    assert!(b.engine.history(10).await.is_empty());
    assert_eq!(b.dns.calls(Op::Write), 0);
}

/// On real time: the hooks are real processes.
#[tokio::test]
async fn hooks_and_promotion_run_around_the_dns_change_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let hook = |name: &str| {
        Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "echo \"{name} $FROM_DATACENTER $TO_DATACENTER\" >> {}",
                log.display()
            ),
        ])
    };
    let hooks = HookSettings {
        pre_failover: hook("pre"),
        post_failover: hook("post"),
        ..HookSettings::default()
    };
    let mut s = settings(true, false, hooks);
    s.failover.promote.insert(InstanceId::new("cache"));
    let prober = ScriptedProber::new(&[("east", DOWN), ("west", UP)]);
    let b = bed(Arc::clone(&prober), s).await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let i = b.settle().await;
    assert!(
        matches!(i.outcome, Some(Outcome::FailedOver { .. })),
        "{i:#?}"
    );
    let names: Vec<&str> = i.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        &names[4..],
        [
            "policy",
            "pre_failover_hook",
            "promote",
            "dns",
            "post_failover_hook",
            "verify"
        ]
    );
    assert_eq!(*prober.promoted.lock().unwrap(), ["west"]);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "pre east west\npost east west\n"
    );
}

#[path = "hardening_tests.rs"]
mod hardening;
