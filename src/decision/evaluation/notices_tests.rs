//! What people are told when an evaluation closes.

use super::*;
use crate::decision::ports::AgentAlertName;

/// What people are told when the evaluation closes: after the close's record, with the
/// outcome in words (checked byte for byte: the scenarios and Alertmanager read them).
#[test]
fn notices() {
    run_table(&[
        Case {
            name: "a failover is told as executed, from the datacenter traffic left",
            start: |_| {},
            world: || world(&[Down], &[Up]),
            steps: failover_steps(),
            outcome: "failover east->west",
            check: |t| {
                let notice = told(t);
                assert_eq!(notice.name, AgentAlertName::RedisFailoverExecuted);
                assert_eq!(notice.datacenter.as_deref(), Some("east"));
                assert_eq!(notice.summary, "cache failed over from east to west");
                assert_eq!(
                    notice.description,
                    "DNS now sends cache's clients to west (confidence 1.00, incident 1)."
                );
                // The close is on disk before anyone is told.
                assert!(matches!(
                    t.records.last(),
                    Some(Record::Closed { incident: 1, outcome: Outcome::FailedOver { .. }, at })
                        if *at == t.ended
                ));
            },
        },
        Case {
            name: "a recommendation is told as one",
            start: |s| settings(s, |s| s.failover.auto = false),
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "plan info"]),
            outcome: "would_failover east->west",
            check: |t| {
                let notice = told(t);
                assert_eq!(notice.name, AgentAlertName::RedisFailoverRecommended);
                assert_eq!(notice.datacenter.as_deref(), Some("east"));
                assert_eq!(notice.summary, "cache should fail over from east to west");
                assert_eq!(
                    notice.description,
                    "The evidence supports a failover (confidence 1.00, incident 1), but the \
                     agent does not act: automatic failover is off or no DNS record is configured."
                );
            },
        },
        Case {
            name: "a hold is told with its reason",
            start: |_| {},
            world: || world(&[Down], &[Down]),
            steps: after(&CONFIRMED, &["policy hold"]),
            outcome: "hold all_down",
            check: |t| {
                let notice = told(t);
                assert_eq!(notice.name, AgentAlertName::RedisFailoverHeld);
                assert_eq!(notice.datacenter, None);
                assert_eq!(
                    notice.summary,
                    "cache: failover held: every datacenter of the instance is down"
                );
                assert_eq!(
                    notice.description,
                    "Incident 1: the agent did not fail over: every datacenter of the instance \
                     is down."
                );
            },
        },
        Case {
            name: "an active datacenter that answers again is not news",
            start: |_| {},
            world: || world(&[Down, Up], &[Up]),
            steps: vec![],
            outcome: "hold active_recovered",
            check: |t| assert!(t.notices.is_empty(), "{:#?}", t.notices),
        },
        Case {
            name: "a failure is told with what failed",
            start: |_| {},
            world: || World {
                dns: Err(DnsFailure {
                    written: None,
                    error: "throttled".into(),
                }),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["policy ok", "dns failed"]),
            outcome: "error: DNS change failed: throttled",
            check: |t| {
                let notice = told(t);
                assert_eq!(notice.name, AgentAlertName::RedisFailoverFailed);
                assert_eq!(notice.datacenter, None);
                assert_eq!(notice.summary, "cache: failover failed");
                assert_eq!(
                    notice.description,
                    "Incident 1: DNS change failed: throttled"
                );
            },
        },
        Case {
            name: "an interruption is told as a failure",
            start: |_| {},
            world: || World {
                stop_at_wait: Some(1),
                ..world(&[Down], &[Up])
            },
            steps: vec!["guard ok", "probe_round info"],
            outcome: "interrupted: the agent stopped during confirmation; nothing was changed",
            check: |t| {
                let notice = told(t);
                assert_eq!(notice.name, AgentAlertName::RedisFailoverFailed);
                assert_eq!(notice.summary, "cache: failover failed");
                assert_eq!(
                    notice.description,
                    "Incident 1: the agent stopped during confirmation; nothing was changed"
                );
            },
        },
        Case {
            name: "a step of the closing refused: closed once, as failed, and told so",
            start: |_| {},
            world: || World {
                // The policy's hold, recorded with the close.
                refuse_record: Some(5),
                ..world(&[Down], &[Down])
            },
            steps: CONFIRMED.to_vec(),
            outcome: "error: the journal refused",
            check: |t| {
                assert_eq!(t.count("closed hold"), 0, "{:#?}", t.actions);
                assert_eq!(told(t).description, "Incident 1: the journal refused");
            },
        },
        Case {
            name: "a refused close: the outcome stands and people are still told",
            start: |s| s.cooldown_until = Some(t0() + Duration::from_secs(600)),
            world: || World {
                refuse_record: Some(2),
                ..world(&[Down], &[Up])
            },
            steps: vec!["guard hold"],
            outcome: "hold cooldown",
            check: |t| {
                assert!(
                    t.records
                        .iter()
                        .all(|r| !matches!(r, Record::Closed { .. }))
                );
                assert_eq!(told(t).name, AgentAlertName::RedisFailoverHeld);
            },
        },
    ]);
}

