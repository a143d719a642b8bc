//! The `nss` module (alias `nspr`): NSS, as Firefox, Thunderbird and NSS's
//! own tools (`tstclnt`, `selfserv`) use it (bpf/nss.bpf.c).
//!
//! Plaintext is taken where applications hand it to NSPR: PR_Write, PR_Read,
//! PR_Send and PR_Recv in libnspr4. Which descriptors are TLS is learnt from
//! NSS's libssl3 (SSL_ImportFD; the role from SSL_ResetHandshake) and from
//! the descriptor itself (see the BPF file); NSPR's own files and sockets are
//! not captured, and a layered descriptor that cannot be told apart is sent
//! marked "may be plain". The TLS version is not read (NSS keeps it in
//! private structs without a stable layout).
//!
//! Which libraries: `--nspr PATH` names libnspr4; otherwise every distinct
//! libnspr4 running processes map, plus the system's; libssl3 likewise
//! (without one, connections are recognised by their descriptor only).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::elf::Elf;
use super::{libs, Module};
use crate::capture::features::{Build, Features};
use crate::capture::loader::{ObjectSpec, Target, Uprobe};
use crate::decode::calls::CallDecoder;
use crate::decode::{Decoder, Limits};
use crate::error::{Error, Result};
use crate::flags::opt;
use crate::time::WallClock;

pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nss.bpf.o"));
pub static OBJECT_COMPAT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nss.compat.bpf.o"));

/// libnspr4's functions: (function, entry program).
const NSPR_PROBES: &[(&str, &str)] = &[
    ("PR_Write", "nss_write_entry"),
    ("PR_Send", "nss_write_entry"),
    ("PR_Read", "nss_read_entry"),
    ("PR_Recv", "nss_read_entry"),
];
const CLOSE: &str = "PR_Close";
/// PR_Writev: modern kernels only (bpf/nss.bpf.c).
const WRITEV: &str = "PR_Writev";
const IMPORT: &str = "SSL_ImportFD";
const RESET: &str = "SSL_ResetHandshake";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    /// `--nspr`: the libnspr4 to hook.
    pub nspr: Option<PathBuf>,
}

/// Every flag of this module, for the "give it after the module" hint.
pub const FLAGS: &[&str] = &["--nspr"];

/// Why this module gives no keys (`-m keylog`, `-k`).
pub const NO_KEYS: &str = "NSS keeps its secrets in private structs (sslSocket, ssl3State) whose layout is not known here";

impl Flags {
    pub fn parse(p: &mut pico_args::Arguments) -> Result<Flags> {
        let nspr = opt(p, "--nspr", None, |s| Ok(PathBuf::from(s)))?;
        if nspr.as_ref().is_some_and(|l| l.as_os_str().is_empty()) {
            return Err(Error::usage("invalid value '' for --nspr: expected a path"));
        }
        Ok(Flags { nspr })
    }
}

pub struct Nss {
    flags: Flags,
    pid: Option<u32>,
}

impl Nss {
    pub fn new(flags: Flags, pid: Option<u32>) -> Nss {
        Nss { flags, pid }
    }
}

#[derive(Debug)]
struct Lib {
    path: PathBuf,
    functions: HashMap<String, u64>,
}

impl Module for Nss {
    fn name(&self) -> &'static str {
        "nss"
    }

    fn plan(&self, features: &Features) -> Result<Vec<ObjectSpec>> {
        let nspr = libs::discover(
            &libs::Wanted {
                flag: "--nspr",
                explicit: self.flags.nspr.as_deref(),
                name: |f| f.starts_with("libnspr4.so"),
                system_prefix: "libnspr4.so",
                what: "libnspr4",
                pid: self.pid,
            },
            inspect_nspr,
        )?;
        let ssl = libs::discover(
            &libs::Wanted {
                flag: "--nspr (libssl3 is looked for beside it)",
                explicit: None,
                name: |f| f.starts_with("libssl3.so"),
                system_prefix: "libssl3.so",
                what: "libssl3",
                pid: self.pid,
            },
            inspect_ssl3,
        )
        .unwrap_or_else(|e| {
            log::warn!("NSS's libssl3 not hooked ({e}); TLS connections are recognised by their descriptors only");
            Vec::new()
        });
        for lib in &nspr {
            log::info!("hooking {} (NSPR)", lib.path.display());
        }
        for lib in &ssl {
            log::info!("hooking {} ({})", lib.path.display(), nss_version(&lib.path).unwrap_or_else(|| "NSS version unknown".into()));
        }
        let object = match features.build() {
            Build::Modern => OBJECT,
            Build::Compat => OBJECT_COMPAT,
        };
        // One object: its programs are attached to every file.
        let modern = features.build() == Build::Modern;
        if !modern {
            log::warn!("the compat BPF build (no bpf_loop before Linux 5.17, or ECAPTURE_BPF=compat): PR_Writev is not captured");
        }
        let mut targets: Vec<Target> =
            nspr.iter().map(|l| Target { path: l.path.clone(), uprobes: nspr_uprobes(l, modern) }).collect();
        targets.extend(ssl.iter().map(|l| Target { path: l.path.clone(), uprobes: ssl3_uprobes(l) }));
        Ok(vec![ObjectSpec {
            name: "nss",
            bytes: object,
            config: Vec::new(),
            raw_tracepoints: vec![("sys_enter", "sys_enter")],
            targets,
        }])
    }

    fn decoder(&self, clock: WallClock, limits: Limits) -> Box<dyn Decoder> {
        Box::new(CallDecoder::new(clock, limits).keys_missing_why(NO_KEYS))
    }

    fn no_keys(&self) -> Option<&'static str> {
        Some(NO_KEYS)
    }
}

