//! DNS providers: how a failover moves clients. The engine sees only the port,
//! [`DnsProvider`] (in `decision::ports`); each SDK stays inside its provider's file.
//!
//! - [`Route53Dns`]: Amazon Route53 (or anything that speaks its API, e.g. moto).
//! - [`GoogleCloudDns`]: Google Cloud DNS (API v1), or a stand-in that speaks it.
//! - [`Rfc2136Dns`]: RFC 2136 dynamic updates signed with TSIG (BIND, PowerDNS, Knot,
//!   Windows DNS), through hickory-proto in `rfc2136.rs`.
//! - [`DryRunDns`]: logs what it would do and remembers it; changes nothing.
//!
//! Providers do one call per request: [`DnsProvider::switch`] adds the retries, the
//! timeouts and the wait for INSYNC.
//!
//! [`config`] reads `dns_provider` + `dns_config` and builds the provider; each
//! provider reads its own keys in its `config` module (`route53/config.rs`,
//! `google_cloud_dns/config.rs`), and
//! [`provider_config`] is what they share.
//!
//! [`DnsProvider`]: crate::decision::ports::DnsProvider
//! [`DnsProvider::switch`]: crate::decision::ports::DnsProvider::switch

pub mod config;
mod dry_run;
mod google_cloud_dns;
pub mod provider_config;
mod rfc2136;
mod route53;

pub use dry_run::DryRunDns;
pub use google_cloud_dns::GoogleCloudDns;
pub use google_cloud_dns::config::GoogleCloudDnsSettings;
pub use rfc2136::Rfc2136Dns;
pub use rfc2136::config::{Rfc2136Settings, TsigAlgorithm, TsigKey};
pub use route53::Route53Dns;
pub use route53::config::Route53Settings;
