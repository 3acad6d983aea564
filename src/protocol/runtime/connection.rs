//! One runtime WebSocket connection per VU (docs/protocol.md §2.2–2.4): the URL with
//! `token=` and `codec=`, pipelined `updateContext` / `getContext` round trips
//! matched by `requestId`, heartbeats with RTTs, close-code handling and the
//! reconnect policy.
//!
//! One task owns a [`RuntimeConnection`]; there is no background task.
//! Heartbeats are sent and answers read only while the connection is driven:
//! inside [`RuntimeConnection::connect`], [`update`](RuntimeConnection::update),
//! [`get_context`](RuntimeConnection::get_context) and
//! [`idle`](RuntimeConnection::idle). A heartbeat that fell due while the
//! connection was not driven is sent once at the next call (no catch-up burst).
//!
//! Decisions:
//! - Every wait is bounded: the connect by `connect_timeout`, a whole
//!   `update`/`get_context` call (sending and reading) by `reply_timeout`,
//!   each write by the same deadline.
//! - A frame with a bad length header or a text message
//!   ([`RuntimeError::BadFrame`]) or an undecodable payload
//!   ([`RuntimeError::Undecodable`]) is counted in `protocol_errors` and ends
//!   the connection: the client closes it with 1002 (docs/protocol.md §2.3), the
//!   requests in flight on it become `Disconnected` at once (no waiting for
//!   their `reply_timeout`), and [`reconnect`](RuntimeConnection::reconnect)
//!   backs off as after any abnormal close. A reply of the wrong kind for its
//!   request id is counted in `protocol_errors` and skipped (the stream is
//!   intact). A reply whose id is not awaited (e.g. late, after a timeout) is
//!   counted in `unmatched_replies`. A WebSocket message larger than
//!   `max_payload + 4` bytes ends the connection (`Protocol`).
//! - Storms are bounded: connection losses in a row (no reply read between
//!   them) share one attempt count, so only the first reconnect after a
//!   4001/4002 is immediate and each later one waits `backoff × n`; after
//!   `max_attempts` losses in a row `reconnect` gives up without trying
//!   (the caller drops the connection and opens a new one at its next step).
//! - Close 4001/4002 → [`RuntimeError::TokenRejected`]; any other close or a
//!   dropped TCP connection (counted as 1006) → [`RuntimeError::Closed`]. The
//!   in-flight requests become `Disconnected`, and so does every later call
//!   until [`reconnect`](RuntimeConnection::reconnect) succeeds.
//! - The access token never appears in an error or log: the URL and every
//!   error text derived from it are scrubbed with `crate::secret::scrub`.
//!
//! The WebSocket itself (URL parsing, TCP, TLS, upgrade, error mapping) is
//! [`crate::protocol::ws`]; every timer runs on `tokio::time`. The
//! timestamps in [`UpdateResult`] and [`GetResult`] are that clock's instants
//! as `std::time::Instant`.

use super::oauth::{AccessToken, OAuthError, TokenProvider};
use super::ServerMessage;
use super::{frame, ClientMessage, Codec, Context, LimitError, Limits, Payload, RejectCode};
use crate::protocol::ws::{self, deadline_in, FailureKind, OpenError, Ws};
use crate::secret::scrub;
use futures_util::{SinkExt, StreamExt};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

/// Limit for the whole of [`RuntimeConnection::close`].
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Limit for politely closing the old socket before a reconnect.
const DROP_TIMEOUT: Duration = Duration::from_millis(200);
/// Heartbeats awaiting an answer that are remembered for RTTs.
const MAX_OUTSTANDING_HEARTBEATS: usize = 64;
/// Close code recorded when the connection ends without a close frame.
pub const CLOSE_ABNORMAL: u16 = 1006;

/// Reconnect after an abnormal close: wait `backoff × attempt` (attempt 1, 2, …)
/// before each try, at most `max_attempts` tries. After 4001/4002 or HTTP 401
/// the token is refreshed and the first try is immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub max_attempts: u32,
    pub backoff: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: 5,
            backoff: Duration::from_secs(2),
        }
    }
}

/// How one VU connects and talks to the runtime WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeOptions {
    /// `ws(s)://host[:port]/v2/runtime[?…]` (`http(s)` is accepted as `ws(s)`).
    pub url: String,
    pub codec: Codec,
    /// Heartbeat interval; `None` sends none. Default 25 s.
    pub heartbeat: Option<Duration>,
    pub connect_timeout: Duration,
    /// Bound of one `update`/`get_context` call.
    pub reply_timeout: Duration,
    pub reconnect: ReconnectPolicy,
    /// Largest accepted frame payload.
    pub max_payload: usize,
    pub limits: Limits,
    /// Check limits on the client before sending (tests turn it off to see
    /// the server's rejections).
    pub validate: bool,
}

