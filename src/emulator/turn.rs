//! One ready session: its `processInput` queue (served one input at a time, in
//! wire order) and the scripted bot turn: delay, typingOn, N outputs, typingOff,
//! finalPing, with ack requests when the session asked for them. An output of a
//! session with runtime context carries the context version it saw. Applies
//! the per-turn faults (`disconnect_mid_turn`, `no_final_ping`,
//! `output_error`) and `ack_wait` (see [`super::faults`]). An input a
//! scripted reply matches gets that reply's outputs (see [`super::script`]).

use super::faults::{ConnectionPlan, Fault, TurnFault};
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

#[derive(Serialize)]
struct Typing {
    status: &'static str,
}

#[derive(Serialize)]
struct FinalPing {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `{"type":"output","data":{"text":…,"data":{"echo":…,"emulator":true},"source":"bot","traceId":…}}`
/// (field order as the fixtures show it); `data.data.contextVersion` follows
/// `emulator` only when the session has runtime context.
#[derive(Serialize)]
struct Output<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: OutputData<'a>,
}

#[derive(Serialize)]
struct OutputData<'a> {
    text: String,
    data: Payload<'a>,
    source: &'static str,
    #[serde(rename = "traceId")]
    trace_id: String,
}

/// `data.data`: the echo of the input, or a scripted reply's data.
#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Echo(Echo<'a>),
    Scripted(&'a Value),
}

#[derive(Serialize)]
struct Echo<'a> {
    echo: &'a Value,
    emulator: bool,
    /// The session's context version when the output was made (absent if the
    /// session never had a successful `updateContext`).
    #[serde(rename = "contextVersion", skip_serializing_if = "Option::is_none")]
    context_version: Option<u64>,
}

/// Why a turn stopped early.
#[derive(Debug)]
enum TurnError {
    /// The socket is gone; the session ends.
    Closed,
    /// One emit failed (buffer full); the turn is abandoned, the session goes on.
    Send,
}

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
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = run_turn(&socket, &info, &shared, &mut rng, &input, fault) => r,
        };
        match result {
            Ok(()) | Err(TurnError::Send) => {}
            Err(TurnError::Closed) => break,
        }
    }
}

async fn run_turn(
    socket: &SocketRef,
    info: &SessionInfo,
    shared: &Shared,
    rng: &mut StdRng,
    input: &Value,
    fault: Option<TurnFault>,
) -> Result<(), TurnError> {
    let config = &shared.config;
    if !matches_session(input, info) {
        bump(&shared.counters.input_mismatches);
    }
    let stall_wait = config.stall.map_or(std::time::Duration::ZERO, |stall| {
        let since = shared.started.elapsed();
        let end = stall.at.as_duration() + stall.duration.as_duration();
        if since >= stall.at.as_duration() && since < end {
            end - since
        } else {
            std::time::Duration::ZERO
        }
    });
    let degraded = config.degrade.map_or(std::time::Duration::ZERO, |d| {
        let active = shared
            .counters
            .active_sessions
            .load(std::sync::atomic::Ordering::Relaxed);
        let over = u32::try_from(active.saturating_sub(d.above_sessions)).unwrap_or(u32::MAX);
        d.per_session.as_duration().saturating_mul(over)
    });
    let delay = stall_wait + degraded + config.delay.sample(rng);
    if let Ok(mut h) = shared.injected.lock() {
        h.saturating_record(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX).max(1));
    }
    pause(delay).await;
    typing(socket, shared, "typingOn")?;
    if fault == Some(TurnFault::OutputError) {
        return output_error(socket, info, shared);
    }
    let text = input.get("text").and_then(Value::as_str).unwrap_or("");
    let echo = input.get("data").unwrap_or(&Value::Null);
    let scripted = if config.replies.is_empty() {
        None
    } else {
        super::script::reply_for(&config.replies, text)
    };
    let empty = Value::Object(serde_json::Map::new());
    let count = scripted.as_ref().map_or(config.outputs, |r| r.outputs);
    if count == 0 && fault == Some(TurnFault::DisconnectMidTurn) {
        return disconnect_mid_turn(socket, shared);
    }
    for i in 0..count {
        if i > 0 {
            pause(config.output_gap.sample(rng)).await;
        }
        let n = shared.next_trace.fetch_add(1, Ordering::Relaxed) + 1;
        let (text, data) = match &scripted {
            Some(reply) => (
                reply.text.clone(),
                Payload::Scripted(reply.data.as_ref().unwrap_or(&empty)),
            ),
            None => (
                format!("You said: {text}"),
                Payload::Echo(Echo {
                    echo,
                    emulator: true,
                    context_version: shared.contexts.version_of(&info.session_id),
                }),
            ),
        };
        let output = Output {
            kind: "output",
            data: OutputData {
                text,
                data,
                source: "bot",
                trace_id: format!("trace-{n}"),
            },
        };
        match config.faults.ack_wait {
            Some(wait) if info.emit_with_ack => {
                emit_and_wait(socket, shared, &output, wait.delay.as_duration()).await?;
            }
            _ => emit(socket, shared, "output", &output, info.emit_with_ack)?,
        }
        bump(&shared.counters.outputs);
        if i == 0 && fault == Some(TurnFault::DisconnectMidTurn) {
            return disconnect_mid_turn(socket, shared);
        }
    }
    typing(socket, shared, "typingOff")?;
    if fault == Some(TurnFault::NoFinalPing) {
        shared.counters.faults.fired(Fault::NoFinalPing);
        return Ok(());
    }
    let final_ping = FinalPing { kind: "regular" };
    emit(socket, shared, "finalPing", &final_ping, info.emit_with_ack)?;
    bump(&shared.counters.turns);
    Ok(())
}

