//! `DnsProvider::switch` against the in-memory provider (read first, retries, waiting for
//! the change to be in sync, a stale read refused), the contract suite, and record
//! values and types.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn cache() -> RecordRef {
    RecordRef::new("Z1", "cache.example.com", RecordType::Cname)
}

const EAST_HOST: &str = "redis-east.example.com";

fn east() -> RecordValue {
    RecordValue::single(EAST_HOST, 60)
}

fn west() -> RecordValue {
    RecordValue::single("redis-west.example.com", 60)
}

fn policy() -> SwitchPolicy {
    SwitchPolicy {
        insync_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(2),
        attempts: 4,
        call_timeout: Duration::from_secs(5),
    }
}

fn pointing_east() -> MemoryDns {
    MemoryDns::new().with_record(&cache(), east())
}

#[tokio::test(start_paused = true)]
async fn already_pointing_writes_nothing() {
    let dns = MemoryDns::new().with_record(
        &cache(),
        RecordValue::single("Redis-West.Example.com.", 300),
    );
    let out = dns.switch(&cache(), &west(), &policy()).await.unwrap();
    assert_eq!(out, SwitchOutcome::AlreadyPointing);
    assert_eq!(dns.calls(Op::Read), 1);
    assert_eq!(dns.calls(Op::Write), 0);
    assert_eq!(dns.calls(Op::ChangeStatus), 0);
}

#[tokio::test(start_paused = true)]
async fn changes_and_waits_until_in_sync() {
    let dns = pointing_east();
    dns.pending_for(3);
    let out = dns.switch(&cache(), &west(), &policy()).await.unwrap();
    let SwitchOutcome::Changed {
        change,
        in_sync_after,
    } = out
    else {
        panic!("expected a change, got {out:?}");
    };
    assert_eq!(change, ChangeId("memory-1".into()));
    // Pending, Pending, Pending, InSync: three poll intervals.
    assert_eq!(in_sync_after, Duration::from_secs(6));
    assert_eq!(dns.calls(Op::ChangeStatus), 4);
    assert_eq!(dns.writes(), vec![(cache(), west())]);
    assert_eq!(dns.get(&cache()), Some(west()));
}

#[tokio::test(start_paused = true)]
async fn a_missing_record_is_created() {
    let dns = MemoryDns::new();
    let out = dns.switch(&cache(), &west(), &policy()).await.unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    assert_eq!(dns.get(&cache()), Some(west()));
}

#[tokio::test(start_paused = true)]
async fn memory_dns_passes_the_contract() {
    let dns = MemoryDns::new();
    let left_out = contract::run_contract(&dns, &dns, "Z1", "example.com", &policy()).await;
    // It holds no credentials to echo; every other case runs.
    assert_eq!(left_out, [contract::ECHOED_SECRETS]);
}

fn other() -> RecordValue {
    RecordValue::single("redis-other.example.com", 60)
}

#[tokio::test(start_paused = true)]
async fn a_stale_read_is_refused_once_and_nothing_is_overwritten() {
    let dns = pointing_east();
    dns.change_after_next_read(&cache(), Some(other()));
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale);
    assert_eq!(err.written, None);
    assert_eq!(
        err.message,
        "cache.example.com CNAME changed since it was read: \
         now redis-other.example.com (ttl 60 s), expected redis-east.example.com (ttl 60 s); \
         nothing written (memory: cache.example.com CNAME holds redis-other.example.com \
         (ttl 60 s), not redis-east.example.com (ttl 60 s))"
    );
    // One write, refused and not retried; one read more to say what is there now.
    assert_eq!(dns.calls(Op::Write), 1);
    assert_eq!(dns.calls(Op::Read), 2);
    assert_eq!(dns.calls(Op::ChangeStatus), 0);
    assert!(dns.writes().is_empty());
    assert_eq!(dns.get(&cache()), Some(other()));
}

