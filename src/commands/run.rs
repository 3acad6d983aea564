//! `finalping run`: load the scenario, apply flag overrides, make sure the
//! machine can hold the VUs, start the embedded emulator (on its own runtime,
//! see [`super::embedded`]) when no target is given, run the engine, write the
//! reports and pick the exit code.

use super::embedded::EmbeddedEmulator;
use super::{runtime_setup, signals, start};
use crate::cli::{OutputFormat, RunArgs, SelfCheckMode};
use crate::engine::{self, Plan, ProgressMode, Segment};
use crate::error::CliError;
use crate::export::{self, LiveMetrics, LiveOptions};
use crate::metrics::{Counter, GeneratorUsage, ProcessUsage, Recorder};
use crate::report::{
    self, ContextReport, LoadManifest, Manifest, RunReport, SegmentManifest, TargetManifest,
};
use crate::scenario::{self, Executor, Scenario, TemplateCtx};
use crate::secret;
use crate::verdict::{self, RunStatus};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File descriptors kept free for the process itself (logs, reports, listener…).
const FD_HEADROOM: u64 = 128;

pub async fn run(args: RunArgs) -> Result<i32, CliError> {
    // First, so that a Ctrl-C at any later point ends in partial reports.
    let interrupt = signals::install(
        "stopping new work, giving in-flight turns their grace period, then writing reports",
    );
    if let Some(workers) = args.workers.filter(|n| *n > 1) {
        return super::workers::run(args, workers, interrupt).await;
    }
    let mut scenario = scenario::load_with_settings(&args.scenario, &args.common.settings)
        .map_err(|e| CliError::usage(e.to_string()))?;
    apply_overrides(&mut scenario, &args)?;
    super::saas::check(&scenario, args.own_capacity)?;
    super::embedded::require(&scenario)?;
    let scenario_bytes =
        crate::fsio::read_capped(&args.scenario, crate::fsio::MAX_CONFIG_BYTES).unwrap_or_default();
    let segment = args.segment.unwrap_or(Segment::WHOLE);
    if let Some(at) = args.start_at {
        start::check_start_at(at, chrono::Utc::now())?;
    }
    if args.start_barrier.is_some() && args.run_id.is_none() {
        return Err(CliError::usage(
            "--start-barrier needs --run-id: the segments of one run check in under their shared run id",
        ));
    }
    let seed = run_seed(&args, &scenario);
    if !segment.is_whole() && seed.is_none() {
        eprintln!("warning: segment {segment} has no shared seed (no --seed, no `seed:` in the scenario, no --run-id): its Poisson arrivals are drawn independently of the other segments'; pass the same --run-id to every segment");
    }
    let seed = seed.unwrap_or_else(rand::random::<u64>);
    let embedded = scenario.target.url.is_none();
    let (groups, tags) = engine::groups_of(&scenario);
    engine::segment::check(&groups, segment)
        .map_err(|e| CliError::usage(format!("--segment {segment}: {e} ({})", e.hint())))?;
    let segment_vus = engine::segment::vus(&groups, segment).len() as u64;
    ensure_fd_capacity(&scenario, segment_vus, embedded, None)?;

    let emulator_config = embedded.then(|| {
        let mut config = scenario.emulator.clone().unwrap_or_default();
        config.seed = engine::segment::emulator_seed(config.seed, segment);
        config
    });
    let embedded_emulator = match &emulator_config {
        Some(config) => Some(EmbeddedEmulator::start(config.clone()).await?),
        None => None,
    };
    let emulator = embedded_emulator.as_ref().and_then(|e| e.access());
    let emulator_cpu = embedded_emulator.as_ref().map(|e| e.cpu());
    let ctx = TemplateCtx::default();
    let (endpoint_url, url_token) = match (&scenario.target.url, &emulator) {
        (Some(url), _) => target_and_token(
            &url.render(&ctx),
            args.common.url_token.as_deref(),
            &scenario.target,
        ),
        (None, Some(em)) => (
            em.url.clone(),
            args.common
                .url_token
                .clone()
                .unwrap_or_else(|| scenario.target.url_token.render(&ctx)),
        ),
        (None, None) => return Err(CliError::internal("no target and no emulator")),
    };
    secret::register(&url_token);

    let (run_id, out_dir) = claim_out_dir(&scenario.name, &args, segment)?;

    let runtime = if runtime_setup::needs_runtime(&scenario) {
        Some(runtime_setup::setup(
            &scenario,
            emulator.as_ref(),
            &out_dir,
        )?)
    } else {
        None
    };

    let plan = Arc::new(Plan {
        runtime: runtime.as_ref().and_then(|r| r.plan.clone()),
        inject: runtime.as_ref().and_then(|r| r.inject.clone()),
        rest: rest_endpoint(&scenario, &endpoint_url, &url_token)?,
        feeders: Arc::new(scenario::Feeders::strided(
            &scenario.feeder_tables,
            u64::from(segment.index()),
            u64::from(segment.count()),
        )),
        endpoint_url: endpoint_url.clone(),
        url_token: url_token.clone(),
        seed,
        segment,
        groups,
        tags,
        scenario,
        emulator_cpu: emulator_cpu.clone(),
    });
    let shown_url = match &emulator {
        Some(em) => format!("embedded emulator at {}", em.url),
        None => secret::scrub_text(&endpoint_url, &[&url_token]),
    };
    if !args.quiet {
        let vus = if segment.is_whole() {
            format!("{} VUs", plan.vus())
        } else {
            format!(
                "{} (run {run_id})",
                engine::segment::describe(&plan.groups, segment)
            )
        };
        eprintln!(
            "finalping: running `{}` — {vus} against {} (EIO{}), reports in {}",
            plan.scenario.name,
            shown_url,
            u8::from(plan.scenario.target.eio),
            out_dir.display()
        );
    }

    // Start alignment: the schedule starts at the common instant, if any.
    let start_at = match (&args.start_barrier, args.start_at) {
        (Some(dir), _) => {
            start::barrier(
                dir,
                &run_id,
                segment,
                args.barrier_timeout.as_duration(),
                &interrupt,
                args.quiet,
            )
            .await?
        }
        (None, at) => at,
    };
    if let Some(at) = start_at {
        start::wait_until(at, &interrupt, args.quiet).await;
    }
    let started_at = chrono::Utc::now();
    let start_late = start_at.map(|at| start::lateness(at, started_at));
    if let Some(late) = start_late.filter(|l| *l > start::START_TOLERANCE) {
        eprintln!(
            "warning: starting {} ms after the common start time: this run will be marked invalid",
            late.as_millis()
        );
    }

    let live_options = live_options(&plan.scenario, &args)?;
    let live_metrics = if live_options.is_on() {
        let live = LiveMetrics::start(&live_options)
            .await
            .map_err(CliError::usage)?;
        if let Some(url) = live.url() {
            eprintln!("metrics: serving {url}");
        }
        Some(live)
    } else {
        None
    };
    let mut sinks: Vec<Box<dyn engine::IntervalSink>> = Vec::new();
    let wants = |f: OutputFormat| args.output_format.is_empty() || args.output_format.contains(&f);
    sinks.push(Box::new(
        report::LiveFiles::create(
            &out_dir,
            wants(OutputFormat::Timeseries),
            wants(OutputFormat::Hlog),
        )
        .map_err(|e| {
            CliError::internal(format!(
                "{e}: no load was sent (is the disk full or the folder read-only?)"
            ))
        })?,
    ));
    if let Some(live) = &live_metrics {
        let segment_label = (!segment.is_whole()).then(|| (segment.index(), segment.count()));
        sinks.push(live.sink(export::identity(&plan, &run_id, segment_label)));
    }

    // The folder says from the start what it is: a run that has not finished.
    let mut secrets = vec![url_token.as_str()];
    secrets.extend(
        runtime
            .iter()
            .flat_map(|rt| rt.secrets.iter().map(String::as_str)),
    );
    let mut manifest = build_manifest(
        &plan,
        &args,
        &scenario_bytes,
        shown_url.clone(),
        emulator_config.clone().map(|c| c.redacted()),
        &secrets,
    );
    manifest.runtime = runtime
        .as_ref()
        .map(|rt| runtime_setup::manifest(rt, &plan.scenario));
    report::write_started(
        &started_report(&run_id, started_at, manifest, &out_dir),
        &out_dir,
    )
    .map_err(|e| {
        CliError::internal(format!(
            "{e}: no load was sent (is the disk full or the folder read-only?)"
        ))
    })?;

    let recorder = Arc::new(Recorder::new());
    let progress = if args.progress_json {
        ProgressMode::Json
    } else if args.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    let emulator_cpu_now = || emulator_cpu.as_ref().and_then(|c| c.total());
    let (usage_before, emulator_before) = (ProcessUsage::now(), emulator_cpu_now());
    let outcome = engine::run(plan.clone(), recorder, progress, interrupt.clone(), sinks).await;
    let (usage_after, emulator_after) = (ProcessUsage::now(), emulator_cpu_now());
    let generator = GeneratorUsage::between(
        usage_before,
        usage_after,
        outcome.elapsed,
        embedded_emulator.is_some(),
        emulator_before
            .zip(emulator_after)
            .map(|(b, a)| a.saturating_sub(b)),
    );
    if let Some(em) = embedded_emulator {
        em.shutdown().await;
    }
    let runtime_manifest = runtime.as_ref().map(|rt| {
        (
            runtime_setup::manifest(rt, &plan.scenario),
            rt.secrets.clone(),
        )
    });
    let context = match runtime {
        Some(rt) => Some(finish_runtime(rt, &plan, &outcome.totals).await),
        None => None,
    };

    let saturation =
        (args.self_check == SelfCheckMode::Strict).then_some(outcome.self_check.reasons.as_slice());
    let (mut status, mut reason) = verdict::judge(&outcome.totals, outcome.interrupted, saturation);
    if let Some(why) = start_late.and_then(start::too_late) {
        if status != RunStatus::Interrupted {
            status = RunStatus::Invalid;
            reason = why;
        }
    }
    let exhausted = crate::fdlimit::exhausted();
    if exhausted > 0 && status != RunStatus::Interrupted {
        status = RunStatus::Invalid;
        reason = format!(
            "invalid: the process ran out of file descriptors {exhausted}× (EMFILE/ENFILE), so \
             connects failed for lack of descriptors, not because of the target; raise the \
             open-files limit (ulimit -n) or lower the VUs ({reason})"
        );
    }
    let mut secrets = vec![url_token.as_str()];
    if let Some(rt) = &runtime_manifest {
        secrets.extend(rt.1.iter().map(String::as_str));
    }
    let mut manifest = build_manifest(
        &plan,
        &args,
        &scenario_bytes,
        shown_url,
        emulator_config.map(|c| c.redacted()),
        &secrets,
    );
    manifest.runtime = runtime_manifest.map(|(m, _)| m);
    if args.segment.is_some() || start_at.is_some() {
        manifest.segment = Some(SegmentManifest {
            index: segment.index(),
            count: segment.count(),
            start_at: start_at.map(start::rfc3339),
            start_late_ms: start_late.map_or(0.0, |l| l.as_secs_f64() * 1000.0),
        });
    }
    let mut report = RunReport::new(
        run_id,
        &outcome.totals,
        status,
        reason,
        start::rfc3339(started_at),
        outcome.elapsed.as_secs_f64(),
        outcome.peak_vus,
        generator,
        outcome.self_check,
        manifest,
    );
    report.context = context;
    report.tags = report::tag_reports(&outcome.totals, &plan.tags);
    report.timeline = Some(Arc::new(outcome.timeline));
    report.formats = (!args.output_format.is_empty()).then(|| args.output_format.clone());
    verdict::judge_report(
        &mut report,
        &plan.scenario.thresholds,
        Some(&outcome.totals),
    );
    report.totals = Some(Arc::new(report::Totals {
        snapshot: outcome.totals,
        tag_names: plan.tags.clone(),
    }));
    if let Some(why) = &outcome.aborted {
        // A breach stopped the run early: it fails even if the final totals recover.
        if report.status != RunStatus::Invalid {
            report.status = RunStatus::Failed;
        }
        report.status_reason = format!(
            "aborted early (abort_on_fail): {why}; {}",
            report.status_reason
        );
    }
    // The verdict and the table reach the console even when the disk is full.
    let written = report::write_all(&report, &out_dir);
    let _ = std::fs::remove_file(out_dir.join(crate::fsio::RUN_MARKER));
    if args.json && written.is_ok() {
        // The same bytes as summary.json, without reading the file back.
        use report::Exporter;
        report::json::SummaryJson
            .write(&report, &mut std::io::stdout().lock())
            .map_err(|e| CliError::internal(format!("cannot print summary.json: {e}")))?;
    } else {
        report::print_final_table(&report);
    }
    if written.is_ok() && !args.json {
        println!("reports: {}", out_dir.display());
    }
    if let Some(live) = live_metrics {
        live.finish(&interrupt).await;
    }
    match written {
        Ok(_) => Ok(report.status.exit_code()),
        Err(e) => Err(CliError::internal(format!(
            "{e}: the run ended ({}) but its reports could not be written \
             (disk full or not writable?); the table above is its result",
            report.status.as_str()
        ))),
    }
}

