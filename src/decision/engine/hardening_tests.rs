//! Hostile or careless input and lost futures: nothing a caller drops is lost, a lost
//! journal is visible, DNS is read on start, and what a delivery may open is bounded.

use super::*;
use crate::decision::journal::Opening;
use crate::decision::ports::AdapterErrorKind;
use crate::decision::testkit::NoHooks;

fn firing_about(uid: &str) -> Candidate {
    Candidate {
        target: Target::Instance(uid.into()),
        ..alert(AlertStatus::Firing)
    }
}

/// Lines of the live journal whose record has `"type":"<kind>"`.
fn journal_lines(dir: &std::path::Path, kind: &str) -> usize {
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    text.lines()
        .filter(|l| l.contains(&format!(r#""type":"{kind}""#)))
        .count()
}

#[tokio::test]
async fn a_submit_dropped_mid_append_loses_nothing_and_the_next_one_is_recorded() {
    // East answers: every evaluation holds, so incidents open, join and close in turn.
    let b = bed(
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let mut dropped = 0;
    for i in 0..60u64 {
        // From "before the first poll ends" to "during the fsync".
        let wait = Duration::from_micros(i * 20);
        let candidates = [alert(AlertStatus::Firing)];
        let submit = b.engine.submit(&candidates);
        if tokio::time::timeout(wait, submit).await.is_err() {
            dropped += 1;
        }
    }
    assert!(
        dropped > 0,
        "no submit was dropped; the test proves nothing"
    );
    // Before the fix this answered "the decision journal was lost by an earlier failure".
    let out = b
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    assert_eq!(out.opened.len() + out.joined.len(), 1);
    assert!(b.engine.journal_healthy());
    b.settle().await;
    // Every trigger on disk is in the ledger, and every opened incident was evaluated.
    let all = b.engine.history(usize::MAX).await;
    let triggers: usize = all.iter().map(|i| i.triggers.len()).sum();
    let on_disk = journal_lines(b.dir.path(), "opened") + journal_lines(b.dir.path(), "joined");
    assert_eq!(triggers, on_disk);
    assert!(all.iter().all(|i| i.outcome.is_some()), "{all:#?}");
}

#[tokio::test]
async fn an_aborted_operator_request_still_starts_its_evaluation() {
    let b = bed(
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    for _ in 0..20 {
        let engine = b.engine.clone();
        let task = tokio::spawn(async move {
            engine
                .request(&InstanceId::new("cache"), None, false, "drill".into())
                .await
        });
        tokio::task::yield_now().await;
        task.abort();
    }
    b.engine
        .acknowledge(&InstanceId::new("cache"))
        .await
        .unwrap();
    let i = b.settle().await;
    assert!(i.outcome.is_some());
    let all = b.engine.history(usize::MAX).await;
    assert_eq!(all.len(), journal_lines(b.dir.path(), "opened"));
}

#[tokio::test]
async fn a_lost_journal_fails_readyz_and_sets_the_gauge() {
    let b = bed(
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let metrics = b.engine.inner.deps.metrics.clone();
    assert_eq!(metrics.journal_healthy_value(), 1);
    let state = crate::api::AppState {
        metrics: Arc::new(crate::metrics::Metrics::new(
            Arc::new(crate::model::SnapshotStore::new()),
            Arc::clone(&b.analysis),
            Arc::clone(&b.active),
            0.8,
            None,
        )),
        store: Arc::new(crate::model::SnapshotStore::new()),
        analysis: Arc::clone(&b.analysis),
        active: Arc::clone(&b.active),
        engine: Some(b.engine.clone()),
        access: Default::default(),
        decisions: metrics.clone(),
        http: Default::default(),
        http_metrics: Default::default(),
    };
    let readyz = || async {
        use tower::ServiceExt;
        let response = crate::api::router(state.clone())
            .oneshot(
                axum::http::Request::get("/readyz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
    };
    assert_eq!(readyz().await.0, 200);

    b.engine.inner.writer.poison();
    let err = b
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("restart"), "{err}");
    assert!(!b.engine.journal_healthy());
    assert_eq!(metrics.journal_healthy_value(), 0);
    let (status, body) = readyz().await;
    assert_eq!(status, 503);
    assert!(body.contains("journal is lost"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_journal_lost_during_an_evaluation_ends_it_as_failed_and_says_so_once() {
    let b = bed(
        ScriptedProber::new(&[("east", DOWN), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    b.engine.inner.writer.poison();
    b.tracker.close();
    b.tracker.wait().await;
    // Nothing was changed; the close could not be recorded either, yet people are told.
    assert_eq!(b.dns.calls(Op::Write), 0);
    assert_eq!(b.notifier.names(), [AgentAlertName::RedisFailoverFailed]);
    let notice = &b.notifier.alerts()[0];
    assert!(
        notice
            .description
            .starts_with("Incident 1: the decision journal cannot record"),
        "{}",
        notice.description
    );
}

#[tokio::test]
async fn candidates_about_unknown_instances_open_nothing_and_are_counted() {
    let b = bed(
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let candidates: Vec<Candidate> = (0..2000)
        .map(|n| firing_about(&format!("ghost-{n}")))
        .collect();
    let out = b.engine.submit(&candidates).await.unwrap();
    assert_eq!((out.opened.len(), out.unknown), (0, 2000));
    assert!(b.engine.history(usize::MAX).await.is_empty());
    assert_eq!(journal_lines(b.dir.path(), "opened"), 0);
    assert_eq!(b.engine.inner.deps.metrics.unknown_targets_count(), 2000);
}

#[tokio::test]
async fn a_delivery_opens_at_most_max_incidents_per_delivery() {
    let mut s = settings(false, false, HookSettings::default());
    s.limits.max_incidents_per_delivery = 2;
    for n in 1..=4 {
        let mut inst = instance();
        inst.uid = InstanceId::new(&format!("cache-{n}"));
        s.instances.insert(inst.uid.clone(), inst);
    }
    let b = bed(ScriptedProber::new(&[("east", UP), ("west", UP)]), s).await;
    let candidates: Vec<Candidate> = (1..=4)
        .map(|n| firing_about(&format!("cache-{n}")))
        .collect();
    let out = b.engine.submit(&candidates).await.unwrap();
    assert_eq!((out.opened.len(), out.deferred), (2, 2));
    assert_eq!(b.engine.inner.deps.metrics.deferred_count(), 2);
    assert_eq!(journal_lines(b.dir.path(), "opened"), 2);
}

#[tokio::test]
async fn label_values_of_a_megabyte_are_cut_where_the_engine_keeps_them() {
    let b = bed(
        ScriptedProber::new(&[("east", UP), ("west", UP)]),
        settings(true, false, HookSettings::default()),
    )
    .await;
    let huge = "é".repeat(512 * 1024);
    let candidate = Candidate {
        alertname: huge.clone(),
        fingerprint: huge.clone(),
        datacenter: Some(huge.clone()),
        ..alert(AlertStatus::Firing)
    };
    b.engine.submit(&[candidate]).await.unwrap();
    b.engine
        .request(&InstanceId::new("cache"), None, false, huge.clone())
        .await
        .unwrap();
    let all = b.engine.history(usize::MAX).await;
    let t = &all[0].triggers;
    for trigger in t {
        for value in [&trigger.name, &trigger.fingerprint] {
            assert!(value.len() <= 256, "{} bytes", value.len());
        }
        if let Some(dc) = &trigger.datacenter {
            assert!(dc.as_str().len() <= 256);
        }
    }
    assert!(t[0].name.ends_with(crate::decision::incident::CUT_MARKER));
    assert!(t[0].name.starts_with("éé"));
    let size = std::fs::metadata(b.dir.path().join("journal.jsonl"))
        .unwrap()
        .len();
    assert!(size < 16 * 1024, "journal of {size} bytes");
}

/// A bed that only recommends (automatic failover off), east up, west `west`, over
/// `dns`, with the journal in `dir`.
async fn recommending_bed(
    dir: tempfile::TempDir,
    west: &'static [bool],
    dns: Arc<MemoryDns>,
) -> Bed {
    bed_in(
        dir,
        ScriptedProber::new(&[("east", UP), ("west", west)]),
        settings(false, false, HookSettings::default()),
        dns,
    )
    .await
}

/// DNS on west, the journal empty and the configuration saying east.
fn dns_on_west() -> Arc<MemoryDns> {
    Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-west.example.com", 60)),
    )
}

#[tokio::test]
async fn on_start_the_active_datacenter_is_taken_from_dns_and_recorded() {
    let b = recommending_bed(tempfile::tempdir().unwrap(), DOWN, dns_on_west()).await;
    let uid = InstanceId::new("cache");
    assert_eq!(b.active.get(&uid).unwrap().as_str(), "west");
    let metrics = &b.engine.inner.deps.metrics;
    assert_eq!(metrics.mismatches_of("cache", "other_datacenter"), 1);
    assert_eq!(journal_lines(b.dir.path(), "adopted"), 1);
    // An outage of west is now a candidate: a datacenter alert about it opens an incident.
    let out = b
        .engine
        .submit(&[Candidate {
            target: Target::Datacenter("west".into()),
            datacenter: Some("west".into()),
            ..alert(AlertStatus::Firing)
        }])
        .await
        .unwrap();
    assert_eq!(out.opened.len(), 1, "{out:?}");
    let i = b.settle().await;
    assert!(
        matches!(&i.outcome, Some(Outcome::WouldFailOver { from, to, .. })
            if from.as_str() == "west" && to.as_str() == "east"),
        "{i:#?}"
    );
    // Restarted: the journal now agrees with DNS, nothing more is counted or recorded.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        b.dir.path().join("journal.jsonl"),
        dir.path().join("journal.jsonl"),
    )
    .unwrap();
    let again = recommending_bed(dir, UP, dns_on_west()).await;
    assert_eq!(again.active.get(&uid).unwrap().as_str(), "west");
    let metrics = &again.engine.inner.deps.metrics;
    assert_eq!(metrics.mismatches_of("cache", "other_datacenter"), 0);
    assert_eq!(journal_lines(again.dir.path(), "adopted"), 1);
}

#[tokio::test]
async fn dns_pointing_at_no_datacenter_keeps_the_journal_view_and_is_counted() {
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("elsewhere.example.com", 60)),
    );
    let b = recommending_bed(tempfile::tempdir().unwrap(), UP, dns).await;
    assert_eq!(
        b.active.get(&InstanceId::new("cache")).unwrap().as_str(),
        "east"
    );
    let metrics = &b.engine.inner.deps.metrics;
    assert_eq!(metrics.mismatches_of("cache", "unknown_value"), 1);
    assert_eq!(journal_lines(b.dir.path(), "adopted"), 0);
}

#[tokio::test(start_paused = true)]
async fn dns_unreachable_at_start_keeps_the_journal_view_and_is_read_again_later() {
    let dns = dns_on_west();
    dns.fail_next(Op::Read, 2, AdapterErrorKind::Unavailable);
    let b = recommending_bed(tempfile::tempdir().unwrap(), UP, dns).await;
    let uid = InstanceId::new("cache");
    assert_eq!(b.active.get(&uid).unwrap().as_str(), "east");
    // 5 s later the read fails again, 10 s after that it answers.
    for _ in 0..60 {
        if b.active.get(&uid).unwrap().as_str() == "west" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(b.active.get(&uid).unwrap().as_str(), "west");
    assert_eq!(b.dns.calls(Op::Read), 3);
}

#[tokio::test]
async fn a_damaged_journal_starts_over_only_when_asked() {
    {
        let b = recommending_bed(tempfile::tempdir().unwrap(), UP, dns_on_west()).await;
        b.engine
            .submit(&[alert(AlertStatus::Firing)])
            .await
            .unwrap();
        b.settle().await;
        let live = b.dir.path().join("journal.jsonl");
        let text = std::fs::read_to_string(&live).unwrap();
        std::fs::write(&live, &text[..text.len() / 2]).unwrap();
        let path = b.dir.path().to_owned();
        // Keep the directory; drop the engine (and its journal lock).
        let Bed {
            dir: _keep, engine, ..
        } = b;
        drop(engine);
        let open = |opening| {
            Engine::open_with(
                &path,
                opening,
                settings(false, false, HookSettings::default()),
                Deps {
                    prober: ScriptedProber::new(&[("east", UP), ("west", UP)]),
                    dns: None,
                    notifier: None,
                    hooks: Arc::new(NoHooks),
                    analysis: Arc::new(AnalysisStore::new()),
                    store: Arc::new(crate::model::SnapshotStore::new()),
                    enterprise: Arc::new(crate::model::enterprise::EnterpriseStore::new()),
                    active: Arc::new(ActiveDatacenters::new()),
                    metrics: DecisionMetrics::default(),
                    advisors: Advisors::default(),
                    clock: Arc::new(crate::decision::clock::SystemClock),
                    coordination: None,
                },
                TaskTracker::new(),
                CancellationToken::new(),
            )
        };
        // The evaluation's last notice may still hold the engine (and the lock) a moment.
        let mut refused = open(Opening::Refuse).await;
        for _ in 0..500 {
            match &refused {
                Err(EngineError::Journal(JournalError::Locked { .. })) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    refused = open(Opening::Refuse).await;
                }
                _ => break,
            }
        }
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("was cut"), "{err}");
        assert!(err.contains("--journal-start-over"), "{err}");
        let engine = open(Opening::StartOver).await.unwrap();
        assert!(engine.history(10).await.is_empty());
        let names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("journal.jsonl.damaged-")),
            "{names:?}"
        );
    }
}

/// The dry-run provider knows no zone: nothing is read at start, nothing is counted as a
/// mismatch (a "missing" record would alert on every start), and the configuration's
/// active datacenter stands.
#[tokio::test]
async fn a_dry_run_provider_is_not_read_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let active = Arc::new(ActiveDatacenters::new());
    active.apply(&[instance()]);
    let metrics = DecisionMetrics::default();
    let engine = Engine::open(
        dir.path(),
        settings(true, false, HookSettings::default()),
        Deps {
            prober: ScriptedProber::new(&[("east", UP), ("west", UP)]),
            dns: Some(Arc::new(crate::actuators::dns::DryRunDns::new())),
            notifier: None,
            hooks: Arc::new(NoHooks),
            analysis: Arc::new(AnalysisStore::new()),
            store: Arc::new(crate::model::SnapshotStore::new()),
            enterprise: Arc::new(crate::model::enterprise::EnterpriseStore::new()),
            active: Arc::clone(&active),
            metrics: metrics.clone(),
            advisors: Advisors::default(),
            clock: Arc::new(crate::decision::clock::SystemClock),
            coordination: None,
        },
        TaskTracker::new(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        active.get(&InstanceId::new("cache")).unwrap().as_str(),
        "east"
    );
    for dns in ["other_datacenter", "unknown_value", "missing"] {
        assert_eq!(metrics.mismatches_of("cache", dns), 0, "{dns}");
    }
    assert_eq!(journal_lines(dir.path(), "adopted"), 0);
    drop(engine);
}
