//! `finalping run --workers N`: one run as `N` segment processes of this
//! binary on this machine (`run --segment i/N`, each with its own file limit
//! and tokio runtime), so a run is no longer bounded by what one process may
//! open. The children share the run id (and so the seed), meet at a start
//! barrier in a temporary folder, write their reports into
//! `<run folder>/segment-<i>-of-<N>/` (their console output into
//! `segment-<i>-of-<N>.log` beside it) and send their progress as JSON lines
//! on stderr, which this module shows as one line. Ctrl-C/SIGTERM is forwarded once to every child
//! (each is in its own process group, so a terminal's Ctrl-C reaches only this
//! process): they write partial reports and the run exits 130.

use super::run::{apply_overrides, ensure_fd_capacity};
use crate::cli::{RunArgs, SelfCheckMode};
use crate::engine::{self, segment, Display, Progress, ProgressMode, Segment};
use crate::error::{exit, CliError};
use crate::merge::MergeOptions;
use crate::report::folder::run_id;
use crate::scenario;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the children wait at the barrier for each other (they start
/// within moments of each other; this only bounds a child that hangs).
const BARRIER_TIMEOUT: &str = "2m";

/// What a child reports to the parent.
enum Event {
    Progress(usize, Progress),
    Line(usize, String),
}

/// How one child ended.
struct Ended {
    index: usize,
    code: Option<i32>,
}

pub async fn run(
    args: RunArgs,
    workers: u32,
    interrupt: CancellationToken,
) -> Result<i32, CliError> {
    let mut scenario = scenario::load_with_settings(&args.scenario, &args.common.settings)
        .map_err(|e| CliError::usage(e.to_string()))?;
    apply_overrides(&mut scenario, &args)?;
    super::saas::check(&scenario, args.own_capacity)?;
    super::embedded::require(&scenario)?;
    let (groups, _) = engine::groups_of(&scenario);
    // Secret: only to scrub it from the command line kept in the manifest.
    let ctx = crate::scenario::TemplateCtx::default();
    let url_token = match &scenario.target.url {
        Some(url) => {
            super::run::target_and_token(
                &url.render(&ctx),
                args.common.url_token.as_deref(),
                &scenario.target,
            )
            .1
        }
        None => scenario.target.url_token.render(&ctx),
    };
    let segments: Vec<Segment> = (0..workers)
        .filter_map(|i| Segment::new(i, workers))
        .collect();
    let mut largest = 0u64;
    for seg in &segments {
        segment::check(&groups, *seg)
            .map_err(|e| CliError::usage(format!("--workers {workers}: {e} ({})", e.hint())))?;
        largest = largest.max(segment::vus(&groups, *seg).len() as u64);
    }
    ensure_fd_capacity(
        &scenario,
        largest,
        scenario.target.url.is_none(),
        Some(workers),
    )?;

    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| run_id(&scenario.name, chrono::Utc::now()));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&run_id));
    // The run folder belongs to this run (the workers' folders go inside it).
    crate::fsio::claim_run_dir(&out, args.overwrite, &run_id).map_err(CliError::usage)?;
    let barrier =
        std::env::temp_dir().join(format!("finalping-barrier-{run_id}-{}", std::process::id()));
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the finalping binary: {e}")))?;
    if !args.quiet {
        let vus: u64 = groups.iter().map(|g| u64::from(g.vus)).sum();
        eprintln!(
            "finalping: running `{}` as {workers} worker processes ({vus} VUs in all, at most {largest} each), run {run_id}, reports in {}",
            scenario.name,
            out.display()
        );
    }

    let (tx, mut events) = mpsc::channel(1024);
    let mut children = tokio::task::JoinSet::new();
    let mut pids = Vec::new();
    for (index, seg) in segments.iter().enumerate() {
        let dir = out.join(seg.folder_name());
        let mut cmd = child_command(&exe, &args, *seg, &run_id, &barrier, &dir)?;
        let mut child = cmd
            .spawn()
            .map_err(|e| CliError::internal(format!("cannot start worker {seg}: {e}")))?;
        pids.push(child.id());
        if let Some(stderr) = child.stderr.take() {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let event = match Progress::parse_line(&line) {
                        Some(p) => Event::Progress(index, p),
                        None => Event::Line(index, line),
                    };
                    if tx.send(event).await.is_err() {
                        break;
                    }
                }
            });
        }
        children.spawn(async move {
            let code = child.wait().await.ok().and_then(|s| s.code());
            Ended { index, code }
        });
    }
    drop(tx);

    let display = Display::new(
        engine::groups_duration(&groups),
        segment::planned_samples(&groups, Segment::WHOLE),
        if args.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        },
    );
    let mut latest = vec![Progress::default(); segments.len()];
    let mut codes: Vec<Option<i32>> = vec![None; segments.len()];
    let mut stopping = false;
    let show = |display: &Display, latest: &mut [Progress], event: Event| match event {
        Event::Progress(i, p) => {
            if let Some(slot) = latest.get_mut(i) {
                *slot = p;
            }
            display.update(&Progress::combine(latest.iter()));
        }
        Event::Line(i, line) => {
            let seg = segments.get(i).copied().unwrap_or_default();
            display.message(&format!("[worker {seg}] {line}"));
        }
    };
    loop {
        tokio::select! {
            Some(event) = events.recv() => show(&display, &mut latest, event),
            _ = interrupt.cancelled(), if !stopping => {
                stopping = true;
                terminate(&pids);
            }
            ended = children.join_next() => {
                let Some(ended) = ended else { break };
                let Ok(Ended { index, code }) = ended else { continue };
                if let Some(slot) = codes.get_mut(index) {
                    *slot = code;
                }
                // A worker that could not run (bad setup) would leave the
                // others waiting at the barrier: stop them.
                if matches!(code, Some(exit::USAGE | exit::INTERNAL) | None) && !stopping {
                    stopping = true;
                    terminate(&pids);
                }
            }
        }
    }
    while let Ok(event) = events.try_recv() {
        show(&display, &mut latest, event);
    }
    display.finish();
    let _ = std::fs::remove_dir_all(&barrier);
    check_workers(&segments, &codes, &out, args.quiet)?;
    let options = MergeOptions {
        strict_self_check: args.self_check == SelfCheckMode::Strict,
        start_tolerance: super::start::START_TOLERANCE,
        interrupted: interrupt.is_cancelled(),
        command_line: crate::secret::scrub(
            &std::env::args().collect::<Vec<_>>().join(" "),
            &[&url_token],
        ),
    };
    let dirs: Vec<PathBuf> = segments
        .iter()
        .map(|seg| out.join(seg.folder_name()))
        .collect();
    let merged = super::merge::merge_into(&dirs, &out, &options, &args.output_format, args.quiet);
    let _ = std::fs::remove_file(out.join(crate::fsio::RUN_MARKER));
    merged
}

