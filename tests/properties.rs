//! Property tests (proptest) for every decoder that reads untrusted input:
//! Engine.IO/Socket.IO packets, runtime length-prefixed frames, MessagePack and
//! JSON runtime messages, context normalization and limits, scenario templates,
//! the YAML scenario loader, durations and emulator delays; the split of a
//! plan into execution segments (their union is the whole plan); and
//! `fuzz_smoke` replays the cargo-fuzz corpus (`fuzz/`) through every fuzz
//! target. Each property says
//! "never panics" on arbitrary input plus a round-trip or exact-result law on
//! structured input. Run with `cargo test --test properties`.
//!
//! Determinism: the RNG seed is fixed (see [`support::config`]) so CI runs the
//! same cases every time, and failure persistence is off (no regression files);
//! set `PROPTEST_RNG_SEED=<u64>` to explore other cases and `PROPTEST_CASES=<n>`
//! to change every case count. A failure found that way is added as an
//! explicit case to the property concerned.

mod properties {
    pub mod alloc_probe;
    pub mod codec;
    pub mod durations;
    pub mod fuzz_smoke;
    pub mod runtime_frame;
    pub mod scenario;
    pub mod segments;
    pub mod socketio;
    pub mod support;
}

#[global_allocator]
static PROBE: properties::alloc_probe::Probe = properties::alloc_probe::Probe;
