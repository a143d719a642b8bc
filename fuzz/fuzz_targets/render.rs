//! Fuzz target `render`: arbitrary bytes into `ecapture::fuzzing::render`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::render(data));
