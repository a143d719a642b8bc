//! The `tls` module (alias `openssl`): OpenSSL and BoringSSL, shared
//! libraries or linked into an executable (bpf/openssl.bpf.c).
//!
//! Which libraries: `--libssl PATH` names one. Otherwise every distinct
//! libssl that running processes have mapped, plus the system's libssl, so
//! that processes started later are captured as well. Uprobes attach to a
//! file's inode, so each distinct (device, inode) is hooked once.
//!
//! Each library's version (the `OpenSSL x.y.z` marker in it or its
//! libcrypto, or `--ssl_version`) selects the struct offsets the BPF side
//! uses for the TLS version, the role and, as a fallback, the socket fd
//! (`version`). Probes: SSL_{read,write}[_ex] entry and return (the attach
//! cookie says which library and function), SSL_set_{,r,w}fd, SSL_free.

pub mod keylog;
mod version;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use version::{boringssl_offsets, BoringBio, Flavor, Offsets, SslVersion};

use super::elf::Elf;
use super::{libs, KeyOutput, Module};
use crate::capture::abi::{abi_struct, c, Layout};
use crate::capture::features::{Build, Features};
use crate::capture::loader::{ObjectSpec, Target, Uprobe};
use crate::capture::record::{Body, Record};
use crate::decode::calls::CallDecoder;
use crate::decode::{DecodeStats, Decoder, Limits};
use crate::event::Item;
use keylog::{KeySource, BORINGSSL_LOG_SECRET_PREFIX};
use crate::error::{Error, Result};
use crate::flags::{opt, text};
use crate::time::WallClock;

/// The BPF objects built from bpf/openssl.bpf.c by the Makefile: for
/// kernels with bpf_loop and attach cookies, and without (capture::features).
pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openssl.bpf.o"));
pub static OBJECT_COMPAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openssl.compat.bpf.o"));

abi_struct!(
    /// `struct lib_offsets` of bpf/abi.h.
    lib_offsets(44) {
        ssl_version: u32 = 0,
        ssl_s3: u32 = 4,
        s3_version: u32 = 8,
        ssl_rbio: u32 = 12,
        ssl_wbio: u32 = 16,
        bio_num: u32 = 20,
        bio_method: u32 = 24,
        ssl_server: u32 = 28,
        ssl_server_mask: u32 = 32,
        flags: u32 = 36,
        valid: u32 = 40,
    }
);

abi_struct!(
    /// `struct openssl_cfg` of bpf/abi.h: the object's `openssl_cfg` global.
    openssl_cfg(1608) {
        nr_libs: u32 = 0,
        libs: [u8; 704] = 4,
        keys: [u8; 896] = 708,
        keylog: u32 = 1604,
    }
);

/// The layouts this module reads and writes, for the ABI test.
pub const LAYOUTS: &[&Layout] =
    &[&lib_offsets::LAYOUT, &openssl_cfg::LAYOUT, &keylog::key_offsets::LAYOUT, &keylog::tls_keys_rec::LAYOUT];

const MAX_LIBS: usize = c::MAX_LIBS as usize;

/// The functions we hook. SSL_read/SSL_write are required.
const RW_FUNCS: [&str; 4] = ["SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"];
const FD_FUNCS: [&str; 3] = ["SSL_set_fd", "SSL_set_rfd", "SSL_set_wfd"];
/// Where a memory BIO's connection is learnt during the handshake.
const HANDSHAKE_FUNC: &str = "SSL_do_handshake";
/// Where a connection ends.
const FREE_FUNC: &str = "SSL_free";

/// The module's flags (eCapture's `tls` flags).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `--libssl`: the library (or executable) to hook.
    pub libssl: Option<PathBuf>,
    /// `--ssl_version`: overrides version detection.
    pub ssl_version: Option<SslVersion>,
    /// `-m` and `-k`: whether secrets are read, and where they go.
    pub keys: KeyOutput,
}

/// Every flag of this module, for the "give it after the module" hint.
pub const FLAGS: &[&str] = &[
    "--libssl",
    "--ssl_version",
    "-m",
    "--model",
    "-k",
    "--keylogfile",
    "-w",
    "--pcapfile",
    "-i",
    "--ifname",
    "--cgroup_path",
];

