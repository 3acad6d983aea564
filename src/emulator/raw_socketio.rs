//! A minimal Engine.IO 3/4 + Socket.IO server for connections the HTTP gate
//! picked for a frame-level fault (`close_mid_turn`, `garbage_frame`,
//! `truncated_frame`, `oversized_frame`, `no_pong`; see [`super::faults`]),
//! which socketioxide cannot produce.
//!
//! It speaks just enough of docs/protocol.md §1 for a client to get through the
//! handshake and run turns: the open packet with the configured ping interval
//! and timeout, `40` (EIO4: after the client's `40`, answered with
//! `40{"sid":…}`), `42["endpoint-ready"]`, heartbeats (EIO3: answers client
//! pings; EIO4: pings every pingInterval), and the scripted bot turn (delay,
//! typingOn, outputs, typingOff, finalPing; ack requests with
//! `emitWithAck=true`; no context version, stall or degrade). The fault fires
//! on the first turn, right after its first output (after typingOn when
//! `outputs: 0`); `no_pong` instead withholds every heartbeat while turns go
//! on normally. The server closes a connection silent for twice
//! pingInterval + pingTimeout, so a client that vanished frees it.

use super::faults::{Fault, RawFault};
use super::session::SessionInfo;
use super::stats::bump;
use super::Shared;
use crate::protocol::socketio::frame::{self, EnginePacket, SocketPacket};
use crate::protocol::socketio::{Eio, MAX_MESSAGE_BYTES};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What `garbage_frame` writes: a text frame that is no Engine.IO packet.
pub(crate) const GARBAGE: &str = "garbage: this is not an Engine.IO packet";
/// What `truncated_frame` writes: an event cut off in the middle of its JSON.
pub(crate) const TRUNCATED: &str = r#"42["output",{"type":"outp"#;
/// Size of the `oversized_frame` frame: above the client's message limit.
pub(crate) const OVERSIZED_BYTES: usize = MAX_MESSAGE_BYTES + 64 * 1024;
/// Inputs a raw session may queue while a turn runs.
const INPUT_QUEUE: usize = 256;
/// Frames from the bot task waiting to be written.
const OUT_QUEUE: usize = 64;

/// One connection the gate handed over.
#[derive(Debug, Clone)]
pub(crate) struct RawSession {
    pub fault: RawFault,
    pub eio: Eio,
    pub info: SessionInfo,
}

