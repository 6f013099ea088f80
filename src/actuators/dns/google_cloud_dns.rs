//! Google Cloud DNS (API v1) over HTTPS with reqwest; the only file that speaks its
//! REST API, with its JSON in `wire.rs` and its tokens in `credentials.rs`.
//!
//! One request per call, as every provider: [`DnsProvider::switch`] adds the retries,
//! the timeouts and the wait until the change is `done`. The switch is one
//! `changes.create` whose `deletions` hold the set exactly as read and whose
//! `additions` hold the new one (the addition alone where nothing was read); Cloud DNS
//! applies a change whole or not at all, and refuses it when a deletion does not match
//! the set it holds (412 `conditionNotMet`) or an addition names a set that exists (409
//! `alreadyExists`), which the provider reports as Stale.

pub mod config;
mod credentials;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};

use self::config::GoogleCloudDnsSettings;
use self::credentials::Tokens;
use self::wire::{Change, ErrorBody, Listing, NewChange, RecordSet};
use super::provider_config::ProviderConfig;
use crate::decision::ports::{
    AdapterErrorKind, ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType,
    RecordValue, canonical_name, error_chain,
};

/// Google's API root; paths go under `dns/v1/`.
const DEFAULT_ENDPOINT: &str = "https://dns.googleapis.com/";
/// Connecting must be quick: an unreachable API should fail fast and be retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A safety net for callers that do not wrap calls in their own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read: one record set, one change, or an error.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

pub struct GoogleCloudDns {
    http: reqwest::Client,
    /// The API root, `https://dns.googleapis.com/` unless `endpoint_url` says otherwise.
    endpoint: Url,
    project: String,
    tokens: Tokens,
}

impl fmt::Debug for GoogleCloudDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleCloudDns")
            .field("endpoint", &self.endpoint.as_str())
            .field("project", &self.project)
            .field("credentials", &self.tokens.source())
            .finish_non_exhaustive()
    }
}

impl ProviderConfig for GoogleCloudDnsSettings {
    fn name(&self) -> &'static str {
        "google_cloud_dns"
    }

    fn zone(&self) -> Option<&str> {
        Some(&self.managed_zone)
    }

    fn build(&self) -> Result<Arc<dyn DnsProvider>, DnsError> {
        Ok(Arc::new(GoogleCloudDns::new(self)?))
    }
}

impl GoogleCloudDns {
    /// A client for `settings`, its credentials chosen but not yet used: nothing here
    /// waits on the network.
    pub fn new(settings: &GoogleCloudDnsSettings) -> Result<Self, DnsError> {
        let invalid = |what: String| DnsError::new(AdapterErrorKind::Invalid, what);
        let raw = settings.endpoint_url.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        let mut endpoint =
            Url::parse(raw).map_err(|e| invalid(format!("google_cloud_dns endpoint_url: {e}")))?;
        if !endpoint.path().ends_with('/') {
            let path = format!("{}/", endpoint.path());
            endpoint.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("redis-failover-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                invalid(format!(
                    "google_cloud_dns: cannot build the HTTP client: {e}"
                ))
            })?;
        let tokens = Tokens::new(settings.key.as_ref(), http.clone())?;
        Ok(Self {
            http,
            endpoint,
            project: settings.project.clone(),
            tokens,
        })
    }

    /// `dns/v1/projects/{project}/managedZones/{zone}/{rest...}` under the API root.
    fn url(&self, zone: &str, rest: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend([
                    "dns",
                    "v1",
                    "projects",
                    self.project.as_str(),
                    "managedZones",
                    zone,
                ])
                .extend(rest);
        }
        url
    }

    /// One call: the token, the request, and the answer's JSON, or our error for a
    /// refusal (its kind, the operation, the zone, Google's reason and message; never
    /// the token).
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        zone: &str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<T, DnsError> {
        let bearer = self.tokens.bearer().await?;
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(bearer.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let fail = |kind, detail: String| {
            DnsError::new(
                kind,
                bearer.redact(&format!(
                    "google_cloud_dns {op} (project {}, zone {zone}): {detail}",
                    self.project
                )),
            )
        };
        let transport = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                AdapterErrorKind::Timeout
            } else {
                AdapterErrorKind::Unavailable
            };
            fail(kind, error_chain(&e))
        };
        let mut answer = request.send().await.map_err(&transport)?;
        let status = answer.status();
        let retry_after = answer
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(&transport)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                let why = format!("an answer larger than {MAX_ANSWER_BYTES} bytes");
                return Err(fail(AdapterErrorKind::Unavailable, why));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let (kind, detail) = refusal(status, &body, retry_after.as_deref(), &self.tokens);
            let mut error = fail(kind, detail);
            // Seconds; an HTTP-date is not read, and the backoff alone applies.
            error.retry_after = retry_after
                .and_then(|wait| wait.trim().parse().ok())
                .map(Duration::from_secs);
            return Err(error);
        }
        serde_json::from_slice(&body).map_err(|e| {
            let why = format!("an answer that is not the expected JSON: {e}");
            fail(AdapterErrorKind::Unavailable, why)
        })
    }
}