impl Flags {
    pub fn parse(p: &mut pico_args::Arguments) -> Result<Flags> {
        // -m pcapng, -w and -i were taken out before (PcapConfig::take).
        let keys = KeyOutput::parse(p)?;
        // A flag whose behaviour comes later: refused rather than ignored.
        if opt(p, "--cgroup_path", None, text)?.is_some() {
            return Err(Error::usage("--cgroup_path is not yet supported by this version of ecapture"));
        }
        let libssl = opt(p, "--libssl", None, |s| Ok(PathBuf::from(s)))?;
        if libssl.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
            return Err(Error::usage("invalid value '' for --libssl: expected a path"));
        }
        let ssl_version = opt(p, "--ssl_version", None, |s| {
            SslVersion::parse(s).ok_or_else(|| "expected e.g. \"openssl 3.0.2\", \"openssl 1.1.1w\" or \"boringssl\"".to_string())
        })?;
        Ok(Flags { libssl, ssl_version, keys })
    }
}

pub struct Openssl {
    flags: Flags,
    pid: Option<u32>,
}

impl Openssl {
    pub fn new(flags: Flags, pid: Option<u32>) -> Openssl {
        Openssl { flags, pid }
    }
}

impl Module for Openssl {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn plan(&self, features: &Features) -> Result<Vec<ObjectSpec>> {
        let libs = discover(self.flags.libssl.as_deref(), self.flags.ssl_version, self.pid)?;
        if libs.len() > MAX_LIBS {
            log::warn!("{} libraries found; hooking the first {MAX_LIBS}", libs.len());
        }
        let keylog = self.flags.keys.wants_secrets();
        let libs: Vec<(Library, Option<Offsets>, Option<KeySource>)> = libs
            .into_iter()
            .take(MAX_LIBS)
            .map(|mut lib| {
                let off = offsets(&lib);
                log::info!("hooking {} ({})", lib.path.display(), describe(&lib));
                let keys = if keylog { key_layout(&lib) } else { None };
                if !matches!(keys, Some(KeySource::LogSecret { .. })) {
                    lib.log_secret.clear();
                }
                (lib, off, keys)
            })
            .collect();
        let spec = |bytes, cfg, targets| ObjectSpec {
            name: "openssl",
            bytes,
            config: vec![("openssl_cfg", cfg)],
            raw_tracepoints: vec![("sys_enter", "sys_enter"), ("sys_exit", "sys_exit")],
            targets,
        };
        Ok(match features.build() {
            // One object for every library: the attach cookie says which.
            Build::Modern => {
                let offs: Vec<(Option<Offsets>, Option<KeySource>)> = libs.iter().map(|(_, o, k)| (*o, *k)).collect();
                let targets = libs.iter().enumerate().map(|(i, (lib, _, _))| Target { path: lib.path.clone(), uprobes: uprobes(i, lib, true) });
                vec![spec(OBJECT, config_bytes(&offs, keylog), targets.collect())]
            }
            // No cookies: an object per library, its offsets first.
            Build::Compat => libs
                .iter()
                .map(|(lib, off, keys)| {
                    let target = Target { path: lib.path.clone(), uprobes: uprobes(0, lib, false) };
                    spec(OBJECT_COMPAT, config_bytes(&[(*off, *keys)], keylog), vec![target])
                })
                .collect(),
        })
    }

    fn decoder(&self, clock: WallClock, limits: Limits) -> Box<dyn Decoder> {
        Box::new(OpensslDecoder(CallDecoder::new(clock, limits)))
    }
}

/// The common records, and the key records of this module's object.
struct OpensslDecoder(CallDecoder);

impl Decoder for OpensslDecoder {
    fn push(&mut self, rec: Record, now_ns: u64, out: &mut Vec<Item>) {
        match rec.body {
            Body::Other { kind, ref bytes } if kind as u64 == c::REC_TLS_KEYS => keylog::push_keys(bytes, out),
            _ => self.0.push(rec, now_ns, out),
        }
    }
    fn tick(&mut self, now_ns: u64, out: &mut Vec<Item>) {
        self.0.tick(now_ns, out)
    }
    fn waiting(&self) -> bool {
        self.0.waiting()
    }
    fn finish(&mut self, out: &mut Vec<Item>) {
        self.0.finish(out)
    }
    fn stats(&self) -> DecodeStats {
        self.0.stats()
    }
    fn keys_missing_why(&self) -> &'static str {
        NO_KEYS_SEEN
    }
}

