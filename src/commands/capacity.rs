//! `finalping capacity`: a step ramp of VUs (closed executors) or arrival rate
//! (open executors) until an SLO breaks or the load generator saturates, then
//! a bisection between the last good and the first bad step. Each step is a
//! `finalping run` child process with `--set` overrides and its own report
//! folder; the SLOs use the threshold syntax and are judged on each step's
//! `summary.json`. Each step's percentiles get a 95 % confidence interval from
//! `compare`'s bootstrap over the step's interval histograms.

use crate::cli::{CapacityArgs, SelfCheckMode};
use crate::compare;
use crate::error::{exit, CliError};
use crate::report::RunReport;
use crate::scenario;
use crate::thresholds::{evaluate, Numbers, Outcome, Threshold, Thresholds};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
struct Step {
    load: f64,
    dir: String,
    status: String,
    /// SLO judged ok (and the generator not saturated).
    ok: bool,
    saturated: bool,
    final_ping_p50_ms: f64,
    final_ping_p99_ms: f64,
    context_update_p99_ms: f64,
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
}

pub async fn capacity(args: CapacityArgs) -> Result<i32, CliError> {
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
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", out.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the finalping binary: {e}")))?;
    let runner = Runner {
        exe,
        args: &args,
        variable,
        slos: &slos,
        out: &out,
    };

    let mut steps: Vec<Step> = Vec::new();
    let mut load = args.start;
    let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
    let mut generator_bound = false;
    while load <= args.max {
        let step = runner.step(load).await?;
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
            let mid = if variable == "load.vus" {
                ((lo + hi) / 2.0).floor()
            } else {
                (lo + hi) / 2.0
            };
            if mid <= lo || mid >= hi {
                break;
            }
            let step = runner.step(mid).await?;
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
    let conclusion = match (good, bad, generator_bound) {
        (g, _, true) => format!(
            "the load generator saturated first: the endpoint sustains at least {} {unit} (run finalping serve / the generator on more cores to go further)",
            g.map_or("0".to_string(), |g| g.to_string())
        ),
        (Some(g), Some(b), _) => format!("maximum sustainable load {g} {unit}; the SLO breaks at {b} {unit}"),
        (Some(g), None, _) => format!("every step up to {g} {unit} met the SLOs (raise --max to find the knee)"),
        (None, Some(b), _) => format!("the first step ({b} {unit}) already breaks the SLOs (lower --start)"),
        (None, None, _) => "no step ran".to_string(),
    };
    let report = CapacityReport {
        schema_version: 1,
        variable: variable.to_string(),
        slos: args.slos.clone(),
        steps,
        max_sustainable: good,
        knee: bad,
        generator_bound,
        conclusion,
    };
    write(&out, &report)?;
    print!("{}", table(&report));
    println!("{}\ncapacity report: {}", report.conclusion, out.display());
    Ok(exit::PASS)
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
            Threshold::parse(key, cond).map_err(|e| CliError::usage(format!("--slo `{s}`: {e}")))
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
}

