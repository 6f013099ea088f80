//! The Route53 provider and `DnsProvider::switch` against a real `moto_server`, with a
//! fault-injecting proxy in front of it for what moto never does: PENDING changes,
//! throttling, PriorRequestNotComplete and refusals. The provider contract
//! (`decision::ports::dns::contract`) runs here too.
//!
//! The switch is one change batch, DELETE of the set as read and CREATE of the new one.
//! Route53 refuses the batch when the DELETE does not match the current set
//! (InvalidChangeBatch, "Tried to delete resource record set [name='...', type='CNAME']
//! but the values provided do not match the current values", or "... but it was not
//! found"; "To delete a resource record set, you must specify all the same values":
//! https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
//! moto 5.2.1 does not: it checks a DELETE against every CREATE or UPSERT the zone
//! ever received, not against the current set, and then deletes by name and type
//! (`moto/route53/models.py`, `ChangeList.has_insert_or_update`). So a batch based on a
//! stale read is accepted by moto and overwrites; `moto_does_not_check_a_delete_against_the_current_values`
//! shows it, and the refusal is tested with Route53's own answer put in by the proxy.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use redis_failover_agent::actuators::dns::{Route53Dns, Route53Settings};
use redis_failover_agent::decision::ports::dns::contract::{ContractZone, STALE, run_contract};
use redis_failover_agent::decision::ports::{
    AdapterErrorKind, DnsProvider, RecordRef, RecordType, RecordValue, SwitchOutcome, SwitchPolicy,
};
use redis_failover_agent::model::Secret;

use common::faulty_http::{Action, FaultyHttp};
use common::moto::{ACCESS_KEY, Moto, SECRET_KEY, listing, zone_with};

const EAST: &str = "redis-east.example.com";
const WEST: &str = "redis-west.example.com";

/// A zone `example.com` with `cache` and `sessions` both CNAMEs to the east host.
async fn zone(moto: &Moto) -> String {
    zone_with(
        moto,
        &[("cache.example.com", EAST), ("sessions.example.com", EAST)],
    )
    .await
}

/// The provider for a Route53 API at `endpoint` (moto, or a proxy in front of it).
fn provider(endpoint: &str) -> std::sync::Arc<dyn DnsProvider> {
    std::sync::Arc::new(
        Route53Dns::new(&Route53Settings {
            region: Some("us-east-1".into()),
            profile: None,
            access_key: Some(Secret::new(ACCESS_KEY)),
            secret_key: Some(Secret::new(SECRET_KEY)),
            endpoint_url: Some(endpoint.into()),
        })
        .expect("the route53 provider builds"),
    )
}

fn record(zone_id: &str, name: &str) -> RecordRef {
    RecordRef::new(zone_id, name, RecordType::Cname)
}

