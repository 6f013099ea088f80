//! `dns_provider: google_cloud_dns`: the project, the managed zone and the credentials
//! of `dns_config`, read and checked.

use std::sync::Arc;

use serde::Deserialize;
use serde_yaml::Value;

use super::super::provider_config::{Provider, ProviderConfig};
use super::credentials;
use crate::config_kit::ctx::{Ctx, join};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::Raw;
use crate::model::Secret;

/// Cloud DNS's keys of `dns_config` (see [`KeyBlock`]).
#[cfg(test)]
pub const KEY_BLOCK: KeyBlock = KeyBlock::new("", "RawGoogleCloudDns", RawGoogleCloudDns::KEYS);

pub const PROVIDER: Provider = Provider {
    name: "google_cloud_dns",
    keys: RawGoogleCloudDns::KEYS,
    zone_key: "managed_zone",
    read,
};

/// `dns_provider: google_cloud_dns`: Google Cloud DNS (API v1), or a stand-in for it.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleCloudDnsSettings {
    /// `dns_config.project`: the project that owns the managed zone.
    pub project: String,
    /// `dns_config.managed_zone`: the managed zone's name (or id) that holds every
    /// record; it stands for `zone_id`, which this provider does not read.
    pub managed_zone: String,
    /// The service account key read from `dns_config.credentials_file` (JSON, as the
    /// console or `gcloud iam service-accounts keys create` writes it). Without it,
    /// the metadata server's tokens (docs/dns.md).
    pub key: Option<Secret>,
    /// `dns_config.endpoint_url`: another Cloud DNS API root (a test server); default
    /// `https://dns.googleapis.com/`.
    pub endpoint_url: Option<String>,
}

/// The serde form of the provider's keys, as given.
#[derive(Debug, Deserialize)]
struct RawGoogleCloudDns {
    project: Option<Raw<String>>,
    managed_zone: Option<Raw<String>>,
    credentials_file: Option<Raw<String>>,
    endpoint_url: Option<Raw<String>>,
}

impl RawGoogleCloudDns {
    const KEYS: &'static [&'static str] = &[
        "project",
        "managed_zone",
        "credentials_file",
        "endpoint_url",
    ];
}

/// Reads and checks the keys, the key file's content included: a file that is missing,
/// is not a service account key or holds a private key that cannot sign is a problem
/// of `credentials_file` now, not a failed failover later.
fn settings(cx: &mut Ctx<'_>, p: &str, keys: Value) -> Option<GoogleCloudDnsSettings> {
    let raw = cx.value(p, Some(Raw::<RawGoogleCloudDns>::from_value(keys)))?;
    let project = resource_name(cx, &join(p, "project"), raw.project);
    let managed_zone = resource_name(cx, &join(p, "managed_zone"), raw.managed_zone);
    let key = cx.secret(p, "credentials", None, raw.credentials_file);
    if let Some(why) = key.as_ref().and_then(|k| credentials::check_key(k).err()) {
        cx.problem(&join(p, "credentials_file"), why);
    }
    let endpoint_url = cx.url(&join(p, "endpoint_url"), raw.endpoint_url);
    Some(GoogleCloudDnsSettings {
        project: project?,
        managed_zone: managed_zone?,
        key,
        endpoint_url,
    })
}

/// A project or zone name, which goes into the API's paths as it is.
fn resource_name(cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<String>>) -> Option<String> {
    let value = cx.required(key, raw)?.trim().to_owned();
    if value.is_empty() || value.contains(['/', '?', '#', '%', ' ']) {
        cx.problem(key, format!("{value:?} is not a Cloud DNS name"));
        return None;
    }
    Some(value)
}

fn read(cx: &mut Ctx<'_>, p: &str, keys: Value) -> Option<Arc<dyn ProviderConfig>> {
    settings(cx, p, keys).map(|s| Arc::new(s) as Arc<dyn ProviderConfig>)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::actuators::dns::config::DnsSettings;
    use crate::config::parse;

    const BASE: &str = "instances: [{uid: cache, endpoints: {east: {host: e.example}}}]\n\
                        dns_provider: google_cloud_dns\n";

    /// `dns_config: {records: [], <keys>}`, files relative to `dir`.
    fn load(dir: &Path, keys: &str) -> Result<DnsSettings, String> {
        let text = format!("{BASE}dns_config: {{records: [], {keys}}}\n");
        parse(&text, "test", dir, &|_| None)
            .map(|l| l.config.dns.expect("dns is configured"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_managed_zone_is_the_zone_and_no_key_means_the_metadata_server() {
        let dns = load(
            Path::new("."),
            "project: my-project, managed_zone: prod-zone",
        )
        .unwrap();
        assert_eq!(dns.zone_id, "prod-zone");
        assert_eq!(dns.provider.name(), "google_cloud_dns");
        let debug = format!("{:?}", dns.provider);
        assert!(debug.contains("key: None"), "{debug}");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let built = crate::actuators::dns::config::build(&dns).unwrap();
        assert_eq!(built.name(), "google_cloud_dns");
    }

    #[test]
    fn problems_name_their_key_and_never_quote_the_key_file() {
        let said = load(Path::new("."), "zone_id: Z1, managed_zone: 'a/b'").unwrap_err();
        for expected in [
            "dns_config.project: is required",
            "dns_config.managed_zone: \"a/b\" is not a Cloud DNS name",
        ] {
            assert!(said.contains(expected), "{expected} not in {said}");
        }
        let said = load(
            Path::new("."),
            "project: p, managed_zone: z, zone_id: Z1, credentials_file: /nonexistent/gcp.json",
        )
        .unwrap_err();
        assert!(
            said.contains("dns_config.credentials_file: cannot read \"/nonexistent/gcp.json\""),
            "{said}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gcp.json"),
            r#"{"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
                "private_key": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"}"#,
        )
        .unwrap();
        let said = load(
            dir.path(),
            "project: p, managed_zone: z, credentials_file: gcp.json",
        )
        .unwrap_err();
        assert!(
            said.contains("dns_config.credentials_file: has a private_key that cannot sign"),
            "{said}"
        );
        assert!(!said.contains("bm90IGEga2V5"), "{said}");
        // With another provider, the keys are unknown; with this one, zone_id is.
        let said = load(Path::new("."), "project: p, managed_zone: z, zone_id: Z1").unwrap_err();
        assert!(
            said.contains("dns_config.zone_id: is not read by this dns_provider; name the zone with `managed_zone`"),
            "{said}"
        );
    }
}
