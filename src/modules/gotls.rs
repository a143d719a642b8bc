//! The `gotls` module: Go programs' crypto/tls (bpf/gotls.bpf.c). Go does
//! not use a shared TLS library: crypto/tls is compiled into each
//! executable, so the module hooks executables.
//!
//! Which: `--elfpath PATH` names one (every process running it, present and
//! future); without it, every running Go program that links crypto/tls,
//! recognised by its build information (`.go.buildinfo`), not by its name.
//!
//! What: `crypto/tls.(*Conn).Write` and `(*Conn).Read`, at entry and at
//! each of their RET instructions (found by decoding them: `rets`), never
//! with uretprobes, which crash Go programs; `(*Conn).Close` at entry. The
//! functions come from `.symtab`, or from the function table the runtime
//! keeps (`.gopclntab`, `pclntab`) when the binary is stripped. Go 1.17+
//! only: the probes read the register ABI.
//!
//! Secrets (`-m keylog`, `-k`): `crypto/tls.(*Config).writeKeyLog` at
//! entry, which Go calls for every secret whether or not the program set a
//! `KeyLogWriter`; its arguments are the NSS key log line's three parts.
//! Records: `struct secret_rec` (decode::calls).

mod buildinfo;
mod pclntab;
mod rets;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use buildinfo::GoVersion;

use super::elf::Elf;
use super::{KeyOutput, Module};
use crate::capture::abi::{abi_struct, c, Layout};
use crate::capture::features::{Build, Features};
use crate::capture::loader::{ObjectSpec, Target, Uprobe};
use crate::decode::calls::CallDecoder;
use crate::decode::{Decoder, Limits};
use crate::error::{Error, Result};
use crate::flags::opt;
use crate::time::WallClock;

pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gotls.bpf.o"));
pub static OBJECT_COMPAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gotls.compat.bpf.o"));

abi_struct!(
    /// `struct gotls_cfg` of bpf/abi.h: the object's `gotls_cfg` global.
    gotls_cfg(16) {
        is_client: u32 = 0,
        vers: u32 = 4,
        flags: u32 = 8,
        sysfd: u32 = 12,
    }
);

/// The layouts this module writes, for the ABI test.
pub const LAYOUTS: &[&Layout] = &[&gotls_cfg::LAYOUT];

pub const WRITE: &str = "crypto/tls.(*Conn).Write";
pub const READ: &str = "crypto/tls.(*Conn).Read";
pub const CLOSE: &str = "crypto/tls.(*Conn).Close";
/// Where a tls.Conn's socket I/O goes, on the same goroutine (the fd).
/// The handshake (its socket I/O gives the fd before the first Read/Write).
pub const HANDSHAKE: &str = "crypto/tls.(*Conn).handshakeContext";
pub const POLL_READ: &str = "internal/poll.(*FD).Read";
pub const POLL_WRITE: &str = "internal/poll.(*FD).Write";
/// Where every secret passes (`-m keylog`, `-k`).
pub const KEYLOG: &str = "crypto/tls.(*Config).writeKeyLog";
/// Why a Go connection with plaintext has no keys.
const NO_KEYS_SEEN: &str =
    "no secrets read (a handshake before ecapture started, or a program whose crypto/tls.(*Config).writeKeyLog was not found)";

/// The most of `.gopclntab` read (a large Go program's is tens of MiB).
const MAX_PCLNTAB: u64 = 256 << 20;
/// What is read of `.go.buildinfo`: its header and the version after it.
const BUILDINFO_HEAD: u64 = 4096;
/// Executables looked at, at most, when discovering Go programs.
const MAX_CANDIDATES: usize = 512;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `--elfpath`: the Go executable to hook.
    pub elfpath: Option<PathBuf>,
    /// `-m` and `-k`: whether secrets are read, and where they go.
    pub keys: KeyOutput,
}

/// Every flag of this module, for the "give it after the module" hint.
pub const FLAGS: &[&str] = &["--elfpath", "-m", "--model", "-k", "--keylogfile"];

impl Flags {
    pub fn parse(p: &mut pico_args::Arguments) -> Result<Flags> {
        let keys = KeyOutput::parse(p)?;
        let elfpath = opt(p, "--elfpath", None, |s| Ok(PathBuf::from(s)))?;
        if elfpath.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
            return Err(Error::usage("invalid value '' for --elfpath: expected a path"));
        }
        Ok(Flags { elfpath, keys })
    }
}

