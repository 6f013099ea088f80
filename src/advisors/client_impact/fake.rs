//! An in-memory [`ClientImpactSource`] for engine tests: scripted answers per instance,
//! an optional delay, and a record of every question.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::report::{LogCounts, PeriodCounts, analyse};
use crate::decision::ports::{ClientImpact, ClientImpactSource, ErrorCategory, Window};
use crate::model::InstanceId;

#[derive(Debug, Default)]
pub struct FakeClientImpact {
    answers: Mutex<HashMap<InstanceId, ClientImpact>>,
    delay: Mutex<Option<Duration>>,
    calls: Mutex<Vec<(InstanceId, Window)>>,
}

impl FakeClientImpact {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `instance` is answered from now on (unscripted: unknown).
    pub fn set(&self, instance: &InstanceId, impact: ClientImpact) {
        lock(&self.answers).insert(instance.clone(), impact);
    }

    /// Every answer waits this long first (tests of timeouts use a paused clock).
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.delay) = Some(delay);
    }

    /// The questions asked so far.
    pub fn calls(&self) -> Vec<(InstanceId, Window)> {
        lock(&self.calls).clone()
    }

    /// A report with these counts over the default window ending now.
    pub fn report(
        instance: &InstanceId,
        recent: (u64, u64),
        baseline: (u64, u64),
        category: ErrorCategory,
    ) -> ClientImpact {
        let counts = LogCounts {
            recent: PeriodCounts {
                lines: recent.0,
                errors: recent.1,
                ..PeriodCounts::default()
            },
            baseline: PeriodCounts {
                lines: baseline.0,
                errors: baseline.1,
                ..PeriodCounts::default()
            },
            categories: [(category, recent.1)].into(),
            ..LogCounts::default()
        };
        let bounds = Window::default().bounds(SystemTime::now());
        ClientImpact::Known(Box::new(analyse(instance, &bounds, &counts)))
    }

    /// Clients failing: 60 % connection errors now, 1 % before.
    pub fn failing(instance: &InstanceId) -> ClientImpact {
        Self::report(instance, (500, 300), (3000, 30), ErrorCategory::Connection)
    }

    /// Clients fine: 1 % errors now and before, plenty of lines.
    pub fn as_usual(instance: &InstanceId) -> ClientImpact {
        Self::report(instance, (500, 5), (3000, 30), ErrorCategory::Other)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl ClientImpactSource for FakeClientImpact {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn impact(&self, instance: &InstanceId, window: Window) -> ClientImpact {
        lock(&self.calls).push((instance.clone(), window));
        let delay = *lock(&self.delay);
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        lock(&self.answers)
            .get(instance)
            .cloned()
            .unwrap_or_else(|| ClientImpact::unknown(format!("no answer scripted for {instance}")))
    }
}
