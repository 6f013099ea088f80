//! `POST /webhook/alertmanager`: Alertmanager's webhook (payload version 4).
//!
//! Answered as soon as the delivery is in the journal; the evaluations it starts run in
//! the background. 401 without the right bearer token, 400 for a payload that is not
//! Alertmanager's (with what is wrong), 413 above the body limit, and 503 only when the
//! journal cannot record the delivery: that is the one case where Alertmanager should
//! send it again.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::{debug, error, warn};

use super::{AppState, errors, same_secret};
use crate::decision::webhook;

/// Refuses a request without the right bearer token from its headers alone: the body of
/// an unauthorized request is never read, and it never waits for a concurrency permit.
pub(super) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = state.access().webhook_token else {
        state.decisions.webhook("unauthorized");
        return refuse(
            "the webhook is disabled: set webhook.bearer_token (or bearer_token_file) and give \
             Alertmanager the same token in http_config.authorization",
        );
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given.as_bytes(), token.expose().as_bytes()) {
        state.decisions.webhook("unauthorized");
        return refuse("missing or wrong bearer token");
    }
    next.run(request).await
}

/// A delivery, already authorized by [`authorize`].
pub(super) async fn alertmanager(State(state): State<AppState>, request: Request) -> Response {
    let access = state.access();
    let body = match errors::read_body(request.into_body(), &state.http, &state.http_metrics).await
    {
        Ok(body) => body,
        Err((status, message)) => {
            state.decisions.webhook("bad_request");
            return (status, Json(json!({ "error": message }))).into_response();
        }
    };
    let payload = match webhook::parse(&body) {
        Ok(p) => p,
        Err(e) => {
            state.decisions.webhook("bad_request");
            debug!(error = %e, "webhook payload refused");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("not an Alertmanager webhook payload: {e}") })),
            )
                .into_response();
        }
    };
    let max_alerts = access.limits.max_alerts_per_delivery;
    if payload.alerts.len() > max_alerts {
        state.decisions.webhook("too_many_alerts");
        warn!(
            alerts = payload.alerts.len(),
            max_alerts, "webhook delivery refused: more alerts than limits.max_alerts_per_delivery"
        );
        // 413, not 503: Alertmanager does not send a 4xx again; its receiver's
        // `max_alerts` keeps deliveries under the limit.
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "error": format!(
                "the delivery has {} alerts, more than limits.max_alerts_per_delivery ({max_alerts}); \
                 set max_alerts in the Alertmanager webhook receiver to {max_alerts} or fewer",
                payload.alerts.len()
            ) })),
        )
            .into_response();
    }
    let extraction = webhook::candidates_within(
        &payload,
        &access.failover_label,
        access.limits.max_label_bytes,
    );
    state.decisions.labels_cut(extraction.labels_cut);
    let Some(engine) = &state.engine else {
        state.decisions.webhook("error");
        error!("webhook delivery without a decision engine");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the decision engine is not running" })),
        )
            .into_response();
    };
    match engine.submit(&extraction.candidates).await {
        Ok(submitted) => {
            state.decisions.webhook("accepted");
            let mut body = json!({
                "status": "accepted",
                "opened": submitted.opened,
                "joined": submitted.joined,
                "resolved": submitted.resolved,
                "unmatched": submitted.unmatched,
                "unknown": submitted.unknown,
                "deferred": submitted.deferred,
                "ignored": extraction.ignored.len(),
            });
            // In a fleet: candidates handed to the leader, or journaled until etcd
            // takes them.
            if engine.fleet_status().is_some() {
                body["handed"] = json!(submitted.handed);
                body["pending"] = json!(submitted.pending);
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(e) => {
            state.decisions.webhook("error");
            warn!(error = %e, "webhook delivery not recorded; Alertmanager will retry");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "the delivery could not be recorded; retry later" })),
            )
                .into_response()
        }
    }
}

