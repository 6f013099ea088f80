//! The configuration: YAML (JSON is YAML too, so the seed's `config.json` loads as it is),
//! read in two stages. Stage one ([`raw`]) reads the file into permissive serde structs;
//! stage two ([`validate`]) checks everything and builds the typed [`Config`], reporting
//! every problem with the key and value that cause it. `load` runs both (after the
//! `${VAR}` expansion of `expand`); `secrets` knows which keys and URLs hold
//! credentials, so that no problem or warning shows one.

mod duration;
mod expand;
pub mod limits;
mod load;
mod raw;
#[cfg(test)]
mod secret_tests;
mod secrets;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{Datacenter, DatacenterId, Instance, InstanceId, Secret};

pub use duration::show as show_duration;
pub use limits::{HttpLimits, Limits};
pub use load::{ConfigError, Loaded, Problem, embedded_default, load_file, parse};

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
pub const fn default_failover_confidence_threshold() -> f64 {
    0.95
}
pub const fn default_failover_consecutive_threshold() -> u32 {
    3
}
pub const fn default_ai_failover_confidence() -> f64 {
    0.85
}
pub const fn default_ai_consecutive_recommendations() -> u32 {
    2
}
/// `ai_max_hold`.
pub const fn default_ai_max_hold() -> Duration {
    Duration::from_secs(120)
}
/// `azure_openai.timeout`.
pub const fn default_ai_timeout() -> Duration {
    Duration::from_secs(30)
}
/// `azure_openai.api_version`.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
pub const fn default_api_port() -> u16 {
    8080
}
pub const fn default_confirm_interval() -> Duration {
    Duration::from_secs(2)
}
pub const fn default_failover_cooldown() -> Duration {
    Duration::from_secs(30 * 60)
}
pub const fn default_failback_stable_for() -> Duration {
    Duration::from_secs(30 * 60)
}
pub const fn default_sentinel_failover_wait() -> Duration {
    Duration::from_secs(60)
}
pub const fn default_hook_timeout() -> Duration {
    Duration::from_secs(30)
}
pub const fn default_notify_timeout() -> Duration {
    Duration::from_secs(5)
}
pub const fn default_notice_resolve_after() -> Duration {
    Duration::from_secs(60 * 60)
}
/// The alert label that marks an alert as a reason to consider failing over.
pub const DEFAULT_FAILOVER_LABEL: &str = "failover_candidate";

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
    /// Bounds on everything that comes in from outside (`limits`).
    pub limits: Limits,
}

impl Config {
    /// Number of endpoints (instance x datacenter) to collect from.
    pub fn endpoint_count(&self) -> usize {
        self.instances.iter().map(|i| i.endpoints.len()).sum()
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

/// When the agent may move traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverSettings {
    /// `auto_failover`: act on confirmed alerts without a person. Default false.
    pub auto: bool,
    /// `failover_confidence_threshold`, in [0, 1]. Default 0.95.
    pub confidence_threshold: f64,
    /// `failover_consecutive_threshold`: rounds of fresh probes that must agree.
    /// Default 3.
    pub consecutive_threshold: u32,
    /// `ai_failover_confidence`, in [0, 1]. Default 0.85.
    pub ai_confidence: f64,
    /// `ai_consecutive_recommendations`. Default 2.
    pub ai_consecutive_recommendations: u32,
    /// `confirm_interval`: time between two confirmation rounds of fresh probes.
    /// Default 2 s.
    pub confirm_interval: Duration,
    /// `failover_cooldown`: after a failover of an instance, no automatic failover of it
    /// until this has passed (an acknowledgement through the API lifts it). Default 30 min.
    pub cooldown: Duration,
    /// `failback_stable_for`: how long the old datacenter must stay healthy before a
    /// failback is recommended. Default 30 min.
    pub failback_stable_for: Duration,
    /// `auto_failback`: fail back by itself once that is recommended. Default false.
    pub auto_failback: bool,
    /// `failover_label`: the label (value "true") that makes an alert a failover
    /// candidate. Default `failover_candidate`.
    pub label: String,
    /// `sentinel_failover_wait`: how long a decision waits while Sentinel fails over
    /// inside the active datacenter, before it decides. Default 60 s.
    pub sentinel_wait: Duration,
    /// Instances with `promote_on_failover: true`: the target's Redis gets
    /// `REPLICAOF NO ONE` before DNS moves.
    pub promote: BTreeSet<InstanceId>,
    /// `hooks`: commands run around a failover.
    pub hooks: HookSettings,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            auto: false,
            confidence_threshold: default_failover_confidence_threshold(),
            consecutive_threshold: default_failover_consecutive_threshold(),
            ai_confidence: default_ai_failover_confidence(),
            ai_consecutive_recommendations: default_ai_consecutive_recommendations(),
            confirm_interval: default_confirm_interval(),
            cooldown: default_failover_cooldown(),
            failback_stable_for: default_failback_stable_for(),
            auto_failback: false,
            label: DEFAULT_FAILOVER_LABEL.to_owned(),
            sentinel_wait: default_sentinel_failover_wait(),
            promote: BTreeSet::new(),
            hooks: HookSettings::default(),
        }
    }
}

