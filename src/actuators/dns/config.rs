//! `dns_provider` + `dns_config`: which provider moves the records, and which record
//! each instance's clients resolve; read, checked, and built into the provider.
//!
//! `zone_id` and `records` are every provider's; the other keys of `dns_config` are the
//! chosen provider's own, read by its `config` module. A new provider is its folder and
//! one line in `PROVIDERS`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::provider_config::{Provider, ProviderConfig};
use super::{dry_run, google_cloud_dns, rfc2136, route53};
use crate::config_kit::ctx::{Ctx, join};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::decision::ports::{DnsError, DnsProvider, RecordRef};
use crate::model::{DatacenterId, Instance};

/// `dns_config`'s keys, the providers' included (see [`KeyBlock`]). `dry-run` reads
/// Route53's.
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] = &[
    KeyBlock::new("", "RawDnsConfig", RawDnsConfig::KEYS),
    KeyBlock::new("records[]", "RawDnsRecord", RawDnsRecord::KEYS),
    route53::config::KEY_BLOCK,
    google_cloud_dns::config::KEY_BLOCK,
    rfc2136::config::KEY_BLOCK,
    rfc2136::config::TSIG_KEY_BLOCK,
];

/// Every value `dns_provider` may take; the first is the default.
const PROVIDERS: &[Provider] = &[
    route53::config::PROVIDER,
    dry_run::PROVIDER,
    google_cloud_dns::config::PROVIDER,
    rfc2136::config::PROVIDER,
];

/// `dns_provider` + `dns_config`: how a failover moves clients.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// `dns_provider` (default `route53`) with its own keys of `dns_config`.
    pub provider: Arc<dyn ProviderConfig>,
    /// The zone of every record: `dns_config.zone_id` (Route53's hosted zone id), or
    /// the provider's own key for it (`managed_zone` for Cloud DNS, `zone` for RFC 2136).
    pub zone_id: String,
    /// `dns_config.records`.
    pub records: Vec<DnsRecord>,
}

/// One record a failover moves (`dns_config.records[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DnsRecord {
    /// The `name` of the instance this record sends clients to.
    pub instance_name: String,
    /// `name`: the record's name in the zone.
    pub name: String,
    /// `type`: `CNAME` (default), `A` or `AAAA`.
    pub record_type: String,
    /// Seconds. Default 60.
    pub ttl: u32,
    /// `values`: the record's value per datacenter, where it is not that datacenter's
    /// endpoint host.
    pub values: BTreeMap<DatacenterId, String>,
}

/// The provider `settings` name, ready to use.
pub fn build(settings: &DnsSettings) -> Result<Arc<dyn DnsProvider>, DnsError> {
    settings.provider.build()
}

impl DnsSettings {
    /// The record set `record` names, in the configured zone: what the engine switches.
    pub fn record_ref(&self, record: &DnsRecord) -> Result<RecordRef, DnsError> {
        let record_type = record.record_type.parse()?;
        Ok(RecordRef::new(&self.zone_id, &record.name, record_type))
    }
}

impl DnsRecord {
    /// The record's value in each datacenter of `instance`: the one `values` gives, else
    /// the datacenter's endpoint host.
    pub fn values_for(&self, instance: &Instance) -> BTreeMap<DatacenterId, String> {
        instance
            .endpoints
            .iter()
            .map(|(dc, ep)| {
                let value = self
                    .values
                    .get(dc)
                    .cloned()
                    .unwrap_or_else(|| ep.host.clone());
                (dc.clone(), value)
            })
            .collect()
    }
}

/// The serde form of `dns_config`: the shared keys, and the provider's in `rest`.
#[derive(Debug, Deserialize)]
struct RawDnsConfig {
    zone_id: Option<Raw<String>>,
    records: Option<Raw<Vec<RawDnsRecord>>>,
    #[serde(flatten)]
    rest: Unknown,
}

impl RawDnsConfig {
    const KEYS: &'static [&'static str] = &["zone_id", "records"];
}

/// One of `dns_config.records`, as given.
#[derive(Debug, Deserialize)]
struct RawDnsRecord {
    instance_name: Option<Raw<String>>,
    name: Option<Raw<String>>,
    #[serde(rename = "type")]
    record_type: Option<Raw<String>>,
    ttl: Option<Raw<i64>>,
    values: Option<Raw<BTreeMap<String, String>>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawDnsRecord {
    const KEYS: &'static [&'static str] = &["instance_name", "name", "type", "ttl", "values"];
}

