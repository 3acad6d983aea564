//! One Socket.IO Endpoint session over one WebSocket (docs/protocol.md §1): the
//! socket URL, the Engine.IO/Socket.IO handshake up to `endpoint-ready`,
//! heartbeats (EIO3: the client pings; EIO4: the client answers server pings),
//! immediate empty acks, and the turn state machine.
//!
//! One task owns a [`Connection`]; there is no background task. Heartbeats and
//! acks are served whenever the connection is being read: inside
//! [`Connection::connect`], [`Connection::turn`] and [`Connection::idle`].
//! Between those calls nothing is read, so callers should not leave a
//! connection unread for longer than the server's pingInterval + pingTimeout.
//!
//! The WebSocket itself (URL parsing, TCP, TLS, upgrade, error mapping) is
//! [`crate::protocol::ws`]; every timer runs on `tokio::time`.

use super::event::{error_text, EventArg};
use super::frame::{
    self, EnginePacket, FrameError, HandshakeIds, OpenInfo, ProcessInputFrames, SocketPacket,
};
use super::{
    ConnectError, ConnectOptions, DisconnectKind, Disconnected, Eio, Output, ProcessInput, Turn,
    TurnOutcome, WireCounters,
};
use crate::protocol::ws::{self, deadline_in, FailureKind, OpenError, Ws};
use futures_util::{FutureExt, SinkExt, StreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

/// Largest WebSocket message (and frame) accepted from the server. Larger ones
/// are a protocol error that ends the connection.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Most bytes waiting to be written per connection: one largest message plus
/// slack. A server that stops reading (while flooding pings, whose pongs
/// queue up) fails the connection here instead of growing it without bound.
pub const MAX_WRITE_BUFFER_BYTES: usize = MAX_MESSAGE_BYTES + ws::WRITE_SLACK_BYTES;
/// Limit for writing one heartbeat or ack.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for the whole of [`Connection::close`].
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// `channel` sent when [`ProcessInput::channel`] is empty (the official default).
pub const DEFAULT_CHANNEL: &str = "socket-client";

/// `encodeURIComponent`: everything but `A-Za-z0-9-_.!~*'()` is escaped.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Where one session connects: the full WebSocket URL and the TCP peer it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketUrl {
    /// `ws(s)://host[:port][/prefix]/socket.io/?…`
    pub url: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// `encodeURIComponent(encodeURIComponent(value))`, as the official client does.
pub fn encode_twice(value: &str) -> String {
    let once = utf8_percent_encode(value, URI_COMPONENT).to_string();
    utf8_percent_encode(&once, URI_COMPONENT).to_string()
}

/// Builds the Socket.IO WebSocket URL exactly like the official client.
///
/// `endpoint_url` may use `http`, `https`, `ws` or `wss`, may carry a path
/// prefix `P` (→ `P/socket.io/`) and may end with `/<url_token>` (stripped).
pub fn socket_url(opts: &ConnectOptions) -> Result<SocketUrl, ConnectError> {
    let raw = opts.endpoint_url.trim();
    let bad = |why: &str| {
        ConnectError::BadUrl(format!(
            "{:?}: {why} (expected http(s)://host[:port][/prefix][/<URLToken>])",
            crate::secret::scrub_text(raw, &[&opts.url_token])
        ))
    };
    let endpoint = ws::parse(raw).map_err(|why| bad(&why))?;
    if endpoint.url.query().is_some() {
        return Err(bad("remove the query string / fragment"));
    }
    let url = &endpoint.url;
    let mut segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if !opts.url_token.is_empty() && segments.last() == Some(&opts.url_token.as_str()) {
        segments.pop();
    }
    let prefix: String = segments.iter().map(|s| format!("/{s}")).collect();
    let eio = u8::from(opts.eio);
    let query = if opts.inner_handshake {
        format!("handshake=true&EIO={eio}&transport=websocket")
    } else {
        format!(
            "sessionId={}&urlToken={}&userId={}&testMode={}&emitWithAck={}&EIO={eio}&transport=websocket",
            encode_twice(&opts.session_id),
            encode_twice(&opts.url_token),
            encode_twice(&opts.user_id),
            opts.test_mode,
            opts.emit_with_ack,
        )
    };
    // Built as text: `Url::set_query` would re-encode `'`, which
    // encodeURIComponent keeps.
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    Ok(SocketUrl {
        url: format!("{}://{authority}{prefix}/socket.io/?{query}", url.scheme()),
        host: endpoint.host,
        port: endpoint.port,
        tls: endpoint.tls,
    })
}

/// TCP connect (TCP_NODELAY), optional TLS, WebSocket upgrade.
async fn open_socket(target: &SocketUrl, url_token: &str) -> Result<Ws, ConnectError> {
    let target = ws::Target {
        url: &target.url,
        host: &target.host,
        port: target.port,
        tls: target.tls,
    };
    ws::open_ws(target, ws::ws_config(MAX_MESSAGE_BYTES), &[url_token])
        .await
        .map_err(ConnectError::from)
}

impl From<OpenError> for ConnectError {
    fn from(e: OpenError) -> ConnectError {
        match e {
            OpenError::Unreachable {
                detail,
                fd_exhausted: true,
            } => ConnectError::FdExhausted(detail),
            OpenError::Unreachable { detail, .. } => ConnectError::Refused(detail),
            OpenError::NoDelay(detail) | OpenError::Closed(detail) => ConnectError::Closed(detail),
            OpenError::Tls(detail) => ConnectError::Tls(detail),
            OpenError::Http { status } => ConnectError::Http { status },
            OpenError::BadUrl(detail) => ConnectError::BadUrl(detail),
            OpenError::Protocol(detail) => ConnectError::Protocol(detail),
        }
    }
}

/// Why reading or writing failed: a [`Disconnected`] (kind + details), which
/// becomes a `ConnectError` during the handshake.
type Fail = Disconnected;

fn fail(kind: DisconnectKind, detail: impl Into<String>) -> Fail {
    Disconnected::new(kind, detail)
}

fn protocol(detail: impl Into<String>) -> Fail {
    fail(DisconnectKind::ProtocolError, detail)
}

/// A handshake failure as a `ConnectError` (a write timeout names `stage`).
fn into_connect(f: Fail, stage: &'static str, after: Duration) -> ConnectError {
    use DisconnectKind as K;
    match f.kind {
        K::WriteTimeout => ConnectError::Timeout { stage, after },
        K::ProtocolError | K::FrameTooLarge => ConnectError::Protocol(f.detail),
        K::NamespaceDisconnect | K::EngineClose | K::TransportClosed | K::HeartbeatTimeout => {
            ConnectError::Closed(f.detail)
        }
    }
}

/// A write's or flush's result within its time limit, as a failure if it
/// did not complete.
fn written_or_failed(
    r: Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>,
) -> Result<(), Fail> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(from_ws(e)),
        Err(_) => Err(fail(
            DisconnectKind::WriteTimeout,
            "write timed out (server not reading)",
        )),
    }
}

