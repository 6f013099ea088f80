//! `alertmanager`: where the agent's own alerts go, read, checked, and built into the
//! notifier.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::http::{AlertmanagerNotifier, NotifierSettings};
use super::{DEFAULT_RUNBOOK_URL_BASE, RUNBOOK_PAGE};
use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::duration::Seconds;
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::decision::ports::{Notifier, NotifyError};

/// `alertmanager`'s keys (see [`KeyBlock`]).
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] =
    &[KeyBlock::new("", "RawAlertmanager", RawAlertmanager::KEYS)];

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
    /// `alertmanager.runbook_url_base`: where the runbook pages are, an absolute
    /// `http(s)` address ending in `/`. Default the rules' base,
    /// [`DEFAULT_RUNBOOK_URL_BASE`].
    pub runbook_url_base: String,
}

/// The notifier `settings` describe: every URL gets every alert.
pub fn build(settings: &NotifySettings) -> Result<Arc<dyn Notifier>, NotifyError> {
    let notifier = AlertmanagerNotifier::new(NotifierSettings {
        urls: settings.urls.clone(),
        timeout: settings.timeout,
        resolve_after: settings.resolve_after,
        runbook_url_base: settings.runbook_url_base.clone(),
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
    runbook_url_base: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawAlertmanager {
    const KEYS: &'static [&'static str] = &["urls", "timeout", "resolve_after", "runbook_url_base"];
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
        runbook_url_base: runbook_url_base(cx, raw.runbook_url_base),
    })
}

/// `alertmanager.runbook_url_base`: an absolute address, so that receivers can link it
/// as it is, ending in `/`, since the page's name is appended.
fn runbook_url_base(cx: &mut Ctx<'_>, raw: Option<Raw<String>>) -> String {
    let key = "alertmanager.runbook_url_base";
    match cx.url(key, raw) {
        Some(base) if base.ends_with('/') => base,
        Some(base) => {
            cx.problem(
                key,
                format!(
                    "{base:?} must end in \"/\": the notices link <base>{RUNBOOK_PAGE}, as \
                     the rules link <base><AlertName>.md"
                ),
            );
            DEFAULT_RUNBOOK_URL_BASE.to_owned()
        }
        None => DEFAULT_RUNBOOK_URL_BASE.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{DEFAULT_RUNBOOK_URL_BASE, NotifySettings};
    use crate::config::parse;

    /// `alertmanager: {urls: [http://am:9093], <keys>}`.
    fn load(keys: &str) -> Result<NotifySettings, String> {
        let text = format!(
            "instances: [{{uid: cache, endpoints: {{east: {{host: e.example}}}}}}]\n\
             alertmanager: {{urls: ['http://am:9093'], {keys}}}\n"
        );
        parse(&text, "test", Path::new("."), &|_| None)
            .map(|l| l.config.alertmanager.expect("alertmanager is configured"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_runbook_base_is_the_rules_unless_given_and_must_end_in_a_slash() {
        assert_eq!(load("").unwrap().runbook_url_base, DEFAULT_RUNBOOK_URL_BASE);
        let given = load("runbook_url_base: 'https://wiki.example/redis/'").unwrap();
        assert_eq!(given.runbook_url_base, "https://wiki.example/redis/");
        let said = load("runbook_url_base: 'https://wiki.example/redis'").unwrap_err();
        assert!(
            said.contains(
                "alertmanager.runbook_url_base: \"https://wiki.example/redis\" must end in \"/\""
            ),
            "{said}"
        );
        let said = load("runbook_url_base: 'docs/runbooks/'").unwrap_err();
        assert!(
            said.contains("alertmanager.runbook_url_base: \"docs/runbooks/\" is not an http"),
            "{said}"
        );
    }
}
