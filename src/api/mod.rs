//! The HTTP surface: `/metrics`, `/healthz`, `/readyz`, `POST /webhook/alertmanager`
//! (`webhook`) and the operator API under `/api` (`operator`). The only module that knows
//! axum.
//! Every request is bounded in body size, time and concurrency (`limits.http`); the
//! listener bounds connections and how long they may stay silent (`server`).

mod counters;
mod errors;
mod operator;
mod server;
mod webhook;

pub use counters::HttpMetrics;
pub use server::serve;

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::error;

use crate::config::{HttpLimits, Limits};
use crate::decision::counters::DecisionMetrics;
use crate::decision::engine::Engine;
use crate::metrics::{Format, Metrics};
use crate::model::{ActiveDatacenters, AnalysisStore, Secret, SnapshotStore};

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
    /// `limits.http`, taken at start (a reload does not change the listener).
    pub http: HttpLimits,
    pub http_metrics: HttpMetrics,
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
    /// `limits`: the webhook's and the history's bounds follow a reload; `limits.http`
    /// is read from [`AppState::http`] instead.
    pub limits: Limits,
}

impl Access {
    pub fn from_config(config: &crate::config::Config) -> Access {
        Access {
            webhook_token: config.webhook.bearer_token.clone(),
            failover_label: config.failover.label.clone(),
            api_enabled: config.api.enabled,
            api_key: config.api.api_key.clone(),
            limits: config.limits,
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

/// The routes and their bounds. Each group (the scrape, the webhook, the API) has its
/// own concurrency limit, taken only after the request is authorized: unauthenticated or
/// slow clients of one cannot make another wait.
pub fn router(state: AppState) -> Router {
    let limits = state.http;
    let permits =
        |n: usize| GlobalConcurrencyLimitLayer::with_semaphore(Arc::new(Semaphore::new(n)));
    let n = limits.max_concurrent_requests;
    let webhook = post(webhook::alertmanager)
        .layer(permits(n))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            webhook::authorize,
        ))
        .layer(axum::middleware::from_fn(errors::json_client_errors));
    Router::new()
        .route("/metrics", get(metrics).layer(permits(n)))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/webhook/alertmanager", webhook)
        .nest("/api", operator::router(state.clone(), permits(n)))
        .fallback(not_found)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_response_with_state(
                    (limits, state.http_metrics.clone()),
                    errors::json_limit_errors,
                ))
                .layer(CatchPanicLayer::custom(errors::panic_response(
                    state.http_metrics.clone(),
                )))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                .layer(RequestBodyLimitLayer::new(limits.max_body_bytes)),
        )
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
    use std::time::Duration;
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
                None,
            )),
            store,
            analysis,
            active,
            engine: None,
            access: Default::default(),
            decisions: DecisionMetrics::default(),
            http: HttpLimits::default(),
            http_metrics: HttpMetrics::default(),
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