pub struct Gotls {
    flags: Flags,
    pid: Option<u32>,
}

impl Gotls {
    pub fn new(flags: Flags, pid: Option<u32>) -> Gotls {
        Gotls { flags, pid }
    }
}

/// Where the functions were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolSource {
    Symtab,
    Pclntab,
}

/// A Go executable to attach to.
#[derive(Debug, Clone)]
pub struct Program {
    pub path: PathBuf,
    pub version: GoVersion,
    pub symbols: SymbolSource,
    /// File offsets: Write's and Read's entries, Close's (if found).
    pub write: u64,
    pub read: u64,
    pub close: Option<u64>,
    /// internal/poll.(*FD).Read's and Write's, where found.
    pub poll: Vec<u64>,
    /// handshakeContext's entry and RETs, where found.
    pub handshake: Option<(u64, Vec<u64>)>,
    /// writeKeyLog's entry, where found (probed with -m keylog / -k only).
    pub keylog: Option<u64>,
    /// File offsets of every RET of Write and of Read.
    pub write_rets: Vec<u64>,
    pub read_rets: Vec<u64>,
}

impl Module for Gotls {
    fn name(&self) -> &'static str {
        "gotls"
    }

    fn plan(&self, features: &Features) -> Result<Vec<ObjectSpec>> {
        if let Some(p) = &self.flags.elfpath {
            check_elfpath(p)?;
        }
        architecture_supported()?;
        let mut programs = match &self.flags.elfpath {
            Some(p) => vec![explicit(p)?],
            None => discover(self.pid)?,
        };
        let keylog = self.flags.keys.wants_secrets();
        for p in &mut programs {
            match (keylog, p.keylog) {
                (false, _) => p.keylog = None,
                (true, Some(_)) => log::info!("{}: TLS keys read at {KEYLOG}", p.path.display()),
                (true, None) => log::warn!("{}: {KEYLOG} not found: no TLS keys from it", p.path.display()),
            }
        }
        let object = match features.build() {
            Build::Modern => OBJECT,
            Build::Compat => OBJECT_COMPAT,
        };
        Ok(programs
            .iter()
            .map(|p| {
                let symbols = match p.symbols {
                    SymbolSource::Symtab => "symbols from .symtab",
                    SymbolSource::Pclntab => "stripped: functions from .gopclntab",
                };
                log::info!(
                    "hooking {} ({}, {symbols}; {} RETs of Write, {} of Read)",
                    p.path.display(),
                    p.version.text,
                    p.write_rets.len(),
                    p.read_rets.len()
                );
                ObjectSpec {
                    name: "gotls",
                    bytes: object,
                    config: vec![("gotls_cfg", config_bytes(&p.version))],
                    // The fd comes from internal/poll on the call's goroutine,
                    // not from the thread's syscalls: no tracepoint.
                    raw_tracepoints: vec![],
                    targets: vec![Target { path: p.path.clone(), uprobes: uprobes(p) }],
                }
            })
            .collect())
    }

    fn decoder(&self, clock: WallClock, limits: Limits) -> Box<dyn Decoder> {
        Box::new(CallDecoder::new(clock, limits).keys_missing_why(NO_KEYS_SEEN))
    }
}

/// The offsets of the fields the BPF side reads, by Go version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// crypto/tls.Conn.isClient: after the 16-byte net.Conn interface, in
    /// every version.
    pub is_client: Option<u32>,
    /// crypto/tls.Conn.vers: moved when Go 1.21 added the QUIC state.
    pub vers: Option<u32>,
    /// internal/poll.FD.Sysfd: after the 16-byte fdMutex.
    pub sysfd: Option<u32>,
}

/// Checked against reflect's offsets for the fixture's Go versions
/// (tests/gotls.rs); 1.17–1.20 are not, so their TLS version is left
/// unknown there.
pub fn conn_offsets(v: &GoVersion) -> Offsets {
    let abi = v.register_abi();
    Offsets { is_client: abi.then_some(16), vers: (v.minor >= 21).then_some(72), sysfd: abi.then_some(16) }
}

