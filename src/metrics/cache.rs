//! Render once, serve many. At a thousand endpoints a body is megabytes and costs about
//! a tenth of a second of CPU to render, and Prometheus often scrapes as an HA pair: a
//! rendered body (and its gzip, made once on demand) is kept per format and handed to
//! every scraper while it is fresh; scrapes that arrive during a render wait for it
//! rather than start their own.
//!
//! The store changes all the time (the endpoints' rounds are spread over the interval),
//! so freshness is an age: a body is reused for [`REUSE_FACTOR`] times what it took to
//! render, never longer than `max_age` (the collection interval, so at most one render
//! per format per round). A body under [`MIN_REUSE_BYTES`] (a small agent's, cheap to
//! render) is only shared with the scrapes that waited for it, so each later scrape
//! shows every counter as it is then. A reload starts over at once.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::Mutex;

use super::Format;

/// How many times its render cost a body is reused for: rendering then takes at most
/// about 2% of a core, whatever the number of scrapers.
pub const REUSE_FACTOR: u32 = 50;

/// The smallest body reused by a later scrape: about 60 endpoints' worth, a render of a
/// few milliseconds.
pub const MIN_REUSE_BYTES: usize = 1 << 20;

/// When a rendered body may be served again.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Never longer than this: the collection interval.
    pub max_age: Duration,
    /// Reused for this many times its render cost ([`REUSE_FACTOR`]).
    pub reuse_factor: u32,
    /// Smaller bodies go only to the scrapes that waited for them ([`MIN_REUSE_BYTES`]).
    pub min_bytes: usize,
}

impl Policy {
    /// The policy of an agent collecting every `interval`.
    pub fn for_interval(interval: Duration) -> Self {
        Self {
            max_age: interval,
            reuse_factor: REUSE_FACTOR,
            min_bytes: MIN_REUSE_BYTES,
        }
    }
}

/// A rendered body, shared by every scraper that gets it.
#[derive(Debug)]
pub struct Exposition {
    pub body: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Exposition {
    fn new(body: String) -> Self {
        Self {
            body: Bytes::from(body),
            gzip: OnceLock::new(),
        }
    }

    /// The body gzipped, made by the first scraper that asks; the others wait for it.
    /// CPU-bound: call it on the blocking pool.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                // The fastest level: text exposition shrinks about tenfold even so, and
                // the stronger ones cost several times the CPU for a few percent more.
                let mut encoder =
                    GzEncoder::new(Vec::with_capacity(self.body.len() / 8), Compression::fast());
                encoder
                    .write_all(&self.body)
                    .and_then(|()| encoder.finish())
                    .map(Bytes::from)
                    .expect("writing to a Vec does not fail")
            })
            .clone()
    }
}

#[derive(Debug)]
struct Cached {
    exposition: Arc<Exposition>,
    rendered: Instant,
    cost: Duration,
    generation: u64,
}

/// One slot per format; its lock is held through a render, so a scrape that comes
/// meanwhile waits for that render.
#[derive(Debug)]
pub struct RenderCache {
    slots: [Mutex<Option<Cached>>; 2],
    policy: Policy,
    generation: AtomicU64,
}

impl RenderCache {
    pub fn new(policy: Policy) -> Self {
        Self {
            slots: [Mutex::new(None), Mutex::new(None)],
            policy,
            generation: AtomicU64::new(0),
        }
    }

