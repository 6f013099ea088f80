//! What every DNS provider owes the engine, as one suite: [`run_contract`]. The unit
//! tests run it against [`MemoryDns`] and the dry-run provider, `tests/route53.rs`
//! against Route53 on moto, and each new provider runs it against its own stand-in.
//!
//! The suite drives the provider through [`DnsProvider::switch`], the way the engine
//! does, and looks behind it through a [`ContractZone`]: the backend, reached without
//! the provider, that can also misbehave on request. A backend that cannot produce a
//! fault (moto never throttles by itself; dry-run never answers Pending) says so: the
//! case is not run, and [`run_contract`] returns it among the cases left out, which
//! each caller asserts, so a case never passes on pretence nor goes missing unseen.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    ChangeId, ChangeStatus, DnsError, DnsProvider, MemoryDns, Op, RecordRef, RecordType,
    RecordValue, SwitchOutcome, SwitchPolicy,
};
use crate::decision::ports::AdapterErrorKind;

/// The backend a provider talks to, seen from the test.
#[async_trait::async_trait]
pub trait ContractZone: Send + Sync {
    /// Puts `value` in the zone directly, not through the provider: the state a case
    /// starts from, and another writer racing the provider.
    async fn put(&self, record: &RecordRef, value: &RecordValue);
    /// Writes the provider sent to the backend so far.
    fn writes(&self) -> usize;
    /// Change-status polls the provider sent so far.
    fn polls(&self) -> usize;
    /// The next `polls` status polls answer Pending; `false` if the backend cannot.
    fn pending_for(&self, polls: u32) -> bool;
    /// The next `times` writes are refused as the backend refuses when it throttles;
    /// `false` if it cannot.
    fn throttle_writes(&self, times: u32) -> bool;
    /// Whether the backend itself refuses a write based on a stale read. `false` for a
    /// stand-in that does not check (moto), so the case is not passed on pretence.
    fn refuses_stale_writes(&self) -> bool;
    /// The credentials the provider holds, which no error may show.
    fn secrets(&self) -> Vec<String>;
    /// The next write is refused with a text that echoes [`ContractZone::secrets`];
    /// `false` if the backend cannot.
    fn echo_secrets_on_next_write(&self) -> bool;
}

/// The cases the backend cannot produce, by name.
pub const PENDING: &str = "the wait while Pending";
pub const STALE: &str = "the stale read";
pub const RETRIES: &str = "the bounded retries";
pub const ECHOED_SECRETS: &str = "the echoed secrets";

/// Runs every case of the contract against `provider`, whose zone `zone_id` holds
/// names under `domain` and is reached behind it through `zone`. Each case uses its
/// own record, so the provider's zone may hold others. Panics on the first breach.
/// Returns the cases the backend could not produce ([`PENDING`], [`STALE`],
/// [`RETRIES`], [`ECHOED_SECRETS`]): the caller asserts they are the ones it expects.
#[must_use = "assert which cases the backend could not produce"]
pub async fn run_contract(
    provider: &dyn DnsProvider,
    zone: &dyn ContractZone,
    zone_id: &str,
    domain: &str,
    policy: &SwitchPolicy,
) -> Vec<&'static str> {
    let bed = Bed {
        provider,
        zone,
        zone_id,
        domain,
        policy,
        left_out: Mutex::new(Vec::new()),
    };
    let mut errors = Vec::new();
    bed.reads_first_and_writes_nothing_when_pointing().await;
    bed.switches_and_waits_in_sync().await;
    bed.creates_a_missing_record().await;
    errors.extend(bed.refuses_a_stale_read().await);
    errors.extend(bed.bounds_its_retries().await);
    errors.extend(bed.echoed_secrets().await);
    for e in &errors {
        let shown = format!("{e} {e:?}");
        for secret in zone.secrets() {
            assert!(!shown.contains(&secret), "a secret in an error: {shown}");
        }
    }
    bed.left_out.into_inner().unwrap_or_else(|e| e.into_inner())
}

struct Bed<'a> {
    provider: &'a dyn DnsProvider,
    zone: &'a dyn ContractZone,
    zone_id: &'a str,
    domain: &'a str,
    policy: &'a SwitchPolicy,
    /// The cases the backend could not produce.
    left_out: Mutex<Vec<&'static str>>,
}

