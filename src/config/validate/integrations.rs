//! The integrations the decision engine uses: Azure OpenAI, Elasticsearch, DNS.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::ctx::{Ctx, join};
use crate::config::duration::Seconds;
use crate::config::raw::{Raw, RawAzureOpenAi, RawDnsConfig, RawDnsRecord, RawElk, RawElkFields};
use crate::config::{
    AiService, AzureOpenAiSettings, DEFAULT_AZURE_API_VERSION, DnsRecord, DnsSettings, ElkFields,
    ElkSettings, default_ai_max_hold, default_ai_timeout, default_error_levels,
};
use crate::model::{DatacenterId, Instance};

pub(super) fn azure_openai(
    cx: &mut Ctx<'_>,
    enabled: bool,
    raw: Option<Raw<RawAzureOpenAi>>,
    max_hold: Option<Raw<Seconds>>,
) -> Option<AzureOpenAiSettings> {
    let max_hold = cx.positive("ai_max_hold", max_hold, default_ai_max_hold());
    let raw = cx.value("azure_openai", raw);
    if enabled && raw.is_none() {
        cx.problem("azure_openai", "is required when use_azure_openai is true");
    }
    let raw = raw?;
    let p = "azure_openai";
    cx.unknown(p, &raw.unknown, &[RawAzureOpenAi::KEYS]);
    // Which one was given decides the service, even when its URL is refused.
    let both = raw.endpoint.is_some() && raw.base_url.is_some();
    let openai_compatible = raw.base_url.is_some();
    let endpoint_given = raw.endpoint.is_some();
    let endpoint = cx.url(&join(p, "endpoint"), raw.endpoint);
    let base_url = cx.url(&join(p, "base_url"), raw.base_url);
    let api_key = cx.secret(p, "api_key", raw.api_key, raw.api_key_file);
    let api_version = cx.text(&join(p, "api_version"), raw.api_version);
    let service = match (endpoint, base_url) {
        _ if both => {
            cx.problem(
                p,
                "give endpoint (Azure OpenAI) or base_url (an OpenAI-compatible server), not both",
            );
            None
        }
        (_, base_url) if openai_compatible => {
            if api_version.is_some() {
                cx.warnings.push(
                    "azure_openai.api_version: ignored with base_url (an OpenAI-compatible \
                     server has no API versions)"
                        .into(),
                );
            }
            base_url.map(|base_url| AiService::OpenAiCompatible { base_url, api_key })
        }
        (endpoint, _) => {
            let required = "is required when use_azure_openai is true (or set \
                            AZURE_OPENAI_ENDPOINT / AZURE_OPENAI_API_KEY; for an \
                            OpenAI-compatible server give base_url)";
            if enabled && !endpoint_given {
                cx.problem(&join(p, "endpoint"), required);
            }
            if enabled && api_key.is_none() {
                cx.problem(&join(p, "api_key"), required);
            }
            let api_version = api_version.unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.into());
            // Structured outputs (response_format json_schema) came with
            // 2024-08-01-preview; versions are dates, so they compare as text.
            if api_version.get(..10).is_some_and(|d| d < "2024-08-01") {
                cx.warnings.push(format!(
                    "azure_openai.api_version: {api_version:?} predates structured outputs \
                     (2024-08-01-preview); Azure will refuse the answer schema and every \
                     consultation will be discarded; use {DEFAULT_AZURE_API_VERSION} or later"
                ));
            }
            endpoint
                .zip(api_key)
                .map(|(endpoint, api_key)| AiService::Azure {
                    endpoint,
                    api_key,
                    api_version,
                })
        }
    };
    let temperature = cx
        .value(&join(p, "temperature"), raw.temperature)
        .unwrap_or(0.2);
    if !(0.0..=2.0).contains(&temperature) {
        cx.problem(
            &join(p, "temperature"),
            format!("{temperature} is outside 0 to 2"),
        );
    }
    let model = cx
        .text(&join(p, "model"), raw.model)
        .unwrap_or_else(|| "gpt-4".into());
    let max_tokens = cx.count(&join(p, "max_tokens"), raw.max_tokens, 1000);
    let timeout = cx.positive(&join(p, "timeout"), raw.timeout, default_ai_timeout());
    let settings = AzureOpenAiSettings {
        service: service?,
        model,
        max_tokens,
        temperature,
        timeout,
        max_hold,
    };
    enabled.then_some(settings)
}

