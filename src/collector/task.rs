//! The loop of one endpoint: a round every interval on a persistent connection,
//! reconnection with backoff, and the publication of each round's result.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::info::{InfoLimits, bound_sentinel_masters, sentinel_master_from_pairs};
use super::probe::current_primary;
use super::redis::{RedisConnection, ReplyCap, connect};
use crate::config::{CollectorSettings, Limits};
use crate::model::{
    CollectError, Dropped, Endpoint, EndpointStatus, ErrorKind, Round, SentinelMaster, Snapshot,
    SnapshotStore,
};

/// Exponential backoff between reconnection attempts: `interval`, then doubling, up
/// to `max`. Reset by a successful connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    next_attempt: Option<Instant>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            failures: 0,
            next_attempt: None,
        }
    }

    /// May a connection be attempted at `now`?
    pub fn ready(&self, now: Instant) -> bool {
        self.next_attempt.is_none_or(|t| now >= t)
    }

    /// Records a failed attempt at `now`; returns the wait before the next one.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let factor = 2u32.saturating_pow(self.failures - 1);
        let wait = self.base.saturating_mul(factor).min(self.max);
        // The first retry comes at the next tick: one failure is not a pattern.
        let wait = if self.failures == 1 {
            Duration::ZERO
        } else {
            wait
        };
        self.next_attempt = Some(now + wait);
        wait
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.next_attempt = None;
    }
}

pub struct EndpointTask {
    pub generation: u64,
    pub endpoint: Endpoint,
    pub settings: CollectorSettings,
    pub limits: Limits,
    pub store: Arc<SnapshotStore>,
    pub cancel: CancellationToken,
}

/// What a round may read from one endpoint.
struct Bounds {
    cap: ReplyCap,
    info: InfoLimits,
}

impl EndpointTask {
    pub async fn run(self) {
        let Self {
            generation,
            endpoint,
            settings,
            limits,
            store,
            cancel,
        } = self;
        let too_large = Arc::new(AtomicU64::new(0));
        let bounds = Bounds {
            cap: ReplyCap {
                max_bytes: limits.max_reply_bytes,
                too_large: Some(Arc::clone(&too_large)),
            },
            info: InfoLimits::from_config(&limits),
        };
        let mut status = EndpointStatus::new(
            endpoint.key.clone(),
            generation,
            endpoint.address(),
            settings.interval,
        );
        let mut conn: Option<RedisConnection> = None;
        // Jitter the backoff base slightly below the interval so it lines up with ticks.
        let mut backoff = Backoff::new(
            settings.interval.mul_f64(0.9),
            settings.reconnect_max_backoff,
        );
        let mut was_up: Option<bool> = None;

        // The first round runs at once (readiness waits for it); later rounds are
        // spread over the interval so a thousand endpoints do not all fire together.
        let offset = spread(&endpoint, settings.interval);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + offset.max(Duration::from_millis(1)),
            settings.interval,
        );
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut first = true;

        loop {
            if !first {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = ticker.tick() => {}
                }
            }
            first = false;
            let started = Instant::now();
            if conn.is_none() && !backoff.ready(started) {
                continue;
            }
            let outcome = tokio::select! {
                _ = cancel.cancelled() => break,
                outcome = round(&endpoint, &settings, &bounds, &mut conn, &mut backoff) => outcome,
            };
            let finished = Instant::now();
            let duration = finished - started;
            status.rounds += 1;
            status.total_duration += duration;
            status.replies_too_large = too_large.load(Ordering::Relaxed);
            let error = match outcome {
                Ok((snapshot, soft_error)) => {
                    status.dropped.merge(&snapshot.info.dropped);
                    if let Some(e) = &soft_error {
                        status.errors.add(e.kind);
                        debug!(redis_instance = %endpoint.key.instance, datacenter = %endpoint.key.datacenter,
                            error = %e, "optional command failed");
                    }
                    status.last_success = Some(Arc::new(snapshot));
                    // A thousand endpoints coming up at start is not news; one coming
                    // back is.
                    match was_up {
                        Some(false) => info!(redis_instance = %endpoint.key.instance,
                            datacenter = %endpoint.key.datacenter, address = %endpoint.address(),
                            "endpoint is back up"),
                        None => debug!(redis_instance = %endpoint.key.instance,
                            datacenter = %endpoint.key.datacenter, address = %endpoint.address(),
                            "endpoint is up"),
                        Some(true) => {}
                    }
                    was_up = Some(true);
                    None
                }
                Err(e) => {
                    status.errors.add(e.kind);
                    if was_up != Some(false) {
                        warn!(redis_instance = %endpoint.key.instance, datacenter = %endpoint.key.datacenter,
                            address = %endpoint.address(), kind = %e.kind, error = %e.message,
                            "collection failed");
                    } else {
                        debug!(redis_instance = %endpoint.key.instance, datacenter = %endpoint.key.datacenter,
                            kind = %e.kind, error = %e.message, "collection still failing");
                    }
                    was_up = Some(false);
                    Some(e)
                }
            };
            let at = SystemTime::now();
            status.failing_since = match &error {
                Some(_) => status.failing_since.or(Some(at)),
                None => None,
            };
            status.last_round = Some(Round {
                finished,
                at,
                duration,
                error,
            });
            store.publish(status.clone());
        }
        debug!(redis_instance = %endpoint.key.instance, datacenter = %endpoint.key.datacenter, "collection stopped");
    }
}

