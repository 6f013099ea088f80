//! What the journal remembers about itself, to tell a cut journal from a crash: the
//! `journal.meta` side file, the check against the archives, and starting over.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::files::{archive_numbers, archive_path, exists, sync_dir};
use super::line::seq_range;
use super::{JournalError, LIVE, META, TMP, io_error};

/// `journal.meta`: the seq of the last line whose append returned (so: synced), written
/// in place as one fixed-width line with its own checksum:
/// `00000000000000000042 1a2b3c4d\n`.
#[derive(Debug)]
pub(super) struct Meta {
    file: File,
    path: PathBuf,
}

const WIDTH: usize = 30;

fn encode(seq: u64) -> String {
    let digits = format!("{seq:020}");
    format!("{digits} {:08x}\n", crc32fast::hash(digits.as_bytes()))
}

fn decode(text: &str) -> Option<u64> {
    let (digits, crc) = text.strip_suffix('\n')?.split_once(' ')?;
    (digits.len() == 20 && format!("{:08x}", crc32fast::hash(digits.as_bytes())) == crc)
        .then(|| digits.parse().ok())
        .flatten()
}

impl Meta {
    /// Opens (creating) the side file; returns the seq it holds, `None` when it is new
    /// or unreadable (then the check for a cut is skipped, with a warning).
    pub(super) fn open(dir: &Path) -> Result<(Meta, Option<u64>), JournalError> {
        let path = dir.join(META);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error(&path, "open", e))?;
        let mut text = String::new();
        let read = file.read_to_string(&mut text);
        let seq = match read {
            Ok(0) => None,
            Ok(_) => decode(&text),
            Err(_) => None,
        };
        if seq.is_none() && !text.is_empty() {
            warn!(path = %path.display(),
                "journal: the meta file is unreadable (a crash while it was rewritten); the check for a cut journal is skipped this time");
        }
        Ok((Meta { file, path }, seq))
    }

    /// Records that every line up to `seq` is on disk. Not synced: a stale value after
    /// a power cut only makes the next check weaker, never wrong.
    pub(super) fn record(&self, seq: u64) -> Result<(), JournalError> {
        let text = encode(seq);
        debug_assert_eq!(text.len(), WIDTH);
        self.file
            .write_all_at(text.as_bytes(), 0)
            .map_err(|e| io_error(&self.path, "write", e))
    }
}

/// Refuses a live file that lost lines it had synced: its last seq is below what
/// `journal.meta` recorded, it is empty next to an archive, or it is older than the
/// newest archive. `first`/`last` are the live file's seqs (0 when empty), taken after
/// cutting a torn last line, which was never recorded (its append never returned).
pub(super) fn check_cut(
    dir: &Path,
    live: &Path,
    recorded: Option<u64>,
    first: u64,
    last: u64,
) -> Result<(), JournalError> {
    if let Some(recorded) = recorded
        && last < recorded
    {
        return Err(JournalError::Cut {
            path: live.to_owned(),
            detail: format!(
                "{} recorded seq {recorded} as written and synced, but the file ends at seq {last}",
                dir.join(META).display()
            ),
        });
    }
    let archive = archive_path(dir, 1);
    if !exists(&archive)? {
        return Ok(());
    }
    let bytes = fs::read(&archive).map_err(|e| io_error(&archive, "read", e))?;
    let Some((archive_first, archive_last)) = seq_range(&bytes) else {
        return Ok(());
    };
    // An interrupted compaction leaves the live file itself (or a copy of its start)
    // as the archive: same first line.
    let same_file = archive_first == first;
    if last == 0 || (!same_file && archive_last >= first) {
        return Err(JournalError::Cut {
            path: live.to_owned(),
            detail: format!(
                "{} ends at seq {archive_last}, so the live file must go on from seq {}, but it {}",
                archive.display(),
                archive_last + 1,
                if last == 0 {
                    "is empty".to_owned()
                } else {
                    format!("starts at seq {first}")
                }
            ),
        });
    }
    Ok(())
}

/// Moves every journal file aside as `<name>.damaged-<unix seconds>`, so the journal
/// starts empty and nothing is deleted. Returns the new names.
pub(super) fn move_aside(dir: &Path, now: SystemTime) -> Result<Vec<PathBuf>, JournalError> {
    let stamp = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut names: Vec<PathBuf> = [LIVE, TMP, META].iter().map(|n| dir.join(n)).collect();
    names.extend(
        archive_numbers(dir)?
            .into_iter()
            .map(|n| archive_path(dir, n)),
    );
    let mut moved = Vec::new();
    for from in names {
        let mut to = from.as_os_str().to_owned();
        to.push(format!(".damaged-{stamp}"));
        match fs::rename(&from, &to) {
            Ok(()) => moved.push(PathBuf::from(to)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&from, "move aside", e)),
        }
    }
    sync_dir(dir)?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_line_has_a_fixed_width_and_its_own_checksum() {
        for seq in [0, 1, 42, u64::MAX] {
            let text = encode(seq);
            assert_eq!(text.len(), WIDTH);
            assert_eq!(decode(&text), Some(seq));
        }
        // A torn in-place rewrite mixes old and new digits: the checksum refuses it.
        let mixed = format!("{}{}", &encode(1000)[..17], &encode(999)[17..]);
        assert_eq!(decode(&mixed), None);
    }
}
