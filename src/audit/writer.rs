//! The `audit.jsonl` writer: one dedicated OS thread draining an unbounded
//! channel, serialising each record once, appending it to an in-memory buffer
//! written to the file every 64 KiB and at least once a second, and handing
//! the same JSON bytes to the webhook queue (never waiting for it). File I/O
//! stays off the tokio workers that run the VUs.

use super::record::AuditRecord;
use super::stats::Counters;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How often buffered records reach the file even when few arrive, which
/// bounds what an abrupt kill can lose.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Buffer size at which records are written without waiting for the tick.
const BUF_CAP: usize = 64 * 1024;

/// What the handles send to the writer.
// Almost every message is a record; boxing it would cost an allocation per
// record to save a few hundred bytes on the rare `Close`.
#[allow(clippy::large_enum_variant)]
pub(crate) enum WriterMsg {
    Record(AuditRecord),
    /// Sent by `finish`: write everything already queued, then stop.
    Close,
}

pub(crate) struct Writer {
    pub file: File,
    pub path: PathBuf,
    pub counters: Arc<Counters>,
    /// The webhook queue; dropped when the writer ends, which lets the
    /// webhook workers drain and stop.
    pub webhook: Option<mpsc::Sender<Vec<u8>>>,
}

struct State {
    w: Writer,
    buf: Vec<u8>,
    /// Records in `buf`, counted as written once `buf` reaches the file.
    pending: u64,
    error: Option<String>,
    serialize_warned: bool,
}

impl Writer {
    /// Runs until `Close` is received or every sender is gone, then writes
    /// what is left, syncs the file and reports the first file error (if any)
    /// on `done`.
    pub fn run(self, rx: Receiver<WriterMsg>, done: oneshot::Sender<Option<String>>) {
        let mut s = State {
            w: self,
            buf: Vec::with_capacity(BUF_CAP + 1024),
            pending: 0,
            error: None,
            serialize_warned: false,
        };
        let mut next_flush = Instant::now() + FLUSH_EVERY;
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(WriterMsg::Record(rec)) => s.push(&rec),
                Ok(WriterMsg::Close) => {
                    // Records sent before (or racing with) `finish`.
                    while let Ok(msg) = rx.try_recv() {
                        if let WriterMsg::Record(rec) = msg {
                            s.push(&rec);
                            if s.buf.len() >= BUF_CAP {
                                s.flush();
                            }
                        }
                    }
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if s.buf.len() >= BUF_CAP {
                s.flush();
            }
            let now = Instant::now();
            if now >= next_flush {
                s.flush();
                next_flush = now + FLUSH_EVERY;
            }
        }
        s.flush();
        if s.error.is_none() {
            if let Err(e) = s.w.file.sync_data() {
                s.error = Some(format!("syncing audit file `{}`: {e}", s.w.path.display()));
            }
        }
        // Closing the webhook queue lets its workers finish.
        s.w.webhook = None;
        // The receiver may be gone if `finish` timed out; nothing to do then.
        let _ = done.send(s.error);
    }
}

impl State {
    fn push(&mut self, rec: &AuditRecord) {
        let line = match serde_json::to_vec(rec) {
            Ok(line) => line,
            Err(e) => {
                // Not reachable with serde_json::Value fields; counted as
                // lost (submitted − written) rather than panicking.
                if !self.serialize_warned {
                    self.serialize_warned = true;
                    tracing::error!("audit record could not be serialised: {e}");
                }
                return;
            }
        };
        if self.error.is_none() {
            self.buf.extend_from_slice(&line);
            self.buf.push(b'\n');
            self.pending += 1;
        }
        if let Some(tx) = &self.w.webhook {
            match tx.try_send(line) {
                Ok(()) => Counters::add(&self.w.counters.enqueued, 1),
                Err(_) => Counters::add(&self.w.counters.dropped_full, 1),
            }
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self.error.is_none() {
            match self.w.file.write_all(&self.buf) {
                Ok(()) => Counters::add(&self.w.counters.written, self.pending),
                Err(e) => {
                    let msg = format!(
                        "writing audit file `{}`: {e}; later records are not written",
                        self.w.path.display()
                    );
                    tracing::error!("{msg}");
                    self.error = Some(msg);
                }
            }
        }
        self.buf.clear();
        self.pending = 0;
    }
}