/// Why an OpenSSL or BoringSSL connection with plaintext has no keys when
/// nothing more precise is known.
const NO_KEYS_SEEN: &str = "no secrets read (library without a known key layout, a handshake before ecapture started, \
     or a handshake not done through SSL_do_handshake/SSL_read/SSL_write)";

/// Where a library keeps its secrets; None (with a warning naming the
/// version) when no row of the offsets table serves it: no keys rather than
/// wrong ones.
fn key_layout(lib: &Library) -> Option<KeySource> {
    let path = lib.path.display();
    match lib.version {
        None => {
            log::warn!("{path}: version unknown: no TLS keys from it (give --ssl_version)");
            None
        }
        Some(v) if v.flavor == Flavor::BoringSsl => {
            if lib.log_secret.is_empty() {
                log::warn!("{path}: BoringSSL without bssl::ssl_log_secret in its symbols: no TLS keys from it");
                return None;
            }
            log::info!("{path}: TLS keys read at bssl::ssl_log_secret, as BoringSSL makes them");
            Some(KeySource::LogSecret { ssl_s3: keylog::BORINGSSL_SSL_S3, client_random: keylog::BORINGSSL_S3_CLIENT_RANDOM })
        }
        Some(v) => match keylog::layout_for(&v) {
            Some((layout, from)) => {
                log::info!("{path}: TLS keys read with the {from}");
                Some(KeySource::Stored(layout))
            }
            None => {
                log::warn!("{path}: {v} has no known layout of its TLS secrets: no keys from it");
                None
            }
        },
    }
}

/// The offsets of a library's version, said when they are guessed or unknown.
fn offsets(lib: &Library) -> Option<Offsets> {
    let off = lib.version.map(|v| {
        if v.flavor == Flavor::BoringSsl {
            return boringssl_offsets(lib.boring_bio);
        }
        let (o, exact) = v.offsets();
        if !exact {
            log::warn!("{}: {v} is newer or older than the offsets table; using the nearest layout", lib.path.display());
        }
        o
    });
    if off.is_none() {
        log::warn!(
            "{}: no OpenSSL version marker found (use --ssl_version); TLS version will show as unknown",
            lib.path.display()
        );
    }
    off
}

/// `struct openssl_cfg` for these libraries (at most MAX_LIBS); `keylog`:
/// secrets are read.
fn config_bytes(libs: &[(Option<Offsets>, Option<KeySource>)], keylog: bool) -> Vec<u8> {
    let mut cfg = vec![0u8; openssl_cfg::SIZE];
    openssl_cfg::nr_libs.put(&mut cfg, libs.len().min(MAX_LIBS) as u32);
    for (idx, (off, keys)) in libs.iter().enumerate().take(MAX_LIBS) {
        let at = openssl_cfg::libs.off + idx * lib_offsets::SIZE;
        cfg[at..at + lib_offsets::SIZE].copy_from_slice(&offsets_bytes(*off));
        let at = openssl_cfg::keys.off + idx * keylog::key_offsets::SIZE;
        cfg[at..at + keylog::key_offsets::SIZE].copy_from_slice(&KeySource::to_bytes(keys.as_ref()));
    }
    openssl_cfg::keylog.put(&mut cfg, keylog as u32);
    cfg
}

/// `struct lib_offsets` for a library; all zero (valid = 0) when unknown.
fn offsets_bytes(o: Option<Offsets>) -> Vec<u8> {
    let mut b = vec![0u8; lib_offsets::SIZE];
    if let Some(o) = o {
        let mut flags = 0;
        lib_offsets::ssl_version.put(&mut b, o.ssl_version);
        if let Some((s3, version)) = o.version_in_s3 {
            lib_offsets::ssl_s3.put(&mut b, s3);
            lib_offsets::s3_version.put(&mut b, version);
            flags |= c::LIB_F_VERSION_S3 as u32;
        }
        lib_offsets::ssl_rbio.put(&mut b, o.ssl_rbio);
        lib_offsets::ssl_wbio.put(&mut b, o.ssl_wbio);
        if o.bio_known {
            lib_offsets::bio_num.put(&mut b, o.bio_num);
            lib_offsets::bio_method.put(&mut b, o.bio_method);
            flags |= c::LIB_F_BIO as u32;
            match o.mem_readp {
                Some(true) => flags |= (c::LIB_F_MEM_BIO | c::LIB_F_MEM_READP) as u32,
                Some(false) => flags |= c::LIB_F_MEM_BIO as u32,
                None => {}
            }
        }
        lib_offsets::ssl_server.put(&mut b, o.ssl_server);
        lib_offsets::ssl_server_mask.put(&mut b, o.ssl_server_mask.into());
        lib_offsets::flags.put(&mut b, flags);
        lib_offsets::valid.put(&mut b, 1);
    }
    b
}