impl Runner<'_> {
    async fn step(&self, load: f64) -> Result<Step, CliError> {
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
        let output = cmd
            .output()
            .await
            .map_err(|e| CliError::internal(format!("cannot start finalping run: {e}")))?;
        if output.status.code() == Some(exit::USAGE) {
            return Err(CliError::usage(format!(
                "step {load}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = std::fs::read_to_string(dir.join("summary.json"))
            .map_err(|e| CliError::internal(format!("step {load} wrote no summary.json: {e}")))?;
        let summary: RunReport = serde_json::from_str(&text).map_err(|e| {
            CliError::internal(format!(
                "step {load}: summary.json of {}: {e}",
                dir.display()
            ))
        })?;
        let saturated =
            summary.self_check.saturated && self.args.self_check == SelfCheckMode::Strict;
        let results = evaluate(self.slos, Numbers::from(&summary), None);
        let errors: Vec<String> = results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .map(|r| format!("{}: {}", r.threshold, r.message))
            .collect();
        let percentile = |m: &str, p: f64| {
            summary
                .metrics
                .get(m)
                .and_then(|s| s.percentile(p))
                .unwrap_or(0.0)
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
        Ok(Step {
            load,
            dir: dir.display().to_string(),
            status: summary.status.as_str().to_string(),
            ok: errors.is_empty(),
            saturated,
            final_ping_p50_ms: percentile("final_ping", 50.0),
            final_ping_p99_ms: percentile("final_ping", 99.0),
            context_update_p99_ms: percentile("context_update", 99.0),
            final_ping_p50_ci_ms: final_ping.first().copied().flatten(),
            final_ping_p99_ci_ms: final_ping.get(1).copied().flatten(),
            context_update_p99_ci_ms: update.first().copied().flatten(),
            errors,
        })
    }
}

/// `12.345 [12.100–13.000]`, the value alone without an interval, or `-` for
/// a metric the step did not measure (no samples: 0 ms and no interval).
fn with_ci(v: f64, ci: Option<[f64; 2]>) -> String {
    match ci {
        Some([lo, hi]) => format!("{v:.3} [{lo:.3}–{hi:.3}]"),
        None if v == 0.0 => "-".to_string(),
        None => format!("{v:.3}"),
    }
}

fn table(r: &CapacityReport) -> String {
    let mut s = format!(
        "\n{:>12} {:>10} {:>24} {:>24} {:>24}  {}\n",
        r.variable, "status", "p50 ms [95% CI]", "p99 ms [95% CI]", "update p99 ms [95% CI]", "SLO"
    );
    for st in &r.steps {
        s.push_str(&format!(
            "{:>12} {:>10} {:>24} {:>24} {:>24}  {}\n",
            st.load,
            st.status,
            with_ci(st.final_ping_p50_ms, st.final_ping_p50_ci_ms),
            with_ci(st.final_ping_p99_ms, st.final_ping_p99_ci_ms),
            with_ci(st.context_update_p99_ms, st.context_update_p99_ci_ms),
            if st.saturated {
                "generator saturated".to_string()
            } else if st.ok {
                "ok".to_string()
            } else {
                st.errors.join("; ")
            }
        ));
    }
    s
}

fn write(out: &Path, r: &CapacityReport) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(r).unwrap_or_default();
    let md = format!(
        "# finalping capacity\n\nSLOs: {}\n\n**{}**\n\n```\n{}```\n",
        r.slos.join(" · "),
        r.conclusion,
        table(r)
    );
    let rows: Vec<Vec<String>> = r
        .steps
        .iter()
        .map(|st| {
            vec![
                st.load.to_string(),
                st.status.clone(),
                with_ci(st.final_ping_p50_ms, st.final_ping_p50_ci_ms),
                with_ci(st.final_ping_p99_ms, st.final_ping_p99_ci_ms),
                with_ci(st.context_update_p99_ms, st.context_update_p99_ci_ms),
                if st.saturated {
                    "generator saturated".to_string()
                } else if st.ok {
                    "ok".to_string()
                } else {
                    st.errors.join("; ")
                },
            ]
        })
        .collect();
    let us = |v: f64| (v * 1000.0).round() as u64;
    let p99 = crate::report::PageChart {
        title: "final_ping p99 per step (µs), error bars: 95 % CI".to_string(),
        x_label: "µs".to_string(),
        bars: r
            .steps
            .iter()
            .map(|st| {
                (
                    format!("{} = {}", r.variable, st.load),
                    us(st.final_ping_p99_ms),
                )
            })
            .collect(),
        ranges: r
            .steps
            .iter()
            .map(|st| st.final_ping_p99_ci_ms.map(|[lo, hi]| (us(lo), us(hi))))
            .collect(),
    };
    let html = crate::report::render_summary_page(
        "finalping capacity",
        &format!(
            "{} — SLOs: {}. Brackets and error bars: 95 % confidence intervals (bootstrap over the step's interval histograms).",
            r.conclusion,
            r.slos.join(" · ")
        ),
        &[
            r.variable.as_str(),
            "status",
            "final_ping p50 ms [95 % CI]",
            "final_ping p99 ms [95 % CI]",
            "context_update p99 ms [95 % CI]",
            "SLO",
        ],
        &rows,
        &[p99],
    );
    for (name, text) in [
        ("capacity.json", json),
        ("capacity.md", md),
        ("report.html", html),
    ] {
        std::fs::write(out.join(name), text)
            .map_err(|e| CliError::internal(format!("cannot write {name}: {e}")))?;
    }
    Ok(())
}
