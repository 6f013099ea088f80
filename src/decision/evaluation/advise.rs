//! Step 4: the AI advisor, asked about a failover the policy supports on an alert. The
//! rules in [`crate::decision::advice`] decide what its answer may change; here they
//! are applied in turn: read the evidence, consult (or reuse the latest answer, as the
//! rate limit says), combine, and while the advice holds the failover back or awaits
//! confirmation, probe another round after `confirm_interval`, judge it again, and ask
//! again. The rules bound that loop (`ai_max_hold`, the confirmation count); a bound of
//! its own caps it again, should they ever be wrong.

use serde_json::json;

use super::{Action, Out, Phase, Run};
use crate::decision::advice::rules::{self, Decision, Rules};
use crate::decision::incident::{StepName, StepOutcome};
use crate::decision::policy::{Hold, Verdict};
use crate::decision::ports::{AdviceRequest, AnomalyEvidence, Consultation, RoundEvidence};
use crate::model::DatacenterId;

/// The advice loop of an evaluation.
#[derive(Debug)]
pub(super) struct Advising {
    /// The policy's latest verdict: a failover.
    verdict: Verdict,
    /// Rounds the advice may still hold the decision for, past the rules' own bound.
    bound: u128,
    probed: u128,
    /// The latest effect recorded: an unchanged one is not recorded again.
    last_effect: Option<String>,
    /// The evidence of the consultation under way.
    request: Option<AdviceRequest>,
}

impl Run {
    fn rules(&self) -> Rules {
        let f = &self.settings.failover;
        Rules {
            min_confidence: f.ai_confidence,
            consecutive: f.ai_consecutive_recommendations,
            max_hold: self.settings.ai_max_hold,
        }
    }

    pub(super) fn start_advice(&mut self, out: &mut Out, verdict: Verdict) {
        let f = &self.settings.failover;
        let bound = self.settings.ai_max_hold.as_millis() / f.confirm_interval.as_millis().max(1)
            + u128::from(f.ai_consecutive_recommendations)
            + 5;
        self.advising = Some(Advising {
            verdict,
            bound,
            probed: 0,
            last_effect: None,
            request: None,
        });
        self.phase = Phase::ReadingAnomalies;
        out.push(Action::ReadAnomalies);
    }

    /// A round during the advice loop left the policy still failing over.
    pub(super) fn advise_again(&mut self, out: &mut Out, verdict: Verdict) {
        if let Some(a) = self.advising.as_mut() {
            a.verdict = verdict;
        }
        self.phase = Phase::ReadingAnomalies;
        out.push(Action::ReadAnomalies);
    }

    /// The evidence is complete: feed the outage clock, then consult, or reuse the
    /// latest answer when the rate limit says so.
    pub(super) fn anomalies_read(&mut self, out: &mut Out, anomalies: Vec<AnomalyEvidence>) {
        let Some(verdict) = self.advising.as_ref().map(|a| a.verdict.clone()) else {
            return;
        };
        let request = self.advice_request(out, anomalies, verdict);
        self.advice.observe(&request, self.started);
        let permit = self
            .advice
            .permit(&request.fingerprint(), out.now, &self.rules());
        let called = permit.allows_call();
        if called {
            self.phase = Phase::Consulting;
            out.push(Action::Consult(Box::new(request.clone())));
        }
        if let Some(a) = self.advising.as_mut() {
            a.request = Some(request);
        }
        if !called {
            self.combine(out, false);
        }
    }

    pub(super) fn advised(&mut self, out: &mut Out, mut consultation: Consultation) {
        // The rate limit and the streak compare this time with the engine's clock: it is
        // when the evaluation asked, on that clock, whatever the adapter stamped.
        if let Some(request) = self.advising.as_ref().and_then(|a| a.request.as_ref()) {
            consultation.at = request.at;
        }
        self.advice.record(Some(self.id), consultation);
        self.combine(out, true);
    }

