//! Anomaly scores, contributing features, model state and health scores, rendered from
//! the analysis store. Health (datacenters' included) is read as stored, never scored here.

use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use super::encode::{EndpointLabels, Labels, family};
use super::info_table::Kind;
use super::observer::Observer;
use crate::model::{AnalysisStore, AnomalyScore, AnomalyState, DatacenterId, HealthStatus};

#[derive(Debug)]
pub struct AnalysisCollector {
    results: Arc<AnalysisStore>,
    threshold: f64,
    observer: Option<Observer>,
}

impl AnalysisCollector {
    pub fn new(results: Arc<AnalysisStore>, threshold: f64, observer: Option<Observer>) -> Self {
        Self {
            results,
            threshold,
            observer,
        }
    }

    /// A datacenter's labels, with whose view it is in a fleet, and its `status`.
    fn datacenter_labels<'a>(
        &'a self,
        dc: &'a DatacenterId,
        status: Option<&'static str>,
    ) -> Vec<(&'static str, &'a str)> {
        let mut labels = vec![("datacenter", dc.as_str())];
        if let Some(observer) = &self.observer {
            labels.extend(observer.labels(dc));
        }
        labels.extend(status.map(|s| ("status", s)));
        labels
    }
}

const RANKS: [&str; 3] = ["1", "2", "3"];

impl Collector for AnalysisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let all = self.results.all();
        let labels: Vec<EndpointLabels<'_>> = all
            .iter()
            .map(|(k, _)| EndpointLabels::new(k, self.observer.as_ref()))
            .collect();
        let rows: Vec<_> = all.iter().zip(&labels).map(|((_, a), l)| (l, a)).collect();
        // The latest score of an endpoint that answers and has a model.
        let scored: Vec<(&EndpointLabels<'_>, &AnomalyScore)> = rows
            .iter()
            .filter_map(|(l, a)| match &a.anomaly {
                AnomalyState::Ready {
                    latest: Some(s), ..
                } if a.up => Some((*l, s)),
                _ => None,
            })
            .collect();
        let e = &mut encoder;

        let threshold = ConstGauge::new(self.threshold);
        threshold.encode(e.encode_descriptor(
            "redis_anomaly_threshold",
            "Calibrated anomaly score at or above which a sample is anomalous (anomaly_threshold).",
            None,
            MetricType::Gauge,
        )?)?;
        family(
            e,
            "redis_anomaly_model_ready",
            "1 once the endpoint's model is trained; 0 while it warms up.",
            Kind::Gauge,
            rows.iter().filter_map(|(l, a)| match a.anomaly {
                AnomalyState::Ready { .. } => Some((Labels::of(l), 1.0)),
                AnomalyState::WarmingUp { .. } => Some((Labels::of(l), 0.0)),
                AnomalyState::Disabled => None,
            }),
        )?;
        family(
            e,
            "redis_anomaly_model_samples",
            "Normal samples in the endpoint's training window.",
            Kind::Gauge,
            rows.iter().filter_map(|(l, a)| match a.anomaly {
                AnomalyState::Ready { samples, .. } | AnomalyState::WarmingUp { samples, .. } => {
                    Some((Labels::of(l), samples as f64))
                }
                AnomalyState::Disabled => None,
            }),
        )?;
        family(
            e,
            "redis_anomaly_model_warmup_samples",
            "Samples the endpoint's model waits for before its first training.",
            Kind::Gauge,
            rows.iter().filter_map(|(l, a)| match a.anomaly {
                AnomalyState::WarmingUp { needed, .. } => Some((Labels::of(l), needed as f64)),
                _ => None,
            }),
        )?;
        family(
            e,
            "redis_anomaly_model_last_training_timestamp_seconds",
            "Unix time the endpoint's model was last trained.",
            Kind::Gauge,
            rows.iter().filter_map(|(l, a)| match a.anomaly {
                AnomalyState::Ready { trained_at, .. } => Some((
                    Labels::of(l),
                    trained_at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64(),
                )),
                _ => None,
            }),
        )?;
        family(
            e,
            "redis_anomaly_score",
            "Calibrated anomaly score of the latest sample: 0.5 is typical, 0.8 the default threshold (see the README), 1 the most isolated.",
            Kind::Gauge,
            scored.iter().map(|(l, s)| (Labels::of(l), s.score)),
        )?;
        family(
            e,
            "redis_anomaly_anomalous",
            "1 when the latest sample's score is at or above the threshold.",
            Kind::Gauge,
            scored
                .iter()
                .map(|(l, s)| (Labels::of(l), f64::from(u8::from(s.anomalous)))),
        )?;
        family(
            e,
            "redis_anomaly_feature_zscore",
            "Robust z-score of each feature of the latest sample against the training window (median and MAD, model scale).",
            Kind::Gauge,
            scored.iter().flat_map(|(l, s)| {
                s.zscores
                    .iter()
                    .map(move |(f, z)| (Labels::of(l).with("feature", *f), *z))
            }),
        )?;
        family(
            e,
            "redis_anomaly_top_contributor_zscore",
            "The features that made the latest anomalous sample stand out, by rank (1 = largest |z|).",
            Kind::Gauge,
            scored.iter().flat_map(|(l, s)| {
                s.contributors.iter().zip(RANKS).map(move |((f, z), rank)| {
                    (Labels::of(l).with("rank", rank).with("feature", *f), *z)
                })
            }),
        )?;
        family(
            e,
            "redis_health_score",
            "Health of the endpoint from 0 (down) to 1; see the README for the formula.",
            Kind::Gauge,
            rows.iter().map(|(l, a)| (Labels::of(l), a.health_score)),
        )?;
        family(
            e,
            "redis_health_status",
            "1 on the endpoint's current status: healthy, degraded, failing or failed.",
            Kind::Gauge,
            rows.iter().flat_map(|(l, a)| {
                HealthStatus::ALL.iter().map(move |s| {
                    (
                        Labels::of(l).with("status", s.as_str()),
                        f64::from(u8::from(*s == a.health_status)),
                    )
                })
            }),
        )?;

        let datacenters = self.results.datacenters();
        if !datacenters.is_empty() {
            let mut m = e.encode_descriptor(
                "redis_datacenter_health_score",
                "Mean health score of the datacenter's endpoints; 0 when none answers.",
                None,
                MetricType::Gauge,
            )?;
            for (dc, h) in datacenters.iter() {
                m.encode_family(&self.datacenter_labels(dc, None))?
                    .encode_gauge(&h.score)?;
            }
            let mut m = e.encode_descriptor(
                "redis_datacenter_health_status",
                "1 on the datacenter's current status: healthy, degraded, failing or failed.",
                None,
                MetricType::Gauge,
            )?;
            for (dc, h) in datacenters.iter() {
                for s in HealthStatus::ALL {
                    let v = i64::from(s == h.status);
                    m.encode_family(&self.datacenter_labels(dc, Some(s.as_str())))?
                        .encode_gauge(&v)?;
                }
            }
        }
        Ok(())
    }
}
