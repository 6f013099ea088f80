use super::*;
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Decision {
    instance: String,
    step: String,
}

fn decision(instance: &str, step: &str) -> Decision {
    Decision {
        instance: instance.into(),
        step: step.into(),
    }
}

fn limits() -> JournalLimits {
    JournalLimits {
        max_bytes: 1 << 20,
        keep_archives: 2,
    }
}

fn open(dir: &Path) -> (Journal, Vec<Entry<Decision>>) {
    reopen(dir, limits()).unwrap()
}

/// `Journal::open`, waiting while the directory is locked. The crash tests spawn
/// children, and a child shares the parent's open files (and so their locks) between
/// fork and exec: a journal another test has just dropped can stay locked for that
/// moment.
fn reopen<T: DeserializeOwned>(
    dir: &Path,
    limits: JournalLimits,
) -> Result<(Journal, Vec<Entry<T>>), JournalError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Journal::open(dir, limits) {
            Err(JournalError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

fn records(entries: &[Entry<Decision>]) -> Vec<Decision> {
    entries.iter().map(|e| e.record.clone()).collect()
}

/// A journal in `<tmp>/state` (created by `open`) holding `n` decisions.
fn journal_with(n: usize) -> (tempfile::TempDir, PathBuf, Vec<Decision>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let (mut journal, _) = open(&dir);
    let written: Vec<_> = (0..n)
        .map(|i| decision("cache-1", &format!("step-{i}")))
        .collect();
    for record in &written {
        journal.append(record).unwrap();
    }
    (tmp, dir, written)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn append_raw(dir: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.join(LIVE))
        .unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn append_then_reopen_returns_every_entry_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let (mut journal, entries) = open(&dir);
    assert!(entries.is_empty());
    let a = journal.append(&decision("cache-1", "intent")).unwrap();
    let b = journal.append(&decision("cache-1", "dns changed")).unwrap();
    assert_eq!((a.seq, b.seq), (1, 2));
    drop(journal);

    let (_journal, entries) = open(&dir);
    assert_eq!(
        entries,
        vec![
            Entry {
                seq: 1,
                at: a.at,
                record: decision("cache-1", "intent")
            },
            Entry {
                seq: 2,
                at: b.at,
                record: decision("cache-1", "dns changed")
            },
        ]
    );
    let text = fs::read_to_string(dir.join(LIVE)).unwrap();
    let first = text.lines().next().unwrap();
    let body = format!(
        r#"{{"seq":1,"at":"{}","record":{{"instance":"cache-1","step":"intent"}}}}"#,
        Timestamp(a.at)
    );
    let expected = format!(
        r#"{},"crc":"{:08x}"}}"#,
        &body[..body.len() - 1],
        crc32fast::hash(body.as_bytes())
    );
    assert_eq!(first, expected);
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with('\n'));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(LIVE)), 0o600);
}

#[test]
fn seq_keeps_increasing_across_reopen_and_compaction() {
    let (_tmp, dir, _) = journal_with(2);
    let (mut journal, _) = open(&dir);
    assert_eq!(journal.append(&decision("cache-1", "c")).unwrap().seq, 3);
    // The marker takes 4, the kept record 5.
    journal.compact(&[decision("cache-1", "kept")]).unwrap();
    assert_eq!(journal.append(&decision("cache-1", "d")).unwrap().seq, 6);
    drop(journal);

    let (mut journal, entries) = open(&dir);
    let seqs: Vec<_> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [5, 6]);
    // Nothing kept: the marker alone carries the sequence over a restart.
    journal.compact::<Decision>(&[]).unwrap();
    drop(journal);
    let (mut journal, entries) = open(&dir);
    assert!(entries.is_empty());
    assert_eq!(journal.append(&decision("cache-1", "e")).unwrap().seq, 8);
}