/// The endpoint URL and URL token of a run against `url`: `--url-token`,
/// else `target.url_token` when the scenario sets one, else the URL's last
/// path segment (an Endpoint URL as copied, `https://host/<URLToken>`),
/// which is then removed from the URL.
pub(super) fn target_and_token(
    url: &str,
    flag: Option<&str>,
    target: &scenario::Target,
) -> (String, String) {
    let given = flag.map(str::to_string).or_else(|| {
        target
            .url_token_given()
            .then(|| target.url_token.render(&TemplateCtx::default()))
    });
    if let Some(token) = given {
        return (without_token_segment(url, &token).to_string(), token);
    }
    let trimmed = url.trim_end_matches('/');
    let path_start = trimmed
        .find("://")
        .and_then(|i| trimmed[i + 3..].find('/').map(|j| i + 3 + j));
    match path_start.and_then(|p| trimmed[p..].rfind('/').map(|r| p + r)) {
        // A path prefix such as `/chat` is not a token: only token-like segments are.
        Some(cut) if secret::looks_like_token(&trimmed[cut + 1..]) => {
            (trimmed[..cut].to_string(), trimmed[cut + 1..].to_string())
        }
        _ => (
            url.to_string(),
            target.url_token.render(&TemplateCtx::default()),
        ),
    }
}