/// A tungstenite read/write error as a disconnect.
fn from_ws(e: tungstenite::Error) -> Fail {
    use DisconnectKind as K;
    let f = ws::Failure::new(e, &[]);
    match f.kind {
        FailureKind::Closed | FailureKind::Io | FailureKind::Reset => {
            fail(K::TransportClosed, f.detail)
        }
        FailureKind::WriteBufferFull => fail(
            K::WriteTimeout,
            format!("more than {MAX_WRITE_BUFFER_BYTES} bytes waiting to be written (server not reading)"),
        ),
        FailureKind::TooLarge => fail(
            K::FrameTooLarge,
            format!("{} (limit {MAX_MESSAGE_BYTES} bytes)", f.detail),
        ),
        FailureKind::Other => protocol(f.detail),
    }
}

/// What one read step produced.
enum Got {
    Open(OpenInfo),
    /// An Engine.IO message (`4…`): a Socket.IO packet, parsed by the caller
    /// with [`parse_message`] (the packet borrows from this text).
    Message(Utf8Bytes, Instant),
    Deadline,
}

/// The Socket.IO packet of an Engine.IO message read by [`Connection::read`],
/// an event's first argument read as an [`EventArg`] in the same pass.
fn parse_message(text: &Utf8Bytes) -> Result<Packet<'_>, Fail> {
    let payload = frame::socket_payload(text.as_str()).unwrap_or_default();
    frame::parse_socket_as(payload).map_err(unparsable)
}

type Packet<'a> = SocketPacket<'a, EventArg<'a>>;

fn unparsable(e: FrameError) -> Fail {
    protocol(format!("unparsable frame: {e}"))
}

/// An output's `data.data` that the frame layer accepted but reading it
/// again did not (a lone UTF-16 surrogate escape in a string): the same
/// protocol error as JSON the frame layer refuses.
fn unparsable_event(e: serde_json::Error) -> Fail {
    unparsable(FrameError::BadJson {
        packet: "event",
        reason: e.to_string(),
    })
}

/// A Socket.IO event on `/` (already acked, or its ack queued, if it asked for one),
/// borrowing from the message it came in.
struct Event<'a> {
    name: Cow<'a, str>,
    /// The first argument (without one: no fields).
    arg: EventArg<'a>,
    at: Instant,
}

/// What an event means for a turn.
enum Kind<'a> {
    Output {
        text: Option<Cow<'a, str>>,
        context_version: Option<u64>,
        /// `data.data` as received (parsed only when the turn keeps it).
        data: Option<&'a RawValue>,
    },
    OutputError(String),
    Final(Result<(), String>),
    Exception(String),
    Known,
    Unknown,
}

/// What `ev` means.
fn classify<'a>(ev: &Event<'a>) -> Result<Kind<'a>, Fail> {
    let arg = &ev.arg;
    Ok(match ev.name.as_ref() {
        "output" => match arg.kind.as_deref() {
            Some("output") => Kind::Output {
                context_version: arg.data.context_version().map_err(unparsable_event)?,
                text: arg.data.text.clone(),
                data: arg.data.data,
            },
            Some("error") => Kind::OutputError(error_message(
                error_text(&arg.data.error, &arg.data.message),
                "output of type error",
            )),
            Some("finalPing") => Kind::Final(Ok(())),
            _ => Kind::Unknown,
        },
        "finalPing" => match arg.kind.as_deref() {
            Some("error") => Kind::Final(Err(error_message(
                error_text(&arg.error, &arg.message),
                "finalPing of type error",
            ))),
            _ => Kind::Final(Ok(())),
        },
        "exception" => Kind::Exception(error_message(
            error_text(&arg.error, &arg.message),
            "exception",
        )),
        "typingStatus" | "endpoint-ready" | "handshake" => Kind::Known,
        _ => Kind::Unknown,
    })
}

/// An error event's message (`error.message`, `error`, `message`), else `fallback`.
fn error_message(found: Option<&str>, fallback: &str) -> String {
    found.unwrap_or(fallback).to_owned()
}

/// Heartbeat settings from the open packet.
#[derive(Debug, Clone, Copy)]
struct Heartbeat {
    interval: Duration,
    timeout: Duration,
}

