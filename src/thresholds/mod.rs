//! Thresholds: pass/fail limits on a run's numbers, written in the scenario
//! (`thresholds: { final_ping.p99: "< 800ms", errors.rate: "< 1%" }`).
//!
//! - `parse`: the YAML form (keys, conditions, units), with exact positions.
//! - `evaluate`: judging them against a run's typed numbers ([`Numbers`]).
//!
//! How the results change a run's status and exit code is decided in
//! [`crate::verdict::apply_thresholds`].

mod evaluate;
mod parse;

pub use evaluate::{
    evaluate, fmt, is_known_metric, Numbers, Outcome, QuantileFn, ThresholdResult, AGGREGATES,
    ATTEMPT_COUNTERS, ERROR_COUNTERS,
};
pub use parse::{Condition, Op, Statistic, Threshold, ThresholdKey, Thresholds, Unit};

use crate::metrics::{Metric, MetricSummary, Snapshot};
use crate::report::{RunReport, TagReport};
use std::collections::BTreeMap;

/// Judges `set` against a finished run's report and folds the results into
/// its status and reason (see [`crate::verdict::apply_thresholds`]). `totals`
/// (the run's merged histograms) supplies percentiles `summary.json` lacks.
pub fn judge_report(report: &mut RunReport, set: &Thresholds, totals: Option<&Snapshot>) {
    if set.is_empty() {
        return;
    }
    let quantile = |name: &str, q: f64| -> Option<f64> {
        let m = Metric::named(name)?;
        let h = totals?.histogram(m);
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
    };
    let results = evaluate(set, Numbers::from(&*report), Some(&quantile));
    let (status, reason) = crate::verdict::apply_thresholds(
        report.status,
        std::mem::take(&mut report.status_reason),
        &results,
        set.judges_errors(),
    );
    report.status = status;
    report.status_reason = reason;
    report.thresholds = results;
}

/// The numbers the thresholds read, built from running totals — for
/// `abort_on_fail`, which judges while the run goes on.
#[derive(Debug, Clone)]
pub struct RunningTotals {
    pub duration_s: f64,
    pub metrics: BTreeMap<String, MetricSummary>,
    pub counters: BTreeMap<String, u64>,
    pub tags: BTreeMap<String, TagReport>,
}

impl RunningTotals {
    pub fn of(elapsed: std::time::Duration, totals: &Snapshot, tag_names: &[String]) -> Self {
        RunningTotals {
            duration_s: elapsed.as_secs_f64(),
            metrics: totals.metric_summaries(),
            counters: totals.counter_values(),
            tags: crate::report::tag_reports(totals, tag_names),
        }
    }

    pub fn numbers(&self) -> Numbers<'_> {
        Numbers {
            duration_s: self.duration_s,
            metrics: &self.metrics,
            counters: &self.counters,
            tags: &self.tags,
        }
    }
}

/// The first breached threshold of a running total, as `expression: message`.
pub fn first_breach(set: &Thresholds, running: &RunningTotals) -> Option<String> {
    evaluate(set, running.numbers(), None)
        .into_iter()
        .find(|r| r.outcome == Outcome::Fail)
        .map(|r| format!("{}: {}", r.threshold, r.message))
}
