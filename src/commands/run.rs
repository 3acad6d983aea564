//! `finalping run`: load the scenario, apply flag overrides, make sure the
//! machine can hold the VUs, start the embedded emulator (on its own runtime,
//! see [`super::embedded`]) when no target is given, run the engine, write the
//! reports and pick the exit code. The steps are library calls (`engine`,
//! `report`, `verdict`); this file only wires flags to them.

use super::embedded::EmbeddedEmulator;
use super::{runtime_setup, signals, start};
use crate::cli::{OutputFormat, RunArgs, SelfCheckMode};
use crate::emulator_config::EmulatorConfig;
use crate::engine::{self, Plan, ProgressMode, Segment};
use crate::error::CliError;
use crate::export::{self, LiveMetrics, LiveOptions};
use crate::metrics::{GeneratorUsage, ProcessUsage, Recorder};
use crate::report::{self, ContextReport, Manifest, RunOrigin, RunReport, SegmentManifest};
use crate::scenario::{self, Executor, Scenario, TemplateCtx};
use crate::secret;
use crate::verdict;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    let mut setup = Setup::prepare(&args).await?;
    if !args.quiet {
        setup.announce();
    }
    // Open executors connect their VUs first, so that the start (and a
    // barrier's "ready") means ready to send.
    let recorder = Arc::new(Recorder::new());
    let mut pool = engine::warm_up(&setup.plan, &recorder, &interrupt).await;
    if !args.quiet && !pool.is_empty() {
        eprintln!(
            "warm-up: {} connections opened before the schedule starts",
            pool.len()
        );
    }
    let start_at = aligned_start(
        &args,
        &setup.run_id,
        setup.plan.segment,
        &interrupt,
        &mut pool,
    )
    .await?;
    let started_at = chrono::Utc::now();
    let start_late = start_at.map(|at| start::lateness(at, started_at));
    if let Some(late) = start_late.filter(|l| *l > start::START_TOLERANCE) {
        eprintln!(
            "warning: starting {} ms after the common start time: this run will be marked invalid",
            late.as_millis()
        );
    }
    let live_metrics = live_metrics(&setup.plan, &args).await?;
    let sinks = setup.interval_sinks(&args, live_metrics.as_ref())?;
    // The folder says from the start what it is: a run that has not finished.
    let started = RunReport::started(
        &setup.run_id,
        started_at,
        setup.manifest(&args),
        &setup.out_dir,
    );
    report::write_started(&started, &setup.out_dir).map_err(|e| {
        CliError::internal(format!(
            "{e}: no load was sent (is the disk full or the folder read-only?)"
        ))
    })?;

    let progress = if args.progress_json {
        ProgressMode::Json
    } else if args.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    let emulator_cpu = setup.embedded.as_ref().map(EmbeddedEmulator::cpu);
    let emulator_cpu_now = || emulator_cpu.as_ref().and_then(|c| c.total());
    let (usage_before, emulator_before) = (ProcessUsage::now(), emulator_cpu_now());
    let plan = setup.plan.clone();
    let outcome = engine::run(plan, recorder, progress, interrupt.clone(), sinks, pool).await;
    let (usage_after, emulator_after) = (ProcessUsage::now(), emulator_cpu_now());
    let generator = GeneratorUsage::between(
        usage_before,
        usage_after,
        outcome.elapsed,
        setup.embedded.is_some(),
        emulator_before
            .zip(emulator_after)
            .map(|(b, a)| a.saturating_sub(b)),
    );
    if let Some(em) = setup.embedded.take() {
        em.shutdown().await;
    }
    let timing = Timing {
        start_at,
        started_at,
        start_late,
    };
    let report = conclude(&mut setup, &args, outcome, generator, timing).await;
    let code = publish(&report, &setup.out_dir, args.json);
    if let Some(live) = live_metrics {
        live.finish(&interrupt).await;
    }
    code
}

/// When a run started: the common start instant (if any), the actual start,
/// and how late it was.
struct Timing {
    start_at: Option<chrono::DateTime<chrono::Utc>>,
    started_at: chrono::DateTime<chrono::Utc>,
    start_late: Option<Duration>,
}

/// The finished run's report: totals, status (verdict, start alignment,
/// descriptors, thresholds, abort), context updates and manifest.
async fn conclude(
    setup: &mut Setup,
    args: &RunArgs,
    outcome: engine::EngineOutcome,
    generator: GeneratorUsage,
    timing: Timing,
) -> RunReport {
    let plan = setup.plan.clone();
    let mut manifest = setup.manifest(args);
    if args.segment.is_some() || timing.start_at.is_some() {
        manifest.segment = Some(SegmentManifest {
            index: plan.segment.index(),
            count: plan.segment.count(),
            start_at: timing.start_at.map(start::rfc3339),
            start_late_ms: timing.start_late.map_or(0.0, |l| l.as_secs_f64() * 1000.0),
        });
    }
    let context = match setup.runtime.take() {
        Some(rt) => Some(finish_runtime(rt, &plan, &outcome.totals).await),
        None => None,
    };

    let saturation = (args.self_check == SelfCheckMode::Strict).then_some(&outcome.self_check);
    let (status, reason) = verdict::judge(&outcome.totals, outcome.interrupted, saturation);
    let (status, reason) = verdict::invalidate(
        status,
        reason,
        timing.start_late.and_then(start::too_late),
        crate::fdlimit::exhausted(),
    );
    let mut report = RunReport::new(
        setup.run_id.clone(),
        &outcome.totals,
        status,
        reason,
        start::rfc3339(timing.started_at),
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
        verdict::aborted(&mut report, why);
    }
    report
}

