//! TLS library versions and the struct offsets each needs (SPEC appendix A).
//! OpenSSL's `SSL` and `BIO` structs are private and move between releases;
//! the BPF side reads the protocol version, the role and (as a fallback) the
//! socket fd through these offsets.
//!
//! BoringSSL has no version number: it is found by its name and its C++
//! namespace, and its layouts (`BoringBio`) come from its source, computed
//! by tests/boringssl/offsets.cc and compared with the table here by
//! tests/boringssl.rs.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenSsl,
    BoringSsl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslVersion {
    pub flavor: Flavor,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// 1.x letter releases: b'w' in "1.1.1w".
    pub letter: Option<u8>,
}

impl fmt::Display for SslVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.flavor {
            Flavor::BoringSsl => f.write_str("BoringSSL"),
            Flavor::OpenSsl => {
                write!(f, "OpenSSL {}.{}.{}", self.major, self.minor, self.patch)?;
                if let Some(l) = self.letter {
                    write!(f, "{}", l as char)?;
                }
                Ok(())
            }
        }
    }
}

/// Offsets into `SSL` (or `SSL_CONNECTION` from 3.2) and `BIO`, in bytes;
/// written into `struct lib_offsets` of bpf/abi.h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    /// The protocol version in the SSL (its low 16 bits are read).
    pub ssl_version: u32,
    /// BoringSSL from boring-sys 5.0: (the `SSL3_STATE *s3` in the SSL, the
    /// version in it), read when `ssl_version` holds no TLS version.
    pub version_in_s3: Option<(u32, u32)>,
    pub ssl_rbio: u32,
    pub ssl_wbio: u32,
    /// `BIO.num` and `BIO.method`; with `bio_known` false (a BoringSSL whose
    /// BIO generation the binary does not tell) they are not used.
    pub bio_num: u32,
    pub bio_method: u32,
    pub bio_known: bool,
    /// The byte of the SSL holding the role (what SSL_is_server reads); 0 = unknown.
    pub ssl_server: u32,
    /// The bits of that byte set on the server side.
    pub ssl_server_mask: u8,
    /// OpenSSL's memory BIO (`BIO.ptr` right after `BIO.num`): Some(true)
    /// when it points to `{BUF_MEM *buf, *readp}` (1.1.0 on), Some(false)
    /// when to the `BUF_MEM` itself (1.0.x); None: not known (BoringSSL).
    pub mem_readp: Option<bool>,
}

/// BoringSSL's layouts. From boring-sys 1.x (2020) to 5.4 (2026) the SSL
/// keeps rbio at 0x18, wbio at 0x20 and its `bool server : 1` in bit 0 of
/// byte 0xa4; the protocol version moved from the SSL (`uint16_t version`
/// at 0x10) into `SSL3_STATE` (at 0xd0, behind `s3` at 0x30) in 5.0 — the BPF
/// side tells the two apart by the value, see bpf/openssl.bpf.c — and the
/// BIO changed twice. Every value here was computed by
/// tests/boringssl/offsets.cc from the BoringSSL sources of those crates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoringBio {
    /// `struct bio_st` without ex_data: boring-sys 1.x–4.x (up to BoringSSL
    /// 44b3df6f, boring-sys 4.21/4.22): method at 0, num at 0x18.
    Plain,
    /// `struct bio_st` with `CRYPTO_EX_DATA ex_data`: boring-sys 5.0–5.1
    /// (BoringSSL 91a66a59): method at 0, num at 0x20.
    ExData,
    /// the `bssl::Bio` class (a reference count first): boring-sys 5.2
    /// (BoringSSL e2a57cfb4) to 5.4: method at 8, num at 0x28.
    Class,
}

impl BoringBio {
    /// (BIO.num, BIO.method).
    fn offsets(self) -> (u32, u32) {
        match self {
            BoringBio::Plain => (0x18, 0x0),
            BoringBio::ExData => (0x20, 0x0),
            BoringBio::Class => (0x28, 0x8),
        }
    }
}

