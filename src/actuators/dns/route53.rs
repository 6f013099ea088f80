//! Amazon Route53 through aws-sdk-route53; the only file that names the SDK.
//!
//! One request per call: the SDK's own retries are disabled because
//! [`DnsProvider::switch`] retries with its own budget, and two nested retry loops would
//! multiply the attempts and hide throttling. TLS is rustls with ring (no aws-lc).
//! Credentials: static keys or AWS's default chain, see [`credentials`].

pub mod config;
mod credentials;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_route53::Client;
use aws_sdk_route53::config::retry::RetryConfig;
use aws_sdk_route53::config::timeout::TimeoutConfig;
use aws_sdk_route53::config::{BehaviorVersion, IdentityCache, Region};
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use self::config::Route53Settings;
use super::provider_config::ProviderConfig;
use crate::decision::ports::{
    AdapterErrorKind, ChangeId, ChangeStatus, DnsError, DnsProvider, RecordRef, RecordType,
    RecordValue, canonical_name, error_chain,
};
use crate::model::Secret;

/// Route53 is a global service: in AWS's main partition it signs in this region
/// whichever region is given.
const DEFAULT_REGION: &str = "us-east-1";
/// Connecting must be quick: an unreachable API should fail fast and be retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A safety net for callers that do not wrap calls in their own timeout.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Route53 limits a change batch comment to 256 characters.
const COMMENT_MAX: usize = 256;

pub struct Route53Dns {
    client: Client,
    region: String,
    endpoint_url: Option<String>,
    /// Where the credentials come from: `static` or `default chain`.
    credentials_source: &'static str,
    /// Redacted from every error text the SDK or the server produces.
    secrets: Vec<Secret>,
}

impl fmt::Debug for Route53Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route53Dns")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("credentials", &self.credentials_source)
            .finish_non_exhaustive()
    }
}

impl Route53Dns {
    /// A client for `settings`: static keys from `dns_config` when given, else AWS's
    /// default credential chain, resolved at the first request (nothing here waits on
    /// the network).
    pub fn new(settings: &Route53Settings) -> Result<Self, DnsError> {
        let region = settings
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let chosen = credentials::choose(settings, http.clone())?;
        let mut config = aws_sdk_route53::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .credentials_provider(chosen.provider)
            // The chain bounds itself, with an error that says so; this is a net.
            .identity_cache(
                IdentityCache::lazy()
                    .load_timeout(credentials::LOAD_TIMEOUT * 2)
                    .build(),
            )
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(url) = settings.endpoint_url.as_deref().filter(|u| !u.is_empty()) {
            config = config.endpoint_url(url);
        }
        Ok(Self {
            client: Client::from_conf(config.build()),
            region,
            endpoint_url: settings.endpoint_url.clone(),
            credentials_source: chosen.source,
            secrets: chosen.secrets,
        })
    }

    fn redact(&self, text: String) -> String {
        self.secrets.iter().fold(text, |t, s| s.redact(&t))
    }

    /// Our error for an SDK failure: a kind that decides retries, and a message with
    /// the operation, the service's code and text, and no credentials.
    fn error<E>(&self, op: &'static str, err: SdkError<E>) -> DnsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(failure) = credentials_failure(&err) {
            let kind = match failure {
                CredentialsError::ProviderTimedOut(_) => AdapterErrorKind::Timeout,
                CredentialsError::ProviderError(_) | CredentialsError::Unhandled(_) => {
                    AdapterErrorKind::Unavailable
                }
                _ => AdapterErrorKind::Unauthorized,
            };
            return DnsError::new(
                kind,
                self.redact(format!(
                    "route53 {op}: no AWS credentials ({}); set dns_config.aws_access_key and \
                     aws_secret_key, or give the agent credentials through AWS's default chain \
                     (environment, profile, web identity, container or instance metadata; \
                     see docs/dns.md)",
                    error_chain(failure)
                )),
            );
        }
        let (kind, detail) = match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or("(no code)");
                let message = service.err().message().unwrap_or("");
                (
                    kind_of(code, status, message),
                    format!("{code} (HTTP {status}): {message}"),
                )
            }
            SdkError::TimeoutError(_) => (AdapterErrorKind::Timeout, "timed out".to_owned()),
            SdkError::DispatchFailure(failure) => {
                let kind = if failure.is_timeout() {
                    AdapterErrorKind::Timeout
                } else if failure.is_user() {
                    AdapterErrorKind::Invalid
                } else {
                    AdapterErrorKind::Unavailable
                };
                (kind, error_chain(&err))
            }
            SdkError::ResponseError(response) => {
                let status = response.raw().status().as_u16();
                let kind = match status {
                    401 | 403 => AdapterErrorKind::Unauthorized,
                    429 => AdapterErrorKind::Throttled,
                    400..=499 => AdapterErrorKind::Invalid,
                    _ => AdapterErrorKind::Unavailable,
                };
                (
                    kind,
                    format!("unreadable answer (HTTP {status}): {}", error_chain(&err)),
                )
            }
            SdkError::ConstructionFailure(_) => (AdapterErrorKind::Invalid, error_chain(&err)),
            _ => (AdapterErrorKind::Unavailable, error_chain(&err)),
        };
        DnsError::new(kind, self.redact(format!("route53 {op}: {detail}")))
    }
}

