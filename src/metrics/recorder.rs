//! The recorder: a fixed set of shards, each a mutex around histograms and
//! counters. A thread always writes the same shard (picked once per thread), so
//! with at least as many shards as worker threads the locks are uncontended;
//! the collector drains all shards once per interval, swapping an empty
//! snapshot in so that a shard is locked only for the swap.

use super::{Counter, Metric, Snapshot, TagId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Per-thread recorders, merged by [`Recorder::drain_into`].
pub struct Recorder {
    shards: Box<[Mutex<Snapshot>]>,
    /// An empty snapshot that a drain swaps into a shard in place of the full
    /// one, so that the shard's lock is held for a swap only (the merge and
    /// the clearing happen outside it) and no histogram is allocated.
    spare: Mutex<Snapshot>,
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

impl Recorder {
    /// One shard per expected worker thread, with head-room for blocking threads.
    pub fn new() -> Recorder {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        Recorder::with_shards(threads * 2 + 2)
    }

    pub fn with_shards(n: usize) -> Recorder {
        let shards = (0..n.max(1)).map(|_| Mutex::new(Snapshot::new())).collect();
        Recorder {
            shards,
            spare: Mutex::new(Snapshot::new()),
        }
    }

    /// Locks this thread's shard; record several values under one lock.
    pub fn writer(&self) -> ShardWriter<'_> {
        let slot = THREAD_SLOT.with(|s| *s) % self.shards.len();
        ShardWriter {
            guard: lock(&self.shards[slot]),
        }
    }

    pub fn record(&self, metric: Metric, value: Duration) {
        self.writer().record(metric, value);
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.writer().add(counter, n);
    }

    /// Takes everything recorded since the last drain (all shards), leaving them empty.
    pub fn drain(&self) -> Snapshot {
        let mut out = Snapshot::new();
        self.drain_into(&mut out);
        out
    }

    /// Like [`Recorder::drain`], into `out` (cleared first), reusing its
    /// histograms: the collector's once-per-interval drain allocates nothing
    /// once every histogram has been used. The shard with the most
    /// histograms in use is swapped with `out` as a whole (nothing copied);
    /// only the other shards with numbers are merged into it. Merging walks
    /// each source histogram and writes into `out`'s, whose pages the kernel
    /// maps at first touch: at the first interval of a run the other way
    /// round (the warm-up's connects taking in the VUs' turns) cost 833 page
    /// faults and 2.5 ms on the VUs' worker.
    pub fn drain_into(&self, out: &mut Snapshot) {
        out.clear();
        let busiest = (0..self.shards.len())
            .map(|i| (lock(&self.shards[i]).histograms_in_use(), i))
            .max()
            .map(|(_, i)| i);
        if let Some(i) = busiest {
            std::mem::swap(&mut *lock(&self.shards[i]), out);
        }
        let mut spare = lock(&self.spare);
        for (i, shard) in self.shards.iter().enumerate() {
            if Some(i) == busiest {
                continue;
            }
            let mut s = lock(shard);
            if s.is_empty() {
                continue;
            }
            std::mem::swap(&mut *s, &mut *spare);
            drop(s);
            out.merge(&spare);
            spare.clear();
        }
    }
}

/// Locks a shard, poisoned or not (a panicking VU leaves its numbers valid).
fn lock(shard: &Mutex<Snapshot>) -> MutexGuard<'_, Snapshot> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// A locked shard; dropping it releases the lock.
pub struct ShardWriter<'a> {
    guard: MutexGuard<'a, Snapshot>,
}

impl ShardWriter<'_> {
    pub fn record(&mut self, metric: Metric, value: Duration) {
        self.guard.record(metric, value);
    }

    pub fn add(&mut self, counter: Counter, n: u64) {
        self.guard.add(counter, n);
    }

    /// Records a latency in the totals and under each tag.
    pub fn record_tagged(&mut self, metric: Metric, tags: &[TagId], value: Duration) {
        self.guard.record_tagged(metric, tags, value);
    }

    /// Adds to a counter in the totals and under each tag.
    pub fn add_tagged(&mut self, counter: Counter, tags: &[TagId], n: u64) {
        self.guard.add_tagged(counter, tags, n);
    }

    /// Counts one failure under a cause name (`turn_timeout`, `connect_refused`, …).
    pub fn cause(&mut self, cause: &str) {
        self.guard.add_cause(cause, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_merge_exactly() {
        let rec = Arc::new(Recorder::with_shards(3));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        let mut w = rec.writer();
                        w.record(Metric::FinalPing, Duration::from_micros(1 + i + t));
                        w.add(Counter::TurnsOk, 1);
                        if i % 100 == 0 {
                            w.cause("turn_timeout");
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = rec.drain();
        assert_eq!(snap.histogram(Metric::FinalPing).len(), 8000);
        assert_eq!(snap.counter(Counter::TurnsOk), 8000);
        assert_eq!(snap.causes().get("turn_timeout"), Some(&80));
        // drained: a second drain is empty
        let again = rec.drain();
        assert_eq!(again.histogram(Metric::FinalPing).len(), 0);
        assert_eq!(again.counter(Counter::TurnsOk), 0);
    }

    /// A reused drain target holds one interval only: what was recorded
    /// before (per tag too) is gone, and a tag without numbers is absent.
    #[test]
    fn draining_into_a_reused_snapshot_keeps_intervals_apart() {
        let rec = Recorder::with_shards(2);
        let mut drained = Snapshot::new();
        {
            let mut w = rec.writer();
            w.record_tagged(Metric::FinalPing, &[0, 1], Duration::from_millis(3));
            w.add_tagged(Counter::TurnsOk, &[0, 1], 1);
            w.cause("turn_timeout");
        }
        rec.drain_into(&mut drained);
        assert_eq!(drained.histogram(Metric::FinalPing).len(), 1);
        assert_eq!(drained.tags().count(), 2);
        assert_eq!(drained.causes().get("turn_timeout"), Some(&1));

        rec.writer()
            .record_tagged(Metric::FinalPing, &[1], Duration::from_millis(9));
        rec.drain_into(&mut drained);
        let h = drained.histogram(Metric::FinalPing);
        assert_eq!(h.len(), 1);
        assert!(
            h.equivalent(h.min(), 9000),
            "only the 9 ms sample: {}",
            h.min()
        );
        assert!(drained.tag(0).is_none(), "tag 0 had nothing this interval");
        assert_eq!(drained.tags().map(|(id, _)| id).collect::<Vec<_>>(), [1]);
        let tag1 = drained.tag(1).and_then(|t| t.summary(Metric::FinalPing));
        assert_eq!(tag1.map(|m| m.count), Some(1));
        assert_eq!(drained.tag(1).map(|t| t.counter(Counter::TurnsOk)), Some(0));
        assert!(drained.causes().is_empty());

        rec.drain_into(&mut drained);
        assert_eq!(drained.tags().count(), 0);
        assert_eq!(drained.histogram(Metric::FinalPing).len(), 0);
    }
}
