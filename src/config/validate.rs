//! Stage two: checks the raw configuration and builds the typed one. Every problem is
//! recorded with its key and value; nothing stops at the first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use super::duration::show;
use super::raw::*;
use super::*;
use crate::model::{Endpoint, EndpointKey, InstanceId, Tls};

struct Ctx<'a> {
    base_dir: &'a Path,
    problems: &'a mut Vec<Problem>,
    warnings: &'a mut Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().replace('\n', " "))
            .unwrap_or_else(|_| "?".into()),
    }
}

impl Ctx<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    fn value<T>(&mut self, key: &str, raw: Option<Raw<T>>) -> Option<T> {
        match raw? {
            Raw::Valid(v) => Some(v),
            Raw::Invalid { given, reason } => {
                // One problem per key: an unset `${VAR}` was already reported.
                if self.problems.iter().any(|p| p.key == key) {
                    return None;
                }
                let reason = reason.split(" at line").next().unwrap_or(&reason);
                let reason = reason
                    .replace("expected i64", "expected a whole number")
                    .replace("expected f64", "expected a number")
                    .replace("invalid type: ", "");
                self.problem(key, format!("{} is not valid: {reason}", shown(&given)));
                None
            }
        }
    }

    fn required<T>(&mut self, key: &str, raw: Option<Raw<T>>) -> Option<T> {
        if raw.is_none() {
            self.problem(key, "is required");
        }
        self.value(key, raw)
    }

    fn text(&mut self, key: &str, raw: Option<Raw<String>>) -> Option<String> {
        let v = self.value(key, raw)?;
        if v.trim().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        Some(v)
    }

    fn unknown(&mut self, path: &str, unknown: &Unknown, known: &[&[&str]]) {
        for key in unknown.keys() {
            let hint = known
                .iter()
                .flat_map(|k| k.iter())
                .filter(|k| edit_distance(k, key) <= 2)
                .min_by_key(|k| edit_distance(k, key))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            self.problem(&join(path, key), format!("unknown key{hint}"));
        }
    }

    fn port(&mut self, key: &str, raw: Option<Raw<i64>>) -> Option<u16> {
        let port = self.value(key, raw)?;
        match u16::try_from(port) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.problem(key, format!("{port} is not a TCP port, use 1 to 65535"));
                None
            }
        }
    }

    fn fraction(&mut self, key: &str, raw: Option<Raw<f64>>, default: f64) -> f64 {
        match self.value(key, raw) {
            Some(v) if (0.0..=1.0).contains(&v) => v,
            Some(v) => {
                self.problem(key, format!("{v} is outside 0 to 1"));
                default
            }
            None => default,
        }
    }

    fn count(&mut self, key: &str, raw: Option<Raw<i64>>, default: u32) -> u32 {
        match self.value(key, raw) {
            Some(v) if v >= 1 => u32::try_from(v).unwrap_or(u32::MAX),
            Some(v) => {
                self.problem(key, format!("{v} is not allowed, use 1 or more"));
                default
            }
            None => default,
        }
    }

    fn positive(
        &mut self,
        key: &str,
        raw: Option<Raw<duration::Seconds>>,
        default: Duration,
    ) -> Duration {
        match self.value(key, raw) {
            Some(duration::Seconds(d)) if d >= Duration::from_millis(1) => d,
            Some(duration::Seconds(d)) => {
                self.problem(key, format!("{} is not allowed, use 1 ms or more", show(d)));
                default
            }
            None => default,
        }
    }

    /// A secret given inline (`key`) or in a file (`key_file`), never both.
    fn secret(
        &mut self,
        path: &str,
        key: &str,
        inline: Option<Raw<String>>,
        file: Option<Raw<String>>,
    ) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let inline = match inline {
            None => None,
            Some(Raw::Valid(v)) => Some(v),
            Some(Raw::Invalid { .. }) => {
                self.problem(&join(path, key), "must be a string (value hidden)");
                None
            }
        };
        let file = self.value(&join(path, &file_key), file);
        // `${VAR:-}` with VAR unset gives "": no secret, not an empty one.
        let inline = inline.filter(|v| !v.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    &join(path, key),
                    format!("give {key} or {file_key}, not both"),
                );
                None
            }
            (Some(v), None) => Some(Secret::new(v)),
            (None, Some(file)) => self.read_file(&join(path, &file_key), &file).map(|bytes| {
                let text = String::from_utf8_lossy(&bytes);
                Secret::new(text.trim_end_matches(['\r', '\n']))
            }),
            (None, None) => None,
        }
    }

    fn read_file(&mut self, key: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.base_dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.problem(
                    key,
                    format!("cannot read {:?}: {e}", path.display().to_string()),
                );
                None
            }
        }
    }
}

