//! The decision engine and what it acts through: each integration's adapter from its
//! own `build()`, the settings the engine reads of the configuration, and the journal it
//! replays at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use super::{Families, Options, Shared};
use crate::actuators::hooks::ProcessHooks;
use crate::actuators::{alertmanager, dns};
use crate::advisors::ai::config::AiService;
use crate::advisors::{ai, client_impact};
use crate::collector::probe::RedisProber;
use crate::config::Config;
use crate::coordination::etcd::EtcdCoordination;
use crate::decision::clock::SystemClock;
use crate::decision::engine::{self, Engine};
use crate::decision::journal::Opening;
use crate::decision::ports::{Coordination, SwitchPolicy};
use crate::model::{DatacenterId, InstanceId};

/// What the engine acts through: the prober, and each integration's adapter from its
/// own `build()`, `None` where it is not configured.
fn engine_deps(
    config: &Config,
    shared: &Shared,
    families: &Families,
    cancel: &CancellationToken,
) -> anyhow::Result<engine::Deps> {
    let dns = config
        .dns
        .as_ref()
        .map(|dns| {
            dns::config::build(dns)
                .with_context(|| format!("dns_provider {:?} cannot start", dns.provider.name()))
        })
        .transpose()?;
    let notifier = config
        .alertmanager
        .as_ref()
        .map(|am| {
            alertmanager::config::build(am).context("alertmanager: cannot set up the notifier")
        })
        .transpose()?;
    Ok(engine::Deps {
        prober: Arc::new(RedisProber::new(config.collector).with_limits(config.limits)),
        dns,
        notifier,
        hooks: Arc::new(ProcessHooks),
        analysis: Arc::clone(&shared.analysis),
        store: Arc::clone(&shared.store),
        enterprise: Arc::clone(&shared.enterprise),
        active: Arc::clone(&shared.active),
        metrics: families.decisions.clone(),
        advisors: build_advisors(config)?,
        clock: Arc::new(SystemClock),
        coordination: config
            .coordination
            .as_ref()
            .map(|c| Arc::new(EtcdCoordination::start(c, cancel)) as Arc<dyn Coordination>),
    })
}

/// The engine with its adapters; it replays its journal and finishes what a previous
/// run left open.
pub(super) async fn start_engine(
    config: &Config,
    options: &Options,
    shared: &Shared,
    families: &Families,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> anyhow::Result<Engine> {
    let deps = engine_deps(config, shared, families, cancel)?;
    let opening = if options.journal_start_over {
        Opening::StartOver
    } else {
        Opening::Refuse
    };
    Engine::open_with(
        &config.state_dir,
        opening,
        engine_settings(config, options.no_failover),
        deps,
        tracker.clone(),
        cancel.clone(),
    )
    .await
    .with_context(|| format!("state_dir {}", config.state_dir.display()))
}

/// What the engine reads of `config`, with each instance's DNS record as the DNS
/// integration reads it from `dns_config`: the engine knows records, not their
/// configuration.
pub(super) fn engine_settings(config: &Config, no_failover: bool) -> engine::Settings {
    engine::Settings {
        instances: config
            .instances
            .iter()
            .map(|i| (i.uid.clone(), i.clone()))
            .collect(),
        failover: config.failover.clone(),
        records: instance_records(config),
        no_failover,
        switch: SwitchPolicy::default(),
        ai_max_hold: config.ai_max_hold(),
        effect_window: (engine::EFFECT_BEFORE, engine::EFFECT_AFTER),
        limits: config.limits,
        observers: observer_settings(config),
    }
}

/// Whom the leader's confirmation rounds count: `coordination.agents` and
/// `coordination.quorum`, in the engine's terms.
fn observer_settings(config: &Config) -> engine::ObserverSettings {
    let Some(coordination) = &config.coordination else {
        return engine::ObserverSettings::default();
    };
    engine::ObserverSettings {
        agents: coordination
            .agents
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    a.datacenter.as_deref().map(DatacenterId::new),
                )
            })
            .collect(),
        quorum: coordination.quorum,
    }
}

/// Each instance's record of `dns_config.records`, with its value per datacenter. A
/// record naming no instance or an unknown type (which validation refuses) is left out.
fn instance_records(config: &Config) -> BTreeMap<InstanceId, engine::InstanceRecord> {
    let Some(dns) = &config.dns else {
        return BTreeMap::new();
    };
    dns.records
        .iter()
        .filter_map(|r| {
            let instance = config
                .instances
                .iter()
                .find(|i| i.name == r.instance_name)?;
            let record = dns.record_ref(r).ok()?;
            let values = r.values_for(instance);
            let record = engine::InstanceRecord {
                record,
                ttl: r.ttl,
                values,
            };
            Some((instance.uid.clone(), record))
        })
        .collect()
}

/// The client impact source (`use_elk`) and the AI advisor (`use_azure_openai`).
pub(super) fn build_advisors(config: &Config) -> anyhow::Result<engine::Advisors> {
    let client_impact = config
        .elk
        .as_ref()
        .map(|elk| client_impact::build(elk, &config.instances))
        .transpose()
        .map_err(|e| anyhow::anyhow!("elk: cannot set up the client: {e}"))?;
    let ai = config
        .azure_openai
        .as_ref()
        .map(ai::build)
        .transpose()
        .map_err(|e| anyhow::anyhow!("azure_openai: cannot set up the client: {e}"))?;
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
                AiService::Azure { .. } => "azure_openai",
                AiService::OpenAiCompatible { .. } => "openai_compatible",
            }),
        "advisors"
    );
    Ok(engine::Advisors { client_impact, ai })
}
