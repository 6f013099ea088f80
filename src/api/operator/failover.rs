//! `POST /api/failover/{uid}[/ack]`, `GET /api/failover/history` and `GET /api/alerts`:
//! an operator's way into the decision engine, and what it decided.
//!
//! A manual failover is the engine's own evaluation (README "Deciding"), recorded in the
//! journal like an alert's: without `force` the active datacenter must be confirmed bad
//! and the target healthy in every round; `force` skips confirmation and cooldown, and
//! still never targets a datacenter that does not answer or that the instance does not
//! have.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Params};
use crate::decision::incident::{Incident, Outcome, Trigger};
use crate::decision::policy::Hold;
use crate::decision::ports::AgentAlertName;
use crate::model::{DatacenterId, InstanceId, rfc3339};

/// Longest `reason` accepted, in characters: it is journaled and shown in the history.
pub const MAX_REASON: usize = 1000;
const DEFAULT_REASON: &str = "manual failover through the operator API";

/// The body of `POST /api/failover/{uid}`; every field is optional. Unknown fields are
/// refused: a misspelt `target_dc` must not fail over to a datacenter nobody chose.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailoverRequest {
    #[serde(default)]
    target_dc: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// An empty body is a request with every default; anything else must be a JSON object
/// with only the known fields.
fn parse(body: &[u8]) -> Result<FailoverRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(FailoverRequest::default());
    }
    let wrong = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!(
            "the body is not a failover request ({{\"target_dc\": \"west\", \"force\": false, \
             \"reason\": \"...\"}}, every field optional): {e}"
        ))
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| wrong(&e))?;
    if !value.is_object() {
        return Err(wrong(&"it must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| wrong(&e))
}

fn location(id: u64) -> String {
    format!("/api/failover/history?incident={id}")
}

pub(super) async fn request(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::Client(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes (limits.http.max_body_bytes)",
                state.http.max_body_bytes
            ),
        ),
        status => ApiError::Client(status, e.body_text()),
    })?;
    let req = parse(&body)?;
    let engine = state.running_engine()?;
    let settings = engine.settings();
    let instance = InstanceId::new(&uid);
    let Some(inst) = settings.instances.get(&instance) else {
        let known: Vec<&str> = settings.instances.keys().map(|i| i.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "unknown instance {uid:?}; configured: {}",
            known.join(", ")
        )));
    };
    let target = match &req.target_dc {
        None => None,
        Some(dc) => {
            let dc = DatacenterId::new(dc);
            if !inst.endpoints.contains_key(&dc) {
                let known: Vec<&str> = inst.endpoints.keys().map(|d| d.as_str()).collect();
                return Err(ApiError::bad_request(format!(
                    "target_dc {:?} is not a datacenter of instance {uid}; it has {}",
                    dc.as_str(),
                    known.join(", ")
                )));
            }
            Some(dc)
        }
    };
    let reason = req.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::bad_request(format!(
            "reason is longer than {MAX_REASON} characters"
        )));
    }
    // The reason goes to the journal and every later answer: never the key.
    let reason = match (reason.is_empty(), state.access().api_key) {
        (true, _) => DEFAULT_REASON.to_owned(),
        (false, Some(key)) => key.redact(reason),
        (false, None) => reason.to_owned(),
    };
    let id = engine
        .request(&instance, target.clone(), req.force, reason.clone())
        .await?;
    let ours = Trigger {
        source: "api".into(),
        name: reason.clone(),
        fingerprint: String::new(),
        datacenter: target.clone(),
    };
    let opened_by_us = engine
        .incident(id)
        .await
        .is_some_and(|i| i.triggers.first() == Some(&ours));
    let where_ = location(id);
    let (status, body) = if opened_by_us {
        (
            StatusCode::ACCEPTED,
            json!({
                "status": "accepted",
                "incident": id,
                "instance_uid": uid,
                "target_dc": target,
                "force": req.force,
                "reason": reason,
                "location": where_,
            }),
        )
    } else {
        (
            StatusCode::CONFLICT,
            json!({
                "error": format!(
                    "an evaluation of {uid} is already running (incident {id}); this request \
                     was recorded with it, but its target_dc and force do not apply. Follow \
                     it at {where_} and ask again once it has ended"
                ),
                "incident": id,
                "location": where_,
            }),
        )
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&where_) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

