//! The `finalping run` children of `sweep` and `capacity`: started, waited
//! for, and — when the parent is interrupted (Ctrl-C, SIGTERM, SIGHUP) —
//! sent SIGINT so they write their partial reports, waited for a bounded time
//! and killed after it. A child never outlives its parent's command.

use std::process::Output;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long an interrupted child gets to finish its partial reports (its
/// in-flight turns get their grace period first).
const STOP_LIMIT: Duration = Duration::from_secs(120);

/// How a child ended.
pub struct Ended {
    pub output: Output,
    /// The parent was interrupted while the child ran (and forwarded it).
    pub interrupted: bool,
}

/// Runs `cmd` to its end, forwarding an interrupt of `stop` as SIGINT.
pub async fn run(
    mut cmd: tokio::process::Command,
    stop: &CancellationToken,
) -> std::io::Result<Ended> {
    cmd.kill_on_drop(true);
    let child = cmd.spawn()?;
    let pid = child.id();
    let waiting = child.wait_with_output();
    tokio::pin!(waiting);
    tokio::select! {
        biased;
        output = &mut waiting => Ok(Ended { output: output?, interrupted: stop.is_cancelled() }),
        () = stop.cancelled() => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
            match tokio::time::timeout(STOP_LIMIT, &mut waiting).await {
                Ok(output) => Ok(Ended { output: output?, interrupted: true }),
                // Dropping the future kills the child (kill_on_drop).
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the interrupted child did not stop within {STOP_LIMIT:?}; killed"),
                )),
            }
        }
    }
}
