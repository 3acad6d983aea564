//! Decides a run's status and exit code from its totals. One place owns this
//! rule so every report and the process exit agree. (Thresholds will add to it.)

use crate::error::exit;
use crate::metrics::{Counter, Snapshot};
use serde::{Deserialize, Serialize};

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
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Invalid => "invalid",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Passed => exit::PASS,
            RunStatus::Failed => exit::FAILED,
            RunStatus::Invalid => exit::INVALID,
            RunStatus::Interrupted => exit::INTERRUPTED,
        }
    }
}

/// The status of a run and one sentence explaining it.
pub fn judge(totals: &Snapshot, interrupted: bool) -> (RunStatus, String) {
    let ok = totals.counter(Counter::TurnsOk);
    let sent = totals.counter(Counter::TurnsSent);
    let failed_turns = totals.turns_failed();
    let failed_connects = totals.counter(Counter::ConnectErrors);
    if interrupted {
        return (
            RunStatus::Interrupted,
            format!("interrupted: {ok} of {sent} turns completed before the stop"),
        );
    }
    if ok == 0 {
        let why = match totals.causes().iter().max_by_key(|(_, n)| **n) {
            Some((cause, n)) => format!("most common failure: {cause} ({n}×)"),
            None => "no turn was sent; check the scenario's steps and load".to_string(),
        };
        return (
            RunStatus::Invalid,
            format!("invalid: no turn completed, so nothing was measured; {why}"),
        );
    }
    if failed_turns > 0 || failed_connects > 0 {
        return (
            RunStatus::Failed,
            format!("failed: {failed_turns} of {sent} turns and {failed_connects} connects failed"),
        );
    }
    (
        RunStatus::Passed,
        format!("passed: all {sent} turns completed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_counts() {
        let mut t = Snapshot::new();
        assert_eq!(judge(&t, false).0, RunStatus::Invalid);
        t.add(Counter::TurnsSent, 2);
        t.add(Counter::TurnsOk, 2);
        assert_eq!(judge(&t, false).0, RunStatus::Passed);
        assert_eq!(judge(&t, true).0, RunStatus::Interrupted);
        t.add(Counter::ConnectErrors, 1);
        let (status, reason) = judge(&t, false);
        assert_eq!(status, RunStatus::Failed);
        assert!(reason.contains("1 connects failed"), "{reason}");
        assert_eq!(status.exit_code(), 1);
    }
}
