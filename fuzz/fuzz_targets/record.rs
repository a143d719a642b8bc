//! Fuzz target `record`: arbitrary bytes into `ecapture::fuzzing::record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::record(data));
