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
