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
}

/// Sorts a delivery's alerts (in payload order). An alert is a candidate when it carries
/// `<label>="true"` (exactly) and a non-empty `redis_instance` (→ [`Target::Instance`]) or,
/// without one, a non-empty `datacenter` (→ [`Target::Datacenter`]). Firing and resolved
/// candidates are both returned; the status says which.
pub fn candidates(payload: &WebhookPayload, label: &str) -> Extraction {
    let mut out = Extraction::default();
    for alert in &payload.alerts {
        let get = |name: &str| alert.labels.get(name).filter(|v| !v.is_empty()).cloned();
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
                alertname: alert.alertname().to_owned(),
                fingerprint: alert.fingerprint.clone(),
                status: alert.status,
                starts_at: alert.starts_at,
                ends_at: alert.ends_at,
            }),
            Err(reason) => out.ignored.push(Ignored {
                alertname: alert.alertname().to_owned(),
                fingerprint: alert.fingerprint.clone(),
                status: alert.status,
                reason,
            }),
        }
    }
    out
}

pub use crate::model::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // Delivered by a real Alertmanager 0.25 with the shipped configuration
    // (tests/notify.rs, CAPTURE_ALERTMANAGER_FIXTURES=1).
    const FIRING_INSTANCE: &[u8] =
        include_bytes!("../../tests/fixtures/alertmanager/firing-instance.json");
    const FIRING_DATACENTER: &[u8] =
        include_bytes!("../../tests/fixtures/alertmanager/firing-datacenter.json");
    const RESOLVED_INSTANCE: &[u8] =
        include_bytes!("../../tests/fixtures/alertmanager/resolved-instance.json");
    const MIXED_GROUP: &[u8] = include_bytes!("../../tests/fixtures/alertmanager/mixed-group.json");

    const LABEL: &str = "failover_candidate";

    fn minimal(alerts: &str) -> String {
        format!(r#"{{"version":"4","status":"firing","alerts":{alerts}}}"#)
    }

    fn alert_json(labels: &str, status: &str) -> String {
        format!(
            r#"{{"status":"{status}","labels":{labels},"startsAt":"2025-01-02T03:04:05Z","fingerprint":"f1"}}"#
        )
    }

    fn err(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn a_real_firing_instance_delivery_parses_with_every_field() {
        let p = parse(FIRING_INSTANCE).unwrap();
        assert_eq!(p.version, "4");
        assert_eq!(p.receiver, "redis-failover-agent");
        assert_eq!(p.status, AlertStatus::Firing);
        assert_eq!(p.truncated_alerts, 0);
        assert!(p.group_key.starts_with("{}/{failover_candidate=\"true\"}:"));
        assert_eq!(p.group_labels["redis_instance"], "redis-app-01");
        assert_eq!(p.common_labels["datacenter"], "east");
        assert_eq!(
            p.common_annotations["runbook"],
            "README.md#active-datacenter-down"
        );
        assert!(p.external_url.starts_with("http://"));
        let a = &p.alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.alertname(), "RedisActiveDatacenterDown");
        assert_eq!(a.ends_at, None);
        assert!(a.starts_at > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert!(a.generator_url.starts_with("http://prometheus:9090/graph"));
        assert_eq!(a.fingerprint.len(), 16);
        assert!(a.annotations["summary"].contains("redis-app-01"));
    }

    #[test]
    fn candidates_of_real_deliveries() {
        let e = candidates(&parse(FIRING_INSTANCE).unwrap(), LABEL);
        assert!(e.ignored.is_empty());
        let c = &e.candidates[0];
        assert_eq!(c.target, Target::Instance("redis-app-01".into()));
        assert_eq!(c.datacenter.as_deref(), Some("east"));
        assert_eq!(c.alertname, "RedisActiveDatacenterDown");
        assert_eq!(c.status, AlertStatus::Firing);
        assert!(!c.fingerprint.is_empty());

        let e = candidates(&parse(FIRING_DATACENTER).unwrap(), LABEL);
        assert_eq!(e.candidates[0].target, Target::Datacenter("east".into()));
        assert_eq!(e.candidates[0].alertname, "RedisDatacenterHealthCollapsed");

        let p = parse(RESOLVED_INSTANCE).unwrap();
        assert_eq!(p.status, AlertStatus::Resolved);
        let c = &candidates(&p, LABEL).candidates[0];
        assert_eq!(c.status, AlertStatus::Resolved);
        assert!(c.ends_at.unwrap() >= c.starts_at);

        let p = parse(MIXED_GROUP).unwrap();
        assert_eq!(p.status, AlertStatus::Firing);
        let e = candidates(&p, LABEL);
        let got: Vec<(&Target, AlertStatus)> =
            e.candidates.iter().map(|c| (&c.target, c.status)).collect();
        let app02 = Target::Instance("redis-app-02".into());
        assert_eq!(
            got,
            [
                (&app02, AlertStatus::Firing),
                (&app02, AlertStatus::Resolved)
            ]
        );
    }

    #[test]
    fn a_different_label_name_selects_nothing_from_the_shipped_rules() {
        let e = candidates(&parse(FIRING_INSTANCE).unwrap(), "move_dns");
        assert!(e.candidates.is_empty());
        assert_eq!(e.ignored[0].reason, IgnoreReason::NotACandidate);
        assert_eq!(e.ignored[0].alertname, "RedisActiveDatacenterDown");
    }

    #[test]
    fn candidates_need_the_label_exactly_true_and_a_target() {
        let alerts = [
            alert_json(
                r#"{"alertname":"A","failover_candidate":"true","redis_instance":"r1","datacenter":"east"}"#,
                "firing",
            ),
            alert_json(
                r#"{"alertname":"B","failover_candidate":"true","datacenter":"west"}"#,
                "firing",
            ),
            alert_json(
                r#"{"alertname":"C","failover_candidate":"false","redis_instance":"r1"}"#,
                "firing",
            ),
            alert_json(
                r#"{"alertname":"D","failover_candidate":"True","redis_instance":"r1"}"#,
                "firing",
            ),
            alert_json(r#"{"alertname":"E","redis_instance":"r1"}"#, "firing"),
            alert_json(r#"{"alertname":"F","failover_candidate":"true"}"#, "firing"),
            alert_json(
                r#"{"alertname":"G","failover_candidate":"true","redis_instance":"","datacenter":""}"#,
                "firing",
            ),
            alert_json(
                r#"{"alertname":"H","failover_candidate":"true","redis_instance":"","datacenter":"west"}"#,
                "resolved",
            ),
        ];
        let body = minimal(&format!("[{}]", alerts.join(",")));
        let e = candidates(&parse(body.as_bytes()).unwrap(), LABEL);
        let picked: Vec<(&str, &Target, AlertStatus)> = e
            .candidates
            .iter()
            .map(|c| (c.alertname.as_str(), &c.target, c.status))
            .collect();
        assert_eq!(
            picked,
            [
                ("A", &Target::Instance("r1".into()), AlertStatus::Firing),
                ("B", &Target::Datacenter("west".into()), AlertStatus::Firing),
                (
                    "H",
                    &Target::Datacenter("west".into()),
                    AlertStatus::Resolved
                ),
            ]
        );
        let ignored: Vec<(&str, IgnoreReason)> = e
            .ignored
            .iter()
            .map(|i| (i.alertname.as_str(), i.reason))
            .collect();
        assert_eq!(
            ignored,
            [
                ("C", IgnoreReason::NotACandidate),
                ("D", IgnoreReason::NotACandidate),
                ("E", IgnoreReason::NotACandidate),
                ("F", IgnoreReason::NoTarget),
                ("G", IgnoreReason::NoTarget),
            ]
        );
        assert_eq!(
            IgnoreReason::NoTarget.to_string(),
            "a failover candidate that names neither a redis_instance nor a datacenter"
        );
    }

    #[test]
    fn an_empty_alert_list_is_valid() {
        let p = parse(minimal("[]").as_bytes()).unwrap();
        assert!(p.alerts.is_empty());
        assert_eq!(candidates(&p, LABEL), Extraction::default());
    }

    #[test]
    fn unknown_fields_are_ignored_and_null_is_absent() {
        let body = r#"{"version":"4","status":"resolved","future":{"x":1},"groupLabels":null,
            "commonAnnotations":null,"truncatedAlerts":null,
            "alerts":[{"status":"resolved","labels":{"a":"b"},"annotations":null,
              "startsAt":"2025-01-02T03:04:05Z","endsAt":null,"silencedBy":[],"extra":true}]}"#;
        let p = parse(body.as_bytes()).unwrap();
        assert!(p.group_labels.is_empty() && p.common_annotations.is_empty());
        assert_eq!(p.alerts[0].ends_at, None);
        assert_eq!(p.alerts[0].fingerprint, "");
    }

    #[test]
    fn errors_say_where_and_what() {
        let three = format!(
            "[{},{},{}]",
            alert_json("{}", "firing"),
            alert_json("{}", "resolved"),
            alert_json("{}", "firin")
        );
        assert_eq!(
            err(&minimal(&three)),
            "alerts[2].status: unknown variant `firin`, expected firing or resolved"
        );
        assert_eq!(
            err(r#"{"version":"3","status":"firing","alerts":[]}"#),
            "version: unsupported webhook payload version \"3\"; the agent reads version \"4\" \
             (Alertmanager 0.x)"
        );
        assert_eq!(
            err(r#"{"status":"firing","alerts":[]}"#),
            "version: required field is missing"
        );
        assert_eq!(
            err(r#"{"version":4,"status":"firing","alerts":[]}"#),
            "version: expected a string, found a number"
        );
        assert_eq!(
            err(r#"{"version":"4","status":"firing"}"#),
            "alerts: required field is missing"
        );
        assert_eq!(
            err(r#"{"version":"4","status":"firing","alerts":{}}"#),
            "alerts: expected an array, found an object"
        );
        assert_eq!(
            err(&minimal("[3]")),
            "alerts[0]: expected an object, found a number"
        );
        assert_eq!(
            err(&minimal(&format!(
                "[{}]",
                alert_json(r#"{"severity":2}"#, "firing")
            ))),
            "alerts[0].labels.severity: expected a string, found a number"
        );
        assert_eq!(
            err(&minimal(
                r#"[{"status":"firing","startsAt":"2025-01-02T03:04:05Z"}]"#
            )),
            "alerts[0].labels: required field is missing"
        );
        assert_eq!(
            err(&minimal(r#"[{"status":"firing","labels":{}}]"#)),
            "alerts[0].startsAt: required field is missing"
        );
        assert_eq!(
            err(&minimal(
                r#"[{"status":"firing","labels":{},"startsAt":"yesterday"}]"#
            )),
            "alerts[0].startsAt: \"yesterday\" is not an RFC 3339 time such as \
             \"2025-01-02T03:04:05Z\""
        );
        assert_eq!(
            err(r#"{"version":"4","status":"firing","alerts":[],"truncatedAlerts":-1}"#),
            "truncatedAlerts: expected a whole number of 0 or more, found a number"
        );
        assert_eq!(
            err("[]"),
            "expected a JSON object (Alertmanager's webhook payload), found an array"
        );
        let syntax = err(r#"{"version": "4", "#);
        assert!(syntax.starts_with("not valid JSON: "), "{syntax}");
        assert!(syntax.contains("line 1 column"), "{syntax}");
        let e = parse(b"{}").unwrap_err();
        assert_eq!((e.path.as_str(), e.problem.as_str()), ("version", MISSING));
    }

    #[test]
    fn payloads_serialize_back_to_the_same_shape_and_deserialize_through_the_checks() {
        let p = parse(MIXED_GROUP).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains(r#""externalURL":"#) && text.contains(r#""generatorURL":"#));
        assert!(text.contains(r#""endsAt":"0001-01-01T00:00:00Z""#));
        let again: WebhookPayload = serde_json::from_str(&text).unwrap();
        assert_eq!(again, p);
        let bad = serde_json::from_str::<WebhookPayload>(r#"{"version":"5"}"#).unwrap_err();
        assert!(bad.to_string().starts_with("version: unsupported"), "{bad}");

        let e = candidates(&p, LABEL);
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Extraction>(&text).unwrap(), e);
    }

    #[test]
    fn rfc3339_reads_what_alertmanager_and_prometheus_write() {
        let t = |s: &str| rfc3339::parse(s).unwrap();
        let at = |secs: u64, nanos: u32| Some(UNIX_EPOCH + Duration::new(secs, nanos));
        assert_eq!(t("1970-01-01T00:00:00Z"), at(0, 0));
        assert_eq!(t("2025-01-02T03:04:05Z"), at(1_735_787_045, 0));
        assert_eq!(t("2025-01-02T03:04:05.5Z"), at(1_735_787_045, 500_000_000));
        assert_eq!(
            t("2025-01-02T03:04:05.123456789Z"),
            at(1_735_787_045, 123_456_789)
        );
        assert_eq!(t("2025-01-02T04:04:05+01:00"), at(1_735_787_045, 0));
        assert_eq!(
            t("2025-01-01T22:34:05.25-04:30"),
            at(1_735_787_045, 250_000_000)
        );
        assert_eq!(t("2024-02-29T00:00:00Z"), at(1_709_164_800, 0));
        assert_eq!(t("0001-01-01T00:00:00Z"), None, "Go's zero time");
        assert_eq!(
            t("1969-12-31T23:59:59.5Z"),
            Some(UNIX_EPOCH - Duration::from_millis(500))
        );
        for bad in [
            "2025-01-02",
            "2025-13-02T03:04:05Z",
            "2025-02-30T03:04:05Z",
            "2023-02-29T03:04:05Z",
            "2025-01-02T24:04:05Z",
            "2025-01-02T03:04:05",
            "2025-01-02T03:04:05.Z",
            "2025-01-02T03:04:05.1234567890Z",
            "2025-01-02T03:04:05+0100",
            "2025-01-02T03:04:05+01:60",
            "2025-01-02T03:04:05 UTC",
            "+025-01-02T03:04:05Z",
            "2025-01-02T03:04:05Zjunk",
        ] {
            assert!(rfc3339::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn rfc3339_format_round_trips() {
        let f = rfc3339::format;
        assert_eq!(f(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            f(UNIX_EPOCH + Duration::new(1_735_787_045, 500_000_000)),
            "2025-01-02T03:04:05.5Z"
        );
        assert_eq!(
            f(UNIX_EPOCH - Duration::from_millis(500)),
            "1969-12-31T23:59:59.5Z"
        );
        for secs in [
            0u64,
            951_782_400,
            1_709_164_800,
            4_102_444_800,
            253_402_300_799,
        ] {
            for nanos in [0u32, 1, 999_999_999] {
                let t = UNIX_EPOCH + Duration::new(secs, nanos);
                assert_eq!(rfc3339::parse(&f(t)).unwrap(), Some(t), "{}", f(t));
            }
        }
        let now = std::time::SystemTime::now();
        assert_eq!(rfc3339::parse(&f(now)).unwrap(), Some(now));
    }
}