impl RuntimeOptions {
    /// Options with the documented defaults.
    pub fn new(url: impl Into<String>) -> RuntimeOptions {
        RuntimeOptions {
            url: url.into(),
            codec: Codec::default(),
            heartbeat: Some(Duration::from_secs(25)),
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(10),
            reconnect: ReconnectPolicy::default(),
            max_payload: frame::DEFAULT_MAX_PAYLOAD,
            limits: Limits::default(),
            validate: true,
        }
    }
}

/// One update to send.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    pub session_id: String,
    /// The version the client believes is current (optimistic lock).
    pub version: u64,
    pub context: Context,
}

/// How one update ended.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOutcome {
    /// `contextUpdated`: the new version and the replaced values.
    Updated { version: u64, previous: Context },
    /// `contextRejected`.
    Rejected {
        code: RejectCode,
        message: String,
        current_version: Option<u64>,
    },
    /// Broke a limit on the client; not sent.
    Invalid(LimitError),
    /// More updates for one session than the in-flight cap in one call; not sent.
    TooManyInFlight { max: usize },
    /// Could not be encoded; not sent.
    NotSent(String),
    /// Sent, but no reply within `reply_timeout`.
    Timeout,
    /// The connection was or went down; the text says why.
    Disconnected(String),
}

impl UpdateOutcome {
    /// Stable name for reports: `ok`, `rejected_<code>`, `invalid`,
    /// `too_many_in_flight`, `not_sent`, `timeout`, `disconnected`.
    pub fn cause(&self) -> String {
        match self {
            UpdateOutcome::Updated { .. } => "ok".into(),
            UpdateOutcome::Rejected { code, .. } => format!("rejected_{}", code.as_str()),
            UpdateOutcome::Invalid(_) => "invalid".into(),
            UpdateOutcome::TooManyInFlight { .. } => "too_many_in_flight".into(),
            UpdateOutcome::NotSent(_) => "not_sent".into(),
            UpdateOutcome::Timeout => "timeout".into(),
            UpdateOutcome::Disconnected(_) => "disconnected".into(),
        }
    }

    /// Whether the request went on the wire.
    pub fn was_sent(&self) -> bool {
        !matches!(
            self,
            UpdateOutcome::Invalid(_)
                | UpdateOutcome::TooManyInFlight { .. }
                | UpdateOutcome::NotSent(_)
        )
    }
}

/// One update's round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateResult {
    pub request_id: String,
    /// Right before the frame was handed to the socket (when not sent: when it
    /// was refused).
    pub sent_at: std::time::Instant,
    /// When the matching reply was read.
    pub replied_at: Option<std::time::Instant>,
    pub outcome: UpdateOutcome,
}

impl UpdateResult {
    /// The update round trip, when a reply came.
    pub fn round_trip(&self) -> Option<Duration> {
        self.replied_at
            .map(|at| at.saturating_duration_since(self.sent_at))
    }
}

/// How one `getContext` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum GetOutcome {
    Context {
        version: u64,
        context: Context,
    },
    Rejected {
        code: RejectCode,
        message: String,
        current_version: Option<u64>,
    },
    NotSent(String),
    Timeout,
    Disconnected(String),
}

/// One `getContext` round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct GetResult {
    pub request_id: String,
    pub sent_at: std::time::Instant,
    pub replied_at: Option<std::time::Instant>,
    pub outcome: GetOutcome,
}

/// Wire counters since the last [`RuntimeConnection::take_counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeCounters {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub heartbeats_sent: u64,
    pub heartbeat_acks: u64,
    /// Heartbeat written → answer read, in order.
    pub heartbeat_rtts: Vec<Duration>,
    /// Bad length headers, undecodable payloads, text messages, wrong reply kinds.
    pub protocol_errors: u64,
    /// Replies whose requestId was not awaited.
    pub unmatched_replies: u64,
    /// Connection tries made by `reconnect`.
    pub reconnect_attempts: u64,
    /// Successful reconnects.
    pub reconnects: u64,
    /// Tokens discarded for a fresh one (after 4001/4002/HTTP 401).
    pub token_refreshes: u64,
    /// Closes seen from the server, by code (1006 = no close frame).
    pub closes: BTreeMap<u16, u64>,
}

impl RuntimeCounters {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: RuntimeCounters) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.frames_sent += other.frames_sent;
        self.frames_received += other.frames_received;
        self.heartbeats_sent += other.heartbeats_sent;
        self.heartbeat_acks += other.heartbeat_acks;
        self.heartbeat_rtts.extend(other.heartbeat_rtts);
        self.protocol_errors += other.protocol_errors;
        self.unmatched_replies += other.unmatched_replies;
        self.reconnect_attempts += other.reconnect_attempts;
        self.reconnects += other.reconnects;
        self.token_refreshes += other.token_refreshes;
        for (code, n) in other.closes {
            *self.closes.entry(code).or_default() += n;
        }
    }
}

