//! Runs one evaluation: takes what it needs to know from the engine's state, then
//! performs the core's actions through the ports, in order, feeding each result back
//! (see [`crate::decision::evaluation`]). Every decision is the core's; this file only
//! does what it is told, times it with the engine's clock, and counts it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{error, info};

use super::advisors::{self, PendingImpact};
use super::data_loss;
use super::fleet::Leading;
use super::notify::tell;
use super::probes::probe_round;
use super::{Advisors, Inner, Settings};
use crate::decision::evaluation::{
    Action, DnsFailure, Evaluation, Event, FenceCall, HookCall, Ports, Reach, Request, Start,
    lost_since,
};
use crate::decision::fleet::{self, OpenAct, SharedInstance};
use crate::decision::incident::{Outcome, Record};
use crate::decision::ports::{
    HookContext, HookRun, RecordRef, RecordValue, SwitchOutcome, Table, Write,
};
use crate::model::{DatacenterId, EndpointKey, InstanceId};

/// One evaluation's runner: what it acts with, fixed when it starts.
struct Runner {
    inner: Arc<Inner>,
    id: u64,
    instance: InstanceId,
    settings: Arc<Settings>,
    /// The advisors of the engine when the evaluation started.
    advisors: Advisors,
    /// The clients' report under way.
    clients: Option<PendingImpact>,
    /// In a fleet: the leader's term and the instance's shared record.
    leading: Option<Leading>,
    /// Where DNS sent the clients when the evaluation started: whose witnesses count.
    active: Option<DatacenterId>,
    /// Confirmation rounds asked of the fleet's observers so far.
    asked: u32,
}

/// Runs the evaluation of incident `id` to its end.
pub(super) async fn run(
    inner: Arc<Inner>,
    id: u64,
    instance: InstanceId,
    request: Option<Request>,
    leading: Option<Leading>,
) {
    let mut runner = Runner {
        settings: inner.settings(),
        advisors: inner.advisors(),
        inner,
        id,
        instance,
        clients: None,
        leading,
        active: None,
        asked: 0,
    };
    let start = runner.start(request).await;
    runner.active = start.active.clone();
    let (mut evaluation, actions) = Evaluation::start(start, runner.now());
    let mut queue = VecDeque::from(actions);
    let outcome = loop {
        let Some(action) = queue.pop_front() else {
            // Not the core's way (it ends with a close): a result the runner could not
            // give it.
            let detail = "the evaluation stopped without an outcome".to_owned();
            queue.extend(evaluation.fail(runner.now(), detail));
            continue;
        };
        if let Action::Close(outcome) = action {
            break outcome;
        }
        let Some(event) = runner.perform(action).await else {
            continue;
        };
        if let Event::JournalFailed(e) = &event {
            error!(redis_instance = %runner.instance, incident = id, error = %e, "evaluation failed");
            queue.clear();
        }
        queue.extend(evaluation.handle(runner.now(), event));
    };
    runner.finish(outcome).await;
}

impl Runner {
    fn now(&self) -> SystemTime {
        self.inner.deps.clock.now()
    }

    /// What the evaluation needs to know, read from the engine's state.
    async fn start(&self, request: Option<Request>) -> Start {
        let (inner, uid) = (&self.inner, &self.instance);
        let now = self.now();
        let shared = self.leading.as_ref().map(|l| &l.shared);
        let active = self.settings.instances.get(uid).map(|inst| {
            shared
                .and_then(|s| s.active.clone())
                .or_else(|| inner.deps.active.get(uid))
                .unwrap_or_else(|| inst.active_dc.clone())
        });
        let lost_active = active.as_ref().and_then(|dc| {
            let key = EndpointKey {
                instance: uid.clone(),
                datacenter: dc.clone(),
            };
            lost_since(Reach::of(inner.deps.store.get(&key).as_deref()), now)
        });
        let (cooldown_until, recent_decisions) = {
            let state = inner.state.lock().await;
            let ledger = &state.ledger;
            let cooldown = match shared {
                Some(shared) => shared.cooldown_until,
                None => ledger.cooldown_until.get(uid).copied(),
            };
            (cooldown, advisors::recent_decisions(ledger, uid, self.id))
        };
        Start {
            id: self.id,
            instance: uid.clone(),
            request,
            settings: Arc::clone(&self.settings),
            active,
            cooldown_until,
            lost_active,
            ports: Ports {
                client_impact: self.advisors.client_impact.as_ref().map(|s| s.name()),
                ai: self.advisors.ai.is_some(),
                dns: inner.deps.dns.is_some(),
                fenced: self.leading.is_some(),
            },
            advice: inner.advice().get(uid).cloned().unwrap_or_default(),
            recent_decisions,
        }
    }

