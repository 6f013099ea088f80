//! DNS providers: how a failover moves clients. The engine sees only the port,
//! [`DnsProvider`] (in `decision::ports`); the SDK stays inside `route53.rs`.
//!
//! - [`Route53Dns`]: Amazon Route53 (or anything that speaks its API, e.g. moto).
//! - [`DryRunDns`]: logs what it would do and remembers it; changes nothing.
//! - [`MemoryDns`]: an in-memory fake with fault injection, for engine tests.
//!
//! Providers do one call per request: [`DnsProvider::switch`] adds the retries, the
//! timeouts and the wait for INSYNC.

mod dry_run;
mod memory;
mod route53;

use std::sync::Arc;

use crate::config::DnsSettings;
use crate::decision::ports::{AdapterErrorKind, DnsError, DnsProvider};

pub use dry_run::DryRunDns;
pub use memory::{MemoryDns, Op};
pub use route53::Route53Dns;

/// The provider `settings.provider` names: `route53` or `dry-run`.
pub fn build(settings: &DnsSettings) -> Result<Arc<dyn DnsProvider>, DnsError> {
    match settings.provider.as_str() {
        "route53" => Ok(Arc::new(Route53Dns::new(settings)?)),
        "dry-run" => Ok(Arc::new(DryRunDns::new())),
        other => Err(DnsError::new(
            AdapterErrorKind::Invalid,
            format!("dns_provider {other:?} is not supported; use \"route53\" or \"dry-run\""),
        )),
    }
}

#[cfg(test)]
mod tests;