/// `typingStatus` with `status`, when the emulator is set to send typing indicators.
fn typing(socket: &SocketRef, shared: &Shared, status: &'static str) -> Result<(), TurnError> {
    if shared.config.typing {
        emit(socket, shared, "typingStatus", &Typing { status }, false)?;
    }
    Ok(())
}

/// Fault `disconnect_mid_turn`: leaves the namespace (`41`); the session ends.
fn disconnect_mid_turn(socket: &SocketRef, shared: &Shared) -> Result<(), TurnError> {
    shared.counters.faults.fired(Fault::DisconnectMidTurn);
    let _ = socket.clone().disconnect();
    Err(TurnError::Closed)
}

/// Fault `output_error`: one `output` of type error, typingOff, and a
/// finalPing of type error (the typingOn and the delay came before).
fn output_error(socket: &SocketRef, info: &SessionInfo, shared: &Shared) -> Result<(), TurnError> {
    let error = serde_json::json!({
        "type": "error",
        "data": {"error": {"message": ERROR_MESSAGE}},
    });
    emit(socket, shared, "output", &error, info.emit_with_ack)?;
    typing(socket, shared, "typingOff")?;
    // Counted before the finalPing, so a client that saw it sees the count.
    shared.counters.faults.fired(Fault::OutputError);
    let final_ping = FinalPing { kind: "error" };
    emit(socket, shared, "finalPing", &final_ping, info.emit_with_ack)?;
    bump(&shared.counters.turns);
    Ok(())
}

/// `data.error.message` of the `output_error` fault's output.
pub(crate) const ERROR_MESSAGE: &str = "emulated bot error (faults.output_error)";

/// `ack_wait`: emits an output with an ack request and waits for the ack
/// (bounded by socketioxide's `ack_timeout`), then `delay`.
async fn emit_and_wait<T: Serialize + ?Sized>(
    socket: &SocketRef,
    shared: &Shared,
    output: &T,
    delay: std::time::Duration,
) -> Result<(), TurnError> {
    let reply = socket
        .emit_with_ack::<T, Value>("output", output)
        .map_err(|e| send_error(shared, e))?;
    bump(&shared.counters.acks_requested);
    match reply.await {
        Ok(_) | Err(AckError::Decode(_)) => bump(&shared.counters.acks_received),
        Err(_) => bump(&shared.counters.acks_missed),
    }
    shared.counters.faults.fired(Fault::AckWait);
    pause(delay).await;
    Ok(())
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

/// True unless the input names another session, user or URL token than the
/// connection (absent fields are not compared).
fn matches_session(input: &Value, info: &SessionInfo) -> bool {
    let same = |key: &str, expected: &str| {
        input
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(|v| v == expected)
    };
    same("sessionId", &info.session_id)
        && same("userId", &info.user_id)
        && same("URLToken", &info.url_token)
}

async fn pause(d: std::time::Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
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
