//! A minimal Engine.IO 3/4 + Socket.IO server for connections the HTTP gate
//! picked for a frame-level fault (`close_mid_turn`, `garbage_frame`,
//! `truncated_frame`, `oversized_frame`, `no_pong`; see [`super::faults`]),
//! which socketioxide cannot produce.
//!
//! It speaks just enough of docs/protocol.md §1 for a client to get through the
//! handshake and run turns: the open packet with the configured ping interval
//! and timeout, `40` (EIO4: after the client's `40`, answered with
//! `40{"sid":…}`), `42["endpoint-ready"]`, heartbeats (EIO3: answers client
//! pings; EIO4: pings every pingInterval), and the bot turn as [`super::bot`]
//! plans it for every session (delay with stall and degrade, typing, outputs
//! with context version, finalPing, per-turn faults, `ack_wait`; ack requests
//! with `emitWithAck=true`). The frame fault fires on the first turn, right
//! after its first output (after typingOn when `outputs: 0`), in place of that
//! turn's own fault; `no_pong` instead withholds every heartbeat while turns
//! go on normally. The server closes a connection silent for twice
//! pingInterval + pingTimeout, so a client that vanished frees it.

use super::bot::{self, TurnError, TurnPlan};
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
use serde::Serialize;
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
/// Ack ids from the client waiting for an `ack_wait` output to read them.
const ACK_QUEUE: usize = 64;

/// One connection the gate handed over.
#[derive(Debug, Clone)]
pub(crate) struct RawSession {
    pub fault: RawFault,
    pub eio: Eio,
    pub info: SessionInfo,
    /// Seed of the session's per-turn fault draws (the connection plan's).
    pub turn_seed: u64,
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
    /// Leave the namespace (`41`), then drop the connection.
    Leave,
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
    let (ack_tx, ack_rx) = mpsc::channel::<u64>(ACK_QUEUE);
    let seed = config
        .seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let bot = tokio::spawn(bot(
        in_rx,
        RawSink {
            out: out_tx,
            acks: ack_rx,
            next_id: 0,
            shared: shared.clone(),
        },
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
                        } else if ws.send(Message::text(frame::pong_for(payload))).await.is_err() {
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
                        let input = args
                            .first()
                            .and_then(|raw| serde_json::from_str(raw.get()).ok())
                            .unwrap_or(Value::Null);
                        match in_tx.try_send(input) {
                            Ok(()) => bump(&shared.counters.inputs),
                            Err(_) => bump(&shared.counters.bad_inputs),
                        }
                    }
                    EnginePacket::Message(SocketPacket::Ack { id, .. }) => {
                        bump(&shared.counters.acks_received);
                        // Only an `ack_wait` output reads it; full = nobody waits.
                        let _ = ack_tx.try_send(id);
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
                Out::Leave => {
                    let _ = ws.send(Message::text(frame::DISCONNECT)).await;
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
fn event<T: Serialize>(name: &str, arg: &T, id: Option<u64>) -> String {
    let id = id.map(|id| id.to_string()).unwrap_or_default();
    let arg = serde_json::to_string(arg).unwrap_or_else(|_| "null".to_string());
    format!("42{id}[{},{arg}]", json!(name))
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

/// Serves the session's inputs one by one, each turn as [`super::bot`] plans
/// it; the frame fault (if any) goes into the first turn's plan.
async fn bot(
    mut inputs: mpsc::Receiver<Value>,
    mut sink: RawSink,
    session: RawSession,
    shared: Arc<Shared>,
    mut rng: StdRng,
) {
    let mut fault_rng = StdRng::seed_from_u64(session.turn_seed);
    let mut frame_fault = Some(session.fault).filter(|f| f.in_turn());
    while let Some(input) = inputs.recv().await {
        let fault = shared.config.faults.roll_turn(&mut fault_rng);
        let plan = TurnPlan::new(
            &shared,
            &session.info,
            &input,
            &mut rng,
            fault,
            frame_fault.take(),
        );
        if bot::play(&plan, &mut sink, &shared, &session.info)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A turn played as frames handed to the connection task.
struct RawSink {
    out: mpsc::Sender<Out>,
    /// Ack ids the client sent.
    acks: mpsc::Receiver<u64>,
    next_id: u64,
    shared: Arc<Shared>,
}

impl RawSink {
    async fn send(&mut self, out: Out) -> Result<(), TurnError> {
        self.out.send(out).await.map_err(|_| TurnError::Closed)
    }

    /// Writes an event, with the next ack id when `ack`; returns the id.
    async fn event<T: Serialize>(
        &mut self,
        name: &str,
        data: &T,
        ack: bool,
    ) -> Result<Option<u64>, TurnError> {
        let id = ack.then(|| {
            self.next_id += 1;
            self.next_id - 1
        });
        if id.is_some() {
            bump(&self.shared.counters.acks_requested);
        }
        self.send(Out::Frame(event(name, data, id), None)).await?;
        Ok(id)
    }
}

impl bot::Sink for RawSink {
    async fn emit<T: Serialize>(
        &mut self,
        name: &str,
        data: &T,
        ack: bool,
    ) -> Result<(), TurnError> {
        self.event(name, data, ack).await.map(|_| ())
    }

    /// Waits for the ack id (bounded by `ack_timeout`); the connection task
    /// counts every ack received, this only the missing ones.
    async fn emit_and_wait<T: Serialize>(&mut self, output: &T) -> Result<(), TurnError> {
        // Acks of earlier events nobody waited for: dropped, so the queue has room.
        while self.acks.try_recv().is_ok() {}
        let Some(id) = self.event("output", output, true).await? else {
            return Ok(());
        };
        let limit = self.shared.config.ack_timeout.as_duration();
        let acked = tokio::time::timeout(limit, async {
            while let Some(got) = self.acks.recv().await {
                if got == id {
                    return true;
                }
            }
            false
        })
        .await;
        if acked != Ok(true) {
            bump(&self.shared.counters.acks_missed);
        }
        Ok(())
    }

    async fn disconnect(&mut self) {
        let _ = self.send(Out::Leave).await;
    }

    async fn raw_fault(&mut self, fault: RawFault) {
        if let Some(out) = fault_out(fault) {
            let _ = self.send(out).await;
        }
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
        assert_eq!(
            event("output", &json!({"type": "output"}), None),
            r#"42["output",{"type":"output"}]"#
        );
    }
}