/// In a fleet the notice names the observers of the last confirmation round, as
/// recorded (a restart's notice, heard from the journal, says the same).
#[test]
fn a_notice_names_who_saw_the_active_datacenter_how() {
    use crate::decision::evaluation::notice::{Said, notice};
    use crate::decision::incident::{Step, StepName, StepOutcome};
    use crate::decision::ports::{Hold, Witnesses};

    let witnesses = |down: &[&str], up: &[&str], inside: &[&str]| Witnesses {
        down: down.iter().map(|s| s.to_string()).collect(),
        up: up.iter().map(|s| s.to_string()).collect(),
        inside: inside.iter().map(|s| s.to_string()).collect(),
        quorum: 2,
        partition: false,
        views: Vec::new(),
    };
    let round = |w: Witnesses| {
        Step::new(
            StepName::ProbeRound,
            StepOutcome::Info,
            "round 1 of 1",
            serde_json::json!({ "at": "2025-01-02T03:04:05Z", "probes": [], "witnesses": w }),
            t0(),
        )
    };
    let uid = InstanceId::new("cache");
    let mut said = Said::default();
    said.hear(&[
        round(witnesses(&["agent-x"], &["agent-y"], &[])),
        round(witnesses(&["agent-west", "agent-c"], &[], &["agent-east"])),
    ]);
    let failed_over = Outcome::FailedOver {
        from: DatacenterId::new("east"),
        to: DatacenterId::new("west"),
        confidence: 1.0,
    };
    assert_eq!(
        notice(4, &uid, &failed_over, &said, t0())
            .unwrap()
            .description,
        "DNS now sends cache's clients to west (confidence 1.00, incident 4). Observers of \
         the active datacenter in the last confirmation round: down for agent-west, agent-c \
         outside it (2 needed), answering for nobody, down for agent-east inside it (not \
         counted)."
    );
    let mut said = Said::default();
    said.hear(&[round(witnesses(
        &[],
        &["agent-west", "agent-c"],
        &["agent-east"],
    ))]);
    let held = Outcome::Held(Hold::PartitionWitnessed {
        active: DatacenterId::new("east"),
        down: vec!["agent-east".into()],
        up: vec!["agent-west".into(), "agent-c".into()],
        down_outside: 0,
        quorum: 2,
    });
    let told = notice(5, &uid, &held, &said, t0()).unwrap();
    assert!(
        told.description.ends_with(
            "Observers of the active datacenter in the last confirmation round: down for \
             nobody outside it (2 needed), answering for agent-west, agent-c, down for \
             agent-east inside it (not counted)."
        ),
        "{}",
        told.description
    );
}
