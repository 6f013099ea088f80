//! The data-loss check between the policy's choice and the first act (or the
//! recommendation): held with the figures,
//! within the budget, forced over it, no replication, no budget.

use super::*;
use crate::decision::policy::Hold;
use crate::model::replication::{Basis, Budget};

const MIB: u64 = 1024 * 1024;

fn lagging(bytes: Option<u64>, seconds: Option<u64>) -> World {
    let mut w = world(&[Down], &[Up]);
    w.estimate = Estimate {
        basis: Basis::Replication,
        bytes,
        seconds: seconds.map(Duration::from_secs),
        as_of: Some(t0() - Duration::from_secs(14)),
        detail: "west replicates from east: offsets 3355443 apart".into(),
    };
    w
}

fn forced(s: &mut Start) {
    s.request = Some(Request {
        target: None,
        force: true,
        planned: false,
    });
}

fn the_estimate_is_on_record(t: &Trace) {
    let step = t
        .steps
        .iter()
        .find(|s| s.name == StepName::DataLoss)
        .unwrap();
    assert_eq!(step.evidence["estimate"]["basis"], "replication");
    assert_eq!(step.evidence["from"], "east");
    assert_eq!(step.evidence["to"], "west");
    assert_eq!(step.evidence["budget"]["bytes"], MIB);
}

#[test]
fn the_data_loss_budget() {
    run_table(&[
        Case {
            name: "b is behind a by more than the budget: held with the figures, before any act",
            start: |_| {},
            world: || lagging(Some(3_355_443), Some(14)),
            steps: after(&CONFIRMED, &["policy ok", "data_loss hold"]),
            outcome: "hold data_loss_budget",
            check: |t| {
                the_estimate_is_on_record(t);
                assert_eq!(t.count("hook"), 0);
                assert_eq!(t.count("intent"), 0);
                let detail = t.details(StepName::DataLoss)[0];
                assert_eq!(
                    detail,
                    "west is behind east by about 3.2 MiB and 14 s of writes; the data-loss \
                     budget is 1 MiB / 10 s; held. Force a failover to accept the loss"
                );
                let Outcome::Held(Hold::DataLossBudget {
                    estimate, budget, ..
                }) = &t.outcome
                else {
                    panic!("{:?}", t.outcome)
                };
                assert_eq!((estimate.bytes, *budget), (Some(3_355_443), Budget::STORE));
                let notice = told(t);
                assert!(notice.summary.contains(detail), "{}", notice.summary);
                assert!(
                    notice.description.contains("offsets 3355443 apart"),
                    "the notice says how the figures were found: {}",
                    notice.description
                );
            },
        },
        Case {
            name: "within the budget: failed over, the estimate on record",
            start: |_| {},
            world: || lagging(Some(4096), Some(1)),
            steps: after(
                &CONFIRMED,
                &["policy ok", "data_loss ok", "dns ok", "verify ok"],
            ),
            outcome: "failover east->west",
            check: |t| {
                the_estimate_is_on_record(t);
                assert_eq!(
                    t.details(StepName::DataLoss),
                    [
                        "west lacks about 4 KiB and 1 s of east's writes, within the budget of \
                      1 MiB / 10 s"
                    ]
                );
            },
        },
        Case {
            name: "a forced failover over the budget goes on and says it overrode it",
            start: forced,
            world: || lagging(Some(3_355_443), Some(14)),
            steps: vec![
                "guard ok",
                "probe_round info",
                "policy ok",
                "data_loss info",
                "dns ok",
                "verify ok",
            ],
            outcome: "failover east->west",
            check: |t| {
                the_estimate_is_on_record(t);
                let step = t
                    .steps
                    .iter()
                    .find(|s| s.name == StepName::DataLoss)
                    .unwrap();
                assert_eq!(step.evidence["overridden"], true);
                assert!(step.detail.contains("overridden by a forced failover"));
                let notice = told(t);
                assert!(
                    notice
                        .description
                        .contains("overridden by a forced failover"),
                    "{}",
                    notice.description
                );
            },
        },
        Case {
            name: "replication whose lag cannot be told holds",
            start: |_| {},
            world: || lagging(None, None),
            steps: after(&CONFIRMED, &["policy ok", "data_loss hold"]),
            outcome: "hold data_loss_budget",
            check: |t| {
                assert!(
                    t.details(StepName::DataLoss)[0]
                        .starts_with("west copies east's writes, but how far behind it is"),
                    "{:?}",
                    t.details(StepName::DataLoss)
                );
            },
        },
        Case {
            name: "no replication between the datacenters: the budget does not apply",
            start: |_| {},
            world: || world(&[Down], &[Up]),
            steps: after(&CONFIRMED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| assert_eq!(t.count("estimate east->west"), 1),
        },
        Case {
            name: "an instance without a budget (a cache) is not estimated",
            start: |s| {
                settings(s, |s| {
                    let uid = InstanceId::new("cache");
                    s.failover
                        .data_loss
                        .instances
                        .insert(uid, Budget::UNBOUNDED);
                })
            },
            world: || lagging(Some(u64::MAX), Some(3600)),
            steps: after(&CONFIRMED, &["policy ok", "dns ok", "verify ok"]),
            outcome: "failover east->west",
            check: |t| assert_eq!(t.count("estimate"), 0),
        },
        Case {
            name: "a recommendation over the budget says the budget would hold it",
            start: |s| settings(s, |s| s.failover.auto = false),
            world: || lagging(Some(3_355_443), Some(14)),
            steps: after(&CONFIRMED, &["policy ok", "data_loss hold"]),
            outcome: "hold data_loss_budget",
            check: |t| {
                the_estimate_is_on_record(t);
                assert_eq!(t.count("dns "), 0);
            },
        },
        Case {
            name: "a recommendation within the budget carries the estimate",
            start: |s| settings(s, |s| s.failover.auto = false),
            world: || lagging(Some(4096), Some(1)),
            steps: after(&CONFIRMED, &["policy ok", "data_loss ok", "plan info"]),
            outcome: "would_failover east->west",
            check: the_estimate_is_on_record,
        },
        Case {
            name: "the check comes before the pre-failover hook",
            start: |s| {
                settings(s, |s| {
                    s.failover.hooks.pre_failover = Some(vec!["/bin/true".into()])
                })
            },
            world: || lagging(Some(3_355_443), Some(14)),
            steps: after(&CONFIRMED, &["policy ok", "data_loss hold"]),
            outcome: "hold data_loss_budget",
            check: |t| assert!(t.hooks.is_empty()),
        },
    ]);
}
