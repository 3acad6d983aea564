//! HTTP front of the emulator, before Socket.IO sees a request: maps
//! `<prefix>/socket.io/…` onto `/socket.io/…`, refuses disabled Engine.IO
//! versions (400) and unknown URL tokens (403) at the upgrade request.

use super::session::{query_param, Identity};
use super::stats::{bump, Counters};
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::sync::Arc;

/// The Socket.IO path socketioxide serves.
pub(crate) const SOCKET_IO_PATH: &str = "/socket.io";

/// What the gate checks; built once from the config.
#[derive(Debug)]
pub(crate) struct Gate {
    pub prefix: Option<String>,
    pub eio3: bool,
    pub eio4: bool,
    pub url_tokens: Arc<HashSet<String>>,
    pub counters: Arc<Counters>,
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
    if let Some(prefix) = gate.prefix.as_deref() {
        if let Some(uri) = strip_prefix(req.uri(), prefix) {
            *req.uri_mut() = uri;
        }
    }
    if !is_socket_io(req.uri().path()) {
        return next.run(req).await;
    }
    let query = req.uri().query();
    let eio = query.and_then(|q| query_param(q, "EIO"));
    let refused = |status, message: String| {
        bump(&gate.counters.refused);
        (status, message).into_response()
    };
    match eio.as_deref() {
        Some("3") if !gate.eio3 => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Engine.IO 3 is disabled on this emulator (set `eio3: true`)".into(),
            )
        }
        Some("4") if !gate.eio4 => {
            return refused(
                StatusCode::BAD_REQUEST,
                "Engine.IO 4 is disabled on this emulator (set `eio4: true`)".into(),
            )
        }
        _ => {}
    }
    if !gate.url_tokens.is_empty() {
        if let Identity::Query(info) = Identity::from_query(query) {
            if !gate.url_tokens.contains(&info.url_token) {
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