/// Why the connection could not be opened or was lost. No message contains
/// the access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("runtime url {0}")]
    BadUrl(String),
    #[error("no access token: {0}")]
    OAuth(#[from] OAuthError),
    #[error("runtime WebSocket refused or unreachable: {0}")]
    Refused(String),
    #[error("runtime WebSocket not connected within {after:?}")]
    ConnectTimeout { after: Duration },
    #[error("the runtime WebSocket rejected the access token (HTTP 401 at the upgrade)")]
    Unauthorized,
    #[error("the runtime WebSocket answered the upgrade with HTTP {status}")]
    Http { status: u16 },
    #[error("TLS error: {0}")]
    Tls(String),
    #[error("the server closed the connection with {code} ({}): a fresh token is needed", token_close_meaning(*.code))]
    TokenRejected { code: u16 },
    #[error(
        "the server closed the connection (code {code}{})",
        reason_suffix(reason)
    )]
    Closed { code: u16, reason: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("protocol error: {0}; the connection was closed with 1002")]
    BadFrame(String),
    #[error("protocol error: undecodable message ({0}); the connection was closed with 1002")]
    Undecodable(String),
    #[error("gave up reconnecting after {losses} connection losses in a row without a reply (last: {last})")]
    Storm {
        losses: u32,
        last: Box<RuntimeError>,
    },
    #[error("writing to the runtime WebSocket timed out (server not reading)")]
    WriteTimeout,
}

fn token_close_meaning(code: u16) -> &'static str {
    match code {
        4001 => "token expired or invalid",
        _ => "session expired or scope missing",
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

impl RuntimeError {
    /// Stable name for reports: `bad_url`, `oauth_<token cause>` (e.g.
    /// `oauth_http_401`, `oauth_timeout`), `refused`, `connect_timeout`,
    /// `unauthorized`, `http_<status>`, `tls`, `token_rejected_<code>`,
    /// `closed_<code>`, `protocol`, `bad_frame`, `undecodable`,
    /// `storm` (reconnects given up), `write_timeout`.
    pub fn cause(&self) -> String {
        match self {
            RuntimeError::BadUrl(_) => "bad_url".into(),
            RuntimeError::OAuth(e) => {
                let c = e.cause();
                format!("oauth_{}", c.strip_prefix("token_").unwrap_or(c))
            }
            RuntimeError::Refused(_) => "refused".into(),
            RuntimeError::ConnectTimeout { .. } => "connect_timeout".into(),
            RuntimeError::Unauthorized => "unauthorized".into(),
            RuntimeError::Http { status } => format!("http_{status}"),
            RuntimeError::Tls(_) => "tls".into(),
            RuntimeError::TokenRejected { code } => format!("token_rejected_{code}"),
            RuntimeError::Closed { code, .. } => format!("closed_{code}"),
            RuntimeError::Protocol(_) => "protocol".into(),
            RuntimeError::BadFrame(_) => "bad_frame".into(),
            RuntimeError::Undecodable(_) => "undecodable".into(),
            RuntimeError::Storm { .. } => "storm".into(),
            RuntimeError::WriteTimeout => "write_timeout".into(),
        }
    }

    /// Whether a fresh token is the fix (4001/4002 or HTTP 401).
    pub fn needs_fresh_token(&self) -> bool {
        matches!(
            self,
            RuntimeError::TokenRejected { .. } | RuntimeError::Unauthorized
        )
    }
}

/// `<url>?…&token=<token>&codec=<codec>`: existing query parameters are kept
/// (an existing `token` or `codec` is replaced).
fn runtime_url(raw: &str, token: &str, codec: Codec) -> Result<ws::Endpoint, RuntimeError> {
    let mut endpoint = ws::parse(raw).map_err(|why| {
        RuntimeError::BadUrl(format!(
            "{:?}: {why} (expected ws(s)://host[:port]/v2/runtime)",
            scrub(raw, &[token])
        ))
    })?;
    let url = &mut endpoint.url;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "token" && k != "codec")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("token", token)
        .append_pair("codec", codec.as_str());
    Ok(endpoint)
}

