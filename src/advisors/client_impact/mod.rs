//! Client impact: how the applications that use a Redis instance are doing, from their
//! own logs in Elasticsearch (seed 000, "ELK Integration"). The engine sees only the
//! port ([`ClientImpactSource`] and what it answers, in `decision::ports`); the SDK stays
//! inside `elasticsearch.rs`.
//!
//! - [`ElasticsearchSource`]: reads seed 000's client log lines from Elasticsearch (or
//!   OpenSearch): error rate now against a baseline, errors by category,
//!   latency percentiles, a spike from a date histogram, a few sample messages.
//! - [`TimeoutSource`] and [`CachedSource`]: wrappers; [`build`] stacks them as
//!   `cache(timeout(elasticsearch))`.
//! - [`FakeClientImpact`]: scripted answers for engine tests.
//! - [`config`]: `use_elk` + `elk`, read and checked.
//!
//! An advisor must never stop a decision: every failure, stall or odd answer becomes
//! `ClientImpact::Unknown` with a reason, and the engine decides as if no advisor were
//! configured. Text from the logs (messages, exception names) is `UntrustedText`:
//! whoever shows it to a person or a model must treat it as data.

mod cache;
mod category;
pub mod config;
mod elasticsearch;
mod fake;
mod query;
mod report;
mod timeout;

use std::collections::BTreeMap;
use std::sync::Arc;

use self::config::ElkSettings;
use crate::decision::ports::{ClientImpactError, ClientImpactSource};
use crate::model::{Instance, InstanceId};

pub use cache::CachedSource;
pub use category::{categorize, categorize_text};
pub use elasticsearch::ElasticsearchSource;
pub use fake::FakeClientImpact;
pub use report::{LogCounts, PeriodCounts, RawSample, TimeBucket, analyse};
pub use timeout::TimeoutSource;

/// The names client logs may use for each instance: its uid and its name (seed 000:
/// "Include the Redis instance name or UID").
pub fn aliases(instances: &[Instance]) -> BTreeMap<InstanceId, Vec<String>> {
    instances
        .iter()
        .map(|i| {
            let mut names = vec![i.uid.as_str().to_owned()];
            if !i.name.is_empty() && i.name != i.uid.as_str() {
                names.push(i.name.clone());
            }
            (i.uid.clone(), names)
        })
        .collect()
}

/// The source `elk` describes: Elasticsearch under `elk.timeout`, cached `cache_ttl`.
pub fn build(
    settings: &ElkSettings,
    instances: &[Instance],
) -> Result<Arc<dyn ClientImpactSource>, ClientImpactError> {
    let elasticsearch = ElasticsearchSource::new(settings, aliases(instances))?;
    let timed = TimeoutSource::new(Arc::new(elasticsearch), settings.timeout);
    Ok(Arc::new(CachedSource::new(
        Arc::new(timed),
        settings.cache_ttl,
    )))
}