/// The `summary.json` a run folder holds until the final reports replace it.
fn started_report(
    run_id: &str,
    started_at: chrono::DateTime<chrono::Utc>,
    manifest: Manifest,
    out_dir: &Path,
) -> RunReport {
    RunReport::new(
        run_id.to_string(),
        &crate::metrics::Snapshot::new(),
        RunStatus::Incomplete,
        format!(
            "incomplete: the run has not written its final reports (still running, or killed); \
             `finalping report {}` rebuilds them from timeseries.csv and the .hlog files",
            out_dir.display()
        ),
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        0.0,
        0,
        GeneratorUsage::default(),
        crate::metrics::selfcheck::SelfCheck::new(Default::default()).summary(),
        manifest,
    )
}

/// Where live metrics go: flags over `metrics:` in the scenario.
fn live_options(s: &Scenario, args: &RunArgs) -> Result<LiveOptions, CliError> {
    let remote_write = match args
        .prometheus_remote_write
        .as_ref()
        .or(s.metrics.remote_write.as_ref())
    {
        Some(url) => Some(export::check_url(url).map_err(CliError::usage)?),
        None => None,
    };
    Ok(LiveOptions {
        listen: args.metrics_listen.or(s.metrics.listen),
        linger: args
            .metrics_linger
            .unwrap_or(s.metrics.linger)
            .as_duration(),
        remote_write,
    })
}

