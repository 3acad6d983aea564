//! `finalping sweep`: runs a scenario once per cell of a settings matrix,
//! interleaved in rounds (A B C A B C …) so drift on a noisy machine does not
//! favour a cell, and writes a sweep report: per cell the latency percentiles
//! of all its rounds pooled with their 95 % confidence intervals (and the
//! spread over rounds), throughput, client CPU per operation (the embedded
//! emulator's threads left out) and bytes on the wire per turn/update, a
//! ranking, and a verdict of every cell against the first one. Intervals and
//! verdicts both come from `compare`'s bootstrap over interval histograms.
//! Each run is a `finalping run` child process with `--set` overrides, so a
//! cell is exactly what a user would run by hand.

use crate::cli::SweepArgs;
use crate::compare::{self, BootstrapSettings, CompareSettings, RunData, Verdict};
use crate::error::{exit, CliError};
use crate::metrics::Counter;
use crate::report::html::svg::{self, Bar, BarChart};
use crate::report::RunReport;
use crate::scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The bootstrap of the per-cell confidence intervals and the pair verdicts
/// (capacity's per-step intervals use it too).
pub(super) const BOOTSTRAP: BootstrapSettings = BootstrapSettings {
    resamples: 1000,
    confidence: 0.95,
    seed: 1,
};

/// Latency metrics the sweep tables show.
const METRICS: [&str; 3] = ["final_ping", "context_update", "first_output"];

/// One cell: its settings and where its rounds went.
struct Cell {
    name: String,
    settings: Vec<(String, String)>,
    rounds: Vec<PathBuf>,
}

#[derive(Debug, Serialize)]
struct CellResult {
    cell: String,
    settings: BTreeMap<String, String>,
    rounds: usize,
    statuses: Vec<String>,
    /// metric → (p50 mean, p50 min, p50 max, p99 mean, p99 min, p99 max) of
    /// the per-round percentiles, ms.
    latency: BTreeMap<String, [f64; 6]>,
    /// metric → p50/p99 of all rounds pooled with their confidence intervals.
    latency_ci: BTreeMap<String, LatencyCi>,
    ops_per_sec: f64,
    /// The client's CPU (embedded emulator left out) per turn/update, ms.
    cpu_ms_per_op: f64,
    bytes_per_turn: Option<f64>,
    bytes_per_update: Option<f64>,
    /// Verdict per metric against the first cell (from `compare`).
    versus_first: BTreeMap<String, String>,
    /// Verdict per metric and percentile (`final_ping p99`) against the first cell.
    versus_first_percentiles: BTreeMap<String, String>,
}

/// A cell's p50 and p99 over all its rounds, with 95 % confidence intervals.
#[derive(Debug, Serialize)]
struct LatencyCi {
    p50_ms: f64,
    p50_ci_ms: [f64; 2],
    p99_ms: f64,
    p99_ci_ms: [f64; 2],
    /// Interval histograms resampled (the bootstrap's units), and samples.
    intervals: usize,
    samples: u64,
    /// Set when there are too few intervals for a trustworthy interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl LatencyCi {
    fn of(rounds: &[RunData], metric: &str) -> Option<LatencyCi> {
        let m = compare::metric_cis(rounds, metric, &[50.0, 99.0], BOOTSTRAP)?;
        let (p50, p99) = (m.percentiles.first()?, m.percentiles.get(1)?);
        Some(LatencyCi {
            p50_ms: p50.estimate,
            p50_ci_ms: [p50.low, p50.high],
            p99_ms: p99.estimate,
            p99_ci_ms: [p99.low, p99.high],
            intervals: m.intervals,
            samples: m.samples,
            note: (m.intervals < compare::MIN_INTERVALS).then(|| {
                format!(
                    "only {} interval(s): the confidence interval is rough (run longer or lower metrics.interval)",
                    m.intervals
                )
            }),
        })
    }
}

