//! Capture modules: one file per library. A module knows its library —
//! where to find it, which version it is, its private struct offsets, which
//! functions to probe — and says so as BPF objects to load and what to attach
//! them to (`capture::loader::ObjectSpec`), plus a decoder for their records.
//! Everything after decoding (assembly, rendering, outputs) knows no module.
//!
//! Adding a module: `bpf/<module>.bpf.c` (including bpf/common.h), a file
//! here implementing `Module`, its flags in `ModuleConfig`, and a line in
//! `NAMES`.

pub mod elf;
pub mod gnutls;
pub mod gotls;
pub mod libs;
pub mod nss;
pub mod openssl;

use crate::capture::features::Features;
use crate::capture::loader::ObjectSpec;
use crate::decode::{Decoder, Limits};
use crate::error::{Error, Result};
use crate::time::WallClock;

/// One library's capture.
pub trait Module {
    /// The subcommand, e.g. "tls".
    fn name(&self) -> &'static str;
    /// Finds what to hook (logging what it found) and says how: the BPF
    /// objects to load, in the build `features` call for, with their
    /// configuration and attachments.
    fn plan(&self, features: &Features) -> Result<Vec<ObjectSpec>>;
    /// A decoder for the records of one of this module's objects.
    fn decoder(&self, clock: WallClock, limits: Limits) -> Box<dyn Decoder>;
    /// Why this module reads no TLS secrets, for a module that cannot
    /// (`all -m keylog` warns with it).
    fn no_keys(&self) -> Option<&'static str> {
        None
    }
}

/// A module and its own flags, as the command line gave them.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleConfig {
    /// `tls` / `openssl`: OpenSSL and BoringSSL.
    Tls(openssl::Flags),
    /// `gnutls`: GnuTLS.
    Gnutls(gnutls::Flags),
    /// `nss` / `nspr`: NSS.
    Nss(nss::Flags),
    /// `gotls`: Go programs' crypto/tls.
    Gotls(gotls::Flags),
    /// `all`: every module whose library this host has, into one stream.
    All(AllFlags),
}

/// `all`'s flags: each module's library path flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllFlags {
    pub tls: openssl::Flags,
    pub gnutls: gnutls::Flags,
    pub nss: nss::Flags,
    pub gotls: gotls::Flags,
}

/// `-m, --model` and `-k, --keylogfile`: whether TLS secrets are read and
/// where their key log goes (NSS key log format, src/outputs/keylog.rs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyOutput {
    /// The key log file: `-k`, or the default with `-m keylog`.
    pub file: Option<std::path::PathBuf>,
    /// `-m keylog` (alias `key`): keys only, no plaintext events.
    pub keys_only: bool,
    /// `-m pcapng`: secrets go into the pcapng file (src/outputs/pcapng.rs).
    pub pcap: bool,
}

impl KeyOutput {
    /// Whether the module must read TLS secrets (for a key log or a pcapng file).
    pub fn wants_secrets(&self) -> bool {
        self.file.is_some() || self.pcap
    }
}

/// `-m pcap` / `-m pcapng`: packets of an interface into a pcapng file with
/// their TLS secrets (src/outputs/pcapng.rs).
#[derive(Debug, Clone, PartialEq)]
pub struct PcapConfig {
    /// `-w, --pcapfile`; `-` is standard output.
    pub path: std::path::PathBuf,
    /// `-i, --ifname`.
    pub ifname: String,
    /// The tcpdump expression after the module's flags ("" = every packet).
    pub filter: String,
    /// Bytes kept of each packet.
    pub snaplen: u32,
}

/// The pcapng file of `-m pcapng` without `-w` (as eCapture).
pub const DEFAULT_PCAP_FILE: &str = "save.pcapng";
/// Bytes kept of a packet (tcpdump's default).
pub const DEFAULT_SNAPLEN: u32 = 262_144;

