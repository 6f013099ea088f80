//! An in-memory DNS provider with fault injection, for tests of the engine and of
//! [`DnsProvider::switch`]: fail the next calls with a kind, stay Pending for some polls,
//! answer slowly, change a record behind the agent's back between its read and its
//! write, and count every call. Writes are conditional as Route53's are: a write based
//! on a value the record no longer holds is refused as Stale.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType, RecordValue};
use crate::decision::ports::AdapterErrorKind;

/// A provider call, to aim faults at and to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Read,
    Write,
    ChangeStatus,
}

type Key = (String, String, RecordType);

#[derive(Debug, Default)]
pub struct MemoryDns {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<Key, RecordValue>,
    failures: HashMap<Op, VecDeque<AdapterErrorKind>>,
    delays: HashMap<Op, Duration>,
    pending_polls: u32,
    calls: HashMap<Op, u32>,
    changes: Vec<ChangeId>,
    writes: Vec<(RecordRef, RecordValue)>,
    /// What another writer puts in a record right after the next read of it (`None`:
    /// deletes it).
    races: HashMap<Key, Option<RecordValue>>,
}

fn key(record: &RecordRef) -> Key {
    (
        record.zone_id.clone(),
        record.canonical_name(),
        record.record_type,
    )
}

impl MemoryDns {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts with `record` holding `value`.
    pub fn with_record(self, record: &RecordRef, value: RecordValue) -> Self {
        self.set(record, value);
        self
    }

    /// Sets a record directly (no call counted, no fault applied).
    pub fn set(&self, record: &RecordRef, value: RecordValue) {
        self.lock().records.insert(key(record), value);
    }

    /// The record as it is now, without counting a call.
    pub fn get(&self, record: &RecordRef) -> Option<RecordValue> {
        self.lock().records.get(&key(record)).cloned()
    }

    /// The next `times` calls of `op` fail with `kind` (queued after earlier faults).
    pub fn fail_next(&self, op: Op, times: u32, kind: AdapterErrorKind) {
        let mut state = self.lock();
        let queue = state.failures.entry(op).or_default();
        queue.extend(std::iter::repeat_n(kind, times as usize));
    }

    /// The next `polls` calls of `change_status` answer Pending.
    pub fn pending_for(&self, polls: u32) {
        self.lock().pending_polls = polls;
    }

    /// Every call of `op` waits `delay` before it answers (`Duration::ZERO` to stop).
    pub fn delay(&self, op: Op, delay: Duration) {
        self.lock().delays.insert(op, delay);
    }

    /// Another writer: right after the next read of `record` (which answers the value
    /// before), the record becomes `value` (`None`: it is deleted), so the write that
    /// follows is based on a stale read.
    pub fn change_after_next_read(&self, record: &RecordRef, value: Option<RecordValue>) {
        self.lock().races.insert(key(record), value);
    }

    /// How many times `op` was called, failed calls included.
    pub fn calls(&self, op: Op) -> u32 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Every write that took effect, in order.
    pub fn writes(&self) -> Vec<(RecordRef, RecordValue)> {
        self.lock().writes.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the call, waits its delay, and returns its injected failure if any.
    async fn enter(&self, op: Op) -> Result<(), DnsError> {
        let (delay, failure) = {
            let mut state = self.lock();
            *state.calls.entry(op).or_default() += 1;
            let delay = state.delays.get(&op).copied().unwrap_or_default();
            let failure = state.failures.get_mut(&op).and_then(VecDeque::pop_front);
            (delay, failure)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match failure {
            Some(kind) => Err(DnsError::new(kind, format!("injected {op:?} failure"))),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl DnsProvider for MemoryDns {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        self.enter(Op::Read).await?;
        let mut state = self.lock();
        let key = key(record);
        let read = state.records.get(&key).cloned();
        if let Some(race) = state.races.remove(&key) {
            match race {
                Some(value) => state.records.insert(key, value),
                None => state.records.remove(&key),
            };
        }
        Ok(read)
    }

    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        self.enter(Op::Write).await?;
        let mut state = self.lock();
        super::check_expected("memory", record, state.records.get(&key(record)), expected)?;
        state.records.insert(key(record), value.clone());
        state.writes.push((record.clone(), value.clone()));
        let id = ChangeId(format!("memory-{}", state.changes.len() + 1));
        state.changes.push(id.clone());
        Ok(id)
    }

    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        self.enter(Op::ChangeStatus).await?;
        let mut state = self.lock();
        if !state.changes.contains(id) {
            return Err(DnsError::new(
                AdapterErrorKind::NotFound,
                format!("no change {id}"),
            ));
        }
        if state.pending_polls > 0 {
            state.pending_polls -= 1;
            return Ok(ChangeStatus::Pending);
        }
        Ok(ChangeStatus::InSync)
    }
}
