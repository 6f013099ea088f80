//! Reuses an analysis for `elk.cache_ttl`, per instance and window, so a decision loop
//! that asks every few seconds sends Elasticsearch one query per instance per TTL.
//! An "unknown" is kept for at most [`UNKNOWN_TTL`]: long enough not to hammer a server
//! that is down, short enough to see it come back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::decision::ports::{ClientImpact, ClientImpactSource, Window};
use crate::model::InstanceId;

pub const UNKNOWN_TTL: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct CachedSource {
    inner: Arc<dyn ClientImpactSource>,
    ttl: Duration,
    entries: Mutex<HashMap<(InstanceId, Window), (Instant, ClientImpact)>>,
}

impl CachedSource {
    pub fn new(inner: Arc<dyn ClientImpactSource>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn ttl_of(&self, impact: &ClientImpact) -> Duration {
        match impact {
            ClientImpact::Known(_) => self.ttl,
            ClientImpact::Unknown { .. } => self.ttl.min(UNKNOWN_TTL),
        }
    }

    fn lookup(&self, key: &(InstanceId, Window)) -> Option<ClientImpact> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, impact) = entries.get(key)?;
        (at.elapsed() < self.ttl_of(impact)).then(|| impact.clone())
    }
}

#[async_trait::async_trait]
impl ClientImpactSource for CachedSource {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn impact(&self, instance: &InstanceId, window: Window) -> ClientImpact {
        let key = (instance.clone(), window);
        if let Some(hit) = self.lookup(&key) {
            return hit;
        }
        let impact = self.inner.impact(instance, window).await;
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (at, i)| now.duration_since(*at) < self.ttl_of(i));
        entries.insert(key, (now, impact.clone()));
        impact
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advisors::client_impact::FakeClientImpact;

    #[tokio::test(start_paused = true)]
    async fn answers_are_reused_for_the_ttl() {
        let fake = Arc::new(FakeClientImpact::new());
        let uid = InstanceId::new("cache");
        fake.set(&uid, FakeClientImpact::failing(&uid));
        let cached = CachedSource::new(fake.clone(), Duration::from_secs(300));
        let w = Window::default();
        assert!(cached.impact(&uid, w).await.clients_failing());
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(cached.impact(&uid, w).await.clients_failing());
        assert_eq!(fake.calls().len(), 1);
        // Another window or instance is another question.
        let other = Window::last(Duration::from_secs(60), Duration::from_secs(600));
        cached.impact(&uid, other).await;
        assert_eq!(fake.calls().len(), 2);
        tokio::time::advance(Duration::from_secs(2)).await;
        cached.impact(&uid, w).await;
        assert_eq!(fake.calls().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_is_kept_only_briefly() {
        let fake = Arc::new(FakeClientImpact::new());
        let uid = InstanceId::new("cache");
        let cached = CachedSource::new(fake.clone(), Duration::from_secs(300));
        assert_eq!(cached.impact(&uid, Window::default()).await.verdict(), None);
        tokio::time::advance(UNKNOWN_TTL - Duration::from_secs(1)).await;
        cached.impact(&uid, Window::default()).await;
        assert_eq!(fake.calls().len(), 1);
        fake.set(&uid, FakeClientImpact::as_usual(&uid));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            cached
                .impact(&uid, Window::default())
                .await
                .clients_as_usual()
        );
        assert_eq!(fake.calls().len(), 2);
    }
}
