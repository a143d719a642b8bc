//! The `gnutls` module: GnuTLS's libgnutls (bpf/gnutls.bpf.c), as `wget`,
//! `gnutls-cli`/`gnutls-serv` and libcurl-gnutls (git, apt over https) use it.
//!
//! Which libraries: `--gnutls PATH` names one; otherwise every distinct
//! libgnutls running processes map, plus the system's. One BPF object per
//! library, its offsets in `gnutls_cfg`.
//!
//! The version ("Enabled GnuTLS x.y.z logging" in the library, or
//! `--ssl_version`) selects the offsets of the session's negotiated
//! protocol and role; outside the versions whose layout we know they are
//! not read (TLS version unknown, role guessed from the ports).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::elf::Elf;
use super::{libs, Module};
use crate::capture::abi::{abi_struct, Layout};
use crate::capture::features::{Build, Features};
use crate::capture::loader::{ObjectSpec, Target, Uprobe};
use crate::decode::calls::CallDecoder;
use crate::decode::{Decoder, Limits};
use crate::error::{Error, Result};
use crate::flags::opt;
use crate::time::WallClock;

pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gnutls.bpf.o"));
pub static OBJECT_COMPAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gnutls.compat.bpf.o"));

abi_struct!(
    /// `struct gnutls_cfg` of bpf/abi.h: the object's `gnutls_cfg` global.
    gnutls_cfg(16) {
        pversion: u32 = 0,
        version_id: u32 = 4,
        entity: u32 = 8,
        valid: u32 = 12,
    }
);

/// The layouts this module writes, for the ABI test.
pub const LAYOUTS: &[&Layout] = &[&gnutls_cfg::LAYOUT];

/// gnutls_record_send is a thin wrapper of send2 where send2 exists
/// (3.6.3+): one of the two is hooked.
const SEND: &str = "gnutls_record_send";
const SEND2: &str = "gnutls_record_send2";
/// The return program of the read and write calls.
const RW: Option<&str> = Some("gnutls_rw_return");
/// (function, entry program, return program if any).
const PROBES: &[(&str, &str, Option<&str>)] = &[
    (SEND2, "gnutls_send_entry", RW),
    ("gnutls_record_send_range", "gnutls_send_range_entry", RW),
    ("gnutls_record_send_early_data", "gnutls_send_entry", RW),
    ("gnutls_record_recv", "gnutls_recv_entry", RW),
    ("gnutls_record_recv_seq", "gnutls_recv_entry", RW),
    ("gnutls_record_recv_early_data", "gnutls_recv_entry", RW),
    ("gnutls_transport_set_int2", "gnutls_set_int2_entry", None),
    ("gnutls_transport_set_ptr", "gnutls_set_ptr_entry", None),
    ("gnutls_transport_set_ptr2", "gnutls_set_ptr2_entry", None),
    ("gnutls_deinit", "gnutls_deinit_entry", None),
    (UNCORK, "gnutls_uncork_entry", Some("gnutls_uncork_return")),
];
const UNCORK: &str = "gnutls_record_uncork";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GnutlsVersion(pub u32, pub u32, pub u32);

impl fmt::Display for GnutlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GnuTLS {}.{}.{}", self.0, self.1, self.2)
    }
}

impl GnutlsVersion {
    /// "3.7.9" or "gnutls 3.7.9".
    pub fn parse(s: &str) -> Option<GnutlsVersion> {
        let s = s.trim();
        let s = s.get(..7).filter(|p| p.eq_ignore_ascii_case("gnutls ")).map_or(s, |_| &s[7..]).trim();
        let mut it = s.split('.');
        let mut num = || it.next().and_then(|n| n.parse::<u32>().ok());
        let v = GnutlsVersion(num()?, num()?, num().unwrap_or(0));
        (v.0 >= 2 && v.0 < 10).then_some(v)
    }

