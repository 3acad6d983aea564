//! Judges thresholds against a run's numbers (a finished run's typed report,
//! or the running totals): finds the number each threshold
//! names, compares it with the limit and says pass, fail or invalid (unknown
//! metric or tag, zero samples). Decides nothing about the run's status;
//! `verdict::apply_thresholds` does.

use super::numbers::TagReport;
use super::parse::{Statistic, Threshold, Thresholds, Unit};
use crate::metrics::{Counter, Metric, MetricSummary};
use crate::scenario::error::did_you_mean;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The numbers thresholds read: those of `summary.json` (whole-run metrics in
/// ms, counters, per-tag numbers, run length).
#[derive(Debug, Clone, Copy)]
pub struct Numbers<'a> {
    pub duration_s: f64,
    pub metrics: &'a BTreeMap<String, MetricSummary>,
    pub counters: &'a BTreeMap<String, u64>,
    pub tags: &'a BTreeMap<String, TagReport>,
}

/// How a threshold came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// Could not be judged (unknown metric or tag, no samples): the run is invalid.
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Invalid => "invalid",
        }
    }
}

/// One judged threshold, as every report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// `final_ping.p99 < 800ms`, as written.
    pub threshold: String,
    /// The series judged (`final_ping`, `final_ping{scenario=checkout}`).
    pub metric: String,
    /// `p99`, `mean`, `count`, `rate`, …
    pub statistic: String,
    /// `<`, `<=`, `>`, `>=`.
    pub op: String,
    /// The limit in `unit`.
    pub limit: f64,
    pub unit: Unit,
    /// The measured value in `unit`; absent when the threshold is invalid.
    pub value: Option<f64>,
    pub outcome: Outcome,
    /// `912.383 ms, limit < 800 ms`, or why it could not be judged.
    pub message: String,
}

impl ThresholdResult {
    /// The value with its unit (`912.383 ms`, `0.40%`, `1200`), or `—`.
    pub fn value_text(&self) -> String {
        self.value
            .map_or_else(|| "—".to_string(), |v| fmt(v, self.unit))
    }

    /// The limit with its operator (`< 800.000 ms`).
    pub fn limit_text(&self) -> String {
        format!("{} {}", self.op, fmt(self.limit, self.unit))
    }
}

/// A number in a unit, as reports print it.
pub fn fmt(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ms => format!("{v:.3} ms"),
        Unit::Percent => format!("{v:.2}%"),
        Unit::PerSecond => format!("{v:.2}/s"),
        Unit::Number if v.fract() == 0.0 => format!("{v:.0}"),
        Unit::Number => format!("{v}"),
    }
}

/// Aggregates that are not a single counter: `errors`, `turns`, `updates`.
pub const AGGREGATES: [&str; 3] = ["errors", "turns", "updates"];

/// Whether `name` is a metric a threshold can name in any run: a latency
/// metric, an aggregate or a counter (a check before anything runs).
pub fn is_known_metric(name: &str) -> bool {
    Metric::ALL.iter().any(|m| m.name() == name)
        || AGGREGATES.contains(&name)
        || Counter::ALL.iter().any(|c| c.name() == name)
}

/// Any percentile of a whole-run latency metric in ms (from the merged
/// histograms), for percentiles `summary.json` does not carry.
pub type QuantileFn<'a> = &'a dyn Fn(&str, f64) -> Option<f64>;

/// Judges every threshold against `summary` (the numbers of the run);
/// `quantile` supplies percentiles the summary lacks (None = only those in it).
pub fn evaluate(
    thresholds: &Thresholds,
    summary: Numbers,
    quantile: Option<QuantileFn>,
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| judge(t, summary, quantile))
        .collect()
}

fn judge(t: &Threshold, summary: Numbers, quantile: Option<QuantileFn>) -> ThresholdResult {
    let c = &t.condition;
    let mut r = ThresholdResult {
        threshold: t.expression(),
        metric: t.key.series(),
        statistic: t.key.statistic.to_string(),
        op: c.op.as_str().to_string(),
        limit: c.limit,
        unit: c.unit,
        value: None,
        outcome: Outcome::Invalid,
        message: String::new(),
    };
    match measure(t, summary, quantile) {
        Ok(v) => {
            // Compare in the unit as printed, so a shown `800.000 ms` never fails `<= 800ms`.
            let shown = round_to(v, c.unit);
            r.value = Some(shown);
            let held = c.op.holds(shown, round_to(c.limit, c.unit));
            r.outcome = if held { Outcome::Pass } else { Outcome::Fail };
            r.message = format!(
                "{}, limit {}{}",
                fmt(shown, c.unit),
                r.limit_text(),
                if held { "" } else { ": breached" }
            );
        }
        Err(why) => r.message = why,
    }
    r
}