pub async fn sweep(args: SweepArgs) -> Result<i32, CliError> {
    let matrix = read_matrix(&args.matrix)?;
    let n_cells = matrix
        .iter()
        .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()))
        .filter(|&n| n <= args.max_cells);
    let Some(_) = n_cells else {
        return Err(CliError::usage(format!(
            "{}: the matrix has more than --max-cells {} cells ({}); split it or raise --max-cells",
            args.matrix.display(),
            args.max_cells,
            matrix
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.len()))
                .collect::<Vec<_>>()
                .join(" × ")
        )));
    };
    let cells = cells_of(&matrix);
    // Every cell must load before anything runs.
    for cell in &cells {
        let settings: Vec<(String, String)> = args
            .common
            .settings
            .iter()
            .chain(&cell.settings)
            .cloned()
            .collect();
        scenario::load_with_settings(&args.scenario, &settings)
            .map_err(|e| CliError::usage(format!("cell `{}`: {e}", cell.name)))?;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "sweep-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    crate::fsio::claim_run_dir(&out, args.overwrite, "sweep").map_err(CliError::usage)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the finalping binary: {e}")))?;
    let stop = super::signals::install(
        "stopping the current run (its partial report is kept), then writing the sweep report of the finished rounds",
    );
    let mut cells = cells;
    let total = cells.len() * args.repeats as usize;
    let started = Instant::now();
    let mut done = 0usize;
    'rounds: for round in 0..args.repeats {
        for (i, cell) in cells.iter_mut().enumerate() {
            if stop.is_cancelled() {
                break 'rounds;
            }
            let dir = out
                .join(format!("cell-{}", i + 1))
                .join(format!("round-{}", round + 1));
            if !args.quiet {
                let eta = if done == 0 {
                    String::new()
                } else {
                    let per = started.elapsed().as_secs_f64() / done as f64;
                    format!(", ETA {:.0} s", per * (total - done) as f64)
                };
                eprintln!(
                    "sweep: cell {}/{} `{}`, round {}/{}{eta}",
                    i + 1,
                    matrix_len(&matrix),
                    cell.name,
                    round + 1,
                    args.repeats
                );
            }
            let interrupted =
                run_cell(&exe, &args.scenario, &args.common, cell, &dir, &stop).await?;
            if interrupted {
                // A partial round would skew the comparison: left out.
                break 'rounds;
            }
            cell.rounds.push(dir);
            done += 1;
        }
    }
    let data = load_cells(&cells);
    let pairs = pair_verdicts(&cells, &data);
    let results = summarize(&cells, &data, &pairs);
    write_reports(&out, &results, &pairs)?;
    print!("{}", console(&results));
    println!("sweep report: {}", out.display());
    if stop.is_cancelled() {
        eprintln!("sweep interrupted: the report holds the {done} finished run(s) of {total}");
        return Ok(exit::INTERRUPTED);
    }
    Ok(exit::PASS)
}

fn matrix_len(m: &[(String, Vec<String>)]) -> usize {
    m.iter().map(|(_, v)| v.len()).product()
}

/// `path: [values]` pairs, in file order.
fn read_matrix(path: &Path) -> Result<Vec<(String, Vec<String>)>, CliError> {
    let text = crate::fsio::read_to_string_capped(path, crate::fsio::MAX_CONFIG_BYTES)
        .map_err(|e| CliError::usage(format!("cannot read the matrix {}: {e}", path.display())))?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "{}: {e}\nhint: write `setting.path: [value, value]`, e.g. `runtime.codec: [msgpack, json]`",
            path.display()
        ))
    })?;
    let map = doc.as_object().ok_or_else(|| {
        CliError::usage(format!(
            "{}: the matrix must be a map of setting paths to lists of values",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (key, values) in map {
        let list = values.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
            CliError::usage(format!(
                "{}: `{key}` must list at least one value, e.g. `{key}: [a, b]`",
                path.display()
            ))
        })?;
        let texts = list
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        out.push((key.clone(), texts));
    }
    if out.is_empty() {
        return Err(CliError::usage(format!(
            "{}: the matrix is empty",
            path.display()
        )));
    }
    Ok(out)
}

/// The cartesian product of the matrix, in order.
fn cells_of(matrix: &[(String, Vec<String>)]) -> Vec<Cell> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (key, values) in matrix {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|settings| Cell {
            name: settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            settings,
            rounds: Vec::new(),
        })
        .collect()
}

