//! Runtime length-prefixed binary frames.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::runtime_frame(data);
});
