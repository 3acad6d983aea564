//! A run's status as every report records it, and the exit code it means.
//! Which status a run gets is decided by `verdict`; this is only the value.

use crate::error::exit;
use serde::{Deserialize, Serialize};

/// How a run came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every turn and connect succeeded.
    Passed,
    /// Some turns or connects failed.
    Failed,
    /// Nothing was measured (no turn completed): the numbers mean nothing.
    Invalid,
    /// Stopped by Ctrl-C / SIGTERM; reports hold what was measured until then.
    Interrupted,
    /// The run has not written its final reports: still running, or killed
    /// (`kill -9`, a lost pod). `finalping report` rebuilds what its live
    /// files hold, up to the last interval.
    Incomplete,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Invalid => "invalid",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Incomplete => "incomplete",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Passed => exit::PASS,
            RunStatus::Failed => exit::FAILED,
            RunStatus::Invalid => exit::INVALID,
            RunStatus::Interrupted => exit::INTERRUPTED,
            RunStatus::Incomplete => exit::INVALID,
        }
    }
}
