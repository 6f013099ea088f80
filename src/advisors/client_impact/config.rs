//! `use_elk` + `elk`: where the clients' logs are and how to read them, read and
//! checked; `client_impact::build` turns it into the source.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::duration::Seconds;
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::model::Secret;

/// `elk`'s keys (see [`KeyBlock`]).
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] = &[
    KeyBlock::new("", "RawElk", RawElk::KEYS),
    KeyBlock::new("fields", "RawElkFields", RawElkFields::KEYS),
];

/// Where client logs live and how to read them (`elk`).
#[derive(Debug, Clone, PartialEq)]
pub struct ElkSettings {
    /// `elk.url`: the Elasticsearch (or OpenSearch) address, `https://host:9200`.
    pub url: String,
    /// `elk.username`, for HTTP basic authentication with `password`.
    pub username: Option<String>,
    /// `elk.password` or `elk.password_file`.
    pub password: Option<Secret>,
    /// `elk.index_pattern`: indices to search, commas allowed. Default `logstash-*`.
    pub index_pattern: String,
    /// `elk.verify_ssl`: check the server's certificate. Default true.
    pub verify_tls: bool,
    /// `elk.timeout`: the most one analysis may take, all its requests included; past
    /// it the impact is "unknown". Seconds, default 30 s (seed 000).
    pub timeout: Duration,
    /// `elk.cache_ttl`: how long an analysis is reused. Seconds, default 300 s.
    pub cache_ttl: Duration,
    /// `elk.client_logs_only`: count only lines whose `log_source` is `client`.
    /// Default true.
    pub client_logs_only: bool,
    /// `elk.headers`: extra HTTP headers sent with every request.
    pub headers: BTreeMap<String, String>,
    /// `elk.fields`: names of the log fields. Default: seed 000's log format.
    pub fields: ElkFields,
    /// `elk.error_levels`: `level` values that make a line an error (compared as given,
    /// in upper and in lower case). Default `ERROR`, `FATAL`, `CRITICAL`.
    pub error_levels: Vec<String>,
}

/// The names of the client log fields (`elk.fields.*`). A text field with a `.keyword`
/// sub-field (Elasticsearch's dynamic mapping) is fine: the keyword is used for exact
/// matches and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElkFields {
    /// Default `@timestamp`.
    pub timestamp: String,
    /// Default `level`.
    pub level: String,
    /// Default `message`.
    pub message: String,
    /// Milliseconds the Redis call took. Default `latency_ms`.
    pub latency_ms: String,
    /// The Redis instance's uid or name. Default `redis_instance`.
    pub redis_instance: String,
    /// Default `operation`.
    pub operation: String,
    /// The exception's class name. Default `exception`.
    pub exception: String,
    /// `client` on client lines (see `client_logs_only`). Default `log_source`.
    pub log_source: String,
}

impl Default for ElkFields {
    fn default() -> Self {
        Self {
            timestamp: "@timestamp".into(),
            level: "level".into(),
            message: "message".into(),
            latency_ms: "latency_ms".into(),
            redis_instance: "redis_instance".into(),
            operation: "operation".into(),
            exception: "exception".into(),
            log_source: "log_source".into(),
        }
    }
}

/// The `level` values counted as errors when `elk.error_levels` is not given.
pub fn default_error_levels() -> Vec<String> {
    ["ERROR", "FATAL", "CRITICAL"].map(String::from).to_vec()
}

/// The serde form of `elk`, as given.
#[derive(Debug, Deserialize)]
struct RawElk {
    url: Option<Raw<String>>,
    username: Option<Raw<String>>,
    password: Option<Raw<String>>,
    password_file: Option<Raw<String>>,
    index_pattern: Option<Raw<String>>,
    verify_ssl: Option<Raw<bool>>,
    timeout: Option<Raw<Seconds>>,
    cache_ttl: Option<Raw<Seconds>>,
    client_logs_only: Option<Raw<bool>>,
    headers: Option<Raw<BTreeMap<String, String>>>,
    fields: Option<Raw<RawElkFields>>,
    error_levels: Option<Raw<Vec<String>>>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// `elk.fields`: the names of the client log fields, where they differ from seed 000's.
#[derive(Debug, Deserialize)]
struct RawElkFields {
    timestamp: Option<Raw<String>>,
    level: Option<Raw<String>>,
    message: Option<Raw<String>>,
    latency_ms: Option<Raw<String>>,
    redis_instance: Option<Raw<String>>,
    operation: Option<Raw<String>>,
    exception: Option<Raw<String>>,
    log_source: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawElkFields {
    const KEYS: &'static [&'static str] = &[
        "timestamp",
        "level",
        "message",
        "latency_ms",
        "redis_instance",
        "operation",
        "exception",
        "log_source",
    ];
}

impl RawElk {
    const KEYS: &'static [&'static str] = &[
        "url",
        "username",
        "password",
        "password_file",
        "index_pattern",
        "verify_ssl",
        "timeout",
        "cache_ttl",
        "client_logs_only",
        "headers",
        "fields",
        "error_levels",
    ];
}

