//! Just enough ELF64 reading to vet a TLS library before attaching to it:
//! which of the functions we hook it defines, and which libraries it needs
//! (libssl.so.3's version string lives in its libcrypto). Reads headers and
//! the few sections involved, not the whole file.

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

/// Refuse to read absurd section sizes from a damaged or hostile file.
const MAX_SECTION: u64 = 256 << 20;

impl Elf {
    pub fn open(path: &Path) -> Result<Elf> {
        let shown = path.display().to_string();
        let file = File::open(path).context(|| format!("cannot open {shown}"))?;
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
        if shentsize < 64 || shnum > 65535 {
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
        Ok(Elf { file, sections, path: shown })
    }

    fn read(&self, s: &Section) -> Result<Vec<u8>> {
        if s.size > MAX_SECTION {
            return Err(Error::runtime(format!("{}: section too large to read", self.path)));
        }
        let mut v = vec![0u8; s.size as usize];
        self.file.read_exact_at(&mut v, s.offset).context(|| format!("cannot read {}", self.path))?;
        Ok(v)
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
        let wanted: HashSet<&[u8]> = wanted.iter().map(|w| w.as_bytes()).collect();
        let mut found = HashMap::new();
        for s in self.sections.iter().filter(|s| s.kind == SHT_DYNSYM || s.kind == SHT_SYMTAB) {
            if s.entsize != 24 {
                continue;
            }
            let syms = self.read(s)?;
            let strs = self.linked_strtab(s)?;
            for sym in syms.chunks_exact(24) {
                let kind = sym[4] & 0xf;
                let shndx = u16le(sym, 6);
                if shndx == 0 || (kind != STT_FUNC && kind != STT_GNU_IFUNC) {
                    continue;
                }
                let name = cstr_at(&strs, u32le(sym, 0) as usize);
                if !wanted.contains(name) {
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
        Ok(found)
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
    fn rejects_non_elf() {
        let p = std::env::temp_dir().join(format!("ecapture-notelf-{}", std::process::id()));
        std::fs::write(&p, b"#!/bin/sh\necho hi\n").unwrap();
        let e = Elf::open(&p).err().unwrap().to_string();
        std::fs::remove_file(&p).ok();
        assert!(e.ends_with("is not an ELF file"), "{e}");
        assert!(Elf::open(Path::new("/nonexistent/libssl.so")).is_err());
    }
}