/// Everything a run needs before its first VU starts: the plan, its report
/// folder, the target (the embedded emulator when the scenario names none)
/// and the runtime side.
struct Setup {
    plan: Arc<Plan>,
    run_id: String,
    out_dir: std::path::PathBuf,
    url_token: String,
    /// The target as shown: the embedded emulator's URL or the scrubbed URL.
    shown_url: String,
    scenario_bytes: Vec<u8>,
    emulator_config: Option<EmulatorConfig>,
    embedded: Option<EmbeddedEmulator>,
    runtime: Option<runtime_setup::RuntimeSetup>,
}

impl Setup {
    async fn prepare(args: &RunArgs) -> Result<Setup, CliError> {
        let mut scenario = scenario::load_with_settings(&args.scenario, &args.common.settings)
            .map_err(|e| CliError::usage(e.to_string()))?;
        apply_overrides(&mut scenario, args)?;
        super::saas::check(&scenario, args.own_capacity)?;
        super::embedded::require(&scenario)?;
        let scenario_bytes =
            crate::fsio::read_capped(&args.scenario, crate::fsio::MAX_CONFIG_BYTES)
                .unwrap_or_default();
        let segment = args.segment.unwrap_or(Segment::WHOLE);
        if let Some(at) = args.start_at {
            start::check_start_at(at, chrono::Utc::now())?;
        }
        if args.start_barrier.is_some() && args.run_id.is_none() {
            return Err(CliError::usage(
                "--start-barrier needs --run-id: the segments of one run check in under their shared run id",
            ));
        }
        let seed = run_seed(args, &scenario);
        if !segment.is_whole() && seed.is_none() {
            eprintln!("warning: segment {segment} has no shared seed (no --seed, no `seed:` in the scenario, no --run-id): its Poisson arrivals are drawn independently of the other segments'; pass the same --run-id to every segment");
        }
        let seed = seed.unwrap_or_else(rand::random::<u64>);
        let (groups, tags) = engine::groups_of(&scenario);
        engine::segment::check(&groups, segment)
            .map_err(|e| CliError::usage(format!("--segment {segment}: {e} ({})", e.hint())))?;
        let segment_vus = engine::segment::vus(&groups, segment).len() as u64;
        let needs_emulator = scenario.target.url.is_none();
        ensure_fd_capacity(&scenario, segment_vus, needs_emulator, None)?;

        let emulator_config = needs_emulator.then(|| {
            let mut config = scenario.emulator.clone().unwrap_or_default();
            config.seed = engine::segment::emulator_seed(config.seed, segment);
            config
        });
        let embedded = match &emulator_config {
            Some(config) => Some(EmbeddedEmulator::start(config.clone()).await?),
            None => None,
        };
        let emulator = embedded.as_ref().and_then(EmbeddedEmulator::access);
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
        let (run_id, out_dir) = report::folder::claim(
            &scenario.name,
            args.run_id.as_deref(),
            args.out.as_deref(),
            args.overwrite,
            segment,
        )
        .map_err(CliError::usage)?;
        let runtime = if runtime_setup::needs_runtime(&scenario) {
            Some(runtime_setup::setup(
                &scenario,
                emulator.as_ref(),
                &out_dir,
            )?)
        } else {
            None
        };
        let shown_url = match &emulator {
            Some(em) => format!("embedded emulator at {}", em.url),
            None => secret::scrub_text(&endpoint_url, &[&url_token]),
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
            endpoint_url,
            url_token: url_token.clone(),
            seed,
            segment,
            groups,
            tags,
            scenario,
            emulator_cpu: embedded.as_ref().map(EmbeddedEmulator::cpu),
        });
        Ok(Setup {
            plan,
            run_id,
            out_dir,
            url_token,
            shown_url,
            scenario_bytes,
            emulator_config,
            embedded,
            runtime,
        })
    }

    /// `finalping: running … reports in …` on stderr.
    fn announce(&self) {
        let plan = &self.plan;
        let vus = if plan.segment.is_whole() {
            format!("{} VUs", plan.vus())
        } else {
            format!(
                "{} (run {})",
                engine::segment::describe(&plan.groups, plan.segment),
                self.run_id
            )
        };
        eprintln!(
            "finalping: running `{}` — {vus} against {} (EIO{}), reports in {}",
            plan.scenario.name,
            self.shown_url,
            u8::from(plan.scenario.target.eio),
            self.out_dir.display()
        );
    }

    /// The run's manifest, secrets scrubbed (the URL token, the runtime's).
    fn manifest(&self, args: &RunArgs) -> Manifest {
        let mut secrets = vec![self.url_token.as_str()];
        secrets.extend(
            self.runtime
                .iter()
                .flat_map(|rt| rt.secrets.iter().map(String::as_str)),
        );
        let origin = RunOrigin {
            scenario_file: &args.scenario,
            scenario_bytes: &self.scenario_bytes,
            capacity_acknowledged: args.own_capacity,
            shown_url: &self.shown_url,
            emulator: self.emulator_config.as_ref(),
        };
        let mut manifest = Manifest::of_run(&self.plan, &origin, &secrets);
        manifest.runtime = self
            .runtime
            .as_ref()
            .map(|rt| runtime_setup::manifest(rt, &self.plan.scenario));
        manifest
    }

    /// Where each closed interval goes: the live files of the run folder
    /// and, when on, the live metrics.
    fn interval_sinks(
        &self,
        args: &RunArgs,
        live: Option<&LiveMetrics>,
    ) -> Result<Vec<Box<dyn engine::IntervalSink>>, CliError> {
        let wants =
            |f: OutputFormat| args.output_format.is_empty() || args.output_format.contains(&f);
        let files = report::LiveFiles::create(
            &self.out_dir,
            wants(OutputFormat::Timeseries),
            wants(OutputFormat::Hlog),
        )
        .map_err(|e| {
            CliError::internal(format!(
                "{e}: no load was sent (is the disk full or the folder read-only?)"
            ))
        })?;
        let mut sinks: Vec<Box<dyn engine::IntervalSink>> = vec![Box::new(files)];
        if let Some(live) = live {
            let segment = self.plan.segment;
            let label = (!segment.is_whole()).then(|| (segment.index(), segment.count()));
            sinks.push(live.sink(export::identity(&self.plan, &self.run_id, label)));
        }
        Ok(sinks)
    }
}

