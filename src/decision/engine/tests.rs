//! The engine's decision table, with fakes: a scripted prober, the in-memory DNS, the
//! recording notifier, and a real journal in a temporary directory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::actuators::hooks::ProcessHooks;
use crate::config::FailoverSettings;
use crate::config::HookSettings;
use crate::decision::incident::Trigger;
use crate::decision::policy::Hold;
use crate::decision::ports::dns::{MemoryDns, Op};
use crate::decision::ports::notifier::RecordingNotifier;
use crate::decision::ports::{AgentAlertName, FreshProbe, RecordRef, RecordType};
use crate::decision::ports::{RecordValue, SwitchPolicy};
use crate::decision::webhook::{AlertStatus, Candidate, Target};
use crate::model::{CollectError, Endpoint, EndpointKey};
use crate::model::{DatacenterId, Instance};

/// Answers per datacenter from a script (`true`: up and healthy); the last answer
/// repeats.
#[derive(Debug, Default)]
struct ScriptedProber {
    script: StdMutex<BTreeMap<String, VecDeque<bool>>>,
    /// Probes of east that report Sentinel failing over, from the first.
    sentinel_probes: StdMutex<u32>,
    /// Datacenters told `REPLICAOF NO ONE`.
    promoted: StdMutex<Vec<String>>,
    /// Datacenters that answer in 1 s when up (health 0.1).
    slow: StdMutex<Vec<String>>,
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
            sentinel_probes: StdMutex::new(0),
            promoted: StdMutex::new(Vec::new()),
            slow: StdMutex::new(Vec::new()),
            east_heard: StdMutex::new(None),
        })
    }

    fn east_heard(self: Arc<Self>, ago: Duration) -> Arc<Self> {
        *self.east_heard.lock().unwrap() = Some(ago);
        self
    }

    fn slow(self: Arc<Self>, dc: &str) -> Arc<Self> {
        self.slow.lock().unwrap().push(dc.to_owned());
        self
    }

    fn sentinel_failing_over_for(self: Arc<Self>, probes: u32) -> Arc<Self> {
        *self.sentinel_probes.lock().unwrap() = probes;
        self
    }
}

#[async_trait]
impl Prober for ScriptedProber {
    async fn probe(&self, endpoint: &Endpoint) -> FreshProbe {
        let sentinel = endpoint.key.datacenter.as_str() == "east" && {
            let mut left = self.sentinel_probes.lock().unwrap();
            let on = *left > 0;
            *left = left.saturating_sub(1);
            on
        };
        let mut script = self.script.lock().unwrap();
        let answers = script.get_mut(endpoint.key.datacenter.as_str()).unwrap();
        let up = if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers[0]
        };
        let mut probe = super::testkit::fresh(up);
        probe.sentinel_failover = sentinel;
        if endpoint.key.datacenter.as_str() == "east" {
            probe.sentinel_heard = *self.east_heard.lock().unwrap();
        }
        let slow = self.slow.lock().unwrap();
        if up && slow.iter().any(|d| d == endpoint.key.datacenter.as_str()) {
            probe.ping_latency = Some(Duration::from_secs(1));
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
    super::testkit::instance("cache")
}

fn record() -> RecordRef {
    RecordRef::new("Z1", "redis.example.com", RecordType::Cname)
}

struct Bed {
    engine: Engine,
    analysis: Arc<AnalysisStore>,
    dns: Arc<MemoryDns>,
    notifier: Arc<RecordingNotifier>,
    active: Arc<ActiveDatacenters>,
    dir: tempfile::TempDir,
    tracker: TaskTracker,
}

fn settings(auto: bool, no_failover: bool, hooks: HookSettings) -> Settings {
    let inst = instance();
    let values = inst
        .endpoints
        .iter()
        .map(|(dc, e)| (dc.clone(), e.host.clone()))
        .collect();
    let mut failover = FailoverSettings {
        auto,
        confirm_interval: Duration::from_millis(10),
        hooks,
        ..FailoverSettings::default()
    };
    failover.consecutive_threshold = 3;
    Settings {
        instances: [(inst.uid.clone(), inst)].into_iter().collect(),
        failover,
        records: [(
            InstanceId::new("cache"),
            InstanceRecord {
                record: record(),
                ttl: 60,
                values,
            },
        )]
        .into_iter()
        .collect(),
        no_failover,
        switch: SwitchPolicy {
            poll_interval: Duration::from_millis(10),
            ..SwitchPolicy::default()
        },
        ai_max_hold: Duration::from_secs(120),
        effect_window: (Duration::from_secs(900), Duration::from_secs(600)),
        limits: crate::config::Limits::default(),
    }
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
    let notifier = Arc::new(RecordingNotifier::new());
    let active = Arc::new(ActiveDatacenters::new());
    active.apply(&[instance()]);
    let tracker = TaskTracker::new();
    let analysis = Arc::new(AnalysisStore::new());
    let deps = Deps {
        prober,
        dns: Some(dns.clone()),
        notifier: Some(notifier.clone()),
        hooks: Arc::new(ProcessHooks),
        analysis: Arc::clone(&analysis),
        store: Arc::new(crate::model::SnapshotStore::new()),
        active: Arc::clone(&active),
        metrics: DecisionMetrics::default(),
        advisors,
    };
    let engine = Engine::open(
        dir.path(),
        settings,
        deps,
        tracker.clone(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    Bed {
        engine,
        analysis,
        dns,
        notifier,
        active,
        dir,
        tracker,
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
        starts_at: SystemTime::now(),
        ends_at: None,
    }
}

impl Bed {
    /// Waits for every evaluation to end; returns the newest incident.
    async fn settle(&self) -> Incident {
        for _ in 0..500 {
            let all = self.engine.history(10).await;
            if !all.is_empty() && all.iter().all(|i| i.outcome.is_some()) {
                return all[0].clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the evaluation did not finish: {:#?}",
            self.engine.history(10).await
        );
    }

    fn pointing_at(&self) -> String {
        self.dns.get(&record()).unwrap().values[0].clone()
    }
}

const DOWN: &[bool] = &[false];
const UP: &[bool] = &[true];

#[path = "advice_tests.rs"]
mod advice;
#[path = "recovery_tests.rs"]
mod recovery;

#[tokio::test]
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
    assert_eq!(b.dns.calls(Op::Upsert), 1);
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
    b.notices(1).await;
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverExecuted]);
    // A second alert is held by the cooldown.
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let second = b.settle().await;
    assert!(
        matches!(second.outcome, Some(Outcome::Held(Hold::Cooldown { .. }))),
        "{second:#?}"
    );
    assert_eq!(b.dns.calls(Op::Upsert), 1);
}

#[tokio::test]
async fn one_good_round_of_three_holds() {
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
    assert_eq!(b.dns.calls(Op::Upsert), 0);
    assert!(b.notifier.names().is_empty(), "a recovery is not news");
}

#[tokio::test]
async fn an_unhealthy_target_or_everything_down_holds() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", &[true, false, true])]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!(
        b.settle().await.outcome,
        Some(Outcome::Held(Hold::NoHealthyTarget))
    );

    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", DOWN)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!(b.settle().await.outcome, Some(Outcome::Held(Hold::AllDown)));
    assert_eq!(b.dns.calls(Op::Upsert), 0);
    b.notices(1).await;
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverHeld]);
}

