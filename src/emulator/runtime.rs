//! The emulator's runtime WebSocket (`GET /v2/runtime?token=…&codec=…`,
//! docs/protocol.md §2.2–2.4) and the routes of the runtime side. Checks the token
//! (401) and codec (400) before the upgrade; then reads length-prefixed binary
//! frames, answers heartbeats, rejects what breaks the limits or the in-flight
//! cap at once, and queues updates and reads for the connection's applier,
//! which waits each one's `update_delay` (delays overlap) and applies them in
//! arrival order against the shared [`ContextStore`].
//!
//! Close codes sent: 1000 never (the client closes), 1001 on emulator
//! shutdown, 1002 on a frame-level protocol error, **4000 "idle timeout"**
//! (defined by us) after `idle_timeout` without a received message, 4001 when
//! the connection's token expires; 4001/4002 and spoiled replies also by the
//! fault modes of `runtime_faults` (`runtime.faults`).

use super::config::RuntimeEmulatorConfig;
use super::context_store::{Applied, ContextStore};
use super::oauth::{self, TokenStore};
use super::runtime_faults::{self, FaultState, ReplyFault, UpdateFault};
use super::stats::{bump, Counters};
use super::webhook_sink::{self, WebhookSink};
use crate::protocol::runtime::{
    frame, ClientMessage, Codec, Context, Payload, RejectCode, ServerMessage,
};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use percent_encoding::percent_decode_str;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// Path of the runtime WebSocket.
pub const RUNTIME_PATH: &str = "/v2/runtime";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the webhook sink.
pub const WEBHOOK_PATH: &str = "/webhook";

/// Close code for a connection silent for `idle_timeout` (defined by us).
pub const CLOSE_IDLE: u16 = 4000;
/// Close code for an expired token (docs/protocol.md §2.2).
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code for an expired session or a missing scope (docs/protocol.md §2.2).
pub const CLOSE_SESSION_EXPIRED: u16 = 4002;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL: u16 = 1002;

/// Requests (updates and reads) queued per connection before the reader waits.
const JOB_QUEUE: usize = 1024;
/// How long a closing connection waits for the client's close reply.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);
/// How long one write to a client may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest close reason allowed by RFC 6455.
const MAX_CLOSE_REASON: usize = 123;

/// State of the runtime side, shared by its routes and connections.
pub(crate) struct RuntimeState {
    pub config: RuntimeEmulatorConfig,
    pub tokens: TokenStore,
    pub contexts: Arc<ContextStore>,
    pub counters: Arc<Counters>,
    pub webhook: WebhookSink,
    /// Cancelled when the emulator stops: open connections close with 1001.
    pub stop: CancellationToken,
    /// Base seed of the per-connection `update_delay` RNGs.
    pub seed: u64,
    pub next_connection: AtomicU64,
    /// `runtime.faults`: settings, dice and counters.
    pub faults: FaultState,
}

/// The routes of the runtime side.
pub(crate) fn router(state: Arc<RuntimeState>) -> Router {
    Router::new()
        .route(RUNTIME_PATH, get(upgrade))
        .route(TOKEN_PATH, post(oauth::token))
        .route(WEBHOOK_PATH, post(webhook_sink::receive))
        .route("/webhook/stats", get(webhook_sink::stats))
        .with_state(state)
}

/// The first value of `name` in a raw query, percent-decoded once.
fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
    })
}

/// `GET /v2/runtime`: token (401), codec (400), then the upgrade.
async fn upgrade(
    State(rt): State<Arc<RuntimeState>>,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query = query.unwrap_or_default();
    let expiry = query_value(&query, "token").and_then(|t| rt.tokens.expiry(&t));
    let Some(expiry) = expiry else {
        bump(&rt.counters.token_rejections);
        return (
            StatusCode::UNAUTHORIZED,
            "missing, unknown or expired token: get one from POST /oauth/token and pass it as ?token=",
        )
            .into_response();
    };
    let codec = match query_value(&query, "codec") {
        None => Codec::Msgpack,
        Some(name) => match Codec::from_query(&name) {
            Some(codec) => codec,
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("unknown codec `{name}`: use codec=msgpack or codec=json"),
                )
                    .into_response()
            }
        },
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    // The transport allows somewhat more than `max_payload`, so that a frame
    // slightly over the limit meets the frame decoder (a clean 1002).
    let transport_limit = rt.config.max_payload.saturating_mul(2).saturating_add(4);
    ws.max_message_size(transport_limit)
        .max_frame_size(transport_limit)
        .on_upgrade(move |socket| connection(socket, rt, codec, expiry))
}