pub(super) fn elk(
    cx: &mut Ctx<'_>,
    enabled: bool,
    raw: Option<Raw<RawElk>>,
) -> Option<ElkSettings> {
    let raw = cx.value("elk", raw);
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
        fields: elk_fields(cx, raw.fields),
        error_levels: elk_error_levels(cx, raw.error_levels),
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
fn elk_fields(cx: &mut Ctx<'_>, raw: Option<Raw<RawElkFields>>) -> ElkFields {
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
fn elk_error_levels(cx: &mut Ctx<'_>, raw: Option<Raw<Vec<String>>>) -> Vec<String> {
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

pub(super) fn dns(
    cx: &mut Ctx<'_>,
    provider: Option<Raw<String>>,
    raw: Option<Raw<RawDnsConfig>>,
    instances: &[Instance],
) -> Option<DnsSettings> {
    let provider = cx.value("dns_provider", provider);
    if let Some(p) = provider
        .as_deref()
        .filter(|p| !matches!(*p, "route53" | "dry-run"))
    {
        cx.problem(
            "dns_provider",
            format!("{p:?} is not supported; use \"route53\" or \"dry-run\""),
        );
    }
    let raw = cx.value("dns_config", raw);
    if provider.is_some() && raw.is_none() {
        cx.problem("dns_config", "is required when dns_provider is set");
    }
    let raw = raw?;
    let p = "dns_config";
    cx.unknown(p, &raw.unknown, &[RawDnsConfig::KEYS]);
    let zone_id = cx
        .required(&join(p, "zone_id"), raw.zone_id)
        .unwrap_or_default();
    let region = cx
        .text(&join(p, "aws_region"), raw.aws_region)
        .unwrap_or_else(|| "us-east-1".into());
    let access_key = cx.secret(
        p,
        "aws_access_key",
        raw.aws_access_key,
        raw.aws_access_key_file,
    );
    let secret_key = cx.secret(
        p,
        "aws_secret_key",
        raw.aws_secret_key,
        raw.aws_secret_key_file,
    );
    let endpoint_url = cx.url(&join(p, "endpoint_url"), raw.endpoint_url);
    let names: BTreeSet<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    let mut records = Vec::new();
    let raw_records = cx
        .required(&join(p, "records"), raw.records)
        .unwrap_or_default();
    for (i, r) in raw_records.into_iter().enumerate() {
        let rp = format!("{p}.records[{i}]");
        cx.unknown(&rp, &r.unknown, &[RawDnsRecord::KEYS]);
        let instance_name = cx.required(&join(&rp, "instance_name"), r.instance_name);
        if let Some(n) = instance_name.as_deref().filter(|n| !names.contains(n)) {
            cx.problem(
                &join(&rp, "instance_name"),
                format!("{n:?} is not the name of an instance"),
            );
        }
        let name = cx.required(&join(&rp, "name"), r.name);
        let record_type = cx
            .value(&join(&rp, "type"), r.record_type)
            .unwrap_or_else(|| "CNAME".into());
        if !matches!(record_type.as_str(), "CNAME" | "A" | "AAAA") {
            cx.problem(
                &join(&rp, "type"),
                format!("{record_type:?} is not supported; use CNAME, A or AAAA"),
            );
        }
        let ttl = cx.count(&join(&rp, "ttl"), r.ttl, 60);
        let instance = instance_name
            .as_deref()
            .and_then(|n| instances.iter().find(|i| i.name == n));
        let mut values = BTreeMap::new();
        for (dc, value) in cx.value(&join(&rp, "values"), r.values).unwrap_or_default() {
            let id = DatacenterId::new(&dc);
            if instance.is_some_and(|i| !i.endpoints.contains_key(&id)) {
                cx.problem(
                    &format!("{rp}.values.{dc}"),
                    format!("the instance has no endpoint in datacenter {dc:?}"),
                );
            }
            if value.trim().is_empty() || value.contains(char::is_whitespace) {
                cx.problem(
                    &format!("{rp}.values.{dc}"),
                    format!("{value:?} is not a record value"),
                );
            }
            values.insert(id, value);
        }
        if let (Some(instance_name), Some(name)) = (instance_name, name) {
            records.push(DnsRecord {
                instance_name,
                name,
                record_type,
                ttl,
                values,
            });
        }
    }
    Some(DnsSettings {
        provider: provider.unwrap_or_else(|| "route53".into()),
        zone_id,
        region,
        access_key,
        secret_key,
        endpoint_url,
        records,
    })
}

#[cfg(test)]
mod ai_tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{AiService, AzureOpenAiSettings, ConfigError, Loaded, parse};

    const INSTANCES: &str =
        "instances:\n  - uid: cache\n    endpoints:\n      east: {host: 127.0.0.1, port: 6379}\n";

    fn load(extra: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let text = format!("{INSTANCES}{extra}");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&text, "test", Path::new("."), &move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn ai(extra: &str, env: &[(&str, &str)]) -> AzureOpenAiSettings {
        match load(extra, env) {
            Ok(l) => l.config.azure_openai.expect("advice is configured"),
            Err(e) => panic!("{e}"),
        }
    }

    fn problems(extra: &str, env: &[(&str, &str)]) -> String {
        match load(extra, env) {
            Ok(_) => panic!("{extra} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_seed_block_loads_with_a_warning_about_its_api_version() {
        let block = "use_azure_openai: true\nazure_openai:\n  api_key: ${KEY}\n  \
                     endpoint: https://x.openai.azure.com/\n  api_version: 2023-05-15\n  \
                     model: gpt-4\n  max_tokens: 1000\n  temperature: 0.2\n  timeout: 30\n";
        let loaded = load(block, &[("KEY", "k")]).unwrap();
        let s = loaded.config.azure_openai.unwrap();
        assert_eq!(
            s.service,
            AiService::Azure {
                endpoint: "https://x.openai.azure.com/".into(),
                api_key: crate::model::Secret::new("k"),
                api_version: "2023-05-15".into(),
            }
        );
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.max_hold, Duration::from_secs(120));
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("predates structured outputs")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn endpoint_and_key_come_from_the_environment_when_absent() {
        let s = ai(
            "use_azure_openai: true\n",
            &[
                ("AZURE_OPENAI_ENDPOINT", "https://env.openai.azure.com"),
                ("AZURE_OPENAI_API_KEY", "from-env"),
            ],
        );
        match s.service {
            AiService::Azure {
                endpoint,
                api_key,
                api_version,
            } => {
                assert_eq!(endpoint, "https://env.openai.azure.com");
                assert_eq!(api_key.expose(), "from-env");
                assert_eq!(api_version, "2024-10-21");
            }
            other => panic!("{other:?}"),
        }
        let said = problems("use_azure_openai: true\n", &[]);
        assert!(
            said.contains("azure_openai.endpoint: is required"),
            "{said}"
        );
        assert!(said.contains("AZURE_OPENAI_ENDPOINT"), "{said}");
    }

    #[test]
    fn base_url_selects_an_openai_compatible_server() {
        let s = ai(
            "use_azure_openai: true\nai_max_hold: 90\nazure_openai:\n  \
             base_url: http://127.0.0.1:8000/v1\n  model: llama\n",
            &[("AZURE_OPENAI_API_KEY", "not-for-this-server")],
        );
        assert_eq!(
            s.service,
            AiService::OpenAiCompatible {
                base_url: "http://127.0.0.1:8000/v1".into(),
                api_key: None
            }
        );
        assert_eq!(s.model, "llama");
        assert_eq!(s.max_hold, Duration::from_secs(90));
    }

    #[test]
    fn bad_values_are_named() {
        let said = problems(
            "use_azure_openai: true\nai_max_hold: 0\nazure_openai:\n  endpoint: x\n  \
             base_url: ftp://y\n  temperature: 3\n  api_key: k\n  bse_url: z\n",
            &[],
        );
        for expected in [
            "ai_max_hold: 0 s is not allowed",
            "azure_openai.endpoint: \"x\" is not an http:// or https:// URL",
            "azure_openai.base_url: \"ftp://y\" is not an http:// or https:// URL",
            "azure_openai: give endpoint (Azure OpenAI) or base_url",
            "azure_openai.temperature: 3 is outside 0 to 2",
            "azure_openai.bse_url: unknown key (did you mean `base_url`?)",
        ] {
            assert!(said.contains(expected), "{expected} not in {said}");
        }
    }

    #[test]
    fn without_use_azure_openai_nothing_is_built() {
        let loaded = load("azure_openai:\n  base_url: http://127.0.0.1:1/v1\n", &[]).unwrap();
        assert!(loaded.config.azure_openai.is_none());
    }
}

#[cfg(test)]
mod elk_tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{ConfigError, ElkFields, ElkSettings, parse};

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