/// TCP connect (TCP_NODELAY), optional TLS, WebSocket upgrade, within
/// `connect_timeout`. Frames and messages up to one payload plus its header.
async fn open_socket(opts: &RuntimeOptions, token: &AccessToken) -> Result<Ws, RuntimeError> {
    let secret = token.expose();
    let target = runtime_url(&opts.url, secret, opts.codec)?;
    let after = opts.connect_timeout;
    let secrets = [secret];
    let open = ws::open_ws(
        ws::Target {
            url: target.url.as_str(),
            host: &target.host,
            port: target.port,
            tls: target.tls,
        },
        ws::ws_config(opts.max_payload.saturating_add(4)),
        &secrets,
    );
    tokio::time::timeout(after, open)
        .await
        .map_err(|_| RuntimeError::ConnectTimeout { after })?
        .map_err(RuntimeError::from)
}

impl From<OpenError> for RuntimeError {
    fn from(e: OpenError) -> RuntimeError {
        match e {
            OpenError::Unreachable { detail, .. } | OpenError::NoDelay(detail) => {
                RuntimeError::Refused(detail)
            }
            OpenError::Tls(detail) => RuntimeError::Tls(detail),
            OpenError::Http { status: 401 } => RuntimeError::Unauthorized,
            OpenError::Http { status } => RuntimeError::Http { status },
            OpenError::Closed(reason) => RuntimeError::Closed {
                code: CLOSE_ABNORMAL,
                reason,
            },
            OpenError::BadUrl(detail) => RuntimeError::BadUrl(detail),
            OpenError::Protocol(detail) => RuntimeError::Protocol(detail),
        }
    }
}

/// A read/write error: closed or I/O → `Closed` (1006), else `Protocol`.
fn ws_error(e: tungstenite::Error, token: &str) -> RuntimeError {
    let f = ws::Failure::new(e, &[token]);
    match f.kind {
        FailureKind::Closed | FailureKind::Io => RuntimeError::Closed {
            code: CLOSE_ABNORMAL,
            reason: f.detail,
        },
        _ => RuntimeError::Protocol(f.text),
    }
}

/// Gets a token and opens the socket; on HTTP 401 the token is invalidated
/// (so the next try fetches a fresh one) and `Unauthorized` returned.
async fn open_with_token(
    opts: &RuntimeOptions,
    tokens: &TokenProvider,
) -> Result<(Ws, AccessToken), RuntimeError> {
    let token = tokens.token().await?;
    match open_socket(opts, &token).await {
        Ok(ws) => Ok((ws, token)),
        Err(RuntimeError::Unauthorized) => {
            tokens.invalidate(&token);
            Err(RuntimeError::Unauthorized)
        }
        Err(e) => Err(e),
    }
}

/// What one read step produced.
enum Read {
    Message(ServerMessage, Instant),
    Deadline,
}

/// An open runtime WebSocket.
pub struct RuntimeConnection {
    ws: Ws,
    opts: RuntimeOptions,
    token: AccessToken,
    next_heartbeat: Option<Instant>,
    /// Send times of heartbeats not yet answered, oldest first.
    heartbeats_out: VecDeque<Instant>,
    /// Set once the connection failed; every later call reports it.
    dead: Option<RuntimeError>,
    /// Connection losses since the last reply was read (bounds storms).
    losses_in_a_row: u32,
    counters: RuntimeCounters,
}

