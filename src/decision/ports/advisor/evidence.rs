//! The evidence a consultation carries, and what is derived from it: per datacenter
//! what the rounds showed, and the coarse fingerprint that tells whether the evidence
//! changed since the last consultation. The adapter (`advisors::ai`) turns it into the
//! JSON the model reads, with client log text marked untrusted.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::ports::{
    ClientStatus, Probe, Round, TARGET_GOOD_FROM, TARGET_HEALTHY_FROM, Verdict,
};
use crate::model::{DatacenterId, InstanceId, rfc3339};

/// One round of fresh probes, with its time as RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundEvidence {
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
    pub probes: Vec<Probe>,
}

impl From<&Round> for RoundEvidence {
    fn from(r: &Round) -> Self {
        Self {
            at: r.at,
            probes: r.probes.clone(),
        }
    }
}

/// A feature that made an anomaly score stand out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contributor {
    pub feature: String,
    /// Robust z-score against the endpoint's training window.
    pub zscore: f64,
}

/// The anomaly detector's latest view of one datacenter's endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyEvidence {
    pub datacenter: DatacenterId,
    /// Calibrated score, 0 to 1; none while the detector warms up or is off.
    pub score: Option<f64>,
    pub anomalous: bool,
    /// Largest |z| first; a handful at most.
    pub top_features: Vec<Contributor>,
}

/// An earlier decision about the instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentDecision {
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
    /// `failed_over`, `held`, ...
    pub outcome: String,
    pub detail: String,
}

/// Health of one datacenter over the rounds, derived from the probes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatacenterSummary {
    pub datacenter: DatacenterId,
    pub active: bool,
    /// Rounds in which it answered, of `rounds`.
    pub up_rounds: usize,
    pub rounds: usize,
    /// Lowest health over the rounds (0 when a probe is missing or down).
    pub worst_health: f64,
    /// `healthy`, `degraded`, `failing` or `down`, from the worst round.
    pub status: &'static str,
    /// Up with health of at least the policy's target bar in every round: the only
    /// datacenters an advised failover may name.
    pub eligible_target: bool,
}

/// Everything a consultation sends. The engine fills it; the model reads it as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdviceRequest {
    pub instance: InstanceId,
    pub active_datacenter: DatacenterId,
    /// Every datacenter of the instance, the active one included.
    pub datacenters: Vec<DatacenterId>,
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
    /// This evaluation's confirmation rounds of fresh probes, oldest first.
    pub rounds: Vec<RoundEvidence>,
    pub anomalies: Vec<AnomalyEvidence>,
    /// The client impact advisor's conclusion, for the guard and the fingerprint.
    pub clients: ClientStatus,
    /// The client impact analysis as the lead's ELK advisor produced it (error rates,
    /// categories, latency, samples); `null` when unknown. Prose in it is marked
    /// untrusted before it is sent.
    pub client_impact: Value,
    /// What the deterministic policy concluded from the same rounds.
    pub policy: Verdict,
    /// The policy's `failover_confidence_threshold`.
    pub threshold: f64,
    /// Newest first; a handful at most.
    pub recent_decisions: Vec<RecentDecision>,
}

impl AdviceRequest {
    /// Per datacenter of the instance, what the rounds showed.
    pub fn summaries(&self) -> Vec<DatacenterSummary> {
        self.datacenters.iter().map(|dc| self.summary(dc)).collect()
    }

    pub fn summary(&self, dc: &DatacenterId) -> DatacenterSummary {
        let probes: Vec<Option<&Probe>> = self
            .rounds
            .iter()
            .map(|r| r.probes.iter().find(|p| &p.datacenter == dc))
            .collect();
        let up_rounds = probes.iter().filter(|p| p.is_some_and(|p| p.up)).count();
        let worst_health = probes
            .iter()
            .map(|p| p.filter(|p| p.up).map_or(0.0, |p| p.health))
            .fold(f64::INFINITY, f64::min);
        let worst_health = if worst_health.is_finite() {
            worst_health
        } else {
            0.0
        };
        let all_up = !probes.is_empty() && up_rounds == probes.len();
        let status = match () {
            _ if up_rounds == 0 => "down",
            _ if !all_up => "flapping",
            _ if worst_health >= TARGET_HEALTHY_FROM => "healthy",
            _ if worst_health >= TARGET_GOOD_FROM => "degraded",
            _ => "failing",
        };
        DatacenterSummary {
            datacenter: dc.clone(),
            active: dc == &self.active_datacenter,
            up_rounds,
            rounds: probes.len(),
            worst_health,
            status,
            eligible_target: dc != &self.active_datacenter
                && all_up
                && worst_health >= TARGET_GOOD_FROM,
        }
    }

    /// The active datacenter was down (no answer) in every round.
    pub fn active_hard_down(&self) -> bool {
        let s = self.summary(&self.active_datacenter);
        s.rounds > 0 && s.up_rounds == 0
    }

