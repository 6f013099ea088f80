use super::*;
use crate::decision::ports::{AdapterErrorKind, Window};

fn caps(fields: Value) -> Value {
    json!({"indices": ["logstash-1"], "fields": fields})
}

fn text_with_keyword(names: &[&str]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for n in names {
        m.insert(
            n.to_string(),
            json!({"text": {"type": "text", "aggregatable": false}}),
        );
        m.insert(
            format!("{n}.keyword"),
            json!({"keyword": {"type": "keyword", "aggregatable": true}}),
        );
    }
    m.insert(
        "@timestamp".into(),
        json!({"date": {"type": "date", "aggregatable": true}}),
    );
    m.insert(
        "latency_ms".into(),
        json!({"long": {"type": "long", "aggregatable": true}}),
    );
    m
}

#[test]
fn dynamic_mapping_uses_the_keyword_sub_fields() {
    let f = ElkFields::default();
    let all = [
        "level",
        "message",
        "redis_instance",
        "exception",
        "log_source",
    ];
    let r = resolve(
        &f,
        true,
        &caps(Value::Object(text_with_keyword(&all))),
        "l-*",
    )
    .unwrap();
    assert_eq!(r.instance, "redis_instance.keyword");
    assert_eq!(r.level, "level.keyword");
    assert_eq!(r.log_source.as_deref(), Some("log_source.keyword"));
    assert_eq!(r.exception.as_deref(), Some("exception.keyword"));
    assert_eq!(r.latency.as_deref(), Some("latency_ms"));

    // No exception field at all: fine, categories come from messages.
    let r = resolve(
        &f,
        false,
        &caps(Value::Object(text_with_keyword(&all[..3]))),
        "l-*",
    );
    let r = r.unwrap();
    assert_eq!((r.exception, r.log_source), (None, None));
}

#[test]
fn what_cannot_be_queried_is_named() {
    let f = ElkFields::default();
    let none = resolve(&f, true, &json!({"indices": [], "fields": {}}), "l-*").unwrap_err();
    assert_eq!(none.to_string(), "not_found: no index matches \"l-*\"");
    let mut m = text_with_keyword(&["level", "log_source"]);
    m.insert(
        "redis_instance".into(),
        json!({"text": {"type": "text", "aggregatable": false}}),
    );
    let e = resolve(&f, true, &caps(Value::Object(m.clone())), "l-*").unwrap_err();
    assert_eq!(e.kind, AdapterErrorKind::Invalid);
    assert!(
        e.message
            .contains("\"redis_instance\" is text without a keyword"),
        "{e}"
    );
    m.insert(
        "@timestamp".into(),
        json!({"keyword": {"type": "keyword", "aggregatable": true}}),
    );
    let e = resolve(&f, true, &caps(Value::Object(m)), "l-*").unwrap_err();
    assert!(e.message.contains("\"@timestamp\" is not a date"), "{e}");
}

#[test]
fn levels_in_every_case_and_buckets_of_a_fifth() {
    assert_eq!(
        level_values(&["ERROR".into(), "fatal".into()]),
        ["ERROR", "error", "Error", "fatal", "FATAL", "Fatal"]
    );
    assert_eq!(
        bucket_width(Duration::from_secs(300)),
        Duration::from_secs(60)
    );
    assert_eq!(
        bucket_width(Duration::from_secs(20)),
        Duration::from_secs(10)
    );
}

