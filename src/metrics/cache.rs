//! Render once, serve many. At a thousand endpoints a body is megabytes and costs about
//! a tenth of a second of CPU to render, and Prometheus often scrapes as an HA pair: a
//! rendered body (and its gzip, made once on demand) is kept per format and handed to
//! every scraper while it is fresh; scrapes that arrive during a render wait for it
//! rather than start their own.
//!
//! The store changes all the time (the endpoints' rounds are spread over the interval),
//! so freshness is an age: a body is reused for [`REUSE_FACTOR`] times what it took to
//! render, never longer than `max_age` (the collection interval, so at most one render
//! per format per round). A small agent, whose render takes a millisecond, is in effect
//! uncached; a large one renders once a round. A reload starts over at once.

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
    max_age: Duration,
    reuse_factor: u32,
    generation: AtomicU64,
}

impl RenderCache {
    pub fn new(max_age: Duration, reuse_factor: u32) -> Self {
        Self {
            slots: [Mutex::new(None), Mutex::new(None)],
            max_age,
            reuse_factor,
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
        let mut slot = self.slots[format as usize].lock().await;
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(cached) = slot.as_ref()
            && cached.generation == generation
            && cached.rendered.elapsed() < self.hold(cached.cost)
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

    fn hold(&self, cost: Duration) -> Duration {
        cost.saturating_mul(self.reuse_factor).min(self.max_age)
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

    #[tokio::test]
    async fn concurrent_scrapes_share_one_render_and_later_ones_reuse_it() {
        let cache = Arc::new(RenderCache::new(Duration::from_secs(60), u32::MAX));
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
        // Factor 0: never reused.
        let cache = RenderCache::new(Duration::from_secs(60), 0);
        cache.get(Format::Text, counting(&renders)).await.unwrap();
        cache.get(Format::Text, counting(&renders)).await.unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), 2);
        // A large factor, but max_age 0: never reused either.
        let cache = RenderCache::new(Duration::ZERO, u32::MAX);
        cache.get(Format::Text, counting(&renders)).await.unwrap();
        cache.get(Format::Text, counting(&renders)).await.unwrap();
        assert_eq!(renders.load(Ordering::SeqCst), 4);
        assert_eq!(
            RenderCache::new(Duration::from_secs(5), REUSE_FACTOR).hold(Duration::from_millis(20)),
            Duration::from_secs(1)
        );
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