/// `dns_provider` + `dns_config`; `None` without `dns_config` or with problems.
pub(crate) fn read(
    cx: &mut Ctx<'_>,
    provider: Option<Raw<String>>,
    block: Option<Value>,
    instances: &[Instance],
) -> Option<DnsSettings> {
    let name = cx.value("dns_provider", provider);
    let provider = match name.as_deref() {
        None => PROVIDERS.first(),
        Some(name) => PROVIDERS.iter().find(|p| p.name == name),
    };
    if let (Some(name), None) = (&name, provider) {
        cx.problem(
            "dns_provider",
            format!("{name:?} is not supported; use {}", names()),
        );
    }
    let raw = cx.value("dns_config", block.map(Raw::<RawDnsConfig>::from_value));
    if name.is_some() && raw.is_none() {
        cx.problem("dns_config", "is required when dns_provider is set");
    }
    let raw = raw?;
    let p = "dns_config";
    // With an unknown provider, a key is unknown when no provider reads it.
    let theirs: Vec<&[&str]> = match provider {
        Some(provider) => vec![provider.keys],
        None => PROVIDERS.iter().map(|p| p.keys).collect(),
    };
    let (own, unknown): (Unknown, Unknown) = raw
        .rest
        .into_iter()
        .partition(|(key, _)| theirs.iter().any(|keys| keys.contains(&key.as_str())));
    let known: Vec<&[&str]> = [RawDnsConfig::KEYS].into_iter().chain(theirs).collect();
    cx.unknown(p, &unknown, &known);
    let zone_key = provider.map_or("zone_id", |provider| provider.zone_key);
    let zone_id = if zone_key == "zone_id" {
        cx.required(&join(p, "zone_id"), raw.zone_id)
    } else {
        if raw.zone_id.is_some() {
            cx.problem(
                &join(p, "zone_id"),
                format!("is not read by this dns_provider; name the zone with `{zone_key}`"),
            );
        }
        None
    };
    let own: Mapping = own
        .into_iter()
        .map(|(k, v)| (Value::String(k), v))
        .collect();
    let provider = provider.and_then(|provider| (provider.read)(cx, p, Value::Mapping(own)));
    let records = records(cx, raw.records, instances);
    let provider = provider?;
    let zone_id = zone_id
        .or_else(|| provider.zone().map(str::to_owned))
        .unwrap_or_default();
    Some(DnsSettings {
        provider,
        zone_id,
        records,
    })
}

