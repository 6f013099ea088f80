//! The Route53 provider and `DnsProvider::switch` against a real `moto_server`, with a
//! fault-injecting proxy in front of it for what moto never does: PENDING changes,
//! throttling, PriorRequestNotComplete and refusals.

mod common;

use std::time::{Duration, Instant};

use redis_failover_agent::actuators::dns::{Route53Dns, Route53Settings};
use redis_failover_agent::decision::ports::{
    AdapterErrorKind, DnsProvider, RecordRef, RecordType, RecordValue, SwitchOutcome, SwitchPolicy,
};
use redis_failover_agent::model::Secret;

use common::faulty_http::{Action, FaultyHttp};
use common::moto::{ACCESS_KEY, Moto, SECRET_KEY, listing, zone_with};

const EAST: &str = "redis-east.example.com";
const WEST: &str = "redis-west.example.com";

/// A zone `example.com` with `cache` and `sessions` both CNAMEs to the east host.
async fn zone(moto: &Moto) -> String {
    zone_with(
        moto,
        &[("cache.example.com", EAST), ("sessions.example.com", EAST)],
    )
    .await
}

/// The provider for a Route53 API at `endpoint` (moto, or a proxy in front of it).
fn provider(endpoint: &str) -> std::sync::Arc<dyn DnsProvider> {
    std::sync::Arc::new(
        Route53Dns::new(&Route53Settings {
            region: "us-east-1".into(),
            access_key: Some(Secret::new(ACCESS_KEY)),
            secret_key: Some(Secret::new(SECRET_KEY)),
            endpoint_url: Some(endpoint.into()),
        })
        .expect("the route53 provider builds"),
    )
}

fn record(zone_id: &str, name: &str) -> RecordRef {
    RecordRef::new(zone_id, name, RecordType::Cname)
}

fn fast() -> SwitchPolicy {
    SwitchPolicy {
        insync_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        attempts: 4,
        call_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn switches_one_of_two_records_and_reads_before_writing() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let dns = provider(&proxy.url());
    let (cache, sessions) = (
        record(&zone_id, "cache.example.com"),
        record(&zone_id, "sessions.example.com"),
    );
    let east = RecordValue::single(EAST, 60);
    let west = RecordValue::single(WEST, 60);

    assert_eq!(dns.read(&cache).await.unwrap(), Some(east.clone()));
    assert_eq!(dns.read(&sessions).await.unwrap(), Some(east.clone()));
    // Names compare without case or trailing dot; a missing record is None even
    // though the listing from its name on returns other records.
    let shouted = record(&zone_id, "CACHE.Example.COM.");
    assert_eq!(dns.read(&shouted).await.unwrap(), Some(east.clone()));
    assert_eq!(
        dns.read(&record(&zone_id, "bogus.example.com"))
            .await
            .unwrap(),
        None
    );
    let a_type = RecordRef::new(&zone_id, "cache.example.com", RecordType::A);
    assert_eq!(dns.read(&a_type).await.unwrap(), None);

    let out = dns.switch(&cache, &west, &fast()).await.unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    assert_eq!(dns.read(&cache).await.unwrap(), Some(west.clone()));
    assert_eq!(dns.read(&sessions).await.unwrap(), Some(east.clone()));
    let after_first = listing(&moto, &zone_id).await;
    assert!(
        after_first.contains(&(
            "sessions.example.com.".into(),
            "CNAME".into(),
            vec![EAST.into()]
        )),
        "{after_first:?}"
    );
    assert_eq!(proxy.count("POST", "/rrset"), 1);
    let post = &proxy
        .log()
        .into_iter()
        .find(|e| e.method == "POST")
        .unwrap();
    assert!(
        post.body.contains("<Action>UPSERT</Action>"),
        "{}",
        post.body
    );
    assert!(
        post.body.contains("<Comment>redis-failover-agent"),
        "{}",
        post.body
    );

    // The same decision again (a duplicate delivery, a replay): read, and no write.
    let again = dns.switch(&cache, &west, &fast()).await.unwrap();
    assert_eq!(again, SwitchOutcome::AlreadyPointing);
    assert_eq!(proxy.count("POST", "/rrset"), 1, "{:#?}", proxy.log());
    assert_eq!(listing(&moto, &zone_id).await, after_first);
    // And the other record can still be switched on its own.
    dns.switch(&sessions, &west, &fast()).await.unwrap();
    assert_eq!(dns.read(&sessions).await.unwrap(), Some(west));
    assert!(
        proxy
            .log()
            .iter()
            .all(|e| !e.body.contains(SECRET_KEY) && !e.path.contains(SECRET_KEY))
    );
}

#[tokio::test]
async fn waits_until_a_pending_change_is_in_sync() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let rewrite = Action::Rewrite {
        from: "INSYNC".into(),
        to: "PENDING".into(),
    };
    proxy.inject("GET", "/change/", 3, rewrite);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");

    let out = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &fast())
        .await
        .unwrap();
    let SwitchOutcome::Changed { in_sync_after, .. } = out else {
        panic!("expected a change: {out:?}");
    };
    assert!(
        in_sync_after >= Duration::from_millis(300),
        "{in_sync_after:?}"
    );
    let polls: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|e| e.path.contains("/change/"))
        .collect();
    assert_eq!(polls.len(), 4, "{polls:#?}");
    assert!(polls[..3].iter().all(|e| e.fault.is_some()));
}

