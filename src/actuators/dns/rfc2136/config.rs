//! `dns_provider: rfc2136`: the server, the zone and the TSIG key of `dns_config`, read
//! and checked.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_yaml::Value;

use super::super::provider_config::{Provider, ProviderConfig};
use crate::config_kit::ctx::{Ctx, join};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::decision::ports::{DnsError, DnsProvider};
use crate::model::Secret;

/// The provider's keys of `dns_config` (see [`KeyBlock`]).
#[cfg(test)]
pub const KEY_BLOCK: KeyBlock = KeyBlock::new("", "RawRfc2136", RawRfc2136::KEYS);
/// The keys of `dns_config.tsig`.
#[cfg(test)]
pub const TSIG_KEY_BLOCK: KeyBlock = KeyBlock::new("tsig", "RawTsig", RawTsig::KEYS);

pub const PROVIDER: Provider = Provider {
    name: "rfc2136",
    keys: RawRfc2136::KEYS,
    zone_key: "zone",
    read,
};

/// The DNS port, when `server` gives none.
const DEFAULT_PORT: u16 = 53;

/// `dns_provider: rfc2136`: dynamic updates (RFC 2136) signed with TSIG (RFC 8945).
#[derive(Debug, Clone, PartialEq)]
pub struct Rfc2136Settings {
    /// `dns_config.server`: the zone's primary server, `host:port` (port default 53).
    /// A host name is resolved at each call.
    pub server: String,
    /// `dns_config.zone`: the zone every record is in, `example.com`.
    pub zone: String,
    /// `dns_config.tsig`: the key that signs every message.
    pub tsig: TsigKey,
}

/// A TSIG key as the server knows it (BIND's `key "name" { algorithm; secret; }`).
#[derive(Clone, PartialEq)]
pub struct TsigKey {
    /// `name`: the key's name, as the server's configuration spells it.
    pub name: String,
    /// `algorithm`: default `hmac-sha256`.
    pub algorithm: TsigAlgorithm,
    /// `secret` or `secret_file`: the shared secret in base64, as `tsig-keygen` prints
    /// it; checked to decode.
    pub secret: Secret,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    /// The secret's bytes. The configuration checked that they decode.
    pub fn secret_bytes(&self) -> Option<Vec<u8>> {
        STANDARD.decode(self.secret.expose().trim()).ok()
    }
}

/// The HMACs the agent signs with: those RFC 8945 says to implement or recommends,
/// without the truncated ones and the old MD5 and SHA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl TsigAlgorithm {
    const ALL: [TsigAlgorithm; 3] = [Self::HmacSha256, Self::HmacSha384, Self::HmacSha512];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha384 => "hmac-sha384",
            Self::HmacSha512 => "hmac-sha512",
        }
    }
}

impl fmt::Display for TsigAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The serde form of the provider's keys, as given.
#[derive(Debug, Deserialize)]
struct RawRfc2136 {
    server: Option<Raw<String>>,
    zone: Option<Raw<String>>,
    tsig: Option<Raw<RawTsig>>,
}

impl RawRfc2136 {
    const KEYS: &'static [&'static str] = &["server", "zone", "tsig"];
}

/// `dns_config.tsig`, as given.
#[derive(Debug, Deserialize)]
struct RawTsig {
    name: Option<Raw<String>>,
    algorithm: Option<Raw<String>>,
    secret: Option<Raw<String>>,
    secret_file: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawTsig {
    const KEYS: &'static [&'static str] = &["name", "algorithm", "secret", "secret_file"];
}

fn read(cx: &mut Ctx<'_>, p: &str, keys: Value) -> Option<Arc<dyn ProviderConfig>> {
    let raw = cx.value(p, Some(Raw::<RawRfc2136>::from_value(keys)))?;
    let server = cx
        .required(&join(p, "server"), raw.server)
        .and_then(|s| server(cx, &join(p, "server"), &s));
    let zone = cx
        .required(&join(p, "zone"), raw.zone)
        .and_then(|z| domain_name(cx, &join(p, "zone"), &z));
    let tsig = tsig(cx, &join(p, "tsig"), raw.tsig);
    Some(Arc::new(Rfc2136Settings {
        server: server?,
        zone: zone?,
        tsig: tsig?,
    }))
}

/// `host:port`, `host`, `[v6]:port` or a bare IPv6 address; the port defaults to 53.
fn server(cx: &mut Ctx<'_>, key: &str, given: &str) -> Option<String> {
    let given = given.trim();
    if let Ok(addr) = given.parse::<std::net::SocketAddr>() {
        return Some(addr.to_string());
    }
    if let Ok(ip) = given.parse::<std::net::IpAddr>() {
        return Some(std::net::SocketAddr::new(ip, DEFAULT_PORT).to_string());
    }
    let (host, port) = match given.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p != 0)),
        None => (given, Some(DEFAULT_PORT)),
    };
    match port {
        Some(port) if is_host_name(host) => Some(format!("{host}:{port}")),
        _ => {
            cx.problem(
                key,
                format!("{given:?} is not host:port (such as 10.0.0.53:53 or ns1.example.com)"),
            );
            None
        }
    }
}

/// Letters, digits, `-`, `_` and dots, in labels of 1 to 63 characters.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// A domain name, without its trailing dot.
fn domain_name(cx: &mut Ctx<'_>, key: &str, given: &str) -> Option<String> {
    let name = given.trim();
    if is_host_name(name) {
        Some(name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase())
    } else {
        cx.problem(key, format!("{given:?} is not a domain name"));
        None
    }
}

