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
use crate::report::html::svg::{self, Dash, Limit, LineChart, Mark, Series};
use crate::scenario;
use crate::thresholds::{evaluate, Outcome, Threshold, Thresholds};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
struct Step {
    load: f64,
    dir: String,
    /// What the step shows: `passed` (every SLO met), `breached` (an SLO
    /// failed), `invalid` (an SLO could not be judged, or the run itself is
    /// invalid), `saturated` (the generator saturated, `--self-check strict`),
    /// `interrupted` (stopped by Ctrl-C: partial).
    status: String,
    /// The status of the step's own run (`summary.json`).
    run_status: String,
    /// SLO judged ok (and the generator not saturated).
    ok: bool,
    saturated: bool,
    /// Turns completed per second of the step.
    turns_per_sec: f64,
    /// Percentiles in ms; `null` when the step has no sample of the metric.
    final_ping_p50_ms: Option<f64>,
    final_ping_p99_ms: Option<f64>,
    context_update_p99_ms: Option<f64>,
    /// 95 % confidence intervals of the three percentiles above (bootstrap
    /// over the step's interval histograms); absent without samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    final_ping_p50_ci_ms: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    final_ping_p99_ci_ms: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context_update_p99_ci_ms: Option<[f64; 2]>,
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct CapacityReport {
    schema_version: u32,
    variable: String,
    slos: Vec<String>,
    steps: Vec<Step>,
    /// Highest load that met every SLO.
    max_sustainable: Option<f64>,
    /// Lowest load that broke an SLO (the knee).
    knee: Option<f64>,
    /// The generator saturated before any SLO broke: the answer is "at least".
    generator_bound: bool,
    conclusion: String,
    /// SLO limits in ms (metric, expression, limit), drawn on the chart.
    #[serde(skip)]
    limits: Vec<(String, String, f64)>,
}

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
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the finalping binary: {e}")))?;
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

