//! Client impact against a real `osmem-server` (an in-memory OpenSearch/Elasticsearch
//! query API) loaded with seed 000's client log lines, timed relative to now: the
//! categories, the windows, the spike, "unknown" when the index or the server is not
//! there, and the cache (counted by a proxy in front of the server).

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis_failover_agent::advisors::client_impact::config::{
    ElkFields, ElkSettings, default_error_levels,
};
use redis_failover_agent::advisors::client_impact::{
    self, CachedSource, ElasticsearchSource, TimeoutSource,
};
use redis_failover_agent::decision::ports::{
    ClientImpact, ClientImpactSource, ClientVerdict, ErrorCategory, FailoverEffect, ImpactReport,
    Window,
};
use redis_failover_agent::model::{DatacenterId, Instance, InstanceId};
use serde_json::{Value, json};

use common::faulty_http::FaultyHttp;
use common::osmem::{Osmem, error, line, ok};

const UID: &str = "cache";
const NAME: &str = "redis-cache-01";
const INDEX: &str = "logstash-2026.11.22";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn settings(url: &str, index_pattern: &str) -> ElkSettings {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ElkSettings {
        url: url.into(),
        username: None,
        password: None,
        index_pattern: index_pattern.into(),
        verify_tls: true,
        timeout: secs(5),
        cache_ttl: secs(300),
        client_logs_only: true,
        headers: BTreeMap::new(),
        fields: ElkFields::default(),
        error_levels: default_error_levels(),
    }
}

/// The instance `cache`, known in the logs by its uid or as `redis-cache-01`.
fn source(settings: &ElkSettings) -> ElasticsearchSource {
    let aliases = [(InstanceId::new(UID), vec![UID.into(), NAME.into()])].into();
    ElasticsearchSource::new(settings, aliases).expect("a client")
}

fn known(impact: ClientImpact) -> ImpactReport {
    match impact {
        ClientImpact::Known(r) => *r,
        ClientImpact::Unknown { reason } => panic!("expected an analysis, got unknown: {reason}"),
    }
}

/// `n` lines made by `make(i)`, spread evenly over `from..to` seconds ago.
fn spread(n: u64, from: u64, to: u64, make: impl Fn(Duration) -> Value) -> Vec<Value> {
    (0..n)
        .map(|i| {
            make(Duration::from_millis(
                from * 1000 + i * (to - from) * 1000 / n.max(1),
            ))
        })
        .collect()
}

/// A quiet half hour: 600 successful calls and 6 timeouts, 6 to 34 minutes ago.
fn quiet_baseline() -> Vec<Value> {
    let mut docs = spread(600, 360, 2040, |ago| ok(NAME, ago, 2));
    docs.extend(spread(6, 400, 2000, |ago| {
        error(
            NAME,
            ago,
            Some("RedisCommandTimeoutException"),
            "Command timed out",
        )
    }));
    docs
}

