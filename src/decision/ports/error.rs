//! The kind every adapter error carries, and how an adapter turns a library's error
//! into one line.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of failure an adapter met (a DNS provider, Alertmanager, Elasticsearch):
/// it decides whether a call is tried again, and names the failure in logs and reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterErrorKind {
    /// The zone, record, index or endpoint does not exist (404).
    NotFound,
    /// Credentials missing, wrong or not allowed to do this (401, 403).
    Unauthorized,
    /// The service asks us to slow down (429).
    Throttled,
    /// No answer in time.
    Timeout,
    /// Could not reach the service, or it failed (5xx, a broken or partial answer).
    Unavailable,
    /// The request, the answer or the configuration is wrong; trying again won't help.
    Invalid,
    /// Another change is still being applied (Route53's PriorRequestNotComplete).
    Conflict,
    /// A conditional change was refused because the target no longer holds the value
    /// the change was based on: someone else changed it since it was read. Never
    /// retried as is: sending the same change again would be refused again, and
    /// re-reading to overwrite would undo the other writer's change unseen.
    Stale,
}

impl AdapterErrorKind {
    /// Throttled, Conflict, Unavailable and Timeout may succeed a moment later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Conflict | Self::Unavailable | Self::Timeout
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Invalid => "invalid",
            Self::Conflict => "conflict",
            Self::Stale => "stale",
        }
    }
}

impl fmt::Display for AdapterErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error and its causes on one line, `a: b: c`, each said once: HTTP clients hide
/// the useful part ("Connection refused") in a cause, and their Debug dumps are noise.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn a_chain_says_each_cause_once() {
        let e = Layer(
            "client error (Connect)",
            Some(Box::new(Layer(
                "tcp connect error",
                Some(Box::new(Layer("Connection refused", None))),
            ))),
        );
        assert_eq!(
            error_chain(&e),
            "client error (Connect): tcp connect error: Connection refused"
        );
        let repeated = Layer(
            "request failed: Connection refused",
            Some(Box::new(Layer("Connection refused", None))),
        );
        assert_eq!(error_chain(&repeated), "request failed: Connection refused");
    }

    #[test]
    fn which_kinds_are_retried() {
        use AdapterErrorKind::*;
        let retried: Vec<_> = [
            NotFound,
            Unauthorized,
            Throttled,
            Timeout,
            Unavailable,
            Invalid,
            Conflict,
            Stale,
        ]
        .into_iter()
        .filter(|k| k.is_retryable())
        .map(AdapterErrorKind::as_str)
        .collect();
        assert_eq!(retried, ["throttled", "timeout", "unavailable", "conflict"]);
    }
}
