//! HdrHistogram interval logs as compare reads them.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    finalping::fuzzing::hlog(data);
});