/// BoringSSL's offsets; `bio` is its BIO generation when the binary tells
/// (else the fd never comes from the BIO: a wrong fd would name another
/// connection).
pub fn boringssl_offsets(bio: Option<BoringBio>) -> Offsets {
    let (bio_num, bio_method) = bio.map_or((0, 0), BoringBio::offsets);
    Offsets {
        ssl_version: 0x10,
        version_in_s3: Some((0x30, 0xd0)),
        ssl_rbio: 0x18,
        ssl_wbio: 0x20,
        bio_num,
        bio_method,
        bio_known: bio.is_some(),
        ssl_server: 0xa4,
        ssl_server_mask: 0x1,
        mem_readp: None,
    }
}

impl SslVersion {
    fn openssl(major: u32, minor: u32, patch: u32, letter: Option<u8>) -> SslVersion {
        SslVersion { flavor: Flavor::OpenSsl, major, minor, patch, letter }
    }

    pub const BORINGSSL: SslVersion =
        SslVersion { flavor: Flavor::BoringSsl, major: 0, minor: 0, patch: 0, letter: None };

    /// Parses "3.0.19", "1.1.1w", "OpenSSL 3.0.2", "openssl 1.1.1w" or
    /// "boringssl" (case-insensitive); what `--ssl_version` accepts.
    pub fn parse(s: &str) -> Option<SslVersion> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        if lower == "boringssl" || lower.starts_with("boringssl ") {
            return Some(Self::BORINGSSL);
        }
        let v = lower.strip_prefix("openssl").map(str::trim_start).unwrap_or(&lower);
        let (nums, letter) = match v.as_bytes().last() {
            Some(c) if c.is_ascii_lowercase() => (&v[..v.len() - 1], Some(*c)),
            _ => (v, None),
        };
        let mut it = nums.split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (it.next()??, it.next()??, it.next()??);
        if it.next().is_some() || major == 0 || major > 9 {
            return None;
        }
        Some(Self::openssl(major, minor, patch, letter))
    }

    /// The version of a marker at the start of `rest`: "OpenSSL x.y.z..."
    /// (as in "OpenSSL 3.0.19 27 Jan 2026"), BoringSSL for BoringSSL's
    /// "OpenSSL 1.1.1 (compatible; BoringSSL)", None for other text after
    /// "OpenSSL " ("OpenSSL is great").
    pub fn marker_at(rest: &[u8]) -> Option<SslVersion> {
        const MARK: &[u8] = b"OpenSSL ";
        let v = rest.strip_prefix(MARK)?;
        if !v.first()?.is_ascii_digit() {
            return None;
        }
        let end = v.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'.')).unwrap_or(v.len());
        if v[end..].starts_with(BORINGSSL_COMPAT) {
            return Some(Self::BORINGSSL);
        }
        std::str::from_utf8(&v[..end.min(32)]).ok().and_then(Self::parse)
    }

    /// Finds the version marker in a library's bytes: `OpenSSL x.y.z`
    /// (as in "OpenSSL 3.0.19 27 Jan 2026") or BoringSSL's name.
    pub fn find_in(data: &[u8]) -> Option<SslVersion> {
        const MARK: &[u8] = b"OpenSSL ";
        let mut i = 0;
        while let Some(pos) = find(&data[i..], MARK) {
            if let Some(v) = Self::marker_at(&data[i + pos..]) {
                return Some(v);
            }
            i += pos + MARK.len();
        }
        BORINGSSL_MARKS.iter().any(|m| find(data, m).is_some()).then_some(Self::BORINGSSL)
    }

    fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// The offsets for this version; `exact` is false when the version is
    /// outside the table and the nearest known layout is used.
    pub fn offsets(&self) -> (Offsets, bool) {
        // In every OpenSSL layout wbio is followed by bbio, rwstate,
        // handshake_func and then `int server` (0 or 1): wbio + 0x20.
        let o = |ssl_version, ssl_rbio, ssl_wbio: u32, bio_num, bio_method| Offsets {
            ssl_version,
            version_in_s3: None,
            ssl_rbio,
            ssl_wbio,
            bio_num,
            bio_method,
            bio_known: true,
            ssl_server: ssl_wbio + 0x20,
            ssl_server_mask: 0xff,
            // BIO_s_mem's BIO_BUF_MEM (with its read pointer) came in 1.1.0.
            mem_readp: Some(self.at_least(1, 1, 0)),
        };
        if self.flavor == Flavor::BoringSsl {
            // Without the binary at hand, its BIO generation is unknown
            // (openssl.rs reads it from the binary).
            return (boringssl_offsets(None), true);
        }
        let (maj, min, pat) = (self.major, self.minor, self.patch);
        match (maj, min) {
            (1, 0) | (1, 1) if !(min == 1 && pat >= 1) => (o(0x0, 0x10, 0x18, 0x28, 0x0), true),
            (1, 1) => (o(0x0, 0x10, 0x18, 0x30, 0x0), true),
            (3, 0) | (3, 1) => (o(0x0, 0x10, 0x18, 0x38, 0x8), true),
            (3, 2) if pat <= 3 => (o(0x40, 0x48, 0x50, 0x38, 0x8), true),
            (3, 3) if pat <= 2 => (o(0x40, 0x48, 0x50, 0x38, 0x8), true),
            (3, 4) if pat == 0 => (o(0x40, 0x48, 0x50, 0x38, 0x8), true),
            _ if self.at_least(3, 2, 0) && (maj, min) <= (4, 0) => (o(0x48, 0x50, 0x58, 0x38, 0x8), true),
            _ if maj >= 4 => (o(0x48, 0x50, 0x58, 0x38, 0x8), false),
            _ => (o(0x0, 0x10, 0x18, 0x28, 0x0), false),
        }
    }
}

