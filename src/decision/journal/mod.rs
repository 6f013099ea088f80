//! The decision journal: every decision and step, durably, so that the engine's intent is
//! on disk before it acts and a restart can tell what it already did.
//!
//! # On disk
//!
//! `<dir>/journal.jsonl` holds one JSON object per line, in order:
//!
//! ```text
//! {"seq":41,"at":"2026-05-01T03:12:07.250Z","record":{...}}
//! {"seq":42,"at":"2026-05-01T03:12:07.913Z","record":{...}}
//! ```
//!
//! Each line written by this version ends with `"crc":"<8 hex digits>"`, the CRC-32 of
//! the line's bytes without that field: damage inside a string, which JSON would
//! accept, fails the checksum. Lines without it (written before checksums) still load.
//!
//! `seq` strictly increases, across compactions and restarts; `at` is UTC with
//! milliseconds; `record` is whatever the caller serialized. A compaction starts a new
//! file with a marker line, `{"seq":43,"at":"...","compacted":{"kept":2}}`, followed by
//! the records the caller still needs; the marker carries the sequence forward even when
//! nothing is kept, and tells a reader where the history was cut. The file it replaced
//! becomes `journal.1.jsonl` (older ones shift up to `journal.<keep_archives>.jsonl`).
//! `journal.lock` holds an advisory lock and the owner's pid. `journal.meta` holds the
//! seq of the last line whose append returned. `jq` reads the journal files.
//!
//! # Crash safety
//!
//! - `append` writes the whole line with one `write` to a file opened for appending,
//!   then `fdatasync`s it: when it returns, the record survives a power cut. If it
//!   fails, the partial line is cut off again; if even that fails, the journal refuses
//!   every further write until the process restarts and replays what is on disk.
//! - A crash mid-write can only damage the last line, because nothing is written after
//!   a line until it is synced. `open` cuts a last line that has no newline or is not
//!   JSON (a warning says how much). A bad line anywhere else is corruption that no
//!   crash of ours produces: `open` refuses, naming the file and line, rather than
//!   guess which decisions to forget.
//! - `compact` writes `journal.jsonl.tmp` and syncs it, links the live file to
//!   `journal.1.jsonl`, then renames the tmp file over the live one and syncs the
//!   directory. The rename is the commit point and replaces the live file atomically,
//!   so at every instant `journal.jsonl` is either the old or the new file, complete.
//!   `open` deletes a stray tmp file (an interrupted compaction).
//! - The journal never recreates a missing `journal.jsonl` next to its archives: that
//!   state is not left by a crash, and starting empty would forget open incidents.
//!
//! # A cut journal
//!
//! A crash can only tear the one append that had not returned; a file cut in the middle
//! or emptied (by a person, a restore, a broken disk) loses lines that were synced, and
//! reading it as a torn last line would silently forget decisions. So after each
//! append's `fdatasync` (and after a compaction) the seq of the last line is written
//! into `journal.meta` in place, one fixed-width line with its own checksum. It is never
//! ahead of the disk, because it is written only after the line is synced; it is not
//! synced itself, so after a power cut it may lag, which only weakens the next check. A
//! torn rewrite of it fails its checksum and the check is skipped with a warning. On
//! open (before anything is changed), a live file whose last seq is below the recorded
//! one has lost synced lines; so has an empty live file next to `journal.1.jsonl`
//! (compaction always starts the new file with a marker), or one that starts at or
//! before the archive's last seq (an older copy put back). `open` refuses these with
//! [`JournalError::Cut`]. [`Opening::StartOver`] (the agent's `--journal-start-over`)
//! moves every journal file aside as `<name>.damaged-<unix seconds>` and starts empty,
//! but only when the journal is damaged: a sound journal opens as always.

mod files;
mod line;
mod meta;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::warn;

use super::clock::{Clock, SystemClock};

use files::{
    archive_numbers, archive_path, create_dir, link_or_copy, lock, open_live, recover_compaction,
    sync_dir,
};
use line::{Compacted, MarkerLine, RecordLine, Timestamp, encode, replay, to_millis};
use meta::{Meta, check_cut, move_aside};

const LIVE: &str = "journal.jsonl";
const TMP: &str = "journal.jsonl.tmp";
const LOCK: &str = "journal.lock";
const META: &str = "journal.meta";

/// What `open` does with a journal it cannot trust (corrupt, cut, missing next to its
/// archives, or of records this agent cannot read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Opening {
    /// Refuse with an error naming the file and what was found.
    #[default]
    Refuse,
    /// Move the journal files aside (`<name>.damaged-<unix seconds>`) and start empty.
    StartOver,
}