fn probe(lib: &Lib, func: &str, prog: &'static str, ret: bool) -> Option<Uprobe> {
    lib.functions.get(func).map(|&offset| Uprobe { prog, func: func.to_string(), offset, ret, cookie: 0 })
}

fn nspr_uprobes(lib: &Lib, writev: bool) -> Vec<Uprobe> {
    let mut out = Vec::new();
    for &(func, prog) in NSPR_PROBES {
        out.extend(probe(lib, func, prog, false));
        out.extend(probe(lib, func, "nss_rw_return", true));
    }
    if writev {
        out.extend(probe(lib, WRITEV, "nss_writev_entry", false));
        out.extend(probe(lib, WRITEV, "nss_writev_return", true));
    }
    out.extend(probe(lib, CLOSE, "nss_close_entry", false));
    out
}

fn ssl3_uprobes(lib: &Lib) -> Vec<Uprobe> {
    let mut out = Vec::new();
    out.extend(probe(lib, IMPORT, "nss_import_return", true));
    out.extend(probe(lib, RESET, "nss_reset_handshake_entry", false));
    out
}

fn inspect_nspr(path: &Path) -> Result<Lib> {
    let elf = Elf::open(path)?;
    let wanted: Vec<&str> = NSPR_PROBES.iter().map(|p| p.0).chain([CLOSE, WRITEV]).collect();
    let functions = elf.function_offsets(&wanted)?;
    if !functions.contains_key("PR_Write") || !functions.contains_key("PR_Read") {
        return Err(Error::runtime("does not define PR_Write and PR_Read (is it NSPR's libnspr4?)"));
    }
    Ok(Lib { path: path.to_path_buf(), functions })
}

fn inspect_ssl3(path: &Path) -> Result<Lib> {
    let elf = Elf::open(path)?;
    let functions = elf.function_offsets(&[IMPORT, RESET])?;
    if !functions.contains_key(IMPORT) {
        return Err(Error::runtime("does not define SSL_ImportFD (is it NSS's libssl3?)"));
    }
    Ok(Lib { path: path.to_path_buf(), functions })
}

/// "NSS 3.87.1", from the "Version: NSS x.y" string of libssl3 or the
/// libnss3 beside it.
fn nss_version(ssl3: &Path) -> Option<String> {
    let look = |p: &Path| {
        let elf = Elf::open(p).ok()?;
        let mut v = None;
        const MARKER: &[u8] = b"Version: NSS ";
        let _ = elf.find_bytes(&[MARKER], 64 << 20, |at| {
            let rest = &at[MARKER.len()..];
            let end = rest.iter().position(|&b| !(b.is_ascii_digit() || b == b'.')).unwrap_or(0);
            v = (end > 0).then(|| format!("NSS {}", String::from_utf8_lossy(&rest[..end])));
            v.is_some()
        });
        v
    };
    look(ssl3).or_else(|| look(&ssl3.parent()?.join("libnss3.so")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systems_nss_when_there_is_one() {
        let (Some(nspr), Some(ssl3)) = (libs::find_in_lib_dirs("libnspr4.so"), libs::find_in_lib_dirs("libssl3.so")) else {
            eprintln!("SKIPPED: no libnspr4.so / libssl3.so on this machine");
            return;
        };
        let n = inspect_nspr(&nspr).unwrap();
        assert_eq!(nspr_uprobes(&n, false).len(), 9, "four calls, entry and return, and PR_Close");
        assert_eq!(nspr_uprobes(&n, true).len(), 11, "and PR_Writev");
        let s = inspect_ssl3(&ssl3).unwrap();
        assert_eq!(ssl3_uprobes(&s).len(), 2);
        assert!(nss_version(&ssl3).is_some_and(|v| v.starts_with("NSS 3.")));
        assert!(inspect_nspr(&ssl3).unwrap_err().to_string().contains("does not define PR_Write"));
    }
}
