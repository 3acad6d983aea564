//! Thresholds: pass/fail limits on a run's numbers, written in the scenario
//! (`thresholds: { final_ping.p99: "< 800ms", errors.rate: "< 1%" }`).
//!
//! - `parse`: the YAML form (keys, conditions, units), with exact positions.
//! - `evaluate`: judging them against a finished run's `summary.json` data.
//!
//! How the results change a run's status and exit code is decided in
//! [`crate::verdict::apply_thresholds`].

mod evaluate;
mod parse;

pub use evaluate::{evaluate, fmt, Outcome, QuantileFn, ThresholdResult, AGGREGATES};
pub use parse::{Condition, Op, Statistic, Threshold, ThresholdKey, Thresholds, Unit};

use crate::metrics::{Metric, Snapshot};
use crate::report::RunReport;

/// Judges `set` against a finished run's report and folds the results into
/// its status and reason (see [`crate::verdict::apply_thresholds`]). `totals`
/// (the run's merged histograms) supplies percentiles `summary.json` lacks.
pub fn judge_report(report: &mut RunReport, set: &Thresholds, totals: Option<&Snapshot>) {
    if set.is_empty() {
        return;
    }
    let summary = serde_json::to_value(&*report).unwrap_or_default();
    let quantile = |name: &str, q: f64| -> Option<f64> {
        let m = Metric::ALL.into_iter().find(|m| m.name() == name)?;
        let h = totals?.histogram(m);
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
    };
    let results = evaluate(set, &summary, Some(&quantile));
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
