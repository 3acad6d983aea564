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

use crate::cli::{SelfCheckMode, SweepArgs};
use crate::compare::{self, BootstrapSettings, CompareSettings, RunData};
use crate::error::{exit, CliError};
use crate::metrics::Counter;
use crate::report::sweep::{LatencyCi, PairVerdict, SweepCell, SweepReport};
use crate::report::RunReport;
use crate::scenario;
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

/// A cell's p50 and p99 over all its rounds, with their confidence intervals.
fn latency_ci(rounds: &[RunData], metric: &str) -> Option<LatencyCi> {
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
    let exe = super::child::finalping_exe()?;
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
    let report = SweepReport {
        cells: summarize(&cells, &data, &pairs),
        pairs,
        confidence: BOOTSTRAP.confidence,
        resamples: BOOTSTRAP.resamples,
        seed: BOOTSTRAP.seed,
    };
    crate::report::write_each(&crate::report::sweep::exporters(), &report, &out)
        .map_err(|e| CliError::internal(e.to_string()))?;
    print!("{}", crate::report::sweep::console(&report));
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
    // The sweep reports saturation per cell instead of aborting the cell.
    let mut cmd = super::child::ChildRun {
        scenario,
        out: dir,
        target: common,
        self_check: SelfCheckMode::Warn,
        settings: cell.settings.clone(),
    }
    .command(exe);
    // Beside the run's folder: `run` wants its folder to itself.
    let log_path = dir.with_extension("log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", dir.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| CliError::internal(e.to_string()))?;
    cmd.stdout(log).stderr(log_err);
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

fn summarize(cells: &[Cell], data: &[Vec<RunData>], pairs: &[PairVerdict]) -> Vec<SweepCell> {
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
            SweepCell {
                cell: cell.name.clone(),
                settings: cell.settings.iter().cloned().collect(),
                rounds: sums.len(),
                statuses: sums.iter().map(|s| s.status.as_str().to_string()).collect(),
                latency,
                latency_ci: METRICS
                    .iter()
                    .filter_map(|m| Some((m.to_string(), latency_ci(data, m)?)))
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
