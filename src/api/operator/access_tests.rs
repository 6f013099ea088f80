//! Who may call the API, and what a refused or wrong call gets: keys, a disabled API,
//! unknown instances and routes, and the key never shown.

use super::*;

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
    assert!(b.dns.writes().is_empty());
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
            // With one scoped subscriber, tracing-core caches a callsite's interest from
            // the default subscriber of whichever thread meets it first: another test's
            // thread (none: never) can disable these debug lines for this one. Asking
            // again from this thread right before each call keeps them.
            tracing::callsite::rebuild_interest_cache();
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
