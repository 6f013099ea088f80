//! The HTTP surface: `/metrics`, `/healthz`, `/readyz`, `POST /webhook/alertmanager`
//! (`webhook`) and the operator API under `/api` (`operator`). The only module that knows
//! axum.
//! Every request is bounded in body size, time and concurrency.

mod operator;
mod webhook;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::error;

use crate::decision::counters::DecisionMetrics;
use crate::decision::engine::Engine;
use crate::metrics::{Format, Metrics};
use crate::model::{ActiveDatacenters, AnalysisStore, Secret, SnapshotStore};

/// Largest request body accepted, in bytes (Alertmanager batches stay well below).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; more wait their turn.
pub const CONCURRENCY_LIMIT: usize = 64;

#[derive(Debug, Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub store: Arc<SnapshotStore>,
    /// Health and anomaly conclusions per endpoint, for `/api/status`.
    pub analysis: Arc<AnalysisStore>,
    /// Where each instance's traffic goes, for `/api/status`.
    pub active: Arc<ActiveDatacenters>,
    /// The decision engine; `None` in tests of the other routes.
    pub engine: Option<Engine>,
    pub access: Arc<RwLock<Access>>,
    pub decisions: DecisionMetrics,
}

/// Who may call what; replaced on reload.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `webhook.bearer_token`: none, and the webhook refuses every request.
    pub webhook_token: Option<Secret>,
    /// `failover_label`.
    pub failover_label: String,
    /// `api.enabled`.
    pub api_enabled: bool,
    /// `api.api_key`: none, and `/api` refuses every request.
    pub api_key: Option<Secret>,
}

impl Access {
    pub fn from_config(config: &crate::config::Config) -> Access {
        Access {
            webhook_token: config.webhook.bearer_token.clone(),
            failover_label: config.failover.label.clone(),
            api_enabled: config.api.enabled,
            api_key: config.api.api_key.clone(),
        }
    }
}

impl AppState {
    fn access(&self) -> Access {
        self.access
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ e);
    }
    diff == 0
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/webhook/alertmanager", post(webhook::alertmanager))
        .nest("/api", operator::router(state.clone()))
        .fallback(not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_response(json_limit_errors))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                ))
                .layer(ConcurrencyLimitLayer::new(CONCURRENCY_LIMIT))
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT)),
        )
}

/// The limits answer in plain text; every other error of this API is JSON.
async fn json_limit_errors<B>(response: axum::http::Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let message = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {BODY_LIMIT} bytes")
        }
        StatusCode::REQUEST_TIMEOUT => format!(
            "the request took longer than {} s",
            REQUEST_TIMEOUT.as_secs()
        ),
        _ => return response.map(axum::body::Body::new),
    };
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response.map(axum::body::Body::new);
    }
    let status = response.status();
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let metrics = Arc::clone(&state.metrics);
    // Rendering a thousand endpoints takes milliseconds of CPU: keep it off the
    // threads that serve I/O.
    match tokio::task::spawn_blocking(move || metrics.render(format)).await {
        Ok(Ok(body)) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            )],
            body,
        )
            .into_response(),
        Ok(Err(e)) => {
            error!(error = %e, "rendering /metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
        Err(e) => {
            error!(error = %e, "rendering /metrics panicked");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(engine) = &state.engine
        && !engine.journal_healthy()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the decision journal is lost (a write failed and could not be undone); \
             nothing can be recorded or decided until the agent is restarted\n",
        )
            .into_response();
    }
    let all = state.store.all();
    let done = all.iter().filter(|s| s.last_round.is_some()).count();
    if done == all.len() {
        (
            StatusCode::OK,
            format!("ready: {done} endpoints collected\n"),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: waiting for the first collection round ({done} of {} endpoints done)\n",
                all.len()
            ),
        )
            .into_response()
    }
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found; this agent serves /metrics, /healthz, /readyz, POST /webhook/alertmanager and /api\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use crate::model::{EndpointKey, EndpointStatus};

    fn state() -> AppState {
        let store = Arc::new(SnapshotStore::new());
        store.register(EndpointStatus::new(
            EndpointKey::new("cache", "east"),
            1,
            "127.0.0.1:1".into(),
            Duration::from_secs(5),
        ));
        let analysis = Arc::new(AnalysisStore::new());
        let active = Arc::new(ActiveDatacenters::new());
        AppState {
            metrics: Arc::new(Metrics::new(
                Arc::clone(&store),
                Arc::clone(&analysis),
                Arc::clone(&active),
                0.8,
            )),
            store,
            analysis,
            active,
            engine: None,
            access: Default::default(),
            decisions: DecisionMetrics::default(),
        }
    }

    async fn get(state: AppState, uri: &str, accept: Option<&str>) -> (StatusCode, String, String) {
        let mut req = Request::get(uri);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let resp = router(state)
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readyz_waits_for_the_first_round() {
        let (status, _, body) = get(state(), "/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("0 of 1"), "{body}");
        let (status, _, _) = get(state(), "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_negotiates_the_format() {
        let (status, ctype, body) = get(state(), "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
        assert!(
            body.contains("# TYPE redis_agent_collection_rounds_total counter"),
            "{body}"
        );
        assert!(
            body.contains("redis_up{redis_instance=\"cache\",datacenter=\"east\"} 0"),
            "{body}"
        );
        assert!(!body.contains("# EOF"));

        let om = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
        let (_, ctype, body) = get(state(), "/metrics", Some(om)).await;
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        assert!(
            body.contains("# TYPE redis_agent_collection_rounds counter"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn unknown_paths_say_what_exists() {
        let (status, _, body) = get(state(), "/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("/metrics"));
    }
}
