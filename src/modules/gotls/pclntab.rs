//! Go's function table (`runtime.pclntab`, the `.gopclntab` section): what
//! a stripped Go binary (`-ldflags="-s -w"`) still has, since the runtime
//! needs it for tracebacks. Only what finding a function needs is read: the
//! header, the function table, each function's name offset.
//!
//! Formats (the header's magic): Go 1.16–1.17 (0xfffffffa: entries are
//! absolute addresses), Go 1.18–1.19 (0xfffffff0) and 1.20+ (0xfffffff1),
//! whose entries are 32-bit offsets from `textStart`.
//!
//! The bytes come from a file any user may have written: every offset is
//! checked against the table, names are compared without scanning for their
//! end, and the work is linear in the number of functions (capped by the
//! table's size).

use std::collections::HashMap;

/// A function's place, from the table: virtual address and size (the
/// distance to the next function's entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Func {
    pub addr: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Go116,
    Go118,
    Go120,
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

/// An offset read from the table, as an index into it.
fn idx(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

/// The header says this is a pclntab we read (64-bit, little-endian).
pub fn looks_like(b: &[u8]) -> bool {
    format(b).is_some()
}

fn format(b: &[u8]) -> Option<Format> {
    let f = match u32_at(b, 0)? {
        0xfffffffa => Format::Go116,
        0xfffffff0 => Format::Go118,
        0xfffffff1 => Format::Go120,
        _ => return None,
    };
    // pad1, pad2 = 0; minLC 1 (x86); ptrSize 8.
    (b.get(4..8)? == [0, 0, 1, 8]).then_some(f)
}

/// The functions of `wanted` in the table `b` (the section's bytes, header
/// first), by name. `text` is the address of the text section, for Go
/// 1.18+ tables whose `textStart` the file leaves to a relocation (PIE).
/// None when `b` is not such a table or is malformed.
pub fn find(b: &[u8], text: u64, wanted: &[&str]) -> Option<HashMap<String, Func>> {
    let fmt = format(b)?;
    let nfunc = idx(u64_at(b, 8)?)?;
    let (text_start, names_off, functab_off) = match fmt {
        Format::Go116 => (0, u64_at(b, 24)?, u64_at(b, 56)?),
        Format::Go118 | Format::Go120 => {
            let ts = u64_at(b, 24)?;
            (if ts == 0 { text } else { ts }, u64_at(b, 32)?, u64_at(b, 64)?)
        }
    };
    let names = b.get(idx(names_off)?..)?;
    let functab = b.get(idx(functab_off)?..)?;
    // (entry, funcoff) pairs, nfunc of them and the end entry.
    let entry_size = if fmt == Format::Go116 { 16 } else { 8 };
    if nfunc.checked_add(1)?.checked_mul(entry_size)? > functab.len() {
        return None;
    }
    let entry = |i: usize| -> Option<(u64, usize)> {
        let at = i * entry_size;
        if fmt == Format::Go116 {
            Some((u64_at(functab, at)?, idx(u64_at(functab, at + 8)?)?))
        } else {
            Some((text_start.checked_add(u64::from(u32_at(functab, at)?))?, u32_at(functab, at + 4)? as usize))
        }
    };
    // _func.nameOff: after the entry (8 bytes before 1.18, 4 from 1.18).
    let name_field = if fmt == Format::Go116 { 8 } else { 4 };
    let mut found = HashMap::new();
    for i in 0..nfunc {
        let (addr, funcoff) = entry(i)?;
        let Some(name_off) = u32_at(functab, funcoff.checked_add(name_field)?) else { continue };
        let Some(name) = names.get(name_off as usize..) else { continue };
        for w in wanted {
            let w = w.as_bytes();
            if name.len() > w.len() && name.starts_with(w) && name[w.len()] == 0 {
                let (next, _) = entry(i + 1)?;
                if next > addr {
                    found.entry(String::from_utf8_lossy(w).into_owned()).or_insert(Func { addr, size: next - addr });
                }
            }
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Go 1.20 table of `funcs` (name, entry offset), text at `text`
    /// (textStart written as `text_start`), the last function `end` long.
    pub fn table(funcs: &[(&str, u32)], text_start: u64, end: u32) -> Vec<u8> {
        let mut names = Vec::new();
        let mut name_offs = Vec::new();
        for (n, _) in funcs {
            name_offs.push(names.len() as u32);
            names.extend_from_slice(n.as_bytes());
            names.push(0);
        }
        let header = 72usize;
        let names_off = header;
        let functab_off = names_off + names.len();
        let nfunc = funcs.len();
        let funcs_off = (nfunc + 1) * 8; // _func records after the table
        let mut b = vec![0u8; header];
        b[..4].copy_from_slice(&0xfffffff1u32.to_le_bytes());
        b[4..8].copy_from_slice(&[0, 0, 1, 8]);
        b[8..16].copy_from_slice(&(nfunc as u64).to_le_bytes());
        b[24..32].copy_from_slice(&text_start.to_le_bytes());
        b[32..40].copy_from_slice(&(names_off as u64).to_le_bytes());
        b[64..72].copy_from_slice(&(functab_off as u64).to_le_bytes());
        b.extend_from_slice(&names);
        for (i, (_, entry)) in funcs.iter().enumerate() {
            b.extend_from_slice(&entry.to_le_bytes());
            b.extend_from_slice(&((funcs_off + i * 8) as u32).to_le_bytes());
        }
        b.extend_from_slice(&end.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (i, (_, entry)) in funcs.iter().enumerate() {
            b.extend_from_slice(&entry.to_le_bytes());
            b.extend_from_slice(&name_offs[i].to_le_bytes());
        }
        b
    }

    const W: &str = "crypto/tls.(*Conn).Write";
    const R: &str = "crypto/tls.(*Conn).Read";

    #[test]
    fn finds_functions_with_their_sizes() {
        let b = table(&[("main.main", 0), (W, 0x40), ("crypto/tls.(*Conn).WriteX", 0x100), (R, 0x180)], 0x401000, 0x200);
        let f = find(&b, 0, &[W, R, "nope"]).unwrap();
        assert_eq!(f[W], Func { addr: 0x401040, size: 0xc0 });
        assert_eq!(f[R], Func { addr: 0x401180, size: 0x80 });
        assert_eq!(f.len(), 2);
        // textStart left to a relocation: the text section's address.
        let b = table(&[(W, 0x40), (R, 0x80)], 0, 0x100);
        assert_eq!(find(&b, 0x1000, &[W]).unwrap()[W].addr, 0x1040);
    }

    #[test]
    fn malformed_tables_are_refused_not_trusted() {
        let good = table(&[(W, 0x40), (R, 0x80)], 0x401000, 0x100);
        assert!(find(&good[..40], 0, &[W]).is_none(), "truncated header");
        assert!(find(&good[..good.len() - 20], 0, &[W]).is_none_or(|f| f.is_empty()));
        let mut bad = good.clone();
        bad[7] = 4; // 32-bit
        assert!(find(&bad, 0, &[W]).is_none());
        let mut huge = good.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes()); // nfunc
        assert!(find(&huge, 0, &[W]).is_none());
        let mut off = good.clone();
        off[64..72].copy_from_slice(&(1u64 << 62).to_le_bytes()); // functab beyond the table
        assert!(find(&off, 0, &[W]).is_none());
        // Every single-byte corruption: no panic.
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x7f] {
                let mut c = good.clone();
                c[i] = v;
                let _ = find(&c, 0x1000, &[W, R]);
            }
        }
        assert!(!looks_like(b"\x7fELF"));
    }
}
