//! Audit counters: lock-free atomics shared by the handles, the file writer
//! and the webhook workers, and the [`AuditStats`] snapshot reported in
//! `summary.json`.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters. `Relaxed` is enough: each is an independent tally and the
/// final snapshot is taken after the tasks that write them have ended.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// `record()` calls (records handed to the writer).
    pub submitted: AtomicU64,
    /// Records whose bytes reached the file (counted after each successful write).
    pub written: AtomicU64,
    /// Records put on the webhook queue.
    pub enqueued: AtomicU64,
    /// Webhook POSTs answered 2xx.
    pub sent: AtomicU64,
    /// Webhook POSTs that failed: non-2xx, connection error, timeout.
    pub failed: AtomicU64,
    /// Records not queued for the webhook because the queue was full.
    pub dropped_full: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// A snapshot. While running, `webhook_dropped` counts only queue-full
    /// drops; [`super::AuditSink::finish`] adds what was left at the drain limit.
    pub fn snapshot(&self, webhook: bool) -> AuditStats {
        let submitted = Self::get(&self.submitted);
        let written = Self::get(&self.written);
        AuditStats {
            records_submitted: submitted,
            records_written: written,
            records_lost: 0,
            webhook_enabled: webhook,
            webhook_sent: Self::get(&self.sent),
            webhook_failed: Self::get(&self.failed),
            webhook_dropped: Self::get(&self.dropped_full),
            file_error: None,
        }
    }
}

/// Audit totals for progress and for `summary.json`.
///
/// After [`super::AuditSink::finish`]: `records_written + records_lost ==
/// records_submitted`, and with a webhook `webhook_sent + webhook_failed +
/// webhook_dropped == records_written` (every record reaches the webhook
/// accounting exactly once, as sent, failed or dropped).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditStats {
    /// Records handed to the sink (`record()` calls).
    pub records_submitted: u64,
    /// Records written to `audit.jsonl`.
    pub records_written: u64,
    /// Records submitted but not in the file: submitted after `finish`, or
    /// lost to a file error (see `file_error`). 0 in a healthy run; only
    /// computed by `finish` (0 in live snapshots).
    pub records_lost: u64,
    pub webhook_enabled: bool,
    /// POSTs answered 2xx.
    pub webhook_sent: u64,
    /// POSTs answered non-2xx, or that failed to connect or timed out.
    pub webhook_failed: u64,
    /// Records never POSTed: the queue was full, or they were still queued or
    /// in flight when the drain time ran out.
    pub webhook_dropped: u64,
    /// The first file write error, if any (records after it are lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
}