/// `"route53", "dry-run", "google_cloud_dns" or "rfc2136"`.
fn names() -> String {
    let quoted: Vec<String> = PROVIDERS.iter().map(|p| format!("{:?}", p.name)).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `dns_config.records`: each names an instance and, per datacenter, its value.
fn records(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<Vec<RawDnsRecord>>>,
    instances: &[Instance],
) -> Vec<DnsRecord> {
    let p = "dns_config";
    let names: BTreeSet<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    let mut records = Vec::new();
    let raw_records = cx.required(&join(p, "records"), raw).unwrap_or_default();
    for (i, r) in raw_records.into_iter().enumerate() {
        let rp = format!("{p}.records[{i}]");
        cx.unknown(&rp, &r.unknown, &[RawDnsRecord::KEYS]);
        let instance_name = cx.required(&join(&rp, "instance_name"), r.instance_name);
        if let Some(n) = instance_name.as_deref().filter(|n| !names.contains(n)) {
            cx.problem(
                &join(&rp, "instance_name"),
                format!("{n:?} is not the name of an instance"),
            );
        }
        let name = cx.required(&join(&rp, "name"), r.name);
        let record_type = cx
            .value(&join(&rp, "type"), r.record_type)
            .unwrap_or_else(|| "CNAME".into());
        if !matches!(record_type.as_str(), "CNAME" | "A" | "AAAA") {
            cx.problem(
                &join(&rp, "type"),
                format!("{record_type:?} is not supported; use CNAME, A or AAAA"),
            );
        }
        let ttl = cx.count(&join(&rp, "ttl"), r.ttl, 60);
        let instance = instance_name
            .as_deref()
            .and_then(|n| instances.iter().find(|i| i.name == n));
        let mut values = BTreeMap::new();
        for (dc, value) in cx.value(&join(&rp, "values"), r.values).unwrap_or_default() {
            let id = DatacenterId::new(&dc);
            if instance.is_some_and(|i| !i.endpoints.contains_key(&id)) {
                cx.problem(
                    &format!("{rp}.values.{dc}"),
                    format!("the instance has no endpoint in datacenter {dc:?}"),
                );
            }
            if value.trim().is_empty() || value.contains(char::is_whitespace) {
                cx.problem(
                    &format!("{rp}.values.{dc}"),
                    format!("{value:?} is not a record value"),
                );
            }
            values.insert(id, value);
        }
        if let (Some(instance_name), Some(name)) = (instance_name, name) {
            records.push(DnsRecord {
                instance_name,
                name,
                record_type,
                ttl,
                values,
            });
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{DnsSettings, build};
    use crate::config::parse;
    use crate::decision::ports::{RecordRef, RecordType};

    const BASE: &str = "instances: [{uid: cache, endpoints: {east: {host: e.example}}}]\n";

    /// `dns_provider` (when given) and `dns_config: {zone_id: Z1, records: [], <keys>}`;
    /// `${SECRET}` is `very-secret`.
    fn load(provider: Option<&str>, keys: &str) -> Result<DnsSettings, String> {
        let provider = provider.map_or(String::new(), |p| format!("dns_provider: {p}\n"));
        let text = format!("{BASE}{provider}dns_config: {{zone_id: Z1, records: [], {keys}}}\n");
        let env = |name: &str| (name == "SECRET").then(|| "very-secret".to_owned());
        parse(&text, "test", Path::new("."), &env)
            .map(|l| l.config.dns.expect("dns is configured"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn build_picks_the_configured_provider() {
        let dry_run = load(Some("dry-run"), "").unwrap();
        assert_eq!(build(&dry_run).unwrap().name(), "dry-run");
        let keys = "aws_access_key: AKIDEXAMPLE, aws_secret_key: '${SECRET}'";
        let settings = load(None, keys).unwrap();
        assert_eq!(settings.provider.name(), "route53", "the default provider");
        let provider = build(&settings).unwrap();
        assert_eq!(provider.name(), "route53");
        assert!(!format!("{provider:?}").contains("very-secret"));
        assert!(!format!("{settings:?}").contains("very-secret"));
        let said = load(Some("bind"), "").unwrap_err();
        assert!(
            said.contains(
                "dns_provider: \"bind\" is not supported; use \"route53\", \"dry-run\", \"google_cloud_dns\" or \"rfc2136\""
            ),
            "{said}"
        );
    }

    #[test]
    fn a_record_names_its_record_set_and_a_value_per_datacenter() {
        let text = "instances: [{uid: cache, name: cache-service, active_dc: east, endpoints: \
                    {east: {host: e.example}, west: {host: w.example}}}]\n\
                    dns_provider: dry-run\n\
                    dns_config: {zone_id: Z1, records: [{instance_name: cache-service, \
                    name: redis.example.com, type: A, ttl: 30, values: {west: 10.0.0.2}}]}\n";
        let config = parse(text, "test", Path::new("."), &|_| None)
            .unwrap()
            .config;
        let (dns, instance) = (config.dns.unwrap(), &config.instances[0]);
        let record = &dns.records[0];
        assert_eq!(
            dns.record_ref(record).unwrap(),
            RecordRef::new("Z1", "redis.example.com", RecordType::A)
        );
        assert_eq!(record.ttl, 30);
        let values: Vec<(String, String)> = record
            .values_for(instance)
            .into_iter()
            .map(|(dc, v)| (dc.to_string(), v))
            .collect();
        assert_eq!(
            values,
            [
                ("east".to_owned(), "e.example".to_owned()),
                ("west".to_owned(), "10.0.0.2".to_owned())
            ]
        );
    }

    #[test]
    fn each_provider_reads_its_own_keys() {
        let said = load(Some("route53"), "aws_regoin: eu-west-1, zone_idd: Z2").unwrap_err();
        for expected in [
            "dns_config.aws_regoin: unknown key (did you mean `aws_region`?)",
            "dns_config.zone_idd: unknown key (did you mean `zone_id`?)",
        ] {
            assert!(said.contains(expected), "{expected} not in {said}");
        }
        // dry-run checks Route53's keys as Route53 would.
        let said = load(Some("dry-run"), "endpoint_url: 'ftp://moto'").unwrap_err();
        assert!(
            said.contains("dns_config.endpoint_url: \"ftp://moto\" is not an http"),
            "{said}"
        );
        // An unknown provider: keys some provider reads are not called unknown.
        let said = load(Some("bind"), "aws_region: eu-west-1, zone_idd: Z2").unwrap_err();
        assert!(said.contains("dns_config.zone_idd: unknown key"), "{said}");
        assert!(!said.contains("aws_region"), "{said}");
    }

    /// Without keys, Route53 takes the default credential chain; `aws_profile` picks the
    /// profile it reads, and `aws_region` is kept only when given.
    #[test]
    fn route53_reads_a_profile_and_a_region_only_when_given() {
        let given = load(None, "aws_region: ' eu-west-1 ', aws_profile: ops").unwrap();
        let debug = format!("{:?}", given.provider);
        assert!(
            debug.contains(r#"region: Some("eu-west-1"), profile: Some("ops")"#),
            "{debug}"
        );
        let debug = format!("{:?}", load(None, "").unwrap().provider);
        assert!(debug.contains("region: None, profile: None"), "{debug}");
        let said = load(None, "aws_profile: ''").unwrap_err();
        assert!(
            said.contains("dns_config.aws_profile: must not be empty"),
            "{said}"
        );
    }
}
