//! Steps 5 to 7: the policy's failover becomes a plan (or a recommendation, when the
//! agent may not act or has no DNS record to change), the data-loss check
//! (`data_loss`), then the acts in order: the pre-failover hook that can veto, the promotion of a replica target, the DNS intent on
//! disk, the DNS change, the post-failover hook; then the verification.

use serde_json::json;

use super::{Action, DnsFailure, FenceCall, Hook, HookCall, Out, Phase, Plan, Run};
use crate::decision::incident::{Outcome, Record, StepName, StepOutcome};
use crate::decision::policy::{Hold, Round};
use crate::decision::ports::{HookRun, RecordValue, SwitchOutcome};
use crate::model::DatacenterId;

impl Run {
    /// The policy chose a failover to `target`: first what the target lacks of the
    /// active datacenter's writes, also when the agent only recommends, so that the
    /// recommendation says whether the budget would hold it.
    pub(super) fn plan(&mut self, out: &mut Out, target: DatacenterId, confidence: f64) {
        let active = self.active.clone();
        out.step(
            self.id,
            StepName::Policy,
            StepOutcome::Ok,
            format!("fail over from {active} to {target} (confidence {confidence:.2})"),
            json!({ "from": active, "to": target, "confidence": confidence }),
        );
        self.chosen = Some((target, confidence));
        self.check_data_loss(out);
    }

    /// Within the data-loss budget, or none applies: plan the failover, or say why it
    /// only recommends.
    pub(super) fn proceed(&mut self, out: &mut Out) {
        let Some((target, confidence)) = self.chosen.clone() else {
            return;
        };
        let active = self.active.clone();
        // An operator's request acts unless --no-failover; alerts act only with
        // auto_failover.
        let s = &self.settings;
        let acts = !s.no_failover && (self.request.is_some() || s.failover.auto);
        let record = s.records.get(&self.inst.uid);
        let (Some(record), true, true) = (record, self.ports.dns, acts) else {
            let why = if !acts {
                "automatic failover is off (auto_failover: false or --no-failover)"
            } else {
                "no DNS record is configured for this instance"
            };
            out.step(
                self.id,
                StepName::Plan,
                StepOutcome::Info,
                format!("would fail over: {why}"),
                json!(null),
            );
            let (from, to) = (active, target);
            return out.close(Outcome::WouldFailOver {
                from,
                to,
                confidence,
            });
        };
        let Some(value) = record.values.get(&target).cloned() else {
            let detail = format!("no DNS value for datacenter {target}");
            out.step(
                self.id,
                StepName::Plan,
                StepOutcome::Failed,
                detail.clone(),
                json!(null),
            );
            return out.close(Outcome::Failed { detail });
        };
        self.plan = Some(Plan {
            target,
            confidence,
            record: record.clone(),
            value,
        });
        self.run_hook(out, Hook::PreFailover);
    }

    /// Runs the hook if one is configured; otherwise goes on as if it had succeeded.
    pub(super) fn run_hook(&mut self, out: &mut Out, hook: Hook) {
        let hooks = &self.settings.failover.hooks;
        let args = match hook {
            Hook::PreFailover => hooks.pre_failover.clone(),
            Hook::PostFailover => hooks.post_failover.clone(),
        };
        let (Some(args), Some(plan)) = (args, &self.plan) else {
            return match hook {
                Hook::PreFailover => self.promote(out),
                Hook::PostFailover => self.verify(out),
            };
        };
        let (step, phase) = match hook {
            Hook::PreFailover => (StepName::PreFailoverHook, Phase::PreHook),
            Hook::PostFailover => (StepName::PostFailoverHook, Phase::PostHook),
        };
        let call = Action::RunHook(HookCall {
            hook,
            args,
            timeout: hooks.timeout,
            from: self.active.clone(),
            to: plan.target.clone(),
            action: if self.planned() {
                "failback"
            } else {
                "failover"
            },
        });
        self.act(out, step, phase, vec![call]);
    }

    /// A pre-failover hook that did not succeed vetoes; a post-failover one is recorded.
    pub(super) fn hook_ran(&mut self, out: &mut Out, run: HookRun) {
        let ok = run.succeeded();
        let evidence = serde_json::to_value(&run).unwrap_or_default();
        match self.phase {
            Phase::PreHook => {
                let outcome = if ok {
                    StepOutcome::Ok
                } else {
                    StepOutcome::Hold
                };
                let name = StepName::PreFailoverHook;
                out.step(self.id, name, outcome, run.summary(), evidence);
                if !ok {
                    let detail = run.summary();
                    return out.close(Outcome::Held(Hold::Vetoed { detail }));
                }
                self.promote(out);
            }
            Phase::PostHook => {
                let outcome = if ok {
                    StepOutcome::Ok
                } else {
                    StepOutcome::Failed
                };
                let name = StepName::PostFailoverHook;
                out.step(self.id, name, outcome, run.summary(), evidence);
                self.verify(out);
            }
            _ => {}
        }
    }

    /// `REPLICAOF NO ONE` on the target, for instances listed in `promote`.
    fn promote(&mut self, out: &mut Out) {
        let Some(plan) = &self.plan else { return };
        let promotes = self.settings.failover.promote.contains(&self.inst.uid)
            && self.inst.endpoints.contains_key(&plan.target);
        if !promotes {
            return self.switch(out);
        }
        let promote = Action::Promote(plan.target.clone());
        self.act(out, StepName::Promote, Phase::Promoting, vec![promote]);
    }

