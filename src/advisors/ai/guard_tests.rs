use serde_json::json;

use super::*;
use crate::decision::ports::advisor::evidence::tests::{OUTAGE, dc, failover_to, request};

fn answer(rec: &str, target: Option<&str>, confidence: f64) -> String {
    json!({
        "recommendation": rec,
        "target_dc": target,
        "confidence": confidence,
        "reasoning": "r",
        "impact": "i",
    })
    .to_string()
}

fn outage_request() -> AdviceRequest {
    request(&[OUTAGE, OUTAGE], failover_to("west", 1.0))
}

fn check(content: &str) -> Result<Advice, Discarded> {
    validate_answer(content, &outage_request())
}

#[test]
fn sound_advice_is_accepted() {
    let a = check(&answer("failover", Some("west"), 0.9)).unwrap();
    assert_eq!(a.recommendation, Recommendation::Failover);
    assert_eq!(a.target_dc, Some(dc("west")));
    assert_eq!(a.confidence, 0.9);
    let h = check(&answer("hold", None, 0.7)).unwrap();
    assert_eq!(h.recommendation, Recommendation::Hold);
    assert_eq!(h.target_dc, None);
    // A hold may name the datacenter to stay on.
    assert!(check(&answer("hold", Some("east"), 0.7)).is_ok());
}

#[test]
fn prose_is_invalid_json() {
    assert!(matches!(
        check("I would fail over to west."),
        Err(Discarded::InvalidJson { .. })
    ));
    assert!(matches!(check(""), Err(Discarded::InvalidJson { .. })));
}

#[test]
fn schema_breaks_are_named() {
    let cases = [
        ("[1]", "not a JSON object"),
        (
            r#"{"recommendation":"hold","target_dc":null,"confidence":0.5,"reasoning":"r","impact":"i","extra":1}"#,
            "unexpected key `extra`",
        ),
        (
            r#"{"recommendation":"hold","target_dc":null,"confidence":0.5,"reasoning":"r"}"#,
            "`impact` is missing",
        ),
        (
            r#"{"recommendation":"FAILOVER","target_dc":"west","confidence":0.5,"reasoning":"r","impact":"i"}"#,
            "`recommendation`",
        ),
        (
            r#"{"recommendation":"hold","target_dc":null,"confidence":"high","reasoning":"r","impact":"i"}"#,
            "`confidence`",
        ),
        (
            r#"{"recommendation":"hold","target_dc":null,"confidence":1.5,"reasoning":"r","impact":"i"}"#,
            "not a number from 0 to 1",
        ),
        (
            r#"{"recommendation":"hold","target_dc":3,"confidence":0.5,"reasoning":"r","impact":"i"}"#,
            "`target_dc`",
        ),
        (
            r#"{"recommendation":"hold","target_dc":null,"confidence":0.5,"reasoning":["r"],"impact":"i"}"#,
            "`reasoning`",
        ),
        (
            r#"{"recommendation":"failover","target_dc":null,"confidence":0.5,"reasoning":"r","impact":"i"}"#,
            "without `target_dc`",
        ),
    ];
    for (content, expected) in cases {
        match check(content) {
            Err(Discarded::SchemaBreak { detail }) => {
                assert!(detail.contains(expected), "{content}: {detail}")
            }
            other => panic!("{content}: {other:?}"),
        }
    }
}

#[test]
fn targets_must_be_configured_healthy_and_not_active() {
    assert_eq!(
        check(&answer("failover", Some("mars"), 0.9)),
        Err(Discarded::UnknownDatacenter {
            datacenter: "mars".into()
        })
    );
    assert_eq!(
        check(&answer("hold", Some("mars"), 0.9)),
        Err(Discarded::UnknownDatacenter {
            datacenter: "mars".into()
        })
    );
    // north is up but failing (health 0.3).
    assert_eq!(
        check(&answer("failover", Some("north"), 0.9)),
        Err(Discarded::UnhealthyTarget {
            datacenter: "north".into()
        })
    );
    assert_eq!(
        check(&answer("failover", Some("east"), 0.9)),
        Err(Discarded::ActiveAsTarget {
            datacenter: "east".into()
        })
    );
}

#[test]
fn long_texts_are_cut() {
    let long = "x".repeat(5000);
    let content = json!({"recommendation": "hold", "target_dc": null, "confidence": 0.5,
        "reasoning": long, "impact": long})
    .to_string();
    let a = check(&content).unwrap();
    assert!(a.reasoning.chars().count() <= TEXT_LIMIT + 1);
}