/// Runs one round of a cell; `Ok(true)` when the sweep was interrupted meanwhile.
async fn run_cell(
    exe: &Path,
    scenario: &Path,
    common: &crate::cli::TargetArgs,
    cell: &Cell,
    dir: &Path,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<bool, CliError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(dir)
        .arg("--quiet");
    // The sweep reports saturation per cell instead of aborting the cell.
    cmd.args(["--self-check", "warn"]);
    cmd.args(common.child_args());
    if let Some((key, token)) = common.child_env() {
        cmd.env(key, token);
    }
    // After the shared `--set`s, so the cell's values win.
    for (k, v) in &cell.settings {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    // Beside the run's folder: `run` wants its folder to itself.
    let log_path = dir.with_extension("log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", dir.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| CliError::internal(e.to_string()))?;
    cmd.stdout(log)
        .stderr(log_err)
        .stdin(std::process::Stdio::null());
    let ended = super::child::run(cmd, stop)
        .await
        .map_err(|e| CliError::internal(format!("finalping run (cell `{}`): {e}", cell.name)))?;
    if ended.interrupted {
        return Ok(true);
    }
    let status = ended.output.status;
    if status.code() == Some(exit::USAGE) || status.code() == Some(exit::INTERNAL) {
        return Err(CliError::usage(format!(
            "cell `{}` could not run (see {})",
            cell.name,
            log_path.display()
        )));
    }
    Ok(false)
}

/// Every cell's rounds as `compare` reads them (rounds that wrote no report are left out).
fn load_cells(cells: &[Cell]) -> Vec<Vec<RunData>> {
    cells
        .iter()
        .map(|c| {
            c.rounds
                .iter()
                .filter_map(|d| compare::load_run(d).ok())
                .collect()
        })
        .collect()
}

fn summarize(cells: &[Cell], data: &[Vec<RunData>], pairs: &[PairVerdict]) -> Vec<CellResult> {
    let runs: Vec<Vec<RunReport>> = cells
        .iter()
        .map(|c| {
            c.rounds
                .iter()
                .filter_map(|dir| {
                    let text = crate::fsio::read_to_string_capped(
                        &dir.join("summary.json"),
                        crate::fsio::MAX_REPORT_FILE_BYTES,
                    )
                    .ok()?;
                    serde_json::from_str(&text).ok()
                })
                .collect()
        })
        .collect();
    let first = cells.first().map(|c| c.name.as_str()).unwrap_or_default();
    cells
        .iter()
        .zip(&runs)
        .zip(data)
        .map(|((cell, sums), data)| {
            let mean = |f: &dyn Fn(&RunReport) -> f64| {
                sums.iter().map(f).sum::<f64>() / sums.len().max(1) as f64
            };
            let mut latency = BTreeMap::new();
            for metric in METRICS {
                let p = |q: f64| -> Vec<f64> {
                    sums.iter()
                        .filter_map(|s| s.metrics.get(metric).filter(|m| m.count > 0))
                        .filter_map(|m| m.percentile(q))
                        .collect()
                };
                let (p50, p99) = (p(50.0), p(99.0));
                if p50.is_empty() {
                    continue;
                }
                let stats = |v: &[f64]| {
                    let m = v.iter().sum::<f64>() / v.len() as f64;
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (m, lo, hi)
                };
                let (a, b, c) = stats(&p50);
                let (d, e, f) = stats(&p99);
                latency.insert(metric.to_string(), [a, b, c, d, e, f]);
            }
            let count = |s: &RunReport, c: Counter| s.counter(c) as f64;
            let ops = |s: &RunReport| count(s, Counter::TurnsOk) + count(s, Counter::UpdatesOk);
            let ops_per_sec = mean(&|s| ops(s) / s.duration_s.max(1e-9));
            // Reports before the emulator had its own threads have only `cpu_ms`.
            let client_cpu = |s: &RunReport| {
                let g = &s.generator;
                if g.cpu_ms_client > 0.0 {
                    g.cpu_ms_client
                } else {
                    g.cpu_ms
                }
            };
            let cpu_ms_per_op = mean(&|s| client_cpu(s) / ops(s).max(1.0));
            let per = |bytes: &[Counter], per: Counter| {
                let total: f64 = sums.iter().map(|s| count(s, per)).sum();
                (total > 0.0).then(|| {
                    sums.iter()
                        .map(|s| bytes.iter().map(|b| count(s, *b)).sum::<f64>())
                        .sum::<f64>()
                        / total
                })
            };
            let bytes_per_turn = per(
                &[Counter::BytesSent, Counter::BytesReceived],
                Counter::TurnsSent,
            );
            let bytes_per_update = per(
                &[Counter::RuntimeBytesSent, Counter::RuntimeBytesReceived],
                Counter::UpdatesSent,
            );
            let against_first = || {
                pairs
                    .iter()
                    .filter(|p| p.baseline == first && p.current == cell.name)
            };
            let versus_first = against_first()
                .map(|p| (p.metric.clone(), p.verdict.clone()))
                .collect();
            let versus_first_percentiles = against_first()
                .flat_map(|p| {
                    p.percentiles
                        .iter()
                        .map(|(q, v)| (format!("{} {q}", p.metric), v.clone()))
                })
                .collect();
            CellResult {
                cell: cell.name.clone(),
                settings: cell.settings.iter().cloned().collect(),
                rounds: sums.len(),
                statuses: sums.iter().map(|s| s.status.as_str().to_string()).collect(),
                latency,
                latency_ci: METRICS
                    .iter()
                    .filter_map(|m| Some((m.to_string(), LatencyCi::of(data, m)?)))
                    .collect(),
                ops_per_sec,
                cpu_ms_per_op,
                bytes_per_turn,
                bytes_per_update,
                versus_first,
                versus_first_percentiles,
            }
        })
        .collect()
}

/// One cell against another, per metric.
#[derive(Debug, Serialize)]
struct PairVerdict {
    baseline: String,
    current: String,
    metric: String,
    verdict: String,
    /// The verdict per percentile (`p50`, `p99`).
    percentiles: BTreeMap<String, String>,
}

/// Every pair of cells (i < j): cell i's rounds as baselines, cell j's last round
/// as the current run, judged by `compare`'s bootstrap (5 % tolerance).
fn pair_verdicts(cells: &[Cell], data: &[Vec<RunData>]) -> Vec<PairVerdict> {
    let settings = CompareSettings {
        percentiles: vec![50.0, 99.0],
        max_regression_pct: 5.0,
        per_metric: BTreeMap::new(),
        metrics: Vec::new(),
        bootstrap: BOOTSTRAP,
    };
    let mut out = Vec::new();
    let cells: Vec<(&Cell, &Vec<RunData>)> = cells.iter().zip(data).collect();
    for (i, (base_cell, base)) in cells.iter().enumerate() {
        for (cur_cell, cur) in cells.iter().skip(i + 1) {
            let (Some(current), false) = (cur.last(), base.is_empty()) else {
                continue;
            };
            let r = compare::compare(base, current, &settings);
            for m in r.metrics {
                out.push(PairVerdict {
                    baseline: base_cell.name.clone(),
                    current: cur_cell.name.clone(),
                    percentiles: m
                        .percentiles
                        .iter()
                        .map(|p| (format!("p{}", p.percentile), p.verdict.as_str().to_string()))
                        .collect(),
                    metric: m.metric,
                    verdict: m.verdict.as_str().to_string(),
                });
            }
        }
    }
    out
}

/// The main latency of a cell: final_ping, else context_update.
fn main_metric(c: &CellResult) -> Option<&'static str> {
    ["final_ping", "context_update"]
        .into_iter()
        .find(|m| c.latency_ci.contains_key(*m) || c.latency.contains_key(*m))
}