    /// The offsets of this version's session, when its layout is known:
    /// (security_parameters.pversion, version_entry_st.id, security_parameters.entity).
    /// From GnuTLS's lib/gnutls_int.h: security_parameters is the session's
    /// first member; entity its first field; pversion at 0xf8 from 3.6.12
    /// (when the TLS 1.3 fields settled) through 3.8.
    pub fn offsets(self) -> Option<(u32, u32, u32)> {
        (self >= GnutlsVersion(3, 6, 12) && self < GnutlsVersion(3, 9, 0)).then_some((0xf8, 8, 0))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `--gnutls`: the libgnutls to hook.
    pub gnutls: Option<PathBuf>,
    /// `--ssl_version`: overrides version detection, e.g. "3.7.9".
    pub version: Option<GnutlsVersion>,
}

/// Every flag of this module, for the "give it after the module" hint.
pub const FLAGS: &[&str] = &["--gnutls"];

/// Why this module gives no keys (`-m keylog`, `-k`): GnuTLS hands its
/// secrets only to an internal, unexported function (`_gnutls_call_keylog_func`
/// and the default callback behind it; distributions' libgnutls has no
/// `.symtab` to find them by), and keeps them in `gnutls_session_int`, whose
/// layout is not generated from GnuTLS's sources here.
pub const NO_KEYS: &str =
    "GnuTLS hands its secrets only to internal, unexported functions and keeps them in private structs whose layout is not known here";

impl Flags {
    pub fn parse(p: &mut pico_args::Arguments) -> Result<Flags> {
        let gnutls = opt(p, "--gnutls", None, |s| Ok(PathBuf::from(s)))?;
        if gnutls.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
            return Err(Error::usage("invalid value '' for --gnutls: expected a path"));
        }
        let version = opt(p, "--ssl_version", None, |s| {
            GnutlsVersion::parse(s).ok_or_else(|| "expected a GnuTLS version, e.g. \"3.7.9\"".to_string())
        })?;
        Ok(Flags { gnutls, version })
    }
}

pub struct Gnutls {
    flags: Flags,
    pid: Option<u32>,
}

impl Gnutls {
    pub fn new(flags: Flags, pid: Option<u32>) -> Gnutls {
        Gnutls { flags, pid }
    }
}

/// A libgnutls to attach to.
#[derive(Debug, Clone)]
pub struct Library {
    pub path: PathBuf,
    pub functions: HashMap<String, u64>,
    pub version: Option<GnutlsVersion>,
}

impl Module for Gnutls {
    fn name(&self) -> &'static str {
        "gnutls"
    }

    fn plan(&self, features: &Features) -> Result<Vec<ObjectSpec>> {
        let wanted = libs::Wanted {
            flag: "--gnutls",
            explicit: self.flags.gnutls.as_deref(),
            name: |f| f.starts_with("libgnutls.so"),
            system_prefix: "libgnutls.so.",
            what: "libgnutls",
            pid: self.pid,
        };
        let found = libs::discover(&wanted, |p| inspect(p, self.flags.version))?;
        let object = match features.build() {
            Build::Modern => OBJECT,
            Build::Compat => OBJECT_COMPAT,
        };
        Ok(found
            .iter()
            .map(|lib| {
                let offsets = lib.version.and_then(GnutlsVersion::offsets);
                match (lib.version, offsets) {
                    (Some(v), Some(_)) => log::info!("hooking {} ({v})", lib.path.display()),
                    (Some(v), None) => log::warn!(
                        "hooking {} ({v}): no known session layout for it; TLS version will show as unknown",
                        lib.path.display()
                    ),
                    (None, _) => log::warn!(
                        "hooking {} (GnuTLS version not found; use --ssl_version): TLS version will show as unknown",
                        lib.path.display()
                    ),
                }
                ObjectSpec {
                    name: "gnutls",
                    bytes: object,
                    config: vec![("gnutls_cfg", config_bytes(offsets))],
                    raw_tracepoints: vec![("sys_enter", "sys_enter")],
                    targets: vec![Target { path: lib.path.clone(), uprobes: uprobes(lib) }],
                }
            })
            .collect())
    }

    fn decoder(&self, clock: WallClock, limits: Limits) -> Box<dyn Decoder> {
        Box::new(CallDecoder::new(clock, limits).keys_missing_why(NO_KEYS))
    }

    fn no_keys(&self) -> Option<&'static str> {
        Some(NO_KEYS)
    }
}

