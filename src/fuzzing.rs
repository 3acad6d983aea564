//! Entry points for the fuzz targets in `fuzz/` and the bounded fuzz smoke
//! test in `tests/properties.rs`: one function per decoder that reads peer or
//! user input, feeding it arbitrary bytes. Each must return (never panic,
//! never hang, never allocate without bound) whatever the bytes are; the
//! decoders' results are checked only for the invariants stated here.

use crate::protocol::runtime::{frame, Codec, ServerMessage};
use crate::protocol::socketio::OutputLimits;

/// Engine.IO packet (and Socket.IO packet inside it) from a text frame, also
/// as the client reads it (an event's first argument as an `EventArg`).
pub fn socketio_packet(data: &[u8]) {
    use crate::protocol::socketio::{event::EventArg, frame};
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frame::parse(text);
        let _ = frame::parse_socket(text);
        if let Ok(frame::SocketPacket::Event { args, .. }) =
            frame::parse_socket_as::<EventArg>(text)
        {
            let _ = args.first().map(|a| a.data.context_version());
        }
    }
}

/// A runtime binary frame: a payload, when accepted, is exactly what the header declared.
pub fn runtime_frame(data: &[u8]) {
    if let Ok(frame::Payload::Message(body)) = frame::decode(data, frame::DEFAULT_MAX_PAYLOAD) {
        assert_eq!(body.len() + 4, data.len());
    }
}

/// A runtime server message in MessagePack.
pub fn msgpack_message(data: &[u8]) {
    let _ = Codec::Msgpack.decode::<ServerMessage>(data);
}

/// A runtime server message in JSON.
pub fn json_message(data: &[u8]) {
    let _ = Codec::Json.decode::<ServerMessage>(data);
}

/// A REST Endpoint reply body: never more outputs kept than the limits allow.
pub fn rest_body(data: &[u8]) {
    let limits = OutputLimits {
        max_count: 8,
        max_bytes: 256,
    };
    if let Ok(reply) = crate::protocol::rest::endpoint::parse_reply(data, limits) {
        assert!(reply.outputs.len() <= limits.max_count);
        assert!(reply.received >= reply.outputs.len() as u64);
    }
}

/// An HdrHistogram interval log as `compare` reads it.
pub fn hlog(data: &[u8]) {
    let _ = crate::compare::load::read_hlog(data);
}

/// A scenario file as `validate` and `run` load it (no environment variables).
pub fn scenario(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = std::collections::BTreeMap::new();
        let _ = crate::scenario::load_str_with_env(text, "fuzz.yaml", &env);
    }
}

/// One fuzz target: its name (the corpus folder) and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for replaying a corpus folder per target.
pub const TARGETS: [Target; 7] = [
    ("socketio_packet", socketio_packet),
    ("runtime_frame", runtime_frame),
    ("msgpack_message", msgpack_message),
    ("json_message", json_message),
    ("rest_body", rest_body),
    ("hlog", hlog),
    ("scenario", scenario),
];
