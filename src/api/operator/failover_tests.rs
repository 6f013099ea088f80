//! The failover routes: manual failover, acknowledgement, history and their errors.

use super::*;

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
    assert!(b.dns.writes().is_empty());
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
    assert!(b.dns.writes().is_empty());
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
    assert_eq!(b.dns.calls(Op::Write), 1);

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
    assert_eq!(b.dns.calls(Op::Write), 1);
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
    assert_eq!(b.dns.calls(Op::Write), 1);
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
    assert!(b.dns.writes().is_empty());

    // Both down: even force never targets a datacenter that does not answer.
    *prober.0.lock().unwrap() = [("east".into(), false), ("west".into(), false)].into();
    for body in [r#"{"target_dc": "west"}"#, r#"{"force": true}"#] {
        let a = post(&b.state, "/api/failover/cache", body).await;
        let held = settled(&b.state, a.json["incident"].as_u64().unwrap()).await;
        assert_eq!(held["outcome"]["outcome"], "held", "{body}: {held:#}");
        assert!(b.dns.writes().is_empty(), "{body}");
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
