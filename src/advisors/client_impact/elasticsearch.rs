//! The one file that knows the `elasticsearch` crate (9.1.0-alpha.1: the 9.x line,
//! which sends plain `application/json` and so talks to 8.x and 9.x servers, and to
//! OpenSearch). TLS is rustls with ring, through the crate's `rustls-tls` feature.
//!
//! Per analysis: `GET {index_pattern}/_field_caps` and one `POST {index_pattern}/_search`
//! (see `query.rs`). No retries: the engine asks again at its next evaluation, and the
//! cache keeps the answer in between. The crate does not check the `X-Elastic-Product`
//! header, so an OpenSearch server (or osmem-server in the tests) works as well.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use ::elasticsearch::auth::Credentials;
use ::elasticsearch::cert::CertificateValidation;
use ::elasticsearch::http::Url;
use ::elasticsearch::http::headers::{HeaderMap, HeaderName, HeaderValue};
use ::elasticsearch::http::response::Response;
use ::elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use ::elasticsearch::{Elasticsearch, FieldCapsParts, SearchParts};
use serde_json::Value;

use super::config::{ElkFields, ElkSettings};
use super::{analyse, query};
use crate::decision::ports::{
    AdapterErrorKind, ClientImpact, ClientImpactError, ClientImpactSource, ImpactReport, Window,
    error_chain,
};
use crate::model::{InstanceId, Secret};

/// Reads client logs from Elasticsearch.
pub struct ElasticsearchSource {
    client: Elasticsearch,
    /// The address without credentials, for messages.
    url: String,
    index_pattern: String,
    fields: ElkFields,
    client_logs_only: bool,
    error_levels: Vec<String>,
    aliases: BTreeMap<InstanceId, Vec<String>>,
    password: Option<Secret>,
}

impl fmt::Debug for ElasticsearchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElasticsearchSource")
            .field("url", &self.url)
            .field("index_pattern", &self.index_pattern)
            .finish_non_exhaustive()
    }
}

