//! `alertmanager`: where the agent's own alerts go, read, checked, and built into the
//! notifier.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::http::{AlertmanagerNotifier, NotifierSettings};
use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::duration::Seconds;
use crate::config_kit::raw::{Raw, Unknown};
use crate::decision::ports::{Notifier, NotifyError};

/// `alertmanager.timeout`.
pub const fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
/// `alertmanager.resolve_after`.
pub const fn default_resolve_after() -> Duration {
    Duration::from_secs(60 * 60)
}

/// `alertmanager`: where the agent's own alerts go.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    /// `alertmanager.urls`: every Alertmanager of the cluster (each gets every alert).
    pub urls: Vec<String>,
    /// `alertmanager.timeout`: per request. Default 5 s.
    pub timeout: Duration,
    /// `alertmanager.resolve_after`: one-shot notices end after this. Default 1 h.
    pub resolve_after: Duration,
}

/// The notifier `settings` describe: every URL gets every alert.
pub fn build(settings: &NotifySettings) -> Result<Arc<dyn Notifier>, NotifyError> {
    let notifier = AlertmanagerNotifier::new(NotifierSettings {
        urls: settings.urls.clone(),
        timeout: settings.timeout,
        resolve_after: settings.resolve_after,
        ..NotifierSettings::default()
    })?;
    Ok(Arc::new(notifier))
}

/// The serde form of `alertmanager`, as given.
#[derive(Debug, Deserialize)]
struct RawAlertmanager {
    urls: Option<Raw<Vec<String>>>,
    timeout: Option<Raw<Seconds>>,
    resolve_after: Option<Raw<Seconds>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawAlertmanager {
    const KEYS: &'static [&'static str] = &["urls", "timeout", "resolve_after"];
}

/// `alertmanager`. `None` when it is not given (the agent then only logs its alerts)
/// or has problems.
pub(crate) fn read(cx: &mut Ctx<'_>, block: Option<Value>) -> Option<NotifySettings> {
    let raw = cx.value(
        "alertmanager",
        block.map(Raw::<RawAlertmanager>::from_value),
    )?;
    let p = "alertmanager";
    cx.unknown(p, &raw.unknown, &[RawAlertmanager::KEYS]);
    let given = cx.required(&join(p, "urls"), raw.urls).unwrap_or_default();
    if given.is_empty() {
        cx.problem(&join(p, "urls"), "must list at least one Alertmanager URL");
    }
    let mut urls = Vec::new();
    for (i, url) in given.into_iter().enumerate() {
        if let Some(url) = cx.url(&format!("{p}.urls[{i}]"), Some(Raw::Valid(url))) {
            urls.push(url.trim_end_matches('/').to_owned());
        }
    }
    Some(NotifySettings {
        urls,
        timeout: cx.positive(&join(p, "timeout"), raw.timeout, default_timeout()),
        resolve_after: cx.positive(
            &join(p, "resolve_after"),
            raw.resolve_after,
            default_resolve_after(),
        ),
    })
}
