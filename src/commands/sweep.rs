//! `finalping sweep`: runs a scenario once per cell of a settings matrix,
//! interleaved in rounds (A B C A B C …) so drift on a noisy machine does not
//! favour a cell, and writes a sweep report: per cell the latency percentiles
//! (mean and range over rounds), throughput, client CPU per operation and bytes
//! on the wire per turn/update, a ranking, and a verdict of every cell against
//! the first one from `compare`'s bootstrap. Each run is a `finalping run`
//! child process with `--set` overrides, so a cell is exactly what a user
//! would run by hand.

use crate::cli::SweepArgs;
use crate::compare::{self, BootstrapSettings, CompareSettings, RunData, Verdict};
use crate::error::{exit, CliError};
use crate::scenario;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// metric → (p50 mean, p50 min, p50 max, p99 mean, p99 min, p99 max), ms.
    latency: BTreeMap<String, [f64; 6]>,
    ops_per_sec: f64,
    cpu_ms_per_op: f64,
    bytes_per_turn: Option<f64>,
    bytes_per_update: Option<f64>,
    /// Verdict per metric against the first cell (from `compare`).
    versus_first: BTreeMap<String, String>,
}

pub async fn sweep(args: SweepArgs) -> Result<i32, CliError> {
    let matrix = read_matrix(&args.matrix)?;
    let cells = cells_of(&matrix);
    // Every cell must load before anything runs.
    for cell in &cells {
        scenario::load_with_settings(&args.scenario, &cell.settings)
            .map_err(|e| CliError::usage(format!("cell `{}`: {e}", cell.name)))?;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "sweep-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S")
        ))
    });
    std::fs::create_dir_all(&out)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", out.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::internal(format!("cannot find the finalping binary: {e}")))?;
    let mut cells = cells;
    let total = cells.len() * args.repeats as usize;
    let started = Instant::now();
    let mut done = 0usize;
    for round in 0..args.repeats {
        for (i, cell) in cells.iter_mut().enumerate() {
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
            run_cell(&exe, &args.scenario, cell, &dir).await?;
            cell.rounds.push(dir);
            done += 1;
        }
    }
    let pairs = pair_verdicts(&cells);
    let results = summarize(&cells, &pairs);
    write_reports(&out, &results, &pairs)?;
    print!("{}", console(&results));
    println!("sweep report: {}", out.display());
    Ok(exit::PASS)
}

fn matrix_len(m: &[(String, Vec<String>)]) -> usize {
    m.iter().map(|(_, v)| v.len()).product()
}