#[tokio::test(start_paused = true)]
async fn a_record_deleted_or_created_since_the_read_is_left_alone() {
    let dns = pointing_east();
    dns.change_after_next_read(&cache(), None);
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale);
    assert!(
        err.message.contains("now (none), expected redis-east"),
        "{err}"
    );
    assert_eq!(dns.get(&cache()), None);

    let dns = MemoryDns::new();
    dns.change_after_next_read(&cache(), Some(other()));
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale);
    assert!(err.message.contains("expected (none)"), "{err}");
    assert_eq!(dns.get(&cache()), Some(other()));
}

#[tokio::test(start_paused = true)]
async fn a_stale_read_now_pointing_at_the_target_is_already_pointing() {
    let dns = pointing_east();
    dns.change_after_next_read(&cache(), Some(west()));
    let out = dns.switch(&cache(), &west(), &policy()).await.unwrap();
    assert_eq!(out, SwitchOutcome::AlreadyPointing);
    assert_eq!(dns.calls(Op::Write), 1);
    assert!(dns.writes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_write_holds_only_against_the_value_and_ttl_read() {
    let dns = pointing_east();
    let longer = RecordValue::single(EAST_HOST, 300);
    let err = dns
        .write(&cache(), Some(&longer), &west())
        .await
        .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale);
    let err = dns.write(&cache(), None, &west()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Stale);
    let shouted = RecordValue::single("REDIS-EAST.example.com.", 60);
    dns.write(&cache(), Some(&shouted), &west()).await.unwrap();
    assert_eq!(dns.get(&cache()), Some(west()));
}

#[tokio::test(start_paused = true)]
async fn throttled_twice_then_ok_backs_off() {
    let dns = pointing_east();
    dns.fail_next(Op::Write, 2, AdapterErrorKind::Throttled);
    let started = Instant::now();
    let out = dns.switch(&cache(), &west(), &policy()).await.unwrap();
    assert!(matches!(out, SwitchOutcome::Changed { .. }), "{out:?}");
    assert_eq!(dns.calls(Op::Write), 3);
    assert_eq!(dns.writes().len(), 1);
    // Two backoffs: 0.25..0.5 s and 0.5..1 s.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(750) && waited <= Duration::from_millis(1500),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn conflict_and_unavailable_reads_are_retried() {
    let dns = pointing_east();
    dns.fail_next(Op::Read, 1, AdapterErrorKind::Unavailable);
    dns.fail_next(Op::Write, 1, AdapterErrorKind::Conflict);
    dns.switch(&cache(), &west(), &policy()).await.unwrap();
    assert_eq!(dns.calls(Op::Read), 2);
    assert_eq!(dns.calls(Op::Write), 2);
}

#[tokio::test(start_paused = true)]
async fn invalid_unauthorized_and_not_found_are_not_retried() {
    for kind in [
        AdapterErrorKind::Invalid,
        AdapterErrorKind::Unauthorized,
        AdapterErrorKind::NotFound,
        AdapterErrorKind::Stale,
    ] {
        let dns = pointing_east();
        dns.fail_next(Op::Write, 1, kind);
        let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
        assert_eq!(err.kind, kind);
        assert_eq!(err.written, None);
        assert_eq!(dns.calls(Op::Write), 1, "{kind}");
        assert_eq!(dns.get(&cache()), Some(east()));
    }
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_the_attempts() {
    let dns = pointing_east();
    dns.fail_next(Op::Write, 10, AdapterErrorKind::Throttled);
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Throttled);
    assert!(err.message.contains("after 4 tries"), "{err}");
    assert_eq!(dns.calls(Op::Write), 4);
    assert_eq!(dns.get(&cache()), Some(east()));
}

#[tokio::test(start_paused = true)]
async fn never_in_sync_is_a_timeout_that_says_it_was_written() {
    let dns = pointing_east();
    dns.pending_for(u32::MAX);
    let started = Instant::now();
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Timeout);
    assert_eq!(err.written, Some(ChangeId("memory-1".into())));
    assert!(err.message.contains("not in sync after 60s"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    // A poll at 0, 2, ..., 60 s.
    assert_eq!(dns.calls(Op::ChangeStatus), 31);
}

#[tokio::test(start_paused = true)]
async fn failing_polls_are_tolerated_until_the_deadline() {
    let dns = pointing_east();
    dns.fail_next(Op::ChangeStatus, 2, AdapterErrorKind::Throttled);
    dns.switch(&cache(), &west(), &policy()).await.unwrap();
    assert_eq!(dns.calls(Op::ChangeStatus), 3);

    let dns = pointing_east();
    dns.fail_next(Op::ChangeStatus, 1, AdapterErrorKind::Unauthorized);
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Unauthorized);
    assert_eq!(err.written, Some(ChangeId("memory-1".into())));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_call_times_out_and_is_retried() {
    let dns = pointing_east();
    dns.delay(Op::Read, Duration::from_secs(30));
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Timeout);
    assert_eq!(dns.calls(Op::Read), 4);
    assert_eq!(dns.calls(Op::Write), 0);

    dns.delay(Op::Read, Duration::ZERO);
    dns.delay(Op::Write, Duration::from_secs(30));
    let err = dns.switch(&cache(), &west(), &policy()).await.unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Timeout);
    // A timed-out write is cancelled before it takes effect in the fake.
    assert_eq!(dns.get(&cache()), Some(east()));
}

