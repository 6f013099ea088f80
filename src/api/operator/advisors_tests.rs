//! `GET /api/client-errors/{uid}` and `GET /api/ai-recommendations/{uid}`.

use super::*;
use crate::advisors::ai::fake::{FakeAdvisor, Script};
use crate::advisors::client_impact::FakeClientImpact;
use crate::decision::ports::{Advisor, ClientImpact};
use crate::decision::webhook::{AlertStatus, Candidate, Target};

fn uid() -> InstanceId {
    InstanceId::new("cache")
}

/// East down, west up; the clients fail; the model agrees.
pub(super) async fn advised(
    clients: ClientImpact,
) -> (Bed, Arc<FakeClientImpact>, Arc<FakeAdvisor>) {
    let fake = Arc::new(FakeClientImpact::new());
    fake.set(&uid(), clients);
    let ai = Arc::new(FakeAdvisor::new([Script::answer(
        "failover",
        Some("west"),
        0.95,
    )]));
    let advisors = Advisors {
        client_impact: Some(fake.clone()),
        ai: Some(ai.clone() as Arc<dyn Advisor>),
    };
    let prober = Fixed::new(&[("east", false), ("west", true)]);
    (
        bed_advised(Some(KEY), true, prober, advisors).await,
        fake,
        ai,
    )
}

async fn fire(b: &Bed) -> u64 {
    let engine = b.state.engine.as_ref().unwrap();
    let out = engine
        .submit(&[Candidate {
            target: Target::Instance("cache".into()),
            datacenter: Some("east".into()),
            alertname: "RedisActiveDatacenterDown".into(),
            fingerprint: "f1".into(),
            status: AlertStatus::Firing,
            starts_at: SystemTime::now(),
            ends_at: None,
        }])
        .await
        .unwrap();
    let id = out.opened[0];
    settled(&b.state, id).await;
    id
}

#[tokio::test]
async fn client_errors_show_the_analysis_and_unknown_is_an_answer() {
    let (b, fake, _) = advised(FakeClientImpact::failing(&uid())).await;
    let a = get(&b.state, "/api/client-errors/cache").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["instance_uid"], "cache");
    assert_eq!(a.json["clients"], "failing");
    assert_eq!(a.json["analysis"]["status"], "known");
    assert_eq!(a.json["analysis"]["recent"]["errors"], 300);
    assert_eq!(a.json["analysis"]["errors_by_category"]["connection"], 300);
    assert_eq!(a.json["window"]["recent_seconds"], 300);
    assert!(
        a.json["summary"]
            .as_str()
            .unwrap()
            .starts_with("clients failing: 300 errors in 500 lines (60.0%)"),
        "{}",
        a.json["summary"]
    );
    assert_eq!(a.json["failover_effects"], json!([]));
    // The route reads the default window: the cacheable one.
    assert_eq!(fake.calls()[0].1.end, None);

    // Unknown is an answer, not an error.
    fake.set(&uid(), ClientImpact::unknown("timeout: no answer in 2 s"));
    let a = get(&b.state, "/api/client-errors/cache").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["clients"], "unknown");
    assert_eq!(a.json["analysis"]["reason"], "timeout: no answer in 2 s");
}

#[tokio::test]
async fn advisor_routes_name_what_is_missing() {
    let b = bed(Some(KEY)).await;
    for (uri, needs) in [
        ("/api/client-errors/cache", "use_elk"),
        ("/api/ai-recommendations/cache", "use_azure_openai"),
    ] {
        let a = get(&b.state, uri).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
        assert!(error_of(&a).contains(needs), "{}", a.text);
    }
    let (b, _, _) = advised(FakeClientImpact::failing(&uid())).await;
    for uri in ["/api/client-errors/nope", "/api/ai-recommendations/nope"] {
        let a = get(&b.state, uri).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(
            error_of(&a).contains("unknown instance \"nope\""),
            "{}",
            a.text
        );
    }
    for query in ["limit=0", "limit=x", "since=1"] {
        let a = get(&b.state, &format!("/api/ai-recommendations/cache?{query}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {}", a.text);
    }
    let a = call(&b.state, "GET", "/api/ai-recommendations/cache", None, "").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ai_recommendations_list_each_consultation_and_what_it_changed() {
    let (b, _, ai) = advised(FakeClientImpact::failing(&uid())).await;
    let a = get(&b.state, "/api/ai-recommendations/cache").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["recommendations"], json!([]));
    assert_eq!(a.json["rules"]["ai_failover_confidence"], 0.85);
    assert_eq!(a.json["rules"]["ai_consecutive_recommendations"], 2);
    assert_eq!(a.json["rules"]["rate_limit_seconds"], 300);

    let id = fire(&b).await;
    assert_eq!(ai.requests().len(), 1);
    let a = get(&b.state, "/api/ai-recommendations/cache?limit=5").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let recs = a.json["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{}", a.text);
    let r = &recs[0];
    assert_eq!(r["incident"], id);
    assert_eq!(r["advisor"], "fake");
    assert_eq!(r["result"]["advice"]["recommendation"], "failover");
    assert_eq!(r["result"]["advice"]["target_dc"], "west");
    assert_eq!(r["effects"][0]["effect"], "agrees");
    assert_eq!(r["counted"], false);

    // The incident says which advisors were consulted and what they said.
    let incident = settled(&b.state, id).await;
    let steps: Vec<&str> = incident["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        steps.contains(&"client_impact") && steps.contains(&"advisor"),
        "{steps:?}"
    );
    // auto_failover is off here: the agent recommends.
    assert_eq!(
        incident["outcome"]["outcome"], "would_fail_over",
        "{incident:#}"
    );
}