/// Cells ranked by their main latency's pooled p99 (the mean over rounds
/// where no interval histograms were read), best first.
fn ranking(results: &[CellResult]) -> Vec<(usize, f64)> {
    let mut r: Vec<(usize, f64)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let m = main_metric(c)?;
            let p99 = c
                .latency_ci
                .get(m)
                .map(|l| l.p99_ms)
                .or_else(|| c.latency.get(m).map(|l| l[3]))?;
            Some((i, p99))
        })
        .collect();
    r.sort_by(|a, b| a.1.total_cmp(&b.1));
    r
}

/// How the confidence intervals are computed (in every sweep output).
fn ci_method() -> String {
    format!(
        "p50/p99 in ms: the percentile of all rounds pooled, then its {:.0} % confidence interval in brackets (percentile bootstrap: {} resamples, seed {}, each drawing rounds and then each drawn round's interval histograms of metrics.interval, with replacement).",
        BOOTSTRAP.confidence * 100.0,
        BOOTSTRAP.resamples,
        BOOTSTRAP.seed
    )
}

fn write_reports(
    out: &Path,
    results: &[CellResult],
    pairs: &[PairVerdict],
) -> Result<(), CliError> {
    let ranked = ranking(results);
    let json = serde_json::json!({
        "schema_version": 1,
        "confidence_intervals": {
            "confidence": BOOTSTRAP.confidence,
            "resamples": BOOTSTRAP.resamples,
            "seed": BOOTSTRAP.seed,
            "method": ci_method(),
        },
        "cells": results,
        "pairs": pairs,
        "ranking": ranked.iter().filter_map(|(i, _)| results.get(*i)).map(|c| &c.cell).collect::<Vec<_>>(),
    });
    let write = |name: &str, text: String| {
        crate::fsio::write_atomic(&out.join(name), text.as_bytes())
            .map_err(|e| CliError::internal(format!("cannot write {name}: {e}")))
    };
    write(
        "sweep.json",
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )?;
    let mut md = markdown(results);
    md.push_str("\n## Every pair (current vs baseline)\n\n| baseline | current | metric | verdict |\n|---|---|---|---|\n");
    for p in pairs.iter().filter(|p| p.verdict != "insufficient") {
        md.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} |\n",
            p.baseline, p.current, p.metric, p.verdict
        ));
    }
    write("sweep.md", md)?;
    write("report.html", html(results))?;
    Ok(())
}

