//! Wire protocols spoken by the load client. Each submodule owns one protocol:
//! pure frame types with parse/encode, and a connection that reads and writes
//! them over a socket. `ws` is the one WebSocket transport (URL, TCP, TLS,
//! upgrade, error mapping, deadlines) under `socketio` and `runtime`. Nothing
//! here records metrics or knows about scenarios.

pub mod rest;
pub mod runtime;
pub mod socketio;
pub mod ws;