impl Bed<'_> {
    fn record(&self, label: &str) -> RecordRef {
        RecordRef::new(
            self.zone_id,
            format!("{label}.{}", self.domain),
            RecordType::Cname,
        )
    }

    fn host(&self, label: &str) -> RecordValue {
        RecordValue::single(format!("redis-{label}.{}", self.domain), 60)
    }

    fn skip(&self, case: &'static str, why: &str) {
        eprintln!(
            "dns contract, {}: {case} not run: {why}",
            self.provider.name()
        );
        self.left_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(case);
    }

    async fn read(&self, record: &RecordRef) -> Option<RecordValue> {
        self.provider.read(record).await.expect("read the record")
    }

    async fn reads_first_and_writes_nothing_when_pointing(&self) {
        let record = self.record("contract-pointing");
        assert_eq!(
            self.read(&record).await,
            None,
            "a missing record reads as None"
        );
        self.zone.put(&record, &self.host("west")).await;
        let (writes, polls) = (self.zone.writes(), self.zone.polls());
        // Spelled otherwise, with another TTL: it still points at the target.
        let shouted = RecordValue::single(format!("REDIS-WEST.{}.", self.domain), 300);
        let out = self.provider.switch(&record, &shouted, self.policy).await;
        assert_eq!(out, Ok(SwitchOutcome::AlreadyPointing));
        assert_eq!(
            self.zone.writes(),
            writes,
            "a write though already pointing"
        );
        assert_eq!(
            self.zone.polls(),
            polls,
            "a poll though nothing was written"
        );
    }

    async fn switches_and_waits_in_sync(&self) {
        let record = self.record("contract-switch");
        self.zone.put(&record, &self.host("east")).await;
        let pending = self.zone.pending_for(2);
        if !pending {
            self.skip(PENDING, "the backend is always in sync at once");
        }
        let (writes, polls) = (self.zone.writes(), self.zone.polls());
        let west = self.host("west");
        let out = self.provider.switch(&record, &west, self.policy).await;
        assert!(matches!(out, Ok(SwitchOutcome::Changed { .. })), "{out:?}");
        assert_eq!(self.zone.writes(), writes + 1, "one write per switch");
        let expected_polls = if pending { 3 } else { 1 };
        assert_eq!(
            self.zone.polls(),
            polls + expected_polls,
            "polls until in sync"
        );
        let now = self.read(&record).await.expect("the record exists");
        assert!(now.points_at(&west, RecordType::Cname), "{now}");
        let again = self.provider.switch(&record, &west, self.policy).await;
        assert_eq!(again, Ok(SwitchOutcome::AlreadyPointing));
        assert_eq!(
            self.zone.writes(),
            writes + 1,
            "a second write for the same switch"
        );
    }

    async fn creates_a_missing_record(&self) {
        let record = self.record("contract-missing");
        let west = self.host("west");
        let out = self.provider.switch(&record, &west, self.policy).await;
        assert!(matches!(out, Ok(SwitchOutcome::Changed { .. })), "{out:?}");
        let now = self.read(&record).await.expect("the record was created");
        assert!(now.points_at(&west, RecordType::Cname), "{now}");
    }

    /// Another writer changes the record between the provider's read and its write.
    async fn refuses_a_stale_read(&self) -> Vec<DnsError> {
        if !self.zone.refuses_stale_writes() {
            self.skip(STALE, "the backend does not check what a write replaces");
            return Vec::new();
        }
        let (east, west, other) = (self.host("east"), self.host("west"), self.host("other"));
        let mut errors = Vec::new();
        for (label, start) in [
            ("contract-stale", Some(&east)),
            ("contract-stale-new", None),
        ] {
            let record = self.record(label);
            if let Some(start) = start {
                self.zone.put(&record, start).await;
            }
            let racing = Racing::new(self, &record, &other);
            let err = racing
                .switch(&record, &west, self.policy)
                .await
                .expect_err("a write based on a stale read is refused");
            assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
            assert_eq!(err.written, None, "{err}");
            let found = &other.values[0];
            let expected = start.map_or("(none)", |s| s.values[0].as_str());
            assert!(
                err.message.contains(&format!("now {found}"))
                    && err.message.contains(&format!("expected {expected}"))
                    && err.message.contains("nothing written"),
                "{err}"
            );
            let now = self.read(&record).await.expect("the other writer's record");
            assert!(
                now.points_at(&other, RecordType::Cname),
                "overwritten: {now}"
            );
            errors.push(err);
        }
        // The other writer pointed it at the target: nothing left to do.
        let record = self.record("contract-stale-same");
        self.zone.put(&record, &east).await;
        let racing = Racing::new(self, &record, &west);
        let out = racing.switch(&record, &west, self.policy).await;
        assert_eq!(out, Ok(SwitchOutcome::AlreadyPointing));
        errors
    }

    async fn bounds_its_retries(&self) -> Vec<DnsError> {
        let attempts = self.policy.attempts;
        if !self.zone.throttle_writes(attempts - 1) {
            self.skip(RETRIES, "the backend cannot throttle");
            return Vec::new();
        }
        let record = self.record("contract-throttled");
        let (east, west) = (self.host("east"), self.host("west"));
        self.zone.put(&record, &east).await;
        let writes = self.zone.writes();
        let out = self.provider.switch(&record, &west, self.policy).await;
        assert!(matches!(out, Ok(SwitchOutcome::Changed { .. })), "{out:?}");
        assert_eq!(self.zone.writes(), writes + attempts as usize);

        self.zone.put(&record, &east).await;
        assert!(self.zone.throttle_writes(attempts));
        let writes = self.zone.writes();
        let err = self
            .provider
            .switch(&record, &west, self.policy)
            .await
            .expect_err("throttled on every try");
        assert_eq!(err.kind, AdapterErrorKind::Throttled, "{err}");
        assert!(
            err.message.contains(&format!("after {attempts} tries")),
            "{err}"
        );
        assert_eq!(self.zone.writes(), writes + attempts as usize);
        let now = self.read(&record).await.expect("the record exists");
        assert!(now.points_at(&east, RecordType::Cname), "{now}");
        vec![err]
    }

    async fn echoed_secrets(&self) -> Vec<DnsError> {
        if !self.zone.echo_secrets_on_next_write() {
            self.skip(ECHOED_SECRETS, "the backend cannot echo them");
            return Vec::new();
        }
        let record = self.record("contract-secrets");
        self.zone.put(&record, &self.host("east")).await;
        let err = self
            .provider
            .switch(&record, &self.host("west"), self.policy)
            .await
            .expect_err("the write is refused");
        vec![err]
    }
}

