//! The guards, the confirmation rounds, the Sentinel wait, the forced and planned
//! verdicts, the plan and the acts.

use super::*;
use crate::decision::policy::Hold;

#[test]
fn guards() {
    run_table(&[
        Case {
            name: "an instance that is not configured",
            start: |s| {
                s.instance = InstanceId::new("ghost");
                s.active = None;
            },
            world: || world(&[Down], &[Up]),
            steps: vec!["guard hold"],
            outcome: "hold unknown_instance",
            check: nothing_else,
        },
        Case {
            name: "an alert within the cooldown of an earlier failover",
            start: |s| s.cooldown_until = Some(t0() + Duration::from_secs(600)),
            world: || world(&[Down], &[Up]),
            steps: vec!["guard hold"],
            outcome: "hold cooldown",
            check: |t| assert_eq!(t.count("probe"), 0),
        },
        Case {
            name: "a forced request skips the cooldown and confirms once",
            start: |s| {
                s.cooldown_until = Some(t0() + Duration::from_secs(600));
                s.request = Some(Request {
                    target: None,
                    force: true,
                    planned: false,
                });
            },
            world: || world(&[Up], &[Up]),
            steps: vec![
                "guard ok",
                "probe_round info",
                "policy ok",
                "dns ok",
                "verify ok",
            ],
            outcome: "failover east->west",
            check: |t| {
                assert!(t.steps[0].evidence["force"].as_bool().unwrap());
                assert_eq!(
                    t.details(StepName::ProbeRound),
                    ["round 1 of 1: east up 1.00, west up 1.00"]
                );
            },
        },
        Case {
            name: "an operator's target that is not a datacenter of the instance",
            start: |s| {
                s.request = Some(Request {
                    target: Some(DatacenterId::new("mars")),
                    force: true,
                    planned: false,
                })
            },
            world: || world(&[Down], &[Up]),
            steps: vec!["guard hold"],
            outcome: "hold unknown_target",
            check: nothing_else,
        },
        Case {
            name: "an operator's target that is active already",
            start: |s| {
                s.request = Some(Request {
                    target: Some(DatacenterId::new("east")),
                    force: false,
                    planned: false,
                })
            },
            world: || world(&[Down], &[Up]),
            steps: vec!["guard hold"],
            outcome: "hold already_active",
            check: nothing_else,
        },
    ]);
}

