//! The interval writer: the part of closing an interval that the VUs need
//! not wait for — appending it to the run's [`Timeline`] (which encodes each
//! busy metric's histogram) and handing it to the [`IntervalSink`]s (live
//! report files, live metrics) — runs on a thread of its own under Linux's
//! `SCHED_IDLE` policy, so that on a client with a busy core the VUs' worker
//! and the arrival clock preempt it the moment they wake. The collector keeps what it needs
//! on time: the drain, the run totals, the self-check sample and the progress
//! line. Drained snapshots travel to the thread and come back cleared, to be
//! drained into again, so nothing of ~190 KiB is allocated per interval.
//! Should the thread not start, the same work runs on the collector.

use super::sink::{ClosedInterval, IntervalSink};
use crate::metrics::{Gauges, Snapshot, Timeline};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// One closed interval, as the collector hands it over.
pub(super) struct ClosedSnapshot {
    /// Offsets from the run start.
    pub start: Duration,
    pub end: Duration,
    /// The interval's samples and counter increments.
    pub drained: Snapshot,
    pub gauges: Gauges,
    pub backlog: u64,
    pub chat_sockets: u64,
    pub runtime_sockets: u64,
    pub last: bool,
}

/// The timeline and the sinks, fed interval by interval.
struct Written {
    timeline: Timeline,
    sinks: Vec<Box<dyn IntervalSink>>,
}

impl Written {
    fn write(&mut self, c: &ClosedSnapshot) {
        self.timeline.push(c.start, c.end, &c.drained, c.gauges);
        let closed = ClosedInterval {
            timeline: &self.timeline,
            drained: &c.drained,
            backlog: c.backlog,
            chat_sockets: c.chat_sockets,
            runtime_sockets: c.runtime_sockets,
            last: c.last,
        };
        for sink in self.sinks.iter_mut() {
            sink.interval(&closed);
        }
    }
}

enum Mode {
    Thread {
        intervals: mpsc::Sender<ClosedSnapshot>,
        cleared: mpsc::Receiver<Snapshot>,
        thread: std::thread::JoinHandle<Option<Timeline>>,
    },
    /// The thread could not be started: the collector writes.
    Inline(Box<Inline>),
}

struct Inline {
    written: Written,
    /// The last interval's snapshot, cleared, to drain into next.
    spare: Option<Snapshot>,
}

pub(super) struct IntervalWriter {
    mode: Mode,
    /// For an empty timeline should the thread fail.
    run_start: SystemTime,
    interval: Duration,
}

impl IntervalWriter {
    pub fn start(timeline: Timeline, sinks: Vec<Box<dyn IntervalSink>>) -> IntervalWriter {
        let (run_start, interval) = (timeline.run_start(), timeline.interval());
        let written = Written { timeline, sinks };
        // The timeline and sinks go to the thread once it runs, so that they
        // stay here if it cannot be started.
        let (hand_over, handed) = mpsc::channel::<Written>();
        let (intervals, received) = mpsc::channel::<ClosedSnapshot>();
        let (give_back, cleared) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("finalping-intervals".into())
            .spawn(move || {
                lower_priority();
                // The collector's first drain finds a snapshot made here: a
                // new one costs ~550 page faults (2.5 ms on a VM), which it
                // would otherwise pay on the VUs' worker at the first tick.
                let _ = give_back.send(Snapshot::new());
                let mut w = handed.recv().ok()?;
                for mut c in received {
                    w.write(&c);
                    c.drained.clear();
                    // The collector only goes away after the last interval.
                    let _ = give_back.send(c.drained);
                }
                Some(w.timeline)
            });
        let mode = match spawned {
            Ok(thread) => {
                // The thread waits for exactly this message.
                let _ = hand_over.send(written);
                Mode::Thread {
                    intervals,
                    cleared,
                    thread,
                }
            }
            Err(e) => {
                eprintln!(
                    "warning: cannot start the interval writer thread ({e}); the collector writes the timeline itself"
                );
                Mode::Inline(Box::new(Inline {
                    written,
                    spare: None,
                }))
            }
        };
        IntervalWriter {
            mode,
            run_start,
            interval,
        }
    }

    /// An empty snapshot to drain the next interval into: one the thread has
    /// handed back cleared, else a new one.
    pub fn empty_snapshot(&mut self) -> Snapshot {
        match &mut self.mode {
            Mode::Thread { cleared, .. } => cleared.try_recv().unwrap_or_default(),
            Mode::Inline(inline) => inline.spare.take().unwrap_or_default(),
        }
    }

    /// Appends a closed interval to the timeline and hands it to the sinks
    /// (on the thread: queued, never waited for).
    pub fn write(&mut self, closed: ClosedSnapshot) {
        match &mut self.mode {
            Mode::Thread { intervals, .. } => {
                // The thread ends only when this sender is dropped.
                let _ = intervals.send(closed);
            }
            Mode::Inline(inline) => {
                inline.written.write(&closed);
                let mut drained = closed.drained;
                drained.clear();
                inline.spare = Some(drained);
            }
        }
    }

