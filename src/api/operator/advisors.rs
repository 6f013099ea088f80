//! `GET /api/client-errors/{uid}` and `GET /api/ai-recommendations/{uid}`: what the
//! advisors say about an instance, and what became of it.
//!
//! Client log text in these answers stays marked as `{"untrusted_text": "..."}`: it was
//! written by whoever can write to the applications' logs.

use std::time::SystemTime;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::status::routing;
use super::{ApiError, AppState, Params};
use crate::decision::advice::book::RATE_LIMIT;
use crate::decision::engine::{EFFECT_AFTER, EFFECT_BEFORE};
use crate::decision::ports::Window;
use crate::model::rfc3339;

/// The clients' error rates in the last 5 minutes against the 30 before, from their
/// logs (cached `elk.cache_ttl`), and the effect measured after each recent failover.
pub(super) async fn client_errors(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let routing = routing(&state, &uid)?;
    let engine = state.running_engine()?;
    let Some(impact) = engine.client_errors(&routing.instance).await else {
        return Err(ApiError::not_found(
            "client impact is not configured: set use_elk: true and the elk block \
             (url, index_pattern, ...) to read the clients' logs from Elasticsearch",
        ));
    };
    let window = Window::default();
    let effects: Vec<Value> = engine
        .history(engine.settings().limits.max_history)
        .await
        .into_iter()
        .filter(|i| i.instance == routing.instance)
        .flat_map(|i| {
            i.steps
                .into_iter()
                .filter(|s| s.name == crate::decision::incident::StepName::FailoverEffect)
                .map(move |s| {
                    json!({
                        "incident": i.id,
                        "measured_at": rfc3339::format(s.at),
                        "effect": s.evidence["effect"],
                        "detail": s.detail,
                    })
                })
        })
        .collect();
    Ok(Json(json!({
        "instance_uid": routing.instance,
        "generated_at": rfc3339::format(SystemTime::now()),
        "window": {
            "recent_seconds": window.recent.as_secs(),
            "baseline_seconds": window.baseline.as_secs(),
        },
        "clients": impact.label(),
        "summary": impact.describe(),
        "analysis": impact,
        "failover_effects": effects,
        "failover_effect_window": {
            "before_seconds": EFFECT_BEFORE.as_secs(),
            "after_seconds": EFFECT_AFTER.as_secs(),
        },
    })))
}

/// The AI advisor's consultations about the instance, newest first (`limit`), each with
/// what the guard made of it.
pub(super) async fn ai_recommendations(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query, &["limit"])?;
    let limit = params.limit()?;
    let routing = routing(&state, &uid)?;
    let engine = state.running_engine()?;
    if !engine.advisors().1 {
        return Err(ApiError::not_found(
            "the AI advisor is not configured: set use_azure_openai: true and the \
             azure_openai block (endpoint and api_key, or base_url for an \
             OpenAI-compatible server)",
        ));
    }
    let settings = engine.settings();
    let f = &settings.failover;
    let recommendations = engine.ai_recommendations(&routing.instance, limit);
    Ok(Json(json!({
        "instance_uid": routing.instance,
        "rules": {
            "ai_failover_confidence": f.ai_confidence,
            "ai_consecutive_recommendations": f.ai_consecutive_recommendations,
            "ai_max_hold_seconds": settings.ai_max_hold.as_secs_f64(),
            "rate_limit_seconds": RATE_LIMIT.as_secs(),
        },
        "outage_since": engine.ai_outage_since(&routing.instance),
        "recommendations": recommendations,
    })))
}
