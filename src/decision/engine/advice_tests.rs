//! The advisors in the engine: scripted client impact and a scripted model, the same
//! bed as the decision table.

use super::*;
use crate::advisors::ai::fake::{FakeAdvisor, Script};
use crate::advisors::client_impact::FakeClientImpact;
use crate::decision::policy::{ClientStatus, Verdict};
use crate::decision::ports::{Advisor, ClientImpact, Discarded};

fn uid() -> InstanceId {
    InstanceId::new("cache")
}

struct Advised {
    bed: Bed,
    clients: Arc<FakeClientImpact>,
    ai: Arc<FakeAdvisor>,
}

/// A bed with both advisors: `clients` answers for the instance (none: unknown), the
/// model plays `script`.
async fn advised(
    prober: Arc<ScriptedProber>,
    settings: Settings,
    clients: Option<ClientImpact>,
    script: Vec<Script>,
) -> Advised {
    let fake_clients = Arc::new(FakeClientImpact::new());
    if let Some(c) = clients {
        fake_clients.set(&uid(), c);
    }
    let ai = Arc::new(FakeAdvisor::new(script));
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    );
    let advisors = Advisors {
        client_impact: Some(fake_clients.clone()),
        ai: Some(ai.clone() as Arc<dyn Advisor>),
    };
    let bed = bed_advised(
        tempfile::tempdir().unwrap(),
        prober,
        settings,
        dns,
        advisors,
    )
    .await;
    Advised {
        bed,
        clients: fake_clients,
        ai,
    }
}

/// East refuses every probe; west answers.
fn east_down() -> Arc<ScriptedProber> {
    ScriptedProber::new(&[("east", DOWN), ("west", UP)])
}

fn auto() -> Settings {
    settings(true, false, HookSettings::default())
}

fn step_details<'a>(incident: &'a Incident, name: &str) -> Vec<&'a str> {
    incident
        .steps
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.detail.as_str())
        .collect()
}

impl Bed {
    /// Waits until `n` notices were sent.
    pub(super) async fn notices(&self, n: usize) -> Vec<crate::decision::ports::AgentAlert> {
        for _ in 0..200 {
            let sent = self.notifier.alerts();
            if sent.len() >= n {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} notices: {:?}", self.notifier.names());
    }

    async fn fire(&self) -> Incident {
        self.engine
            .submit(&[alert(AlertStatus::Firing)])
            .await
            .unwrap();
        self.settle().await
    }
}

#[tokio::test]
async fn clients_as_usual_hold_the_failover_as_a_suspected_partition() {
    let a = advised(
        east_down(),
        auto(),
        Some(FakeClientImpact::as_usual(&uid())),
        vec![Script::answer("failover", Some("west"), 1.0)],
    )
    .await;
    let incident = a.bed.fire().await;
    assert!(
        matches!(
            &incident.outcome,
            Some(Outcome::Held(Hold::PartitionSuspected { active, sentinel_heard: None })) if active.as_str() == "east"
        ),
        "{incident:#?}"
    );
    assert_eq!(a.bed.pointing_at(), "redis-east.example.com");
    assert_eq!(a.bed.dns.calls(Op::Upsert), 0);
    let impact = step_details(&incident, "client_impact");
    assert_eq!(impact.len(), 1);
    assert!(
        impact[0].starts_with("fake: clients as usual"),
        "{impact:?}"
    );
    // The model is never asked about a hold: advice cannot start a failover.
    assert!(a.ai.requests().is_empty());
    // The window read ends at the evaluation: never an answer cached from before it.
    let calls = a.clients.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].1.end.is_some());
    let notice = &a.bed.notices(1).await[0];
    assert_eq!(notice.name, AgentAlertName::RedisFailoverHeld);
    assert!(
        notice.summary.contains("agent-side partition suspected"),
        "{}",
        notice.summary
    );
    assert!(
        notice
            .description
            .contains("Advisors: client impact: fake: clients as usual"),
        "{}",
        notice.description
    );
}