/// How large the journal may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// Size of `journal.jsonl` in bytes above which `needs_compaction` says so.
    /// Default 8 MiB.
    pub max_bytes: u64,
    /// How many replaced files to keep as `journal.1.jsonl` (newest) ... `journal.N.jsonl`
    /// for post-mortems. Default 5; 0 keeps none.
    pub keep_archives: usize,
}

impl JournalLimits {
    pub const fn default_max_bytes() -> u64 {
        8 * 1024 * 1024
    }

    pub const fn default_keep_archives() -> usize {
        5
    }
}

impl Default for JournalLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::default_max_bytes(),
            keep_archives: Self::default_keep_archives(),
        }
    }
}

/// One journal line: `append` returns it with `record: ()`, `open` with the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<T> {
    pub seq: u64,
    /// When it was written, to the millisecond (what is on disk).
    pub at: SystemTime,
    pub record: T,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error(
        "journal {} is locked by another process{holder}: two agents must not share a state directory",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    #[error(
        "journal {} line {line} is corrupt ({reason}); a crash only ever tears the last line, so something else damaged it: inspect the file, or start the agent with --journal-start-over to move the journal files aside and start over",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("journal {} line {line}: the record does not match what this agent expects: {message}", path.display())]
    Record {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("journal {}: cannot encode the record: {source}", path.display())]
    Encode {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "journal {} is missing but {} exists; a crash never leaves the journal like this: inspect the files, or start the agent with --journal-start-over to move the journal files aside and start over",
        path.display(), found.display()
    )]
    MissingLive { path: PathBuf, found: PathBuf },
    #[error(
        "journal {} was cut: {detail}; lines that had been written and synced are gone (a crash only ever loses one unfinished append): inspect the files, or start the agent with --journal-start-over to move the journal files aside and start over",
        path.display()
    )]
    Cut { path: PathBuf, detail: String },
    #[error(
        "journal {}: an earlier write failed and what is on disk is uncertain; restart to replay the journal",
        path.display()
    )]
    Poisoned { path: PathBuf },
}

impl JournalError {
    /// The journal on disk cannot be trusted (as opposed to a lock held or a failing
    /// disk): what [`Opening::StartOver`] moves aside.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            JournalError::Corrupt { .. }
                | JournalError::Record { .. }
                | JournalError::MissingLive { .. }
                | JournalError::Cut { .. }
        )
    }
}

/// Points at which tests make compaction or append fail, or the process abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Half of a line written (abort only).
    #[cfg(test)]
    TornAppend,
    /// The line written, not yet synced.
    Appended,
    TmpWritten,
    TmpSynced,
    ArchivesShifted,
    Archived,
    /// The tmp file renamed over the live one, the directory not yet synced.
    Renamed,
}

#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Fail,
    Abort,
}

