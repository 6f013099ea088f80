//! Wiring: [`serve`] runs the agent on a listener it is given until its [`Control`]
//! says stop (as mini-redis's `server::run`): the store, the collector, the registry,
//! the engine with each integration's `build()`, and the HTTP listener. [`run`] is the
//! binary's way in: it binds, and turns SIGTERM or Ctrl-C into a shutdown and SIGHUP
//! into a reload.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::anomaly::{AnomalyEngine, AnomalySettings, detector::DetectorSettings};
use crate::api::{self, Access, AppState, Web, WebConfig};
use crate::collector::Collector;
use crate::config::{self, Config, ConfigError};
use crate::decision::counters::DecisionMetrics;
use crate::decision::engine::{self, Engine};
use crate::enterprise::Enterprise;
use crate::metrics::{Budgets, Metrics, Observer, ReplicationCollector, cache::Policy};
use crate::model::enterprise::EnterpriseStore;
use crate::model::replication::Budget;
use crate::model::{
    ActiveDatacenters, AnalysisStore, DatacenterId, EndpointKey, InstanceId, SnapshotStore,
};

mod deciding;

use deciding::{build_advisors, engine_settings, start_engine};

/// How long shutdown waits for the listener and the collection tasks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Options {
    /// The file to reload on SIGHUP; `None` for the embedded default.
    pub config_path: Option<PathBuf>,
    /// Overrides `api.host` and `api.port` (`--web.listen-address`, `--listen`).
    pub listen: Option<SocketAddr>,
    /// `--web.config.file`, read again on SIGHUP; `None`: plain HTTP, no basic auth.
    pub web_config_file: Option<PathBuf>,
    /// What that file said at start (the binary reads it first, to exit 64 on a bad one).
    pub web: WebConfig,
    /// `--web.telemetry-path`: where Prometheus scrapes; default `/metrics`.
    pub telemetry_path: String,
    /// Monitor only, whatever `auto_failover` says.
    pub no_failover: bool,
    /// `--journal-start-over`: a damaged journal is moved aside and the agent starts
    /// with an empty one, instead of refusing to start.
    pub journal_start_over: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config_path: None,
            listen: None,
            web_config_file: None,
            web: WebConfig::default(),
            telemetry_path: api::METRICS_PATH.to_owned(),
            no_failover: false,
            journal_start_over: false,
        }
    }
}

type Reloads = Family<Vec<(String, String)>, Counter>;

/// How the outside tells a running agent to stop or to reload its configuration file:
/// the binary feeds it from SIGTERM, Ctrl-C and SIGHUP ([`run`]); a test calls it.
#[derive(Debug, Clone, Default)]
pub struct Control {
    shutdown: CancellationToken,
    reload: Arc<Notify>,
}

impl Control {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop accepting, cancel every task, wait for them within [`SHUTDOWN_GRACE`].
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Read `Options::config_path` again; a bad file keeps the running configuration.
    pub fn reload(&self) {
        self.reload.notify_one();
    }
}

/// The binary's way in: binds the configured address, then [`serve`]s with SIGTERM and
/// Ctrl-C as the shutdown and SIGHUP as the reload.
pub async fn run(config: Config, options: Options) -> anyhow::Result<()> {
    let listen = match options.listen {
        Some(addr) => addr,
        None => format!("{}:{}", config.api.host, config.api.port)
            .parse()
            .with_context(|| format!("api.host {:?} is not an address", config.api.host))?,
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let control = Control::new();
    let serving = serve(listener, config, options, control.clone());
    tokio::pin!(serving);
    loop {
        tokio::select! {
            result = &mut serving => return result,
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); control.shutdown(); }
            _ = tokio::signal::ctrl_c() => { info!("interrupted: shutting down"); control.shutdown(); }
            _ = sighup.recv() => control.reload(),
        }
    }
}