/// Flushes the audit log (and webhook queue) and sums up the context updates.
async fn finish_runtime(
    rt: runtime_setup::RuntimeSetup,
    plan: &Plan,
    totals: &crate::metrics::Snapshot,
) -> ContextReport {
    let audit = rt.audit.finish().await;
    let tokens = rt.tokens.as_ref().map(|t| t.stats());
    let c = |k: Counter| totals.counter(k);
    let total = c(Counter::UpdatesSent);
    let ok = c(Counter::UpdatesOk);
    ContextReport {
        runtime_url: rt.shown_url,
        codec: match plan.scenario.runtime.kind {
            scenario::RuntimeKind::RestInject => "json (REST context inject)".to_string(),
            scenario::RuntimeKind::Websocket => plan.scenario.runtime.codec.as_str().to_string(),
        },
        heartbeat: plan
            .scenario
            .runtime
            .heartbeat
            .map_or_else(|| "off".to_string(), |h| h.to_string()),
        updates_total: total,
        updates_successful: ok,
        updates_failed: totals.updates_failed(),
        accuracy_rate: if total == 0 {
            0.0
        } else {
            ok as f64 / total as f64
        },
        conflicts: c(Counter::Conflicts),
        conflict_retries: c(Counter::ConflictRetries),
        token_requests: tokens.as_ref().map_or(0, |t| t.requests),
        token_failures: tokens.as_ref().map_or(0, |t| t.failures),
        audit,
    }
}