#[test]
fn the_search_aligns_buckets_with_the_recent_period() {
    let f = ElkFields::default();
    let all = [
        "level",
        "message",
        "redis_instance",
        "exception",
        "log_source",
    ];
    let r = resolve(
        &f,
        true,
        &caps(Value::Object(text_with_keyword(&all))),
        "l-*",
    )
    .unwrap();
    let now = UNIX_EPOCH + Duration::from_millis(1_800_000_012_345);
    let b = Window::default().bounds(now);
    let body = search_body(
        &r,
        &f,
        &["cache".into()],
        &["ERROR".into()],
        &b,
        Duration::from_secs(60),
    );
    let q = &body["query"]["bool"]["filter"];
    assert_eq!(q[0]["terms"]["redis_instance.keyword"], json!(["cache"]));
    assert_eq!(q[1]["range"]["@timestamp"]["lt"], 1_800_000_012_345_i64);
    assert_eq!(q[2]["term"]["log_source.keyword"], "client");
    let split = 1_800_000_012_345_i64 - 300_000;
    assert_eq!(
        body["aggs"]["timeline"]["date_histogram"]["offset"],
        format!("{}ms", split % 60_000)
    );
    assert_eq!(
        body["aggs"]["recent"]["filter"]["range"]["@timestamp"]["gte"],
        split
    );
    let by_exc = &body["aggs"]["recent"]["aggs"]["errors"]["aggs"]["by_exception"];
    assert_eq!(by_exc["terms"]["field"], "exception.keyword");
    assert_eq!(
        by_exc["aggs"]["by_message"]["terms"]["field"],
        "message.keyword"
    );
}

fn answer(errors: Value) -> Value {
    json!({
        "_shards": {"total": 1, "failed": 0},
        "timed_out": false,
        "aggregations": {
            "recent": {"doc_count": 100, "errors": errors,
                       "latency": {"values": {"50.0": 2.0, "95.0": null, "99.0": 9.5}}},
            "baseline": {"doc_count": 600, "errors": {"doc_count": 6}},
            "timeline": {"buckets": [{"key": 60000, "doc_count": 3, "errors": {"doc_count": 1}}]},
        },
    })
}

#[test]
fn categories_from_exception_and_message_buckets() {
    let errors = json!({
        "doc_count": 30,
        "by_exception": {"sum_other_doc_count": 2, "buckets": [
            {"key": "RedisConnectionException", "doc_count": 10, "by_message": {"buckets": []}},
            {"key": "RedisCommandExecutionException", "doc_count": 9, "by_message": {"buckets": [
                {"key": "OOM command not allowed", "doc_count": 4},
                {"key": "NOAUTH Authentication required.", "doc_count": 3},
            ]}},
            {"key": "", "doc_count": 9, "by_message": {"buckets": [
                {"key": "Read timed out", "doc_count": 8},
            ]}},
        ]},
        "samples": {"hits": {"hits": [{"_source": {"@timestamp": "2026-01-01T00:00:00Z", "message": "m"}}]}},
    });
    let c = parse(
        &answer(errors),
        &ElkFields::default(),
        Duration::from_secs(60),
    )
    .unwrap();
    let want: BTreeMap<ErrorCategory, u64> = [
        (ErrorCategory::Connection, 10),
        (ErrorCategory::Memory, 4),
        (ErrorCategory::Authentication, 3),
        (ErrorCategory::Timeout, 8),
        // 2 messages past the buckets, 1 without exception or message bucket, 2 past
        // the exception buckets.
        (ErrorCategory::Other, 5),
    ]
    .into();
    assert_eq!(c.categories, want);
    assert_eq!(c.categories.values().sum::<u64>(), 30);
    assert_eq!(c.exceptions.len(), 2);
    assert_eq!(
        (c.recent.lines, c.recent.errors, c.baseline.errors),
        (100, 30, 6)
    );
    assert_eq!(
        c.recent.latency,
        Latency {
            p50: Some(2.0),
            p95: None,
            p99: Some(9.5)
        }
    );
    assert_eq!(c.timeline.len(), 1);
    assert_eq!(c.samples[0].message.as_deref(), Some("m"));
}

#[test]
fn partial_or_odd_answers_are_errors() {
    let f = ElkFields::default();
    let mut a = answer(json!({"doc_count": 0}));
    a["_shards"] = json!({"total": 3, "failed": 1, "failures": [{"reason": {"reason": "boom"}}]});
    let e = parse(&a, &f, Duration::from_secs(60)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unavailable: partial answer: 1 of 3 shards failed (boom)"
    );
    let mut a = answer(json!({"doc_count": 0}));
    a["timed_out"] = json!(true);
    assert_eq!(
        parse(&a, &f, Duration::from_secs(60)).unwrap_err().kind,
        AdapterErrorKind::Timeout
    );
    let e = parse(&json!({"hits": {}}), &f, Duration::from_secs(60)).unwrap_err();
    assert_eq!(e.kind, AdapterErrorKind::Invalid);
}
