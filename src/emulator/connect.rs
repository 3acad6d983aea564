//! The namespace `/` connect handler: works out the session (query, or the
//! inner handshake ack), refuses unknown URL tokens of inner-handshake sessions
//! with a namespace disconnect (`41`), applies the connection's
//! `no_endpoint_ready` fault, and hands ready sessions to [`super::turn`].

use super::faults::{ConnectionPlan, Fault};
use super::session::{HandshakeAck, Identity, SessionInfo};
use super::stats::bump;
use super::turn::{open_session, NO_ARGS};
use super::Shared;
use socketioxide::extract::SocketRef;
use std::sync::Arc;

/// Called by socketioxide once the client has joined `/` (EIO3: at once; EIO4: after `40`).
pub(crate) async fn on_connect(socket: SocketRef, shared: Arc<Shared>) {
    // Query sessions with an unknown token never get here: the HTTP gate refused them.
    let info = match Identity::from_query(socket.req_parts().uri.query()) {
        Identity::Query(info) => Some(info),
        Identity::InnerHandshake => inner_handshake(&socket)
            .await
            .filter(|info| shared.token_allowed(&info.url_token)),
    };
    // Drawn by the HTTP gate; absent for polling sessions (no faults).
    let plan = socket
        .req_parts()
        .extensions
        .get::<ConnectionPlan>()
        .copied();
    match info {
        Some(_) if plan.is_some_and(|p| p.no_endpoint_ready) => {
            // Joined "/", but the session is never made ready: the client's
            // connect times out. socketioxide keeps the heartbeats going.
            shared.counters.faults.fired(Fault::NoEndpointReady);
        }
        Some(info) => open_session(socket, info, shared, plan),
        None => {
            bump(&shared.counters.refused);
            // Sends `41` (leave namespace); the official client then closes.
            let _ = socket.disconnect();
        }
    }
}

/// Emits `420["handshake"]` and reads the ids from the client's `430[{…}]`.
/// `None` if the ack does not come within `ack_timeout` or cannot be read.
async fn inner_handshake(socket: &SocketRef) -> Option<SessionInfo> {
    let reply = socket
        .emit_with_ack::<_, HandshakeAck>("handshake", &NO_ARGS)
        .ok()?;
    reply.await.ok().map(SessionInfo::from)
}
