//! Counters the emulator keeps for tests and the `serve` console: lock-free
//! atomics bumped by sessions, turns and the runtime side (tokens, runtime
//! WebSocket, webhook sink), read as an [`EmulatorStats`] snapshot.

use crate::protocol::runtime::RejectCode;
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

    // Runtime side (docs/protocol.md §2).
    /// Tokens issued by `POST /oauth/token`.
    pub tokens_issued: u64,
    /// Token requests refused (bad form, grant type, client or scope).
    pub oauth_errors: u64,
    /// Runtime upgrades refused with 401: missing, unknown or expired token.
    pub token_rejections: u64,
    /// Runtime WebSocket connections accepted (upgraded).
    pub runtime_connections: u64,
    /// Runtime connections currently open.
    pub active_runtime_connections: u64,
    /// Heartbeats received (each answered with `[0x03]`).
    pub heartbeats: u64,
    /// `updateContext` applied and answered with `contextUpdated`.
    pub updates_ok: u64,
    /// `getContext` answered with `context`.
    pub gets: u64,
    /// `contextRejected` sent, by code.
    pub rejections: RejectionCounts,
    /// Frame-level errors: bad or too large length header, empty frame, text
    /// message, WebSocket error. Each closes the connection (1002).
    pub protocol_errors: u64,
    /// Connections closed for silence (4000 "idle timeout").
    pub idle_closes: u64,
    /// Connections closed because their token expired (4001).
    pub expiry_closes: u64,
    /// Webhook records received (`POST /webhook` with a JSON body).
    pub webhook_received: u64,
    /// Socket.IO faults fired, by fault (see `emulator::faults`).
    pub faults: super::faults::FaultCounts,
}

/// `contextRejected` replies by code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectionCounts {
    pub version_mismatch: u64,
    pub limit_exceeded: u64,
    pub invalid_scope: u64,
    pub too_many_in_flight: u64,
    /// Undecodable payloads and malformed messages.
    pub bad_payload: u64,
    pub forbidden: u64,
}

impl RejectionCounts {
    /// All rejections.
    pub fn total(&self) -> u64 {
        self.version_mismatch
            + self.limit_exceeded
            + self.invalid_scope
            + self.too_many_in_flight
            + self.bad_payload
            + self.forbidden
    }
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
    pub tokens_issued: AtomicU64,
    pub oauth_errors: AtomicU64,
    pub token_rejections: AtomicU64,
    pub runtime_connections: AtomicU64,
    pub active_runtime_connections: AtomicU64,
    pub heartbeats: AtomicU64,
    pub updates_ok: AtomicU64,
    pub gets: AtomicU64,
    pub by_code: [AtomicU64; REJECT_CODES],
    pub protocol_errors: AtomicU64,
    pub idle_closes: AtomicU64,
    pub expiry_closes: AtomicU64,
    pub webhook_received: AtomicU64,
    pub faults: super::faults::FaultCounters,
}

/// Slots of `Counters::by_code`: one per code (`Unknown`, never sent by the
/// emulator, has the last one and is not reported).
const REJECT_CODES: usize = 7;

fn reject_slot(code: RejectCode) -> usize {
    match code {
        RejectCode::VersionMismatch => 0,
        RejectCode::LimitExceeded => 1,
        RejectCode::InvalidScope => 2,
        RejectCode::TooManyInFlight => 3,
        RejectCode::BadPayload => 4,
        RejectCode::Forbidden => 5,
        RejectCode::Unknown => 6,
    }
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
            tokens_issued: get(&self.tokens_issued),
            oauth_errors: get(&self.oauth_errors),
            token_rejections: get(&self.token_rejections),
            runtime_connections: get(&self.runtime_connections),
            active_runtime_connections: get(&self.active_runtime_connections),
            heartbeats: get(&self.heartbeats),
            updates_ok: get(&self.updates_ok),
            gets: get(&self.gets),
            rejections: RejectionCounts {
                version_mismatch: get(&self.by_code[0]),
                limit_exceeded: get(&self.by_code[1]),
                invalid_scope: get(&self.by_code[2]),
                too_many_in_flight: get(&self.by_code[3]),
                bad_payload: get(&self.by_code[4]),
                forbidden: get(&self.by_code[5]),
            },
            protocol_errors: get(&self.protocol_errors),
            idle_closes: get(&self.idle_closes),
            expiry_closes: get(&self.expiry_closes),
            webhook_received: get(&self.webhook_received),
            faults: self.faults.snapshot(),
        }
    }

    /// Counts one `contextRejected` with `code`.
    pub fn rejected(&self, code: RejectCode) {
        if let Some(c) = self.by_code.get(reject_slot(code)) {
            bump(c);
        }
    }

    /// Decrements the open-runtime-connection gauge without wrapping below zero.
    pub fn runtime_closed(&self) {
        let _ = self.active_runtime_connections.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |v| v.checked_sub(1),
        );
    }

    /// Decrements the active-session gauge without wrapping below zero.
    pub fn session_closed(&self) {
        let _ = self
            .active_sessions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}
