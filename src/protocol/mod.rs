//! Wire protocols spoken by the load client. Each submodule owns one protocol:
//! pure frame types with parse/encode, and a connection that reads and writes
//! them over a socket. Nothing here records metrics or knows about scenarios.

pub mod rest;
pub mod runtime;
pub mod socketio;
