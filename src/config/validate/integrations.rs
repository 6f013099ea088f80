//! The integrations the decision engine uses: Azure OpenAI, Elasticsearch, DNS.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::ctx::{Ctx, join};
use crate::config::raw::{Raw, RawAzureOpenAi, RawDnsConfig, RawDnsRecord, RawElk};
use crate::config::{AzureOpenAiSettings, DnsRecord, DnsSettings, ElkSettings};
use crate::model::{DatacenterId, Instance, Secret};

pub(super) fn azure_openai(
    cx: &mut Ctx<'_>,
    enabled: bool,
    raw: Option<Raw<RawAzureOpenAi>>,
) -> Option<AzureOpenAiSettings> {
    let raw = cx.value("azure_openai", raw);
    if enabled && raw.is_none() {
        cx.problem("azure_openai", "is required when use_azure_openai is true");
    }
    let raw = raw?;
    let p = "azure_openai";
    cx.unknown(p, &raw.unknown, &[RawAzureOpenAi::KEYS]);
    let endpoint = cx.text(&join(p, "endpoint"), raw.endpoint);
    let api_key = cx.secret(p, "api_key", raw.api_key, raw.api_key_file);
    let settings = AzureOpenAiSettings {
        endpoint: endpoint.unwrap_or_default(),
        api_key: api_key.unwrap_or_else(|| Secret::new("")),
        api_version: cx
            .text(&join(p, "api_version"), raw.api_version)
            .unwrap_or_else(|| "2024-02-01".into()),
        model: cx
            .text(&join(p, "model"), raw.model)
            .unwrap_or_else(|| "gpt-4".into()),
        max_tokens: cx.count(&join(p, "max_tokens"), raw.max_tokens, 1000),
        temperature: cx
            .value(&join(p, "temperature"), raw.temperature)
            .unwrap_or(0.2),
        timeout: cx.positive(&join(p, "timeout"), raw.timeout, Duration::from_secs(30)),
    };
    if enabled {
        if settings.endpoint.is_empty() {
            cx.problem(
                &join(p, "endpoint"),
                "is required when use_azure_openai is true",
            );
        }
        if settings.api_key.expose().is_empty() {
            cx.problem(
                &join(p, "api_key"),
                "is required when use_azure_openai is true",
            );
        }
    }
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
    let url = cx.text(&join(p, "url"), raw.url);
    if enabled && url.is_none() {
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
    };
    enabled.then_some(settings)
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
    let endpoint_url = cx.text(&join(p, "endpoint_url"), raw.endpoint_url);
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