/// `use_elk` + `elk`. `None` when client impact is off or the block has problems.
pub(crate) fn read(cx: &mut Ctx<'_>, enabled: bool, block: Option<Value>) -> Option<ElkSettings> {
    let raw = cx.value("elk", block.map(Raw::<RawElk>::from_value));
    if enabled && raw.is_none() {
        cx.problem("elk", "is required when use_elk is true");
    }
    let raw = raw?;
    let p = "elk";
    cx.unknown(p, &raw.unknown, &[RawElk::KEYS]);
    let given = raw.url.is_some();
    let url = cx.url(&join(p, "url"), raw.url);
    if enabled && !given {
        cx.problem(&join(p, "url"), "is required when use_elk is true");
    }
    let settings = ElkSettings {
        url: url.unwrap_or_default(),
        username: cx.text(&join(p, "username"), raw.username),
        password: cx.secret(p, "password", raw.password, raw.password_file),
        index_pattern: cx
            .text(&join(p, "index_pattern"), raw.index_pattern)
            .unwrap_or_else(|| "logstash-*".into()),
        verify_tls: cx
            .value(&join(p, "verify_ssl"), raw.verify_ssl)
            .unwrap_or(true),
        timeout: cx.positive(&join(p, "timeout"), raw.timeout, Duration::from_secs(30)),
        cache_ttl: cx.positive(
            &join(p, "cache_ttl"),
            raw.cache_ttl,
            Duration::from_secs(300),
        ),
        client_logs_only: cx
            .value(&join(p, "client_logs_only"), raw.client_logs_only)
            .unwrap_or(true),
        headers: cx
            .value(&join(p, "headers"), raw.headers)
            .unwrap_or_default(),
        fields: fields(cx, raw.fields),
        error_levels: error_levels(cx, raw.error_levels),
    };
    for (name, value) in &settings.headers {
        let bad_name = name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if bad_name {
            cx.problem(&format!("{p}.headers.{name}"), "is not an HTTP header name");
        } else if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            cx.problem(
                &format!("{p}.headers.{name}"),
                "contains a control character",
            );
        }
    }
    if settings.password.is_some() && settings.username.is_none() {
        cx.problem(&join(p, "username"), "is required when elk.password is set");
    }
    enabled.then_some(settings)
}

/// `elk.fields`: each name defaults to seed 000's.
fn fields(cx: &mut Ctx<'_>, raw: Option<Raw<RawElkFields>>) -> ElkFields {
    let p = "elk.fields";
    let mut fields = ElkFields::default();
    let Some(raw) = cx.value(p, raw) else {
        return fields;
    };
    cx.unknown(p, &raw.unknown, &[RawElkFields::KEYS]);
    let given = [
        (&mut fields.timestamp, "timestamp", raw.timestamp),
        (&mut fields.level, "level", raw.level),
        (&mut fields.message, "message", raw.message),
        (&mut fields.latency_ms, "latency_ms", raw.latency_ms),
        (
            &mut fields.redis_instance,
            "redis_instance",
            raw.redis_instance,
        ),
        (&mut fields.operation, "operation", raw.operation),
        (&mut fields.exception, "exception", raw.exception),
        (&mut fields.log_source, "log_source", raw.log_source),
    ];
    for (slot, key, value) in given {
        if let Some(name) = cx.text(&join(p, key), value) {
            *slot = name.trim().to_owned();
        }
    }
    fields
}