fn config_bytes(v: &GoVersion) -> Vec<u8> {
    let mut b = vec![0u8; gotls_cfg::SIZE];
    let o = conn_offsets(v);
    let mut flags = 0;
    for (field, value, flag) in [
        (gotls_cfg::is_client, o.is_client, c::GOTLS_F_ROLE),
        (gotls_cfg::vers, o.vers, c::GOTLS_F_VERS),
        (gotls_cfg::sysfd, o.sysfd, c::GOTLS_F_SYSFD),
    ] {
        if let Some(off) = value {
            field.put(&mut b, off);
            flags |= flag as u32;
        }
    }
    gotls_cfg::flags.put(&mut b, flags);
    b
}

/// Every probe of program p (`make bench`'s floor probes the same).
pub fn uprobes(p: &Program) -> Vec<Uprobe> {
    let probe = |prog: &'static str, func: &str, offset: u64| Uprobe { prog, func: func.to_string(), offset, ret: false, cookie: 0 };
    let mut out = vec![probe("gotls_write_entry", WRITE, p.write), probe("gotls_read_entry", READ, p.read)];
    out.extend(p.write_rets.iter().map(|&o| probe("gotls_ret", &format!("{WRITE} (RET)"), o)));
    out.extend(p.read_rets.iter().map(|&o| probe("gotls_ret", &format!("{READ} (RET)"), o)));
    if let Some(o) = p.close {
        out.push(probe("gotls_close_entry", CLOSE, o));
    }
    out.extend(p.poll.iter().map(|&o| probe("gotls_poll_entry", "internal/poll.(*FD).Read/Write", o)));
    if let Some((entry, rets)) = &p.handshake {
        out.push(probe("gotls_handshake_entry", HANDSHAKE, *entry));
        out.extend(rets.iter().map(|&o| probe("gotls_handshake_ret", &format!("{HANDSHAKE} (RET)"), o)));
    }
    if let Some(o) = p.keylog {
        out.push(probe("gotls_keylog_entry", KEYLOG, o));
    }
    out
}

/// `--elfpath PATH`: a usage error (exit 2) when it is not a Go program
/// with crypto/tls we can hook.
fn explicit(p: &Path) -> Result<Program> {
    check_elfpath(p)?;
    let shown = p.display().to_string();
    inspect(p).map_err(|e| {
        let e = e.to_string();
        Error::usage(if e.starts_with(&shown) { format!("--elfpath {e}") } else { format!("--elfpath {shown}: {e}") })
    })
}

/// The RETs are found by decoding x86-64 code (rets.rs, iced-x86): on
/// another architecture (aarch64's fixed-width RET is not decoded yet) the
/// module says so rather than attaching nowhere.
fn architecture_supported() -> Result<()> {
    if cfg!(target_arch = "x86_64") {
        return Ok(());
    }
    Err(Error::runtime(format!(
        "module gotls: Go programs on {} are not supported yet (finding a Go function's RET instructions is implemented for x86_64 only)",
        std::env::consts::ARCH
    )))
}

/// `--elfpath PATH` names a file.
fn check_elfpath(p: &Path) -> Result<()> {
    if !p.exists() {
        return Err(Error::usage(format!("--elfpath {}: no such file", p.display())));
    }
    if p.is_dir() {
        return Err(Error::usage(format!("--elfpath {}: is a directory, expected a Go executable", p.display())));
    }
    Ok(())
}

/// Every running Go program linking crypto/tls (only process `pid`'s, when
/// given), each executable once.
fn discover(pid: Option<u32>) -> Result<Vec<Program>> {
    let me = std::process::id().to_string();
    let pids: Vec<String> = match pid {
        Some(p) => vec![p.to_string()],
        None => fs::read_dir("/proc")
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default(),
    };
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for pid in pids.iter().filter(|p| p.bytes().all(|b| b.is_ascii_digit()) && **p != me) {
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let Ok(md) = fs::metadata(&exe) else { continue };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        if seen.len() > MAX_CANDIDATES {
            log::warn!("more than {MAX_CANDIDATES} distinct executables running; Go programs among the rest are not hooked");
            break;
        }
        // Most programs are not Go: only those with build information are inspected.
        if !Elf::open(&exe).is_ok_and(|e| e.section(".go.buildinfo").is_some()) {
            continue;
        }
        let path = reachable_path(pid, &exe, md.ino());
        match inspect(&path) {
            Ok(p) => {
                log::info!("process {pid} runs Go program {} ({})", path.display(), p.version.text);
                found.push(p);
            }
            Err(e) => log::info!("not hooking process {pid}'s {}: {e}", path.display()),
        }
    }
    if found.is_empty() {
        return Err(Error::runtime(
            "no running Go program linking crypto/tls found (Go 1.17+); name one with --elfpath PATH".to_string(),
        ));
    }
    Ok(found)
}