/// A request waiting for the applier.
struct Job {
    due: Instant,
    kind: JobKind,
}

enum JobKind {
    Update {
        request_id: String,
        session_id: String,
        version: u64,
        context: Context,
        _slot: InFlightSlot,
    },
    Get {
        request_id: String,
        session_id: String,
    },
}

/// One in-flight update of a session; the slot is given back when dropped
/// (reply queued, or connection gone).
struct InFlightSlot {
    store: Arc<ContextStore>,
    session_id: String,
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        self.store.end(&self.session_id);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How a connection ends.
enum End {
    /// The client closed or vanished: nothing more to send.
    Gone,
    /// Send a close frame with this code and reason.
    Close(u16, String),
}

/// One connection; `ws` is read here, replies are written here too.
struct Conn {
    ws: WebSocket,
    rt: Arc<RuntimeState>,
    codec: Codec,
    jobs: mpsc::Sender<Job>,
    rng: StdRng,
}

async fn connection(ws: WebSocket, rt: Arc<RuntimeState>, codec: Codec, expiry: Instant) {
    bump(&rt.counters.runtime_connections);
    rt.counters
        .active_runtime_connections
        .fetch_add(1, Ordering::Relaxed);
    let index = rt.next_connection.fetch_add(1, Ordering::Relaxed);
    let seed = rt
        .seed
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let (jobs_tx, jobs_rx) = mpsc::channel(JOB_QUEUE);
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let _applier = AbortOnDrop(tokio::spawn(apply_jobs(jobs_rx, replies_tx, rt.clone())));
    let mut conn = Conn {
        ws,
        rt: rt.clone(),
        codec,
        jobs: jobs_tx,
        rng: StdRng::seed_from_u64(seed),
    };
    let idle = rt.config.idle_timeout.0;
    let mut idle_deadline = Instant::now() + idle;
    let end = loop {
        tokio::select! {
            biased;
            _ = rt.stop.cancelled() => {
                break End::Close(CLOSE_GOING_AWAY, "emulator shutting down".into());
            }
            _ = sleep_until(expiry) => {
                bump(&rt.counters.expiry_closes);
                break End::Close(CLOSE_TOKEN_EXPIRED, "token expired".into());
            }
            _ = sleep_until(idle_deadline) => {
                bump(&rt.counters.idle_closes);
                break End::Close(CLOSE_IDLE, "idle timeout".into());
            }
            Some(reply) = replies.recv() => {
                if let Err(end) = conn.send_message(&reply).await {
                    break end;
                }
            }
            msg = conn.ws.recv() => match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    idle_deadline = Instant::now() + idle;
                    if let Err(end) = conn.on_frame(&bytes).await {
                        break end;
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    bump(&rt.counters.protocol_errors);
                    break End::Close(
                        CLOSE_PROTOCOL,
                        "text message: every message must be a binary frame".into(),
                    );
                }
                // WebSocket pings are answered by the transport; they are not
                // protocol frames and do not keep the connection alive.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break End::Gone,
                Some(Err(e)) => {
                    tracing::debug!("runtime connection error: {e}");
                    break End::Gone;
                }
            },
        }
    };
    if let End::Close(code, reason) = end {
        conn.close(code, reason).await;
    }
    rt.counters.runtime_closed();
}

impl Conn {
    /// Handles one binary message; `Err` ends the connection.
    async fn on_frame(&mut self, bytes: &[u8]) -> Result<(), End> {
        let counters = &self.rt.counters;
        match frame::decode(bytes, self.rt.config.max_payload) {
            Err(e) => {
                bump(&counters.protocol_errors);
                Err(End::Close(CLOSE_PROTOCOL, e.to_string()))
            }
            Ok(Payload::Heartbeat) => {
                bump(&counters.heartbeats);
                self.write(frame::heartbeat_ack()).await
            }
            // Only the server sends heartbeat answers; tolerate a stray one.
            Ok(Payload::HeartbeatAck) => Ok(()),
            Ok(Payload::Message(body)) => self.on_message(body).await,
        }
    }

