//! `/api`: the operator API (README "Operator API"; `openapi.json` next to this file
//! is its OpenAPI document, served at `GET /api/openapi.json`).
//!
//! Every request needs the `X-API-Key` header, compared in constant time. With
//! `api.enabled: false` the API does not exist (404); with no key configured every request
//! is refused (403) with how to set one, so a forgotten key never means an open API.
//! Answers are JSON; errors are `{"error": "..."}`. A client's mistake is a 4xx that says
//! what is wrong and is not logged as an error; a failure of the agent is a 5xx that says
//! little and is logged once, with its detail, by [`log_failures`].

mod advisors;
mod failover;
mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tracing::{debug, error};

use super::{AppState, same_secret};
use crate::decision::engine::{Engine, EngineError};

/// The header that carries the key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// `limit` when a list route is not given one, and the most it accepts.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

const OPENAPI: &str = include_str!("../openapi.json");

/// The routes, behind [`authorize`] and then `permits` (the API's own concurrency
/// limit): a request without the key never waits for a permit, nor has its body read.
pub(super) fn router<L>(state: AppState, permits: L) -> Router<AppState>
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service:
        tower::Service<Request, Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    <L::Service as tower::Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as tower::Service<Request>>::Future: Send + 'static,
{
    Router::new()
        .route("/status", get(status::all))
        .route("/status/{instance_uid}", get(status::one))
        .route("/metrics/{instance_uid}", get(status::metrics))
        .route("/metrics/{instance_uid}/latest", get(status::latest))
        .route("/failover/history", get(failover::history))
        .route("/failover/{instance_uid}", post(failover::request))
        .route("/failover/{instance_uid}/ack", post(failover::ack))
        .route("/alerts", get(failover::alerts))
        .route(
            "/client-errors/{instance_uid}",
            get(advisors::client_errors),
        )
        .route(
            "/ai-recommendations/{instance_uid}",
            get(advisors::ai_recommendations),
        )
        .route("/openapi.json", get(openapi))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(json_rejections))
        .layer(middleware::from_fn(log_failures))
        .layer(permits)
        .layer(middleware::from_fn_with_state(state, authorize))
}

/// An answer other than success.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// The client's mistake: the status and a message that says what is wrong.
    Client(StatusCode, String),
    /// The agent's failure: the client gets `public`; `detail` goes to the log only.
    Server {
        status: StatusCode,
        public: &'static str,
        detail: String,
    },
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::BAD_REQUEST, message.into())
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::Client(StatusCode::NOT_FOUND, message.into())
    }

    fn no_engine() -> Self {
        ApiError::Server {
            status: StatusCode::SERVICE_UNAVAILABLE,
            public: "the decision engine is not running",
            detail: "operator API request without a decision engine".into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        if let EngineError::NotLeader { .. } = e {
            // The message names the leader, whose API takes the request.
            return ApiError::Client(StatusCode::CONFLICT, e.to_string());
        }
        if let EngineError::Coordination(_) = e {
            return ApiError::Server {
                status: StatusCode::SERVICE_UNAVAILABLE,
                public: "the fleet's coordination store cannot be read; try again later",
                detail: e.to_string(),
            };
        }
        ApiError::Server {
            status: StatusCode::SERVICE_UNAVAILABLE,
            public: "the decision journal cannot record the request; try again later",
            detail: e.to_string(),
        }
    }
}

/// A client error's message, so [`authorize`] can take the key out of it.
#[derive(Debug, Clone)]
struct ClientMessage(String);

/// A server error's detail, for [`log_failures`].
#[derive(Debug, Clone)]
struct Failure(Arc<str>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Client(status, message) => {
                let mut response =
                    (status, Json(json!({ "error": message.as_str() }))).into_response();
                response.extensions_mut().insert(ClientMessage(message));
                response
            }
            ApiError::Server {
                status,
                public,
                detail,
            } => {
                let mut response = (status, Json(json!({ "error": public }))).into_response();
                response.extensions_mut().insert(Failure(detail.into()));
                response
            }
        }
    }
}

/// Refuses every request unless the API is enabled, a key is configured and the request
/// carries it. Also the last line of defence for the key: a client error that would echo
/// it (a uid or a parameter that happens to be the key) has it replaced by `***`.
async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let access = state.access();
    if !access.api_enabled {
        return ApiError::not_found(
            "the operator API is disabled (api.enabled: false); set api.enabled: true and \
             api.api_key (or api.api_key_file) to use it",
        )
        .into_response();
    }
    let Some(key) = access.api_key.filter(|k| !k.expose().is_empty()) else {
        debug!("operator API request refused: no api.api_key configured");
        return ApiError::Client(
            StatusCode::FORBIDDEN,
            "the operator API has no key configured: set api.api_key (or api.api_key_file) \
             in the configuration, reload the agent (SIGHUP), and send the key in the \
             X-API-Key header"
                .into(),
        )
        .into_response();
    };
    let given = request
        .headers()
        .get(API_KEY_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if !same_secret(given, key.expose().as_bytes()) {
        debug!("operator API request refused: missing or wrong X-API-Key");
        return ApiError::Client(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-API-Key header".into(),
        )
        .into_response();
    }
    let response = next.run(request).await;
    match response.extensions().get::<ClientMessage>() {
        Some(ClientMessage(m)) if m.contains(key.expose()) => {
            ApiError::Client(response.status(), key.redact(m)).into_response()
        }
        _ => response,
    }
}

/// Axum's extractor rejections (a path segment that is not UTF-8, a body over the limit,
/// ...) are plain text: as [`ApiError::Client`], they are JSON like every other answer,
/// and [`authorize`] can take the key out of them.
async fn json_rejections(request: Request, next: Next) -> Response {
    match super::errors::plain_client_error(next.run(request).await).await {
        Ok((status, headers, message)) => {
            (headers, ApiError::Client(status, message)).into_response()
        }
        Err(response) => response,
    }
}

/// Logs each server error once, with its detail and the route (never the raw path,
/// which is the client's text).
async fn log_failures(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    if let Some(Failure(detail)) = response.extensions().get::<Failure>() {
        error!(%method, route, status = response.status().as_u16(), error = %detail,
            "operator API request failed");
    }
    response
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such operator API route: {method} {}; GET /api/openapi.json lists them",
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::Client(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed on {}; GET /api/openapi.json lists the routes",
            uri.path()
        ),
    )
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

impl AppState {
    fn running_engine(&self) -> Result<&Engine, ApiError> {
        self.engine.as_ref().ok_or_else(ApiError::no_engine)
    }
}

/// The query parameters of a request, each at most once and each one the route takes.
#[derive(Debug, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    pub(crate) fn parse(
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        allowed: &[&str],
    ) -> Result<Params, ApiError> {
        let Query(pairs) =
            query.map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name:?}; this route takes {}",
                    allowed.join(", ")
                )));
            }
            if map.contains_key(&name) {
                return Err(ApiError::bad_request(format!(
                    "query parameter {name:?} is given more than once"
                )));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `limit`: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}, not {v:?}"
                    ))
                }),
        }
    }
}