/// `target.kind: rest`: the REST Endpoint client, with the longest `send`
/// timeout as its per-request timeout.
fn rest_endpoint(
    s: &Scenario,
    endpoint_url: &str,
    url_token: &str,
) -> Result<Option<Arc<crate::protocol::rest::RestEndpoint>>, CliError> {
    if s.target.kind != scenario::TargetKind::Rest {
        return Ok(None);
    }
    let timeout = s
        .all_steps()
        .filter_map(|step| match step.action() {
            scenario::Step::Send(send) => Some(send.timeout.as_duration()),
            _ => None,
        })
        .max()
        .unwrap_or(std::time::Duration::from_secs(30));
    let endpoint = crate::protocol::rest::RestEndpoint::new(crate::protocol::rest::RestOptions {
        url: endpoint_url.to_string(),
        url_token: url_token.to_string(),
        test_mode: s.target.test_mode,
        timeout,
        http2_prior_knowledge: s.target.http2,
        output_limits: s.target.output_limits(),
    })
    .map_err(|e| CliError::usage(format!("target: {e}")))?;
    Ok(Some(Arc::new(endpoint)))
}

pub(super) fn apply_overrides(s: &mut Scenario, args: &RunArgs) -> Result<(), CliError> {
    let executor = s.load.executor();
    if let Some(vus) = args.vus {
        if vus == 0 {
            return Err(CliError::usage("--vus must be at least 1"));
        }
        match executor {
            Executor::ConstantVus | Executor::PerVuIterations => s.load.vus = vus,
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate => {
                s.load.max_vus = Some(vus)
            }
            Executor::RampingVus => {
                return Err(CliError::usage(
                    "--vus does not apply to `ramping-vus`: change the stages' targets",
                ))
            }
        }
    }
    if let Some(d) = args.duration {
        if d.as_duration().is_zero() {
            return Err(CliError::usage(
                "--duration must be longer than 0 (e.g. 30s)",
            ));
        }
        if matches!(
            executor,
            Executor::RampingVus | Executor::RampingArrivalRate
        ) {
            return Err(CliError::usage(format!(
                "--duration does not apply to `{}`: its stages set the length",
                executor.name()
            )));
        }
        s.load.duration = Some(d);
        if args.iterations.is_none() {
            s.load.iterations = None;
        }
    }
    if let Some(n) = args.iterations {
        if n == 0 {
            return Err(CliError::usage("--iterations must be at least 1"));
        }
        if executor.is_open() || executor == Executor::RampingVus {
            return Err(CliError::usage(format!(
                "--iterations does not apply to `{}`",
                executor.name()
            )));
        }
        s.load.iterations = Some(n);
        if args.duration.is_none() {
            s.load.duration = None;
        }
    }
    // Overrides must leave a load the executor can run.
    if args.vus.is_some() || args.duration.is_some() || args.iterations.is_some() {
        s.load
            .check()
            .map_err(|(what, hint)| CliError::usage(format!("after the flags: {what} ({hint})")))?;
    }
    if let Some(token) = args.common.url_token.as_deref() {
        if token.trim().is_empty() {
            return Err(CliError::usage(
                "--url-token is empty: pass the Endpoint's URL token (or leave the flag out)",
            ));
        }
    }
    if let Some(url) = &args.common.target {
        let t = scenario::Template::parse(url)
            .map_err(|e| CliError::usage(format!("--target: {e}")))?;
        let rendered = t.render(&TemplateCtx::default());
        if !["http://", "https://", "ws://", "wss://"]
            .iter()
            .any(|p| rendered.starts_with(p))
        {
            return Err(CliError::usage(format!(
                "--target `{rendered}` must start with http://, https://, ws:// or wss://"
            )));
        }
        s.target.url = Some(t);
    }
    Ok(())
}

/// The seed of the run: `--seed`, the scenario's `seed`, or one derived from
/// an explicit `--run-id` (so the segments of a run draw the same schedule).
fn run_seed(args: &RunArgs, scenario: &Scenario) -> Option<u64> {
    args.common.seed.or(scenario.seed).or_else(|| {
        args.run_id.as_ref().map(|run_id| {
            let digest = Sha256::digest(run_id.as_bytes());
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[..8]);
            u64::from_le_bytes(bytes)
        })
    })
}

