//! Stage two: checks the raw configuration and builds the typed one. Every problem is
//! recorded with its key and value; nothing stops at the first.
//!
//! Layout: `config_kit::ctx` reads raw values with the shared checks, `instances` covers instances
//! and endpoints, `decision` the failover policy, hooks and webhook, `limits` the
//! bounds; the top-level keys are here, and so is the dispatch: each integration's
//! block goes to the integration's own `config::read`.

mod data_loss;
mod decision;
mod instances;
mod limits;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use super::raw::{RawApi, RawConfig, RawDatacenter, RawTimeouts};
use super::*;
use crate::actuators::{alertmanager, dns};
use crate::advisors::{ai, client_impact};
use crate::config_kit::ctx::{Ctx, Problem, join};
use crate::config_kit::duration::{self, show};
use crate::config_kit::raw::Raw;
use crate::config_kit::secrets;
use crate::coordination;
use crate::enterprise;

pub fn validate(
    raw: RawConfig,
    base_dir: &Path,
    from_env: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<Config> {
    let mut cx = Ctx {
        base_dir,
        problems,
        warnings,
        from_env,
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
    let mut enterprise_parts = enterprise::config::RawParts {
        block: raw.enterprise,
        ..Default::default()
    };
    let datacenters = datacenters(&mut cx, raw.datacenters, &mut enterprise_parts.clusters);
    let (mut promote, mut data) = (BTreeSet::new(), BTreeMap::new());
    let instances = instances::instances(
        &mut cx,
        raw.instances,
        &datacenters,
        &mut promote,
        &mut enterprise_parts.databases,
        &mut data,
    );
    let data_loss = data_loss::settings(&mut cx, raw.max_data_loss, data);
    let datacenters = datacenters.unwrap_or_else(|| implied_datacenters(&instances));
    let enterprise = enterprise::config::read(&mut cx, enterprise_parts, &datacenters, &instances);

    let failover = decision::failover(
        &mut cx,
        decision::RawFailover {
            provider: raw.failover_provider,
            auto: raw.auto_failover,
            confidence_threshold: raw.failover_confidence_threshold,
            consecutive_threshold: raw.failover_consecutive_threshold,
            ai_confidence: raw.ai_failover_confidence,
            ai_consecutive_recommendations: raw.ai_consecutive_recommendations,
            confirm_interval: raw.confirm_interval,
            cooldown: raw.failover_cooldown,
            failback_stable_for: raw.failback_stable_for,
            auto_failback: raw.auto_failback,
            label: raw.failover_label,
            sentinel_wait: raw.sentinel_failover_wait,
            hooks: raw.hooks,
        },
        promote,
        data_loss,
    );
    let anomaly_threshold = cx.fraction(
        "anomaly_threshold",
        raw.anomaly_threshold,
        default_anomaly_threshold(),
    );
    let mut anomaly = AnomalyConfig::default();
    anomaly.enabled = cx
        .value("anomaly_detection", raw.anomaly_detection)
        .unwrap_or(anomaly.enabled);
    let mut count = |key: &str, raw, default: usize| cx.count(key, raw, default as u32) as usize;
    anomaly.warmup_samples = count(
        "anomaly_warmup_samples",
        raw.anomaly_warmup_samples,
        anomaly.warmup_samples,
    );
    anomaly.window_samples = count(
        "anomaly_window_samples",
        raw.anomaly_window_samples,
        anomaly.window_samples,
    );
    anomaly.retrain_samples = count(
        "anomaly_retrain_samples",
        raw.anomaly_retrain_samples,
        anomaly.retrain_samples,
    );
    anomaly.trees = count("anomaly_trees", raw.anomaly_trees, anomaly.trees);
    if anomaly.warmup_samples < 16 {
        cx.problem(
            "anomaly_warmup_samples",
            format!(
                "{} is too few to learn from, use 16 or more",
                anomaly.warmup_samples
            ),
        );
    }
    if anomaly.window_samples < anomaly.warmup_samples {
        cx.problem(
            "anomaly_window_samples",
            format!(
                "{} is smaller than anomaly_warmup_samples ({}): the window could never fill",
                anomaly.window_samples, anomaly.warmup_samples
            ),
        );
    }
    let model_path = cx
        .text("model_path", raw.model_path)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./models"));

    let use_ai = cx
        .value("use_azure_openai", raw.use_azure_openai)
        .unwrap_or(false);
    let ai_max_hold = cx.positive("ai_max_hold", raw.ai_max_hold, default_ai_max_hold());
    let azure_openai = ai::config::read(&mut cx, use_ai, raw.azure_openai, ai_max_hold);
    let use_elk = cx.value("use_elk", raw.use_elk).unwrap_or(false);
    let elk = client_impact::config::read(&mut cx, use_elk, raw.elk);
    let dns = dns::config::read(&mut cx, raw.dns_provider, raw.dns_config, &instances);
    let api = api(&mut cx, raw.api);
    let state_dir = cx
        .text("state_dir", raw.state_dir)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("./state"));
    let webhook = decision::webhook(&mut cx, raw.webhook);
    let alertmanager = alertmanager::config::read(&mut cx, raw.alertmanager);
    let datacenter_keys: Vec<String> = datacenters.keys().map(|d| d.to_string()).collect();
    let coordination = coordination::config::read(
        &mut cx,
        raw.coordination,
        coordination::config::host_name(),
        &datacenter_keys,
    );
    let limits = limits::limits(&mut cx, raw.limits);

    Some(Config {
        instances,
        datacenters,
        collector,
        model_path,
        anomaly_threshold,
        anomaly,
        failover,
        azure_openai,
        elk,
        dns,
        api,
        state_dir,
        webhook,
        alertmanager,
        coordination,
        enterprise,
        limits,
    })
}

/// Defaults an integration takes from the environment, put into the tree before it is
/// read (seed 000's `AZURE_OPENAI_*`).
pub fn defaults_from_env(
    tree: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    from_env: &mut BTreeSet<String>,
) {
    ai::config::from_env(tree, env, from_env);
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

/// The datacenters; each one's REST API keys go to `apis` for the `enterprise` part.
fn datacenters(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<BTreeMap<String, RawDatacenter>>>,
    apis: &mut Vec<(DatacenterId, enterprise::config::RawClusterApi)>,
) -> Option<BTreeMap<DatacenterId, Datacenter>> {
    let raw = cx.value("datacenters", raw)?;
    let mut out = BTreeMap::new();
    for (key, dc) in raw {
        let path = format!("datacenters.{key}");
        cx.unknown(
            &path,
            &dc.unknown,
            &[RawDatacenter::KEYS, enterprise::config::RawClusterApi::KEYS],
        );
        apis.push((DatacenterId::new(&key), dc.api));
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
                format!(
                    "{:?} is not an IP address to listen on",
                    secrets::show_url(&host)
                ),
            );
        }
    }
    if let Some(port) = cx.port("api.port", raw.port) {
        settings.port = port;
    }
    settings.api_key = cx.secret("api", "api_key", raw.api_key, raw.api_key_file);
    settings
}