/// The agent on `listener` until `control` says stop: the collector, the anomaly
/// engine, the decision engine with the adapters each integration builds, and the HTTP
/// API. Returns once every task finished or the grace period is over.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    options: Options,
    control: Control,
) -> anyhow::Result<()> {
    let cancel = control.shutdown.child_token();
    let tracker = TaskTracker::new();
    let local = listener
        .local_addr()
        .context("the listener has no address")?;
    let shared = Shared::new(&config);
    let families = Families::register(&shared, &config);

    let collector = Collector::new(Arc::clone(&shared.store), tracker.clone(), cancel.clone());
    let changes = collector.apply(&config);
    let enterprise = Enterprise::new(
        Arc::clone(&shared.enterprise),
        tracker.clone(),
        cancel.clone(),
    );
    enterprise.apply(&config.enterprise, &config.datacenters);
    let anomaly = AnomalyEngine::new(
        Arc::clone(&shared.store),
        Arc::clone(&shared.analysis),
        anomaly_settings(&config),
    )
    .with_enterprise(Arc::clone(&shared.enterprise));
    tracker.spawn(anomaly.run(cancel.clone()));
    let failover = if options.no_failover || !config.failover.auto {
        "off (monitor only)"
    } else {
        "automatic"
    };
    info!(listen = %local, endpoints = changes.started, interval = %config::show_duration(config.collector.interval),
        failover, tls = options.web.tls.is_some(), basic_auth = !options.web.users.is_empty(),
        metrics_path = %options.telemetry_path, "agent started");

    let started = start_engine(&config, &options, &shared, &families, &tracker, &cancel);
    let engine = match started.await {
        Ok(engine) => engine,
        Err(e) => {
            stop(&cancel, &tracker).await;
            return Err(e);
        }
    };
    engine.watch_failback(engine::WATCH_EVERY);
    let access = Arc::new(std::sync::RwLock::new(Access::from_config(&config)));
    let state = AppState {
        metrics: Arc::clone(&families.metrics),
        store: Arc::clone(&shared.store),
        analysis: Arc::clone(&shared.analysis),
        active: Arc::clone(&shared.active),
        engine: Some(engine.clone()),
        access: Arc::clone(&access),
        decisions: families.decisions.clone(),
        // The listener's limits are taken at start; a reload does not change them.
        http: config.limits.http,
        http_metrics: families.http.clone(),
    };
    let web = Web::new(options.web.clone());
    let app = api::protect(
        api::router_at(state, &options.telemetry_path),
        Arc::clone(&web),
    );
    let surface = api::Surface {
        limits: config.limits.http,
        metrics: families.http.clone(),
        web: Arc::clone(&web),
        telemetry_path: options.telemetry_path.clone(),
    };
    tracker.spawn(api::serve(listener, app, surface, cancel.clone()));

    let running = Running {
        metrics: Arc::clone(&families.metrics),
        web,
        collector,
        enterprise,
        analysis: Arc::clone(&shared.analysis),
        active: shared.active,
        engine,
        access,
        reloads: families.reloads,
        budgets: families.budgets,
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = control.reload.notified() => running.reload(&options),
        }
    }
    stop(&cancel, &tracker).await;
    Ok(())
}

/// What the parts share: the latest snapshots, their analysis, the active datacenters,
/// what the Redis Enterprise APIs said.
struct Shared {
    store: Arc<SnapshotStore>,
    /// What the Redis Enterprise collector last read of each datacenter's cluster.
    enterprise: Arc<EnterpriseStore>,
    analysis: Arc<AnalysisStore>,
    active: Arc<ActiveDatacenters>,
}

impl Shared {
    fn new(config: &Config) -> Self {
        let active = Arc::new(ActiveDatacenters::new());
        active.apply(&config.instances);
        Self {
            store: Arc::new(SnapshotStore::new()),
            enterprise: Arc::new(EnterpriseStore::new()),
            analysis: Arc::new(AnalysisStore::new()),
            active,
        }
    }
}

/// The registry, built once, and the families the parts count into.
struct Families {
    metrics: Arc<Metrics>,
    reloads: Reloads,
    /// Each instance's data-loss budget, for its series; replaced on reload.
    budgets: Arc<Budgets>,
    decisions: DecisionMetrics,
    http: api::HttpMetrics,
}

impl Families {
    fn register(shared: &Shared, config: &Config) -> Self {
        let mut metrics = Metrics::new(
            Arc::clone(&shared.store),
            Arc::clone(&shared.analysis),
            Arc::clone(&shared.active),
            config.anomaly_threshold,
            observer(config),
        );
        metrics.add_enterprise(Arc::clone(&shared.enterprise), observer(config));
        let reloads = Reloads::default();
        metrics.registry_mut().register(
            "redis_agent_config_reloads",
            "Configuration reloads on SIGHUP, by result",
            reloads.clone(),
        );
        // Both results from the start, so `increase()` sees the first failure.
        for result in ["success", "failure"] {
            reloads.get_or_create(&result_label(result)).inc_by(0);
        }
        // At most one render per format and collection round, however many scrapers.
        metrics.set_cache(Policy::for_interval(config.collector.interval));
        let decisions = DecisionMetrics::register(metrics.registry_mut());
        let http = api::HttpMetrics::register(metrics.registry_mut());
        let budgets = Arc::new(Budgets::new());
        budgets.set(data_loss_budgets(config));
        metrics
            .registry_mut()
            .register_collector(Box::new(ReplicationCollector::new(
                Arc::clone(&shared.store),
                Arc::clone(&shared.enterprise),
                Arc::clone(&shared.active),
                Arc::clone(&budgets),
                observer(config),
            )));
        Self {
            metrics: Arc::new(metrics),
            reloads,
            budgets,
            decisions,
            http,
        }
    }
}