/// An open, ready (`endpoint-ready` received) Endpoint session.
pub struct Connection {
    ws: Ws,
    eio: Eio,
    url_token: String,
    user_id: String,
    session_id: String,
    test_mode: bool,
    emit_with_ack: bool,
    inner_handshake: bool,
    output_limits: super::OutputLimits,
    /// This session's `processInput` frames (its ids encoded once).
    process_input: ProcessInputFrames,
    /// Known once the open packet arrived.
    heartbeat: Option<Heartbeat>,
    /// EIO4: when the last server ping (or the open packet) arrived.
    last_server_ping: Instant,
    /// EIO3 only: when the next client ping is due (`None` while a pong is awaited).
    next_ping: Option<Instant>,
    /// EIO3 only: the pong for our last ping must arrive before this.
    pong_due: Option<Instant>,
    /// Set once the connection failed; every later call reports it.
    dead: Option<Disconnected>,
    counters: WireCounters,
    /// Acks written to the WebSocket's buffer but not yet flushed
    /// ([`Ack::Queued`]).
    acks_queued: bool,
}

/// When an ack leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// At once (handshake, between turns).
    Now,
    /// With the next flush: before the connection next waits for a frame, or
    /// at the end of the turn. The acks for the events of one read (an
    /// `output` and the `finalPing` right behind it) then leave in one write,
    /// one system call and one wake-up of the server instead of two.
    Queued,
}

impl Connection {
    /// Opens the WebSocket, completes the Engine.IO/Socket.IO handshake and waits
    /// for `endpoint-ready`, all within `opts.connect_timeout`. Timeouts name the
    /// stage: "websocket", "open packet", "namespace connect", "inner handshake"
    /// (only with `inner_handshake`), "endpoint-ready".
    pub async fn connect(opts: &ConnectOptions) -> Result<Connection, ConnectError> {
        let target = socket_url(opts)?;
        let after = opts.connect_timeout;
        let deadline = deadline_in(after);
        let timeout = |stage| ConnectError::Timeout { stage, after };
        let ws = tokio::time::timeout_at(deadline, open_socket(&target, &opts.url_token))
            .await
            .map_err(|_| timeout("websocket"))??;
        let mut conn = Connection {
            ws,
            eio: opts.eio,
            url_token: opts.url_token.clone(),
            user_id: opts.user_id.clone(),
            session_id: opts.session_id.clone(),
            test_mode: opts.test_mode,
            emit_with_ack: opts.emit_with_ack,
            inner_handshake: opts.inner_handshake,
            output_limits: opts.output_limits,
            process_input: ProcessInputFrames::new(
                &opts.url_token,
                &opts.user_id,
                &opts.session_id,
            ),
            heartbeat: None,
            last_server_ping: Instant::now(),
            next_ping: None,
            pong_due: None,
            dead: None,
            counters: WireCounters::default(),
            acks_queued: false,
        };

        let stage = "open packet";
        match conn.read(deadline).await {
            Err(f) => return Err(into_connect(f, stage, after)),
            Ok(Got::Deadline) => return Err(timeout(stage)),
            Ok(Got::Message(..)) => {
                return Err(ConnectError::Protocol(
                    "Socket.IO packet before the Engine.IO open packet".into(),
                ))
            }
            Ok(Got::Open(info)) => conn.start_heartbeat(&info),
        }

        if conn.eio == Eio::V4 {
            conn.send(frame::CONNECT.into(), deadline)
                .await
                .map_err(|f| into_connect(f, "namespace connect", after))?;
        }
        let mut nsp_connected = false;
        let mut handshake_seen = !opts.inner_handshake;
        loop {
            let stage = if !nsp_connected {
                "namespace connect"
            } else if !handshake_seen {
                "inner handshake"
            } else {
                "endpoint-ready"
            };
            let (text, at) = match conn.read(deadline).await {
                Err(f) => return Err(into_connect(f, stage, after)),
                Ok(Got::Deadline) => return Err(timeout(stage)),
                Ok(Got::Open(_)) => {
                    return Err(ConnectError::Protocol(
                        "second Engine.IO open packet".into(),
                    ))
                }
                Ok(Got::Message(text, at)) => (text, at),
            };
            let packet = parse_message(&text).map_err(|f| into_connect(f, stage, after))?;
            if let SocketPacket::Connect { nsp, .. } = &packet {
                nsp_connected |= *nsp == "/";
                continue;
            }
            let (ack, event) = conn
                .take_socket(packet, at)
                .map_err(|f| into_connect(f, stage, after))?;
            conn.send_ack(ack, Ack::Now)
                .await
                .map_err(|f| into_connect(f, stage, after))?;
            let Some(ev) = event else { continue };
            match ev.name.as_ref() {
                "endpoint-ready" => return Ok(conn),
                "handshake" => handshake_seen = true,
                _ => conn
                    .count_outside_turn(&ev)
                    .map_err(|f| into_connect(f, stage, after))?,
            }
        }
    }

    /// Sends one `processInput` and reads until `finalPing` or `timeout`
    /// (counted from the call). Every server event asking for an ack is acked
    /// with `43<id>[]` before the connection next waits for a frame or when
    /// the turn ends, so the acks of events read together leave in one write.
    ///
    /// The turn ends on `finalPing` (or legacy `output` of type finalPing),
    /// `exception`, the timeout, or a disconnect. An `output` of type error
    /// marks the outcome `BotError` but the turn still waits for `finalPing`,
    /// so that a late finalPing is not taken for the next turn's; if none
    /// comes, the outcome stays `BotError` (not `Timeout`).
    pub async fn turn(&mut self, input: &ProcessInput<'_>, timeout: Duration) -> Turn {
        let turn = self.exchange(input, timeout).await;
        // The acks of the turn's last read leave now, together; if they
        // cannot, the next step finds the connection dead. A connection that
        // died in the turn keeps its first cause.
        if self.dead.is_none() {
            if let Err(f) = self.flush_queued_acks().await {
                self.kill(f);
            }
        }
        turn
    }

