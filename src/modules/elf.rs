//! Just enough ELF64 reading to vet a TLS library before attaching to it:
//! which of the functions we hook it defines, and which libraries it needs
//! (libssl.so.3's version string lives in its libcrypto). Reads headers and
//! the few sections involved, not the whole file.
//!
//! Any process can map a file named like a library, so the file is hostile:
//! every size is checked against the file's before anything is allocated,
//! string tables are capped, symbol tables are read in blocks, the
//! dynamic symbols (small) are searched before the full table, and byte
//! searches look only at read-only data sections, up to a limit in all.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Context, Error, Result};

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_DYNAMIC: u32 = 6;
const SHT_DYNSYM: u32 = 11;
const DT_NEEDED: u64 = 1;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
const SHF_WRITE: u64 = 0x1;
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;

/// e_machine of the architecture this ecapture runs on: a library or Go
/// program built for another one cannot be probed by this kernel.
#[cfg(target_arch = "x86_64")]
pub const EM_NATIVE: u16 = EM_X86_64;
#[cfg(target_arch = "aarch64")]
pub const EM_NATIVE: u16 = EM_AARCH64;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// An e_machine as people name it.
fn machine_name(m: u16) -> String {
    match m {
        EM_X86_64 => "x86_64".into(),
        EM_AARCH64 => "aarch64".into(),
        3 => "i386".into(),
        40 => "32-bit ARM".into(),
        243 => "RISC-V".into(),
        other => format!("machine {other}"),
    }
}

#[derive(Debug, Clone, Copy)]
struct Section {
    name: u32,
    kind: u32,
    flags: u64,
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
    /// The section name table (empty when unreadable).
    names: Vec<u8>,
}

/// A function found in a symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// File offset (what a uprobe is attached at).
    pub offset: u64,
    /// Virtual address.
    pub addr: u64,
    /// Size in bytes (0 when the table does not say).
    pub size: u64,
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
/// The largest section name table read.
const MAX_SHSTRTAB: u64 = 1 << 20;
/// Symbols read at a time.
const SYM_BLOCK: usize = 4096;
/// Symbols looked at in one file, at most, all tables together (96 MiB of
/// tables: a large unstripped binary has a few hundred thousand; a hostile
/// file can claim billions, or the same table thousands of times).
const MAX_SYMBOLS: u64 = 1 << 22;

