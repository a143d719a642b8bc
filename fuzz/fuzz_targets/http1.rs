//! Fuzz target `http1`: arbitrary bytes into `ecapture::fuzzing::http1`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::http1(data));
