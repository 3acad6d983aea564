//! The per-interval history of a run: for every collector tick, the HDR
//! histograms of the latency metrics that had samples in that interval, the
//! counter deltas of that interval and the generator gauges (active VUs, CPU,
//! RSS, scheduler lag). `timeseries.csv` and the `<metric>.hlog` files are made
//! from it. It only stores what the collector hands it; it does not drain the
//! recorder, sample the OS or format files.
//!
//! # Use
//! ```
//! use finalping::metrics::{Gauges, Metric, Snapshot, Timeline};
//! use std::time::{Duration, SystemTime};
//!
//! let mut timeline = Timeline::new(SystemTime::now(), Duration::from_secs(1));
//! let mut interval = Snapshot::new(); // in the engine: `recorder.drain()`
//! interval.record(Metric::FinalPing, Duration::from_millis(42));
//! timeline.push(Duration::ZERO, Duration::from_secs(1), &interval, Gauges::default());
//! assert_eq!(timeline.intervals()[0].stats(Metric::FinalPing).map(|s| s.count), Some(1));
//! ```
//!
//! # Memory
//! A full-range histogram (1 µs … 1 h, 3 digits) is a ~190 KiB counts array, so
//! histograms are never kept as such: each non-empty one is stored in the
//! HdrHistogram V2 compressed encoding (the same bytes a `.hlog` line carries,
//! ~50–80 µs to encode), next to its precomputed p50/p90/p99/max. Empty
//! histograms cost nothing. Measured sizes: 100 samples ≈ 0.2 KiB, 5 000
//! samples over one order of magnitude ≈ 1 KiB, 5 000 samples over three
//! orders ≈ 1.8 KiB (pinned below 3 KiB by the unit test
//! `encoded_size_is_small`), 50 000 samples ≈ 4 KiB. Per interval there are also
//! ~300 bytes of counters, gauges and bookkeeping. So a 1 h run at 1 s intervals
//! with 4 busy metrics keeps about 3 600 × (4 × ~1.5 KiB + 0.3 KiB) ≈ 22 MiB
//! (a 24 h run ≈ 0.5 GiB: use a longer interval there). The worst case per
//! histogram, every bucket from 1 µs to 1 h occupied, is about the raw size.

use super::{new_histogram, Counter, Metric, Snapshot};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::borrow::Cow;
use std::time::{Duration, SystemTime};

/// Generator gauges sampled once per interval (see `metrics::selfcheck`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gauges {
    /// VUs running at the end of the interval.
    pub active_vus: u64,
    /// Process CPU use during the interval, in % of one core (200 = two busy cores).
    pub cpu_percent: f64,
    /// Resident set size at the end of the interval, in KiB.
    pub rss_kib: u64,
    /// p99 of the tokio scheduling lag probe during the interval, in µs.
    pub scheduler_lag_p99_us: u64,
}

