//! Exit codes and the top-level error type that maps a failure to one of them.
//! Library modules have their own `thiserror` types; this module only decides
//! which exit code a failure means.

/// Process exit codes (documented in the README and `--help`).
pub mod exit {
    /// Run passed.
    pub const PASS: i32 = 0;
    /// Thresholds breached or a regression found; also: turns failed.
    pub const FAILED: i32 = 1;
    /// The run is invalid (saturated generator, nothing measured).
    pub const INVALID: i32 = 2;
    /// Usage or configuration error (bad YAML, bad flag, missing env var).
    pub const USAGE: i32 = 3;
    /// Internal error of the harness.
    pub const INTERNAL: i32 = 4;
    /// Interrupted by Ctrl-C / SIGTERM (reports written, marked interrupted).
    pub const INTERRUPTED: i32 = 130;
}

/// An error that already knows its exit code and carries a user-facing message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: exit::USAGE,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        CliError {
            code: exit::INTERNAL,
            message: message.into(),
        }
    }
}
