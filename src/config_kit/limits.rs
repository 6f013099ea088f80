//! The `limits` section: every bound on what comes in from outside (Redis replies, the
//! webhook, HTTP clients), so that hostile or careless input cannot exhaust the agent.
//! Each default is large enough for real deployments; each excess is counted on
//! `/metrics` (see docs/hardening.md).

use std::time::Duration;

pub const fn default_max_reply_bytes() -> u64 {
    8 * 1024 * 1024
}
pub const fn default_max_commands_per_endpoint() -> usize {
    500
}
pub const fn default_max_error_kinds_per_endpoint() -> usize {
    128
}
pub const fn default_max_databases_per_endpoint() -> usize {
    256
}
pub const fn default_max_alerts_per_delivery() -> usize {
    1000
}
pub const fn default_max_incidents_per_delivery() -> usize {
    256
}
pub const fn default_max_label_bytes() -> usize {
    256
}
pub const fn default_max_history() -> usize {
    200
}
pub const fn default_max_body_bytes() -> usize {
    1024 * 1024
}
pub const fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
pub const fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
pub const fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
pub const fn default_max_connections() -> usize {
    256
}
pub const fn default_reserved_connections() -> usize {
    16
}
pub const fn default_max_concurrent_requests() -> usize {
    64
}

/// Bounds on input, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `limits.max_reply_bytes`: the largest reply read from a Redis endpoint, in bytes.
    /// A larger one is a protocol error of that round. Default 8 MiB (`INFO ALL` of a
    /// busy server is about 20 KB).
    pub max_reply_bytes: u64,
    /// `limits.max_commands_per_endpoint`: `cmdstat_*` (and latency percentile) rows kept
    /// per endpoint; the rest are dropped and counted. Default 500 (Redis 7 has about 240
    /// commands).
    pub max_commands_per_endpoint: usize,
    /// `limits.max_error_kinds_per_endpoint`: `errorstat_*` rows kept per endpoint.
    /// Default 128 (Redis itself stops adding error kinds at 128).
    pub max_error_kinds_per_endpoint: usize,
    /// `limits.max_databases_per_endpoint`: keyspace `dbN` rows kept per endpoint.
    /// Default 256.
    pub max_databases_per_endpoint: usize,
    /// `limits.max_alerts_per_delivery`: alerts in one webhook delivery. Default 1000.
    pub max_alerts_per_delivery: usize,
    /// `limits.max_incidents_per_delivery`: incidents one delivery may open. Default 256.
    pub max_incidents_per_delivery: usize,
    /// `limits.max_label_bytes`: the longest label value (alert name, fingerprint,
    /// instance, datacenter, reason) kept in an incident, in bytes; longer ones are cut
    /// and marked. Default 256.
    pub max_label_bytes: usize,
    /// `limits.max_history`: closed incidents kept in memory and the most one history
    /// answer returns. Default 200.
    pub max_history: usize,
    pub http: HttpLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_reply_bytes: default_max_reply_bytes(),
            max_commands_per_endpoint: default_max_commands_per_endpoint(),
            max_error_kinds_per_endpoint: default_max_error_kinds_per_endpoint(),
            max_databases_per_endpoint: default_max_databases_per_endpoint(),
            max_alerts_per_delivery: default_max_alerts_per_delivery(),
            max_incidents_per_delivery: default_max_incidents_per_delivery(),
            max_label_bytes: default_max_label_bytes(),
            max_history: default_max_history(),
            http: HttpLimits::default(),
        }
    }
}

/// Bounds of the HTTP listener (`limits.http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `limits.http.max_body_bytes`: the largest request body. Default 1 MiB.
    pub max_body_bytes: usize,
    /// `limits.http.request_timeout`: the longest a request may take, body included.
    /// Default 30 s.
    pub request_timeout: Duration,
    /// `limits.http.header_timeout`: the longest a client may take to send a request's
    /// headers. Default 10 s.
    pub header_timeout: Duration,
    /// `limits.http.idle_timeout`: a kept-alive connection with no request for this long
    /// is closed. Default 60 s.
    pub idle_timeout: Duration,
    /// `limits.http.max_connections`: open connections at once. Default 256.
    pub max_connections: usize,
    /// `limits.http.reserved_connections`: of `max_connections`, kept for `/metrics` and
    /// the webhook (the API and unknown paths cannot use them). Default 16.
    pub reserved_connections: usize,
    /// `limits.http.max_concurrent_requests`: requests served at once; more wait their
    /// turn. Default 64.
    pub max_concurrent_requests: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
            request_timeout: default_request_timeout(),
            header_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            reserved_connections: default_reserved_connections(),
            max_concurrent_requests: default_max_concurrent_requests(),
        }
    }
}
