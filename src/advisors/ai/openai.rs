//! The adapter: chat completions through `async-openai`, against Azure OpenAI
//! (`AzureConfig`: endpoint, `api-key` header, deployment = model, `api-version`) or
//! any OpenAI-compatible server (`OpenAIConfig`: base URL, bearer token). The only file
//! that names the SDK.
//!
//! One request per consultation, no retries (a throttled or failed call is discarded;
//! the rate limit decides when to ask again). The answer's message content goes through
//! [`validate_answer`]; the response around it is read leniently, so an on-premises
//! server that omits optional fields still works.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_openai::Client;
use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use async_openai::error::{ApiError, ApiErrorResponse, OpenAIError};
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage,
    CreateChatCompletionRequest, ResponseFormat, ResponseFormatJsonSchema,
};
use async_trait::async_trait;
use serde_json::Value;

use super::config::{AiService, AzureOpenAiSettings};
use super::guard::validate_answer;
use super::prompt::{self, SCHEMA_NAME};
use super::{AdvisorError, truncate};
use crate::decision::ports::{Advice, AdviceRequest, Advisor, Consultation, Discarded, RAW_LIMIT};
use crate::model::Secret;

/// The advisor behind Azure OpenAI or an OpenAI-compatible server.
pub struct OpenAiAdvisor {
    client: Client<Box<dyn Config>>,
    name: &'static str,
    /// Where requests go, without credentials, for logs.
    shown: String,
    model: String,
    max_tokens: u32,
    temperature: f32,
    timeout: Duration,
    key: Option<Secret>,
}

impl fmt::Debug for OpenAiAdvisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiAdvisor")
            .field("service", &self.name)
            .field("url", &self.shown)
            .field("model", &self.model)
            .finish()
    }
}

impl OpenAiAdvisor {
    /// Builds the client. Needs a rustls crypto provider installed as the process
    /// default (main does it).
    pub fn new(settings: &AzureOpenAiSettings) -> Result<Self, AdvisorError> {
        let invalid = AdvisorError::Invalid;
        let (config, name, shown, key): (Box<dyn Config>, _, _, _) = match &settings.service {
            AiService::Azure {
                endpoint,
                api_key,
                api_version,
            } => {
                header_safe("azure_openai.api_key", api_key.expose())?;
                let base = endpoint.trim_end_matches('/').to_owned();
                let config = AzureConfig::new()
                    .with_api_base(&base)
                    .with_api_key(api_key.expose())
                    .with_deployment_id(&settings.model)
                    .with_api_version(api_version);
                let shown = format!("{base}/openai/deployments/{}", settings.model);
                (
                    Box::new(config),
                    "azure_openai",
                    shown,
                    Some(api_key.clone()),
                )
            }
            AiService::OpenAiCompatible { base_url, api_key } => {
                let key = api_key.as_ref().map_or("", |k| k.expose());
                header_safe("azure_openai.api_key", key)?;
                let base = base_url.trim_end_matches('/').to_owned();
                // Set every field: the defaults read OPENAI_* variables from the
                // environment, which must not steer this agent.
                let config = OpenAIConfig::default()
                    .with_api_base(&base)
                    .with_api_key(key)
                    .with_org_id("")
                    .with_project_id("");
                (Box::new(config), "openai_compatible", base, api_key.clone())
            }
        };
        // The per-call limit is the TimeLimited wrapper's; this one only stops a
        // connection that outlives it.
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout + Duration::from_secs(5))
            .user_agent(concat!("redis-failover-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(format!("azure_openai: cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client: Client::build(http.clone(), config).with_http_service(single_shot(http)),
            name,
            shown,
            model: settings.model.clone(),
            max_tokens: settings.max_tokens,
            temperature: settings.temperature as f32,
            timeout: settings.timeout,
            key,
        })
    }

    /// `azure_openai` or `openai_compatible`: the `advisor` label.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The chat completion request: system prompt, evidence, strict answer schema.
    pub fn request(&self, evidence: &AdviceRequest) -> CreateChatCompletionRequest {
        let format = prompt::response_format(evidence);
        let schema = &format["json_schema"];
        #[allow(deprecated)]
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: vec![
                ChatCompletionRequestSystemMessage::from(prompt::system_prompt()).into(),
                ChatCompletionRequestUserMessage::from(prompt::user_message(evidence)).into(),
            ],
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: schema["description"].as_str().map(str::to_owned),
                    name: SCHEMA_NAME.into(),
                    schema: schema["schema"].clone(),
                    strict: Some(true),
                },
            }),
            // `max_tokens` rather than `max_completion_tokens`: Azure's GA versions and
            // on-premises servers all know it.
            max_tokens: Some(self.max_tokens),
            temperature: Some(self.temperature),
            ..Default::default()
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.redact(text),
            None => text.to_owned(),
        }
    }

    /// What became of the call: the validated advice or why it was discarded, and the
    /// raw text to keep.
    fn judge(
        &self,
        answer: Result<Value, OpenAIError>,
        evidence: &AdviceRequest,
    ) -> (Result<Advice, Discarded>, Option<String>) {
        let keep = |text: &str| Some(truncate(&self.redact(text), RAW_LIMIT));
        let body = match answer {
            Ok(body) => body,
            Err(OpenAIError::ApiError(e)) => {
                let status = e.status_code.as_u16();
                return (Err(Discarded::Http { status }), keep(&e.api_error.message));
            }
            Err(OpenAIError::JSONDeserialize(e, content)) => {
                let detail = format!("the response is not JSON: {e}");
                return (Err(Discarded::InvalidJson { detail }), keep(&content));
            }
            Err(OpenAIError::Reqwest(e)) if e.is_timeout() => {
                let after_ms = self.timeout.as_millis() as u64;
                return (Err(Discarded::Timeout { after_ms }), None);
            }
            Err(e) => {
                let detail = truncate(&self.redact(&e.to_string()), 300);
                return (Err(Discarded::Unreachable { detail }), None);
            }
        };
        let choice = &body["choices"][0];
        let message = &choice["message"];
        if let Some(refusal) = message["refusal"].as_str().filter(|r| !r.is_empty()) {
            let detail = format!("refused: {}", truncate(refusal, 200));
            return (Err(Discarded::Empty { detail }), keep(refusal));
        }
        let Some(content) = message["content"].as_str() else {
            let finish = choice["finish_reason"].as_str().unwrap_or("none");
            let detail = format!("no message content (finish_reason {finish})");
            return (Err(Discarded::Empty { detail }), keep(&body.to_string()));
        };
        (validate_answer(content, evidence), keep(content))
    }
}

