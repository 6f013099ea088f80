//! The evaluation's decision table. A case is a start (settings, request, cooldown,
//! ports), a scripted world that answers each action (probes per datacenter, the
//! clients, the model, hooks, promotion, DNS, the journal, a shutdown), and what is
//! expected: the steps recorded and the outcome, with checks of their details and of
//! the actions where they matter. No runtime, no sleeps: a wait moves the case's time.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::*;
use crate::advisors::ai::fake::Script;
use crate::advisors::ai::guard::validate_answer;
use crate::advisors::ai::truncate;
use crate::decision::policy::Probe;
use crate::decision::ports::ChangeId;
use crate::decision::ports::{Discarded, RAW_LIMIT};
use crate::decision::settings::HookSettings;
use crate::decision::testkit;
use crate::health::{self, HealthInput};

#[path = "advice_tests.rs"]
mod advice;
#[path = "cases_tests.rs"]
mod cases;
#[path = "data_loss_tests.rs"]
mod data_loss;
#[path = "notices_tests.rs"]
mod notices;

/// The steps of a confirmed outage that fails over.
fn failover_steps() -> Vec<&'static str> {
    after(&CONFIRMED, &["policy ok", "dns ok", "verify ok"])
}

pub(super) fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// How a datacenter answers one probe.
#[derive(Debug, Clone, Copy)]
pub(super) enum P {
    Up,
    Down,
    /// Up, answering PING in 1 s.
    Slow,
}

pub(super) use P::{Down, Slow, Up};

/// The outside world of a case.
#[derive(Debug, Clone)]
pub(super) struct World {
    /// Per datacenter, its answers in order; the last repeats.
    pub probes: BTreeMap<&'static str, VecDeque<P>>,
    /// Probes of east that report Sentinel failing over, from the first.
    pub sentinel_probes: u32,
    /// East's Sentinel last heard its primary this long before each probe.
    pub east_heard: Option<Duration>,
    /// The clients' report; none scripted: unknown.
    pub clients: ClientAnswer,
    /// The model's answers in order; the last repeats (none: hold 0.9).
    pub advice: VecDeque<Script>,
    pub pre_hook: HookRun,
    pub post_hook: HookRun,
    pub promote: Result<(), String>,
    /// What the target lacks of the active datacenter's writes (default: no
    /// replication between them).
    pub estimate: Estimate,
    pub dns: Result<SwitchOutcome, DnsFailure>,
    /// The journal refuses its n-th record (from 1).
    pub refuse_record: Option<usize>,
    /// The agent stops during its n-th wait (from 1).
    pub stop_at_wait: Option<usize>,
}

pub(super) fn hook(exit: i32, stderr: &str) -> HookRun {
    HookRun {
        program: "/bin/sh".into(),
        exit_code: Some(exit),
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: stderr.into(),
        millis: 3,
    }
}

/// East and west answering as scripted, everything else as it should.
pub(super) fn world(east: &[P], west: &[P]) -> World {
    World {
        probes: [
            ("east", east.iter().copied().collect()),
            ("west", west.iter().copied().collect()),
        ]
        .into_iter()
        .collect(),
        sentinel_probes: 0,
        east_heard: None,
        clients: ClientAnswer::Answered(crate::decision::ports::ClientImpact::unknown(
            "no answer scripted",
        )),
        advice: VecDeque::new(),
        pre_hook: hook(0, ""),
        post_hook: hook(0, ""),
        promote: Ok(()),
        estimate: Estimate {
            basis: crate::model::replication::Basis::NoReplication,
            bytes: None,
            seconds: None,
            as_of: None,
            detail: "no replication from east to west is known".into(),
        },
        dns: Ok(SwitchOutcome::Changed {
            change: ChangeId("C1".into()),
            in_sync_after: Duration::from_millis(5),
        }),
        refuse_record: None,
        stop_at_wait: None,
    }
}