    /// Forgets every body: the next scrape renders.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The fresh body of `format`, or the one `render` makes (on the blocking pool).
    pub async fn get<E: Send + 'static>(
        &self,
        format: Format,
        render: impl FnOnce() -> Result<String, E> + Send + 'static,
    ) -> Result<Arc<Exposition>, Option<E>> {
        let arrived = Instant::now();
        let mut slot = self.slots[format as usize].lock().await;
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(cached) = slot.as_ref()
            && cached.generation == generation
            // Rendered while this scrape waited, or still fresh.
            && (cached.rendered > arrived || cached.rendered.elapsed() < self.hold(cached))
        {
            return Ok(Arc::clone(&cached.exposition));
        }
        let started = Instant::now();
        // `None`: the render panicked.
        let body = tokio::task::spawn_blocking(render)
            .await
            .map_err(|_| None)?
            .map_err(Some)?;
        let exposition = Arc::new(Exposition::new(body));
        *slot = Some(Cached {
            exposition: Arc::clone(&exposition),
            rendered: Instant::now(),
            cost: started.elapsed(),
            generation,
        });
        Ok(exposition)
    }

    fn hold(&self, cached: &Cached) -> Duration {
        if cached.exposition.body.len() < self.policy.min_bytes {
            return Duration::ZERO;
        }
        cached
            .cost
            .saturating_mul(self.policy.reuse_factor)
            .min(self.policy.max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::atomic::AtomicUsize;

    fn counting(
        renders: &Arc<AtomicUsize>,
    ) -> impl FnOnce() -> Result<String, std::fmt::Error> + Send + 'static {
        let renders = Arc::clone(renders);
        move || {
            let n = renders.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(20));
            Ok(format!("body {n}\n").repeat(100))
        }
    }

    fn policy(max_age: Duration, reuse_factor: u32, min_bytes: usize) -> Policy {
        Policy {
            max_age,
            reuse_factor,
            min_bytes,
        }
    }

    #[tokio::test]
    async fn concurrent_scrapes_share_one_render_and_later_ones_reuse_it() {
        let cache = Arc::new(RenderCache::new(policy(
            Duration::from_secs(60),
            u32::MAX,
            0,
        )));
        let renders = Arc::new(AtomicUsize::new(0));
        let scrapes: Vec<_> = (0..4)
            .map(|_| {
                let (cache, render) = (Arc::clone(&cache), counting(&renders));
                tokio::spawn(async move { cache.get(Format::Text, render).await.unwrap() })
            })
            .collect();
        for scrape in scrapes {
            assert!(scrape.await.unwrap().body.starts_with(b"body 1\n"));
        }
        let again = cache.get(Format::Text, counting(&renders)).await.unwrap();
        assert!(again.body.starts_with(b"body 1\n"));
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // The other format has its own body; a reload forgets both.
        cache
            .get(Format::OpenMetrics, counting(&renders))
            .await
            .unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), 2);
        cache.invalidate();
        let after = cache.get(Format::Text, counting(&renders)).await.unwrap();
        assert!(after.body.starts_with(b"body 3\n"));
    }

    #[tokio::test]
    async fn a_body_is_reused_for_its_cost_times_the_factor_at_most_max_age() {
        let renders = Arc::new(AtomicUsize::new(0));
        let minute = Duration::from_secs(60);
        // Factor 0, max_age 0, or a body under min_bytes: never reused by a later scrape.
        for p in [
            policy(minute, 0, 0),
            policy(Duration::ZERO, u32::MAX, 0),
            policy(minute, u32::MAX, 1 << 20),
        ] {
            let before = renders.load(Ordering::SeqCst);
            let cache = RenderCache::new(p);
            cache.get(Format::Text, counting(&renders)).await.unwrap();
            cache.get(Format::Text, counting(&renders)).await.unwrap();
            assert_eq!(renders.load(Ordering::SeqCst), before + 2, "{p:?}");
        }
        let cached = |bytes: usize| Cached {
            exposition: Arc::new(Exposition::new("x".repeat(bytes))),
            rendered: Instant::now(),
            cost: Duration::from_millis(20),
            generation: 0,
        };
        let cache = RenderCache::new(Policy::for_interval(Duration::from_secs(5)));
        assert_eq!(cache.hold(&cached(MIN_REUSE_BYTES)), Duration::from_secs(1));
        assert_eq!(cache.hold(&cached(MIN_REUSE_BYTES - 1)), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_small_body_still_goes_to_every_scrape_that_waited_for_it() {
        let cache = Arc::new(RenderCache::new(policy(Duration::ZERO, 0, usize::MAX)));
        let renders = Arc::new(AtomicUsize::new(0));
        let scrapes: Vec<_> = (0..3)
            .map(|_| {
                let (cache, render) = (Arc::clone(&cache), counting(&renders));
                tokio::spawn(async move { cache.get(Format::Text, render).await.unwrap() })
            })
            .collect();
        for scrape in scrapes {
            scrape.await.unwrap();
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_gzip_is_made_once_and_unzips_to_the_body() {
        let e = Exposition::new("redis_up 1\n".repeat(1000));
        let (a, b) = (e.gzip(), e.gzip());
        assert_eq!(a.as_ptr(), b.as_ptr(), "made once");
        assert!(
            a.len() * 10 < e.body.len(),
            "{} of {}",
            a.len(),
            e.body.len()
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, e.body);
    }
}
