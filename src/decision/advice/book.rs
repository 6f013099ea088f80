//! Per instance: the consultations (for the record and `GET /api/ai-recommendations`),
//! the rate limit, the streak of agreeing answers, and the outage clock behind
//! `ai_max_hold`. No I/O; the clock is an argument.
//!
//! - **Rate limit** (seed 000's cost note): at most one consultation per instance per
//!   [`RATE_LIMIT`], unless the evidence's [fingerprint](AdviceRequest::fingerprint)
//!   differs from the latest consultation's, or a hold awaits confirmation. A
//!   rate-limited evaluation reuses the latest consultation (same evidence, same answer).
//! - **Streak** (`ai_consecutive_recommendations`): consecutive consultations, newest
//!   first, no older than [`STREAK_TTL`], each usable, with confidence of at least
//!   `ai_failover_confidence` and the same recommendation (and for a failover, the same
//!   target) as the newest. A discarded or low-confidence answer ends it.
//! - **Confirmation**: while the newest consultation is an eligible hold whose streak is
//!   short of the count, the next consultation is allowed at once, so a hold can be
//!   confirmed within one evaluation; each such call either lengthens the streak or ends
//!   it, so there are at most `ai_consecutive_recommendations - 1` in a row.
//! - **Outage clock**: runs from the first evaluation that saw the active datacenter down
//!   in every round with the clients not reported normal, and stops at the first that
//!   did not.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::rules::{Effect, Rules, Situation};
use crate::decision::ports::{Advice, AdviceRequest, ClientStatus, Consultation, Recommendation};
use crate::model::{InstanceId, rfc3339};

/// At most one consultation per instance this often when the evidence did not change.
pub const RATE_LIMIT: Duration = Duration::from_secs(5 * 60);
/// Older consultations do not count toward a streak.
pub const STREAK_TTL: Duration = Duration::from_secs(15 * 60);
/// Consultations kept per instance.
pub const KEEP: usize = 50;

/// One consultation as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// The evaluation (incident) that asked, if any.
    pub incident: Option<u64>,
    #[serde(flatten)]
    pub consultation: Consultation,
    /// What the guard made of it, latest use last (a rate-limited evaluation reuses it).
    pub effects: Vec<Effect>,
    /// The advice changed what the agent did at least once.
    pub counted: bool,
}

/// Whether to call the advisor now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Consult,
    /// A hold awaits confirmation: consult again whatever the rate limit says.
    Confirm,
    /// Reuse the latest consultation; the next is allowed at `until` (or sooner, once
    /// the evidence changes).
    RateLimited {
        until: SystemTime,
    },
}

impl Permit {
    pub fn allows_call(self) -> bool {
        !matches!(self, Permit::RateLimited { .. })
    }
}

/// Everything kept about one instance.
#[derive(Debug, Clone, Default)]
pub struct AdviceHistory {
    /// Oldest first.
    entries: VecDeque<Recorded>,
    outage_since: Option<SystemTime>,
}

impl AdviceHistory {
    pub fn permit(&self, fingerprint: &str, now: SystemTime, rules: &Rules) -> Permit {
        let Some(latest) = self.latest() else {
            return Permit::Consult;
        };
        let is_hold = latest
            .advice()
            .is_some_and(|a| a.recommendation == Recommendation::Hold);
        let streak = self.streak(now, rules.min_confidence);
        if is_hold && streak >= 1 && streak < rules.consecutive {
            return Permit::Confirm;
        }
        let until = latest.at + RATE_LIMIT;
        if latest.fingerprint != fingerprint || now >= until {
            Permit::Consult
        } else {
            Permit::RateLimited { until }
        }
    }

    pub fn record(&mut self, incident: Option<u64>, consultation: Consultation) {
        self.entries.push_back(Recorded {
            incident,
            consultation,
            effects: Vec::new(),
            counted: false,
        });
        while self.entries.len() > KEEP {
            self.entries.pop_front();
        }
    }

    /// Notes what the guard made of the latest consultation.
    pub fn note_effect(&mut self, effect: Effect) {
        if let Some(e) = self.entries.back_mut() {
            e.counted |= effect.counted();
            e.effects.push(effect);
            if e.effects.len() > 20 {
                e.effects.remove(0);
            }
        }
    }