impl World {
    fn probe(&mut self, dc: &DatacenterId) -> Probe {
        let answers = self
            .probes
            .get_mut(dc.as_str())
            .expect("a scripted datacenter");
        let p = if answers.len() > 1 {
            answers.pop_front().unwrap()
        } else {
            answers[0]
        };
        let latency = match p {
            Up => Some(1.0),
            Slow => Some(1000.0),
            Down => None,
        };
        let up = !matches!(p, Down);
        let seen = HealthInput {
            up,
            ping_latency_ms: latency,
            ..HealthInput::default()
        };
        let east = dc.as_str() == "east";
        let sentinel_failover = east && self.sentinel_probes > 0;
        if east {
            self.sentinel_probes = self.sentinel_probes.saturating_sub(1);
        }
        Probe {
            datacenter: dc.clone(),
            up,
            health: health::probe(&seen, None),
            sentinel_failover,
            sentinel_heard: if east { self.east_heard } else { None },
        }
    }

    /// Answers as the engine's fake advisor does: through the adapter's validation.
    fn consult(&mut self, request: &AdviceRequest) -> Consultation {
        let script = if self.advice.len() > 1 {
            self.advice.pop_front()
        } else {
            self.advice.front().cloned()
        };
        let script = script.unwrap_or_else(|| Script::answer("hold", None, 0.9));
        let (result, raw) = match script {
            Script::Content(c) => (validate_answer(&c, request), Some(truncate(&c, RAW_LIMIT))),
            Script::Discard(d) => (Err(d), None),
            Script::Stall(d) => (
                Err(Discarded::Timeout {
                    after_ms: d.as_millis() as u64,
                }),
                None,
            ),
        };
        Consultation {
            advisor: "fake".into(),
            model: "scripted".into(),
            // The adapter's own clock, far from the evaluation's: the core must not
            // compare it with its own time.
            at: SystemTime::UNIX_EPOCH,
            latency: Duration::ZERO,
            fingerprint: request.fingerprint(),
            result,
            raw,
        }
    }
}

impl World {
    /// The world's answer to an action that is not about time or the journal.
    fn answer(&mut self, action: Action, now: SystemTime, t: &mut Trace) -> Option<Event> {
        match action {
            Action::Probe(dcs) => Some(Event::Probed(Round {
                at: now,
                probes: dcs.iter().map(|dc| self.probe(dc)).collect(),
                witnesses: None,
            })),
            Action::AskClients(window) => {
                t.windows.push(window);
                None
            }
            Action::AwaitClients => Some(Event::Clients(self.clients.clone())),
            Action::ReadAnomalies => Some(Event::Anomalies(Vec::new())),
            Action::Consult(request) => {
                let answer = self.consult(&request);
                t.requests.push(*request);
                Some(Event::Advised(answer))
            }
            Action::Remember(history) => {
                t.advice = Some(*history);
                None
            }
            Action::RunHook(call) => {
                let run = match call.hook {
                    Hook::PreFailover => self.pre_hook.clone(),
                    Hook::PostFailover => self.post_hook.clone(),
                };
                t.hooks.push(call);
                Some(Event::Hook(run))
            }
            Action::EstimateLoss { .. } => Some(Event::Estimated(self.estimate.clone())),
            Action::Promote(_) => Some(Event::Promoted(self.promote.clone())),
            Action::SwitchDns { .. } => Some(Event::Switched(self.dns.clone())),
            // Time and the journal are the driver's.
            _ => None,
        }
    }
}

/// What a case did.
#[derive(Debug)]
pub(super) struct Trace {
    /// Every action, in short.
    pub actions: Vec<String>,
    pub steps: Vec<Step>,
    pub records: Vec<Record>,
    pub outcome: Outcome,
    pub windows: Vec<Window>,
    pub requests: Vec<AdviceRequest>,
    pub hooks: Vec<HookCall>,
    /// The advice history last handed back.
    pub advice: Option<AdviceHistory>,
    /// What people were told.
    pub notices: Vec<AgentAlert>,
    /// The case's time when the evaluation closed.
    pub ended: SystemTime,
}

impl Trace {
    /// `name outcome` of every step.
    pub fn step_names(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| format!("{} {}", s.name.as_str(), s.outcome.as_str()))
            .collect()
    }

    pub fn details(&self, name: StepName) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.detail.as_str())
            .collect()
    }

    fn count(&self, prefix: &str) -> usize {
        self.actions
            .iter()
            .filter(|a| a.starts_with(prefix))
            .count()
    }
}

/// The outcome in short: `failover east->west`, `hold <kind>`, `error: <detail>`...
pub(super) fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::FailedOver { from, to, .. } => format!("failover {from}->{to}"),
        Outcome::WouldFailOver { from, to, .. } => format!("would_failover {from}->{to}"),
        Outcome::Held(h) => format!("hold {}", h.kind()),
        Outcome::Failed { detail } => format!("error: {detail}"),
        Outcome::Interrupted { detail } => format!("interrupted: {detail}"),
        Outcome::Resolved => "resolved".into(),
    }
}