#[tokio::test]
async fn a_primary_its_sentinel_still_hears_is_held_and_people_are_told_why() {
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
    assert_eq!(
        incident.outcome,
        Some(Outcome::Held(Hold::PartitionSuspected {
            active: DatacenterId::new("east"),
            sentinel_heard: Some(Duration::from_millis(700)),
        }))
    );
    // Each round records what east's Sentinel said.
    let round = incident
        .steps
        .iter()
        .find(|s| s.name == "probe_round")
        .expect("a probe round");
    assert!(
        round
            .evidence
            .to_string()
            .contains("\"sentinel_heard\":0.7"),
        "{round:#?}"
    );
    assert_eq!(b.dns.calls(Op::Upsert), 0);
    assert_eq!(b.pointing_at(), "redis-east.example.com");
    b.notices(1).await;
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverHeld]);
    let notice = &b.notifier.alerts()[0];
    let said = format!("{} {}", notice.summary, notice.description);
    assert!(said.contains("Sentinel had a PING reply"), "{said}");
}

#[tokio::test]
async fn without_automatic_failover_it_only_recommends() {
    for (auto, no_failover) in [(false, false), (true, true)] {
        let b = bed(
            ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
            settings(auto, no_failover, HookSettings::default()),
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
        assert_eq!(b.dns.calls(Op::Upsert), 0);
        b.notices(1).await;
        assert_eq!(
            b.notifier.names(),
            [AgentAlertName::RedisFailoverRecommended]
        );
    }
}

#[tokio::test]
async fn a_pre_failover_hook_can_veto() {
    let hooks = HookSettings {
        pre_failover: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo 'lag 30s' >&2; exit 1".into(),
        ]),
        ..HookSettings::default()
    };
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, hooks),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let i = b.settle().await;
    match &i.outcome {
        Some(Outcome::Held(Hold::Vetoed { detail })) => {
            assert!(detail.contains("lag 30s"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.dns.calls(Op::Upsert), 0);
}

#[tokio::test]
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
    assert_eq!(b.dns.calls(Op::Upsert), 1);
}

#[tokio::test]
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
    assert_eq!(b.dns.calls(Op::Upsert), 0);
}

/// A journal a previous run left behind.
#[tokio::test]
async fn sentinel_failing_over_inside_the_datacenter_holds_until_it_is_done() {
    // East is down while Sentinel promotes its replica (4 probes), then the new primary
    // answers: no cross-datacenter failover.
    let prober =
        ScriptedProber::new(&[("east", &[false, false, false, false, true]), ("west", UP)])
            .sentinel_failing_over_for(4);
    let b = bed(prober, settings(true, false, HookSettings::default())).await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let i = b.settle().await;
    assert!(
        matches!(i.outcome, Some(Outcome::Held(Hold::ActiveRecovered { .. }))),
        "{i:#?}"
    );
    assert!(i.steps.iter().any(|s| s.name == "sentinel_wait"), "{i:#?}");
    assert_eq!(b.dns.calls(Op::Upsert), 0);

    // Sentinel never finishes within sentinel_failover_wait: decide on the evidence.
    let mut s = settings(true, false, HookSettings::default());
    s.failover.sentinel_wait = Duration::from_millis(50);
    let prober =
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]).sentinel_failing_over_for(1000);
    let b = bed(prober, s).await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let i = b.settle().await;
    assert!(
        matches!(i.outcome, Some(Outcome::FailedOver { .. })),
        "{i:#?}"
    );
    assert!(i.steps.iter().any(|s| s.name == "sentinel_wait"), "{i:#?}");
    assert_eq!(b.dns.calls(Op::Upsert), 1);
}

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
