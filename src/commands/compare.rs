//! `finalping compare`: read the run folders, compare, print the table, write
//! the requested files and pick the exit code (see `compare::CompareReport`).

use crate::cli::CompareArgs;
use crate::compare::{self, output, BootstrapSettings, CompareSettings, RunData};
use crate::error::CliError;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn compare(args: &CompareArgs) -> Result<i32, CliError> {
    let (baseline_dirs, current_dir) = split_runs(args)?;
    let settings = settings(args)?;
    let load = |p: &Path| -> Result<RunData, CliError> {
        compare::load_run(p).map_err(|e| CliError::usage(e.to_string()))
    };
    let baselines = baseline_dirs
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let current = load(&current_dir)?;
    for m in &settings.metrics {
        if !current.intervals.contains_key(m) {
            let have: Vec<&str> = current.intervals.keys().map(String::as_str).collect();
            return Err(CliError::usage(format!(
                "--metric {m}: the current run has no {m}.hlog (it has: {})",
                have.join(", ")
            )));
        }
    }
    let report = compare::compare(&baselines, &current, &settings);
    print!("{}", output::console(&report));
    if let Some(path) = &args.markdown {
        write_file(path, |w| output::markdown(&report, w))?;
    }
    if let Some(path) = &args.json {
        write_file(path, |w| output::json(&report, w))?;
    }
    if let Some(path) = &args.junit {
        write_file(path, |w| output::junit(&report, w))?;
    }
    Ok(report.exit_code())
}

/// `(baselines, current)` from the positional runs and `--baseline`.
fn split_runs(args: &CompareArgs) -> Result<(Vec<PathBuf>, PathBuf), CliError> {
    let mut baselines = args.baselines.clone();
    let current =
        match args.runs.as_slice() {
            [current] => current.clone(),
            [baseline, current] => {
                baselines.insert(0, baseline.clone());
                current.clone()
            }
            _ => return Err(CliError::usage(
                "compare needs `BASELINE CURRENT`, or `CURRENT --baseline DIR [--baseline DIR]...`",
            )),
        };
    if baselines.is_empty() {
        return Err(CliError::usage(
            "no baseline: write `finalping compare BASELINE CURRENT` or add `--baseline DIR`",
        ));
    }
    Ok((baselines, current))
}

fn settings(args: &CompareArgs) -> Result<CompareSettings, CliError> {
    let mut all = 5.0;
    let mut per_metric = BTreeMap::new();
    for spec in &args.max_regression {
        match spec.split_once('=') {
            Some((metric, v)) => {
                per_metric.insert(metric.trim().to_string(), percent(v)?);
            }
            None => all = percent(spec)?,
        }
    }
    if let Some(p) = args
        .percentiles
        .iter()
        .find(|p| !(**p > 0.0 && **p <= 100.0))
    {
        return Err(CliError::usage(format!(
            "--percentiles: {p} is not in (0, 100]; e.g. --percentiles 50,90,99"
        )));
    }
    if !(50.0..100.0).contains(&args.confidence) {
        return Err(CliError::usage(
            "--confidence must be at least 50 and below 100 (percent), e.g. 95",
        ));
    }
    if !(100..=100_000).contains(&args.resamples) {
        return Err(CliError::usage(
            "--resamples must be between 100 and 100000",
        ));
    }
    Ok(CompareSettings {
        percentiles: args.percentiles.clone(),
        max_regression_pct: all,
        per_metric,
        metrics: args.metrics.clone(),
        bootstrap: BootstrapSettings {
            resamples: args.resamples,
            confidence: args.confidence / 100.0,
            seed: args.seed,
        },
    })
}

/// `5%` (or `5`) → 5.0.
fn percent(s: &str) -> Result<f64, CliError> {
    let t = s.trim();
    t.strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            CliError::usage(format!(
                "--max-regression `{s}`: write a percentage such as `5%`, or `final_ping=10%` for one metric"
            ))
        })
}

fn write_file(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let result = std::fs::File::create(path).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        write(&mut w)?;
        w.flush()
    });
    result.map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))
}