/// Checks `raw`; returns the typed configuration when it could be built. The caller
/// treats any recorded problem as fatal.
pub fn validate(
    raw: RawConfig,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<Config> {
    let mut cx = Ctx {
        base_dir,
        problems,
        warnings,
    };
    cx.unknown("", &raw.unknown, &[RawConfig::KEYS]);

    if raw.alert_endpoints.is_some() {
        cx.warnings.push(
            "alert_endpoints: ignored; Alertmanager sends Slack, e-mail and PagerDuty \
             notifications (see alertmanager/alertmanager.yml)"
                .into(),
        );
    }
    if raw.decision_interval.is_some() {
        cx.warnings.push(
            "decision_interval: ignored; evaluations start when Alertmanager delivers a \
             failover-candidate alert (see prometheus/rules/)"
                .into(),
        );
    }

    let collector = collector_settings(
        &mut cx,
        raw.monitoring_interval,
        raw.timeouts,
        raw.reconnect_max_backoff,
    );
    let datacenters = datacenters(&mut cx, raw.datacenters);
    let instances = instances(&mut cx, raw.instances, &datacenters);
    let datacenters = datacenters.unwrap_or_else(|| implied_datacenters(&instances));

    let failover_provider = cx.value("failover_provider", raw.failover_provider);
    if let Some(p) = failover_provider.filter(|p| p != "dns") {
        cx.problem(
            "failover_provider",
            format!("{p:?} is not supported; the agent moves traffic with DNS, use \"dns\""),
        );
    }
    let failover = FailoverSettings {
        auto: cx
            .value("auto_failover", raw.auto_failover)
            .unwrap_or(false),
        confidence_threshold: cx.fraction(
            "failover_confidence_threshold",
            raw.failover_confidence_threshold,
            default_failover_confidence_threshold(),
        ),
        consecutive_threshold: cx.count(
            "failover_consecutive_threshold",
            raw.failover_consecutive_threshold,
            default_failover_consecutive_threshold(),
        ),
        ai_confidence: cx.fraction(
            "ai_failover_confidence",
            raw.ai_failover_confidence,
            default_ai_failover_confidence(),
        ),
        ai_consecutive_recommendations: cx.count(
            "ai_consecutive_recommendations",
            raw.ai_consecutive_recommendations,
            default_ai_consecutive_recommendations(),
        ),
    };
    let anomaly_threshold = cx.fraction(
        "anomaly_threshold",
        raw.anomaly_threshold,
        default_anomaly_threshold(),
    );
    let model_path = cx
        .text("model_path", raw.model_path)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./models"));

    let use_ai = cx
        .value("use_azure_openai", raw.use_azure_openai)
        .unwrap_or(false);
    let azure_openai = azure_openai(&mut cx, use_ai, raw.azure_openai);
    let use_elk = cx.value("use_elk", raw.use_elk).unwrap_or(false);
    let elk = elk(&mut cx, use_elk, raw.elk);
    let dns = dns(&mut cx, raw.dns_provider, raw.dns_config, &instances);
    let api = api(&mut cx, raw.api);

    Some(Config {
        instances,
        datacenters,
        collector,
        model_path,
        anomaly_threshold,
        failover,
        azure_openai,
        elk,
        dns,
        api,
    })
}

fn collector_settings(
    cx: &mut Ctx<'_>,
    interval: Option<Raw<duration::Seconds>>,
    timeouts: Option<Raw<RawTimeouts>>,
    reconnect_max_backoff: Option<Raw<duration::Seconds>>,
) -> CollectorSettings {
    let mut settings = CollectorSettings::default();
    match cx.value("monitoring_interval", interval) {
        Some(duration::Seconds(d)) if d >= Duration::from_secs(1) => settings.interval = d,
        Some(duration::Seconds(d)) => cx.problem(
            "monitoring_interval",
            format!("{} is not allowed, use 1 s or more", show(d)),
        ),
        None => {}
    }
    if let Some(t) = cx.value("timeouts", timeouts) {
        cx.unknown("timeouts", &t.unknown, &[RawTimeouts::KEYS]);
        settings.connect_timeout =
            cx.positive("timeouts.connect", t.connect, settings.connect_timeout);
        settings.command_timeout =
            cx.positive("timeouts.command", t.command, settings.command_timeout);
    }
    settings.reconnect_max_backoff = cx.positive(
        "reconnect_max_backoff",
        reconnect_max_backoff,
        settings.reconnect_max_backoff,
    );
    // A hung server accepts the connection and never answers: a round then takes a
    // connect plus a command timeout.
    let round = settings.connect_timeout + settings.command_timeout;
    if round > settings.interval {
        cx.warnings.push(format!(
            "timeouts: a round against a hung endpoint takes up to {} (connect + command), \
             longer than monitoring_interval {}; that endpoint will be read less often",
            show(round),
            show(settings.interval)
        ));
    }
    settings
}

fn datacenters(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<BTreeMap<String, RawDatacenter>>>,
) -> Option<BTreeMap<DatacenterId, Datacenter>> {
    let raw = cx.value("datacenters", raw)?;
    let mut out = BTreeMap::new();
    let mut warned_api = false;
    for (key, dc) in raw {
        let path = format!("datacenters.{key}");
        cx.unknown(&path, &dc.unknown, &[RawDatacenter::KEYS]);
        let uses_api = dc.api_url.is_some()
            || dc.api_user.is_some()
            || dc.api_password.is_some()
            || dc.api_password_file.is_some();
        if uses_api && !warned_api {
            warned_api = true;
            cx.warnings.push(format!(
                "{path}.api_url: ignored; the agent reads Redis itself (PING, INFO) and \
                 does not use the Redis Enterprise REST API"
            ));
        }
        let name = cx
            .text(&join(&path, "name"), dc.name)
            .unwrap_or_else(|| key.clone());
        let id = DatacenterId::new(&key);
        out.insert(id.clone(), Datacenter { id, name });
    }
    if out.is_empty() {
        cx.problem("datacenters", "must name at least one datacenter");
    }
    Some(out)
}

fn implied_datacenters(instances: &[Instance]) -> BTreeMap<DatacenterId, Datacenter> {
    instances
        .iter()
        .flat_map(|i| i.endpoints.keys())
        .map(|id| {
            let dc = Datacenter {
                id: id.clone(),
                name: id.to_string(),
            };
            (id.clone(), dc)
        })
        .collect()
}

/// Credentials and TLS settings of one level (instance or endpoint).
#[derive(Default, Clone)]
struct Auth {
    username: Option<String>,
    password: Option<Secret>,
    tls: Option<Option<Tls>>,
}

fn auth(cx: &mut Ctx<'_>, path: &str, raw: RawAuth) -> Auth {
    let username = cx.text(&join(path, "username"), raw.username);
    let password = cx.secret(path, "password", raw.password, raw.password_file);
    let tls = cx
        .value(&join(path, "tls"), raw.tls)
        .map(|t| tls(cx, &join(path, "tls"), t));
    Auth {
        username,
        password,
        tls,
    }
}

fn tls(cx: &mut Ctx<'_>, path: &str, raw: RawTls) -> Option<Tls> {
    let settings = match raw {
        RawTls::Enabled(false) => return None,
        RawTls::Enabled(true) => return Some(Tls::default()),
        RawTls::Settings(s) => s,
    };
    cx.unknown(path, &settings.unknown, &[RawTlsSettings::KEYS]);
    if !cx
        .value(&join(path, "enabled"), settings.enabled)
        .unwrap_or(true)
    {
        return None;
    }
    let read = |cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<String>>| {
        let key = join(path, key);
        let file = cx.text(&key, raw)?;
        cx.read_file(&key, &file)
    };
    let ca_cert = read(cx, "ca_file", settings.ca_file);
    let client_cert = read(cx, "cert_file", settings.cert_file);
    let client_key = read(cx, "key_file", settings.key_file)
        .map(|k| Secret::new(String::from_utf8_lossy(&k).into_owned()));
    if client_cert.is_some() != client_key.is_some() {
        cx.problem(
            path,
            "cert_file and key_file go together: give both or neither",
        );
    }
    let insecure_skip_verify = cx
        .value(
            &join(path, "insecure_skip_verify"),
            settings.insecure_skip_verify,
        )
        .unwrap_or(false);
    Some(Tls {
        ca_cert,
        client_cert,
        client_key,
        insecure_skip_verify,
    })
}

fn instances(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<Vec<RawInstance>>>,
    datacenters: &Option<BTreeMap<DatacenterId, Datacenter>>,
) -> Vec<Instance> {
    let Some(raw) = cx.required("instances", raw) else {
        return Vec::new();
    };
    if raw.is_empty() {
        cx.problem("instances", "must list at least one instance");
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, inst) in raw.into_iter().enumerate() {
        let path = format!("instances[{i}]");
        cx.unknown(&path, &inst.unknown, &[RawInstance::KEYS, RawAuth::KEYS]);
        let uid = cx.required(&join(&path, "uid"), inst.uid);
        let uid = match uid {
            Some(uid) if uid.trim().is_empty() => {
                cx.problem(&join(&path, "uid"), "must not be empty");
                None
            }
            Some(uid) if !seen.insert(uid.clone()) => {
                cx.problem(
                    &join(&path, "uid"),
                    format!("{uid:?} is used by another instance"),
                );
                None
            }
            other => other,
        };
        let name = cx.text(&join(&path, "name"), inst.name);
        let shared = auth(cx, &path, inst.auth);
        let endpoints_path = join(&path, "endpoints");
        let raw_endpoints = cx
            .required(&endpoints_path, inst.endpoints)
            .unwrap_or_default();
        if raw_endpoints.is_empty() {
            cx.problem(
                &endpoints_path,
                "must list at least one datacenter's endpoint",
            );
        }
        // Datacenters as written, valid or not, so one bad endpoint does not also
        // make active_dc look wrong.
        let named: BTreeSet<DatacenterId> = raw_endpoints
            .keys()
            .map(|dc| DatacenterId::new(dc))
            .collect();
        let mut endpoints = BTreeMap::new();
        for (dc, ep) in raw_endpoints {
            let ep_path = join(&endpoints_path, &dc);
            if let Some(known) = datacenters {
                if !known.contains_key(&DatacenterId::new(&dc)) {
                    let names: Vec<_> = known.keys().map(|k| k.to_string()).collect();
                    cx.problem(
                        &ep_path,
                        format!(
                            "datacenter {dc:?} is not under datacenters ({})",
                            names.join(", ")
                        ),
                    );
                }
            }
            if let Some(ep) = endpoint(cx, &ep_path, ep, uid.as_deref().unwrap_or(""), &dc, &shared)
            {
                endpoints.insert(DatacenterId::new(&dc), ep);
            }
        }
        let active_path = join(&path, "active_dc");
        let active_dc = match cx.value(&active_path, inst.active_dc) {
            Some(dc) if named.contains(&DatacenterId::new(&dc)) => Some(DatacenterId::new(&dc)),
            Some(dc) => {
                cx.problem(
                    &active_path,
                    format!("{dc:?} is not one of this instance's endpoints"),
                );
                None
            }
            None if named.len() <= 1 => named.iter().next().cloned(),
            None => {
                cx.problem(
                    &active_path,
                    "is required when an instance has several endpoints",
                );
                None
            }
        };
        if let (Some(uid), Some(active_dc)) = (uid, active_dc) {
            out.push(Instance {
                name: name.unwrap_or_else(|| uid.clone()),
                uid: InstanceId::new(&uid),
                endpoints,
                active_dc,
            });
        }
    }
    out
}

fn endpoint(
    cx: &mut Ctx<'_>,
    path: &str,
    raw: RawEndpoint,
    uid: &str,
    dc: &str,
    shared: &Auth,
) -> Option<Endpoint> {
    cx.unknown(path, &raw.unknown, &[RawEndpoint::KEYS, RawAuth::KEYS]);
    let host = cx.required(&join(path, "host"), raw.host);
    let host = host.filter(|h| {
        let ok = !h.trim().is_empty() && !h.contains(['/', ' ']);
        if !ok {
            cx.problem(
                &join(path, "host"),
                format!("{h:?} is not a host name or address"),
            );
        }
        ok
    });
    let port = match raw.port {
        None => Some(6379),
        some => cx.port(&join(path, "port"), some),
    };
    let own = auth(cx, path, raw.auth);
    Some(Endpoint {
        key: EndpointKey::new(uid, dc),
        host: host?,
        port: port?,
        username: own.username.or_else(|| shared.username.clone()),
        password: own.password.or_else(|| shared.password.clone()),
        tls: own.tls.or_else(|| shared.tls.clone()).flatten(),
    })
}

fn azure_openai(
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

fn elk(cx: &mut Ctx<'_>, enabled: bool, raw: Option<Raw<RawElk>>) -> Option<ElkSettings> {
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

fn dns(
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
        if let (Some(instance_name), Some(name)) = (instance_name, name) {
            records.push(DnsRecord {
                instance_name,
                name,
                record_type,
                ttl,
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

fn api(cx: &mut Ctx<'_>, raw: Option<Raw<RawApi>>) -> ApiSettings {
    let mut settings = ApiSettings {
        enabled: true,
        host: "0.0.0.0".into(),
        port: default_api_port(),
        api_key: None,
    };
    let Some(raw) = cx.value("api", raw) else {
        return settings;
    };
    cx.unknown("api", &raw.unknown, &[RawApi::KEYS]);
    settings.enabled = cx.value("api.enabled", raw.enabled).unwrap_or(true);
    if let Some(host) = cx.text("api.host", raw.host) {
        if host.parse::<IpAddr>().is_ok() || host == "localhost" {
            settings.host = host;
        } else {
            cx.problem(
                "api.host",
                format!("{host:?} is not an IP address to listen on"),
            );
        }
    }
    if let Some(port) = cx.port("api.port", raw.port) {
        settings.port = port;
    }
    settings.api_key = cx.secret("api", "api_key", raw.api_key, raw.api_key_file);
    settings
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}
