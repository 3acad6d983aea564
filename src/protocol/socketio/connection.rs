//! One Socket.IO Endpoint session over one WebSocket (STUB: being implemented).

use super::{ConnectError, ConnectOptions, Disconnected, ProcessInput, Turn, WireCounters};
use std::time::Duration;

/// An open, ready (`endpoint-ready` received) Endpoint session.
pub struct Connection {
    counters: WireCounters,
}

impl Connection {
    /// Opens the WebSocket, completes the Engine.IO/Socket.IO handshake and waits
    /// for `endpoint-ready`, all within `opts.connect_timeout`.
    pub async fn connect(_opts: &ConnectOptions) -> Result<Connection, ConnectError> {
        Err(ConnectError::Protocol("not implemented".into()))
    }

    /// Sends one `processInput` and reads until `finalPing` or `timeout`.
    pub async fn turn(&mut self, _input: &ProcessInput, _timeout: Duration) -> Turn {
        unimplemented!()
    }

    /// Keeps the session alive (heartbeats, acks, unsolicited events) for `dur`.
    pub async fn idle(&mut self, _dur: Duration) -> Result<(), Disconnected> {
        Ok(())
    }

    /// Leaves the namespace (`41`) and closes the WebSocket.
    pub async fn close(self) {}

    /// Returns the counters accumulated since the last call and resets them.
    pub fn take_counters(&mut self) -> WireCounters {
        std::mem::take(&mut self.counters)
    }
}
