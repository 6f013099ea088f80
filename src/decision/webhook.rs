//! Alertmanager's webhook payload (version 4), and which of its alerts ask the agent to
//! consider a failover.
//!
//! [`parse`] reads the body Alertmanager POSTs to `/webhook/alertmanager`. It walks the
//! JSON itself instead of deriving `Deserialize`, so that a bad payload is refused with
//! the place and the problem (``alerts[2].status: unknown variant `firin`, expected
//! firing or resolved``), which is what the 400 answer and the log line show. Fields the agent
//! does not know are ignored: Alertmanager may add some.
//!
//! [`candidates`] is pure: it picks the alerts that carry the failover label and says
//! what each one is about (one instance, or every instance active in a datacenter), and
//! why the others were left out.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::rfc3339;

/// The only payload version the agent reads (Alertmanager 0.x has sent "4" since 2016).
pub const VERSION: &str = "4";

/// One webhook delivery: a group of alerts that share `groupLabels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    /// Identifies the group across deliveries (route matchers and group labels).
    pub group_key: String,
    /// How many alerts Alertmanager left out because of the receiver's `max_alerts`.
    pub truncated_alerts: u64,
    /// `firing` when at least one alert of the group fires.
    pub status: AlertStatus,
    pub receiver: String,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(with = "rfc3339::required")]
    pub starts_at: SystemTime,
    /// `None` for Go's zero time ("0001-01-01T00:00:00Z"), which Alertmanager sends for
    /// an alert that fires with no end known.
    #[serde(with = "rfc3339::optional")]
    pub ends_at: Option<SystemTime>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's hash of the labels: the same alert has the same fingerprint in
    /// every delivery.
    pub fingerprint: String,
}

impl WebhookAlert {
    /// The `alertname` label, or "" when it has none.
    pub fn alertname(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload the agent refuses: where (a path such as `alerts[2].status`, empty for
/// the whole body) and what is wrong. Its `Display` is meant for the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct PayloadError {
    pub path: String,
    pub problem: String,
}

impl PayloadError {
    fn new(path: &str, problem: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Reads a webhook body. Unknown fields are ignored; `null` counts as absent. Required:
/// `version` (must be "4"), `status`, `alerts`, and in each alert `status`, `labels` and
/// `startsAt`; every other field defaults to empty.
pub fn parse(body: &[u8]) -> Result<WebhookPayload, PayloadError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| PayloadError::new("", format!("not valid JSON: {e}")))?;
    from_value(&value)
}

/// Reads a payload already parsed as JSON (see [`parse`]).
pub fn from_value(value: &Value) -> Result<WebhookPayload, PayloadError> {
    let top = Obj::root(value)?;
    let version = top.string("version", Need::Required)?;
    if version != VERSION {
        return Err(PayloadError::new(
            "version",
            format!(
                "unsupported webhook payload version {version:?}; the agent reads version \
                 {VERSION:?} (Alertmanager 0.x)"
            ),
        ));
    }
    let alerts = match top.get("alerts") {
        None => return Err(PayloadError::new("alerts", MISSING)),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| alert(item, &format!("alerts[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(PayloadError::new(
                "alerts",
                format!("expected an array, found {}", kind(other)),
            ));
        }
    };
    Ok(WebhookPayload {
        version,
        group_key: top.string("groupKey", Need::Optional)?,
        truncated_alerts: top.count("truncatedAlerts")?,
        status: top.status("status")?,
        receiver: top.string("receiver", Need::Optional)?,
        group_labels: top.labels("groupLabels", Need::Optional)?,
        common_labels: top.labels("commonLabels", Need::Optional)?,
        common_annotations: top.labels("commonAnnotations", Need::Optional)?,
        external_url: top.string("externalURL", Need::Optional)?,
        alerts,
    })
}

impl<'de> Deserialize<'de> for WebhookPayload {
    /// Through [`from_value`], so a payload read back (from the journal, say) is checked
    /// exactly like one received.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        from_value(&value).map_err(serde::de::Error::custom)
    }
}