/// `p50` or `p99` of a metric with its interval: `2.31 [2.25–2.40]`, or `-`.
fn fmt_ci(c: &CellResult, metric: &str, p99: bool, decimals: usize) -> String {
    c.latency_ci.get(metric).map_or("-".to_string(), |l| {
        let (v, [lo, hi]) = if p99 {
            (l.p99_ms, l.p99_ci_ms)
        } else {
            (l.p50_ms, l.p50_ci_ms)
        };
        format!("{v:.decimals$} [{lo:.decimals$}–{hi:.decimals$}]")
    })
}

/// Mean over rounds [min–max] of the per-round p50 (`i` = 0) or p99 (`i` = 3).
fn fmt_spread(c: &CellResult, metric: &str, i: usize) -> String {
    c.latency
        .get(metric)
        .and_then(|v| Some((v.get(i)?, v.get(i + 1)?, v.get(i + 2)?)))
        .map_or("-".to_string(), |(m, lo, hi)| {
            format!("{m:.2} [{lo:.2}–{hi:.2}]")
        })
}

/// The verdicts against the first cell grouped by verdict, worst first:
/// `worse: final_ping; same: context_update, first_output`.
fn versus(c: &CellResult) -> String {
    if c.versus_first.is_empty() {
        return "baseline".to_string();
    }
    let order = [
        Verdict::Worse,
        Verdict::Better,
        Verdict::Same,
        Verdict::Insufficient,
    ];
    order
        .iter()
        .filter_map(|v| {
            let metrics: Vec<&str> = c
                .versus_first
                .iter()
                .filter(|(_, x)| x.as_str() == v.as_str())
                .map(|(m, _)| m.as_str())
                .collect();
            (!metrics.is_empty()).then(|| format!("{}: {}", v.as_str(), metrics.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `report.html` of the sweep: the cell table and a chart per metric across
/// cells, p50/p99 with their confidence intervals as error bars.
fn html(results: &[CellResult]) -> String {
    let header = [
        "cell",
        "rounds",
        "final_ping p50 ms [95 % CI]",
        "final_ping p99 ms [95 % CI]",
        "context_update p50 ms [95 % CI]",
        "context_update p99 ms [95 % CI]",
        "ops/s",
        "client CPU-ms/op",
        "bytes/turn",
        "bytes/update",
        "vs first cell",
    ];
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            vec![
                c.cell.replace(',', ", "),
                c.rounds.to_string(),
                fmt_ci(c, "final_ping", false, 3),
                fmt_ci(c, "final_ping", true, 3),
                fmt_ci(c, "context_update", false, 3),
                fmt_ci(c, "context_update", true, 3),
                format!("{:.0}", c.ops_per_sec),
                format!("{:.4}", c.cpu_ms_per_op),
                fmt_opt(c.bytes_per_turn),
                fmt_opt(c.bytes_per_update),
                versus(c),
            ]
        })
        .collect();
    let chart = |title: String, x_label: &str, decimals: usize, bars: Vec<Bar>, legend: bool| {
        BarChart {
            title,
            x_label: x_label.to_string(),
            bars,
            legend: if legend {
                VERDICT_COLOURS
                    .iter()
                    .map(|(v, c)| (v.to_string(), *c))
                    .collect()
            } else {
                Vec::new()
            },
            decimals,
            ..BarChart::default()
        }
        .render()
    };
    let mut charts = Vec::new();
    for metric in ["final_ping", "context_update"] {
        for p99 in [false, true] {
            let bars: Vec<Bar> = results
                .iter()
                .filter_map(|c| {
                    let l = c.latency_ci.get(metric)?;
                    let (v, [lo, hi]) = if p99 {
                        (l.p99_ms, l.p99_ci_ms)
                    } else {
                        (l.p50_ms, l.p50_ci_ms)
                    };
                    let stat = if p99 { "p99" } else { "p50" };
                    let colour = verdict_colour(c, &format!("{metric} {stat}"));
                    let mut b = Bar::new(c.cell.clone(), v, colour);
                    b.range = Some((lo, hi));
                    Some(b)
                })
                .collect();
            if bars.is_empty() {
                continue;
            }
            let stat = if p99 { "p99" } else { "p50" };
            charts.extend(chart(
                format!("{metric} {stat} per cell"),
                &format!("{metric} {stat} (ms)"),
                3,
                bars,
                true,
            ));
        }
    }
    let bytes: Vec<Bar> = results
        .iter()
        .filter_map(|c| {
            let v = c.bytes_per_update.or(c.bytes_per_turn)?;
            Some(Bar::new(c.cell.clone(), v, svg::BLUE))
        })
        .collect();
    if !bytes.is_empty() {
        charts.extend(chart(
            "Bytes on the wire per operation".to_string(),
            "bytes per turn or update (B)",
            0,
            bytes,
            false,
        ));
    }
    charts.extend(chart(
        "Client CPU per operation (embedded emulator left out)".to_string(),
        "CPU time per operation (ms)",
        4,
        results
            .iter()
            .map(|c| Bar::new(c.cell.clone(), c.cpu_ms_per_op, svg::BLUE))
            .collect(),
        false,
    ));
    let classes: Vec<Vec<&str>> = results
        .iter()
        .map(|c| {
            let mut v = vec![""; 10];
            v.push(verdict_class(c));
            v
        })
        .collect();
    crate::report::render_summary_page(
        "finalping sweep",
        &format!(
            "{} Verdicts against the first cell from the same bootstrap (5 % tolerance); bar colours show each cell's verdict for that metric.",
            ci_method()
        ),
        &header,
        &rows,
        &classes,
        &charts,
    )
}

/// Bar colours by verdict against the first cell (Okabe–Ito).
const VERDICT_COLOURS: [(&str, &str); 5] = [
    ("baseline (first cell)", svg::GREY),
    ("better", svg::GREEN),
    ("same", svg::BLUE),
    ("worse", svg::VERMILLION),
    ("insufficient", svg::ORANGE),
];

/// A cell's verdict for `key` (`final_ping p99`) against the first cell
/// (`baseline` for the first cell itself).
fn verdict_of<'a>(c: &'a CellResult, key: &str) -> &'a str {
    if c.versus_first.is_empty() {
        return "baseline";
    }
    c.versus_first_percentiles
        .get(key)
        .map_or("insufficient", String::as_str)
}

fn verdict_colour(c: &CellResult, key: &str) -> &'static str {
    let v = verdict_of(c, key);
    VERDICT_COLOURS
        .iter()
        .find(|(name, _)| name.split(' ').next() == Some(v))
        .map_or(svg::ORANGE, |(_, colour)| colour)
}

