//! The Google Cloud DNS provider and `DnsProvider::switch` against the stand-in of
//! `common::cloud_dns` (Cloud DNS API v1, Google's token endpoint and the metadata
//! server, from their public references): the provider contract, the one change of a
//! switch (the set as read deleted, the new one added), refusals of a stale read (412
//! `conditionNotMet`, 409 `alreadyExists`), throttling with `Retry-After`, pending
//! changes, both sources of credentials, and the agent failing over with it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use redis_failover_agent::actuators::dns::{GoogleCloudDns, GoogleCloudDnsSettings};
use redis_failover_agent::decision::ports::dns::contract::{ContractZone, run_contract};
use redis_failover_agent::decision::ports::{
    AdapterErrorKind, DnsProvider, RecordRef, RecordType, RecordValue, SwitchOutcome, SwitchPolicy,
};
use redis_failover_agent::model::Secret;

use common::cloud_dns::{CLIENT_EMAIL, CloudDns, PROJECT, Refusal, ZONE};

const RECORD: &str = "cache.example.com";
const EAST: &str = "redis-east.example.com.";
const WEST: &str = "redis-west.example.com";

fn fast() -> SwitchPolicy {
    SwitchPolicy {
        insync_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        attempts: 4,
        call_timeout: Duration::from_secs(5),
    }
}

/// The stand-in, and the provider with a service account key whose `token_uri` is the
/// stand-in's token endpoint; also the key's private key PEM.
fn with_key(dir: &std::path::Path) -> (CloudDns, Arc<dyn DnsProvider>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dns = CloudDns::start();
    let (path, pem) = dns.service_account_key(dir);
    let key = std::fs::read_to_string(path).unwrap();
    let provider = provider(&dns, Some(Secret::new(key)));
    (dns, provider, pem)
}

fn provider(dns: &CloudDns, key: Option<Secret>) -> Arc<dyn DnsProvider> {
    let settings = GoogleCloudDnsSettings {
        project: PROJECT.into(),
        managed_zone: ZONE.into(),
        key,
        endpoint_url: Some(dns.url()),
    };
    Arc::new(GoogleCloudDns::new(&settings).expect("the provider builds"))
}

fn record() -> RecordRef {
    RecordRef::new(ZONE, RECORD, RecordType::Cname)
}

/// The stand-in as the contract sees it.
struct Zone<'a>(&'a CloudDns);

#[async_trait::async_trait]
impl ContractZone for Zone<'_> {
    async fn put(&self, record: &RecordRef, value: &RecordValue) {
        let values: Vec<&str> = value.values.iter().map(String::as_str).collect();
        self.0.put(
            &record.name,
            record.record_type.as_str(),
            value.ttl,
            &values,
        );
    }
    fn writes(&self) -> usize {
        self.0.count("POST", "/changes")
    }
    fn polls(&self) -> usize {
        self.0.count("GET", "/changes/")
    }
    fn pending_for(&self, polls: u32) -> bool {
        self.0.pending_for(polls);
        true
    }
    fn throttle_writes(&self, times: u32) -> bool {
        let message = "Rate limit exceeded for quota metric 'Write requests'";
        self.0.fail(
            "POST",
            "/changes",
            times,
            Refusal::new(429, "rateLimitExceeded", message).retry_after(1),
        );
        true
    }
    fn refuses_stale_writes(&self) -> bool {
        true
    }
    fn secrets(&self) -> Vec<String> {
        self.0.issued()
    }
    fn echo_secrets_on_next_write(&self) -> bool {
        let message = format!(
            "The caller {} does not have permission",
            self.0.issued().join(" ")
        );
        self.0.fail(
            "POST",
            "/changes",
            1,
            Refusal::new(403, "forbidden", &message),
        );
        true
    }
}

