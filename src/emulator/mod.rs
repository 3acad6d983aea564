//! The embedded emulator (`finalping serve`, the default target, and the peer of
//! most tests). Serves, on one port, the Socket.IO Endpoint (EIO3 and EIO4, at
//! `/socket.io/` and optionally `<prefix>/socket.io/`) with scripted outputs and
//! configurable delays, and the runtime side (docs/protocol.md §2): the token
//! endpoint `/oauth/token`, the runtime WebSocket `/v2/runtime` and the webhook
//! sink `/webhook`. Shares with the client only the wire code (frames,
//! messages, codecs, limits).
//!
//! Layout: settings in [`crate::emulator_config`] (re-exported here as
//! [`config`] and [`delay`]), `http_gate`
//! (prefix, protocol and URL-token checks before the upgrade), `connect`
//! (session identity, inner handshake), `bot` (the bot turn, planned once and
//! played by either server), `turn` (socketioxide sessions: per-session queue
//! and the sink the plan plays on), [`context_store`] (context variables shared by both sides),
//! `runtime` (runtime WebSocket and routes), `oauth` (tokens),
//! `webhook_sink`, [`script`] (scripted replies by regex on the input), [`stats`] counters, [`rest`] (REST Endpoint and context
//! inject API, docs/protocol.md §3–4, with its fault switches), [`faults`]
//! (Socket.IO fault modes), `raw_socketio` (the minimal Engine.IO server
//! for connections with a frame-level fault) and [`runtime_faults`] (fault
//! modes of the runtime side).

mod bot;
mod connect;
pub mod context_store;
pub mod faults;
mod http_gate;
mod oauth;
mod raw_socketio;
pub mod rest;
mod runtime;
pub mod runtime_faults;
pub mod script;
pub mod session;
pub mod stats;
mod turn;
mod webhook_sink;

pub use crate::emulator_config as config;
pub use crate::emulator_config::delay;
pub use config::{Delay, DelayError};
pub use config::{EmulatorConfig, EmulatorConfigError, RuntimeEmulatorConfig};
pub use context_store::ContextStore;
pub use faults::{FaultCounts, SocketIoFaults};
pub use rest::{RestEmulatorConfig, RestStats};
pub use runtime::{CLOSE_IDLE, CLOSE_TOKEN_EXPIRED, RUNTIME_PATH, TOKEN_PATH, WEBHOOK_PATH};
pub use runtime_faults::{RuntimeFaultStats, RuntimeFaults};
pub use stats::{EmulatorStats, RejectionCounts};

use crate::protocol::runtime::Context;
use axum::serve::ListenerExt;
use runtime::RuntimeState;
use socketioxide::extract::SocketRef;
use socketioxide::SocketIo;
use stats::Counters;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// How long `shutdown` lets Socket.IO close its sockets.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long `shutdown` waits for the server task before aborting it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by every session of one emulator.
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub counters: Arc<Counters>,
    pub url_tokens: Arc<HashSet<String>>,
    /// Source of `trace-<n>` ids.
    pub next_trace: AtomicU64,
    /// Session order, for per-session RNG seeds.
    pub next_session: AtomicU64,
    /// Context variables, shared with the runtime WebSocket.
    pub contexts: Arc<ContextStore>,
    /// When the emulator started (the origin of `stall.at`).
    pub started: std::time::Instant,
    /// Every reply delay it injected (stall wait included), in µs: the ground
    /// truth that accuracy tests compare finalping's numbers with.
    pub injected: Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>,
}

impl Shared {
    /// Empty `url_tokens` accepts every token.
    pub fn token_allowed(&self, token: &str) -> bool {
        self.url_tokens.is_empty() || self.url_tokens.contains(token)
    }
}

/// A running emulator; dropping it (or calling `shutdown`) stops the server.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
    runtime: Arc<RuntimeState>,
    rest: Arc<rest::RestState>,
    injected: Arc<std::sync::Mutex<hdrhistogram::Histogram<u64>>>,
}

