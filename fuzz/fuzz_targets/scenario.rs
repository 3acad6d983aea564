//! Scenario YAML as validate and run load it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::scenario(data);
});