fn short(action: &Action) -> String {
    let dcs = |d: &[DatacenterId]| d.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(",");
    match action {
        Action::Record(Record::Step { step, .. }) => {
            format!("step {} {}", step.name.as_str(), step.outcome.as_str())
        }
        Action::Record(Record::Intent { to, .. }) => format!("intent {to}"),
        Action::Record(Record::Applied { to, .. }) => format!("applied {to}"),
        Action::Record(Record::Closed { outcome, .. }) => format!("closed {}", show(outcome)),
        Action::Record(other) => format!("record {other:?}"),
        Action::Probe(d) => format!("probe {}", dcs(d)),
        Action::AskClients(_) => "ask clients".into(),
        Action::AwaitClients => "await clients".into(),
        Action::ReadAnomalies => "read anomalies".into(),
        Action::Consult(_) => "consult".into(),
        Action::Remember(_) => "remember advice".into(),
        Action::Fence(call) => format!("fence {}", call.act.as_str()),
        Action::EstimateLoss { from, to } => format!("estimate {from}->{to}"),
        Action::RunHook(call) => format!("hook {:?}", call.hook),
        Action::Promote(dc) => format!("promote {dc}"),
        Action::SwitchDns { value, .. } => format!("dns {}", value.values.join(",")),
        Action::Activate(dc) => format!("activate {dc}"),
        Action::Wait(d) => format!("wait {} ms", d.as_millis()),
        Action::Notify(alert) => format!("notify {}", alert.name),
        Action::Close(o) => format!("close {}", show(o)),
    }
}

/// The start of an alert's evaluation of `cache` (east active), automatic failover on.
pub(super) fn start() -> Start {
    Start {
        id: 1,
        instance: InstanceId::new("cache"),
        request: None,
        settings: Arc::new(testkit::settings(true, false, HookSettings::default())),
        active: Some(DatacenterId::new("east")),
        cooldown_until: None,
        lost_active: None,
        ports: Ports {
            client_impact: None,
            ai: false,
            dns: true,
            fenced: false,
        },
        advice: AdviceHistory::default(),
        recent_decisions: Vec::new(),
    }
}

/// Changes the settings of a start.
pub(super) fn settings(s: &mut Start, change: impl FnOnce(&mut Settings)) {
    change(Arc::make_mut(&mut s.settings));
}

/// Both advisors configured: the fake clients and the fake model.
pub(super) fn advised(s: &mut Start) {
    s.ports.client_impact = Some("fake");
    s.ports.ai = true;
}

/// Runs the evaluation against the world until it closes.
pub(super) fn drive(start: Start, mut world: World) -> Trace {
    let mut now = t0();
    let (mut evaluation, first) = Evaluation::start(start, now);
    let mut queue = VecDeque::from(first);
    let mut t = Trace {
        actions: Vec::new(),
        steps: Vec::new(),
        records: Vec::new(),
        outcome: Outcome::Resolved,
        windows: Vec::new(),
        requests: Vec::new(),
        hooks: Vec::new(),
        advice: None,
        notices: Vec::new(),
        ended: now,
    };
    let (mut recorded, mut waits) = (0, 0);
    loop {
        assert!(t.actions.len() < 10_000, "runaway: {:?}", &t.actions[..50]);
        let action = queue.pop_front().expect("every event leads to an action");
        t.actions.push(short(&action));
        let event = match action {
            Action::Close(outcome) => {
                t.outcome = outcome;
                t.ended = now;
                assert_ends_with_its_close(&t);
                return t;
            }
            Action::Record(record) => {
                recorded += 1;
                if world.refuse_record == Some(recorded) {
                    // As the runner does: a refused close is not fed back.
                    let closing = matches!(record, Record::Closed { .. });
                    (!closing).then(|| Event::JournalFailed("the journal refused".into()))
                } else {
                    if let Record::Step { step, .. } = &record {
                        t.steps.push(step.clone());
                    }
                    t.records.push(record);
                    None
                }
            }
            Action::Notify(alert) => {
                t.notices.push(*alert);
                None
            }
            Action::Wait(d) => {
                waits += 1;
                now += d;
                Some(match world.stop_at_wait == Some(waits) {
                    true => Event::Stopped,
                    false => Event::TimerFired,
                })
            }
            other => world.answer(other, now, &mut t),
        };
        if let Some(event) = event {
            if matches!(event, Event::JournalFailed(_)) {
                queue.clear();
            }
            let next = evaluation.handle(now, event);
            queue.extend(next);
        }
    }
}

