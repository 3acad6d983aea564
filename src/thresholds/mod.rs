//! Thresholds: pass/fail limits on a run's numbers, written in the scenario
//! (`thresholds: { final_ping.p99: "< 800ms", errors.rate: "< 1%" }`).
//!
//! - `parse`: the YAML form (keys, conditions, units), with exact positions.
//! - `evaluate`: judging them against a run's typed numbers ([`Numbers`]).
//! - `numbers`: those numbers — per-tag figures and running totals.
//!
//! Reads only `metrics` and the scenario's error helpers: a report carries the
//! results, and `verdict` folds them into a run's status and exit code.

mod evaluate;
mod numbers;
mod parse;

pub use evaluate::{
    evaluate, fmt, is_known_metric, Numbers, Outcome, QuantileFn, ThresholdResult, AGGREGATES,
    ATTEMPT_COUNTERS, ERROR_COUNTERS,
};
pub use numbers::{tag_reports, RunningTotals, TagReport};
pub use parse::{Condition, Op, Statistic, Threshold, ThresholdKey, Thresholds, Unit};

/// The first breached threshold of a running total, as `expression: message`.
pub fn first_breach(set: &Thresholds, running: &RunningTotals) -> Option<String> {
    evaluate(set, running.numbers(), None)
        .into_iter()
        .find(|r| r.outcome == Outcome::Fail)
        .map(|r| format!("{}: {}", r.threshold, r.message))
}
