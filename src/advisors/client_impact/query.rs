//! The Elasticsearch query DSL for one analysis, and the reading of its answers, as
//! pure functions over JSON (the HTTP calls are in `elasticsearch.rs`).
//!
//! Two requests: `_field_caps` says which indices match and how the fields are mapped
//! (Logstash's dynamic mapping makes strings `text` with a `.keyword` sub-field; exact
//! matches and counts need the keyword), then one `_search` with `size: 0` whose
//! aggregations carry everything: lines and errors per period, errors by exception and
//! message, latency percentiles, an error histogram, and the newest errors.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::config::ElkFields;
use super::report::{LogCounts, MAX_SAMPLES, PeriodCounts, RawSample, TimeBucket};
use super::{categorize, categorize_text};
use crate::decision::ports::{AdapterErrorKind, Bounds, ClientImpactError, ErrorCategory, Latency};

/// Exception names (and messages per exception) counted one by one; the rest of the
/// errors count as "other".
const EXCEPTION_BUCKETS: usize = 50;
const MESSAGE_BUCKETS: usize = 20;

/// The fields as the matching indices map them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Resolved {
    pub timestamp: String,
    pub level: String,
    pub instance: String,
    /// Set when only `log_source: client` lines count.
    pub log_source: Option<String>,
    /// Keyword forms, when there is one.
    pub exception: Option<String>,
    pub message: Option<String>,
    /// When numeric.
    pub latency: Option<String>,
}

/// The names `_field_caps` is asked about: each field and its `.keyword`.
pub(super) fn caps_fields(f: &ElkFields) -> Vec<String> {
    let all = [
        &f.timestamp,
        &f.level,
        &f.message,
        &f.latency_ms,
        &f.redis_instance,
        &f.operation,
        &f.exception,
        &f.log_source,
    ];
    all.iter()
        .flat_map(|n| [n.to_string(), format!("{n}.keyword")])
        .collect()
}