#[test]
fn confirmation() {
    run_table(&[
        Case {
            name: "a confirmed outage fails over",
            start: |_| {},
            world: || world(&[Down], &[Up]),
            steps: vec![
                "guard ok",
                "probe_round info",
                "probe_round info",
                "probe_round info",
                "policy ok",
                "dns ok",
                "verify ok",
            ],
            outcome: "failover east->west",
            check: |t| {
                assert_eq!(t.steps[0].detail, "active datacenter east");
                assert_eq!(
                    t.details(StepName::ProbeRound)[2],
                    "round 3 of 3: east down 0.00, west up 1.00"
                );
                assert_eq!(
                    t.details(StepName::Policy),
                    ["fail over from east to west (confidence 1.00)"]
                );
                assert_eq!(
                    t.details(StepName::Dns),
                    ["redis.example.com -> redis-west.example.com, in sync after 5 ms"]
                );
                assert_eq!(t.details(StepName::Verify), ["west answers"]);
            },
        },
        Case {
            name: "one good round of three: the active answers again, no more rounds",
            start: |_| {},
            world: || world(&[Down, Up, Down], &[Up]),
            steps: vec![
                "guard ok",
                "probe_round info",
                "probe_round info",
                "policy hold",
            ],
            outcome: "hold active_recovered",
            check: |t| {
                assert_eq!(t.outcome, Outcome::Held(Hold::ActiveRecovered { round: 2 }));
                assert_eq!(t.count("probe"), 2);
            },
        },
        Case {
            name: "a target down in one round is never chosen",
            start: |_| {},
            world: || world(&[Down], &[Up, Down, Up]),
            steps: after(&CONFIRMED, &["policy hold"]),
            outcome: "hold no_healthy_target",
            check: nothing_else,
        },
        Case {
            name: "everything down holds",
            start: |_| {},
            world: || world(&[Down], &[Down]),
            steps: after(&CONFIRMED, &["policy hold"]),
            outcome: "hold all_down",
            check: nothing_else,
        },
        Case {
            name: "a primary its Sentinel still hears is a suspected partition",
            start: |_| {},
            world: || World {
                east_heard: Some(Duration::from_millis(700)),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["policy hold"]),
            outcome: "hold partition_suspected",
            check: |t| {
                assert_eq!(
                    t.outcome,
                    Outcome::Held(Hold::PartitionSuspected {
                        active: DatacenterId::new("east"),
                        sentinel_heard: Some(Duration::from_millis(700)),
                    })
                );
                // Each round records what east's Sentinel said.
                let round = &t.steps[1].evidence;
                assert!(
                    round.to_string().contains("\"sentinel_heard\":0.7"),
                    "{round}"
                );
                assert!(t.details(StepName::Policy)[0].contains("Sentinel had a PING reply"));
            },
        },
        Case {
            name: "Sentinel promotes inside the datacenter, then the new primary answers",
            start: |_| {},
            world: || World {
                sentinel_probes: 4,
                ..world(&[Down, Down, Down, Down, Up], &[Up])
            },
            steps: after(
                &CONFIRMED,
                &[
                    "sentinel_wait info",
                    "probe_round info",
                    "sentinel_wait info",
                    "probe_round info",
                    "policy hold",
                ],
            ),
            outcome: "hold active_recovered",
            check: |t| {
                assert_eq!(
                    t.details(StepName::ProbeRound)[4],
                    "round 5 (waiting for Sentinel): east up 1.00, west up 1.00"
                );
            },
        },
        Case {
            name: "Sentinel never finishes within sentinel_failover_wait: the evidence decides",
            start: |s| settings(s, |s| s.failover.sentinel_wait = Duration::from_millis(50)),
            world: || World {
                sentinel_probes: 1000,
                ..world(&[Down], &[Up])
            },
            steps: after(
                &CONFIRMED,
                &[
                    "sentinel_wait info",
                    "probe_round info",
                    "sentinel_wait info",
                    "probe_round info",
                    "sentinel_wait info",
                    "probe_round info",
                    "policy ok",
                    "dns ok",
                    "verify ok",
                ],
            ),
            outcome: "failover east->west",
            check: |t| {
                assert!(t.details(StepName::ProbeRound)[2].contains("(Sentinel failing over)"));
            },
        },
        Case {
            name: "the agent stops during confirmation",
            start: |_| {},
            world: || World {
                stop_at_wait: Some(1),
                ..world(&[Down], &[Up])
            },
            steps: vec!["guard ok", "probe_round info"],
            outcome: "interrupted: the agent stopped during confirmation; nothing was changed",
            check: nothing_else,
        },
        Case {
            name: "the agent stops while Sentinel is failing over",
            start: |_| {},
            world: || World {
                sentinel_probes: 1000,
                stop_at_wait: Some(3),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["sentinel_wait info"]),
            outcome: "interrupted: the agent stopped while Sentinel was failing over; nothing was changed",
            check: nothing_else,
        },
    ]);
}

