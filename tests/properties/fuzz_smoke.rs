//! The bounded fuzz smoke run inside `cargo test`: every input of the fuzz
//! corpus (`fuzz/corpus/<target>/`, seeds and regressions found by the
//! cargo-fuzz runs) is replayed through its target in `finalping::fuzzing`,
//! and each target then gets a fixed number of proptest byte strings, plain
//! and as mutations of a corpus input. Each call must return without panic
//! and without a large allocation (a length claimed by the input is checked
//! before anything is allocated for it).

use super::alloc_probe::measure;
use super::support::config;
use finalping::fuzzing::TARGETS;
use proptest::prelude::*;
use std::path::PathBuf;

/// Largest single allocation one call may make: well above any real frame
/// we decode in these tests, far below a claimed 2 GiB.
const MAX_ALLOCATION: usize = 64 << 20;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            (path, bytes)
        })
        .collect();
    inputs.sort();
    inputs.into_iter().map(|(_, b)| b).collect()
}

fn call(target: &str, f: fn(&[u8]), input: &[u8]) {
    let ((), allocs) = measure(|| f(input));
    assert!(
        allocs.largest <= MAX_ALLOCATION,
        "{target}: one allocation of {} bytes for a {}-byte input",
        allocs.largest,
        input.len()
    );
}

#[test]
fn every_corpus_input_replays_cleanly() {
    for (name, f) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "{name}: empty corpus");
        for input in &inputs {
            call(name, f, input);
        }
    }
}

/// Arbitrary bytes, or a corpus input with some bytes overwritten, cut or extended.
fn input_for(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let seeds = std::sync::Arc::new(seeds);
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (
            any::<prop::sample::Index>(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            any::<prop::sample::Index>(),
            proptest::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(move |(pick, edits, cut, tail)| {
                let mut v = pick.get(&seeds).clone();
                for (at, byte) in edits {
                    if !v.is_empty() {
                        let i = at.index(v.len());
                        v[i] = byte;
                    }
                }
                let keep = cut.index(v.len() + 1);
                v.truncate(keep.max(v.len() / 2));
                v.extend(tail);
                v
            }),
    ]
}

#[test]
fn bounded_random_inputs_through_every_target() {
    for (name, f) in TARGETS {
        let mut runner = proptest::test_runner::TestRunner::new(config(256));
        runner
            .run(&input_for(corpus(name)), |input| {
                call(name, f, &input);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
