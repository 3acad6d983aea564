//! A set of histograms, counters and failure causes: what a shard holds, what
//! an interval drain returns and what the run totals are. Mergeable exactly.

use super::tags::{micros, TagData, TagId};
use super::{new_histogram, reset_histogram, Counter, Metric};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone)]
pub struct Snapshot {
    hists: Vec<Histogram<u64>>,
    counters: [u64; Counter::ALL.len()],
    causes: BTreeMap<String, u64>,
    /// The same numbers per tag (scenario, named step).
    tagged: BTreeMap<TagId, TagData>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("counters", &self.counters)
            .field("causes", &self.causes)
            .finish_non_exhaustive()
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot::new()
    }
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot {
            hists: Metric::ALL.iter().map(|_| new_histogram()).collect(),
            counters: [0; Counter::ALL.len()],
            causes: BTreeMap::new(),
            tagged: BTreeMap::new(),
        }
    }

    /// Records a latency in the totals and under each tag.
    pub fn record_tagged(&mut self, metric: Metric, tags: &[TagId], value: Duration) {
        self.record(metric, value);
        let us = micros(value);
        for t in tags {
            self.tagged.entry(*t).or_default().record(metric, us);
        }
    }

    /// Adds to a counter in the totals and under each tag.
    pub fn add_tagged(&mut self, counter: Counter, tags: &[TagId], n: u64) {
        self.add(counter, n);
        for t in tags {
            self.tagged.entry(*t).or_default().add(counter, n);
        }
    }

    /// The numbers of one tag, if anything was booked under it.
    pub fn tag(&self, id: TagId) -> Option<&TagData> {
        self.tagged.get(&id).filter(|data| !data.is_empty())
    }

    /// The summary of every latency metric, by name (the `metrics` of a report).
    pub fn metric_summaries(&self) -> std::collections::BTreeMap<String, MetricSummary> {
        Metric::ALL
            .iter()
            .map(|m| (m.name().to_string(), self.summary(*m)))
            .collect()
    }

    /// Every counter, by name (the `counters` of a report).
    pub fn counter_values(&self) -> std::collections::BTreeMap<String, u64> {
        Counter::ALL
            .iter()
            .map(|c| (c.name().to_string(), self.counter(*c)))
            .collect()
    }

    /// Every tag that has numbers, by id.
    pub fn tags(&self) -> impl Iterator<Item = (TagId, &TagData)> {
        self.tagged
            .iter()
            .filter(|(_, data)| !data.is_empty())
            .map(|(id, data)| (*id, data))
    }

    /// Adds a whole histogram of `metric` (exact), e.g. one read back from a
    /// report; fails when `h` does not fit the project-wide bounds (1 µs … 1 h).
    pub fn add_histogram(
        &mut self,
        metric: Metric,
        h: &Histogram<u64>,
    ) -> Result<(), hdrhistogram::AdditionError> {
        self.hists[metric.index()].add(h)
    }

    /// Adds a whole histogram of a tagged metric under `tag` only (not to the
    /// totals); metrics that are not kept per tag are ignored.
    pub fn add_tag_histogram(
        &mut self,
        tag: TagId,
        metric: Metric,
        h: &Histogram<u64>,
    ) -> Result<(), hdrhistogram::AdditionError> {
        self.tagged.entry(tag).or_default().add_histogram(metric, h)
    }

    /// Adds to a counter under `tag` only (not to the totals).
    pub fn add_tag_counter(&mut self, tag: TagId, counter: Counter, n: u64) {
        self.tagged.entry(tag).or_default().add(counter, n);
    }

    /// Records a latency; values beyond 1 h saturate, below 1 µs count as 1 µs.
    pub fn record(&mut self, metric: Metric, value: Duration) {
        self.hists[metric.index()].saturating_record(micros(value));
    }

    pub fn add(&mut self, counter: Counter, n: u64) {
        let c = &mut self.counters[counter.index()];
        *c = c.saturating_add(n);
    }

    pub fn add_cause(&mut self, cause: &str, n: u64) {
        match self.causes.get_mut(cause) {
            Some(c) => *c += n,
            None => {
                self.causes.insert(cause.to_string(), n);
            }
        }
    }

    pub fn histogram(&self, metric: Metric) -> &Histogram<u64> {
        &self.hists[metric.index()]
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter.index()]
    }

    pub fn causes(&self) -> &BTreeMap<String, u64> {
        &self.causes
    }

    /// Turns that ended in any way other than ok.
    pub fn turns_failed(&self) -> u64 {
        [
            Counter::TurnsTimeout,
            Counter::TurnsError,
            Counter::TurnsDisconnected,
            Counter::TurnsInterrupted,
        ]
        .iter()
        .map(|c| self.counter(*c))
        .sum()
    }

    /// Context updates that ended in any way other than ok.
    pub fn updates_failed(&self) -> u64 {
        [
            Counter::UpdatesRejected,
            Counter::UpdatesInvalid,
            Counter::UpdatesTimeout,
            Counter::UpdatesDisconnected,
            Counter::UpdatesInterrupted,
        ]
        .iter()
        .map(|c| self.counter(*c))
        .sum()
    }

    /// Adds `other` into `self` (exact: HDR histograms of equal bounds add losslessly).
    pub fn merge(&mut self, other: &Snapshot) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            if !b.is_empty() {
                // Same bounds on both sides, so addition cannot fail.
                let _ = a.add(b);
            }
        }
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a = a.saturating_add(b);
        }
        for (k, v) in &other.causes {
            self.add_cause(k, *v);
        }
        for (t, data) in other.tags() {
            self.tagged.entry(t).or_default().merge(data);
        }
    }

    /// How many histograms (per tag too) hold samples.
    pub fn histograms_in_use(&self) -> usize {
        let own = self.hists.iter().filter(|h| !h.is_empty()).count();
        own + self
            .tagged
            .values()
            .map(TagData::histograms_in_use)
            .sum::<usize>()
    }

    /// Nothing recorded or counted.
    pub fn is_empty(&self) -> bool {
        self.hists.iter().all(Histogram::is_empty)
            && self.counters.iter().all(|c| *c == 0)
            && self.causes.is_empty()
            && self.tagged.values().all(TagData::is_empty)
    }

    /// Empties every number. The histograms (per tag too) keep their memory,
    /// so a cleared snapshot records and merges without allocating.
    pub fn clear(&mut self) {
        self.hists.iter_mut().for_each(reset_histogram);
        self.counters = [0; Counter::ALL.len()];
        self.causes.clear();
        for data in self.tagged.values_mut() {
            data.clear();
        }
    }

    pub fn summary(&self, metric: Metric) -> MetricSummary {
        MetricSummary::of(self.histogram(metric))
    }
}

