//! Socket.IO Endpoint client (docs/protocol.md §1): our own thin Engine.IO 3/4 +
//! Socket.IO layer on tokio-tungstenite. `frame` is the pure packet type (parse
//! and encode, no I/O); `event` reads the fields of a server event a turn needs
//! without building a JSON tree; `connection` owns one WebSocket, the handshake,
//! heartbeats, acks and the turn state machine. No metrics, no scenario types:
//! callers get timestamps and outcomes back and record them themselves.

pub mod connection;
pub mod event;
pub mod frame;

pub use connection::{encode_twice, socket_url, Connection, SocketUrl, MAX_MESSAGE_BYTES};

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Engine.IO protocol revision. EIO3 is what `@cognigy/socket-client` 4.x speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Eio {
    #[default]
    V3,
    V4,
}

impl TryFrom<u8> for Eio {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            3 => Ok(Eio::V3),
            4 => Ok(Eio::V4),
            other => Err(format!(
                "eio must be 3 or 4, got {other} (3 = @cognigy/socket-client 4.x, 4 = 5.x / Webchat v3)"
            )),
        }
    }
}

impl From<Eio> for u8 {
    fn from(e: Eio) -> u8 {
        match e {
            Eio::V3 => 3,
            Eio::V4 => 4,
        }
    }
}

/// Everything needed to open one Endpoint session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The endpoint URL as users copy it: `http(s)://host[/prefix]` or `ws(s)://…`.
    /// A trailing `/<URLToken>` path segment equal to `url_token` is stripped.
    pub endpoint_url: String,
    pub url_token: String,
    pub user_id: String,
    pub session_id: String,
    pub eio: Eio,
    pub emit_with_ack: bool,
    pub test_mode: bool,
    /// Use the "inner handshake" (query `handshake=true`, ids sent in an ack).
    pub inner_handshake: bool,
    /// Limit for WebSocket open + Engine.IO open + `endpoint-ready`.
    pub connect_timeout: Duration,
    /// How much of a turn's outputs is kept (a server that never sends
    /// `finalPing` must not grow memory).
    pub output_limits: OutputLimits,
}

/// Bounds on the outputs one turn keeps. When an output would exceed either,
/// the turn ends at once as [`TurnOutcome::OutputsOverflow`]: the output is
/// counted in [`Turn::outputs_received`] but not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLimits {
    /// Most outputs kept per turn.
    pub max_count: usize,
    /// Most bytes of output text (`data.text`) per turn; Socket.IO outputs
    /// also count their `data.data` as the length of its JSON text as
    /// received, whether the turn keeps it or not.
    pub max_bytes: usize,
}

impl OutputLimits {
    /// 1,000 outputs / 1 MiB per turn: far above any real bot reply.
    pub const DEFAULT: OutputLimits = OutputLimits {
        max_count: 1_000,
        max_bytes: 1 << 20,
    };

    /// Whether one more output of `text_bytes` still fits after `kept`
    /// outputs holding `kept_bytes` bytes of text and data.
    pub fn admits(&self, kept: usize, kept_bytes: usize, text_bytes: usize) -> bool {
        kept < self.max_count && kept_bytes.saturating_add(text_bytes) <= self.max_bytes
    }
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits::DEFAULT
    }
}

/// One user input (`processInput` payload minus the ids the connection
/// knows). Borrowed where the scenario's text does not change per turn, so a
/// turn does not copy it.
#[derive(Debug, Clone, Default)]
pub struct ProcessInput<'a> {
    pub text: std::borrow::Cow<'a, str>,
    pub data: Option<std::borrow::Cow<'a, serde_json::Value>>,
    pub reset_flow: bool,
    pub channel: &'a str,
    /// Whether the turn's outputs keep their `data.data` ([`Output::data`]):
    /// only checks and captures read it, and parsing it costs per output.
    pub keep_data: bool,
}

/// One bot output received during a turn.
#[derive(Debug, Clone)]
pub struct Output {
    pub at: Instant,
    /// `data.text` of the output, if it had one.
    pub text: Option<String>,
    /// `data.data.contextVersion`: the context version the bot saw (emulator).
    pub context_version: Option<u64>,
    /// `data.data`: the output's structured data (quick replies, payloads),
    /// when the turn asked for it ([`ProcessInput::keep_data`]); `None` when
    /// absent or null.
    pub data: Option<serde_json::Value>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnOutcome {
    /// `finalPing` arrived (type regular or cognigyStopFlow).
    Ok,
    /// The bot reported an error (`output` of type error, `finalPing` type error, `exception`).
    BotError(String),
    /// No `finalPing` within the turn timeout.
    Timeout,
    /// More outputs (or output bytes) than [`OutputLimits`] allow arrived
    /// before `finalPing`: the turn ended there (cause `turn_outputs_overflow`).
    OutputsOverflow(String),
    /// The connection closed or failed during the turn; [`Disconnected::cause`]
    /// names how.
    Disconnected(Disconnected),
}

/// The record of one turn: `processInput` written → `finalPing` read.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Right before the `processInput` frame was handed to the socket.
    pub sent_at: Instant,
    /// The outputs kept (at most [`OutputLimits`]).
    pub outputs: Vec<Output>,
    /// Every output received during the turn, kept or not.
    pub outputs_received: u64,
    /// When `finalPing` (or legacy `output` of type finalPing) arrived.
    pub finished_at: Option<Instant>,
    pub outcome: TurnOutcome,
}

