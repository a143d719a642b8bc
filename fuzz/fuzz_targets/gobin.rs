//! Fuzz target `gobin`: arbitrary bytes into `ecapture::fuzzing::gobin`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::gobin(data));
