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
pub mod libs;
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
}

/// A module and its own flags, as the command line gave them.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleConfig {
    /// `tls` / `openssl`: OpenSSL and BoringSSL.
    Tls(openssl::Flags),
}

/// The modules: (subcommand, aliases, one line of help).
pub const NAMES: &[(&str, &[&str])] = &[("tls", &["openssl"])];

/// eCapture's modules that this version does not have yet.
const LATER: &[&str] = &["gnutls", "nss", "nspr", "gotls", "bash", "zsh", "mysqld", "postgres"];

impl ModuleConfig {
    /// Parses module `name`'s flags out of `p` (what is left is not its).
    pub fn parse(name: &str, p: &mut pico_args::Arguments) -> Result<ModuleConfig> {
        match name {
            "tls" | "openssl" => Ok(ModuleConfig::Tls(openssl::Flags::parse(p)?)),
            m if LATER.contains(&m) => Err(Error::usage(format!("module '{m}' is not yet supported by this version of ecapture"))),
            m => Err(Error::usage(format!("unknown module '{m}': expected tls (see ecapture --help)"))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModuleConfig::Tls(_) => "tls",
        }
    }

    /// The module to run.
    pub fn build(&self) -> Vec<Box<dyn Module>> {
        match self {
            ModuleConfig::Tls(flags) => vec![Box::new(openssl::Openssl::new(flags.clone()))],
        }
    }
}

/// The module whose flag `flag` is (for a flag given before its module).
pub fn flag_owner(flag: &str) -> Option<&'static str> {
    let name = flag.split('=').next().unwrap_or(flag);
    openssl::FLAGS.contains(&name).then_some("tls")
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

    #[test]
    fn module_names_and_flag_owners() {
        let mut p = pico_args::Arguments::from_vec(vec![]);
        assert_eq!(ModuleConfig::parse("openssl", &mut p).unwrap().name(), "tls");
        assert!(ModuleConfig::parse("gotls", &mut p).unwrap_err().to_string().contains("not yet supported"));
        assert!(ModuleConfig::parse("quic", &mut p).unwrap_err().to_string().starts_with("unknown module 'quic'"));
        assert_eq!(flag_owner("--libssl"), Some("tls"));
        assert_eq!(flag_owner("--libssl=/x"), Some("tls"));
        assert_eq!(flag_owner("--nope"), None);
    }
}