/// `finalping run … --segment i/N` for worker `seg`, its console output in
/// `<dir>.log` beside its folder (the folder itself must be empty for the
/// worker to claim it).
fn child_command(
    exe: &Path,
    args: &RunArgs,
    seg: Segment,
    run_id: &str,
    barrier: &Path,
    dir: &Path,
) -> Result<tokio::process::Command, CliError> {
    let log_path = log_path(dir);
    let log = std::fs::File::create(&log_path)
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", log_path.display())))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run").arg(&args.scenario);
    cmd.args(["--segment", &seg.to_string(), "--run-id", run_id]);
    cmd.arg("--start-barrier").arg(barrier);
    cmd.args([
        "--barrier-timeout",
        BARRIER_TIMEOUT,
        "--progress-json",
        "--quiet",
    ]);
    cmd.arg("--out").arg(dir);
    for (flag, value) in forwarded_flags(args) {
        cmd.arg(flag);
        if let Some(v) = value {
            cmd.arg(v);
        }
    }
    if crate::tls::insecure() {
        cmd.arg("--insecure");
    }
    if let Some((key, token)) = args.common.child_env() {
        cmd.env(key, token);
    }
    cmd.stdin(Stdio::null())
        .stdout(log)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own process group: a terminal's Ctrl-C reaches the parent only,
    // which forwards it once (a second signal would make a child exit without reports).
    #[cfg(unix)]
    cmd.process_group(0);
    Ok(cmd)
}

/// Where a worker's console output goes: `<run folder>/segment-<i>-of-<N>.log`.
fn log_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".log");
    dir.with_file_name(name)
}

/// The flags of `run` that every worker gets as given.
fn forwarded_flags(args: &RunArgs) -> Vec<(&'static str, Option<String>)> {
    use clap::ValueEnum;
    let mut flags = Vec::new();
    let mut with = |flag: &'static str, value: Option<String>| {
        if let Some(v) = value {
            flags.push((flag, Some(v)));
        }
    };
    with("--vus", args.vus.map(|v| v.to_string()));
    with("--duration", args.duration.map(|d| d.to_string()));
    with("--iterations", args.iterations.map(|n| n.to_string()));
    with("--target", args.common.target.clone());
    with("--seed", args.common.seed.map(|s| s.to_string()));
    with(
        "--self-check",
        args.self_check
            .to_possible_value()
            .map(|v| v.get_name().to_string()),
    );
    for (k, v) in &args.common.settings {
        with("--set", Some(format!("{k}={v}")));
    }
    let formats: Vec<String> = args
        .output_format
        .iter()
        .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_string()))
        .collect();
    with(
        "--output-format",
        (!formats.is_empty()).then(|| formats.join(",")),
    );
    if args.own_capacity {
        flags.push(("--i-own-this-capacity", None));
    }
    flags
}

/// Asks every worker still running to stop (SIGTERM: partial reports).
fn terminate(pids: &[Option<u32>]) {
    for pid in pids.iter().flatten() {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(*pid) {
            // SAFETY: kill(2) with a child's pid and a valid signal number has
            // no memory effects; a child that has exited already yields ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// Lists the workers and where their reports are (unless `quiet`); fails
/// naming the first worker that could not run at all (usage or internal
/// error, or killed), whose folder cannot be merged.
fn check_workers(
    segments: &[Segment],
    codes: &[Option<i32>],
    out: &Path,
    quiet: bool,
) -> Result<(), CliError> {
    for (seg, code) in segments.iter().zip(codes) {
        let dir = out.join(seg.folder_name());
        let summary = std::fs::read_to_string(dir.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<crate::report::RunReport>(&t).ok());
        let line = match &summary {
            Some(s) => format!(
                "{} — {} of {} turns ok",
                s.status.as_str(),
                s.counter(crate::metrics::Counter::TurnsOk),
                s.counter(crate::metrics::Counter::TurnsSent)
            ),
            None => format!("no report (exit {})", exit_text(*code)),
        };
        if !quiet {
            println!("worker {seg}: {line} — {}", dir.display());
        }
    }
    match segments
        .iter()
        .zip(codes)
        .find(|(_, c)| matches!(c, Some(exit::USAGE | exit::INTERNAL) | None))
    {
        Some((seg, code)) => Err(CliError {
            code: code.unwrap_or(exit::INTERNAL),
            message: format!(
                "worker {seg} could not run (exit {}); its messages are above (prefixed `[worker {seg}]`) and its console output is in {}",
                exit_text(*code),
                log_path(&out.join(seg.folder_name())).display()
            ),
        }),
        None => Ok(()),
    }
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or("by a signal".to_string(), |c| c.to_string())
}
