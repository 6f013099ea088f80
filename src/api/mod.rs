//! The HTTP surface: `/metrics` (or `--web.telemetry-path`), `/healthz`, `/readyz`,
//! `POST /webhook/alertmanager` (`webhook`) and the operator API under `/api`
//! (`operator`). The only module that knows axum.
//! Every request is bounded in body size, time and concurrency (`limits.http`); the
//! listener bounds connections and how long they may stay silent (`server`).
//! `--web.config.file` (`web_config`, read into `tls` and `web`) adds TLS, basic auth
//! and response headers, as for exporters built on the Prometheus exporter toolkit.

mod counters;
mod errors;
mod operator;
mod server;
mod tls;
mod web;
mod web_config;
mod webhook;

pub use counters::HttpMetrics;
pub use server::{Surface, serve};
pub use web::{Web, protect};
#[cfg(test)]
pub(crate) use web_config::KEY_BLOCKS as WEB_CONFIG_KEY_BLOCKS;
pub use web_config::WebConfig;

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

/// Where Prometheus scrapes unless `--web.telemetry-path` says otherwise.
pub const METRICS_PATH: &str = "/metrics";
/// Where Alertmanager delivers; it has its own bearer token, not the web config's users.
pub const WEBHOOK_PATH: &str = "/webhook/alertmanager";

/// `--web.listen-address` as exporters take it: `host:port`, or `:port` for every
/// IPv4 interface.
pub fn parse_listen_address(given: &str) -> Result<std::net::SocketAddr, String> {
    let full = match given.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => given.to_owned(),
    };
    full.parse().map_err(|_| {
        format!("{given:?} is not an address: use host:port (127.0.0.1:9121, [::1]:9121) or :port")
    })
}

/// `--web.telemetry-path`: a path of its own, clear of the agent's other routes.
pub fn parse_telemetry_path(given: &str) -> Result<String, String> {
    let taken = ["/healthz", "/readyz", WEBHOOK_PATH];
    if !given.starts_with('/') || given.len() < 2 {
        Err(format!("{given:?} is not a path: use one like /metrics"))
    } else if given.contains(['{', '}', '*', '?', '#']) || given.chars().any(char::is_whitespace) {
        Err(format!("{given:?}: a path without {{ }} * ? # or spaces"))
    } else if taken.contains(&given) || given == "/api" || given.starts_with("/api/") {
        Err(format!("{given:?} is one of the agent's other routes"))
    } else {
        Ok(given.to_owned())
    }
}

/// The routes with the scrape at [`METRICS_PATH`].
pub fn router(state: AppState) -> Router {
    router_at(state, METRICS_PATH)
}

/// The routes and their bounds, the scrape at `telemetry_path`. Each group (the scrape,
/// the webhook, the API) has its own concurrency limit, taken only after the request is
/// authorized: unauthenticated or slow clients of one cannot make another wait.
pub fn router_at(state: AppState, telemetry_path: &str) -> Router {
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
        .route(telemetry_path, get(metrics).layer(permits(n)))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(WEBHOOK_PATH, webhook)
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

/// The body rendered for this round (`metrics::cache`), gzipped when the scraper
/// accepts it. Rendering and compressing run on the blocking pool, off the threads that
/// serve I/O.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let exposition = match state.metrics.exposition(format).await {
        Ok(exposition) => exposition,
        Err(e) => {
            error!(error = %e, "rendering /metrics failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    let gzip = accepts_gzip(&headers);
    let body = if gzip {
        match tokio::task::spawn_blocking(move || exposition.gzip()).await {
            Ok(body) => body,
            Err(e) => {
                error!(error = %e, "compressing /metrics panicked");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
            }
        }
    } else {
        exposition.body.clone()
    };
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::VARY, HeaderValue::from_static("Accept-Encoding")),
        ],
        body,
    )
        .into_response();
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` lists gzip with a weight above zero (Prometheus sends
/// `gzip`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(1.0, |q| q.parse::<f64>().unwrap_or(0.0));
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip"))
                && weight > 0.0
        })
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

    /// A state whose bodies are kept for a minute, whatever their render cost.
    fn cached_state() -> AppState {
        let mut state = state();
        let mut metrics = Metrics::new(
            Arc::clone(&state.store),
            Arc::clone(&state.analysis),
            Arc::clone(&state.active),
            0.8,
            None,
        );
        metrics.set_cache(crate::metrics::cache::Policy {
            max_age: Duration::from_secs(60),
            reuse_factor: u32::MAX,
            min_bytes: 0,
        });
        state.metrics = Arc::new(metrics);
        state
    }

    async fn scrape(state: &AppState, encoding: Option<&str>) -> Response {
        let mut req = Request::get("/metrics");
        if let Some(e) = encoding {
            req = req.header(header::ACCEPT_ENCODING, e);
        }
        router(state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn a_scraper_that_accepts_gzip_gets_the_same_body_gzipped() {
        use std::io::Read;
        let state = cached_state();
        let plain = scrape(&state, None).await;
        assert_eq!(plain.headers()[header::VARY], "Accept-Encoding");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain = body(plain).await;
        let zipped = scrape(&state, Some("deflate, gzip;q=0.9")).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::VARY], "Accept-Encoding");
        let zipped = body(zipped).await;
        assert!(
            zipped.len() * 2 < plain.len(),
            "{} of {}",
            zipped.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }

    #[tokio::test]
    async fn a_fresh_body_is_served_again_without_a_render() {
        let state = cached_state();
        let renders = |text: &[u8]| -> String {
            let text = String::from_utf8_lossy(text);
            text.lines()
                .find(|l| l.starts_with("redis_agent_metrics_renders_total{format=\"text\"}"))
                .unwrap()
                .to_owned()
        };
        let first = body(scrape(&state, None).await).await;
        let second = body(scrape(&state, None).await).await;
        assert_eq!(first, second, "the very same body");
        assert!(renders(&first).ends_with(" 0"), "{}", renders(&first));
        // After a reload the next scrape renders: it counts the first render.
        state.metrics.invalidate();
        let third = body(scrape(&state, None).await).await;
        assert!(renders(&third).ends_with(" 1"), "{}", renders(&third));
    }

    #[test]
    fn gzip_is_accepted_unless_its_weight_is_zero() {
        let accepts = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("identity, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_listen_address_may_leave_out_the_host() {
        assert_eq!(
            parse_listen_address(":9121").unwrap(),
            "0.0.0.0:9121".parse().unwrap()
        );
        assert_eq!(
            parse_listen_address("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(parse_listen_address("localhost:80").is_err());
    }

    #[test]
    fn the_telemetry_path_must_be_clear_of_the_other_routes() {
        assert_eq!(
            parse_telemetry_path("/prom/metrics").unwrap(),
            "/prom/metrics"
        );
        for bad in ["metrics", "/", "/healthz", "/api/status", "/m/{x}", "/a b"] {
            assert!(parse_telemetry_path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn unknown_paths_say_what_exists() {
        let (status, _, body) = get(state(), "/nope", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("/metrics"));
    }
}