/// A refusal's kind and how to say it: HTTP status, Google's reason and message, the
/// wait the server asked for, and for credentials refused, which ones.
fn refusal(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<&str>,
    tokens: &Tokens,
) -> (AdapterErrorKind, String) {
    let (reason, message) = ErrorBody::parse(body).unwrap_or_default();
    let kind = wire::kind_of(status.as_u16(), &reason);
    let mut detail = format!("HTTP {}", status.as_u16());
    for part in [&reason, &message] {
        if !part.is_empty() {
            detail.push_str(": ");
            detail.push_str(part);
        }
    }
    if let Some(wait) = retry_after {
        detail.push_str(&format!(" (Retry-After: {wait})"));
    }
    if kind == AdapterErrorKind::Unauthorized {
        detail.push_str(&format!(
            "; the {} may not do this (docs/dns.md#google-cloud-dns)",
            tokens.source()
        ));
    }
    (kind, detail)
}

/// A name as Cloud DNS holds it: absolute, lower case, with the final dot.
fn absolute(name: &str) -> String {
    format!("{}.", canonical_name(name))
}

/// The set `value` names, as Cloud DNS takes it. `expected` values go out verbatim,
/// as read (a deletion must match what Cloud DNS holds exactly); new CNAME targets are
/// made absolute, as Cloud DNS requires of a CNAME's data.
fn record_set(record: &RecordRef, value: &RecordValue, verbatim: bool) -> RecordSet {
    let rrdatas = value
        .values
        .iter()
        .map(|v| match record.record_type {
            RecordType::Cname if !verbatim && !v.trim().ends_with('.') => format!("{}.", v.trim()),
            _ if verbatim => v.clone(),
            _ => v.trim().to_owned(),
        })
        .collect();
    RecordSet {
        name: absolute(&record.name),
        record_type: record.record_type.as_str().to_owned(),
        ttl: Some(i64::from(value.ttl)),
        rrdatas,
        routing_policy: None,
    }
}

/// The value exactly as Cloud DNS holds it; comparisons go through
/// [`RecordValue::points_at`].
fn record_value(record: &RecordRef, set: &RecordSet) -> Result<RecordValue, DnsError> {
    if set.routing_policy.is_some() {
        return Err(DnsError::new(
            AdapterErrorKind::Invalid,
            format!(
                "{record} has a routing policy (geo, weighted or failover); the agent \
                 switches only simple records"
            ),
        ));
    }
    let ttl = set.ttl.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
    Ok(RecordValue {
        values: set.rrdatas.clone(),
        ttl,
    })
}

/// A change is named `<zone>/<id>`: Cloud DNS numbers changes per managed zone.
fn change_id(zone: &str, change: &Change) -> ChangeId {
    ChangeId(format!("{zone}/{}", change.id))
}

