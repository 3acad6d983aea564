//! Audit records for context updates (docs/protocol.md §2.5): one record per
//! variable per update, written to the run's `audit.jsonl` and optionally
//! POSTed to a webhook. Owns the record shape ([`record`]), the file writer
//! (`writer`), the webhook queue and workers ([`webhook`]) and the counters
//! ([`stats`]).
//!
//! ```text
//! VU task ──record()──► unbounded channel ──► writer thread ──► audit.jsonl (buffered, 1 s flush)
//!                                                   │ try_send (full → dropped)
//!                                                   ▼
//!                                    bounded queue ──► N workers ──POST──► webhook
//! ```
//!
//! The file never loses a record: the channel to the writer is unbounded and
//! [`AuditSink::finish`] waits for it. The webhook never slows the load: it is
//! fed with `try_send` from the writer thread, and `finish` gives it at most
//! `drain` to empty its queue. [`AuditHandle::record`] is one atomic add and
//! one channel send; it never blocks or awaits.

pub mod record;
pub mod stats;
pub mod webhook;
mod writer;

pub use record::{AuditRecord, EventType, UpdateAudit};
pub use stats::AuditStats;
pub use webhook::{WebhookConfig, WebhookConfigError};

use crate::protocol::runtime::Context;
use stats::Counters;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use writer::{Writer, WriterMsg};

/// The longest `finish` waits for the file writer to write what is queued.
/// Generous: it is reached only if the disk stalls.
pub const WRITER_FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the audit sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot create audit file `{path}`: {source} (check that the report folder exists and is writable)")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Webhook(#[from] WebhookConfigError),
    #[error("the audit webhook needs a tokio runtime: start the audit sink from inside the engine's runtime")]
    NoRuntime,
    #[error("cannot start the audit writer thread: {0}")]
    Spawn(std::io::Error),
}

/// Cheap, cloneable, thread-safe entry point used by VU tasks.
#[derive(Clone)]
pub struct AuditHandle {
    tx: std::sync::mpsc::Sender<WriterMsg>,
    counters: Arc<Counters>,
    webhook: bool,
}

impl std::fmt::Debug for AuditHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditHandle")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

impl AuditHandle {
    /// Queues one record for the file (and the webhook, if any). Never blocks.
    /// A record submitted after [`AuditSink::finish`] is not written; it shows
    /// up as `records_lost`.
    pub fn record(&self, rec: AuditRecord) {
        Counters::add(&self.counters.submitted, 1);
        // Err only when the writer has stopped (after finish): counted as lost.
        let _ = self.tx.send(WriterMsg::Record(rec));
    }

    /// Records one finished update: one record per variable of `context`
    /// (by scope), with the old value from `previous` (`null` when absent).
    /// Returns the number of records.
    pub fn record_update(
        &self,
        session_id: &str,
        context: &Context,
        previous: &Context,
        latency: Duration,
        success: bool,
        cause: Option<&str>,
    ) -> usize {
        self.record_update_with(&UpdateAudit {
            session_id,
            request_id: None,
            context,
            previous,
            latency,
            success,
            cause,
        })
    }

    /// Like [`AuditHandle::record_update`], with the request id in each record.
    pub fn record_update_with(&self, update: &UpdateAudit<'_>) -> usize {
        let mut n = 0;
        for rec in update.records() {
            self.record(rec);
            n += 1;
        }
        n
    }

    /// A live snapshot. `records_lost` and the end-of-run part of
    /// `webhook_dropped` are only known after [`AuditSink::finish`].
    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot(self.webhook)
    }
}

struct WebhookWorkers {
    tasks: JoinSet<()>,
    drain: Duration,
    shown: String,
}

/// The running audit sink. Create it with [`AuditSink::start`], give
/// [`AuditSink::handle`]s to the VUs, and call [`AuditSink::finish`] once at
/// the end of the run (also after Ctrl-C).
pub struct AuditSink {
    handle: AuditHandle,
    writer_done: oneshot::Receiver<Option<String>>,
    webhook: Option<WebhookWorkers>,
    path: PathBuf,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("path", &self.path)
            .field("webhook", &self.webhook.as_ref().map(|w| &w.shown))
            .finish_non_exhaustive()
    }
}

