//! The advisors through their ports: scripted client impact and a scripted model, the
//! same bed as the runner's other tests. What their answers change is the core's table.

use super::*;
use crate::advisors::ai::fake::{FakeAdvisor, Script};
use crate::advisors::client_impact::FakeClientImpact;
use crate::decision::evaluation::CLIENT_IMPACT_WAIT;
use crate::decision::policy::{ClientStatus, Verdict};
use crate::decision::ports::{Advisor, ClientImpact};
use crate::decision::testkit::t0;
use async_trait::async_trait;

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
        .filter(|s| s.name.as_str() == name)
        .map(|s| s.detail.as_str())
        .collect()
}

impl Bed {
    async fn fire(&self) -> Incident {
        self.engine
            .submit(&[alert(AlertStatus::Firing)])
            .await
            .unwrap();
        self.settle().await
    }
}

#[tokio::test(start_paused = true)]
async fn people_are_told_what_the_clients_said() {
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
            Some(Outcome::Held(Hold::PartitionSuspected { .. }))
        ),
        "{incident:#?}"
    );
    assert_eq!(a.bed.dns.calls(Op::Write), 0);
    let impact = step_details(&incident, "client_impact");
    assert!(
        impact[0].starts_with("fake: clients as usual"),
        "{impact:?}"
    );
    assert!(a.ai.requests().is_empty());
    // The window read ends when the evaluation started.
    let calls = a.clients.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1.end, Some(t0()));
    let notice = &a.bed.notifier.alerts()[0];
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

#[tokio::test(start_paused = true)]
async fn the_model_is_asked_through_its_port_and_its_answers_are_kept() {
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
    let advisor = step_details(&incident, "advisor")[0];
    assert!(
        advisor.contains("fake advised failover to west (confidence 0.95)"),
        "{advisor}"
    );
    let request = &a.ai.requests()[0];
    assert_eq!(request.rounds.len(), 3);
    assert_eq!(request.clients, ClientStatus::Failing);
    assert!(matches!(request.policy, Verdict::Failover { .. }));
    // The consultation is kept for the API, with what the rules made of it.
    let recorded = a.bed.engine.ai_recommendations(&uid(), 10);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].incident, Some(incident.id));
    assert_eq!(recorded[0].effects.len(), 1);
    let notice = &a.bed.notifier.alerts()[0];
    assert_eq!(notice.name, AgentAlertName::RedisFailoverExecuted);
    assert!(
        notice.description.contains("clients failing") && notice.description.contains("AI: fake"),
        "{}",
        notice.description
    );
}

/// A client impact source that never answers (and sets no timer, so paused time moves
/// only as the evaluation's own timers do).
#[derive(Debug)]
struct Stalled;

#[async_trait]
impl crate::decision::ports::ClientImpactSource for Stalled {
    fn name(&self) -> &'static str {
        "stalled"
    }

    async fn impact(&self, _: &InstanceId, _: crate::decision::ports::Window) -> ClientImpact {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_impact_source_that_stalls_is_unknown_after_the_wait() {
    let b = bed_advised(
        tempfile::tempdir().unwrap(),
        east_down(),
        auto(),
        Arc::new(
            MemoryDns::new()
                .with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
        ),
        Advisors {
            client_impact: Some(Arc::new(Stalled)),
            ai: None,
        },
    )
    .await;
    b.engine
        .submit(&[alert(AlertStatus::Firing)])
        .await
        .unwrap();
    let incident = loop {
        let all = b.engine.history(1).await;
        if all.first().is_some_and(|i| i.outcome.is_some()) {
            break all[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(matches!(
        &incident.outcome,
        Some(Outcome::FailedOver { .. })
    ));
    let impact = step_details(&incident, "client_impact");
    assert_eq!(
        impact,
        ["stalled: unknown (no answer within the decision's 5 s)"]
    );
    // The evaluation waited for the clients, on the engine's clock.
    let step = incident
        .steps
        .iter()
        .find(|s| s.name.as_str() == "client_impact")
        .unwrap();
    let waited = step.at.duration_since(incident.opened).unwrap();
    assert!(waited >= CLIENT_IMPACT_WAIT, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn the_effect_of_a_failover_is_measured_afterwards() {
    let mut s = auto();
    s.effect_window = (Duration::from_secs(60), Duration::from_secs(600));
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
    let effect = a
        .bed
        .engine
        .incident(incident.id)
        .await
        .unwrap()
        .steps
        .into_iter()
        .find(|s| s.name.as_str() == "failover_effect")
        .expect("measured once the window after the failover passed");
    assert_eq!(effect.evidence["effect"], "worse", "{effect:#?}");
    let closed = incident.closed.unwrap();
    assert!(effect.at >= closed + Duration::from_secs(600));
    let (_, window) = a.clients.calls().last().cloned().unwrap();
    assert_eq!(window.baseline, Duration::from_secs(60));
    assert_eq!(window.recent, Duration::from_secs(600));
}
