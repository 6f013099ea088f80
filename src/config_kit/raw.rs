//! A value as the file gives it, before it is checked, and the keys a block does not
//! know: every serde form (the core's in `config::raw`, each integration's in its own
//! `config` module) is made of these.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// A value as given: either it has the expected type, or it is kept with the reason it
/// does not, so one bad value does not hide the others.
#[derive(Debug, Clone)]
pub enum Raw<T> {
    Valid(T),
    Invalid { given: Value, reason: String },
}

impl<T: DeserializeOwned> Raw<T> {
    /// Reads `value` as a `T`, or keeps it with the reason it is not one. An
    /// integration reads its block this way, from the value the core kept for it.
    pub fn from_value(value: Value) -> Self {
        match serde_yaml::from_value::<T>(value.clone()) {
            Ok(v) => Raw::Valid(v),
            // A value that came from `${VAR}` is a string; read it again as YAML so
            // that `port: ${REDIS_PORT}` is a number.
            Err(first) => match &value {
                Value::String(s) => match serde_yaml::from_str::<T>(s) {
                    Ok(v) => Raw::Valid(v),
                    Err(_) => Raw::Invalid {
                        given: value,
                        reason: first.to_string(),
                    },
                },
                _ => Raw::Invalid {
                    given: value,
                    reason: first.to_string(),
                },
            },
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Raw::from_value)
    }
}

/// Keys that a struct does not know, kept for the error report.
pub type Unknown = BTreeMap<String, Value>;

/// One block of the configuration as the reference's test sees it
/// (`config::docs_tests`): where the block sits, the serde form that reads it, and the
/// keys that form accepts. Each module lists its own blocks beside its serde forms,
/// relative to the block it owns, so that the nesting is written once, where it is read.
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub struct KeyBlock {
    /// The block's path under its owner's block: `""` for that block itself,
    /// `records[]` for each item of a list, `endpoints.<dc>` for each value of a map.
    pub at: &'static str,
    /// The serde form's name, as its `impl` with `const KEYS` spells it.
    pub raw: &'static str,
    pub keys: &'static [&'static str],
}

#[cfg(test)]
impl KeyBlock {
    pub const fn new(at: &'static str, raw: &'static str, keys: &'static [&'static str]) -> Self {
        Self { at, raw, keys }
    }
}
