//! Stage one: the file as serde reads it, before anything is checked.
//!
//! Every field is a [`Raw`] and every struct keeps the keys it does not know, so that
//! reading never stops at the first problem: stage two (`validate`) reports them all.
//! An integration's block (`elk`, `azure_openai`, `dns_config`, `alertmanager`,
//! `coordination`, `enterprise`) is
//! kept as a plain value here: its serde form is the integration's own.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

use crate::config_kit::duration::Seconds;
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::enterprise::config::RawClusterApi;

/// The core's blocks, from the top of the file (see [`KeyBlock`]); each integration
/// lists its own under the top-level key it owns.
#[cfg(test)]
pub const KEY_BLOCKS: &[KeyBlock] = &[
    KeyBlock::new("", "RawConfig", RawConfig::KEYS),
    KeyBlock::new("instances[]", "RawInstance", RawInstance::KEYS),
    KeyBlock::new("instances[]", "RawAuth", RawAuth::KEYS),
    KeyBlock::new("instances[].tls", "RawTlsSettings", RawTlsSettings::KEYS),
    KeyBlock::new(
        "instances[].endpoints.<dc>",
        "RawEndpoint",
        RawEndpoint::KEYS,
    ),
    KeyBlock::new("instances[].endpoints.<dc>", "RawAuth", RawAuth::KEYS),
    KeyBlock::new(
        "instances[].endpoints.<dc>.tls",
        "RawTlsSettings",
        RawTlsSettings::KEYS,
    ),
    KeyBlock::new(
        "instances[].endpoints.<dc>.sentinel",
        "RawSentinel",
        RawSentinel::KEYS,
    ),
    KeyBlock::new("datacenters.<dc>", "RawDatacenter", RawDatacenter::KEYS),
    KeyBlock::new("timeouts", "RawTimeouts", RawTimeouts::KEYS),
    KeyBlock::new("api", "RawApi", RawApi::KEYS),
    KeyBlock::new("hooks", "RawHooks", RawHooks::KEYS),
    KeyBlock::new("webhook", "RawWebhook", RawWebhook::KEYS),
    KeyBlock::new("limits", "RawLimits", RawLimits::KEYS),
    KeyBlock::new("limits.http", "RawHttpLimits", RawHttpLimits::KEYS),
    KeyBlock::new("max_data_loss", "RawBounds", RawBounds::KEYS),
    KeyBlock::new("instances[].max_data_loss", "RawBounds", RawBounds::KEYS),
];

#[derive(Debug, Deserialize)]
pub struct RawConfig {
    pub instances: Option<Raw<Vec<RawInstance>>>,
    pub datacenters: Option<Raw<BTreeMap<String, RawDatacenter>>>,
    pub monitoring_interval: Option<Raw<Seconds>>,
    pub decision_interval: Option<Value>,
    pub timeouts: Option<Raw<RawTimeouts>>,
    pub reconnect_max_backoff: Option<Raw<Seconds>>,
    pub model_path: Option<Raw<String>>,
    pub anomaly_threshold: Option<Raw<f64>>,
    pub anomaly_detection: Option<Raw<bool>>,
    pub anomaly_warmup_samples: Option<Raw<i64>>,
    pub anomaly_window_samples: Option<Raw<i64>>,
    pub anomaly_retrain_samples: Option<Raw<i64>>,
    pub anomaly_trees: Option<Raw<i64>>,
    pub auto_failover: Option<Raw<bool>>,
    pub failover_provider: Option<Raw<String>>,
    pub failover_confidence_threshold: Option<Raw<f64>>,
    pub failover_consecutive_threshold: Option<Raw<i64>>,
    pub use_azure_openai: Option<Raw<bool>>,
    pub azure_openai: Option<Value>,
    pub ai_failover_confidence: Option<Raw<f64>>,
    pub ai_consecutive_recommendations: Option<Raw<i64>>,
    pub ai_max_hold: Option<Raw<Seconds>>,
    pub use_elk: Option<Raw<bool>>,
    pub elk: Option<Value>,
    pub dns_provider: Option<Raw<String>>,
    pub dns_config: Option<Value>,
    pub alert_endpoints: Option<Value>,
    pub api: Option<Raw<RawApi>>,
    pub confirm_interval: Option<Raw<Seconds>>,
    pub failover_cooldown: Option<Raw<Seconds>>,
    pub failback_stable_for: Option<Raw<Seconds>>,
    pub auto_failback: Option<Raw<bool>>,
    pub failover_label: Option<Raw<String>>,
    pub sentinel_failover_wait: Option<Raw<Seconds>>,
    pub max_data_loss: Option<Raw<RawBudget>>,
    pub state_dir: Option<Raw<String>>,
    pub hooks: Option<Raw<RawHooks>>,
    pub webhook: Option<Raw<RawWebhook>>,
    pub alertmanager: Option<Value>,
    pub coordination: Option<Value>,
    pub enterprise: Option<Value>,
    pub limits: Option<Raw<RawLimits>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawConfig {
    pub const KEYS: &'static [&'static str] = &[
        "instances",
        "datacenters",
        "monitoring_interval",
        "decision_interval",
        "timeouts",
        "reconnect_max_backoff",
        "model_path",
        "anomaly_threshold",
        "anomaly_detection",
        "anomaly_warmup_samples",
        "anomaly_window_samples",
        "anomaly_retrain_samples",
        "anomaly_trees",
        "auto_failover",
        "failover_provider",
        "failover_confidence_threshold",
        "failover_consecutive_threshold",
        "use_azure_openai",
        "azure_openai",
        "ai_failover_confidence",
        "ai_consecutive_recommendations",
        "ai_max_hold",
        "use_elk",
        "elk",
        "dns_provider",
        "dns_config",
        "alert_endpoints",
        "api",
        "confirm_interval",
        "failover_cooldown",
        "failback_stable_for",
        "auto_failback",
        "failover_label",
        "sentinel_failover_wait",
        "max_data_loss",
        "state_dir",
        "hooks",
        "webhook",
        "alertmanager",
        "coordination",
        "enterprise",
        "limits",
    ];
}