    async fn on_message(&mut self, body: &[u8]) -> Result<(), End> {
        let message: ClientMessage = match self.codec.decode(body) {
            Ok(m) => m,
            Err(e) => {
                let (request_id, session_id) = salvage_ids(self.codec, body);
                return self
                    .reject(
                        request_id,
                        session_id,
                        RejectCode::BadPayload,
                        e.to_string(),
                    )
                    .await;
            }
        };
        let (request_id, session_id) = match &message {
            ClientMessage::UpdateContext {
                request_id,
                session_id,
                ..
            }
            | ClientMessage::GetContext {
                request_id,
                session_id,
            } => (request_id, session_id),
        };
        if session_id.is_empty() {
            let request_id = request_id.clone();
            let message = "sessionId is empty: name the session".to_string();
            return self
                .reject(request_id, String::new(), RejectCode::BadPayload, message)
                .await;
        }
        let limit = self.rt.config.limits.check(&message);
        match message {
            ClientMessage::UpdateContext {
                request_id,
                session_id,
                version,
                context,
            } => {
                match self.rt.faults.on_update(&mut self.rng) {
                    Some(UpdateFault::Close4001) => {
                        return Err(End::Close(
                            CLOSE_TOKEN_EXPIRED,
                            "token expired (fault injection)".into(),
                        ))
                    }
                    Some(UpdateFault::Close4002) => {
                        return Err(End::Close(
                            CLOSE_SESSION_EXPIRED,
                            "session expired (fault injection)".into(),
                        ))
                    }
                    Some(UpdateFault::Reject) => {
                        let message = "rejected by fault injection (runtime.faults.reject)".into();
                        return self
                            .reject(request_id, session_id, RejectCode::Forbidden, message)
                            .await;
                    }
                    None => {}
                }
                if let Err(e) = limit {
                    return self
                        .reject(request_id, session_id, e.reject_code(), e.to_string())
                        .await;
                }
                let max = self.rt.config.limits.max_in_flight_per_session;
                if !self.rt.contexts.try_begin(&session_id, max) {
                    let message = format!(
                        "session already has {max} updates in flight: wait for their replies"
                    );
                    return self
                        .reject(request_id, session_id, RejectCode::TooManyInFlight, message)
                        .await;
                }
                let slot = InFlightSlot {
                    store: self.rt.contexts.clone(),
                    session_id: session_id.clone(),
                };
                let delay = self.rt.config.update_delay.sample(&mut self.rng);
                self.queue(Job {
                    due: Instant::now() + delay,
                    kind: JobKind::Update {
                        request_id,
                        session_id,
                        version,
                        context,
                        _slot: slot,
                    },
                })
                .await
            }
            ClientMessage::GetContext {
                request_id,
                session_id,
            } => {
                self.queue(Job {
                    due: Instant::now(),
                    kind: JobKind::Get {
                        request_id,
                        session_id,
                    },
                })
                .await
            }
        }
    }

    async fn queue(&mut self, job: Job) -> Result<(), End> {
        // The applier never waits on us (replies go through an unbounded
        // channel), so this wait is bounded by its progress.
        self.jobs.send(job).await.map_err(|_| End::Gone)
    }

    async fn reject(
        &mut self,
        request_id: String,
        session_id: String,
        code: RejectCode,
        message: String,
    ) -> Result<(), End> {
        self.rt.counters.rejected(code);
        self.send_message(&ServerMessage::ContextRejected {
            request_id,
            session_id,
            code,
            message,
            current_version: None,
        })
        .await
    }

