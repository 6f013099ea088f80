//! `--web.config.file`: the listener's TLS, basic auth and response headers, in the
//! format of the Prometheus exporter toolkit (`docs/web-configuration.md` there), so a
//! file written for node_exporter or redis_exporter works here.
//!
//! What the toolkit has and this agent refuses, by name rather than silently:
//! `client_allowed_sans`, `cipher_suites`, `prefer_server_cipher_suites`,
//! `curve_preferences` (rustls chooses its suites and curves), the client auth types
//! that take a certificate without verifying it, TLS 1.0 and 1.1, and `rate_limit`
//! (`limits.http` bounds the listener). `http_server_config.http2` is accepted and
//! changes nothing: the agent speaks HTTP/1.1.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_yaml::Value;

use super::tls::{self, ClientAuth, TlsSettings};
use crate::config::ConfigError;
use crate::config_kit::ctx::{Ctx, Problem};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};

/// How to make a hash, for the problem that finds none.
pub const HASH_HINT: &str = "make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'";

/// The listener's settings; the default (no file) is plain HTTP without basic auth.
/// Its `Debug` shows the user names, never their hashes, and no part of the key.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// `tls_server_config`: `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `basic_auth_users`: user name to bcrypt hash; empty asks for no password.
    pub users: BTreeMap<String, String>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks `path`; `None` gives the default. Paths in the file are relative
    /// to the file. Every problem is listed; none shows a password hash or a key.
    pub fn load(path: Option<&Path>) -> Result<WebConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(WebConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        parse(&text, base).map_err(|problems| ConfigError::Invalid {
            source_name: format!("web configuration {}", path.display()),
            problems,
        })
    }
}

#[derive(Debug, Deserialize)]
struct RawWeb {
    tls_server_config: Option<Raw<RawTls>>,
    http_server_config: Option<Raw<RawHttp>>,
    basic_auth_users: Option<Raw<BTreeMap<String, Value>>>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// The file's keys (see [`KeyBlock`]), documented in docs/security.md.
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] = &[
    KeyBlock::new("", "RawWeb", RawWeb::KEYS),
    KeyBlock::new("tls_server_config", "RawTls", RawTls::KEYS),
    KeyBlock::new("http_server_config", "RawHttp", RawHttp::KEYS),
];

impl RawWeb {
    const KEYS: &[&str] = &[
        "tls_server_config",
        "http_server_config",
        "basic_auth_users",
    ];
}

