//! `use_azure_openai` + `azure_openai`: where advice comes from (Azure OpenAI or any
//! OpenAI-compatible server), read and checked; `ai::build` turns it into the advisor.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::duration::Seconds;
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::model::Secret;

/// `azure_openai`'s keys (see [`KeyBlock`]).
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] =
    &[KeyBlock::new("", "RawAzureOpenAi", RawAzureOpenAi::KEYS)];

/// `azure_openai.timeout`.
pub const fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
/// `azure_openai.api_version`.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// `use_azure_openai` + `azure_openai`: failover advice from a model (see
/// `advisors::ai`).
#[derive(Debug, Clone, PartialEq)]
pub struct AzureOpenAiSettings {
    pub service: AiService,
    /// `azure_openai.model`: the model, or with Azure the deployment name. Default
    /// `gpt-4`.
    pub model: String,
    /// `azure_openai.max_tokens`: longest answer, in tokens. Default 1000.
    pub max_tokens: u32,
    /// `azure_openai.temperature`, 0 to 2. Default 0.2.
    pub temperature: f64,
    /// `azure_openai.timeout`: per consultation; a later answer is discarded. Default
    /// 30 s.
    pub timeout: Duration,
    /// `ai_max_hold` (top level): the longest advice may hold back a failover once the
    /// active datacenter is down in every round and the clients are not reported fine.
    /// Default 2 min.
    pub max_hold: Duration,
}

/// Where the advice comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AiService {
    /// Azure OpenAI: `{endpoint}/openai/deployments/{model}/chat/completions
    /// ?api-version={api_version}` with an `api-key` header.
    Azure {
        /// `azure_openai.endpoint`, else `AZURE_OPENAI_ENDPOINT`.
        endpoint: String,
        /// `azure_openai.api_key` or `api_key_file`, else `AZURE_OPENAI_API_KEY`.
        api_key: Secret,
        /// `azure_openai.api_version`. Default `2024-10-21`, the first GA version with
        /// structured outputs (the `json_schema` answer format).
        api_version: String,
    },
    /// Any OpenAI-compatible server (`azure_openai.base_url`, e.g.
    /// `http://llm.internal:8000/v1`): `{base_url}/chat/completions` with
    /// `Authorization: Bearer {api_key}`.
    OpenAiCompatible {
        base_url: String,
        /// `azure_openai.api_key` or `api_key_file`; on-premises servers may need none.
        api_key: Option<Secret>,
    },
}

/// The serde form of `azure_openai`, as given.
#[derive(Debug, Deserialize)]
struct RawAzureOpenAi {
    api_key: Option<Raw<String>>,
    api_key_file: Option<Raw<String>>,
    endpoint: Option<Raw<String>>,
    base_url: Option<Raw<String>>,
    api_version: Option<Raw<String>>,
    model: Option<Raw<String>>,
    max_tokens: Option<Raw<i64>>,
    temperature: Option<Raw<f64>>,
    timeout: Option<Raw<Seconds>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawAzureOpenAi {
    const KEYS: &'static [&'static str] = &[
        "api_key",
        "api_key_file",
        "endpoint",
        "base_url",
        "api_version",
        "model",
        "max_tokens",
        "temperature",
        "timeout",
    ];
}

