//! The report of `finalping sweep`: per cell of the settings matrix the
//! pooled latency percentiles with confidence intervals, throughput, client
//! CPU and bytes per operation, the verdicts against the first cell, and a
//! ranking; written as `sweep.json`, `sweep.md` and `report.html` by the
//! exporters below, and as a console table. Only formats: the numbers are
//! computed by the `sweep` command (with `compare`'s bootstrap).

use super::html::svg::{self, Bar, BarChart};
use super::Exporter;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// Verdict names (`compare`'s) the report singles out.
const WORSE: &str = "worse";
const BETTER: &str = "better";

/// A sweep's results and how their intervals were computed.
#[derive(Debug)]
pub struct SweepReport {
    pub cells: Vec<SweepCell>,
    /// Every pair of cells, judged by `compare`'s bootstrap.
    pub pairs: Vec<PairVerdict>,
    /// The bootstrap of the intervals and verdicts.
    pub confidence: f64,
    pub resamples: u32,
    pub seed: u64,
}

impl SweepReport {
    /// How the confidence intervals are computed (in every sweep output).
    pub fn ci_method(&self) -> String {
        format!(
            "p50/p99 in ms: the percentile of all rounds pooled, then its {:.0} % confidence interval in brackets (percentile bootstrap: {} resamples, seed {}, each drawing rounds and then each drawn round's interval histograms of metrics.interval, with replacement).",
            self.confidence * 100.0,
            self.resamples,
            self.seed
        )
    }
}

/// The files of a sweep report, in the order written.
pub fn exporters() -> Vec<Box<dyn Exporter<SweepReport>>> {
    vec![
        Box::new(SweepJson),
        Box::new(SweepMarkdown),
        Box::new(SweepHtml),
    ]
}

/// `sweep.json`.
pub struct SweepJson;

impl Exporter<SweepReport> for SweepJson {
    fn file_name(&self) -> &'static str {
        "sweep.json"
    }

    fn write(&self, r: &SweepReport, out: &mut dyn Write) -> std::io::Result<()> {
        let ranked = ranking(&r.cells);
        let json = serde_json::json!({
            "schema_version": 1,
            "confidence_intervals": {
                "confidence": r.confidence,
                "resamples": r.resamples,
                "seed": r.seed,
                "method": r.ci_method(),
            },
            "cells": r.cells,
            "pairs": r.pairs,
            "ranking": ranked.iter().filter_map(|(i, _)| r.cells.get(*i)).map(|c| &c.cell).collect::<Vec<_>>(),
        });
        out.write_all(
            serde_json::to_string_pretty(&json)
                .unwrap_or_default()
                .as_bytes(),
        )
    }
}

/// `sweep.md`: the cell table, spread over rounds, ranking and every pair.
pub struct SweepMarkdown;

impl Exporter<SweepReport> for SweepMarkdown {
    fn file_name(&self) -> &'static str {
        "sweep.md"
    }

    fn write(&self, r: &SweepReport, out: &mut dyn Write) -> std::io::Result<()> {
        let mut md = markdown(r);
        md.push_str("\n## Every pair (current vs baseline)\n\n| baseline | current | metric | verdict |\n|---|---|---|---|\n");
        for p in r.pairs.iter().filter(|p| p.verdict != "insufficient") {
            md.push_str(&format!(
                "| `{}` | `{}` | `{}` | {} |\n",
                p.baseline, p.current, p.metric, p.verdict
            ));
        }
        out.write_all(md.as_bytes())
    }
}

/// `report.html`: the cell table and a chart per metric across cells, p50/p99
/// with their confidence intervals as error bars.
pub struct SweepHtml;

impl Exporter<SweepReport> for SweepHtml {
    fn file_name(&self) -> &'static str {
        super::HTML_FILE
    }

    fn write(&self, r: &SweepReport, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(html(r).as_bytes())
    }
}

#[derive(Debug, Serialize)]
pub struct SweepCell {
    pub cell: String,
    pub settings: BTreeMap<String, String>,
    pub rounds: usize,
    pub statuses: Vec<String>,
    /// metric → (p50 mean, p50 min, p50 max, p99 mean, p99 min, p99 max) of
    /// the per-round percentiles, ms.
    pub latency: BTreeMap<String, [f64; 6]>,
    /// metric → p50/p99 of all rounds pooled with their confidence intervals.
    pub latency_ci: BTreeMap<String, LatencyCi>,
    pub ops_per_sec: f64,
    /// The client's CPU (embedded emulator left out) per turn/update, ms.
    pub cpu_ms_per_op: f64,
    pub bytes_per_turn: Option<f64>,
    pub bytes_per_update: Option<f64>,
    /// Verdict per metric against the first cell (from `compare`).
    pub versus_first: BTreeMap<String, String>,
    /// Verdict per metric and percentile (`final_ping p99`) against the first cell.
    pub versus_first_percentiles: BTreeMap<String, String>,
}