/// `elk.error_levels`: at least one level; default ERROR, FATAL, CRITICAL.
fn error_levels(cx: &mut Ctx<'_>, raw: Option<Raw<Vec<String>>>) -> Vec<String> {
    let key = "elk.error_levels";
    match cx.value(key, raw) {
        Some(levels) if levels.iter().any(|l| l.trim().is_empty()) => {
            cx.problem(key, "an empty level is not allowed");
            default_error_levels()
        }
        Some(levels) if levels.is_empty() => {
            cx.problem(
                key,
                "an empty list is not allowed; leave it out for ERROR, FATAL, CRITICAL",
            );
            default_error_levels()
        }
        Some(levels) => levels.into_iter().map(|l| l.trim().to_owned()).collect(),
        None => default_error_levels(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{ElkFields, ElkSettings};
    use crate::config::{ConfigError, parse};

    const BASE: &str = "instances:\n\
        \x20 - {uid: cache, active_dc: east,\n\
        \x20    endpoints: {east: {host: e.example}, west: {host: w.example}}}\n";

    /// Seed 000's `elk` block, as given there, plus `extra` inside it.
    fn elk(extra: &str) -> Result<ElkSettings, Vec<String>> {
        let text = format!(
            "{BASE}use_elk: true\nelk:\n  url: https://elasticsearch.example.com:9200\n  \
             username: elastic\n  password: YOUR_ELK_PASSWORD\n  index_pattern: logstash-*\n  \
             verify_ssl: true\n  timeout: 30\n  cache_ttl: 300\n  client_logs_only: true\n  \
             headers: {{X-Custom-Header: value}}\n{extra}"
        );
        match parse(&text, "test", Path::new("."), &|_| None) {
            Ok(l) => Ok(l.config.elk.expect("elk is enabled")),
            Err(ConfigError::Invalid { problems, .. }) => {
                Err(problems.iter().map(|p| p.to_string()).collect())
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn seed_block_loads_with_seed_field_names() {
        let e = elk("").unwrap();
        assert_eq!(e.index_pattern, "logstash-*");
        assert_eq!(e.timeout, Duration::from_secs(30));
        assert_eq!(e.cache_ttl, Duration::from_secs(300));
        assert_eq!(e.password.unwrap().expose(), "YOUR_ELK_PASSWORD");
        assert_eq!(e.headers["X-Custom-Header"], "value");
        assert_eq!(e.fields, ElkFields::default());
        assert_eq!(e.fields.timestamp, "@timestamp");
        assert_eq!(e.error_levels, ["ERROR", "FATAL", "CRITICAL"]);
    }

    #[test]
    fn fields_and_levels_can_be_renamed() {
        let e = elk("  fields: {timestamp: ts, redis_instance: redis.name}\n  error_levels: [error, SEVERE]\n")
            .unwrap();
        assert_eq!(e.fields.timestamp, "ts");
        assert_eq!(e.fields.redis_instance, "redis.name");
        assert_eq!(e.fields.message, "message");
        assert_eq!(e.error_levels, ["error", "SEVERE"]);
    }

    #[test]
    fn misspelled_and_empty_keys_are_refused() {
        let problems =
            elk("  fields: {exeption: exc, level: ''}\n  error_levels: []\n").unwrap_err();
        let text = problems.join("\n");
        assert!(
            text.contains("elk.fields.exeption: unknown key (did you mean `exception`?)"),
            "{text}"
        );
        assert!(
            text.contains("elk.fields.level: must not be empty"),
            "{text}"
        );
        assert!(text.contains("elk.error_levels: an empty list"), "{text}");
    }

    #[test]
    fn url_needs_a_scheme_and_headers_need_names() {
        let text = format!(
            "{BASE}use_elk: true\nelk: {{url: 'elastic:9200', headers: {{'bad header': x}}}}\n"
        );
        let Err(ConfigError::Invalid { problems, .. }) =
            parse(&text, "test", Path::new("."), &|_| None)
        else {
            panic!("expected problems");
        };
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let text = text.join("\n");
        assert!(
            text.contains("elk.url: \"elastic:9200\" is not an http"),
            "{text}"
        );
        assert!(
            text.contains("elk.headers.bad header: is not an HTTP header name"),
            "{text}"
        );
        let text = format!(
            "{BASE}use_elk: true\nelk: {{url: 'https://elastic:pw@es.example:9200', password: pw}}\n"
        );
        let Err(ConfigError::Invalid { problems, .. }) =
            parse(&text, "test", Path::new("."), &|_| None)
        else {
            panic!("expected problems");
        };
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let text = text.join("\n");
        assert!(
            text.contains("elk.url: \"https://***@es.example:9200\" must not contain credentials"),
            "{text}"
        );
        assert!(!text.contains("pw@"), "{text}");
        assert!(
            text.contains("elk.username: is required when elk.password is set"),
            "{text}"
        );
    }
}
