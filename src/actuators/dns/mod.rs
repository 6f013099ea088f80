//! DNS providers: how a failover moves clients. The engine sees only the port,
//! [`DnsProvider`] (in `decision::ports`); the SDK stays inside `route53.rs`.
//!
//! - [`Route53Dns`]: Amazon Route53 (or anything that speaks its API, e.g. moto).
//! - [`DryRunDns`]: logs what it would do and remembers it; changes nothing.
//!
//! Providers do one call per request: [`DnsProvider::switch`] adds the retries, the
//! timeouts and the wait for INSYNC.

mod dry_run;
mod route53;

use std::sync::Arc;

use crate::config::DnsSettings;
use crate::decision::ports::{AdapterErrorKind, DnsError, DnsProvider};

pub use dry_run::DryRunDns;
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
mod tests {
    use super::*;

    #[test]
    fn build_picks_the_configured_provider() {
        let mut settings = DnsSettings {
            provider: "dry-run".into(),
            zone_id: "Z1".into(),
            region: "us-east-1".into(),
            access_key: None,
            secret_key: None,
            endpoint_url: None,
            records: vec![],
        };
        assert_eq!(build(&settings).unwrap().name(), "dry-run");
        settings.provider = "route53".into();
        settings.access_key = Some(crate::model::Secret::new("AKIDEXAMPLE"));
        settings.secret_key = Some(crate::model::Secret::new("very-secret"));
        let dns = build(&settings).unwrap();
        assert_eq!(dns.name(), "route53");
        assert!(!format!("{dns:?}").contains("very-secret"));
        settings.provider = "bind".into();
        assert_eq!(
            build(&settings).unwrap_err().kind,
            AdapterErrorKind::Invalid
        );
    }
}
