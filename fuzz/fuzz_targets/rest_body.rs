//! REST Endpoint reply bodies.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::rest_body(data);
});