    pub fn latest(&self) -> Option<&Consultation> {
        self.entries.back().map(|e| &e.consultation)
    }

    /// Newest first, for the API.
    pub fn recent(&self) -> impl Iterator<Item = &Recorded> {
        self.entries.iter().rev()
    }

    /// The streak of the newest consultation (module documentation); 0 when it is not
    /// eligible.
    pub fn streak(&self, now: SystemTime, min_confidence: f64) -> u32 {
        fn eligible(c: &Consultation, now: SystemTime, min: f64) -> Option<&Advice> {
            let fresh = now.duration_since(c.at).unwrap_or_default() <= STREAK_TTL;
            c.advice().filter(|a| fresh && a.confidence >= min)
        }
        let mut entries = self.entries.iter().rev().map(|e| &e.consultation);
        let Some(first) = entries
            .next()
            .and_then(|c| eligible(c, now, min_confidence))
        else {
            return 0;
        };
        let same = |c: &Consultation| {
            eligible(c, now, min_confidence).is_some_and(|a| {
                a.recommendation == first.recommendation
                    && (a.recommendation == Recommendation::Hold || a.target_dc == first.target_dc)
            })
        };
        1 + entries.take_while(|c| same(c)).count() as u32
    }

    /// Feeds the outage clock with one evaluation's evidence. `since`: the earliest time
    /// the active datacenter is known to have been down (the evaluation's start, or the
    /// collector's first failed round), at most `now`.
    pub fn observe(&mut self, request: &AdviceRequest, since: SystemTime) {
        if request.active_hard_down() && request.clients != ClientStatus::Normal {
            let since = since.min(request.at);
            self.outage_since = Some(self.outage_since.map_or(since, |s| s.min(since)));
        } else {
            self.outage_since = None;
        }
    }

    pub fn outage_for(&self, now: SystemTime) -> Option<Duration> {
        self.outage_since
            .map(|s| now.duration_since(s).unwrap_or_default())
    }

    /// The [`Situation`] the guard needs, from the request and this history.
    pub fn situation(&self, request: &AdviceRequest, now: SystemTime) -> Situation {
        Situation {
            threshold: request.threshold,
            clients: request.clients,
            outage_for: self.outage_for(now),
        }
    }

    /// When the outage clock started, for the record.
    pub fn outage_since(&self) -> Option<String> {
        self.outage_since.map(rfc3339::format)
    }
}

/// Histories of every instance. The engine keeps one, behind its own lock; an evaluation
/// works on a copy of its instance's history and hands it back after each change.
#[derive(Debug, Clone, Default)]
pub struct AdviceBook {
    instances: BTreeMap<InstanceId, AdviceHistory>,
}

impl AdviceBook {
    pub fn get(&self, instance: &InstanceId) -> Option<&AdviceHistory> {
        self.instances.get(instance)
    }

    /// Keeps `history` as the instance's, replacing what was kept.
    pub fn insert(&mut self, instance: &InstanceId, history: AdviceHistory) {
        self.instances.insert(instance.clone(), history);
    }

