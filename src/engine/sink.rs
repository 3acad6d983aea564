//! The hook for things that follow a run while it runs: once the collector
//! has closed an interval (drain) and the interval writer has appended it to
//! the timeline, the writer hands it to every [`IntervalSink`] — the live
//! report files (`timeseries.csv`, `.hlog`) and the live metrics export.
//! Sinks run on the interval writer's low-priority thread once per interval,
//! never per sample, so they cost nothing on the VUs' hot path; they must not
//! block (files are appended, network pushes are queued).

use super::pacing::{Dispatch, Pacing};
use crate::metrics::{Snapshot, Timeline};
use std::sync::{Arc, Mutex, PoisonError};

/// What the collector hands every sink after closing an interval.
pub struct ClosedInterval<'a> {
    /// The run's intervals so far; the last one was just closed.
    pub timeline: &'a Timeline,
    /// That interval's samples and counter increments (per-tag numbers included).
    pub drained: &'a Snapshot,
    /// Arrivals waiting for a free VU at the end of the interval (open executors).
    pub backlog: u64,
    /// Socket.IO connections open at the end of the interval.
    pub chat_sockets: u64,
    /// Runtime WebSocket connections open at the end of the interval.
    pub runtime_sockets: u64,
    /// The run's last interval: every VU has finished.
    pub last: bool,
}

/// Something that follows the run interval by interval.
pub trait IntervalSink: Send {
    fn interval(&mut self, closed: &ClosedInterval<'_>);
}

/// The arrival queues of the open executors, read once per interval.
#[derive(Default)]
pub(super) struct Backlogs {
    queues: Mutex<Vec<Arc<Dispatch>>>,
}

impl Backlogs {
    /// Remembers the arrival queue of a group's pacing (if it has one).
    pub fn watch(&self, pacings: &[Pacing]) {
        if let Some(Pacing::Open { dispatch, .. }) = pacings.first() {
            self.lock().push(dispatch.clone());
        }
    }

    /// Arrivals waiting in all queues now.
    pub fn waiting(&self) -> u64 {
        self.lock().iter().map(|d| d.waiting() as u64).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Dispatch>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
