//! The merged time axis: the segments' interval histories laid on one
//! wall-clock grid. The grid starts at the earliest segment's start and steps
//! by the collector interval; each segment interval goes whole into the grid
//! interval that holds its midpoint (segments start at about the same instant
//! and tick at the same rate, so each grid interval gets about one interval of
//! each segment). Histograms and counter increases add up exactly, so the
//! merged intervals still add up to the merged totals; gauges add up across
//! processes (VUs, CPU, RSS), except the scheduler lag, which is the worst.

use super::read::Segment;
use super::MergeError;
use crate::metrics::{Counter, Gauges, Metric, Snapshot, Timeline};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The collector interval when a segment recorded none (it never ticked).
const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);

/// Wall-clock start of the earliest segment (offset 0 of the merged run).
pub fn origin(segments: &[Segment]) -> SystemTime {
    segments
        .iter()
        .map(|s| s.histograms.timeline.run_start())
        .min()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// How long after `origin` a segment started.
pub fn offset(segment: &Segment, origin: SystemTime) -> Duration {
    segment
        .histograms
        .timeline
        .run_start()
        .duration_since(origin)
        .unwrap_or_default()
}

/// One grid interval being filled.
#[derive(Default)]
struct Bucket {
    samples: Snapshot,
    /// Per segment (by position), the gauges of its last interval here.
    gauges: BTreeMap<usize, Gauges>,
}

/// The segments' timelines on one grid (see the module doc).
pub fn merge_timelines(segments: &[Segment]) -> Result<Timeline, MergeError> {
    let origin = origin(segments);
    let tick = segments
        .iter()
        .map(|s| s.histograms.timeline.interval())
        .find(|d| !d.is_zero())
        .unwrap_or(FALLBACK_INTERVAL);
    let mut buckets: BTreeMap<u64, Bucket> = BTreeMap::new();
    let mut end = Duration::ZERO;
    for (n, s) in segments.iter().enumerate() {
        let shift = offset(s, origin);
        for i in s.histograms.timeline.intervals() {
            let mid = shift + (i.start() + i.end()) / 2;
            let k = u64::try_from(mid.as_nanos() / tick.as_nanos()).unwrap_or(u64::MAX);
            let bucket = buckets.entry(k).or_default();
            for c in Counter::ALL {
                bucket.samples.add(c, i.counter(c));
            }
            for m in Metric::ALL {
                let h = i.histogram(m).map_err(|e| MergeError::Corrupt {
                    dir: s.dir.clone(),
                    why: e.to_string(),
                })?;
                if let Some(h) = h {
                    bucket
                        .samples
                        .add_histogram(m, &h)
                        .map_err(|e| MergeError::Corrupt {
                            dir: s.dir.clone(),
                            why: format!("interval at {:?}: {e:?}", i.start()),
                        })?;
                }
            }
            bucket.gauges.insert(n, i.gauges());
            end = end.max(shift + i.end());
        }
    }
    let mut timeline = Timeline::new(origin, tick);
    let Some(last) = buckets.keys().next_back().copied() else {
        return Ok(timeline);
    };
    let nominal = |k: u64| tick.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX));
    for k in 0..=last {
        let start = nominal(k);
        let stop = if k == last && end > start {
            end
        } else {
            nominal(k + 1)
        };
        match buckets.remove(&k) {
            Some(b) => {
                let g = b.gauges.values().fold(Gauges::default(), |a, g| Gauges {
                    active_vus: a.active_vus + g.active_vus,
                    cpu_percent: a.cpu_percent + g.cpu_percent,
                    rss_kib: a.rss_kib + g.rss_kib,
                    scheduler_lag_p99_us: a.scheduler_lag_p99_us.max(g.scheduler_lag_p99_us),
                });
                timeline.push(start, stop, &b.samples, g);
            }
            None => timeline.push(start, stop, &Snapshot::new(), Gauges::default()),
        }
    }
    Ok(timeline)
}