/// The single writer of a journal directory. `Send`: the engine keeps it in a mutex or a
/// dedicated task; the directory lock keeps a second process out.
///
/// The calls block on the disk (an `fdatasync` per append, several for a compaction):
/// from async code, call them inside `tokio::task::block_in_place` or `spawn_blocking`.
///
/// Meant to be used as: append the intent, then act, then append the outcome. On replay
/// an intent without an outcome means the action may or may not have happened, so the
/// caller asks the world (the DNS provider) instead of acting again; a failed `append`
/// means the intent is not recorded, so the caller must not act.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    live: PathBuf,
    /// Opened for appending: every write lands at the end, after any truncation.
    file: File,
    /// Bytes of whole lines in `file`.
    size: u64,
    /// Size right after the last compaction (0 before one in this process). Compacting
    /// again before the file has doubled would rotate the archives on every append when
    /// the state the caller keeps is itself near `max_bytes`, and lose their history.
    compacted_size: u64,
    next_seq: u64,
    limits: JournalLimits,
    /// Set when a failed write left the file in an unknown state.
    poisoned: bool,
    /// The last synced seq, for telling a cut journal from a crash.
    meta: Meta,
    /// Held for the advisory lock; released when the journal is dropped.
    _lock: File,
    /// Where each line's time comes from.
    clock: Arc<dyn Clock>,
    #[cfg(test)]
    fault: Option<(Step, Fault)>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, replays it, and returns every
    /// entry of the live file in order with the journal positioned to append. A damaged
    /// journal is refused.
    pub fn open<T: DeserializeOwned>(
        dir: &Path,
        limits: JournalLimits,
    ) -> Result<(Journal, Vec<Entry<T>>), JournalError> {
        Self::open_with(dir, limits, Opening::Refuse)
    }

    /// [`Journal::open`], starting over (see [`Opening`]) when the journal is damaged.
    pub fn open_with<T: DeserializeOwned>(
        dir: &Path,
        limits: JournalLimits,
        opening: Opening,
    ) -> Result<(Journal, Vec<Entry<T>>), JournalError> {
        Self::open_on(dir, limits, opening, Arc::new(SystemClock))
    }

    /// [`Journal::open_with`], the time of each line from `clock`.
    pub fn open_on<T: DeserializeOwned>(
        dir: &Path,
        limits: JournalLimits,
        opening: Opening,
        clock: Arc<dyn Clock>,
    ) -> Result<(Journal, Vec<Entry<T>>), JournalError> {
        let created_dir = create_dir(dir)?;
        let lock = lock(dir)?;
        let loaded = match load::<T>(dir, created_dir) {
            Err(e) if opening == Opening::StartOver && e.is_damage() => {
                let moved = move_aside(dir, clock.now())?;
                warn!(error = %e, moved = ?moved,
                    "journal: --journal-start-over: the damaged journal files were moved aside; starting with an empty journal (open incidents and cooldowns of the previous run are forgotten)");
                load::<T>(dir, false)?
            }
            other => other?,
        };
        let journal = Journal {
            dir: dir.to_owned(),
            live: dir.join(LIVE),
            file: loaded.file,
            size: loaded.size,
            compacted_size: 0,
            next_seq: loaded.last_seq + 1,
            limits,
            poisoned: false,
            meta: loaded.meta,
            _lock: lock,
            clock,
            #[cfg(test)]
            fault: None,
        };
        journal.meta.record(loaded.last_seq)?;
        Ok((journal, loaded.entries))
    }

    /// Appends one record; it is on disk (written and `fdatasync`ed) when this returns.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<Entry<()>, JournalError> {
        self.check_usable()?;
        let entry = Entry {
            seq: self.next_seq,
            at: to_millis(self.clock.now()),
            record: (),
        };
        let line = encode(&RecordLine {
            seq: entry.seq,
            at: Timestamp(entry.at),
            record,
        })
        .map_err(|source| JournalError::Encode {
            path: self.live.clone(),
            source,
        })?;

        #[cfg(test)]
        if self.fault == Some((Step::TornAppend, Fault::Abort)) {
            let _ = self.file.write_all(&line[..line.len() / 2]);
            std::process::abort();
        }
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.fault(Step::Appended))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // A partial line must not sit in front of the next one, and after a failed
            // fsync the kernel may have dropped the pages: cut back to what was synced.
            let rolled_back = self
                .file
                .set_len(self.size)
                .and_then(|()| self.file.sync_data());
            self.poisoned = rolled_back.is_err();
            return Err(io_error(&self.live, "append", e));
        }
        self.size += line.len() as u64;
        self.next_seq += 1;
        // The line is synced; a failure to note it only weakens the next check for a cut.
        if let Err(e) = self.meta.record(entry.seq) {
            warn!(error = %e, "journal: cannot update the meta file");
        }
        Ok(entry)
    }

    /// True when the live file is over `max_bytes` (and has at least doubled since the
    /// last compaction, so a large kept state does not compact on every append).
    pub fn needs_compaction(&self) -> bool {
        self.size > self.limits.max_bytes && self.size >= self.compacted_size.saturating_mul(2)
    }

    /// Replaces the live file with one holding only `live` (the state the caller still
    /// needs: open incidents, the last decision per instance, cooldowns), each with a new
    /// `seq` and `at`. The old file is kept as `journal.1.jsonl`. Atomic: a crash at any
    /// point leaves either the old or the new file as `journal.jsonl`, complete.
    pub fn compact<T: Serialize>(&mut self, live: &[T]) -> Result<(), JournalError> {
        self.check_usable()?;
        let at = Timestamp(to_millis(self.clock.now()));
        let encode_error = |source| JournalError::Encode {
            path: self.live.clone(),
            source,
        };
        let mut bytes = encode(&MarkerLine {
            seq: self.next_seq,
            at,
            compacted: Compacted { kept: live.len() },
        })
        .map_err(encode_error)?;
        let mut seq = self.next_seq;
        for record in live {
            seq += 1;
            bytes.extend(encode(&RecordLine { seq, at, record }).map_err(encode_error)?);
        }

        let tmp = self.dir.join(TMP);
        if let Err(e) = self.write_tmp(&tmp, &bytes).and_then(|()| self.archive()) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp, &self.live) {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(&self.live, "replace with the compacted file", e));
        }
        // The new file is live, but until the directory is synced a power cut may bring
        // back the old one: nothing may be appended to the new one before that.
        self.poisoned = true;
        self.fault(Step::Renamed)
            .and_then(|()| File::open(&self.dir)?.sync_all())
            .map_err(|e| io_error(&self.dir, "sync the directory", e))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.live)
            .map_err(|e| io_error(&self.live, "reopen after compaction", e))?;
        self.poisoned = false;
        self.size = bytes.len() as u64;
        self.compacted_size = self.size;
        self.next_seq = seq + 1;
        if let Err(e) = self.meta.record(seq) {
            warn!(error = %e, "journal: cannot update the meta file");
        }
        Ok(())
    }

    /// The live file, for logs and the operator.
    pub fn path(&self) -> &Path {
        &self.live
    }

    /// Bytes in the live file (for a gauge).
    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    /// True once a failed write left the file in an unknown state: every further write
    /// is refused until a restart replays what is on disk.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Leaves the journal as a write that could not be undone would (for tests).
    #[cfg(test)]
    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    fn check_usable(&self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.live.clone(),
            });
        }
        Ok(())
    }

    fn write_tmp(&self, tmp: &Path, bytes: &[u8]) -> Result<(), JournalError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)
            .map_err(|e| io_error(tmp, "create", e))?;
        file.write_all(bytes)
            .and_then(|()| self.fault(Step::TmpWritten))
            .and_then(|()| file.sync_all())
            .and_then(|()| self.fault(Step::TmpSynced))
            .map_err(|e| io_error(tmp, "write", e))
    }

    /// Shifts `journal.N.jsonl` up by one (dropping those beyond `keep_archives`) and
    /// makes the live file `journal.1.jsonl`. Only archives change: the live file stays.
    fn archive(&self) -> Result<(), JournalError> {
        let keep = self.limits.keep_archives;
        let mut numbers = archive_numbers(&self.dir)?;
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        for n in numbers {
            let path = archive_path(&self.dir, n);
            if n >= keep {
                fs::remove_file(&path).map_err(|e| io_error(&path, "remove", e))?;
            } else {
                fs::rename(&path, archive_path(&self.dir, n + 1))
                    .map_err(|e| io_error(&path, "rotate", e))?;
            }
        }
        self.fault(Step::ArchivesShifted)
            .map_err(|e| io_error(&self.dir, "rotate", e))?;
        if keep > 0 {
            let first = archive_path(&self.dir, 1);
            link_or_copy(&self.live, &first).map_err(|e| io_error(&first, "archive", e))?;
        }
        self.fault(Step::Archived)
            .map_err(|e| io_error(&self.dir, "archive", e))
    }

    #[cfg(not(test))]
    fn fault(&self, _step: Step) -> io::Result<()> {
        Ok(())
    }

    #[cfg(test)]
    fn fault(&self, step: Step) -> io::Result<()> {
        match self.fault {
            Some((at, Fault::Fail)) if at == step => {
                Err(io::Error::other(format!("injected failure at {step:?}")))
            }
            Some((at, Fault::Abort)) if at == step => std::process::abort(),
            _ => Ok(()),
        }
    }
}