#[derive(Debug, Deserialize)]
struct RawTls {
    cert: Option<Raw<String>>,
    key: Option<Value>,
    client_ca: Option<Raw<String>>,
    cert_file: Option<Raw<String>>,
    key_file: Option<Raw<String>>,
    client_auth_type: Option<Raw<String>>,
    client_ca_file: Option<Raw<String>>,
    min_version: Option<Raw<String>>,
    max_version: Option<Raw<String>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawTls {
    /// Nothing set: as in the toolkit, the listener stays plain HTTP.
    fn is_empty(&self) -> bool {
        self.cert.is_none()
            && self.key.is_none()
            && self.client_ca.is_none()
            && self.cert_file.is_none()
            && self.key_file.is_none()
            && self.client_auth_type.is_none()
            && self.client_ca_file.is_none()
            && self.min_version.is_none()
            && self.max_version.is_none()
            && self.unknown.is_empty()
    }

    const KEYS: &[&str] = &[
        "cert",
        "key",
        "client_ca",
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "min_version",
        "max_version",
    ];
    /// The toolkit's keys this agent does not take.
    const UNSUPPORTED: &[&str] = &[
        "client_allowed_sans",
        "cipher_suites",
        "prefer_server_cipher_suites",
        "curve_preferences",
    ];
}

#[derive(Debug, Deserialize)]
struct RawHttp {
    http2: Option<Raw<bool>>,
    headers: Option<Raw<BTreeMap<String, String>>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawHttp {
    const KEYS: &[&str] = &["http2", "headers"];
}

/// The headers a file may set, with the values allowed (none listed: any), as the
/// toolkit has them.
const HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Checks the text of a web configuration; `base` is where relative paths start.
fn parse(text: &str, base: &Path) -> Result<WebConfig, Vec<Problem>> {
    let tree: Value = serde_yaml::from_str(text).map_err(|e| {
        let text = crate::config_kit::secrets::without_quoted(&e.to_string());
        vec![Problem::new("", format!("not valid YAML: {text}"))]
    })?;
    // An empty file is a valid one: nothing changes.
    let tree = if tree.is_null() {
        Value::Mapping(Default::default())
    } else {
        tree
    };
    let raw = match serde_yaml::from_value::<RawWeb>(tree) {
        Ok(raw) => raw,
        Err(_) => {
            return Err(vec![Problem::new(
                "",
                "the web configuration must be a mapping of keys to values",
            )]);
        }
    };
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let from_env = Default::default();
    let mut ctx = Ctx {
        base_dir: base,
        problems: &mut problems,
        warnings: &mut warnings,
        from_env: &from_env,
    };
    ctx.unknown("", &raw.unknown, &[RawWeb::KEYS]);
    let tls = ctx
        .value("tls_server_config", raw.tls_server_config.filter(is_given))
        .filter(|t| !t.is_empty())
        .map(|t| tls_settings(&mut ctx, t))
        .and_then(|settings| match tls::server_config(settings) {
            Ok(config) => Some(Arc::new(config)),
            Err(problems) => {
                ctx.problems.extend(problems);
                None
            }
        });
    let users = users(&mut ctx, raw.basic_auth_users.filter(is_given));
    let headers = ctx
        .value(
            "http_server_config",
            raw.http_server_config.filter(is_given),
        )
        .map(|h| headers(&mut ctx, h))
        .unwrap_or_default();
    if problems.is_empty() {
        Ok(WebConfig {
            tls,
            users,
            headers,
        })
    } else {
        Err(problems)
    }
}

/// A block written with nothing under it (`tls_server_config:`) is not given.
fn is_given<T>(raw: &Raw<T>) -> bool {
    !matches!(
        raw,
        Raw::Invalid {
            given: Value::Null,
            ..
        }
    )
}

fn tls_settings(ctx: &mut Ctx, raw: RawTls) -> TlsSettings {
    const P: &str = "tls_server_config";
    let mut unknown = raw.unknown;
    for key in RawTls::UNSUPPORTED {
        if unknown.remove(*key).is_some() {
            ctx.problem(
                &format!("{P}.{key}"),
                "is not supported by this agent (rustls chooses the cipher suites and \
                 curves; client certificates are checked against client_ca_file)",
            );
        }
    }
    ctx.unknown(P, &unknown, &[RawTls::KEYS, RawTls::UNSUPPORTED]);
    let cert = pem(ctx, P, "cert", raw.cert.map(Some), raw.cert_file);
    let key_inline = match raw.key {
        None => None,
        Some(Value::String(k)) => Some(Some(Raw::Valid(k))),
        Some(_) => {
            ctx.problem(&format!("{P}.key"), "must be a string (value hidden)");
            Some(None)
        }
    };
    let key = pem(ctx, P, "key", key_inline, raw.key_file);
    let client_ca = pem(
        ctx,
        P,
        "client_ca",
        raw.client_ca.map(Some),
        raw.client_ca_file,
    );
    let key_name = |k: &str| format!("{P}.{k}");
    // `None` when it is not valid (already reported): the checks that need it are skipped.
    let client_auth = match ctx.value(&key_name("client_auth_type"), raw.client_auth_type) {
        None => Some(ClientAuth::None),
        Some(given) => ClientAuth::parse(&given)
            .map_err(|message| ctx.problem(&key_name("client_auth_type"), message))
            .ok(),
    };
    let mut version =
        |key: &str, raw: Option<Raw<String>>, default| match ctx.value(&key_name(key), raw) {
            None => default,
            Some(given) => tls::parse_version(&given).unwrap_or_else(|message| {
                ctx.problem(&key_name(key), message);
                default
            }),
        };
    let min_version = version("min_version", raw.min_version, tls::Version::Tls12);
    let max_version = version("max_version", raw.max_version, tls::Version::Tls13);
    // A missing one is a problem unless the one given was already reported.
    for (name, missing) in [("cert", cert.is_none()), ("key", key.is_none())] {
        if missing
            && !ctx
                .problems
                .iter()
                .any(|p| p.key.starts_with(&key_name(name)))
        {
            ctx.problem(
                &key_name(&format!("{name}_file")),
                format!("is required with tls_server_config (or {name} inline)"),
            );
        }
    }
    TlsSettings {
        cert,
        key,
        client_auth,
        client_ca,
        min_version,
        max_version,
    }
}

/// A PEM given inline (`name`) or in a file (`name_file`); `Some(None)` inline: given,
/// but not a string (already reported). Returns the PEM bytes and where they came from.
fn pem(
    ctx: &mut Ctx,
    path: &str,
    name: &str,
    inline: Option<Option<Raw<String>>>,
    file: Option<Raw<String>>,
) -> Option<tls::Pem> {
    let inline_key = format!("{path}.{name}");
    let file_key = format!("{path}.{name}_file");
    let inline = match inline {
        None => None,
        Some(None) => return None,
        Some(raw) => ctx.value(&inline_key, raw),
    };
    let file = ctx.value(&file_key, file);
    match (inline, file) {
        (Some(_), Some(_)) => {
            ctx.problem(&inline_key, format!("give {name} or {name}_file, not both"));
            None
        }
        (Some(text), None) => Some(tls::Pem {
            key: inline_key,
            bytes: text.into_bytes(),
        }),
        (None, Some(file)) => ctx.read_file(&file_key, &file).map(|bytes| tls::Pem {
            key: file_key,
            bytes,
        }),
        (None, None) => None,
    }
}

fn users(ctx: &mut Ctx, raw: Option<Raw<BTreeMap<String, Value>>>) -> BTreeMap<String, String> {
    const P: &str = "basic_auth_users";
    let raw = match raw {
        None => return BTreeMap::new(),
        Some(Raw::Valid(users)) => users,
        Some(Raw::Invalid { .. }) => {
            ctx.problem(P, "must be a mapping of user names to bcrypt hashes");
            return BTreeMap::new();
        }
    };
    let mut users = BTreeMap::new();
    for (user, hash) in raw {
        let key = format!("{P}.{user}");
        if user.is_empty() || user.contains(':') {
            ctx.problem(&key, "a user name must not be empty or contain `:`");
            continue;
        }
        let Value::String(hash) = hash else {
            ctx.problem(
                &key,
                format!("must be a bcrypt hash (value hidden); {HASH_HINT}"),
            );
            continue;
        };
        if hash.parse::<bcrypt::HashParts>().is_err() {
            ctx.problem(
                &key,
                format!("is not a bcrypt hash (value hidden); {HASH_HINT}"),
            );
            continue;
        }
        users.insert(user, hash);
    }
    users
}

fn headers(ctx: &mut Ctx, raw: RawHttp) -> Vec<(HeaderName, HeaderValue)> {
    const P: &str = "http_server_config";
    ctx.unknown(P, &raw.unknown, &[RawHttp::KEYS]);
    // HTTP/2 is the toolkit's default; this agent serves HTTP/1.1 whatever it says.
    let _ = ctx.value(&format!("{P}.http2"), raw.http2);
    let given = ctx
        .value(&format!("{P}.headers"), raw.headers)
        .unwrap_or_default();
    let mut headers = Vec::new();
    for (name, value) in given {
        let key = format!("{P}.headers.{name}");
        let Some((known, allowed)) = HEADERS.iter().find(|(h, _)| *h == name) else {
            let names: Vec<_> = HEADERS.iter().map(|(h, _)| *h).collect();
            ctx.problem(
                &key,
                format!(
                    "cannot be set; the headers allowed are {}",
                    names.join(", ")
                ),
            );
            continue;
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            ctx.problem(
                &key,
                format!(
                    "{value:?} is not allowed, use one of {}",
                    allowed.join(", ")
                ),
            );
            continue;
        }
        // An empty value leaves the header unset, as in the toolkit.
        match (
            HeaderName::from_bytes(known.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            _ if value.is_empty() => {}
            (Ok(name), Ok(value)) => headers.push((name, value)),
            _ => ctx.problem(&key, "is not a valid header value"),
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        match parse(text, dir.path()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn an_empty_file_and_users_alone_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        for empty in [
            "",
            "tls_server_config:\nhttp_server_config:\nbasic_auth_users:\n",
            "tls_server_config: {}\n",
        ] {
            let web = parse(empty, dir.path()).unwrap();
            assert!(web.tls.is_none() && web.users.is_empty(), "{empty:?}");
        }
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let web = parse(
            &format!(
                "basic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  http2: true\n  \
                 headers: {{X-Frame-Options: deny, Content-Security-Policy: ''}}\n"
            ),
            dir.path(),
        )
        .unwrap();
        assert_eq!(web.users["prometheus"], hash);
        let shown = format!("{web:?}");
        assert!(
            shown.contains("prometheus") && !shown.contains("$2"),
            "{shown}"
        );
        assert_eq!(web.headers.len(), 1, "an empty value sets nothing");
        assert_eq!(web.headers[0].0, "x-frame-options");
    }

    #[test]
    fn every_problem_is_named_and_no_secret_shown() {
        let said = problems(
            "tls_server_config:\n\
             \x20 cert_file: missing.pem\n\
             \x20 key: '-----BEGIN PRIVATE KEY-----hunter2'\n\
             \x20 client_auth_type: RequireAnyClientCert\n\
             \x20 min_version: TLS10\n\
             \x20 cipher_suites: [TLS_AES_128_GCM_SHA256]\n\
             \x20 client_ca_fiel: ca.pem\n\
             basic_auth_users:\n  alice: not-a-hash-hunter2\n  'bob:x': secret-hunter2\n\
             http_server_config:\n  headers: {X-Frame-Options: allow, Server: me}\n\
             rate_limit: {interval: 1s, burst: 5}\n\
             basic_auth_user: {}\n",
        );
        let all = said.join("\n");
        for expected in [
            "rate_limit: unknown key",
            "basic_auth_user: unknown key (did you mean `basic_auth_users`?)",
            "tls_server_config.client_ca_fiel: unknown key (did you mean `client_ca_file`?)",
            "tls_server_config.cipher_suites: is not supported",
            "tls_server_config.cert_file: cannot read",
            "tls_server_config.key: holds no PEM private key",
            "tls_server_config.client_auth_type: \"RequireAnyClientCert\" takes a certificate without verifying it",
            "tls_server_config.min_version: TLS10 is not supported",
            "basic_auth_users.alice: is not a bcrypt hash (value hidden); make one with",
            "basic_auth_users.bob:x: a user name must not be empty or contain `:`",
            "http_server_config.headers.X-Frame-Options: \"allow\" is not allowed, use one of deny, sameorigin",
            "http_server_config.headers.Server: cannot be set",
        ] {
            assert!(all.contains(expected), "{expected}\n--- said ---\n{all}");
        }
        assert_eq!(said.len(), 12, "{all}");
        assert!(!all.contains("hunter2"), "{all}");
    }

    #[test]
    fn tls_needs_a_certificate_and_a_key_and_a_ca_to_verify_clients() {
        let said = problems("tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n");
        let all = said.join("\n");
        assert!(
            all.contains("tls_server_config.cert_file: is required"),
            "{all}"
        );
        assert!(
            all.contains("tls_server_config.key_file: is required"),
            "{all}"
        );
        let said = problems("tls_server_config: {cert: x, cert_file: y}\n").join("\n");
        assert!(said.contains("give cert or cert_file, not both"), "{said}");
        let said = problems("tls_server_config: [1]\n").join("\n");
        assert!(said.starts_with("tls_server_config: "), "{said}");
        let said = problems("- a\n").join("\n");
        assert!(said.contains("must be a mapping"), "{said}");
    }
}
