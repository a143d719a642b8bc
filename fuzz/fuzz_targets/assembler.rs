//! Fuzz target `assembler`: arbitrary bytes into `ecapture::fuzzing::assembler`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::assembler(data));
