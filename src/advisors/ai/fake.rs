//! A scripted advisor for engine tests: answers are played in order (the last one
//! repeats), run through the same [`validate_answer`](super::guard::validate_answer)
//! as the real adapter's, and every request is kept for assertions.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::json;

use super::guard::validate_answer;
use super::truncate;
use crate::decision::ports::{AdviceRequest, Advisor, Consultation, Discarded, RAW_LIMIT};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Script {
    /// The model's message content, validated like a real answer.
    Content(String),
    /// The call fails this way.
    Discard(Discarded),
    /// The call takes this long, then gives the next scripted answer (or hold 0.9).
    /// Wrap the fake in [`super::TimeLimited`] to see a timeout.
    Stall(Duration),
}

impl Script {
    /// A well-formed answer.
    pub fn answer(recommendation: &str, target: Option<&str>, confidence: f64) -> Script {
        Script::Content(
            json!({
                "recommendation": recommendation,
                "target_dc": target,
                "confidence": confidence,
                "reasoning": "scripted",
                "impact": "scripted",
            })
            .to_string(),
        )
    }
}

#[derive(Debug, Default)]
pub struct FakeAdvisor {
    script: Mutex<VecDeque<Script>>,
    last: Mutex<Option<Script>>,
    requests: Mutex<Vec<AdviceRequest>>,
}

impl FakeAdvisor {
    pub fn new(script: impl IntoIterator<Item = Script>) -> Self {
        Self {
            script: Mutex::new(script.into_iter().collect()),
            ..Self::default()
        }
    }

    /// Adds answers at the end of the script.
    pub fn push(&self, script: Script) {
        lock(&self.script).push_back(script);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<AdviceRequest> {
        lock(&self.requests).clone()
    }

    fn next(&self) -> Script {
        let next = lock(&self.script).pop_front();
        let mut last = lock(&self.last);
        match next {
            Some(s) => {
                *last = Some(s.clone());
                s
            }
            None => last
                .clone()
                .unwrap_or_else(|| Script::answer("hold", None, 0.9)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Advisor for FakeAdvisor {
    async fn advise(&self, evidence: &AdviceRequest) -> Consultation {
        lock(&self.requests).push(evidence.clone());
        let at = SystemTime::now();
        let started = tokio::time::Instant::now();
        let mut script = self.next();
        if let Script::Stall(d) = script {
            tokio::time::sleep(d).await;
            script = match lock(&self.script).pop_front() {
                Some(Script::Stall(_)) | None => Script::answer("hold", None, 0.9),
                Some(s) => s,
            };
        }
        let (result, raw) = match script {
            Script::Content(c) => (validate_answer(&c, evidence), Some(truncate(&c, RAW_LIMIT))),
            Script::Discard(d) => (Err(d), None),
            // Never reached: a stall was replaced above.
            Script::Stall(d) => (
                Err(Discarded::Timeout {
                    after_ms: d.as_millis() as u64,
                }),
                None,
            ),
        };
        Consultation {
            advisor: "fake".into(),
            model: "scripted".into(),
            at,
            latency: started.elapsed(),
            fingerprint: evidence.fingerprint(),
            result,
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::advisors::ai::TimeLimited;
    use crate::decision::ports::Recommendation;
    use crate::decision::ports::advisor::evidence::tests::{OUTAGE, failover_to, request};

    #[tokio::test]
    async fn plays_the_script_and_keeps_the_requests() {
        let fake = FakeAdvisor::new([
            Script::answer("failover", Some("west"), 0.9),
            Script::Content("not json".into()),
            Script::answer("failover", Some("mars"), 0.9),
        ]);
        let r = request(&[OUTAGE], failover_to("west", 1.0));
        let a = fake.advise(&r).await;
        assert_eq!(a.advice().unwrap().recommendation, Recommendation::Failover);
        assert_eq!(fake.advise(&r).await.result_label(), "invalid_json");
        assert_eq!(fake.advise(&r).await.result_label(), "unknown_datacenter");
        // The last answer repeats.
        assert_eq!(fake.advise(&r).await.result_label(), "unknown_datacenter");
        assert_eq!(fake.requests().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_becomes_a_timeout_within_the_limit() {
        let fake = Arc::new(FakeAdvisor::new([Script::Stall(Duration::from_secs(10))]));
        let limited = TimeLimited::new(fake, Duration::from_secs(2), "fake", "scripted");
        let r = request(&[OUTAGE], failover_to("west", 1.0));
        let c = limited.advise(&r).await;
        assert_eq!(c.result, Err(Discarded::Timeout { after_ms: 2000 }));
        assert_eq!(c.latency, Duration::from_secs(2));
        assert_eq!(c.fingerprint, r.fingerprint());
    }
}