fn tsig(cx: &mut Ctx<'_>, p: &str, raw: Option<Raw<RawTsig>>) -> Option<TsigKey> {
    let raw = cx.required(p, raw)?;
    cx.unknown(p, &raw.unknown, &[RawTsig::KEYS]);
    let name = cx
        .required(&join(p, "name"), raw.name)
        .and_then(|n| domain_name(cx, &join(p, "name"), &n));
    let algorithm = match cx.value(&join(p, "algorithm"), raw.algorithm) {
        None => Some(TsigAlgorithm::HmacSha256),
        Some(given) => {
            let wanted = given.trim().to_ascii_lowercase();
            let found = TsigAlgorithm::ALL
                .into_iter()
                .find(|a| a.as_str() == wanted);
            if found.is_none() {
                cx.problem(
                    &join(p, "algorithm"),
                    format!(
                        "{given:?} is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512"
                    ),
                );
            }
            found
        }
    };
    // `${VAR:-}` with VAR unset is no secret; any other value given is `cx.secret`'s
    // to report.
    let given = raw
        .secret
        .as_ref()
        .is_some_and(|s| !matches!(s, Raw::Valid(v) if v.is_empty()))
        || raw.secret_file.is_some();
    let secret = cx.secret(p, "secret", raw.secret, raw.secret_file);
    if !given {
        cx.problem(
            &join(p, "secret"),
            "is required (or secret_file): the key's secret in base64",
        );
    }
    let key = TsigKey {
        name: name?,
        algorithm: algorithm?,
        secret: secret?,
    };
    if key.secret_bytes().is_none_or(|bytes| bytes.is_empty()) {
        cx.problem(
            &join(p, "secret"),
            "is not a base64 secret such as tsig-keygen prints (value hidden)",
        );
        return None;
    }
    Some(key)
}

impl ProviderConfig for Rfc2136Settings {
    fn name(&self) -> &'static str {
        "rfc2136"
    }

    fn zone(&self) -> Option<&str> {
        Some(&self.zone)
    }

    fn build(&self) -> Result<Arc<dyn DnsProvider>, DnsError> {
        Ok(Arc::new(super::Rfc2136Dns::new(self)?))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::actuators::dns::config::DnsSettings;
    use crate::config::parse;

    const BASE: &str = "instances: [{uid: cache, endpoints: {east: {host: e.example}}}]\n";
    const KEY: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

    /// `dns_provider: rfc2136` with `dns_config: {records: [], <keys>}`; `${TSIG}` is
    /// the key.
    fn load(keys: &str) -> Result<DnsSettings, String> {
        let text = format!("{BASE}dns_provider: rfc2136\ndns_config: {{records: [], {keys}}}\n");
        let env = |name: &str| (name == "TSIG").then(|| KEY.to_owned());
        parse(&text, "test", Path::new("."), &env)
            .map(|l| l.config.dns.expect("dns is configured"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_the_server_the_zone_and_the_key() {
        let dns = load(
            "server: 10.0.0.53, zone: Example.COM., \
             tsig: {name: failover-key, secret: '${TSIG}'}",
        )
        .unwrap();
        assert_eq!(dns.zone_id, "example.com", "the zone is the records' zone");
        assert_eq!(dns.provider.name(), "rfc2136");
        let debug = format!("{:?}", dns.provider);
        assert!(
            debug.contains(r#"server: "10.0.0.53:53", zone: "example.com""#)
                && debug.contains(r#"name: "failover-key", algorithm: HmacSha256"#),
            "{debug}"
        );
        assert!(!debug.contains(KEY), "{debug}");
        for (given, server) in [
            ("ns1.example.com", "ns1.example.com:53"),
            ("ns1.example.com:5353", "ns1.example.com:5353"),
            ("'[2001:db8::53]:53'", "[2001:db8::53]:53"),
            ("'2001:db8::53'", "[2001:db8::53]:53"),
        ] {
            let keys = format!(
                "server: {given}, zone: example.com, \
                 tsig: {{name: k, algorithm: HMAC-SHA512, secret: '${{TSIG}}'}}"
            );
            let debug = format!("{:?}", load(&keys).unwrap().provider);
            assert!(debug.contains(&format!("server: {server:?}")), "{debug}");
            assert!(debug.contains("HmacSha512"), "{debug}");
        }
    }

    #[test]
    fn says_what_is_wrong_and_never_shows_the_secret() {
        let said = load(
            "server: 'ns1:0', zone_id: Z1, zone: 'bad zone', \
             tsig: {name: k, algorithm: hmac-md5, secret: 'not base64!', secert_file: x}",
        )
        .unwrap_err();
        for expected in [
            "dns_config.server: \"ns1:0\" is not host:port",
            "dns_config.zone_id: is not read by this dns_provider; name the zone with `zone`",
            "dns_config.zone: \"bad zone\" is not a domain name",
            "dns_config.tsig.algorithm: \"hmac-md5\" is not supported; use hmac-sha256",
            "dns_config.tsig.secert_file: unknown key (did you mean `secret_file`?)",
        ] {
            assert!(said.contains(expected), "{expected} not in {said}");
        }
        assert!(!said.contains("not base64!"), "{said}");
        let said = load("server: ns1, zone: example.com, tsig: {name: k, secret: 'not base64!'}")
            .unwrap_err();
        assert!(
            said.contains("dns_config.tsig.secret: is not a base64 secret"),
            "{said}"
        );
        assert!(!said.contains("not base64!"), "{said}");
        let said = load("tsig: {name: k}").unwrap_err();
        for expected in [
            "dns_config.server: is required",
            "dns_config.zone: is required",
            "dns_config.tsig.secret: is required (or secret_file)",
        ] {
            assert!(said.contains(expected), "{expected} not in {said}");
        }
        assert!(!said.contains("zone_id"), "{said}");
    }
}
