//! docs/configuration.md is the reference of every key: each key the code accepts has a
//! row there, and each row names a key the code accepts.
//!
//! The accepted keys come from the serde forms' `KEYS` (what `Ctx::unknown` checks
//! against), placed by the [`KeyBlock`]s each module lists beside its forms; [`OWNERS`]
//! puts each module's blocks under the top-level key it owns. A second check reads the
//! sources, so that a new form with `KEYS` that no `KEY_BLOCKS` lists fails here too.
//!
//! The page's side: in every table whose first column is `key`, a row's first cell is
//! one key in backticks, its whole path (`instances[].endpoints.<dc>.port`: `[]` for
//! each item of a list, `<dc>` for each datacenter). `password[_file]` stands for
//! `password` and `password_file`. A key that holds a block (`timeouts`) needs no row
//! of its own when its keys have theirs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::actuators::{alertmanager, dns};
use crate::advisors::{ai, client_impact};
use crate::config::raw;
use crate::config_kit::raw::KeyBlock;
use crate::coordination;
use crate::enterprise;

const PAGE: &str = "docs/configuration.md";

/// Each module's blocks, under the key of the block it owns.
const OWNERS: &[(&str, &[KeyBlock])] = &[
    ("", raw::KEY_BLOCKS),
    ("", enterprise::config::CORE_KEY_BLOCKS),
    ("enterprise", enterprise::config::KEY_BLOCKS),
    ("alertmanager", alertmanager::config::KEY_BLOCKS),
    ("azure_openai", ai::config::KEY_BLOCKS),
    ("coordination", coordination::config::KEY_BLOCKS),
    ("dns_config", dns::config::KEY_BLOCKS),
    ("elk", client_impact::config::KEY_BLOCKS),
];

/// `a` and `b` as one path.
fn join(a: &str, b: &str) -> String {
    match (a, b) {
        ("", b) => b.to_owned(),
        (a, "") => a.to_owned(),
        (a, b) => format!("{a}.{b}"),
    }
}

/// Every block with its whole path.
/// Forms of files other than the configuration (`--web.config.file`), each with the page
/// that documents their keys.
const OTHER_FILES: &[(&str, &[KeyBlock])] =
    &[("docs/security.md", crate::api::WEB_CONFIG_KEY_BLOCKS)];

fn blocks() -> Vec<(String, KeyBlock)> {
    OWNERS
        .iter()
        .flat_map(|(owner, blocks)| blocks.iter().map(move |b| (join(owner, b.at), *b)))
        .collect()
}

/// Every accepted key's path, with the serde form that accepts it.
fn accepted() -> BTreeMap<String, &'static str> {
    let mut keys = BTreeMap::new();
    for (path, block) in blocks() {
        for key in block.keys {
            keys.insert(join(&path, key), block.raw);
        }
    }
    keys
}

/// The key that holds a block: `instances` for `instances[]`, `instances[].endpoints`
/// for `instances[].endpoints.<dc>`, `timeouts` for `timeouts`.
fn holder(block: &str) -> &str {
    if let Some(list) = block.strip_suffix("[]") {
        return list;
    }
    match block.rsplit_once('.') {
        Some((map, each)) if each.starts_with('<') => map,
        _ => block,
    }
}

/// `(file, form)` for every `impl Form {` with a `const KEYS` among `src/`'s top-level
/// items.
fn forms_with_keys(dir: &Path, root: &Path, found: &mut BTreeSet<(String, String)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            forms_with_keys(&path, root, found);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let file = path.strip_prefix(root).unwrap().display().to_string();
        let mut within: Option<String> = None;
        for line in fs::read_to_string(&path).unwrap().lines() {
            if let Some(rest) = line.strip_prefix("impl ") {
                within = rest.strip_suffix(" {").map(str::to_owned);
            } else if line == "}" {
                within = None;
            } else if line.trim_start().contains("const KEYS")
                && let Some(form) = &within
            {
                found.insert((file.clone(), form.clone()));
            }
        }
    }
}

/// A documented key: its path, the page's line, and the section it is in.
struct Row {
    key: String,
    line: usize,
    section: String,
}

