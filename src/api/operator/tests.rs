//! The operator API through `router(state).oneshot(...)`, with a fake prober, the
//! in-memory DNS and a real engine and journal in a temporary directory.

use crate::decision::engine::testkit::fresh;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::actuators::dns::{MemoryDns, Op, RecordRef, RecordType, RecordValue, SwitchPolicy};
use crate::api::{Access, AppState, router};
use crate::collector::info::parse_info;
use crate::collector::probe::{FreshProbe, Prober};
use crate::config::FailoverSettings;
use crate::decision::counters::DecisionMetrics;
use crate::decision::engine::{Advisors, Deps, Engine, InstanceRecord, Settings};
use crate::metrics::Metrics;
use crate::model::{
    ActiveDatacenters, Analysis, AnalysisStore, AnomalyState, CollectError, Endpoint, EndpointKey,
    EndpointStatus, HealthStatus, Instance, InstanceId, Round, Secret, Snapshot, SnapshotStore,
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

#[path = "advisors_tests.rs"]
mod advisors;

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
    crate::decision::engine::testkit::instance("cache-service")
}

fn record() -> RecordRef {
    RecordRef::new("Z1", "redis.example.com", RecordType::Cname)
}

fn settings() -> Settings {
    let inst = instance();
    let values = inst
        .endpoints
        .iter()
        .map(|(dc, e)| (dc.clone(), e.host.clone()))
        .collect();
    let failover = FailoverSettings {
        confirm_interval: Duration::from_millis(10),
        ..FailoverSettings::default()
    };
    Settings {
        instances: [(inst.uid.clone(), inst)].into_iter().collect(),
        failover,
        records: [(
            InstanceId::new("cache"),
            InstanceRecord {
                record: record(),
                ttl: 60,
                values,
            },
        )]
        .into_iter()
        .collect(),
        no_failover: false,
        switch: SwitchPolicy {
            poll_interval: Duration::from_millis(10),
            ..SwitchPolicy::default()
        },
        ai_max_hold: Duration::from_secs(120),
        effect_window: (Duration::from_secs(900), Duration::from_secs(600)),
    }
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
            analysis: Arc::clone(&analysis),
            store: Arc::clone(&store),
            active: Arc::clone(&active),
            metrics: DecisionMetrics::default(),
            advisors,
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
        })),
        decisions: DecisionMetrics::default(),
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
async fn without_a_configured_key_every_request_is_403_with_how_to_enable_it() {
    let b = bed(None).await;
    for (method, uri) in [
        ("GET", "/api/status"),
        ("GET", "/api/openapi.json"),
        ("POST", "/api/failover/cache"),
        ("GET", "/api/no-such-route"),
    ] {
        for key in [None, Some(KEY), Some("")] {
            let a = call(&b.state, method, uri, key, "").await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {uri}");
            let e = error_of(&a);
            assert!(
                e.contains("api.api_key") && e.contains("api_key_file") && e.contains("X-API-Key"),
                "{e}"
            );
        }
    }
    // An empty configured key is no key.
    let b = bed(Some("")).await;
    let a = call(&b.state, "GET", "/api/status", Some(""), "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(b.dns.upserts().is_empty());
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_and_the_right_one_200() {
    let b = bed(Some(KEY)).await;
    let wrong = &KEY[..KEY.len() - 1];
    let longer = format!("{KEY}x");
    for key in [
        None,
        Some(""),
        Some("nope"),
        Some(wrong),
        Some(longer.as_str()),
    ] {
        let a = call(&b.state, "GET", "/api/status", key, "").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(error_of(&a), "missing or wrong X-API-Key header");
        let a = call(&b.state, "POST", "/api/failover/cache", key, "{}").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{key:?}");
    }
    assert_eq!(b.state.engine.as_ref().unwrap().history(10).await.len(), 0);
    let a = get(&b.state, "/api/status").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // The outer routes need no key.
    let a = call(&b.state, "GET", "/healthz", None, "").await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_api_is_404_with_a_message() {
    let b = bed_with(
        Some(KEY),
        false,
        Fixed::new(&[("east", true), ("west", true)]),
    )
    .await;
    for uri in ["/api/status", "/api/openapi.json", "/api/failover/history"] {
        let a = get(&b.state, uri).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(error_of(&a).contains("api.enabled"), "{}", a.text);
    }
    let a = post(&b.state, "/api/failover/cache", "{}").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(b.state.engine.as_ref().unwrap().history(10).await.len(), 0);
}

#[tokio::test]
async fn unknown_instances_are_404_with_a_message() {
    let b = bed(Some(KEY)).await;
    for (method, uri) in [
        ("GET", "/api/status/nope"),
        ("GET", "/api/metrics/nope"),
        ("GET", "/api/metrics/nope/latest"),
        ("POST", "/api/failover/nope"),
        ("POST", "/api/failover/nope/ack"),
    ] {
        let a = call(&b.state, method, uri, Some(KEY), "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert!(
            error_of(&a).contains("unknown instance \"nope\""),
            "{}",
            a.text
        );
    }
    let a = get(&b.state, "/api/failover/history?incident=99").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(error_of(&a).contains("no incident 99"), "{}", a.text);
    assert_eq!(b.state.engine.as_ref().unwrap().history(10).await.len(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let b = bed(Some(KEY)).await;
    let a = get(&b.state, "/api/nope").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(error_of(&a).contains("/api/openapi.json"), "{}", a.text);
    let a = call(&b.state, "DELETE", "/api/status", Some(KEY), "").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&a).contains("DELETE"), "{}", a.text);
    let a = get(&b.state, "/api/failover/cache").await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{}", a.text);
}

#[tokio::test]
async fn a_bad_failover_body_is_400_with_what_is_wrong() {
    let b = bed(Some(KEY)).await;
    for (body, says) in [
        ("{not json", "key must be a string"),
        (r#"{"target_dc": 5}"#, "invalid type"),
        (r#"{"force": "yes"}"#, "invalid type"),
        (r#"{"targetdc": "west"}"#, "unknown field `targetdc`"),
        ("[]", "JSON object"),
        ("null", "JSON object"),
    ] {
        let a = post(&b.state, "/api/failover/cache", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        let e = error_of(&a);
        assert!(
            e.starts_with("the body is not a failover request") && e.contains(says),
            "{body}: {e}"
        );
    }
    let long = json!({ "reason": "x".repeat(1001) }).to_string();
    let a = post(&b.state, "/api/failover/cache", &long).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(error_of(&a).contains("reason"));
    assert_eq!(b.state.engine.as_ref().unwrap().history(10).await.len(), 0);
    assert!(b.dns.upserts().is_empty());
}

#[tokio::test]
async fn an_oversized_failover_body_is_413() {
    let b = bed(Some(KEY)).await;
    let body = format!("{{\"reason\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let a = post(&b.state, "/api/failover/cache", &body).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert!(error_of(&a).contains("larger than"), "{}", a.text);
    // With a Content-Length the listener refuses it before the handler.
    let req = Request::post("/api/failover/cache")
        .header("X-API-Key", KEY)
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .unwrap();
    let resp = router(b.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(b.state.engine.as_ref().unwrap().history(10).await.len(), 0);
}

#[tokio::test]
async fn an_unknown_target_is_400_naming_it_and_nothing_starts() {
    let b = bed(Some(KEY)).await;
    for force in [false, true] {
        let body = json!({ "target_dc": "mars", "force": force }).to_string();
        let a = post(&b.state, "/api/failover/cache", &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        let e = error_of(&a);
        assert!(e.contains("\"mars\"") && e.contains("east, west"), "{e}");
    }
    assert_eq!(b.state.engine.as_ref().unwrap().history(10).await.len(), 0);
    assert!(b.dns.upserts().is_empty());
}

#[tokio::test]
async fn a_manual_failover_moves_dns_and_shows_in_history_status_and_alerts() {
    let b = bed(Some(KEY)).await;
    let incident = fail_over(&b).await;
    assert_eq!(
        incident["outcome"]["outcome"], "failed_over",
        "{incident:#}"
    );
    assert_eq!(incident["outcome"]["to"], "west");
    assert_eq!(incident["applied"], true);
    assert_eq!(incident["triggers"][0]["source"], "api");
    assert_eq!(incident["triggers"][0]["name"], "east is on fire");
    let steps: Vec<&str> = incident["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "guard",
            "probe_round",
            "probe_round",
            "probe_round",
            "policy",
            "dns",
            "verify"
        ]
    );
    assert!(
        incident["summary"]
            .as_str()
            .unwrap()
            .starts_with("failed over from east to west")
    );
    assert_eq!(
        b.dns.get(&record()).unwrap().values,
        ["redis-west.example.com"]
    );
    assert_eq!(b.dns.calls(Op::Upsert), 1);

    let a = get(&b.state, "/api/failover/history").await;
    assert_eq!(a.json["count"], 1);
    assert_eq!(a.json["incidents"][0]["id"], incident["id"]);
    let a = get(&b.state, "/api/failover/history?instance_uid=other").await;
    assert_eq!(a.json["count"], 0);

    let a = get(&b.state, "/api/status/cache").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["active_datacenter"], "west");
    assert_eq!(a.json["dns_record"], "redis.example.com");
    assert_eq!(a.json["open_incident"], Value::Null);
    let until = a.json["cooldown_until"].as_str().unwrap();
    assert!(crate::model::rfc3339::parse(until).unwrap().unwrap() > SystemTime::now());

    let a = get(&b.state, "/api/alerts").await;
    assert_eq!(a.json["count"], 1, "{}", a.text);
    let alert = &a.json["alerts"][0];
    assert_eq!(alert["type"], "RedisFailoverExecuted");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["instance_uid"], "cache");
    assert_eq!(alert["datacenter"], "east");
    assert_eq!(alert["incident"], incident["id"]);
    for filter in [
        "severity=warning",
        "alert_type=RedisFailoverHeld",
        "instance_uid=other",
    ] {
        let a = get(&b.state, &format!("/api/alerts?{filter}")).await;
        assert_eq!(a.json["count"], 0, "{filter}");
    }
    let a = get(
        &b.state,
        "/api/alerts?severity=critical&alert_type=RedisFailoverExecuted&instance_uid=cache&limit=1",
    )
    .await;
    assert_eq!(a.json["count"], 1);

    // A second request is held by the cooldown; the DNS is not touched again.
    let a = post(&b.state, "/api/failover/cache", "").await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    let held = settled(&b.state, a.json["incident"].as_u64().unwrap()).await;
    assert_eq!(held["outcome"]["reason"], "cooldown", "{held:#}");
    // Times in the evidence read as RFC 3339, like every other time in the API.
    let until = held["outcome"]["until"].as_str().unwrap();
    assert!(
        crate::model::rfc3339::parse(until).unwrap().is_some(),
        "{until}"
    );
    let round_at = incident["steps"][1]["evidence"]["at"].as_str().unwrap();
    assert!(round_at.ends_with('Z'), "{round_at}");
    assert_eq!(b.dns.calls(Op::Upsert), 1);
    let a = get(&b.state, "/api/alerts?alert_type=RedisFailoverHeld").await;
    assert_eq!(a.json["count"], 1);
    assert_eq!(a.json["alerts"][0]["severity"], "warning");
    let a = get(&b.state, "/api/failover/history?limit=1").await;
    assert_eq!(a.json["incidents"][0]["id"], held["id"], "newest first");
}

#[tokio::test]
async fn a_request_during_an_evaluation_is_409_and_changes_nothing_more() {
    let prober = Fixed::slow(
        &[("east", false), ("west", true)],
        Duration::from_millis(200),
    );
    let b = bed_with(Some(KEY), true, prober).await;
    let first = post(&b.state, "/api/failover/cache", r#"{"target_dc": "west"}"#).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    let id = first.json["incident"].as_u64().unwrap();
    let again = post(&b.state, "/api/failover/cache", r#"{"force": true}"#).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.json["incident"], id);
    assert_eq!(again.location, first.location);
    assert!(
        error_of(&again).contains("already running"),
        "{}",
        again.text
    );
    let a = get(&b.state, "/api/status/cache").await;
    assert_eq!(a.json["open_incident"], id);
    let incident = settled(&b.state, id).await;
    assert_eq!(incident["outcome"]["outcome"], "failed_over");
    assert_eq!(incident["triggers"].as_array().unwrap().len(), 2);
    assert_eq!(b.dns.calls(Op::Upsert), 1);
}

#[tokio::test]
async fn an_acknowledgement_lifts_the_cooldown() {
    let b = bed(Some(KEY)).await;
    fail_over(&b).await;
    let a = get(&b.state, "/api/status").await;
    assert!(a.json["instances"][0]["cooldown_until"].is_string());
    let a = post(&b.state, "/api/failover/cache/ack", "").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["status"], "acknowledged");
    assert!(a.json["lifted_cooldown_until"].is_string());
    let a = get(&b.state, "/api/status").await;
    assert_eq!(a.json["instances"][0]["cooldown_until"], Value::Null);
    assert_eq!(
        b.state
            .engine
            .as_ref()
            .unwrap()
            .cooldown_until(&InstanceId::new("cache"))
            .await,
        None
    );
}

#[tokio::test]
async fn without_force_a_healthy_active_or_a_dead_target_holds() {
    // Both up: nothing to fail over from, unless forced (maintenance).
    let prober = Fixed::new(&[("east", true), ("west", true)]);
    let b = bed_with(Some(KEY), true, Arc::clone(&prober)).await;
    let a = post(&b.state, "/api/failover/cache", r#"{"target_dc": "west"}"#).await;
    let held = settled(&b.state, a.json["incident"].as_u64().unwrap()).await;
    assert_eq!(held["outcome"]["reason"], "active_recovered", "{held:#}");
    assert!(b.dns.upserts().is_empty());

    // Both down: even force never targets a datacenter that does not answer.
    *prober.0.lock().unwrap() = [("east".into(), false), ("west".into(), false)].into();
    for body in [r#"{"target_dc": "west"}"#, r#"{"force": true}"#] {
        let a = post(&b.state, "/api/failover/cache", body).await;
        let held = settled(&b.state, a.json["incident"].as_u64().unwrap()).await;
        assert_eq!(held["outcome"]["outcome"], "held", "{body}: {held:#}");
        assert!(b.dns.upserts().is_empty(), "{body}");
    }

    // Forced, with the target up: moves without confirmation rounds.
    *prober.0.lock().unwrap() = [("east".into(), true), ("west".into(), true)].into();
    let a = post(
        &b.state,
        "/api/failover/cache",
        r#"{"target_dc": "west", "force": true, "reason": "maintenance"}"#,
    )
    .await;
    assert_eq!(a.json["force"], true);
    let done = settled(&b.state, a.json["incident"].as_u64().unwrap()).await;
    assert_eq!(done["outcome"]["outcome"], "failed_over", "{done:#}");
    let rounds = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "probe_round")
        .count();
    assert_eq!(rounds, 1);
    assert_eq!(
        b.dns.get(&record()).unwrap().values,
        ["redis-west.example.com"]
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_them() {
    let b = bed(Some(KEY)).await;
    for (uri, says) in [
        ("/api/alerts?limit=0", "limit"),
        ("/api/alerts?limit=501", "limit"),
        ("/api/alerts?limit=ten", "limit"),
        ("/api/alerts?severity=loud", "severity"),
        ("/api/alerts?alert_type=RedisDown", "alert_type"),
        ("/api/alerts?instance=cache", "\"instance\""),
        ("/api/alerts?limit=1&limit=2", "more than once"),
        ("/api/failover/history?incident=first", "incident"),
        ("/api/failover/history?severity=critical", "\"severity\""),
        ("/api/failover/history?limit=-1", "limit"),
    ] {
        let a = get(&b.state, uri).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(error_of(&a).contains(says), "{uri}: {}", a.text);
    }
    for uri in [
        "/api/alerts?limit=500&severity=info",
        "/api/failover/history?limit=1",
    ] {
        assert_eq!(get(&b.state, uri).await.status, StatusCode::OK, "{uri}");
    }
}

fn publish(store: &SnapshotStore, analysis: &AnalysisStore, dc: &str, info: &str) {
    let key = EndpointKey::new("cache", dc);
    let mut status = EndpointStatus::new(
        key.clone(),
        1,
        format!("redis-{dc}.example.com:6379"),
        Duration::from_secs(5),
    );
    store.register(status.clone());
    let now = Instant::now();
    status.last_round = Some(Round {
        finished: now,
        at: SystemTime::now(),
        duration: Duration::from_millis(2),
        error: None,
    });
    status.last_success = Some(Arc::new(Snapshot {
        taken_at: SystemTime::now(),
        finished: now,
        ping_latency: Duration::from_micros(500),
        info: parse_info(info),
        cluster: None,
        sentinel_masters: Vec::new(),
    }));
    store.publish(status);
    analysis.publish(
        key,
        Analysis {
            anomaly: AnomalyState::WarmingUp {
                samples: 3,
                needed: 30,
            },
            health_score: 0.93,
            health_status: HealthStatus::Healthy,
            up: true,
        },
    );
}

#[tokio::test]
async fn status_and_metrics_show_the_latest_collection() {
    let b = bed(Some(KEY)).await;
    let info = "# Server\r\nredis_version:7.2.4\r\nuptime_in_seconds:100\r\n\
        # Clients\r\nconnected_clients:12\r\nblocked_clients:0\r\n\
        # Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\nmem_fragmentation_ratio:1.25\r\n\
        # Stats\r\ninstantaneous_ops_per_sec:42\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\n\
        # Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:7\r\n\
        # Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=0\r\n";
    publish(&b.state.store, &b.state.analysis, "west", info);

    let a = get(&b.state, "/api/status").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json["generated_at"].is_string());
    let cache = &a.json["instances"][0];
    assert_eq!(cache["instance_uid"], "cache");
    assert_eq!(cache["name"], "cache-service");
    assert_eq!(cache["active_datacenter"], "east");
    assert_eq!(cache["cooldown_until"], Value::Null);
    let dcs = cache["datacenters"].as_array().unwrap();
    assert_eq!(dcs.len(), 2);
    let (east, west) = (&dcs[0], &dcs[1]);
    assert_eq!(east["datacenter"], "east");
    assert_eq!(east["active"], true);
    assert_eq!(east["up"], false);
    assert_eq!(east["last_collection"], Value::Null);
    assert_eq!(west["up"], true);
    assert_eq!(west["health_score"], 0.93);
    assert_eq!(west["health_status"], "healthy");
    assert_eq!(west["anomaly_state"], "warming_up");
    assert_eq!(west["anomaly_score"], Value::Null);
    let at = west["last_collection"].as_str().unwrap();
    assert!(at.ends_with('Z') && crate::model::rfc3339::parse(at).unwrap().is_some());
    let one = get(&b.state, "/api/status/cache").await;
    assert_eq!(one.json["datacenters"], cache["datacenters"]);

    let a = get(&b.state, "/api/metrics/cache/latest").await;
    assert_eq!(a.status, StatusCode::OK);
    let west = &a.json["datacenters"][1];
    assert_eq!(west["datacenter"], "west");
    assert_eq!(west["fresh"], true);
    assert_eq!(west["memory"]["used_memory"], 1_048_576);
    assert_eq!(west["memory"]["mem_fragmentation_ratio"], 1.25);
    assert_eq!(west["clients"]["connected_clients"], 12);
    assert_eq!(west["stats"]["instantaneous_ops_per_sec"], 42);
    assert_eq!(west["keyspace"]["hit_ratio"], 0.9);
    assert_eq!(west["keyspace"]["keys"], 5);
    assert_eq!(west["replication"]["role"], "master");
    assert_eq!(west["server"]["redis_version"], "7.2.4");
    assert!(west.get("health").is_none());
    assert_eq!(a.json["datacenters"][0]["collected_at"], Value::Null);

    let a = get(&b.state, "/api/metrics/cache").await;
    let west = &a.json["datacenters"][1];
    assert_eq!(west["memory"]["used_memory"], 1_048_576);
    assert_eq!(west["health"]["status"], "healthy");
    assert_eq!(west["anomaly"]["state"], "warming_up");
    assert_eq!(a.json["history"], Value::Null);
    assert!(
        a.json["history_note"]
            .as_str()
            .unwrap()
            .contains("Prometheus")
    );
}

/// Captures every log line the test's thread writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_never_appears_in_an_answer_or_a_log_line() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let b = bed(Some(KEY)).await;
    let mut answers = Vec::new();
    for key in [None, Some("wrong"), Some(KEY)] {
        for (method, uri, body) in [
            ("GET", "/api/status".to_owned(), String::new()),
            ("GET", format!("/api/status/{KEY}"), String::new()),
            ("GET", format!("/api/metrics/{KEY}/latest"), String::new()),
            (
                "GET",
                format!("/api/alerts?instance_uid={KEY}"),
                String::new(),
            ),
            ("GET", format!("/api/alerts?severity={KEY}"), String::new()),
            (
                "GET",
                format!("/api/failover/history?{KEY}=1"),
                String::new(),
            ),
            ("GET", format!("/api/{KEY}"), String::new()),
            ("POST", format!("/api/failover/{KEY}"), String::new()),
            (
                "POST",
                "/api/failover/cache".to_owned(),
                json!({ "target_dc": KEY }).to_string(),
            ),
            (
                "POST",
                "/api/failover/cache".to_owned(),
                format!("{{\"{KEY}\": 1}}"),
            ),
            (
                "POST",
                "/api/failover/cache".to_owned(),
                json!({ "target_dc": "west", "reason": format!("key is {KEY}") }).to_string(),
            ),
        ] {
            answers.push(call(&b.state, method, &uri, key, &body).await);
        }
    }
    // Let the one accepted request finish, then read everything back.
    let id = answers
        .iter()
        .find(|a| a.status == StatusCode::ACCEPTED)
        .and_then(|a| a.json["incident"].as_u64())
        .expect("the request with a reason was accepted");
    let incident = settled(&b.state, id).await;
    assert_eq!(incident["triggers"][0]["name"], "key is ***");
    for uri in [
        "/api/failover/history",
        "/api/alerts",
        "/api/status",
        "/api/openapi.json",
    ] {
        answers.push(get(&b.state, uri).await);
    }
    for a in &answers {
        assert!(!a.text.contains(KEY), "{} {}", a.status, a.text);
        assert!(a.status != StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text);
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("operator API request refused"), "{logs}");
    assert!(!logs.contains(KEY), "{logs}");
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