/// Distribution summary of one metric in milliseconds (µs precision).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct MetricSummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub p99_99_ms: f64,
    pub max_ms: f64,
}

impl MetricSummary {
    /// The percentiles a summary carries, with their field values: p50, p90,
    /// p95, p99, p99.9, p99.99 and p100 (= max).
    pub fn percentiles(&self) -> [(f64, f64); 7] {
        [
            (50.0, self.p50_ms),
            (90.0, self.p90_ms),
            (95.0, self.p95_ms),
            (99.0, self.p99_ms),
            (99.9, self.p99_9_ms),
            (99.99, self.p99_99_ms),
            (100.0, self.max_ms),
        ]
    }

    /// Percentile `p` (0 < p <= 100) in ms if the summary carries it
    /// (`percentile(99.0)` = `p99_ms`); `None` for any other percentile, which
    /// only the histogram itself can answer.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles()
            .into_iter()
            .find(|(q, _)| (q - p).abs() < 1e-9)
            .map(|(_, v)| v)
    }

    pub fn of(h: &Histogram<u64>) -> MetricSummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return MetricSummary {
                count: 0,
                min_ms: 0.0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                p99_9_ms: 0.0,
                p99_99_ms: 0.0,
                max_ms: 0.0,
            };
        }
        let q = |p: f64| ms(h.value_at_quantile(p));
        MetricSummary {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: h.mean().round() / 1000.0,
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            p99_9_ms: q(0.999),
            p99_99_ms: q(0.9999),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_milliseconds() {
        let mut s = Snapshot::new();
        for us in 1..=1000u64 {
            s.record(Metric::FinalPing, Duration::from_micros(us * 100));
        }
        let m = s.summary(Metric::FinalPing);
        assert_eq!(m.count, 1000);
        assert!((m.p50_ms - 50.0).abs() < 0.1, "{m:?}");
        assert!((m.max_ms - 100.0).abs() < 0.1, "{m:?}");
        assert!((m.min_ms - 0.1).abs() < 0.001, "{m:?}");
    }

    #[test]
    fn tagged_samples_count_in_totals_and_per_tag() {
        let mut a = Snapshot::new();
        a.record_tagged(Metric::FinalPing, &[0, 2], Duration::from_millis(5));
        a.record_tagged(Metric::Connect, &[0], Duration::from_millis(1));
        a.add_tagged(Counter::TurnsOk, &[2], 1);
        let mut b = Snapshot::new();
        b.record_tagged(Metric::FinalPing, &[2], Duration::from_millis(7));
        a.merge(&b);
        assert_eq!(a.histogram(Metric::FinalPing).len(), 2);
        assert_eq!(
            a.tag(0)
                .and_then(|t| t.summary(Metric::FinalPing))
                .map(|m| m.count),
            Some(1)
        );
        assert_eq!(
            a.tag(2)
                .and_then(|t| t.summary(Metric::FinalPing))
                .map(|m| m.count),
            Some(2)
        );
        // connect is not a tagged metric; the total still has it.
        assert!(a.tag(0).and_then(|t| t.summary(Metric::Connect)).is_none());
        assert_eq!(a.histogram(Metric::Connect).len(), 1);
        assert_eq!(a.tag(2).map(|t| t.counter(Counter::TurnsOk)), Some(1));
        assert!(a.tag(1).is_none());
    }

    #[test]
    fn merge_adds_counts_and_causes() {
        let mut a = Snapshot::new();
        let mut b = Snapshot::new();
        assert!(a.is_empty());
        b.add_cause("turn_timeout", 0);
        assert!(!b.is_empty(), "a cause is a number, even at 0");
        b.clear();
        b.add_tagged(Counter::Outputs, &[3], 0);
        assert!(b.is_empty(), "zero under a tag is nothing");
        a.add(Counter::Outputs, 2);
        b.add(Counter::Outputs, 3);
        b.add_cause("turn_timeout", 4);
        b.record(Metric::Connect, Duration::from_millis(5));
        a.merge(&b);
        assert_eq!(a.counter(Counter::Outputs), 5);
        assert_eq!(a.causes()["turn_timeout"], 4);
        assert_eq!(a.histogram(Metric::Connect).len(), 1);
        assert_eq!(MetricSummary::of(&new_histogram()).count, 0);
    }
}
