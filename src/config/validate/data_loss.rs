//! `max_data_loss` and `instances[].data`: each instance's data-loss budget, resolved
//! once here so that the decision and the metrics read one value per instance.

use std::collections::BTreeMap;

use crate::config::raw::{RawBounds, RawBudget};
use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::raw::Raw;
use crate::decision::settings::{DataKind, DataLossSettings};
use crate::model::InstanceId;
use crate::model::replication::Budget;

/// What an instance says of its data: `data` and its own `max_data_loss`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct InstanceData {
    pub kind: DataKind,
    pub budget: Option<Budget>,
}

/// `instances[i].data` and `instances[i].max_data_loss`.
pub(super) fn instance(
    cx: &mut Ctx<'_>,
    path: &str,
    data: Option<Raw<String>>,
    budget: Option<Raw<RawBudget>>,
) -> InstanceData {
    let key = join(path, "data");
    let kind = match cx.value(&key, data).as_deref() {
        None | Some("store") => DataKind::Store,
        Some("cache") => DataKind::Cache,
        Some(other) => {
            cx.problem(&key, format!("{other:?} is not store or cache"));
            DataKind::Store
        }
    };
    InstanceData {
        kind,
        budget: read(cx, &join(path, "max_data_loss"), budget),
    }
}

/// Every instance's budget: its own key; else unbounded for a cache; else the
/// top-level `max_data_loss`, or [`Budget::STORE`].
pub(super) fn settings(
    cx: &mut Ctx<'_>,
    top: Option<Raw<RawBudget>>,
    instances: BTreeMap<InstanceId, InstanceData>,
) -> DataLossSettings {
    let default = read(cx, "max_data_loss", top).unwrap_or(Budget::STORE);
    let instances = instances
        .into_iter()
        .filter_map(|(uid, data)| {
            let budget = match (data.budget, data.kind) {
                (Some(own), _) => own,
                (None, DataKind::Cache) => Budget::UNBOUNDED,
                (None, DataKind::Store) => return None,
            };
            (budget != default).then_some((uid, budget))
        })
        .collect();
    DataLossSettings { default, instances }
}

/// A budget: `none`, or `{bytes, seconds}` with one bound at least.
fn read(cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<RawBudget>>) -> Option<Budget> {
    let bounds = match cx.value(key, raw)? {
        RawBudget::Word(word) if word == "none" => return Some(Budget::UNBOUNDED),
        RawBudget::Word(word) => {
            cx.problem(
                key,
                format!(
                    "{word:?} is not a budget: give bytes, seconds or both \
                     ({{bytes: 1048576, seconds: 10}}), or none for no bound"
                ),
            );
            return None;
        }
        RawBudget::Bounds(bounds) => bounds,
    };
    cx.unknown(key, &bounds.unknown, &[RawBounds::KEYS]);
    let given = bounds.bytes.is_some() || bounds.seconds.is_some();
    let bytes_key = join(key, "bytes");
    let bytes = match cx.value(&bytes_key, bounds.bytes) {
        Some(n) if n >= 0 => Some(n as u64),
        Some(n) => {
            cx.problem(&bytes_key, format!("{n} is negative, use 0 or more"));
            return None;
        }
        None => None,
    };
    let seconds = cx.value(&join(key, "seconds"), bounds.seconds).map(|s| s.0);
    if !given {
        cx.problem(
            key,
            "gives no bound: give bytes, seconds or both, or none for no bound",
        );
        return None;
    }
    (bytes.is_some() || seconds.is_some()).then_some(Budget { bytes, seconds })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, ConfigError, parse};
    use crate::model::InstanceId;
    use crate::model::replication::Budget;

    fn instances(extra: &str) -> String {
        format!(
            "instances:\n\
             \x20 - {{uid: orders, active_dc: east{extra},\n\
             \x20    endpoints: {{east: {{host: e.example}}, west: {{host: w.example}}}}}}\n\
             \x20 - {{uid: sessions, active_dc: east, data: cache,\n\
             \x20    endpoints: {{east: {{host: e2.example}}, west: {{host: w2.example}}}}}}\n"
        )
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        parse(text, "test", Path::new("."), &|_| None).map(|l| l.config)
    }

    fn budget(c: &Config, uid: &str) -> Budget {
        c.failover.budget(&InstanceId::new(uid))
    }

    #[test]
    fn a_store_defaults_to_1_mib_and_10_s_and_a_cache_to_no_budget() {
        let c = load(&instances("")).unwrap();
        assert_eq!(budget(&c, "orders"), Budget::STORE);
        assert_eq!(budget(&c, "sessions"), Budget::UNBOUNDED);
    }

    #[test]
    fn the_top_level_key_is_the_stores_default_and_an_instances_own_key_wins() {
        let text = format!(
            "{}max_data_loss: {{seconds: 30s}}\n",
            instances(", max_data_loss: {bytes: 0}")
        );
        let c = load(&text).unwrap();
        let only_bytes = Budget {
            bytes: Some(0),
            seconds: None,
        };
        assert_eq!(budget(&c, "orders"), only_bytes);
        assert_eq!(budget(&c, "sessions"), Budget::UNBOUNDED);
        assert_eq!(
            budget(&c, "anything-else"),
            Budget {
                bytes: None,
                seconds: Some(Duration::from_secs(30)),
            }
        );
        let c = load(&format!("{}max_data_loss: none\n", instances(""))).unwrap();
        assert_eq!(budget(&c, "orders"), Budget::UNBOUNDED);
        let text = instances(", data: cache, max_data_loss: {bytes: 1048576, seconds: 10}");
        assert_eq!(budget(&load(&text).unwrap(), "orders"), Budget::STORE);
    }

    #[test]
    fn bad_budgets_are_named_by_their_whole_key() {
        let text = format!(
            "{}max_data_loss: {{bytes: -1, second: 10}}\n",
            instances(", data: warehouse, max_data_loss: plenty")
        );
        let Err(ConfigError::Invalid { problems, .. }) = load(&text) else {
            panic!("expected problems");
        };
        let said: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        for needle in [
            "instances[0].data: \"warehouse\" is not store or cache",
            "instances[0].max_data_loss: \"plenty\" is not a budget",
            "max_data_loss.bytes: -1 is negative",
            "max_data_loss.second: unknown key",
        ] {
            assert!(
                said.iter().any(|p| p.contains(needle)),
                "{needle:?}: {said:#?}"
            );
        }
        let Err(ConfigError::Invalid { problems, .. }) =
            load(&format!("{}max_data_loss: {{}}\n", instances("")))
        else {
            panic!("expected problems");
        };
        assert!(
            problems[0]
                .to_string()
                .contains("max_data_loss: gives no bound"),
            "{problems:?}"
        );
    }
}