    /// Forgets instances the configuration no longer has.
    pub fn retain(&mut self, mut keep: impl FnMut(&InstanceId) -> bool) {
        self.instances.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ports::Discarded;
    use crate::decision::ports::advisor::evidence::tests::{CALM, OUTAGE, failover_to, request};

    const RULES: Rules = Rules {
        min_confidence: 0.85,
        consecutive: 2,
        max_hold: Duration::from_secs(120),
    };

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn consulted(
        at: u64,
        fp: &str,
        result: Result<(Recommendation, f64), Discarded>,
    ) -> Consultation {
        Consultation {
            advisor: "fake".into(),
            model: "m".into(),
            at: t(at),
            latency: Duration::from_millis(3),
            fingerprint: fp.into(),
            result: result.map(|(recommendation, confidence)| Advice {
                recommendation,
                target_dc: (recommendation == Recommendation::Failover)
                    .then(|| crate::model::DatacenterId::new("west")),
                confidence,
                reasoning: String::new(),
                impact: String::new(),
            }),
            raw: None,
        }
    }

    #[test]
    fn one_consultation_per_five_minutes_unless_the_evidence_changed() {
        let mut h = AdviceHistory::default();
        assert_eq!(h.permit("a", t(0), &RULES), Permit::Consult);
        h.record(
            Some(1),
            consulted(0, "a", Ok((Recommendation::Failover, 0.9))),
        );
        assert_eq!(
            h.permit("a", t(60), &RULES),
            Permit::RateLimited { until: t(300) }
        );
        assert_eq!(h.permit("b", t(60), &RULES), Permit::Consult);
        assert_eq!(h.permit("a", t(300), &RULES), Permit::Consult);
        // A failed consultation counts against the limit too.
        h.record(
            Some(2),
            consulted(400, "a", Err(Discarded::Http { status: 429 })),
        );
        assert!(!h.permit("a", t(500), &RULES).allows_call());
    }

    #[test]
    fn a_hold_short_of_its_streak_may_be_confirmed_at_once() {
        let mut h = AdviceHistory::default();
        h.record(None, consulted(0, "a", Ok((Recommendation::Hold, 0.9))));
        assert_eq!(h.streak(t(1), 0.85), 1);
        assert_eq!(h.permit("a", t(2), &RULES), Permit::Confirm);
        h.record(None, consulted(3, "a", Ok((Recommendation::Hold, 0.95))));
        assert_eq!(h.streak(t(4), 0.85), 2);
        assert!(!h.permit("a", t(5), &RULES).allows_call());
        // A low-confidence hold is not eligible: no confirmation.
        let mut low = AdviceHistory::default();
        low.record(None, consulted(0, "a", Ok((Recommendation::Hold, 0.5))));
        assert!(!low.permit("a", t(1), &RULES).allows_call());
    }

    #[test]
    fn streaks_break_on_other_answers_and_age() {
        let mut h = AdviceHistory::default();
        h.record(None, consulted(0, "a", Ok((Recommendation::Hold, 0.9))));
        h.record(
            None,
            consulted(10, "a", Err(Discarded::Timeout { after_ms: 1 })),
        );
        h.record(None, consulted(20, "a", Ok((Recommendation::Hold, 0.9))));
        assert_eq!(h.streak(t(21), 0.85), 1);
        h.record(None, consulted(30, "a", Ok((Recommendation::Hold, 0.9))));
        assert_eq!(h.streak(t(31), 0.85), 2);
        h.record(
            None,
            consulted(40, "a", Ok((Recommendation::Failover, 0.99))),
        );
        assert_eq!(h.streak(t(41), 0.85), 1);
        // Too old to count.
        assert_eq!(h.streak(t(40 + 16 * 60), 0.85), 0);
    }

    #[test]
    fn the_outage_clock_runs_while_the_active_is_hard_down_and_clients_are_not_fine() {
        let mut h = AdviceHistory::default();
        let mut r = request(&[OUTAGE, OUTAGE], failover_to("west", 1.0));
        r.at = t(100);
        h.observe(&r, t(90));
        assert_eq!(h.outage_for(t(100)), Some(Duration::from_secs(10)));
        r.at = t(200);
        h.observe(&r, t(200));
        assert_eq!(h.outage_for(t(200)), Some(Duration::from_secs(110)));
        // Clients fine: agent-side partition suspected; the clock stops.
        let mut fine = r.clone();
        fine.clients = ClientStatus::Normal;
        h.observe(&fine, t(210));
        assert_eq!(h.outage_for(t(210)), None);
        // Active up in a round: no outage.
        h.observe(&r, t(220));
        let calm = request(&[OUTAGE, CALM], failover_to("west", 1.0));
        h.observe(&calm, t(230));
        assert_eq!(h.outage_for(t(230)), None);
    }

    #[test]
    fn records_keep_effects_and_a_bounded_length() {
        let mut h = AdviceHistory::default();
        for i in 0..(KEEP as u64 + 5) {
            h.record(Some(i), consulted(i, "a", Ok((Recommendation::Hold, 0.9))));
        }
        h.note_effect(Effect::EvidenceClear);
        assert_eq!(h.recent().count(), KEEP);
        let newest = h.recent().next().unwrap();
        assert_eq!(newest.effects, vec![Effect::EvidenceClear]);
        assert!(!newest.counted);
        let json = serde_json::to_value(newest).unwrap();
        assert_eq!(json["advisor"], "fake");
        assert_eq!(json["effects"][0]["effect"], "evidence_clear");
    }
}
