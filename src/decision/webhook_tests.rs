use super::*;
use std::time::{Duration, UNIX_EPOCH};

// Delivered by a real Alertmanager 0.25 with the shipped configuration
// (tests/webhook_deliveries.rs, CAPTURE_ALERTMANAGER_FIXTURES=1).
const FIRING_INSTANCE: &[u8] =
    include_bytes!("../../tests/fixtures/alertmanager/firing-instance.json");
const FIRING_DATACENTER: &[u8] =
    include_bytes!("../../tests/fixtures/alertmanager/firing-datacenter.json");
const RESOLVED_INSTANCE: &[u8] =
    include_bytes!("../../tests/fixtures/alertmanager/resolved-instance.json");
const MIXED_GROUP: &[u8] = include_bytes!("../../tests/fixtures/alertmanager/mixed-group.json");

const LABEL: &str = "failover_candidate";

fn minimal(alerts: &str) -> String {
    format!(r#"{{"version":"4","status":"firing","alerts":{alerts}}}"#)
}

fn alert_json(labels: &str, status: &str) -> String {
    format!(
        r#"{{"status":"{status}","labels":{labels},"startsAt":"2025-01-02T03:04:05Z","fingerprint":"f1"}}"#
    )
}

fn err(body: &str) -> String {
    parse(body.as_bytes()).unwrap_err().to_string()
}

#[test]
fn a_real_firing_instance_delivery_parses_with_every_field() {
    let p = parse(FIRING_INSTANCE).unwrap();
    assert_eq!(p.version, "4");
    assert_eq!(p.receiver, "redis-failover-agent");
    assert_eq!(p.status, AlertStatus::Firing);
    assert_eq!(p.truncated_alerts, 0);
    assert!(p.group_key.starts_with("{}/{failover_candidate=\"true\"}:"));
    assert_eq!(p.group_labels["redis_instance"], "redis-app-01");
    assert_eq!(p.common_labels["datacenter"], "east");
    assert_eq!(
        p.common_annotations["runbook_url"],
        "https://github.com/redis-failover-agent/redis-failover-agent/blob/main/docs/runbooks/RedisActiveDatacenterDown.md"
    );
    assert!(p.external_url.starts_with("http://"));
    let a = &p.alerts[0];
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.alertname(), "RedisActiveDatacenterDown");
    assert_eq!(a.ends_at, None);
    assert!(a.starts_at > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    assert!(a.generator_url.starts_with("http://prometheus:9090/graph"));
    assert_eq!(a.fingerprint.len(), 16);
    assert!(a.annotations["summary"].contains("redis-app-01"));
}

#[test]
fn candidates_of_real_deliveries() {
    let e = candidates(&parse(FIRING_INSTANCE).unwrap(), LABEL);
    assert!(e.ignored.is_empty());
    let c = &e.candidates[0];
    assert_eq!(c.target, Target::Instance("redis-app-01".into()));
    assert_eq!(c.datacenter.as_deref(), Some("east"));
    assert_eq!(c.alertname, "RedisActiveDatacenterDown");
    assert_eq!(c.status, AlertStatus::Firing);
    assert!(!c.fingerprint.is_empty());

    let e = candidates(&parse(FIRING_DATACENTER).unwrap(), LABEL);
    assert_eq!(e.candidates[0].target, Target::Datacenter("east".into()));
    assert_eq!(e.candidates[0].alertname, "RedisDatacenterHealthCollapsed");

    let p = parse(RESOLVED_INSTANCE).unwrap();
    assert_eq!(p.status, AlertStatus::Resolved);
    let c = &candidates(&p, LABEL).candidates[0];
    assert_eq!(c.status, AlertStatus::Resolved);
    assert!(c.ends_at.unwrap() >= c.starts_at);

    let p = parse(MIXED_GROUP).unwrap();
    assert_eq!(p.status, AlertStatus::Firing);
    let e = candidates(&p, LABEL);
    let got: Vec<(&Target, AlertStatus)> =
        e.candidates.iter().map(|c| (&c.target, c.status)).collect();
    let app02 = Target::Instance("redis-app-02".into());
    assert_eq!(
        got,
        [
            (&app02, AlertStatus::Firing),
            (&app02, AlertStatus::Resolved)
        ]
    );
}

#[test]
fn a_different_label_name_selects_nothing_from_the_shipped_rules() {
    let e = candidates(&parse(FIRING_INSTANCE).unwrap(), "move_dns");
    assert!(e.candidates.is_empty());
    assert_eq!(e.ignored[0].reason, IgnoreReason::NotACandidate);
    assert_eq!(e.ignored[0].alertname, "RedisActiveDatacenterDown");
}

#[test]
fn candidates_need_the_label_exactly_true_and_a_target() {
    let alerts = [
        alert_json(
            r#"{"alertname":"A","failover_candidate":"true","redis_instance":"r1","datacenter":"east"}"#,
            "firing",
        ),
        alert_json(
            r#"{"alertname":"B","failover_candidate":"true","datacenter":"west"}"#,
            "firing",
        ),
        alert_json(
            r#"{"alertname":"C","failover_candidate":"false","redis_instance":"r1"}"#,
            "firing",
        ),
        alert_json(
            r#"{"alertname":"D","failover_candidate":"True","redis_instance":"r1"}"#,
            "firing",
        ),
        alert_json(r#"{"alertname":"E","redis_instance":"r1"}"#, "firing"),
        alert_json(r#"{"alertname":"F","failover_candidate":"true"}"#, "firing"),
        alert_json(
            r#"{"alertname":"G","failover_candidate":"true","redis_instance":"","datacenter":""}"#,
            "firing",
        ),
        alert_json(
            r#"{"alertname":"H","failover_candidate":"true","redis_instance":"","datacenter":"west"}"#,
            "resolved",
        ),
    ];
    let body = minimal(&format!("[{}]", alerts.join(",")));
    let e = candidates(&parse(body.as_bytes()).unwrap(), LABEL);
    let picked: Vec<(&str, &Target, AlertStatus)> = e
        .candidates
        .iter()
        .map(|c| (c.alertname.as_str(), &c.target, c.status))
        .collect();
    assert_eq!(
        picked,
        [
            ("A", &Target::Instance("r1".into()), AlertStatus::Firing),
            ("B", &Target::Datacenter("west".into()), AlertStatus::Firing),
            (
                "H",
                &Target::Datacenter("west".into()),
                AlertStatus::Resolved
            ),
        ]
    );
    let ignored: Vec<(&str, IgnoreReason)> = e
        .ignored
        .iter()
        .map(|i| (i.alertname.as_str(), i.reason))
        .collect();
    assert_eq!(
        ignored,
        [
            ("C", IgnoreReason::NotACandidate),
            ("D", IgnoreReason::NotACandidate),
            ("E", IgnoreReason::NotACandidate),
            ("F", IgnoreReason::NoTarget),
            ("G", IgnoreReason::NoTarget),
        ]
    );
    assert_eq!(
        IgnoreReason::NoTarget.to_string(),
        "a failover candidate that names neither a redis_instance nor a datacenter"
    );
}

#[test]
fn an_empty_alert_list_is_valid() {
    let p = parse(minimal("[]").as_bytes()).unwrap();
    assert!(p.alerts.is_empty());
    assert_eq!(candidates(&p, LABEL), Extraction::default());
}

#[test]
fn unknown_fields_are_ignored_and_null_is_absent() {
    let body = r#"{"version":"4","status":"resolved","future":{"x":1},"groupLabels":null,
        "commonAnnotations":null,"truncatedAlerts":null,
        "alerts":[{"status":"resolved","labels":{"a":"b"},"annotations":null,
          "startsAt":"2025-01-02T03:04:05Z","endsAt":null,"silencedBy":[],"extra":true}]}"#;
    let p = parse(body.as_bytes()).unwrap();
    assert!(p.group_labels.is_empty() && p.common_annotations.is_empty());
    assert_eq!(p.alerts[0].ends_at, None);
    assert_eq!(p.alerts[0].fingerprint, "");
}

#[test]
fn errors_say_where_and_what() {
    let three = format!(
        "[{},{},{}]",
        alert_json("{}", "firing"),
        alert_json("{}", "resolved"),
        alert_json("{}", "firin")
    );
    assert_eq!(
        err(&minimal(&three)),
        "alerts[2].status: unknown variant `firin`, expected firing or resolved"
    );
    assert_eq!(
        err(r#"{"version":"3","status":"firing","alerts":[]}"#),
        "version: unsupported webhook payload version \"3\"; the agent reads version \"4\" \
         (Alertmanager 0.x)"
    );
    assert_eq!(
        err(r#"{"status":"firing","alerts":[]}"#),
        "version: required field is missing"
    );
    assert_eq!(
        err(r#"{"version":4,"status":"firing","alerts":[]}"#),
        "version: expected a string, found a number"
    );
    assert_eq!(
        err(r#"{"version":"4","status":"firing"}"#),
        "alerts: required field is missing"
    );
    assert_eq!(
        err(r#"{"version":"4","status":"firing","alerts":{}}"#),
        "alerts: expected an array, found an object"
    );
    assert_eq!(
        err(&minimal("[3]")),
        "alerts[0]: expected an object, found a number"
    );
    assert_eq!(
        err(&minimal(&format!(
            "[{}]",
            alert_json(r#"{"severity":2}"#, "firing")
        ))),
        "alerts[0].labels.severity: expected a string, found a number"
    );
    assert_eq!(
        err(&minimal(
            r#"[{"status":"firing","startsAt":"2025-01-02T03:04:05Z"}]"#
        )),
        "alerts[0].labels: required field is missing"
    );
    assert_eq!(
        err(&minimal(r#"[{"status":"firing","labels":{}}]"#)),
        "alerts[0].startsAt: required field is missing"
    );
    assert_eq!(
        err(&minimal(
            r#"[{"status":"firing","labels":{},"startsAt":"yesterday"}]"#
        )),
        "alerts[0].startsAt: \"yesterday\" is not an RFC 3339 time such as \
         \"2025-01-02T03:04:05Z\""
    );
    assert_eq!(
        err(r#"{"version":"4","status":"firing","alerts":[],"truncatedAlerts":-1}"#),
        "truncatedAlerts: expected a whole number of 0 or more, found a number"
    );
    assert_eq!(
        err("[]"),
        "expected a JSON object (Alertmanager's webhook payload), found an array"
    );
    let syntax = err(r#"{"version": "4", "#);
    assert!(syntax.starts_with("not valid JSON: "), "{syntax}");
    assert!(syntax.contains("line 1 column"), "{syntax}");
    let e = parse(b"{}").unwrap_err();
    assert_eq!((e.path.as_str(), e.problem.as_str()), ("version", MISSING));
}

#[test]
fn payloads_serialize_back_to_the_same_shape_and_deserialize_through_the_checks() {
    let p = parse(MIXED_GROUP).unwrap();
    let text = serde_json::to_string(&p).unwrap();
    assert!(text.contains(r#""externalURL":"#) && text.contains(r#""generatorURL":"#));
    assert!(text.contains(r#""endsAt":"0001-01-01T00:00:00Z""#));
    let again: WebhookPayload = serde_json::from_str(&text).unwrap();
    assert_eq!(again, p);
    let bad = serde_json::from_str::<WebhookPayload>(r#"{"version":"5"}"#).unwrap_err();
    assert!(bad.to_string().starts_with("version: unsupported"), "{bad}");

    let e = candidates(&p, LABEL);
    let text = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<Extraction>(&text).unwrap(), e);
}

#[test]
fn rfc3339_reads_what_alertmanager_and_prometheus_write() {
    let t = |s: &str| rfc3339::parse(s).unwrap();
    let at = |secs: u64, nanos: u32| Some(UNIX_EPOCH + Duration::new(secs, nanos));
    assert_eq!(t("1970-01-01T00:00:00Z"), at(0, 0));
    assert_eq!(t("2025-01-02T03:04:05Z"), at(1_735_787_045, 0));
    assert_eq!(t("2025-01-02T03:04:05.5Z"), at(1_735_787_045, 500_000_000));
    assert_eq!(
        t("2025-01-02T03:04:05.123456789Z"),
        at(1_735_787_045, 123_456_789)
    );
    assert_eq!(t("2025-01-02T04:04:05+01:00"), at(1_735_787_045, 0));
    assert_eq!(
        t("2025-01-01T22:34:05.25-04:30"),
        at(1_735_787_045, 250_000_000)
    );
    assert_eq!(t("2024-02-29T00:00:00Z"), at(1_709_164_800, 0));
    assert_eq!(t("0001-01-01T00:00:00Z"), None, "Go's zero time");
    assert_eq!(
        t("1969-12-31T23:59:59.5Z"),
        Some(UNIX_EPOCH - Duration::from_millis(500))
    );
    for bad in [
        "2025-01-02",
        "2025-13-02T03:04:05Z",
        "2025-02-30T03:04:05Z",
        "2023-02-29T03:04:05Z",
        "2025-01-02T24:04:05Z",
        "2025-01-02T03:04:05",
        "2025-01-02T03:04:05.Z",
        "2025-01-02T03:04:05.1234567890Z",
        "2025-01-02T03:04:05+0100",
        "2025-01-02T03:04:05+01:60",
        "2025-01-02T03:04:05 UTC",
        "+025-01-02T03:04:05Z",
        "2025-01-02T03:04:05Zjunk",
    ] {
        assert!(rfc3339::parse(bad).is_err(), "{bad} was accepted");
    }
}

#[test]
fn rfc3339_format_round_trips() {
    let f = rfc3339::format;
    assert_eq!(f(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(
        f(UNIX_EPOCH + Duration::new(1_735_787_045, 500_000_000)),
        "2025-01-02T03:04:05.5Z"
    );
    assert_eq!(
        f(UNIX_EPOCH - Duration::from_millis(500)),
        "1969-12-31T23:59:59.5Z"
    );
    for secs in [
        0u64,
        951_782_400,
        1_709_164_800,
        4_102_444_800,
        253_402_300_799,
    ] {
        for nanos in [0u32, 1, 999_999_999] {
            let t = UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(rfc3339::parse(&f(t)).unwrap(), Some(t), "{}", f(t));
        }
    }
    // A time of today's kind: nanoseconds, this century.
    let recent = UNIX_EPOCH + Duration::new(1_777_605_127, 250_123_456);
    assert_eq!(rfc3339::parse(&f(recent)).unwrap(), Some(recent));
}

#[test]
fn a_multibyte_start_time_is_a_payload_error() {
    let body = minimal(&format!(
        "[{}]",
        alert_json(r#"{"alertname":"A"}"#, "firing")
            .replace("2025-01-02T03:04:05Z", "2025-01-02T03:04:0éZ")
    ));
    let e = err(&body);
    assert!(e.starts_with("alerts[0].startsAt: "), "{e}");
    assert!(e.contains("is not an RFC 3339 time"), "{e}");
}

#[test]
fn long_label_values_are_cut_at_a_character_boundary_with_a_marker() {
    assert_eq!(bounded_label("short", 16), "short");
    let cut = bounded_label(&"é".repeat(100), 16);
    assert!(cut.len() <= 16, "{cut}");
    assert!(cut.ends_with(CUT_MARKER), "{cut}");
    assert_eq!(cut, format!("{}{CUT_MARKER}", "é".repeat(6)));
    assert_eq!(bounded_label("abcdef", 2), "ab");
}

#[test]
fn a_megabyte_label_value_comes_out_at_most_max_label_bytes() {
    let huge = "x".repeat(1024 * 1024);
    let labels = serde_json::json!({
        "alertname": huge, LABEL: "true", "redis_instance": huge, "datacenter": huge,
    });
    let mut body: serde_json::Value = serde_json::from_str(&minimal(&format!(
        "[{}]",
        alert_json(&labels.to_string(), "firing")
    )))
    .unwrap();
    body["alerts"][0]["fingerprint"] = serde_json::json!(huge);
    let p = parse(body.to_string().as_bytes()).unwrap();
    let e = candidates_within(&p, LABEL, 256);
    let c = &e.candidates[0];
    let Target::Instance(uid) = &c.target else {
        panic!("{c:?}")
    };
    for value in [
        uid,
        c.datacenter.as_ref().unwrap(),
        &c.alertname,
        &c.fingerprint,
    ] {
        assert!(
            value.len() <= 256 && value.ends_with(CUT_MARKER),
            "{}",
            value.len()
        );
    }
    // Instance, datacenter, name and fingerprint: each cut counted.
    assert_eq!(e.labels_cut, 4);
    assert_eq!(candidates_within(&p, LABEL, 2 << 20).labels_cut, 0);
    // The default bound applies to callers that give none.
    let c = &candidates(&p, LABEL).candidates[0];
    assert!(c.alertname.len() <= crate::config_kit::limits::default_max_label_bytes());
}

mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    const FIXTURES: [&[u8]; 4] = [
        FIRING_INSTANCE,
        FIRING_DATACENTER,
        RESOLVED_INSTANCE,
        MIXED_GROUP,
    ];

    fn check_bounds(e: &Extraction, max: usize) -> Result<(), TestCaseError> {
        for c in &e.candidates {
            let (Target::Instance(v) | Target::Datacenter(v)) = &c.target;
            prop_assert!(v.len() <= max);
            prop_assert!(c.datacenter.as_ref().is_none_or(|d| d.len() <= max));
            prop_assert!(c.alertname.len() <= max && c.fingerprint.len() <= max);
        }
        for i in &e.ignored {
            prop_assert!(i.alertname.len() <= max && i.fingerprint.len() <= max);
        }
        Ok(())
    }

    /// A label value: often short, sometimes long, any characters.
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => "\\PC{0,12}".prop_map(Value::from),
            1 => ("\\PC{0,4}", 100usize..3000).prop_map(|(s, n)| Value::from(s.repeat(n))),
            1 => Just(Value::from("true")),
            1 => any::<i64>().prop_map(Value::from),
            1 => Just(Value::Null),
        ]
    }

    proptest! {
        #![proptest_config(crate::fuzz::config(512))]

        /// Arbitrary bytes: refused or read, never a panic.
        #[test]
        fn fuzz_webhook_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = parse(&body) {
                check_bounds(&candidates_within(&p, LABEL, 16), 16)?;
            }
        }

        /// A real delivery with bytes flipped, inserted or removed.
        #[test]
        fn fuzz_webhook_mutated_bytes(
            which in 0usize..4,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let mut body = FIXTURES[which].to_vec();
            for (at, byte, op) in edits {
                let i = at.index(body.len());
                match op {
                    0 => body[i] = byte,
                    1 => body.insert(i, byte),
                    _ => { body.remove(i); }
                }
            }
            if let Ok(p) = parse(&body) {
                check_bounds(&candidates_within(&p, LABEL, 64), 64)?;
            }
        }

        /// A real delivery whose labels, fingerprint and times are replaced by anything:
        /// every value that comes out is within the bound.
        #[test]
        fn fuzz_webhook_mutated_fields(
            which in 0usize..4,
            max in 16usize..300,
            redis_instance in value(),
            datacenter in value(),
            alertname in value(),
            fingerprint in value(),
            candidate in value(),
            starts_at in prop_oneof![
                Just(Value::from("2025-01-02T03:04:05Z")),
                "\\PC{0,30}".prop_map(Value::from),
            ],
        ) {
            let mut body: Value = serde_json::from_slice(FIXTURES[which]).unwrap();
            for alert in body["alerts"].as_array_mut().unwrap() {
                let labels = &mut alert["labels"];
                labels["redis_instance"] = redis_instance.clone();
                labels["datacenter"] = datacenter.clone();
                labels["alertname"] = alertname.clone();
                labels[LABEL] = candidate.clone();
                alert["fingerprint"] = fingerprint.clone();
                alert["startsAt"] = starts_at.clone();
            }
            body["extra"] = json!({"unknown": [1, 2, 3]});
            let bytes = serde_json::to_vec(&body).unwrap();
            if let Ok(p) = parse(&bytes) {
                check_bounds(&candidates_within(&p, LABEL, max), max)?;
            }
        }
    }
}
