//! Step 6 of an evaluation: the plan and the acts (pre-failover hook, promotion, the
//! DNS change with its intent on disk first, post-failover hook) and step 7, the
//! verification.

use serde_json::json;

use super::evaluate::step;
use super::probes::probe_round;
use super::{EngineError, Inner, InstanceRecord, Settings};
use crate::decision::incident::{Outcome, Record};
use crate::decision::policy::Hold;
use crate::decision::ports::{DnsProvider, HookContext, RecordValue, SwitchOutcome};
use crate::model::{DatacenterId, Instance, InstanceId};

/// What the policy chose, and what to change.
pub(super) struct Plan<'a> {
    pub id: u64,
    pub instance: &'a InstanceId,
    pub inst: &'a Instance,
    pub active: &'a DatacenterId,
    pub target: &'a DatacenterId,
    pub confidence: f64,
    pub record: &'a InstanceRecord,
    pub dns: &'a dyn DnsProvider,
    /// The record's value for the target datacenter.
    pub value: String,
    /// `failover` or `failback`, for the hooks.
    pub action: &'static str,
}

pub(super) async fn act(
    inner: &Inner,
    settings: &Settings,
    plan: Plan<'_>,
) -> Result<Outcome, EngineError> {
    let Plan {
        id,
        instance,
        inst,
        active,
        target,
        confidence,
        record,
        dns,
        value,
        action,
    } = plan;
    let context = HookContext {
        instance: instance.as_str(),
        from: active.as_str(),
        to: target.as_str(),
        action,
    };
    if let Some(args) = &settings.failover.hooks.pre_failover {
        let run = inner
            .deps
            .hooks
            .run(args, &context, settings.failover.hooks.timeout)
            .await;
        let ok = run.succeeded();
        inner
            .step(
                id,
                step(
                    "pre_failover_hook",
                    if ok { "ok" } else { "hold" },
                    run.summary(),
                    serde_json::to_value(&run).unwrap_or_default(),
                ),
            )
            .await?;
        if !ok {
            return Ok(Outcome::Held(Hold::Vetoed {
                detail: run.summary(),
            }));
        }
    }
    if settings.failover.promote.contains(instance)
        && let Some(endpoint) = inst.endpoints.get(target)
    {
        let result = inner.deps.prober.promote(endpoint).await;
        let (outcome, detail) = match &result {
            Ok(()) => ("ok", format!("REPLICAOF NO ONE on {target}")),
            Err(e) => (
                "failed",
                format!("REPLICAOF NO ONE on {target} failed: {e}"),
            ),
        };
        inner
            .step(id, step("promote", outcome, detail.clone(), json!(null)))
            .await?;
        if result.is_err() {
            return Ok(Outcome::Failed { detail });
        }
    }
    let target_value = RecordValue::single(value.clone(), record.ttl);
    inner
        .record(vec![Record::Intent {
            incident: id,
            instance: instance.clone(),
            from: active.clone(),
            to: target.clone(),
            record: record.record.name.clone(),
            values: vec![value.clone()],
        }])
        .await?;
    crash_point("after_intent");
    let switched = dns
        .switch(&record.record, &target_value, &settings.switch)
        .await;
    if switched.is_ok() {
        crash_point("after_dns");
    }
    match switched {
        Ok(outcome) => {
            let (change, detail) = match &outcome {
                SwitchOutcome::AlreadyPointing => (
                    None,
                    format!("{} already pointed at {value}", record.record.name),
                ),
                SwitchOutcome::Changed {
                    change,
                    in_sync_after,
                } => (
                    Some(change.0.clone()),
                    format!(
                        "{} -> {value}, in sync after {} ms",
                        record.record.name,
                        in_sync_after.as_millis()
                    ),
                ),
            };
            inner
                .step(id, step("dns", "ok", detail, json!(null)))
                .await?;
            inner
                .record(vec![Record::Applied {
                    incident: id,
                    instance: instance.clone(),
                    to: target.clone(),
                    change,
                }])
                .await?;
            inner.deps.active.set(instance, target);
        }
        Err(e) => {
            let detail = match &e.written {
                Some(change) => format!("DNS change {} written but not confirmed: {e}", change.0),
                None => format!("DNS change failed: {e}"),
            };
            inner
                .step(id, step("dns", "failed", detail.clone(), json!(null)))
                .await?;
            return Ok(Outcome::Failed { detail });
        }
    }
    if let Some(args) = &settings.failover.hooks.post_failover {
        let run = inner
            .deps
            .hooks
            .run(args, &context, settings.failover.hooks.timeout)
            .await;
        let outcome = if run.succeeded() { "ok" } else { "failed" };
        inner
            .step(
                id,
                step(
                    "post_failover_hook",
                    outcome,
                    run.summary(),
                    serde_json::to_value(&run).unwrap_or_default(),
                ),
            )
            .await?;
    }

    // 7. Verification: the new active datacenter answers.
    let verify = probe_round(inner, inst, std::slice::from_ref(target)).await;
    let up = verify.probes.first().is_some_and(|p| p.up);
    inner
        .step(
            id,
            step(
                "verify",
                if up { "ok" } else { "failed" },
                format!(
                    "{target} {}",
                    if up { "answers" } else { "does not answer" }
                ),
                serde_json::to_value(&verify).unwrap_or_default(),
            ),
        )
        .await?;
    Ok(Outcome::FailedOver {
        from: active.clone(),
        to: target.clone(),
        confidence,
    })
}

/// For the crash tests only: with `REDIS_FAILOVER_AGENT_CRASH_AT` set to this point's name,
/// the process aborts here, as a `kill -9` would stop it.
fn crash_point(name: &str) {
    if std::env::var_os("REDIS_FAILOVER_AGENT_CRASH_AT").is_some_and(|v| v == name) {
        tracing::error!(
            point = name,
            "REDIS_FAILOVER_AGENT_CRASH_AT: aborting as asked"
        );
        std::process::abort();
    }
}