/// Every key in the first cell of a key table, `[_file]` spelled out; or the lines
/// whose first cell is not one key.
fn rows(page: &str) -> (Vec<Row>, Vec<String>) {
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    let mut section = String::new();
    let (mut in_key_table, mut fenced) = (false, false);
    for (i, line) in page.lines().enumerate() {
        let line_no = i + 1;
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        if line.starts_with('#') {
            section = line.trim_start_matches('#').trim().to_owned();
        }
        let Some(cells) = line.strip_prefix('|') else {
            in_key_table = false;
            continue;
        };
        let first = cells.split('|').next().unwrap_or("").trim();
        if first == "key" {
            in_key_table = true;
            continue;
        }
        if !in_key_table || first.starts_with("---") {
            continue;
        }
        let key = first
            .strip_prefix('`')
            .and_then(|k| k.strip_suffix('`'))
            .filter(|k| !k.contains('`') && !k.contains(' '));
        let Some(key) = key else {
            bad.push(format!(
                "{PAGE}:{line_no}: the first cell of a key table must be one `key`, not {first}"
            ));
            continue;
        };
        let spelled = match key.strip_suffix("[_file]") {
            Some(base) => vec![base.to_owned(), format!("{base}_file")],
            None => vec![key.to_owned()],
        };
        for key in spelled {
            rows.push(Row {
                key,
                line: line_no,
                section: section.clone(),
            });
        }
    }
    (rows, bad)
}

/// The section of the documented key nearest to `key` (the longest shared prefix of
/// path segments): where a missing key's row belongs.
fn nearest_section<'a>(key: &str, rows: &'a [Row]) -> &'a str {
    let shared = |other: &str| {
        key.split('.')
            .zip(other.split('.'))
            .take_while(|(a, b)| a == b)
            .count()
    };
    rows.iter()
        .max_by_key(|r| shared(&r.key))
        .map_or("", |r| r.section.as_str())
}

#[test]
fn every_form_with_keys_is_placed_in_the_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut in_sources = BTreeSet::new();
    forms_with_keys(&root.join("src"), root, &mut in_sources);
    let other_files = OTHER_FILES.iter().flat_map(|(_, blocks)| blocks.iter());
    let placed: BTreeSet<&str> = blocks()
        .iter()
        .map(|(_, b)| b.raw)
        .chain(other_files.map(|b| b.raw))
        .collect();
    let mut problems = Vec::new();
    for (file, form) in &in_sources {
        if !placed.contains(form.as_str()) {
            problems.push(format!(
                "{form} ({file}) declares KEYS, but no KEY_BLOCKS places it: add \
                 `KeyBlock::new(\"<path under its owner's block>\", \"{form}\", {form}::KEYS)` \
                 to the KEY_BLOCKS of its module (and that list to OWNERS in \
                 src/config/docs_tests.rs if it is new)"
            ));
        }
    }
    let declared: BTreeSet<&str> = in_sources.iter().map(|(_, f)| f.as_str()).collect();
    for form in placed.difference(&declared) {
        problems.push(format!(
            "a KEY_BLOCKS names {form}, but no `impl {form} {{` in src/ declares KEYS"
        ));
    }
    let keys = accepted();
    for (path, block) in blocks() {
        if !path.is_empty() && !keys.contains_key(holder(&path)) {
            problems.push(format!(
                "{}'s block sits at `{path}`, but no form accepts the key `{}`",
                block.raw,
                holder(&path)
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_reference_documents_every_accepted_key_and_no_other() {
    let page = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE)).unwrap();
    let (rows, mut problems) = rows(&page);
    let keys = accepted();
    let holders: BTreeSet<String> = blocks()
        .iter()
        .map(|(path, _)| holder(path).to_owned())
        .collect();
    let mut documented: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &rows {
        if let Some(first) = documented.insert(&row.key, row.line) {
            problems.push(format!(
                "{PAGE}:{}: `{}` is documented twice (also line {first})",
                row.line, row.key
            ));
        }
        if !keys.contains_key(&row.key) {
            problems.push(format!(
                "{PAGE}:{}: `{}` is not a key the agent accepts (no KEYS has it): remove \
                 the row or correct the key",
                row.line, row.key
            ));
        }
    }
    for (key, form) in &keys {
        if !documented.contains_key(key.as_str()) && !holders.contains(key) {
            problems.push(format!(
                "`{key}` ({form}::KEYS) is not documented: add a row \
                 \"| `{key}` | default | meaning |\" to the section \"{}\" of {PAGE}",
                nearest_section(key, &rows)
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_keys_of_other_files_are_on_their_pages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut missing = Vec::new();
    for (page, blocks) in OTHER_FILES {
        let text = fs::read_to_string(root.join(page)).unwrap();
        for block in *blocks {
            for key in block.keys {
                // In prose as `key` or `its.path`, or in the page's example as `key:`.
                let path = join(block.at, key);
                if ![format!("`{key}`"), format!("`{path}`"), format!("{key}:")]
                    .iter()
                    .any(|form| text.contains(form.as_str()))
                {
                    missing.push(format!("{page}: `{path}`"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "keys not documented: {missing:?}");
}