/// Distribution summary of one metric in one interval, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalStats {
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl IntervalStats {
    fn of(h: &Histogram<u64>) -> IntervalStats {
        IntervalStats {
            count: h.len(),
            min_us: h.min(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// A stored histogram failed to decode (a bug: the bytes were encoded by this module).
#[derive(Debug, thiserror::Error)]
#[error("interval histogram of `{metric}` at {start_s:.3} s cannot be decoded: {reason}")]
pub struct TimelineError {
    pub metric: &'static str,
    pub start_s: f64,
    pub reason: String,
}

/// How one non-empty histogram is kept.
#[derive(Debug, Clone)]
enum Stored {
    /// V2 compressed (deflate) encoding: the normal case.
    Encoded(Box<[u8]>),
    /// Kept as is if encoding ever failed (counts beyond i64, or a deflate
    /// error), so nothing is lost.
    Raw(Box<Histogram<u64>>),
}

#[derive(Debug, Clone)]
struct MetricInterval {
    metric: Metric,
    stats: IntervalStats,
    stored: Stored,
}

/// One collector interval: what happened between `start` and `end` (offsets from run start).
#[derive(Debug, Clone)]
pub struct Interval {
    start: Duration,
    end: Duration,
    counters: [u64; Counter::ALL.len()],
    turns_failed: u64,
    updates_failed: u64,
    gauges: Gauges,
    /// Only metrics with at least one sample, in `Metric::ALL` order.
    metrics: Vec<MetricInterval>,
}

impl Interval {
    /// Start of the interval, as an offset from the run start.
    pub fn start(&self) -> Duration {
        self.start
    }

    /// End of the interval, as an offset from the run start.
    pub fn end(&self) -> Duration {
        self.end
    }

    /// Length of the interval (zero if the collector passed `end < start`).
    pub fn length(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    pub fn gauges(&self) -> Gauges {
        self.gauges
    }

    /// The counter's increase during this interval.
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter.index()]
    }

    /// Turns that ended in any way other than ok during this interval
    /// (same definition as [`Snapshot::turns_failed`]).
    pub fn turns_failed(&self) -> u64 {
        self.turns_failed
    }

    /// Context updates that ended in any way other than ok during this interval
    /// (same definition as [`Snapshot::updates_failed`]).
    pub fn updates_failed(&self) -> u64 {
        self.updates_failed
    }

    /// Percentiles of `metric` in this interval; `None` when it had no samples.
    pub fn stats(&self, metric: Metric) -> Option<IntervalStats> {
        self.find(metric).map(|m| m.stats)
    }

    /// The full histogram of `metric` in this interval (decoded; ~190 KiB while
    /// held); `Ok(None)` when it had no samples.
    pub fn histogram(&self, metric: Metric) -> Result<Option<Histogram<u64>>, TimelineError> {
        let Some(m) = self.find(metric) else {
            return Ok(None);
        };
        match &m.stored {
            Stored::Raw(h) => Ok(Some((**h).clone())),
            Stored::Encoded(bytes) => Deserializer::new()
                .deserialize(&mut &bytes[..])
                .map(Some)
                .map_err(|e| TimelineError {
                    metric: metric.name(),
                    start_s: self.start.as_secs_f64(),
                    reason: format!("{e:?}"),
                }),
        }
    }

    /// The V2 compressed (deflate) encoding of `metric`'s histogram in this
    /// interval, as stored (encoded now if it was kept raw); `Ok(None)` when
    /// it had no samples.
    pub fn encoded_histogram(
        &self,
        metric: Metric,
    ) -> Result<Option<Cow<'_, [u8]>>, TimelineError> {
        let Some(m) = self.find(metric) else {
            return Ok(None);
        };
        match &m.stored {
            Stored::Encoded(bytes) => Ok(Some(Cow::Borrowed(bytes))),
            Stored::Raw(h) => {
                let mut buf = Vec::new();
                V2DeflateSerializer::new()
                    .serialize(&**h, &mut buf)
                    .map_err(|e| TimelineError {
                        metric: metric.name(),
                        start_s: self.start.as_secs_f64(),
                        reason: format!("{e:?}"),
                    })?;
                Ok(Some(Cow::Owned(buf)))
            }
        }
    }

    /// Bytes used by the stored histograms of this interval (for the memory budget).
    pub fn stored_bytes(&self) -> usize {
        self.metrics
            .iter()
            .map(|m| match &m.stored {
                Stored::Encoded(b) => b.len(),
                Stored::Raw(h) => h.distinct_values() * std::mem::size_of::<u64>(),
            })
            .sum()
    }

    fn find(&self, metric: Metric) -> Option<&MetricInterval> {
        self.metrics.iter().find(|m| m.metric == metric)
    }
}

/// The interval history of one run, in push order.
#[derive(Debug, Clone)]
pub struct Timeline {
    run_start: SystemTime,
    interval: Duration,
    intervals: Vec<Interval>,
}

impl Timeline {
    /// An empty timeline for a run that started at `run_start` (wall clock, used
    /// for the `.hlog` StartTime/BaseTime) with collector ticks of `interval`.
    pub fn new(run_start: SystemTime, interval: Duration) -> Timeline {
        Timeline {
            run_start,
            interval,
            intervals: Vec::new(),
        }
    }

    /// Appends one interval: `interval` is what one `Recorder::drain()` returned
    /// (that interval's samples and counter increments only); the offsets are
    /// from the run start. Empty histograms are not stored.
    pub fn push(
        &mut self,
        start_offset: Duration,
        end_offset: Duration,
        interval: &Snapshot,
        gauges: Gauges,
    ) {
        let mut serializer = V2DeflateSerializer::new();
        let mut buf = Vec::new();
        let metrics = Metric::ALL
            .iter()
            .filter(|m| !interval.histogram(**m).is_empty())
            .map(|&metric| {
                let h = interval.histogram(metric);
                buf.clear();
                let stored = match serializer.serialize(h, &mut buf) {
                    Ok(_) => Stored::Encoded(buf.as_slice().into()),
                    Err(_) => Stored::Raw(Box::new(h.clone())),
                };
                MetricInterval {
                    metric,
                    stats: IntervalStats::of(h),
                    stored,
                }
            })
            .collect();
        let mut counters = [0u64; Counter::ALL.len()];
        for c in Counter::ALL {
            counters[c.index()] = interval.counter(c);
        }
        self.intervals.push(Interval {
            start: start_offset,
            end: end_offset,
            counters,
            turns_failed: interval.turns_failed(),
            updates_failed: interval.updates_failed(),
            gauges,
            metrics,
        });
    }

    /// Wall-clock time the run started (offsets are relative to it).
    pub fn run_start(&self) -> SystemTime {
        self.run_start
    }

    /// The nominal collector interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Metrics with at least one sample in some interval, in `Metric::ALL` order.
    pub fn metrics_with_samples(&self) -> Vec<Metric> {
        Metric::ALL
            .iter()
            .copied()
            .filter(|m| self.intervals.iter().any(|i| i.find(*m).is_some()))
            .collect()
    }

    /// All intervals of `metric` added up (exact: equal bounds add losslessly).
    pub fn merged(&self, metric: Metric) -> Result<Histogram<u64>, TimelineError> {
        let mut total = new_histogram();
        for interval in &self.intervals {
            if let Some(h) = interval.histogram(metric)? {
                // Same project-wide bounds on both sides, so addition cannot fail.
                let _ = total.add(&h);
            }
        }
        Ok(total)
    }

    /// Bytes used by all stored histograms.
    pub fn stored_bytes(&self) -> usize {
        self.intervals.iter().map(Interval::stored_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, LogNormal};

    fn snapshot_with(samples_ms: &[u64]) -> Snapshot {
        let mut s = Snapshot::new();
        for ms in samples_ms {
            s.record(Metric::FinalPing, Duration::from_millis(*ms));
        }
        s
    }

    #[test]
    fn keeps_only_non_empty_histograms_and_counter_deltas() {
        let mut t = Timeline::new(SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        let mut a = snapshot_with(&[10, 20, 30]);
        a.add(Counter::TurnsOk, 3);
        a.add(Counter::TurnsTimeout, 1);
        let gauges = Gauges {
            active_vus: 7,
            cpu_percent: 12.5,
            rss_kib: 2048,
            scheduler_lag_p99_us: 900,
        };
        t.push(Duration::ZERO, Duration::from_secs(1), &a, gauges);
        t.push(
            Duration::from_secs(1),
            Duration::from_secs(2),
            &Snapshot::new(),
            Gauges::default(),
        );
        assert_eq!(t.len(), 2);
        let first = &t.intervals()[0];
        assert_eq!(first.counter(Counter::TurnsOk), 3);
        assert_eq!(first.turns_failed(), 1);
        assert_eq!(first.gauges(), gauges);
        let stats = first.stats(Metric::FinalPing).expect("final_ping stats");
        assert_eq!(stats.count, 3);
        assert_eq!(
            stats.max_us,
            first.histogram(Metric::FinalPing).unwrap().unwrap().max()
        );
        assert!(first.stats(Metric::Connect).is_none());
        assert!(first.histogram(Metric::Connect).unwrap().is_none());
        let second = &t.intervals()[1];
        assert_eq!(second.stored_bytes(), 0);
        assert!(second.stats(Metric::FinalPing).is_none());
        assert_eq!(t.metrics_with_samples(), vec![Metric::FinalPing]);
    }

    #[test]
    fn stored_histograms_decode_to_the_recorded_ones() {
        let mut t = Timeline::new(SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dist = LogNormal::new(10.0, 1.0).unwrap();
        let mut total = Snapshot::new();
        for i in 0..5u64 {
            let mut s = Snapshot::new();
            for _ in 0..1000 {
                let us: f64 = dist.sample(&mut rng);
                s.record(Metric::FinalPing, Duration::from_micros(us as u64));
            }
            let h = s.histogram(Metric::FinalPing).clone();
            t.push(
                Duration::from_secs(i),
                Duration::from_secs(i + 1),
                &s,
                Gauges::default(),
            );
            let back = t.intervals()[i as usize]
                .histogram(Metric::FinalPing)
                .unwrap()
                .unwrap();
            assert_eq!(back, h);
            total.merge(&s);
        }
        assert_eq!(
            &t.merged(Metric::FinalPing).unwrap(),
            total.histogram(Metric::FinalPing)
        );
    }

    #[test]
    fn encoded_size_is_small() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let dist = LogNormal::new(10.0, 0.8).unwrap(); // median ~22 ms
        let mut s = Snapshot::new();
        for _ in 0..5000 {
            let us: f64 = dist.sample(&mut rng);
            s.record(Metric::FinalPing, Duration::from_micros(us as u64));
        }
        let mut t = Timeline::new(SystemTime::UNIX_EPOCH, Duration::from_secs(1));
        t.push(
            Duration::ZERO,
            Duration::from_secs(1),
            &s,
            Gauges::default(),
        );
        let bytes = t.stored_bytes();
        assert!(bytes > 40 && bytes < 3072, "{bytes} bytes");
    }
}
