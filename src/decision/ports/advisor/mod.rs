//! The advisor port: failover advice from a model. The advice may only hold back a
//! failover the policy supports (`advisors::ai::guard` has the rules); everything the
//! model can get wrong ends as a [`Discarded`] consultation, and the policy decides alone.

pub mod evidence;

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{DatacenterId, rfc3339};

pub use evidence::{
    AdviceRequest, AnomalyEvidence, Contributor, DatacenterSummary, RecentDecision, RoundEvidence,
};

/// How much of an answer (or an error body) a consultation keeps.
pub const RAW_LIMIT: usize = 2000;
/// How much of the model's `reasoning` and `impact` a consultation keeps.
pub const TEXT_LIMIT: usize = 1000;

/// Asks for advice. Never fails: every outcome, a useless one included, is a
/// [`Consultation`] that says what happened, so the engine records it and decides alone.
#[async_trait]
pub trait Advisor: Send + Sync + fmt::Debug {
    async fn advise(&self, evidence: &AdviceRequest) -> Consultation;
}

/// What the model recommends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    Failover,
    Hold,
}

impl Recommendation {
    pub fn as_str(self) -> &'static str {
        match self {
            Recommendation::Failover => "failover",
            Recommendation::Hold => "hold",
        }
    }
}

/// An answer that parsed, kept the schema and named an acceptable datacenter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    pub recommendation: Recommendation,
    /// For a failover: a configured, healthy datacenter other than the active one.
    pub target_dc: Option<DatacenterId>,
    /// The model's own confidence, 0 to 1.
    pub confidence: f64,
    /// Truncated to [`TEXT_LIMIT`] characters.
    pub reasoning: String,
    /// Truncated to [`TEXT_LIMIT`] characters.
    pub impact: String,
}

/// Why a consultation gave no usable advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Discarded {
    #[error("no answer within {} ms", after_ms)]
    Timeout { after_ms: u64 },
    #[error("the service answered HTTP {status}")]
    Http { status: u16 },
    #[error("the service could not be reached: {detail}")]
    Unreachable { detail: String },
    #[error("the model gave no answer: {detail}")]
    Empty { detail: String },
    #[error("the answer is not JSON: {detail}")]
    InvalidJson { detail: String },
    #[error("the answer breaks the schema: {detail}")]
    SchemaBreak { detail: String },
    #[error("the answer names {datacenter:?}, not a datacenter of the instance")]
    UnknownDatacenter { datacenter: String },
    #[error("the answer names {datacenter}, which the evidence does not show healthy")]
    UnhealthyTarget { datacenter: String },
    #[error("the answer recommends failing over to {datacenter}, the active datacenter")]
    ActiveAsTarget { datacenter: String },
}

impl Discarded {
    /// Bounded name for the `result` label of `redis_agent_advisor_calls_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Discarded::Timeout { .. } => "timeout",
            Discarded::Http { status: 429 } => "throttled",
            Discarded::Http { .. } => "http_error",
            Discarded::Unreachable { .. } => "unreachable",
            Discarded::Empty { .. } => "empty",
            Discarded::InvalidJson { .. } => "invalid_json",
            Discarded::SchemaBreak { .. } => "schema_break",
            Discarded::UnknownDatacenter { .. } => "unknown_datacenter",
            Discarded::UnhealthyTarget { .. } => "unhealthy_target",
            Discarded::ActiveAsTarget { .. } => "active_as_target",
        }
    }
}

/// One call to an advisor and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consultation {
    /// `azure_openai`, `openai_compatible` or `fake`.
    pub advisor: String,
    /// The model (Azure: the deployment).
    pub model: String,
    #[serde(with = "rfc3339::required")]
    pub at: SystemTime,
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
    /// [`AdviceRequest::fingerprint`] of the evidence sent.
    pub fingerprint: String,
    #[serde(with = "outcome")]
    pub result: Result<Advice, Discarded>,
    /// The model's answer or the error body, truncated to [`RAW_LIMIT`] characters.
    pub raw: Option<String>,
}

impl Consultation {
    /// Bounded name for the `result` label: `advice` or the [`Discarded::kind`].
    pub fn result_label(&self) -> &'static str {
        match &self.result {
            Ok(_) => "advice",
            Err(d) => d.kind(),
        }
    }

    pub fn advice(&self) -> Option<&Advice> {
        self.result.as_ref().ok()
    }

    /// One line for logs and the decision record.
    pub fn describe(&self) -> String {
        match &self.result {
            Ok(a) => {
                let target = a
                    .target_dc
                    .as_ref()
                    .map(|t| format!(" to {t}"))
                    .unwrap_or_default();
                format!(
                    "{} advised {}{target} (confidence {:.2}) in {} ms",
                    self.advisor,
                    a.recommendation.as_str(),
                    a.confidence,
                    self.latency.as_millis()
                )
            }
            Err(d) => format!(
                "{} advice discarded after {} ms: {d}",
                self.advisor,
                self.latency.as_millis()
            ),
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// `{"advice": {...}}` or `{"discarded": {"reason": ..., ...}}`.
mod outcome {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Advice, Discarded};

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Shown<'a> {
        Advice(&'a Advice),
        Discarded(&'a Discarded),
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Read {
        Advice(Advice),
        Discarded(Discarded),
    }

    pub fn serialize<S: Serializer>(
        r: &Result<Advice, Discarded>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match r {
            Ok(a) => Shown::Advice(a),
            Err(d) => Shown::Discarded(d),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Advice, Discarded>, D::Error> {
        Ok(match Read::deserialize(d)? {
            Read::Advice(a) => Ok(a),
            Read::Discarded(x) => Err(x),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consultation_round_trips_through_json() {
        let c = Consultation {
            advisor: "fake".into(),
            model: "m".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            latency: Duration::from_millis(42),
            fingerprint: "abc".into(),
            result: Err(Discarded::Http { status: 429 }),
            raw: Some("slow down".into()),
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["latency_ms"], 42);
        assert_eq!(json["result"]["discarded"]["reason"], "http");
        assert_eq!(json["result"]["discarded"]["status"], 429);
        assert_eq!(json["at"], "2023-11-14T22:13:20Z");
        let back: Consultation = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.result_label(), "throttled");
    }
}
