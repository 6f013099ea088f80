//! `GET /api/status[/{uid}]` and `GET /api/metrics/{uid}[/latest]`: what the agent knows
//! now, read from the stores the collector and the analysis publish to. Nothing here
//! waits on Redis.
//!
//! The agent keeps only the latest collection and analysis of each endpoint; history is
//! Prometheus's job, and the answers say so rather than pretend.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::decision::fleet::Observer;
use crate::model::rfc3339;
use crate::model::{
    Analysis, AnomalyScore, AnomalyState, EndpointKey, EndpointStatus, Info, InstanceId, Routing,
    Snapshot,
};

/// What the plain metrics route says about history.
pub const NO_HISTORY: &str = "the agent keeps only the latest collection and analysis of \
    each endpoint; for history query Prometheus (redis_health_score, redis_anomaly_score, \
    redis_memory_used_bytes, redis_keyspace_hits_total, ...)";

pub(super) async fn all(State(state): State<AppState>) -> Json<Value> {
    let open = open_incidents(&state).await;
    let observations = observations(&state);
    let mut instances = Vec::new();
    for routing in state.active.all() {
        instances.push(instance_status(&state, &routing, &open, observations.as_deref()).await);
    }
    let mut body = json!({
        "generated_at": rfc3339::format(SystemTime::now()),
        "auto_failover": state.engine.as_ref().map(|e| e.settings().acts()),
        "instances": instances,
    });
    // In a fleet: this agent, its role, and the leader with its term.
    if let Some(fleet) = state.engine.as_ref().and_then(|e| e.fleet_status()) {
        body["fleet"] = json!(fleet);
    }
    Json(body)
}

pub(super) async fn one(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let routing = routing(&state, &uid)?;
    let open = open_incidents(&state).await;
    let observations = observations(&state);
    Ok(Json(
        instance_status(&state, &routing, &open, observations.as_deref()).await,
    ))
}

pub(super) async fn latest(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let routing = routing(&state, &uid)?;
    let now = Instant::now();
    let datacenters: Vec<Value> = routing
        .datacenters
        .iter()
        .map(|dc| {
            let key = EndpointKey {
                instance: routing.instance.clone(),
                datacenter: dc.clone(),
            };
            let mut view = endpoint_metrics(state.store.get(&key).as_deref(), now);
            view["datacenter"] = json!(dc);
            view["active"] = json!(*dc == routing.active);
            view
        })
        .collect();
    Ok(Json(json!({
        "instance_uid": routing.instance,
        "active_datacenter": routing.active,
        "datacenters": datacenters,
    })))
}

pub(super) async fn metrics(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let routing = routing(&state, &uid)?;
    let now = Instant::now();
    let datacenters: Vec<Value> = routing
        .datacenters
        .iter()
        .map(|dc| {
            let key = EndpointKey {
                instance: routing.instance.clone(),
                datacenter: dc.clone(),
            };
            let mut view = endpoint_metrics(state.store.get(&key).as_deref(), now);
            let analysis = state.analysis.get(&key);
            view["datacenter"] = json!(dc);
            view["active"] = json!(*dc == routing.active);
            view["health"] = health(analysis.as_deref());
            view["anomaly"] = analysis
                .as_deref()
                .map_or(Value::Null, |a| anomaly(&a.anomaly));
            view
        })
        .collect();
    Ok(Json(json!({
        "instance_uid": routing.instance,
        "active_datacenter": routing.active,
        "datacenters": datacenters,
        "history": Value::Null,
        "history_note": NO_HISTORY,
    })))
}

/// The instance, or a 404 that names it.
pub(super) fn routing(state: &AppState, uid: &str) -> Result<Routing, ApiError> {
    let all = state.active.all();
    let known: Vec<&str> = all.iter().map(|r| r.instance.as_str()).collect();
    let message = format!(
        "unknown instance {uid:?}; configured: {}",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    );
    all.iter()
        .find(|r| r.instance.as_str() == uid)
        .cloned()
        .ok_or_else(|| ApiError::not_found(message))
}

/// The incident being evaluated for each instance.
async fn open_incidents(state: &AppState) -> BTreeMap<InstanceId, u64> {
    let Some(engine) = &state.engine else {
        return BTreeMap::new();
    };
    engine
        .history(usize::MAX)
        .await
        .into_iter()
        .filter(|i| i.outcome.is_none())
        .map(|i| (i.instance, i.id))
        .collect()
}

