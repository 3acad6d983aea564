//! Engine.IO / Socket.IO text packets as the client parses them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::socketio_packet(data);
});
