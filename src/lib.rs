//! redis-failover-agent watches Redis deployments spread over two or more datacenters,
//! publishes what it sees to Prometheus, and, when Prometheus and Alertmanager say a
//! datacenter is in trouble, confirms the problem before it moves client traffic by DNS.
//!
//! # Layout
//!
//! - [`config`]: the YAML/JSON configuration, `${VAR}` and `*_file` secrets, validation
//!   that names every problem; the core schema, and each integration's block handed to
//!   the `config` module of the integration that owns it.
//! - [`config_kit`]: what every reader of a block uses (`Raw`, `Ctx`, `Seconds`,
//!   `limits`, the secret rules); a leaf, so that `config` and the integrations do not
//!   import each other.
//! - [`model`]: domain types (instance, datacenter, endpoint, snapshot) and the store of
//!   the latest snapshots. No I/O.
//! - [`collector`]: one task per endpoint: persistent connection, PING, INFO, CLUSTER
//!   INFO, SENTINEL MASTERS, backoff and timeouts; INFO parsing as pure functions.
//! - [`enterprise`]: the Redis Enterprise REST API of each datacenter's cluster, read on
//!   its own schedule into the `EnterpriseStore` (nodes, databases, shards, Active-Active
//!   syncers), with its `config` module.
//! - [`anomaly`]: features from consecutive snapshots, one extended isolation forest per
//!   endpoint, robust z-scores, training windows kept on disk.
//! - [`health`]: instance and datacenter health scores (pure), computed once per round by
//!   [`anomaly`] and read by everything else from the analysis store.
//! - [`metrics`]: the prometheus-client registry and the collectors that render the
//!   latest snapshots at scrape time.
//! - [`decision`]: Alertmanager's webhook payload, incidents, the failover policy and
//!   the evaluation as a state machine (pure, on an injected clock), the engine that runs
//!   evaluations through the ports, and the journal that makes it crash-safe.
//! - [`actuators`]: what the engine acts through: DNS providers (Route53, dry-run),
//!   pre/post hooks, and the agent's own alerts pushed to Alertmanager. Each integration
//!   folder has a `config` module: its settings, serde form, checks and `build()`.
//! - [`advisors`]: client impact (Elasticsearch) and AI advice (OpenAI-compatible), each
//!   behind a trait, each with its `config` module; the engine works without them.
//! - [`coordination`]: the fleet on etcd: leadership with a lease and self-demotion,
//!   and the fenced transaction before every side effect (its settings are not read
//!   from the configuration yet).
//! - [`api`]: the axum router (`/metrics`, `/healthz`, `/readyz`,
//!   `/webhook/alertmanager`, the operator API under `/api`) and the listener with the
//!   TLS and basic auth of `--web.config.file`; the only module that knows axum.
//! - [`app`]: wiring: `serve(listener, config, options, control)` runs the agent
//!   in-process; `run` binds and turns signals into shutdown and reload.
//! - [`cli`]: the commands beside the agent: `check-config`, `healthcheck` and `status`
//!   (HTTP clients of the agent's own listener), shell completions and manual pages.
//! - [`logging`]: log levels that keep third-party crates quiet, and text output whose
//!   fields cannot forge lines (control characters escaped).
//! - `fuzz` (tests only): the seed and budget convention of the property tests.

pub mod actuators;
pub mod advisors;
pub mod anomaly;
pub mod api;
pub mod app;
pub mod cli;
pub mod collector;
pub mod config;
pub mod config_kit;
pub mod coordination;
pub mod decision;
pub mod enterprise;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod model;
