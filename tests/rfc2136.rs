//! The RFC 2136 provider and `DnsProvider::switch` against a real BIND 9 (`named`)
//! started by the test with a zone and TSIG keys it writes (tests/common/bind.rs); the
//! provider contract (`decision::ports::dns::contract`) runs here too. Another writer
//! (`nsupdate`, with its own key) races the agent; `dig` and BIND's statistics look at
//! the zone and count the agent's UPDATEs without going through the provider.

mod common;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_failover_agent::actuators::dns::{Rfc2136Dns, Rfc2136Settings, TsigAlgorithm, TsigKey};
use redis_failover_agent::decision::ports::dns::contract::{
    ContractZone, ECHOED_SECRETS, PENDING, RETRIES, run_contract,
};
use redis_failover_agent::decision::ports::{
    AdapterErrorKind, ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType,
    RecordValue, SwitchOutcome, SwitchPolicy,
};
use redis_failover_agent::model::Secret;

use common::bind::{
    Bind, CACHE, EAST, KEY_NAME, KEY_SECRET, MINIMAL_GRANT, SESSIONS, ZONE, ZONE_GRANT,
};

const WEST: &str = "redis-west.example.test";
const OTHER: &str = "redis-other.example.test";

fn provider_with(bind: &Bind, key_name: &str, secret: &str) -> Rfc2136Dns {
    Rfc2136Dns::new(&Rfc2136Settings {
        server: bind.server(),
        zone: ZONE.into(),
        tsig: TsigKey {
            name: key_name.into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: Secret::new(secret),
        },
    })
    .expect("the rfc2136 provider builds")
}

fn provider(bind: &Bind) -> Rfc2136Dns {
    provider_with(bind, KEY_NAME, KEY_SECRET)
}

fn cname(name: &str) -> RecordRef {
    RecordRef::new(ZONE, name, RecordType::Cname)
}

fn host(name: &str) -> RecordValue {
    RecordValue::single(name, 60)
}

fn fast() -> SwitchPolicy {
    SwitchPolicy {
        insync_timeout: Duration::from_secs(3),
        poll_interval: Duration::from_millis(100),
        attempts: 3,
        call_timeout: Duration::from_secs(5),
    }
}

/// What `dig` says the record points at, without the trailing dot.
fn pointing_at(bind: &Bind, name: &str) -> String {
    bind.dig(name, "CNAME")
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_owned()
}

