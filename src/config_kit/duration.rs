//! Durations in the configuration: a bare number is seconds (as in the seed's
//! `"monitoring_interval": 30`), a string may carry a unit: `500ms`, `2s`, `5m`, `1h`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl Seconds {
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration; write 30, \"30s\" or \"500ms\""))?;
        let scale = match unit.trim() {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "`{other}` is not a unit of time; use ms, s, m or h"
                ));
            }
        };
        from_secs(number * scale)
    }
}

fn from_secs(secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{secs} s is not a valid duration"))
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;

        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds as a number, or a string such as \"500ms\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|v| Seconds(Duration::from_secs(v)))
                    .map_err(|_| E::custom(format!("{v} s is negative")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                from_secs(v).map(Seconds).map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                Seconds::parse(v).map(Seconds).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SecondsVisitor)
    }
}

/// How a duration is written back in messages: `30 s`, `500 ms`.
pub fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_seconds_and_strings_may_carry_units() {
        let cases = [
            ("30", Duration::from_secs(30)),
            ("2.5", Duration::from_millis(2500)),
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
        ];
        for (text, want) in cases {
            let got: Seconds = serde_yaml::from_str(text).unwrap();
            assert_eq!(got.0, want, "{text}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(
            Seconds::parse("5 fortnights")
                .unwrap_err()
                .contains("fortnights")
        );
        assert!(Seconds::parse("soon").unwrap_err().contains("soon"));
        assert!(serde_yaml::from_str::<Seconds>("-3").is_err());
    }

    #[test]
    fn show_is_short() {
        assert_eq!(show(Duration::ZERO), "0 s");
        assert_eq!(show(Duration::from_millis(250)), "250 ms");
        assert_eq!(show(Duration::from_secs(30)), "30 s");
    }
}