/// The probes of library number `idx`: with attach cookies, one entry
/// program for the four functions (the cookie says which); without, one
/// program per function.
fn uprobes(idx: usize, lib: &Library, cookies: bool) -> Vec<Uprobe> {
    let mut out = Vec::new();
    let mut add = |prog: &'static str, func: &str, ret: bool, cookie: u64| {
        if let Some(&offset) = lib.functions.get(func) {
            out.push(Uprobe { prog, func: func.to_string(), offset, ret, cookie });
        }
    };
    for func in RW_FUNCS {
        // Kernels without attach cookies refuse a link that carries one.
        let mut cookie = 0;
        if cookies {
            cookie = idx as u64;
            if func.starts_with("SSL_write") {
                cookie |= c::COOKIE_WRITE;
            }
            if func.ends_with("_ex") {
                cookie |= c::COOKIE_EX;
            }
        }
        add("ssl_rw_return", func, true, cookie);
        let entry = match (cookies, func) {
            (true, _) => "ssl_rw_entry",
            (false, "SSL_write") => "ssl_write_entry",
            (false, "SSL_read") => "ssl_read_entry",
            (false, "SSL_write_ex") => "ssl_write_ex_entry",
            (false, _) => "ssl_read_ex_entry",
        };
        add(entry, func, false, cookie);
    }
    for func in FD_FUNCS {
        add("ssl_set_fd_entry", func, false, 0);
    }
    add("ssl_free_entry", FREE_FUNC, false, 0);
    // The cookie: the library, for its offsets (0 without cookies: libs[0]).
    let hs = if cookies { idx as u64 } else { 0 };
    add("ssl_handshake_return", HANDSHAKE_FUNC, true, hs);
    add("ssl_handshake_entry", HANDSHAKE_FUNC, false, hs);
    for &offset in &lib.log_secret {
        out.push(Uprobe { prog: "ssl_log_secret_entry", func: "bssl::ssl_log_secret".into(), offset, ret: false, cookie: hs });
    }
    out
}

fn describe(lib: &Library) -> String {
    let bio = match (lib.version, lib.boring_bio) {
        (Some(v), bio) if v.flavor == Flavor::BoringSsl => match bio {
            Some(BoringBio::Class) => "; BIO: the bssl::Bio class, boring-sys 5.2 on",
            Some(BoringBio::ExData) => "; BIO: with ex_data, boring-sys 5.0-5.1",
            Some(BoringBio::Plain) => "; BIO: without ex_data, boring-sys 1-4",
            None => "; BIO layout not told by the binary: the fd comes from its syscalls only",
        },
        _ => "",
    };
    match &lib.version {
        Some(v) if lib.version_source == "--ssl_version" => format!("{v}, from --ssl_version{bio}"),
        Some(v) => format!("{v}, found in {}{bio}", lib.version_source),
        None => "version unknown".to_string(),
    }
}

/// A library to attach to.
#[derive(Debug, Clone)]
pub struct Library {
    /// The path the uprobes are attached through.
    pub path: PathBuf,
    /// The functions of RW_FUNCS, FD_FUNCS and FREE_FUNC it defines, with their file offsets.
    pub functions: HashMap<String, u64>,
    /// None when no marker was found.
    pub version: Option<SslVersion>,
    /// Where the version came from: "libssl.so.3", "libcrypto.so.3", "--ssl_version".
    pub version_source: String,
    /// BoringSSL: its BIO generation, when the binary tells.
    pub boring_bio: Option<BoringBio>,
    /// BoringSSL: the file offsets of `bssl::ssl_log_secret` (each mangled
    /// form found; probed for the key log only).
    pub log_secret: Vec<u64>,
}

/// Finds the libraries to hook. `override_version` is `--ssl_version`;
/// `pid` (`--pid`) limits the mapped ones to that process's.
pub fn discover(libssl: Option<&Path>, override_version: Option<SslVersion>, pid: Option<u32>) -> Result<Vec<Library>> {
    let wanted = libs::Wanted {
        flag: "--libssl",
        explicit: libssl,
        name: is_libssl_name,
        system_prefix: "libssl.so.",
        what: "libssl",
        pid,
    };
    libs::discover(&wanted, |p| inspect(p, override_version))
}

