//! What the decision engine needs: failover policy and timing, hooks, and the webhook's
//! token.

use std::collections::BTreeSet;

use crate::config::raw::{RawCommand, RawHooks, RawWebhook};
use crate::config::*;
use crate::config_kit::ctx::Ctx;
use crate::config_kit::duration::Seconds;
use crate::config_kit::raw::Raw;
use crate::config_kit::secrets;
use crate::decision::settings::DataLossSettings;
use crate::model::InstanceId;

/// The top-level keys of the failover policy, taken out of the raw configuration.
pub(super) struct RawFailover {
    pub provider: Option<Raw<String>>,
    pub auto: Option<Raw<bool>>,
    pub confidence_threshold: Option<Raw<f64>>,
    pub consecutive_threshold: Option<Raw<i64>>,
    pub ai_confidence: Option<Raw<f64>>,
    pub ai_consecutive_recommendations: Option<Raw<i64>>,
    pub confirm_interval: Option<Raw<Seconds>>,
    pub cooldown: Option<Raw<Seconds>>,
    pub failback_stable_for: Option<Raw<Seconds>>,
    pub auto_failback: Option<Raw<bool>>,
    pub label: Option<Raw<String>>,
    pub sentinel_wait: Option<Raw<Seconds>>,
    pub hooks: Option<Raw<RawHooks>>,
}

