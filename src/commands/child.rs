//! The `finalping run` children of `sweep` and `capacity`: their command line
//! built in one place ([`ChildRun`]), started, waited for, and — when the
//! parent is interrupted (Ctrl-C, SIGTERM, SIGHUP) — sent SIGINT so they write
//! their partial reports, waited for a bounded time and killed after it. A
//! child never outlives its parent's command.

use crate::cli::{SelfCheckMode, TargetArgs};
use crate::error::CliError;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The running `finalping` binary, which the children run.
pub fn finalping_exe() -> Result<PathBuf, CliError> {
    std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the finalping binary: {e}")))
}

/// One child run: a scenario into its own report folder, with the parent's
/// target flags and then the child's own `--set`s (which win).
pub struct ChildRun<'a> {
    pub scenario: &'a Path,
    /// The child's report folder (`--out`).
    pub out: &'a Path,
    /// `--target`, `--seed`, `--set`, `--insecure` and the URL token of the parent.
    pub target: &'a TargetArgs,
    pub self_check: SelfCheckMode,
    /// `path=value` overrides of this child, after the shared ones.
    pub settings: Vec<(String, String)>,
}

impl ChildRun<'_> {
    /// `<exe> run <scenario> --out <dir> --quiet --self-check <mode> <target
    /// flags> --set k=v…`, with the URL token in the environment (never on the
    /// command line) and stdin closed; the caller sets stdout and stderr.
    pub fn command(&self, exe: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("run")
            .arg(self.scenario)
            .arg("--out")
            .arg(self.out)
            .arg("--quiet")
            .args([
                "--self-check",
                match self.self_check {
                    SelfCheckMode::Strict => "strict",
                    SelfCheckMode::Warn => "warn",
                },
            ])
            .args(self.target.child_args())
            .stdin(std::process::Stdio::null());
        for (k, v) in &self.settings {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        if let Some((key, token)) = self.target.child_env() {
            cmd.env(key, token);
        }
        cmd
    }
}

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