#[async_trait::async_trait]
impl DnsProvider for GoogleCloudDns {
    fn name(&self) -> &'static str {
        "google_cloud_dns"
    }

    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        let wanted = record.canonical_name();
        let mut url = self.url(&record.zone_id, &["rrsets"]);
        url.query_pairs_mut()
            .append_pair("name", &absolute(&record.name))
            .append_pair("type", record.record_type.as_str());
        let listing: Listing = self
            .call(
                "resourceRecordSets.list",
                &record.zone_id,
                Method::GET,
                url,
                None,
            )
            .await?;
        listing
            .rrsets
            .iter()
            .find(|s| {
                canonical_name(&s.name) == wanted && s.record_type == record.record_type.as_str()
            })
            .map(|s| record_value(record, s))
            .transpose()
    }

    /// One `changes.create`: the set as read in `deletions` (name, type, TTL, rrdatas,
    /// verbatim) and the new one in `additions`. See the module doc for the refusals.
    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        let body = serde_json::to_vec(&NewChange {
            kind: "dns#change",
            deletions: expected
                .map(|old| record_set(record, old, true))
                .into_iter()
                .collect(),
            additions: vec![record_set(record, value, false)],
        })
        .map_err(|e| DnsError::new(AdapterErrorKind::Invalid, e.to_string()))?;
        let url = self.url(&record.zone_id, &["changes"]);
        let change: Change = self
            .call(
                "changes.create",
                &record.zone_id,
                Method::POST,
                url,
                Some(body),
            )
            .await?;
        Ok(change_id(&record.zone_id, &change))
    }

    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        let (zone, change) = id.0.rsplit_once('/').ok_or_else(|| {
            DnsError::new(
                AdapterErrorKind::Invalid,
                format!("google_cloud_dns: {id} is not a change of this provider (<zone>/<id>)"),
            )
        })?;
        let url = self.url(zone, &["changes", change]);
        let answer: Change = self
            .call("changes.get", zone, Method::GET, url, None)
            .await?;
        match answer.status.as_str() {
            "done" => Ok(ChangeStatus::InSync),
            "pending" => Ok(ChangeStatus::Pending),
            other => {
                // An answer we do not know is not "done"; the caller's deadline bounds it.
                tracing::warn!(change = %id, status = other, "unknown Cloud DNS change status; treating it as pending");
                Ok(ChangeStatus::Pending)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(endpoint: &str) -> GoogleCloudDnsSettings {
        GoogleCloudDnsSettings {
            project: "my-project".into(),
            managed_zone: "prod-zone".into(),
            key: None,
            endpoint_url: Some(endpoint.into()),
        }
    }

    #[test]
    fn paths_follow_the_reference_and_building_does_no_io() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Nothing listens there: building must not notice.
        let dns = GoogleCloudDns::new(&settings("http://127.0.0.1:1/base")).unwrap();
        assert_eq!(
            dns.url("prod-zone", &["rrsets"]).as_str(),
            "http://127.0.0.1:1/base/dns/v1/projects/my-project/managedZones/prod-zone/rrsets"
        );
        assert_eq!(
            dns.url("prod-zone", &["changes", "17"]).as_str(),
            "http://127.0.0.1:1/base/dns/v1/projects/my-project/managedZones/prod-zone/changes/17"
        );
        let debug = format!("{dns:?}");
        assert!(debug.contains("metadata server"), "{debug}");
    }

    #[test]
    fn a_deletion_is_the_set_as_read_and_an_addition_is_absolute() {
        let record = RecordRef::new("prod-zone", "Cache.Example.com", RecordType::Cname);
        let read = RecordValue::single("redis-east.example.com.", 300);
        let deletion = record_set(&record, &read, true);
        assert_eq!(deletion.name, "cache.example.com.");
        assert_eq!(deletion.rrdatas, ["redis-east.example.com."]);
        assert_eq!(deletion.ttl, Some(300));
        let addition = record_set(
            &record,
            &RecordValue::single("redis-west.example.com", 60),
            false,
        );
        assert_eq!(addition.rrdatas, ["redis-west.example.com."]);
        let a = RecordRef::new("prod-zone", "cache.example.com.", RecordType::A);
        let addition = record_set(&a, &RecordValue::single(" 10.0.0.2 ", 60), false);
        assert_eq!(addition.rrdatas, ["10.0.0.2"]);
    }
}