/// What follows "OpenSSL 1.1.1" in BoringSSL's OPENSSL_VERSION_TEXT.
const BORINGSSL_COMPAT: &[u8] = b" (compatible; BoringSSL)";

/// Bytes only BoringSSL has: its name (what OpenSSL_version returns) and
/// its C++ namespace `bssl` as mangled in the symbol table.
pub const BORINGSSL_MARKS: &[&[u8]] = &[b"BoringSSL", b"_ZN4bssl"];

/// The mangled `bssl::Bio` class of the newest BIO layout (in the names of
/// its constructor and of functions taking it).
pub const BORINGSSL_BIO_CLASS_MARK: &[u8] = b"4bssl3Bio";

/// Functions that exist only once `BIO` has ex_data (boring-sys 5.0 on).
pub const BORINGSSL_BIO_EX_DATA_FUNCS: &[&str] = &["BIO_get_ex_new_index", "BIO_set_ex_data", "BIO_get_ex_data"];

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(SslVersion::parse("openssl 3.0.2").unwrap().to_string(), "OpenSSL 3.0.2");
        assert_eq!(SslVersion::parse("OpenSSL 1.1.1w").unwrap().to_string(), "OpenSSL 1.1.1w");
        assert_eq!(SslVersion::parse("3.5.0").unwrap().minor, 5);
        assert_eq!(SslVersion::parse("BoringSSL").unwrap().flavor, Flavor::BoringSsl);
        for bad in ["", "openssl", "openssl 3", "openssl 3.0", "gnutls 3.7.9", "3.0.2.1", "0.9.8"] {
            assert_eq!(SslVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn find_marker_in_library_bytes() {
        let lib = b"\x00\x01OpenSSL_add_all\x00OpenSSL 3.0.19 27 Jan 2026\x00more";
        assert_eq!(SslVersion::find_in(lib).unwrap().to_string(), "OpenSSL 3.0.19");
        let lib = b"junk OpenSSL 1.1.1w  11 Sep 2023\x00";
        assert_eq!(SslVersion::find_in(lib).unwrap().to_string(), "OpenSSL 1.1.1w");
        assert_eq!(SslVersion::find_in(b"x BoringSSL y").unwrap().flavor, Flavor::BoringSsl);
        // BoringSSL's OPENSSL_VERSION_TEXT is not OpenSSL 1.1.1.
        let lib = b"\x00OpenSSL 1.1.1 (compatible; BoringSSL)\x00";
        assert_eq!(SslVersion::find_in(lib).unwrap().flavor, Flavor::BoringSsl);
        assert_eq!(SslVersion::marker_at(&lib[1..]).unwrap().flavor, Flavor::BoringSsl);
        assert_eq!(SslVersion::find_in(b"\x00_ZN4bssl10SSL3_STATEC1Ev\x00").unwrap().flavor, Flavor::BoringSsl);
        assert_eq!(SslVersion::find_in(b"OpenSSL is great"), None);
        assert_eq!(SslVersion::find_in(b""), None);
    }

    #[test]
    fn offsets_follow_appendix_a() {
        let off = |s: &str| SslVersion::parse(s).unwrap().offsets();
        let v = |s: &str| {
            let (o, _) = off(s);
            assert_eq!(o.ssl_server, o.ssl_wbio + 0x20, "{s}: server follows wbio, bbio, rwstate, handshake_func");
            (o.ssl_version, o.ssl_rbio, o.ssl_wbio, o.bio_num, o.bio_method)
        };
        assert_eq!(v("1.0.2u"), (0, 0x10, 0x18, 0x28, 0));
        assert_eq!(v("1.1.0l"), (0, 0x10, 0x18, 0x28, 0));
        assert_eq!(v("1.1.1w"), (0, 0x10, 0x18, 0x30, 0));
        assert_eq!(v("3.0.19"), (0, 0x10, 0x18, 0x38, 8));
        assert_eq!(v("3.1.4"), (0, 0x10, 0x18, 0x38, 8));
        assert_eq!(v("3.2.3"), (0x40, 0x48, 0x50, 0x38, 8));
        assert_eq!(v("3.2.4"), (0x48, 0x50, 0x58, 0x38, 8));
        assert_eq!(v("3.3.2"), (0x40, 0x48, 0x50, 0x38, 8));
        assert_eq!(v("3.3.3"), (0x48, 0x50, 0x58, 0x38, 8));
        assert_eq!(v("3.4.0"), (0x40, 0x48, 0x50, 0x38, 8));
        assert_eq!(v("3.4.1"), (0x48, 0x50, 0x58, 0x38, 8));
        assert_eq!(v("3.5.0"), (0x48, 0x50, 0x58, 0x38, 8));
        assert_eq!(v("4.0.0"), (0x48, 0x50, 0x58, 0x38, 8));
        assert!(off("3.0.19").1 && off("4.0.0").1);
        assert!(!off("4.1.0").1, "beyond the table: nearest layout, not exact");
        let b = SslVersion::BORINGSSL.offsets().0;
        assert_eq!((b.ssl_version, b.version_in_s3, b.ssl_server, b.ssl_server_mask), (0x10, Some((0x30, 0xd0)), 0xa4, 1));
        assert!(!b.bio_known, "BoringSSL's BIO generation comes from the binary");
        let c = boringssl_offsets(Some(BoringBio::Class));
        assert_eq!((c.bio_num, c.bio_method, c.bio_known), (0x28, 0x8, true));
        assert!(off("3.0.19").0.version_in_s3.is_none() && off("3.0.19").0.bio_known);
        assert_eq!(off("3.0.19").0.ssl_server, 0x38, "ssl_st.server in 3.0");
    }
}