/// The provider under test, with another writer that puts `value` in the zone right
/// after the first read and before the write that follows it.
struct Racing<'a> {
    bed: &'a Bed<'a>,
    record: RecordRef,
    value: RecordValue,
    raced: AtomicBool,
}

impl<'a> Racing<'a> {
    fn new(bed: &'a Bed<'a>, record: &RecordRef, value: &RecordValue) -> Self {
        Self {
            bed,
            record: record.clone(),
            value: value.clone(),
            raced: AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for Racing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Racing")
            .field("provider", &self.bed.provider)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl DnsProvider for Racing<'_> {
    fn name(&self) -> &'static str {
        self.bed.provider.name()
    }

    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        let read = self.bed.provider.read(record).await;
        if !self.raced.swap(true, Ordering::SeqCst) {
            self.bed.zone.put(&self.record, &self.value).await;
        }
        read
    }

    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        self.bed.provider.write(record, expected, value).await
    }

    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        self.bed.provider.change_status(id).await
    }
}

/// The in-memory provider is its own backend.
#[async_trait::async_trait]
impl ContractZone for MemoryDns {
    async fn put(&self, record: &RecordRef, value: &RecordValue) {
        self.set(record, value.clone());
    }

    fn writes(&self) -> usize {
        self.calls(Op::Write) as usize
    }

    fn polls(&self) -> usize {
        self.calls(Op::ChangeStatus) as usize
    }

    fn pending_for(&self, polls: u32) -> bool {
        MemoryDns::pending_for(self, polls);
        true
    }

    fn throttle_writes(&self, times: u32) -> bool {
        self.fail_next(Op::Write, times, AdapterErrorKind::Throttled);
        true
    }

    fn refuses_stale_writes(&self) -> bool {
        true
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }

    fn echo_secrets_on_next_write(&self) -> bool {
        false
    }
}