/// One round: connect if needed, then PING, INFO ALL, and CLUSTER INFO or SENTINEL
/// MASTERS where they apply. An error reply to PING or a failure of those last ones is
/// a soft error: counted, but the endpoint answered INFO, so it is up.
async fn round(
    endpoint: &Endpoint,
    settings: &CollectorSettings,
    bounds: &Bounds,
    slot: &mut Option<RedisConnection>,
    backoff: &mut Backoff,
) -> Result<(Snapshot, Option<CollectError>), CollectError> {
    let conn = match slot {
        Some(conn) => conn,
        None => match connect(
            &current_primary(endpoint, settings, &bounds.cap).await,
            settings,
            &bounds.cap,
        )
        .await
        {
            Ok(conn) => {
                backoff.succeeded();
                slot.insert(conn)
            }
            Err(e) => {
                backoff.failed(Instant::now());
                return Err(e);
            }
        },
    };
    let result = read(conn, &bounds.info).await;
    match &result {
        Err(e) | Ok((_, Some(e))) if breaks_connection(e.kind) => *slot = None,
        // Sentinel moved the primary (the old one came back as a replica): ask again
        // where it is before the next round.
        Ok((snapshot, _))
            if endpoint.sentinel.is_some() && snapshot.info.role() != Some("master") =>
        {
            *slot = None
        }
        _ => {}
    }
    result
}

async fn read(
    conn: &mut RedisConnection,
    limits: &InfoLimits,
) -> Result<(Snapshot, Option<CollectError>), CollectError> {
    // A server still loading its data set answers PING with LOADING but INFO works:
    // it is up, and redis_loading_dump_file says why it is not serving.
    let (ping_latency, mut soft_error) = conn.ping().await?;
    let mut info = conn.info(limits).await?;
    let cluster = if info.is_cluster_enabled() {
        match conn.cluster_info().await {
            Ok(cluster) => Some(cluster),
            Err(e) => {
                soft_error = Some(e);
                None
            }
        }
    } else {
        None
    };
    let sentinel_masters = if info.is_sentinel() {
        match sentinel_masters(conn, &mut info.dropped).await {
            Ok(masters) => masters,
            Err(e) => {
                soft_error = Some(e);
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let snapshot = Snapshot {
        taken_at: SystemTime::now(),
        finished: Instant::now(),
        ping_latency,
        info,
        cluster,
        sentinel_masters,
    };
    Ok((snapshot, soft_error))
}

async fn sentinel_masters(
    conn: &mut RedisConnection,
    dropped: &mut Dropped,
) -> Result<Vec<SentinelMaster>, CollectError> {
    let mut masters: Vec<SentinelMaster> = conn
        .sentinel_masters()
        .await?
        .iter()
        .map(|pairs| sentinel_master_from_pairs(pairs))
        .collect();
    // Bounded before CKQUORUM, which is one more command per primary.
    bound_sentinel_masters(&mut masters, dropped);
    for m in &mut masters {
        m.quorum_ok = Some(conn.sentinel_ckquorum(&m.name).await?);
    }
    Ok(masters)
}

/// After these, the connection may hold a late answer or be dead: open a new one.
fn breaks_connection(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout | ErrorKind::Io | ErrorKind::Protocol
    )
}

/// A stable offset within the interval for this endpoint.
fn spread(endpoint: &Endpoint, interval: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    endpoint.key.hash(&mut h);
    let fraction = (h.finish() % 1000) as f64 / 1000.0;
    interval.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_retries_at_once_then_doubles_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), Duration::ZERO);
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), Duration::from_secs(2));
        assert!(!b.ready(t0 + Duration::from_secs(1)));
        assert!(b.ready(t0 + Duration::from_secs(2)));
        assert_eq!(b.failed(t0), Duration::from_secs(4));
        assert_eq!(b.failed(t0), Duration::from_secs(5));
        assert_eq!(b.failed(t0), Duration::from_secs(5));
        b.succeeded();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), Duration::ZERO);
    }

    #[test]
    fn backoff_never_overflows() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(30), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(b.failed(t0) <= Duration::from_secs(60));
        }
    }
}