    /// [`Connection::turn`] but for the acks still queued at its end.
    async fn exchange(&mut self, input: &ProcessInput<'_>, timeout: Duration) -> Turn {
        let deadline = deadline_in(timeout);
        let mut turn = Turn {
            sent_at: Instant::now().into_std(),
            outputs: Vec::new(),
            outputs_received: 0,
            finished_at: None,
            outcome: TurnOutcome::Timeout,
        };
        let mut kept_bytes = 0usize;
        if let Some(cause) = &self.dead {
            turn.outcome = TurnOutcome::Disconnected(cause.clone());
            return turn;
        }
        let channel = if input.channel.is_empty() {
            DEFAULT_CHANNEL
        } else {
            input.channel
        };
        let text = self.process_input.frame(
            channel,
            input.reset_flow,
            &input.text,
            input.data.as_deref(),
        );
        // The clock starts before the frame is handed to the socket: the
        // server cannot have it earlier, so no turn is measured shorter than
        // the server took, even when this task is preempted around the write.
        turn.sent_at = Instant::now().into_std();
        if let Err(f) = self.send(text, deadline).await {
            turn.outcome = TurnOutcome::Disconnected(self.kill(f));
            return turn;
        }

        let mut bot_error: Option<String> = None;
        loop {
            let (text, at) = match self.read(deadline).await {
                Err(f) => {
                    turn.outcome = TurnOutcome::Disconnected(self.kill(f));
                    return turn;
                }
                Ok(Got::Deadline) => {
                    turn.outcome = bot_error.map_or(TurnOutcome::Timeout, TurnOutcome::BotError);
                    return turn;
                }
                Ok(Got::Open(_)) => {
                    let f = protocol("unexpected Engine.IO open packet");
                    turn.outcome = TurnOutcome::Disconnected(self.kill(f));
                    return turn;
                }
                Ok(Got::Message(text, at)) => (text, at),
            };
            let ev = match self.event_in(&text, at, Ack::Queued).await {
                Err(f) => {
                    turn.outcome = TurnOutcome::Disconnected(self.kill(f));
                    return turn;
                }
                Ok(None) => continue,
                Ok(Some(ev)) => ev,
            };
            let kind = match classify(&ev) {
                Ok(kind) => kind,
                Err(f) => {
                    turn.outcome = TurnOutcome::Disconnected(self.kill(f));
                    return turn;
                }
            };
            match kind {
                Kind::Output {
                    text,
                    context_version,
                    data,
                } => {
                    turn.outputs_received += 1;
                    // `data` counts as the JSON text received, kept or not.
                    let bytes = text.as_ref().map_or(0, |t| t.len())
                        + data.map_or(0, |raw| raw.get().len());
                    let limits = self.output_limits;
                    if !limits.admits(turn.outputs.len(), kept_bytes, bytes) {
                        turn.outcome = TurnOutcome::OutputsOverflow(format!(
                            "more than {} outputs or {} bytes of output text and data before finalPing",
                            limits.max_count, limits.max_bytes
                        ));
                        return turn;
                    }
                    let data = match data.filter(|_| input.keep_data) {
                        None => None,
                        Some(raw) => match serde_json::from_str::<Value>(raw.get()) {
                            Ok(data) => Some(data),
                            Err(e) => {
                                let f = unparsable_event(e);
                                turn.outcome = TurnOutcome::Disconnected(self.kill(f));
                                return turn;
                            }
                        },
                    };
                    kept_bytes += bytes;
                    turn.outputs.push(Output {
                        at: ev.at.into_std(),
                        text: text.map(Cow::into_owned),
                        context_version,
                        data,
                    });
                }
                Kind::OutputError(msg) => {
                    bot_error.get_or_insert(msg);
                }
                Kind::Final(result) => {
                    turn.finished_at = Some(ev.at.into_std());
                    turn.outcome = match (bot_error, result) {
                        (Some(msg), _) | (None, Err(msg)) => TurnOutcome::BotError(msg),
                        (None, Ok(())) => TurnOutcome::Ok,
                    };
                    return turn;
                }
                Kind::Exception(msg) => {
                    turn.outcome = TurnOutcome::BotError(msg);
                    return turn;
                }
                Kind::Known => {}
                Kind::Unknown => self.counters.unknown_events += 1,
            }
        }
    }

    /// Keeps the session alive (heartbeats, acks, unsolicited events) for `dur`.
    pub async fn idle(&mut self, dur: Duration) -> Result<(), Disconnected> {
        if let Some(cause) = &self.dead {
            return Err(cause.clone());
        }
        let deadline = deadline_in(dur);
        loop {
            let (text, at) = match self.read(deadline).await {
                Ok(Got::Deadline) => return Ok(()),
                Ok(Got::Message(text, at)) => (text, at),
                Ok(Got::Open(_)) => {
                    let f = protocol("unexpected Engine.IO open packet");
                    return Err(self.kill(f));
                }
                Err(f) => return Err(self.kill(f)),
            };
            let handled = match self.event_in(&text, at, Ack::Now).await {
                Ok(Some(ev)) => self.count_outside_turn(&ev),
                Ok(None) => Ok(()),
                Err(f) => Err(f),
            };
            if let Err(f) = handled {
                return Err(self.kill(f));
            }
        }
    }

