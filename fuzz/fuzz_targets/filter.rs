//! Fuzz target `filter`: arbitrary bytes into `ecapture::fuzzing::filter` (a tcpdump filter expression compiled to classic BPF).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::filter(data));