/// `reports/<run-id>` for a whole run; `reports/<run-id>/segment-<i>-of-<N>`
/// for a segment, so the segments of one run sit side by side in its folder.
fn default_out_dir(run_id: &str, segment: Segment) -> PathBuf {
    let run = PathBuf::from("reports").join(run_id);
    if segment.is_whole() {
        run
    } else {
        run.join(segment.folder_name())
    }
}

/// Raises the soft open-files limit to the hard limit and checks that this
/// process's `vus` fit: `fdlimit::per_vu` descriptors each (chat and runtime
/// connections, both ends with the emulator in the same process) plus
/// `fdlimit::shared` ones (webhook workers) and headroom. `workers`: the
/// process is one of `run --workers N` (the advice then is more workers).
pub(super) fn ensure_fd_capacity(
    scenario: &Scenario,
    vus: u64,
    embedded: bool,
    workers: Option<u32>,
) -> Result<(), CliError> {
    let per_vu = crate::fdlimit::per_vu(scenario, embedded).max(1);
    let shared = crate::fdlimit::shared(scenario, embedded) + FD_HEADROOM;
    let needed = vus * per_vu + shared;
    let Some(limit) = raise_fd_limit().filter(|limit| *limit < needed) else {
        return Ok(());
    };
    let fit = (limit.saturating_sub(shared) / per_vu).max(1);
    // Segments differ by at most one VU: K workers hold ceil(all / K) each.
    let total = vus * u64::from(workers.unwrap_or(1));
    let enough = total.div_ceil(fit);
    let hint = match workers {
        Some(n) => format!(
            "{vus} VUs per worker with --workers {n}; --workers {enough} would fit (each worker is a process with its own limit)"
        ),
        None if embedded => format!(
            "run it as {enough} processes with --workers {enough}, or run `finalping serve --port 0` as a separate process and pass its URL with --target (then {} VUs fit), or lower --vus to {fit}",
            limit.saturating_sub(shared) / (per_vu / 2).max(1)
        ),
        None => format!(
            "run it as {enough} processes with --workers {enough} (or --segment i/{enough} on several machines), lower --vus to {fit}, or raise the hard limit (ulimit -Hn); each VU holds {per_vu} connection(s)"
        ),
    };
    Err(CliError::usage(format!(
        "{vus} VUs need about {needed} open files but a process may open only {limit}: {hint}"
    )))
}

/// Raises the soft open-files limit to the hard limit; returns the new soft
/// limit (`None` where there is none to raise). Shared with `serve`, whose
/// every accepted connection is a descriptor too.
#[cfg(unix)]
pub(super) fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

#[cfg(not(unix))]
pub(super) fn raise_fd_limit() -> Option<u64> {
    None
}

/// `<scenario-slug>-<UTC yyyymmdd-hhmmss>-<4 hex>`: sortable and unique enough.
pub(super) fn run_id(name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "{}-{}-{:04x}",
        crate::scenario::name_slug(name, 6),
        at.format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

/// The run id and its report folder, claimed for this run: `--out` (or, with
/// `--run-id`, the default folder of that id) must be empty or new, or is
/// cleared with `--overwrite`; a generated id gets a new id until its default
/// folder is new.
fn claim_out_dir(
    name: &str,
    args: &RunArgs,
    segment: Segment,
) -> Result<(String, PathBuf), CliError> {
    let claim = |dir: &Path, id: &str, overwrite: bool| {
        crate::fsio::claim_run_dir(dir, overwrite, id).map_err(CliError::usage)
    };
    if let Some(id) = &args.run_id {
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| default_out_dir(id, segment));
        claim(&dir, id, args.overwrite)?;
        return Ok((id.clone(), dir));
    }
    if let Some(out) = &args.out {
        let id = run_id(name, chrono::Utc::now());
        claim(out, &id, args.overwrite)?;
        return Ok((id, out.clone()));
    }
    let mut last = String::new();
    for _ in 0..16 {
        let id = run_id(name, chrono::Utc::now());
        let dir = default_out_dir(&id, segment);
        if dir.exists() {
            continue;
        }
        match crate::fsio::claim_run_dir(&dir, false, &id) {
            Ok(()) => return Ok((id, dir)),
            Err(e) => last = e,
        }
    }
    Err(CliError::usage(format!(
        "no free report folder under reports/: {last} (choose one with --out)"
    )))
}

