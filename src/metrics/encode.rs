//! Small helpers to write one family of series with prometheus-client's encoder.

use std::borrow::Cow;
use std::fmt;

use prometheus_client::encoding::EncodeLabel;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, LabelSetEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::info_table::Kind;
use crate::model::EndpointKey;

/// `redis_instance`, `datacenter` and up to three more labels.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    key: &'a EndpointKey,
    extra: [(&'static str, Cow<'a, str>); 3],
    n: usize,
}

impl<'a> Labels<'a> {
    pub fn of(key: &'a EndpointKey) -> Self {
        const EMPTY: (&str, Cow<'_, str>) = ("", Cow::Borrowed(""));
        Self {
            key,
            extra: [EMPTY; 3],
            n: 0,
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<Cow<'a, str>>) -> Self {
        assert!(self.n < self.extra.len(), "at most three extra labels");
        self.extra[self.n] = (name, value.into());
        self.n += 1;
        self
    }
}

impl EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("redis_instance", self.key.instance.as_str()).encode(encoder.encode_label())?;
        ("datacenter", self.key.datacenter.as_str()).encode(encoder.encode_label())?;
        for (name, value) in &self.extra[..self.n] {
            (*name, value.as_ref()).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// Writes one family; writes nothing at all when there are no rows.
/// `name` is the exposed name: a counter's ends in `_total`.
pub fn family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: Kind,
    rows: impl IntoIterator<Item = (Labels<'a>, f64)>,
) -> fmt::Result {
    let mut rows = rows.into_iter().peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let (base, metric_type) = match kind {
        Kind::Counter => (
            name.strip_suffix("_total").unwrap_or(name),
            MetricType::Counter,
        ),
        Kind::Gauge => (name, MetricType::Gauge),
    };
    let mut metric = encoder.encode_descriptor(base, help, None, metric_type)?;
    for (labels, value) in rows {
        let mut series = metric.encode_family(&labels)?;
        match kind {
            Kind::Counter => series.encode_counter::<NoLabelSet, f64, f64>(&value, None)?,
            Kind::Gauge => series.encode_gauge(&value)?,
        }
    }
    Ok(())
}