    async fn send_message(&mut self, message: &ServerMessage) -> Result<(), End> {
        match self.codec.encode(message) {
            Ok(payload) => {
                let bytes = match self.rt.faults.on_reply(&mut self.rng) {
                    None => frame::encode(&payload),
                    Some(ReplyFault::BadLength) => runtime_faults::bad_length_frame(&payload),
                    Some(ReplyFault::Undecodable) => {
                        frame::encode(runtime_faults::UNDECODABLE_PAYLOAD)
                    }
                };
                self.write(bytes).await
            }
            Err(e) => {
                // Server messages are plain data; this would be a bug, not input.
                tracing::warn!("cannot encode a runtime reply: {e}");
                Ok(())
            }
        }
    }

    async fn write(&mut self, bytes: Vec<u8>) -> Result<(), End> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.ws.send(Message::Binary(bytes.into()))).await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    /// Sends a close frame, then reads (bounded) until the client answers it.
    async fn close(&mut self, code: u16, reason: String) {
        let frame = CloseFrame {
            code,
            reason: truncate(reason, MAX_CLOSE_REASON).into(),
        };
        let sent = tokio::time::timeout(WRITE_TIMEOUT, self.ws.send(Message::Close(Some(frame))));
        if !matches!(sent.await, Ok(Ok(()))) {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_DRAIN, async {
            while let Some(Ok(_)) = self.ws.recv().await {}
        })
        .await;
    }
}

/// Applies queued requests in arrival order, each no earlier than its due time.
async fn apply_jobs(
    mut jobs: mpsc::Receiver<Job>,
    replies: mpsc::UnboundedSender<ServerMessage>,
    rt: Arc<RuntimeState>,
) {
    while let Some(job) = jobs.recv().await {
        sleep_until(job.due).await;
        let reply = match job.kind {
            JobKind::Update {
                request_id,
                session_id,
                version,
                context,
                _slot,
            } => match rt.contexts.apply(&session_id, version, &context) {
                Applied::Updated { version, previous } => {
                    bump(&rt.counters.updates_ok);
                    ServerMessage::ContextUpdated {
                        request_id,
                        session_id,
                        version,
                        previous,
                    }
                }
                Applied::VersionMismatch { current } => {
                    rt.counters.rejected(RejectCode::VersionMismatch);
                    ServerMessage::ContextRejected {
                        request_id,
                        session_id,
                        code: RejectCode::VersionMismatch,
                        message: format!(
                            "version {version} is not the session's current version {current}: retry with currentVersion"
                        ),
                        current_version: Some(current),
                    }
                }
            },
            JobKind::Get {
                request_id,
                session_id,
            } => {
                let (version, context) = rt.contexts.get(&session_id).unwrap_or_default();
                bump(&rt.counters.gets);
                ServerMessage::Context {
                    request_id,
                    session_id,
                    version,
                    context,
                }
            }
        };
        // The update's slot (dropped with `job.kind` above) is free before the
        // reply can reach the client.
        if replies.send(reply).is_err() {
            break;
        }
    }
}

/// `requestId` and `sessionId` of a payload that decodes as a map but not as a
/// known message (empty strings when it does not decode at all).
fn salvage_ids(codec: Codec, body: &[u8]) -> (String, String) {
    let Ok(value) = codec.decode::<serde_json::Value>(body) else {
        return (String::new(), String::new());
    };
    let field = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (field("requestId"), field("sessionId"))
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_once() {
        let q = "token=a%2Bb&codec=json&x";
        assert_eq!(query_value(q, "token").as_deref(), Some("a+b"));
        assert_eq!(query_value(q, "codec").as_deref(), Some("json"));
        assert_eq!(query_value(q, "x").as_deref(), Some(""));
        assert_eq!(query_value(q, "nope"), None);
    }

    #[test]
    fn ids_are_salvaged_from_unknown_messages() {
        let body = br#"{"type":"dance","requestId":"r9","sessionId":"s"}"#;
        assert_eq!(
            salvage_ids(Codec::Json, body),
            ("r9".to_string(), "s".to_string())
        );
        assert_eq!(
            salvage_ids(Codec::Msgpack, b"\xc1\xff"),
            (String::new(), String::new())
        );
    }

    #[test]
    fn close_reasons_are_cut_on_char_boundaries() {
        assert_eq!(truncate("é".repeat(100), 123).len(), 122);
        assert_eq!(truncate("ok".into(), 123), "ok");
    }
}
