//! HTTP front of the emulator, before Socket.IO sees a request: maps
//! `<prefix>/socket.io/…` onto `/socket.io/…`, refuses disabled Engine.IO
//! versions (400) and unknown URL tokens (403) at the upgrade request, and
//! draws each new WebSocket connection's fault plan (`faults`): refused with
//! 503, handed to the raw Engine.IO server, or passed on to socketioxide with
//! the plan as a request extension.

use super::faults::Fault;
use super::session::{query_param, Identity};
use super::stats::bump;
use super::Shared;
use crate::protocol::socketio::Eio;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The Socket.IO path socketioxide serves.
pub(crate) const SOCKET_IO_PATH: &str = "/socket.io";

/// The gate's state: the emulator's config (prefix, Engine.IO versions, URL
/// tokens, faults) and counters, and the connection order.
pub(crate) struct Gate {
    pub shared: Arc<Shared>,
    /// Order of new WebSocket connections: the index of their fault draws.
    pub next_connection: AtomicU64,
}

/// A WebSocket upgrade that opens a new Engine.IO session (not the upgrade
/// of a polling session, which carries `sid`).
fn is_new_websocket(req: &Request) -> bool {
    let upgrade = req
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    upgrade
        && req
            .uri()
            .query()
            .and_then(|q| query_param(q, "sid"))
            .is_none()
}

/// True for `/socket.io` and anything below it.
fn is_socket_io(path: &str) -> bool {
    path.strip_prefix(SOCKET_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `<prefix>/socket.io/…?q` → `/socket.io/…?q`; `None` if the URI is not under the prefix.
fn strip_prefix(uri: &Uri, prefix: &str) -> Option<Uri> {
    let rest = uri.path().strip_prefix(prefix)?;
    if !is_socket_io(rest) {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    Uri::builder().path_and_query(path_and_query).build().ok()
}

/// axum middleware (`from_fn_with_state`) applying the rules above.
pub(crate) async fn gate(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    if let Some(prefix) = gate.shared.config.normalized_prefix() {
        if let Some(uri) = strip_prefix(req.uri(), prefix) {
            *req.uri_mut() = uri;
        }
    }
    if !is_socket_io(req.uri().path()) {
        return next.run(req).await;
    }
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let eio = query.and_then(|q| query_param(q, "EIO"));
    let refused = |status, message: String| {
        bump(&gate.shared.counters.refused);
        (status, message).into_response()
    };
    match eio.as_deref() {
        Some("3") if !gate.shared.config.eio3 => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Engine.IO 3 is disabled on this emulator (set `eio3: true`)".into(),
            )
        }
        Some("4") if !gate.shared.config.eio4 => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Engine.IO 4 is disabled on this emulator (set `eio4: true`)".into(),
            )
        }
        _ => {}
    }
    if !gate.shared.url_tokens.is_empty() {
        if let Identity::Query(info) = Identity::from_query(query) {
            if !gate.shared.token_allowed(&info.url_token) {
                return refused(
                    StatusCode::FORBIDDEN,
                    format!(
                        "unknown URL token `{}` (not in the emulator's `url_tokens`)",
                        info.url_token
                    ),
                );
            }
        }
    }
    if !is_new_websocket(&req) {
        return next.run(req).await;
    }
    let index = gate.next_connection.fetch_add(1, Ordering::Relaxed);
    let config = &gate.shared.config;
    let plan = config.faults.plan_connection(config.seed, index);
    if plan.refuse {
        gate.shared.counters.faults.fired(Fault::Refuse);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "emulated fault: upgrade refused (`faults.refuse`)",
        )
            .into_response();
    }
    if let Some(fault) = plan.raw {
        let eio = match eio.as_deref() {
            Some("3") => Some(Eio::V3),
            Some("4") => Some(Eio::V4),
            _ => None,
        };
        if let (Identity::Query(info), Some(eio)) = (Identity::from_query(query), eio) {
            let session = super::raw_socketio::RawSession {
                fault,
                eio,
                info,
                turn_seed: plan.turn_seed,
            };
            return super::raw_socketio::upgrade(req, session, gate.shared.clone()).await;
        }
    }
    req.extensions_mut().insert(plan);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_stripped_only_before_socket_io() {
        let uri: Uri = "/cognigy/socket.io/?EIO=3&transport=websocket"
            .parse()
            .unwrap();
        assert_eq!(
            strip_prefix(&uri, "/cognigy").unwrap().to_string(),
            "/socket.io/?EIO=3&transport=websocket"
        );
        let other: Uri = "/cognigyx/socket.io/".parse().unwrap();
        assert!(strip_prefix(&other, "/cognigy").is_none());
        let other: Uri = "/cognigy/other".parse().unwrap();
        assert!(strip_prefix(&other, "/cognigy").is_none());
        assert!(is_socket_io("/socket.io") && is_socket_io("/socket.io/"));
        assert!(!is_socket_io("/socket.iox"));
    }
}