    /// Performs one action; its result, if the core waits for one.
    async fn perform(&mut self, action: Action) -> Option<Event> {
        let inner = Arc::clone(&self.inner);
        match action {
            Action::Record(closed @ Record::Closed { .. }) => {
                self.record_close(closed).await;
                None
            }
            Action::Record(record) => inner
                .record(vec![record])
                .await
                .err()
                .map(|e| Event::JournalFailed(e.to_string())),
            Action::Probe(datacenters) => Some(Event::Probed(self.probe(&datacenters).await)),
            Action::AskClients(window) => {
                let source = self.advisors.client_impact.as_ref();
                self.clients = advisors::ask_clients(&inner, source, &self.instance, window);
                None
            }
            Action::AwaitClients => {
                let answer = advisors::await_clients(&inner, self.clients.take()).await;
                Some(Event::Clients(answer))
            }
            Action::ReadAnomalies => {
                let inst = self.settings.instances.get(&self.instance);
                Some(Event::Anomalies(advisors::anomalies(&inner, inst)))
            }
            Action::Consult(request) => {
                let advisor = self.advisors.ai.as_ref()?;
                let answer = advisors::consult(&inner, advisor.as_ref(), &request, self.id).await;
                Some(Event::Advised(answer))
            }
            Action::Remember(history) => {
                inner.advice().insert(&self.instance, *history);
                None
            }
            Action::Fence(call) => Some(Event::Fenced(self.fence(call).await)),
            Action::EstimateLoss { from, to } => {
                let inst = self.settings.instances.get(&self.instance)?;
                let now = self.now();
                let estimate = data_loss::estimate(&inner, inst, &from, &to, now);
                Some(Event::Estimated(estimate))
            }
            Action::RunHook(call) => Some(Event::Hook(self.hook(&call).await)),
            Action::Promote(dc) => Some(Event::Promoted(self.promote(&dc).await)),
            Action::SwitchDns { record, value } => {
                Some(Event::Switched(self.switch(&record, &value).await))
            }
            Action::Activate(dc) => {
                inner.deps.active.set(&self.instance, &dc);
                None
            }
            Action::Wait(d) => Some(match inner.sleep(d).await {
                true => Event::TimerFired,
                false => Event::Stopped,
            }),
            Action::Notify(alert) => {
                tell(&inner, self.id, &self.instance, *alert).await;
                None
            }
            Action::Close(_) => None,
        }
    }

    /// A round of fresh probes; in a fleet, every observer's, counted.
    async fn probe(&mut self, datacenters: &[DatacenterId]) -> crate::decision::policy::Round {
        if let (Some(leading), Some(active)) = (&self.leading, &self.active) {
            self.asked += 1;
            let id = format!("{}-{}-{}", leading.term, self.id, self.asked);
            let (uid, active) = (self.instance.clone(), active.clone());
            return self
                .inner
                .observed_round(&uid, datacenters, &active, id)
                .await;
        }
        let inst = self.settings.instances.get(&self.instance);
        probe_round(&self.inner, inst, datacenters).await
    }

    /// The leader's fence before an act: records the act in the instance's shared
    /// record, if this agent still leads in the evaluation's term.
    async fn fence(&self, call: FenceCall) -> Result<(), String> {
        let (Some(leading), Some(coordination)) =
            (&self.leading, self.inner.deps.coordination.as_ref())
        else {
            return Err("no fleet to fence in".into());
        };
        let agent = coordination.agent();
        let shared = SharedInstance {
            open: Some(OpenAct {
                agent: agent.to_owned(),
                term: leading.term.0,
                incident: self.id,
                from: call.from,
                to: call.to,
                act: call.act,
                at: self.now(),
            }),
            ..self.inner.shared_now(&self.instance, &leading.shared).await
        };
        let write = Write::Put {
            table: Table::Instances,
            key: self.instance.to_string(),
            value: fleet::encode(&shared),
        };
        let refused = match coordination.fence(leading.term, &[write]).await {
            Ok(()) => {
                crash_point(&format!("after_fence_{}", call.act.as_str()));
                return Ok(());
            }
            Err(e) => e,
        };
        self.inner
            .deps
            .metrics
            .fenced_refusal(agent, call.act.as_str());
        error!(redis_instance = %self.instance, incident = self.id, act = call.act.as_str(),
            error = %refused, "the fence refused the act: this agent does not do it");
        Err(refused.to_string())
    }

