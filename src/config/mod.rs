//! The configuration: YAML (JSON is YAML too, so the seed's `config.json` loads as it is),
//! read in two stages. Stage one (`raw`) reads the file into permissive serde structs;
//! stage two (`validate`) checks everything and builds the typed [`Config`], reporting
//! every problem with the key and value that cause it. `load` runs both (after the
//! `${VAR}` expansion of `expand`); `config_kit::secrets` knows which keys and URLs hold
//! credentials, so that no problem or warning shows one.
//!
//! This module owns the core schema (instances, datacenters, intervals, thresholds,
//! limits, the API). Each integration owns its block in its own `config` module
//! (`actuators::dns::config`, `actuators::alertmanager::config`,
//! `advisors::client_impact::config`, `advisors::ai::config`, `enterprise::config`, which
//! also reads `datacenters.<dc>.api_*` and `instances[].enterprise_database`): its
//! settings, its serde form, its checks. Here, [`Config`] holds their settings and `validate` hands each
//! block to its owner. Both sides read with the leaf `config_kit` (`Raw`, `Ctx`,
//! `Seconds`, `secrets`), so the integrations never import this module.

#[cfg(test)]
mod docs_tests;
mod expand;
mod load;
pub(crate) mod raw;
#[cfg(test)]
mod secret_tests;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::actuators::alertmanager::config::NotifySettings;
use crate::actuators::dns::config::DnsSettings;
use crate::advisors::ai::config::AzureOpenAiSettings;
use crate::advisors::client_impact::config::ElkSettings;
use crate::coordination::config::CoordinationSettings;
use crate::enterprise::config::EnterpriseSettings;
use crate::model::{Datacenter, DatacenterId, Instance, Secret};

pub use crate::config_kit::ctx::Problem;
pub use crate::config_kit::duration::show as show_duration;
pub use crate::config_kit::limits::{self, HttpLimits, Limits};
pub use crate::decision::settings::{FailoverSettings, HookSettings};
pub use load::{ConfigError, Loaded, embedded_default, load_file, parse};

/// The configuration used when no `--config` is given: one Redis on the local machine.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

pub const fn default_monitoring_interval() -> Duration {
    Duration::from_secs(30)
}
pub const fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
pub const fn default_command_timeout() -> Duration {
    Duration::from_secs(2)
}
pub const fn default_reconnect_max_backoff() -> Duration {
    Duration::from_secs(30)
}
pub const fn default_anomaly_threshold() -> f64 {
    0.8
}
/// `ai_max_hold`.
pub const fn default_ai_max_hold() -> Duration {
    Duration::from_secs(120)
}
pub const fn default_api_port() -> u16 {
    8080
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Redis instances, each with one endpoint per datacenter.
    pub instances: Vec<Instance>,
    /// Datacenters by key.
    pub datacenters: BTreeMap<DatacenterId, Datacenter>,
    pub collector: CollectorSettings,
    /// Directory for state that must survive a restart (anomaly training windows).
    /// Key `model_path`; default `./models`.
    pub model_path: PathBuf,
    /// Calibrated anomaly score at or above which a sample is anomalous, in [0, 1].
    /// Default 0.8: as unusual as the rarest 1 in 1,000 normal samples.
    pub anomaly_threshold: f64,
    pub anomaly: AnomalyConfig,
    pub failover: FailoverSettings,
    /// Azure OpenAI advice (`use_azure_openai` + `azure_openai`), when enabled.
    pub azure_openai: Option<AzureOpenAiSettings>,
    /// Client error rates from Elasticsearch (`use_elk` + `elk`), when enabled.
    pub elk: Option<ElkSettings>,
    /// DNS changes (`dns_provider` + `dns_config`), when configured.
    pub dns: Option<DnsSettings>,
    pub api: ApiSettings,
    /// Directory of the decision journal (`state_dir`). Default `./state`.
    pub state_dir: PathBuf,
    /// `POST /webhook/alertmanager` (`webhook`).
    pub webhook: WebhookSettings,
    /// Where the agent pushes its own alerts (`alertmanager`); none: it only logs them.
    pub alertmanager: Option<NotifySettings>,
    /// A fleet of agents on etcd (`coordination`); none: this agent acts alone.
    pub coordination: Option<CoordinationSettings>,
    /// The Redis Enterprise REST API of each datacenter's cluster (`enterprise`,
    /// `datacenters.<dc>.api_*`); no cluster: nothing is polled.
    pub enterprise: EnterpriseSettings,
    /// Bounds on everything that comes in from outside (`limits`).
    pub limits: Limits,
}

impl Config {
    /// Number of endpoints (instance x datacenter) to collect from.
    pub fn endpoint_count(&self) -> usize {
        self.instances.iter().map(|i| i.endpoints.len()).sum()
    }

    /// `ai_max_hold` while advice is on; the default otherwise.
    pub fn ai_max_hold(&self) -> Duration {
        self.azure_openai
            .as_ref()
            .map_or_else(default_ai_max_hold, |a| a.max_hold)
    }
}

/// How often and how patiently endpoints are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollectorSettings {
    /// Time between two rounds of one endpoint (`monitoring_interval`, seconds or
    /// `"500ms"`). Default 30 s.
    pub interval: Duration,
    /// Time allowed to open a connection, TLS and AUTH included (`timeouts.connect`).
    /// Default 2 s.
    pub connect_timeout: Duration,
    /// Time allowed for each command (`timeouts.command`). Default 2 s.
    pub command_timeout: Duration,
    /// Longest wait between two reconnection attempts to an endpoint that keeps
    /// failing (`reconnect_max_backoff`). Default 30 s.
    pub reconnect_max_backoff: Duration,
}

impl Default for CollectorSettings {
    fn default() -> Self {
        Self {
            interval: default_monitoring_interval(),
            connect_timeout: default_connect_timeout(),
            command_timeout: default_command_timeout(),
            reconnect_max_backoff: default_reconnect_max_backoff(),
        }
    }
}

/// The per-endpoint anomaly detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyConfig {
    /// `anomaly_detection`: run the detector. Default true. A model and its window take
    /// about 1 MB per endpoint; large fleets may want it off.
    pub enabled: bool,
    /// `anomaly_warmup_samples`: samples before the first model. Default 120.
    pub warmup_samples: usize,
    /// `anomaly_window_samples`: newest normal samples kept for training. Default 1024.
    pub window_samples: usize,
    /// `anomaly_retrain_samples`: new samples between two trainings. Default 240.
    pub retrain_samples: usize,
    /// `anomaly_trees`: trees per forest. Default 64.
    pub trees: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            warmup_samples: 120,
            window_samples: 1024,
            retrain_samples: 240,
            trees: 64,
        }
    }
}

/// `webhook`: who may post to `/webhook/alertmanager`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookSettings {
    /// `webhook.bearer_token` or `webhook.bearer_token_file`: the token Alertmanager's
    /// `http_config.authorization` sends. Without one the webhook refuses every request.
    pub bearer_token: Option<Secret>,
}

/// The HTTP listener and the operator API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// `api.enabled`: serve `/api/*`. `/metrics` and the probes are always served.
    pub enabled: bool,
    /// `api.host`: address to listen on. Default `0.0.0.0`.
    pub host: String,
    /// `api.port`. Default 8080.
    pub port: u16,
    /// `api.api_key` or `api.api_key_file`: the `X-API-Key` the API demands.
    pub api_key: Option<Secret>,
}