/// The executable's path as the process sees it, when it is the same file
/// here; else through the process's root (containers); else its /proc link.
fn reachable_path(pid: &str, exe: &Path, ino: u64) -> PathBuf {
    let Ok(target) = fs::read_link(exe) else { return exe.to_path_buf() };
    if fs::metadata(&target).is_ok_and(|m| m.ino() == ino) {
        return target;
    }
    let through_root = PathBuf::from(format!("/proc/{pid}/root{}", target.display()));
    if fs::metadata(&through_root).is_ok_and(|m| m.ino() == ino) {
        return through_root;
    }
    exe.to_path_buf()
}

/// Reads a candidate executable: its Go version, its crypto/tls functions
/// and their RETs.
pub fn inspect(path: &Path) -> Result<Program> {
    let elf = Elf::open(path)?;
    let shown = path.display();
    let version = go_version(&elf);
    let Some(version) = version else {
        return Err(Error::runtime(if pclntab(&elf)?.is_some() {
            format!("{shown}: a Go program whose Go version is unreadable (no usable .go.buildinfo)")
        } else {
            format!("{shown}: not a Go program (no Go build information)")
        }));
    };
    if !version.register_abi() {
        return Err(Error::runtime(format!("{shown}: built with {}; gotls needs Go 1.17 or later (register ABI)", version.text)));
    }
    let wanted = [WRITE, READ, CLOSE, POLL_READ, POLL_WRITE, HANDSHAKE, KEYLOG];
    let mut funcs: Vec<Option<(u64, u64)>> = vec![None; wanted.len()];
    let mut symbols = SymbolSource::Symtab;
    let syms = elf.functions(&wanted)?;
    for (i, w) in wanted.iter().enumerate() {
        funcs[i] = syms.get(*w).filter(|f| f.size > 0).map(|f| (f.addr, f.size));
    }
    if funcs[0].is_none() || funcs[1].is_none() {
        let Some((table, text)) = pclntab(&elf)? else {
            return Err(Error::runtime(format!("{shown}: a Go program ({}) without a readable .gopclntab", version.text)));
        };
        let found = pclntab::find(&table, text, &wanted)
            .ok_or_else(|| Error::runtime(format!("{shown}: malformed Go function table (.gopclntab)")))?;
        symbols = SymbolSource::Pclntab;
        for (i, w) in wanted.iter().enumerate() {
            funcs[i] = found.get(*w).map(|f| (f.addr, f.size));
        }
    }
    let (Some(write), Some(read)) = (funcs[0], funcs[1]) else {
        return Err(Error::runtime(format!("{shown}: a Go program ({}) that does not link crypto/tls", version.text)));
    };
    let (write, write_rets) = code(&elf, WRITE, write)?;
    let (read, read_rets) = code(&elf, READ, read)?;
    let close = funcs[2].and_then(|(addr, _)| elf.file_offset(addr));
    let poll = funcs[3..5].iter().flatten().filter_map(|&(addr, _)| elf.file_offset(addr)).collect();
    let handshake = match funcs[5] {
        Some(f) => Some(code(&elf, HANDSHAKE, f)?),
        None => None,
    };
    let keylog = funcs[6].and_then(|(addr, _)| elf.file_offset(addr));
    Ok(Program { path: path.to_path_buf(), version, symbols, write, read, close, poll, handshake, keylog, write_rets, read_rets })
}

/// A function's file offset and the file offsets of its RETs.
fn code(elf: &Elf, name: &str, (addr, size): (u64, u64)) -> Result<(u64, Vec<u64>)> {
    let bad = |why: String| Error::runtime(format!("{name}: {why}"));
    let (sec_addr, sec_size) = elf.code_section_of(addr).ok_or_else(|| bad(format!("{addr:#x} is not in a code section")))?;
    // The function ends within its section.
    let size = size.min(sec_addr + sec_size - addr);
    let offset = elf.file_offset(addr).ok_or_else(|| bad(format!("{addr:#x} is not in the file")))?;
    let bytes = elf.bytes_at(offset, size, rets::MAX_FUNCTION)?;
    let found = rets::find(&bytes, addr).map_err(bad)?;
    if found.is_empty() {
        return Err(bad("no RET instruction found".into()));
    }
    Ok((offset, found.into_iter().map(|r| offset + r).collect()))
}