/// `max_data_loss`: `none`, or one bound or both.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBudget {
    Word(String),
    Bounds(RawBounds),
}

#[derive(Debug, Deserialize)]
pub struct RawBounds {
    pub bytes: Option<Raw<i64>>,
    pub seconds: Option<Raw<Seconds>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawBounds {
    pub const KEYS: &'static [&'static str] = &["bytes", "seconds"];
}

/// A command: a list of arguments (`[/usr/local/bin/drain, --fast]`) or one program.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCommand {
    Program(String),
    Args(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct RawHooks {
    pub pre_failover: Option<Raw<RawCommand>>,
    pub post_failover: Option<Raw<RawCommand>>,
    pub timeout: Option<Raw<Seconds>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawHooks {
    pub const KEYS: &'static [&'static str] = &["pre_failover", "post_failover", "timeout"];
}

#[derive(Debug, Deserialize)]
pub struct RawWebhook {
    pub bearer_token: Option<Raw<String>>,
    pub bearer_token_file: Option<Raw<String>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawWebhook {
    pub const KEYS: &'static [&'static str] = &["bearer_token", "bearer_token_file"];
}

/// Credentials and TLS, given on an instance (for all its endpoints) or on one endpoint.
#[derive(Debug, Deserialize, Default)]
pub struct RawAuth {
    pub username: Option<Raw<String>>,
    pub password: Option<Raw<String>>,
    pub password_file: Option<Raw<String>>,
    pub tls: Option<Raw<RawTls>>,
}

impl RawAuth {
    pub const KEYS: &'static [&'static str] = &["username", "password", "password_file", "tls"];
}

#[derive(Debug, Deserialize)]
pub struct RawInstance {
    pub name: Option<Raw<String>>,
    pub uid: Option<Raw<String>>,
    pub endpoints: Option<Raw<BTreeMap<String, RawEndpoint>>>,
    pub active_dc: Option<Raw<String>>,
    pub promote_on_failover: Option<Raw<bool>>,
    /// Handed to the `enterprise` part.
    pub enterprise_database: Option<Raw<String>>,
    pub data: Option<Raw<String>>,
    pub max_data_loss: Option<Raw<RawBudget>>,
    #[serde(flatten)]
    pub auth: RawAuth,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawInstance {
    pub const KEYS: &'static [&'static str] = &[
        "name",
        "uid",
        "endpoints",
        "active_dc",
        "promote_on_failover",
        "enterprise_database",
        "data",
        "max_data_loss",
    ];
}