/// Completes the WebSocket upgrade and serves the session in the background.
pub(crate) async fn upgrade(req: Request, session: RawSession, shared: Arc<Shared>) -> Response {
    let (mut parts, _body) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws
            .on_upgrade(move |socket| serve(socket, session, shared))
            .into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

/// What the bot task asks the connection task to do.
enum Out {
    /// Write a text frame; count `fault` as it is written.
    Frame(String, Option<Fault>),
    /// Drop the TCP connection without `41` or a close frame.
    Drop,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn serve(mut ws: WebSocket, session: RawSession, shared: Arc<Shared>) {
    let config = &shared.config;
    let interval = config.ping_interval.as_duration();
    let timeout = config.ping_timeout.as_duration();
    let index = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let sid = format!("raw-{index}");
    let mut open = json!({
        "sid": sid,
        "upgrades": [],
        "pingInterval": millis(interval),
        "pingTimeout": millis(timeout),
    });
    if session.eio == Eio::V4 {
        open["maxPayload"] = json!(1_000_000);
    }
    if ws.send(Message::text(format!("0{open}"))).await.is_err() {
        return;
    }
    let no_pong = session.fault == RawFault::NoPong;
    let mut joined = false;
    if session.eio == Eio::V3 {
        if join(&mut ws, &shared, None).await.is_err() {
            return;
        }
        joined = true;
    }

    let (in_tx, in_rx) = mpsc::channel::<Value>(INPUT_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(OUT_QUEUE);
    let seed = config
        .seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bot = tokio::spawn(bot(
        in_rx,
        out_tx,
        session.clone(),
        shared.clone(),
        StdRng::seed_from_u64(seed),
    ));

    let silence = interval.saturating_add(timeout).saturating_mul(2);
    let mut last_rx = Instant::now();
    // EIO4: the server pings; `None` once no_pong withholds them.
    let mut next_ping = (session.eio == Eio::V4).then(|| Instant::now() + interval);
    let mut pong_due: Option<Instant> = None;
    let mut pong_withheld = false;
    loop {
        let wake = [Some(last_rx + silence), next_ping, pong_due]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(last_rx + silence);
        tokio::select! {
            msg = ws.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => break, // close, error, binary or EOF
                };
                last_rx = Instant::now();
                let Ok(packet) = frame::parse(text.as_str()) else {
                    break; // like socket.io servers: a bad packet ends the session
                };
                match packet {
                    EnginePacket::Ping(payload) => {
                        if no_pong {
                            if !pong_withheld {
                                pong_withheld = true;
                                shared.counters.faults.fired(Fault::NoPong);
                            }
                        } else if ws.send(Message::text(frame::pong_for(&payload))).await.is_err() {
                            break;
                        }
                    }
                    EnginePacket::Pong(_) => pong_due = None,
                    EnginePacket::Close => break,
                    EnginePacket::Message(SocketPacket::Connect { nsp, .. })
                        if nsp == "/" && !joined =>
                    {
                        if join(&mut ws, &shared, Some(&sid)).await.is_err() {
                            break;
                        }
                        joined = true;
                    }
                    EnginePacket::Message(SocketPacket::Disconnect { .. }) => break,
                    EnginePacket::Message(SocketPacket::Event { name, args, .. })
                        if name == "processInput" && joined =>
                    {
                        let input = args.into_iter().next().unwrap_or(Value::Null);
                        match in_tx.try_send(input) {
                            Ok(()) => bump(&shared.counters.inputs),
                            Err(_) => bump(&shared.counters.bad_inputs),
                        }
                    }
                    EnginePacket::Message(SocketPacket::Ack { .. }) => {
                        bump(&shared.counters.acks_received);
                    }
                    _ => {}
                }
            }
            Some(out) = out_rx.recv() => match out {
                Out::Frame(text, fault) => {
                    // Counted before the write: the client may close (e.g. on
                    // an oversized header) before the write returns.
                    if let Some(fault) = fault {
                        shared.counters.faults.fired(fault);
                    }
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Out::Drop => {
                    shared.counters.faults.fired(Fault::CloseMidTurn);
                    break;
                }
            },
            () = tokio::time::sleep_until(wake) => {
                let now = Instant::now();
                if now >= last_rx + silence || pong_due.is_some_and(|due| now >= due) {
                    break;
                }
                if next_ping.is_some_and(|at| now >= at) {
                    if no_pong {
                        next_ping = None;
                        shared.counters.faults.fired(Fault::NoPong);
                    } else {
                        if ws.send(Message::text(frame::PING)).await.is_err() {
                            break;
                        }
                        next_ping = Some(now + interval);
                        pong_due = Some(now + timeout);
                    }
                }
            }
        }
    }
    bot.abort();
    if joined {
        shared.counters.session_closed();
    }
    // Dropping `ws` closes the TCP connection (no close frame).
}

/// Makes the session ready: `40` (EIO3) or `40{"sid":…}` (EIO4, answering
/// the client's `40`), then `42["endpoint-ready"]`.
async fn join(ws: &mut WebSocket, shared: &Shared, sid: Option<&str>) -> Result<(), axum::Error> {
    let connect = match sid {
        None => frame::CONNECT.to_string(),
        Some(sid) => format!("40{}", json!({ "sid": sid })),
    };
    ws.send(Message::text(connect)).await?;
    ws.send(Message::text(r#"42["endpoint-ready"]"#)).await?;
    bump(&shared.counters.sessions);
    shared
        .counters
        .active_sessions
        .fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// `42[<id>]["name",<arg>]`.
fn event(name: &str, arg: &Value, id: Option<u64>) -> String {
    let id = id.map(|id| id.to_string()).unwrap_or_default();
    format!("42{id}{}", json!([name, arg]))
}

/// The fault's frame, written right after the first output of the first turn.
fn fault_out(fault: RawFault) -> Option<Out> {
    let frame = |text: String, f| Some(Out::Frame(text, Some(f)));
    match fault {
        RawFault::CloseMidTurn => Some(Out::Drop),
        RawFault::GarbageFrame => frame(GARBAGE.to_string(), Fault::GarbageFrame),
        RawFault::TruncatedFrame => frame(TRUNCATED.to_string(), Fault::TruncatedFrame),
        RawFault::OversizedFrame => {
            let head = r#"42["output",{"type":"output","data":{"text":""#;
            let tail = r#""}}]"#;
            let fill = OVERSIZED_BYTES.saturating_sub(head.len() + tail.len());
            frame(
                format!("{head}{}{tail}", "x".repeat(fill)),
                Fault::OversizedFrame,
            )
        }
        RawFault::NoPong => None,
    }
}

/// Serves the session's inputs one by one; fires the frame fault on the first turn.
async fn bot(
    mut inputs: mpsc::Receiver<Value>,
    out: mpsc::Sender<Out>,
    session: RawSession,
    shared: Arc<Shared>,
    mut rng: StdRng,
) {
    let config = &shared.config;
    let ack = session.info.emit_with_ack;
    let mut next_id = 0u64;
    let mut pending_fault = fault_out(session.fault);
    let mut send = |name: &str, arg: Value, with_ack: bool| {
        let id = with_ack.then(|| {
            next_id += 1;
            next_id - 1
        });
        if id.is_some() {
            bump(&shared.counters.acks_requested);
        }
        Out::Frame(event(name, &arg, id), None)
    };
    while let Some(input) = inputs.recv().await {
        pause(config.delay.sample(&mut rng)).await;
        let text = input.get("text").and_then(Value::as_str).unwrap_or("");
        let echo = input.get("data").cloned().unwrap_or(Value::Null);
        let mut frames = Vec::new();
        if config.typing {
            frames.push(send("typingStatus", json!({"status": "typingOn"}), false));
        }
        if config.outputs == 0 {
            if let Some(fault) = pending_fault.take() {
                frames.push(fault);
                flush(&out, frames).await;
                return;
            }
        }
        for i in 0..config.outputs {
            if i > 0 {
                pause(config.output_gap.sample(&mut rng)).await;
            }
            let n = shared.next_trace.fetch_add(1, Ordering::Relaxed) + 1;
            let output = json!({
                "type": "output",
                "data": {
                    "text": format!("You said: {text}"),
                    "data": {"echo": echo, "emulator": true},
                    "source": "bot",
                    "traceId": format!("trace-{n}"),
                },
            });
            frames.push(send("output", output, ack));
            bump(&shared.counters.outputs);
            if let Some(fault) = pending_fault.take() {
                frames.push(fault);
                flush(&out, frames).await;
                return;
            }
            if !flush(&out, std::mem::take(&mut frames)).await {
                return;
            }
        }
        if config.typing {
            frames.push(send("typingStatus", json!({"status": "typingOff"}), false));
        }
        frames.push(send("finalPing", json!({"type": "regular"}), ack));
        if !flush(&out, frames).await {
            return;
        }
        bump(&shared.counters.turns);
    }
}

/// Hands frames to the connection task; false once it is gone.
async fn flush(out: &mpsc::Sender<Out>, frames: Vec<Out>) -> bool {
    for f in frames {
        if out.send(f).await.is_err() {
            return false;
        }
    }
    true
}

async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_frames_break_the_client_parser() {
        assert!(frame::parse(GARBAGE).is_err());
        assert!(frame::parse(TRUNCATED).is_err());
        let Some(Out::Frame(big, Some(Fault::OversizedFrame))) =
            fault_out(RawFault::OversizedFrame)
        else {
            panic!("oversized frame expected");
        };
        assert_eq!(big.len(), OVERSIZED_BYTES);
        assert!(big.len() > MAX_MESSAGE_BYTES);
        // Well-formed apart from its size.
        assert!(frame::parse(&big).is_ok());
        assert!(matches!(fault_out(RawFault::CloseMidTurn), Some(Out::Drop)));
        assert!(fault_out(RawFault::NoPong).is_none());
    }

    #[test]
    fn events_carry_ack_ids() {
        assert_eq!(
            event("finalPing", &json!({"type":"regular"}), Some(3)),
            r#"423["finalPing",{"type":"regular"}]"#
        );
        assert_eq!(
            event("endpoint-ready", &json!(null), None),
            r#"42["endpoint-ready",null]"#
        );
    }
}