    /// The JSON the model reads: the request, per-datacenter summaries, and the client
    /// A coarse digest of what matters for advice: per datacenter up/down/flapping, its
    /// health band and Sentinel; anomaly flags and the top feature; the client status;
    /// the policy's verdict and target. Timestamps, exact numbers, log samples and recent
    /// decisions are left out, so a steady outage keeps one fingerprint and is not
    /// consulted on more than once per rate-limit interval.
    pub fn fingerprint(&self) -> String {
        let mut h = DefaultHasher::new();
        self.instance.as_str().hash(&mut h);
        self.active_datacenter.as_str().hash(&mut h);
        for s in self.summaries() {
            s.datacenter.as_str().hash(&mut h);
            s.status.hash(&mut h);
            let sentinel = self.rounds.iter().any(|r| {
                r.probes
                    .iter()
                    .any(|p| p.datacenter == s.datacenter && p.sentinel_failover)
            });
            sentinel.hash(&mut h);
        }
        for a in &self.anomalies {
            a.datacenter.as_str().hash(&mut h);
            a.anomalous.hash(&mut h);
            if a.anomalous {
                a.top_features.first().map(|c| &c.feature).hash(&mut h);
            }
        }
        self.clients.hash(&mut h);
        match &self.policy {
            Verdict::Failover { target, .. } => ("failover", target.as_str()).hash(&mut h),
            Verdict::Hold(hold) => ("hold", hold.kind()).hash(&mut h),
        }
        format!("{:016x}", h.finish())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    pub fn dc(s: &str) -> DatacenterId {
        DatacenterId::new(s)
    }

    /// A request for instance `cache`, active `east`, from rounds of
    /// `(datacenter, up, health)`.
    pub fn request(rounds: &[&[(&str, bool, f64)]], policy: Verdict) -> AdviceRequest {
        AdviceRequest {
            instance: InstanceId::new("cache"),
            active_datacenter: dc("east"),
            datacenters: vec![dc("east"), dc("west"), dc("north")],
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            rounds: rounds
                .iter()
                .enumerate()
                .map(|(i, probes)| RoundEvidence {
                    at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i as u64),
                    probes: probes
                        .iter()
                        .map(|(d, up, health)| Probe {
                            datacenter: dc(d),
                            up: *up,
                            health: *health,
                            sentinel_failover: false,
                            sentinel_heard: None,
                        })
                        .collect(),
                })
                .collect(),
            anomalies: vec![],
            clients: ClientStatus::Unknown,
            client_impact: Value::Null,
            policy,
            threshold: 0.95,
            recent_decisions: vec![],
        }
    }

    pub const OUTAGE: &[(&str, bool, f64)] = &[
        ("east", false, 0.0),
        ("west", true, 0.95),
        ("north", true, 0.3),
    ];
    pub const CALM: &[(&str, bool, f64)] = &[
        ("east", true, 0.95),
        ("west", true, 0.95),
        ("north", true, 0.9),
    ];

    pub fn failover_to(target: &str, confidence: f64) -> Verdict {
        Verdict::Failover {
            target: dc(target),
            confidence,
        }
    }

    #[test]
    fn summaries_say_which_datacenters_may_be_targets() {
        let r = request(&[OUTAGE, OUTAGE], failover_to("west", 1.0));
        let s = r.summaries();
        assert_eq!(s[0].status, "down");
        assert!(!s[0].eligible_target && s[0].active);
        assert_eq!(s[1].status, "healthy");
        assert!(s[1].eligible_target);
        assert_eq!(s[2].status, "failing");
        assert!(!s[2].eligible_target);
        assert!(r.active_hard_down());
        let flap = request(&[OUTAGE, CALM], failover_to("west", 1.0));
        assert_eq!(flap.summary(&dc("east")).status, "flapping");
        assert!(!flap.active_hard_down());
        // A datacenter the rounds never probed is down, never a target.
        let mut r = request(&[OUTAGE], failover_to("west", 1.0));
        r.datacenters.push(dc("south"));
        assert!(!r.summary(&dc("south")).eligible_target);
    }

    #[test]
    fn the_fingerprint_ignores_noise_and_sees_changes() {
        let base = request(&[OUTAGE, OUTAGE], failover_to("west", 1.0));
        // Another evaluation of the same outage: new times, slightly different health,
        // new samples, new decisions.
        let mut again = base.clone();
        again.at += Duration::from_secs(60);
        again.rounds[0].probes[1].health = 0.93;
        again.client_impact = json!({"samples": ["timeout"]});
        again.recent_decisions.push(RecentDecision {
            at: again.at,
            outcome: "held".into(),
            detail: "x".into(),
        });
        assert_eq!(base.fingerprint(), again.fingerprint());
        // The clients start failing: changed.
        let mut clients = base.clone();
        clients.clients = ClientStatus::Failing;
        assert_ne!(base.fingerprint(), clients.fingerprint());
        // The target degrades: changed.
        let mut degraded = base.clone();
        degraded.rounds[1].probes[1].health = 0.6;
        assert_ne!(base.fingerprint(), degraded.fingerprint());
    }
}
