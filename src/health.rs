//! Health scores: a pure function of what the latest round saw.
//!
//! An endpoint's score starts at 1 and each problem takes away a share of what is left:
//! `score = (1 - p_latency) (1 - p_memory) (1 - p_hits) (1 - p_rejected) (1 - p_errors)
//! (1 - p_anomaly)`, each `p` in [0, 1]. So one severe problem pulls the score down on its
//! own, and several mild ones add up. An endpoint that did not answer scores 0.
//!
//! | input | no penalty at | penalty grows to |
//! |---|---|---|
//! | PING latency | 10 ms | 0.5 at 100 ms (seed 000's alert), 0.9 at 1 s |
//! | memory used / maxmemory (or system memory; only system memory under `allkeys-*`) | 80 % | 0.3 at 90 % (seed 000's alert), 0.8 at 100 % |
//! | hit ratio, with at least 1 lookup/s | 80 % | 0.3 at 50 % (seed 000's alert), 0.5 at 0 % |
//! | rejected connections | none | 0.5 at any |
//! | error replies / commands | 1 % | 0.5 at 10 % and above |
//! | anomaly score | the threshold | 0.5 at 1 |
//!
//! Status: `healthy` from 0.8, `degraded` from 0.5, `failing` above 0, `failed` at 0 (the
//! endpoint did not answer). A datacenter's score is the mean of its endpoints' scores,
//! and it is `failed` when all of them failed.

use crate::model::HealthStatus;

/// What the score is computed from. `None` where the round could not tell (no previous
/// round for rates, no model for the anomaly score).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HealthInput {
    pub up: bool,
    pub ping_latency_ms: Option<f64>,
    pub memory_used_ratio: Option<f64>,
    /// Hit ratio and lookups per second over the last interval.
    pub hit_ratio: Option<(f64, f64)>,
    pub rejected_per_second: Option<f64>,
    /// Error replies and commands per second over the last interval.
    pub errors: Option<(f64, f64)>,
    /// Calibrated anomaly score and the threshold.
    pub anomaly: Option<(f64, f64)>,
}

/// Linear interpolation through (x, y) points, flat beyond the ends.
fn ramp(x: f64, points: &[(f64, f64)]) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

