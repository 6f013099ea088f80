//! The operator API through `router(state).oneshot(...)`, with a fake prober, the
//! in-memory DNS and a real engine and journal in a temporary directory.

use crate::decision::testkit::fresh;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::api::{Access, AppState, router};
use crate::decision::counters::DecisionMetrics;
use crate::decision::engine::{Advisors, Deps, Engine, Settings};
use crate::decision::ports::dns::{MemoryDns, Op};
use crate::decision::ports::{
    Coordination, FreshProbe, Prober, RecordRef, RecordType, RecordValue,
};
use crate::decision::settings::HookSettings;
use crate::decision::testkit::NoHooks;
use crate::metrics::Metrics;
use crate::model::{
    ActiveDatacenters, AnalysisStore, CollectError, Endpoint, Instance, InstanceId, Secret,
    SnapshotStore,
};

const KEY: &str = "an-operator-api-key-of-40-characters-xyz";

/// Every route the router serves under `/api`, as the OpenAPI document must list them.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/status"),
    ("get", "/api/status/{instance_uid}"),
    ("get", "/api/metrics/{instance_uid}"),
    ("get", "/api/metrics/{instance_uid}/latest"),
    ("post", "/api/failover/{instance_uid}"),
    ("post", "/api/failover/{instance_uid}/ack"),
    ("get", "/api/failover/history"),
    ("get", "/api/alerts"),
    ("get", "/api/client-errors/{instance_uid}"),
    ("get", "/api/ai-recommendations/{instance_uid}"),
    ("get", "/api/openapi.json"),
];

#[path = "access_tests.rs"]
mod access;
#[path = "advisors_tests.rs"]
mod advisors;
#[path = "failover_tests.rs"]
mod failover;
#[path = "status_tests.rs"]
mod status;

/// Each datacenter up or down, as told, answering after `delay`.
#[derive(Debug)]
struct Fixed(Mutex<BTreeMap<String, bool>>, Duration);

impl Fixed {
    fn new(up: &[(&str, bool)]) -> Arc<Self> {
        Self::slow(up, Duration::ZERO)
    }

    fn slow(up: &[(&str, bool)], delay: Duration) -> Arc<Self> {
        Arc::new(Fixed(
            Mutex::new(up.iter().map(|(dc, up)| (dc.to_string(), *up)).collect()),
            delay,
        ))
    }
}

#[async_trait]
impl Prober for Fixed {
    async fn probe(&self, endpoint: &Endpoint) -> FreshProbe {
        tokio::time::sleep(self.1).await;
        let up = self.0.lock().unwrap()[endpoint.key.datacenter.as_str()];
        fresh(up)
    }

    async fn promote(&self, _: &Endpoint) -> Result<(), CollectError> {
        Ok(())
    }
}

fn instance() -> Instance {
    crate::decision::testkit::instance("cache-service")
}

fn record() -> RecordRef {
    RecordRef::new("Z1", "redis.example.com", RecordType::Cname)
}

fn settings() -> Settings {
    // The decision's test settings, with the instance's name as the API tests give it.
    let mut s = crate::decision::testkit::settings(false, false, HookSettings::default());
    s.instances = [(instance().uid.clone(), instance())].into_iter().collect();
    s
}

struct Bed {
    state: AppState,
    dns: Arc<MemoryDns>,
    _dir: tempfile::TempDir,
}

async fn bed_with(key: Option<&str>, enabled: bool, prober: Arc<Fixed>) -> Bed {
    bed_advised(key, enabled, prober, Advisors::default()).await
}

async fn bed_advised(
    key: Option<&str>,
    enabled: bool,
    prober: Arc<Fixed>,
    advisors: Advisors,
) -> Bed {
    bed_full(key, enabled, prober, advisors, None).await
}

