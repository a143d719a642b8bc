//! Go's build information (the `.go.buildinfo` section): the Go version a
//! program was built with, and whether it is a Go program at all (what
//! `runtime/debug.ReadBuildInfo` and `go version -m` read).
//!
//! Layout: a 32-byte header, "\xff Go buildinf:", the pointer size and a
//! flags byte. With flag 0x2 (Go 1.18+) the version string follows inline,
//! as a varint length and its bytes; before that, the header holds
//! pointers to a Go string header (address, length) elsewhere in the file,
//! resolved by the caller (`resolve`). Hostile input: lengths are checked,
//! the version is kept only if it reads as one ("go1.x...", printable, short).

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The longest version string kept (e.g. "go1.22.5 X:boringcrypto").
const MAX_VERSION: usize = 64;

/// A Go version, e.g. go1.21.13: (minor, patch) of Go 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoVersion {
    /// As the binary says it, e.g. "go1.21.13".
    pub text: String,
    pub minor: u32,
}

impl GoVersion {
    pub fn parse(text: &str) -> Option<GoVersion> {
        let rest = text.strip_prefix("go1.")?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let minor = digits.parse().ok()?;
        let printable = text.len() <= MAX_VERSION && text.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' ');
        printable.then(|| GoVersion { text: text.to_string(), minor })
    }

    /// Go 1.17 on passes arguments and results in registers on amd64.
    pub fn register_abi(&self) -> bool {
        self.minor >= 17
    }
}

/// What the section says, if it is build information.
#[derive(Debug, PartialEq, Eq)]
pub enum Info {
    /// Go 1.18+: the version, inline.
    Version(Option<GoVersion>),
    /// Before 1.18: the address of the version's string header (8-byte
    /// pointer, 8-byte length), to read from the file.
    Pointer(u64),
}

/// Reads a build information section's start (its first few hundred bytes
/// are enough).
pub fn parse(b: &[u8]) -> Option<Info> {
    if !b.starts_with(MAGIC) || b.len() < 32 {
        return None;
    }
    let (ptr_size, flags) = (b[14], b[15]);
    if flags & 0x1 != 0 {
        return None; // big-endian
    }
    if flags & 0x2 != 0 {
        let (len, n) = uvarint(&b[32..])?;
        let start = 32 + n;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let text = std::str::from_utf8(b.get(start..end)?).ok()?;
        return Some(Info::Version(GoVersion::parse(text)));
    }
    if ptr_size != 8 {
        return None;
    }
    Some(Info::Pointer(u64::from_le_bytes(b[16..24].try_into().ok()?)))
}

/// An unsigned LEB128 varint (Go's encoding/binary.Uvarint): value, bytes used.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(version: &str) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[8, 2]);
        b.resize(32, 0);
        b.push(version.len() as u8);
        b.extend_from_slice(version.as_bytes());
        b.push(0);
        b
    }

    #[test]
    fn versions() {
        let v = GoVersion::parse("go1.21.13").unwrap();
        assert_eq!((v.minor, v.register_abi()), (21, true));
        assert!(!GoVersion::parse("go1.16.15").unwrap().register_abi());
        assert!(GoVersion::parse("devel +abc").is_none());
        assert!(GoVersion::parse("go1.2\x1b[31m").is_none(), "no terminal escapes");
        assert_eq!(parse(&inline("go1.27.3")), Some(Info::Version(GoVersion::parse("go1.27.3"))));
        assert_eq!(parse(&inline("hello")), Some(Info::Version(None)));
        let mut old = MAGIC.to_vec();
        old.extend_from_slice(&[8, 0]);
        old.extend_from_slice(&0x4c0000u64.to_le_bytes());
        old.resize(32, 0);
        assert_eq!(parse(&old), Some(Info::Pointer(0x4c0000)));
    }

    #[test]
    fn hostile_lengths() {
        let mut b = inline("go1.27.3");
        b[32] = 0xff; // a varint that claims more than there is
        assert_eq!(parse(&b), None);
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[8, 2]);
        b.resize(32, 0);
        b.extend_from_slice(&[0xff; 12]); // a varint that never ends
        assert_eq!(parse(&b), None);
        assert_eq!(parse(b"\xff Go buildinf:"), None);
        assert_eq!(parse(b""), None);
    }
}