/// `path: [values]` pairs, in file order.
fn read_matrix(path: &Path) -> Result<Vec<(String, Vec<String>)>, CliError> {
    let text = std::fs::read_to_string(path)
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

async fn run_cell(exe: &Path, scenario: &Path, cell: &Cell, dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", dir.display())))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(dir)
        .arg("--quiet");
    // The sweep reports saturation per cell instead of aborting the cell.
    cmd.args(["--self-check", "warn"]);
    if crate::tls::insecure() {
        cmd.arg("--insecure");
    }
    for (k, v) in &cell.settings {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    let log = std::fs::File::create(dir.join("run.log"))
        .map_err(|e| CliError::internal(format!("cannot write {}: {e}", dir.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| CliError::internal(e.to_string()))?;
    cmd.stdout(log)
        .stderr(log_err)
        .stdin(std::process::Stdio::null());
    let status = cmd
        .status()
        .await
        .map_err(|e| CliError::internal(format!("cannot start finalping run: {e}")))?;
    if status.code() == Some(exit::USAGE) || status.code() == Some(exit::INTERNAL) {
        return Err(CliError::usage(format!(
            "cell `{}` could not run (see {}/run.log)",
            cell.name,
            dir.display()
        )));
    }
    Ok(())
}

fn summarize(cells: &[Cell], pairs: &[PairVerdict]) -> Vec<CellResult> {
    let runs: Vec<Vec<serde_json::Value>> = cells
        .iter()
        .map(|c| {
            c.rounds
                .iter()
                .filter_map(|dir| {
                    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
                    serde_json::from_str(&text).ok()
                })
                .collect()
        })
        .collect();
    let first = cells.first().map(|c| c.name.as_str()).unwrap_or_default();
    cells
        .iter()
        .zip(&runs)
        .map(|(cell, rounds)| {
            let sums: Vec<&serde_json::Value> = rounds.iter().collect();
            let num = |s: &serde_json::Value, path: &[&str]| {
                path.iter().fold(s, |v, k| &v[*k]).as_f64().unwrap_or(0.0)
            };
            let mean = |f: &dyn Fn(&serde_json::Value) -> f64| {
                sums.iter().map(|s| f(s)).sum::<f64>() / sums.len().max(1) as f64
            };
            let mut latency = BTreeMap::new();
            for metric in ["final_ping", "context_update", "first_output"] {
                let p = |q: &str| -> Vec<f64> {
                    sums.iter()
                        .filter(|s| num(s, &["metrics", metric, "count"]) > 0.0)
                        .map(|s| num(s, &["metrics", metric, q]))
                        .collect()
                };
                let (p50, p99) = (p("p50_ms"), p("p99_ms"));
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
            let ops = |s: &serde_json::Value| {
                num(s, &["counters", "turns_ok"]) + num(s, &["counters", "updates_ok"])
            };
            let ops_per_sec = mean(&|s| ops(s) / num(s, &["duration_s"]).max(1e-9));
            let cpu_ms_per_op = mean(&|s| num(s, &["generator", "cpu_ms"]) / ops(s).max(1.0));
            let per = |bytes: &[&[&str]], count: &[&str]| {
                let total: f64 = sums.iter().map(|s| num(s, count)).sum();
                (total > 0.0).then(|| {
                    sums.iter()
                        .map(|s| bytes.iter().map(|b| num(s, b)).sum::<f64>())
                        .sum::<f64>()
                        / total
                })
            };
            let bytes_per_turn = per(
                &[&["counters", "bytes_sent"], &["counters", "bytes_received"]],
                &["counters", "turns_sent"],
            );
            let bytes_per_update = per(
                &[
                    &["counters", "runtime_bytes_sent"],
                    &["counters", "runtime_bytes_received"],
                ],
                &["counters", "updates_sent"],
            );
            let versus_first = pairs
                .iter()
                .filter(|p| p.baseline == first && p.current == cell.name)
                .map(|p| (p.metric.clone(), p.verdict.clone()))
                .collect();
            CellResult {
                cell: cell.name.clone(),
                settings: cell.settings.iter().cloned().collect(),
                rounds: sums.len(),
                statuses: sums
                    .iter()
                    .map(|s| s["status"].as_str().unwrap_or("missing").to_string())
                    .collect(),
                latency,
                ops_per_sec,
                cpu_ms_per_op,
                bytes_per_turn,
                bytes_per_update,
                versus_first,
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
}

/// Every pair of cells (i < j): cell i's rounds as baselines, cell j's last round
/// as the current run, judged by `compare`'s bootstrap (5 % tolerance).
fn pair_verdicts(cells: &[Cell]) -> Vec<PairVerdict> {
    let data: Vec<Vec<RunData>> = cells
        .iter()
        .map(|c| {
            c.rounds
                .iter()
                .filter_map(|d| compare::load_run(d).ok())
                .collect()
        })
        .collect();
    let settings = CompareSettings {
        percentiles: vec![50.0, 99.0],
        max_regression_pct: 5.0,
        per_metric: BTreeMap::new(),
        metrics: Vec::new(),
        bootstrap: BootstrapSettings {
            resamples: 1000,
            confidence: 0.95,
            seed: 1,
        },
    };
    let mut out = Vec::new();
    for i in 0..cells.len() {
        for j in i + 1..cells.len() {
            let (Some(current), false) = (data[j].last(), data[i].is_empty()) else {
                continue;
            };
            let r = compare::compare(&data[i], current, &settings);
            for m in r.metrics {
                out.push(PairVerdict {
                    baseline: cells[i].name.clone(),
                    current: cells[j].name.clone(),
                    metric: m.metric,
                    verdict: m.verdict.as_str().to_string(),
                });
            }
        }
    }
    out
}

/// Cells ranked by their main latency p99 (final_ping, else context_update), best first.
fn ranking(results: &[CellResult]) -> Vec<(usize, f64)> {
    let mut r: Vec<(usize, f64)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let l = c
                .latency
                .get("final_ping")
                .or_else(|| c.latency.get("context_update"))?;
            Some((i, l[3]))
        })
        .collect();
    r.sort_by(|a, b| a.1.total_cmp(&b.1));
    r
}

fn write_reports(
    out: &Path,
    results: &[CellResult],
    pairs: &[PairVerdict],
) -> Result<(), CliError> {
    let json = serde_json::json!({
        "schema_version": 1,
        "cells": results,
        "pairs": pairs,
        "ranking": ranking(results).iter().map(|(i, _)| &results[*i].cell).collect::<Vec<_>>(),
    });
    let write = |name: &str, text: String| {
        std::fs::write(out.join(name), text)
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

/// `report.html` of the sweep: the cell table and a chart per metric across cells.
fn html(results: &[CellResult]) -> String {
    let header = [
        "cell",
        "rounds",
        "final_ping p50 ms",
        "final_ping p99 ms",
        "context_update p50 ms",
        "context_update p99 ms",
        "ops/s",
        "CPU-ms/op",
        "bytes/turn",
        "bytes/update",
        "vs first cell",
    ];
    let l = |c: &CellResult, m: &str, i: usize| {
        c.latency.get(m).map_or("-".to_string(), |v| {
            format!("{:.3} [{:.3}–{:.3}]", v[i], v[i + 1], v[i + 2])
        })
    };
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            vec![
                c.cell.clone(),
                c.rounds.to_string(),
                l(c, "final_ping", 0),
                l(c, "final_ping", 3),
                l(c, "context_update", 0),
                l(c, "context_update", 3),
                format!("{:.0}", c.ops_per_sec),
                format!("{:.4}", c.cpu_ms_per_op),
                fmt_opt(c.bytes_per_turn),
                fmt_opt(c.bytes_per_update),
                c.versus_first
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let bars = |f: &dyn Fn(&CellResult) -> Option<f64>| -> Vec<(String, u64)> {
        results
            .iter()
            .filter_map(|c| Some((c.cell.clone(), f(c)?.round() as u64)))
            .collect()
    };
    let mut charts = Vec::new();
    for metric in ["final_ping", "context_update"] {
        let b = bars(&|c| c.latency.get(metric).map(|v| v[3] * 1000.0));
        if !b.is_empty() {
            charts.push((format!("{metric} p99 per cell (µs)"), "µs".to_string(), b));
        }
    }
    let b = bars(&|c| c.bytes_per_update.or(c.bytes_per_turn));
    if !b.is_empty() {
        charts.push((
            "bytes on the wire per operation".to_string(),
            "bytes".to_string(),
            b,
        ));
    }
    charts.push((
        "client CPU per operation (µs)".to_string(),
        "µs".to_string(),
        bars(&|c| Some(c.cpu_ms_per_op * 1000.0)),
    ));
    crate::report::render_summary_page(
        "finalping sweep",
        "p50/p99: mean over rounds [min–max]; verdicts against the first cell from compare's bootstrap (5 % tolerance).",
        &header,
        &rows,
        &charts,
    )
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0}"))
}

fn markdown(results: &[CellResult]) -> String {
    let mut s = String::from("# finalping sweep\n\n");
    s.push_str("p50/p99 in ms: mean over rounds [min–max]. Verdicts compare each cell with the first (bootstrap over interval histograms, 5 % tolerance).\n\n");
    s.push_str("| cell | rounds | final_ping p50 | final_ping p99 | context_update p50 | context_update p99 | ops/s | CPU-ms/op | bytes/turn | bytes/update | vs first |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for c in results {
        let l = |m: &str, i: usize| {
            c.latency.get(m).map_or("-".to_string(), |v| {
                format!("{:.2} [{:.2}–{:.2}]", v[i], v[i + 1], v[i + 2])
            })
        };
        let versus = if c.versus_first.is_empty() {
            "baseline".to_string()
        } else {
            c.versus_first
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {:.0} | {:.4} | {} | {} | {} |\n",
            c.cell,
            c.rounds,
            l("final_ping", 0),
            l("final_ping", 3),
            l("context_update", 0),
            l("context_update", 3),
            c.ops_per_sec,
            c.cpu_ms_per_op,
            fmt_opt(c.bytes_per_turn),
            fmt_opt(c.bytes_per_update),
            versus
        ));
    }
    s.push_str("\n## Ranking (main latency p99, best first)\n\n");
    for (rank, (i, p99)) in ranking(results).iter().enumerate() {
        s.push_str(&format!(
            "{}. `{}` — {:.2} ms\n",
            rank + 1,
            results[*i].cell,
            p99
        ));
    }
    s
}

fn console(results: &[CellResult]) -> String {
    let mut s = format!(
        "\n{:<48} {:>12} {:>12} {:>10} {:>10} {:>12}\n",
        "cell", "p50 ms", "p99 ms", "ops/s", "CPU-ms/op", "bytes/op"
    );
    for c in results {
        let main = c
            .latency
            .get("final_ping")
            .or_else(|| c.latency.get("context_update"));
        let bytes = c.bytes_per_update.or(c.bytes_per_turn);
        s.push_str(&format!(
            "{:<48} {:>12} {:>12} {:>10.0} {:>10.4} {:>12}\n",
            c.cell,
            main.map_or("-".to_string(), |v| format!("{:.3}", v[0])),
            main.map_or("-".to_string(), |v| format!("{:.3}", v[3])),
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