impl std::fmt::Debug for RuntimeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConnection")
            .field("url", &self.opts.url)
            .field("codec", &self.opts.codec)
            .field("token", &self.token)
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl RuntimeConnection {
    /// Gets a token from `tokens` and opens the WebSocket within
    /// `opts.connect_timeout`. On HTTP 401 the token is invalidated in
    /// `tokens` and [`RuntimeError::Unauthorized`] returned: calling `connect`
    /// again uses a fresh token.
    pub async fn connect(
        opts: &RuntimeOptions,
        tokens: &TokenProvider,
    ) -> Result<RuntimeConnection, RuntimeError> {
        let (ws, token) = open_with_token(opts, tokens).await?;
        Ok(RuntimeConnection {
            ws,
            opts: opts.clone(),
            token,
            next_heartbeat: opts.heartbeat.map(deadline_in),
            heartbeats_out: VecDeque::new(),
            dead: None,
            losses_in_a_row: 0,
            counters: RuntimeCounters::default(),
        })
    }

    /// Sends up to `limits.max_in_flight_per_session` updates per session
    /// pipelined, then reads until each sent one has its reply or
    /// `reply_timeout` (counted from the call) passes. Results are in request
    /// order. With `validate`, an update breaking a limit is not sent
    /// (`Invalid`); updates past the in-flight cap are not sent (`TooManyInFlight`).
    pub async fn update(&mut self, requests: Vec<UpdateRequest>) -> Vec<UpdateResult> {
        let deadline = deadline_in(self.opts.reply_timeout);
        let max = self.opts.limits.max_in_flight_per_session;
        let mut results: Vec<UpdateResult> = Vec::with_capacity(requests.len());
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut per_session: HashMap<String, usize> = HashMap::new();
        for req in requests {
            let request_id = uuid::Uuid::new_v4().to_string();
            let mut result = UpdateResult {
                request_id: request_id.clone(),
                sent_at: Instant::now().into_std(),
                replied_at: None,
                outcome: UpdateOutcome::Timeout,
            };
            if let Some(e) = &self.dead {
                result.outcome = UpdateOutcome::Disconnected(e.to_string());
                results.push(result);
                continue;
            }
            let in_flight = per_session.entry(req.session_id.clone()).or_default();
            if *in_flight >= max {
                result.outcome = UpdateOutcome::TooManyInFlight { max };
                results.push(result);
                continue;
            }
            let msg = ClientMessage::UpdateContext {
                request_id: request_id.clone(),
                session_id: req.session_id,
                version: req.version,
                context: req.context,
            };
            if self.opts.validate {
                if let Err(e) = self.opts.limits.check(&msg) {
                    result.outcome = UpdateOutcome::Invalid(e);
                    results.push(result);
                    continue;
                }
            }
            let payload = match self.opts.codec.encode(&msg) {
                Ok(p) => p,
                Err(e) => {
                    result.outcome = UpdateOutcome::NotSent(e.to_string());
                    results.push(result);
                    continue;
                }
            };
            match self.send_payload(&payload, deadline).await {
                Ok(at) => {
                    *in_flight += 1;
                    result.sent_at = at.into_std();
                    pending.insert(request_id, results.len());
                }
                Err(e) => {
                    let cause = self.kill(e).to_string();
                    result.outcome = UpdateOutcome::Disconnected(cause.clone());
                    for &i in pending.values() {
                        if let Some(r) = results.get_mut(i) {
                            r.outcome = UpdateOutcome::Disconnected(cause.clone());
                        }
                    }
                    pending.clear();
                }
            }
            results.push(result);
        }
        let failed = self
            .collect(&mut pending, deadline, |i, m, at| {
                let Some(r) = results.get_mut(i) else {
                    return Ok(());
                };
                r.outcome = match m {
                    ServerMessage::ContextUpdated {
                        version, previous, ..
                    } => UpdateOutcome::Updated { version, previous },
                    ServerMessage::ContextRejected {
                        code,
                        message,
                        current_version,
                        ..
                    } => UpdateOutcome::Rejected {
                        code,
                        message,
                        current_version,
                    },
                    ServerMessage::Context { .. } => return Err(()),
                };
                r.replied_at = Some(at.into_std());
                Ok(())
            })
            .await;
        if let Some(cause) = failed {
            for i in pending.into_values() {
                if let Some(r) = results.get_mut(i) {
                    r.outcome = UpdateOutcome::Disconnected(cause.clone());
                }
            }
        }
        results
    }

    /// Sends one `getContext` and reads its reply within `reply_timeout`.
    pub async fn get_context(&mut self, session_id: &str) -> GetResult {
        let deadline = deadline_in(self.opts.reply_timeout);
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut result = GetResult {
            request_id: request_id.clone(),
            sent_at: Instant::now().into_std(),
            replied_at: None,
            outcome: GetOutcome::Timeout,
        };
        if let Some(e) = &self.dead {
            result.outcome = GetOutcome::Disconnected(e.to_string());
            return result;
        }
        let msg = ClientMessage::GetContext {
            request_id: request_id.clone(),
            session_id: session_id.to_string(),
        };
        let payload = match self.opts.codec.encode(&msg) {
            Ok(p) => p,
            Err(e) => {
                result.outcome = GetOutcome::NotSent(e.to_string());
                return result;
            }
        };
        match self.send_payload(&payload, deadline).await {
            Ok(at) => result.sent_at = at.into_std(),
            Err(e) => {
                result.outcome = GetOutcome::Disconnected(self.kill(e).to_string());
                return result;
            }
        }
        let mut pending = HashMap::from([(request_id, 0usize)]);
        let failed = self
            .collect(&mut pending, deadline, |_, m, at| {
                result.outcome = match m {
                    ServerMessage::Context {
                        version, context, ..
                    } => GetOutcome::Context { version, context },
                    ServerMessage::ContextRejected {
                        code,
                        message,
                        current_version,
                        ..
                    } => GetOutcome::Rejected {
                        code,
                        message,
                        current_version,
                    },
                    ServerMessage::ContextUpdated { .. } => return Err(()),
                };
                result.replied_at = Some(at.into_std());
                Ok(())
            })
            .await;
        if let (Some(cause), false) = (failed, pending.is_empty()) {
            result.outcome = GetOutcome::Disconnected(cause);
        }
        result
    }

    /// Keeps the connection alive (heartbeats, their answers) for `dur`.
    /// Replies arriving meanwhile are late ones and counted as unmatched.
    pub async fn idle(&mut self, dur: Duration) -> Result<(), RuntimeError> {
        if let Some(e) = &self.dead {
            return Err(e.clone());
        }
        let deadline = deadline_in(dur);
        loop {
            match self.read(deadline).await {
                Ok(Read::Deadline) => return Ok(()),
                Ok(Read::Message(..)) => self.counters.unmatched_replies += 1,
                Err(e) => return Err(self.kill(e)),
            }
        }
    }

    /// Re-opens the connection after `cause` (usually [`failure`](Self::failure)).
    /// After 4001/4002 or HTTP 401 the token this connection used is
    /// invalidated in `tokens` and the first try is immediate; after a normal
    /// close (1000) too; after anything else each try `n` (1-based) waits
    /// `backoff × n`. At most `reconnect.max_attempts` tries; the last error
    /// is returned when all fail (the connection then stays failed).
    ///
    /// Losses in a row without a reply read in between continue the count:
    /// the `k`-th such loss numbers its tries from `k` (so a 4001 storm backs
    /// off too), and a loss past `max_attempts` in a row is not retried:
    /// [`RuntimeError::Storm`] is returned.
    pub async fn reconnect(
        &mut self,
        tokens: &TokenProvider,
        cause: &RuntimeError,
    ) -> Result<(), RuntimeError> {
        let policy = self.opts.reconnect;
        if self.dead.is_none() {
            let _ = tokio::time::timeout(DROP_TIMEOUT, self.ws.close(None)).await;
            self.dead = Some(cause.clone());
        }
        self.losses_in_a_row = self.losses_in_a_row.saturating_add(1);
        let earlier = self.losses_in_a_row - 1;
        if earlier >= policy.max_attempts {
            let storm = RuntimeError::Storm {
                losses: self.losses_in_a_row,
                last: Box::new(cause.clone()),
            };
            self.dead = Some(storm.clone());
            return Err(storm);
        }
        let mut last = cause.clone();
        for attempt in 1..=policy.max_attempts {
            let step = attempt.saturating_add(earlier);
            if last.needs_fresh_token() {
                // After `Unauthorized` from our own try the token is already invalidated.
                tokens.invalidate(&self.token);
                self.counters.token_refreshes += 1;
                if step > 1 {
                    tokio::time::sleep(policy.backoff.saturating_mul(step - 1)).await;
                }
            } else if !matches!(last, RuntimeError::Closed { code: 1000, .. }) {
                tokio::time::sleep(policy.backoff.saturating_mul(step)).await;
            }
            self.counters.reconnect_attempts += 1;
            match open_with_token(&self.opts, tokens).await {
                Ok((ws, token)) => {
                    self.ws = ws;
                    self.token = token;
                    self.dead = None;
                    self.heartbeats_out.clear();
                    self.next_heartbeat = self.opts.heartbeat.map(deadline_in);
                    self.counters.reconnects += 1;
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(attempt, cause = %e.cause(), "runtime reconnect failed");
                    last = e;
                }
            }
        }
        self.dead = Some(last.clone());
        Err(last)
    }

    /// Why the connection failed, once it has.
    pub fn failure(&self) -> Option<&RuntimeError> {
        self.dead.as_ref()
    }

    pub fn codec(&self) -> Codec {
        self.opts.codec
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.opts
    }

    /// The counters accumulated since the last [`take_counters`](Self::take_counters).
    pub fn counters(&self) -> &RuntimeCounters {
        &self.counters
    }

    /// Returns the counters accumulated since the last call and resets them.
    pub fn take_counters(&mut self) -> RuntimeCounters {
        std::mem::take(&mut self.counters)
    }

    /// Closes with 1000 and waits for the server's close, within about 2 s
    /// whatever the server does. Returns the counters not yet taken.
    pub async fn close(mut self) -> RuntimeCounters {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let ws = &mut self.ws;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if ws.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = ws.next().await {}
            }
        })
        .await;
        self.counters
    }

    fn kill(&mut self, e: RuntimeError) -> RuntimeError {
        tracing::debug!(cause = %e.cause(), "runtime connection lost");
        self.dead = Some(e.clone());
        e
    }

    /// Reads replies for `pending` (request id → caller index) until all came,
    /// `deadline`, or the connection fails (returns the cause). `accept`
    /// returns `Err` for a reply of the wrong kind (counted, still pending).
    async fn collect<F>(
        &mut self,
        pending: &mut HashMap<String, usize>,
        deadline: Instant,
        mut accept: F,
    ) -> Option<String>
    where
        F: FnMut(usize, ServerMessage, Instant) -> Result<(), ()>,
    {
        while !pending.is_empty() {
            match self.read(deadline).await {
                Ok(Read::Deadline) => return None,
                Ok(Read::Message(m, at)) => {
                    let id = m.request_id().to_string();
                    match pending.get(&id) {
                        None => self.counters.unmatched_replies += 1,
                        Some(&i) => match accept(i, m, at) {
                            Ok(()) => {
                                pending.remove(&id);
                            }
                            Err(()) => self.counters.protocol_errors += 1,
                        },
                    }
                }
                Err(e) => return Some(self.kill(e).to_string()),
            }
        }
        None
    }

    /// Writes one message frame (after a due heartbeat); returns when it was
    /// handed to the socket, so a round trip never starts after the server has it.
    async fn send_payload(
        &mut self,
        payload: &[u8],
        limit: Instant,
    ) -> Result<Instant, RuntimeError> {
        self.heartbeat_if_due(limit).await?;
        self.send_frame(frame::encode(payload), limit).await
    }

    async fn send_frame(
        &mut self,
        bytes: Vec<u8>,
        limit: Instant,
    ) -> Result<Instant, RuntimeError> {
        let len = bytes.len() as u64;
        let started = Instant::now();
        let send = self.ws.send(Message::Binary(bytes.into()));
        match tokio::time::timeout_at(limit, send).await {
            Ok(Ok(())) => {
                self.counters.frames_sent += 1;
                self.counters.bytes_sent += len;
                Ok(started)
            }
            Ok(Err(e)) => Err(ws_error(e, self.token.expose())),
            Err(_) => Err(RuntimeError::WriteTimeout),
        }
    }

    async fn heartbeat_if_due(&mut self, limit: Instant) -> Result<(), RuntimeError> {
        let (Some(at), Some(interval)) = (self.next_heartbeat, self.opts.heartbeat) else {
            return Ok(());
        };
        if Instant::now() < at {
            return Ok(());
        }
        // A heartbeat write gets at least a second even when the call's deadline is near.
        let limit = limit.max(deadline_in(Duration::from_secs(1)));
        let sent = self.send_frame(frame::heartbeat(), limit).await?;
        self.counters.heartbeats_sent += 1;
        if self.heartbeats_out.len() == MAX_OUTSTANDING_HEARTBEATS {
            self.heartbeats_out.pop_front();
        }
        self.heartbeats_out.push_back(sent);
        self.next_heartbeat = sent.checked_add(interval);
        Ok(())
    }

    /// Reads until a decodable message arrives or `deadline`; sends due
    /// heartbeats and records their answers meanwhile.
    async fn read(&mut self, deadline: Instant) -> Result<Read, RuntimeError> {
        loop {
            self.heartbeat_if_due(deadline).await?;
            if Instant::now() >= deadline {
                return Ok(Read::Deadline);
            }
            let wake = self.next_heartbeat.map_or(deadline, |h| h.min(deadline));
            let msg = tokio::select! {
                biased;
                msg = self.ws.next() => Some(msg),
                () = tokio::time::sleep_until(wake) => None,
            };
            let Some(msg) = msg else { continue };
            let now = Instant::now();
            match msg {
                None => {
                    return Err(self.closed(
                        CLOSE_ABNORMAL,
                        "connection closed without a close frame".into(),
                    ))
                }
                Some(Err(e)) => {
                    let e = ws_error(e, self.token.expose());
                    if let RuntimeError::Closed { code, .. } = &e {
                        *self.counters.closes.entry(*code).or_default() += 1;
                    }
                    return Err(e);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    self.counters.frames_received += 1;
                    self.counters.bytes_received += bytes.len() as u64;
                    match frame::decode(&bytes, self.opts.max_payload) {
                        Err(e) => {
                            return Err(self.violation(RuntimeError::BadFrame(e.to_string())).await)
                        }
                        Ok(Payload::Heartbeat) => {}
                        Ok(Payload::HeartbeatAck) => {
                            self.counters.heartbeat_acks += 1;
                            if let Some(sent) = self.heartbeats_out.pop_front() {
                                self.counters
                                    .heartbeat_rtts
                                    .push(now.saturating_duration_since(sent));
                            }
                        }
                        Ok(Payload::Message(body)) => {
                            match self.opts.codec.decode::<ServerMessage>(body) {
                                Ok(m) => {
                                    self.losses_in_a_row = 0;
                                    return Ok(Read::Message(m, now));
                                }
                                Err(e) => {
                                    let e = RuntimeError::Undecodable(scrub(
                                        &e.to_string(),
                                        &[self.token.expose()],
                                    ));
                                    return Err(self.violation(e).await);
                                }
                            }
                        }
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    self.counters.frames_received += 1;
                    self.counters.bytes_received += text.len() as u64;
                    let e = RuntimeError::BadFrame(
                        "a text message: every message must be a binary frame".into(),
                    );
                    return Err(self.violation(e).await);
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    // Send tungstenite's queued close reply, briefly.
                    let _ = tokio::time::timeout(DROP_TIMEOUT, self.ws.flush()).await;
                    return Err(match code {
                        4001 | 4002 => {
                            *self.counters.closes.entry(code).or_default() += 1;
                            RuntimeError::TokenRejected { code }
                        }
                        _ => self.closed(code, reason),
                    });
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            }
        }
    }

    /// A protocol violation by the server: counted, the connection closed
    /// with 1002 (briefly, whatever the server does), `e` returned.
    async fn violation(&mut self, e: RuntimeError) -> RuntimeError {
        self.counters.protocol_errors += 1;
        tracing::debug!(error = %e, "runtime protocol violation; closing with 1002");
        let frame = CloseFrame {
            code: CloseCode::Protocol,
            reason: "bad frame".into(),
        };
        let _ = tokio::time::timeout(DROP_TIMEOUT, self.ws.close(Some(frame))).await;
        e
    }

    fn closed(&mut self, code: u16, reason: String) -> RuntimeError {
        *self.counters.closes.entry(code).or_default() += 1;
        RuntimeError::Closed {
            code,
            reason: scrub(&reason, &[self.token.expose()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keeps_query_and_adds_token_and_codec() {
        let t = runtime_url("ws://127.0.0.1:9/v2/runtime", "tok en+/", Codec::Msgpack)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.url.as_str(),
            "ws://127.0.0.1:9/v2/runtime?token=tok+en%2B%2F&codec=msgpack"
        );
        assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 9, false));
        let t = runtime_url(
            "https://h.example/v2/runtime?tenant=a&codec=json&token=old",
            "abc",
            Codec::Json,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t.url.as_str(),
            "wss://h.example/v2/runtime?tenant=a&token=abc&codec=json"
        );
        assert_eq!((t.port, t.tls), (443, true));
        let t =
            runtime_url("ws://[::1]:8080/r", "x", Codec::Json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
    }

    #[test]
    fn bad_urls_are_errors_without_the_token() {
        for raw in [
            "",
            "ftp://h/x",
            "ws://h/x#frag",
            "ws://u:p@h/x",
            "h/v2/runtime",
        ] {
            let e = runtime_url(raw, "very-secret-token", Codec::Json).err();
            assert!(matches!(e, Some(RuntimeError::BadUrl(_))), "{raw:?}");
            assert!(!format!("{e:?}").contains("very-secret-token"));
        }
    }

    #[test]
    fn open_and_ws_errors_keep_their_causes() {
        let cases = [
            (
                OpenError::Unreachable {
                    detail: "h:1: refused".into(),
                    fd_exhausted: true,
                },
                "refused",
            ),
            (
                OpenError::NoDelay("setting TCP_NODELAY: x".into()),
                "refused",
            ),
            (OpenError::Http { status: 401 }, "unauthorized"),
            (OpenError::Http { status: 404 }, "http_404"),
            (
                OpenError::Closed("during the WebSocket upgrade".into()),
                "closed_1006",
            ),
            (OpenError::Tls("x".into()), "tls"),
            (OpenError::BadUrl("x".into()), "bad_url"),
            (OpenError::Protocol("x".into()), "protocol"),
        ];
        for (open, cause) in cases {
            assert_eq!(RuntimeError::from(open.clone()).cause(), cause, "{open:?}");
        }
        use tungstenite::error::ProtocolError;
        use tungstenite::Error as E;
        assert_eq!(
            ws_error(E::ConnectionClosed, "t0ken-secret").cause(),
            "closed_1006"
        );
        let io = std::io::Error::other("t0ken-secret broke");
        let e = ws_error(E::Io(io), "t0ken-secret");
        assert_eq!(e.cause(), "closed_1006");
        assert!(!e.to_string().contains("t0ken-secret"), "{e}");
        let reset = E::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(ws_error(reset, "t").cause(), "protocol");
    }

    #[test]
    fn causes_are_stable() {
        assert_eq!(
            RuntimeError::TokenRejected { code: 4001 }.cause(),
            "token_rejected_4001"
        );
        assert_eq!(
            RuntimeError::Closed {
                code: 1011,
                reason: String::new()
            }
            .cause(),
            "closed_1011"
        );
        assert_eq!(RuntimeError::Unauthorized.cause(), "unauthorized");
        let oauth = RuntimeError::OAuth(OAuthError::Timeout {
            url: "u".into(),
            after: Duration::from_secs(1),
        });
        assert_eq!(oauth.cause(), "oauth_timeout");
        assert!(RuntimeError::Unauthorized.needs_fresh_token());
        assert!(!RuntimeError::WriteTimeout.needs_fresh_token());
    }
}
