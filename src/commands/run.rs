//! `finalping run`: load the scenario, apply flag overrides, make sure the
//! machine can hold the VUs, start the embedded emulator (on its own runtime,
//! see [`super::embedded`]) when no target is given, run the engine, write the
//! reports and pick the exit code.

use super::embedded::EmbeddedEmulator;
use super::{runtime_setup, signals};
use crate::cli::{RunArgs, SelfCheckMode};
use crate::emulator;
use crate::engine::{self, Plan, ProgressMode};
use crate::error::CliError;
use crate::metrics::{Counter, GeneratorUsage, ProcessUsage, Recorder};
use crate::report::{self, ContextReport, LoadManifest, Manifest, RunReport, TargetManifest};
use crate::scenario::{self, Executor, Scenario, TemplateCtx};
use crate::secret;
use crate::thresholds;
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
    let mut scenario = scenario::load_with_settings(&args.scenario, &args.settings)
        .map_err(|e| CliError::usage(e.to_string()))?;
    apply_overrides(&mut scenario, &args)?;
    super::saas::check(&scenario, args.own_capacity)?;
    let scenario_bytes =
        crate::fsio::read_capped(&args.scenario, crate::fsio::MAX_CONFIG_BYTES).unwrap_or_default();
    let seed = args
        .seed
        .or(scenario.seed)
        .unwrap_or_else(rand::random::<u64>);
    let embedded = scenario.target.url.is_none();
    let (groups, tags) = engine::groups_of(&scenario);
    let total_vus: u32 = groups.iter().map(|g| g.vus).sum();
    ensure_fd_capacity(
        total_vus,
        crate::fdlimit::per_vu(&scenario, embedded),
        crate::fdlimit::shared(&scenario, embedded),
        embedded,
    )?;

    let emulator_config = embedded.then(|| scenario.emulator.clone().unwrap_or_default());
    let embedded_emulator = match &emulator_config {
        Some(config) => Some(EmbeddedEmulator::start(config.clone()).await?),
        None => None,
    };
    let emulator = embedded_emulator.as_ref().and_then(|e| e.emulator());
    let emulator_cpu = embedded_emulator.as_ref().map(|e| e.cpu());
    let ctx = TemplateCtx::default();
    let endpoint_url = match (&scenario.target.url, emulator) {
        (Some(url), _) => url.render(&ctx),
        (None, Some(em)) => em.url(),
        (None, None) => return Err(CliError::internal("no target and no emulator")),
    };
    let url_token = url_token_of(&scenario.target, &endpoint_url);
    secret::register(&url_token);

    let started_at = chrono::Utc::now();
    let (run_id, out_dir) = claim_out_dir(&scenario.name, started_at, &args)?;

    let runtime = if runtime_setup::needs_runtime(&scenario) {
        let em = emulator.zip(emulator_config.as_ref());
        Some(runtime_setup::setup(&scenario, em, &out_dir)?)
    } else {
        None
    };

    let plan = Arc::new(Plan {
        runtime: runtime.as_ref().and_then(|r| r.plan.clone()),
        inject: runtime.as_ref().and_then(|r| r.inject.clone()),
        rest: rest_endpoint(
            &scenario,
            without_token_segment(&endpoint_url, &url_token),
            &url_token,
        )?,
        feeders: Arc::new(scenario::Feeders::new(&scenario.feeder_tables)),
        endpoint_url: endpoint_url.clone(),
        url_token: url_token.clone(),
        seed,
        groups,
        tags,
        scenario,
        emulator_cpu: emulator_cpu.clone(),
    });
    let shown_url = match emulator {
        Some(em) => format!("embedded emulator at {}", em.url()),
        None => secret::scrub_text(&endpoint_url, &[&url_token]),
    };
    if !args.quiet {
        eprintln!(
            "finalping: running `{}` — {} VUs against {} (EIO{}), reports in {}",
            plan.scenario.name,
            plan.vus(),
            shown_url,
            u8::from(plan.scenario.target.eio),
            out_dir.display()
        );
    }

    let recorder = Arc::new(Recorder::new());
    let progress = if args.quiet {
        ProgressMode::Quiet
    } else {
        ProgressMode::Auto
    };
    let emulator_cpu_now = || emulator_cpu.as_ref().and_then(|c| c.total());
    let (usage_before, emulator_before) = (ProcessUsage::now(), emulator_cpu_now());
    let outcome = engine::run(plan.clone(), recorder, progress, interrupt).await;
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
    let mut report = RunReport::new(
        run_id,
        &outcome.totals,
        status,
        reason,
        started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
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
    thresholds::judge_report(
        &mut report,
        &plan.scenario.thresholds,
        Some(&outcome.totals),
    );
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
    report::print_final_table(&report);
    let _ = std::fs::remove_file(out_dir.join(crate::fsio::RUN_MARKER));
    match written {
        Ok(_) => {
            println!("reports: {}", out_dir.display());
            Ok(report.status.exit_code())
        }
        Err(e) => Err(CliError::internal(format!(
            "{e}: the run ended ({}) but its reports could not be written \
             (disk full or not writable?); the table above is its result",
            report.status.as_str()
        ))),
    }
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
        .filter_map(|step| match step {
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

fn apply_overrides(s: &mut Scenario, args: &RunArgs) -> Result<(), CliError> {
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
    if let Some(url) = &args.target {
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

/// Raises the soft open-files limit to the hard limit and checks the VUs fit:
/// `per_vu` descriptors each (`fdlimit::per_vu`: chat and runtime
/// connections, both ends with the emulator in the same process) plus
/// `shared` ones (webhook workers) and headroom.
fn ensure_fd_capacity(vus: u32, per_vu: u64, shared: u64, embedded: bool) -> Result<(), CliError> {
    let per_vu = per_vu.max(1);
    let needed = u64::from(vus) * per_vu + shared + FD_HEADROOM;
    let limit = raise_fd_limit();
    if let Some(limit) = limit {
        if limit < needed {
            let fit = limit.saturating_sub(FD_HEADROOM + shared) / per_vu;
            let hint = if embedded {
                format!("run `finalping serve --port 0` as a separate process and pass its URL with --target (then {} VUs fit), or lower --vus to {fit}", limit.saturating_sub(FD_HEADROOM + shared) / (per_vu / 2).max(1))
            } else {
                format!("lower --vus to {fit} or raise the hard limit (ulimit -Hn); each VU holds {per_vu} connection(s)")
            };
            return Err(CliError::usage(format!(
                "{vus} VUs need about {needed} open files but this process may open only {limit}: {hint}"
            )));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}

/// `<scenario-slug>-<UTC yyyymmdd-hhmmss>-<4 hex>`: sortable and unique enough.
fn run_id(name: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .take(6)
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "run".to_string()
    } else {
        slug
    };
    format!(
        "{slug}-{}-{:04x}",
        at.format("%Y%m%d-%H%M%S"),
        rand::random::<u16>()
    )
}

/// The run id and its report folder, claimed for this run: `--out` must be
/// empty or new (or is cleared with `--overwrite`); the default
/// `reports/<run-id>` gets a new id until the folder is new.
fn claim_out_dir(
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
    args: &RunArgs,
) -> Result<(String, PathBuf), CliError> {
    if let Some(out) = &args.out {
        let id = run_id(name, at);
        crate::fsio::claim_run_dir(out, args.overwrite, &id).map_err(CliError::usage)?;
        return Ok((id, out.clone()));
    }
    let mut last = String::new();
    for _ in 0..16 {
        let id = run_id(name, at);
        let dir = PathBuf::from("reports").join(&id);
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
    emulator: Option<emulator::EmulatorConfig>,
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
    }
}

/// The URL token: `target.url_token`, or — when that is left at its default
/// and `target.url` ends in a token-like segment — that segment (README: the
/// Endpoint URL as copied, `https://host/<URLToken>`).
fn url_token_of(target: &scenario::Target, endpoint_url: &str) -> String {
    let configured = target.url_token.render(&TemplateCtx::default());
    let default = scenario::Target::default()
        .url_token
        .render(&TemplateCtx::default());
    if target.url.is_none() || configured != default {
        return configured;
    }
    let path = endpoint_url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    match path.split('/').rfind(|s| !s.is_empty()) {
        Some(last) if secret::looks_like_token(last) => last.to_string(),
        _ => configured,
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
        assert_eq!(url_token_of(&t, &format!("http://h:1/p/{token}")), token);
        assert_eq!(url_token_of(&t, "http://h:1/prefix"), "emulator-url-token");
        t.url_token = scenario::Template::literal("mine");
        assert_eq!(url_token_of(&t, &format!("http://h:1/{token}")), "mine");
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
