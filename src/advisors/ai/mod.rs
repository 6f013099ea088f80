//! Failover advice from Azure OpenAI or any OpenAI-compatible endpoint.
//!
//! The model is an advisor, never the decider. The deterministic policy judges the
//! probes; the advice may only hold back a failover the policy supports, and only while
//! the evidence is ambiguous, for a bounded time (`crate::decision::advice` has the
//! rules). Everything the model can get wrong (no answer, a late answer, prose instead of
//! JSON, a broken schema, a datacenter that does not exist or is not healthy) ends as a
//! [`Discarded`] consultation, and the policy decides alone. The trait, the request and
//! the consultation are the port's (`decision::ports::advisor`).
//!
//! Layout:
//! - [`evidence`]: the request as the model reads it, log samples marked as untrusted.
//! - [`prompt`]: the system prompt and the strict JSON schema of the answer.
//! - [`guard`]: pure functions: is an answer acceptable (schema, datacenters). What it
//!   may change, and the rate limit, streak and outage clock, are policy:
//!   `crate::decision::advice`.
//! - [`openai`]: the adapter (async-openai; Azure or OpenAI-compatible).
//! - [`config`]: `use_azure_openai` + `azure_openai`, read and checked; [`build`] makes
//!   the advisor from it.
//! - [`fake`]: a scripted advisor for engine tests.

pub mod config;
pub mod evidence;
pub mod fake;
pub mod guard;
pub mod openai;
pub mod prompt;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use self::config::AzureOpenAiSettings;
use crate::decision::ports::{AdviceRequest, Advisor, Consultation, Discarded};

/// Cuts `text` to at most `limit` characters, marking the cut.
pub fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        None => text.to_owned(),
        Some((i, _)) => format!("{}…", &text[..i]),
    }
}

/// Bounds any advisor's time: a late answer is a [`Discarded::Timeout`] (STYLE: timeout
/// is a wrapper around the trait object).
#[derive(Debug, Clone)]
pub struct TimeLimited {
    inner: Arc<dyn Advisor>,
    limit: Duration,
    /// Names the advisor and model in a timeout's consultation.
    advisor: String,
    model: String,
}

impl TimeLimited {
    pub fn new(inner: Arc<dyn Advisor>, limit: Duration, advisor: &str, model: &str) -> Self {
        Self {
            inner,
            limit,
            advisor: advisor.into(),
            model: model.into(),
        }
    }
}

#[async_trait]
impl Advisor for TimeLimited {
    async fn advise(&self, evidence: &AdviceRequest) -> Consultation {
        let at = SystemTime::now();
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(self.limit, self.inner.advise(evidence)).await {
            Ok(c) => c,
            Err(_) => Consultation {
                advisor: self.advisor.clone(),
                model: self.model.clone(),
                at,
                latency: started.elapsed(),
                fingerprint: evidence.fingerprint(),
                result: Err(Discarded::Timeout {
                    after_ms: self.limit.as_millis() as u64,
                }),
                raw: None,
            },
        }
    }
}

/// Errors of building the adapter from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum AdvisorError {
    #[error("{0}")]
    Invalid(String),
}

/// The advisor the configuration asks for: the OpenAI adapter within its timeout.
/// Needs a rustls crypto provider installed as the process default (main does it).
pub fn build(settings: &AzureOpenAiSettings) -> Result<Arc<dyn Advisor>, AdvisorError> {
    let adapter = openai::OpenAiAdvisor::new(settings)?;
    let (name, model) = (adapter.name(), settings.model.clone());
    Ok(Arc::new(TimeLimited::new(
        Arc::new(adapter),
        settings.timeout,
        name,
        &model,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 2), "hé…");
    }
}
