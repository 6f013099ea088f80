//! On every start the engine reads each instance's DNS record and takes the active
//! datacenter from there: DNS is where the clients go, whatever the journal (which may
//! be lost, cut or started over) or the configuration's `active_dc` say.
//!
//! - DNS names a datacenter of the instance other than the journal's: DNS wins. It is
//!   logged (WARN), counted (`redis_agent_active_datacenter_mismatches_total{dns=
//!   "other_datacenter"}`), and recorded in the journal (`adopted`) so the ledger and DNS
//!   agree from then on.
//! - DNS holds a value no datacenter of the instance has, or no record: the journal's
//!   view is kept, logged and counted (`dns="unknown_value"` / `"missing"`); an operator
//!   must look.
//! - The `dry-run` provider is not read: it knows only its own pretend changes, and
//!   "no record" would be a false alarm on every start.
//! - DNS cannot be read (each read is bounded by `switch.call_timeout`): the journal's
//!   view is kept, logged and counted, and the read is tried again in the background,
//!   waiting twice as long each time up to [`DNS_RETRY_MAX`], until it answers. Startup
//!   never waits longer than one call timeout for this.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::{Inner, InstanceRecord};
use crate::decision::incident::{Record, cut_label};
use crate::decision::ports::{DnsProvider, RecordValue};
use crate::model::{DatacenterId, InstanceId};

/// The longest wait between two background reads of a record DNS did not answer for.
pub const DNS_RETRY_MAX: Duration = Duration::from_secs(300);
/// The first wait before reading again.
const DNS_RETRY_FIRST: Duration = Duration::from_secs(5);

/// Reads every instance's record once (in parallel), adopts what DNS says, and leaves a
/// background task retrying those that could not be read.
pub(super) async fn at_start(inner: &Arc<Inner>) {
    let Some(dns) = inner.deps.dns.clone() else {
        return;
    };
    if !dns.reads_the_zone() {
        debug!(
            provider = dns.name(),
            "DNS not read at start: the provider pretends"
        );
        return;
    }
    let settings = inner.settings();
    let instances: Vec<InstanceId> = settings
        .records
        .keys()
        .filter(|uid| settings.instances.contains_key(*uid))
        .cloned()
        .collect();
    for uid in &instances {
        inner.deps.metrics.dns_check_started(uid.as_str());
    }
    let unread = read_all(inner, &dns, instances).await;
    if unread.is_empty() {
        return;
    }
    let inner = Arc::clone(inner);
    let tracker = inner.tracker.clone();
    tracker.spawn(async move {
        let mut unread = unread;
        let mut wait = DNS_RETRY_FIRST;
        while !unread.is_empty() {
            if !inner.sleep(wait).await {
                return;
            }
            unread = read_all(&inner, &dns, unread).await;
            wait = (wait * 2).min(DNS_RETRY_MAX);
        }
    });
}

/// Reads and adopts each instance's record; returns those to read again.
async fn read_all(
    inner: &Arc<Inner>,
    dns: &Arc<dyn DnsProvider>,
    instances: Vec<InstanceId>,
) -> Vec<InstanceId> {
    let settings = inner.settings();
    let mut reads = JoinSet::new();
    for uid in instances {
        // A reload may have removed the instance or its record meanwhile.
        let Some(record) = settings.records.get(&uid).cloned() else {
            continue;
        };
        let (inner, dns) = (Arc::clone(inner), Arc::clone(dns));
        let timeout = settings.switch.call_timeout;
        reads.spawn(async move {
            let done = check(&inner, dns.as_ref(), &uid, &record, timeout).await;
            (!done).then_some(uid)
        });
    }
    let mut again = Vec::new();
    while let Some(read) = reads.join_next().await {
        again.extend(read.ok().flatten());
    }
    again
}

/// One read; true when it is settled (DNS answered and what it said was handled).
async fn check(
    inner: &Inner,
    dns: &dyn DnsProvider,
    uid: &InstanceId,
    record: &InstanceRecord,
    timeout: Duration,
) -> bool {
    let metrics = &inner.deps.metrics;
    let value = match tokio::time::timeout(timeout, dns.read(&record.record)).await {
        Ok(Ok(value)) => value,
        failed => {
            let error = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer in {timeout:?}"),
            };
            metrics.dns_check(uid.as_str(), false);
            warn!(redis_instance = %uid, record = %record.record, error = %error,
                "cannot read the DNS record to learn the active datacenter; keeping the journal's view and trying again later");
            return false;
        }
    };
    metrics.dns_check(uid.as_str(), true);
    let Some(believed) = inner.deps.active.get(uid) else {
        return true;
    };
    let Some(value) = value else {
        metrics.mismatch(uid.as_str(), "missing");
        warn!(redis_instance = %uid, record = %record.record, active = %believed,
            "the DNS record does not exist; keeping the journal's active datacenter");
        return true;
    };
    let Some(in_dns) = datacenter_named(record, &value) else {
        metrics.mismatch(uid.as_str(), "unknown_value");
        warn!(redis_instance = %uid, record = %record.record,
            dns = ?cut_label(&value.values.join(","), 256), active = %believed,
            "the DNS record points at no datacenter of the instance; keeping the journal's active datacenter");
        return true;
    };
    if *in_dns == believed {
        debug!(redis_instance = %uid, active = %believed, "DNS agrees with the journal");
        return true;
    }
    // Not while an evaluation of the instance runs: it reads DNS itself before acting.
    let state = inner.lock_state().await;
    if state.ledger.open_for(uid).is_some() {
        return false;
    }
    metrics.mismatch(uid.as_str(), "other_datacenter");
    warn!(redis_instance = %uid, record = %record.record, dns = %in_dns, journal = %believed,
        "DNS sends the clients to another datacenter than the journal says; taking DNS's");
    inner.deps.active.set(uid, in_dns);
    let adopted = Record::Adopted {
        instance: uid.clone(),
        active: in_dns.clone(),
        previous: believed,
        at: inner.deps.clock.now(),
    };
    match inner.append(state, vec![adopted]).await {
        Ok(()) => {
            info!(redis_instance = %uid, active = %in_dns, "recorded the active datacenter DNS gave")
        }
        Err(e) => warn!(redis_instance = %uid, error = %e,
            "cannot record the active datacenter DNS gave; it is used all the same"),
    }
    true
}

/// The datacenter of the instance whose value the record holds, if any.
pub(super) fn datacenter_named<'r>(
    record: &'r InstanceRecord,
    value: &RecordValue,
) -> Option<&'r DatacenterId> {
    record.values.iter().find_map(|(dc, v)| {
        value
            .points_at(
                &RecordValue::single(v.clone(), record.ttl),
                record.record.record_type,
            )
            .then_some(dc)
    })
}