impl AuditSink {
    /// Creates (or truncates) `path` and starts the writer thread and, with a
    /// webhook, its workers (this needs a tokio runtime).
    pub fn start(path: &Path, webhook: Option<WebhookConfig>) -> Result<AuditSink, AuditError> {
        let webhook = match webhook {
            Some(cfg) => {
                let url = cfg.validate()?;
                let rt =
                    tokio::runtime::Handle::try_current().map_err(|_| AuditError::NoRuntime)?;
                Some((cfg, url, rt))
            }
            None => None,
        };
        let file = std::fs::File::create(path).map_err(|source| AuditError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let counters = Arc::new(Counters::default());
        let (queue_tx, workers) = match webhook {
            Some((cfg, url, rt)) => {
                let (tx, rx) = mpsc::channel(cfg.queue);
                let shown = webhook::redact_url(&url);
                let tasks = webhook::spawn_workers(&cfg, url, rx, counters.clone(), &rt)?;
                let workers = WebhookWorkers {
                    tasks,
                    drain: cfg.drain.as_duration(),
                    shown,
                };
                (Some(tx), Some(workers))
            }
            None => (None, None),
        };
        let has_webhook = workers.is_some();
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let writer = Writer {
            file,
            path: path.to_path_buf(),
            counters: counters.clone(),
            webhook: queue_tx,
        };
        std::thread::Builder::new()
            .name("finalping-audit".into())
            .spawn(move || writer.run(rx, done_tx))
            .map_err(AuditError::Spawn)?;
        Ok(AuditSink {
            handle: AuditHandle {
                tx,
                counters,
                webhook: has_webhook,
            },
            writer_done: done_rx,
            webhook: workers,
            path: path.to_path_buf(),
        })
    }

    /// A handle for a VU task.
    pub fn handle(&self) -> AuditHandle {
        self.handle.clone()
    }

    /// Where the records go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A live snapshot for progress output.
    pub fn stats(&self) -> AuditStats {
        self.handle.stats()
    }

    /// Writes every record submitted before this call, syncs the file, then
    /// gives the webhook at most `drain` to POST what is queued; whatever is
    /// still queued or in flight then is counted as dropped. Returns the
    /// final totals. Bounded by [`WRITER_FINISH_TIMEOUT`] + `drain`.
    pub async fn finish(self) -> AuditStats {
        let AuditSink {
            handle,
            writer_done,
            webhook,
            path,
        } = self;
        let _ = handle.tx.send(WriterMsg::Close);
        let file_error = match tokio::time::timeout(WRITER_FINISH_TIMEOUT, writer_done).await {
            Ok(Ok(err)) => err,
            Ok(Err(_)) => Some(format!(
                "the audit writer for `{}` stopped unexpectedly",
                path.display()
            )),
            Err(_) => Some(format!(
                "the audit writer for `{}` did not finish within {}s",
                path.display(),
                WRITER_FINISH_TIMEOUT.as_secs()
            )),
        };
        if let Some(mut wh) = webhook {
            let drained = tokio::time::timeout(wh.drain, async {
                while wh.tasks.join_next().await.is_some() {}
            })
            .await
            .is_ok();
            if !drained {
                wh.tasks.shutdown().await;
                tracing::warn!(
                    "audit webhook {}: queue not drained within {:?}; the rest is counted as dropped",
                    wh.shown,
                    wh.drain
                );
            }
        }
        let c = &handle.counters;
        let mut stats = c.snapshot(handle.webhook);
        // Enqueued but neither sent nor failed: left in the queue or in flight.
        let unsettled =
            Counters::get(&c.enqueued).saturating_sub(stats.webhook_sent + stats.webhook_failed);
        stats.webhook_dropped += unsettled;
        stats.records_lost = stats
            .records_submitted
            .saturating_sub(stats.records_written);
        stats.file_error = file_error;
        stats
    }
}
