//! Python for the tests that check our files with a real third-party reader:
//! a venv per pinned requirements file under the cargo target dir
//! (`target/tmp/pyenv-<name>-<hash of the file>`), created once, and a way to
//! run commands with a hard time limit. Used by `tests/hlog_python.rs`
//! (`hdrhistogram`) and the CI-gate tests (`junitparser`, `markdown-it-py`).

use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const VENV_LIMIT: Duration = Duration::from_secs(120);
const PIP_LIMIT: Duration = Duration::from_secs(600);

/// Runs a command to completion within `limit` (killed on overrun); an error
/// unless it exits 0, with its output.
pub fn run(cmd: &mut Command, what: &str, limit: Duration) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) if out.status.success() => Ok(out),
        Ok(Ok(out)) => Err(format!(
            "{what}: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: plain kill(2) of the child we spawned.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            Err(format!("{what}: did not finish within {limit:?} (killed)"))
        }
    }
}

/// `python3 -m venv` + `pip install -r <requirements>` (a path relative to the
/// crate) into `<target>/tmp/pyenv-<name>-<hash>`, once; returns its python.
/// Built in a staging folder and renamed into place when complete, so an
/// interrupted install is never mistaken for a finished one; one install at a
/// time per process, so concurrent tests never share a staging folder.
pub fn venv_python(requirements: &str, name: &str) -> Result<PathBuf, String> {
    let req = Path::new(env!("CARGO_MANIFEST_DIR")).join(requirements);
    let text = std::fs::read(&req).map_err(|e| format!("cannot read {}: {e}", req.display()))?;
    let hash = sha2::Sha256::digest(&text);
    let tag: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join(format!("pyenv-{name}-{tag}"));
    let py = venv.join("bin").join("python");
    // One install at a time in this process: the tests of one binary share it,
    // and two of them may ask for the same venv at once.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if venv.join(".installed").exists() && py.exists() {
        return Ok(py);
    }
    let staging = tmp.join(format!("pyenv-{name}-{tag}.staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let hint = "this test needs Python 3 with the venv module and network access to PyPI \
                (Debian: apt-get install python3 python3-venv)";
    run(
        Command::new("python3").arg("--version"),
        &format!("python3 --version ({hint})"),
        VENV_LIMIT,
    )?;
    let install = || -> Result<(), String> {
        run(
            Command::new("python3").arg("-m").arg("venv").arg(&staging),
            &format!("python3 -m venv {} ({hint})", staging.display()),
            VENV_LIMIT,
        )?;
        run(
            Command::new(staging.join("bin").join("python"))
                .args(["-m", "pip", "install", "--disable-pip-version-check"])
                .args(["--no-input", "--timeout", "60", "-r"])
                .arg(&req),
            &format!("pip install -r {} ({hint})", req.display()),
            PIP_LIMIT,
        )?;
        Ok(())
    };
    if let Err(e) = install() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    std::fs::write(staging.join(".installed"), &text)
        .map_err(|e| format!("cannot write the venv marker: {e}"))?;
    if std::fs::rename(&staging, &venv).is_err() {
        // Another test process finished first; use its venv.
        let _ = std::fs::remove_dir_all(&staging);
        if !venv.join(".installed").exists() {
            return Err(format!("cannot move the venv into {}", venv.display()));
        }
    }
    Ok(py)
}
