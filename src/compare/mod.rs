//! `finalping compare`: is the current run slower than the baseline(s)?
//! Per latency metric and percentile, the relative change with a bootstrap
//! confidence interval over the `.hlog` interval histograms, and a verdict
//! per metric (`better` / `same` / `worse`) against a tolerance.
//!
//! - `load`: reading run folders (summary.json + `.hlog`).
//! - `bootstrap`: the statistics (pooled percentiles, two-stage bootstrap).
//!   [`metric_cis`] gives one side's percentiles with their confidence
//!   intervals (the sweep and capacity tables use it).
//! - `output`: console table, Markdown, JSON and JUnit.
//!
//! The rule: a percentile is **worse** only when its whole confidence
//! interval of the relative change lies above `+tolerance`, **better** when it
//! lies entirely below `−tolerance`, else **same**. A metric is worse if any
//! of its percentiles is, better if any is better and none worse.

pub mod bootstrap;
pub mod load;
pub mod output;

pub use bootstrap::{BootstrapSettings, Delta, PercentileCi};
pub use load::{load_run, LoadError, RunData};

use bootstrap::{Side, Sparse};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the compare JSON format.
pub const COMPARE_SCHEMA_VERSION: u32 = 1;

/// Fewer non-empty intervals than this on a side: no verdict (`insufficient`).
pub const MIN_INTERVALS: usize = 5;

/// What to compare and how strictly.
#[derive(Debug, Clone)]
pub struct CompareSettings {
    /// Percentiles (0 < p <= 100), e.g. 50, 90, 99.
    pub percentiles: Vec<f64>,
    /// Allowed slowdown in percent (5 = 5 %).
    pub max_regression_pct: f64,
    /// Per-metric overrides of `max_regression_pct`.
    pub per_metric: BTreeMap<String, f64>,
    /// Only these metrics (empty = every metric both sides have).
    pub metrics: Vec<String>,
    pub bootstrap: BootstrapSettings,
}

/// A verdict for a percentile or a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Same,
    Worse,
    /// Too few intervals or samples on a side to say.
    Insufficient,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Same => "same",
            Verdict::Worse => "worse",
            Verdict::Insufficient => "insufficient",
        }
    }
}

/// One percentile of one metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PercentileResult {
    /// e.g. 99 or 99.9.
    pub percentile: f64,
    pub baseline_ms: f64,
    pub current_ms: f64,
    pub delta_ms: f64,
    /// (current − baseline) / baseline, in percent.
    pub delta_pct: f64,
    /// Confidence interval of `delta_pct`.
    pub ci_low_pct: f64,
    pub ci_high_pct: f64,
    pub verdict: Verdict,
}

/// One metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricResult {
    pub metric: String,
    pub verdict: Verdict,
    /// Allowed slowdown in percent.
    pub tolerance_pct: f64,
    pub baseline_samples: u64,
    pub current_samples: u64,
    pub baseline_intervals: usize,
    pub current_intervals: usize,
    pub percentiles: Vec<PercentileResult>,
    /// Why there is no verdict, when `insufficient`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A run taking part (baseline or current).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRef {
    pub dir: String,
    pub run_id: String,
    pub scenario: String,
    pub status: String,
}

impl From<&RunData> for RunRef {
    fn from(r: &RunData) -> RunRef {
        RunRef {
            dir: r.dir.display().to_string(),
            run_id: r.run_id.clone(),
            scenario: r.scenario.clone(),
            status: r.status.clone(),
        }
    }
}

/// The whole comparison: what the outputs show and the exit code comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareReport {
    pub schema_version: u32,
    pub baselines: Vec<RunRef>,
    pub current: RunRef,
    pub max_regression_pct: f64,
    pub confidence: f64,
    pub resamples: u32,
    pub seed: u64,
    pub metrics: Vec<MetricResult>,
    /// `worse` if any metric is worse, else `better` if any is better, else
    /// `same`; `insufficient` when no metric could be judged.
    pub verdict: Verdict,
    /// Problems with the inputs (status not passed, scenarios differ).
    pub warnings: Vec<String>,
    /// Set when the comparison cannot be trusted (an input run is invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
}

impl CompareReport {
    /// 1 on any `worse`, 2 when invalid or nothing could be judged, else 0.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        if self.invalid.is_some() || self.verdict == Verdict::Insufficient {
            exit::INVALID
        } else if self.verdict == Verdict::Worse {
            exit::FAILED
        } else {
            exit::PASS
        }
    }
}