#[derive(Debug, Deserialize)]
pub struct RawEndpoint {
    pub host: Option<Raw<String>>,
    pub port: Option<Raw<i64>>,
    pub sentinel: Option<Raw<RawSentinel>>,
    #[serde(flatten)]
    pub auth: RawAuth,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawEndpoint {
    pub const KEYS: &'static [&'static str] = &["host", "port", "sentinel"];
}

/// `sentinel: {master: mymaster, addresses: ["10.0.0.5:26379", ...]}` on an endpoint.
#[derive(Debug, Deserialize)]
pub struct RawSentinel {
    pub master: Option<Raw<String>>,
    pub addresses: Option<Raw<Vec<String>>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawSentinel {
    pub const KEYS: &'static [&'static str] = &["master", "addresses"];
}

/// `tls: true`, or a block with the files to use.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTls {
    Enabled(bool),
    Settings(Box<RawTlsSettings>),
}

#[derive(Debug, Deserialize)]
pub struct RawTlsSettings {
    pub enabled: Option<Raw<bool>>,
    pub ca_file: Option<Raw<String>>,
    pub cert_file: Option<Raw<String>>,
    pub key_file: Option<Raw<String>>,
    pub insecure_skip_verify: Option<Raw<bool>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawTlsSettings {
    pub const KEYS: &'static [&'static str] = &[
        "enabled",
        "ca_file",
        "cert_file",
        "key_file",
        "insecure_skip_verify",
    ];
}

#[derive(Debug, Deserialize)]
pub struct RawDatacenter {
    pub name: Option<Raw<String>>,
    /// The cluster's Redis Enterprise REST API: the `enterprise` part reads it.
    #[serde(flatten)]
    pub api: RawClusterApi,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawDatacenter {
    pub const KEYS: &'static [&'static str] = &["name"];
}

#[derive(Debug, Deserialize)]
pub struct RawTimeouts {
    pub connect: Option<Raw<Seconds>>,
    pub command: Option<Raw<Seconds>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawTimeouts {
    pub const KEYS: &'static [&'static str] = &["connect", "command"];
}

#[derive(Debug, Deserialize)]
pub struct RawApi {
    pub enabled: Option<Raw<bool>>,
    pub api_key: Option<Raw<String>>,
    pub api_key_file: Option<Raw<String>>,
    pub host: Option<Raw<String>>,
    pub port: Option<Raw<i64>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawApi {
    pub const KEYS: &'static [&'static str] =
        &["enabled", "api_key", "api_key_file", "host", "port"];
}

/// `limits`.
#[derive(Debug, Deserialize)]
pub struct RawLimits {
    pub max_reply_bytes: Option<Raw<i64>>,
    pub max_commands_per_endpoint: Option<Raw<i64>>,
    pub max_error_kinds_per_endpoint: Option<Raw<i64>>,
    pub max_databases_per_endpoint: Option<Raw<i64>>,
    pub max_alerts_per_delivery: Option<Raw<i64>>,
    pub max_incidents_per_delivery: Option<Raw<i64>>,
    pub max_label_bytes: Option<Raw<i64>>,
    pub max_history: Option<Raw<i64>>,
    pub http: Option<Raw<RawHttpLimits>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawLimits {
    pub const KEYS: &'static [&'static str] = &[
        "max_reply_bytes",
        "max_commands_per_endpoint",
        "max_error_kinds_per_endpoint",
        "max_databases_per_endpoint",
        "max_alerts_per_delivery",
        "max_incidents_per_delivery",
        "max_label_bytes",
        "max_history",
        "http",
    ];
}

#[derive(Debug, Deserialize)]
pub struct RawHttpLimits {
    pub max_body_bytes: Option<Raw<i64>>,
    pub request_timeout: Option<Raw<Seconds>>,
    pub header_timeout: Option<Raw<Seconds>>,
    pub idle_timeout: Option<Raw<Seconds>>,
    pub max_connections: Option<Raw<i64>>,
    pub reserved_connections: Option<Raw<i64>>,
    pub max_concurrent_requests: Option<Raw<i64>>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

impl RawHttpLimits {
    pub const KEYS: &'static [&'static str] = &[
        "max_body_bytes",
        "request_timeout",
        "header_timeout",
        "idle_timeout",
        "max_connections",
        "reserved_connections",
        "max_concurrent_requests",
    ];
}