    /// Waits until every interval handed over is written, drops the sinks
    /// (which closes the live report files) and returns the timeline.
    pub async fn finish(self) -> Timeline {
        match self.mode {
            Mode::Thread {
                intervals, thread, ..
            } => {
                drop(intervals);
                let joined = tokio::task::spawn_blocking(move || thread.join()).await;
                match joined {
                    Ok(Ok(Some(timeline))) => timeline,
                    _ => {
                        eprintln!("warning: the interval writer thread failed; the report has no per-interval timeline");
                        Timeline::new(self.run_start, self.interval)
                    }
                }
            }
            Mode::Inline(inline) => inline.written.timeline,
        }
    }
}

/// `SCHED_IDLE` for the calling thread (Linux schedules each thread on its
/// own), or `nice` 19 where that is refused; best effort. Under `nice` 19 the
/// kernel (EEVDF) still let the thread finish its time slice: it held the
/// client's one core for 0.8–1.2 ms while the VUs' worker and the arrival
/// clock waited, at every interval of an open-model run. A waking thread of
/// any other policy preempts a `SCHED_IDLE` one at once.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread (pid 0 / its own id),
    // with a parameter struct that lives across the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::gettid();
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Counter, Metric};
    use std::sync::{Arc, Mutex};

    /// What a sink saw of one interval, and on which thread.
    #[derive(Debug, PartialEq)]
    struct SeenInterval {
        turns_ok: u64,
        last: bool,
        timeline_len: usize,
        thread: String,
    }

    struct Seen(Arc<Mutex<Vec<SeenInterval>>>);

    impl IntervalSink for Seen {
        fn interval(&mut self, closed: &ClosedInterval<'_>) {
            self.0.lock().unwrap().push(SeenInterval {
                turns_ok: closed.drained.counter(Counter::TurnsOk),
                last: closed.last,
                timeline_len: closed.timeline.len(),
                thread: std::thread::current().name().unwrap_or("").to_string(),
            });
        }
    }

    fn closed(i: u32, drained: Snapshot, last: bool) -> ClosedSnapshot {
        ClosedSnapshot {
            start: Duration::from_secs(i.into()),
            end: Duration::from_secs((i + 1).into()),
            drained,
            gauges: Gauges::default(),
            backlog: 0,
            chat_sockets: 0,
            runtime_sockets: 0,
            last,
        }
    }

    #[tokio::test]
    async fn intervals_reach_the_timeline_and_sinks_in_order_off_the_runtime() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut writer = IntervalWriter::start(
            Timeline::new(SystemTime::now(), Duration::from_secs(1)),
            vec![Box::new(Seen(seen.clone()))],
        );
        for i in 0..3u32 {
            let mut s = writer.empty_snapshot();
            assert!(
                s.is_empty(),
                "interval {i}: a handed-back snapshot is cleared"
            );
            s.add(Counter::TurnsOk, u64::from(i) + 1);
            s.record(Metric::FinalPing, Duration::from_millis(u64::from(i) + 1));
            writer.write(closed(i, s, i == 2));
        }
        let timeline = writer.finish().await;
        assert_eq!(timeline.len(), 3);
        let counts: Vec<u64> = timeline
            .intervals()
            .iter()
            .map(|i| i.counter(Counter::TurnsOk))
            .collect();
        assert_eq!(counts, [1, 2, 3]);
        let seen = seen.lock().unwrap();
        let expected: Vec<_> = (0..3u64)
            .map(|i| SeenInterval {
                turns_ok: i + 1,
                last: i == 2,
                timeline_len: i as usize + 1,
                thread: "finalping-intervals".to_string(),
            })
            .collect();
        assert_eq!(*seen, expected);
    }

    /// The writer's thread runs under `SCHED_IDLE` (read back from /proc),
    /// and the runtime's threads keep their normal policy.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_writer_thread_runs_at_the_lowest_priority() {
        /// The calling thread's scheduling policy, field 41 of its stat line.
        fn policy() -> u32 {
            // SAFETY: returns the calling thread's id; no memory involved.
            let tid = unsafe { libc::gettid() };
            let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
            // Fields after the `(comm)`: state is field 3, policy field 41.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            after.split(' ').nth(38).unwrap().parse().unwrap()
        }
        struct Policy(Arc<Mutex<Option<u32>>>);
        impl IntervalSink for Policy {
            fn interval(&mut self, _: &ClosedInterval<'_>) {
                *self.0.lock().unwrap() = Some(policy());
            }
        }
        let seen = Arc::new(Mutex::new(None));
        let mut writer = IntervalWriter::start(
            Timeline::new(SystemTime::now(), Duration::from_secs(1)),
            vec![Box::new(Policy(seen.clone()))],
        );
        let s = writer.empty_snapshot();
        writer.write(closed(0, s, true));
        writer.finish().await;
        assert_eq!(*seen.lock().unwrap(), Some(libc::SCHED_IDLE as u32));
        assert_eq!(policy(), libc::SCHED_OTHER as u32);
    }
}
