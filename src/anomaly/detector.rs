//! One endpoint's detector: a rolling window of normal feature vectors, an extended
//! isolation forest trained on them, and robust z-scores for the contributing factors.
//!
//! # What the score means
//!
//! The forest gives each sample a raw score in (0, 1): about 0.5 for a sample like the
//! training data, towards 1 the fewer random cuts it takes to isolate. Raw scores depend
//! on the data, so the published score is calibrated on normal samples the forest did not
//! see (every fourth sample of the window is held out of the forest for this): 0.5 at
//! their median raw score, [`CALIBRATION_POINT`] (0.8) at [`CALIBRATION_SPREADS`] robust
//! standard deviations (1.4826 x MAD) above it, 1.0 at the most isolated point possible,
//! linear in between. A threshold of 0.8 therefore means "a raw score that many standard
//! deviations above typical normal samples". The number was tuned on the first
//! recorded session only (see `tests/anomaly_eval.rs`). Held-out rather than training
//! samples, because a forest scores the points it was built from lower than new ones
//! from the same distribution.
//!
//! The published score is the larger of that and [`calibrate_z`] of the sample's largest
//! robust z-score: one feature [`Z_POINT`] robust standard deviations from its median is
//! anomalous by itself, which the forest is slow to see (see [`Z_POINT`]).

use std::collections::VecDeque;
use std::time::SystemTime;

use extended_isolation_forest::{Forest, ForestOptions};

use super::features::{Features, N, transform};

/// Robust standard deviations of the held-out raw scores above their median that map to
/// [`CALIBRATION_POINT`].
pub const CALIBRATION_SPREADS: f64 = 6.0;
/// The largest |z| of a sample that calibrates to [`CALIBRATION_POINT`] on its own. An
/// isolation forest with oblique cuts isolates a point far out along one feature slowly
/// (most random hyperplanes cut through the normal cloud and leave the point with half
/// of it), so a single feature this far from anything normal counts by itself.
pub const Z_POINT: f64 = 10.0;
/// Floor for the spread of held-out raw scores.
const MIN_RAW_SPREAD: f64 = 0.002;
/// Hyperplane freedom: 0 cuts along one feature at a time (a plain isolation forest),
/// N - 1 along any direction.
pub const EXTENSION_LEVEL: usize = N - 1;
/// The calibrated score of that quantile: the default `anomaly_threshold`.
pub const CALIBRATION_POINT: f64 = 0.8;
/// A z-score of at least this size makes a feature a contributing factor.
pub const CONTRIBUTOR_MIN_Z: f64 = 3.0;
/// Floor for a feature's spread, in model units, so that a feature that never moved in
/// training (evictions at 0) does not turn the first small change into an infinite z.
const MIN_SCALE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorSettings {
    /// Samples before the first model.
    pub warmup: usize,
    /// Samples kept for training (the newest).
    pub window: usize,
    /// New samples between two trainings.
    pub retrain_every: usize,
    /// Calibrated score at or above which a sample is anomalous.
    pub threshold: f64,
}

/// A trained model: the forest and the statistics of its training window.
pub struct Model {
    /// Single precision: z-scores need no more, and the forest is most of a model's
    /// memory (about 1 MB at 64 trees of 128 samples).
    forest: Forest<f32, N>,
    /// Per-feature median and robust spread (1.4826 x MAD), in model units.
    center: Features,
    scale: Features,
    /// Median held-out raw score, and the raw score that calibrates to 0.8.
    raw_median: f64,
    raw_high: f64,
    pub trained_at: SystemTime,
    pub samples: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("samples", &self.samples)
            .field("raw_median", &self.raw_median)
            .field("raw_high", &self.raw_high)
            .finish_non_exhaustive()
    }
}

/// A scored sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Calibrated score in [0, 1].
    pub score: f64,
    pub anomalous: bool,
    /// Robust z-score of every feature against the training window.
    pub zscores: Features,
}