#[tokio::test]
async fn switches_with_the_minimal_grant_and_writes_once() {
    let bind = Bind::start(MINIMAL_GRANT);
    let dns = provider(&bind);
    let cache = cname(CACHE);

    let read = dns.read(&cache).await.unwrap().expect("the record exists");
    assert!(read.points_at(&host(EAST), RecordType::Cname), "{read}");
    assert_eq!(read.ttl, 60);
    // Names compare without case or trailing dot; a missing name or type is None.
    let shouted = cname("REDIS-CACHE.Example.TEST.");
    assert_eq!(dns.read(&shouted).await.unwrap(), Some(read.clone()));
    assert_eq!(
        dns.read(&cname("nothing.example.test")).await.unwrap(),
        None
    );
    let a_type = RecordRef::new(ZONE, CACHE, RecordType::A);
    assert_eq!(dns.read(&a_type).await.unwrap(), None);

    let out = dns.switch(&cache, &host(WEST), &fast()).await.unwrap();
    let SwitchOutcome::Changed { change, .. } = out else {
        panic!("expected a change: {out:?}");
    };
    assert_eq!(change.0, format!("{CACHE}. CNAME {WEST}"));
    assert_eq!(pointing_at(&bind, CACHE), WEST);
    assert_eq!(pointing_at(&bind, SESSIONS), EAST, "the other record moved");
    assert_eq!(bind.agent_updates(), 1);

    // The same decision again: read, and no write.
    let again = dns.switch(&cache, &host(WEST), &fast()).await.unwrap();
    assert_eq!(again, SwitchOutcome::AlreadyPointing);
    assert_eq!(bind.agent_updates(), 1);

    // The grant covers one name: another is refused, named, and not retried.
    let err = dns
        .switch(&cname(SESSIONS), &host(WEST), &fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
    assert!(
        err.message.contains(&format!(
            "refused (REFUSED): key {KEY_NAME} may not change {SESSIONS} CNAME"
        )) && err.message.contains("update-policy"),
        "{err}"
    );
    assert_eq!(bind.agent_updates(), 2);
    assert_eq!(pointing_at(&bind, SESSIONS), EAST);
}

#[tokio::test]
async fn a_wrong_key_is_refused_by_name_and_writes_nothing() {
    let bind = Bind::start(MINIMAL_GRANT);
    let cache = cname(CACHE);
    let wrong_secret = "bm90LXRoZS1zZXJ2ZXJzLXNlY3JldC1ub3QtYXQtYWxsIQ==";
    for (key, secret, said) in [
        (
            KEY_NAME,
            wrong_secret,
            format!("the server refused key {KEY_NAME}: its secret is not the server's (BADSIG)"),
        ),
        (
            "unknown-key",
            KEY_SECRET,
            "the server does not know key unknown-key with algorithm hmac-sha256 (BADKEY)".into(),
        ),
    ] {
        let dns = provider_with(&bind, key, secret);
        let before = bind.agent_updates();
        let err = dns.switch(&cache, &host(WEST), &fast()).await.unwrap_err();
        assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
        assert!(err.message.contains(&said), "{err}");
        let shown = format!("{err} {err:?} {dns:?}");
        assert!(!shown.contains(secret), "{shown}");
        // The read was refused already: no UPDATE was sent.
        assert_eq!(bind.agent_updates(), before);
        // And one sent anyway (the write alone) is refused too.
        let err = dns
            .write(&cache, Some(&host(EAST)), &host(WEST))
            .await
            .unwrap_err();
        assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
        assert!(err.message.contains(&said), "{err}");
    }
    assert_eq!(pointing_at(&bind, CACHE), EAST);
}

#[tokio::test]
async fn a_concurrent_change_fails_the_prerequisite_and_is_not_overwritten() {
    let bind = Bind::start(MINIMAL_GRANT);
    let dns = provider(&bind);
    let cache = cname(CACHE);
    let read = dns.read(&cache).await.unwrap();
    // Another writer moves the record between the agent's read and its write.
    bind.put(CACHE, "CNAME", &format!("{OTHER}."), 60);
    let err = dns
        .write(&cache, read.as_ref(), &host(WEST))
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert!(err.message.contains("(NXRRSET)"), "{err}");
    assert_eq!(pointing_at(&bind, CACHE), OTHER);

    // A record read as absent that another writer created meanwhile: YXRRSET.
    let err = dns.write(&cache, None, &host(WEST)).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert!(err.message.contains("(YXRRSET)"), "{err}");
    assert_eq!(pointing_at(&bind, CACHE), OTHER);
}

/// A and AAAA record sets of several addresses: created when absent, then replaced
/// whole, the prerequisite naming every address read.
#[tokio::test]
async fn address_records_of_several_values_switch_whole() {
    let bind = Bind::start("grant failover-key zonesub A AAAA;");
    let dns = provider(&bind);
    let policy = fast();
    for (record_type, kind, first, second) in [
        (
            RecordType::A,
            "A",
            vec!["10.0.0.1"],
            vec!["10.0.0.2", "10.0.0.3"],
        ),
        (
            RecordType::Aaaa,
            "AAAA",
            vec!["2001:db8::1"],
            vec!["2001:db8::2", "2001:DB8:0::3"],
        ),
    ] {
        let record = RecordRef::new(ZONE, "redis-addresses.example.test", record_type);
        let value = |values: &[&str]| RecordValue {
            values: values.iter().map(|v| v.to_string()).collect(),
            ttl: 30,
        };
        let out = dns.switch(&record, &value(&first), &policy).await.unwrap();
        assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
        let out = dns.switch(&record, &value(&second), &policy).await.unwrap();
        assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
        let now = dns.read(&record).await.unwrap().expect("the record exists");
        assert!(now.points_at(&value(&second), record_type), "{now}");
        assert_eq!(now.ttl, 30);
        let dug = bind.dig("redis-addresses.example.test", kind).unwrap();
        assert_eq!(dug.lines().count(), 2, "{dug}");
        // A stale read of one address, when two are there: refused.
        let err = dns
            .write(&record, Some(&value(&first)), &value(&first))
            .await
            .unwrap_err();
        assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    }
    assert_eq!(
        bind.agent_updates(),
        6,
        "two switches and the refused write, twice"
    );
}

/// The provider, with BIND stopped right after the switch's first read.
struct StopsAfterRead<'a> {
    inner: &'a Rfc2136Dns,
    bind: std::sync::Mutex<&'a mut Bind>,
    stopped: AtomicBool,
}