impl PcapConfig {
    /// Takes `-m pcap|pcapng`, `-w` and `-i` out of a module's arguments
    /// (before the module parses the rest): None without `-m pcap(ng)`.
    pub fn take(args: &mut Vec<std::ffi::OsString>) -> Result<Option<PcapConfig>> {
        let mut mode = false;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].to_string_lossy().into_owned();
            let (flag, val) = match a.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            if flag == "-m" || flag == "--model" {
                let (v, n) = match val {
                    Some(v) => (Some(v), 1),
                    None => (args.get(i + 1).map(|v| v.to_string_lossy().into_owned()), 2),
                };
                if matches!(v.as_deref(), Some("pcap" | "pcapng")) {
                    args.drain(i..(i + n).min(args.len()));
                    mode = true;
                    continue;
                }
            }
            i += 1;
        }
        let mut p = pico_args::Arguments::from_vec(std::mem::take(args));
        use crate::flags::{opt, text};
        let path = opt(&mut p, "--pcapfile", Some("-w"), |s| Ok(std::path::PathBuf::from(s)))?;
        let ifname = opt(&mut p, "--ifname", Some("-i"), text)?;
        *args = p.finish();
        if !mode {
            return match (&path, &ifname) {
                (None, None) => Ok(None),
                (Some(_), _) => Err(Error::usage("--pcapfile is for -m pcapng (or pcap): add -m pcapng -i IFACE")),
                (None, Some(_)) => Err(Error::usage("--ifname is for -m pcapng (or pcap): add -m pcapng")),
            };
        }
        let Some(ifname) = ifname else {
            return Err(Error::usage("-m pcapng needs the interface to capture: -i IFACE (e.g. -i lo, -i eth0)"));
        };
        let path = path.unwrap_or_else(|| DEFAULT_PCAP_FILE.into());
        if path.as_os_str().is_empty() {
            return Err(Error::usage("invalid value '' for --pcapfile: expected a path, or - for standard output"));
        }
        Ok(Some(PcapConfig { path, ifname, filter: String::new(), snaplen: DEFAULT_SNAPLEN }))
    }
}

/// The key log file of `-m keylog` without `-k` (as eCapture).
pub const DEFAULT_KEYLOG_FILE: &str = "ecapture_openssl_key.log";

impl KeyOutput {
    /// Takes `-m` and `-k` out of `p`.
    pub fn parse(p: &mut pico_args::Arguments) -> Result<KeyOutput> {
        use crate::flags::{opt, text};
        let file = opt(p, "--keylogfile", Some("-k"), |s| Ok(std::path::PathBuf::from(s)))?;
        if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            return Err(Error::usage("invalid value '' for --keylogfile: expected a path"));
        }
        let keys_only = match opt(p, "--model", Some("-m"), text)?.as_deref() {
            None | Some("text") => false,
            Some("keylog" | "key") => true,
            // Taken out before (PcapConfig::take); here when given twice.
            Some(m @ ("pcap" | "pcapng")) => return Err(Error::usage(format!("--model {m} is given more than once"))),
            Some(m) => {
                return Err(Error::usage(format!("invalid value '{m}' for --model: expected text, keylog, key, pcap or pcapng")))
            }
        };
        let file = file.or_else(|| keys_only.then(|| DEFAULT_KEYLOG_FILE.into()));
        Ok(KeyOutput { file, keys_only, pcap: false })
    }

    /// For a module that reads no secrets: `-m text` is fine, a key log is
    /// refused (rather than an empty file), saying `why`.
    fn refuse(p: &mut pico_args::Arguments, module: &str, why: &str) -> Result<()> {
        if KeyOutput::parse(p)? != KeyOutput::default() {
            return Err(Error::usage(format!("--model keylog and --keylogfile are not supported by the {module} module: {why} (see README)")));
        }
        Ok(())
    }
}

/// The modules: (subcommand, aliases).
pub const NAMES: &[(&str, &[&str])] = &[("tls", &["openssl"]), ("gnutls", &[]), ("nss", &["nspr"]), ("gotls", &[]), ("all", &[])];

/// eCapture's modules that this version does not have yet.
const LATER: &[&str] = &["bash", "zsh", "mysqld", "postgres"];