impl Scored {
    /// Features with |z| of at least [`CONTRIBUTOR_MIN_Z`], largest first, at most `n`.
    pub fn contributors(&self, n: usize) -> Vec<(usize, f64)> {
        let mut top: Vec<(usize, f64)> = self
            .zscores
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, z)| z.abs() >= CONTRIBUTOR_MIN_Z)
            .collect();
        top.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        top.truncate(n);
        top
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0} samples are not enough to train, need {1}")]
    TooFew(usize, usize),
    #[error("the forest could not be built: {0}")]
    Forest(String),
}

/// Trains a model on raw feature vectors. Random: two trainings on the same data differ.
pub fn train(samples: &[Features], trees: usize) -> Result<Model, TrainError> {
    const MIN: usize = 16;
    if samples.len() < MIN {
        return Err(TrainError::TooFew(samples.len(), MIN));
    }
    let model_units: Vec<Features> = samples.iter().map(transform).collect();
    let (center, scale) = robust_stats(&model_units);
    let normalized: Vec<Features> = model_units
        .iter()
        .map(|t| normalize(t, &center, &scale))
        .collect();
    // Every fourth sample calibrates; the others build the forest.
    let mut forest_set: Vec<[f32; N]> = Vec::with_capacity(normalized.len());
    let mut held_out = Vec::with_capacity(normalized.len() / 4 + 1);
    for (i, x) in normalized.into_iter().enumerate() {
        if i % 4 == 3 {
            held_out.push(single(&x));
        } else {
            forest_set.push(single(&x));
        }
    }
    let options = ForestOptions {
        n_trees: trees,
        sample_size: forest_set.len().min(128),
        max_tree_depth: None,
        extension_level: EXTENSION_LEVEL,
    };
    let forest =
        Forest::from_slice(&forest_set, &options).map_err(|e| TrainError::Forest(e.to_string()))?;
    let mut raw: Vec<f64> = held_out.iter().map(|x| forest.score(x)).collect();
    raw.sort_by(f64::total_cmp);
    let raw_median = quantile(&raw, 0.5);
    let mut deviations: Vec<f64> = raw.iter().map(|r| (r - raw_median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let spread = (1.4826 * quantile(&deviations, 0.5)).max(MIN_RAW_SPREAD);
    Ok(Model {
        forest,
        center,
        scale,
        raw_median,
        raw_high: raw_median + CALIBRATION_SPREADS * spread,
        trained_at: SystemTime::now(),
        samples: samples.len(),
    })
}

impl Model {
    pub fn score(&self, features: &Features, threshold: f64) -> Scored {
        let z = normalize(&transform(features), &self.center, &self.scale);
        let raw = self.forest.score(&single(&z));
        let zmax = z.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let score = calibrate(raw, self.raw_median, self.raw_high).max(calibrate_z(zmax));
        Scored {
            score,
            anomalous: score >= threshold,
            zscores: z,
        }
    }
}

/// Piecewise-linear map of a raw score: median -> 0.5, `high` -> 0.8, 1 -> 1.
/// Monotonic, so a threshold on it is a threshold on the raw score.
pub fn calibrate(raw: f64, median: f64, high: f64) -> f64 {
    let high = high.max(median + 1e-6).min(1.0 - 1e-6);
    let median = median.clamp(1e-6, high);
    let score = if raw <= median {
        0.5 * raw / median
    } else if raw <= high {
        0.5 + (CALIBRATION_POINT - 0.5) * (raw - median) / (high - median)
    } else {
        CALIBRATION_POINT + (1.0 - CALIBRATION_POINT) * (raw - high) / (1.0 - high)
    };
    score.clamp(0.0, 1.0)
}

/// The score that the largest |z| alone stands for: 0.5 at 0, [`CALIBRATION_POINT`] at
/// [`Z_POINT`], 1 at twice that.
pub fn calibrate_z(zmax: f64) -> f64 {
    let score = if zmax <= Z_POINT {
        0.5 + (CALIBRATION_POINT - 0.5) * zmax / Z_POINT
    } else {
        CALIBRATION_POINT + (1.0 - CALIBRATION_POINT) * (zmax - Z_POINT) / Z_POINT
    };
    score.clamp(0.0, 1.0)
}

fn single(x: &Features) -> [f32; N] {
    x.map(|v| v as f32)
}

fn normalize(t: &Features, center: &Features, scale: &Features) -> Features {
    let mut z = [0.0; N];
    for i in 0..N {
        z[i] = (t[i] - center[i]) / scale[i];
    }
    z
}

/// Median and 1.4826 x median absolute deviation of each feature (the MAD of a normal
/// distribution times that factor is its standard deviation).
pub fn robust_stats(samples: &[Features]) -> (Features, Features) {
    let mut center = [0.0; N];
    let mut scale = [MIN_SCALE; N];
    let mut column = Vec::with_capacity(samples.len());
    for i in 0..N {
        column.clear();
        column.extend(samples.iter().map(|s| s[i]));
        column.sort_by(f64::total_cmp);
        let median = quantile(&column, 0.5);
        for v in column.iter_mut() {
            *v = (*v - median).abs();
        }
        column.sort_by(f64::total_cmp);
        center[i] = median;
        scale[i] = (1.4826 * quantile(&column, 0.5)).max(MIN_SCALE);
    }
    (center, scale)
}

/// Quantile of sorted data, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The rolling window and the current model of one endpoint.
#[derive(Debug)]
pub struct Detector {
    settings: DetectorSettings,
    window: VecDeque<Features>,
    since_training: usize,
    model: Option<Model>,
}

impl Detector {
    pub fn new(settings: DetectorSettings) -> Self {
        Self {
            settings,
            window: VecDeque::with_capacity(settings.window.min(4096)),
            since_training: 0,
            model: None,
        }
    }

    /// Starts from a saved training window (oldest first).
    pub fn with_window(settings: DetectorSettings, samples: Vec<Features>) -> Self {
        let mut d = Self::new(settings);
        for s in samples {
            d.push(s);
        }
        // Train at once: a restart must not forget what normal looks like.
        d.since_training = settings.retrain_every;
        d
    }

    fn push(&mut self, f: Features) {
        if self.window.len() == self.settings.window {
            self.window.pop_front();
        }
        self.window.push_back(f);
        self.since_training += 1;
    }

    /// Scores a sample (when there is a model) and learns it when it looks normal.
    pub fn observe(&mut self, f: Features) -> Option<Scored> {
        let scored = self
            .model
            .as_ref()
            .map(|m| m.score(&f, self.settings.threshold));
        if !scored.as_ref().is_some_and(|s| s.anomalous) {
            self.push(f);
        }
        scored
    }

    /// Whether it is time to (re)train: after the warm-up, then every `retrain_every`.
    pub fn wants_training(&self) -> bool {
        let enough = self.window.len() >= self.settings.warmup;
        enough && (self.model.is_none() || self.since_training >= self.settings.retrain_every)
    }

    /// The window to train on; resets the count towards the next training.
    pub fn training_set(&mut self) -> Vec<Features> {
        self.since_training = 0;
        self.window.iter().copied().collect()
    }

    pub fn install(&mut self, model: Model) {
        self.model = Some(model);
    }

    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    pub fn window(&self) -> &VecDeque<Features> {
        &self.window
    }

    pub fn settings(&self) -> &DetectorSettings {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (xorshift) for test data.
    fn rng(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed.max(1);
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn normal_sample(r: &mut impl FnMut() -> f64) -> Features {
        let mut f = [0.0; N];
        f[0] = 1000.0 + 200.0 * r();
        f[1] = 800.0 + 150.0 * r();
        f[2] = 100.0 + 30.0 * r();
        f[7] = 50_000.0 + 10_000.0 * r();
        f[8] = 80_000.0 + 20_000.0 * r();
        f[9] = 0.2 + 0.1 * r();
        f[10] = 20.0 + 3.0 * r();
        f[12] = 0.3 + 0.02 * r();
        f[13] = 1.2 + 0.05 * r();
        f[14] = 0.88 + 0.02 * r();
        f
    }

    fn settings() -> DetectorSettings {
        DetectorSettings {
            warmup: 300,
            window: 4096,
            retrain_every: 1000,
            threshold: CALIBRATION_POINT,
        }
    }

    fn trained() -> (Detector, impl FnMut() -> f64) {
        let mut r = rng(7);
        let mut d = Detector::new(settings());
        for _ in 0..600 {
            assert!(
                d.observe(normal_sample(&mut r)).is_none(),
                "no score before a model"
            );
        }
        assert!(d.wants_training());
        let set = d.training_set();
        d.install(train(&set, 100).unwrap());
        (d, r)
    }

    #[test]
    fn normal_samples_score_low_and_outliers_high() {
        // The forest is random: assert with margins, over several trainings.
        for _ in 0..5 {
            let (mut d, mut r) = trained();
            let normal: Vec<f64> = (0..200)
                .map(|_| d.observe(normal_sample(&mut r)).unwrap().score)
                .collect();
            let false_alarms = normal.iter().filter(|s| **s >= CALIBRATION_POINT).count();
            assert!(
                false_alarms <= 4,
                "{false_alarms} of 200 normal samples flagged"
            );

            let mut latency = normal_sample(&mut r);
            latency[9] = 400.0;
            let s = d.observe(latency).unwrap();
            assert!(s.anomalous, "a 400 ms PING scored {}", s.score);
            assert_eq!(s.contributors(3)[0].0, 9, "{:?}", s.contributors(3));
            assert!(
                d.window().iter().all(|f| f[9] < 1.0),
                "an anomaly was learned as normal"
            );

            let mut evicting = normal_sample(&mut r);
            evicting[3] = 5000.0;
            evicting[12] = 1.0;
            let s = d.observe(evicting).unwrap();
            assert!(s.anomalous, "evictions at maxmemory scored {}", s.score);
            let top: Vec<usize> = s.contributors(3).iter().map(|(i, _)| *i).collect();
            assert!(top.contains(&3) && top.contains(&12), "{top:?}");
        }
    }

    #[test]
    fn warmup_window_and_retraining_schedule() {
        let mut r = rng(3);
        let mut d = Detector::new(DetectorSettings {
            warmup: 50,
            window: 100,
            retrain_every: 30,
            threshold: 0.8,
        });
        for _ in 0..49 {
            d.observe(normal_sample(&mut r));
        }
        assert!(!d.wants_training());
        d.observe(normal_sample(&mut r));
        assert!(d.wants_training());
        let set = d.training_set();
        assert_eq!(set.len(), 50);
        d.install(train(&set, 50).unwrap());
        assert!(!d.wants_training());
        for _ in 0..200 {
            d.observe(normal_sample(&mut r));
        }
        assert_eq!(d.window().len(), 100, "the window is bounded");
        assert!(d.wants_training());
    }

    #[test]
    fn a_saved_window_trains_at_once() {
        let mut r = rng(5);
        let saved: Vec<Features> = (0..120).map(|_| normal_sample(&mut r)).collect();
        let d = Detector::with_window(
            DetectorSettings {
                warmup: 100,
                window: 4096,
                retrain_every: 500,
                threshold: 0.8,
            },
            saved,
        );
        assert!(d.wants_training());
    }

    #[test]
    fn calibration_is_monotonic_and_pinned() {
        assert_eq!(calibrate(0.45, 0.45, 0.6), 0.5);
        assert!((calibrate(0.6, 0.45, 0.6) - CALIBRATION_POINT).abs() < 1e-12);
        assert_eq!(calibrate(1.0, 0.45, 0.6), 1.0);
        assert_eq!(calibrate(0.0, 0.45, 0.6), 0.0);
        let mut last = -1.0;
        for i in 0..=100 {
            let s = calibrate(i as f64 / 100.0, 0.45, 0.6);
            assert!(s >= last);
            last = s;
        }
        // Degenerate training (all scores equal) still gives a valid score.
        assert!((0.0..=1.0).contains(&calibrate(0.7, 0.5, 0.5)));
    }

    #[test]
    fn robust_stats_ignore_outliers() {
        let mut samples = vec![[1.0; N]; 99];
        samples.push([1000.0; N]);
        let (center, scale) = robust_stats(&samples);
        assert_eq!(center[0], 1.0);
        assert_eq!(scale[0], MIN_SCALE);
    }
}
