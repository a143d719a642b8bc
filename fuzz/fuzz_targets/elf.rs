//! Fuzz target `elf`: arbitrary bytes into `ecapture::fuzzing::elf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::elf(data));