/// In a fleet: every agent's latest observation, as the engine read it last.
fn observations(state: &AppState) -> Option<Vec<Observer>> {
    state.engine.as_ref().and_then(|e| e.observations())
}

/// How each observer saw one endpoint at its latest collection round, by name.
fn observer_views(observations: &[Observer], endpoint: &EndpointKey) -> Value {
    let views: Vec<Value> = observations
        .iter()
        .filter_map(|o| {
            let seen = o
                .endpoints
                .get(&endpoint.instance)?
                .get(&endpoint.datacenter)?;
            Some(json!({
                "observer": o.agent,
                "datacenter": o.datacenter,
                "up": seen.up,
                "latency_ms": seen.latency_ms,
                "at": rfc3339::format(seen.at),
            }))
        })
        .collect();
    json!(views)
}

/// One instance as this agent knows it; in a fleet (`observations`), each endpoint
/// also as every observer saw it.
async fn instance_status(
    state: &AppState,
    routing: &Routing,
    open: &BTreeMap<InstanceId, u64>,
    observations: Option<&[Observer]>,
) -> Value {
    let uid = &routing.instance;
    let settings = state.engine.as_ref().map(|e| e.settings());
    let name = settings
        .as_ref()
        .and_then(|s| s.instances.get(uid))
        .map(|i| i.name.clone());
    let dns_record = settings
        .as_ref()
        .and_then(|s| s.records.get(uid))
        .map(|r| r.record.name.clone());
    let cooldown_until = match &state.engine {
        Some(engine) => engine
            .cooldown_until(uid)
            .await
            .filter(|until| *until > SystemTime::now()),
        None => None,
    };
    let now = Instant::now();
    let datacenters: Vec<Value> = routing
        .datacenters
        .iter()
        .map(|dc| {
            let key = EndpointKey {
                instance: uid.clone(),
                datacenter: dc.clone(),
            };
            let status = state.store.get(&key);
            let analysis = state.analysis.get(&key);
            let round = status.as_ref().and_then(|s| s.last_round.as_ref());
            let latest = analysis.as_deref().and_then(|a| match &a.anomaly {
                AnomalyState::Ready { latest, .. } => latest.as_ref(),
                _ => None,
            });
            let mut view = json!({
                "datacenter": dc,
                "active": *dc == routing.active,
                "address": status.as_ref().map(|s| s.address.clone()),
                "up": status.as_ref().is_some_and(|s| s.fresh(now).is_some()),
                "health_score": analysis.as_ref().map(|a| a.health_score),
                "health_status": analysis.as_ref().map(|a| a.health_status.as_str()),
                "anomaly_score": latest.map(|s| s.score),
                "anomalous": latest.map(|s| s.anomalous),
                "anomaly_state": analysis.as_ref().map(|a| anomaly_state(&a.anomaly)),
                "last_collection": round.map(|r| rfc3339::format(r.at)),
                "last_success": status
                    .as_ref()
                    .and_then(|s| s.last_success.as_ref())
                    .map(|s| rfc3339::format(s.taken_at)),
                "failing_since": status
                    .as_ref()
                    .and_then(|s| s.failing_since)
                    .map(rfc3339::format),
                "last_error": round
                    .and_then(|r| r.error.as_ref())
                    .map(|e| json!({ "kind": e.kind.as_str(), "message": e.message })),
            });
            if let Some(observations) = observations {
                view["observers"] = observer_views(observations, &key);
            }
            view
        })
        .collect();
    json!({
        "instance_uid": uid,
        "name": name,
        "active_datacenter": routing.active,
        "dns_record": dns_record,
        "cooldown_until": cooldown_until.map(rfc3339::format),
        "open_incident": open.get(uid),
        "datacenters": datacenters,
    })
}

fn anomaly_state(state: &AnomalyState) -> &'static str {
    match state {
        AnomalyState::Disabled => "disabled",
        AnomalyState::WarmingUp { .. } => "warming_up",
        AnomalyState::Ready { .. } => "ready",
    }
}

fn health(analysis: Option<&Analysis>) -> Value {
    match analysis {
        Some(a) => json!({
            "score": a.health_score,
            "status": a.health_status.as_str(),
            "up": a.up,
        }),
        None => Value::Null,
    }
}