fn fast() -> SwitchPolicy {
    SwitchPolicy {
        insync_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        attempts: 4,
        call_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn switches_one_of_two_records_and_reads_before_writing() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let dns = provider(&proxy.url());
    let (cache, sessions) = (
        record(&zone_id, "cache.example.com"),
        record(&zone_id, "sessions.example.com"),
    );
    let east = RecordValue::single(EAST, 60);
    let west = RecordValue::single(WEST, 60);

    assert_eq!(dns.read(&cache).await.unwrap(), Some(east.clone()));
    assert_eq!(dns.read(&sessions).await.unwrap(), Some(east.clone()));
    // Names compare without case or trailing dot; a missing record is None even
    // though the listing from its name on returns other records.
    let shouted = record(&zone_id, "CACHE.Example.COM.");
    assert_eq!(dns.read(&shouted).await.unwrap(), Some(east.clone()));
    assert_eq!(
        dns.read(&record(&zone_id, "bogus.example.com"))
            .await
            .unwrap(),
        None
    );
    let a_type = RecordRef::new(&zone_id, "cache.example.com", RecordType::A);
    assert_eq!(dns.read(&a_type).await.unwrap(), None);

    let out = dns.switch(&cache, &west, &fast()).await.unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    assert_eq!(dns.read(&cache).await.unwrap(), Some(west.clone()));
    assert_eq!(dns.read(&sessions).await.unwrap(), Some(east.clone()));
    let after_first = listing(&moto, &zone_id).await;
    assert!(
        after_first.contains(&(
            "sessions.example.com.".into(),
            "CNAME".into(),
            vec![EAST.into()]
        )),
        "{after_first:?}"
    );
    assert_eq!(proxy.count("POST", "/rrset"), 1);
    let post = &proxy
        .log()
        .into_iter()
        .find(|e| e.method == "POST")
        .unwrap();
    // One batch: the set as read goes, the new one comes.
    let delete = post.body.find("<Action>DELETE</Action>").expect("a DELETE");
    let create = post.body.find("<Action>CREATE</Action>").expect("a CREATE");
    assert!(delete < create, "{}", post.body);
    assert!(!post.body.contains("UPSERT"), "{}", post.body);
    assert!(
        post.body[delete..create].contains(&format!("<Value>{EAST}</Value>"))
            && post.body[delete..create].contains("<TTL>60</TTL>")
            && post.body[create..].contains(&format!("<Value>{WEST}</Value>")),
        "{}",
        post.body
    );
    assert!(
        post.body.contains("<Comment>redis-failover-agent"),
        "{}",
        post.body
    );

    // The same decision again (a duplicate delivery, a replay): read, and no write.
    let again = dns.switch(&cache, &west, &fast()).await.unwrap();
    assert_eq!(again, SwitchOutcome::AlreadyPointing);
    assert_eq!(proxy.count("POST", "/rrset"), 1, "{:#?}", proxy.log());
    assert_eq!(listing(&moto, &zone_id).await, after_first);
    // And the other record can still be switched on its own.
    dns.switch(&sessions, &west, &fast()).await.unwrap();
    assert_eq!(dns.read(&sessions).await.unwrap(), Some(west));
    assert!(
        proxy
            .log()
            .iter()
            .all(|e| !e.body.contains(SECRET_KEY) && !e.path.contains(SECRET_KEY))
    );
}

#[tokio::test]
async fn waits_until_a_pending_change_is_in_sync() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let rewrite = Action::Rewrite {
        from: "INSYNC".into(),
        to: "PENDING".into(),
    };
    proxy.inject("GET", "/change/", 3, rewrite);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");

    let out = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &fast())
        .await
        .unwrap();
    let SwitchOutcome::Changed { in_sync_after, .. } = out else {
        panic!("expected a change: {out:?}");
    };
    assert!(
        in_sync_after >= Duration::from_millis(300),
        "{in_sync_after:?}"
    );
    let polls: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|e| e.path.contains("/change/"))
        .collect();
    assert_eq!(polls.len(), 4, "{polls:#?}");
    assert!(polls[..3].iter().all(|e| e.fault.is_some()));
}

#[tokio::test]
async fn never_in_sync_is_a_timeout_after_the_write() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let rewrite = Action::Rewrite {
        from: "INSYNC".into(),
        to: "PENDING".into(),
    };
    proxy.inject("GET", "/change/", 10_000, rewrite);
    let dns = provider(&proxy.url());
    let policy = SwitchPolicy {
        insync_timeout: Duration::from_secs(1),
        ..fast()
    };
    let cache = record(&zone_id, "cache.example.com");
    let err = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &policy)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Timeout, "{err}");
    let change = err
        .written
        .clone()
        .expect("the error says the write was accepted");
    assert!(err.message.contains(&change.0), "{err}");
    assert_eq!(proxy.count("POST", "/rrset"), 1);
}

#[tokio::test]
async fn retries_throttling_and_prior_request_not_complete() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let throttled = Action::aws_error(400, "Throttling", "Rate exceeded");
    let busy = Action::aws_error(
        400,
        "PriorRequestNotComplete",
        "The request was rejected because Route 53 was still processing a prior request.",
    );
    proxy.inject("POST", "/rrset", 2, throttled);
    proxy.inject("POST", "/rrset", 1, busy);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");

    let started = Instant::now();
    let out = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &fast())
        .await
        .unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    // Three refusals, three backoffs (at least 0.25 + 0.5 + 1 s), then the write.
    assert!(
        started.elapsed() >= Duration::from_millis(1750),
        "{:?}",
        started.elapsed()
    );
    let posts: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect();
    assert_eq!(posts.len(), 4, "{posts:#?}");
    assert_eq!(
        posts.iter().map(|e| e.status).collect::<Vec<_>>(),
        [400, 400, 400, 200]
    );
    assert_eq!(
        dns.read(&cache).await.unwrap(),
        Some(RecordValue::single(WEST, 60))
    );

    // Throttled on every try: the error says so, after `attempts` tries.
    proxy.inject(
        "POST",
        "/rrset",
        100,
        Action::aws_error(400, "Throttling", "Rate exceeded"),
    );
    let err = dns
        .switch(&cache, &RecordValue::single(EAST, 60), &fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Throttled, "{err}");
    assert!(
        err.message.contains("Throttling") && err.message.contains("after 4 tries"),
        "{err}"
    );
    assert_eq!(proxy.count("POST", "/rrset"), 8);
}