pub(super) fn failover(
    cx: &mut Ctx<'_>,
    raw: RawFailover,
    promote: BTreeSet<InstanceId>,
    data_loss: DataLossSettings,
) -> FailoverSettings {
    if let Some(p) = cx
        .value("failover_provider", raw.provider)
        .filter(|p| p != "dns")
    {
        cx.problem(
            "failover_provider",
            format!("{p:?} is not supported; the agent moves traffic with DNS, use \"dns\""),
        );
    }
    let d = FailoverSettings::default();
    let label = match cx.text("failover_label", raw.label) {
        Some(l) if is_label_name(&l) => l,
        Some(l) => {
            cx.problem(
                "failover_label",
                format!("{l:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
            );
            d.label.clone()
        }
        None => d.label.clone(),
    };
    let settings = FailoverSettings {
        auto: cx.value("auto_failover", raw.auto).unwrap_or(d.auto),
        confidence_threshold: cx.fraction(
            "failover_confidence_threshold",
            raw.confidence_threshold,
            d.confidence_threshold,
        ),
        consecutive_threshold: cx.count(
            "failover_consecutive_threshold",
            raw.consecutive_threshold,
            d.consecutive_threshold,
        ),
        ai_confidence: cx.fraction("ai_failover_confidence", raw.ai_confidence, d.ai_confidence),
        ai_consecutive_recommendations: cx.count(
            "ai_consecutive_recommendations",
            raw.ai_consecutive_recommendations,
            d.ai_consecutive_recommendations,
        ),
        confirm_interval: cx.positive("confirm_interval", raw.confirm_interval, d.confirm_interval),
        cooldown: cx.positive("failover_cooldown", raw.cooldown, d.cooldown),
        failback_stable_for: cx.positive(
            "failback_stable_for",
            raw.failback_stable_for,
            d.failback_stable_for,
        ),
        auto_failback: cx
            .value("auto_failback", raw.auto_failback)
            .unwrap_or(d.auto_failback),
        label,
        sentinel_wait: cx.positive("sentinel_failover_wait", raw.sentinel_wait, d.sentinel_wait),
        promote,
        hooks: hooks(cx, raw.hooks),
        data_loss,
    };
    if settings.auto_failback && !settings.auto {
        cx.warnings.push(
            "auto_failback: true has no effect while auto_failover is false; failbacks are \
             recommended only"
                .into(),
        );
    }
    settings
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn hooks(cx: &mut Ctx<'_>, raw: Option<Raw<RawHooks>>) -> HookSettings {
    let mut settings = HookSettings::default();
    let Some(raw) = cx.value("hooks", raw) else {
        return settings;
    };
    cx.unknown("hooks", &raw.unknown, &[RawHooks::KEYS]);
    settings.pre_failover = command(cx, "hooks.pre_failover", raw.pre_failover);
    settings.post_failover = command(cx, "hooks.post_failover", raw.post_failover);
    settings.timeout = cx.positive("hooks.timeout", raw.timeout, settings.timeout);
    settings
}

fn command(cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<RawCommand>>) -> Option<Vec<String>> {
    let args = match cx.value(key, raw)? {
        RawCommand::Program(p) => vec![p],
        RawCommand::Args(args) => args,
    };
    // Arguments are not logged, but a credential belongs in the hook's environment
    // or its own files, not in the agent's configuration.
    if args.iter().any(|a| secrets::has_url_credentials(a)) {
        cx.problem(
            key,
            "an argument is a URL with credentials (user:password@; value hidden); let \
             the hook read them from its environment or a file",
        );
        return None;
    }
    match args.first() {
        Some(program) if !program.trim().is_empty() => Some(args),
        _ => {
            cx.problem(key, "must name a program to run");
            None
        }
    }
}

pub(super) fn webhook(cx: &mut Ctx<'_>, raw: Option<Raw<RawWebhook>>) -> WebhookSettings {
    let Some(raw) = cx.value("webhook", raw) else {
        return WebhookSettings::default();
    };
    cx.unknown("webhook", &raw.unknown, &[RawWebhook::KEYS]);
    let bearer_token = cx.secret(
        "webhook",
        "bearer_token",
        raw.bearer_token,
        raw.bearer_token_file,
    );
    if let Some(t) = &bearer_token
        && t.expose().len() < 16
    {
        cx.problem(
            "webhook.bearer_token",
            "is shorter than 16 characters (value hidden); use a random token, e.g. \
                 `openssl rand -hex 32`",
        );
    }
    WebhookSettings { bearer_token }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{ConfigError, Loaded, parse};
    use crate::model::InstanceId;

    const BASE: &str = "instances:\n\
        \x20 - {uid: cache, name: cache-service, active_dc: east, promote_on_failover: true,\n\
        \x20    endpoints: {east: {host: e.example}, west: {host: w.example}}}\n\
        \x20 - {uid: sessions, active_dc: east,\n\
        \x20    endpoints: {east: {host: e2.example}, west: {host: w2.example}}}\n";

    fn load(extra: &str) -> Result<Loaded, ConfigError> {
        let env = |name: &str| (name == "HOOK_TOKEN").then(|| "a-long-enough-token-123".into());
        parse(&format!("{BASE}{extra}"), "test", Path::new("."), &env)
    }

    fn problems(extra: &str) -> Vec<String> {
        match load(extra) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn defaults_when_nothing_is_said() {
        let c = load("").unwrap().config;
        let f = &c.failover;
        assert_eq!(f.confirm_interval, Duration::from_secs(2));
        assert_eq!(f.cooldown, Duration::from_secs(1800));
        assert_eq!(f.failback_stable_for, Duration::from_secs(1800));
        assert!(!f.auto_failback);
        assert_eq!(f.label, "failover_candidate");
        assert_eq!(f.sentinel_wait, Duration::from_secs(60));
        assert_eq!(f.hooks.pre_failover, None);
        assert_eq!(f.promote.len(), 1);
        assert!(f.promote.contains(&InstanceId::new("cache")));
        assert_eq!(c.state_dir, Path::new("./state"));
        assert!(c.webhook.bearer_token.is_none());
        assert!(c.alertmanager.is_none());
    }

    #[test]
    fn every_decision_key_loads() {
        let c = load(
            "confirm_interval: 500ms\nfailover_cooldown: 10m\nfailback_stable_for: 1h\n\
             auto_failover: true\nauto_failback: true\nfailover_label: page_failover\n\
             sentinel_failover_wait: 45s\nstate_dir: /var/lib/agent\n\
             hooks: {pre_failover: [/usr/local/bin/drain, --fast], post_failover: /bin/true, timeout: 5s}\n\
             webhook: {bearer_token: '${HOOK_TOKEN}'}\n\
             alertmanager: {urls: ['http://am-1:9093/', 'https://am-2:9093'], timeout: 2s}\n\
             dns_provider: dry-run\n\
             dns_config: {zone_id: Z1, records: [{instance_name: cache-service, name: redis.example.com,\n\
             \x20 values: {west: redis-west.example.com}}]}\n",
        )
        .unwrap()
        .config;
        let f = &c.failover;
        assert_eq!(f.confirm_interval, Duration::from_millis(500));
        assert_eq!(f.cooldown, Duration::from_secs(600));
        assert!(f.auto_failback);
        assert_eq!(f.label, "page_failover");
        assert_eq!(
            f.hooks.pre_failover.as_deref(),
            Some(&["/usr/local/bin/drain".to_owned(), "--fast".to_owned()][..])
        );
        assert_eq!(
            f.hooks.post_failover.as_deref(),
            Some(&["/bin/true".to_owned()][..])
        );
        assert_eq!(f.hooks.timeout, Duration::from_secs(5));
        assert_eq!(c.state_dir, Path::new("/var/lib/agent"));
        assert_eq!(
            c.webhook
                .bearer_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            Some("a-long-enough-token-123".into())
        );
        let am = c.alertmanager.unwrap();
        assert_eq!(am.urls, ["http://am-1:9093", "https://am-2:9093"]);
        assert_eq!(am.timeout, Duration::from_secs(2));
        let dns = c.dns.unwrap();
        assert_eq!(dns.records[0].values.len(), 1);
    }

    #[test]
    fn an_endpoint_may_name_its_sentinels() {
        let text = "instances:\n\
            \x20 - {uid: app, active_dc: east, endpoints: {\n\
            \x20    east: {host: e.example, sentinel: {master: mymaster, addresses: ['s1:26379', 's2:26379']}},\n\
            \x20    west: {host: w.example, sentinel: {master: '', addresses: ['nope']}}}}\n";
        let said = match parse(text, "test", Path::new("."), &|_| None) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
            }
            other => panic!("expected problems, got {other:?}"),
        };
        assert!(
            said.iter()
                .any(|p| p
                    .contains("endpoints.west.sentinel.addresses[0]: \"nope\" is not host:port")),
            "{said:#?}"
        );
        let ok = text.replace(
            "{master: '', addresses: ['nope']}",
            "{master: m2, addresses: ['[::1]:26379']}",
        );
        let c = parse(&ok, "test", Path::new("."), &|_| None)
            .unwrap()
            .config;
        let east = &c.instances[0].endpoints[&crate::model::DatacenterId::new("east")];
        let s = east.sentinel.as_ref().unwrap();
        assert_eq!(s.master, "mymaster");
        assert_eq!(
            s.addresses,
            [("s1".to_owned(), 26379), ("s2".to_owned(), 26379)]
        );
        let west = &c.instances[0].endpoints[&crate::model::DatacenterId::new("west")];
        assert_eq!(
            west.sentinel.as_ref().unwrap().addresses,
            [("::1".to_owned(), 26379)]
        );
    }

    #[test]
    fn bad_decision_keys_are_all_named() {
        let said = problems(
            "failover_label: 'not a label'\nfailover_cooldown: 0\n\
             hooks: {pre_failover: [], timeout: 1s, post: x}\n\
             webhook: {bearer_token: short-token}\n\
             alertmanager: {urls: ['am:9093']}\n\
             dns_provider: dry-run\n\
             dns_config: {zone_id: Z1, records: [{instance_name: cache-service, name: r.example.com,\n\
             \x20 values: {north: n.example.com}}]}\n",
        );
        let has = |needle: &str| {
            assert!(
                said.iter().any(|p| p.contains(needle)),
                "no problem mentions {needle:?}: {said:#?}"
            )
        };
        has("failover_label: \"not a label\" is not a Prometheus label name");
        has("failover_cooldown: 0 s is not allowed");
        has("hooks.pre_failover: must name a program to run");
        has("hooks.post: unknown key");
        has("webhook.bearer_token: is shorter than 16 characters (value hidden)");
        has("alertmanager.urls[0]: \"am:9093\" is not an http:// or https:// URL");
        has("dns_config.records[0].values.north: the instance has no endpoint in datacenter");
        assert!(
            !said.iter().any(|p| p.contains("short-token")),
            "a secret was printed: {said:#?}"
        );
    }
}
