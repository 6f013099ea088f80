//! `dns_provider: route53`: the AWS keys of `dns_config`, read and checked.

use std::sync::Arc;

use serde::Deserialize;
use serde_yaml::Value;

use super::super::provider_config::{Provider, ProviderConfig};
use crate::config_kit::ctx::{Ctx, join};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::Raw;
use crate::model::Secret;

/// Route53's keys of `dns_config` (see [`KeyBlock`]).
#[cfg(test)]
pub const KEY_BLOCK: KeyBlock = KeyBlock::new("", "RawRoute53", RawRoute53::KEYS);

pub const PROVIDER: Provider = Provider {
    name: "route53",
    keys: RawRoute53::KEYS,
    zone_key: "zone_id",
    read,
};

/// `dns_provider: route53` (the default): Amazon Route53, or anything that speaks its
/// API.
#[derive(Debug, Clone, PartialEq)]
pub struct Route53Settings {
    /// `dns_config.aws_region`: Route53's signing region (default `us-east-1`, where
    /// Route53 lives), and the region of STS for the credential chain (default: the
    /// environment's or the profile's, else `us-east-1`).
    pub region: Option<String>,
    /// `dns_config.aws_profile`: the profile of the shared config and credentials
    /// files the credential chain reads. Default `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// `dns_config.aws_access_key` or `aws_access_key_file`; with the secret key, these
    /// static keys win; without both, AWS's default credential chain (docs/dns.md).
    pub access_key: Option<Secret>,
    /// `dns_config.aws_secret_key` or `aws_secret_key_file`.
    pub secret_key: Option<Secret>,
    /// `dns_config.endpoint_url`: another Route53 API address (a test server); default
    /// AWS's.
    pub endpoint_url: Option<String>,
}

/// The serde form of the provider's keys, as given.
#[derive(Debug, Deserialize)]
struct RawRoute53 {
    aws_region: Option<Raw<String>>,
    aws_profile: Option<Raw<String>>,
    aws_access_key: Option<Raw<String>>,
    aws_access_key_file: Option<Raw<String>>,
    aws_secret_key: Option<Raw<String>>,
    aws_secret_key_file: Option<Raw<String>>,
    endpoint_url: Option<Raw<String>>,
}

impl RawRoute53 {
    const KEYS: &'static [&'static str] = &[
        "aws_region",
        "aws_profile",
        "aws_access_key",
        "aws_access_key_file",
        "aws_secret_key",
        "aws_secret_key_file",
        "endpoint_url",
    ];
}

/// Reads and checks the keys; `dry-run` reads them too.
pub fn settings(cx: &mut Ctx<'_>, p: &str, keys: Value) -> Option<Route53Settings> {
    let raw = cx.value(p, Some(Raw::<RawRoute53>::from_value(keys)))?;
    let trimmed = |v: String| v.trim().to_owned();
    let region = cx.text(&join(p, "aws_region"), raw.aws_region).map(trimmed);
    let profile = cx
        .text(&join(p, "aws_profile"), raw.aws_profile)
        .map(trimmed);
    let access_key = cx.secret(
        p,
        "aws_access_key",
        raw.aws_access_key,
        raw.aws_access_key_file,
    );
    let secret_key = cx.secret(
        p,
        "aws_secret_key",
        raw.aws_secret_key,
        raw.aws_secret_key_file,
    );
    let endpoint_url = cx.url(&join(p, "endpoint_url"), raw.endpoint_url);
    Some(Route53Settings {
        region,
        profile,
        access_key,
        secret_key,
        endpoint_url,
    })
}

fn read(cx: &mut Ctx<'_>, p: &str, keys: Value) -> Option<Arc<dyn ProviderConfig>> {
    settings(cx, p, keys).map(|s| Arc::new(s) as Arc<dyn ProviderConfig>)
}
