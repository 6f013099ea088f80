//! Wiring: the store, the collector, the registry and the HTTP listener, then signals.
//! SIGTERM or Ctrl-C drains and stops; SIGHUP reloads the configuration file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::actuators::alertmanager::{AlertmanagerNotifier, NotifierSettings};
use crate::actuators::dns;
use crate::actuators::hooks::ProcessHooks;
use crate::advisors::{ai, client_impact};
use crate::anomaly::{AnomalyEngine, AnomalySettings, detector::DetectorSettings};
use crate::api::{self, Access, AppState};
use crate::collector::Collector;
use crate::collector::probe::RedisProber;
use crate::config::{self, Config, ConfigError};
use crate::decision::clock::SystemClock;
use crate::decision::counters::DecisionMetrics;
use crate::decision::engine::{self, Engine};
use crate::decision::journal::Opening;
use crate::decision::ports::Notifier;
use crate::metrics::Metrics;
use crate::model::{ActiveDatacenters, AnalysisStore, SnapshotStore};

/// How long shutdown waits for the listener and the collection tasks.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Options {
    /// The file to reload on SIGHUP; `None` for the embedded default.
    pub config_path: Option<PathBuf>,
    /// Overrides `api.host` and `api.port`.
    pub listen: Option<SocketAddr>,
    /// Monitor only, whatever `auto_failover` says.
    pub no_failover: bool,
    /// `--journal-start-over`: a damaged journal is moved aside and the agent starts
    /// with an empty one, instead of refusing to start.
    pub journal_start_over: bool,
}

type Reloads = Family<Vec<(String, String)>, Counter>;

pub async fn run(config: Config, options: Options) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let store = Arc::new(SnapshotStore::new());
    let collector = Collector::new(Arc::clone(&store), tracker.clone(), cancel.clone());

    let analysis = Arc::new(AnalysisStore::new());
    let active = Arc::new(ActiveDatacenters::new());
    active.apply(&config.instances);
    let mut metrics = Metrics::new(
        Arc::clone(&store),
        Arc::clone(&analysis),
        Arc::clone(&active),
        config.anomaly_threshold,
    );
    let reloads = Reloads::default();
    metrics.registry_mut().register(
        "redis_agent_config_reloads",
        "Configuration reloads on SIGHUP, by result",
        reloads.clone(),
    );
    let decisions = DecisionMetrics::register(metrics.registry_mut());
    let http_metrics = api::HttpMetrics::register(metrics.registry_mut());
    // Both results from the start, so `increase()` sees the first failure.
    for result in ["success", "failure"] {
        reloads
            .get_or_create(&vec![("result".to_owned(), result.to_owned())])
            .inc_by(0);
    }
    let metrics = Arc::new(metrics);

    let listen = match options.listen {
        Some(addr) => addr,
        None => format!("{}:{}", config.api.host, config.api.port)
            .parse()
            .with_context(|| format!("api.host {:?} is not an address", config.api.host))?,
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().unwrap_or(listen);

    let changes = collector.apply(&config);
    let engine = AnomalyEngine::new(
        Arc::clone(&store),
        Arc::clone(&analysis),
        anomaly_settings(&config),
    );
    tracker.spawn(engine.run(cancel.clone()));
    let failover = if options.no_failover || !config.failover.auto {
        "off (monitor only)"
    } else {
        "automatic"
    };
    info!(listen = %local, endpoints = changes.started, interval = %config::show_duration(config.collector.interval),
        failover, "agent started");

    let engine = start_engine(
        &config,
        &options,
        engine::Deps {
            prober: Arc::new(RedisProber::new(config.collector).with_limits(config.limits)),
            dns: None,
            notifier: None,
            hooks: Arc::new(ProcessHooks),
            analysis: Arc::clone(&analysis),
            store: Arc::clone(&store),
            active: Arc::clone(&active),
            metrics: decisions.clone(),
            advisors: build_advisors(&config)?,
            clock: Arc::new(SystemClock),
        },
        tracker.clone(),
        cancel.clone(),
    )
    .await?;
    engine.watch_failback(engine::WATCH_EVERY);
    let access = Arc::new(std::sync::RwLock::new(Access::from_config(&config)));
    let state = AppState {
        metrics,
        store: Arc::clone(&store),
        analysis: Arc::clone(&analysis),
        active: Arc::clone(&active),
        engine: Some(engine.clone()),
        access: Arc::clone(&access),
        decisions,
        // The listener's limits are taken at start; SIGHUP does not change them.
        http: config.limits.http,
        http_metrics: http_metrics.clone(),
    };
    tracker.spawn(api::serve(
        listener,
        api::router(state),
        config.limits.http,
        http_metrics,
        cancel.clone(),
    ));

    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    loop {
        tokio::select! {
            _ = sigterm.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = tokio::signal::ctrl_c() => { info!("interrupted: shutting down"); break; }
            _ = cancel.cancelled() => break,
            _ = sighup.recv() => reload(&options, &collector, &active, &engine, &access, &reloads),
        }
    }

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
    Ok(())
}

