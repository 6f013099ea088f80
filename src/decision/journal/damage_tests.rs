//! What the journal knows it lost: per-line checksums, a cut or emptied journal, and
//! starting over.

use super::*;

#[test]
fn damage_inside_a_string_fails_the_checksum() {
    let (_tmp, dir, _) = journal_with(3);
    let path = dir.join(LIVE);
    let text = fs::read_to_string(&path).unwrap();
    // Still valid JSON of the right shape: only the checksum can tell.
    let damaged = text.replacen("step-1", "step-7", 1);
    assert_ne!(damaged, text);
    fs::write(&path, &damaged).unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!err.to_string().contains("move it aside"), "{err}");
    assert!(err.to_string().contains("--journal-start-over"), "{err}");
    // The last line too: a crash never leaves a whole line with a wrong checksum.
    let damaged = text.replacen("step-2", "step-9", 1);
    fs::write(&path, &damaged).unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { line: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn old_lines_without_a_checksum_still_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    fs::create_dir_all(&dir).unwrap();
    let old = r#"{"seq":1,"at":"2026-05-01T03:12:07.250Z","compacted":{"kept":1}}
{"seq":2,"at":"2026-05-01T03:12:07.250Z","record":{"instance":"cache-1","step":"old"}}
"#;
    fs::write(dir.join(LIVE), old).unwrap();
    let (mut journal, entries) = open(&dir);
    assert_eq!(records(&entries), [decision("cache-1", "old")]);
    journal.append(&decision("cache-1", "new")).unwrap();
    drop(journal);
    let (_journal, entries) = open(&dir);
    assert_eq!(entries.len(), 2);
    // A damaged key is not taken for an old line.
    let text = fs::read_to_string(dir.join(LIVE)).unwrap();
    let damaged = text.replacen(r#""crc""#, r#""crd""#, 1);
    fs::write(dir.join(LIVE), damaged).unwrap();
    drop(_journal);
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(matches!(&err, JournalError::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_journal_cut_in_half_is_refused_not_read_as_a_torn_line() {
    let (_tmp, dir, _) = journal_with(16);
    let path = dir.join(LIVE);
    let text = fs::read(&path).unwrap();
    fs::write(&path, &text[..text.len() / 2]).unwrap();
    let cut = fs::read(&path).unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(matches!(&err, JournalError::Cut { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("recorded seq 16"), "{message}");
    assert!(message.contains("--journal-start-over"), "{message}");
    assert!(!message.contains("empty journal"), "{message}");
    // Refusing changed nothing.
    assert_eq!(fs::read(&path).unwrap(), cut);
}

#[test]
fn an_emptied_journal_is_refused() {
    let (_tmp, dir, _) = journal_with(3);
    fs::write(dir.join(LIVE), b"").unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(matches!(&err, JournalError::Cut { .. }), "{err:?}");
}

#[test]
fn an_emptied_journal_next_to_its_archive_is_refused_even_without_the_meta_file() {
    let (_tmp, dir, _) = journal_with(3);
    let (mut journal, _) = open(&dir);
    journal.compact(&[decision("cache-1", "kept")]).unwrap();
    drop(journal);
    fs::remove_file(dir.join(META)).unwrap();
    fs::write(dir.join(LIVE), b"").unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(matches!(&err, JournalError::Cut { .. }), "{err:?}");
    assert!(err.to_string().contains("journal.1.jsonl"), "{err}");
    // An older file put back as the live one (here the archive before the newest) is
    // older than the newest archive: refused too.
    let (_tmp, dir, _) = journal_with(3);
    let (mut journal, _) = open(&dir);
    journal.compact(&[decision("cache-1", "kept")]).unwrap();
    journal.append(&decision("cache-1", "more")).unwrap();
    journal.compact(&[decision("cache-1", "kept")]).unwrap();
    drop(journal);
    fs::remove_file(dir.join(META)).unwrap();
    fs::copy(archive_path(&dir, 2), dir.join(LIVE)).unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    assert!(matches!(&err, JournalError::Cut { .. }), "{err:?}");
}

#[test]
fn a_torn_last_append_is_still_not_a_cut() {
    let (_tmp, dir, written) = journal_with(4);
    // The fifth append wrote half its line and never returned: the meta file says 4.
    append_raw(&dir, br#"{"seq":5,"at":"2026-05-0"#);
    let (_journal, entries) = open(&dir);
    assert_eq!(records(&entries), written);
}

#[test]
fn starting_over_moves_the_damaged_files_aside_and_keeps_a_sound_journal() {
    let (_tmp, dir, written) = journal_with(6);
    // Sound: starting over changes nothing.
    let (journal, entries) =
        Journal::open_with::<Decision>(&dir, limits(), Opening::StartOver).unwrap();
    assert_eq!(records(&entries), written);
    drop(journal);
    let text = fs::read(dir.join(LIVE)).unwrap();
    fs::write(dir.join(LIVE), &text[..text.len() / 3]).unwrap();
    let (mut journal, entries) =
        Journal::open_with::<Decision>(&dir, limits(), Opening::StartOver).unwrap();
    assert!(entries.is_empty());
    journal.append(&decision("cache-1", "fresh")).unwrap();
    let names = names(&dir);
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("journal.jsonl.damaged-")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("journal.meta.damaged-")),
        "{names:?}"
    );
}
