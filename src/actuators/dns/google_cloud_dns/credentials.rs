//! Where Cloud DNS's access tokens come from: the service account key of
//! `credentials_file` when given, else the metadata server of the VM or pod (GCE, GKE
//! with Workload Identity, Cloud Run), at `GCE_METADATA_HOST` when set as Google's
//! client libraries read it, else `metadata.google.internal`.
//!
//! tame-oauth builds the token requests and reads their answers without doing I/O:
//! with a key, the OAuth 2.0 JWT-bearer grant (RFC 7523) signed with the key and sent
//! to the key's `token_uri`; without, the metadata server's
//! `computeMetadata/v1/instance/service-accounts/default/token`. This module sends them
//! on the provider's own HTTP client, bounded by [`LOAD_TIMEOUT`], at the first request
//! that needs a token, never while the agent starts or checks its configuration. A
//! token is kept until [`REFRESH_SLACK`] before it expires.

use std::time::Duration;

use tame_oauth::gcp::metadata_server::MetadataServerProviderInner;
use tame_oauth::gcp::service_account::ServiceAccountProviderInner;
use tame_oauth::gcp::{ServiceAccountInfo, TokenOrRequest, TokenProvider};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config_kit::secrets::without_quoted;
use crate::decision::ports::{AdapterErrorKind, DnsError, error_chain};
use crate::model::Secret;

/// Read and write of resource record sets, and nothing else of Google Cloud.
pub(super) const SCOPE: &str = "https://www.googleapis.com/auth/ndev.clouddns.readwrite";
/// The longest one token request may take; then the call fails as timed out, and the
/// caller's retry budget applies as for any failed call.
pub(super) const LOAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long before its expiry a token is replaced: the metadata server hands out a new
/// one from 5 minutes before (Google's libraries refresh 4 minutes before).
const REFRESH_SLACK: Duration = Duration::from_secs(240);
/// The metadata server's host when `GCE_METADATA_HOST` does not name another.
const METADATA_HOST: &str = "metadata.google.internal";
/// The variable Google's client libraries read for another metadata server address.
pub const METADATA_HOST_VARIABLE: &str = "GCE_METADATA_HOST";
/// The largest token answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Checks a service account key as `credentials_file` gives it, without I/O: the fields
/// a token request needs, and a private key that signs. The reason never quotes the
/// file's text.
pub fn check_key(key: &Secret) -> Result<(), String> {
    Source::from_key(key).map(|_| ())
}

/// Tokens for Cloud DNS, cached.
pub(super) struct Tokens {
    source: Source,
    http: reqwest::Client,
    /// Held while a token is fetched, so that concurrent calls wait for one request.
    cached: Mutex<Option<Cached>>,
}

struct Cached {
    bearer: Secret,
    renew_at: Instant,
}

enum Source {
    /// The key's account (`client_email`) and its signer.
    Key {
        account: String,
        provider: Box<ServiceAccountProviderInner>,
    },
    /// The metadata server's `host[:port]`.
    Metadata {
        host: String,
        provider: MetadataServerProviderInner,
    },
}

impl Source {
    fn from_key(key: &Secret) -> Result<Self, String> {
        let json: serde_json::Value = serde_json::from_str(key.expose())
            .map_err(|e| format!("is not JSON ({})", unquoted(&e)))?;
        match json.get("type").and_then(|t| t.as_str()) {
            Some("service_account") | None => {}
            Some(other) => {
                return Err(format!(
                    "is a {other:?} credential, not a service account key (\"type\": \"service_account\")"
                ));
            }
        }
        let info: ServiceAccountInfo = serde_json::from_value(json)
            .map_err(|e| format!("is not a service account key ({})", unquoted(&e)))?;
        let account = info.client_email.clone();
        let provider = ServiceAccountProviderInner::new(info)
            .map_err(|e| format!("has an unreadable private_key ({e})"))?;
        // Signing a token request is done here, offline, so a key ring cannot use is
        // refused when the configuration is read, not at the first failover.
        provider
            .get_token(&[SCOPE])
            .map_err(|e| format!("has a private_key that cannot sign ({e})"))?;
        Ok(Self::Key {
            account,
            provider: Box::new(provider),
        })
    }
}

