//! Fuzz targets (see `crate::fuzz`): the INFO parser on arbitrary bytes and on mutated
//! real replies never panics, never yields a label value with a control character, an
//! over-long one or (by construction, `String`) invalid UTF-8, and respects its caps.

use proptest::prelude::*;

use super::*;
use crate::model::MAX_LABEL_BYTES;

const SMALL: InfoLimits = InfoLimits {
    commands: 7,
    error_kinds: 3,
    databases: 2,
};

fn fixtures() -> Vec<Vec<u8>> {
    [
        "info-master.txt",
        "info-replica.txt",
        "info-sentinel.txt",
        "info-cluster-node.txt",
    ]
    .iter()
    .map(|name| {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
    .collect()
}

fn check(info: &Info, limits: &InfoLimits) -> Result<(), TestCaseError> {
    prop_assert!(info.commands.len() <= limits.commands);
    prop_assert!(info.latency.len() <= limits.commands);
    prop_assert!(info.errors.len() <= limits.error_kinds);
    prop_assert!(info.keyspace.len() <= limits.databases);
    prop_assert!(info.replicas.len() <= MAX_REPLICAS);
    prop_assert!(info.sentinel_masters.len() <= MAX_SENTINEL_MASTERS);
    let labels = info
        .commands
        .iter()
        .map(|c| c.command.as_str())
        .chain(info.errors.iter().map(|e| e.0.as_str()))
        .chain(
            info.replicas
                .iter()
                .flat_map(|r| [r.ip.as_str(), r.state.as_str()]),
        )
        .chain(info.latency.iter().flat_map(|l| {
            std::iter::once(l.command.as_str()).chain(l.percentiles.iter().map(|p| p.0.as_str()))
        }))
        .chain(
            info.sentinel_masters
                .iter()
                .flat_map(|m| [m.name.as_str(), m.address.as_str(), m.status.as_str()]),
        );
    for label in labels {
        prop_assert!(!label.chars().any(char::is_control), "{label:?}");
        prop_assert!(label.len() <= MAX_LABEL_BYTES, "{}", label.len());
    }
    for l in &info.latency {
        prop_assert!(l.percentiles.len() <= MAX_PERCENTILES);
    }
    // Plain fields become labels after `clean_label`, which must hold the same.
    for (_, value) in info.fields.iter() {
        let label = clean_label(value);
        prop_assert!(!label.chars().any(char::is_control) && label.len() <= MAX_LABEL_BYTES);
    }
    Ok(())
}

/// Bytes that matter to the parser, and bytes that are not UTF-8.
fn interesting() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => any::<u8>(),
        1 => prop::sample::select(vec![b'\r', b'\n', b':', b',', b'=', b'#', b' ', 0x1b, 0, 0xff, 0xfe, 0xc3]),
    ]
}

proptest! {
    #![proptest_config(crate::fuzz::config(256))]

    #[test]
    fn fuzz_info_arbitrary_bytes(bytes in prop::collection::vec(interesting(), 0..2048)) {
        let info = parse_info_with(bytes.clone(), &SMALL);
        check(&info, &SMALL)?;
        let _ = parse_cluster_info(bytes);
    }

    #[test]
    fn fuzz_info_mutated_replies(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::collection::vec(interesting(), 1..8)), 1..24),
    ) {
        let mut reply = fixtures().swap_remove(which);
        for (at, op, bytes) in edits {
            let i = at.index(reply.len() + 1);
            match op {
                0 => { reply.splice(i..i, bytes); }
                1 => {
                    let end = (i + bytes.len()).min(reply.len());
                    reply.splice(i..end, bytes);
                }
                _ => {
                    // Repeat a slice: rows past the caps, repeated names.
                    let end = (i + 400).min(reply.len());
                    let copy = reply[i..end].to_vec();
                    for _ in 0..bytes.len() {
                        reply.splice(i..i, copy.iter().copied());
                    }
                }
            }
        }
        let info = parse_info_with(reply, &SMALL);
        check(&info, &SMALL)?;
    }
}
