//! finalping: a load-testing and latency-benchmarking harness for conversational
//! endpoints: the Cognigy-style Socket.IO Endpoint, the REST Endpoint, the
//! runtime WebSocket and the context-inject API for context updates.
//!
//! Data flows one way:
//! `scenario` (YAML → immutable plan) → `engine` (VU tasks driving `protocol`
//! clients) → `metrics` (per-thread HDR recorders, merged) → `report` (files and
//! console) → `verdict` (status and exit code). `emulator` is the embedded
//! server used by default and by tests (cargo feature `emulator`, on by
//! default); it shares only wire types with the client, and its settings are
//! plain data in `emulator_config`, which a scenario and a report may carry.
//!
//! Imports go only against the flow, never with it: `verdict` imports
//! `report`, `report` imports `engine`, `engine` imports `scenario`, and all
//! of them `metrics`, never the reverse. `thresholds` (the limits a scenario
//! writes, parsed with the scenario's error helpers, judged on
//! [`thresholds::Numbers`]) belongs to the scenario side: it imports neither
//! `report` nor `verdict`, and the status a report records is
//! [`report::RunStatus`]. `scenario` and `report` do not import `emulator`.
//! Only `main.rs` imports the command-line edge, [`cli`] and [`commands`]
//! (which may import everything else). Check:
//! `grep -rnE 'crate::(cli|commands)' src --include=*.rs | grep -vE '^src/(cli|commands/|main)'`,
//! `grep -rn 'crate::emulator::' src/scenario src/report src/thresholds src/engine src/metrics`,
//! `grep -rnE 'crate::(report|verdict)' src/thresholds src/engine src/scenario src/metrics`
//! and `grep -rn 'crate::verdict' src/report` all print nothing.
//!
//! Where to change what:
//! - a YAML field, a template, a duration format: [`scenario`]
//! - how VUs are started, paced and stopped: [`engine`]; how a run is split
//!   into execution segments (`--segment i/N`): [`engine::segment`]
//! - a frame or packet on the wire: [`protocol`]
//! - a metric name, the recorder, percentiles: [`metrics`]
//! - a report file or the console table: [`report`] (one exporter per file;
//!   the sweep's and the capacity search's in [`report::sweep`],
//!   [`report::capacity`]); where a run's folder goes: [`report::folder`]
//! - emulator behaviour (delays, outputs, heartbeats; the bot turn is one plan
//!   both Socket.IO servers play): [`emulator`]; its settings (plain data a
//!   scenario may carry) and the fault-name table: [`emulator_config`]
//! - a command-line flag: [`cli`]
//! - pass/fail limits and baseline comparison: [`thresholds`], [`compare`]
//! - one report from the run folders of execution segments: [`merge`]
//! - audit records of context updates and their webhook: [`audit`]
//! - what a run's status and exit code are: [`verdict`] (the rules; the value
//!   is [`report::RunStatus`]), [`error`]
//! - live metrics (`/metrics`, Prometheus remote write): [`export`]
//! - the sub-commands (`run`, `serve`, `sweep`, `capacity`, …): [`commands`]
//!   (thin: flags to library calls; `sweep` and `capacity` start their `run`
//!   children through one child runner)
//! - regular expressions of checks, captures and scripted replies: [`pattern`]
//! - redaction of tokens and secrets: [`secret`]; human durations: [`duration`]
//! - TLS roots and the `--insecure` switch: [`tls`]
//! - manifests for running segments on Kubernetes: [`deploy`]
//! - file descriptors per VU and running out of them: [`fdlimit`]
//! - capped file reads and atomic report writes: [`fsio`]
//! - what the fuzz targets (`fuzz/`) feed each decoder: [`fuzzing`]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod deploy;
pub mod duration;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod emulator_config;
pub mod engine;
pub mod error;
pub mod export;
pub mod fdlimit;
pub mod fsio;
pub mod fuzzing;
pub mod merge;
pub mod metrics;
pub mod pattern;
pub mod protocol;
pub mod report;
pub mod scenario;
pub mod secret;
pub mod thresholds;
pub mod tls;
pub mod verdict;
