//! Step 1: the guards. An instance that is not configured, a cooldown (not for a forced
//! request), an operator's target that is not one of the instance's datacenters or is
//! the active one: each ends the evaluation held, recorded as the `guard` step.

use std::time::SystemTime;

use serde_json::json;

use super::{Action, Out, Phase, Run, Start, clients, confirm};
use crate::decision::incident::{Outcome, StepName, StepOutcome};
use crate::decision::policy::{self, GuardInput, Hold};
use crate::decision::ports::Window;
use crate::model::DatacenterId;

impl Run {
    /// The guards, then the first confirmation round (and the clients' report beside
    /// it). `None`: a guard ended the evaluation.
    pub(super) fn start(start: Start, now: SystemTime) -> (Option<Run>, Vec<Action>) {
        let mut out = Out {
            now,
            actions: Vec::new(),
        };
        let run = Run::guarded(start, &mut out);
        (run, out.actions)
    }

    fn guarded(start: Start, out: &mut Out) -> Option<Run> {
        let id = start.id;
        let held = |out: &mut Out, hold: Hold| {
            out.step(
                id,
                StepName::Guard,
                StepOutcome::Hold,
                hold.describe(),
                json!(null),
            );
            out.close(Outcome::Held(hold));
            None
        };
        let (Some(inst), Some(active)) = (
            start.settings.instances.get(&start.instance).cloned(),
            start.active.clone(),
        ) else {
            return held(out, Hold::UnknownInstance);
        };
        let force = start.request.as_ref().is_some_and(|r| r.force);
        let datacenters: Vec<DatacenterId> = inst.endpoints.keys().cloned().collect();
        let guarded = policy::guard(&GuardInput {
            instance: &start.instance,
            datacenters: Some(&datacenters),
            cooldown_until: if force { None } else { start.cooldown_until },
            now: out.now,
        });
        if let Some(hold) = guarded {
            return held(out, hold);
        }
        // An operator's target must be one of the instance's datacenters, not the active.
        let candidates = match start.request.as_ref().and_then(|r| r.target.clone()) {
            Some(t) if !datacenters.contains(&t) => {
                return held(out, Hold::UnknownTarget { datacenter: t });
            }
            Some(t) if t == active => return held(out, Hold::AlreadyActive),
            Some(t) => vec![active.clone(), t],
            None => datacenters.clone(),
        };
        out.step(
            id,
            StepName::Guard,
            StepOutcome::Ok,
            format!("active datacenter {active}"),
            json!({ "active": active, "datacenters": datacenters, "force": force }),
        );
        let mut run = Run {
            id,
            inst,
            settings: start.settings,
            request: start.request,
            ports: start.ports,
            started: out.now,
            active,
            candidates,
            rounds: Vec::new(),
            clients: clients::ClientView::default(),
            advice: start.advice,
            recent_decisions: start.recent_decisions,
            advising: None,
            chosen: None,
            plan: None,
            phase: Phase::Confirming { round: 1, of: 1 },
            fenced: None,
        };
        // The clients' report runs beside the rounds (not for a forced or planned move:
        // the active datacenter's state does not matter there).
        if run.asks_clients() {
            let recent = clients::recent_period(start.lost_active);
            out.push(Action::AskClients(Window {
                recent,
                baseline: clients::DECISION_WINDOW.1,
                end: Some(out.now),
            }));
        }
        confirm::first_round(&mut run, out);
        Some(run)
    }

    pub(super) fn asks_clients(&self) -> bool {
        self.ports.client_impact.is_some() && !self.force() && !self.planned()
    }
}