#[tokio::test]
async fn passes_the_contract_with_a_service_account_key() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, pem) = with_key(dir.path());
    let left_out = run_contract(provider.as_ref(), &Zone(&dns), ZONE, "example.com", &fast()).await;
    assert!(left_out.is_empty(), "{left_out:?}");
    // One token for every call of the suite: it is kept until near its expiry.
    assert_eq!(dns.count("POST", "/token"), 1, "{:#?}", dns.seen());
    let key_body: String = pem.lines().nth(1).unwrap().to_owned();
    for seen in dns.seen() {
        assert!(!seen.path.contains(&key_body) && !seen.body.contains(&key_body));
    }
}

#[tokio::test]
async fn a_switch_is_one_change_deleting_the_set_as_read() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, _) = with_key(dir.path());
    dns.put(RECORD, "CNAME", 300, &[EAST]);
    dns.put("sessions.example.com", "CNAME", 300, &[EAST]);
    let west = RecordValue::single(WEST, 60);

    assert_eq!(
        provider.read(&record()).await.unwrap(),
        Some(RecordValue::single(EAST, 300))
    );
    let shouted = RecordRef::new(ZONE, "CACHE.Example.COM.", RecordType::Cname);
    assert!(provider.read(&shouted).await.unwrap().is_some());
    let a = RecordRef::new(ZONE, RECORD, RecordType::A);
    assert_eq!(provider.read(&a).await.unwrap(), None);

    let out = provider.switch(&record(), &west, &fast()).await.unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    assert_eq!(
        dns.get(RECORD, "CNAME"),
        Some((60, vec![format!("{WEST}.")]))
    );
    assert_eq!(
        dns.get("sessions.example.com", "CNAME"),
        Some((300, vec![EAST.into()]))
    );
    let posts: Vec<_> = dns
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/changes"))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let change: serde_json::Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(
        change,
        serde_json::json!({
            "kind": "dns#change",
            "deletions": [{"name": "cache.example.com.", "type": "CNAME", "ttl": 300, "rrdatas": [EAST]}],
            "additions": [{"name": "cache.example.com.", "type": "CNAME", "ttl": 60, "rrdatas": [format!("{WEST}.")]}],
        })
    );
    // The same decision again: read, no write.
    let again = provider.switch(&record(), &west, &fast()).await.unwrap();
    assert_eq!(again, SwitchOutcome::AlreadyPointing);
    assert_eq!(dns.count("POST", "/changes"), 1);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, _) = with_key(dir.path());
    dns.put(RECORD, "CNAME", 60, &[EAST]);
    let quota = "Rate limit exceeded for quota metric 'Write requests'";
    dns.fail(
        "POST",
        "/changes",
        1,
        Refusal::new(429, "rateLimitExceeded", quota).retry_after(1),
    );
    dns.fail(
        "POST",
        "/changes",
        1,
        Refusal::new(500, "backendError", "Backend Error"),
    );
    dns.fail(
        "GET",
        "/changes/",
        1,
        Refusal::new(503, "backendError", "Backend Error"),
    );
    dns.pending_for(2);

    let out = provider
        .switch(&record(), &RecordValue::single(WEST, 60), &fast())
        .await
        .unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    let statuses: Vec<u16> = dns
        .seen()
        .iter()
        .filter(|s| s.path.contains("/changes"))
        .map(|s| s.status)
        .collect();
    // 429, 500, then the change; one failed poll, two pending, then done.
    assert_eq!(statuses, [429, 500, 200, 503, 200, 200, 200]);

    dns.fail(
        "POST",
        "/changes",
        4,
        Refusal::new(429, "rateLimitExceeded", quota).retry_after(1),
    );
    let err = provider
        .switch(&record(), &RecordValue::single(EAST, 60), &fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Throttled, "{err}");
    assert!(
        err.message.starts_with(&format!(
            "google_cloud_dns changes.create (project {PROJECT}, zone {ZONE}): HTTP 429: rateLimitExceeded: {quota} (Retry-After: 1)"
        )) && err.message.ends_with("(after 4 tries)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_stale_read_is_refused_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, _) = with_key(dir.path());
    let other = "redis-other.example.com.";
    dns.put(RECORD, "CNAME", 60, &[other]);
    let east = RecordValue::single(EAST, 60);
    let west = RecordValue::single(WEST, 60);

    // Written on a read of east that someone has since changed: 412.
    let err = provider
        .write(&record(), Some(&east), &west)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert!(
        err.message.contains(
            "HTTP 412: conditionNotMet: Precondition not met for 'entity.change.deletions[0]'"
        ),
        "{err}"
    );
    // Written as new on a read that found nothing: 409 alreadyExists.
    let err = provider.write(&record(), None, &west).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert!(err.message.contains("HTTP 409: alreadyExists"), "{err}");
    // The same TTL matters: the set as read is deleted whole or not at all.
    let err = provider
        .write(&record(), Some(&RecordValue::single(other, 300)), &west)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert_eq!(dns.get(RECORD, "CNAME"), Some((60, vec![other.into()])));

    // Another 409 (a concurrent change) is retried: the change is conditional still.
    dns.fail(
        "POST",
        "/changes",
        1,
        Refusal::new(409, "conflict", "Concurrent change"),
    );
    let out = provider.switch(&record(), &west, &fast()).await.unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    assert_eq!(
        dns.get(RECORD, "CNAME"),
        Some((60, vec![format!("{WEST}.")]))
    );
}

#[tokio::test]
async fn credentials_refused_say_whose_and_show_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, _) = with_key(dir.path());
    // A key the token endpoint does not know (another key replaced it).
    let other = tempfile::tempdir().unwrap();
    dns.service_account_key(other.path());
    let err = provider.read(&record()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
    assert!(
        err.message.starts_with(&format!(
            "google_cloud_dns: no access token from the service account {CLIENT_EMAIL}: invalid_grant"
        )) && err.message.contains("docs/dns.md#google-cloud-dns"),
        "{err}"
    );
    assert_eq!(dns.count("GET", "/rrsets"), 0);

    // A token the API refuses: 401, named, the token never shown.
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, _) = with_key(dir.path());
    dns.put(RECORD, "CNAME", 60, &[EAST]);
    assert!(provider.read(&record()).await.is_ok());
    let token = dns.issued().pop().unwrap();
    let echo = format!("Request had invalid authentication credentials: {token}");
    dns.fail("GET", "/rrsets", 1, Refusal::new(401, "authError", &echo));
    let err = provider.read(&record()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
    assert!(!format!("{err} {err:?}").contains(&token), "{err}");
    assert!(
        err.message.contains(&format!(
            "the service account {CLIENT_EMAIL} may not do this"
        )),
        "{err}"
    );
    // A zone that does not exist.
    let nowhere = RecordRef::new("no-such-zone", RECORD, RecordType::Cname);
    let err = provider.read(&nowhere).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::NotFound, "{err}");
    assert!(err.message.contains("zone no-such-zone"), "{err}");
}