/// Reads one candidate: its functions and version.
pub(crate) fn inspect(path: &Path, override_version: Option<SslVersion>) -> Result<Library> {
    let elf = Elf::open(path)?;
    let wanted: Vec<&str> = RW_FUNCS.iter().chain(FD_FUNCS.iter()).chain([FREE_FUNC, HANDSHAKE_FUNC].iter()).copied().collect();
    let functions = elf.function_offsets(&wanted)?;
    if !functions.contains_key("SSL_write") || !functions.contains_key("SSL_read") {
        return Err(Error::runtime(
            "does not define SSL_read and SSL_write (is it libssl, or a program with OpenSSL or BoringSSL linked in and its symbols kept?)",
        ));
    }
    let (version, version_source) = match override_version {
        Some(v) => (Some(v), "--ssl_version".to_string()),
        None => detect_version(path, &elf),
    };
    let boring = version.is_some_and(|v| v.flavor == Flavor::BoringSsl);
    let boring_bio = if boring { boring_bio(&elf) } else { None };
    let mut log_secret: Vec<u64> = if boring {
        elf.functions_starting_with(BORINGSSL_LOG_SECRET_PREFIX)?.values().map(|f| f.offset).collect()
    } else {
        Vec::new()
    };
    log_secret.sort_unstable();
    log_secret.dedup();
    Ok(Library { path: path.to_path_buf(), functions, version, version_source, boring_bio, log_secret })
}

/// BoringSSL's BIO generation, from the binary's symbols: the `bssl::Bio`
/// class in mangled names, else the BIO ex_data functions (5.0-5.1: a
/// newer binary whose class names were all inlined away is taken for that
/// one, and harmlessly so: its BIO's first word is a reference count, not a
/// method pointer, so no fd comes from it). Older BIOs have nothing to tell
/// them by: None.
fn boring_bio(elf: &Elf) -> Option<BoringBio> {
    if elf.find_bytes(&[version::BORINGSSL_BIO_CLASS_MARK], VERSION_SCAN_LIMIT, |_| true).unwrap_or(false) {
        return Some(BoringBio::Class);
    }
    let ex_data = elf.function_offsets(version::BORINGSSL_BIO_EX_DATA_FUNCS).unwrap_or_default();
    (!ex_data.is_empty()).then_some(BoringBio::ExData)
}

/// How much of a file's read-only data is searched for its version string
/// (libcrypto's .rodata is ~1 MiB; a statically linked binary's a few tens).
const VERSION_SCAN_LIMIT: u64 = 256 << 20;

/// The version marker in `elf`: "OpenSSL x.y.z" (BoringSSL's "OpenSSL
/// 1.1.1 (compatible; BoringSSL)" is BoringSSL), else BoringSSL's name or
/// C++ namespace; one pass over its read-only data and symbol names, a
/// block at a time.
fn version_in(elf: &Elf) -> Option<SslVersion> {
    let (mut v, mut boring) = (None, false);
    let mut needles: Vec<&[u8]> = vec![b"OpenSSL "];
    needles.extend_from_slice(version::BORINGSSL_MARKS);
    let _ = elf.find_bytes(&needles, VERSION_SCAN_LIMIT, |rest| {
        if !rest.starts_with(b"OpenSSL ") {
            boring = true;
            return false;
        }
        v = SslVersion::marker_at(rest);
        v.is_some()
    });
    v.or(boring.then_some(SslVersion::BORINGSSL))
}

/// The version marker in the library itself, else in the libcrypto it needs
/// (libssl.so.3 usually has no "OpenSSL x.y.z" string of its own).
fn detect_version(path: &Path, elf: &Elf) -> (Option<SslVersion>, String) {
    let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    if let Some(v) = version_in(elf) {
        return (Some(v), name(path));
    }
    let needed = elf.needed().unwrap_or_default();
    for crypto in needed.iter().filter(|n| n.starts_with("libcrypto.so")) {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let beside = dir.join(crypto);
        let found = if beside.exists() { Some(beside) } else { libs::find_in_lib_dirs(crypto) };
        if let Some(p) = found {
            if let Some(v) = Elf::open(&p).ok().as_ref().and_then(version_in) {
                return (Some(v), name(&p));
            }
        }
    }
    (None, String::new())
}

