//! The `dry-run` provider: says what it would change and remembers it, so a later read
//! (and a second decision) sees the pretend change. It never calls anything outside.
//! Its writes are conditional as a real provider's are, against what it remembers.
//! It reads Route53's keys of `dns_config` and checks them as Route53 would, so that a
//! configuration moves between the two by changing `dns_provider` alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_yaml::Value;

use super::provider_config::{Provider, ProviderConfig};
use super::route53;
use crate::config_kit::ctx::Ctx;
use crate::decision::ports::dns::check_expected;
use crate::decision::ports::{
    AdapterErrorKind, ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType,
    RecordValue,
};

pub const PROVIDER: Provider = Provider {
    name: "dry-run",
    keys: route53::config::PROVIDER.keys,
    zone_key: "zone_id",
    read,
};

/// Route53's keys, checked and then not needed.
#[derive(Debug)]
struct DryRunSettings;

fn read(cx: &mut Ctx<'_>, p: &str, keys: Value) -> Option<Arc<dyn ProviderConfig>> {
    route53::config::settings(cx, p, keys)
        .map(|_| Arc::new(DryRunSettings) as Arc<dyn ProviderConfig>)
}

impl ProviderConfig for DryRunSettings {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn build(&self) -> Result<Arc<dyn DnsProvider>, DnsError> {
        Ok(Arc::new(DryRunDns::new()))
    }
}

type Key = (String, String, RecordType);

#[derive(Debug, Default)]
pub struct DryRunDns {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<Key, RecordValue>,
    changes: u64,
}

fn key(record: &RecordRef) -> Key {
    (
        record.zone_id.clone(),
        record.canonical_name(),
        record.record_type,
    )
}

impl DryRunDns {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells it what a record holds (e.g. the configured active datacenter's host at
    /// start), so reads answer as the real zone would.
    pub fn seed(&self, record: &RecordRef, value: RecordValue) {
        self.lock().records.insert(key(record), value);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl DnsProvider for DryRunDns {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn reads_the_zone(&self) -> bool {
        false
    }

    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        Ok(self.lock().records.get(&key(record)).cloned())
    }

    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        let (id, before) = {
            let mut state = self.lock();
            check_expected("dry run", record, state.records.get(&key(record)), expected)?;
            state.changes += 1;
            let before = state.records.insert(key(record), value.clone());
            (ChangeId(format!("dry-run-{}", state.changes)), before)
        };
        tracing::info!(
            provider = "dry-run",
            zone_id = %record.zone_id,
            record = %record,
            from = %before.map_or_else(|| "(unknown)".to_owned(), |v| v.to_string()),
            to = %value,
            change = %id,
            "dry run: would replace the record; nothing was changed"
        );
        Ok(id)
    }

    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        let known =
            id.0.strip_prefix("dry-run-")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 1 && n <= self.lock().changes);
        if known {
            Ok(ChangeStatus::InSync)
        } else {
            Err(DnsError::new(
                AdapterErrorKind::NotFound,
                format!("no dry-run change {id}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ports::SwitchPolicy;
    use crate::decision::ports::dns::contract::{
        ContractZone, ECHOED_SECRETS, PENDING, RETRIES, run_contract,
    };

    /// Its own memory is the zone; it can neither throttle nor stay Pending.
    #[async_trait::async_trait]
    impl ContractZone for DryRunDns {
        async fn put(&self, record: &RecordRef, value: &RecordValue) {
            self.seed(record, value.clone());
        }
        fn writes(&self) -> usize {
            self.lock().changes as usize
        }
        fn polls(&self) -> usize {
            // Not counted: it answers InSync to every change it made, so a switch that
            // writes polls exactly once.
            self.lock().changes as usize
        }
        fn pending_for(&self, _: u32) -> bool {
            false
        }
        fn throttle_writes(&self, _: u32) -> bool {
            false
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

    #[tokio::test]
    async fn the_dry_run_passes_the_contract() {
        let dns = DryRunDns::new();
        let left_out =
            run_contract(&dns, &dns, "Z1", "example.com", &SwitchPolicy::default()).await;
        // It changes nothing real: in sync at once, never throttled, holds no secret.
        assert_eq!(left_out, [PENDING, RETRIES, ECHOED_SECRETS]);
    }

    #[tokio::test]
    async fn a_pretend_change_is_read_back_and_in_sync() {
        let dns = DryRunDns::new();
        let record = RecordRef::new("Z1", "Cache.Example.com.", RecordType::Cname);
        assert_eq!(dns.read(&record).await.unwrap(), None);
        let east = RecordValue::single("east.example.com", 60);
        dns.seed(&record, east.clone());
        let id = dns
            .write(
                &record,
                Some(&east),
                &RecordValue::single("west.example.com", 60),
            )
            .await
            .unwrap();
        let same = RecordRef::new("Z1", "cache.example.com", RecordType::Cname);
        assert_eq!(
            dns.read(&same).await.unwrap(),
            Some(RecordValue::single("west.example.com", 60))
        );
        assert_eq!(dns.change_status(&id).await.unwrap(), ChangeStatus::InSync);
        let err = dns
            .change_status(&ChangeId("dry-run-9".into()))
            .await
            .unwrap_err();
        assert_eq!(err.kind, AdapterErrorKind::NotFound);
        assert_eq!(dns.name(), "dry-run");
    }
}
