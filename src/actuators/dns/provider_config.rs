//! What each DNS provider's configuration gives the DNS integration: its name, the keys
//! of `dns_config` it reads besides the shared ones, how it reads them, and, once read,
//! how it builds the provider. `config.rs` lists the providers by name.

use std::fmt;
use std::sync::Arc;

use serde_yaml::Value;

use crate::config_kit::ctx::Ctx;
use crate::decision::ports::{DnsError, DnsProvider};

/// One value of `dns_provider`.
pub struct Provider {
    /// The name `dns_provider` gives.
    pub name: &'static str,
    /// The provider's own keys of `dns_config` (`zone_id` and `records` are shared).
    pub keys: &'static [&'static str],
    /// The key of `dns_config` that names the zone of every record: the shared
    /// `zone_id` (Route53's hosted zone id), or one of the provider's own keys
    /// (`zone` for RFC 2136), whose value [`ProviderConfig::zone`] then gives.
    pub zone_key: &'static str,
    /// Reads the provider's keys (a mapping of only those) under the path given;
    /// `None` when they have problems, all of them recorded.
    pub read: fn(&mut Ctx<'_>, &str, Value) -> Option<Arc<dyn ProviderConfig>>,
}

/// A provider's settings, checked: building the provider from them cannot fail on the
/// configuration, only on the world (credentials absent from the environment).
pub trait ProviderConfig: fmt::Debug + Send + Sync {
    /// The `dns_provider` that chose it.
    fn name(&self) -> &'static str;
    /// The zone, when the provider names it with one of its own keys
    /// ([`Provider::zone_key`]: Cloud DNS's `managed_zone`, RFC 2136's `zone`).
    fn zone(&self) -> Option<&str> {
        None
    }
    fn build(&self) -> Result<Arc<dyn DnsProvider>, DnsError>;
}
