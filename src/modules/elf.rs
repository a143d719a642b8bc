//! Just enough ELF64 reading to vet a TLS library before attaching to it:
//! which of the functions we hook it defines, and which libraries it needs
//! (libssl.so.3's version string lives in its libcrypto). Reads headers and
//! the few sections involved, not the whole file.
//!
//! Any process can map a file named like a library, so the file is hostile:
//! every size is checked against the file's before anything is allocated,
//! string tables are capped, symbol tables are read in blocks, and the
//! dynamic symbols (small) are searched before the full table.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Context, Error, Result};

const SHT_SYMTAB: u32 = 2;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const DT_NEEDED: u64 = 1;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;

#[derive(Debug, Clone, Copy)]
struct Section {
    kind: u32,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

pub struct Elf {
    file: File,
    len: u64,
    sections: Vec<Section>,
    path: String,
}

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64le(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// The largest string or dynamic table read into memory.
const MAX_SECTION: u64 = 64 << 20;
/// Symbols read at a time.
const SYM_BLOCK: usize = 4096;

impl Elf {
    pub fn open(path: &Path) -> Result<Elf> {
        let shown = path.display().to_string();
        let file = File::open(path).context(|| format!("cannot open {shown}"))?;
        let len = file.metadata().context(|| format!("cannot read {shown}"))?.len();
        let mut eh = [0u8; 64];
        file.read_exact_at(&mut eh, 0).map_err(|_| Error::runtime(format!("{shown} is not an ELF file")))?;
        if &eh[..4] != b"\x7fELF" {
            return Err(Error::runtime(format!("{shown} is not an ELF file")));
        }
        if eh[4] != 2 || eh[5] != 1 {
            return Err(Error::runtime(format!("{shown} is not a 64-bit little-endian ELF file")));
        }
        let shoff = u64le(&eh, 0x28);
        let shentsize = u16le(&eh, 0x3a) as u64;
        let shnum = u16le(&eh, 0x3c) as u64;
        if shentsize != 64 || shoff.checked_add(shentsize * shnum).is_none_or(|end| end > len) {
            return Err(Error::runtime(format!("{shown}: malformed ELF section headers")));
        }
        let mut raw = vec![0u8; (shentsize * shnum) as usize];
        file.read_exact_at(&mut raw, shoff).map_err(|_| Error::runtime(format!("{shown}: truncated ELF file")))?;
        let sections = raw
            .chunks_exact(shentsize as usize)
            .map(|s| Section {
                kind: u32le(s, 4),
                addr: u64le(s, 0x10),
                offset: u64le(s, 0x18),
                size: u64le(s, 0x20),
                link: u32le(s, 0x28),
                entsize: u64le(s, 0x38),
            })
            .collect();
        Ok(Elf { file, len, sections, path: shown })
    }

    /// `size` bytes at `offset`, checked against the file first.
    fn read_at(&self, offset: u64, size: u64) -> Result<Vec<u8>> {
        if offset.checked_add(size).is_none_or(|end| end > self.len) {
            return Err(Error::runtime(format!("{}: a section lies beyond the end of the file", self.path)));
        }
        let mut v = vec![0u8; size as usize];
        self.file.read_exact_at(&mut v, offset).context(|| format!("cannot read {}", self.path))?;
        Ok(v)
    }

    fn read(&self, s: &Section) -> Result<Vec<u8>> {
        if s.size > MAX_SECTION {
            return Err(Error::runtime(format!("{}: section too large to read", self.path)));
        }
        self.read_at(s.offset, s.size)
    }

    fn linked_strtab(&self, s: &Section) -> Result<Vec<u8>> {
        let st = self
            .sections
            .get(s.link as usize)
            .ok_or_else(|| Error::runtime(format!("{}: bad string table link", self.path)))?;
        self.read(st)
    }

    /// The functions of `wanted` defined in the dynamic or static symbol
    /// table, with their file offsets (what a uprobe is attached at).
    pub fn function_offsets(&self, wanted: &[&str]) -> Result<HashMap<String, u64>> {
        let want: HashSet<&[u8]> = wanted.iter().map(|w| w.as_bytes()).collect();
        let mut found = HashMap::new();
        // The dynamic symbols first: a shared library exports what we hook
        // there, and the full table (much larger) is read only if not.
        for kind in [SHT_DYNSYM, SHT_SYMTAB] {
            if found.len() == want.len() {
                break;
            }
            for s in self.sections.iter().filter(|s| s.kind == kind && s.entsize == 24) {
                self.scan_symbols(s, &want, &mut found)?;
            }
        }
        Ok(found)
    }

    /// Looks for the `want`ed functions in symbol table `s`, a block at a time.
    fn scan_symbols(&self, s: &Section, want: &HashSet<&[u8]>, found: &mut HashMap<String, u64>) -> Result<()> {
        let strs = self.linked_strtab(s)?;
        if s.offset.checked_add(s.size).is_none_or(|end| end > self.len) {
            return Err(Error::runtime(format!("{}: a symbol table lies beyond the end of the file", self.path)));
        }
        let total = s.size / 24;
        let mut at = 0u64;
        while at < total {
            let n = (total - at).min(SYM_BLOCK as u64);
            let syms = self.read_at(s.offset + at * 24, n * 24)?;
            at += n;
            for sym in syms.chunks_exact(24) {
                let kind = sym[4] & 0xf;
                let shndx = u16le(sym, 6);
                if shndx == 0 || (kind != STT_FUNC && kind != STT_GNU_IFUNC) {
                    continue;
                }
                let name = cstr_at(&strs, u32le(sym, 0) as usize);
                if !want.contains(name) {
                    continue;
                }
                // File offset = address - section address + section offset.
                let Some(sec) = self.sections.get(shndx as usize) else { continue };
                let value = u64le(sym, 8);
                if let Some(off) = value.checked_sub(sec.addr).and_then(|d| d.checked_add(sec.offset)) {
                    found.entry(String::from_utf8_lossy(name).into_owned()).or_insert(off);
                }
            }
        }
        Ok(())
    }

    /// Calls `found` at each occurrence of `needle` in the first `limit`
    /// bytes of the file, with what follows it (at least 256 bytes, unless
    /// the file ends first), until it returns true. The file is read a block
    /// at a time: a library's version string, without reading it whole.
    pub fn find_bytes(&self, needle: &[u8], limit: u64, mut found: impl FnMut(&[u8]) -> bool) -> Result<bool> {
        const BLOCK: usize = 1 << 20;
        const AFTER: usize = 256;
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + AFTER + needle.len());
        let (mut at, end) = (0u64, self.len.min(limit));
        while at < end {
            let n = (end - at).min(BLOCK as u64);
            let start = buf.len();
            buf.resize(start + n as usize, 0);
            self.file.read_exact_at(&mut buf[start..], at).context(|| format!("cannot read {}", self.path))?;
            at += n;
            // Matches starting before `upto` have their AFTER bytes here;
            // later ones are looked at again with the next block.
            let upto = if at >= end { buf.len() } else { buf.len().saturating_sub(AFTER + needle.len()) };
            let mut i = 0;
            while let Some(p) = buf[i..].windows(needle.len()).position(|w| w == needle) {
                if i + p >= upto {
                    break;
                }
                if found(&buf[i + p..]) {
                    return Ok(true);
                }
                i += p + 1;
            }
            buf.drain(..upto);
        }
        Ok(false)
    }

    /// DT_NEEDED entries, e.g. ["libcrypto.so.3", "libc.so.6"].
    pub fn needed(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for s in self.sections.iter().filter(|s| s.kind == SHT_DYNAMIC) {
            let dynamic = self.read(s)?;
            let strs = self.linked_strtab(s)?;
            for d in dynamic.chunks_exact(16) {
                let (tag, val) = (u64le(d, 0), u64le(d, 8));
                if tag == 0 {
                    break;
                }
                if tag == DT_NEEDED {
                    out.push(String::from_utf8_lossy(cstr_at(&strs, val as usize)).into_owned());
                }
            }
        }
        Ok(out)
    }
}

fn cstr_at(strs: &[u8], off: usize) -> &[u8] {
    let s = strs.get(off..).unwrap_or(&[]);
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_test_binary_and_its_libc() {
        // The test binary is an ELF file linked against libc (maybe stripped).
        let exe = std::env::current_exe().unwrap();
        let elf = Elf::open(&exe).unwrap();
        let needed = elf.needed().unwrap();
        assert!(needed.iter().any(|n| n.starts_with("libc.so")), "{needed:?}");
        // The libc it runs with exports malloc, in its dynamic symbol table.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.contains("/libc.so")).unwrap();
        let f = Elf::open(Path::new(libc)).unwrap().function_offsets(&["malloc", "no_such_function_here"]).unwrap();
        assert!(f.contains_key("malloc"), "{f:?}");
        assert!(!f.contains_key("no_such_function_here"));
        assert!(f["malloc"] > 0);
    }

    #[test]
    fn finds_bytes_across_blocks_and_never_cut() {
        let p = std::env::temp_dir().join(format!("ecapture-findbytes-{}", std::process::id()));
        let mut data = b"\x7fELF\x02\x01".to_vec();
        data.resize(64, 0);
        data[0x3a] = 64; // e_shentsize, no sections
        data.resize((1 << 20) - 3, b'.');
        data.extend_from_slice(b"OpenSSL 3.0.19 27 Jan 2026");
        std::fs::write(&p, &data).unwrap();
        let elf = Elf::open(&p).unwrap();
        let mut seen = Vec::new();
        assert!(elf.find_bytes(b"OpenSSL ", u64::MAX, |rest| {
            seen.push(String::from_utf8_lossy(&rest[..rest.len().min(14)]).into_owned());
            true
        }).unwrap());
        assert_eq!(seen, vec!["OpenSSL 3.0.19"], "the match across the block boundary, whole");
        assert!(!elf.find_bytes(b"OpenSSL ", 1 << 20, |_| true).unwrap(), "beyond the limit");
        std::fs::remove_file(&p).ok();
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating() {
        let p = std::env::temp_dir().join(format!("ecapture-hostile-elf-{}", std::process::id()));
        let mut data = b"\x7fELF\x02\x01".to_vec();
        data.resize(64, 0);
        data[0x28..0x30].copy_from_slice(&64u64.to_le_bytes()); // e_shoff
        data[0x3a] = 0xff; // e_shentsize 65535
        data[0x3b] = 0xff;
        data[0x3c] = 0xff; // e_shnum 65535: 4 GiB of headers
        data[0x3d] = 0xff;
        std::fs::write(&p, &data).unwrap();
        assert!(Elf::open(&p).err().unwrap().to_string().contains("malformed"));
        std::fs::remove_file(&p).ok();
    }

    #[test]
    fn rejects_non_elf() {
        let p = std::env::temp_dir().join(format!("ecapture-notelf-{}", std::process::id()));
        std::fs::write(&p, b"#!/bin/sh\necho hi\n").unwrap();
        let e = Elf::open(&p).err().unwrap().to_string();
        std::fs::remove_file(&p).ok();
        assert!(e.ends_with("is not an ELF file"), "{e}");
        assert!(Elf::open(Path::new("/nonexistent/libssl.so")).is_err());
    }
}
