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

pub use evaluate::{
    evaluate, fmt, is_known_metric, Outcome, QuantileFn, ThresholdResult, AGGREGATES,
};
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

/// The `summary.json`-shaped data the thresholds read, built from running
/// totals — for `abort_on_fail`, which judges while the run goes on.
pub fn running_summary(
    scenario: &str,
    elapsed: std::time::Duration,
    totals: &Snapshot,
    tag_names: &[String],
) -> serde_json::Value {
    use crate::metrics::Counter;
    let metrics: serde_json::Map<String, serde_json::Value> = Metric::ALL
        .iter()
        .map(|m| {
            let v = serde_json::to_value(totals.summary(*m)).unwrap_or_default();
            (m.name().to_string(), v)
        })
        .collect();
    let counters: serde_json::Map<String, serde_json::Value> = Counter::ALL
        .iter()
        .map(|c| (c.name().to_string(), totals.counter(*c).into()))
        .collect();
    serde_json::json!({
        "scenario": scenario,
        "duration_s": elapsed.as_secs_f64(),
        "metrics": metrics,
        "counters": counters,
        "tags": crate::report::tag_reports(totals, tag_names),
    })
}

/// The first breached threshold of a running total, as `expression: message`.
pub fn first_breach(set: &Thresholds, summary: &serde_json::Value) -> Option<String> {
    evaluate(set, summary, None)
        .into_iter()
        .find(|r| r.outcome == Outcome::Fail)
        .map(|r| format!("{}: {}", r.threshold, r.message))
}
