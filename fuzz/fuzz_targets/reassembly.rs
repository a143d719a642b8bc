//! Fuzz target `reassembly`: arbitrary bytes into `ecapture::fuzzing::reassembly`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::reassembly(data));
