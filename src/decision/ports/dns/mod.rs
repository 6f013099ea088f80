//! The DNS port: how a failover moves clients. Providers (`actuators::dns`) read and
//! write one record set; [`DnsProvider::switch`] is the one way the engine changes a
//! record: read first and write nothing if it already points at the target, replace the
//! value read by the target in one conditional change (compare-and-swap: refused when
//! the record no longer holds what was read), then wait until the change is in sync.
//! Retries and per-call timeouts live there (and in `retry.rs`), not in the providers.
//! `contract.rs` is the suite every provider passes.

pub mod contract;
mod memory;
mod retry;
mod switch;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AdapterErrorKind;

pub use memory::{MemoryDns, Op};

/// One record set: the zone it lives in, its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub zone_id: String,
    pub name: String,
    pub record_type: RecordType,
}

impl RecordRef {
    pub fn new(
        zone_id: impl Into<String>,
        name: impl Into<String>,
        record_type: RecordType,
    ) -> Self {
        Self {
            zone_id: zone_id.into(),
            name: name.into(),
            record_type,
        }
    }

    /// The name in the form names are compared: lower case, no trailing dot.
    pub fn canonical_name(&self) -> String {
        canonical_name(&self.name)
    }
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.record_type)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    Cname,
    A,
    Aaaa,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Cname => "CNAME",
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RecordType {
    type Err = DnsError;

    fn from_str(s: &str) -> Result<Self, DnsError> {
        match s.to_ascii_uppercase().as_str() {
            "CNAME" => Ok(RecordType::Cname),
            "A" => Ok(RecordType::A),
            "AAAA" => Ok(RecordType::Aaaa),
            _ => Err(DnsError::new(
                AdapterErrorKind::Invalid,
                format!("record type {s:?} is not supported; use CNAME, A or AAAA"),
            )),
        }
    }
}

/// What a record says: its values (one host for a CNAME, addresses for A/AAAA) and TTL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordValue {
    pub values: Vec<String>,
    pub ttl: u32,
}

impl RecordValue {
    /// A record with the single value `host`.
    pub fn single(host: impl Into<String>, ttl: u32) -> Self {
        Self {
            values: vec![host.into()],
            ttl,
        }
    }

    /// Whether clients resolving this record already reach `target`: the same values,
    /// compared as DNS compares them (case, trailing dots, address spelling, order).
    /// The TTL is not compared: a different TTL does not move any traffic.
    pub fn points_at(&self, target: &RecordValue, record_type: RecordType) -> bool {
        let norm = |v: &RecordValue| {
            let mut vs: Vec<String> = v
                .values
                .iter()
                .map(|x| canonical_value(record_type, x))
                .collect();
            vs.sort();
            vs.dedup();
            vs
        };
        norm(self) == norm(target)
    }
}

impl fmt::Display for RecordValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (ttl {} s)", self.values.join(","), self.ttl)
    }
}

/// A provider's handle on one accepted change (Route53's `/change/C...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeId(pub String);

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeStatus {
    /// Accepted, not yet on every authoritative server.
    Pending,
    /// Every authoritative server answers with the new value.
    InSync,
}

/// A DNS failure. The message never contains credentials: providers redact what
/// their libraries say before building one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DnsError {
    pub kind: AdapterErrorKind,
    pub message: String,
    /// Set when the failure came after the provider accepted the write (e.g. the change
    /// never reached INSYNC in time): the record may already point at the target.
    /// `None` with kind Timeout or Unavailable does not prove nothing was written (an
    /// answer can be lost after the server applied the change): read the record again.
    pub written: Option<ChangeId>,
    /// The wait the provider asked for before the next try (HTTP `Retry-After`): a
    /// retry waits at least that, but never longer than the longest backoff, so a
    /// server cannot stall a failover.
    pub retry_after: Option<Duration>,
}

impl DnsError {
    pub fn new(kind: AdapterErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            written: None,
            retry_after: None,
        }
    }
}