fn alert(value: &Value, path: &str) -> Result<WebhookAlert, PayloadError> {
    let obj = Obj::at(value, path)?;
    Ok(WebhookAlert {
        status: obj.status("status")?,
        labels: obj.labels("labels", Need::Required)?,
        annotations: obj.labels("annotations", Need::Optional)?,
        starts_at: obj
            .time("startsAt")?
            .ok_or_else(|| PayloadError::new(&obj.path("startsAt"), MISSING))?,
        ends_at: obj.time("endsAt")?,
        generator_url: obj.string("generatorURL", Need::Optional)?,
        fingerprint: obj.string("fingerprint", Need::Optional)?,
    })
}

const MISSING: &str = "required field is missing";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}

/// A JSON object and where it sits in the payload.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    at: &'a str,
}

impl<'a> Obj<'a> {
    fn root(value: &'a Value) -> Result<Self, PayloadError> {
        match value {
            Value::Object(map) => Ok(Obj { map, at: "" }),
            other => Err(PayloadError::new(
                "",
                format!(
                    "expected a JSON object (Alertmanager's webhook payload), found {}",
                    kind(other)
                ),
            )),
        }
    }

    fn at(value: &'a Value, at: &'a str) -> Result<Self, PayloadError> {
        match value {
            Value::Object(map) => Ok(Obj { map, at }),
            other => Err(PayloadError::new(
                at,
                format!("expected an object, found {}", kind(other)),
            )),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    /// The value under `key`; `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str, need: Need) -> Result<String, PayloadError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(PayloadError::new(
                &self.path(key),
                format!("expected a string, found {}", kind(other)),
            )),
            None if need == Need::Required => Err(PayloadError::new(&self.path(key), MISSING)),
            None => Ok(String::new()),
        }
    }

    fn count(&self, key: &str) -> Result<u64, PayloadError> {
        match self.get(key) {
            None => Ok(0),
            Some(v) => v.as_u64().ok_or_else(|| {
                PayloadError::new(
                    &self.path(key),
                    format!("expected a whole number of 0 or more, found {}", kind(v)),
                )
            }),
        }
    }

    fn status(&self, key: &str) -> Result<AlertStatus, PayloadError> {
        match self.string(key, Need::Required)?.as_str() {
            "firing" => Ok(AlertStatus::Firing),
            "resolved" => Ok(AlertStatus::Resolved),
            other => Err(PayloadError::new(
                &self.path(key),
                format!("unknown variant `{other}`, expected firing or resolved"),
            )),
        }
    }

    /// Labels or annotations: an object whose values are all strings.
    fn labels(&self, key: &str, need: Need) -> Result<BTreeMap<String, String>, PayloadError> {
        let map = match self.get(key) {
            None if need == Need::Required => {
                return Err(PayloadError::new(&self.path(key), MISSING));
            }
            None => return Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(PayloadError::new(
                    &self.path(key),
                    format!("expected an object of strings, found {}", kind(other)),
                ));
            }
        };
        map.iter()
            .map(|(name, value)| match value {
                Value::String(s) => Ok((name.clone(), s.clone())),
                other => Err(PayloadError::new(
                    &format!("{}.{name}", self.path(key)),
                    format!("expected a string, found {}", kind(other)),
                )),
            })
            .collect()
    }

    /// An RFC 3339 time; absent, `null` and Go's zero time are `None`.
    fn time(&self, key: &str) -> Result<Option<SystemTime>, PayloadError> {
        match self.string(key, Need::Optional)?.as_str() {
            "" => Ok(None),
            text => rfc3339::parse(text).map_err(|e| PayloadError::new(&self.path(key), e)),
        }
    }
}

/// "a string", "an array", ... for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What one alert of a delivery asks the agent to look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One instance (`redis_instance` label).
    Instance(String),
    /// Every instance whose active datacenter this is (`datacenter` label, no
    /// `redis_instance`).
    Datacenter(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Instance(uid) => write!(f, "instance {uid}"),
            Target::Datacenter(dc) => write!(f, "datacenter {dc}"),
        }
    }
}

/// An alert that carries the failover label and names what it is about. A firing one
/// starts (or joins) an evaluation; a resolved one never actuates, it closes the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub target: Target,
    /// The `datacenter` label. For an instance alert it is the datacenter of the endpoint
    /// that failed, so the engine can tell an alert about the datacenter DNS points to from
    /// a late one about a datacenter it has already left.
    pub datacenter: Option<String>,
    pub alertname: String,
    pub fingerprint: String,
    pub status: AlertStatus,
    #[serde(with = "rfc3339::required")]
    pub starts_at: SystemTime,
    #[serde(with = "rfc3339::optional")]
    pub ends_at: Option<SystemTime>,
}

