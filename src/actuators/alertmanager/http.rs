//! [`AlertmanagerNotifier`]: the agent's alerts to Alertmanager's `POST /api/v2/alerts`,
//! over reqwest, to each configured Alertmanager at once, with a timeout per call and
//! retries with backoff for what may pass (no connection, timeout, 5xx, 429).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use super::{DEFAULT_RUNBOOK_URL_BASE, annotations, label_set};
use crate::decision::ports::error_chain;
use crate::decision::ports::{AdapterErrorKind, AgentAlert, Notifier, NotifyError, NotifyReport};
use crate::model::Secret;
use crate::model::rfc3339;

/// Credentials for Alertmanager (or the proxy in front of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// What [`AlertmanagerNotifier::new`] needs; the configuration fills it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierSettings {
    /// Base URLs, such as `http://alertmanager:9093` (a path prefix is kept; a URL that
    /// already ends in `/api/v2/alerts` is used as it is). Each gets every alert.
    pub urls: Vec<String>,
    /// Per HTTP call, connection included. Default 5 s.
    pub timeout: Duration,
    /// Calls per URL, the first included. Default 3.
    pub attempts: u32,
    /// Wait before the second call; doubled for each further one, at most 5 s. Default 200 ms.
    pub backoff: Duration,
    /// How long a one-shot notice fires before it resolves itself. Default 1 h.
    pub resolve_after: Duration,
    pub auth: Option<Auth>,
    /// `generatorURL` of every alert: where the agent can be reached, such as
    /// `http://agent:8080/api/status` (the instance uid is appended). Optional.
    pub generator_url: Option<String>,
    /// Where the runbook pages are, ending in `/`: every alert's `runbook_url` is
    /// `<base>agent-failover-notices.md`. Default [`DEFAULT_RUNBOOK_URL_BASE`].
    pub runbook_url_base: String,
}

impl NotifierSettings {
    pub const fn default_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub const fn default_attempts() -> u32 {
        3
    }
    pub const fn default_backoff() -> Duration {
        Duration::from_millis(200)
    }
    pub const fn default_resolve_after() -> Duration {
        Duration::from_secs(3600)
    }

    /// The defaults, with these URLs.
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            timeout: Self::default_timeout(),
            attempts: Self::default_attempts(),
            backoff: Self::default_backoff(),
            resolve_after: Self::default_resolve_after(),
            auth: None,
            generator_url: None,
            runbook_url_base: DEFAULT_RUNBOOK_URL_BASE.to_owned(),
        }
    }
}

/// Longest wait between two calls to the same Alertmanager.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How much of an error answer's body goes into the message.
const BODY_EXCERPT: usize = 300;

/// Posts to one or more Alertmanagers (see the module documentation).
#[derive(Clone)]
pub struct AlertmanagerNotifier {
    client: reqwest::Client,
    /// (endpoint `.../api/v2/alerts`, the URL as shown in messages: no credentials).
    targets: Vec<(Url, String)>,
    settings: NotifierSettings,
    generator_base: Option<Url>,
}

impl fmt::Debug for AlertmanagerNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertmanagerNotifier")
            .field(
                "urls",
                &self.targets.iter().map(|(_, s)| s).collect::<Vec<_>>(),
            )
            .field("timeout", &self.settings.timeout)
            .field("attempts", &self.settings.attempts)
            .field("auth", &self.settings.auth)
            .finish()
    }
}