impl ProviderConfig for Route53Settings {
    fn name(&self) -> &'static str {
        "route53"
    }

    fn build(&self) -> Result<Arc<dyn DnsProvider>, DnsError> {
        Ok(Arc::new(Route53Dns::new(self)?))
    }
}

/// What the credential chain said, when that is why a request failed: the SDK wraps it
/// in a dispatch failure several sources deep.
fn credentials_failure<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(failure) = e.downcast_ref::<CredentialsError>() {
            return Some(failure);
        }
        source = e.source();
    }
    None
}

/// Route53's error codes (and HTTP statuses, when the code is unknown) to our kinds.
/// A refused conditional change is an InvalidChangeBatch whose message says which
/// change failed ("Tried to delete resource record set [name='x.', type='CNAME'] but it
/// was not found" or "... but the values provided do not match the current values";
/// "Tried to create resource record set [...] but it already exists"): our batches
/// delete only the set as read and create only what was read as absent, so these mean
/// the read is stale.
fn kind_of(code: &str, status: u16, message: &str) -> AdapterErrorKind {
    match code {
        "InvalidChangeBatch"
            if message.contains("Tried to delete resource record set")
                || (message.contains("Tried to create resource record set")
                    && message.contains("already exists")) =>
        {
            AdapterErrorKind::Stale
        }
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => AdapterErrorKind::Throttled,
        "PriorRequestNotComplete" => AdapterErrorKind::Conflict,
        "AccessDenied"
        | "AccessDeniedException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "UnrecognizedClientException"
        | "InvalidSignatureException" => AdapterErrorKind::Unauthorized,
        "ServiceUnavailable" | "InternalFailure" | "InternalError" => AdapterErrorKind::Unavailable,
        "RequestTimeout" | "RequestTimeoutException" => AdapterErrorKind::Timeout,
        c if c.starts_with("NoSuch") => AdapterErrorKind::NotFound,
        _ => match status {
            401 | 403 => AdapterErrorKind::Unauthorized,
            404 => AdapterErrorKind::NotFound,
            408 => AdapterErrorKind::Timeout,
            429 => AdapterErrorKind::Throttled,
            500..=599 => AdapterErrorKind::Unavailable,
            _ => AdapterErrorKind::Invalid,
        },
    }
}

fn rr_type(t: RecordType) -> RrType {
    match t {
        RecordType::Cname => RrType::Cname,
        RecordType::A => RrType::A,
        RecordType::Aaaa => RrType::Aaaa,
    }
}

fn build_error(e: impl std::error::Error) -> DnsError {
    DnsError::new(AdapterErrorKind::Invalid, format!("route53 request: {e}"))
}

/// One change of `record` to `value`, values verbatim.
fn change(
    action: ChangeAction,
    record: &RecordRef,
    value: &RecordValue,
) -> Result<Change, DnsError> {
    let mut set = ResourceRecordSet::builder()
        .name(format!("{}.", record.canonical_name()))
        .r#type(rr_type(record.record_type))
        .ttl(i64::from(value.ttl));
    for v in &value.values {
        set = set.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(build_error)?,
        );
    }
    Change::builder()
        .action(action)
        .resource_record_set(set.build().map_err(build_error)?)
        .build()
        .map_err(build_error)
}