impl ElasticsearchSource {
    /// A client for `settings`; `aliases` are the names each instance goes by in the
    /// logs (an instance without an entry is looked for by its uid).
    pub fn new(
        settings: &ElkSettings,
        aliases: BTreeMap<InstanceId, Vec<String>>,
    ) -> Result<Self, ClientImpactError> {
        let invalid = |m: String| ClientImpactError::new(AdapterErrorKind::Invalid, m);
        let mut url =
            Url::parse(&settings.url).map_err(|e| invalid(format!("elk.url is not a URL: {e}")))?;
        // Credentials in the URL would end up in every error message.
        let url_user = (!url.username().is_empty()).then(|| url.username().to_owned());
        let url_password = url.password().map(|p| Secret::new(p.to_owned()));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let username = settings.username.clone().or(url_user);
        let password = settings.password.clone().or(url_password);

        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("elk.headers: {name:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("elk.headers.{name}: not a header value")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
            .timeout(settings.timeout)
            .headers(headers);
        if let Some(user) = username {
            let password = password.as_ref().map_or("", |p| p.expose()).to_owned();
            builder = builder.auth(Credentials::Basic(user, password));
        }
        if !settings.verify_tls {
            builder = builder.cert_validation(CertificateValidation::None);
        }
        let transport = builder
            .build()
            .map_err(|e| invalid(format!("cannot build the Elasticsearch client: {e}")))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
            url: url.to_string(),
            index_pattern: settings.index_pattern.clone(),
            fields: settings.fields.clone(),
            client_logs_only: settings.client_logs_only,
            error_levels: settings.error_levels.clone(),
            aliases,
            password,
        })
    }

    /// One analysis, or why there is none.
    pub async fn analyse(
        &self,
        instance: &InstanceId,
        window: Window,
    ) -> Result<ImpactReport, ClientImpactError> {
        let bounds = window.bounds(SystemTime::now());
        let indices: Vec<&str> = self
            .index_pattern
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        let names = query::caps_fields(&self.fields);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let caps = self
            .client
            .field_caps(FieldCapsParts::Index(&indices))
            .fields(&names)
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .send()
            .await;
        let caps = self.answer("_field_caps", caps).await?;
        let resolved = query::resolve(
            &self.fields,
            self.client_logs_only,
            &caps,
            &self.index_pattern,
        )?;
        let width = query::bucket_width(window.recent);
        let aliases = self
            .aliases
            .get(instance)
            .cloned()
            .unwrap_or_else(|| vec![instance.as_str().to_owned()]);
        let body = query::search_body(
            &resolved,
            &self.fields,
            &aliases,
            &self.error_levels,
            &bounds,
            width,
        );
        let search = self
            .client
            .search(SearchParts::Index(&indices))
            .ignore_unavailable(true)
            .allow_no_indices(true)
            .body(body)
            .send()
            .await;
        let answer = self.answer("_search", search).await?;
        let counts = query::parse(&answer, &self.fields, width)?;
        Ok(analyse(instance, &bounds, &counts))
    }

    /// The JSON body of a 2xx answer; anything else as an error with its kind.
    async fn answer(
        &self,
        what: &str,
        sent: Result<Response, ::elasticsearch::Error>,
    ) -> Result<Value, ClientImpactError> {
        let fail = |kind, message: String| {
            let message = match &self.password {
                Some(p) => p.redact(&message),
                None => message,
            };
            ClientImpactError::new(kind, format!("{what} at {}: {message}", self.url))
        };
        let response = sent.map_err(|e| {
            let kind = if e.is_timeout() {
                AdapterErrorKind::Timeout
            } else {
                AdapterErrorKind::Unavailable
            };
            fail(kind, error_chain(&e))
        })?;
        let status = response.status_code();
        let text = response.text().await.map_err(|e| {
            let kind = if e.is_timeout() {
                AdapterErrorKind::Timeout
            } else {
                AdapterErrorKind::Unavailable
            };
            fail(kind, format!("reading the answer: {}", error_chain(&e)))
        })?;
        let json: Result<Value, _> = serde_json::from_str(&text);
        if !status.is_success() {
            let kind = match status.as_u16() {
                401 | 403 => AdapterErrorKind::Unauthorized,
                404 => AdapterErrorKind::NotFound,
                429 => AdapterErrorKind::Throttled,
                500..=599 => AdapterErrorKind::Unavailable,
                _ => AdapterErrorKind::Invalid,
            };
            let detail = json
                .ok()
                .and_then(|v| server_reason(&v))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(fail(kind, format!("HTTP {}: {detail}", status.as_u16())));
        }
        json.map_err(|e| {
            fail(
                AdapterErrorKind::Invalid,
                format!("the answer is not JSON: {e}"),
            )
        })
    }
}

/// `type: reason` of an Elasticsearch error body, at most 300 characters.
fn server_reason(body: &Value) -> Option<String> {
    let error = &body["error"];
    let cause = error["root_cause"].get(0).unwrap_or(error);
    let text = match (cause["type"].as_str(), cause["reason"].as_str()) {
        (Some(t), Some(r)) => format!("{t}: {r}"),
        (Some(t), None) => t.to_owned(),
        _ => error.as_str()?.to_owned(),
    };
    Some(text.chars().take(300).collect())
}

#[async_trait::async_trait]
impl ClientImpactSource for ElasticsearchSource {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    async fn impact(&self, instance: &InstanceId, window: Window) -> ClientImpact {
        match self.analyse(instance, window).await {
            Ok(report) => ClientImpact::Known(Box::new(report)),
            Err(e) => {
                tracing::warn!(
                    redis_instance = %instance,
                    kind = %e.kind,
                    error = %e.message,
                    "client impact unknown"
                );
                e.into()
            }
        }
    }
}
