//! The `limits` section.

use crate::config::raw::{RawHttpLimits, RawLimits};
use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::limits::Limits;
use crate::config_kit::raw::Raw;

pub(super) fn limits(cx: &mut Ctx<'_>, raw: Option<Raw<RawLimits>>) -> Limits {
    let mut limits = Limits::default();
    let Some(raw) = cx.value("limits", raw) else {
        return limits;
    };
    let p = "limits";
    cx.unknown(p, &raw.unknown, &[RawLimits::KEYS]);
    let mut reply_bytes = limits.max_reply_bytes as usize;
    for (key, raw, field) in [
        ("max_reply_bytes", raw.max_reply_bytes, &mut reply_bytes),
        (
            "max_commands_per_endpoint",
            raw.max_commands_per_endpoint,
            &mut limits.max_commands_per_endpoint,
        ),
        (
            "max_error_kinds_per_endpoint",
            raw.max_error_kinds_per_endpoint,
            &mut limits.max_error_kinds_per_endpoint,
        ),
        (
            "max_databases_per_endpoint",
            raw.max_databases_per_endpoint,
            &mut limits.max_databases_per_endpoint,
        ),
        (
            "max_alerts_per_delivery",
            raw.max_alerts_per_delivery,
            &mut limits.max_alerts_per_delivery,
        ),
        (
            "max_incidents_per_delivery",
            raw.max_incidents_per_delivery,
            &mut limits.max_incidents_per_delivery,
        ),
        (
            "max_label_bytes",
            raw.max_label_bytes,
            &mut limits.max_label_bytes,
        ),
        ("max_history", raw.max_history, &mut limits.max_history),
    ] {
        *field = count(cx, &join(p, key), raw, *field);
    }
    limits.max_reply_bytes = reply_bytes as u64;
    if limits.max_reply_bytes < 64 * 1024 {
        cx.problem(
            "limits.max_reply_bytes",
            format!(
                "{} bytes is too small for INFO ALL, use 65536 or more",
                limits.max_reply_bytes
            ),
        );
    }
    if limits.max_label_bytes < 16 {
        cx.problem(
            "limits.max_label_bytes",
            format!(
                "{} is too short for a name, use 16 or more",
                limits.max_label_bytes
            ),
        );
    }

    let Some(http) = cx.value("limits.http", raw.http) else {
        return limits;
    };
    let p = "limits.http";
    cx.unknown(p, &http.unknown, &[RawHttpLimits::KEYS]);
    let h = &mut limits.http;
    for (key, raw, field) in [
        ("max_body_bytes", http.max_body_bytes, &mut h.max_body_bytes),
        (
            "max_connections",
            http.max_connections,
            &mut h.max_connections,
        ),
        (
            "reserved_connections",
            http.reserved_connections,
            &mut h.reserved_connections,
        ),
        (
            "max_concurrent_requests",
            http.max_concurrent_requests,
            &mut h.max_concurrent_requests,
        ),
    ] {
        *field = count(cx, &join(p, key), raw, *field);
    }
    h.request_timeout = cx.positive(
        &join(p, "request_timeout"),
        http.request_timeout,
        h.request_timeout,
    );
    h.header_timeout = cx.positive(
        &join(p, "header_timeout"),
        http.header_timeout,
        h.header_timeout,
    );
    h.idle_timeout = cx.positive(&join(p, "idle_timeout"), http.idle_timeout, h.idle_timeout);
    if h.reserved_connections >= h.max_connections {
        cx.problem(
            "limits.http.reserved_connections",
            format!(
                "{} leaves nothing of max_connections ({}) for the API; use fewer",
                h.reserved_connections, h.max_connections
            ),
        );
    }
    limits
}

/// A whole number of 1 or more, `default` when absent or refused.
fn count(cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<i64>>, default: usize) -> usize {
    cx.count(key, raw, u32::try_from(default).unwrap_or(u32::MAX)) as usize
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::parse;
    use crate::config_kit::limits::Limits;

    const INSTANCE: &str = "instances:\n  - { name: cache, uid: cache, active_dc: a, endpoints: { a: { host: 127.0.0.1, port: 6379 } } }\n";

    fn load(text: &str) -> Result<Limits, String> {
        let text = text.replace("instances: []\n", INSTANCE);
        parse(&text, "test", Path::new("."), &|_| None)
            .map(|l| l.config.limits)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_apply_without_the_section() {
        assert_eq!(load("instances: []\n").unwrap(), Limits::default());
    }

    #[test]
    fn every_key_is_read() {
        let limits = load(
            "instances: []\nlimits:\n  max_reply_bytes: 1048576\n  max_commands_per_endpoint: 10\n  \
             max_error_kinds_per_endpoint: 11\n  max_databases_per_endpoint: 12\n  \
             max_alerts_per_delivery: 13\n  max_incidents_per_delivery: 14\n  max_label_bytes: 64\n  \
             max_history: 15\n  http:\n    max_body_bytes: 2048\n    request_timeout: 5s\n    \
             header_timeout: 2s\n    idle_timeout: 7s\n    max_connections: 100\n    \
             reserved_connections: 8\n    max_concurrent_requests: 9\n",
        )
        .unwrap();
        assert_eq!(limits.max_reply_bytes, 1_048_576);
        assert_eq!(limits.max_commands_per_endpoint, 10);
        assert_eq!(limits.max_error_kinds_per_endpoint, 11);
        assert_eq!(limits.max_databases_per_endpoint, 12);
        assert_eq!(limits.max_alerts_per_delivery, 13);
        assert_eq!(limits.max_incidents_per_delivery, 14);
        assert_eq!(limits.max_label_bytes, 64);
        assert_eq!(limits.max_history, 15);
        assert_eq!(limits.http.max_body_bytes, 2048);
        assert_eq!(limits.http.request_timeout, Duration::from_secs(5));
        assert_eq!(limits.http.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.http.idle_timeout, Duration::from_secs(7));
        assert_eq!(limits.http.max_connections, 100);
        assert_eq!(limits.http.reserved_connections, 8);
        assert_eq!(limits.http.max_concurrent_requests, 9);
    }

    #[test]
    fn docs_hardening_documents_every_key() {
        use crate::config::raw::{RawHttpLimits, RawLimits};
        let page =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hardening.md"))
                .unwrap();
        let keys = RawLimits::KEYS
            .iter()
            .filter(|k| **k != "http")
            .map(|k| format!("`limits.{k}`"))
            .chain(
                RawHttpLimits::KEYS
                    .iter()
                    .map(|k| format!("`limits.http.{k}`")),
            );
        for key in keys {
            assert!(
                page.contains(&key),
                "docs/hardening.md does not document {key}"
            );
        }
    }

    #[test]
    fn bad_values_are_named() {
        let err = load(
            "instances: []\nlimits:\n  max_reply_bytes: 100\n  max_history: 0\n  max_alerts: 5\n  \
             http:\n    max_connections: 4\n    reserved_connections: 4\n",
        )
        .unwrap_err();
        for needle in [
            "limits.max_reply_bytes: 100 bytes is too small",
            "limits.max_history: 0 is not allowed",
            "limits.max_alerts: unknown key",
            "limits.http.reserved_connections: 4 leaves nothing",
        ] {
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }
}
