//! Failback: once an instance runs away from its home datacenter (its configured
//! `active_dc`) and home has been healthy for `failback_stable_for`, recommend going
//! back (`RedisFailbackRecommended`, re-sent while it stands) and, with `auto_failback`
//! and automatic failover on, go back through a planned evaluation: the same steps, the
//! home datacenter healthy in every confirmation round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::{Engine, Inner};
use crate::decision::evaluation::Request;
use crate::decision::incident::{Record, Trigger};
use crate::decision::ports::{AgentAlert, AgentAlertName};
use crate::model::{EndpointKey, HealthStatus, InstanceId};

/// How often the watch looks, and re-sends a standing recommendation.
pub const WATCH_EVERY: Duration = Duration::from_secs(30);

impl Engine {
    /// Starts the failback watch on the engine's task tracker.
    pub fn watch_failback(&self, every: Duration) {
        let engine = self.clone();
        self.inner.tracker.spawn(async move {
            let mut healthy_since: BTreeMap<InstanceId, SystemTime> = BTreeMap::new();
            while engine.inner.sleep(every).await {
                engine
                    .failback_round(&mut healthy_since, engine.inner.deps.clock.now())
                    .await;
            }
        });
    }

    /// One look at every instance that is away from home.
    pub(super) async fn failback_round(
        &self,
        healthy_since: &mut BTreeMap<InstanceId, SystemTime>,
        now: SystemTime,
    ) {
        let inner: &Arc<Inner> = &self.inner;
        if inner.fleet.as_ref().is_some_and(|f| f.term().is_err()) {
            // In a fleet, the leader watches.
            return;
        }
        let settings = inner.settings();
        for (uid, instance) in &settings.instances {
            let home = &instance.active_dc;
            let away = inner.deps.active.get(uid).is_some_and(|a| &a != home);
            let open = inner.state.lock().await.ledger.open_for(uid).is_some();
            if !away || open {
                healthy_since.remove(uid);
                continue;
            }
            let key = EndpointKey {
                instance: uid.clone(),
                datacenter: home.clone(),
            };
            let healthy = inner
                .deps
                .analysis
                .get(&key)
                .is_some_and(|a| a.up && a.health_status == HealthStatus::Healthy);
            if !healthy {
                healthy_since.remove(uid);
                continue;
            }
            let since = *healthy_since.entry(uid.clone()).or_insert(now);
            if now.duration_since(since).unwrap_or_default() < settings.failover.failback_stable_for
            {
                continue;
            }
            let recorded = inner.state.lock().await.ledger.failback.get(uid) == Some(home);
            if !recorded {
                let record = Record::FailbackRecommended {
                    instance: uid.clone(),
                    to: home.clone(),
                    at: now,
                };
                if let Err(e) = inner.record(vec![record]).await {
                    warn!(redis_instance = %uid, error = %e, "cannot record the failback recommendation");
                    continue;
                }
                info!(redis_instance = %uid, to = %home, "failback recommended");
            }
            self.tell_failback(uid, home.as_str(), &settings.failover.failback_stable_for)
                .await;
            if settings.failover.auto_failback && settings.acts() {
                let trigger = Trigger {
                    source: "failback".into(),
                    name: format!(
                        "{home} healthy for {}",
                        crate::config_kit::duration::show(settings.failover.failback_stable_for)
                    ),
                    fingerprint: String::new(),
                    datacenter: Some(home.clone()),
                };
                let request = Request {
                    target: Some(home.clone()),
                    force: false,
                    planned: true,
                };
                let mut out = super::Submitted::default();
                if let Err(e) = self
                    .start_with(uid, trigger, Some(request), true, &mut out, None)
                    .await
                {
                    warn!(redis_instance = %uid, error = %e, "cannot start the failback");
                }
                healthy_since.remove(uid);
            }
        }
    }

    async fn tell_failback(&self, uid: &InstanceId, home: &str, stable: &Duration) {
        let alert = AgentAlert::new(
            AgentAlertName::RedisFailbackRecommended,
            self.inner.deps.clock.now(),
            uid.as_str(),
            Some(home),
            format!("{uid} can go back to {home}"),
            format!(
                "{home}, the home datacenter of {uid}, has been healthy for {}: fail back \
                 when convenient (POST /api/failover/{uid} with target_dc {home}).",
                crate::config_kit::duration::show(*stable)
            ),
        );
        if let Some(notifier) = &self.inner.deps.notifier
            && let Err(e) = notifier.notify(std::slice::from_ref(&alert)).await
        {
            warn!(redis_instance = %uid, error = %e, "cannot tell Alertmanager about the failback");
        }
    }
}