    async fn hook(&self, call: &HookCall) -> HookRun {
        let context = HookContext {
            instance: self.instance.as_str(),
            from: call.from.as_str(),
            to: call.to.as_str(),
            action: call.action,
        };
        self.inner
            .deps
            .hooks
            .run(&call.args, &context, call.timeout)
            .await
    }

    async fn promote(&self, dc: &DatacenterId) -> Result<(), String> {
        let inst = self.settings.instances.get(&self.instance);
        let Some(endpoint) = inst.and_then(|i| i.endpoints.get(dc)) else {
            return Err(format!("no endpoint in {dc}"));
        };
        self.inner
            .deps
            .prober
            .promote(endpoint)
            .await
            .map_err(|e| e.to_string())
    }

    /// The DNS change; its intent is on disk already (the action before this one).
    async fn switch(
        &self,
        record: &RecordRef,
        value: &RecordValue,
    ) -> Result<SwitchOutcome, DnsFailure> {
        let Some(provider) = self.inner.deps.dns.as_ref() else {
            return Err(DnsFailure {
                written: None,
                error: "no DNS provider is configured".into(),
            });
        };
        crash_point("after_intent");
        match provider.switch(record, value, &self.settings.switch).await {
            Ok(outcome) => {
                crash_point("after_dns");
                Ok(outcome)
            }
            Err(e) => Err(DnsFailure {
                written: e.written.as_ref().map(|c| c.0.clone()),
                error: e.to_string(),
            }),
        }
    }

    /// Records the close of the evaluation, counted first so that whoever sees the
    /// incident closed sees it counted. A refusal is logged, not fed back: the
    /// evaluation is over either way, and people are still told.
    async fn record_close(&self, closed: Record) {
        if let Record::Closed { outcome, .. } = &closed {
            self.count(outcome).await;
        }
        if let Err(e) = self.inner.record(vec![closed]).await {
            error!(redis_instance = %self.instance, incident = self.id, error = %e,
                "cannot record the end of the evaluation");
        }
    }

    /// Logs and counts the outcome.
    async fn count(&self, outcome: &Outcome) {
        let (inner, id, instance) = (&self.inner, self.id, &self.instance);
        match outcome {
            Outcome::FailedOver { from, to, .. } => {
                info!(redis_instance = %instance, incident = id,
                from = %from, to = %to, "failed over")
            }
            Outcome::Held(h) => info!(redis_instance = %instance, incident = id,
                reason = %h.describe(), "held"),
            other => info!(redis_instance = %instance, incident = id, outcome = other.label(),
                "evaluation finished"),
        }
        let metrics = &inner.deps.metrics;
        metrics.decision(instance.as_str(), outcome.label());
        let moved = match outcome {
            Outcome::FailedOver { from, to, .. } => Some((from.clone(), to.clone(), true)),
            Outcome::Failed { .. } => {
                let state = inner.state.lock().await;
                let intent = state.ledger.open.get(&id).and_then(|i| i.intent.clone());
                intent.map(|(from, to)| (from, to, false))
            }
            _ => None,
        };
        if let Some((from, to, ok)) = moved {
            metrics.failover(
                instance.as_str(),
                from.as_str(),
                to.as_str(),
                ok,
                self.now(),
            );
        }
    }

    /// The evaluation is closed and people told: in a fleet its result is settled in
    /// the store; after a failover, its effect on the clients is measured.
    async fn finish(self, outcome: Outcome) {
        if let Some(leading) = &self.leading {
            let mut shared = SharedInstance {
                open: None,
                ..self.inner.shared_now(&self.instance, &leading.shared).await
            };
            if let Outcome::FailedOver { to, .. } = &outcome {
                shared.active = Some(to.clone());
                shared.cooldown_until = Some(self.now() + self.settings.failover.cooldown);
            }
            self.inner.settle(&self.instance, leading, shared).await;
        }
        if matches!(outcome, Outcome::FailedOver { .. }) {
            advisors::measure_effect(&self.inner, self.id, &self.instance, self.now());
        }
    }
}

/// For the crash tests only: with `REDIS_FAILOVER_AGENT_CRASH_AT` set to this point's name,
/// the process aborts here, as a `kill -9` would stop it.
fn crash_point(name: &str) {
    if std::env::var_os("REDIS_FAILOVER_AGENT_CRASH_AT").is_some_and(|v| v == name) {
        tracing::error!(
            point = name,
            "REDIS_FAILOVER_AGENT_CRASH_AT: aborting as asked"
        );
        std::process::abort();
    }
}