/// The common start instant of a run's segments, if any (`--start-barrier`
/// or `--start-at`), waited for; `None` starts at once.
/// Waits for the common start (barrier or `--start-at`), if any, while the
/// warm connections of `pool` keep answering heartbeats.
async fn aligned_start(
    args: &RunArgs,
    run_id: &str,
    segment: Segment,
    interrupt: &CancellationToken,
    pool: &mut engine::Pool,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, CliError> {
    let start_at = match &args.start_barrier {
        Some(dir) => {
            let timeout: Duration = args.barrier_timeout.as_duration();
            pool.keep_alive_while(start::barrier(
                dir, run_id, segment, timeout, interrupt, args.quiet,
            ))
            .await?
        }
        None => args.start_at,
    };
    if let Some(at) = start_at {
        pool.keep_alive_while(start::wait_until(at, interrupt, args.quiet))
            .await;
    }
    Ok(start_at)
}

/// Live metrics (`/metrics`, remote write) when the flags or the scenario ask.
async fn live_metrics(plan: &Plan, args: &RunArgs) -> Result<Option<LiveMetrics>, CliError> {
    let options = live_options(&plan.scenario, args)?;
    if !options.is_on() {
        return Ok(None);
    }
    let live = LiveMetrics::start(&options)
        .await
        .map_err(CliError::usage)?;
    if let Some(url) = live.url() {
        eprintln!("metrics: serving {url}");
    }
    Ok(Some(live))
}

/// Writes the reports and prints the verdict (the table, or `--json` the
/// summary); the exit code. The console gets the result even when the disk
/// is full.
fn publish(report: &RunReport, out_dir: &std::path::Path, json: bool) -> Result<i32, CliError> {
    let written = report::write_all(report, out_dir);
    let _ = std::fs::remove_file(out_dir.join(crate::fsio::RUN_MARKER));
    if json && written.is_ok() {
        // The same bytes as summary.json, without reading the file back.
        use report::Exporter;
        report::json::SummaryJson
            .write(report, &mut std::io::stdout().lock())
            .map_err(|e| CliError::internal(format!("cannot print summary.json: {e}")))?;
    } else {
        report::print_final_table(report);
    }
    if written.is_ok() && !json {
        println!("reports: {}", out_dir.display());
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
    let runtime = &plan.scenario.runtime;
    let codec = match runtime.kind {
        scenario::RuntimeKind::RestInject => "json (REST context inject)".to_string(),
        scenario::RuntimeKind::Websocket => runtime.codec.as_str().to_string(),
    };
    let heartbeat = runtime
        .heartbeat
        .map_or_else(|| "off".to_string(), |h| h.to_string());
    let tokens = rt.tokens.as_ref().map(|t| t.stats());
    ContextReport::new(rt.shown_url, codec, heartbeat, totals, tokens, audit)
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
}