#[tokio::test]
async fn an_expired_token_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, provider, _) = with_key(dir.path());
    dns.token_lifetime(1);
    dns.put(RECORD, "CNAME", 60, &[EAST]);
    provider.read(&record()).await.unwrap();
    provider.read(&record()).await.unwrap();
    assert_eq!(dns.count("POST", "/token"), 1, "{:#?}", dns.seen());
    // Half of a short lifetime later, a new one is fetched.
    tokio::time::sleep(Duration::from_millis(600)).await;
    dns.token_lifetime(3600);
    provider.read(&record()).await.unwrap();
    provider.read(&record()).await.unwrap();
    assert_eq!(dns.count("POST", "/token"), 2, "{:#?}", dns.seen());
    assert_eq!(dns.issued().len(), 2);
}

/// The agent binary with `dns_provider: google_cloud_dns` and no key file: its tokens
/// come from the metadata server at `GCE_METADATA_HOST` (the stand-in), and a
/// failover moves the record to west.
#[test]
fn the_agent_fails_over_with_the_metadata_servers_tokens() {
    let dns = CloudDns::start();
    let host = dns.metadata_host();
    let log = fail_over(&dns, "", &[("GCE_METADATA_HOST", host.as_str())]);
    let metadata = "/computeMetadata/v1/instance/service-accounts/default/token";
    assert!(dns.count("GET", metadata) >= 1, "{:#?}", dns.seen());
    assert_eq!(dns.count("POST", "/token"), 0);
    for token in dns.issued() {
        assert!(!log.contains(&token), "a token in the log:\n{log}");
    }
}

