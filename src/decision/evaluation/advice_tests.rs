//! The advisors inside an evaluation: the clients' report and the AI advice, with its
//! streak, its hold loop and its bounds.

use super::*;
use crate::advisors::client_impact::FakeClientImpact;
use crate::decision::policy::{ClientStatus, Hold};
use crate::decision::ports::AgentAlertName;

fn uid() -> InstanceId {
    InstanceId::new("cache")
}

fn clients(impact: fn(&InstanceId) -> crate::decision::ports::ClientImpact) -> ClientAnswer {
    ClientAnswer::Answered(impact(&uid()))
}

/// East down, west up, the clients and the model as given.
fn advised_world(answer: ClientAnswer, advice: &[Script]) -> World {
    World {
        clients: answer,
        advice: advice.iter().cloned().collect(),
        ..world(&[Down], &[Up])
    }
}

const ADVISED: [&str; 6] = [
    "guard ok",
    "probe_round info",
    "probe_round info",
    "probe_round info",
    "client_impact info",
    "advisor info",
];

#[test]
fn the_clients_and_the_model() {
    run_table(&[
        Case {
            name: "clients as usual hold the failover as a suspected partition",
            start: advised,
            world: || {
                advised_world(
                    clients(FakeClientImpact::as_usual),
                    &[Script::answer("failover", Some("west"), 1.0)],
                )
            },
            steps: after(&CONFIRMED, &["client_impact info", "policy hold"]),
            outcome: "hold partition_suspected",
            check: |t| {
                assert!(
                    t.details(StepName::ClientImpact)[0].starts_with("fake: clients as usual"),
                    "{:?}",
                    t.steps
                );
                // The model is never asked about a hold: advice cannot start a failover.
                assert!(t.requests.is_empty());
                // The window read ends at the evaluation: never an answer cached from
                // before it; with the endpoint's loss unknown, the last 5 minutes.
                assert_eq!(t.windows.len(), 1);
                assert_eq!(t.windows[0].end, Some(t0()));
                assert_eq!(t.windows[0].recent, DECISION_WINDOW.0);
                assert_eq!(t.windows[0].baseline, DECISION_WINDOW.1);
                // People are told what the clients said; the model said nothing.
                let impact = t.details(StepName::ClientImpact)[0];
                let notice = told(t);
                assert_eq!(notice.name, AgentAlertName::RedisFailoverHeld);
                assert_eq!(
                    notice.description,
                    format!(
                        "Incident 1: the agent did not fail over: agent-side partition \
                         suspected: the probes see east failing, but its clients log no more \
                         errors than usual. Advisors: client impact: {impact}."
                    )
                );
            },
        },
        Case {
            name: "the clients are read from when the agent lost the active endpoint",
            start: |s| {
                advised(s);
                s.lost_active = Some(Duration::from_secs(8));
            },
            world: || advised_world(clients(FakeClientImpact::failing), &[]),
            steps: after(&ADVISED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| assert_eq!(t.windows[0].recent, Duration::from_secs(8)),
        },
        Case {
            name: "failing clients and agreeing advice fail over, and the record says so",
            start: advised,
            world: || {
                advised_world(
                    clients(FakeClientImpact::failing),
                    &[Script::answer("failover", Some("west"), 0.95)],
                )
            },
            steps: after(&ADVISED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| {
                let advisor = t.details(StepName::Advisor)[0];
                assert!(
                    advisor.contains("fake advised failover to west (confidence 0.95)")
                        && advisor.contains("agrees with the policy"),
                    "{advisor}"
                );
                // The model saw the evidence: three rounds, the clients failing, the
                // policy's verdict.
                let request = &t.requests[0];
                assert_eq!(request.rounds.len(), 3);
                assert_eq!(request.clients, ClientStatus::Failing);
                assert!(request.client_impact.is_object());
                assert!(matches!(request.policy, Verdict::Failover { .. }));
                assert_eq!(request.at, t0() + Duration::from_millis(20));
                // People are told what both advisors said.
                let impact = t.details(StepName::ClientImpact)[0];
                assert_eq!(
                    told(t).description,
                    format!(
                        "DNS now sends cache's clients to west (confidence 1.00, incident 1). \
                         Advisors: client impact: {impact}; AI: {advisor}."
                    )
                );
            },
        },
        Case {
            name: "clients that do not answer in time are unknown",
            start: advised,
            world: || {
                advised_world(
                    ClientAnswer::Late,
                    &[Script::answer("failover", Some("west"), 1.0)],
                )
            },
            steps: after(&ADVISED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| {
                assert_eq!(
                    t.details(StepName::ClientImpact),
                    ["fake: unknown (no answer within the decision's 5 s)"]
                );
            },
        },
        Case {
            name: "a client query that failed is unknown",
            start: advised,
            world: || {
                advised_world(
                    ClientAnswer::TaskFailed("panicked".into()),
                    &[Script::answer("failover", Some("west"), 1.0)],
                )
            },
            steps: after(&ADVISED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| {
                assert!(
                    t.details(StepName::ClientImpact)[0]
                        .contains("the query task failed: panicked")
                );
            },
        },
        Case {
            name: "an operator's request is not put to the model, nor the clients",
            start: |s| {
                advised(s);
                s.request = Some(Request {
                    target: None,
                    force: false,
                    planned: false,
                });
            },
            world: || {
                advised_world(
                    clients(FakeClientImpact::failing),
                    &[Script::answer("hold", None, 1.0)],
                )
            },
            steps: failover_of_alert_without_advisors(),
            outcome: "failover east->west",
            check: |t| {
                assert!(t.requests.is_empty());
                // Not forced or planned: the clients are asked all the same.
                assert_eq!(t.windows.len(), 1);
            },
        },
    ]);
}

/// An operator's unforced request still hears the clients, never the model.
fn failover_of_alert_without_advisors() -> Vec<&'static str> {
    after(
        &CONFIRMED,
        &["client_impact info", "policy ok", "dns ok", "verify ok"],
    )
}

#[test]
fn discarded_advice_leaves_the_policy_to_decide() {
    for script in [
        Script::Content("I think you should fail over.".into()),
        Script::Content(r#"{"recommendation": "hold"}"#.into()),
        Script::answer("failover", Some("mars"), 1.0),
        Script::Discard(Discarded::Http { status: 429 }),
        Script::Discard(Discarded::Timeout { after_ms: 100 }),
    ] {
        let mut s = start();
        advised(&mut s);
        let t = drive(
            s,
            advised_world(ClientAnswer::Late, std::slice::from_ref(&script)),
        );
        assert_eq!(show(&t.outcome), "failover east->west", "{script:?}");
        let advisor = t.details(StepName::Advisor);
        assert!(
            advisor[0].contains("discarded") && advisor[0].contains("the policy decides"),
            "{advisor:?}"
        );
    }
}

#[test]
fn holds_and_their_bounds() {
    run_table(&[
        Case {
            name: "a confident hold during an outage lasts at most ai_max_hold",
            start: |s| {
                advised(s);
                settings(s, |s| s.ai_max_hold = Duration::from_millis(300));
            },
            world: || advised_world(ClientAnswer::Late, &[Script::answer("hold", None, 0.9)]),
            steps: vec![],
            outcome: "failover east->west",
            check: |t| {
                let advisor = t.details(StepName::Advisor);
                // The first hold awaits a second (ai_consecutive_recommendations: 2),
                // which holds back; once the outage reached ai_max_hold it is ignored.
                assert!(advisor[0].contains("hold 1 of 2 in a row"), "{advisor:?}");
                assert!(
                    advisor
                        .iter()
                        .any(|d| d.contains("holds the failover back"))
                );
                assert!(
                    advisor
                        .last()
                        .unwrap()
                        .contains("hold ignored: the outage has lasted"),
                    "{advisor:?}"
                );
                // Two calls: the rest reused the latest answer (same evidence, rate limit).
                assert_eq!(t.requests.len(), 2);
                assert!(t.ended >= t0() + Duration::from_millis(300));
                assert!(t.ended < t0() + Duration::from_millis(400));
            },
        },
        Case {
            name: "a held-back failover ends when the active datacenter answers again",
            start: |s| {
                advised(s);
                settings(s, |s| s.ai_max_hold = Duration::from_secs(60));
            },
            world: || World {
                probes: world(&[Down, Down, Down, Down, Down, Up], &[Up]).probes,
                ..advised_world(ClientAnswer::Late, &[Script::answer("hold", None, 0.9)])
            },
            steps: after(
                &ADVISED,
                &[
                    "probe_round info",
                    "advisor hold",
                    // Still down: the same advice, reused (rate limit), not recorded again.
                    "probe_round info",
                    "probe_round info",
                    "policy hold",
                ],
            ),
            outcome: "hold active_recovered",
            check: |t| assert_eq!(t.count("dns "), 0),
        },
        Case {
            name: "a brownout with failing clients fails over on agreeing advice",
            start: advised,
            world: || World {
                probes: world(&[Slow], &[Up]).probes,
                ..advised_world(
                    clients(FakeClientImpact::failing),
                    &[Script::answer("failover", Some("west"), 0.9)],
                )
            },
            steps: after(&ADVISED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| {
                let Outcome::FailedOver { confidence, .. } = t.outcome else {
                    panic!()
                };
                // The probes alone give 0.9, below 0.95; failing clients make it 0.975.
                assert!(confidence > 0.95, "{confidence}");
            },
        },
        Case {
            name: "a brownout with failing clients is held by a confident, repeated hold",
            start: advised,
            world: || World {
                probes: world(&[Slow], &[Up]).probes,
                ..advised_world(
                    clients(FakeClientImpact::failing),
                    &[Script::answer("hold", None, 0.9)],
                )
            },
            steps: after(
                &ADVISED,
                &["probe_round info", "advisor hold", "policy hold"],
            ),
            outcome: "hold advised",
            check: |t| {
                assert!(
                    matches!(&t.outcome, Outcome::Held(Hold::Advised { target, advice_confidence, .. })
                        if target.as_str() == "west" && (*advice_confidence - 0.9).abs() < 1e-9),
                    "{:?}",
                    t.outcome
                );
                assert!(
                    t.details(StepName::Advisor)
                        .last()
                        .unwrap()
                        .contains("holds the failover back: the evidence is ambiguous")
                );
                let recorded: Vec<_> = t.advice.as_ref().unwrap().recent().collect();
                assert_eq!(recorded.len(), 2);
                assert!(recorded[0].counted);
                assert_eq!(recorded[0].incident, Some(1));
            },
        },
        Case {
            name: "the agent stops while the advice holds the failover back",
            start: advised,
            world: || World {
                stop_at_wait: Some(3),
                ..advised_world(ClientAnswer::Late, &[Script::answer("hold", None, 0.9)])
            },
            steps: ADVISED.to_vec(),
            outcome: "interrupted: the agent stopped while the AI advice held the failover back; nothing was changed",
            check: nothing_else,
        },
        Case {
            name: "the loop's own bound ends a hold the rules would let run",
            start: |s| {
                advised(s);
                // Time stands still (rounds 0 s apart), so the outage never reaches
                // ai_max_hold and the rules would hold for ever: the loop's own bound,
                // 1 s / 1 ms + 2 + 5 rounds, hands the decision to the policy.
                settings(s, |s| {
                    s.ai_max_hold = Duration::from_secs(1);
                    s.failover.confirm_interval = Duration::ZERO;
                });
            },
            world: || advised_world(ClientAnswer::Late, &[Script::answer("hold", None, 0.9)]),
            steps: vec![],
            outcome: "failover east->west",
            check: |t| {
                let last = t.details(StepName::Advisor).last().copied().unwrap();
                assert_eq!(
                    last,
                    "the advice kept the decision waiting past 1007 rounds; the policy decides"
                );
                // People are told the AI advisor's latest word, not its first.
                assert!(
                    told(t).description.ends_with(&format!(
                        " Advisors: client impact: fake: unknown (no answer within the \
                         decision's 5 s); AI: {last}."
                    )),
                    "{}",
                    told(t).description
                );
            },
        },
    ]);
}

#[test]
fn the_same_evidence_is_not_sent_twice_within_the_rate_limit() {
    // Recommend only, so no cooldown stands between the two evaluations.
    let first = |advice: AdviceHistory| {
        let mut s = start();
        advised(&mut s);
        settings(&mut s, |s| s.failover.auto = false);
        s.advice = advice;
        drive(
            s,
            advised_world(
                clients(FakeClientImpact::failing),
                &[Script::answer("failover", Some("west"), 0.9)],
            ),
        )
    };
    let one = first(AdviceHistory::default());
    let two = first(one.advice.clone().unwrap());
    for t in [&one, &two] {
        assert_eq!(show(&t.outcome), "would_failover east->west");
        // Client impact is asked afresh by each evaluation.
        assert_eq!(t.windows.len(), 1);
    }
    assert_eq!(one.requests.len() + two.requests.len(), 1);
    let advisor = two.details(StepName::Advisor);
    assert!(advisor[0].contains("earlier answer reused"), "{advisor:?}");
}
