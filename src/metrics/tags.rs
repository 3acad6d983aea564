//! Per-tag numbers: every sample of a tagged metric and every counter can also
//! be booked under tags (`scenario=checkout`, `scenario=checkout,step=pay`), so
//! reports show each scenario and named step besides the totals. Histograms of
//! a tag are created on first use, and only for the metrics in [`TAGGED`];
//! clearing a snapshot empties them but keeps them for the next interval.

use super::{new_histogram, reset_histogram, Counter, Metric, MetricSummary};
use hdrhistogram::Histogram;
use std::time::Duration;

/// Index of a tag in the run's tag list.
pub type TagId = u16;

/// Metrics that are also recorded per tag.
pub const TAGGED: [Metric; 5] = [
    Metric::FinalPing,
    Metric::FirstOutput,
    Metric::FinalPingIntended,
    Metric::ContextUpdate,
    Metric::ContextVisible,
];

fn slot(metric: Metric) -> Option<usize> {
    TAGGED.iter().position(|m| *m == metric)
}

/// The numbers of one tag.
#[derive(Clone, Debug)]
pub struct TagData {
    hists: [Option<Histogram<u64>>; TAGGED.len()],
    counters: [u64; Counter::ALL.len()],
}

impl Default for TagData {
    fn default() -> Self {
        TagData {
            hists: Default::default(),
            counters: [0; Counter::ALL.len()],
        }
    }
}

impl TagData {
    pub(super) fn record(&mut self, metric: Metric, us: u64) {
        if let Some(i) = slot(metric) {
            self.hists[i]
                .get_or_insert_with(new_histogram)
                .saturating_record(us);
        }
    }

    pub(super) fn add(&mut self, counter: Counter, n: u64) {
        let c = &mut self.counters[counter as usize];
        *c = c.saturating_add(n);
    }

    pub(super) fn merge(&mut self, other: &TagData) {
        for (a, b) in self.hists.iter_mut().zip(&other.hists) {
            if let Some(b) = b.as_ref().filter(|b| !b.is_empty()) {
                // Same bounds on both sides: addition cannot fail.
                let _ = a.get_or_insert_with(new_histogram).add(b);
            }
        }
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a = a.saturating_add(b);
        }
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter as usize]
    }

    /// How many of this tag's histograms hold samples.
    pub fn histograms_in_use(&self) -> usize {
        self.hists
            .iter()
            .flatten()
            .filter(|h| !h.is_empty())
            .count()
    }

    /// Nothing booked: no counter above zero and no sample.
    pub fn is_empty(&self) -> bool {
        self.counters.iter().all(|c| *c == 0)
            && self.hists.iter().flatten().all(Histogram::is_empty)
    }

    /// Empties the numbers but keeps the histograms' memory, so that the next
    /// interval records into them without allocating ~190 KiB each.
    pub(super) fn clear(&mut self) {
        self.hists.iter_mut().flatten().for_each(reset_histogram);
        self.counters = [0; Counter::ALL.len()];
    }

    /// The histogram of a tagged metric, `None` when the tag has no samples of it.
    pub fn histogram(&self, metric: Metric) -> Option<&Histogram<u64>> {
        slot(metric)
            .and_then(|i| self.hists[i].as_ref())
            .filter(|h| !h.is_empty())
    }

    /// Adds a whole histogram of a tagged metric (other metrics are not kept
    /// per tag); fails when `h` does not fit the project-wide bounds.
    pub(super) fn add_histogram(
        &mut self,
        metric: Metric,
        h: &Histogram<u64>,
    ) -> Result<(), hdrhistogram::AdditionError> {
        match slot(metric) {
            Some(i) => self.hists[i].get_or_insert_with(new_histogram).add(h),
            None => Ok(()),
        }
    }

    /// Summary of a tagged metric, `None` when the tag has no samples of it.
    pub fn summary(&self, metric: Metric) -> Option<MetricSummary> {
        self.histogram(metric).map(MetricSummary::of)
    }
}

/// Microseconds as recorded: at least 1, saturating.
pub(super) fn micros(value: Duration) -> u64 {
    u64::try_from(value.as_micros()).unwrap_or(u64::MAX).max(1)
}