fn round_to(v: f64, unit: Unit) -> f64 {
    let scale = match unit {
        Unit::Ms => 1000.0,
        Unit::Percent | Unit::PerSecond => 100.0,
        Unit::Number => return v,
    };
    (v * scale).round() / scale
}

/// The number a threshold names, in its unit, or why there is none.
fn measure(t: &Threshold, summary: Numbers, quantile: Option<QuantileFn>) -> Result<f64, String> {
    let k = &t.key;
    let counter = |name: &str| summary.counters.get(name).copied().unwrap_or(0) as f64;
    let duration_s = summary.duration_s;
    let per_second = |n: f64| {
        if duration_s > 0.0 {
            Ok(n / duration_s)
        } else {
            Err("the run has no duration, so there is no rate per second".to_string())
        }
    };
    let stat = k.statistic;
    let no_stat = |what: &str, has: &str| {
        Err(format!(
            "`{}` is {what}: it has no `{stat}` (it has {has})",
            k.metric
        ))
    };

    if k.metric == "errors" || k.metric == "turns" || k.metric == "updates" {
        if !k.tags.is_empty() {
            return Err(format!(
                "`{}` has no tags in the reports: tag filters apply to latency metrics",
                k.series()
            ));
        }
        let (count, attempts) = match k.metric.as_str() {
            "errors" => errors(&counter),
            "turns" => (counter("turns_ok"), counter("turns_sent")),
            _ => (counter("updates_ok"), counter("updates_sent")),
        };
        return match stat {
            Statistic::Count => Ok(count),
            Statistic::Rate if k.metric == "errors" => {
                if attempts == 0.0 {
                    Err("`errors.rate` has nothing to divide by: no turn, update, get or connect was attempted".to_string())
                } else {
                    Ok(100.0 * count / attempts)
                }
            }
            Statistic::Rate => per_second(count),
            _ => no_stat("a count", "count and rate"),
        };
    }

    if Counter::ALL.iter().any(|c| c.name() == k.metric) {
        if !k.tags.is_empty() {
            return Err(format!(
                "counter `{}` has no tags in the reports: tag filters apply to latency metrics",
                k.metric
            ));
        }
        let n = counter(&k.metric);
        return match stat {
            Statistic::Count => Ok(n),
            Statistic::Rate => per_second(n),
            _ => no_stat("a counter", "count and rate"),
        };
    }

    let (m, whole_run) = series(k, summary)?;
    match stat {
        Statistic::Count => return Ok(m.count as f64),
        Statistic::Rate => return per_second(m.count as f64),
        _ => {}
    }
    if m.count == 0 {
        return Err(format!(
            "`{}` has zero samples, so its {stat} was not measured",
            k.series()
        ));
    }
    match stat {
        Statistic::Mean => Ok(m.mean_ms),
        Statistic::Min => Ok(m.min_ms),
        Statistic::Max => Ok(m.max_ms),
        Statistic::Percentile(p) => {
            if let Some(v) = m.percentile(p) {
                return Ok(v);
            }
            match quantile.filter(|_| whole_run) {
                Some(q) => {
                    q(&k.metric, p / 100.0).ok_or_else(|| format!("`{}` has no p{p}", k.series()))
                }
                None => Err(format!(
                    "p{p} of `{}` is not in summary.json; use p50, p90, p95, p99, p99.9 or p99.99",
                    k.series()
                )),
            }
        }
        Statistic::Count | Statistic::Rate => {
            Err(format!("`{}`: {stat} is not a latency", k.series()))
        }
    }
}

