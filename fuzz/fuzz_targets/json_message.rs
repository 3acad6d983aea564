//! Runtime server messages in JSON.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::json_message(data);
});