impl fmt::Debug for StopsAfterRead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StopsAfterRead").field(self.inner).finish()
    }
}

#[async_trait::async_trait]
impl DnsProvider for StopsAfterRead<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        let read = self.inner.read(record).await;
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.bind.lock().unwrap().stop();
        }
        read
    }
    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        self.inner.write(record, expected, value).await
    }
    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        self.inner.change_status(id).await
    }
}

#[tokio::test]
async fn bind_stopped_mid_switch_is_retried_a_bounded_number_of_times() {
    let mut bind = Bind::start(MINIMAL_GRANT);
    let dns = provider(&bind);
    let cache = cname(CACHE);
    let started = Instant::now();
    let err = {
        let stopping = StopsAfterRead {
            inner: &dns,
            bind: std::sync::Mutex::new(&mut bind),
            stopped: AtomicBool::new(false),
        };
        stopping
            .switch(&cache, &host(WEST), &fast())
            .await
            .unwrap_err()
    };
    assert_eq!(err.kind, AdapterErrorKind::Unavailable, "{err}");
    assert!(
        err.message
            .starts_with(&format!("rfc2136 UPDATE to {}: TCP: ", bind.server()))
            && err.message.contains("Connection refused")
            && err.message.contains("after 3 tries"),
        "{err}"
    );
    assert_eq!(err.written, None);
    // Three refused tries and their backoffs, not the 10 s of a call's timeout.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    bind.restart();
    assert_eq!(pointing_at(&bind, CACHE), EAST, "nothing was written");
    assert_eq!(bind.agent_updates(), 0);
}

/// The provider, with another writer that moves the record right after each write the
/// server accepted: the new value is never seen.
struct OverwrittenAfterWrite<'a> {
    inner: &'a Rfc2136Dns,
    bind: &'a Bind,
}

impl fmt::Debug for OverwrittenAfterWrite<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OverwrittenAfterWrite")
            .field(self.inner)
            .finish()
    }
}

#[async_trait::async_trait]
impl DnsProvider for OverwrittenAfterWrite<'_> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        self.inner.read(record).await
    }
    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        let change = self.inner.write(record, expected, value).await?;
        self.bind
            .put(&record.name, "CNAME", &format!("{OTHER}."), 60);
        Ok(change)
    }
    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        self.inner.change_status(id).await
    }
}

#[tokio::test]
async fn the_in_sync_wait_is_bounded_and_says_the_write_was_accepted() {
    let bind = Bind::start(MINIMAL_GRANT);
    let dns = provider(&bind);
    let overwritten = OverwrittenAfterWrite {
        inner: &dns,
        bind: &bind,
    };
    let policy = SwitchPolicy {
        insync_timeout: Duration::from_secs(1),
        ..fast()
    };
    let started = Instant::now();
    let err = overwritten
        .switch(&cname(CACHE), &host(WEST), &policy)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Timeout, "{err}");
    let change = err.written.clone().expect("the write was accepted");
    assert_eq!(change.0, format!("{CACHE}. CNAME {WEST}"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(bind.agent_updates(), 1);
    assert_eq!(pointing_at(&bind, CACHE), OTHER);
}

/// BIND as the contract sees it: writes by its own statistics, less the other
/// writer's; polls counted at the provider, since a poll and a read are the same
/// query on the wire.
struct BindZone {
    bind: Bind,
    polls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl ContractZone for BindZone {
    async fn put(&self, record: &RecordRef, value: &RecordValue) {
        let target = format!("{}.", value.values[0].trim_end_matches('.'));
        self.bind.put(&record.name, "CNAME", &target, value.ttl);
    }
    fn writes(&self) -> usize {
        self.bind.agent_updates()
    }
    fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }
    fn pending_for(&self, _polls: u32) -> bool {
        // The primary answers the new value as soon as it accepts the update.
        false
    }
    fn throttle_writes(&self, _times: u32) -> bool {
        // DNS has no "slow down" answer; retries are tested with BIND stopped.
        false
    }
    fn refuses_stale_writes(&self) -> bool {
        true
    }
    fn secrets(&self) -> Vec<String> {
        vec![KEY_SECRET.into()]
    }
    fn echo_secrets_on_next_write(&self) -> bool {
        // An answer carries an RCODE, not text; the wrong-key test checks the errors.
        false
    }
}

/// The provider, counting its change-status polls.
#[derive(Debug)]
struct Counted {
    inner: Rfc2136Dns,
    polls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl DnsProvider for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        self.inner.read(record).await
    }
    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        self.inner.write(record, expected, value).await
    }
    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.change_status(id).await
    }
}