impl Tokens {
    /// From the key when given (checked as [`check_key`] does), else the metadata
    /// server. No request is sent.
    pub(super) fn new(key: Option<&Secret>, http: reqwest::Client) -> Result<Self, DnsError> {
        let source = match key {
            Some(key) => Source::from_key(key).map_err(|why| {
                DnsError::new(
                    AdapterErrorKind::Invalid,
                    format!("google_cloud_dns: dns_config.credentials_file {why}"),
                )
            })?,
            None => Source::Metadata {
                host: std::env::var(METADATA_HOST_VARIABLE)
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| METADATA_HOST.to_owned()),
                provider: MetadataServerProviderInner::new(None),
            },
        };
        Ok(Self {
            source,
            http,
            cached: Mutex::new(None),
        })
    }

    /// `service account <email>` or `metadata server <host>`: what the messages name.
    pub(super) fn source(&self) -> String {
        match &self.source {
            Source::Key { account, .. } => format!("service account {account}"),
            Source::Metadata { host, .. } => format!("metadata server {host}"),
        }
    }

    /// A token to send as `Authorization: Bearer`, fetched when none is held or the one
    /// held is near its expiry.
    pub(super) async fn bearer(&self) -> Result<Secret, DnsError> {
        let mut cached = self.cached.lock().await;
        if let Some(held) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(held.bearer.clone());
        }
        let fetched = tokio::time::timeout(LOAD_TIMEOUT, self.fetch())
            .await
            .unwrap_or_else(|_| {
                Err((
                    AdapterErrorKind::Timeout,
                    format!("no answer within {LOAD_TIMEOUT:?}"),
                ))
            });
        let fresh = fetched.map_err(|(kind, why)| {
            DnsError::new(
                kind,
                format!(
                    "google_cloud_dns: no access token from the {}: {why} (docs/dns.md#google-cloud-dns)",
                    self.source()
                ),
            )
        })?;
        let bearer = fresh.bearer.clone();
        *cached = Some(fresh);
        Ok(bearer)
    }

    /// One token request, sent and read.
    async fn fetch(&self) -> Result<Cached, (AdapterErrorKind, String)> {
        let planned = match &self.source {
            Source::Key { provider, .. } => provider.get_token(&[SCOPE]),
            Source::Metadata { provider, .. } => provider.get_token(&[SCOPE]),
        };
        let invalid = |e: tame_oauth::Error| (AdapterErrorKind::Invalid, e.to_string());
        let (request, hash) = match planned.map_err(invalid)? {
            TokenOrRequest::Request {
                request,
                scope_hash,
                ..
            } => (request, scope_hash),
            // The uncached providers always ask for a request; a token needs no fetch.
            TokenOrRequest::Token(token) => return Ok(cached(token)),
        };
        let request = match &self.source {
            Source::Key { .. } => request,
            Source::Metadata { host, .. } => at_host(request, host)?,
        };
        let response = self.send(request).await?;
        let token = match &self.source {
            Source::Key { provider, .. } => provider.parse_token_response(hash, response),
            Source::Metadata { provider, .. } => provider.parse_token_response(hash, response),
        };
        token.map(cached).map_err(refusal)
    }

    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, (AdapterErrorKind, String)> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| (AdapterErrorKind::Invalid, error_chain(&e)))?;
        let transport = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                AdapterErrorKind::Timeout
            } else {
                AdapterErrorKind::Unavailable
            };
            (kind, error_chain(&e))
        };
        let mut answer = self.http.execute(request).await.map_err(&transport)?;
        let mut response = http::Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            response = response.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(&transport)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                let why = format!("an answer larger than {MAX_ANSWER_BYTES} bytes");
                return Err((AdapterErrorKind::Unavailable, why));
            }
            body.extend_from_slice(&chunk);
        }
        response
            .body(body)
            .map_err(|e| (AdapterErrorKind::Unavailable, e.to_string()))
    }
}

/// serde's reason without the values it quotes (they could be the key's), but with the
/// name of a missing field.
fn unquoted(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("missing field") {
        text
    } else {
        without_quoted(&text)
    }
}