#[tokio::test]
async fn failing_clients_and_agreeing_advice_fail_over_and_the_record_says_so() {
    let a = advised(
        east_down(),
        auto(),
        Some(FakeClientImpact::failing(&uid())),
        vec![Script::answer("failover", Some("west"), 0.95)],
    )
    .await;
    let incident = a.bed.fire().await;
    assert!(
        matches!(&incident.outcome, Some(Outcome::FailedOver { to, .. }) if to.as_str() == "west"),
        "{incident:#?}"
    );
    let names: Vec<&str> = incident.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "guard",
            "probe_round",
            "probe_round",
            "probe_round",
            "client_impact",
            "advisor",
            "policy",
            "dns",
            "verify"
        ]
    );
    let advisor = step_details(&incident, "advisor")[0];
    assert!(
        advisor.contains("fake advised failover to west (confidence 0.95)")
            && advisor.contains("agrees with the policy"),
        "{advisor}"
    );
    // The model saw the evidence: three rounds, the clients failing, the policy's verdict.
    let request = &a.ai.requests()[0];
    assert_eq!(request.rounds.len(), 3);
    assert_eq!(request.clients, ClientStatus::Failing);
    assert!(request.client_impact.is_object());
    assert!(matches!(request.policy, Verdict::Failover { .. }));
    let notice = &a.bed.notices(1).await[0];
    assert_eq!(notice.name, AgentAlertName::RedisFailoverExecuted);
    assert!(
        notice.description.contains("clients failing") && notice.description.contains("AI: fake"),
        "{}",
        notice.description
    );
}

