//! One evaluation as a state machine with no I/O and no clock (DESIGN.md "Deciding"),
//! built as raft-rs's `RawNode` and quinn-proto are: [`Evaluation::start`] takes what
//! the evaluation needs to know ([`Start`]); every result from the outside world comes
//! back as an [`Event`] with the time it happened ([`Evaluation::handle`]); what to do
//! next comes out as [`Action`]s, to be performed in order. The engine's runner performs
//! them (probes, the journal, the advisors, hooks, DNS), feeds their results back and
//! owns the real clock, so every decision here is a function of its inputs.
//!
//! An evaluation goes: the guards (`guard`); confirmation rounds of fresh probes, with
//! the early exit when the active endpoint answers again and the wait for a Sentinel
//! promotion inside the active datacenter (`confirm`); the clients' report
//! (`clients`); the AI advice and its bounded hold loop (`advise`); the verdict, the
//! plan, the data-loss check (`data_loss`), the acts, the DNS intent recorded before the
//! change, and the verification (`act`). Each step is an [`Action::Record`] placed
//! before the action that depends on it: the runner stops at the first record the
//! journal refuses. An evaluation ends by recording its close, telling people what it
//! decided (`notice`, with what the advisors said), and [`Action::Close`].

mod act;
mod advise;
mod clients;
mod confirm;
mod data_loss;
pub mod effect;
mod guard;
pub mod notice;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::decision::advice::book::AdviceHistory;
use crate::decision::incident::{Outcome, Record, Step, StepName, StepOutcome};
use crate::decision::ports::{
    AdviceRequest, AgentAlert, AnomalyEvidence, Consultation, HookRun, RecentDecision, RecordRef,
    RecordValue, Round, SwitchOutcome, Verdict, Window,
};
use crate::decision::settings::{InstanceRecord, Settings};
use crate::model::replication::Estimate;
use crate::model::{DatacenterId, Instance, InstanceId};

pub use clients::{CLIENT_IMPACT_WAIT, ClientAnswer, DECISION_WINDOW, Reach, lost_since};

/// An operator's request through the API, or the failback watch's.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub target: Option<DatacenterId>,
    /// Skip confirmation and cooldown.
    pub force: bool,
    /// A planned move (a failback): the target must stay healthy; the active
    /// datacenter need not be failing.
    pub planned: bool,
}

/// The optional ports the engine has, by what the evaluation needs to know of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ports {
    /// The client impact source's name, when one is configured.
    pub client_impact: Option<&'static str>,
    pub ai: bool,
    pub dns: bool,
    /// The agent is one of a fleet: every act waits for the leader's fence
    /// ([`Action::Fence`]).
    pub fenced: bool,
}

/// What an evaluation knows when it starts, taken from the engine's state.
#[derive(Debug, Clone)]
pub struct Start {
    pub id: u64,
    pub instance: InstanceId,
    /// `None`: an alert started it.
    pub request: Option<Request>,
    pub settings: Arc<Settings>,
    /// Where DNS sends the instance's clients (its home until a failover moved it);
    /// `None` when the instance is not configured.
    pub active: Option<DatacenterId>,
    pub cooldown_until: Option<SystemTime>,
    /// How long ago the agent lost the active endpoint, if its collection fails now
    /// ([`lost_since`]).
    pub lost_active: Option<Duration>,
    pub ports: Ports,
    /// The AI advisor's consultations about this instance so far.
    pub advice: AdviceHistory,
    /// The instance's latest closed incidents, newest first, for the AI advisor.
    pub recent_decisions: Vec<RecentDecision>,
}

/// A result from the outside world.
#[derive(Debug, Clone)]
pub enum Event {
    /// The fresh probes asked for by [`Action::Probe`].
    Probed(Round),
    /// The clients' report asked for by [`Action::AwaitClients`].
    Clients(ClientAnswer),
    /// The anomaly scores asked for by [`Action::ReadAnomalies`].
    Anomalies(Vec<AnomalyEvidence>),
    /// The AI advisor's answer to [`Action::Consult`].
    Advised(Consultation),
    Hook(HookRun),
    /// What the target lacks, asked for by [`Action::EstimateLoss`].
    Estimated(Estimate),
    /// `REPLICAOF NO ONE` on the target; the error as the prober said it.
    Promoted(Result<(), String>),
    Switched(Result<SwitchOutcome, DnsFailure>),
    /// The leader's fence asked for by [`Action::Fence`]: passed, or why not.
    Fenced(Result<(), String>),
    /// An [`Action::Wait`] is over.
    TimerFired,
    /// The agent is stopping: a wait was cut short.
    Stopped,
    /// The journal refused a record: the actions after it were not performed. (A
    /// refused close is not fed back: the evaluation is over either way.)
    JournalFailed(String),
}

/// A DNS change that failed, perhaps after it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsFailure {
    /// The provider's change id, if the change was written before the failure.
    pub written: Option<String>,
    pub error: String,
}