/// The table class of a cell's overall verdict: worse if any metric is.
fn verdict_class(c: &CellResult) -> &'static str {
    let any = |v: &str| c.versus_first.values().any(|x| x == v);
    if any(Verdict::Worse.as_str()) {
        "v-worse"
    } else if any(Verdict::Better.as_str()) {
        "v-better"
    } else {
        ""
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0}"))
}

fn markdown(results: &[CellResult]) -> String {
    let mut s = String::from("# finalping sweep\n\n");
    s.push_str(&ci_method());
    s.push_str(" Verdicts compare each cell with the first (same bootstrap, 5 % tolerance). CPU-ms/op is the client's alone (the embedded emulator's threads left out).\n\n");
    s.push_str("| cell | rounds | final_ping p50 | final_ping p99 | context_update p50 | context_update p99 | ops/s | CPU-ms/op | bytes/turn | bytes/update | vs first |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for c in results {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {:.0} | {:.4} | {} | {} | {} |\n",
            c.cell,
            c.rounds,
            fmt_ci(c, "final_ping", false, 2),
            fmt_ci(c, "final_ping", true, 2),
            fmt_ci(c, "context_update", false, 2),
            fmt_ci(c, "context_update", true, 2),
            c.ops_per_sec,
            c.cpu_ms_per_op,
            fmt_opt(c.bytes_per_turn),
            fmt_opt(c.bytes_per_update),
            versus(c)
        ));
    }
    let notes: Vec<String> = results
        .iter()
        .flat_map(|c| {
            c.latency_ci.iter().filter_map(move |(m, l)| {
                Some(format!("- `{}` {m}: {}\n", c.cell, l.note.as_ref()?))
            })
        })
        .collect();
    if !notes.is_empty() {
        s.push('\n');
        s.push_str(&notes.concat());
    }
    s.push_str("\n## Spread over rounds\n\nThe per-round percentiles: mean [min–max], ms.\n\n| cell | metric | p50 | p99 |\n|---|---|---:|---:|\n");
    for c in results {
        for m in c.latency.keys() {
            s.push_str(&format!(
                "| `{}` | {m} | {} | {} |\n",
                c.cell,
                fmt_spread(c, m, 0),
                fmt_spread(c, m, 3)
            ));
        }
    }
    s.push_str("\n## Ranking (main latency p99, best first)\n\n");
    for (rank, (i, p99)) in ranking(results).iter().enumerate() {
        let Some(c) = results.get(*i) else { continue };
        let ci = main_metric(c)
            .and_then(|m| c.latency_ci.get(m))
            .map(|l| format!(" [{:.2}–{:.2}]", l.p99_ci_ms[0], l.p99_ci_ms[1]))
            .unwrap_or_default();
        s.push_str(&format!("{}. `{}` — {:.2} ms{ci}\n", rank + 1, c.cell, p99));
    }
    s
}

fn console(results: &[CellResult]) -> String {
    let mut s = format!(
        "\n{:<48} {:>22} {:>22} {:>8} {:>10} {:>9}\n",
        "cell", "p50 ms [95% CI]", "p99 ms [95% CI]", "ops/s", "CPU-ms/op", "bytes/op"
    );
    for c in results {
        let main = main_metric(c).unwrap_or("final_ping");
        let bytes = c.bytes_per_update.or(c.bytes_per_turn);
        s.push_str(&format!(
            "{:<48} {:>22} {:>22} {:>8.0} {:>10.4} {:>9}\n",
            c.cell,
            fmt_ci(c, main, false, 3),
            fmt_ci(c, main, true, 3),
            c.ops_per_sec,
            c.cpu_ms_per_op,
            fmt_opt(bytes)
        ));
        let worse: Vec<&String> = c
            .versus_first
            .iter()
            .filter(|(_, v)| v.as_str() == Verdict::Worse.as_str())
            .map(|(k, _)| k)
            .collect();
        if !worse.is_empty() {
            s.push_str(&format!("    worse than the first cell: {worse:?}\n"));
        }
    }
    s
}