    let mut steps: Vec<Step> = Vec::new();
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
            "the load generator saturated first: the endpoint sustains at least {} {unit} (run finalping serve / the generator on more cores to go further)",
            g.map_or("0".to_string(), |g| g.to_string())
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
    write(&out, &report)?;
    print!("{}", table(&report));
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
    async fn step(&self, load: f64) -> Result<Option<Step>, CliError> {
        let dir = self.out.join(format!("step-{load}"));
        if !self.args.quiet {
            eprintln!(
                "capacity: {} = {load} for {}",
                self.variable, self.args.hold
            );
        }
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.arg("run")
            .arg(&self.args.scenario)
            .arg("--out")
            .arg(&dir)
            .arg("--quiet")
            // The shared flags first: the step's own `--set`s win.
            .args(self.args.common.child_args())
            .args(["--set", &format!("{}={load}", self.variable)])
            .args(["--set", &format!("load.duration={}", self.args.hold)])
            .args(["--set", "load.iterations=null"])
            .args([
                "--self-check",
                match self.args.self_check {
                    SelfCheckMode::Strict => "strict",
                    SelfCheckMode::Warn => "warn",
                },
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some((key, token)) = self.args.common.child_env() {
            cmd.env(key, token);
        }
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
        Ok(Some(Step {
            load,
            dir: dir.display().to_string(),
            status: status.to_string(),
            run_status: summary.status.as_str().to_string(),
            ok: errors.is_empty() && !invalid,
            saturated,
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

/// `12.345 [12.100–13.000]`, the value alone without an interval, or empty
/// for a metric the step did not measure.
fn with_ci(v: Option<f64>, ci: Option<[f64; 2]>) -> String {
    match (v, ci) {
        (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}–{hi:.3}]"),
        (Some(v), None) => format!("{v:.3}"),
        (None, _) => String::new(),
    }
}

/// What the SLO column says about a step.
fn slo_text(st: &Step) -> String {
    if st.saturated {
        "generator saturated".to_string()
    } else if st.errors.is_empty() {
        "met".to_string()
    } else {
        st.errors.join("; ")
    }
}

/// The table's cells per step (console, Markdown and HTML share them).
fn rows(r: &CapacityReport) -> Vec<Vec<String>> {
    r.steps
        .iter()
        .map(|st| {
            vec![
                st.load.to_string(),
                st.status.clone(),
                format!("{:.1}", st.turns_per_sec),
                with_ci(st.final_ping_p50_ms, st.final_ping_p50_ci_ms),
                with_ci(st.final_ping_p99_ms, st.final_ping_p99_ci_ms),
                with_ci(st.context_update_p99_ms, st.context_update_p99_ci_ms),
                slo_text(st),
            ]
        })
        .collect()
}

fn header(r: &CapacityReport) -> [&str; 7] {
    [
        r.variable.as_str(),
        "status",
        "turns/s",
        "final_ping p50 ms [95 % CI]",
        "final_ping p99 ms [95 % CI]",
        "context_update p99 ms [95 % CI]",
        "SLO",
    ]
}

fn table(r: &CapacityReport) -> String {
    let rows = rows(r);
    let head = header(r);
    let width = |j: usize| {
        rows.iter()
            .map(|row| row[j].chars().count())
            .chain([head[j].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..6).map(width).collect();
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (j, c) in cells.iter().enumerate().take(6) {
            let pad = widths[j].saturating_sub(c.chars().count());
            s.push_str(&" ".repeat(pad));
            s.push_str(c);
            s.push_str("  ");
        }
        s.push_str(cells.get(6).copied().unwrap_or(""));
        s.push('\n');
        s
    };
    let mut s = String::from("\n");
    s.push_str(&line(&head));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        s.push_str(&line(&cells));
    }
    s
}

/// `capacity.md`: the conclusion and the steps as a Markdown table.
fn markdown(r: &CapacityReport) -> String {
    let mut md = format!(
        "# finalping capacity\n\nSLOs: {}\n\n**{}**\n\nSteps sorted by load. Brackets: 95 % confidence intervals (bootstrap over the step's interval histograms); a blank cell: the step did not measure that metric.\n\n| {} |\n|---:|---|---:|---:|---:|---:|---|\n",
        r.slos.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" · "),
        r.conclusion,
        header(r).join(" | ")
    );
    for row in rows(r) {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        md.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    md
}

/// The latency-versus-load chart (p50/p99 with 95 % intervals, SLO limits,
/// the knee) and the throughput-versus-load chart.
fn charts(r: &CapacityReport) -> Vec<String> {
    let unit = if r.variable == "load.vus" {
        "VUs"
    } else {
        "conversations/s"
    };
    let x_label = format!("{} ({unit})", r.variable);
    let line = |name: &str,
                color,
                dash,
                v: fn(&Step) -> Option<f64>,
                ci: fn(&Step) -> Option<[f64; 2]>| {
        let mut s = Series::new(name, color, dash);
        for st in &r.steps {
            s.points.push(v(st).map(|y| (st.load, y)));
            s.ranges.push(ci(st).map(|[lo, hi]| (lo, hi)));
        }
        s
    };
    let series = vec![
        line(
            "final_ping p50",
            svg::BLUE,
            Dash::Solid,
            |s| s.final_ping_p50_ms,
            |s| s.final_ping_p50_ci_ms,
        ),
        line(
            "final_ping p99",
            svg::VERMILLION,
            Dash::Dashed,
            |s| s.final_ping_p99_ms,
            |s| s.final_ping_p99_ci_ms,
        ),
        line(
            "context_update p99",
            svg::GREEN,
            Dash::Dotted,
            |s| s.context_update_p99_ms,
            |s| s.context_update_p99_ci_ms,
        ),
    ];
    let limits = r
        .limits
        .iter()
        .filter(|(m, _, _)| m == "final_ping" || m == "context_update")
        .map(|(_, e, v)| Limit {
            name: format!("SLO {e}"),
            value: *v,
        })
        .collect();
    let marks = r
        .knee
        .map(|k| Mark {
            name: format!("knee: the SLO breaks at {k} {unit}"),
            x: k,
        })
        .into_iter()
        .collect();
    let latency = LineChart {
        title: "Latency against load".into(),
        x_label: x_label.clone(),
        y_label: "latency (ms)".into(),
        series,
        x_min: Some(0.0),
        limits,
        marks,
        ..LineChart::default()
    };
    let mut tput = Series::new("turns completed/s", svg::BLUE, Dash::Solid);
    for st in &r.steps {
        tput.points.push(Some((st.load, st.turns_per_sec)));
    }
    let throughput = LineChart {
        title: "Throughput against load".into(),
        x_label,
        y_label: "throughput (turns/s)".into(),
        series: vec![tput],
        x_min: Some(0.0),
        ..LineChart::default()
    };
    [latency, throughput]
        .iter()
        .filter_map(LineChart::render)
        .collect()
}

fn write(out: &Path, r: &CapacityReport) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    let classes: Vec<Vec<&str>> = r
        .steps
        .iter()
        .map(|st| match st.status.as_str() {
            "passed" => vec!["", "v-passed"],
            "breached" => vec!["", "v-breached"],
            "invalid" => vec!["", "v-invalid"],
            _ => vec!["", "v-saturated"],
        })
        .collect();
    let html = crate::report::render_summary_page(
        "finalping capacity",
        &format!(
            "{} — SLOs: {}. Steps sorted by load. Brackets and whiskers: 95 % confidence intervals (bootstrap over the step's interval histograms); a blank cell: the step did not measure that metric.",
            r.conclusion,
            r.slos.join(" · ")
        ),
        &header(r),
        &rows(r),
        &classes,
        &charts(r),
    );
    for (name, text) in [
        ("capacity.json", json),
        ("capacity.md", markdown(r)),
        ("report.html", html),
    ] {
        crate::fsio::write_atomic(&out.join(name), text.as_bytes())
            .map_err(|e| CliError::internal(format!("cannot write {name}: {e}")))?;
    }
    Ok(())
}