pub(super) async fn ack(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let engine = state.running_engine()?;
    let instance = InstanceId::new(&uid);
    if !engine.settings().instances.contains_key(&instance) {
        return Err(ApiError::not_found(format!("unknown instance {uid:?}")));
    }
    let before = engine
        .cooldown_until(&instance)
        .await
        .filter(|t| *t > SystemTime::now());
    engine.acknowledge(&instance).await?;
    Ok(Json(json!({
        "status": "acknowledged",
        "instance_uid": uid,
        "lifted_cooldown_until": before.map(rfc3339::format),
        "cooldown_until": null,
    })))
}

pub(super) async fn history(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query, &["limit", "instance_uid", "incident"])?;
    let limit = params.limit()?.min(state.access().limits.max_history);
    let incident = params
        .get("incident")
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("incident must be an incident id, not {v:?}"))
            })
        })
        .transpose()?;
    let instance = params.get("instance_uid");
    let engine = state.running_engine()?;
    let mut incidents: Vec<Incident> = engine
        .history(usize::MAX)
        .await
        .into_iter()
        .filter(|i| incident.is_none_or(|id| i.id == id))
        .filter(|i| instance.is_none_or(|uid| i.instance.as_str() == uid))
        .collect();
    if let (Some(id), true) = (incident, incidents.is_empty()) {
        return Err(ApiError::not_found(format!(
            "no incident {id}{}; the history keeps the last {} closed incidents \
             (limits.max_history)",
            instance.map_or(String::new(), |uid| format!(" of instance {uid}")),
            engine.settings().limits.max_history
        )));
    }
    incidents.sort_by_key(|i| std::cmp::Reverse(i.id));
    let (incidents, truncated) = within_budget(incidents.iter().take(limit).map(incident_view));
    Ok(Json(
        json!({ "count": incidents.len(), "incidents": incidents, "truncated": truncated }),
    ))
}

/// The most a history or alerts answer holds, in bytes of JSON (a few hundred incidents
/// take well under 1 MiB).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// The longest string shown in an answer, in bytes: labels are cut far shorter when a
/// delivery comes in (`limits.max_label_bytes`); this also bounds what an older journal
/// kept.
pub const MAX_ANSWER_STRING: usize = 4096;

/// The views, each string cut to [`MAX_ANSWER_STRING`], until [`MAX_ANSWER_BYTES`]; and
/// whether some were left out.
fn within_budget(views: impl Iterator<Item = Value>) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    let mut used = 0;
    for mut view in views {
        cut_strings(&mut view);
        used += serde_json::to_vec(&view).map_or(0, |v| v.len());
        if used > MAX_ANSWER_BYTES && !out.is_empty() {
            return (out, true);
        }
        out.push(view);
    }
    (out, false)
}

fn cut_strings(value: &mut Value) {
    match value {
        Value::String(s) if s.len() > MAX_ANSWER_STRING => {
            *s = crate::decision::webhook::bounded_label(s, MAX_ANSWER_STRING);
        }
        Value::Array(items) => items.iter_mut().for_each(cut_strings),
        Value::Object(map) => map.values_mut().for_each(cut_strings),
        _ => {}
    }
}

/// An incident as the journal has it, with whether it is still open and a one-line
/// summary of how it ended.
fn incident_view(incident: &Incident) -> Value {
    let mut view = serde_json::to_value(incident).unwrap_or(Value::Null);
    readable_times(&mut view);
    if let Value::Object(map) = &mut view {
        let open = incident.outcome.is_none();
        map.insert("status".into(), json!(if open { "open" } else { "closed" }));
        map.insert("summary".into(), json!(summary(incident.outcome.as_ref())));
    }
    view
}

/// Some evidence (a probe round's time, a cooldown's end, a Sentinel wait) is recorded
/// with serde's default form of `SystemTime` and `Duration`; people get RFC 3339 and
/// seconds, as everywhere else in the API.
pub(super) fn readable_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let pair = |a: &str, b: &str| {
                map.len() == 2
                    && map.get(a).and_then(Value::as_u64).is_some()
                    && map.get(b).and_then(Value::as_u64).is_some()
            };
            let (secs, nanos) = if pair("secs_since_epoch", "nanos_since_epoch") {
                ("secs_since_epoch", "nanos_since_epoch")
            } else if pair("secs", "nanos") {
                ("secs", "nanos")
            } else {
                map.values_mut().for_each(readable_times);
                return;
            };
            let whole = map[secs].as_u64().unwrap_or_default();
            let nanos = u32::try_from(map[nanos].as_u64().unwrap_or_default()).unwrap_or(0);
            let d = Duration::new(whole, nanos.min(999_999_999));
            *value = if secs == "secs" {
                json!(d.as_secs_f64())
            } else {
                json!(rfc3339::format(SystemTime::UNIX_EPOCH + d))
            };
        }
        Value::Array(items) => items.iter_mut().for_each(readable_times),
        _ => {}
    }
}

