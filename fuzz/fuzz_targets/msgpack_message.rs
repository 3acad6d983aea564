//! Runtime server messages in MessagePack.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::msgpack_message(data);
});