/// A DNS API: read a record, write it, and ask whether a write has propagated.
#[async_trait::async_trait]
pub trait DnsProvider: Send + Sync + fmt::Debug {
    /// `route53`, `dry-run` or `memory`: for logs, metrics labels and the journal.
    fn name(&self) -> &'static str;
    /// Whether [`DnsProvider::read`] answers from the real zone. `dry-run` knows only its
    /// own pretend changes, so there is nothing to compare the journal with at start.
    fn reads_the_zone(&self) -> bool {
        true
    }
    /// The record's current value; `None` when it does not exist. The values are given
    /// as the provider holds them, so that [`DnsProvider::write`] can name them exactly;
    /// compare them with [`RecordValue::points_at`].
    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError>;
    /// Replaces `expected` (the record as read; `None`: it did not exist) by `value`, in
    /// one atomic change that the provider refuses with kind
    /// [`AdapterErrorKind::Stale`] when the record no longer holds `expected` (values and
    /// TTL), writing nothing. A change based on a stale read thus fails instead of
    /// overwriting what another writer put there.
    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError>;
    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError>;
    /// Points `record` at `target`. Reads first and writes nothing if the record already
    /// has the target's values (so a replayed or duplicate decision never writes twice);
    /// otherwise writes the target in place of the value read ([`DnsProvider::write`])
    /// and polls `change_status` every `poll_interval` until InSync, at most
    /// `insync_timeout`. Throttled, Conflict, Unavailable and Timeout failures of the
    /// read and the write are retried with exponential backoff and jitter, up to
    /// `policy.attempts` tries; Invalid, Unauthorized, NotFound and Stale never are. A
    /// failing poll is tolerated until the deadline. Every call runs under
    /// `policy.call_timeout`.
    ///
    /// A write refused as Stale is followed by one more read, never by a second write:
    /// if the record now points at the target (another writer, or our own earlier try
    /// whose answer was lost, put it there) the outcome is AlreadyPointing; otherwise the
    /// switch fails with kind Stale, naming the value found and the value expected.
    ///
    /// An error after the write was accepted carries the change in [`DnsError::written`].
    /// Provided: a provider implements only the calls above.
    async fn switch(
        &self,
        record: &RecordRef,
        target: &RecordValue,
        policy: &SwitchPolicy,
    ) -> Result<SwitchOutcome, DnsError> {
        switch::switch(self, record, target, policy).await
    }
}

/// How patient [`DnsProvider::switch`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchPolicy {
    /// How long to wait for the change to be INSYNC once accepted. Default 180 s;
    /// Route53 usually needs under 60 s.
    pub insync_timeout: Duration,
    /// Time between two `GetChange` polls. Default 5 s.
    pub poll_interval: Duration,
    /// Tries per call (read, write) on a retryable failure, the first included.
    /// Default 6: waits of up to 0.5, 1, 2, 4, 8 s (at least half of each, the rest
    /// random), at most 15.5 s in all.
    pub attempts: u32,
    /// Limit for each single call to the provider. Default 10 s.
    pub call_timeout: Duration,
}

impl SwitchPolicy {
    pub const fn default_policy() -> Self {
        Self {
            insync_timeout: Duration::from_secs(180),
            poll_interval: Duration::from_secs(5),
            attempts: 6,
            call_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for SwitchPolicy {
    fn default() -> Self {
        Self::default_policy()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// The record already had the target's values; nothing was written.
    AlreadyPointing,
    /// Written and in sync `in_sync_after` the provider accepted the change.
    Changed {
        change: ChangeId,
        in_sync_after: Duration,
    },
}

/// The condition of a compare-and-swap write, for providers that keep the zone
/// themselves (the in-memory and dry-run ones): the record must still hold what was
/// read, the same TTL and the same values however spelled, or still be absent. A
/// refusal is [`AdapterErrorKind::Stale`], naming both values.
pub fn check_expected(
    provider: &str,
    record: &RecordRef,
    current: Option<&RecordValue>,
    expected: Option<&RecordValue>,
) -> Result<(), DnsError> {
    let holds = match (current, expected) {
        (None, None) => true,
        (Some(c), Some(e)) => c.ttl == e.ttl && c.points_at(e, record.record_type),
        _ => false,
    };
    if holds {
        return Ok(());
    }
    let show = |v: Option<&RecordValue>| v.map_or_else(|| "(none)".into(), |v| v.to_string());
    Err(DnsError::new(
        AdapterErrorKind::Stale,
        format!(
            "{provider}: {record} holds {}, not {}",
            show(current),
            show(expected)
        ),
    ))
}

/// Lower case, without the trailing dot, with Route53's `\052`-style octal escapes
/// undone: the form in which two names are equal.
pub fn canonical_name(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match octal {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

/// A value in the form two values are equal: host names as [`canonical_name`],
/// addresses parsed (so `2001:DB8:0::1` equals `2001:db8::1`).
pub fn canonical_value(record_type: RecordType, value: &str) -> String {
    match record_type {
        RecordType::Cname => canonical_name(value),
        RecordType::A | RecordType::Aaaa => value
            .trim()
            .parse::<IpAddr>()
            .map_or_else(|_| value.trim().to_ascii_lowercase(), |ip| ip.to_string()),
    }
}

#[cfg(test)]
mod tests;
