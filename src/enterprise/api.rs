//! The HTTP client of one cluster's REST API: basic authentication, rustls (the process's
//! ring provider) with the configured authorities only, a timeout on every request, a
//! bounded body, and errors that carry a kind and never the password.

use std::time::Duration;

use reqwest::{Certificate, Client, StatusCode};
use serde_json::Value;

use super::config::ClusterApi;
use crate::model::Secret;

/// The largest body read from the API: a cluster of a few hundred shards answers
/// `/v1/shards` in well under a megabyte.
const MAX_BODY_BYTES: usize = 16 << 20;

/// Why a request failed; names the error counter's `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// 401 or 403: the user or its password is wrong, or lacks a role.
    Unauthorized,
    NotFound,
    Timeout,
    /// Connection refused or reset, or a 5xx.
    Unavailable,
    /// The certificate was refused (or the handshake failed).
    Tls,
    /// A body that is not the documented JSON, or another 4xx.
    Invalid,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        Self::Unauthorized,
        Self::NotFound,
        Self::Timeout,
        Self::Unavailable,
        Self::Tls,
        Self::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Tls => "tls",
            Self::Invalid => "invalid",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("GET {path}: {message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub path: String,
    pub message: String,
}

/// One cluster's API, ready to be read.
#[derive(Debug, Clone)]
pub struct ApiClient {
    client: Client,
    base: String,
    user: String,
    password: Secret,
}

impl ApiClient {
    /// Builds the client; the error names the problem (a bad CA file), never a secret.
    /// Needs a rustls crypto provider installed as the process default (main does it).
    pub fn new(api: &ClusterApi, timeout: Duration) -> Result<Self, String> {
        let mut builder = Client::builder();
        if let Some(pem) = &api.ca_pem {
            let roots = Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("api_ca_file: not a PEM bundle: {e}"))?;
            builder = builder.tls_certs_only(roots);
        }
        let client = builder
            .tls_danger_accept_invalid_certs(api.insecure_skip_verify)
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("redis-failover-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            base: api.url.clone(),
            user: api.user.clone(),
            password: api.password.clone(),
        })
    }

    /// `GET {api_url}{path}` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        let fail = |kind, message: String| ApiError {
            kind,
            path: path.to_owned(),
            message: self.password.redact(&message),
        };
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(self.password.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(classify(&e), chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let kind = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::Unauthorized,
                StatusCode::NOT_FOUND => ErrorKind::NotFound,
                s if s.is_server_error() => ErrorKind::Unavailable,
                _ => ErrorKind::Invalid,
            };
            return Err(fail(kind, format!("HTTP {status}")));
        }
        let body = read_bounded(response)
            .await
            .map_err(|e| fail(classify(&e), chain(&e)))?
            .ok_or_else(|| {
                fail(
                    ErrorKind::Invalid,
                    format!("body larger than {MAX_BODY_BYTES} bytes"),
                )
            })?;
        serde_json::from_slice(&body)
            .map_err(|e| fail(ErrorKind::Invalid, format!("not JSON: {e}")))
    }
}

/// The body, or `None` past [`MAX_BODY_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn classify(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    // The handshake's error reaches here wrapped in connector and I/O errors whose
    // types are the HTTP stack's own; rustls's messages name what was refused.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if err.downcast_ref::<rustls::Error>().is_some()
            || text.contains("certificate")
            || text.contains("handshake")
        {
            return ErrorKind::Tls;
        }
        source = err.source();
    }
    if e.is_decode() || e.is_body() {
        ErrorKind::Invalid
    } else {
        ErrorKind::Unavailable
    }
}

/// The error with its causes on one line (reqwest's own text stops at the first).
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}
