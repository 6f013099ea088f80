//! [`DnsProvider::switch`]: the read, the write and the wait for INSYNC, each call under
//! its timeout and retried as `retry.rs` says.

use tokio::time::Instant;

use super::retry;
use super::{
    DnsError, DnsProvider, RecordRef, RecordType, RecordValue, SwitchOutcome, SwitchPolicy,
};
use crate::decision::ports::AdapterErrorKind;

/// See [`DnsProvider::switch`].
pub(super) async fn switch<P: DnsProvider + ?Sized>(
    provider: &P,
    record: &RecordRef,
    target: &RecordValue,
    policy: &SwitchPolicy,
) -> Result<SwitchOutcome, DnsError> {
    let provider_name = provider.name();
    check_target(record, target)?;
    let current = retry::call(policy, "read", || provider.read(record)).await?;
    if let Some(current) = current
        .as_ref()
        .filter(|c| c.points_at(target, record.record_type))
    {
        tracing::info!(
            provider = provider_name,
            record = %record,
            current = %current,
            "record already points at the target; nothing written"
        );
        return Ok(SwitchOutcome::AlreadyPointing);
    }
    let from = current
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), ToString::to_string);
    let written = retry::call(policy, "write", || {
        provider.write(record, current.as_ref(), target)
    })
    .await;
    let change = match written {
        Ok(change) => change,
        Err(e) if e.kind == AdapterErrorKind::Stale => {
            return after_stale_write(provider, record, current.as_ref(), target, policy, e).await;
        }
        Err(e) => return Err(e),
    };
    let accepted = Instant::now();
    tracing::info!(
        provider = provider_name,
        record = %record,
        from = %from,
        to = %target,
        change = %change,
        "record change accepted; waiting for it to be in sync"
    );
    retry::wait_in_sync(provider, &change, policy).await?;
    let in_sync_after = accepted.elapsed();
    tracing::info!(
        provider = provider_name,
        record = %record,
        change = %change,
        in_sync_after_ms = in_sync_after.as_millis() as u64,
        "record change in sync"
    );
    Ok(SwitchOutcome::Changed {
        change,
        in_sync_after,
    })
}

/// The write was refused because the record no longer held what was read. One more read
/// says what happened; nothing is written again in this call. Re-reading and writing
/// over the new value would undo another writer's change without anyone deciding it:
/// with one agent that writer is a person or another tool, with a fleet a leader that
/// should not be acting. Whoever calls `switch` decides afresh with what is there now.
async fn after_stale_write<P: DnsProvider + ?Sized>(
    provider: &P,
    record: &RecordRef,
    expected: Option<&RecordValue>,
    target: &RecordValue,
    policy: &SwitchPolicy,
    refused: DnsError,
) -> Result<SwitchOutcome, DnsError> {
    let now = retry::call(policy, "read", || provider.read(record)).await?;
    let show = |v: Option<&RecordValue>| v.map_or_else(|| "(none)".to_owned(), ToString::to_string);
    if let Some(now) = now
        .as_ref()
        .filter(|n| n.points_at(target, record.record_type))
    {
        tracing::info!(
            provider = provider.name(),
            record = %record,
            current = %now,
            "record changed since it was read and now points at the target; nothing written"
        );
        return Ok(SwitchOutcome::AlreadyPointing);
    }
    let message = format!(
        "{record} changed since it was read: now {}, expected {}; nothing written ({})",
        show(now.as_ref()),
        show(expected),
        refused.message
    );
    tracing::warn!(
        provider = provider.name(),
        record = %record,
        found = %show(now.as_ref()),
        expected = %show(expected),
        target = %target,
        "record changed since it was read; nothing written"
    );
    Err(DnsError::new(AdapterErrorKind::Stale, message))
}

/// Refuses, before any call, a target no DNS server would accept.
fn check_target(record: &RecordRef, target: &RecordValue) -> Result<(), DnsError> {
    let problem = if target.values.is_empty() || target.values.iter().any(|v| v.trim().is_empty()) {
        Some("an empty value".to_owned())
    } else if record.record_type == RecordType::Cname && target.values.len() > 1 {
        Some(format!(
            "{} values; a CNAME has exactly one",
            target.values.len()
        ))
    } else {
        target
            .values
            .iter()
            .find(|v| match record.record_type {
                RecordType::A => v.trim().parse::<std::net::Ipv4Addr>().is_err(),
                RecordType::Aaaa => v.trim().parse::<std::net::Ipv6Addr>().is_err(),
                RecordType::Cname => false,
            })
            .map(|v| format!("{v:?}, which is not an {} address", record.record_type))
    };
    match problem {
        Some(p) => Err(DnsError::new(
            AdapterErrorKind::Invalid,
            format!("cannot point {record} at {p}"),
        )),
        None => Ok(()),
    }
}
