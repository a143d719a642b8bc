//! Fuzz target `hpack`: arbitrary bytes into `ecapture::fuzzing::hpack`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::hpack(data));