/// A hook to run, with what it is told.
#[derive(Debug, Clone, PartialEq)]
pub struct HookCall {
    pub hook: Hook,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub from: DatacenterId,
    pub to: DatacenterId,
    /// `failover` or `failback`.
    pub action: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PreFailover,
    PostFailover,
}

/// The act a fence is asked for, and the failover it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct FenceCall {
    /// `pre_failover_hook`, `promote`, `dns` or `post_failover_hook`.
    pub act: StepName,
    pub from: DatacenterId,
    pub to: DatacenterId,
}

/// Something for the runner to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Append to the journal, durably, before anything that follows; a refusal comes
    /// back as [`Event::JournalFailed`], but for the close's.
    Record(Record),
    /// Probe these datacenters of the instance, all at once.
    Probe(Vec<DatacenterId>),
    /// Start the clients' report over `window` in the background.
    AskClients(Window),
    /// Wait at most [`CLIENT_IMPACT_WAIT`] for the report.
    AwaitClients,
    /// Read the latest anomaly scores of every datacenter of the instance.
    ReadAnomalies,
    Consult(Box<AdviceRequest>),
    /// Keep the instance's advice history, for the next evaluation and the API.
    Remember(Box<AdviceHistory>),
    /// Pass the fleet leader's fence before the act it names, recording it in the
    /// fleet's store; the result comes back as [`Event::Fenced`]. Only in a fleet.
    Fence(FenceCall),
    /// Estimate what `to` lacks of `from`'s writes, from what the agent last read of
    /// both; the answer comes back as [`Event::Estimated`].
    EstimateLoss {
        from: DatacenterId,
        to: DatacenterId,
    },
    RunHook(HookCall),
    Promote(DatacenterId),
    /// Point the record at `value`, reading it first (no write when it already does)
    /// and waiting until the provider has the change in sync.
    SwitchDns {
        record: RecordRef,
        value: RecordValue,
    },
    /// DNS sends the instance's clients to this datacenter now.
    Activate(DatacenterId),
    /// Fire [`Event::TimerFired`] after this long, or [`Event::Stopped`] on shutdown.
    Wait(Duration),
    /// Tell people through the notifier; a failure to is only logged. It follows the
    /// close's record, so that what people are told is on disk already.
    Notify(Box<AgentAlert>),
    /// The evaluation is over; nothing follows. Its close is recorded already, and
    /// people told when the outcome is news.
    Close(Outcome),
}

/// One evaluation.
#[derive(Debug)]
pub struct Evaluation {
    incident: u64,
    instance: InstanceId,
    /// What the advisors said in the steps recorded so far, for the notice.
    said: notice::Said,
    /// `None` once closed.
    run: Option<Run>,
}

impl Evaluation {
    /// Runs the guards at `now`; the first actions follow.
    pub fn start(start: Start, now: SystemTime) -> (Evaluation, Vec<Action>) {
        let mut evaluation = Evaluation {
            incident: start.id,
            instance: start.instance.clone(),
            said: notice::Said::default(),
            run: None,
        };
        let (run, actions) = Run::start(start, now);
        evaluation.run = run;
        let actions = evaluation.settle(now, actions);
        (evaluation, actions)
    }

    /// Takes one result at `now`; the actions it leads to follow. Every result but the
    /// last leads to at least one action; the last leads to [`Action::Close`].
    pub fn handle(&mut self, now: SystemTime, event: Event) -> Vec<Action> {
        if let Event::JournalFailed(detail) = event {
            return self.fail(now, detail);
        }
        let Some(run) = self.run.as_mut() else {
            return Vec::new();
        };
        let mut out = Out {
            now,
            actions: Vec::new(),
        };
        run.handle(&mut out, event);
        self.settle(now, out.actions)
    }

    /// Ends the evaluation as failed at `now`, whatever it was waiting for: the journal
    /// refused a record, or the runner could not give it the result it needs.
    pub fn fail(&mut self, now: SystemTime, detail: String) -> Vec<Action> {
        self.settle(now, vec![Action::Close(Outcome::Failed { detail })])
    }

    /// Takes note of what the advisors said in `actions`; when they close the
    /// evaluation, puts the close's record and the notice before [`Action::Close`].
    fn settle(&mut self, now: SystemTime, mut actions: Vec<Action>) -> Vec<Action> {
        self.said.hear(actions.iter().filter_map(|a| match a {
            Action::Record(Record::Step { step, .. }) => Some(step),
            _ => None,
        }));
        let Some(Action::Close(outcome)) = actions.last() else {
            return actions;
        };
        self.run = None;
        let closed = Record::Closed {
            incident: self.incident,
            outcome: outcome.clone(),
            at: now,
        };
        let told = notice::notice(self.incident, &self.instance, outcome, &self.said, now);
        let close = actions.len() - 1;
        actions.insert(close, Action::Record(closed));
        if let Some(alert) = told {
            actions.insert(close + 1, Action::Notify(Box::new(alert)));
        }
        actions
    }
}

/// The actions an event leads to, and its time.
struct Out {
    now: SystemTime,
    actions: Vec<Action>,
}