#[tokio::test(start_paused = true)]
async fn impossible_targets_are_refused_before_any_call() {
    let dns = pointing_east();
    let two = RecordValue {
        values: vec![EAST_HOST.into(), "other.example.com".into()],
        ttl: 60,
    };
    let a = RecordRef::new("Z1", "cache.example.com", RecordType::A);
    let aaaa = RecordRef::new("Z1", "cache.example.com", RecordType::Aaaa);
    for (record, target) in [
        (cache(), RecordValue::single("", 60)),
        (
            cache(),
            RecordValue {
                values: vec![],
                ttl: 60,
            },
        ),
        (cache(), two),
        (a.clone(), RecordValue::single(EAST_HOST, 60)),
        (aaaa, RecordValue::single("10.0.0.1", 60)),
    ] {
        let err = dns.switch(&record, &target, &policy()).await.unwrap_err();
        assert_eq!(err.kind, AdapterErrorKind::Invalid, "{target:?}");
    }
    assert_eq!(dns.calls(Op::Read), 0);
    dns.switch(&a, &RecordValue::single("10.0.0.1", 60), &policy())
        .await
        .unwrap();
}

#[test]
fn values_compare_as_dns_does() {
    let a = |vs: &[&str]| RecordValue {
        values: vs.iter().map(|s| s.to_string()).collect(),
        ttl: 60,
    };
    assert!(a(&["Host.Example.COM."]).points_at(&a(&["host.example.com"]), RecordType::Cname));
    assert!(!a(&["east.example.com"]).points_at(&a(&["west.example.com"]), RecordType::Cname));
    assert!(a(&["10.0.0.2", "10.0.0.1"]).points_at(&a(&["10.0.0.1", "10.0.0.2"]), RecordType::A));
    assert!(!a(&["10.0.0.1"]).points_at(&a(&["10.0.0.1", "10.0.0.2"]), RecordType::A));
    assert!(a(&["2001:DB8:0::1"]).points_at(&a(&["2001:db8::1"]), RecordType::Aaaa));
    assert_eq!(canonical_name("\\052.Example.com."), "*.example.com");
    assert_eq!(canonical_name("a\\\\b"), "a\\\\b");
}

#[test]
fn record_types_parse_and_serialize_as_dns_spells_them() {
    assert_eq!("cname".parse::<RecordType>().unwrap(), RecordType::Cname);
    assert_eq!("AAAA".parse::<RecordType>().unwrap(), RecordType::Aaaa);
    assert_eq!(
        "MX".parse::<RecordType>().unwrap_err().kind,
        AdapterErrorKind::Invalid
    );
    assert_eq!(
        serde_json::to_string(&RecordType::Cname).unwrap(),
        "\"CNAME\""
    );
}
