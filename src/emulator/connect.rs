//! The namespace `/` connect handler: works out the session (query, or the
//! inner handshake ack), refuses unknown URL tokens of inner-handshake sessions
//! with a namespace disconnect (`41`), and hands ready sessions to [`super::turn`].

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
    match info {
        Some(info) => open_session(socket, info, shared),
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
