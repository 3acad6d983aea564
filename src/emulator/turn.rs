//! One ready session on socketioxide: its `processInput` queue (served one
//! input at a time, in wire order), each turn planned by [`super::bot`] (delay,
//! typingOn, outputs, typingOff, finalPing, faults) and played on the socket,
//! with ack requests when the session asked for them.

use super::bot::{self, TurnError, TurnPlan};
use super::faults::{ConnectionPlan, RawFault};
use super::session::SessionInfo;
use super::stats::bump;
use super::Shared;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::{AckError, SendError, SocketError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Serialises as "no arguments": the frame is `42["endpoint-ready"]`, not `…,null]`.
pub(crate) const NO_ARGS: [(); 0] = [];

/// Inputs a session may queue while a turn runs; more are dropped and counted.
const INPUT_QUEUE: usize = 256;

/// Makes the session ready: registers its handlers, starts its worker task and
/// emits `endpoint-ready`.
pub(crate) fn open_session(
    socket: SocketRef,
    info: SessionInfo,
    shared: Arc<Shared>,
    plan: Option<ConnectionPlan>,
) {
    let (tx, rx) = mpsc::channel::<Value>(INPUT_QUEUE);
    let cancel = CancellationToken::new();
    let counters = shared.counters.clone();
    socket.on("processInput", move |TryData(input): TryData<Value>| {
        // This body runs synchronously in socketioxide's receive path (only the
        // returned future is spawned), so inputs are queued in wire order.
        match input.map(|v| tx.try_send(v)) {
            Ok(Ok(())) => bump(&counters.inputs),
            _ => bump(&counters.bad_inputs),
        }
        std::future::ready(())
    });
    let on_close = {
        let cancel = cancel.clone();
        let counters = shared.counters.clone();
        move || {
            if !cancel.is_cancelled() {
                cancel.cancel();
                counters.session_closed();
            }
        }
    };
    socket.on_disconnect({
        let on_close = on_close.clone();
        move || {
            on_close();
            std::future::ready(())
        }
    });
    bump(&shared.counters.sessions);
    shared
        .counters
        .active_sessions
        .fetch_add(1, Ordering::Relaxed);
    if !socket.connected() {
        // Closed before the disconnect handler existed: it will never run.
        on_close();
        return;
    }
    let index = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let seed = shared
        .config
        .seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let fault_rng = plan.map_or_else(|| StdRng::seed_from_u64(seed), |p| p.turn_rng());
    tokio::spawn(run_session(
        socket.clone(),
        info,
        shared,
        rx,
        cancel,
        StdRng::seed_from_u64(seed),
        fault_rng,
    ));
    if socket.emit("endpoint-ready", &NO_ARGS).is_err() {
        on_close();
    }
}

/// Serves the session's inputs one by one until it disconnects.
async fn run_session(
    socket: SocketRef,
    info: SessionInfo,
    shared: Arc<Shared>,
    mut inputs: mpsc::Receiver<Value>,
    cancel: CancellationToken,
    mut rng: StdRng,
    mut fault_rng: StdRng,
) {
    loop {
        let input = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            next = inputs.recv() => match next {
                Some(input) => input,
                None => break,
            },
        };
        let fault = shared.config.faults.roll_turn(&mut fault_rng);
        let plan = TurnPlan::new(&shared, &info, &input, &mut rng, fault, None);
        let mut sink = SocketSink {
            socket: &socket,
            shared: &shared,
        };
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = bot::play(&plan, &mut sink, &shared, &info) => r,
        };
        match result {
            Ok(()) | Err(TurnError::Send) => {}
            Err(TurnError::Closed) => break,
        }
    }
}

/// A turn played on socketioxide's socket.
struct SocketSink<'a> {
    socket: &'a SocketRef,
    shared: &'a Shared,
}

impl bot::Sink for SocketSink<'_> {
    async fn emit<T: Serialize>(
        &mut self,
        event: &str,
        data: &T,
        ack: bool,
    ) -> Result<(), TurnError> {
        emit(self.socket, self.shared, event, data, ack)
    }

    /// Waits for the ack (bounded by socketioxide's `ack_timeout`).
    async fn emit_and_wait<T: Serialize>(&mut self, output: &T) -> Result<(), TurnError> {
        let reply = self
            .socket
            .emit_with_ack::<T, Value>("output", output)
            .map_err(|e| send_error(self.shared, e))?;
        bump(&self.shared.counters.acks_requested);
        match reply.await {
            Ok(_) | Err(AckError::Decode(_)) => bump(&self.shared.counters.acks_received),
            Err(_) => bump(&self.shared.counters.acks_missed),
        }
        Ok(())
    }

    async fn disconnect(&mut self) {
        let _ = self.socket.clone().disconnect();
    }

    /// Never planned here: connections with a frame fault go to the raw server.
    async fn raw_fault(&mut self, _: RawFault) {}
}

fn send_error(shared: &Shared, e: SendError) -> TurnError {
    match e {
        SendError::Socket(SocketError::Closed) => TurnError::Closed,
        _ => {
            bump(&shared.counters.send_errors);
            TurnError::Send
        }
    }
}

/// Emits one event; with `ack`, requests an ack and counts it in the background
/// (socketioxide's `ack_timeout` bounds the wait; the turn never waits).
fn emit<T: Serialize + ?Sized>(
    socket: &SocketRef,
    shared: &Shared,
    event: &str,
    data: &T,
    ack: bool,
) -> Result<(), TurnError> {
    let sent = if ack {
        socket.emit_with_ack::<T, Value>(event, data).map(|reply| {
            bump(&shared.counters.acks_requested);
            let counters = shared.counters.clone();
            tokio::spawn(async move {
                match reply.await {
                    // `43<id>[]` has no first element to decode: still an ack.
                    Ok(_) | Err(AckError::Decode(_)) => bump(&counters.acks_received),
                    Err(_) => bump(&counters.acks_missed),
                }
            });
        })
    } else {
        socket.emit(event, data)
    };
    sent.map_err(|e| send_error(shared, e))
}