/// Compares `current` with the pooled `baselines`.
pub fn compare(baselines: &[RunData], current: &RunData, s: &CompareSettings) -> CompareReport {
    let mut warnings = Vec::new();
    let mut invalid = Vec::new();
    for r in baselines.iter().chain(std::iter::once(current)) {
        match r.status.as_str() {
            "passed" => {}
            "invalid" => invalid.push(format!("{} ({})", r.run_id, r.dir.display())),
            other => warnings.push(format!(
                "run {} has status `{other}`: its latencies cover only the turns that completed",
                r.run_id
            )),
        }
        if r.scenario != current.scenario {
            warnings.push(format!(
                "run {} is scenario `{}`, the current run is `{}`",
                r.run_id, r.scenario, current.scenario
            ));
        }
    }
    let names: BTreeSet<&String> = if s.metrics.is_empty() {
        current
            .intervals
            .keys()
            .filter(|m| baselines.iter().any(|b| b.intervals.contains_key(*m)))
            .collect()
    } else {
        s.metrics.iter().collect()
    };
    let metrics: Vec<MetricResult> = names
        .into_iter()
        .map(|name| compare_metric(name, baselines, current, s))
        .collect();
    let judged = metrics
        .iter()
        .filter(|m| m.verdict != Verdict::Insufficient);
    let verdict = judged.fold(Verdict::Insufficient, |acc, m| match (acc, m.verdict) {
        (Verdict::Worse, _) | (_, Verdict::Worse) => Verdict::Worse,
        (Verdict::Better, _) | (_, Verdict::Better) => Verdict::Better,
        _ => Verdict::Same,
    });
    CompareReport {
        schema_version: COMPARE_SCHEMA_VERSION,
        baselines: baselines.iter().map(RunRef::from).collect(),
        current: RunRef::from(current),
        max_regression_pct: s.max_regression_pct,
        confidence: s.bootstrap.confidence,
        resamples: s.bootstrap.resamples,
        seed: s.bootstrap.seed,
        metrics,
        verdict,
        warnings,
        invalid: (!invalid.is_empty()).then(|| {
            format!(
                "invalid input: {} marked invalid (saturated generator or nothing measured), so their latencies cannot be trusted",
                invalid.join(", ")
            )
        }),
    }
}

fn compare_metric(
    name: &str,
    baselines: &[RunData],
    current: &RunData,
    s: &CompareSettings,
) -> MetricResult {
    let tolerance = s
        .per_metric
        .get(name)
        .copied()
        .unwrap_or(s.max_regression_pct);
    let empty = Vec::new();
    let base_runs: Vec<&Vec<Histogram<u64>>> = baselines
        .iter()
        .map(|b| b.intervals.get(name).unwrap_or(&empty))
        .filter(|v| !v.is_empty())
        .collect();
    let cur_runs: Vec<&Vec<Histogram<u64>>> = current
        .intervals
        .get(name)
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect();
    let (values, base, cur) = sides(&base_runs, &cur_runs);
    let mut result = MetricResult {
        metric: name.to_string(),
        verdict: Verdict::Insufficient,
        tolerance_pct: tolerance,
        baseline_samples: base.samples(),
        current_samples: cur.samples(),
        baseline_intervals: base.intervals(),
        current_intervals: cur.intervals(),
        percentiles: Vec::new(),
        note: None,
    };
    let few = |side: &Side| side.intervals() < MIN_INTERVALS;
    if few(&base) || few(&cur) {
        result.note = Some(format!(
            "needs at least {MIN_INTERVALS} intervals with samples on each side (baseline {}, current {}); run longer or lower metrics.interval",
            base.intervals(),
            cur.intervals()
        ));
        return result;
    }
    let Some(deltas) = bootstrap::deltas(&values, &base, &cur, &s.percentiles, s.bootstrap) else {
        result.note = Some("no samples".to_string());
        return result;
    };
    result.percentiles = deltas
        .iter()
        .map(|d| {
            let verdict = if d.ci_low_pct > tolerance {
                Verdict::Worse
            } else if d.ci_high_pct < -tolerance {
                Verdict::Better
            } else {
                Verdict::Same
            };
            PercentileResult {
                percentile: d.percentile,
                baseline_ms: d.baseline / 1000.0,
                current_ms: d.current / 1000.0,
                delta_ms: (d.current - d.baseline) / 1000.0,
                delta_pct: d.delta_pct,
                ci_low_pct: d.ci_low_pct,
                ci_high_pct: d.ci_high_pct,
                verdict,
            }
        })
        .collect();
    let any = |v: Verdict| result.percentiles.iter().any(|p| p.verdict == v);
    result.verdict = if any(Verdict::Worse) {
        Verdict::Worse
    } else if any(Verdict::Better) {
        Verdict::Better
    } else {
        Verdict::Same
    };
    result
}