/// A cell's p50 and p99 over all its rounds, with 95 % confidence intervals.
#[derive(Debug, Serialize)]
pub struct LatencyCi {
    pub p50_ms: f64,
    pub p50_ci_ms: [f64; 2],
    pub p99_ms: f64,
    pub p99_ci_ms: [f64; 2],
    /// Interval histograms resampled (the bootstrap's units), and samples.
    pub intervals: usize,
    pub samples: u64,
    /// Set when there are too few intervals for a trustworthy interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One cell against another, per metric.
#[derive(Debug, Serialize)]
pub struct PairVerdict {
    pub baseline: String,
    pub current: String,
    pub metric: String,
    pub verdict: String,
    /// The verdict per percentile (`p50`, `p99`).
    pub percentiles: BTreeMap<String, String>,
}

/// The main latency of a cell: final_ping, else context_update.
fn main_metric(c: &SweepCell) -> Option<&'static str> {
    ["final_ping", "context_update"]
        .into_iter()
        .find(|m| c.latency_ci.contains_key(*m) || c.latency.contains_key(*m))
}

/// Cells ranked by their main latency's pooled p99 (the mean over rounds
/// where no interval histograms were read), best first.
fn ranking(results: &[SweepCell]) -> Vec<(usize, f64)> {
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

/// `p50` or `p99` of a metric with its interval: `2.31 [2.25–2.40]`, or `-`.
fn fmt_ci(c: &SweepCell, metric: &str, p99: bool, decimals: usize) -> String {
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
fn fmt_spread(c: &SweepCell, metric: &str, i: usize) -> String {
    c.latency
        .get(metric)
        .and_then(|v| Some((v.get(i)?, v.get(i + 1)?, v.get(i + 2)?)))
        .map_or("-".to_string(), |(m, lo, hi)| {
            format!("{m:.2} [{lo:.2}–{hi:.2}]")
        })
}

/// The verdicts against the first cell grouped by verdict, worst first:
/// `worse: final_ping; same: context_update, first_output`.
fn versus(c: &SweepCell) -> String {
    if c.versus_first.is_empty() {
        return "baseline".to_string();
    }
    [WORSE, BETTER, "same", "insufficient"]
        .iter()
        .filter_map(|v| {
            let metrics: Vec<&str> = c
                .versus_first
                .iter()
                .filter(|(_, x)| x.as_str() == *v)
                .map(|(m, _)| m.as_str())
                .collect();
            (!metrics.is_empty()).then(|| format!("{v}: {}", metrics.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `report.html` of the sweep: the cell table and a chart per metric across
/// cells, p50/p99 with their confidence intervals as error bars.
fn html(r: &SweepReport) -> String {
    let results = &r.cells;
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
    super::render_summary_page(
        "finalping sweep",
        &format!(
            "{} Verdicts against the first cell from the same bootstrap (5 % tolerance); bar colours show each cell's verdict for that metric.",
            r.ci_method()
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
fn verdict_of<'a>(c: &'a SweepCell, key: &str) -> &'a str {
    if c.versus_first.is_empty() {
        return "baseline";
    }
    c.versus_first_percentiles
        .get(key)
        .map_or("insufficient", String::as_str)
}

fn verdict_colour(c: &SweepCell, key: &str) -> &'static str {
    let v = verdict_of(c, key);
    VERDICT_COLOURS
        .iter()
        .find(|(name, _)| name.split(' ').next() == Some(v))
        .map_or(svg::ORANGE, |(_, colour)| colour)
}

/// The table class of a cell's overall verdict: worse if any metric is.
fn verdict_class(c: &SweepCell) -> &'static str {
    let any = |v: &str| c.versus_first.values().any(|x| x == v);
    if any(WORSE) {
        "v-worse"
    } else if any(BETTER) {
        "v-better"
    } else {
        ""
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.0}"))
}

fn markdown(r: &SweepReport) -> String {
    let results = &r.cells;
    let mut s = String::from("# finalping sweep\n\n");
    s.push_str(&r.ci_method());
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

/// The console table of a sweep: each cell's main latency with intervals.
pub fn console(r: &SweepReport) -> String {
    let results = &r.cells;
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
            .filter(|(_, v)| v.as_str() == WORSE)
            .map(|(k, _)| k)
            .collect();
        if !worse.is_empty() {
            s.push_str(&format!("    worse than the first cell: {worse:?}\n"));
        }
    }
    s
}