#[tokio::test]
async fn errors_are_counted_by_category() {
    let es = Osmem::start();
    let mut docs = quiet_baseline();
    // The last five minutes: 100 successes and 25 errors of every kind, logged under
    // the uid or the name.
    docs.extend(spread(100, 10, 280, |ago| {
        ok(if ago.as_secs() % 2 == 0 { UID } else { NAME }, ago, 3)
    }));
    docs.extend(spread(10, 20, 270, |ago| {
        error(
            NAME,
            ago,
            Some("RedisConnectionException"),
            "Unable to connect to 10.0.0.5:6379",
        )
    }));
    docs.extend(spread(6, 20, 270, |ago| {
        error(
            UID,
            ago,
            Some("RedisConnectionTimeoutException"),
            "Failed to set key: Connection timeout",
        )
    }));
    docs.extend(spread(4, 20, 270, |ago| {
        error(
            NAME,
            ago,
            Some("RedisCommandExecutionException"),
            "OOM command not allowed when used memory > 'maxmemory'.",
        )
    }));
    docs.extend(spread(3, 20, 270, |ago| {
        error(NAME, ago, None, "NOAUTH Authentication required.")
    }));
    let long = format!(
        "WRONGTYPE Operation against a key holding the wrong kind of value {}",
        "x".repeat(400)
    );
    docs.extend(spread(2, 20, 270, |ago| {
        error(NAME, ago, Some("RedisCommandExecutionException"), &long)
    }));
    // Not ours: another instance, and the server's own log lines.
    docs.extend(spread(30, 20, 270, |ago| {
        error("sessions", ago, Some("RedisConnectionException"), "refused")
    }));
    docs.extend(spread(30, 20, 270, |ago| {
        line(
            NAME,
            ago,
            "ERROR",
            "Connection reset",
            Some("RedisConnectionException"),
            1,
            "server",
        )
    }));
    es.load(INDEX, &docs);

    let report = known(
        source(&settings(&es.url(), "logstash-*"))
            .impact(&InstanceId::new(UID), Window::default())
            .await,
    );
    assert_eq!(report.recent.lines, 125);
    assert_eq!(report.recent.errors, 25);
    assert_eq!(report.baseline.lines, 606);
    assert_eq!(report.baseline.errors, 6);
    let by = |c| report.errors_by_category[&c];
    assert_eq!(
        [
            ErrorCategory::Connection,
            ErrorCategory::Timeout,
            ErrorCategory::Memory,
            ErrorCategory::Authentication,
            ErrorCategory::Other
        ]
        .map(by),
        [10, 6, 4, 3, 2],
        "{:?}",
        report.errors_by_category
    );
    assert_eq!(report.recent.error_rate, Some(0.2));
    assert!((report.recent.errors_per_minute - 5.0).abs() < 1e-9);
    assert_eq!(report.verdict, ClientVerdict::Failing);
    let latency = report.recent.latency_ms;
    assert_eq!(latency.p50, Some(3.0), "{latency:?}");
    assert_eq!(latency.p99, Some(1250.0), "{latency:?}");
    assert_eq!(report.baseline.latency_ms.p50, Some(2.0));
    assert_eq!(
        report.top_exceptions[0].exception.as_str(),
        "RedisConnectionException"
    );
    assert_eq!(report.top_exceptions[0].errors, 10);
    // Five newest errors, each cut to 200 characters and marked untrusted.
    assert_eq!(report.samples.len(), 5);
    assert!(
        report
            .samples
            .iter()
            .all(|s| s.message.as_str().chars().count() <= 200)
    );
    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json["samples"][0]["message"]["untrusted_text"].is_string(),
        "{json}"
    );

    // With every log source, the server's lines count too.
    let mut all = settings(&es.url(), "logstash-*");
    all.client_logs_only = false;
    let report = known(
        source(&all)
            .impact(&InstanceId::new(UID), Window::default())
            .await,
    );
    assert_eq!(report.recent.errors, 55);
    assert_eq!(report.errors_by_category[&ErrorCategory::Connection], 40);
}

#[tokio::test]
async fn the_windows_are_honoured() {
    let es = Osmem::start();
    let mut docs = quiet_baseline();
    // A bad spell 15 to 25 minutes ago, and an older one two hours ago.
    docs.extend(spread(40, 900, 1500, |ago| {
        error(
            NAME,
            ago,
            Some("RedisConnectionException"),
            "Connection refused",
        )
    }));
    docs.extend(spread(50, 7000, 7200, |ago| {
        error(
            NAME,
            ago,
            Some("RedisConnectionException"),
            "Connection refused",
        )
    }));
    // Now: fine again.
    docs.extend(spread(100, 10, 280, |ago| ok(NAME, ago, 2)));
    docs.push(error(
        NAME,
        secs(60),
        Some("RedisCommandTimeoutException"),
        "Command timed out",
    ));
    es.load(INDEX, &docs);
    let es_source = source(&settings(&es.url(), "logstash-*"));
    let uid = InstanceId::new(UID);

    let report = known(es_source.impact(&uid, Window::default()).await);
    assert_eq!((report.recent.lines, report.recent.errors), (101, 1));
    assert_eq!((report.baseline.lines, report.baseline.errors), (646, 46));
    assert_eq!(report.errors_by_category[&ErrorCategory::Connection], 0);
    assert_eq!(report.errors_by_category[&ErrorCategory::Timeout], 1);
    assert_eq!(report.verdict, ClientVerdict::AsUsual);
    assert!(report.spike.is_none());

    // Read as a failover 12 minutes ago: 20 minutes before it against the time since.
    let at = SystemTime::now() - secs(720);
    let report = known(
        es_source
            .impact(&uid, Window::around(at, secs(1200), secs(720)))
            .await,
    );
    assert_eq!(report.baseline.errors, 40 + 4, "{report:?}");
    assert_eq!(report.failover_effect(), FailoverEffect::Helped);

    // A window with nothing in it says so rather than "as usual".
    let old = Window {
        end: Some(SystemTime::now() - secs(3 * 3600)),
        ..Window::default()
    };
    let report = known(es_source.impact(&uid, old).await);
    assert_eq!((report.recent.lines, report.baseline.lines), (0, 0));
    assert_eq!(report.verdict, ClientVerdict::Inconclusive);
}

