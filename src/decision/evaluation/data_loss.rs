//! Between the policy's choice and the plan: what the target lacks of the active datacenter's
//! writes, against the instance's `max_data_loss` (Patroni's `maximum_lag_on_failover`
//! in spirit). The runner estimates from what the agent last read of both sides
//! ([`crate::model::replication`]); over the budget the evaluation holds, unless an
//! operator forced the failover, and the record says which.

use serde_json::json;

use super::{Action, Out, Phase, Run};
use crate::decision::incident::{Outcome, StepName, StepOutcome};
use crate::decision::policy::Hold;
use crate::model::replication::{Basis, Estimate};

impl Run {
    /// Asks for the estimate, unless the instance has no budget (a cache, or
    /// `max_data_loss: none`).
    pub(super) fn check_data_loss(&mut self, out: &mut Out) {
        let Some((target, _)) = &self.chosen else {
            return;
        };
        if self.settings.failover.budget(&self.inst.uid).is_unbounded() {
            return self.proceed(out);
        }
        self.phase = Phase::Estimating;
        out.push(Action::EstimateLoss {
            from: self.active.clone(),
            to: target.clone(),
        });
    }

    /// Within the budget, or with no replication between the datacenters, the failover
    /// goes on; over it, it holds unless forced. Every estimate of a replication is
    /// recorded with its figures, and a forced failover says it overrode the budget.
    pub(super) fn estimated(&mut self, out: &mut Out, estimate: Estimate) {
        let (Phase::Estimating, Some((target, _))) = (self.phase, &self.chosen) else {
            return;
        };
        let (from, to) = (self.active.clone(), target.clone());
        let budget = self.settings.failover.budget(&self.inst.uid);
        let checked = budget.check(&estimate);
        if estimate.basis == Basis::NoReplication {
            // The budget does not apply: b serves what b has, as without the check.
            return self.proceed(out);
        }
        let overridden = checked.is_err() && self.force();
        let evidence = json!({
            "from": from,
            "to": to,
            "estimate": estimate,
            "budget": budget,
            "overridden": overridden,
        });
        let name = StepName::DataLoss;
        let lacks = format!("{to} lacks {} of {from}'s writes", estimate.amount());
        if checked.is_ok() {
            let detail = format!("{lacks}, within the budget of {budget}");
            out.step(self.id, name, StepOutcome::Ok, detail, evidence);
            return self.proceed(out);
        }
        if overridden {
            let detail = format!(
                "{lacks}, over the budget of {budget}; overridden by a forced failover: \
                 the loss is accepted"
            );
            out.step(self.id, name, StepOutcome::Info, detail, evidence);
            return self.proceed(out);
        }
        let hold = Hold::DataLossBudget {
            from,
            to,
            estimate: Box::new(estimate),
            budget,
        };
        out.step(self.id, name, StepOutcome::Hold, hold.describe(), evidence);
        out.close(Outcome::Held(hold));
    }
}
