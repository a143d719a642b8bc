//! Fuzz target `http2`: arbitrary bytes into `ecapture::fuzzing::http2`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::http2(data));
