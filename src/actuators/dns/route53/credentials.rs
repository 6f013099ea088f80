//! Where Route53's credentials come from: the keys of `dns_config` when given (they win,
//! as they always have), else AWS's default chain, as every AWS SDK and the CLI read it:
//! environment (`AWS_ACCESS_KEY_ID`, ...), the shared config and credentials files
//! (`aws_profile`, else `AWS_PROFILE`, else `default`), web identity (IRSA on EKS),
//! the ECS/EKS container endpoint, and the EC2 instance metadata service (IMDSv2).
//!
//! The chain is resolved lazily, at the first Route53 request, never while the agent
//! starts or checks its configuration: off EC2 the metadata service does not answer,
//! and a start must not wait for it. Each resolution is bounded by [`LOAD_TIMEOUT`],
//! and the client's identity cache keeps the credentials until shortly before they
//! expire.

use std::fmt;
use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_route53::config::{Credentials, Region, SharedCredentialsProvider, SharedHttpClient};
use tokio::sync::OnceCell;

use super::config::Route53Settings;
use crate::decision::ports::{AdapterErrorKind, DnsError};
use crate::model::Secret;

/// The longest one resolution of the chain may take, the metadata service and STS
/// included (the metadata client alone tries four times with one-second timeouts);
/// then the request fails as timed out, and the caller's retry budget applies as for
/// any failed call.
pub(super) const LOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The region of STS (web identity, assumed roles) when neither `aws_region`, the
/// environment nor the profile names one.
const FALLBACK_REGION: &str = "us-east-1";

/// The chain's environment variables that hold a secret.
const ENVIRONMENT_SECRETS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Route53's credentials, and what to redact from error texts.
pub(super) struct Chosen {
    pub provider: SharedCredentialsProvider,
    /// `static` (the keys of `dns_config`) or `default chain`.
    pub source: &'static str,
    /// Redacted from every error text: the static keys, or the environment's (the
    /// chain's first source). What the chain fetches later is not known here; no error
    /// text of the chain or of Route53 holds it.
    pub secrets: Vec<Secret>,
}

/// The static keys of `dns_config` when given (both, or it is a mistake), else the
/// default chain over `http`.
pub(super) fn choose(
    settings: &Route53Settings,
    http: SharedHttpClient,
) -> Result<Chosen, DnsError> {
    match (&settings.access_key, &settings.secret_key) {
        (Some(access_key), Some(secret_key)) => Ok(Chosen {
            provider: SharedCredentialsProvider::new(Credentials::new(
                access_key.expose(),
                secret_key.expose(),
                None,
                None,
                "dns_config",
            )),
            source: "static",
            secrets: vec![access_key.clone(), secret_key.clone()],
        }),
        (Some(_), None) | (None, Some(_)) => Err(DnsError::new(
            AdapterErrorKind::Invalid,
            "dns_config: aws_access_key and aws_secret_key go together; set both or neither",
        )),
        (None, None) => Ok(Chosen {
            provider: SharedCredentialsProvider::new(LazyChain {
                http,
                region: settings.region.clone(),
                profile: settings.profile.clone(),
                chain: OnceCell::new(),
            }),
            source: "default chain",
            secrets: ENVIRONMENT_SECRETS
                .iter()
                .filter_map(|name| std::env::var(name).ok())
                .filter(|value| !value.trim().is_empty())
                .map(Secret::new)
                .collect(),
        }),
    }
}

/// AWS's default credentials chain, built at its first use: building it reads the
/// profile files for a region when `aws_region` is not given, and that is I/O a start
/// should not do.
struct LazyChain {
    http: SharedHttpClient,
    /// `aws_region`: the region of STS, before the environment's and the profile's.
    region: Option<String>,
    /// `aws_profile`: the profile to read, before `AWS_PROFILE`.
    profile: Option<String>,
    chain: OnceCell<DefaultCredentialsChain>,
}

impl fmt::Debug for LazyChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyChain")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl LazyChain {
    async fn build(&self) -> DefaultCredentialsChain {
        let config = ProviderConfig::without_region().with_http_client(self.http.clone());
        // Not the SDK's default region chain: its last link asks the metadata service,
        // which off EC2 only costs a timeout.
        let mut profile_region = ProfileFileRegionProvider::builder().configure(&config);
        if let Some(profile) = &self.profile {
            profile_region = profile_region.profile_name(profile);
        }
        let region = match &self.region {
            Some(region) => RegionProviderChain::first_try(Region::new(region.clone())),
            None => RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                .or_else(profile_region.build())
                .or_else(Region::from_static(FALLBACK_REGION)),
        };
        let mut chain = DefaultCredentialsChain::builder()
            .configure(config)
            .region(region);
        if let Some(profile) = &self.profile {
            chain = chain.profile_name(profile);
        }
        chain.build().await
    }
}

impl ProvideCredentials for LazyChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let resolve = async {
                let chain = self.chain.get_or_init(|| self.build()).await;
                chain.provide_credentials().await
            };
            tokio::time::timeout(LOAD_TIMEOUT, resolve)
                .await
                .unwrap_or(Err(CredentialsError::provider_timed_out(LOAD_TIMEOUT)))
        })
    }
}