#[tokio::test]
async fn refusals_are_not_retried_and_never_show_the_keys() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");
    let west = RecordValue::single(WEST, 60);

    proxy.inject(
        "POST",
        "/rrset",
        1,
        Action::aws_error(
            400,
            "InvalidChangeBatch",
            "[RRSet of type CNAME with DNS name cache.example.com. is not permitted]",
        ),
    );
    let err = dns.switch(&cache, &west, &fast()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Invalid, "{err}");
    assert!(err.message.contains("InvalidChangeBatch"), "{err}");
    assert_eq!(proxy.count("POST", "/rrset"), 1);

    // A server that echoes the credentials back: they never reach our error.
    let echo = format!("The security token {ACCESS_KEY} / {SECRET_KEY} is invalid.");
    proxy.inject(
        "POST",
        "/rrset",
        1,
        Action::aws_error(403, "InvalidClientTokenId", &echo),
    );
    let err = dns.switch(&cache, &west, &fast()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unauthorized, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(SECRET_KEY) && !shown.contains(ACCESS_KEY),
        "{shown}"
    );
    assert!(shown.contains("***"), "{shown}");
    assert_eq!(proxy.count("POST", "/rrset"), 2);

    // moto's own answer for a zone that does not exist.
    let nowhere = record("ZNOSUCHZONE00", "cache.example.com");
    let err = dns.read(&nowhere).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::NotFound, "{err}");
    assert!(err.message.contains("NoSuchHostedZone"), "{err}");
    // Nothing was changed by any of this.
    assert_eq!(
        dns.read(&cache).await.unwrap(),
        Some(RecordValue::single(EAST, 60))
    );
}

#[tokio::test]
async fn an_api_that_is_not_running_is_unavailable_quickly() {
    // A loopback port held bound but not listening: it refuses, and no other test's
    // server (moto) can take it meanwhile, as one did with a port from free_port.
    let (_held, port) = common::closed_port();
    let dns = provider(&format!("http://127.0.0.1:{port}"));
    let cache = record("Z0000000000", "cache.example.com");
    let policy = SwitchPolicy {
        attempts: 3,
        ..fast()
    };
    let started = Instant::now();
    let err = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &policy)
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.message.contains("after 3 tries"), "{err}");

    // A proxy that hangs up without an answer looks the same.
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    proxy.inject("GET", "/rrset", 1, Action::HangUp);
    let dns = provider(&proxy.url());
    let err = dns
        .read(&record(&zone_id, "cache.example.com"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unavailable, "{err}");
}

/// moto behind the fault-injecting proxy, as the contract sees it.
struct MotoZone {
    moto: Moto,
    proxy: FaultyHttp,
}

#[async_trait::async_trait]
impl ContractZone for MotoZone {
    async fn put(&self, record: &RecordRef, value: &RecordValue) {
        put(&self.moto, record, value).await;
    }
    fn writes(&self) -> usize {
        self.proxy.count("POST", "/rrset")
    }
    fn polls(&self) -> usize {
        self.proxy.count("GET", "/change/")
    }
    fn pending_for(&self, polls: u32) -> bool {
        let rewrite = Action::Rewrite {
            from: "INSYNC".into(),
            to: "PENDING".into(),
        };
        self.proxy.inject("GET", "/change/", polls, rewrite);
        true
    }
    fn throttle_writes(&self, times: u32) -> bool {
        let throttled = Action::aws_error(400, "Throttling", "Rate exceeded");
        self.proxy.inject("POST", "/rrset", times, throttled);
        true
    }
    fn refuses_stale_writes(&self) -> bool {
        // moto 5.2.1 accepts a DELETE of values the set no longer holds (module doc).
        false
    }
    fn secrets(&self) -> Vec<String> {
        vec![ACCESS_KEY.into(), SECRET_KEY.into()]
    }
    fn echo_secrets_on_next_write(&self) -> bool {
        let echo = format!("The security token {ACCESS_KEY} / {SECRET_KEY} is invalid.");
        let refusal = Action::aws_error(403, "InvalidClientTokenId", &echo);
        self.proxy.inject("POST", "/rrset", 1, refusal);
        true
    }
}