/// The Go version from `.go.buildinfo`.
fn go_version(elf: &Elf) -> Option<GoVersion> {
    let (_, offset, size) = elf.section(".go.buildinfo")?;
    let head = elf.bytes_at(offset, size.min(BUILDINFO_HEAD), BUILDINFO_HEAD).ok()?;
    match buildinfo::parse(&head)? {
        buildinfo::Info::Version(v) => v,
        buildinfo::Info::Pointer(addr) => {
            // A Go string header: (pointer, length).
            let hdr = elf.bytes_at(elf.file_offset(addr)?, 16, 16).ok()?;
            let ptr = u64::from_le_bytes(hdr[..8].try_into().ok()?);
            let len = u64::from_le_bytes(hdr[8..].try_into().ok()?);
            let text = elf.bytes_at(elf.file_offset(ptr)?, len, 64).ok()?;
            GoVersion::parse(std::str::from_utf8(&text).ok()?)
        }
    }
}

/// The function table and the text section's address: `.gopclntab`, or
/// `.data.rel.ro.gopclntab` where the linker puts it with the relocated
/// read-only data (PIE, before Go 1.26 or so).
fn pclntab(elf: &Elf) -> Result<Option<(Vec<u8>, u64)>> {
    let text = elf.section(".text").map_or(0, |(addr, _, _)| addr);
    for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some((_, b)) = elf.read_section(name, MAX_PCLNTAB)? {
            return Ok(pclntab::looks_like(&b).then_some((b, text)));
        }
    }
    Ok(None)
}

/// The parsers of this module on arbitrary bytes, for fuzzing.
#[doc(hidden)]
pub fn parse_untrusted(data: &[u8]) {
    let _ = pclntab::find(data, 0x401000, &[WRITE, READ, CLOSE, HANDSHAKE, KEYLOG]);
    let _ = buildinfo::parse(data);
    let _ = rets::find(data, 0x401000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_by_version() {
        let v = |s: &str| GoVersion::parse(s).unwrap();
        assert_eq!(conn_offsets(&v("go1.27.3")), Offsets { is_client: Some(16), vers: Some(72), sysfd: Some(16) });
        assert_eq!(conn_offsets(&v("go1.20.1")).vers, None);
        assert_eq!(conn_offsets(&v("go1.16.1")), Offsets { is_client: None, vers: None, sysfd: None });
        let b = config_bytes(&v("go1.21.13"));
        assert_eq!(gotls_cfg::flags.get(&b), (c::GOTLS_F_ROLE | c::GOTLS_F_VERS | c::GOTLS_F_SYSFD) as u32);
        assert_eq!(gotls_cfg::vers.get(&b), 72);
    }

    #[test]
    fn the_key_log_probe_only_when_asked() {
        let mut p = Program {
            path: PathBuf::from("/x"),
            version: GoVersion::parse("go1.27.3").unwrap(),
            symbols: SymbolSource::Symtab,
            write: 1,
            read: 2,
            close: None,
            poll: vec![],
            handshake: None,
            keylog: Some(9),
            write_rets: vec![3],
            read_rets: vec![4],
        };
        let probes = uprobes(&p);
        assert!(probes.iter().any(|u| u.prog == "gotls_keylog_entry" && u.offset == 9 && !u.ret && u.func == KEYLOG));
        p.keylog = None;
        assert!(uprobes(&p).iter().all(|u| u.prog != "gotls_keylog_entry"));
    }

    #[test]
    fn a_c_program_is_not_go() {
        // Under qemu (the aarch64 build's tests), /bin/true is x86_64's and
        // refused as such: the test binary itself is not Go either.
        let exe = std::env::current_exe().unwrap();
        let p = if super::super::elf::is_native(Path::new("/bin/true")) { Path::new("/bin/true") } else { exe.as_path() };
        let e = inspect(p).unwrap_err().to_string();
        assert!(e.contains("not a Go program"), "{e}");
    }
}