fn build_manifest(
    plan: &Plan,
    args: &RunArgs,
    scenario_bytes: &[u8],
    shown_url: String,
    emulator: Option<crate::emulator_config::EmulatorConfig>,
    secrets: &[&str],
) -> Manifest {
    let url_token = secrets.first().copied().unwrap_or_default();
    let s = &plan.scenario;
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    Manifest {
        finalping_version: env!("CARGO_PKG_VERSION").to_string(),
        capacity_acknowledged: args.own_capacity,
        tls_insecure: crate::tls::insecure(),
        scenario_name: s.name.clone(),
        scenario_file: display_path(&args.scenario),
        scenario_sha256: format!("{:x}", Sha256::digest(scenario_bytes)),
        seed: plan.seed,
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_line: secret::scrub_text(&command_line, secrets),
        target: TargetManifest {
            kind: "socketio".to_string(),
            url: shown_url,
            embedded_emulator: emulator.is_some(),
            eio: u8::from(s.target.eio),
            emit_with_ack: s.target.emit_with_ack,
            test_mode: s.target.test_mode,
            inner_handshake: s.target.inner_handshake,
            channel: s.target.channel.clone(),
            url_token: secret::redact(url_token),
            connect_timeout: s.target.connect_timeout.to_string(),
        },
        load: LoadManifest {
            model: if s.load.executor().is_open() {
                "open (arrival rate)".to_string()
            } else {
                "closed (VUs)".to_string()
            },
            scenarios: plan
                .groups
                .iter()
                .map(|g| format!("{}: {} ({} VUs)", g.name, g.load.executor().name(), g.vus))
                .collect(),
            executor: s.load.executor().name().to_string(),
            stages: s
                .load
                .stages
                .iter()
                .map(|st| format!("{}→{}", st.duration, st.target))
                .collect(),
            rate: s.load.rate,
            arrival: format!("{:?}", s.load.arrival).to_lowercase(),
            vus: plan.vus(),
            duration: s.load.duration.map(|d| d.to_string()),
            iterations: s.load.iterations,
            ramp_up: s.load.ramp_up.to_string(),
            grace: s.load.grace.to_string(),
        },
        runtime: None,
        emulator,
        segment: None,
        merge: None,
    }
}

/// `url` without a trailing `/<url_token>` segment (the REST client appends
/// the token itself; the Socket.IO client strips it the same way).
fn without_token_segment<'a>(url: &'a str, url_token: &str) -> &'a str {
    let trimmed = url.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((base, last))
            if !url_token.is_empty()
                && last == url_token
                && base.contains("://")
                && !base.ends_with('/') =>
        {
            base
        }
        _ => url,
    }
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_token_comes_from_the_url_when_not_configured() {
        let token = "0123456789abcdef0123";
        let mut t = scenario::Target {
            url: scenario::Template::parse(&format!("http://h:1/p/{token}")).ok(),
            ..Default::default()
        };
        let url = format!("http://h:1/p/{token}");
        assert_eq!(
            target_and_token(&url, None, &t),
            ("http://h:1/p".to_string(), token.to_string())
        );
        // A short path prefix is not taken for a token.
        assert_eq!(
            target_and_token("http://h:1/prefix", None, &t),
            (
                "http://h:1/prefix".to_string(),
                "emulator-url-token".to_string()
            )
        );
        // The flag wins, and a URL that also carries it loses the segment.
        assert_eq!(
            target_and_token(&url, Some(token), &t),
            ("http://h:1/p".to_string(), token.to_string())
        );
        t.url_token = scenario::Template::literal("mine");
        assert_eq!(
            target_and_token(&format!("http://h:1/{token}"), None, &t).1,
            "mine"
        );
        assert_eq!(
            without_token_segment(&format!("http://h/r/{token}/"), token),
            "http://h/r"
        );
        assert_eq!(without_token_segment("http://h/r", token), "http://h/r");
        assert_eq!(
            without_token_segment(&format!("http://{token}"), token),
            format!("http://{token}")
        );
    }

    #[test]
    fn run_id_is_a_slug_with_time() {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        let id = run_id("My Quick  start!", at);
        assert!(id.starts_with("my-quick-start-19700101-000000-"), "{id}");
    }
}
