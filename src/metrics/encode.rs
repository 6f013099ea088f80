//! Helpers to write one family of series with prometheus-client's encoder.
//!
//! A scrape of a thousand endpoints writes some 150,000 samples, and label encoding
//! dominates its cost when every label goes through the encoder in five calls. So the
//! labels every series of an endpoint shares (`redis_instance`, `datacenter`, and the
//! observer's in a fleet) are escaped once per endpoint per scrape and handed to the
//! encoder as one run of text, as part of the last label's key. The output is byte for
//! byte what label-by-label encoding gives; a test below holds us to that, so an encoder
//! that starts checking keys fails it.

use std::borrow::Cow;
use std::fmt::{self, Write};

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

use super::info_table::Kind;
use super::observer::Observer;
use crate::model::EndpointKey;

/// The labels of one endpoint, escaped once: `redis_instance`, `datacenter` and, in a
/// fleet, whose view it is (`observer::Observer::labels`).
#[derive(Debug, Clone)]
pub struct EndpointLabels<'a> {
    /// `redis_instance="x",datacenter="y"` and, in a fleet,
    /// `,observer="a",observer_datacenter="z",vantage="outside"`.
    text: String,
    /// Length of `text` up to the last label's name (`...,datacenter`, `...,vantage`).
    head: usize,
    /// The last label's value, as given.
    last: &'a str,
}

impl<'a> EndpointLabels<'a> {
    pub fn new(key: &'a EndpointKey, observer: Option<&'a Observer>) -> Self {
        let mut text = String::with_capacity(48 + key.instance.as_str().len());
        text.push_str("redis_instance=\"");
        let _ = escape_into(&mut text, key.instance.as_str());
        let mut labels = vec![("datacenter", key.datacenter.as_str())];
        if let Some(observer) = observer {
            labels.extend(observer.labels(&key.datacenter));
        }
        let (last_name, last) = labels.pop().expect("the datacenter label is always there");
        text.push('"');
        for (name, value) in labels {
            text.push(',');
            text.push_str(name);
            text.push_str("=\"");
            let _ = escape_into(&mut text, value);
            text.push('"');
        }
        text.push(',');
        text.push_str(last_name);
        let head = text.len();
        text.push_str("=\"");
        let _ = escape_into(&mut text, last);
        text.push('"');
        Self { text, head, last }
    }
}

/// An endpoint's labels and up to three more.
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    endpoint: &'a EndpointLabels<'a>,
    extra: [(&'static str, Cow<'a, str>); 4],
    n: usize,
}

impl<'a> Labels<'a> {
    pub fn of(endpoint: &'a EndpointLabels<'a>) -> Self {
        const EMPTY: (&str, Cow<'_, str>) = ("", Cow::Borrowed(""));
        Self {
            endpoint,
            extra: [EMPTY; 4],
            n: 0,
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<Cow<'a, str>>) -> Self {
        assert!(self.n < self.extra.len(), "at most four extra labels");
        self.extra[self.n] = (name, value.into());
        self.n += 1;
        self
    }
}

impl EncodeLabelSet for Labels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        let mut label = encoder.encode_label();
        let mut key = label.encode_label_key()?;
        // Everything before the last label's value is written as its key, escaped here;
        // the last value goes through the encoder, which escapes it.
        let last_value: &str = match self.extra[..self.n].split_last() {
            None => {
                key.write_str(&self.endpoint.text[..self.endpoint.head])?;
                self.endpoint.last
            }
            Some(((last_name, last_value), rest)) => {
                key.write_str(&self.endpoint.text)?;
                for (name, value) in rest {
                    key.write_str(",")?;
                    key.write_str(name)?;
                    key.write_str("=\"")?;
                    escape_into(&mut key, value)?;
                    key.write_str("\"")?;
                }
                key.write_str(",")?;
                key.write_str(last_name)?;
                last_value
            }
        };
        let mut value = key.encode_label_value()?;
        last_value.encode(&mut value)?;
        value.finish()
    }
}

/// Escapes a label value as the exposition formats require.
fn escape_into(out: &mut impl Write, value: &str) -> fmt::Result {
    let mut last = 0;
    for (i, b) in value.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.write_str(&value[last..i])?;
        out.write_str(escaped)?;
        last = i + 1;
    }
    out.write_str(&value[last..])
}

