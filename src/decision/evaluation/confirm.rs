//! Step 2 and the verdict: confirmation rounds of fresh probes `confirm_interval` apart,
//! ended early once the active endpoint answers again; the wait while Sentinel promotes
//! a replica inside the active datacenter; the forced and planned verdicts.

use serde_json::json;

use super::{Action, Out, Phase, Run};
use crate::decision::incident::{StepName, StepOutcome};
use crate::decision::policy::{self, Evidence, Hold, Round, Thresholds, Verdict};
use crate::model::DatacenterId;

/// Probes the first round: `failover_consecutive_threshold` of them in all, one when
/// forced.
pub(super) fn first_round(run: &mut Run, out: &mut Out) {
    let of = if run.force() {
        1
    } else {
        run.settings.failover.consecutive_threshold.max(1)
    };
    run.phase = Phase::Confirming { round: 1, of };
    out.push(Action::Probe(run.candidates.clone()));
}

impl Run {
    /// Round `n` of `of` is in. An alert's evaluation stops confirming as soon as the
    /// active endpoint answers well: the policy then holds.
    pub(super) fn confirmed(&mut self, out: &mut Out, round: Round, n: u32, of: u32) {
        let active_good = round
            .probes
            .iter()
            .any(|p| p.datacenter == self.active && p.up && p.health >= policy::ACTIVE_BAD_BELOW);
        self.record_round(out, round, format!("round {n} of {of}"));
        if n >= of || (active_good && !self.force() && !self.planned()) {
            return self.rounds_done(out);
        }
        self.phase = Phase::Confirming { round: n + 1, of };
        out.push(Action::Wait(self.settings.failover.confirm_interval));
    }

    /// Records a round as the `probe_round` step and keeps it.
    pub(super) fn record_round(&mut self, out: &mut Out, round: Round, label: String) {
        let summary: Vec<String> = round
            .probes
            .iter()
            .map(|p| {
                let state = if p.up { "up" } else { "down" };
                let sentinel = if p.sentinel_failover {
                    " (Sentinel failing over)"
                } else {
                    ""
                };
                format!("{} {state} {:.2}{sentinel}", p.datacenter, p.health)
            })
            .collect();
        out.step(
            self.id,
            StepName::ProbeRound,
            StepOutcome::Info,
            format!("{label}: {}", summary.join(", ")),
            serde_json::to_value(&round).unwrap_or_default(),
        );
        self.rounds.push(round);
    }

    fn rounds_done(&mut self, out: &mut Out) {
        if self.asks_clients() {
            self.phase = Phase::AwaitingClients;
            out.push(Action::AwaitClients);
        } else {
            self.judge(out);
        }
    }

    /// The verdict on the rounds: forced, planned, or the policy's on an alert.
    pub(super) fn judge(&mut self, out: &mut Out) {
        let requested = self.request.as_ref().and_then(|r| r.target.clone());
        if self.force() {
            let verdict = forced_verdict(&self.rounds, &self.active, requested.as_ref());
            self.decide(out, verdict);
        } else if let (true, Some(target)) = (self.planned(), requested) {
            let verdict = policy::judge_planned(&self.rounds, &target);
            self.decide(out, verdict);
        } else {
            self.judge_alert(out);
        }
    }

    /// The policy on the rounds so far. While Sentinel is failing over inside the active
    /// datacenter, probes another round after `confirm_interval` (the policy bounds the
    /// wait by `sentinel_failover_wait`) and lets its promotion finish first.
    pub(super) fn judge_alert(&mut self, out: &mut Out) {
        let f = &self.settings.failover;
        let thresholds = Thresholds {
            confidence: f.confidence_threshold,
            sentinel_wait: f.sentinel_wait,
        };
        let seen_since = self.rounds.iter().find_map(|r| {
            r.probes
                .iter()
                .any(|p| p.datacenter == self.active && p.sentinel_failover)
                .then_some(r.at)
        });
        let evidence = Evidence {
            active: &self.active,
            datacenters: &self.candidates,
            rounds: &self.rounds,
            sentinel_seen_for: seen_since.map(|t| out.now.duration_since(t).unwrap_or_default()),
            clients: self.clients.status,
        };
        let verdict = policy::judge(&evidence, thresholds);
        if let Verdict::Hold(hold @ Hold::SentinelFailover { .. }) = &verdict {
            let (detail, evidence) = (hold.describe(), json!(hold));
            out.step(
                self.id,
                StepName::SentinelWait,
                StepOutcome::Info,
                detail,
                evidence,
            );
            self.phase = Phase::SentinelWait;
            out.push(Action::Wait(f.confirm_interval));
            return;
        }
        self.judged(out, verdict);
    }

    /// The policy's verdict on an alert. The AI advisor is asked only about a failover
    /// (advice can never start one, so asking otherwise would only cost money), and
    /// only when an alert started the evaluation: an operator's request is a person's
    /// decision already.
    fn judged(&mut self, out: &mut Out, verdict: Verdict) {
        match (&self.advising, verdict) {
            (Some(_), v @ Verdict::Hold(_)) => self.decide(out, v),
            (Some(_), v) => self.advise_again(out, v),
            (None, v @ Verdict::Failover { .. }) if self.ports.ai && self.request.is_none() => {
                self.start_advice(out, v)
            }
            (None, v) => self.decide(out, v),
        }
    }
}

/// A forced request: no confirmation, but never a target that is down or unknown.
pub(super) fn forced_verdict(
    rounds: &[Round],
    active: &DatacenterId,
    target: Option<&DatacenterId>,
) -> Verdict {
    let last = rounds.last();
    let probe =
        |dc: &DatacenterId| last.and_then(|r| r.probes.iter().find(|p| &p.datacenter == dc));
    let chosen = match target {
        Some(t) => probe(t).filter(|p| p.up),
        None => last.and_then(|r| {
            r.probes
                .iter()
                .filter(|p| &p.datacenter != active && p.up)
                .max_by(|a, b| a.health.total_cmp(&b.health))
        }),
    };
    match chosen {
        Some(p) => Verdict::Failover {
            target: p.datacenter.clone(),
            confidence: 1.0,
        },
        None => Verdict::Hold(Hold::NoHealthyTarget),
    }
}