/// A metric's percentiles over one or several runs pooled, each with its
/// bootstrap confidence interval (values in ms).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricCis {
    /// Non-empty interval histograms (the resampling units) of all the runs.
    pub intervals: usize,
    pub samples: u64,
    pub percentiles: Vec<PercentileCi>,
}

/// The percentiles of `metric` over `runs` pooled, with the confidence
/// intervals of [`bootstrap::percentile_cis`] (the same resampling as the
/// verdicts: runs, then interval histograms within each run). None when no
/// run has samples of the metric.
pub fn metric_cis(
    runs: &[RunData],
    metric: &str,
    percentiles: &[f64],
    s: BootstrapSettings,
) -> Option<MetricCis> {
    let hists: Vec<&Vec<Histogram<u64>>> = runs
        .iter()
        .filter_map(|r| r.intervals.get(metric))
        .filter(|v| !v.is_empty())
        .collect();
    let (values, side, _) = sides(&hists, &[]);
    let cis = bootstrap::percentile_cis(&values, &side, percentiles, s)?;
    let ms = |v: f64| v / 1000.0;
    Some(MetricCis {
        intervals: side.intervals(),
        samples: side.samples(),
        percentiles: cis
            .into_iter()
            .map(|c| PercentileCi {
                percentile: c.percentile,
                estimate: ms(c.estimate),
                low: ms(c.low),
                high: ms(c.high),
            })
            .collect(),
    })
}

/// Puts every interval of both sides on one sorted value axis (µs).
fn sides(base: &[&Vec<Histogram<u64>>], cur: &[&Vec<Histogram<u64>>]) -> (Vec<f64>, Side, Side) {
    let mut axis: BTreeSet<u64> = BTreeSet::new();
    for h in base.iter().chain(cur).flat_map(|r| r.iter()) {
        axis.extend(h.iter_recorded().map(|v| v.value_iterated_to()));
    }
    let axis: Vec<u64> = axis.into_iter().collect();
    let sparse = |h: &Histogram<u64>| -> Sparse {
        h.iter_recorded()
            .filter_map(|v| {
                let i = axis.binary_search(&v.value_iterated_to()).ok()?;
                Some((i, v.count_at_value()))
            })
            .collect()
    };
    let side = |runs: &[&Vec<Histogram<u64>>]| Side {
        runs: runs
            .iter()
            .map(|r| r.iter().map(&sparse).collect())
            .collect(),
    };
    let (b, c) = (side(base), side(cur));
    (axis.iter().map(|v| *v as f64).collect(), b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `n` one-second interval histograms of `metric`, each holding
    /// the values `base + 0..100` µs.
    fn run(metric: &str, n: usize, base: u64) -> RunData {
        let hists = (0..n)
            .map(|_| {
                let mut h = crate::metrics::new_histogram();
                for v in 0..100 {
                    h.record(base + v).unwrap();
                }
                h
            })
            .collect();
        RunData {
            dir: std::path::PathBuf::from("r"),
            run_id: "r".into(),
            scenario: "s".into(),
            status: "passed".into(),
            intervals: BTreeMap::from([(metric.to_string(), hists)]),
        }
    }

    const S: BootstrapSettings = BootstrapSettings {
        resamples: 200,
        confidence: 0.95,
        seed: 3,
    };

    #[test]
    fn metric_cis_pools_the_runs_in_milliseconds() {
        let runs = [run("final_ping", 6, 1000), run("final_ping", 6, 2000)];
        let m = metric_cis(&runs, "final_ping", &[50.0, 99.0], S).unwrap();
        assert_eq!((m.intervals, m.samples), (12, 1200));
        let p50 = m.percentiles[0];
        // Half the samples are 1.000–1.099 ms, half 2.000–2.099 ms.
        assert!((1.09..=1.1).contains(&p50.estimate), "{p50:?}");
        // Two quite different runs: the run-level draw spreads the interval
        // over both modes.
        assert!(p50.low < 1.1 && p50.high > 2.0, "{p50:?}");
        let p99 = m.percentiles[1];
        assert!((2.09..=2.1).contains(&p99.estimate), "{p99:?}");
        assert!(p99.low <= p99.estimate && p99.estimate <= p99.high);
        assert_eq!(metric_cis(&runs, "context_update", &[50.0], S), None);
    }
}