#[tokio::test]
async fn advice_that_is_discarded_leaves_the_policy_to_decide() {
    for script in [
        Script::Content("I think you should fail over.".into()),
        Script::Content(r#"{"recommendation": "hold"}"#.into()),
        Script::answer("failover", Some("mars"), 1.0),
        Script::Discard(Discarded::Http { status: 429 }),
        Script::Discard(Discarded::Timeout { after_ms: 100 }),
    ] {
        let a = advised(east_down(), auto(), None, vec![script.clone()]).await;
        let incident = a.bed.fire().await;
        assert!(
            matches!(&incident.outcome, Some(Outcome::FailedOver { .. })),
            "{script:?}: {incident:#?}"
        );
        let advisor = step_details(&incident, "advisor");
        assert!(
            advisor[0].contains("discarded") && advisor[0].contains("the policy decides"),
            "{advisor:?}"
        );
        // The clients were unknown (nothing scripted) and said so.
        assert!(step_details(&incident, "client_impact")[0].starts_with("fake: unknown"));
    }
}

#[tokio::test]
async fn a_confident_hold_during_an_outage_lasts_at_most_ai_max_hold() {
    let mut s = auto();
    s.ai_max_hold = Duration::from_millis(300);
    let a = advised(
        east_down(),
        s,
        None,
        vec![Script::answer("hold", None, 0.9)],
    )
    .await;
    let started = std::time::Instant::now();
    let incident = a.bed.fire().await;
    assert!(
        matches!(&incident.outcome, Some(Outcome::FailedOver { .. })),
        "{incident:#?}"
    );
    let advisor = step_details(&incident, "advisor");
    // The first hold awaits a second (ai_consecutive_recommendations: 2), which holds
    // back; once the outage reached ai_max_hold the hold is ignored.
    assert!(advisor[0].contains("hold 1 of 2 in a row"), "{advisor:?}");
    assert!(
        advisor
            .iter()
            .any(|d| d.contains("holds the failover back")),
        "{advisor:?}"
    );
    assert!(
        advisor
            .last()
            .unwrap()
            .contains("hold ignored: the outage has lasted"),
        "{advisor:?}"
    );
    // Two calls: the rest reused the latest answer (same evidence, rate limit).
    assert_eq!(a.ai.requests().len(), 2);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(a.bed.pointing_at(), "redis-west.example.com");
}

#[tokio::test]
async fn a_held_back_failover_ends_when_the_active_datacenter_answers_again() {
    // east: down for the three rounds and the consultations' rounds, then up.
    let prober = ScriptedProber::new(&[
        ("east", &[false, false, false, false, false, true]),
        ("west", UP),
    ]);
    let mut s = auto();
    s.ai_max_hold = Duration::from_secs(60);
    let a = advised(prober, s, None, vec![Script::answer("hold", None, 0.9)]).await;
    let incident = a.bed.fire().await;
    assert!(
        matches!(
            &incident.outcome,
            Some(Outcome::Held(Hold::ActiveRecovered { .. }))
        ),
        "{incident:#?}"
    );
    assert_eq!(a.bed.dns.calls(Op::Upsert), 0);
}

#[tokio::test]
async fn a_brownout_with_failing_clients_fails_over_unless_advice_holds_it() {
    // east answers in 1 s: the probes alone give 0.9, below 0.95; failing clients make
    // it 0.975. Still short of clear (1.0), so a confident, repeated hold counts.
    let prober = || ScriptedProber::new(&[("east", UP), ("west", UP)]).slow("east");
    let a = advised(
        prober(),
        auto(),
        Some(FakeClientImpact::failing(&uid())),
        vec![Script::answer("failover", Some("west"), 0.9)],
    )
    .await;
    let incident = a.bed.fire().await;
    assert!(
        matches!(&incident.outcome, Some(Outcome::FailedOver { confidence, .. }) if *confidence > 0.95),
        "{incident:#?}"
    );

    let a = advised(
        prober(),
        auto(),
        Some(FakeClientImpact::failing(&uid())),
        vec![Script::answer("hold", None, 0.9)],
    )
    .await;
    let incident = a.bed.fire().await;
    assert!(
        matches!(&incident.outcome, Some(Outcome::Held(Hold::Advised { target, advice_confidence, .. }))
            if target.as_str() == "west" && (*advice_confidence - 0.9).abs() < 1e-9),
        "{incident:#?}"
    );
    assert_eq!(a.bed.dns.calls(Op::Upsert), 0);
    let advisor = step_details(&incident, "advisor");
    assert!(
        advisor
            .last()
            .unwrap()
            .contains("holds the failover back: the evidence is ambiguous")
    );
    let recorded = a.bed.engine.ai_recommendations(&uid(), 10);
    assert_eq!(recorded.len(), 2);
    assert!(recorded[0].counted);
    assert_eq!(recorded[0].incident, Some(incident.id));
}

#[tokio::test]
async fn the_same_evidence_is_not_sent_twice_within_the_rate_limit() {
    // Recommend only, so no cooldown stands between the two evaluations.
    let a = advised(
        east_down(),
        settings(false, false, HookSettings::default()),
        Some(FakeClientImpact::failing(&uid())),
        vec![Script::answer("failover", Some("west"), 0.9)],
    )
    .await;
    for _ in 0..2 {
        let incident = a.bed.fire().await;
        assert!(matches!(
            &incident.outcome,
            Some(Outcome::WouldFailOver { .. })
        ));
    }
    assert_eq!(a.ai.requests().len(), 1);
    let second = a.bed.engine.history(1).await.remove(0);
    let advisor = step_details(&second, "advisor");
    assert!(advisor[0].contains("earlier answer reused"), "{advisor:?}");
    // Client impact is asked afresh by each evaluation.
    assert_eq!(a.clients.calls().len(), 2);
}

#[tokio::test]
async fn an_operator_request_is_not_put_to_the_model() {
    let a = advised(
        east_down(),
        auto(),
        None,
        vec![Script::answer("hold", None, 1.0)],
    )
    .await;
    a.bed
        .engine
        .request(&uid(), None, false, "maintenance".into())
        .await
        .unwrap();
    let incident = a.bed.settle().await;
    assert!(matches!(
        &incident.outcome,
        Some(Outcome::FailedOver { .. })
    ));
    assert!(a.ai.requests().is_empty());
}

#[tokio::test]
async fn a_client_impact_source_that_stalls_is_unknown_after_the_wait() {
    let a = advised(
        east_down(),
        auto(),
        Some(FakeClientImpact::as_usual(&uid())),
        vec![Script::answer("failover", Some("west"), 1.0)],
    )
    .await;
    a.clients.set_delay(Duration::from_secs(60));
    let started = std::time::Instant::now();
    a.bed
        .engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let incident = loop {
        let all = a.bed.engine.history(1).await;
        if all.first().is_some_and(|i| i.outcome.is_some()) {
            break all[0].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{all:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(matches!(
        &incident.outcome,
        Some(Outcome::FailedOver { .. })
    ));
    let impact = step_details(&incident, "client_impact");
    assert!(
        impact[0].contains("no answer within the decision's 5 s"),
        "{impact:?}"
    );
}

#[tokio::test]
async fn the_effect_of_a_failover_is_measured_afterwards() {
    let mut s = auto();
    s.effect_window = (Duration::from_secs(60), Duration::from_millis(50));
    let a = advised(
        east_down(),
        s,
        Some(FakeClientImpact::failing(&uid())),
        vec![Script::answer("failover", Some("west"), 1.0)],
    )
    .await;
    let incident = a.bed.fire().await;
    assert!(matches!(
        &incident.outcome,
        Some(Outcome::FailedOver { .. })
    ));
    let mut effect = None;
    for _ in 0..300 {
        let i = a.bed.engine.incident(incident.id).await.unwrap();
        effect = i
            .steps
            .iter()
            .find(|s| s.name == "failover_effect")
            .cloned();
        if effect.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let effect = effect.expect("the effect is recorded within 3 s");
    // The fake gives the same counts for any window: 60 % errors "after" against 1 %
    // "before" reads as worse.
    assert_eq!(effect.evidence["effect"], "worse", "{effect:#?}");
    let (_, window) = a.clients.calls().last().cloned().unwrap();
    assert_eq!(window.baseline, Duration::from_secs(60));
    assert_eq!(window.recent, Duration::from_millis(50));
}
