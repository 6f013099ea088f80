//! The guardrails on the model's answer, in code rather than in the prompt: its schema
//! and its datacenters. Pure functions, no I/O, no clock. What a valid answer may then
//! change is policy: `crate::decision::advice::rules`.
//!
//! # Is an answer acceptable? ([`validate_answer`])
//! It must be one JSON object with exactly `recommendation` (`failover` | `hold`),
//! `target_dc` (string or null), `confidence` (a number from 0 to 1), `reasoning` and
//! `impact` (strings). A failover must name a datacenter of the instance
//! ([`Discarded::UnknownDatacenter`]) that is not the active one
//! ([`Discarded::ActiveAsTarget`]) and that the evidence shows up with a health of at
//! least the policy's target bar in every round ([`Discarded::UnhealthyTarget`]). A hold
//! may name no datacenter or one of the instance's. Anything else is discarded, and the
//! deterministic policy decides alone.

use serde_json::{Map, Value};

use super::truncate;
use crate::decision::ports::{Advice, AdviceRequest, Discarded, Recommendation, TEXT_LIMIT};
use crate::model::DatacenterId;

const KEYS: [&str; 5] = [
    "recommendation",
    "target_dc",
    "confidence",
    "reasoning",
    "impact",
];

/// Checks the model's answer against the schema and the evidence.
pub fn validate_answer(content: &str, request: &AdviceRequest) -> Result<Advice, Discarded> {
    let value: Value =
        serde_json::from_str(content.trim()).map_err(|e| Discarded::InvalidJson {
            detail: e.to_string(),
        })?;
    let schema = |detail: String| Discarded::SchemaBreak { detail };
    let Value::Object(map) = value else {
        return Err(schema("the answer is not a JSON object".into()));
    };
    if let Some(extra) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(schema(format!("unexpected key `{extra}`")));
    }
    if let Some(missing) = KEYS.iter().find(|k| !map.contains_key(**k)) {
        return Err(schema(format!("`{missing}` is missing")));
    }
    let recommendation = match map["recommendation"].as_str() {
        Some("failover") => Recommendation::Failover,
        Some("hold") => Recommendation::Hold,
        _ => {
            return Err(schema(format!(
                "`recommendation` is {}, not \"failover\" or \"hold\"",
                shown(&map["recommendation"])
            )));
        }
    };
    let target = match &map["target_dc"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => {
            return Err(schema(format!(
                "`target_dc` is {}, not a string or null",
                shown(other)
            )));
        }
    };
    let confidence = match map["confidence"].as_f64() {
        Some(c) if (0.0..=1.0).contains(&c) => c,
        _ => {
            return Err(schema(format!(
                "`confidence` is {}, not a number from 0 to 1",
                shown(&map["confidence"])
            )));
        }
    };
    let reasoning = text(&map, "reasoning")?;
    let impact = text(&map, "impact")?;
    let target_dc = match (recommendation, target) {
        (Recommendation::Failover, None) => {
            return Err(schema("a failover without `target_dc`".into()));
        }
        (_, None) => None,
        (rec, Some(name)) => {
            let Some(dc) = request.datacenters.iter().find(|d| d.as_str() == name) else {
                return Err(Discarded::UnknownDatacenter {
                    datacenter: truncate(&name, 64),
                });
            };
            if rec == Recommendation::Failover {
                check_target(request, dc)?;
            }
            Some(dc.clone())
        }
    };
    Ok(Advice {
        recommendation,
        target_dc,
        confidence,
        reasoning,
        impact,
    })
}

fn check_target(request: &AdviceRequest, dc: &DatacenterId) -> Result<(), Discarded> {
    if dc == &request.active_datacenter {
        return Err(Discarded::ActiveAsTarget {
            datacenter: dc.to_string(),
        });
    }
    if !request.summary(dc).eligible_target {
        return Err(Discarded::UnhealthyTarget {
            datacenter: dc.to_string(),
        });
    }
    Ok(())
}

fn text(map: &Map<String, Value>, key: &str) -> Result<String, Discarded> {
    match &map[key] {
        Value::String(s) => Ok(truncate(s, TEXT_LIMIT)),
        other => Err(Discarded::SchemaBreak {
            detail: format!("`{key}` is {}, not a string", shown(other)),
        }),
    }
}

fn shown(v: &Value) -> String {
    truncate(&v.to_string(), 40)
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
