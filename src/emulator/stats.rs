//! Counters the emulator keeps for tests and the `serve` console: lock-free
//! atomics bumped by sessions and turns, read as an [`EmulatorStats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the emulator's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Sessions that received `endpoint-ready`.
    pub sessions: u64,
    /// Sessions currently connected (ready and not yet disconnected).
    pub active_sessions: u64,
    /// Connections refused: unknown URL token (HTTP 403 or `41`), disabled Engine.IO
    /// version (HTTP 400) or a failed inner handshake.
    pub refused: u64,
    /// `processInput` events accepted into a session's queue.
    pub inputs: u64,
    /// `processInput` events dropped: unreadable payload or a full session queue.
    pub bad_inputs: u64,
    /// `processInput` events whose `sessionId`, `userId` or `URLToken` differ from
    /// the connection's session (a client encoding bug; the turn still runs).
    pub input_mismatches: u64,
    /// Turns completed (finalPing emitted).
    pub turns: u64,
    /// `output` events emitted.
    pub outputs: u64,
    /// Events emitted with an ack request.
    pub acks_requested: u64,
    /// Acks received from clients (any payload).
    pub acks_received: u64,
    /// Ack requests that timed out or whose socket closed first.
    pub acks_missed: u64,
    /// Emits that failed because the socket's send buffer was full or closed mid-turn.
    pub send_errors: u64,
}

/// The live counters behind [`EmulatorStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sessions: AtomicU64,
    pub active_sessions: AtomicU64,
    pub refused: AtomicU64,
    pub inputs: AtomicU64,
    pub bad_inputs: AtomicU64,
    pub input_mismatches: AtomicU64,
    pub turns: AtomicU64,
    pub outputs: AtomicU64,
    pub acks_requested: AtomicU64,
    pub acks_received: AtomicU64,
    pub acks_missed: AtomicU64,
    pub send_errors: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> EmulatorStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EmulatorStats {
            sessions: get(&self.sessions),
            active_sessions: get(&self.active_sessions),
            refused: get(&self.refused),
            inputs: get(&self.inputs),
            bad_inputs: get(&self.bad_inputs),
            input_mismatches: get(&self.input_mismatches),
            turns: get(&self.turns),
            outputs: get(&self.outputs),
            acks_requested: get(&self.acks_requested),
            acks_received: get(&self.acks_received),
            acks_missed: get(&self.acks_missed),
            send_errors: get(&self.send_errors),
        }
    }

    /// Decrements the active-session gauge without wrapping below zero.
    pub fn session_closed(&self) {
        let _ = self
            .active_sessions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}