/// Sets a record in moto directly, as another writer would.
async fn put(moto: &Moto, record: &RecordRef, value: &RecordValue) {
    let mut set = ResourceRecordSet::builder()
        .name(&record.name)
        .r#type(RrType::Cname)
        .ttl(i64::from(value.ttl));
    for v in &value.values {
        set = set.resource_records(ResourceRecord::builder().value(v).build().unwrap());
    }
    let change = Change::builder()
        .action(ChangeAction::Upsert)
        .resource_record_set(set.build().unwrap())
        .build()
        .unwrap();
    common::moto::sdk(&moto.url())
        .change_resource_record_sets()
        .hosted_zone_id(&record.zone_id)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .expect("moto takes the change");
}

#[tokio::test]
async fn route53_on_moto_passes_the_contract() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let dns = provider(&proxy.url());
    let bed = MotoZone { moto, proxy };
    let left_out = run_contract(dns.as_ref(), &bed, &zone_id, "example.com", &fast()).await;
    // moto takes a batch based on a stale read (see the next test); the stale case runs
    // against Route53's documented refusal in `a_stale_read_refused_by_route53_overwrites_nothing_and_says_what_it_found`.
    assert_eq!(left_out, [STALE]);
}

/// What moto 5.2.1 answers a batch based on a stale read: it takes it and overwrites
/// (real Route53 refuses it; see the module doc). And a DELETE of values the zone never
/// held, its one check, is InvalidInput, not Route53's InvalidChangeBatch.
#[tokio::test]
async fn moto_does_not_check_a_delete_against_the_current_values() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let dns = provider(&moto.url());
    let cache = record(&zone_id, "cache.example.com");
    let east = RecordValue::single(EAST, 60);
    let other = RecordValue::single("redis-other.example.com", 60);
    let west = RecordValue::single(WEST, 60);

    put(&moto, &cache, &other).await;
    let change = dns.write(&cache, Some(&east), &west).await;
    assert!(change.is_ok(), "moto now checks the DELETE: {change:?}");
    assert_eq!(dns.read(&cache).await.unwrap(), Some(west.clone()));

    let never = RecordValue::single("never.example.com", 60);
    let third = RecordValue::single("redis-third.example.com", 60);
    let err = dns.write(&cache, Some(&never), &third).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Invalid, "{err}");
    assert_eq!(
        err.message,
        "route53 ChangeResourceRecordSets: InvalidInput (HTTP 400): Invalid request: \
         Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or \
         TrafficPolicyInstanceId], but found none in Change with [Action=DELETE, \
         Name=cache.example.com., Type=CNAME, SetIdentifier=null]"
    );
    assert_eq!(dns.read(&cache).await.unwrap(), Some(west));

    // A CREATE the zone already took once, while the name exists, is refused with
    // Route53's wording (moto checks it before the DELETE): Stale, as on Route53.
    let err = dns.write(&cache, Some(&never), &east).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert!(err.message.contains("but it already exists"), "{err}");
}

/// Route53's refusal of a stale DELETE, as it words it, put in by the proxy: the first
/// listing shows the record as it was before another writer changed it in moto.
#[tokio::test]
async fn a_stale_read_refused_by_route53_overwrites_nothing_and_says_what_it_found() {
    let moto = Moto::start();
    let zone_id = zone(&moto).await;
    let proxy = FaultyHttp::start(moto.port);
    let dns = provider(&proxy.url());
    let cache = record(&zone_id, "cache.example.com");
    let other = RecordValue::single("redis-other.example.com", 60);
    put(&moto, &cache, &other).await;
    let before_the_other_writer = Action::Rewrite {
        from: "redis-other.example.com".into(),
        to: EAST.into(),
    };
    proxy.inject("GET", "/rrset", 1, before_the_other_writer);
    let refusal = Action::aws_error(
        400,
        "InvalidChangeBatch",
        "[Tried to delete resource record set [name='cache.example.com.', type='CNAME'] \
         but the values provided do not match the current values]",
    );
    proxy.inject("POST", "/rrset", 1, refusal);

    let err = dns
        .switch(&cache, &RecordValue::single(WEST, 60), &fast())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale, "{err}");
    assert_eq!(err.written, None);
    assert!(
        err.message.starts_with(
            "cache.example.com CNAME changed since it was read: now redis-other.example.com \
             (ttl 60 s), expected redis-east.example.com (ttl 60 s); nothing written \
             (route53 ChangeResourceRecordSets: InvalidChangeBatch (HTTP 400): [Tried to delete"
        ),
        "{err}"
    );
    // One write, refused and not retried; the listing read again once.
    assert_eq!(proxy.count("POST", "/rrset"), 1, "{:#?}", proxy.log());
    assert_eq!(proxy.count("GET", "/rrset"), 2, "{:#?}", proxy.log());
    assert_eq!(dns.read(&cache).await.unwrap(), Some(other));
}