/// Picks the form of each field to query, from a `_field_caps` answer.
pub(super) fn resolve(
    f: &ElkFields,
    client_logs_only: bool,
    caps: &Value,
    pattern: &str,
) -> Result<Resolved, ClientImpactError> {
    let indices = caps["indices"].as_array().map_or(0, Vec::len);
    if indices == 0 {
        return Err(ClientImpactError::new(
            AdapterErrorKind::NotFound,
            format!("no index matches {pattern:?}"),
        ));
    }
    let types = |name: &str| -> Vec<(String, bool)> {
        caps["fields"][name]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(t, _)| t.as_str() != "unmapped")
                    .map(|(t, c)| (t.clone(), c["aggregatable"].as_bool().unwrap_or(false)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let is_exact = |name: &str| {
        let t = types(name);
        !t.is_empty() && t.iter().all(|(ty, agg)| *agg && ty != "text")
    };
    let exact = |name: &str| -> Option<String> {
        let keyword = format!("{name}.keyword");
        [name.to_owned(), keyword].into_iter().find(|n| is_exact(n))
    };
    let required = |name: &str| -> Result<String, ClientImpactError> {
        exact(name).ok_or_else(|| {
            if types(name).is_empty() {
                ClientImpactError::new(
                    AdapterErrorKind::NotFound,
                    format!("field {name:?} is in no index matching {pattern:?}; see elk.fields"),
                )
            } else {
                ClientImpactError::new(
                    AdapterErrorKind::Invalid,
                    format!(
                        "field {name:?} is text without a keyword form; map it as keyword or \
                         give it a .keyword sub-field"
                    ),
                )
            }
        })
    };
    let ts = types(&f.timestamp);
    if ts.is_empty() || !ts.iter().all(|(t, _)| t == "date" || t == "date_nanos") {
        return Err(ClientImpactError::new(
            if ts.is_empty() {
                AdapterErrorKind::NotFound
            } else {
                AdapterErrorKind::Invalid
            },
            format!(
                "field {:?} is not a date in the indices matching {pattern:?}",
                f.timestamp
            ),
        ));
    }
    let numeric = [
        "long",
        "integer",
        "short",
        "byte",
        "double",
        "float",
        "half_float",
        "scaled_float",
        "unsigned_long",
    ];
    let lat = types(&f.latency_ms);
    Ok(Resolved {
        timestamp: f.timestamp.clone(),
        level: required(&f.level)?,
        instance: required(&f.redis_instance)?,
        log_source: if client_logs_only {
            Some(required(&f.log_source)?)
        } else {
            None
        },
        exception: exact(&f.exception),
        message: exact(&f.message),
        latency: (!lat.is_empty() && lat.iter().all(|(t, _)| numeric.contains(&t.as_str())))
            .then(|| f.latency_ms.clone()),
    })
}

/// Histogram buckets: a fifth of the recent period, at least 10 s, in whole seconds.
pub(super) fn bucket_width(recent: Duration) -> Duration {
    Duration::from_secs((recent.as_secs() / 5).max(10))
}

/// Each level as given, in upper case, lower case and capitalised: `level` values are
/// compared exactly, and clients disagree on case.
pub(super) fn level_values(levels: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in levels {
        let lower = l.to_lowercase();
        let mut capital: String = lower.chars().take(1).flat_map(char::to_uppercase).collect();
        capital.extend(lower.chars().skip(1));
        for v in [l.clone(), l.to_uppercase(), lower, capital] {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The `_search` body for one instance (known by any of `names`) over `bounds`.
pub(super) fn search_body(
    r: &Resolved,
    f: &ElkFields,
    names: &[String],
    levels: &[String],
    bounds: &Bounds,
    width: Duration,
) -> Value {
    let ts = r.timestamp.as_str();
    let (from, split, end) = (
        millis(bounds.baseline_from),
        millis(bounds.recent_from),
        millis(bounds.end),
    );
    let range = |gte: i64, lt: i64| json!({"range": {ts: {"gte": gte, "lt": lt, "format": "epoch_millis"}}});
    let mut filter = vec![
        json!({"terms": {r.instance.as_str(): names}}),
        range(from, end),
    ];
    if let Some(src) = &r.log_source {
        filter.push(json!({"term": {src.as_str(): "client"}}));
    }
    let errors = json!({"terms": {r.level.as_str(): level_values(levels)}});
    let latency = r
        .latency
        .as_ref()
        .map(|l| json!({"percentiles": {"field": l, "percents": [50.0, 95.0, 99.0]}}));
    let by_message = r
        .message
        .as_ref()
        .map(|m| json!({"terms": {"field": m, "size": MESSAGE_BUCKETS}}));
    let mut error_aggs = serde_json::Map::new();
    error_aggs.insert(
        "samples".into(),
        json!({"top_hits": {
            "size": MAX_SAMPLES,
            "sort": [{ts: {"order": "desc"}}],
            "_source": {"includes": [ts, &f.message, &f.exception, &f.operation]},
        }}),
    );
    match (&r.exception, &by_message) {
        (Some(e), m) => {
            let mut agg = json!({"terms": {"field": e, "size": EXCEPTION_BUCKETS, "missing": ""}});
            if let Some(m) = m {
                agg["aggs"] = json!({"by_message": m});
            }
            error_aggs.insert("by_exception".into(), agg);
        }
        (None, Some(m)) => {
            error_aggs.insert("by_message".into(), m.clone());
        }
        (None, None) => {}
    }
    let period = |gte: i64, lt: i64, error_aggs: Option<&serde_json::Map<String, Value>>| {
        let mut errs = json!({"filter": errors});
        if let Some(a) = error_aggs {
            errs["aggs"] = Value::Object(a.clone());
        }
        let mut aggs = json!({"errors": errs});
        if let Some(l) = &latency {
            aggs["latency"] = l.clone();
        }
        json!({"filter": range(gte, lt), "aggs": aggs})
    };
    let width_ms = width.as_millis() as i64;
    json!({
        "size": 0,
        "track_total_hits": true,
        "query": {"bool": {"filter": filter}},
        "aggs": {
            "recent": period(split, end, Some(&error_aggs)),
            "baseline": period(from, split, None),
            "timeline": {
                "date_histogram": {
                    "field": ts,
                    "fixed_interval": format!("{}s", width.as_secs()),
                    "offset": format!("{}ms", split.rem_euclid(width_ms.max(1))),
                    "min_doc_count": 0,
                    "extended_bounds": {"min": from, "max": end - 1},
                },
                "aggs": {"errors": {"filter": errors}},
            },
        },
    })
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn latency(v: &Value) -> Latency {
    let values = &v["values"];
    let at = |p: f64| -> Option<f64> {
        values
            .as_object()?
            .iter()
            .find_map(|(k, x)| (k.parse::<f64>().ok()? == p).then(|| x.as_f64()).flatten())
    };
    Latency {
        p50: at(50.0),
        p95: at(95.0),
        p99: at(99.0),
    }
}

/// A `_source` value at a dotted path, flat (`"log.level"`) or nested.
fn source_text(source: &Value, path: &str) -> Option<String> {
    let v = source
        .get(path)
        .or_else(|| path.split('.').try_fold(source, |v, part| v.get(part)))?;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads the `_search` answer of [`search_body`].
pub(super) fn parse(
    answer: &Value,
    f: &ElkFields,
    width: Duration,
) -> Result<LogCounts, ClientImpactError> {
    let failed = count(&answer["_shards"]["failed"]);
    if failed > 0 {
        let reason = answer["_shards"]["failures"][0]["reason"]["reason"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(ClientImpactError::new(
            AdapterErrorKind::Unavailable,
            format!(
                "partial answer: {failed} of {} shards failed ({reason})",
                count(&answer["_shards"]["total"])
            ),
        ));
    }
    if answer["timed_out"].as_bool() == Some(true) {
        return Err(ClientImpactError::new(
            AdapterErrorKind::Timeout,
            "the search timed out on the server; its counts would be partial",
        ));
    }
    let aggs = &answer["aggregations"];
    let (recent, baseline) = (&aggs["recent"], &aggs["baseline"]);
    if !recent["doc_count"].is_u64() || !baseline["doc_count"].is_u64() {
        return Err(ClientImpactError::new(
            AdapterErrorKind::Invalid,
            "the answer has no aggregations.recent/baseline counts",
        ));
    }
    let errors = &recent["errors"];
    let total_errors = count(&errors["doc_count"]);
    let (categories, exceptions) = categories(errors, total_errors);
    let timeline = aggs["timeline"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let key = b["key"].as_i64().filter(|k| *k >= 0)?;
            Some(TimeBucket {
                start: UNIX_EPOCH + Duration::from_millis(key as u64),
                errors: count(&b["errors"]["doc_count"]),
            })
        })
        .collect();
    let samples = errors["samples"]["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let s = &h["_source"];
            RawSample {
                at: source_text(s, &f.timestamp),
                operation: source_text(s, &f.operation),
                exception: source_text(s, &f.exception),
                message: source_text(s, &f.message),
            }
        })
        .collect();
    Ok(LogCounts {
        recent: PeriodCounts {
            lines: count(&recent["doc_count"]),
            errors: total_errors,
            latency: latency(&recent["latency"]),
        },
        baseline: PeriodCounts {
            lines: count(&baseline["doc_count"]),
            errors: count(&baseline["errors"]["doc_count"]),
            latency: latency(&baseline["latency"]),
        },
        categories,
        exceptions,
        bucket_width: width,
        timeline,
        samples,
    })
}

/// Recent errors by category, and by exception name, from the `errors` aggregation:
/// an exception name decides when it says something, else each message bucket under
/// it does; whatever no bucket shows (past the bucket limits) is "other".
fn categories(errors: &Value, total: u64) -> (BTreeMap<ErrorCategory, u64>, Vec<(String, u64)>) {
    let mut out: BTreeMap<ErrorCategory, u64> = BTreeMap::new();
    let mut exceptions = Vec::new();
    let agg = &errors["by_exception"];
    if agg.is_object() {
        let mut seen = 0;
        for b in agg["buckets"].as_array().into_iter().flatten() {
            let (name, n) = (key(b), count(&b["doc_count"]));
            seen += n;
            if let Some(name) = name {
                exceptions.push((name.to_owned(), n));
            }
            match name.map(categorize_text) {
                Some(c) if c != ErrorCategory::Other => *out.entry(c).or_default() += n,
                _ => by_message(&b["by_message"], name, n, &mut out),
            }
        }
        *out.entry(ErrorCategory::Other).or_default() += total.saturating_sub(seen);
    } else {
        by_message(&errors["by_message"], None, total, &mut out);
    }
    out.retain(|_, n| *n > 0);
    (out, exceptions)
}

/// `total` errors with `exception`, by the message buckets of `agg`.
fn by_message(
    agg: &Value,
    exception: Option<&str>,
    total: u64,
    out: &mut BTreeMap<ErrorCategory, u64>,
) {
    let mut seen = 0;
    for b in agg["buckets"].as_array().into_iter().flatten() {
        let n = count(&b["doc_count"]);
        seen += n;
        *out.entry(categorize(exception, key(b))).or_default() += n;
    }
    *out.entry(ErrorCategory::Other).or_default() += total.saturating_sub(seen);
}

/// A terms bucket's key; the `missing` bucket ("") is none.
fn key(bucket: &Value) -> Option<&str> {
    bucket["key"].as_str().filter(|k| !k.is_empty())
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
