//! Files and directories of the journal: creation, the lock, archives, recovery.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::{JournalError, LOCK, TMP, io_error};

/// Creates `dir` (0700) if missing; true when it did.
pub(super) fn create_dir(dir: &Path) -> Result<bool, JournalError> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_error(dir, "create the directory", e))?;
    Ok(true)
}

pub(super) fn lock(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_error(&path, "open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => {
            // Only for the message a second agent prints; the lock is what counts.
            let _ = file
                .set_len(0)
                .and_then(|()| writeln!(file, "{}", std::process::id()));
            Ok(file)
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Err(JournalError::Locked {
                holder: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
                path,
            })
        }
        Err(TryLockError::Error(e)) => Err(io_error(&path, "lock", e)),
    }
}

/// Cleans up after an interrupted compaction and refuses states no crash produces.
pub(super) fn recover_compaction(dir: &Path, live: &Path) -> Result<(), JournalError> {
    let live_exists = exists(live)?;
    let tmp = dir.join(TMP);
    if exists(&tmp)? && live_exists {
        warn!(path = %tmp.display(), "journal: removing the leftover of an interrupted compaction");
        fs::remove_file(&tmp).map_err(|e| io_error(&tmp, "remove", e))?;
    }
    if live_exists {
        return Ok(());
    }
    let mut numbers = archive_numbers(dir)?;
    numbers.sort_unstable();
    let found = match numbers.first() {
        _ if exists(&tmp)? => tmp,
        Some(&first) => archive_path(dir, first),
        None => return Ok(()),
    };
    Err(JournalError::MissingLive {
        path: live.to_owned(),
        found,
    })
}

/// Opens the live file for reading and appending, creating it (0600) if missing; true
/// when it did.
pub(super) fn open_live(live: &Path) -> Result<(File, bool), JournalError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).mode(0o600);
    match options.clone().create_new(true).open(live) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options
            .open(live)
            .map(|file| (file, false))
            .map_err(|e| io_error(live, "open", e)),
        Err(e) => Err(io_error(live, "create", e)),
    }
}

pub(super) fn archive_path(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("journal.{n}.jsonl"))
}

/// The N of every `journal.N.jsonl` in `dir`.
pub(super) fn archive_numbers(dir: &Path) -> Result<Vec<usize>, JournalError> {
    let read = fs::read_dir(dir).map_err(|e| io_error(dir, "list", e))?;
    let mut numbers = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| io_error(dir, "list", e))?;
        let name = entry.file_name();
        let n = name
            .to_str()
            .and_then(|name| name.strip_prefix("journal."))
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0);
        numbers.extend(n);
    }
    Ok(numbers)
}

/// A hard link costs nothing and shares the synced data; filesystems without links get
/// a synced copy.
pub(super) fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            fs::copy(from, to)?;
            File::open(to)?.sync_all()
        }
    }
}

pub(super) fn exists(path: &Path) -> Result<bool, JournalError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, "stat", e)),
    }
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "sync the directory", e))
}
