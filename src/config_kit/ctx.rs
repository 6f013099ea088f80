//! The validation context: collects problems and warnings, and reads raw values with
//! the checks every key shares (type, range, secrets, files). A leaf: the core and every
//! integration's `config` module use it, and it imports no integration.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_yaml::Value;

use crate::config_kit::duration::{self, show};
use crate::config_kit::raw::{Raw, Unknown};
use crate::config_kit::secrets::{self, is_secret_path};
use crate::model::Secret;

/// One thing wrong with the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One line per problem, whatever the file holds: control characters in keys and
/// values are escaped (a terminal shows check-config's output).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.key.is_empty() {
            crate::logging::escape_into(f, &self.key)?;
            f.write_str(": ")?;
        }
        crate::logging::escape_into(f, &self.message)
    }
}

pub struct Ctx<'a> {
    pub base_dir: &'a Path,
    pub problems: &'a mut Vec<Problem>,
    pub warnings: &'a mut Vec<String>,
    /// Paths of the strings that took a value from the environment (`${VAR}`); a
    /// secret elsewhere was written in the file.
    pub from_env: &'a BTreeSet<String>,
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A value as a problem may show it: secrets under it and credentials in URLs hidden.
pub fn shown(value: &Value) -> String {
    match &secrets::redacted(value) {
        Value::String(s) => format!("{s:?}"),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().replace('\n', " "))
            .unwrap_or_else(|_| "?".into()),
    }
}

impl Ctx<'_> {
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    pub fn value<T>(&mut self, key: &str, raw: Option<Raw<T>>) -> Option<T> {
        match raw? {
            Raw::Valid(v) => Some(v),
            Raw::Invalid { given, reason } => {
                // One problem per key: an unset `${VAR}` was already reported.
                if self.problems.iter().any(|p| p.key == key) {
                    return None;
                }
                if is_secret_path(key) {
                    self.problem(key, "has the wrong type (value hidden)");
                    return None;
                }
                // Serde's reason may quote a part of the value: not when it holds one.
                let reason = if secrets::redacted(&given) == given {
                    reason
                } else {
                    secrets::without_quoted(&reason)
                };
                let reason = reason.split(" at line").next().unwrap_or(&reason);
                let reason = reason
                    .replace("expected i64", "expected a whole number")
                    .replace("expected f64", "expected a number")
                    .replace("invalid type: ", "");
                self.problem(key, format!("{} is not valid: {reason}", shown(&given)));
                None
            }
        }
    }

    pub fn required<T>(&mut self, key: &str, raw: Option<Raw<T>>) -> Option<T> {
        if raw.is_none() {
            self.problem(key, "is required");
        }
        self.value(key, raw)
    }

    pub fn text(&mut self, key: &str, raw: Option<Raw<String>>) -> Option<String> {
        let v = self.value(key, raw)?;
        if v.trim().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        Some(v)
    }

    /// An `http://` or `https://` URL without credentials; a problem shows it with
    /// `***` for anything that could be one (see [`secrets::check_http_url`]).
    pub fn url(&mut self, key: &str, raw: Option<Raw<String>>) -> Option<String> {
        let url = self.text(key, raw)?;
        match secrets::check_http_url(url.trim()) {
            Ok(()) => Some(url.trim().to_owned()),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    pub fn unknown(&mut self, path: &str, unknown: &Unknown, known: &[&[&str]]) {
        for key in unknown.keys() {
            let hint = known
                .iter()
                .flat_map(|k| k.iter())
                .filter(|k| edit_distance(k, key) <= 2)
                .min_by_key(|k| edit_distance(k, key))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            self.problem(&join(path, key), format!("unknown key{hint}"));
        }
    }

    pub fn port(&mut self, key: &str, raw: Option<Raw<i64>>) -> Option<u16> {
        let port = self.value(key, raw)?;
        match u16::try_from(port) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.problem(key, format!("{port} is not a TCP port, use 1 to 65535"));
                None
            }
        }
    }

    pub fn fraction(&mut self, key: &str, raw: Option<Raw<f64>>, default: f64) -> f64 {
        match self.value(key, raw) {
            Some(v) if (0.0..=1.0).contains(&v) => v,
            Some(v) => {
                self.problem(key, format!("{v} is outside 0 to 1"));
                default
            }
            None => default,
        }
    }

    pub fn count(&mut self, key: &str, raw: Option<Raw<i64>>, default: u32) -> u32 {
        match self.value(key, raw) {
            Some(v) if v >= 1 => u32::try_from(v).unwrap_or(u32::MAX),
            Some(v) => {
                self.problem(key, format!("{v} is not allowed, use 1 or more"));
                default
            }
            None => default,
        }
    }

    pub fn positive(
        &mut self,
        key: &str,
        raw: Option<Raw<duration::Seconds>>,
        default: Duration,
    ) -> Duration {
        match self.value(key, raw) {
            Some(duration::Seconds(d)) if d >= Duration::from_millis(1) => d,
            Some(duration::Seconds(d)) => {
                self.problem(key, format!("{} is not allowed, use 1 ms or more", show(d)));
                default
            }
            None => default,
        }
    }

    /// A secret given inline (`key`) or in a file (`key_file`), never both.
    pub fn secret(
        &mut self,
        path: &str,
        key: &str,
        inline: Option<Raw<String>>,
        file: Option<Raw<String>>,
    ) -> Option<Secret> {
        let file_key = format!("{key}_file");
        let inline_key = join(path, key);
        let inline = match inline {
            None => None,
            Some(Raw::Valid(v)) => Some(v),
            Some(Raw::Invalid { .. }) => {
                self.problem(&join(path, key), "must be a string (value hidden)");
                None
            }
        };
        let file = self.value(&join(path, &file_key), file);
        // `${VAR:-}` with VAR unset gives "": no secret, not an empty one.
        let inline = inline.filter(|v| !v.is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    &join(path, key),
                    format!("give {key} or {file_key}, not both"),
                );
                None
            }
            (Some(v), None) => {
                if !self.from_env.contains(&inline_key) {
                    self.warnings.push(format!(
                        "{inline_key}: a secret is written in the configuration file; use \
                         ${{VARIABLE}} or {file_key} instead"
                    ));
                }
                Some(Secret::new(v))
            }
            (None, Some(file)) => self.read_file(&join(path, &file_key), &file).map(|bytes| {
                let text = String::from_utf8_lossy(&bytes);
                Secret::new(text.trim_end_matches(['\r', '\n']))
            }),
            (None, None) => None,
        }
    }

    pub fn read_file(&mut self, key: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.base_dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.problem(
                    key,
                    format!("cannot read {:?}: {e}", path.display().to_string()),
                );
                None
            }
        }
    }
}

/// Checks `raw`; returns the typed configuration when it could be built. The caller
/// treats any recorded problem as fatal.
/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}