fn refuse(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": message })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use axum::body::Body;
    use axum::http::Request;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;
    use tower::ServiceExt;

    use super::*;
    use crate::api::{Access, router};
    use crate::decision::counters::DecisionMetrics;
    use crate::decision::engine::{Deps, Engine, Settings};
    use crate::decision::ports::{FreshProbe, Prober};
    use crate::decision::testkit::NoHooks;
    use crate::metrics::Metrics;
    use crate::model::{
        ActiveDatacenters, AnalysisStore, CollectError, Endpoint, ErrorKind, Secret, SnapshotStore,
    };

    const TOKEN: &str = "a-webhook-token-of-32-characters";

    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl Prober for Down {
        async fn probe(&self, _: &Endpoint) -> FreshProbe {
            FreshProbe::down(CollectError {
                kind: ErrorKind::Connect,
                message: "refused".into(),
            })
        }
        async fn promote(&self, _: &Endpoint) -> Result<(), CollectError> {
            Ok(())
        }
    }

    async fn state(token: Option<&str>, dir: &std::path::Path) -> crate::api::AppState {
        let store = Arc::new(SnapshotStore::new());
        let analysis = Arc::new(AnalysisStore::new());
        let active = Arc::new(ActiveDatacenters::new());
        // The fixtures' instance: candidates about unknown instances open nothing.
        let mut known = crate::decision::testkit::instance("redis-app-01");
        known.uid = crate::model::InstanceId::new("redis-app-01");
        let settings = Settings {
            instances: [(known.uid.clone(), known)].into_iter().collect(),
            failover: Default::default(),
            records: Default::default(),
            no_failover: false,
            switch: Default::default(),
            ai_max_hold: std::time::Duration::from_secs(120),
            effect_window: (
                std::time::Duration::from_secs(900),
                std::time::Duration::from_secs(600),
            ),
            limits: Default::default(),
            observers: Default::default(),
        };
        let engine = Engine::open(
            dir,
            settings,
            Deps {
                prober: Arc::new(Down),
                dns: None,
                notifier: None,
                hooks: Arc::new(NoHooks),
                analysis: Arc::clone(&analysis),
                store: Arc::new(crate::model::SnapshotStore::new()),
                enterprise: Arc::new(crate::model::enterprise::EnterpriseStore::new()),
                active: Arc::clone(&active),
                metrics: DecisionMetrics::default(),
                advisors: crate::decision::engine::Advisors::default(),
                clock: Arc::new(crate::decision::clock::SystemClock),
                coordination: None,
            },
            TaskTracker::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        crate::api::AppState {
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
            engine: Some(engine),
            access: Arc::new(std::sync::RwLock::new(Access {
                webhook_token: token.map(Secret::new),
                failover_label: "failover_candidate".into(),
                api_enabled: true,
                api_key: None,
                limits: Default::default(),
            })),
            decisions: DecisionMetrics::default(),
            http: Default::default(),
            http_metrics: Default::default(),
        }
    }

    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/alertmanager/firing-instance.json"
        ))
        .unwrap()
    }

    async fn post(
        state: crate::api::AppState,
        auth: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req =
            Request::post("/webhook/alertmanager").header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = router(state)
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, body)
    }

    #[tokio::test]
    async fn without_a_configured_token_every_request_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (status, body) = post(state(None, dir.path()).await, Some("Bearer x"), fixture()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("webhook.bearer_token"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_missing_or_wrong_token_is_401_and_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(Some(TOKEN), dir.path()).await;
        for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
            let (status, body) = post(s.clone(), auth, fixture()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert!(!body.to_string().contains(TOKEN), "{body}");
        }
    }

    #[tokio::test]
    async fn bad_payloads_are_400_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(Some(TOKEN), dir.path()).await;
        let auth = format!("Bearer {TOKEN}");
        let (status, body) = post(s.clone(), Some(&auth), b"{not json".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("not an Alertmanager webhook payload")
        );
        let v3 = String::from_utf8(fixture())
            .unwrap()
            .replace("\"4\"", "\"3\"");
        let (status, body) = post(s, Some(&auth), v3.into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().unwrap().contains("version"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn an_oversized_body_is_413() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(Some(TOKEN), dir.path()).await;
        let auth = format!("Bearer {TOKEN}");
        let (status, body) = post(s, Some(&auth), vec![b' '; 2 * 1024 * 1024]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            body["error"].as_str().unwrap().contains("larger than"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_delivery_is_recorded_and_repeats_join_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(Some(TOKEN), dir.path()).await;
        let auth = format!("Bearer {TOKEN}");
        let (status, body) = post(s.clone(), Some(&auth), fixture()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["opened"], serde_json::json!([1]), "{body}");
        let (_, again) = post(s.clone(), Some(&auth), fixture()).await;
        // The first evaluation (of an instance this engine does not know) may already be
        // over: then the repeat opens a new incident; never two at once.
        assert!(
            again["joined"] == serde_json::json!([1]) || again["opened"] == serde_json::json!([2]),
            "{again}"
        );
    }

    #[tokio::test]
    async fn an_alert_about_an_unknown_instance_opens_nothing_and_is_answered_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(Some(TOKEN), dir.path()).await;
        let auth = format!("Bearer {TOKEN}");
        let body = String::from_utf8(fixture())
            .unwrap()
            .replace("redis-app-01", "not-configured");
        let (status, body) = post(s, Some(&auth), body.into_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["opened"], serde_json::json!([]), "{body}");
        assert_eq!(body["unknown"], 1, "{body}");
        assert_eq!(body["deferred"], 0, "{body}");
    }
}
