//! A deadline around any [`ClientImpactSource`]: past it the answer is "unknown", so a
//! stalled Elasticsearch never holds a decision up longer than `elk.timeout`.

use std::sync::Arc;
use std::time::Duration;

use crate::decision::ports::{ClientImpact, ClientImpactSource, Window};
use crate::model::InstanceId;

#[derive(Debug)]
pub struct TimeoutSource {
    inner: Arc<dyn ClientImpactSource>,
    limit: Duration,
}

impl TimeoutSource {
    pub fn new(inner: Arc<dyn ClientImpactSource>, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

#[async_trait::async_trait]
impl ClientImpactSource for TimeoutSource {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn impact(&self, instance: &InstanceId, window: Window) -> ClientImpact {
        match tokio::time::timeout(self.limit, self.inner.impact(instance, window)).await {
            Ok(impact) => impact,
            Err(_) => {
                tracing::warn!(
                    redis_instance = %instance,
                    source = self.inner.name(),
                    timeout_ms = self.limit.as_millis() as u64,
                    "client impact analysis timed out"
                );
                ClientImpact::unknown(format!(
                    "timeout: {} gave no answer within {} ms",
                    self.inner.name(),
                    self.limit.as_millis()
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advisors::client_impact::FakeClientImpact;

    #[tokio::test(start_paused = true)]
    async fn a_stall_becomes_unknown_at_the_deadline() {
        let fake = Arc::new(FakeClientImpact::new());
        let uid = InstanceId::new("cache");
        fake.set(&uid, FakeClientImpact::as_usual(&uid));
        fake.set_delay(Duration::from_secs(60));
        let timed = TimeoutSource::new(fake.clone(), Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let answer = timed.impact(&uid, Window::default()).await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(
            matches!(&answer, ClientImpact::Unknown { reason } if reason.starts_with("timeout: fake"))
        );

        fake.set_delay(Duration::from_secs(1));
        assert!(
            timed
                .impact(&uid, Window::default())
                .await
                .clients_as_usual()
        );
    }
}
