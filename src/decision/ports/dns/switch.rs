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
    let from = current.map_or_else(|| "(none)".to_owned(), |c| c.to_string());
    let change = retry::call(policy, "upsert", || provider.upsert(record, target)).await?;
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
