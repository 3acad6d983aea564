//! The integration tests, as one test binary: each file here was its own
//! binary once, and each of those linked the whole crate and its
//! dependencies again (one link and ~150 MB each). One module per theme keeps
//! its file name in every test name (`hostile::a_full_disk_still_prints_the_verdict`),
//! so `cargo test --test integration hostile::` runs one theme and
//! `cargo test --test integration -- --list` lists them all.
//!
//! Sharing a process is safe here: no test changes process-wide state. The
//! tests that lower rlimits or ignore signals do it in the child they spawn
//! (`pre_exec`, onto fixed descriptor numbers where counts matter), nothing
//! sets environment variables or the working directory (children get theirs
//! through `Command::env`), every server binds an ephemeral 127.0.0.1 port,
//! peak-RSS checks measure the child alone (`tests/python/peak_rss.py`: a
//! child of this big process would start from its peak), and the installers
//! (npm, Python venvs, system packages under CI) run one at a time.
//! `tests/properties.rs` stays a binary of its own: it installs a counting
//! global allocator.

mod common;

mod audit;
mod capacity;
mod compare;
mod context_updates;
mod deploy;
mod emulator;
mod emulator_faults;
mod emulator_runtime;
mod fault_matrix;
mod feeders;
mod flows;
mod hlog_python;
mod hostile;
mod html_report;
mod interop;
mod live_metrics;
mod load_models;
mod merge;
mod rest_protocol;
mod rest_target;
mod run_cli;
mod scenario_load;
mod self_check;
mod sweep;
mod thresholds;
mod tls;

// The protocol clients' tests.
mod runtime_client;
mod runtime_faults;
mod socketio_client;