/// Writes one family; writes nothing at all when there are no rows.
/// `name` is the exposed name: a counter's ends in `_total`.
pub fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: Kind,
    rows: impl IntoIterator<Item = (L, f64)>,
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
        // Most Redis values are whole numbers: write them as integers, which is both
        // shorter and cheaper than a float.
        let whole = value.fract() == 0.0 && value.abs() < 9.0e15;
        match kind {
            Kind::Counter if whole && value >= 0.0 => {
                series.encode_counter::<NoLabelSet, u64, f64>(&(value as u64), None)?
            }
            Kind::Counter => series.encode_counter::<NoLabelSet, f64, f64>(&value, None)?,
            Kind::Gauge if whole => series.encode_gauge(&(value as i64))?,
            Kind::Gauge => series.encode_gauge(&value)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatacenterId;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    /// An endpoint, the observer whose view it is, its extra labels, a value.
    type Row = (
        EndpointKey,
        Option<Observer>,
        Vec<(&'static str, String)>,
        f64,
    );

    #[derive(Debug)]
    struct Rows(Vec<Row>);

    impl prometheus_client::collector::Collector for Rows {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            let endpoints: Vec<_> = self
                .0
                .iter()
                .map(|(k, o, _, _)| EndpointLabels::new(k, o.as_ref()))
                .collect();
            family(
                &mut encoder,
                "x",
                "X.",
                Kind::Gauge,
                self.0.iter().zip(&endpoints).map(|((_, _, extra, v), e)| {
                    let labels = extra
                        .iter()
                        .fold(Labels::of(e), |l, (k, v)| l.with(k, v.as_str()));
                    (labels, *v)
                }),
            )
        }
    }

    fn rows() -> Vec<Row> {
        let odd = EndpointKey::new("we\"ird\\in\nst", "d\"c");
        let observer = |name: &str, dc: Option<&str>| {
            Some(Observer {
                name: name.into(),
                datacenter: dc.map(DatacenterId::new),
            })
        };
        vec![
            (EndpointKey::new("cache", "east"), None, vec![], 1.0),
            (odd.clone(), None, vec![], 2.5),
            (odd.clone(), None, vec![("cmd", "ge\"t".into())], 3.0),
            (
                odd.clone(),
                None,
                vec![("a", "1\\".into()), ("b", "\n".into()), ("c", "\"".into())],
                -4.0,
            ),
            (
                EndpointKey::new("cache", "east"),
                observer("agent-b", Some("west")),
                vec![],
                5.0,
            ),
            (
                EndpointKey::new("cache", "east"),
                observer("agent-a", Some("east")),
                vec![("cmd", "get".into())],
                6.0,
            ),
            (
                odd,
                observer("wit\"ness", None),
                vec![("x", "\\".into())],
                7.0,
            ),
        ]
    }

    #[test]
    fn pre_rendered_labels_encode_exactly_like_label_by_label() {
        let mut ours = Registry::default();
        ours.register_collector(Box::new(Rows(rows())));
        let mut theirs = Registry::default();
        let reference =
            Family::<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for (key, observer, extra, v) in rows() {
            let mut labels = vec![
                ("redis_instance".to_owned(), key.instance.to_string()),
                ("datacenter".to_owned(), key.datacenter.to_string()),
            ];
            if let Some(o) = &observer {
                labels.extend(
                    o.labels(&key.datacenter)
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned())),
                );
            }
            labels.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
            reference.get_or_create(&labels).set(v);
        }
        // The registry adds the final full stop itself.
        theirs.register("x", "X", reference);

        let render = |r: &Registry| {
            let mut s = String::new();
            prometheus_client::encoding::text::encode(&mut s, r).unwrap();
            s
        };
        let (ours, theirs) = (render(&ours), render(&theirs));
        // The reference writes floats; ours writes whole numbers as integers.
        let theirs = theirs
            .replace(" 1.0\n", " 1\n")
            .replace(" 3.0\n", " 3\n")
            .replace(" -4.0\n", " -4\n")
            .replace(" 5.0\n", " 5\n")
            .replace(" 6.0\n", " 6\n")
            .replace(" 7.0\n", " 7\n");
        let sorted = |s: &str| {
            let mut lines: Vec<_> = s.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(
            sorted(&ours),
            sorted(&theirs),
            "\nours:\n{ours}\ntheirs:\n{theirs}"
        );
        assert!(
            ours.contains(r#"x{redis_instance="we\"ird\\in\nst",datacenter="d\"c",cmd="ge\"t"} 3"#),
            "{ours}"
        );
        assert!(
            ours.contains(r#"x{redis_instance="cache",datacenter="east",observer="agent-a",observer_datacenter="east",vantage="inside",cmd="get"} 6"#),
            "{ours}"
        );
        assert!(
            ours.contains(r#"x{redis_instance="cache",datacenter="east",observer="agent-b",observer_datacenter="west",vantage="outside"} 5"#),
            "{ours}"
        );
        assert!(
            ours.contains(r#"x{redis_instance="we\"ird\\in\nst",datacenter="d\"c",observer="wit\"ness",vantage="outside",x="\\"} 7"#),
            "{ours}"
        );
    }

    #[test]
    fn whole_counters_are_integers() {
        #[derive(Debug)]
        struct C;
        impl prometheus_client::collector::Collector for C {
            fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
                let key = EndpointKey::new("i", "d");
                let e = EndpointLabels::new(&key, None);
                family(
                    &mut encoder,
                    "c_total",
                    "C.",
                    Kind::Counter,
                    [(Labels::of(&e), 7.0), (Labels::of(&e), 0.25)],
                )
            }
        }
        let mut r = Registry::default();
        r.register_collector(Box::new(C));
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
        assert!(
            s.contains("c_total{redis_instance=\"i\",datacenter=\"d\"} 7\n"),
            "{s}"
        );
        assert!(
            s.contains("c_total{redis_instance=\"i\",datacenter=\"d\"} 0.25\n"),
            "{s}"
        );
    }
}