#[test]
fn operator_requests() {
    run_table(&[
        Case {
            name: "a forced request to a target that is down holds",
            start: |s| {
                s.request = Some(Request {
                    target: Some(DatacenterId::new("west")),
                    force: true,
                    planned: false,
                })
            },
            world: || world(&[Up], &[Down]),
            steps: vec!["guard ok", "probe_round info", "policy hold"],
            outcome: "hold no_healthy_target",
            check: nothing_else,
        },
        Case {
            name: "a request without force is confirmed and acts even without auto_failover",
            start: |s| {
                settings(s, |s| s.failover.auto = false);
                s.request = Some(Request {
                    target: Some(DatacenterId::new("west")),
                    force: false,
                    planned: false,
                });
            },
            world: || world(&[Down], &[Up]),
            steps: vec![
                "guard ok",
                "probe_round info",
                "probe_round info",
                "probe_round info",
                "policy ok",
                "dns ok",
                "verify ok",
            ],
            outcome: "failover east->west",
            check: nothing_else,
        },
        Case {
            name: "a planned move (failback) needs the target healthy in every round",
            start: |s| {
                s.active = Some(DatacenterId::new("west"));
                s.request = Some(Request {
                    target: Some(DatacenterId::new("east")),
                    force: false,
                    planned: true,
                });
            },
            world: || world(&[Up], &[Up]),
            steps: vec![
                "guard ok",
                "probe_round info",
                "probe_round info",
                "probe_round info",
                "policy ok",
                "dns ok",
                "verify ok",
            ],
            outcome: "failover west->east",
            check: |t| {
                // The active answering does not end a planned move's rounds early.
                assert_eq!(t.count("probe east,west") + t.count("probe west,east"), 3);
            },
        },
        Case {
            name: "a planned move to a target that dips holds",
            start: |s| {
                s.active = Some(DatacenterId::new("west"));
                s.request = Some(Request {
                    target: Some(DatacenterId::new("east")),
                    force: false,
                    planned: true,
                });
            },
            world: || world(&[Up, Down, Up], &[Up]),
            steps: after(&CONFIRMED, &["policy hold"]),
            outcome: "hold no_healthy_target",
            check: nothing_else,
        },
    ]);
}

