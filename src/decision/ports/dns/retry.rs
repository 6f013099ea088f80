//! Timeouts, retries with backoff and jitter, and the wait for INSYNC, around any
//! [`DnsProvider`]. Providers do one call per request and no retries of their own (the
//! Route53 SDK's retries are disabled), so the attempts counted here are the real ones.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::time::Instant;

use super::{ChangeId, ChangeStatus, DnsError, DnsProvider, SwitchPolicy};
use crate::decision::ports::AdapterErrorKind;

/// First backoff; doubled on every retry up to [`BACKOFF_MAX`]. Route53 allows five
/// requests a second per account and answers PriorRequestNotComplete while an earlier
/// change to the zone is applied, so waiting a little longer each time is what it asks.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Runs `f` under `policy.call_timeout`; on a retryable failure sleeps and tries again,
/// `policy.attempts` times in all.
pub(super) async fn call<T, F, Fut>(
    policy: &SwitchPolicy,
    op: &'static str,
    mut f: F,
) -> Result<T, DnsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DnsError>>,
{
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        match timed(policy.call_timeout, op, f()).await {
            Ok(value) => return Ok(value),
            Err(e) if e.kind.is_retryable() && attempt < attempts => {
                let wait = backoff(attempt).max(e.retry_after.unwrap_or_default().min(BACKOFF_MAX));
                tracing::warn!(
                    op,
                    attempt,
                    attempts,
                    kind = %e.kind,
                    error = %e.message,
                    retry_in_ms = wait.as_millis() as u64,
                    "dns call failed; retrying"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(mut e) => {
                if attempt > 1 {
                    e.message = format!("{} (after {attempt} tries)", e.message);
                }
                return Err(e);
            }
        }
    }
}

/// Polls `change_status` until InSync or `policy.insync_timeout` has passed.
/// A failing poll does not end the wait unless it cannot succeed later.
pub(super) async fn wait_in_sync<P: DnsProvider + ?Sized>(
    provider: &P,
    change: &ChangeId,
    policy: &SwitchPolicy,
) -> Result<(), DnsError> {
    let deadline = Instant::now() + policy.insync_timeout;
    let mut polls: u32 = 0;
    let mut last_error = None;
    loop {
        polls += 1;
        match timed(
            policy.call_timeout,
            "change_status",
            provider.change_status(change),
        )
        .await
        {
            Ok(ChangeStatus::InSync) => return Ok(()),
            Ok(ChangeStatus::Pending) => {
                tracing::debug!(change = %change, polls, "change still pending");
            }
            Err(e) if e.kind.is_retryable() => {
                tracing::warn!(change = %change, polls, kind = %e.kind, error = %e.message, "change status unknown; polling again");
                last_error = Some(e);
            }
            Err(mut e) => {
                e.written = Some(change.clone());
                return Err(e);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            let why = last_error
                .map_or_else(|| "still PENDING".to_owned(), |e| format!("last poll: {e}"));
            return Err(DnsError {
                kind: AdapterErrorKind::Timeout,
                message: format!(
                    "change {change} was accepted but not in sync after {:?} ({polls} polls, {why}); the record may already point at the target",
                    policy.insync_timeout
                ),
                written: Some(change.clone()),
                retry_after: None,
            });
        }
        tokio::time::sleep(policy.poll_interval.min(deadline - now)).await;
    }
}

async fn timed<T>(
    limit: Duration,
    op: &'static str,
    fut: impl Future<Output = Result<T, DnsError>>,
) -> Result<T, DnsError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(DnsError::new(
            AdapterErrorKind::Timeout,
            format!("{op}: no answer within {limit:?}"),
        )),
    }
}

/// The wait before retry number `attempt` (1-based): exponential, capped, and with
/// "equal jitter" (half fixed, half random) so agents retrying together spread out.
pub(super) fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let ceiling = exp.min(BACKOFF_MAX);
    let half = ceiling / 2;
    half + half.mul_f64(random_unit())
}

/// A number in [0, 1) that differs call to call; std's `RandomState` is seeded per
/// instance, which is random enough for jitter.
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails once as throttled, asking for `asked`; then answers. Returns how long the
    /// retry waited, on tokio's paused clock.
    async fn waited_after_asking(asked: Duration) -> Duration {
        let policy = SwitchPolicy::default();
        let mut tries = 0;
        let start = Instant::now();
        call(&policy, "test", || {
            tries += 1;
            let first = tries == 1;
            async move {
                if first {
                    let mut e = DnsError::new(AdapterErrorKind::Throttled, "slow down");
                    e.retry_after = Some(asked);
                    Err(e)
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap();
        Instant::now() - start
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_what_the_server_asked_for_but_never_past_the_longest_backoff() {
        let waited = waited_after_asking(Duration::from_secs(3)).await;
        assert!(waited >= Duration::from_secs(3), "{waited:?}");
        let waited = waited_after_asking(Duration::from_secs(3600)).await;
        assert!(waited <= BACKOFF_MAX, "{waited:?}");
        let waited = waited_after_asking(Duration::ZERO).await;
        assert!(
            waited >= BACKOFF_BASE / 2,
            "the backoff still applies: {waited:?}"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..=10 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_MAX);
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d:?}");
            }
        }
        let distinct: std::collections::BTreeSet<_> = (0..20).map(|_| backoff(3)).collect();
        assert!(distinct.len() > 1, "no jitter: {distinct:?}");
    }
}
