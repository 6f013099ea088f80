//! Fuzz targets of the journal's replay (proptest; see `crate::fuzz`).

use super::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(crate::fuzz::config(512))]

    /// Arbitrary bytes: loaded, torn or refused, never a panic.
    #[test]
    fn fuzz_journal_replay_of_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = replay_bytes(&bytes);
    }

    /// A valid journal with one byte changed anywhere is never accepted silently: it
    /// is refused, or its last line is reported torn.
    #[test]
    fn fuzz_journal_one_flipped_byte_is_never_silent(
        n in 1usize..5,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = valid_journal(n);
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        match replay_bytes(&bytes) {
            Err(JournalError::Corrupt { .. } | JournalError::Record { .. }) => {}
            Ok(replay) => prop_assert!(replay.torn.is_some(), "byte {i} changed, accepted silently"),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    /// Lines spliced, duplicated or cut out of a valid journal: no panic, and the
    /// seq order is never accepted broken.
    #[test]
    fn fuzz_journal_mutated_lines(
        n in 2usize..6,
        ops in proptest::collection::vec((0usize..8, 0usize..8, 0u8..3), 1..4),
    ) {
        let text = valid_journal(n);
        let mut lines: Vec<Vec<u8>> = text.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        for (a, b, op) in ops {
            let (a, b) = (a % lines.len().max(1), b % lines.len().max(1));
            if lines.is_empty() { break; }
            match op {
                0 => { let l = lines[a].clone(); lines.insert(b, l); }
                1 => { lines.swap(a, b); }
                _ => { let l = &mut lines[a]; let cut = b % l.len().max(1); l.truncate(cut); }
            }
        }
        let bytes: Vec<u8> = lines.concat();
        if let Ok(replay) = replay_bytes(&bytes) {
            let seqs: Vec<u64> = replay.entries.iter().map(|e| e.seq).collect();
            prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        }
    }
}