impl RunningEmulator {
    /// The reply delays injected so far (µs), stall waits included.
    pub fn injected_delays(&self) -> hdrhistogram::Histogram<u64> {
        self.injected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `http://127.0.0.1:PORT` — what a scenario's `target.url` would hold.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/v2/runtime` — the runtime WebSocket (add `?token=…&codec=…`).
    pub fn runtime_url(&self) -> String {
        format!("ws://{}{}", self.addr, runtime::RUNTIME_PATH)
    }

    /// `http://127.0.0.1:PORT/oauth/token` — the token endpoint.
    pub fn token_url(&self) -> String {
        format!("http://{}{}", self.addr, runtime::TOKEN_PATH)
    }

    /// `http://127.0.0.1:PORT/webhook` — the webhook sink.
    pub fn webhook_url(&self) -> String {
        format!("http://{}{}", self.addr, runtime::WEBHOOK_PATH)
    }

    /// How often each runtime-side fault (`runtime.faults`) fired.
    pub fn runtime_fault_stats(&self) -> RuntimeFaultStats {
        self.runtime.faults.stats()
    }

    /// Counters of the REST Endpoint and the context-inject API.
    pub fn rest_stats(&self) -> RestStats {
        self.rest.stats()
    }

    /// A snapshot of the counters (sessions, turns, outputs, acks, runtime, …).
    pub fn stats(&self) -> EmulatorStats {
        self.counters.snapshot()
    }

    /// A session's context version and variables, if an update to it succeeded.
    pub fn context_of(&self, session_id: &str) -> Option<(u64, Context)> {
        self.runtime.contexts.get(session_id)
    }

    /// The last webhook bodies received (at most 10,000), oldest first.
    pub fn webhook_bodies(&self) -> Vec<serde_json::Value> {
        self.runtime.webhook.bodies()
    }

    /// Stops accepting, closes connections and waits for the server task
    /// (at most a few seconds; then the task is aborted).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("emulator did not stop within {SHUTDOWN_GRACE:?}; aborting it");
            self.task.abort();
        }
    }
}

/// Binds `addr` (port 0 = ephemeral) and serves in a background task.
/// An invalid config is an `InvalidInput` error naming the setting.
pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<RunningEmulator> {
    start_on(config, tokio::net::TcpListener::bind(addr).await?).await
}

/// Serves on a listener the caller made (e.g. one of several `SO_REUSEPORT`
/// listeners of `serve --workers`), in a background task.
pub async fn start_on(
    config: EmulatorConfig,
    listener: tokio::net::TcpListener,
) -> std::io::Result<RunningEmulator> {
    config
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let addr = listener.local_addr()?;
    let counters = Arc::new(Counters::default());
    let url_tokens = Arc::new(config.url_tokens.iter().cloned().collect::<HashSet<_>>());

    // Each turn emits outputs + 3 packets without waiting; keep room for two turns.
    let buffer = usize::try_from(config.outputs)
        .unwrap_or(usize::MAX)
        .saturating_add(3)
        .saturating_mul(2)
        .max(128);
    let (sio_layer, io) = SocketIo::builder()
        .ping_interval(config.ping_interval.0)
        .ping_timeout(config.ping_timeout.0)
        .ack_timeout(config.ack_timeout.0)
        .max_buffer_size(buffer)
        .build_layer();

    let contexts = Arc::new(ContextStore::default());
    let runtime = Arc::new(RuntimeState {
        config: config.runtime.clone(),
        tokens: Default::default(),
        contexts: contexts.clone(),
        counters: counters.clone(),
        webhook: Default::default(),
        stop: tokio_util::sync::CancellationToken::new(),
        seed: config.seed,
        next_connection: AtomicU64::new(0),
        faults: runtime_faults::FaultState::new(config.runtime.faults.clone(), config.seed),
    });
    let injected = Arc::new(std::sync::Mutex::new(crate::metrics::new_histogram()));
    let shared = Arc::new(Shared {
        config,
        counters: counters.clone(),
        url_tokens,
        next_trace: AtomicU64::new(0),
        next_session: AtomicU64::new(0),
        contexts,
        started: std::time::Instant::now(),
        injected: injected.clone(),
    });
    let rest = Arc::new(rest::RestState::new(shared.clone(), runtime.clone()));
    let gate = Arc::new(http_gate::Gate {
        shared: shared.clone(),
        next_connection: AtomicU64::new(0),
    });
    io.ns("/", move |socket: SocketRef| {
        connect::on_connect(socket, shared.clone())
    });

    let app = runtime::router(runtime.clone())
        .merge(rest::router(rest.clone()))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found") })
        .layer(sio_layer)
        .layer(axum::middleware::from_fn_with_state(gate, http_gate::gate));
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
    });

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let runtime_stop = runtime.stop.clone();
    let task = tokio::spawn(async move {
        let closer = io.clone();
        let stop = async move {
            // A dropped sender (RunningEmulator dropped) also stops the server.
            let _ = rx.await;
            // Runtime connections close with 1001.
            runtime_stop.cancel();
            if tokio::time::timeout(CLOSE_GRACE, closer.close())
                .await
                .is_err()
            {
                tracing::debug!("socket.io close took longer than {CLOSE_GRACE:?}");
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!("emulator server stopped with an error: {e}");
        }
    });

    Ok(RunningEmulator {
        addr,
        shutdown: Some(tx),
        task,
        counters,
        injected,
        runtime,
        rest,
    })
}
