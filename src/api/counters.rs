//! The HTTP listener's own series on `/metrics`: open connections, and every connection
//! or request it refused or cut short, by a bounded reason.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// Why a connection was refused or closed.
pub const REFUSED_REASONS: [&str; 2] = ["max_connections", "reserved"];
pub const CLOSED_REASONS: [&str; 4] =
    ["header_timeout", "idle_timeout", "evicted", "tls_handshake"];
/// Why a request was answered with an error by the server itself (not a handler).
pub const REQUEST_ERROR_REASONS: [&str; 3] = ["timeout", "body_too_large", "panic"];

#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    open: Gauge,
    refused: Family<Labels, Counter>,
    closed: Family<Labels, Counter>,
    request_errors: Family<Labels, Counter>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        let m = HttpMetrics::default();
        registry.register(
            "redis_agent_http_connections_open",
            "HTTP connections open now",
            m.open.clone(),
        );
        registry.register(
            "redis_agent_http_connections_refused",
            "HTTP connections refused: max_connections (closed at once, the cap reached and \
             none idle to evict), reserved (a request other than /metrics or the webhook \
             while only reserved connections were left; answered 503)",
            m.refused.clone(),
        );
        registry.register(
            "redis_agent_http_connections_closed",
            "HTTP connections closed by the agent: header_timeout (a request's headers, or \
             the TLS handshake, not done in limits.http.header_timeout), idle_timeout (kept alive with no request \
             for limits.http.idle_timeout), evicted (idle, closed to make room at \
             limits.http.max_connections), tls_handshake (the TLS handshake failed: no \
             or an untrusted client certificate, a plain HTTP request, a port scanner)",
            m.closed.clone(),
        );
        registry.register(
            "redis_agent_http_request_errors",
            "HTTP requests the server answered with an error: timeout (408, \
             limits.http.request_timeout), body_too_large (413, limits.http.max_body_bytes), \
             panic (500, a bug: please report it)",
            m.request_errors.clone(),
        );
        // Every reason from the start, so `increase()` sees the first one.
        for r in REFUSED_REASONS {
            m.refused.get_or_create(&vec![("reason", r)]).inc_by(0);
        }
        for r in CLOSED_REASONS {
            m.closed.get_or_create(&vec![("reason", r)]).inc_by(0);
        }
        for r in REQUEST_ERROR_REASONS {
            m.request_errors
                .get_or_create(&vec![("reason", r)])
                .inc_by(0);
        }
        m
    }

    pub(crate) fn set_open(&self, n: usize) {
        self.open.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&vec![("reason", reason)]).inc();
    }

    pub(crate) fn closed(&self, reason: &'static str) {
        self.closed.get_or_create(&vec![("reason", reason)]).inc();
    }

    pub(crate) fn request_error(&self, reason: &'static str) {
        self.request_errors
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }
}