    /// Leaves the namespace (`41`) and closes the WebSocket, within about 2 s
    /// whatever the server does. Returns the counters not yet taken.
    pub async fn close(mut self) -> WireCounters {
        let limit = deadline_in(CLOSE_TIMEOUT);
        let _ = tokio::time::timeout_at(limit, async {
            if self.dead.is_none() {
                let _ = self.send(frame::DISCONNECT.into(), limit).await;
            }
            let _ = self.ws.close(None).await;
            // Wait for the server's close frame or EOF (bounded by `limit`).
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        self.counters
    }

    /// Returns the counters accumulated since the last call and resets them.
    pub fn take_counters(&mut self) -> WireCounters {
        std::mem::take(&mut self.counters)
    }

    /// How long the connection may go unread without missing a heartbeat
    /// deadline: half the server's ping timeout, at most `cap`; zero before
    /// the open packet.
    pub fn unattended_for(&self, cap: Duration) -> Duration {
        self.heartbeat
            .map_or(Duration::ZERO, |hb| (hb.timeout / 2).min(cap))
    }

    /// The Engine.IO revision this connection speaks.
    pub fn eio(&self) -> Eio {
        self.eio
    }

    /// Why the connection died, once it has.
    pub fn disconnect_cause(&self) -> Option<&Disconnected> {
        self.dead.as_ref()
    }

    fn kill(&mut self, f: Fail) -> Disconnected {
        tracing::debug!(session = %self.session_id, cause = %f, "socket.io connection lost");
        self.dead = Some(f.clone());
        f
    }

    fn start_heartbeat(&mut self, info: &OpenInfo) {
        let now = Instant::now();
        self.heartbeat = Some(Heartbeat {
            interval: info.ping_interval,
            timeout: info.ping_timeout,
        });
        self.last_server_ping = now;
        if self.eio == Eio::V3 {
            self.next_ping = now.checked_add(info.ping_interval);
        }
    }

    fn count_outside_turn(&mut self, ev: &Event) -> Result<(), Fail> {
        match classify(ev)? {
            Kind::Output { .. } | Kind::OutputError(_) => self.counters.unsolicited_outputs += 1,
            Kind::Unknown => self.counters.unknown_events += 1,
            Kind::Final(_) | Kind::Exception(_) | Kind::Known => {}
        }
        Ok(())
    }

    /// Writes one text frame, and everything queued before it, before `limit`.
    async fn send(&mut self, text: String, limit: Instant) -> Result<(), Fail> {
        self.write(text, limit, true).await
    }

    /// Writes one text frame to the WebSocket before `limit`; with `flush`,
    /// flushes it and any queued acks to the socket.
    async fn write(&mut self, text: String, limit: Instant, flush: bool) -> Result<(), Fail> {
        let len = text.len() as u64;
        let message = Message::text(text);
        let written = if flush {
            tokio::time::timeout_at(limit, self.ws.send(message)).await
        } else {
            tokio::time::timeout_at(limit, self.ws.feed(message)).await
        };
        written_or_failed(written)?;
        self.counters.frames_sent += 1;
        self.counters.bytes_sent += len;
        // A flush writes out everything before it; only acks go unflushed.
        self.acks_queued = !flush;
        Ok(())
    }

    /// Flushes the acks queued with [`Ack::Queued`], if any.
    async fn flush_queued_acks(&mut self) -> Result<(), Fail> {
        if !self.acks_queued {
            return Ok(());
        }
        self.acks_queued = false;
        let flushed = tokio::time::timeout_at(deadline_in(WRITE_TIMEOUT), self.ws.flush()).await;
        written_or_failed(flushed)
    }

    /// Sends the ack an event asked for ([`Connection::take_socket`]), or
    /// queues it ([`Ack::Queued`]). Callers take the packet apart before
    /// awaiting this, so a waiting task holds only the event, not the packet
    /// as well (this wait is part of every idle VU task's size).
    async fn send_ack(&mut self, ack: Option<String>, when: Ack) -> Result<(), Fail> {
        if let Some(ack) = ack {
            let flush = when == Ack::Now;
            self.write(ack, deadline_in(WRITE_TIMEOUT), flush).await?;
            self.counters.acks_sent += 1;
        }
        Ok(())
    }

    /// The event on `/` in an Engine.IO message read outside the handshake,
    /// acked first (`when`) if it asked for an ack. Takes the message text,
    /// not the parsed packet, so the packet is gone before the ack is awaited.
    async fn event_in<'t>(
        &mut self,
        text: &'t Utf8Bytes,
        at: Instant,
        when: Ack,
    ) -> Result<Option<Event<'t>>, Fail> {
        let (ack, event) = self.take_socket(parse_message(text)?, at)?;
        self.send_ack(ack, when).await?;
        Ok(event)
    }