/// Each penalty with its name, for explanations.
pub fn penalties(input: &HealthInput) -> [(&'static str, f64); 6] {
    let latency = input.ping_latency_ms.map_or(0.0, |ms| {
        ramp(ms, &[(10.0, 0.0), (100.0, 0.5), (1000.0, 0.9)])
    });
    let memory = input
        .memory_used_ratio
        .map_or(0.0, |r| ramp(r, &[(0.8, 0.0), (0.9, 0.3), (1.0, 0.8)]));
    let hits = match input.hit_ratio {
        Some((ratio, lookups)) if lookups >= 1.0 => {
            ramp(ratio, &[(0.0, 0.5), (0.5, 0.3), (0.8, 0.0)])
        }
        _ => 0.0,
    };
    let rejected = match input.rejected_per_second {
        Some(r) if r > 0.0 => 0.5,
        _ => 0.0,
    };
    let errors = match input.errors {
        Some((errors, commands)) if commands > 0.0 => {
            ramp(errors / commands, &[(0.01, 0.0), (0.1, 0.5)])
        }
        Some((errors, _)) if errors > 0.0 => 0.5,
        _ => 0.0,
    };
    let anomaly = match input.anomaly {
        Some((score, threshold)) if score >= threshold && threshold < 1.0 => {
            0.5 * ((score - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
        }
        _ => 0.0,
    };
    [
        ("latency", latency),
        ("memory", memory),
        ("hit_ratio", hits),
        ("rejected_connections", rejected),
        ("error_replies", errors),
        ("anomaly", anomaly),
    ]
}

/// The health score of one endpoint, in [0, 1].
pub fn endpoint_score(input: &HealthInput) -> f64 {
    if !input.up {
        return 0.0;
    }
    penalties(input)
        .iter()
        .fold(1.0, |score, (_, p)| score * (1.0 - p.clamp(0.0, 1.0)))
}

/// The status a score stands for.
pub fn status(score: f64, up: bool) -> HealthStatus {
    if !up || score <= 0.0 {
        HealthStatus::Failed
    } else if score >= 0.8 {
        HealthStatus::Healthy
    } else if score >= 0.5 {
        HealthStatus::Degraded
    } else {
        HealthStatus::Failing
    }
}

/// A datacenter's score and status from its endpoints' (score, up) pairs; `None` for a
/// datacenter without endpoints.
pub fn datacenter(endpoints: &[(f64, bool)]) -> Option<(f64, HealthStatus)> {
    if endpoints.is_empty() {
        return None;
    }
    let score = endpoints.iter().map(|(s, _)| s).sum::<f64>() / endpoints.len() as f64;
    let any_up = endpoints.iter().any(|(_, up)| *up);
    Some((score, status(score, any_up)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> HealthInput {
        HealthInput {
            up: true,
            ping_latency_ms: Some(0.5),
            memory_used_ratio: Some(0.3),
            hit_ratio: Some((0.95, 100.0)),
            rejected_per_second: Some(0.0),
            errors: Some((0.0, 1000.0)),
            anomaly: Some((0.4, 0.8)),
        }
    }

    #[test]
    fn a_quiet_healthy_endpoint_scores_one() {
        assert_eq!(endpoint_score(&healthy()), 1.0);
        assert_eq!(status(1.0, true), HealthStatus::Healthy);
        // Nothing known yet but that it answers: healthy.
        let bare = HealthInput {
            up: true,
            ..HealthInput::default()
        };
        assert_eq!(endpoint_score(&bare), 1.0);
    }

    #[test]
    fn down_is_zero_and_failed() {
        let down = HealthInput {
            up: false,
            ..healthy()
        };
        assert_eq!(endpoint_score(&down), 0.0);
        assert_eq!(status(0.0, false), HealthStatus::Failed);
    }

    #[test]
    fn seed_thresholds_sit_at_the_documented_penalties() {
        let at = |f: fn(&mut HealthInput)| {
            let mut i = healthy();
            f(&mut i);
            endpoint_score(&i)
        };
        assert!((at(|i| i.ping_latency_ms = Some(10.0)) - 1.0).abs() < 1e-12);
        assert!((at(|i| i.ping_latency_ms = Some(100.0)) - 0.5).abs() < 1e-12);
        assert!((at(|i| i.ping_latency_ms = Some(5000.0)) - 0.1).abs() < 1e-12);
        assert!((at(|i| i.memory_used_ratio = Some(0.8)) - 1.0).abs() < 1e-12);
        assert!((at(|i| i.memory_used_ratio = Some(0.9)) - 0.7).abs() < 1e-12);
        assert!((at(|i| i.memory_used_ratio = Some(1.0)) - 0.2).abs() < 1e-12);
        assert!((at(|i| i.hit_ratio = Some((0.5, 100.0))) - 0.7).abs() < 1e-12);
        assert_eq!(
            at(|i| i.hit_ratio = Some((0.1, 0.5))),
            1.0,
            "too few lookups to judge"
        );
        assert_eq!(at(|i| i.rejected_per_second = Some(0.1)), 0.5);
        assert_eq!(at(|i| i.errors = Some((10.0, 1000.0))), 1.0);
        assert!((at(|i| i.errors = Some((100.0, 1000.0))) - 0.5).abs() < 1e-12);
        assert_eq!(at(|i| i.anomaly = Some((0.79, 0.8))), 1.0);
        assert!((at(|i| i.anomaly = Some((1.0, 0.8))) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn problems_compound() {
        let mut i = healthy();
        i.ping_latency_ms = Some(100.0);
        i.memory_used_ratio = Some(0.9);
        assert!((endpoint_score(&i) - 0.35).abs() < 1e-12);
        assert_eq!(status(0.35, true), HealthStatus::Failing);
    }

    #[test]
    fn status_boundaries() {
        assert_eq!(status(0.8, true), HealthStatus::Healthy);
        assert_eq!(status(0.7999, true), HealthStatus::Degraded);
        assert_eq!(status(0.5, true), HealthStatus::Degraded);
        assert_eq!(status(0.4999, true), HealthStatus::Failing);
        assert_eq!(status(0.0, true), HealthStatus::Failed);
    }

    #[test]
    fn datacenter_is_the_mean_and_fails_when_all_fail() {
        assert_eq!(datacenter(&[]), None);
        assert_eq!(
            datacenter(&[(0.0, false), (0.0, false)]),
            Some((0.0, HealthStatus::Failed))
        );
        assert_eq!(
            datacenter(&[(1.0, true), (0.0, false)]),
            Some((0.5, HealthStatus::Degraded))
        );
        assert_eq!(
            datacenter(&[(1.0, true), (0.9, true)]).map(|d| d.1),
            Some(HealthStatus::Healthy)
        );
    }
}