    pub(super) fn promoted(&mut self, out: &mut Out, result: Result<(), String>) {
        let Some(target) = self.plan.as_ref().map(|p| p.target.clone()) else {
            return;
        };
        match result {
            Ok(()) => {
                let detail = format!("REPLICAOF NO ONE on {target}");
                out.step(
                    self.id,
                    StepName::Promote,
                    StepOutcome::Ok,
                    detail,
                    json!(null),
                );
                self.switch(out);
            }
            Err(e) => {
                let detail = format!("REPLICAOF NO ONE on {target} failed: {e}");
                let (name, failed) = (StepName::Promote, StepOutcome::Failed);
                out.step(self.id, name, failed, detail.clone(), json!(null));
                out.close(Outcome::Failed { detail });
            }
        }
    }

    /// The intent goes on disk first: a restart then knows a change may have been made.
    fn switch(&mut self, out: &mut Out) {
        let Some(plan) = &self.plan else { return };
        let intent = Action::Record(Record::Intent {
            incident: self.id,
            instance: self.inst.uid.clone(),
            from: self.active.clone(),
            to: plan.target.clone(),
            record: plan.record.record.name.clone(),
            values: vec![plan.value.clone()],
        });
        let switch = Action::SwitchDns {
            record: plan.record.record.clone(),
            value: RecordValue::single(plan.value.clone(), plan.record.ttl),
        };
        self.act(out, StepName::Dns, Phase::Switching, vec![intent, switch]);
    }

    /// Starts an act (`actions`, waiting in `phase`): at once for a single agent; in a
    /// fleet, once the leader's fence has passed, so that an agent that no longer leads
    /// does nothing (and a successor knows from the fleet's store what was begun).
    fn act(&mut self, out: &mut Out, step: StepName, phase: Phase, actions: Vec<Action>) {
        let Some(plan) = self.plan.as_ref().filter(|_| self.ports.fenced) else {
            self.phase = phase;
            return out.actions.extend(actions);
        };
        out.push(Action::Fence(FenceCall {
            act: step,
            from: self.active.clone(),
            to: plan.target.clone(),
        }));
        self.phase = Phase::Fencing;
        self.fenced = Some((step, phase, actions));
    }

    /// The fence answered. Refused before the DNS change, the evaluation stops here:
    /// this agent does nothing more, and the fleet's leader evaluates afresh. Refused
    /// after it, the post-failover hook is not run and the failover is verified and
    /// closed as done (DNS moved; the successor finds it so).
    pub(super) fn fence_answered(&mut self, out: &mut Out, result: Result<(), String>) {
        let (Phase::Fencing, Some((step, phase, actions))) = (self.phase, self.fenced.take())
        else {
            return;
        };
        let why = match result {
            Ok(()) => {
                self.phase = phase;
                return out.actions.extend(actions);
            }
            Err(why) => why,
        };
        let failed = StepOutcome::Failed;
        let detail = format!("not done: {why}");
        out.step(self.id, step, failed, detail, json!({ "fence": why }));
        if step == StepName::PostFailoverHook {
            return self.verify(out);
        }
        out.close(Outcome::Interrupted {
            detail: format!(
                "stopped before the {} step: {why}; this agent did nothing more, \
                 and the fleet's leader evaluates afresh",
                step.as_str()
            ),
        });
    }

    pub(super) fn switched(&mut self, out: &mut Out, result: Result<SwitchOutcome, DnsFailure>) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        let name = &plan.record.record.name;
        let value = &plan.value;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                let detail = match &e.written {
                    Some(change) => {
                        format!("DNS change {change} written but not confirmed: {}", e.error)
                    }
                    None => format!("DNS change failed: {}", e.error),
                };
                out.step(
                    self.id,
                    StepName::Dns,
                    StepOutcome::Failed,
                    detail.clone(),
                    json!(null),
                );
                return out.close(Outcome::Failed { detail });
            }
        };
        let (change, detail) = match outcome {
            SwitchOutcome::AlreadyPointing => (None, format!("{name} already pointed at {value}")),
            SwitchOutcome::Changed {
                change,
                in_sync_after,
            } => (
                Some(change.0),
                format!(
                    "{name} -> {value}, in sync after {} ms",
                    in_sync_after.as_millis()
                ),
            ),
        };
        out.step(self.id, StepName::Dns, StepOutcome::Ok, detail, json!(null));
        out.push(Action::Record(Record::Applied {
            incident: self.id,
            instance: self.inst.uid.clone(),
            to: plan.target.clone(),
            change,
        }));
        out.push(Action::Activate(plan.target));
        self.run_hook(out, Hook::PostFailover);
    }

    /// Step 7: the new active datacenter answers.
    fn verify(&mut self, out: &mut Out) {
        let Some(plan) = &self.plan else { return };
        self.phase = Phase::Verifying;
        out.push(Action::Probe(vec![plan.target.clone()]));
    }

    pub(super) fn verified(&mut self, out: &mut Out, round: Round) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        let up = round.probes.first().is_some_and(|p| p.up);
        let target = &plan.target;
        out.step(
            self.id,
            StepName::Verify,
            if up {
                StepOutcome::Ok
            } else {
                StepOutcome::Failed
            },
            format!(
                "{target} {}",
                if up { "answers" } else { "does not answer" }
            ),
            serde_json::to_value(&round).unwrap_or_default(),
        );
        out.close(Outcome::FailedOver {
            from: self.active.clone(),
            to: plan.target,
            confidence: plan.confidence,
        });
    }
}