/// Whether `path` is an ELF file of the architecture this ecapture runs on
/// (false when unreadable or not ELF): for searches of library directories,
/// which on a multiarch host may hold other architectures' libraries.
pub fn is_native(path: &Path) -> bool {
    let mut eh = [0u8; 20];
    File::open(path).and_then(|f| f.read_exact_at(&mut eh, 0)).is_ok() && &eh[..4] == b"\x7fELF" && u16le(&eh, 0x12) == EM_NATIVE
}

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
        let machine = u16le(&eh, 0x12);
        if machine != EM_NATIVE {
            return Err(Error::runtime(format!(
                "{shown} is built for {}, but this ecapture is built for {} (use the {} build of ecapture)",
                machine_name(machine),
                machine_name(EM_NATIVE),
                machine_name(machine)
            )));
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
                name: u32le(s, 0),
                kind: u32le(s, 4),
                flags: u64le(s, 8),
                addr: u64le(s, 0x10),
                offset: u64le(s, 0x18),
                size: u64le(s, 0x20),
                link: u32le(s, 0x28),
                entsize: u64le(s, 0x38),
            })
            .collect();
        let shstrndx = u16le(&eh, 0x3e) as usize;
        let mut elf = Elf { file, len, sections, path: shown, names: Vec::new() };
        // Section names (for the few looked up by name): a small table, capped.
        if let Some(st) = elf.sections.get(shstrndx).copied().filter(|s| s.kind == SHT_STRTAB && s.size <= MAX_SHSTRTAB) {
            elf.names = elf.read(&st).unwrap_or_default();
        }
        Ok(elf)
    }

    /// The section called `name` (e.g. ".gopclntab"): (address, file offset, size).
    pub fn section(&self, name: &str) -> Option<(u64, u64, u64)> {
        self.sections
            .iter()
            .find(|s| s.kind != 0 && cstr_at(&self.names, s.name as usize) == name.as_bytes())
            .map(|s| (s.addr, s.offset, s.size))
    }

    /// The contents of section `name`, at most `max` bytes of it is an
    /// error; None when there is no such section (or it has no contents).
    pub fn read_section(&self, name: &str, max: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let Some(s) = self.sections.iter().find(|s| s.kind == SHT_PROGBITS && cstr_at(&self.names, s.name as usize) == name.as_bytes())
        else {
            return Ok(None);
        };
        if s.size > max {
            return Err(Error::runtime(format!("{}: section {name} too large to read ({} bytes)", self.path, s.size)));
        }
        Ok(Some((s.addr, self.read_at(s.offset, s.size)?)))
    }

    /// The file offset of virtual address `addr`, in a loaded section with
    /// contents in the file.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        self.sections
            .iter()
            .find(|s| s.kind == SHT_PROGBITS && s.flags & SHF_ALLOC != 0 && addr >= s.addr && addr - s.addr < s.size)
            .and_then(|s| (addr - s.addr).checked_add(s.offset))
            .filter(|&off| off < self.len)
    }

    /// The loaded, executable section holding `addr`: (address, size).
    pub fn code_section_of(&self, addr: u64) -> Option<(u64, u64)> {
        self.sections
            .iter()
            .find(|s| s.kind == SHT_PROGBITS && s.flags & SHF_EXECINSTR != 0 && addr >= s.addr && addr - s.addr < s.size)
            .map(|s| (s.addr, s.size))
    }

    /// `size` bytes at file offset `offset` (at most `max`).
    pub fn bytes_at(&self, offset: u64, size: u64, max: u64) -> Result<Vec<u8>> {
        if size > max {
            return Err(Error::runtime(format!("{}: {size} bytes at {offset:#x}: more than the {max} expected", self.path)));
        }
        self.read_at(offset, size)
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
        Ok(self.functions(wanted)?.into_iter().map(|(name, f)| (name, f.offset)).collect())
    }

    /// The functions of `wanted` defined in the dynamic or static symbol
    /// table: file offset, address and size.
    pub fn functions(&self, wanted: &[&str]) -> Result<HashMap<String, Function>> {
        let want: HashSet<&[u8]> = wanted.iter().map(|w| w.as_bytes()).collect();
        self.functions_matching(&|name| want.contains(name), want.len())
    }

    /// The functions whose names start with `prefix` (C++ mangled names of
    /// one function with different signatures), in both symbol tables; not
    /// the compiler's parts and clones of them (`.cold`, `.part.0`,
    /// `.isra.0`, `.constprop.0`: not the function's entry, or not its
    /// calling convention).
    pub fn functions_starting_with(&self, prefix: &str) -> Result<HashMap<String, Function>> {
        self.functions_matching(&|name| name.starts_with(prefix.as_bytes()) && !name.contains(&b'.'), usize::MAX)
    }

    /// The functions whose names `want` accepts; the static table is not
    /// read once `enough` were found in the dynamic one.
    fn functions_matching(&self, want: &dyn Fn(&[u8]) -> bool, enough: usize) -> Result<HashMap<String, Function>> {
        let mut found = HashMap::new();
        let mut budget = MAX_SYMBOLS;
        // The dynamic symbols first: a shared library exports what we hook
        // there, and the full table (much larger) is read only if not.
        for kind in [SHT_DYNSYM, SHT_SYMTAB] {
            if found.len() >= enough {
                break;
            }
            for s in self.sections.iter().filter(|s| s.kind == kind && s.entsize == 24) {
                self.scan_symbols(s, want, &mut found, &mut budget)?;
            }
        }
        Ok(found)
    }

    /// Looks for the `want`ed functions in symbol table `s`, a block at a
    /// time, taking its symbols from `budget`.
    fn scan_symbols(&self, s: &Section, want: &dyn Fn(&[u8]) -> bool, found: &mut HashMap<String, Function>, budget: &mut u64) -> Result<()> {
        if s.offset.checked_add(s.size).is_none_or(|end| end > self.len) {
            return Err(Error::runtime(format!("{}: a symbol table lies beyond the end of the file", self.path)));
        }
        let total = s.size / 24;
        if total > *budget {
            return Err(Error::runtime(format!("{}: more than {MAX_SYMBOLS} symbols", self.path)));
        }
        *budget -= total;
        let strs = self.linked_strtab(s)?;
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
                if !want(name) {
                    continue;
                }
                // File offset = address - section address + section offset.
                let Some(sec) = self.sections.get(shndx as usize) else { continue };
                let value = u64le(sym, 8);
                if let Some(off) = value.checked_sub(sec.addr).and_then(|d| d.checked_add(sec.offset)) {
                    let f = Function { offset: off, addr: value, size: u64le(sym, 16) };
                    found.entry(String::from_utf8_lossy(name).into_owned()).or_insert(f);
                }
            }
        }
        Ok(())
    }

    /// The file ranges of the read-only data sections (`.rodata` and the
    /// like: loaded, neither writable nor executable, with contents in the
    /// file), clamped to the file, overlaps merged, at most `limit` bytes in
    /// all: a hostile file's thousands of sections claiming gigabytes cost
    /// no more than that.
    fn rodata(&self, limit: u64) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = self
            .sections
            .iter()
            .filter(|s| {
                // Read-only data, and string tables (symbol names: BoringSSL's C++ namespace).
                (s.kind == SHT_PROGBITS && s.flags & SHF_ALLOC != 0 && s.flags & (SHF_WRITE | SHF_EXECINSTR) == 0)
                    || s.kind == SHT_STRTAB
            })
            .filter(|s| s.offset < self.len)
            .map(|s| (s.offset, s.offset.saturating_add(s.size).min(self.len)))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut left = limit;
        merged
            .into_iter()
            .filter_map(|(start, end)| {
                let n = (end - start).min(left);
                left -= n;
                (n > 0).then_some((start, start + n))
            })
            .collect()
    }

    /// Calls `found` at each occurrence of one of `needles` in the file's
    /// read-only data sections (at most `limit` bytes of them), with what
    /// follows it (at least 256 bytes, unless the section or the data
    /// before a hole ends first), until it returns true. Sections are read a
    /// block at a time, holes of sparse files skipped (they read as zeros),
    /// and scanned for the needles' first bytes before anything is compared:
    /// a library's version string, without reading the library whole.
    pub fn find_bytes(&self, needles: &[&[u8]], limit: u64, mut found: impl FnMut(&[u8]) -> bool) -> Result<bool> {
        const BLOCK: usize = 1 << 20;
        const AFTER: usize = 256;
        let longest = needles.iter().map(|n| n.len()).max().unwrap_or(0);
        if needles.iter().any(|n| n.is_empty()) || longest == 0 {
            return Ok(false);
        }
        let firsts: Vec<u8> = needles.iter().map(|n| n[0]).collect();
        // Matches in buf[..upto] (with what follows them) go to `found`.
        let mut scan = |buf: &[u8], upto: usize| {
            let mut i = 0;
            while let Some(p) = find_any_byte(&buf[i..upto], &firsts) {
                let rest = &buf[i + p..];
                if needles.iter().any(|n| rest.starts_with(n)) && found(rest) {
                    return true;
                }
                i += p + 1;
            }
            false
        };
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + AFTER + longest);
        for (mut at, end) in self.rodata(limit) {
            buf.clear();
            while at < end {
                let data = crate::sys::os::next_data(&self.file, at).unwrap_or(end).min(end);
                if data > at {
                    // A hole: what was read before it is all there is.
                    if scan(&buf, buf.len()) {
                        return Ok(true);
                    }
                    buf.clear();
                    at = data;
                    continue;
                }
                let n = (end - at).min(BLOCK as u64);
                let start = buf.len();
                buf.resize(start + n as usize, 0);
                self.file.read_exact_at(&mut buf[start..], at).context(|| format!("cannot read {}", self.path))?;
                at += n;
                // Matches starting before `upto` have their AFTER bytes here;
                // later ones are looked at again with the next block.
                let upto = if at >= end { buf.len() } else { buf.len().saturating_sub(AFTER + longest) };
                if scan(&buf, upto) {
                    return Ok(true);
                }
                buf.drain(..upto);
            }
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

/// The first position of any of `bytes` (one or two distinct values) in
/// `hay`: 64 bytes at a time without an early exit (which the compiler
/// vectorises), then byte by byte in the block that has one. Most of a
/// library has none of them.
fn find_any_byte(hay: &[u8], bytes: &[u8]) -> Option<usize> {
    let (x, y) = match bytes {
        [] => return None,
        [x] => (*x, *x),
        [x, y] => (*x, *y),
        _ => return hay.iter().position(|b| bytes.contains(b)),
    };
    let mut chunks = hay.chunks_exact(64);
    let mut base = 0;
    for chunk in chunks.by_ref() {
        if chunk.iter().fold(0u8, |any, &b| any | u8::from(b == x) | u8::from(b == y)) != 0 {
            return chunk.iter().position(|&b| b == x || b == y).map(|p| base + p);
        }
        base += 64;
    }
    chunks.remainder().iter().position(|&b| b == x || b == y).map(|p| base + p)
}

fn cstr_at(strs: &[u8], off: usize) -> &[u8] {
    let s = strs.get(off..).unwrap_or(&[]);
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    // A static (musl) test binary has no libc to read.
    #[cfg(target_env = "gnu")]
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

    /// An ELF file: its header, `data` after it (from offset 64), then
    /// section headers (kind, flags, offset, size) after a null one.
    fn elf_file(tag: &str, data: &[u8], sections: &[(u32, u64, u64, u64)]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("ecapture-elf-{tag}-{}", std::process::id()));
        let mut f = b"\x7fELF\x02\x01".to_vec();
        f.resize(64, 0);
        f[0x12..0x14].copy_from_slice(&EM_NATIVE.to_le_bytes());
        f.extend_from_slice(data);
        let shoff = f.len() as u64;
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x3a] = 64; // e_shentsize
        f[0x3c..0x3e].copy_from_slice(&(sections.len() as u16 + 1).to_le_bytes());
        f.extend_from_slice(&[0u8; 64]);
        for &(kind, flags, offset, size) in sections {
            let mut h = [0u8; 64];
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            f.extend_from_slice(&h);
        }
        std::fs::write(&p, &f).unwrap();
        p
    }

    const RODATA: (u32, u64) = (SHT_PROGBITS, SHF_ALLOC);

    #[test]
    fn finds_bytes_across_blocks_and_never_cut() {
        let mut data = vec![b'.'; (1 << 20) - 3 - 64];
        data.extend_from_slice(b"OpenSSL 3.0.19 27 Jan 2026");
        let p = elf_file("findbytes", &data, &[(RODATA.0, RODATA.1, 64, data.len() as u64)]);
        let elf = Elf::open(&p).unwrap();
        let mut seen = Vec::new();
        assert!(elf.find_bytes(&[b"OpenSSL "], u64::MAX, |rest| {
            seen.push(String::from_utf8_lossy(&rest[..rest.len().min(14)]).into_owned());
            true
        }).unwrap());
        assert_eq!(seen, vec!["OpenSSL 3.0.19"], "the match across the block boundary, whole");
        assert!(!elf.find_bytes(&[b"OpenSSL "], (1 << 20) - 64 - 8, |_| true).unwrap(), "beyond the limit");
        std::fs::remove_file(&p).ok();
    }

    #[test]
    fn finds_bytes_only_in_read_only_data_and_within_the_limit() {
        // A marker in code, one in writable data, one in .rodata.
        let mut data = Vec::new();
        for text in [&b"xx OpenSSL 1.0.2u text"[..], b"xx OpenSSL 1.1.1w data", b"xx OpenSSL 3.0.19 rodata"] {
            let mut part = text.to_vec();
            part.resize(4096, 0);
            data.extend_from_slice(&part);
        }
        let (text, rw, ro) = (64, 64 + 4096, 64 + 8192);
        let mut sections = vec![
            (SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text, 4096),
            (SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, rw, 4096),
            (RODATA.0, RODATA.1, ro, 4096),
        ];
        let versions = |p: &Path| {
            let mut seen = Vec::new();
            Elf::open(p).unwrap().find_bytes(&[b"OpenSSL ", b"BoringSSL"], 1 << 30, |rest| {
                seen.push(String::from_utf8_lossy(&rest[8..14]).into_owned());
                false
            }).unwrap();
            seen
        };
        let p = elf_file("rodata", &data, &sections);
        assert_eq!(versions(&p), vec!["3.0.19"], "code and writable data are not searched");
        // Hostile headers: thousands of read-only sections claiming 4 GiB
        // from the start of the file. They are clamped to the file and
        // merged: the file is read once, not 4,000 times nor 4 GiB.
        sections.extend(std::iter::repeat_n((RODATA.0, RODATA.1, 0, 4 << 30), 4000));
        let p2 = elf_file("rodata-hostile", &data, &sections);
        let elf = Elf::open(&p2).unwrap();
        let len = std::fs::metadata(&p2).unwrap().len();
        assert_eq!(elf.rodata(u64::MAX), vec![(0, len)]);
        assert_eq!(elf.rodata(1000), vec![(0, 1000)], "at most the limit in all");
        assert_eq!(versions(&p2), vec!["1.0.2u", "1.1.1w", "3.0.19"], "each occurrence once");
        // A section beyond the end of the file, and empty needles, find nothing.
        let p3 = elf_file("rodata-beyond", &data, &[(RODATA.0, RODATA.1, 1 << 40, 4096)]);
        assert!(Elf::open(&p3).unwrap().rodata(u64::MAX).is_empty());
        assert!(!Elf::open(&p).unwrap().find_bytes(&[b""], u64::MAX, |_| true).unwrap());
        for f in [p, p2, p3] {
            std::fs::remove_file(f).ok();
        }
    }

    #[test]
    fn first_byte_scan() {
        let mut hay = vec![b'.'; 300];
        assert_eq!(find_any_byte(&hay, b"OB"), None);
        hay[130] = b'B';
        hay[200] = b'O';
        assert_eq!(find_any_byte(&hay, b"OB"), Some(130));
        assert_eq!(find_any_byte(&hay, b"O"), Some(200));
        assert_eq!(find_any_byte(&hay[..10], b"O"), None);
        assert_eq!(find_any_byte(b"", b"O"), None);
    }

    #[test]
    fn symbols_are_capped_per_file() {
        // A sparse file of 200 MiB; tables of zero symbols in it (a string
        // table of one byte at offset 64).
        let big = 200u64 << 20;
        let table = |offset: u64, n: u64| (SHT_DYNSYM, 0, offset, n * 24);
        let file = |tag: &str, tables: &[(u32, u64, u64, u64)]| {
            let mut sections = vec![(3, 0, 64, 1)]; // section 1: the string table
            sections.extend_from_slice(tables);
            let p = elf_file(tag, b"\0", &sections);
            std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(big).unwrap();
            p
        };
        let link = |p: &Path| {
            // Point every symbol table at section 1 and give it 24-byte entries.
            let f = std::fs::OpenOptions::new().read(true).write(true).open(p).unwrap();
            let mut eh = [0u8; 64];
            f.read_exact_at(&mut eh, 0).unwrap();
            let (shoff, shnum) = (u64le(&eh, 0x28), u16le(&eh, 0x3c) as u64);
            for i in 2..shnum {
                let h = shoff + i * 64;
                f.write_all_at(&[1], h + 0x28).unwrap();
                f.write_all_at(&[24], h + 0x38).unwrap();
            }
        };
        let one = file("syms-one", &[table(1 << 20, MAX_SYMBOLS + 1)]);
        let many = file("syms-many", &[table(1 << 20, 1 << 20); 5]);
        let fine = file("syms-fine", &[table(1 << 20, 1 << 20); 3]);
        for p in [&one, &many, &fine] {
            link(p);
        }
        let err = |p: &Path| Elf::open(p).unwrap().function_offsets(&["SSL_read"]).err().map(|e| e.to_string());
        assert!(err(&one).unwrap().contains("more than 4194304 symbols"));
        assert!(err(&many).unwrap().contains("more than 4194304 symbols"), "the cap is for all tables together");
        assert_eq!(err(&fine), None, "3 Mi symbols are read (and none is SSL_read)");
        for p in [one, many, fine] {
            std::fs::remove_file(p).ok();
        }
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating() {
        let p = std::env::temp_dir().join(format!("ecapture-hostile-elf-{}", std::process::id()));
        let mut data = b"\x7fELF\x02\x01".to_vec();
        data.resize(64, 0);
        data[0x12..0x14].copy_from_slice(&EM_NATIVE.to_le_bytes());
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
    fn refuses_another_architecture_naming_both() {
        let p = elf_file("arch", &[], &[]);
        assert!(Elf::open(&p).is_ok());
        let other = if EM_NATIVE == EM_X86_64 { EM_AARCH64 } else { EM_X86_64 };
        let mut b = std::fs::read(&p).unwrap();
        b[0x12..0x14].copy_from_slice(&other.to_le_bytes());
        std::fs::write(&p, &b).unwrap();
        let e = Elf::open(&p).err().unwrap().to_string();
        let _ = std::fs::remove_file(&p);
        let (ours, theirs) = (machine_name(EM_NATIVE), machine_name(other));
        assert_eq!(e, format!("{} is built for {theirs}, but this ecapture is built for {ours} (use the {theirs} build of ecapture)", p.display()));
    }

    #[test]
    fn only_this_architectures_files_are_native() {
        let p = elf_file("native", &[], &[]);
        assert!(is_native(&p));
        let mut b = std::fs::read(&p).unwrap();
        b[0x12] ^= 1;
        std::fs::write(&p, &b).unwrap();
        assert!(!is_native(&p));
        let _ = std::fs::remove_file(&p);
        assert!(!is_native(Path::new("/nonexistent/libssl.so.3")));
        assert!(is_native(&std::env::current_exe().unwrap()));
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