/// The metadata request tame-oauth builds for `metadata.google.internal`, sent to
/// `host` (`GCE_METADATA_HOST`: `host` or `host:port`) instead.
fn at_host(
    request: http::Request<Vec<u8>>,
    host: &str,
) -> Result<http::Request<Vec<u8>>, (AdapterErrorKind, String)> {
    let (mut head, body) = request.into_parts();
    let mut uri = head.uri.into_parts();
    uri.authority = Some(host.parse().map_err(|_| {
        (
            AdapterErrorKind::Invalid,
            format!("{METADATA_HOST_VARIABLE}={host:?} is not a host or host:port"),
        )
    })?);
    head.uri =
        http::Uri::from_parts(uri).map_err(|e| (AdapterErrorKind::Invalid, e.to_string()))?;
    Ok(http::Request::from_parts(head, body))
}

fn cached(token: tame_oauth::Token) -> Cached {
    let lifetime = Duration::from_secs(token.expires_in.unwrap_or(0).max(0) as u64);
    Cached {
        bearer: Secret::new(token.access_token),
        renew_at: Instant::now() + lifetime - REFRESH_SLACK.min(lifetime / 2),
    }
}

/// The token endpoint's or the metadata server's refusal: credentials it will not take
/// are Unauthorized (an OAuth error such as `invalid_grant`, 400, 401, 403, and 404:
/// no such service account on this instance); throttling and server failures may pass.
fn refusal(e: tame_oauth::Error) -> (AdapterErrorKind, String) {
    let kind = match &e {
        tame_oauth::Error::Auth(refused) => {
            let said = [&refused.error, &refused.error_description];
            let said: Vec<&str> = said.into_iter().flatten().map(String::as_str).collect();
            return (AdapterErrorKind::Unauthorized, said.join(": "));
        }
        tame_oauth::Error::HttpStatus(status) => match status.as_u16() {
            429 => AdapterErrorKind::Throttled,
            500..=599 => AdapterErrorKind::Unavailable,
            _ => AdapterErrorKind::Unauthorized,
        },
        _ => AdapterErrorKind::Unavailable,
    };
    (kind, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_checked_without_quoting_it() {
        for (text, said) in [
            ("not json", "is not JSON"),
            (
                r#"{"type": "authorized_user", "client_id": "x"}"#,
                "is a \"authorized_user\" credential",
            ),
            (
                r#"{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"}"#,
                "is not a service account key (missing field",
            ),
            (
                r#"{"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token", "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n"}"#,
                "has a private_key that cannot sign",
            ),
        ] {
            let why = check_key(&Secret::new(text)).unwrap_err();
            assert!(why.starts_with(said), "{why}");
            assert!(!why.contains("c2VjcmV0"), "{why}");
        }
    }

    #[test]
    fn the_metadata_request_goes_to_the_host_given() {
        let provider = MetadataServerProviderInner::new(None);
        let TokenOrRequest::Request { request, .. } = provider.get_token(&[SCOPE]).unwrap() else {
            panic!("a request");
        };
        assert_eq!(request.headers()["metadata-flavor"], "Google");
        let moved = at_host(request, "127.0.0.1:8080").unwrap();
        assert_eq!(
            moved.uri().to_string(),
            format!(
                "http://127.0.0.1:8080/computeMetadata/v1/instance/service-accounts/default/token?scopes={SCOPE}"
            )
        );
    }

    #[test]
    fn a_token_is_renewed_before_it_expires() {
        let token = |expires_in| tame_oauth::Token {
            access_token: "t".into(),
            refresh_token: String::new(),
            token_type: "Bearer".into(),
            expires_in: Some(expires_in),
            expires_in_timestamp: None,
        };
        let now = Instant::now();
        let hour = cached(token(3600)).renew_at - now;
        assert!(
            hour >= Duration::from_secs(3360) && hour < Duration::from_secs(3361),
            "{hour:?}"
        );
        let short = cached(token(60)).renew_at - now;
        assert!(
            short >= Duration::from_secs(30) && short < Duration::from_secs(31),
            "{short:?}"
        );
        assert!(cached(token(-5)).renew_at <= Instant::now());
    }
}