#[tokio::test]
async fn bind_passes_the_contract() {
    let bind = Bind::start(ZONE_GRANT);
    let polls = Arc::new(AtomicUsize::new(0));
    let dns = Counted {
        inner: provider(&bind),
        polls: polls.clone(),
    };
    let zone = BindZone { bind, polls };
    let left_out = run_contract(&dns, &zone, ZONE, ZONE, &fast()).await;
    assert_eq!(left_out, [PENDING, RETRIES, ECHOED_SECRETS]);
}

/// The agent binary with `dns_provider: rfc2136`: east dies, Alertmanager says so, and
/// the record moves to west in BIND, with the minimal grant and the key from the
/// environment.
#[test]
fn the_agent_fails_over_through_bind() {
    use common::e2e::{TOKEN, closed_outcomes, journal, payload, post};

    let bind = Bind::start(MINIMAL_GRANT);
    let mut east = common::Redis::start(&[]);
    let west = common::Redis::start(&[]);
    let state = tempfile::tempdir().unwrap();
    let yaml = common::config(
        &[("app", &[("east", east.port), ("west", west.port)])],
        &format!(
            "auto_failover: true\n\
             failover_consecutive_threshold: 2\n\
             confirm_interval: 200ms\n\
             state_dir: {state}\n\
             webhook: {{bearer_token: {TOKEN}}}\n\
             dns_provider: rfc2136\n\
             dns_config:\n\
             \x20 server: {server}\n\
             \x20 zone: {ZONE}\n\
             \x20 tsig: {{name: {KEY_NAME}, algorithm: hmac-sha256, secret: '${{TSIG_SECRET}}'}}\n\
             \x20 records:\n\
             \x20   - {{instance_name: app, name: {CACHE}, type: CNAME, ttl: 60,\n\
             \x20       values: {{east: {EAST}, west: {WEST}}}}}\n",
            state = state.path().display(),
            server = bind.server(),
        ),
    );
    let agent = common::Agent::start_with_env(&yaml, &[("TSIG_SECRET", KEY_SECRET)]);
    agent.wait_metrics(Duration::from_secs(20), "both endpoints up", |m| {
        m.of("redis_up", "app", "east") == Some(1.0) && m.of("redis_up", "app", "west") == Some(1.0)
    });
    east.kill();
    let (status, answer) = post(agent.port, &payload("firing"), TOKEN);
    assert_eq!(status, 200, "{answer}");
    common::wait_for(Duration::from_secs(60), "BIND to point at west", || {
        (pointing_at(&bind, CACHE) == WEST).then_some(())
    });
    common::wait_for(Duration::from_secs(30), "the incident to close", || {
        (!closed_outcomes(&journal(state.path())).is_empty()).then_some(())
    });
    assert_eq!(closed_outcomes(&journal(state.path())), ["failed_over"]);
    assert_eq!(bind.agent_updates(), 1);
    assert_eq!(pointing_at(&bind, SESSIONS), EAST);
    assert!(!agent.log().contains(KEY_SECRET));
}
