//! Timing profiles (`profiles/*.yaml`), as the bed applies them through overlays: the
//! `agent` keys go into every agent's configuration, the `prometheus` interval into the
//! Prometheus overlay, and the `rules` (a `for:` by alert name) into overlays of the
//! shipped rule files.

use std::collections::BTreeMap;

use serde_yaml::Value as Yaml;

use super::super::stack::repo;

/// A timing profile of `profiles/` (`fast.yaml`, `fleet.yaml`): the agent's keys,
/// Prometheus's interval, and the `for:` of the rules it shortens.
pub struct Profile {
    pub agent: String,
    pub prometheus_interval: String,
    /// Alert name to its `for:` in the profile (the shipped rules otherwise).
    pub rule_for: BTreeMap<String, String>,
}

impl Profile {
    pub fn fast() -> Profile {
        Profile::load("fast")
    }

    /// `profiles/<name>.yaml`.
    pub fn load(name: &str) -> Profile {
        let path = repo(&format!("profiles/{name}.yaml"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: Yaml = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
        let agent = serde_yaml::to_string(&doc["agent"]).unwrap();
        let prometheus_interval = doc["prometheus"]["scrape_interval"]
            .as_str()
            .expect("prometheus.scrape_interval")
            .to_owned();
        assert_eq!(
            doc["prometheus"]["evaluation_interval"].as_str(),
            Some(prometheus_interval.as_str()),
            "the bed applies one interval to scrape and evaluation"
        );
        let rule_for = doc["rules"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(alert, rule)| {
                let alert = alert.as_str().expect("rules: alert names").to_owned();
                let duration = rule["for"]
                    .as_str()
                    .unwrap_or_else(|| panic!("rules.{alert}: only `for:` is overridden"));
                (alert, duration.to_owned())
            })
            .collect();
        Profile {
            agent,
            prometheus_interval,
            rule_for,
        }
    }
}