/// The value exactly as Route53 holds it (no trailing dot removed, no address
/// respelled): a conditional change deletes the set as read, and Route53 compares the
/// DELETE with what it holds. Comparisons go through [`RecordValue::points_at`].
fn record_value(record: &RecordRef, set: &ResourceRecordSet) -> Result<RecordValue, DnsError> {
    if set.alias_target().is_some() || set.set_identifier().is_some() {
        return Err(DnsError::new(
            AdapterErrorKind::Invalid,
            format!(
                "{record} is an alias or a weighted/latency/failover record set; \
                 the agent switches only simple records"
            ),
        ));
    }
    let values = set
        .resource_records()
        .iter()
        .map(|r| r.value().to_owned())
        .collect();
    let ttl = set.ttl().unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
    Ok(RecordValue { values, ttl })
}

#[async_trait::async_trait]
impl DnsProvider for Route53Dns {
    fn name(&self) -> &'static str {
        "route53"
    }

    async fn read(&self, record: &RecordRef) -> Result<Option<RecordValue>, DnsError> {
        // The listing starts at the name and type asked for, in Route53's order; when the
        // record does not exist the first entry is some other record, hence the check.
        // Names go out lower case: DNS ignores case, and Route53 stores names that way.
        let wanted = record.canonical_name();
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(&record.zone_id)
            .start_record_name(format!("{wanted}."))
            .start_record_type(rr_type(record.record_type))
            .max_items(1)
            .send()
            .await
            .map_err(|e| self.error("ListResourceRecordSets", e))?;
        out.resource_record_sets()
            .iter()
            .find(|s| {
                canonical_name(s.name()) == wanted && *s.r#type() == rr_type(record.record_type)
            })
            .map(|s| record_value(record, s))
            .transpose()
    }

    /// One change batch: DELETE of the set exactly as read (name, type, TTL, values),
    /// then CREATE of the new one; CREATE alone when the record did not exist. Route53
    /// applies a batch whole or not at all, and refuses a DELETE whose values are not the
    /// current ones and a CREATE of a set that exists ("To delete a resource record set,
    /// you must specify all the same values"; "If validation for either the DELETE or the
    /// CREATE action fails, then the request is canceled": ChangeResourceRecordSets,
    /// Amazon Route 53 API Reference,
    /// <https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html>),
    /// which [`kind_of`] turns into Stale. moto 5.2.1 does not check the DELETE against
    /// the current values (see `tests/route53.rs`).
    async fn write(
        &self,
        record: &RecordRef,
        expected: Option<&RecordValue>,
        value: &RecordValue,
    ) -> Result<ChangeId, DnsError> {
        let mut changes = Vec::with_capacity(2);
        if let Some(old) = expected {
            changes.push(change(ChangeAction::Delete, record, old)?);
        }
        changes.push(change(ChangeAction::Create, record, value)?);
        let mut comment = format!(
            "redis-failover-agent: point {} at {}",
            record.name,
            value.values.join(",")
        );
        if comment.len() > COMMENT_MAX {
            let mut end = COMMENT_MAX;
            while !comment.is_char_boundary(end) {
                end -= 1;
            }
            comment.truncate(end);
        }
        let batch = ChangeBatch::builder()
            .comment(comment)
            .set_changes(Some(changes))
            .build()
            .map_err(build_error)?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(&record.zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| self.error("ChangeResourceRecordSets", e))?;
        let info = out.change_info().ok_or_else(|| {
            DnsError::new(
                AdapterErrorKind::Unavailable,
                "route53 ChangeResourceRecordSets: the answer has no ChangeInfo",
            )
        })?;
        Ok(ChangeId(info.id().to_owned()))
    }

    async fn change_status(&self, id: &ChangeId) -> Result<ChangeStatus, DnsError> {
        let out = self
            .client
            .get_change()
            .id(&id.0)
            .send()
            .await
            .map_err(|e| self.error("GetChange", e))?;
        let status = out.change_info().map(|i| i.status().clone());
        match status {
            Some(aws_sdk_route53::types::ChangeStatus::Insync) => Ok(ChangeStatus::InSync),
            Some(aws_sdk_route53::types::ChangeStatus::Pending) => Ok(ChangeStatus::Pending),
            other => {
                // An answer we do not know is not "in sync"; the caller's deadline bounds it.
                tracing::warn!(change = %id, status = ?other, "unknown Route53 change status; treating it as pending");
                Ok(ChangeStatus::Pending)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route53_error_codes_map_to_kinds() {
        use AdapterErrorKind::*;
        for (code, status, kind) in [
            ("Throttling", 400, Throttled),
            ("PriorRequestNotComplete", 400, Conflict),
            ("NoSuchHostedZone", 404, NotFound),
            ("NoSuchChange", 404, NotFound),
            ("InvalidChangeBatch", 400, Invalid),
            ("InvalidInput", 400, Invalid),
            ("AccessDenied", 403, Unauthorized),
            ("InvalidClientTokenId", 403, Unauthorized),
            ("SignatureDoesNotMatch", 403, Unauthorized),
            ("ServiceUnavailable", 503, Unavailable),
            ("SomethingNew", 502, Unavailable),
            ("SomethingNew", 429, Throttled),
            ("SomethingNew", 400, Invalid),
        ] {
            assert_eq!(kind_of(code, status, ""), kind, "{code} {status}");
        }
        // Route53's refusals of a change based on a stale read, as it words them.
        for message in [
            "[Tried to delete resource record set [name='cache.example.com.', type='CNAME'] but it was not found]",
            "[Tried to delete resource record set [name='cache.example.com.', type='CNAME'] but the values provided do not match the current values]",
            "[Tried to create resource record set [name='cache.example.com.', type='CNAME'] but it already exists]",
        ] {
            assert_eq!(
                kind_of("InvalidChangeBatch", 400, message),
                Stale,
                "{message}"
            );
        }
        assert_eq!(
            kind_of(
                "InvalidChangeBatch",
                400,
                "[RRSet with DNS name x. is not permitted in zone example.com.]"
            ),
            Invalid
        );
    }

    fn settings(access: Option<&str>, secret: Option<&str>) -> Route53Settings {
        Route53Settings {
            region: None,
            profile: None,
            access_key: access.map(Secret::new),
            secret_key: secret.map(Secret::new),
            endpoint_url: Some("http://127.0.0.1:1".into()),
        }
    }

    #[test]
    fn keys_go_together_and_never_show_in_debug() {
        let err = Route53Dns::new(&settings(Some("AKIAEXAMPLE"), None)).unwrap_err();
        assert_eq!(err.kind, AdapterErrorKind::Invalid);
        let dns = Route53Dns::new(&settings(Some("AKIAEXAMPLE"), Some("s3cr3t-key"))).unwrap();
        let debug = format!("{dns:?}");
        assert!(
            !debug.contains("AKIAEXAMPLE") && !debug.contains("s3cr3t-key"),
            "{debug}"
        );
        assert_eq!(dns.region, "us-east-1");
        assert_eq!(
            dns.redact("key AKIAEXAMPLE secret s3cr3t-key".into()),
            "key *** secret ***"
        );
        assert_eq!(dns.credentials_source, "static");
    }

    /// Without keys the default chain is chosen, and nothing is resolved yet: building
    /// the provider does no I/O (the chain runs at the first request).
    #[test]
    fn without_keys_the_default_chain_is_chosen_and_not_yet_resolved() {
        let dns = Route53Dns::new(&settings(None, None)).unwrap();
        assert_eq!(dns.credentials_source, "default chain");
        assert!(format!("{dns:?}").contains("default chain"));
    }

    /// The chain's failure, however deep the SDK wraps it, is "no AWS credentials"
    /// with what to do, of a kind that decides whether to try again.
    #[test]
    fn a_chain_without_credentials_says_so_and_what_to_do() {
        use aws_sdk_route53::error::ConnectorError;
        use aws_sdk_route53::operation::get_change::GetChangeError;

        let dns = Route53Dns::new(&settings(None, None)).unwrap();
        for (failure, kind, said) in [
            (
                CredentialsError::not_loaded("no providers in chain provided credentials"),
                AdapterErrorKind::Unauthorized,
                "no providers in chain provided credentials",
            ),
            (
                CredentialsError::provider_timed_out(credentials::LOAD_TIMEOUT),
                AdapterErrorKind::Timeout,
                "timed out after 5 seconds",
            ),
            (
                CredentialsError::provider_error("STS answered 503"),
                AdapterErrorKind::Unavailable,
                "STS answered 503",
            ),
        ] {
            let err: SdkError<GetChangeError, _> =
                SdkError::dispatch_failure(ConnectorError::other(Box::new(failure), None));
            let err = dns.error("GetChange", err);
            assert_eq!(err.kind, kind, "{}", err.message);
            assert!(
                err.message
                    .starts_with("route53 GetChange: no AWS credentials (")
                    && err.message.contains(said)
                    && err.message.contains("docs/dns.md"),
                "{}",
                err.message
            );
        }
    }
}