#[tokio::test]
async fn never_in_sync_is_a_timeout_after_the_write() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let rewrite = Action::Rewrite {
        from: "INSYNC".into(),
        to: "PENDING".into(),
    };
    proxy.inject("GET", "/change/", 10_000, rewrite);
    let dns = provider(&proxy.url());
    let policy = SwitchPolicy {
        insync_timeout: Duration::from_secs(1),
        ..fast()
    };
    let cache = record(&zone_id, "cache.example.com");
    let err = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &policy)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Timeout, "{err}");
    let change = err
        .written
        .clone()
        .expect("the error says the write was accepted");
    assert!(err.message.contains(&change.0), "{err}");
    assert_eq!(proxy.count("POST", "/rrset"), 1);
}

#[tokio::test]
async fn retries_throttling_and_prior_request_not_complete() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let throttled = Action::aws_error(400, "Throttling", "Rate exceeded");
    let busy = Action::aws_error(
        400,
        "PriorRequestNotComplete",
        "The request was rejected because Route 53 was still processing a prior request.",
    );
    proxy.inject("POST", "/rrset", 2, throttled);
    proxy.inject("POST", "/rrset", 1, busy);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");

    let started = Instant::now();
    let out = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &fast())
        .await
        .unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    // Three refusals, three backoffs (at least 0.25 + 0.5 + 1 s), then the write.
    assert!(
        started.elapsed() >= Duration::from_millis(1750),
        "{:?}",
        started.elapsed()
    );
    let posts: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect();
    assert_eq!(posts.len(), 4, "{posts:#?}");
    assert_eq!(
        posts.iter().map(|e| e.status).collect::<Vec<_>>(),
        [400, 400, 400, 200]
    );
    assert_eq!(
        dns.read(&cache).await.unwrap(),
        Some(RecordValue::single(WEST, 60))
    );

    // Throttled on every try: the error says so, after `attempts` tries.
    proxy.inject(
        "POST",
        "/rrset",
        100,
        Action::aws_error(400, "Throttling", "Rate exceeded"),
    );
    let err = dns
        .switch(&cache, &RecordValue::single(EAST, 60), &fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Throttled, "{err}");
    assert!(
        err.message.contains("Throttling") && err.message.contains("after 4 tries"),
        "{err}"
    );
    assert_eq!(proxy.count("POST", "/rrset"), 8);
}

#[tokio::test]
async fn refusals_are_not_retried_and_never_show_the_keys() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");
    let west = RecordValue::single(WEST, 60);

    proxy.inject(
        "POST",
        "/rrset",
        1,
        Action::aws_error(
            400,
            "InvalidChangeBatch",
            "[RRSet of type CNAME with DNS name cache.example.com. is not permitted]",
        ),
    );
    let err = dns.switch(&cache, &west, &fast()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Invalid, "{err}");
    assert!(err.message.contains("InvalidChangeBatch"), "{err}");
    assert_eq!(proxy.count("POST", "/rrset"), 1);

    // A server that echoes the credentials back: they never reach our error.
    let echo = format!("The security token {ACCESS_KEY} / {SECRET_KEY} is invalid.");
    proxy.inject(
        "POST",
        "/rrset",
        1,
        Action::aws_error(403, "InvalidClientTokenId", &echo),
    );
    let err = dns.switch(&cache, &west, &fast()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(SECRET_KEY) && !shown.contains(ACCESS_KEY),
        "{shown}"
    );
    assert!(shown.contains("***"), "{shown}");
    assert_eq!(proxy.count("POST", "/rrset"), 2);

    // moto's own answer for a zone that does not exist.
    let nowhere = record("ZNOSUCHZONE00", "cache.example.com");
    let err = dns.read(&nowhere).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::NotFound, "{err}");
    assert!(err.message.contains("NoSuchHostedZone"), "{err}");
    // Nothing was changed by any of this.
    assert_eq!(
        dns.read(&cache).await.unwrap(),
        Some(RecordValue::single(EAST, 60))
    );
}

#[tokio::test]
async fn an_api_that_is_not_running_is_unavailable_quickly() {
    // A loopback port held bound but not listening: it refuses, and no other test's
    // server (moto) can take it meanwhile, as one did with a port from free_port.
    let (_held, port) = common::closed_port();
    let dns = provider(&format!("http://127.0.0.1:{port}"));
    let cache = record("Z0000000000", "cache.example.com");
    let policy = SwitchPolicy {
        attempts: 3,
        ..fast()
    };
    let started = Instant::now();
    let err = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &policy)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.message.contains("after 3 tries"), "{err}");

    // A proxy that hangs up without an answer looks the same.
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    proxy.inject("GET", "/rrset", 1, Action::HangUp);
    let dns = provider(&proxy.url());
    let err = dns
        .read(&record(&zone_id, "cache.example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unavailable, "{err}");
}