#[async_trait]
impl Advisor for OpenAiAdvisor {
    async fn advise(&self, evidence: &AdviceRequest) -> Consultation {
        let at = SystemTime::now();
        let started = tokio::time::Instant::now();
        let answer: Result<Value, OpenAIError> =
            self.client.chat().create_byot(self.request(evidence)).await;
        let latency = started.elapsed();
        let (result, raw) = self.judge(answer, evidence);
        match &result {
            Ok(a) => tracing::info!(redis_instance = %evidence.instance, advisor = self.name,
                recommendation = a.recommendation.as_str(), confidence = a.confidence,
                latency_ms = latency.as_millis() as u64, "advice received"),
            Err(d) => tracing::warn!(redis_instance = %evidence.instance, advisor = self.name,
                url = %self.shown, result = d.kind(), error = %d,
                latency_ms = latency.as_millis() as u64, "advice discarded"),
        }
        Consultation {
            advisor: self.name.into(),
            model: self.model.clone(),
            at,
            latency,
            fingerprint: evidence.fingerprint(),
            result,
            raw,
        }
    }
}

/// The transport: exactly one request per consultation (the SDK's default executor
/// retries 429, 5xx and connection errors with backoff, honouring Retry-After), and an
/// error status keeps its number whatever the body (the SDK reports a 4xx whose body is
/// not OpenAI's error JSON as a parse error).
fn single_shot(
    http: reqwest::Client,
) -> impl tower::Service<
    HttpRequestFactory,
    Response = reqwest::Response,
    Error = OpenAIError,
    Future = impl Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |request: HttpRequestFactory| {
        let http = http.clone();
        async move {
            let response = http.execute(request.build().await?).await?;
            let status_code = response.status();
            if status_code.is_success() {
                return Ok(response);
            }
            let message = response.text().await.unwrap_or_default();
            Err(OpenAIError::ApiError(ApiErrorResponse {
                status_code,
                api_error: ApiError {
                    message,
                    r#type: None,
                    param: None,
                    code: None,
                    misalignment: None,
                },
            }))
        }
    })
}

/// The SDK puts the key in a header and panics on a value a header cannot carry.
fn header_safe(key: &str, value: &str) -> Result<(), AdvisorError> {
    if value.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(AdvisorError::Invalid(format!(
            "{key}: contains spaces, control or non-ASCII characters (value hidden)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ports::advisor::evidence::tests::{OUTAGE, failover_to, request};

    fn settings(service: AiService) -> AzureOpenAiSettings {
        AzureOpenAiSettings {
            service,
            model: "gpt-4o".into(),
            max_tokens: 500,
            temperature: 0.2,
            timeout: Duration::from_secs(5),
            max_hold: Duration::from_secs(120),
        }
    }

    #[test]
    fn the_request_carries_the_schema_and_the_limits() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let a = OpenAiAdvisor::new(&settings(AiService::OpenAiCompatible {
            base_url: "http://127.0.0.1:1/v1/".into(),
            api_key: None,
        }))
        .unwrap();
        assert_eq!(a.name(), "openai_compatible");
        let body =
            serde_json::to_value(a.request(&request(&[OUTAGE], failover_to("west", 1.0)))).unwrap();
        assert_eq!(body["model"], "gpt-4o");
        assert_eq!(body["max_tokens"], 500);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["role"], "user");
        assert!(format!("{a:?}").contains("127.0.0.1:1/v1"));
    }

    #[test]
    fn a_key_a_header_cannot_carry_is_refused_without_showing_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let e = OpenAiAdvisor::new(&settings(AiService::Azure {
            endpoint: "https://x.openai.azure.com".into(),
            api_key: Secret::new("bad key\n"),
            api_version: "2024-10-21".into(),
        }))
        .unwrap_err();
        assert!(e.to_string().contains("value hidden"), "{e}");
        assert!(!e.to_string().contains("bad key"));
    }
}