/// Why an alert of a delivery starts nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreReason {
    /// It does not carry `<label>="true"`.
    NotACandidate,
    /// It carries the label but has neither a `redis_instance` nor a `datacenter` label.
    NoTarget,
}

impl IgnoreReason {
    /// Short and bounded: usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::NotACandidate => "not_a_candidate",
            IgnoreReason::NoTarget => "no_target",
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgnoreReason::NotACandidate => "not a failover candidate",
            IgnoreReason::NoTarget => {
                "a failover candidate that names neither a redis_instance nor a datacenter"
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ignored {
    pub alertname: String,
    pub fingerprint: String,
    pub status: AlertStatus,
    pub reason: IgnoreReason,
}

/// The alerts of one delivery, sorted into those that concern the agent and the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    pub candidates: Vec<Candidate>,
    pub ignored: Vec<Ignored>,
    /// Label values cut to `max_label_bytes`.
    pub labels_cut: usize,
}

/// Sorts a delivery's alerts (in payload order), with label values kept to the default
/// `limits.max_label_bytes`; see [`candidates_within`].
pub fn candidates(payload: &WebhookPayload, label: &str) -> Extraction {
    candidates_within(
        payload,
        label,
        crate::config_kit::limits::default_max_label_bytes(),
    )
}

/// Sorts a delivery's alerts (in payload order). An alert is a candidate when it carries
/// `<label>="true"` (exactly) and a non-empty `redis_instance` (→ [`Target::Instance`]) or,
/// without one, a non-empty `datacenter` (→ [`Target::Datacenter`]). Firing and resolved
/// candidates are both returned; the status says which.
///
/// Every value taken from the payload (instance, datacenter, alert name, fingerprint) is
/// at most `max_label_bytes` long: a longer one is cut by [`bounded_label`]. What comes
/// out of a delivery is small whatever came in.
pub fn candidates_within(
    payload: &WebhookPayload,
    label: &str,
    max_label_bytes: usize,
) -> Extraction {
    let labels_cut = std::cell::Cell::new(0);
    let cut = |v: &str| {
        if v.len() > max_label_bytes {
            labels_cut.set(labels_cut.get() + 1);
        }
        bounded_label(v, max_label_bytes)
    };
    let mut out = Extraction::default();
    for alert in &payload.alerts {
        let get = |name: &str| {
            alert
                .labels
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| cut(v))
        };
        let datacenter = get("datacenter");
        let target = if alert.labels.get(label).map(String::as_str) != Some("true") {
            Err(IgnoreReason::NotACandidate)
        } else if let Some(uid) = get("redis_instance") {
            Ok(Target::Instance(uid))
        } else if let Some(dc) = &datacenter {
            Ok(Target::Datacenter(dc.clone()))
        } else {
            Err(IgnoreReason::NoTarget)
        };
        match target {
            Ok(target) => out.candidates.push(Candidate {
                target,
                datacenter,
                alertname: cut(alert.alertname()),
                fingerprint: cut(&alert.fingerprint),
                status: alert.status,
                starts_at: alert.starts_at,
                ends_at: alert.ends_at,
            }),
            Err(reason) => out.ignored.push(Ignored {
                alertname: cut(alert.alertname()),
                fingerprint: cut(&alert.fingerprint),
                status: alert.status,
                reason,
            }),
        }
    }
    out.labels_cut = labels_cut.get();
    out
}

/// Ends a label value that was cut.
pub const CUT_MARKER: &str = "…";

/// `value` when it is at most `max_bytes` long; otherwise its longest prefix that ends on
/// a character boundary and leaves room for [`CUT_MARKER`], then the marker. The result
/// is never longer than `max_bytes`.
pub fn bounded_label(value: &str, max_bytes: usize) -> String {
    if value.len() <= max_bytes {
        return value.to_owned();
    }
    let (room, marker) = match max_bytes.checked_sub(CUT_MARKER.len()) {
        Some(room) => (room, CUT_MARKER),
        None => (max_bytes, ""),
    };
    let mut end = room;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &value[..end])
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