/// `use_azure_openai` + `azure_openai`; `max_hold` is the top-level `ai_max_hold`,
/// which the core reads. `None` when advice is off or the block has problems.
pub(crate) fn read(
    cx: &mut Ctx<'_>,
    enabled: bool,
    block: Option<Value>,
    max_hold: Duration,
) -> Option<AzureOpenAiSettings> {
    let raw = cx.value("azure_openai", block.map(Raw::<RawAzureOpenAi>::from_value));
    if enabled && raw.is_none() {
        cx.problem("azure_openai", "is required when use_azure_openai is true");
    }
    let raw = raw?;
    let p = "azure_openai";
    cx.unknown(p, &raw.unknown, &[RawAzureOpenAi::KEYS]);
    // Which one was given decides the service, even when its URL is refused.
    let both = raw.endpoint.is_some() && raw.base_url.is_some();
    let openai_compatible = raw.base_url.is_some();
    let endpoint_given = raw.endpoint.is_some();
    let endpoint = cx.url(&join(p, "endpoint"), raw.endpoint);
    let base_url = cx.url(&join(p, "base_url"), raw.base_url);
    let api_key = cx.secret(p, "api_key", raw.api_key, raw.api_key_file);
    let api_version = cx.text(&join(p, "api_version"), raw.api_version);
    let service = match (endpoint, base_url) {
        _ if both => {
            cx.problem(
                p,
                "give endpoint (Azure OpenAI) or base_url (an OpenAI-compatible server), not both",
            );
            None
        }
        (_, base_url) if openai_compatible => {
            if api_version.is_some() {
                cx.warnings.push(
                    "azure_openai.api_version: ignored with base_url (an OpenAI-compatible \
                     server has no API versions)"
                        .into(),
                );
            }
            base_url.map(|base_url| AiService::OpenAiCompatible { base_url, api_key })
        }
        (endpoint, _) => {
            let required = "is required when use_azure_openai is true (or set \
                            AZURE_OPENAI_ENDPOINT / AZURE_OPENAI_API_KEY; for an \
                            OpenAI-compatible server give base_url)";
            if enabled && !endpoint_given {
                cx.problem(&join(p, "endpoint"), required);
            }
            if enabled && api_key.is_none() {
                cx.problem(&join(p, "api_key"), required);
            }
            let api_version = api_version.unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.into());
            // Structured outputs (response_format json_schema) came with
            // 2024-08-01-preview; versions are dates, so they compare as text.
            if api_version.get(..10).is_some_and(|d| d < "2024-08-01") {
                cx.warnings.push(format!(
                    "azure_openai.api_version: {api_version:?} predates structured outputs \
                     (2024-08-01-preview); Azure will refuse the answer schema and every \
                     consultation will be discarded; use {DEFAULT_AZURE_API_VERSION} or later"
                ));
            }
            endpoint
                .zip(api_key)
                .map(|(endpoint, api_key)| AiService::Azure {
                    endpoint,
                    api_key,
                    api_version,
                })
        }
    };
    let temperature = cx
        .value(&join(p, "temperature"), raw.temperature)
        .unwrap_or(0.2);
    if !(0.0..=2.0).contains(&temperature) {
        cx.problem(
            &join(p, "temperature"),
            format!("{temperature} is outside 0 to 2"),
        );
    }
    let model = cx
        .text(&join(p, "model"), raw.model)
        .unwrap_or_else(|| "gpt-4".into());
    let max_tokens = cx.count(&join(p, "max_tokens"), raw.max_tokens, 1000);
    let timeout = cx.positive(&join(p, "timeout"), raw.timeout, default_timeout());
    let settings = AzureOpenAiSettings {
        service: service?,
        model,
        max_tokens,
        temperature,
        timeout,
        max_hold,
    };
    enabled.then_some(settings)
}

