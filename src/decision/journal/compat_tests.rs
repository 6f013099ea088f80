//! Journals written by the agent before the evaluation core and its typed steps
//! (`testdata/*.jsonl`, written by the engine's own tests on that version, each next to
//! the ledger that version replayed it to, `*.ledger.json`): this version replays them
//! to the same ledger, and writes every record back as the same JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Journal, JournalLimits};
use crate::decision::incident::{Ledger, Record, StepName};
use crate::model::rfc3339;

/// The `failover_cooldown` the ledgers were replayed with.
const COOLDOWN: Duration = Duration::from_secs(1800);

fn journals() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/decision/journal/testdata");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    out.sort();
    assert!(out.len() >= 9, "{out:?}");
    out
}

/// The ledger as the fixtures hold it.
fn ledger_json(l: &Ledger) -> Value {
    let cooldowns: BTreeMap<String, String> = l
        .cooldown_until
        .iter()
        .map(|(k, v)| (k.to_string(), rfc3339::format(*v)))
        .collect();
    json!({
        "active": l.active,
        "cooldown_until": cooldowns,
        "open": l.open.values().collect::<Vec<_>>(),
        "history": l.history,
        "next_id": l.next_id,
        "failback": l.failback,
    })
}

#[test]
fn journals_of_the_previous_version_replay_to_the_same_ledger() {
    for path in journals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(&path, dir.path().join("journal.jsonl")).unwrap();
        let (_, entries) = Journal::open::<Record>(dir.path(), JournalLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut ledger = Ledger::default();
        for entry in &entries {
            ledger.apply(&entry.record, COOLDOWN);
        }
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(path.with_extension("ledger.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(ledger_json(&ledger), expected, "{}", path.display());
    }
}

#[test]
fn every_record_of_the_previous_version_is_written_back_as_the_same_json() {
    let mut names = Vec::new();
    for path in journals() {
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let old: Value = serde_json::from_str(line).unwrap();
            let record: Record = serde_json::from_value(old["record"].clone()).unwrap();
            assert_eq!(
                serde_json::to_value(&record).unwrap(),
                old["record"],
                "{line}"
            );
            if let Record::Step { step, .. } = record {
                names.push(step.name);
            }
        }
    }
    // The fixtures hold every step an evaluation or a restart records.
    for name in StepName::ALL {
        assert!(
            names.contains(&name),
            "no {} step in the fixtures",
            name.as_str()
        );
    }
}
