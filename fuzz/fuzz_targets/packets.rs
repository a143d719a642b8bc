//! Fuzz target `packets`: arbitrary bytes into `ecapture::fuzzing::packets` (frames and secrets through the pcapng writer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecapture::fuzzing::packets(data));