/// Per instance, its data-loss budget and the names its Enterprise database may go by.
fn data_loss_budgets(config: &Config) -> BTreeMap<InstanceId, (Budget, Vec<String>)> {
    config
        .instances
        .iter()
        .map(|i| {
            let names = vec![i.uid.to_string(), i.name.clone()];
            (i.uid.clone(), (config.failover.budget(&i.uid), names))
        })
        .collect()
}

/// In a fleet this agent is one of its observers, and its series say so.
fn observer(config: &Config) -> Option<Observer> {
    config.coordination.as_ref().map(|c| Observer {
        name: c.agent.name.clone(),
        datacenter: c.agent.datacenter.as_deref().map(DatacenterId::new),
    })
}

fn result_label(result: &str) -> Vec<(String, String)> {
    vec![("result".to_owned(), result.to_owned())]
}

/// Cancels every task and waits for them, at most [`SHUTDOWN_GRACE`].
async fn stop(cancel: &CancellationToken, tracker: &TaskTracker) {
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!(unfinished_tasks = tracker.len(), grace = ?SHUTDOWN_GRACE,
            "shutdown grace period over; some tasks did not finish");
    } else {
        info!("stopped");
    }
}

fn anomaly_settings(config: &Config) -> AnomalySettings {
    let a = config.anomaly;
    AnomalySettings {
        enabled: a.enabled,
        detector: DetectorSettings {
            warmup: a.warmup_samples,
            window: a.window_samples,
            retrain_every: a.retrain_samples,
            threshold: config.anomaly_threshold,
        },
        trees: a.trees,
        state_dir: config.model_path.clone(),
        tick: (config.collector.interval / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(1)),
    }
}

/// What a reload changes in the running agent.
struct Running {
    metrics: Arc<Metrics>,
    web: Arc<Web>,
    collector: Collector,
    enterprise: Enterprise,
    analysis: Arc<AnalysisStore>,
    active: Arc<ActiveDatacenters>,
    engine: Engine,
    access: Arc<std::sync::RwLock<Access>>,
    reloads: Reloads,
    budgets: Arc<Budgets>,
}

impl Running {
    /// Reads the configuration file again and applies it; a bad file changes nothing.
    /// The web configuration file, when there is one, is read again too, on its own.
    fn reload(&self, options: &Options) {
        self.reload_web(options);
        let Some(path) = &options.config_path else {
            info!("SIGHUP: running on the embedded default, nothing to reload");
            return;
        };
        let loaded = match config::load_file(path) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.refused(path, e);
                return;
            }
        };
        for w in &loaded.warnings {
            warn!(config = %path.display(), "{w}");
        }
        let changes = self.collector.apply(&loaded.config);
        self.enterprise
            .apply(&loaded.config.enterprise, &loaded.config.datacenters);
        let wanted: BTreeSet<&EndpointKey> = loaded
            .config
            .instances
            .iter()
            .flat_map(|i| i.endpoints.values().map(|e| &e.key))
            .collect();
        self.analysis.retain(|k| wanted.contains(k));
        self.active.apply(&loaded.config.instances);
        self.budgets.set(data_loss_budgets(&loaded.config));
        self.engine
            .reload(engine_settings(&loaded.config, options.no_failover));
        match build_advisors(&loaded.config) {
            Ok(advisors) => self.engine.set_advisors(advisors),
            Err(e) => error!(config = %path.display(), error = %e,
                "advisors not reloaded; keeping the running ones"),
        }
        *self.access.write().unwrap_or_else(|e| e.into_inner()) =
            Access::from_config(&loaded.config);
        // Endpoints may have come or gone: the next scrape shows the new set at once.
        self.metrics.invalidate();
        self.reloads.get_or_create(&result_label("success")).inc();
        info!(config = %path.display(), started = changes.started, stopped = changes.stopped,
            restarted = changes.restarted, unchanged = changes.unchanged,
            "configuration reloaded");
    }

    /// `--web.config.file` again: new connections and requests follow it; a bad file
    /// changes nothing and counts as a failed reload.
    fn reload_web(&self, options: &Options) {
        let Some(path) = &options.web_config_file else {
            return;
        };
        match WebConfig::load(Some(path)) {
            Ok(web) => {
                info!(web_config = %path.display(), tls = web.tls.is_some(),
                    basic_auth_users = web.users.len(), "web configuration reloaded");
                self.web.replace(web);
            }
            Err(e) => self.refused(path, e),
        }
    }

    /// A file that cannot be used: every problem logged, the running one kept.
    fn refused(&self, path: &Path, e: ConfigError) {
        self.reloads.get_or_create(&result_label("failure")).inc();
        match e {
            ConfigError::Invalid { problems, .. } => {
                for p in problems {
                    error!(config = %path.display(), problem = %p,
                        "reload refused; keeping the running configuration");
                }
            }
            other => error!(config = %path.display(), error = %other,
                "reload refused; keeping the running configuration"),
        }
    }
}
