//! The return instructions of a function, found by decoding its machine
//! code from its first instruction to its end (x86-64): where `gotls`
//! reads a Go function's results, since Go code must not get uretprobes.
//! Scanning the bytes for a RET opcode (0xc3) would also find it inside
//! other instructions' operands and put a breakpoint in the middle of an
//! instruction; decoding never does.

use iced_x86::{Decoder, DecoderOptions, Mnemonic};

/// A Go function this large is not one we hook.
pub const MAX_FUNCTION: u64 = 1 << 20;

/// The offsets (from the function's start) of every RET in `code`, the
/// function's bytes, which sit at address `addr`. An instruction that does
/// not decode is an error: the bytes are not what we think, and no probe
/// is placed rather than one in the wrong place.
pub fn find(code: &[u8], addr: u64) -> Result<Vec<u64>, String> {
    let mut d = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let mut rets = Vec::new();
    while d.can_decode() {
        let at = d.position() as u64;
        let insn = d.decode();
        if insn.is_invalid() {
            // Padding at the end (Go pads with int3 0xcc, which decodes)
            // never reaches here: a real decoding failure.
            return Err(format!("undecodable instruction at +{at:#x}"));
        }
        if insn.mnemonic() == Mnemonic::Ret {
            rets.push(at);
        }
    }
    Ok(rets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rets_are_found_by_decoding_not_by_byte() {
        let code = [
            0x48, 0xc7, 0xc0, 0xc3, 0x00, 0x00, 0x00, // mov rax, 0xc3: a 0xc3 byte that is no RET
            0xc3, // ret
            0x48, 0x83, 0xc4, 0x18, // add rsp, 0x18
            0xc2, 0x08, 0x00, // ret 8
            0xcc, 0xcc, // int3 padding
        ];
        assert_eq!(find(&code, 0x401000).unwrap(), vec![7, 12]);
        assert_eq!(find(&[], 0).unwrap(), Vec::<u64>::new());
        // A function cut mid-instruction: an error, not a guess.
        assert!(find(&[0x48, 0xc7, 0xc0, 0xc3], 0).is_err());
    }
}