/// Seed 000's `AZURE_OPENAI_ENDPOINT` and `AZURE_OPENAI_API_KEY`, put into the tree
/// before it is read: used for Azure (no `azure_openai.base_url`) when the file gives
/// no endpoint or no key. A key taken here counts as coming from the environment.
pub(crate) fn from_env(
    tree: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    from_env: &mut BTreeSet<String>,
) {
    let Value::Mapping(top) = tree else { return };
    let enabled = top.get("use_azure_openai") == Some(&Value::Bool(true));
    if enabled && !top.contains_key("azure_openai") {
        top.insert("azure_openai".into(), Value::Mapping(Default::default()));
    }
    let Some(Value::Mapping(block)) = top.get_mut("azure_openai") else {
        return;
    };
    if block.contains_key("base_url") {
        return;
    }
    let missing = |block: &serde_yaml::Mapping, key: &str| match block.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    let value = |name: &str| env(name).filter(|v| !v.is_empty());
    if missing(block, "endpoint")
        && let Some(v) = value("AZURE_OPENAI_ENDPOINT")
    {
        block.insert("endpoint".into(), Value::String(v));
    }
    if missing(block, "api_key")
        && !block.contains_key("api_key_file")
        && let Some(v) = value("AZURE_OPENAI_API_KEY")
    {
        block.insert("api_key".into(), Value::String(v));
        from_env.insert("azure_openai.api_key".into());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{AiService, AzureOpenAiSettings};
    use crate::config::{ConfigError, Loaded, parse};

    const INSTANCES: &str =
        "instances:\n  - uid: cache\n    endpoints:\n      east: {host: 127.0.0.1, port: 6379}\n";

    fn load(extra: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let text = format!("{INSTANCES}{extra}");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(&text, "test", Path::new("."), &move |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn ai(extra: &str, env: &[(&str, &str)]) -> AzureOpenAiSettings {
        match load(extra, env) {
            Ok(l) => l.config.azure_openai.expect("advice is configured"),
            Err(e) => panic!("{e}"),
        }
    }

    fn problems(extra: &str, env: &[(&str, &str)]) -> String {
        match load(extra, env) {
            Ok(_) => panic!("{extra} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_seed_block_loads_with_a_warning_about_its_api_version() {
        let block = "use_azure_openai: true\nazure_openai:\n  api_key: ${KEY}\n  \
                     endpoint: https://x.openai.azure.com/\n  api_version: 2023-05-15\n  \
                     model: gpt-4\n  max_tokens: 1000\n  temperature: 0.2\n  timeout: 30\n";
        let loaded = load(block, &[("KEY", "k")]).unwrap();
        let s = loaded.config.azure_openai.unwrap();
        assert_eq!(
            s.service,
            AiService::Azure {
                endpoint: "https://x.openai.azure.com/".into(),
                api_key: crate::model::Secret::new("k"),
                api_version: "2023-05-15".into(),
            }
        );
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.max_hold, Duration::from_secs(120));
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("predates structured outputs")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn endpoint_and_key_come_from_the_environment_when_absent() {
        let s = ai(
            "use_azure_openai: true\n",
            &[
                ("AZURE_OPENAI_ENDPOINT", "https://env.openai.azure.com"),
                ("AZURE_OPENAI_API_KEY", "from-env"),
            ],
        );
        match s.service {
            AiService::Azure {
                endpoint,
                api_key,
                api_version,
            } => {
                assert_eq!(endpoint, "https://env.openai.azure.com");
                assert_eq!(api_key.expose(), "from-env");
                assert_eq!(api_version, "2024-10-21");
            }
            other => panic!("{other:?}"),
        }
        let said = problems("use_azure_openai: true\n", &[]);
        assert!(
            said.contains("azure_openai.endpoint: is required"),
            "{said}"
        );
        assert!(said.contains("AZURE_OPENAI_ENDPOINT"), "{said}");
    }

    #[test]
    fn base_url_selects_an_openai_compatible_server() {
        let s = ai(
            "use_azure_openai: true\nai_max_hold: 90\nazure_openai:\n  \
             base_url: http://127.0.0.1:8000/v1\n  model: llama\n",
            &[("AZURE_OPENAI_API_KEY", "not-for-this-server")],
        );
        assert_eq!(
            s.service,
            AiService::OpenAiCompatible {
                base_url: "http://127.0.0.1:8000/v1".into(),
                api_key: None
            }
        );
        assert_eq!(s.model, "llama");
        assert_eq!(s.max_hold, Duration::from_secs(90));
    }

    #[test]
    fn bad_values_are_named() {
        let said = problems(
            "use_azure_openai: true\nai_max_hold: 0\nazure_openai:\n  endpoint: x\n  \
             base_url: ftp://y\n  temperature: 3\n  api_key: k\n  bse_url: z\n",
            &[],
        );
        for expected in [
            "ai_max_hold: 0 s is not allowed",
            "azure_openai.endpoint: \"x\" is not an http:// or https:// URL",
            "azure_openai.base_url: \"ftp://y\" is not an http:// or https:// URL",
            "azure_openai: give endpoint (Azure OpenAI) or base_url",
            "azure_openai.temperature: 3 is outside 0 to 2",
            "azure_openai.bse_url: unknown key (did you mean `base_url`?)",
        ] {
            assert!(said.contains(expected), "{expected} not in {said}");
        }
    }

    #[test]
    fn without_use_azure_openai_nothing_is_built() {
        let loaded = load("azure_openai:\n  base_url: http://127.0.0.1:1/v1\n", &[]).unwrap();
        assert!(loaded.config.azure_openai.is_none());
    }
}