#[test]
fn a_torn_last_line_is_cut_and_appending_continues() {
    let complete_but_no_newline = format!(
        r#"{{"seq":3,"at":"{}","record":{{"instance":"cache-1","step":"x"}}}}"#,
        Timestamp(UNIX_EPOCH)
    );
    let torn: [&[u8]; 5] = [
        br#"{"seq":3,"at":"2026-05-0"#,
        b"\0\0\0\0\0\0\0\0",
        b"\0\0\0\0\0\0\0\0\n",
        br#"{"seq":3,"at":"2026-05-01T03:12:07.250Z","rec"#,
        complete_but_no_newline.as_bytes(),
    ];
    for tail in torn {
        let (_tmp, dir, written) = journal_with(2);
        let clean = fs::read(dir.join(LIVE)).unwrap();
        append_raw(&dir, tail);

        let (mut journal, entries) = open(&dir);
        assert_eq!(records(&entries), written, "tail {tail:?}");
        assert_eq!(fs::read(dir.join(LIVE)).unwrap(), clean, "tail {tail:?}");
        assert_eq!(journal.append(&decision("cache-1", "next")).unwrap().seq, 3);
        drop(journal);
        let (_journal, entries) = open(&dir);
        assert_eq!(entries.len(), 3, "tail {tail:?}");
    }
}

#[test]
fn a_corrupt_line_before_the_last_is_an_error_naming_file_and_line() {
    let cases: [(&str, &str); 4] = [
        ("{not json", "key must be a string"),
        ("", "EOF while parsing"),
        (
            r#"{"seq":2,"at":"2026-05-01T03:12:07.250Z"}"#,
            "either a record or a compaction marker",
        ),
        (
            r#"{"seq":1,"at":"2026-05-01T03:12:07.250Z","record":{}}"#,
            "seq 1 does not follow seq 1",
        ),
    ];
    for (line2, reason) in cases {
        let (_tmp, dir, _) = journal_with(3);
        let path = dir.join(LIVE);
        let text = fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = line2;
        let corrupted = format!("{}\n", lines.join("\n"));
        fs::write(&path, &corrupted).unwrap();

        let err = reopen::<Decision>(&dir, limits()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 2, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains(reason), "{message}");
        // Nothing was cut: the operator gets the file as it was.
        assert_eq!(fs::read_to_string(&path).unwrap(), corrupted);
    }
}

#[test]
fn a_record_of_another_shape_is_an_error_naming_line_and_field() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Other {
        count: u32,
    }
    let (_tmp, dir, _) = journal_with(2);
    let err = reopen::<Other>(&dir, limits()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, JournalError::Record { line: 1, .. }),
        "{message}"
    );
    assert!(message.contains("missing field `count`"), "{message}");
    assert!(message.contains(&dir.join(LIVE).display().to_string()));
}

#[test]
fn compaction_keeps_only_the_live_records_and_archives_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let limits = JournalLimits {
        max_bytes: 400,
        keep_archives: 2,
    };
    let (mut journal, _) = reopen::<Decision>(&dir, limits).unwrap();
    for round in 0..4 {
        let mut appended = 0;
        while !journal.needs_compaction() {
            journal.append(&decision("cache-1", "step")).unwrap();
            appended += 1;
        }
        assert!(appended > 1);
        assert!(journal.size_bytes() > 400);
        let before = fs::read(dir.join(LIVE)).unwrap();
        journal
            .compact(&[decision("cache-1", &format!("open incident {round}"))])
            .unwrap();
        assert!(!journal.needs_compaction());
        assert_eq!(fs::read(archive_path(&dir, 1)).unwrap(), before);
    }
    assert_eq!(
        names(&dir),
        [
            "journal.1.jsonl",
            "journal.2.jsonl",
            "journal.jsonl",
            "journal.lock",
            "journal.meta"
        ]
    );
    let text = fs::read_to_string(dir.join(LIVE)).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(r#""compacted":{"kept":1}"#),
        "{text}"
    );
    assert_eq!(journal.size_bytes(), text.len() as u64);
    drop(journal);
    let (journal, entries) = reopen::<Decision>(&dir, limits).unwrap();
    assert_eq!(records(&entries), [decision("cache-1", "open incident 3")]);
    drop(journal);

    // Fewer archives than before (a configuration change) drops the extra ones.
    let (mut journal, _) = reopen::<Decision>(
        &dir,
        JournalLimits {
            keep_archives: 0,
            ..limits
        },
    )
    .unwrap();
    journal.compact::<Decision>(&[]).unwrap();
    assert_eq!(
        names(&dir),
        ["journal.jsonl", "journal.lock", "journal.meta"]
    );
}