/// The counters `errors` counts as failed operations (turns, updates, gets,
/// connects and conversations the open model had to drop).
pub const ERROR_COUNTERS: [&str; 13] = [
    "turns_timeout",
    "turns_error",
    "turns_disconnected",
    "turns_interrupted",
    "updates_rejected",
    "updates_invalid",
    "updates_timeout",
    "updates_disconnected",
    "updates_interrupted",
    "gets_failed",
    "connect_errors",
    "runtime_connect_errors",
    "dropped",
];

/// The counters `errors.rate` divides by (operations attempted).
pub const ATTEMPT_COUNTERS: [&str; 7] = [
    "turns_sent",
    "updates_sent",
    "gets_ok",
    "gets_failed",
    "connect_errors",
    "runtime_connect_errors",
    "dropped",
];

/// `(failed operations, operations)`: see [`ERROR_COUNTERS`], [`ATTEMPT_COUNTERS`].
fn errors(counter: &dyn Fn(&str) -> f64) -> (f64, f64) {
    let failed: f64 = ERROR_COUNTERS.iter().map(|c| counter(c)).sum();
    let attempts: f64 = ATTEMPT_COUNTERS.iter().map(|c| counter(c)).sum();
    (failed, attempts)
}

/// The summary of a latency series and whether it is the whole run's.
/// Tagged series are looked up in the report's `tags`, keyed by the tag set
/// (`"scenario=checkout,step=pay"`); a filter without `scenario` matches the
/// one scenario that has the rest of its tags.
fn series<'a>(
    k: &super::parse::ThresholdKey,
    summary: Numbers<'a>,
) -> Result<(&'a MetricSummary, bool), String> {
    let Some(whole) = summary.metrics.get(&k.metric) else {
        let mut known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        for name in summary.metrics.keys() {
            if !known.contains(&name.as_str()) {
                known.push(name);
            }
        }
        let all: Vec<&str> = known
            .iter()
            .copied()
            .chain(AGGREGATES)
            .chain(Counter::ALL.iter().map(|c| c.name()))
            .collect();
        let guess = did_you_mean(&k.metric, &all)
            .map(|g| format!("did you mean `{g}`? "))
            .unwrap_or_default();
        return Err(format!(
            "unknown metric `{}`: {guess}latency metrics: {}; aggregates: errors, turns, updates; or any counter of summary.json (e.g. turns_ok)",
            k.metric,
            known.join(", ")
        ));
    };
    if k.tags.is_empty() {
        return Ok((whole, true));
    }
    let entries: Vec<(BTreeMap<String, String>, &TagReport)> = summary
        .tags
        .iter()
        .map(|(key, v)| (parse_tag_key(key), v))
        .collect();
    // Exact tag set first; without `scenario` in the filter, any one scenario.
    let matches: Vec<&TagReport> = entries
        .iter()
        .filter(|(pairs, _)| {
            *pairs == k.tags || {
                let mut rest = pairs.clone();
                !k.tags.contains_key("scenario")
                    && rest.remove("scenario").is_some()
                    && rest == k.tags
            }
        })
        .map(|(_, v)| *v)
        .collect();
    if let [entry] = matches.as_slice() {
        return match entry.metrics.get(&k.metric) {
            Some(found) => Ok((found, false)),
            None => Err(format!("`{}` has zero samples", k.series())),
        };
    }
    if matches.len() > 1 {
        return Err(format!(
            "`{}` matches several scenarios: add `scenario=<name>` to the filter",
            k.series()
        ));
    }
    let known: std::collections::BTreeSet<&str> = entries
        .iter()
        .flat_map(|(pairs, _)| pairs.keys().map(String::as_str))
        .collect();
    match k.tags.keys().find(|t| !known.contains(t.as_str())) {
        Some(unknown) => {
            let names: Vec<&str> = known.into_iter().collect();
            Err(format!(
                "unknown tag `{unknown}` on `{}`: this run's tags are {}",
                k.metric,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
        None => Err(format!("`{}` has zero samples", k.series())),
    }
}

/// `scenario=a,step=b` → `{scenario: a, step: b}`.
fn parse_tag_key(key: &str) -> BTreeMap<String, String> {
    key.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    /// A summary with only `count` and `p50_ms` set (the rest 0).
    fn with_p50(count: u64, p50_ms: f64) -> MetricSummary {
        MetricSummary {
            count,
            p50_ms,
            ..MetricSummary::of(&new_histogram())
        }
    }

    struct Data {
        metrics: BTreeMap<String, MetricSummary>,
        counters: BTreeMap<String, u64>,
        tags: BTreeMap<String, TagReport>,
    }

    fn data() -> Data {
        let final_ping = MetricSummary {
            count: 100,
            min_ms: 10.0,
            mean_ms: 50.0,
            p50_ms: 48.0,
            p90_ms: 80.0,
            p95_ms: 90.0,
            p99_ms: 120.5,
            p99_9_ms: 130.0,
            p99_99_ms: 131.0,
            max_ms: 131.0,
        };
        let tag = |count, p50| TagReport {
            metrics: [("final_ping".to_string(), with_p50(count, p50))].into(),
            counters: BTreeMap::new(),
        };
        Data {
            metrics: [
                ("final_ping".to_string(), final_ping),
                ("connect".to_string(), with_p50(0, 0.0)),
            ]
            .into(),
            counters: [
                ("turns_sent", 100),
                ("turns_ok", 98),
                ("turns_timeout", 2),
                ("connect_errors", 0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            tags: [
                ("scenario=checkout", tag(100, 48.0)),
                ("scenario=checkout,step=pay", tag(3, 70.0)),
                ("scenario=other", tag(2, 10.0)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }

    fn one(key: &str, cond: &str) -> ThresholdResult {
        let t = Threshold::parse(key, cond).unwrap();
        let q = |_: &str, p: f64| Some(p * 100.0);
        let d = data();
        let numbers = Numbers {
            duration_s: 10.0,
            metrics: &d.metrics,
            counters: &d.counters,
            tags: &d.tags,
        };
        evaluate(&Thresholds(vec![t]), numbers, Some(&q))
            .pop()
            .unwrap()
    }

    #[test]
    fn latency_counter_and_aggregates() {
        assert_eq!(one("final_ping.p99", "< 800ms").outcome, Outcome::Pass);
        let r = one("final_ping.p99", "< 100ms");
        assert_eq!((r.outcome, r.value), (Outcome::Fail, Some(120.5)));
        assert!(r.message.contains("breached"), "{}", r.message);
        assert_eq!(one("final_ping.p75", "< 80ms").value, Some(75.0));
        assert_eq!(one("turns.count", "> 97").outcome, Outcome::Pass);
        assert_eq!(one("turns.rate", ">= 9.8/s").outcome, Outcome::Pass);
        let r = one("errors.rate", "< 1%");
        assert_eq!((r.outcome, r.value), (Outcome::Fail, Some(2.0)));
        assert_eq!(one("errors.count", "<= 2").outcome, Outcome::Pass);
        assert_eq!(one("turns_timeout.count", "< 3").outcome, Outcome::Pass);
    }

    #[test]
    fn tags_scenario_and_invalid_cases() {
        assert_eq!(
            one("final_ping{scenario=checkout}.p50", "< 50ms").outcome,
            Outcome::Pass
        );
        assert_eq!(
            one("final_ping{step=pay}.p50", "< 50ms").outcome,
            Outcome::Fail
        );
        let r = one("final_ping{scenario=other}.p50", "< 50ms");
        assert_eq!((r.outcome, r.value), (Outcome::Pass, Some(10.0)));
        let r = one("final_ping{scenario=third}.p50", "< 50ms");
        assert_eq!(r.outcome, Outcome::Invalid);
        let r = one("final_ping{region=eu}.p50", "< 50ms");
        assert!(r.message.contains("unknown tag `region`"), "{}", r.message);
        let r = one("final_ping{step=x}.p50", "< 50ms");
        assert!(r.message.contains("zero samples"), "{}", r.message);
        let r = one("final_pong.p99", "< 50ms");
        assert_eq!(r.outcome, Outcome::Invalid);
        assert!(
            r.message.contains("did you mean `final_ping`"),
            "{}",
            r.message
        );
        let r = one("connect.p99", "< 50ms");
        assert!(r.message.contains("zero samples"), "{}", r.message);
        assert_eq!(one("connect.count", "> 0").outcome, Outcome::Fail);
        assert_eq!(one("turns.p99", "< 5ms").outcome, Outcome::Invalid);
    }
}