/// Commands run around a failover, each with the environment `REDIS_INSTANCE`,
/// `FROM_DATACENTER` and `TO_DATACENTER`.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSettings {
    /// `hooks.pre_failover`: runs before anything changes; a non-zero exit vetoes.
    pub pre_failover: Option<Vec<String>>,
    /// `hooks.post_failover`: runs after DNS moved; its failure is recorded only.
    pub post_failover: Option<Vec<String>>,
    /// `hooks.timeout`: a hook running longer is killed (and a pre hook vetoes).
    /// Default 30 s.
    pub timeout: Duration,
}

impl Default for HookSettings {
    fn default() -> Self {
        Self {
            pre_failover: None,
            post_failover: None,
            timeout: default_hook_timeout(),
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

/// `alertmanager`: where the agent's own alerts go.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    /// `alertmanager.urls`: every Alertmanager of the cluster (each gets every alert).
    pub urls: Vec<String>,
    /// `alertmanager.timeout`: per request. Default 5 s.
    pub timeout: Duration,
    /// `alertmanager.resolve_after`: one-shot notices end after this. Default 1 h.
    pub resolve_after: Duration,
}

/// `use_azure_openai` + `azure_openai`: failover advice from a model (see
/// `advisors::ai`).
#[derive(Debug, Clone, PartialEq)]
pub struct AzureOpenAiSettings {
    pub service: AiService,
    /// `azure_openai.model`: the model, or with Azure the deployment name. Default
    /// `gpt-4`.
    pub model: String,
    /// `azure_openai.max_tokens`: longest answer, in tokens. Default 1000.
    pub max_tokens: u32,
    /// `azure_openai.temperature`, 0 to 2. Default 0.2.
    pub temperature: f64,
    /// `azure_openai.timeout`: per consultation; a later answer is discarded. Default
    /// 30 s.
    pub timeout: Duration,
    /// `ai_max_hold` (top level): the longest advice may hold back a failover once the
    /// active datacenter is down in every round and the clients are not reported fine.
    /// Default 2 min.
    pub max_hold: Duration,
}

/// Where the advice comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AiService {
    /// Azure OpenAI: `{endpoint}/openai/deployments/{model}/chat/completions
    /// ?api-version={api_version}` with an `api-key` header.
    Azure {
        /// `azure_openai.endpoint`, else `AZURE_OPENAI_ENDPOINT`.
        endpoint: String,
        /// `azure_openai.api_key` or `api_key_file`, else `AZURE_OPENAI_API_KEY`.
        api_key: Secret,
        /// `azure_openai.api_version`. Default `2024-10-21`, the first GA version with
        /// structured outputs (the `json_schema` answer format).
        api_version: String,
    },
    /// Any OpenAI-compatible server (`azure_openai.base_url`, e.g.
    /// `http://llm.internal:8000/v1`): `{base_url}/chat/completions` with
    /// `Authorization: Bearer {api_key}`.
    OpenAiCompatible {
        base_url: String,
        /// `azure_openai.api_key` or `api_key_file`; on-premises servers may need none.
        api_key: Option<Secret>,
    },
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    /// `route53` or `dry-run`.
    pub provider: String,
    pub zone_id: String,
    pub region: String,
    pub access_key: Option<Secret>,
    pub secret_key: Option<Secret>,
    /// Another Route53 API address (a test server); default AWS's.
    pub endpoint_url: Option<String>,
    pub records: Vec<DnsRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecord {
    /// The `name` of the instance this record sends clients to.
    pub instance_name: String,
    pub name: String,
    pub record_type: String,
    pub ttl: u32,
    /// `values`: the record's value per datacenter, where it is not that datacenter's
    /// endpoint host.
    pub values: BTreeMap<DatacenterId, String>,
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
