//! The fuzzing convention of the property tests (`proptest`, stable Rust).
//!
//! Each target runs `FUZZ_CASES` cases (default: the target's own budget, small enough
//! for CI). The seed is `FUZZ_SEED` when set, else a fresh one per run, and is printed:
//! `cargo test` shows a test's output only when it fails, so a failure's log names the
//! seed next to proptest's minimal failing input. Reproduce with
//! `FUZZ_SEED=<seed> cargo test <target>`. Run longer with `FUZZ_CASES=100000`.

use std::hash::{BuildHasher, RandomState};

use proptest::test_runner::{Config, RngSeed};

/// The configuration of a fuzz target whose CI budget is `ci_cases` cases.
pub fn config(ci_cases: u32) -> Config {
    let seed = match std::env::var("FUZZ_SEED") {
        Ok(value) => value
            .trim()
            .parse()
            .expect("FUZZ_SEED must be a whole number"),
        Err(_) => RandomState::new().hash_one(std::process::id()),
    };
    let cases = match std::env::var("FUZZ_CASES") {
        Ok(value) => value
            .trim()
            .parse()
            .expect("FUZZ_CASES must be a whole number"),
        Err(_) => ci_cases,
    };
    eprintln!("fuzz: FUZZ_SEED={seed} FUZZ_CASES={cases}");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}