#[tokio::test]
async fn a_spike_is_found() {
    let es = Osmem::start();
    let mut docs = quiet_baseline();
    docs.extend(spread(100, 10, 280, |ago| ok(NAME, ago, 2)));
    // 40 errors within 6 seconds, 2.5 minutes ago: the middle of one histogram bucket.
    docs.extend(spread(40, 147, 153, |ago| {
        error(
            NAME,
            ago,
            Some("RedisConnectionException"),
            "Connection reset by peer",
        )
    }));
    es.load(INDEX, &docs);
    let report = known(
        source(&settings(&es.url(), "logstash-*"))
            .impact(&InstanceId::new(UID), Window::default())
            .await,
    );
    let spike = report.spike.clone().expect("a spike");
    assert_eq!(spike.errors, 40, "{spike:?}");
    assert_eq!(spike.bucket_seconds, 60);
    // 6 errors over the 30 whole one-minute buckets of the baseline.
    assert!((spike.baseline_mean - 0.2).abs() < 1e-9, "{spike:?}");
    assert_eq!(report.verdict, ClientVerdict::Failing);

    // The same errors spread over the whole half hour before are no spike.
    let es = Osmem::start();
    let mut docs = quiet_baseline();
    docs.extend(spread(100, 10, 280, |ago| ok(NAME, ago, 2)));
    docs.extend(spread(4, 20, 280, |ago| {
        error(
            NAME,
            ago,
            Some("RedisConnectionException"),
            "Connection reset by peer",
        )
    }));
    docs.extend(spread(60, 310, 2090, |ago| {
        error(
            NAME,
            ago,
            Some("RedisConnectionException"),
            "Connection reset by peer",
        )
    }));
    es.load(INDEX, &docs);
    let report = known(
        source(&settings(&es.url(), "logstash-*"))
            .impact(&InstanceId::new(UID), Window::default())
            .await,
    );
    assert!(report.spike.is_none(), "{:?}", report.spike);
    assert_eq!(report.verdict, ClientVerdict::AsUsual);
}