/// The same with `credentials_file`: the key's grant at its `token_uri`, never the
/// metadata server (even with `GCE_METADATA_HOST` set), and neither the key nor a token
/// in the log.
#[test]
fn the_agent_fails_over_with_a_service_account_key() {
    let dns = CloudDns::start();
    let dir = tempfile::tempdir().unwrap();
    let (path, pem) = dns.service_account_key(dir.path());
    let key = format!("  credentials_file: {}\n", path.display());
    let host = dns.metadata_host();
    let log = fail_over(&dns, &key, &[("GCE_METADATA_HOST", host.as_str())]);
    assert!(dns.count("POST", "/token") >= 1, "{:#?}", dns.seen());
    assert_eq!(dns.count("GET", "/computeMetadata/"), 0);
    let key_line = pem.lines().nth(1).unwrap();
    assert!(!log.contains(key_line), "the key in the log:\n{log}");
    for token in dns.issued() {
        assert!(!log.contains(&token), "a token in the log:\n{log}");
    }
}

/// East and west, the agent with `dns_provider: google_cloud_dns` on the stand-in
/// (`key` added to `dns_config`) and `env`; east dies, Alertmanager says so, and the
/// record moves to west. Returns the agent's log.
fn fail_over(dns: &CloudDns, key: &str, env: &[(&str, &str)]) -> String {
    use common::e2e::{TOKEN, payload, post};
    use common::{Agent, Redis};

    let mut east = Redis::start(&[]);
    let west = Redis::start(&[]);
    dns.put(RECORD, "CNAME", 60, &[EAST]);
    let receiver = common::stack::Receiver::start();
    let state = tempfile::tempdir().unwrap();
    let config = common::config(
        &[("app", &[("east", east.port), ("west", west.port)])],
        &format!(
            "auto_failover: true\n\
             failover_consecutive_threshold: 2\n\
             confirm_interval: 200ms\n\
             state_dir: {state}\n\
             webhook: {{bearer_token: {TOKEN}}}\n\
             alertmanager: {{urls: ['{am}']}}\n\
             dns_provider: google_cloud_dns\n\
             dns_config:\n\
             \x20 project: {PROJECT}\n\
             \x20 managed_zone: {ZONE}\n\
             \x20 endpoint_url: {url}\n\
             {key}\
             \x20 records:\n\
             \x20   - {{instance_name: app, name: {RECORD}, type: CNAME, ttl: 60,\n\
             \x20       values: {{east: {EAST}, west: {WEST}}}}}\n",
            state = state.path().display(),
            am = receiver.url(""),
            url = dns.url(),
        ),
    );
    let agent = Agent::start_with_env(&config, env);
    agent.wait_metrics(Duration::from_secs(20), "both endpoints up", |m| {
        m.of("redis_up", "app", "east") == Some(1.0) && m.of("redis_up", "app", "west") == Some(1.0)
    });
    east.kill();
    let (status, answer) = post(agent.port, &payload("firing"), TOKEN);
    assert_eq!(status, 200, "{answer}");
    let west_value = Some((60, vec![format!("{WEST}.")]));
    common::wait_for(
        Duration::from_secs(60),
        "the record to point at west",
        || (dns.get(RECORD, "CNAME") == west_value).then_some(()),
    );
    agent.log()
}
