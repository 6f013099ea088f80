use super::config::TsigKey;
use super::*;

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

fn settings() -> Rfc2136Settings {
    Rfc2136Settings {
        server: "127.0.0.1:53".into(),
        zone: "example.test".into(),
        tsig: TsigKey {
            name: "failover-key".into(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: Secret::new(SECRET),
        },
    }
}

#[test]
fn rcodes_map_to_kinds() {
    use AdapterErrorKind::*;
    for (code, kind) in [
        (ResponseCode::NXRRSet, Stale),
        (ResponseCode::YXRRSet, Stale),
        (ResponseCode::Refused, Unauthorized),
        (ResponseCode::NotAuth, Unauthorized),
        (ResponseCode::BADSIG, Unauthorized),
        (ResponseCode::BADKEY, Unauthorized),
        (ResponseCode::BADTIME, Unauthorized),
        (ResponseCode::ServFail, Unavailable),
        (ResponseCode::FormErr, Invalid),
        (ResponseCode::NotZone, Invalid),
        (ResponseCode::NotImp, Invalid),
        (ResponseCode::YXDomain, Invalid),
    ] {
        assert_eq!(kind_of(code), kind, "{code:?}");
    }
}

#[test]
fn refusals_name_the_key_and_what_to_do() {
    let dns = Rfc2136Dns::new(&settings()).unwrap();
    let (kind, why) = dns.refusal(
        ResponseCode::Refused,
        "cache.example.test",
        RecordType::Cname,
    );
    assert_eq!(kind, AdapterErrorKind::Unauthorized);
    assert!(
        why.contains("key failover-key may not change cache.example.test CNAME")
            && why.contains("update-policy"),
        "{why}"
    );
    let why = dns.tsig_refusal(TsigError::BadSig);
    assert!(
        why.contains("key failover-key") && why.contains("BADSIG"),
        "{why}"
    );
    let why = dns.tsig_refusal(TsigError::BadKey);
    assert!(
        why.contains("hmac-sha256") && why.contains("BADKEY"),
        "{why}"
    );
}

#[test]
fn the_secret_never_shows() {
    let dns = Rfc2136Dns::new(&settings()).unwrap();
    let debug = format!("{dns:?} {:?}", settings());
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("failover-key"), "{debug}");
    let err = dns.error(
        AdapterErrorKind::Invalid,
        Op::Update,
        &format!("echo {SECRET}"),
    );
    assert_eq!(
        err.message, "rfc2136 UPDATE to 127.0.0.1:53: echo ***",
        "{err}"
    );
}

#[test]
fn a_change_id_names_what_a_poll_expects() {
    let name = absolute("Cache.Example.test").unwrap();
    let value = RecordValue {
        values: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        ttl: 30,
    };
    let id = change_id(&name, RecordType::A, &value);
    assert_eq!(id.0, "Cache.Example.test. A 10.0.0.1,10.0.0.2");
    let (back, record_type, target) = parse_change_id(&id).unwrap();
    assert_eq!(back, name);
    assert_eq!(record_type, RecordType::A);
    assert!(target.points_at(&value, RecordType::A));
    assert!(parse_change_id(&ChangeId("/change/C123".into())).is_none());
}

#[test]
fn values_are_checked_before_anything_is_sent() {
    let name = absolute("cache.example.test").unwrap();
    let err = record_set(
        &name,
        RecordType::A,
        &RecordValue::single("redis.example.test", 60),
    )
    .unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Invalid);
    assert!(err.message.contains("is not an IPv4 address"), "{err}");
    let two = RecordValue {
        values: vec!["a.example.test".into(), "b.example.test".into()],
        ttl: 60,
    };
    assert!(record_set(&name, RecordType::Cname, &two).is_err());
    let set = record_set(
        &name,
        RecordType::Aaaa,
        &RecordValue::single("2001:DB8::1", 60),
    )
    .unwrap();
    assert_eq!(set.ttl(), 60);
    assert_eq!(set.records_count(), 1);

    let outside = RecordRef::new("example.test", "cache.example.com", RecordType::Cname);
    let err = names(&outside).unwrap_err();
    assert_eq!(err.kind, AdapterErrorKind::Invalid);
    assert!(err.message.contains("is not in zone example.test"), "{err}");
}