/// The DNS provider and the notifier from the configuration, then the engine, which
/// replays its journal and finishes what a previous run left open.
async fn start_engine(
    config: &Config,
    options: &Options,
    mut deps: engine::Deps,
    tracker: TaskTracker,
    cancel: CancellationToken,
) -> anyhow::Result<Engine> {
    if let Some(settings) = &config.dns {
        let provider = dns::build(settings)
            .with_context(|| format!("dns_provider {:?} cannot start", settings.provider))?;
        deps.dns = Some(provider);
    }
    if let Some(am) = &config.alertmanager {
        let notifier = AlertmanagerNotifier::new(NotifierSettings {
            urls: am.urls.clone(),
            timeout: am.timeout,
            resolve_after: am.resolve_after,
            ..NotifierSettings::default()
        })
        .context("alertmanager: cannot set up the notifier")?;
        deps.notifier = Some(Arc::new(notifier) as Arc<dyn Notifier>);
    }
    let opening = if options.journal_start_over {
        Opening::StartOver
    } else {
        Opening::Refuse
    };
    Engine::open_with(
        &config.state_dir,
        opening,
        engine::Settings::from_config(config, options.no_failover),
        deps,
        tracker,
        cancel,
    )
    .await
    .with_context(|| format!("state_dir {}", config.state_dir.display()))
}

/// The client impact source (`use_elk`) and the AI advisor (`use_azure_openai`).
fn build_advisors(config: &Config) -> anyhow::Result<engine::Advisors> {
    let client_impact = match &config.elk {
        Some(elk) => Some(
            client_impact::build(elk, &config.instances)
                .map_err(|e| anyhow::anyhow!("elk: cannot set up the client: {e}"))?,
        ),
        None => None,
    };
    let ai = match &config.azure_openai {
        Some(settings) => Some(
            ai::build(settings)
                .map_err(|e| anyhow::anyhow!("azure_openai: cannot set up the client: {e}"))?,
        ),
        None => None,
    };
    info!(
        client_impact = if client_impact.is_some() {
            "elasticsearch"
        } else {
            "off"
        },
        ai = config
            .azure_openai
            .as_ref()
            .map_or("off", |a| match a.service {
                config::AiService::Azure { .. } => "azure_openai",
                config::AiService::OpenAiCompatible { .. } => "openai_compatible",
            }),
        "advisors"
    );
    Ok(engine::Advisors { client_impact, ai })
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

fn reload(
    options: &Options,
    collector: &Collector,
    active: &ActiveDatacenters,
    engine: &Engine,
    access: &std::sync::RwLock<Access>,
    reloads: &Reloads,
) {
    let Some(path) = &options.config_path else {
        info!("SIGHUP: running on the embedded default, nothing to reload");
        return;
    };
    let result = |r: &str| vec![("result".to_owned(), r.to_owned())];
    match config::load_file(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                warn!(config = %path.display(), "{w}");
            }
            let changes = collector.apply(&loaded.config);
            active.apply(&loaded.config.instances);
            engine.reload(engine::Settings::from_config(
                &loaded.config,
                options.no_failover,
            ));
            match build_advisors(&loaded.config) {
                Ok(advisors) => engine.set_advisors(advisors),
                Err(e) => error!(config = %path.display(), error = %e,
                    "advisors not reloaded; keeping the running ones"),
            }
            *access.write().unwrap_or_else(|e| e.into_inner()) =
                Access::from_config(&loaded.config);
            reloads.get_or_create(&result("success")).inc();
            info!(config = %path.display(), started = changes.started, stopped = changes.stopped,
                restarted = changes.restarted, unchanged = changes.unchanged,
                "configuration reloaded");
        }
        Err(e) => {
            reloads.get_or_create(&result("failure")).inc();
            match e {
                ConfigError::Invalid { problems, .. } => {
                    for p in problems {
                        error!(config = %path.display(), problem = %p, "reload refused; keeping the running configuration");
                    }
                }
                other => error!(config = %path.display(), error = %other,
                    "reload refused; keeping the running configuration"),
            }
        }
    }
}