fn config_bytes(offsets: Option<(u32, u32, u32)>) -> Vec<u8> {
    let mut b = vec![0u8; gnutls_cfg::SIZE];
    if let Some((pversion, id, entity)) = offsets {
        gnutls_cfg::pversion.put(&mut b, pversion);
        gnutls_cfg::version_id.put(&mut b, id);
        gnutls_cfg::entity.put(&mut b, entity);
        gnutls_cfg::valid.put(&mut b, 1);
    }
    b
}

fn uprobes(lib: &Library) -> Vec<Uprobe> {
    let mut out = Vec::new();
    let mut add = |func: &str, prog: &'static str, ret: Option<&'static str>| {
        if let Some(&offset) = lib.functions.get(func) {
            out.push(Uprobe { prog, func: func.to_string(), offset, ret: false, cookie: 0 });
            if let Some(prog) = ret {
                out.push(Uprobe { prog, func: func.to_string(), offset, ret: true, cookie: 0 });
            }
        }
    };
    for &(func, prog, ret) in PROBES {
        add(func, prog, ret);
    }
    if !lib.functions.contains_key(SEND2) {
        add(SEND, "gnutls_send_entry", RW);
    }
    out
}

/// Reads one candidate: its functions and version.
pub fn inspect(path: &Path, override_version: Option<GnutlsVersion>) -> Result<Library> {
    let elf = Elf::open(path)?;
    let wanted: Vec<&str> = PROBES.iter().map(|p| p.0).chain([SEND]).collect();
    let functions = elf.function_offsets(&wanted)?;
    if !functions.contains_key("gnutls_record_recv") || !(functions.contains_key(SEND) || functions.contains_key(SEND2)) {
        return Err(Error::runtime("does not define gnutls_record_send and gnutls_record_recv (is it libgnutls?)"));
    }
    let version = override_version.or_else(|| {
        let mut v = None;
        const MARKER: &[u8] = b"Enabled GnuTLS ";
        let _ = elf.find_bytes(&[MARKER], 64 << 20, |at| {
            let rest = &at[MARKER.len()..];
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len().min(16));
            v = std::str::from_utf8(&rest[..end]).ok().and_then(GnutlsVersion::parse);
            v.is_some()
        });
        v
    });
    Ok(Library { path: path.to_path_buf(), functions, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_layouts() {
        assert_eq!(GnutlsVersion::parse("3.7.9"), Some(GnutlsVersion(3, 7, 9)));
        assert_eq!(GnutlsVersion::parse("GnuTLS 3.8.4"), Some(GnutlsVersion(3, 8, 4)));
        assert_eq!(GnutlsVersion::parse("openssl 3.0.2"), None);
        assert_eq!(GnutlsVersion(3, 7, 9).offsets(), Some((0xf8, 8, 0)));
        assert_eq!(GnutlsVersion(3, 6, 11).offsets(), None);
        assert_eq!(GnutlsVersion(3, 9, 0).offsets(), None);
        let b = config_bytes(Some((0xf8, 8, 0)));
        assert_eq!((gnutls_cfg::pversion.get(&b), gnutls_cfg::valid.get(&b)), (0xf8, 1));
        assert!(config_bytes(None).iter().all(|&x| x == 0));
    }

    #[test]
    fn the_systems_libgnutls_when_there_is_one() {
        let Some(path) = libs::find_in_lib_dirs("libgnutls.so.30") else {
            eprintln!("SKIPPED: no libgnutls.so.30 on this machine");
            return;
        };
        let lib = inspect(&path, None).unwrap();
        assert!(lib.version.is_some(), "the version marker is found");
        let probes = uprobes(&lib);
        let sends: Vec<&str> = probes.iter().filter(|u| u.func.starts_with("gnutls_record_send") && !u.ret).map(|u| u.func.as_str()).collect();
        assert!(sends.contains(&SEND2) != sends.contains(&SEND), "send or send2, never both: {sends:?}");
        let e = inspect(Path::new("/bin/true"), None).unwrap_err();
        assert!(e.to_string().contains("does not define gnutls_record_send"), "{e}");
    }
}