fn anomaly(state: &AnomalyState) -> Value {
    let score = |s: &AnomalyScore| {
        json!({
            "at": rfc3339::format(s.at),
            "score": s.score,
            "anomalous": s.anomalous,
            "contributors": s
                .contributors
                .iter()
                .map(|(feature, z)| json!({ "feature": feature, "zscore": z }))
                .collect::<Vec<_>>(),
        })
    };
    match state {
        AnomalyState::Disabled => json!({ "state": "disabled" }),
        AnomalyState::WarmingUp { samples, needed } => {
            json!({ "state": "warming_up", "samples": samples, "needed": needed })
        }
        AnomalyState::Ready {
            samples,
            trained_at,
            latest,
            last_anomaly,
        } => json!({
            "state": "ready",
            "samples": samples,
            "trained_at": rfc3339::format(*trained_at),
            "latest": latest.as_ref().map(score),
            "last_anomaly": last_anomaly.as_ref().map(score),
        }),
    }
}

/// The latest successful collection of an endpoint, as a sensible subset of INFO.
/// `fresh` is false when that collection is older than two intervals or the latest round
/// failed: the values are then the last known, not the current ones.
fn endpoint_metrics(status: Option<&EndpointStatus>, now: Instant) -> Value {
    let Some(status) = status else {
        return json!({ "up": false, "fresh": false, "collected_at": null });
    };
    let fresh = status.fresh(now).is_some();
    let Some(snapshot) = status.last_success.as_deref() else {
        return json!({ "up": false, "fresh": false, "collected_at": null });
    };
    let mut view = info_subset(snapshot);
    view["up"] = json!(fresh);
    view["fresh"] = json!(fresh);
    view
}

fn info_subset(snapshot: &Snapshot) -> Value {
    let info = &snapshot.info;
    let n = |field: &str| number(info, field);
    let s = |field: &str| info.get(field);
    let hits = info.number("keyspace_hits");
    let misses = info.number("keyspace_misses");
    let hit_ratio = match (hits, misses) {
        (Some(h), Some(m)) if h + m > 0.0 => Some(h / (h + m)),
        _ => None,
    };
    let keys: u64 = info.keyspace.iter().map(|db| db.keys).sum();
    let expires: u64 = info.keyspace.iter().map(|db| db.expires).sum();
    json!({
        "collected_at": rfc3339::format(snapshot.taken_at),
        "ping_latency_ms": snapshot.ping_latency.as_secs_f64() * 1000.0,
        "server": {
            "redis_version": s("redis_version"),
            "redis_mode": s("redis_mode"),
            "uptime_in_seconds": n("uptime_in_seconds"),
        },
        "memory": {
            "used_memory": n("used_memory"),
            "used_memory_rss": n("used_memory_rss"),
            "used_memory_peak": n("used_memory_peak"),
            "maxmemory": n("maxmemory"),
            "maxmemory_policy": s("maxmemory_policy"),
            "mem_fragmentation_ratio": n("mem_fragmentation_ratio"),
        },
        "clients": {
            "connected_clients": n("connected_clients"),
            "blocked_clients": n("blocked_clients"),
            "maxclients": n("maxclients"),
            "rejected_connections": n("rejected_connections"),
        },
        "stats": {
            "instantaneous_ops_per_sec": n("instantaneous_ops_per_sec"),
            "total_commands_processed": n("total_commands_processed"),
            "total_connections_received": n("total_connections_received"),
        },
        "keyspace": {
            "keyspace_hits": n("keyspace_hits"),
            "keyspace_misses": n("keyspace_misses"),
            "hit_ratio": hit_ratio,
            "keys": keys,
            "expires": expires,
            "evicted_keys": n("evicted_keys"),
            "expired_keys": n("expired_keys"),
        },
        "replication": {
            "role": info.role(),
            "connected_slaves": n("connected_slaves"),
            "master_link_status": s("master_link_status"),
            "master_repl_offset": n("master_repl_offset"),
            "replicas": info
                .replicas
                .iter()
                .map(|r| json!({
                    "ip": r.ip, "port": r.port, "state": r.state, "offset": r.offset,
                    "lag": r.lag,
                }))
                .collect::<Vec<_>>(),
        },
    })
}

/// A field as a JSON number: integers stay integers.
fn number(info: &Info, field: &str) -> Value {
    let Some(text) = info.get(field) else {
        return Value::Null;
    };
    if let Ok(n) = text.parse::<u64>() {
        return json!(n);
    }
    if let Ok(n) = text.parse::<i64>() {
        return json!(n);
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map_or(Value::Null, |f| json!(f))
}