impl Out {
    fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Records a step of `incident` at this event's time.
    fn step(
        &mut self,
        incident: u64,
        name: StepName,
        outcome: StepOutcome,
        detail: impl Into<String>,
        evidence: serde_json::Value,
    ) {
        let step = Step::new(name, outcome, detail, evidence, self.now);
        self.push(Action::Record(Record::Step { incident, step }));
    }

    fn close(&mut self, outcome: Outcome) {
        self.push(Action::Close(outcome));
    }
}

/// What the evaluation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Confirmation round `round` of `of`: its probes, or the interval before them.
    Confirming {
        round: u32,
        of: u32,
    },
    AwaitingClients,
    /// Sentinel is promoting inside the active datacenter: the next round.
    SentinelWait,
    /// The anomaly scores for the next consultation.
    ReadingAnomalies,
    Consulting,
    /// The advice held the failover back: the next round.
    AdviceRound,
    /// The fence before an act: the act and its phase wait in [`Run::fenced`].
    Fencing,
    /// What the target lacks of the active datacenter's writes.
    Estimating,
    PreHook,
    Promoting,
    Switching,
    PostHook,
    Verifying,
}

/// An evaluation past its guards.
#[derive(Debug)]
struct Run {
    id: u64,
    inst: Instance,
    settings: Arc<Settings>,
    request: Option<Request>,
    ports: Ports,
    /// When the evaluation started: the earliest the outage is known to have run.
    started: SystemTime,
    active: DatacenterId,
    /// The datacenters probed each round.
    candidates: Vec<DatacenterId>,
    rounds: Vec<Round>,
    clients: clients::ClientView,
    advice: AdviceHistory,
    recent_decisions: Vec<RecentDecision>,
    /// Set once the AI advisor is being asked.
    advising: Option<advise::Advising>,
    /// Set once the policy chose a failover: the target and the confidence.
    chosen: Option<(DatacenterId, f64)>,
    /// Set once the policy chose a failover the agent acts on.
    plan: Option<Plan>,
    phase: Phase,
    /// An act waiting for its fence: its step, its phase and its actions.
    fenced: Option<(StepName, Phase, Vec<Action>)>,
}

/// The failover the evaluation carries out.
#[derive(Debug, Clone)]
struct Plan {
    target: DatacenterId,
    confidence: f64,
    record: InstanceRecord,
    /// The record's value for the target.
    value: String,
}

impl Run {
    fn force(&self) -> bool {
        self.request.as_ref().is_some_and(|r| r.force)
    }

    fn planned(&self) -> bool {
        self.request.as_ref().is_some_and(|r| r.planned)
    }

    fn handle(&mut self, out: &mut Out, event: Event) {
        match event {
            Event::TimerFired => out.push(Action::Probe(self.candidates.clone())),
            Event::Stopped => out.close(self.stopped()),
            Event::Probed(round) => self.probed(out, round),
            Event::Clients(answer) => self.clients_answered(out, answer),
            Event::Anomalies(anomalies) => self.anomalies_read(out, anomalies),
            Event::Advised(consultation) => self.advised(out, consultation),
            Event::Estimated(estimate) => self.estimated(out, estimate),
            Event::Hook(run) => self.hook_ran(out, run),
            Event::Promoted(result) => self.promoted(out, result),
            Event::Switched(result) => self.switched(out, result),
            Event::Fenced(result) => self.fence_answered(out, result),
            // Closed by `Evaluation::handle` before it gets here.
            Event::JournalFailed(_) => {}
        }
    }

    fn probed(&mut self, out: &mut Out, round: Round) {
        match self.phase {
            Phase::Confirming { round: n, of } => self.confirmed(out, round, n, of),
            Phase::SentinelWait => {
                let label = format!("round {} (waiting for Sentinel)", self.rounds.len() + 1);
                self.record_round(out, round, label);
                self.judge_alert(out);
            }
            Phase::AdviceRound => {
                let label = format!("round {} (AI advice)", self.rounds.len() + 1);
                self.record_round(out, round, label);
                self.judge_alert(out);
            }
            Phase::Verifying => self.verified(out, round),
            _ => {}
        }
    }

    /// How a shutdown during a wait ends the evaluation: nothing was changed yet.
    fn stopped(&self) -> Outcome {
        let when = match self.phase {
            _ if self.advising.is_some() => "while the AI advice held the failover back",
            Phase::SentinelWait => "while Sentinel was failing over",
            _ => "during confirmation",
        };
        Outcome::Interrupted {
            detail: format!("the agent stopped {when}; nothing was changed"),
        }
    }

    /// The verdict is in: a hold ends the evaluation, a failover goes to the plan.
    fn decide(&mut self, out: &mut Out, verdict: Verdict) {
        match verdict {
            Verdict::Hold(hold) => {
                let evidence = serde_json::json!(hold);
                out.step(
                    self.id,
                    StepName::Policy,
                    StepOutcome::Hold,
                    hold.describe(),
                    evidence,
                );
                out.close(Outcome::Held(hold));
            }
            Verdict::Failover { target, confidence } => self.plan(out, target, confidence),
        }
    }
}

#[cfg(test)]
mod tests;
