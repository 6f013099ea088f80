//! Reading a configuration: YAML text to the typed [`Config`], `${VAR}`s expanded,
//! every problem collected with its key, and no secret in what is said about it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::validate;
use super::{Config, EMBEDDED_DEFAULT, expand, raw};
use crate::config_kit::ctx::Problem;
use crate::config_kit::secrets;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{source_name} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        source_name: String,
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A valid configuration and the warnings it drew.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Reads and validates a file. Relative `*_file` paths are relative to the file.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &path.display().to_string(), base, &|name| {
        std::env::var(name).ok()
    })
}

/// The embedded default configuration.
pub fn embedded_default() -> Loaded {
    parse(
        EMBEDDED_DEFAULT,
        "embedded default",
        Path::new("."),
        &|_| None,
    )
    .expect("the embedded default configuration is valid")
}

/// Parses and validates configuration text. `env` looks up `${VAR}`s.
pub fn parse(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        source_name: source_name.to_owned(),
        problems,
    };
    let mut tree: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| invalid(vec![Problem::new("", reader_error(&e))]))?;
    if !tree.is_mapping() {
        return Err(invalid(vec![Problem::new(
            "",
            "the configuration must be a mapping of keys to values",
        )]));
    }
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut from_env = BTreeSet::new();
    expand::expand_tree(&mut tree, "", env, &mut problems, &mut from_env);
    validate::defaults_from_env(&mut tree, env, &mut from_env);
    let secret_values = secrets::secret_values(&tree);
    let raw: raw::RawConfig = serde_yaml::from_value(tree)
        .map_err(|e| invalid(vec![Problem::new("", reader_error(&e))]))?;
    let config = validate::validate(raw, base_dir, &from_env, &mut problems, &mut warnings);
    // Checks take care not to show secrets; this makes sure none slipped through.
    for p in &mut problems {
        p.message = secrets::scrub(&p.message, &secret_values);
    }
    for w in &mut warnings {
        *w = secrets::scrub(w, &secret_values);
    }
    match config {
        Some(config) if problems.is_empty() => Ok(Loaded { config, warnings }),
        _ => Err(invalid(problems)),
    }
}

/// The YAML reader's error without the values it quotes: it names the key, the line
/// and the column, and the value could be a secret (`api_key: 1234...` too large for a
/// number is refused by the reader itself, quoting the digits).
fn reader_error(e: &serde_yaml::Error) -> String {
    let text = secrets::without_quoted(&e.to_string());
    let text = text.replace(
        "invalid type: integer (value hidden) as u128, expected any YAML value",
        "a number too large to read (value hidden); quote it if it is text",
    );
    format!("not valid YAML or JSON: {text}")
}
