//! Helpers shared by the integration tests: run the real `finalping` binary with
//! a hard time limit, write scenario files, read reports. No sleeps: waits are
//! channel receives with timeouts.
#![allow(dead_code)]

pub mod python;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_finalping")
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Functional tests share an oversubscribed 2-core machine (debug builds, tests
/// in parallel), where the generator self-check would rightly call runs
/// saturated: they report it but do not enforce it. `tests/self_check.rs`
/// tests the strict verdict.
pub const SELF_CHECK_WARN: [&str; 2] = ["--self-check", "warn"];

/// `args` with `--self-check warn` added when the command is `run`.
pub fn with_self_check_warn(args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if args.first() == Some(&"run") {
        v.extend(SELF_CHECK_WARN.iter().map(|s| s.to_string()));
    }
    v
}

/// The tests that need a quiet machine (they compare latencies with a clock,
/// or memory growth with a bound) and the few that load it hard (floods, CPU
/// burners, browsers) hold this for their run, so no two of them overlap:
/// `cargo test` runs 4 tests at a time (`.cargo/config.toml`), and the other
/// tests only wait on small debug-build runs. Fair (first come, first
/// served), and a failed holder does not poison it.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// [`EXCLUSIVE`] for a plain `#[test]`.
pub fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.blocking_lock()
}

/// [`EXCLUSIVE`] for a `#[tokio::test]`.
pub async fn exclusive_async() -> tokio::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().await
}

/// Runs `finalping <args>` to completion; panics (fails the test) if it takes
/// longer than `limit`, killing it first. `run` gets `--self-check warn`.
pub fn run_finalping(args: &[&str], limit: Duration) -> Output {
    run_finalping_env(args, &[], limit)
}

/// `run_finalping` with environment variables set for the child (e.g. the
/// client secret a scenario reads with `${env:NAME}`).
pub fn run_finalping_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let child = Command::new(bin())
        .args(with_self_check_warn(args))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn finalping");
    wait_with_limit(child, limit)
}

/// Waits for a child's exit and output within `limit`, killing it on overrun.
pub fn wait_with_limit(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for finalping"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("finalping did not finish within {limit:?}");
        }
    }
}

/// Writes `yaml` as `s.yaml` in a new temp folder, runs it (`--quiet`, plus
/// `extra` flags) with reports in `r/`, and returns the output, the run's
/// `summary.json` (`Null` when it wrote none) and the folder.
pub fn run_yaml(
    yaml: &str,
    extra: &[&str],
    limit: Duration,
) -> (Output, serde_json::Value, Workdir) {
    let w = Workdir::new();
    let p = w.file("s.yaml", yaml);
    let out_dir = w.path("r");
    let mut args = vec![
        "run",
        p.to_str().unwrap_or_default(),
        "--out",
        out_dir.to_str().unwrap_or_default(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let out = run_finalping(&args, limit);
    let summary = out_dir.join("summary.json");
    let s = if summary.is_file() {
        read_json(&summary)
    } else {
        serde_json::Value::Null
    };
    (out, s, w)
}

/// A temp folder with a scenario file in it.
pub struct Workdir {
    pub dir: tempfile::TempDir,
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

pub fn counter(summary: &serde_json::Value, name: &str) -> u64 {
    summary["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {name} missing in {summary}"))
}

pub fn metric(summary: &serde_json::Value, name: &str, field: &str) -> f64 {
    summary["metrics"][name][field]
        .as_f64()
        .unwrap_or_else(|| panic!("metric {name}.{field} missing"))
}

pub fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Spawns `finalping serve --port 0 <extra>` and returns it with its URL.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(extra: &[&str]) -> Served {
    let mut child = Command::new(bin())
        .args(["serve", "--port", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn finalping serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = first_line(stdout, Duration::from_secs(20));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in `{line}`"))
        .to_string();
    Served { child, url }
}

/// Reads the first line of a pipe within `limit` (the rest is drained in the background).
pub fn first_line(pipe: impl std::io::Read + Send + 'static, limit: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(pipe).lines();
        let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let _ = tx.send(first);
        for _ in lines {}
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no first line within {limit:?}"))
}

/// A Debian program a test needs (`/usr/bin/chromium`, `/usr/bin/prometheus`).
/// Only under CI (`CI=true`, as `.ci/run` sets) is a missing program installed,
/// by `setup` (a `tests/setup/*.sh` script: `apt-get`, needs root), once per
/// test process; there a failed install fails the test. Elsewhere `cargo test`
/// never installs system packages: a missing program returns `None` after a
/// `SKIPPED` line on the real stderr (shown even for a passing test) saying
/// why and how to run the test; the caller returns early.
pub fn system_tool(path: &'static str, setup: &'static str, test: &str) -> Option<&'static Path> {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    static INSTALLED: Mutex<BTreeMap<&'static str, Result<(), String>>> =
        Mutex::new(BTreeMap::new());
    let program = Path::new(path);
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !program.exists() && !under_ci {
        skipped(
            test,
            &format!(
                "{path} is missing and `cargo test` installs system packages only under CI \
                 (CI=true). To run it: `apt-get install {}` (or `sh {setup}` as root), or \
                 `CI=true cargo test` as root",
                program.file_name().and_then(|n| n.to_str()).unwrap_or(path),
            ),
        );
        return None;
    }
    // One install at a time; later callers reuse the first result.
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    let result = installed.entry(path).or_insert_with(|| {
        if !program.exists() {
            python::run(
                Command::new("sh").arg(repo_path(setup)),
                setup,
                Duration::from_secs(900),
            )?;
        }
        if program.exists() {
            Ok(())
        } else {
            Err(format!("{setup} ran but {path} is missing"))
        }
    });
    if let Err(e) = result {
        panic!("{test} needs {path}, which could not be installed under CI: {e}");
    }
    Some(program)
}

/// Says on the process's real stderr (not the per-test capture, so it shows
/// in the normal `cargo test` output) that `test` was skipped and why.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {why}\n");
}
