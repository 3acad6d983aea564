//! The numbers thresholds judge and reports show beside the whole-run
//! metrics: the figures of one tag ([`TagReport`], built from the merged
//! totals by [`tag_reports`]) and the running totals `abort_on_fail` judges
//! while a run goes on.

use super::Numbers;
use crate::metrics::{Counter, MetricSummary, Snapshot, TagId, TAGGED};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The numbers of one tag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TagReport {
    pub metrics: BTreeMap<String, MetricSummary>,
    pub counters: BTreeMap<String, u64>,
}

/// The per-tag section of a report: every tag that has numbers, by name.
pub fn tag_reports(totals: &Snapshot, tag_names: &[String]) -> BTreeMap<String, TagReport> {
    tag_names
        .iter()
        .enumerate()
        .filter_map(|(id, name)| {
            let data = totals.tag(TagId::try_from(id).ok()?)?;
            let metrics = TAGGED
                .iter()
                .filter_map(|m| Some((m.name().to_string(), data.summary(*m)?)))
                .collect();
            let counters = Counter::ALL
                .iter()
                .filter(|c| data.counter(**c) > 0)
                .map(|c| (c.name().to_string(), data.counter(*c)))
                .collect();
            Some((name.clone(), TagReport { metrics, counters }))
        })
        .collect()
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
            tags: tag_reports(totals, tag_names),
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
