//! `finalping capacity`: a step ramp of VUs (closed executors) or arrival rate
//! (open executors) until an SLO breaks or the load generator saturates, then
//! a bisection between the last good and the first bad step. Each step is a
//! `finalping run` child process with `--set` overrides and its own report
//! folder; the SLOs use the threshold syntax and are judged on each step's
//! `summary.json`. Each step's percentiles get a 95 % confidence interval from
//! `compare`'s bootstrap over the step's interval histograms.
//!
//! Reports (`capacity.json`, `capacity.md`, `report.html`) list the steps
//! sorted by load, each with a status that says what happened
//! (`passed` / `breached` / `invalid` / `saturated`), its throughput and its
//! latencies; a metric the step did not measure is blank (`null` in JSON).
//! The page draws latency against load with the SLO limits and the knee.

use crate::cli::{CapacityArgs, SelfCheckMode};
use crate::compare;
use crate::error::{exit, CliError};
use crate::report::capacity::{CapacityReport, CapacityStep};
use crate::scenario;
use crate::thresholds::{evaluate, Outcome, Threshold, Thresholds};
use std::path::{Path, PathBuf};

pub async fn capacity(args: CapacityArgs) -> Result<i32, CliError> {
    check_steps(&args)?;
    let slos = parse_slos(&args.slos)?;
    let s = scenario::load_with_settings(&args.scenario, &args.common.settings)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let variable = if s.load.executor().is_open() {
        "load.rate"
    } else {
        "load.vus"
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "capacity-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    crate::fsio::claim_run_dir(&out, args.overwrite, "capacity").map_err(CliError::usage)?;
    let exe = super::child::finalping_exe()?;
    let stop = super::signals::install(
        "stopping the current step (its partial report is kept), then writing the capacity report",
    );
    let runner = Runner {
        exe,
        args: &args,
        variable,
        slos: &slos,
        out: &out,
        stop: &stop,
    };

    let mut steps: Vec<CapacityStep> = Vec::new();
    let mut load = args.start;
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut generator_bound = false;
    while load <= args.max && !stop.is_cancelled() {
        let Some(step) = runner.step(load).await? else {
            break;
        };
        let (ok, saturated) = (step.ok, step.saturated);
        steps.push(step);
        if saturated {
            generator_bound = true;
            break;
        }
        if ok {
            good = Some(load);
            load += args.step;
        } else {
            bad = Some(load);
            break;
        }
    }
    // Bisect between the last good and the first bad step.
    if let (Some(mut lo), Some(mut hi)) = (good, bad) {
        for _ in 0..args.refine {
            if stop.is_cancelled() {
                break;
            }
            let mid = if variable == "load.vus" {
                ((lo + hi) / 2.0).floor()
            } else {
                (lo + hi) / 2.0
            };
            if mid <= lo || mid >= hi {
                break;
            }
            let Some(step) = runner.step(mid).await? else {
                break;
            };
            let ok = step.ok && !step.saturated;
            steps.push(step);
            if ok {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        good = Some(lo);
        bad = Some(hi);
    }
    let unit = if variable == "load.vus" {
        "VUs"
    } else {
        "conversations/s"
    };
    let interrupted = stop.is_cancelled();
    let conclusion = match (good, bad, generator_bound) {
        _ if interrupted => format!(
            "interrupted after {} step(s): the steps below are all that ran (the last one partially); so far {}",
            steps.len(),
            good.map_or("no step met the SLOs".to_string(), |g| format!("{g} {unit} met the SLOs"))
        ),
        (g, _, true) => format!(
            "the load generator's measurements were distorted first: the endpoint sustains at least {} {unit} ({})",
            g.map_or("0".to_string(), |g| g.to_string()),
            steps
                .last()
                .and_then(|s| s.saturation_hint.as_deref())
                .unwrap_or("run finalping serve / the generator on more cores to go further")
        ),
        (Some(g), Some(b), _) => format!("maximum sustainable load {g} {unit}; the SLO breaks at {b} {unit}"),
        (Some(g), None, _) => format!("every step up to {g} {unit} met the SLOs (raise --max to find the knee)"),
        (None, Some(b), _) => format!("the first step ({b} {unit}) already breaks the SLOs (lower --start)"),
        (None, None, _) => "no step ran".to_string(),
    };
    steps.sort_by(|a, b| a.load.total_cmp(&b.load));
    let limits = slos
        .iter()
        .filter(|t| t.condition.unit == crate::thresholds::Unit::Ms && t.key.tags.is_empty())
        .map(|t| (t.key.metric.clone(), t.expression(), t.condition.limit))
        .collect();
    let report = CapacityReport {
        schema_version: 2,
        variable: variable.to_string(),
        slos: args.slos.clone(),
        steps,
        max_sustainable: good,
        knee: bad,
        generator_bound,
        conclusion,
        limits,
    };
    crate::report::write_each(&crate::report::capacity::exporters(), &report, &out)
        .map_err(|e| CliError::internal(e.to_string()))?;
    print!("{}", crate::report::capacity::console(&report));
    println!("{}\ncapacity report: {}", report.conclusion, out.display());
    Ok(if interrupted {
        exit::INTERRUPTED
    } else {
        exit::PASS
    })
}

/// `--start`, `--step` and `--max` must make a finite, rising ramp.
fn check_steps(args: &CapacityArgs) -> Result<(), CliError> {
    let bad = |what: &str| Err(CliError::usage(format!("capacity: {what}")));
    if !(args.step.is_finite() && args.step > 0.0) {
        return bad(&format!(
            "--step {} must be a positive number (the load added per step, e.g. --step 10)",
            args.step
        ));
    }
    if !(args.start.is_finite() && args.start > 0.0) {
        return bad(&format!("--start {} must be a positive number", args.start));
    }
    if !(args.max.is_finite() && args.max >= args.start) {
        return bad(&format!(
            "--max {} must be a number at least --start ({})",
            args.max, args.start
        ));
    }
    Ok(())
}

/// `"final_ping.p99 < 800ms"` → a threshold.
fn parse_slos(slos: &[String]) -> Result<Thresholds, CliError> {
    if slos.is_empty() {
        return Err(CliError::usage(
            "give at least one --slo, e.g. --slo \"final_ping.p99 < 800ms\"",
        ));
    }
    slos.iter()
        .map(|s| {
            let (key, cond) = s.trim().split_once(char::is_whitespace).ok_or_else(|| {
                CliError::usage(format!(
                    "--slo `{s}`: write `<metric>.<statistic> <op> <limit>`, e.g. \"final_ping.p99 < 800ms\""
                ))
            })?;
            let t = Threshold::parse(key, cond)
                .map_err(|e| CliError::usage(format!("--slo `{s}`: {e}")))?;
            if !crate::thresholds::is_known_metric(&t.key.metric) {
                return Err(CliError::usage(format!(
                    "--slo `{s}`: unknown metric `{}` (latency metrics such as final_ping, first_output, connect, context_update; aggregates errors, turns, updates; or a counter of summary.json)",
                    t.key.metric
                )));
            }
            Ok(t)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Thresholds)
}

struct Runner<'a> {
    exe: PathBuf,
    args: &'a CapacityArgs,
    variable: &'static str,
    slos: &'a Thresholds,
    out: &'a Path,
    stop: &'a tokio_util::sync::CancellationToken,
}

impl Runner<'_> {
    /// Runs one step; `None` when an interrupt stopped it before it wrote a report.
    async fn step(&self, load: f64) -> Result<Option<CapacityStep>, CliError> {
        let dir = self.out.join(format!("step-{load}"));
        if !self.args.quiet {
            eprintln!(
                "capacity: {} = {load} for {}",
                self.variable, self.args.hold
            );
        }
        let mut cmd = super::child::ChildRun {
            scenario: &self.args.scenario,
            out: &dir,
            target: &self.args.common,
            self_check: self.args.self_check,
            settings: vec![
                (self.variable.to_string(), load.to_string()),
                ("load.duration".to_string(), self.args.hold.to_string()),
                ("load.iterations".to_string(), "null".to_string()),
            ],
        }
        .command(&self.exe);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let output = super::child::run(cmd, self.stop)
            .await
            .map_err(|e| CliError::internal(format!("finalping run (step {load}): {e}")))?
            .output;
        if output.status.code() == Some(exit::USAGE) {
            return Err(CliError::usage(format!(
                "step {load}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let summary = match crate::report::json::read_summary(&dir.join("summary.json")) {
            Ok(summary) => summary,
            Err(_) if self.stop.is_cancelled() => return Ok(None),
            Err(e) => {
                return Err(CliError::internal(format!(
                    "step {load}: summary.json of {}: {e}",
                    dir.display()
                )))
            }
        };
        let saturated =
            summary.self_check.saturated && self.args.self_check == SelfCheckMode::Strict;
        let results = evaluate(self.slos, summary.numbers(), None);
        let errors: Vec<String> = results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .map(|r| format!("{}: {}", r.threshold, r.message))
            .collect();
        let percentile = |m: &str, p: f64| {
            summary
                .metrics
                .get(m)
                .filter(|s| s.count > 0)
                .and_then(|s| s.percentile(p))
        };
        let invalid = summary.status == crate::verdict::RunStatus::Invalid
            || results.iter().any(|r| r.outcome == Outcome::Invalid);
        let status = if saturated {
            "saturated"
        } else if summary.status == crate::verdict::RunStatus::Interrupted {
            "interrupted"
        } else if invalid {
            "invalid"
        } else if errors.is_empty() {
            "passed"
        } else {
            "breached"
        };
        let run: Vec<compare::RunData> = compare::load_run(&dir).into_iter().collect();
        // One bootstrap per metric, for all of its percentiles at once.
        let cis = |m: &str, ps: &[f64]| -> Vec<Option<[f64; 2]>> {
            let found = compare::metric_cis(&run, m, ps, super::sweep::BOOTSTRAP);
            (0..ps.len())
                .map(|i| {
                    let c = found.as_ref()?.percentiles.get(i)?;
                    Some([c.low, c.high])
                })
                .collect()
        };
        let final_ping = cis("final_ping", &[50.0, 99.0]);
        let update = cis("context_update", &[99.0]);
        Ok(Some(CapacityStep {
            load,
            dir: dir.display().to_string(),
            status: status.to_string(),
            run_status: summary.status.as_str().to_string(),
            ok: errors.is_empty() && !invalid,
            saturated,
            saturation_hint: summary.self_check.hint.clone().filter(|_| saturated),
            turns_per_sec: summary.turns_per_sec(),
            final_ping_p50_ms: percentile("final_ping", 50.0),
            final_ping_p99_ms: percentile("final_ping", 99.0),
            context_update_p99_ms: percentile("context_update", 99.0),
            final_ping_p50_ci_ms: final_ping.first().copied().flatten(),
            final_ping_p99_ci_ms: final_ping.get(1).copied().flatten(),
            context_update_p99_ci_ms: update.first().copied().flatten(),
            errors,
        }))
    }
}