/// Every evaluation ends the same way: its close recorded, once; people told, at most
/// once; then the close.
fn assert_ends_with_its_close(t: &Trace) {
    let outcome = show(&t.outcome);
    let mut ending = vec![format!("closed {outcome}")];
    ending.extend(t.notices.iter().map(|n| format!("notify {}", n.name)));
    ending.push(format!("close {outcome}"));
    assert!(t.actions.ends_with(&ending), "{:#?}", t.actions);
    assert_eq!(t.count("closed "), 1, "{:#?}", t.actions);
    assert!(t.notices.len() <= 1, "{:#?}", t.notices);
}

/// The one notice of a case, sent when the evaluation closed.
pub(super) fn told(t: &Trace) -> &AgentAlert {
    assert_eq!(t.notices.len(), 1, "{:#?}", t.actions);
    let notice = &t.notices[0];
    assert_eq!(notice.redis_instance, "cache");
    assert_eq!(notice.starts_at, t.ended);
    assert_eq!(notice.labels["incident"], "1");
    notice
}

/// One row of a table.
pub(super) struct Case {
    pub name: &'static str,
    pub start: fn(&mut Start),
    pub world: fn() -> World,
    /// `name outcome` of each step, in order; empty: not checked (the case checks them).
    pub steps: Vec<&'static str>,
    /// [`show`] of the outcome.
    pub outcome: &'static str,
    /// Anything else the case asserts.
    pub check: fn(&Trace),
}

pub(super) fn nothing_else(_: &Trace) {}

pub(super) fn run_table(cases: &[Case]) {
    for case in cases {
        let mut s = start();
        (case.start)(&mut s);
        let trace = drive(s, (case.world)());
        if !case.steps.is_empty() {
            assert_eq!(
                trace.step_names(),
                case.steps,
                "{}: {:#?}",
                case.name,
                trace.actions
            );
        }
        assert_eq!(
            show(&trace.outcome),
            case.outcome,
            "{}: {:#?}",
            case.name,
            trace.steps
        );
        (case.check)(&trace);
    }
}

/// `first`, then `rest`.
pub(super) fn after(first: &[&'static str], rest: &[&'static str]) -> Vec<&'static str> {
    [first, rest].concat()
}

/// The steps of three confirmation rounds after the guard.
pub(super) const CONFIRMED: [&str; 4] = [
    "guard ok",
    "probe_round info",
    "probe_round info",
    "probe_round info",
];

#[test]
fn the_intent_is_recorded_before_the_dns_change_and_the_active_moves_after_it() {
    let t = drive(start(), world(&[Down], &[Up]));
    let acts = &t.actions;
    let at = |a: &str| {
        acts.iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("no {a}: {acts:#?}"))
    };
    assert!(at("intent west") < at("dns redis-west.example.com"));
    assert!(at("dns redis-west.example.com") < at("step dns ok"));
    assert!(at("step dns ok") < at("applied west"));
    assert!(at("applied west") < at("activate west"));
    assert!(at("activate west") < at("probe west"));
    assert_eq!(t.count("dns "), 1);
    // Three rounds, two intervals between them.
    assert_eq!(t.count("wait 10 ms"), 2);
    assert_eq!(t.ended, t0() + Duration::from_millis(20));
}

#[test]
fn an_hour_of_advice_holds_runs_without_waiting() {
    // The tables drive hours of advice holds and cooldowns without waiting.
    let mut s = start();
    settings(&mut s, |s| {
        s.ai_max_hold = Duration::from_secs(3600);
        s.failover.confirm_interval = Duration::from_secs(10);
    });
    advised(&mut s);
    let mut w = world(&[Down], &[Up]);
    w.advice = [Script::answer("hold", None, 0.9)].into();
    let t = drive(s, w);
    assert_eq!(show(&t.outcome), "failover east->west");
    assert!(t.ended >= t0() + Duration::from_secs(3600));
}