/// Is this a path of OpenSSL's (or BoringSSL's) libssl? NSS's libssl3.so is not.
fn is_libssl_name(file: &str) -> bool {
    file.starts_with("libssl.so")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libssl_names() {
        assert!(is_libssl_name("libssl.so.3"));
        assert!(is_libssl_name("libssl.so.1.1"));
        assert!(!is_libssl_name("libssl3.so"), "NSS");
        assert!(!is_libssl_name("libgnutls.so.30"));
    }

    #[test]
    fn missing_or_wrong_libssl_is_an_error() {
        let e = discover(Some(Path::new("/nonexistent/libssl.so.3")), None, None).unwrap_err();
        assert_eq!(e.to_string(), "--libssl /nonexistent/libssl.so.3: no such file");
        let e = discover(Some(Path::new("/tmp")), None, None).unwrap_err();
        assert!(e.to_string().contains("is a directory"));
        let exe = std::env::current_exe().unwrap();
        let e = discover(Some(&exe), None, None).unwrap_err();
        assert!(e.to_string().contains("does not define SSL_read and SSL_write"), "{e}");
        assert_eq!(e.exit_code(), 2, "a file that is not the library is the user's");
    }

    #[test]
    fn system_libssl_version_is_found_in_its_libcrypto_rodata() {
        // Debian's libssl.so.3 has no marker of its own; its libcrypto's
        // .rodata has "OpenSSL 3.x.y <date>", as `openssl version` says.
        let Some(path) = libs::find_in_lib_dirs("libssl.so.3") else {
            eprintln!("no libssl.so.3 here: nothing to check");
            return;
        };
        let lib = inspect(&path, None).unwrap();
        let v = lib.version.expect("a version found");
        assert!(lib.version_source.starts_with("libcrypto.so"), "{}", lib.version_source);
        let said = std::process::Command::new("openssl").arg("version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        if let Ok(said) = said {
            assert!(said.starts_with(&format!("{v} ")), "{v} vs {said}");
        }
    }

    #[test]
    fn config_layout_matches_abi_h() {
        let o = Offsets {
            ssl_version: 1,
            version_in_s3: Some((2, 3)),
            ssl_rbio: 4,
            ssl_wbio: 5,
            bio_num: 6,
            bio_method: 7,
            bio_known: true,
            ssl_server: 8,
            ssl_server_mask: 9,
            mem_readp: Some(true),
        };
        let b = offsets_bytes(Some(o));
        let u = |i: usize| u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        let all = (c::LIB_F_BIO | c::LIB_F_VERSION_S3 | c::LIB_F_MEM_BIO | c::LIB_F_MEM_READP) as u32;
        assert_eq!((0..11).map(u).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8, 9, all, 1]);
        let b = offsets_bytes(Some(Offsets { version_in_s3: None, bio_known: false, ..o }));
        let u = |i: usize| u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((u(1), u(2), u(5), u(6), u(9)), (0, 0, 0, 0, 0), "no s3, no BIO: flags clear");
        assert!(offsets_bytes(None).iter().all(|&x| x == 0), "unknown: valid = 0");
        assert_eq!(openssl_cfg::SIZE, 4 + MAX_LIBS * (lib_offsets::SIZE + keylog::key_offsets::SIZE) + 4);
    }

    #[test]
    fn flags() {
        let parse = |a: &[&str]| Flags::parse(&mut pico_args::Arguments::from_vec(a.iter().map(Into::into).collect()));
        let f = parse(&["--libssl", "/x/libssl.so.3", "--ssl_version=openssl 3.0.2", "-m", "text"]).unwrap();
        assert_eq!(f.libssl, Some(PathBuf::from("/x/libssl.so.3")));
        assert_eq!(f.ssl_version.unwrap().to_string(), "OpenSSL 3.0.2");
        assert!(parse(&["--ssl_version", "wolfssl 5"]).unwrap_err().to_string().contains("expected e.g."));
        assert!(parse(&["-m", "xml"]).unwrap_err().to_string().contains("expected text"));
        assert!(parse(&["--libssl="]).unwrap_err().to_string().contains("--libssl"));
        assert_eq!(parse(&["-k", "keys.log"]).unwrap().keys.file, Some(PathBuf::from("keys.log")));
        assert!(parse(&["--cgroup_path", "/sys/fs/cgroup"]).unwrap_err().to_string().contains("not yet supported"));
    }
}