async fn bed_full(
    key: Option<&str>,
    enabled: bool,
    prober: Arc<Fixed>,
    advisors: Advisors,
    coordination: Option<Arc<dyn Coordination>>,
) -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SnapshotStore::new());
    let analysis = Arc::new(AnalysisStore::new());
    let active = Arc::new(ActiveDatacenters::new());
    active.apply(&[instance()]);
    let dns = Arc::new(
        MemoryDns::new().with_record(&record(), RecordValue::single("redis-east.example.com", 60)),
    );
    let engine = Engine::open(
        dir.path(),
        settings(),
        Deps {
            prober,
            dns: Some(dns.clone()),
            notifier: None,
            hooks: Arc::new(NoHooks),
            analysis: Arc::clone(&analysis),
            store: Arc::clone(&store),
            enterprise: Arc::new(crate::model::enterprise::EnterpriseStore::new()),
            active: Arc::clone(&active),
            metrics: DecisionMetrics::default(),
            advisors,
            clock: Arc::new(crate::decision::clock::SystemClock),
            coordination,
        },
        TaskTracker::new(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let state = AppState {
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
        access: Arc::new(RwLock::new(Access {
            webhook_token: None,
            failover_label: "failover_candidate".into(),
            api_enabled: enabled,
            api_key: key.map(Secret::new),
            limits: Default::default(),
        })),
        decisions: DecisionMetrics::default(),
        http: Default::default(),
        http_metrics: Default::default(),
    };
    Bed {
        state,
        dns,
        _dir: dir,
    }
}

/// East down, west up.
async fn bed(key: Option<&str>) -> Bed {
    bed_with(key, true, Fixed::new(&[("east", false), ("west", true)])).await
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    text: String,
    json: Value,
}

async fn call(state: &AppState, method: &str, uri: &str, key: Option<&str>, body: &str) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    if !body.is_empty() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        location,
        text,
        json,
    }
}

async fn get(state: &AppState, uri: &str) -> Answer {
    call(state, "GET", uri, Some(KEY), "").await
}

async fn post(state: &AppState, uri: &str, body: &str) -> Answer {
    call(state, "POST", uri, Some(KEY), body).await
}

fn error_of(a: &Answer) -> &str {
    a.json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {} {}", a.status, a.text))
}

/// Polls the history until the incident is closed.
async fn settled(state: &AppState, id: u64) -> Value {
    for _ in 0..500 {
        let a = get(state, &format!("/api/failover/history?incident={id}")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let incident = &a.json["incidents"][0];
        if incident["status"] == "closed" {
            return incident.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("incident {id} did not close");
}

/// A manual failover of cache to west; returns the closed incident.
async fn fail_over(b: &Bed) -> Value {
    let a = post(
        &b.state,
        "/api/failover/cache",
        r#"{"target_dc": "west", "reason": "east is on fire"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let id = a.json["incident"].as_u64().unwrap();
    let expected = format!("/api/failover/history?incident={id}");
    assert_eq!(a.location.as_deref(), Some(expected.as_str()));
    assert_eq!(a.json["location"], expected.as_str());
    settled(&b.state, id).await
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    // With both advisors, so their routes answer too.
    let (b, _, _) = advisors::advised(crate::advisors::client_impact::FakeClientImpact::failing(
        &InstanceId::new("cache"),
    ))
    .await;
    let a = get(&b.state, "/api/openapi.json").await;
    assert_eq!(a.status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&a.text).expect("the document is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["name"],
        "X-API-Key"
    );
    let mut listed: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.push((method.clone(), path.clone()));
        }
    }
    listed.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // Every listed route is served (not the unknown-route answer, not 405), and every
    // schema reference resolves.
    for (method, path) in ROUTES {
        let uri = path.replace("{instance_uid}", "cache");
        let body = if *method == "post" { "{}" } else { "" };
        let a = call(&b.state, &method.to_uppercase(), &uri, Some(KEY), body).await;
        assert!(
            a.status.is_success() || a.status == StatusCode::CONFLICT,
            "{method} {uri}: {} {}",
            a.status,
            a.text
        );
    }
    let text = a.text.as_str();
    for reference in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
    }
}

#[tokio::test]
async fn without_an_engine_status_answers_and_failover_routes_are_503() {
    let b = bed(Some(KEY)).await;
    let mut state = b.state.clone();
    state.engine = None;
    let a = get(&state, "/api/status").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["auto_failover"], Value::Null);
    for (method, uri) in [
        ("POST", "/api/failover/cache"),
        ("POST", "/api/failover/cache/ack"),
        ("GET", "/api/failover/history"),
        ("GET", "/api/alerts"),
    ] {
        let a = call(&state, method, uri, Some(KEY), "").await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}");
        assert_eq!(error_of(&a), "the decision engine is not running");
    }
}

#[test]
fn recorded_times_and_durations_read_as_rfc3339_and_seconds() {
    let hold = crate::decision::policy::Hold::SentinelFailover {
        waited: Duration::from_millis(1500),
        wait: Duration::from_secs(60),
    };
    let cooldown = crate::decision::policy::Hold::Cooldown {
        until: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    };
    let mut v = json!({ "a": [hold, cooldown], "b": { "secs": 1, "nanos": 2, "other": 3 } });
    super::failover::readable_times(&mut v);
    assert_eq!(
        v,
        json!({
            "a": [
                { "reason": "sentinel_failover", "waited": 1.5, "wait": 60.0 },
                { "reason": "cooldown", "until": "2027-01-15T08:00:00Z" },
            ],
            "b": { "secs": 1, "nanos": 2, "other": 3 },
        })
    );
}