/// Counters a connection accumulates; drained with `Connection::take_counters`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireCounters {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    /// `43<id>[]` acks we sent for server events that asked for one.
    pub acks_sent: u64,
    /// Events we do not know (e.g. `triggeredElement`), tolerated.
    pub unknown_events: u64,
    /// Outputs that arrived while no turn was running.
    pub unsolicited_outputs: u64,
    /// Heartbeats sent (EIO3 pings, EIO4 pongs).
    pub heartbeats: u64,
}

/// Why a connection could not be established.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error("timed out after {after:?} waiting for {stage}")]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    #[error("connection refused or unreachable: {0}")]
    Refused(String),
    #[error("server answered the WebSocket upgrade with HTTP {status}")]
    Http { status: u16 },
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("connection closed during handshake: {0}")]
    Closed(String),
    #[error("invalid endpoint URL: {0}")]
    BadUrl(String),
    /// This process ran out of file descriptors (EMFILE/ENFILE): the run is invalid.
    #[error("out of file descriptors: {0}")]
    FdExhausted(String),
}

impl ConnectError {
    /// Short stable name for reports (`connect_timeout`, `refused`,
    /// `http_404`, …; other statuses `http_4xx`/`http_5xx`).
    pub fn cause(&self) -> &'static str {
        match self {
            ConnectError::Timeout { .. } => "connect_timeout",
            ConnectError::Refused(_) => "refused",
            ConnectError::Http { status } => crate::protocol::rest::status_cause(*status),
            ConnectError::Tls(_) => "tls",
            ConnectError::Protocol(_) => "protocol",
            ConnectError::Closed(_) => "closed",
            ConnectError::BadUrl(_) => "bad_url",
            ConnectError::FdExhausted(_) => "fd_exhausted",
        }
    }
}

/// How a connection was lost (during a turn, while idle, or at the start of a
/// turn on a connection that was already dead). Each kind has a stable name
/// for reports ([`DisconnectKind::cause`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectKind {
    /// The server left the namespace: `41`.
    NamespaceDisconnect,
    /// The server sent an Engine.IO close packet: `1`.
    EngineClose,
    /// The WebSocket closed (close frame, EOF, TCP reset, I/O error) without a
    /// Socket.IO or Engine.IO goodbye first.
    TransportClosed,
    /// A frame we cannot parse (garbage, truncated JSON, binary Socket.IO
    /// packet, a second open packet, `44` connect error): like the official
    /// client, the connection is closed.
    ProtocolError,
    /// A WebSocket message or frame above [`MAX_MESSAGE_BYTES`]; rejected from
    /// its header, before the payload is read.
    FrameTooLarge,
    /// EIO3: no pong within pingTimeout of our ping. EIO4: no server ping
    /// within pingInterval + pingTimeout.
    HeartbeatTimeout,
    /// A frame could not be written in time (the server stopped reading).
    WriteTimeout,
}

impl DisconnectKind {
    /// Short stable name: `namespace_disconnect`, `engine_close`,
    /// `transport_closed`, `protocol_error`, `frame_too_large`,
    /// `heartbeat_timeout`, `write_timeout`.
    pub fn cause(self) -> &'static str {
        match self {
            DisconnectKind::NamespaceDisconnect => "namespace_disconnect",
            DisconnectKind::EngineClose => "engine_close",
            DisconnectKind::TransportClosed => "transport_closed",
            DisconnectKind::ProtocolError => "protocol_error",
            DisconnectKind::FrameTooLarge => "frame_too_large",
            DisconnectKind::HeartbeatTimeout => "heartbeat_timeout",
            DisconnectKind::WriteTimeout => "write_timeout",
        }
    }

    /// The cause name of a turn that ended this way: `disconnected_<cause>`.
    pub fn turn_cause(self) -> String {
        format!("disconnected_{}", self.cause())
    }

    /// The cause name of a drop between turns (while thinking): `idle_<cause>`.
    pub fn idle_cause(self) -> String {
        format!("idle_{}", self.cause())
    }

    /// Every kind, in declaration order.
    pub const ALL: [DisconnectKind; 7] = [
        DisconnectKind::NamespaceDisconnect,
        DisconnectKind::EngineClose,
        DisconnectKind::TransportClosed,
        DisconnectKind::ProtocolError,
        DisconnectKind::FrameTooLarge,
        DisconnectKind::HeartbeatTimeout,
        DisconnectKind::WriteTimeout,
    ];
}

/// The connection was lost: how ([`DisconnectKind`]) and the details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disconnected ({}): {detail}", kind.cause())]
pub struct Disconnected {
    pub kind: DisconnectKind,
    /// Human-readable details (close code, parse error, limits).
    pub detail: String,
}

impl Disconnected {
    pub fn new(kind: DisconnectKind, detail: impl Into<String>) -> Disconnected {
        Disconnected {
            kind,
            detail: detail.into(),
        }
    }

    /// [`DisconnectKind::cause`] of this disconnect.
    pub fn cause(&self) -> &'static str {
        self.kind.cause()
    }
}