#[test]
fn a_large_kept_state_does_not_compact_on_every_append() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = JournalLimits {
        max_bytes: 200,
        keep_archives: 1,
    };
    let (mut journal, _) = reopen::<Decision>(tmp.path(), limits).unwrap();
    let state: Vec<_> = (0..5)
        .map(|i| decision(&format!("cache-{i}"), "open"))
        .collect();
    journal.compact(&state).unwrap();
    let compacted = journal.size_bytes();
    assert!(compacted > 200);
    while journal.size_bytes() < 2 * compacted {
        assert!(!journal.needs_compaction());
        journal.append(&decision("cache-1", "step")).unwrap();
    }
    assert!(journal.needs_compaction());
}

#[test]
fn a_failed_append_leaves_no_partial_line() {
    let (_tmp, dir, _) = journal_with(1);
    let (mut journal, _) = open(&dir);
    let size = journal.size_bytes();
    journal.fault = Some((Step::Appended, Fault::Fail));
    let err = journal.append(&decision("cache-1", "lost")).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(fs::metadata(dir.join(LIVE)).unwrap().len(), size);
    journal.fault = None;
    assert_eq!(journal.append(&decision("cache-1", "kept")).unwrap().seq, 2);
    drop(journal);
    let (_journal, entries) = open(&dir);
    assert_eq!(entries.len(), 2);
}

#[test]
fn a_failed_compaction_step_leaves_the_old_journal_in_use() {
    for step in [
        Step::TmpWritten,
        Step::TmpSynced,
        Step::ArchivesShifted,
        Step::Archived,
    ] {
        let (_tmp, dir, mut written) = journal_with(3);
        let (mut journal, _) = open(&dir);
        journal.fault = Some((step, Fault::Fail));
        let err = journal.compact(&[decision("cache-1", "kept")]).unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(!dir.join(TMP).exists(), "{step:?}");
        journal.fault = None;
        assert_eq!(
            journal.append(&decision("cache-1", "after")).unwrap().seq,
            4
        );
        written.push(decision("cache-1", "after"));
        drop(journal);
        let (_journal, entries) = open(&dir);
        assert_eq!(records(&entries), written, "{step:?}");
    }

    // After the rename the new file is live but maybe not durable: no more writes.
    let (_tmp, dir, _) = journal_with(3);
    let (mut journal, _) = open(&dir);
    journal.fault = Some((Step::Renamed, Fault::Fail));
    journal.compact(&[decision("cache-1", "kept")]).unwrap_err();
    let err = journal.append(&decision("cache-1", "after")).unwrap_err();
    assert!(matches!(err, JournalError::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("restart"), "{err}");
    drop(journal);
    let (mut journal, entries) = open(&dir);
    assert_eq!(records(&entries), [decision("cache-1", "kept")]);
    assert_eq!(
        journal.append(&decision("cache-1", "after")).unwrap().seq,
        6
    );
}

#[test]
fn a_stray_tmp_file_is_removed_on_open() {
    let (_tmp, dir, written) = journal_with(2);
    fs::write(dir.join(TMP), b"{\"seq\":3,\"at\":\"half").unwrap();
    let (_journal, entries) = open(&dir);
    assert_eq!(records(&entries), written);
    assert!(!dir.join(TMP).exists());
}

#[test]
fn a_missing_live_file_next_to_archives_is_refused() {
    let (_tmp, dir, _) = journal_with(2);
    let (mut journal, _) = open(&dir);
    journal.compact(&[decision("cache-1", "kept")]).unwrap();
    drop(journal);
    fs::remove_file(dir.join(LIVE)).unwrap();
    let err = reopen::<Decision>(&dir, limits()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, JournalError::MissingLive { .. }), "{message}");
    assert!(message.contains(&dir.join(LIVE).display().to_string()));
    assert!(message.contains("journal.1.jsonl"), "{message}");
    assert!(!dir.join(LIVE).exists(), "must not start an empty journal");

    // Nor next to the tmp file of a compaction.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(TMP), b"").unwrap();
    let err = reopen::<Decision>(tmp.path(), limits()).unwrap_err();
    assert!(err.to_string().contains(TMP), "{err}");
}

#[test]
fn a_second_open_of_a_locked_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, _) = open(tmp.path());
    let err = Journal::open::<Decision>(tmp.path(), limits()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, JournalError::Locked { .. }), "{message}");
    assert!(message.contains(&tmp.path().join(LOCK).display().to_string()));
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    open(tmp.path());
}

#[test]
fn journal_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Journal>();
}

// Crash tests: the test binary runs itself as a child (`crash_child`) that appends or
// compacts and then dies by SIGKILL or abort() at a chosen point.