#[test]
fn plans_and_acts() {
    run_table(&[
        Case {
            name: "without automatic failover it only recommends",
            start: |s| settings(s, |s| s.failover.auto = false),
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "plan info"]),
            outcome: "would_failover east->west",
            check: |t| {
                assert_eq!(
                    t.details(StepName::Plan),
                    [
                        "would fail over: automatic failover is off (auto_failover: false or --no-failover)"
                    ]
                );
                assert_eq!(t.count("dns "), 0);
            },
        },
        Case {
            name: "--no-failover only recommends",
            start: |s| settings(s, |s| s.no_failover = true),
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "plan info"]),
            outcome: "would_failover east->west",
            check: nothing_else,
        },
        Case {
            name: "no DNS record for the instance: a recommendation",
            start: |s| settings(s, |s| s.records.clear()),
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "plan info"]),
            outcome: "would_failover east->west",
            check: |t| {
                assert_eq!(
                    t.details(StepName::Plan),
                    ["would fail over: no DNS record is configured for this instance"]
                );
            },
        },
        Case {
            name: "no DNS provider: a recommendation",
            start: |s| s.ports.dns = false,
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "plan info"]),
            outcome: "would_failover east->west",
            check: nothing_else,
        },
        Case {
            name: "no DNS value for the target",
            start: |s| {
                settings(s, |s| {
                    for r in s.records.values_mut() {
                        r.values.remove(&DatacenterId::new("west"));
                    }
                })
            },
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "plan failed"]),
            outcome: "error: no DNS value for datacenter west",
            check: nothing_else,
        },
        Case {
            name: "a pre-failover hook can veto",
            start: |s| {
                settings(s, |s| {
                    s.failover.hooks.pre_failover = Some(vec!["/bin/sh".into()]);
                })
            },
            world: || World {
                pre_hook: hook(1, "lag 30s"),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["policy ok", "pre_failover_hook hold"]),
            outcome: "hold vetoed",
            check: |t| {
                let Outcome::Held(Hold::Vetoed { detail }) = &t.outcome else {
                    panic!("{:?}", t.outcome)
                };
                assert_eq!(detail, "/bin/sh exited with 1: lag 30s");
                assert_eq!(t.count("dns "), 0);
                assert_eq!(t.count("intent"), 0);
            },
        },
        Case {
            name: "hooks and promotion run around the DNS change, in order",
            start: |s| {
                settings(s, |s| {
                    s.failover.hooks.pre_failover = Some(vec!["pre".into()]);
                    s.failover.hooks.post_failover = Some(vec!["post".into()]);
                    s.failover.promote.insert(InstanceId::new("cache"));
                })
            },
            world: || world(&[Down], &[Up]),
            steps: after(
                &CONFIRMED,
                &[
                    "policy ok",
                    "pre_failover_hook ok",
                    "promote ok",
                    "dns ok",
                    "post_failover_hook ok",
                    "verify ok",
                ],
            ),
            outcome: "failover east->west",
            check: |t| {
                assert_eq!(t.details(StepName::Promote), ["REPLICAOF NO ONE on west"]);
                assert_eq!(t.count("promote west"), 1);
                let told: Vec<_> = t
                    .hooks
                    .iter()
                    .map(|h| (h.args[0].as_str(), h.from.as_str(), h.to.as_str(), h.action))
                    .collect();
                assert_eq!(
                    told,
                    [
                        ("pre", "east", "west", "failover"),
                        ("post", "east", "west", "failover")
                    ]
                );
            },
        },
        Case {
            name: "a failed post-failover hook is recorded; the failover stands",
            start: |s| {
                settings(s, |s| {
                    s.failover.hooks.post_failover = Some(vec!["post".into()])
                })
            },
            world: || World {
                post_hook: hook(2, "cannot reach the pager"),
                ..world(&[Down], &[Up])
            },
            steps: after(
                &CONFIRMED,
                &[
                    "policy ok",
                    "dns ok",
                    "post_failover_hook failed",
                    "verify ok",
                ],
            ),
            outcome: "failover east->west",
            check: nothing_else,
        },
        Case {
            name: "a failed promotion stops before DNS",
            start: |s| {
                settings(s, |s| {
                    _ = s.failover.promote.insert(InstanceId::new("cache"))
                })
            },
            world: || World {
                promote: Err("connection refused".into()),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["policy ok", "promote failed"]),
            outcome: "error: REPLICAOF NO ONE on west failed: connection refused",
            check: |t| assert_eq!(t.count("intent"), 0),
        },
        Case {
            name: "DNS already pointing at the target",
            start: |_| {},
            world: || World {
                dns: Ok(SwitchOutcome::AlreadyPointing),
                ..world(&[Down], &[Up])
            },
            steps: failover_steps(),
            outcome: "failover east->west",
            check: |t| {
                assert_eq!(
                    t.details(StepName::Dns),
                    ["redis.example.com already pointed at redis-west.example.com"]
                );
                assert!(
                    t.records
                        .iter()
                        .any(|r| matches!(r, Record::Applied { change: None, .. }))
                );
            },
        },
        Case {
            name: "a DNS change that fails after it was written",
            start: |_| {},
            world: || World {
                dns: Err(DnsFailure {
                    written: Some("C9".into()),
                    error: "not in sync after 60 s".into(),
                }),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["policy ok", "dns failed"]),
            outcome: "error: DNS change C9 written but not confirmed: not in sync after 60 s",
            check: |t| {
                assert_eq!(t.count("intent west"), 1);
                assert_eq!(t.count("applied"), 0);
                assert_eq!(t.count("activate"), 0);
            },
        },
        Case {
            name: "a DNS change that fails",
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
            check: nothing_else,
        },
        Case {
            name: "the new active does not answer: recorded, the failover stands",
            start: |_| {},
            world: || world(&[Down], &[Up, Up, Up, Down]),
            steps: after(&CONFIRMED, &["policy ok", "dns ok", "verify failed"]),
            outcome: "failover east->west",
            check: |t| assert_eq!(t.details(StepName::Verify), ["west does not answer"]),
        },
        Case {
            name: "the journal refuses the intent: no DNS change",
            start: |_| {},
            world: || World {
                refuse_record: Some(6),
                ..world(&[Down], &[Up])
            },
            steps: after(&CONFIRMED, &["policy ok"]),
            outcome: "error: the journal refused",
            check: |t| {
                assert_eq!(t.count("dns "), 0);
                assert_eq!(t.count("intent"), 1, "asked, refused");
            },
        },
    ]);
}