impl AlertmanagerNotifier {
    /// Checks the settings (the message names the setting) and builds the HTTP client.
    /// Needs a rustls crypto provider installed as the process default (main does it).
    pub fn new(settings: NotifierSettings) -> Result<Self, NotifyError> {
        let invalid = |m: String| NotifyError::new(AdapterErrorKind::Invalid, m);
        if settings.urls.is_empty() {
            return Err(invalid(
                "alertmanager urls: none given; name at least one Alertmanager, such as \
                 http://alertmanager:9093"
                    .into(),
            ));
        }
        if settings.attempts == 0 {
            return Err(invalid(
                "alertmanager attempts: 0 is not allowed, use 1 or more".into(),
            ));
        }
        if settings.timeout.is_zero() {
            return Err(invalid("alertmanager timeout: 0 s is not allowed".into()));
        }
        let mut targets = Vec::new();
        for raw in &settings.urls {
            let endpoint = endpoint(raw).map_err(invalid)?;
            targets.push((endpoint, display_url(raw)));
        }
        let generator_base = match &settings.generator_url {
            None => None,
            Some(raw) => Some(Url::parse(raw).map_err(|e| {
                invalid(format!(
                    "alertmanager generator_url: {} is not a URL: {e}",
                    display_url(raw)
                ))
            })?),
        };
        let client = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("redis-failover-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("alertmanager: cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            targets,
            settings,
            generator_base,
        })
    }

    /// The JSON body of `POST /api/v2/alerts` for `alerts`, sent at `now`. Pure.
    pub fn body(&self, alerts: &[AgentAlert], now: SystemTime) -> Value {
        Value::Array(alerts.iter().map(|a| self.postable(a, now)).collect())
    }

    fn postable(&self, alert: &AgentAlert, now: SystemTime) -> Value {
        let mut out = json!({
            "labels": label_set(alert),
            "annotations": annotations(alert, &self.settings.runbook_url_base),
            "startsAt": rfc3339::format(alert.starts_at),
        });
        let ends_at = match alert.ends_at {
            Some(t) => Some(t),
            None if alert.name.is_one_shot() => {
                Some(alert.starts_at.max(now) + self.settings.resolve_after)
            }
            None => None,
        };
        if let Some(t) = ends_at {
            out["endsAt"] = Value::String(rfc3339::format(t));
        }
        if let Some(base) = &self.generator_base {
            let mut url = base.clone();
            if let Ok(mut segments) = url.path_segments_mut() {
                segments.pop_if_empty().push(&alert.redis_instance);
            }
            out["generatorURL"] = Value::String(url.to_string());
        }
        out
    }

    /// One Alertmanager, with retries.
    async fn send(&self, endpoint: &Url, shown: &str, body: &[u8]) -> Result<(), NotifyError> {
        let mut wait = self.settings.backoff;
        let mut attempt = 1;
        loop {
            match self.post_once(endpoint, shown, body).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind.is_retryable() && attempt < self.settings.attempts => {
                    tracing::debug!(alertmanager = %shown, attempt, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err(e) if attempt > 1 => {
                    return Err(NotifyError::new(
                        e.kind,
                        format!("{} (after {attempt} attempts)", e.message),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn post_once(&self, endpoint: &Url, shown: &str, body: &[u8]) -> Result<(), NotifyError> {
        let mut request = self
            .client
            .post(endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        match &self.settings.auth {
            Some(Auth::Basic { username, password }) => {
                request = request.basic_auth(username, Some(password.expose()));
            }
            Some(Auth::Bearer(token)) => request = request.bearer_auth(token.expose()),
            None => {}
        }
        // The call has its own timeout (client settings); this bounds the body read too.
        let call = async {
            let response = request.send().await?;
            let status = response.status();
            let text = if status.is_success() {
                String::new()
            } else {
                response.text().await.unwrap_or_default()
            };
            Ok::<_, reqwest::Error>((status, text))
        };
        let outcome = tokio::time::timeout(self.settings.timeout, call).await;
        let redact = |text: &str| match &self.settings.auth {
            Some(Auth::Basic { password, .. }) => password.redact(text),
            Some(Auth::Bearer(token)) => token.redact(text),
            None => text.to_owned(),
        };
        match outcome {
            Err(_) => Err(NotifyError::new(
                AdapterErrorKind::Timeout,
                format!(
                    "Alertmanager {shown}: no answer within {:?}",
                    self.settings.timeout
                ),
            )),
            Ok(Err(e)) => {
                let kind = if e.is_timeout() {
                    AdapterErrorKind::Timeout
                } else {
                    AdapterErrorKind::Unavailable
                };
                let what = if e.is_connect() {
                    "cannot connect"
                } else if e.is_timeout() {
                    "no answer in time"
                } else {
                    "request failed"
                };
                Err(NotifyError::new(
                    kind,
                    redact(&format!(
                        "Alertmanager {shown}: {what}: {}",
                        error_chain(&e.without_url())
                    )),
                ))
            }
            Ok(Ok((status, _))) if status.is_success() => Ok(()),
            Ok(Ok((status, text))) => {
                let kind = match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        AdapterErrorKind::Unauthorized
                    }
                    StatusCode::NOT_FOUND => AdapterErrorKind::NotFound,
                    StatusCode::TOO_MANY_REQUESTS => AdapterErrorKind::Throttled,
                    s if s.is_server_error() => AdapterErrorKind::Unavailable,
                    _ => AdapterErrorKind::Invalid,
                };
                Err(NotifyError::new(
                    kind,
                    redact(&format!(
                        "Alertmanager {shown} answered {status}: {}",
                        excerpt(&text)
                    )),
                ))
            }
        }
    }
}

#[async_trait]
impl Notifier for AlertmanagerNotifier {
    async fn notify(&self, alerts: &[AgentAlert]) -> Result<NotifyReport, NotifyError> {
        if alerts.is_empty() {
            return Ok(NotifyReport::default());
        }
        let body: Arc<[u8]> = serde_json::to_vec(&self.body(alerts, SystemTime::now()))
            .map_err(|e| NotifyError::new(AdapterErrorKind::Invalid, e.to_string()))?
            .into();
        // Every Alertmanager at once: one that hangs must not delay the others.
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (endpoint, shown)) in self.targets.iter().enumerate() {
            let (this, endpoint, shown, body) = (
                self.clone(),
                endpoint.clone(),
                shown.clone(),
                Arc::clone(&body),
            );
            tasks.spawn(async move { (index, this.send(&endpoint, &shown, &body).await) });
        }
        let mut results: Vec<Option<Result<(), NotifyError>>> = vec![None; self.targets.len()];
        while let Some(joined) = tasks.join_next().await {
            // A task that panicked leaves its slot empty: reported as failed below.
            if let Ok((index, result)) = joined {
                results[index] = Some(result);
            }
        }
        let mut report = NotifyReport::default();
        for ((_, shown), result) in self.targets.iter().zip(results) {
            match result {
                Some(Ok(())) => report.delivered.push(shown.clone()),
                Some(Err(e)) => report.failed.push((shown.clone(), e)),
                None => report.failed.push((
                    shown.clone(),
                    NotifyError::new(
                        AdapterErrorKind::Unavailable,
                        format!("Alertmanager {shown}: the notification task failed"),
                    ),
                )),
            }
        }
        if report.delivered.is_empty() {
            let kinds: Vec<AdapterErrorKind> = report.failed.iter().map(|(_, e)| e.kind).collect();
            let kind = if kinds.windows(2).all(|w| w[0] == w[1]) {
                kinds
                    .first()
                    .copied()
                    .unwrap_or(AdapterErrorKind::Unavailable)
            } else {
                AdapterErrorKind::Unavailable
            };
            let messages: Vec<String> = report.failed.iter().map(|(_, e)| e.to_string()).collect();
            return Err(NotifyError::new(kind, messages.join("; ")));
        }
        // Delivered, but not everywhere: said here, since the caller sees success. A total
        // failure is the caller's to log.
        for (shown, e) in &report.failed {
            tracing::warn!(alertmanager = %shown, kind = ?e.kind, error = %e,
                "one Alertmanager did not take the agent's alerts; the others did");
        }
        let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        tracing::debug!(alerts = ?names, delivered = ?report.delivered, "agent alerts sent");
        Ok(report)
    }
}

/// `{base}/api/v2/alerts`, checked.
fn endpoint(raw: &str) -> Result<Url, String> {
    let shown = display_url(raw);
    let mut url = Url::parse(raw.trim())
        .map_err(|e| format!("alertmanager urls: {shown} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "alertmanager urls: {shown} is not an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "alertmanager urls: {shown}: give the base URL, without ?query or #fragment"
        ));
    }
    if !url.path().trim_end_matches('/').ends_with("/api/v2/alerts") {
        let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok(url)
}

/// A URL for messages: without user or password.
fn display_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) if url.has_host() => {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            url.to_string().trim_end_matches('/').to_owned()
        }
        // Unparseable, or no host ("user:pass@host" reads as scheme "user"): show the
        // part after any "user:pass@".
        _ => raw
            .rsplit_once('@')
            .map_or(raw, |(_, host)| host)
            .to_owned(),
    }
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actuators::alertmanager::{DEFAULT_RUNBOOK_URL_BASE, RUNBOOK_PAGE};
    use crate::decision::ports::AgentAlertName;
    use crate::decision::ports::notifier::tests::executed;
    use std::time::UNIX_EPOCH;

    fn notifier(settings: NotifierSettings) -> AlertmanagerNotifier {
        let _ = rustls::crypto::ring::default_provider().install_default();
        AlertmanagerNotifier::new(settings).unwrap()
    }

    #[test]
    fn the_v2_body_ends_one_shot_notices_and_leaves_standing_ones_open() {
        let n = notifier(NotifierSettings {
            resolve_after: Duration::from_secs(600),
            generator_url: Some("http://agent:8080/api/status/".into()),
            ..NotifierSettings::new(["http://am:9093"])
        });
        let now = UNIX_EPOCH + Duration::from_secs(1_735_787_100);
        let failback = AgentAlert::new(
            AgentAlertName::RedisFailbackRecommended,
            now,
            "redis-app-01",
            Some("east"),
            "s",
            "d",
        );
        let mut resolved = failback.clone();
        resolved.ends_at = Some(now);
        let body = n.body(&[executed(), failback, resolved], now);
        let one = &body[0];
        assert_eq!(one["labels"]["alertname"], "RedisFailoverExecuted");
        assert_eq!(
            one["annotations"]["runbook_url"],
            format!("{DEFAULT_RUNBOOK_URL_BASE}{RUNBOOK_PAGE}")
        );
        assert_eq!(one["startsAt"], "2025-01-02T03:04:05Z");
        // Sent 55 s after it started: it ends resolve_after after it was sent.
        assert_eq!(one["endsAt"], "2025-01-02T03:15:00Z");
        assert_eq!(
            one["generatorURL"],
            "http://agent:8080/api/status/redis-app-01"
        );
        assert!(body[1].get("endsAt").is_none(), "{}", body[1]);
        assert_eq!(body[2]["endsAt"], "2025-01-02T03:05:00Z");
        let keys: Vec<&String> = one.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "annotations",
                "endsAt",
                "generatorURL",
                "labels",
                "startsAt"
            ]
        );
        let plain = notifier(NotifierSettings::new(["http://am:9093"]));
        assert!(
            plain.body(&[executed()], now)[0]
                .get("generatorURL")
                .is_none()
        );
    }

    #[test]
    fn urls_get_the_api_path_once_and_lose_their_credentials_in_messages() {
        assert_eq!(
            endpoint("http://am:9093").unwrap().as_str(),
            "http://am:9093/api/v2/alerts"
        );
        assert_eq!(
            endpoint("https://proxy/alertmanager/").unwrap().as_str(),
            "https://proxy/alertmanager/api/v2/alerts"
        );
        assert_eq!(
            endpoint("http://am:9093/api/v2/alerts").unwrap().as_str(),
            "http://am:9093/api/v2/alerts"
        );
        assert!(
            endpoint("am:9093")
                .unwrap_err()
                .contains("http:// or https://")
        );
        assert!(
            endpoint("http://am:9093/?x=1")
                .unwrap_err()
                .contains("without ?query")
        );
        assert!(endpoint("not a url").unwrap_err().contains("is not a URL"));
        assert_eq!(display_url("http://u:hunter2@am:9093/"), "http://am:9093");
        assert_eq!(display_url("u:hunter2@am :9093"), "am :9093");
    }

    #[test]
    fn settings_are_checked_with_messages_that_name_them() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let e = AlertmanagerNotifier::new(NotifierSettings::default()).unwrap_err();
        assert_eq!(e.kind, AdapterErrorKind::Invalid);
        assert!(
            e.message.starts_with("alertmanager urls: none given"),
            "{e}"
        );
        let e = AlertmanagerNotifier::new(NotifierSettings {
            attempts: 0,
            ..NotifierSettings::new(["http://am:9093"])
        })
        .unwrap_err();
        assert!(e.message.starts_with("alertmanager attempts"), "{e}");
        let e = AlertmanagerNotifier::new(NotifierSettings::new(["http://u:hunter2@am:9093 x"]))
            .unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e}");
        let e = AlertmanagerNotifier::new(NotifierSettings {
            generator_url: Some("agent".into()),
            ..NotifierSettings::new(["http://am:9093"])
        })
        .unwrap_err();
        assert!(e.message.starts_with("alertmanager generator_url"), "{e}");
    }

    #[test]
    fn debug_never_shows_credentials() {
        let n = notifier(NotifierSettings {
            auth: Some(Auth::Basic {
                username: "am".into(),
                password: Secret::new("hunter2"),
            }),
            ..NotifierSettings::new(["http://u:urlpass@am:9093"])
        });
        let text = format!("{n:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("urlpass"),
            "{text}"
        );
        assert!(text.contains("http://am:9093"), "{text}");
    }

    #[tokio::test]
    async fn nothing_to_send_sends_nothing() {
        // Port 9 (discard) is never contacted: an empty batch returns at once.
        let n = notifier(NotifierSettings::new(["http://127.0.0.1:9"]));
        assert_eq!(n.notify(&[]).await.unwrap(), NotifyReport::default());
    }
}