const CHILD_DIR: &str = "JOURNAL_TEST_CHILD_DIR";
const CHILD_MODE: &str = "JOURNAL_TEST_CHILD_MODE";
const COMPACTION_STEPS: [Step; 5] = [
    Step::TmpWritten,
    Step::TmpSynced,
    Step::ArchivesShifted,
    Step::Archived,
    Step::Renamed,
];

fn child(dir: &Path, mode: &str) -> Command {
    let module = module_path!().split_once("::").unwrap().1;
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([&format!("{module}::crash_child"), "--exact", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_MODE, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Does nothing unless started by a crash test.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(mode)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODE)) else {
        return;
    };
    let (mut journal, _) = open(Path::new(&dir));
    match mode.as_str() {
        "append-and-wait" => {
            let entry = journal.append(&decision("cache-1", "intent")).unwrap();
            println!("appended {}", entry.seq);
            std::thread::sleep(Duration::from_secs(60));
        }
        "torn-append" => {
            journal.fault = Some((Step::TornAppend, Fault::Abort));
            let _ = journal.append(&decision("cache-1", "torn"));
        }
        step => {
            let step = COMPACTION_STEPS
                .into_iter()
                .find(|s| format!("{s:?}") == step)
                .unwrap();
            journal.fault = Some((step, Fault::Abort));
            let _ = journal.compact(&[decision("cache-1", "kept")]);
        }
    }
    panic!("the child should have been killed or aborted");
}

#[test]
fn a_record_survives_kill_9_right_after_append_returns() {
    let (_tmp, dir, _) = journal_with(1);
    let mut process = child(&dir, "append-and-wait").spawn().unwrap();
    let mut stdout = BufReader::new(process.stdout.take().unwrap());
    // libtest writes "test ... " first, on the same line.
    let mut line = String::new();
    let seq = loop {
        line.clear();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "child exited");
        if let Some((_, seq)) = line.split_once("appended ") {
            break seq.trim().to_owned();
        }
    };
    process.kill().unwrap();
    assert_eq!(process.wait().unwrap().signal(), Some(SIGKILL));
    assert_eq!(seq, "2");

    // The dead child's lock went with it.
    let (mut journal, entries) = open(&dir);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].seq, 2);
    assert_eq!(entries[1].record, decision("cache-1", "intent"));
    assert_eq!(journal.append(&decision("cache-1", "next")).unwrap().seq, 3);
}

#[test]
fn a_crash_mid_append_loses_only_that_record() {
    let (_tmp, dir, written) = journal_with(2);
    let status = child(&dir, "torn-append").status().unwrap();
    assert_eq!(status.signal(), Some(SIGABRT));
    assert!(!fs::read(dir.join(LIVE)).unwrap().ends_with(b"\n"));

    let (mut journal, entries) = open(&dir);
    assert_eq!(records(&entries), written);
    assert_eq!(journal.append(&decision("cache-1", "next")).unwrap().seq, 3);
}

#[test]
fn a_crash_at_any_compaction_step_leaves_a_complete_journal() {
    for step in COMPACTION_STEPS {
        let (_tmp, dir, written) = journal_with(3);
        let status = child(&dir, &format!("{step:?}")).status().unwrap();
        assert_eq!(status.signal(), Some(SIGABRT), "{step:?}");

        let (mut journal, entries) = open(&dir);
        let next = journal.append(&decision("cache-1", "after")).unwrap().seq;
        if step == Step::Renamed {
            assert_eq!(records(&entries), [decision("cache-1", "kept")]);
            assert_eq!(next, 6);
        } else {
            assert_eq!(records(&entries), written, "{step:?}");
            assert_eq!(next, 4);
        }
        assert!(!dir.join(TMP).exists(), "{step:?}");
        drop(journal);
        let (mut journal, _) = open(&dir);
        journal.compact(&[decision("cache-1", "again")]).unwrap();
    }
}

#[path = "damage_tests.rs"]
mod damage;

/// Replays `bytes` as a live file; panics only if replay does.
fn replay_bytes(bytes: &[u8]) -> Result<line::Replay<Decision>, JournalError> {
    line::replay::<Decision>(Path::new("journal.jsonl"), bytes)
}

fn valid_journal(n: usize) -> Vec<u8> {
    let (_tmp, dir, _) = journal_with(n);
    fs::read(dir.join(LIVE)).unwrap()
}

#[path = "fuzz_tests.rs"]
mod fuzz;