    /// The ack `packet` asks for (if any, to send with
    /// [`Connection::send_ack`]) and its event if it is on `/`. Namespace
    /// disconnects and connect errors are failures.
    fn take_socket<'t>(
        &mut self,
        packet: Packet<'t>,
        at: Instant,
    ) -> Result<(Option<String>, Option<Event<'t>>), Fail> {
        match packet {
            SocketPacket::Event {
                nsp,
                id,
                name,
                args,
            } => {
                let ack = match id {
                    Some(id) if name == "handshake" && self.inner_handshake => {
                        let ids = HandshakeIds {
                            user_id: &self.user_id,
                            session_id: &self.session_id,
                            url_token: &self.url_token,
                            test_mode: self.test_mode,
                            emit_with_ack: self.emit_with_ack,
                        };
                        Some(
                            frame::ack_with(nsp, id, &ids)
                                .map_err(|e| protocol(format!("encoding handshake ack: {e}")))?,
                        )
                    }
                    Some(id) => Some(frame::empty_ack(nsp, id)),
                    None => None,
                };
                if nsp != "/" {
                    self.counters.unknown_events += 1;
                    return Ok((ack, None));
                }
                let event = Event {
                    name,
                    arg: args.into_first().unwrap_or_default(),
                    at,
                };
                Ok((ack, Some(event)))
            }
            SocketPacket::Disconnect { nsp: "/" } => Err(fail(
                DisconnectKind::NamespaceDisconnect,
                "server disconnected the namespace (41)",
            )),
            SocketPacket::ConnectError { nsp: "/", data } => Err(protocol(format!(
                "server refused the namespace: {}",
                SocketPacket::connect_error_message(&data)
            ))),
            _ => Ok((None, None)),
        }
    }

    /// Reads until a Socket.IO packet or open packet arrives, or `deadline`.
    /// Serves heartbeats meanwhile: EIO3 pings every pingInterval and fails
    /// when a pong does not come within pingTimeout; EIO4 answers server pings
    /// and fails when none came for pingInterval + pingTimeout. Frames already
    /// received are read before a heartbeat deadline is judged, so a caller
    /// that left the connection unread for a while is not failed for it.
    async fn read(&mut self, deadline: Instant) -> Result<Got, Fail> {
        loop {
            let now = Instant::now();
            if let Some(at) = self.next_ping {
                if now >= at {
                    self.next_ping = None;
                    self.send(frame::PING.into(), deadline_in(WRITE_TIMEOUT))
                        .await?;
                    self.counters.heartbeats += 1;
                    self.pong_due = self
                        .heartbeat
                        .and_then(|hb| Instant::now().checked_add(hb.timeout));
                    continue;
                }
            }
            if now >= deadline {
                return Ok(Got::Deadline);
            }
            let heartbeat_due = self.heartbeat_due();
            let wake = [self.next_ping, heartbeat_due]
                .into_iter()
                .flatten()
                .fold(deadline, Instant::min);
            // With acks queued, a frame already here is read first (its
            // ack joins them); before waiting, they are flushed.
            let ready = if self.acks_queued {
                self.ws.next().now_or_never()
            } else {
                None
            };
            let msg = match ready {
                Some(msg) => msg,
                None => {
                    self.flush_queued_acks().await?;
                    let msg = tokio::select! {
                        biased;
                        msg = self.ws.next() => Some(msg),
                        () = tokio::time::sleep_until(wake) => None,
                    };
                    let Some(msg) = msg else {
                        // Nothing was waiting to be read: judge the heartbeat.
                        if heartbeat_due.is_some_and(|due| Instant::now() >= due) {
                            return Err(self.heartbeat_failure());
                        }
                        continue;
                    };
                    msg
                }
            };
            let now = Instant::now();
            let text = match msg {
                None => {
                    return Err(fail(
                        DisconnectKind::TransportClosed,
                        "connection closed by the server",
                    ))
                }
                Some(Err(e)) => return Err(from_ws(e)),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    return Err(protocol(
                        "unexpected binary WebSocket message (binary Socket.IO packets are not supported)",
                    ))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(fail(
                        DisconnectKind::TransportClosed,
                        match frame {
                            Some(f) => format!("server closed the WebSocket (code {})", f.code),
                            None => "server closed the WebSocket".into(),
                        },
                    ))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            };
            self.counters.frames_received += 1;
            self.counters.bytes_received += text.len() as u64;
            if frame::socket_payload(text.as_str()).is_some() {
                return Ok(Got::Message(text, now));
            }
            match frame::parse(text.as_str()).map_err(unparsable)? {
                EnginePacket::Open(info) => return Ok(Got::Open(info)),
                EnginePacket::Close => {
                    return Err(fail(
                        DisconnectKind::EngineClose,
                        "server sent Engine.IO close (1)",
                    ))
                }
                EnginePacket::Ping(payload) => {
                    self.last_server_ping = now;
                    self.send(frame::pong_for(payload), deadline_in(WRITE_TIMEOUT))
                        .await?;
                    self.counters.heartbeats += 1;
                }
                EnginePacket::Pong(_) => {
                    if let (Eio::V3, Some(hb)) = (self.eio, self.heartbeat) {
                        self.pong_due = None;
                        self.next_ping = now.checked_add(hb.interval);
                    }
                }
                // (Messages were returned above, unparsed.)
                EnginePacket::Message(_) | EnginePacket::Upgrade | EnginePacket::Noop => {}
            }
        }
    }

    /// When the heartbeat fails unless the server is heard from: EIO3 the
    /// pong deadline of our last ping, EIO4 the last server ping +
    /// pingInterval + pingTimeout. `None` before the open packet.
    fn heartbeat_due(&self) -> Option<Instant> {
        let hb = self.heartbeat?;
        match self.eio {
            Eio::V3 => self.pong_due,
            Eio::V4 => self
                .last_server_ping
                .checked_add(hb.interval.saturating_add(hb.timeout)),
        }
    }

    fn heartbeat_failure(&self) -> Fail {
        let hb = self.heartbeat.unwrap_or(Heartbeat {
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
        });
        let detail = match self.eio {
            Eio::V3 => format!(
                "no pong within pingTimeout ({} ms) of our ping",
                hb.timeout.as_millis()
            ),
            Eio::V4 => format!(
                "no server ping for pingInterval + pingTimeout ({} ms)",
                hb.interval.saturating_add(hb.timeout).as_millis()
            ),
        };
        fail(DisconnectKind::HeartbeatTimeout, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(endpoint: &str, eio: Eio) -> ConnectOptions {
        ConnectOptions {
            endpoint_url: endpoint.into(),
            url_token: "emulator-url-token".into(),
            user_id: "user@example.com".into(),
            session_id: "session 1/emulator".into(),
            eio,
            emit_with_ack: true,
            test_mode: false,
            inner_handshake: false,
            connect_timeout: Duration::from_secs(1),
            output_limits: super::super::OutputLimits::DEFAULT,
        }
    }

    fn path_and_query(url: &str) -> &str {
        let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    }

    // Request targets copied verbatim from tests/fixtures/wire.
    const FIXTURE_EIO3: &str = "/socket.io/?sessionId=session%25201%252Femulator&urlToken=emulator-url-token&userId=user%2540example.com&testMode=false&emitWithAck=true&EIO=3&transport=websocket";
    const FIXTURE_EIO4: &str = "/socket.io/?sessionId=session%25201%252Femulator&urlToken=emulator-url-token&userId=user%2540example.com&testMode=false&emitWithAck=true&EIO=4&transport=websocket";
    const FIXTURE_RAW_EIO3: &str = "ws://127.0.0.1:37211/socket.io/?sessionId=session%25201%252Femulator&urlToken=emulator-url-token&userId=user%2540example.com&testMode=false&emitWithAck=true&EIO=3&transport=websocket";

    #[test]
    fn url_matches_fixture_get_lines() {
        let u = socket_url(&opts("http://127.0.0.1:37211/emulator-url-token", Eio::V3));
        assert_eq!(
            u.as_ref().map(|u| u.url.as_str()).ok(),
            Some(FIXTURE_RAW_EIO3)
        );
        for (eio, want) in [(Eio::V3, FIXTURE_EIO3), (Eio::V4, FIXTURE_EIO4)] {
            for endpoint in [
                "https://endpoint.example.com/emulator-url-token",
                "https://endpoint.example.com/emulator-url-token/",
                "https://endpoint.example.com",
                "wss://endpoint.example.com/",
            ] {
                let u = socket_url(&opts(endpoint, eio));
                let got = u.as_ref().map(|u| path_and_query(&u.url)).ok();
                assert_eq!(got, Some(want), "{endpoint}");
            }
        }
    }

    #[test]
    fn url_schemes_ports_and_prefix() {
        let u = socket_url(&opts("https://h.example/p/q/emulator-url-token", Eio::V3));
        let u = u.ok();
        assert_eq!(u.as_ref().map(|u| u.tls), Some(true));
        assert_eq!(u.as_ref().map(|u| u.port), Some(443));
        assert!(u.as_ref().is_some_and(|u| u
            .url
            .starts_with("wss://h.example/p/q/socket.io/?sessionId=")));
        let u = socket_url(&opts("WS://[::1]:9000/prefix", Eio::V4)).ok();
        assert_eq!(
            u.as_ref().map(|u| (u.host.as_str(), u.port, u.tls)),
            Some(("::1", 9000, false))
        );
        assert!(u
            .as_ref()
            .is_some_and(|u| u.url.starts_with("ws://[::1]:9000/prefix/socket.io/?")));
        let u = socket_url(&opts("http://h", Eio::V3)).ok();
        assert_eq!(u.map(|u| u.port), Some(80));
    }

    #[test]
    fn inner_handshake_query_carries_no_ids() {
        let mut o = opts("http://127.0.0.1:1/emulator-url-token", Eio::V3);
        o.inner_handshake = true;
        let u = socket_url(&o).ok();
        assert_eq!(
            u.as_ref().map(|u| path_and_query(&u.url)),
            Some("/socket.io/?handshake=true&EIO=3&transport=websocket")
        );
    }

    #[test]
    fn bad_urls_are_errors() {
        for bad in [
            "",
            "endpoint.example.com",
            "ftp://h/x",
            "https://",
            "https:///path",
            "https://h:notaport/",
            "https://h:99999/",
            "https://user:pw@h/",
            "https://h/x?y=1",
            "https://[::1/",
            "https://[::1]x/",
        ] {
            assert!(
                matches!(
                    socket_url(&opts(bad, Eio::V3)),
                    Err(ConnectError::BadUrl(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn open_errors_keep_their_connect_causes() {
        let unreachable = |fd_exhausted| OpenError::Unreachable {
            detail: "127.0.0.1:1: refused".into(),
            fd_exhausted,
        };
        let cases = [
            (unreachable(true), "fd_exhausted"),
            (unreachable(false), "refused"),
            (
                OpenError::NoDelay("setting TCP_NODELAY: x".into()),
                "closed",
            ),
            (OpenError::Tls("bad certificate".into()), "tls"),
            (OpenError::Http { status: 404 }, "http_404"),
            (OpenError::Http { status: 502 }, "http_5xx"),
            (
                OpenError::Closed("during the WebSocket upgrade".into()),
                "closed",
            ),
            (OpenError::BadUrl("x".into()), "bad_url"),
            (
                OpenError::Protocol("WebSocket upgrade: x".into()),
                "protocol",
            ),
        ];
        for (open, cause) in cases {
            assert_eq!(ConnectError::from(open.clone()).cause(), cause, "{open:?}");
        }
    }

    #[test]
    fn ws_failures_become_disconnect_kinds() {
        use tungstenite::error::{CapacityError, ProtocolError};
        use tungstenite::Error as E;
        let kind = |e| from_ws(e).kind;
        assert_eq!(kind(E::ConnectionClosed), DisconnectKind::TransportClosed);
        assert_eq!(
            kind(E::Protocol(ProtocolError::ResetWithoutClosingHandshake)),
            DisconnectKind::TransportClosed
        );
        assert_eq!(
            kind(E::WriteBufferFull(Box::new(Message::text("x")))),
            DisconnectKind::WriteTimeout
        );
        let big = from_ws(E::Capacity(CapacityError::MessageTooLong {
            size: MAX_MESSAGE_BYTES + 1,
            max_size: MAX_MESSAGE_BYTES,
        }));
        assert_eq!(big.kind, DisconnectKind::FrameTooLarge);
        assert!(
            big.detail
                .ends_with(&format!("(limit {MAX_MESSAGE_BYTES} bytes)")),
            "{big}"
        );
        assert_eq!(
            kind(E::Protocol(ProtocolError::NonZeroReservedBits)),
            DisconnectKind::ProtocolError
        );
    }

    #[test]
    fn encode_twice_is_encode_uri_component_twice() {
        assert_eq!(encode_twice("user@example.com"), "user%2540example.com");
        assert_eq!(encode_twice("a b/c"), "a%2520b%252Fc");
        assert_eq!(encode_twice("A-z_0.9!~*'()"), "A-z_0.9!~*'()");
        assert_eq!(encode_twice("ü"), "%25C3%25BC");
        assert_eq!(encode_twice("%"), "%2525");
    }

    /// `42["name",<arg>]` read as [`parse_message`] reads it (the text is
    /// leaked to keep the test short).
    fn event(name: &str, arg: &str) -> Result<Event<'static>, Fail> {
        let text: &'static str = Box::leak(format!(r#"2[{name:?},{arg}]"#).into_boxed_str());
        match frame::parse_socket_as::<EventArg>(text).map_err(unparsable)? {
            SocketPacket::Event { name, args, .. } => Ok(Event {
                name,
                arg: args.into_first().unwrap_or_default(),
                at: Instant::now(),
            }),
            other => panic!("{text}: {other:?}"),
        }
    }

    fn classify_json(name: &str, arg: &str) -> Kind<'static> {
        let ev = event(name, arg).unwrap_or_else(|e| panic!("{name} {arg}: {e}"));
        classify(&ev).unwrap_or_else(|e| panic!("{name} {arg}: {e}"))
    }

    #[test]
    fn classify_events() {
        let kind = classify_json;
        assert!(matches!(
            kind("output", r#"{"type":"output","data":{"text":"hi"}}"#),
            Kind::Output { text: Some(t), context_version: None, data: None } if t == "hi"
        ));
        assert!(matches!(
            kind("output", r#"{"type":"output","data":{"data":{"contextVersion":3}}}"#),
            Kind::Output {
                text: None,
                context_version: Some(3),
                data: Some(raw),
            } if raw.get() == r#"{"contextVersion":3}"#
        ));
        assert!(matches!(
            kind("output", r#"{"type":"output","data":{"text":"a\u00e9\n","data":null}}"#),
            Kind::Output { text: Some(t), data: None, .. } if t == "aé\n"
        ));
        assert!(matches!(
            kind("output", r#"{"type":"error","data":{"error":{"message":"boom"}}}"#),
            Kind::OutputError(m) if m == "boom"
        ));
        assert!(matches!(
            kind("output", r#"{"type":"error","data":{"message":"flat"}}"#),
            Kind::OutputError(m) if m == "flat"
        ));
        assert!(matches!(
            kind("output", r#"{"type":"error"}"#),
            Kind::OutputError(m) if m == "output of type error"
        ));
        assert!(matches!(
            kind("output", r#"{"type":"finalPing"}"#),
            Kind::Final(Ok(()))
        ));
        assert!(matches!(
            kind("finalPing", r#"{"type":"cognigyStopFlow"}"#),
            Kind::Final(Ok(()))
        ));
        assert!(matches!(
            kind("finalPing", r#"{"type":"error"}"#),
            Kind::Final(Err(m)) if m == "finalPing of type error"
        ));
        assert!(matches!(
            kind("finalPing", r#"{"type":"error","error":{"message":"flow failed"}}"#),
            Kind::Final(Err(m)) if m == "flow failed"
        ));
        assert!(matches!(
            kind("exception", r#"{"error":"bad token"}"#),
            Kind::Exception(m) if m == "bad token"
        ));
        assert!(matches!(
            kind("exception", "[]"),
            Kind::Exception(m) if m == "exception"
        ));
        assert!(matches!(kind("triggeredElement", "{}"), Kind::Unknown));
        assert!(matches!(kind("output", "5"), Kind::Unknown));
        assert!(matches!(kind("output", "null"), Kind::Unknown));
        assert!(matches!(
            kind("typingStatus", r#"{"status":"typingOn"}"#),
            Kind::Known
        ));
        let none = Event {
            name: "finalPing".into(),
            arg: EventArg::default(),
            at: Instant::now(),
        };
        assert!(matches!(classify(&none), Ok(Kind::Final(Ok(())))));
    }

    #[test]
    fn unreadable_event_strings_are_protocol_errors() {
        // A lone surrogate escape in a string that is read fails the frame
        // as bad JSON, like a `Value` (in `data.text` at once; in a key of
        // `data.data` when it is read again for `contextVersion`).
        let bad_text = event("output", r#"{"type":"output","data":{"text":"\ud800"}}"#);
        let bad_data = event(
            "output",
            r#"{"type":"output","data":{"data":{"\ud800":1,"contextVersion":2}}}"#,
        )
        .and_then(|ev| classify(&ev).map(|_| ()));
        for f in [bad_text.err(), bad_data.err()] {
            let f = f.expect("an error");
            assert_eq!(f.kind, DisconnectKind::ProtocolError);
            assert!(
                f.detail
                    .starts_with("unparsable frame: bad JSON payload in event: "),
                "{f}"
            );
        }
    }
}