impl ModuleConfig {
    /// Parses module `name`'s flags out of `p` (what is left is not its).
    pub fn parse(name: &str, p: &mut pico_args::Arguments) -> Result<ModuleConfig> {
        match name {
            "tls" | "openssl" => Ok(ModuleConfig::Tls(openssl::Flags::parse(p)?)),
            "gnutls" => {
                KeyOutput::refuse(p, "gnutls", gnutls::NO_KEYS)?;
                Ok(ModuleConfig::Gnutls(gnutls::Flags::parse(p)?))
            }
            "nss" | "nspr" => {
                KeyOutput::refuse(p, "nss", nss::NO_KEYS)?;
                Ok(ModuleConfig::Nss(nss::Flags::parse(p)?))
            }
            "gotls" => Ok(ModuleConfig::Gotls(gotls::Flags::parse(p)?)),
            "all" => {
                let keys = KeyOutput::parse(p)?;
                let libssl = crate::flags::opt(p, "--libssl", None, |s| Ok(std::path::PathBuf::from(s)))?;
                let gnutls = crate::flags::opt(p, "--gnutls", None, |s| Ok(std::path::PathBuf::from(s)))?;
                let nspr = crate::flags::opt(p, "--nspr", None, |s| Ok(std::path::PathBuf::from(s)))?;
                let elfpath = crate::flags::opt(p, "--elfpath", None, |s| Ok(std::path::PathBuf::from(s)))?;
                Ok(ModuleConfig::All(AllFlags {
                    tls: openssl::Flags { libssl, keys: keys.clone(), ..Default::default() },
                    gnutls: gnutls::Flags { gnutls, ..Default::default() },
                    nss: nss::Flags { nspr },
                    gotls: gotls::Flags { elfpath, keys },
                }))
            }
            m if LATER.contains(&m) => Err(Error::usage(format!("module '{m}' is not yet supported by this version of ecapture"))),
            m => Err(Error::usage(format!("unknown module '{m}': expected tls, gnutls, nss, gotls or all (see ecapture --help)"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModuleConfig::Tls(_) => "tls",
            ModuleConfig::Gnutls(_) => "gnutls",
            ModuleConfig::Nss(_) => "nss",
            ModuleConfig::Gotls(_) => "gotls",
            ModuleConfig::All(_) => "all",
        }
    }

    /// The modules to run; `pid` (`--pid`) limits discovery to that process.
    pub fn build(&self, pid: Option<u32>) -> Vec<Box<dyn Module>> {
        match self {
            ModuleConfig::Tls(flags) => vec![Box::new(openssl::Openssl::new(flags.clone(), pid))],
            ModuleConfig::Gnutls(flags) => vec![Box::new(gnutls::Gnutls::new(flags.clone(), pid))],
            ModuleConfig::Nss(flags) => vec![Box::new(nss::Nss::new(flags.clone(), pid))],
            ModuleConfig::Gotls(flags) => vec![Box::new(gotls::Gotls::new(flags.clone(), pid))],
            ModuleConfig::All(f) => vec![
                Box::new(openssl::Openssl::new(f.tls.clone(), pid)),
                Box::new(gnutls::Gnutls::new(f.gnutls.clone(), pid)),
                Box::new(nss::Nss::new(f.nss.clone(), pid)),
                Box::new(gotls::Gotls::new(f.gotls.clone(), pid)),
            ],
        }
    }

    /// `-m pcapng`: the modules that read secrets read them for the file.
    pub fn want_secrets_for_pcap(&mut self) {
        match self {
            ModuleConfig::Tls(f) => f.keys.pcap = true,
            ModuleConfig::Gotls(f) => f.keys.pcap = true,
            ModuleConfig::All(f) => {
                f.tls.keys.pcap = true;
                f.gotls.keys.pcap = true;
            }
            _ => {}
        }
    }

    /// Whether this module reads TLS secrets at all (else `-m pcapng`
    /// writes packets without keys).
    pub fn reads_secrets(&self) -> bool {
        matches!(self, ModuleConfig::Tls(_) | ModuleConfig::Gotls(_) | ModuleConfig::All(_))
    }

    /// Where secrets go (the modules that read them: tls, gotls, and all's).
    pub fn keys(&self) -> KeyOutput {
        match self {
            ModuleConfig::Tls(f) => f.keys.clone(),
            ModuleConfig::Gotls(f) => f.keys.clone(),
            ModuleConfig::All(f) => f.tls.keys.clone(),
            _ => KeyOutput::default(),
        }
    }

    /// Whether a module without its library is skipped (`all`) rather than
    /// an error.
    pub fn modules_optional(&self) -> bool {
        matches!(self, ModuleConfig::All(_))
    }
}

/// The module whose flag `flag` is (for a flag given before its module).
pub fn flag_owner(flag: &str) -> Option<&'static str> {
    let name = flag.split('=').next().unwrap_or(flag);
    if openssl::FLAGS.contains(&name) {
        Some("tls")
    } else if gnutls::FLAGS.contains(&name) {
        Some("gnutls")
    } else if nss::FLAGS.contains(&name) {
        Some("nss")
    } else if gotls::FLAGS.contains(&name) {
        Some("gotls")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::abi::{Layout, COMMON_LAYOUTS};
    use crate::sys::libbpf::OpenObject;

    /// (object name, its bytes, the layouts its module uses, its configuration globals)
    type Embedded = (&'static str, &'static [u8], Vec<&'static Layout>, Vec<&'static str>);

    /// Every embedded object.
    fn objects() -> Vec<Embedded> {
        vec![
            ("openssl", openssl::OBJECT, openssl::LAYOUTS.to_vec(), vec!["openssl_cfg"]),
            ("openssl.compat", openssl::OBJECT_COMPAT, openssl::LAYOUTS.to_vec(), vec!["openssl_cfg"]),
            ("gnutls", gnutls::OBJECT, gnutls::LAYOUTS.to_vec(), vec!["gnutls_cfg"]),
            ("gnutls.compat", gnutls::OBJECT_COMPAT, gnutls::LAYOUTS.to_vec(), vec!["gnutls_cfg"]),
            ("nss", nss::OBJECT, vec![], vec![]),
            ("nss.compat", nss::OBJECT_COMPAT, vec![], vec![]),
            ("gotls", gotls::OBJECT, gotls::LAYOUTS.to_vec(), vec!["gotls_cfg"]),
            ("gotls.compat", gotls::OBJECT_COMPAT, gotls::LAYOUTS.to_vec(), vec!["gotls_cfg"]),
        ]
    }

    /// The ABI check: every struct the Rust side declares (capture::abi and
    /// the modules' own) has, in each embedded object's BTF, the same size
    /// and the same members at the same offsets with the same sizes.
    #[test]
    fn abi_matches_the_objects_btf() {
        for (name, bytes, own, vars) in objects() {
            let open = OpenObject::open_mem(name, bytes, None).expect("the embedded object opens");
            let btf = open.btf().expect("the object has BTF");
            for l in COMMON_LAYOUTS.iter().chain(own.iter()) {
                let got = btf.struct_layout(l.name).unwrap_or_else(|| panic!("{name}: no struct {} in BTF", l.name));
                let want: Vec<(String, usize, usize)> = l.fields.iter().map(|(f, o, s)| (f.to_string(), *o, *s)).collect();
                assert_eq!(got.members, want, "{name}: struct {} members (name, offset, size)", l.name);
                assert_eq!(got.size, l.size, "{name}: sizeof(struct {})", l.name);
            }
            for var in std::iter::once("common_cfg").chain(vars) {
                assert!(btf.datasec_var(".rodata", var).is_some(), "{name}: no global {var} in .rodata");
            }
        }
    }

    #[test]
    fn embedded_objects_are_bpf_elf() {
        for (name, bytes, _, _) in objects() {
            assert_eq!(&bytes[..4], b"\x7fELF", "{name}");
            assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 247, "{name}: EM_BPF");
        }
    }

    /// A section of an embedded object: (name, type, flags, offset, size, link, entsize).
    type Sec = (String, u32, u64, usize, usize, u32, usize);

    fn sections(o: &[u8]) -> Vec<Sec> {
        let u16at = |at: usize| u16::from_le_bytes([o[at], o[at + 1]]) as usize;
        let u32at = |at: usize| u32::from_le_bytes(o[at..at + 4].try_into().unwrap());
        let u64at = |at: usize| u64::from_le_bytes(o[at..at + 8].try_into().unwrap());
        let (shoff, shnum, shstrndx) = (u64at(0x28) as usize, u16at(0x3c), u16at(0x3e));
        let raw: Vec<_> = (0..shnum)
            .map(|i| {
                let h = shoff + i * 64;
                (u32at(h), u32at(h + 4), u64at(h + 8), u64at(h + 0x18) as usize, u64at(h + 0x20) as usize, u32at(h + 0x28), u64at(h + 0x38) as usize)
            })
            .collect();
        let names = raw[shstrndx].3;
        raw.iter()
            .map(|&(name, kind, flags, off, size, link, entsize)| {
                let n = &o[names + name as usize..];
                let n = String::from_utf8_lossy(&n[..n.iter().position(|&b| b == 0).unwrap()]).into_owned();
                (n, kind, flags, off, size, link, entsize)
            })
            .collect()
    }

    /// What can be checked of the objects without loading them (the only
    /// check the aarch64 build's objects get on an x86_64 machine, where
    /// `make test-aarch64` runs these tests under qemu): BPF ELF with BTF and
    /// CO-RE records; every program in a section libbpf knows as a uprobe,
    /// uretprobe or raw tracepoint; every relocation naming a defined symbol
    /// (a map, a global or a subprogram); and the kernel types those of the
    /// architecture built for (bpf/<arch>/vmlinux.h, bpf/arch.h).
    #[test]
    fn embedded_objects_are_well_formed_for_this_architecture() {
        const SHT_SYMTAB: u32 = 2;
        const SHT_REL: u32 = 9;
        const SHF_EXECINSTR: u64 = 4;
        for (name, o, _, _) in objects() {
            let secs = sections(o);
            let has = |n: &str| secs.iter().any(|s| s.0 == n && s.4 > 0);
            assert!(has(".BTF") && has(".BTF.ext") && has(".maps") && has("license"), "{name}: BTF, CO-RE records, maps, license");
            let progs: Vec<&Sec> = secs.iter().filter(|s| s.2 & SHF_EXECINSTR != 0 && s.4 > 0 && s.0 != ".text").collect();
            assert!(!progs.is_empty(), "{name}: no programs");
            for p in &progs {
                assert!(
                    ["uprobe", "uretprobe", "raw_tracepoint/sys_enter", "raw_tracepoint/sys_exit"].contains(&p.0.as_str()),
                    "{name}: program section {} is not a uprobe, uretprobe or raw tracepoint",
                    p.0
                );
            }
            for want in ["uprobe", "raw_tracepoint/sys_enter"] {
                assert!(has(want), "{name}: no {want} program");
            }
            let symtab = secs.iter().find(|s| s.1 == SHT_SYMTAB).unwrap_or_else(|| panic!("{name}: no symbol table"));
            let nsyms = symtab.4 / 24;
            let mut relocs = 0;
            for rel in secs.iter().filter(|s| s.1 == SHT_REL && !s.0.starts_with(".rel.BTF")) {
                assert_eq!((rel.5 as usize, rel.6), (secs.iter().position(|s| s == symtab).unwrap(), 16), "{name}: {}", rel.0);
                for r in o[rel.3..rel.3 + rel.4].chunks_exact(16) {
                    let sym = (u64::from_le_bytes(r[8..16].try_into().unwrap()) >> 32) as usize;
                    assert!(sym > 0 && sym < nsyms, "{name}: {}: relocation to symbol {sym} of {nsyms}", rel.0);
                    let st = symtab.3 + sym * 24;
                    let shndx = u16::from_le_bytes([o[st + 6], o[st + 7]]) as usize;
                    let target = secs.get(shndx).map(|s| s.0.as_str()).unwrap_or("?");
                    assert!(
                        [".maps", ".rodata", ".bss", ".data", ".text"].contains(&target) || target.starts_with(".rodata"),
                        "{name}: {}: relocation against a symbol in {target}",
                        rel.0
                    );
                    relocs += 1;
                }
            }
            assert!(relocs > 0, "{name}: no map relocations");
            // The kernel's pt_regs as compiled: the syscall number's member
            // (sys_exit reads it with CO-RE) tells the architecture.
            let open = OpenObject::open_mem(name, o, None).expect("the embedded object opens");
            let regs = open.btf().unwrap().struct_layout("pt_regs").unwrap_or_else(|| panic!("{name}: no struct pt_regs in BTF"));
            let has_member = |m: &str| regs.members.iter().any(|(n, _, _)| n == m);
            #[cfg(target_arch = "x86_64")]
            assert!(has_member("orig_ax") && !has_member("syscallno"), "{name}: x86_64's pt_regs: {regs:?}");
            #[cfg(target_arch = "aarch64")]
            assert!(has_member("syscallno") && !has_member("orig_ax"), "{name}: arm64's pt_regs: {regs:?}");
        }
    }

    #[test]
    fn module_names_and_flag_owners() {
        let mut p = pico_args::Arguments::from_vec(vec![]);
        assert_eq!(ModuleConfig::parse("openssl", &mut p).unwrap().name(), "tls");
        assert_eq!(ModuleConfig::parse("gotls", &mut p).unwrap().name(), "gotls");
        assert!(ModuleConfig::parse("bash", &mut p).unwrap_err().to_string().contains("not yet supported"));
        assert_eq!(flag_owner("--elfpath"), Some("gotls"));
        assert!(ModuleConfig::parse("quic", &mut p).unwrap_err().to_string().starts_with("unknown module 'quic'"));
        assert_eq!(flag_owner("--libssl"), Some("tls"));
        assert_eq!(flag_owner("--libssl=/x"), Some("tls"));
        assert_eq!(flag_owner("--nope"), None);
        let mut p = pico_args::Arguments::from_vec(vec!["-m".into(), "keylog".into()]);
        assert!(ModuleConfig::parse("gnutls", &mut p).unwrap_err().to_string().contains("not supported by the gnutls module: GnuTLS"));
        let mut p = pico_args::Arguments::from_vec(vec!["-k".into(), "k.log".into()]);
        let ModuleConfig::Gotls(f) = ModuleConfig::parse("gotls", &mut p).unwrap() else { panic!("gotls") };
        assert_eq!(f.keys.file, Some("k.log".into()));
        let mut p = pico_args::Arguments::from_vec(vec!["-m".into(), "text".into()]);
        assert_eq!(ModuleConfig::parse("nss", &mut p).unwrap().name(), "nss");
    }
}