fn summary(outcome: Option<&Outcome>) -> String {
    match outcome {
        None => "being evaluated".into(),
        Some(Outcome::FailedOver {
            from,
            to,
            confidence,
        }) => format!("failed over from {from} to {to} (confidence {confidence:.2})"),
        Some(Outcome::WouldFailOver {
            from,
            to,
            confidence,
        }) => format!(
            "would fail over from {from} to {to} (confidence {confidence:.2}); the agent \
             only recommends (auto_failover off, --no-failover, or no DNS record)"
        ),
        Some(Outcome::Held(hold)) => format!("held: {}", hold.describe()),
        Some(Outcome::Failed { detail }) => format!("failed: {detail}"),
        Some(Outcome::Interrupted { detail }) => format!("interrupted: {detail}"),
        Some(Outcome::Resolved) => "the alert resolved before anything was decided".into(),
    }
}

pub(super) async fn alerts(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query, &["limit", "severity", "alert_type", "instance_uid"])?;
    let limit = params.limit()?.min(state.access().limits.max_history);
    let severity = params.get("severity");
    if let Some(s) = severity.filter(|s| !["critical", "warning", "info"].contains(s)) {
        return Err(ApiError::bad_request(format!(
            "severity must be critical, warning or info, not {s:?}"
        )));
    }
    let alert_type = params.get("alert_type");
    if let Some(t) = alert_type.filter(|t| !AgentAlertName::ALL.iter().any(|n| n.as_str() == *t)) {
        let names: Vec<&str> = AgentAlertName::ALL.iter().map(|n| n.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "alert_type must be one of {}, not {t:?}",
            names.join(", ")
        )));
    }
    let instance = params.get("instance_uid");
    let engine = state.running_engine()?;
    let mut incidents = engine.history(usize::MAX).await;
    incidents.sort_by(|a, b| b.closed.cmp(&a.closed).then(b.id.cmp(&a.id)));
    let alerts: Vec<Value> = incidents
        .iter()
        .filter(|i| instance.is_none_or(|uid| i.instance.as_str() == uid))
        .filter_map(alert_of)
        .filter(|(name, _)| alert_type.is_none_or(|t| name.as_str() == t))
        .filter(|(name, _)| severity.is_none_or(|s| name.severity().as_str() == s))
        .map(|(_, view)| view)
        .take(limit)
        .collect();
    let (alerts, truncated) = within_budget(alerts.into_iter());
    Ok(Json(
        json!({ "count": alerts.len(), "alerts": alerts, "truncated": truncated }),
    ))
}

/// The notice the engine sent for a closed incident (the same choice as the engine's
/// `notify`): none while it is open, for a recovery within the confirmation rounds, or
/// for a resolved alert.
fn alert_of(incident: &Incident) -> Option<(AgentAlertName, Value)> {
    let outcome = incident.outcome.as_ref()?;
    let uid = incident.instance.as_str();
    let (name, datacenter, message) = match outcome {
        Outcome::FailedOver { from, to, .. } => (
            AgentAlertName::RedisFailoverExecuted,
            Some(from),
            format!("{uid} failed over from {from} to {to}"),
        ),
        Outcome::WouldFailOver { from, to, .. } => (
            AgentAlertName::RedisFailoverRecommended,
            Some(from),
            format!("{uid} should fail over from {from} to {to}"),
        ),
        Outcome::Held(Hold::ActiveRecovered { .. }) | Outcome::Resolved => return None,
        Outcome::Held(hold) => (
            AgentAlertName::RedisFailoverHeld,
            None,
            format!("{uid}: failover held: {}", hold.describe()),
        ),
        Outcome::Failed { detail } | Outcome::Interrupted { detail } => (
            AgentAlertName::RedisFailoverFailed,
            None,
            format!("{uid}: failover failed: {detail}"),
        ),
    };
    let view = json!({
        "type": name.as_str(),
        "severity": name.severity().as_str(),
        "instance_uid": uid,
        "datacenter": datacenter,
        "message": message,
        "at": incident.closed.map(rfc3339::format),
        "incident": incident.id,
        "location": location(incident.id),
    });
    Some((name, view))
}