/// The live file, read and checked, positioned to append.
struct Loaded<T> {
    file: File,
    size: u64,
    last_seq: u64,
    meta: Meta,
    entries: Vec<Entry<T>>,
}

fn load<T: DeserializeOwned>(dir: &Path, created_dir: bool) -> Result<Loaded<T>, JournalError> {
    let live = dir.join(LIVE);
    recover_compaction(dir, &live)?;
    let (mut file, created) = open_live(&live)?;
    let (meta, recorded) = Meta::open(dir)?;
    if created || created_dir {
        sync_dir(dir)?;
    }
    if let (true, Some(parent)) = (created_dir, dir.parent()) {
        sync_dir(parent)?;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_error(&live, "read", e))?;
    let replay = replay::<T>(&live, &bytes)?;
    check_cut(dir, &live, recorded, replay.first_seq, replay.last_seq)?;
    if let Some(torn) = &replay.torn {
        warn!(
            path = %live.display(),
            line = torn.line,
            dropped_bytes = bytes.len() - replay.valid_len,
            reason = %torn.reason,
            "journal: cutting off a torn last line (a write interrupted by a crash; its append never returned)"
        );
        file.set_len(replay.valid_len as u64)
            .map_err(|e| io_error(&live, "truncate a torn last line", e))?;
    }
    // What a previous process wrote may not be synced yet (it died in `fdatasync`):
    // sync before `journal.meta` may name it.
    file.sync_data().map_err(|e| io_error(&live, "sync", e))?;
    Ok(Loaded {
        file,
        size: replay.valid_len as u64,
        last_seq: replay.last_seq,
        meta,
        entries: replay.entries,
    })
}

fn io_error(path: &Path, action: &'static str, source: io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_owned(),
        action,
        source,
    }
}

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod tests;