    /// The evidence sent: the last `K` rounds, anomaly scores, client impact, earlier
    /// decisions.
    fn advice_request(
        &self,
        out: &Out,
        anomalies: Vec<AnomalyEvidence>,
        verdict: Verdict,
    ) -> AdviceRequest {
        let f = &self.settings.failover;
        let keep = f.consecutive_threshold.max(1) as usize;
        let rounds = self
            .rounds
            .iter()
            .skip(self.rounds.len().saturating_sub(keep))
            .map(RoundEvidence::from)
            .collect();
        AdviceRequest {
            instance: self.inst.uid.clone(),
            active_datacenter: self.active.clone(),
            datacenters: self
                .inst
                .endpoints
                .keys()
                .cloned()
                .collect::<Vec<DatacenterId>>(),
            at: out.now,
            rounds,
            anomalies,
            clients: self.clients.status,
            client_impact: self.clients.report.clone(),
            policy: verdict,
            threshold: f.confidence_threshold,
            recent_decisions: self.recent_decisions.clone(),
        }
    }

    /// Combines the latest answer with the verdict under the rules, records what came
    /// of it, and goes on: decide, or probe another round.
    fn combine(&mut self, out: &mut Out, called: bool) {
        let rules = self.rules();
        let Some(advising) = self.advising.as_mut() else {
            return;
        };
        let Some(request) = advising.request.take() else {
            return;
        };
        let latest = self.advice.latest().cloned();
        let streak = self.advice.streak(out.now, rules.min_confidence);
        let situation = self.advice.situation(&request, out.now);
        let combined = rules::combine(
            &advising.verdict,
            latest.as_ref(),
            streak,
            &situation,
            &rules,
        );
        if latest.is_some() {
            self.advice.note_effect(combined.effect.clone());
        }
        out.push(Action::Remember(Box::new(self.advice.clone())));
        let effect = combined.effect.describe();
        if called || advising.last_effect.as_deref() != Some(effect.as_str()) {
            let said = latest.as_ref().map_or_else(
                || "not consulted".to_owned(),
                |c| {
                    let reused = if called {
                        ""
                    } else {
                        " (earlier answer reused: rate limit)"
                    };
                    format!("{}{reused}", c.describe())
                },
            );
            let counted = combined.effect.counted();
            out.step(
                self.id,
                StepName::Advisor,
                if counted {
                    StepOutcome::Hold
                } else {
                    StepOutcome::Info
                },
                format!("{said}; {effect}"),
                json!({
                    "consultation": latest,
                    "effect": combined.effect,
                    "counted": counted,
                    "called": called,
                }),
            );
            advising.last_effect = Some(effect);
        }
        let advice_confidence = latest
            .as_ref()
            .and_then(|c| c.advice())
            .map_or(0.0, |a| a.confidence);
        match combined.decision {
            Decision::Policy(v) => self.decide(out, v),
            Decision::AdvisedHold {
                target,
                confidence,
                wait: None,
            } => self.decide(
                out,
                Verdict::Hold(Hold::Advised {
                    target,
                    confidence,
                    advice_confidence,
                }),
            ),
            Decision::AdvisedHold { wait: Some(_), .. } | Decision::ConsultAgain => {
                self.probe_for_advice(out)
            }
        }
    }

    /// The advice keeps the decision waiting: another round after `confirm_interval`,
    /// unless it has waited past the loop's own bound, when the policy decides.
    fn probe_for_advice(&mut self, out: &mut Out) {
        let Some(advising) = self.advising.as_mut() else {
            return;
        };
        if advising.probed >= advising.bound {
            let detail = format!(
                "the advice kept the decision waiting past {} rounds; the policy decides",
                advising.probed
            );
            let verdict = advising.verdict.clone();
            out.step(
                self.id,
                StepName::Advisor,
                StepOutcome::Info,
                detail,
                json!(null),
            );
            return self.decide(out, verdict);
        }
        advising.probed += 1;
        self.phase = Phase::AdviceRound;
        out.push(Action::Wait(self.settings.failover.confirm_interval));
    }
}