#[tokio::test]
async fn keyword_mapped_fields_work_too() {
    let es = Osmem::start();
    let keyword = json!({"type": "keyword"});
    let mapping = json!({"mappings": {"properties": {
        "@timestamp": {"type": "date"}, "level": keyword, "message": keyword, "exception": keyword,
        "redis_instance": keyword, "operation": keyword, "log_source": keyword, "latency_ms": {"type": "long"},
    }}});
    let (status, body) = common::http_request(
        es.port,
        "PUT",
        "/clientlogs",
        &[("Content-Type", "application/json")],
        mapping.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut docs = spread(50, 10, 280, |ago| ok(NAME, ago, 2));
    docs.extend(spread(5, 10, 280, |ago| {
        error(NAME, ago, None, "Read timed out")
    }));
    es.load("clientlogs", &docs);
    let report = known(
        source(&settings(&es.url(), "clientlogs"))
            .impact(&InstanceId::new(UID), Window::default())
            .await,
    );
    assert_eq!((report.recent.lines, report.recent.errors), (55, 5));
    assert_eq!(report.errors_by_category[&ErrorCategory::Timeout], 5);
}

#[tokio::test]
async fn a_missing_index_is_unknown_quickly() {
    let es = Osmem::start();
    es.load(INDEX, &[ok(NAME, secs(10), 1)]);
    for pattern in ["nothing-*", "nothing", "nothing-*,other"] {
        let started = Instant::now();
        let impact = source(&settings(&es.url(), pattern))
            .impact(&InstanceId::new(UID), Window::default())
            .await;
        assert!(started.elapsed() < secs(2), "{:?}", started.elapsed());
        let ClientImpact::Unknown { reason } = impact else {
            panic!("{pattern}: {impact:?}")
        };
        assert!(
            reason.starts_with("not_found: no index matches"),
            "{reason}"
        );
    }
    // Indices without the fields the mapping names.
    let mut renamed = settings(&es.url(), "logstash-*");
    renamed.fields.redis_instance = "service.name".into();
    let impact = source(&renamed)
        .impact(&InstanceId::new(UID), Window::default())
        .await;
    let ClientImpact::Unknown { reason } = impact else {
        panic!("{impact:?}")
    };
    assert!(
        reason.contains("\"service.name\" is in no index"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_server_that_is_down_or_stalls_is_unknown_quickly() {
    let (_held, port) = common::closed_port();
    let down = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let impact = source(&settings(&down, "logstash-*"))
        .impact(&InstanceId::new(UID), Window::default())
        .await;
    assert!(started.elapsed() < secs(2), "{:?}", started.elapsed());
    let ClientImpact::Unknown { reason } = impact else {
        panic!("{impact:?}")
    };
    assert!(
        reason.starts_with("unavailable: _field_caps at http://127.0.0.1:"),
        "{reason}"
    );

    // A server that accepts connections and never answers: the deadline decides.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut stalled = settings(
        &format!("http://{}", listener.local_addr().unwrap()),
        "logstash-*",
    );
    stalled.timeout = Duration::from_millis(800);
    let instance = Instance {
        uid: InstanceId::new(UID),
        name: NAME.into(),
        endpoints: BTreeMap::new(),
        active_dc: DatacenterId::new("east"),
    };
    let built = client_impact::build(&stalled, &[instance]).unwrap();
    let started = Instant::now();
    let impact = built.impact(&InstanceId::new(UID), Window::default()).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < secs(2),
        "{took:?}"
    );
    let ClientImpact::Unknown { reason } = impact else {
        panic!("{impact:?}")
    };
    assert!(reason.starts_with("timeout: "), "{reason}");
    drop(listener);
}

#[tokio::test]
async fn a_cached_answer_sends_no_request() {
    let es = Osmem::start();
    let mut docs = quiet_baseline();
    docs.extend(spread(100, 10, 280, |ago| ok(NAME, ago, 2)));
    es.load(INDEX, &docs);
    let proxy = FaultyHttp::start(es.port);
    let inner = Arc::new(source(&settings(&proxy.url(), "logstash-*")));
    let timed = Arc::new(TimeoutSource::new(inner, secs(5)));
    let cached = CachedSource::new(timed.clone(), secs(300));
    let uid = InstanceId::new(UID);

    let first = cached.impact(&uid, Window::default()).await;
    assert!(first.clients_as_usual(), "{first:?}");
    assert_eq!(proxy.count("POST", "/_search"), 1);
    assert_eq!(proxy.count("GET", "/_field_caps"), 1);
    let second = cached.impact(&uid, Window::default()).await;
    assert_eq!(second, first);
    assert_eq!(proxy.log().len(), 2, "{:?}", proxy.log());
    // What the crate sends: plain ES paths, which osmem serves as they are.
    let log = proxy.log();
    assert!(
        log[0]
            .path
            .starts_with("/logstash-*/_field_caps?allow_no_indices=true&fields=%40timestamp"),
        "{}",
        log[0].path
    );
    assert_eq!(
        log[1].path,
        "/logstash-*/_search?allow_no_indices=true&ignore_unavailable=true"
    );

    // Past the TTL the question is asked again.
    let short = CachedSource::new(timed, Duration::from_millis(300));
    short.impact(&uid, Window::default()).await;
    short.impact(&uid, Window::default()).await;
    assert_eq!(proxy.count("POST", "/_search"), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    short.impact(&uid, Window::default()).await;
    assert_eq!(proxy.count("POST", "/_search"), 3);
}
