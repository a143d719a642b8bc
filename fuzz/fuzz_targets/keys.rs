//! Fuzz target `keys`: arbitrary bytes into `ecapture::fuzzing::keys`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::keys(data));
