//! The pipeline's own data types, below every stage and shared by them:
//! what a probe saw (`Call`), what message assembly made of calls
//! (`Message`, with what it understood of the protocol in `view`), and what
//! a module's decoder hands the dispatcher (`Item`). Types and their plain
//! accessors only; no stage's logic lives here.

pub mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;

pub use view::View;

/// SPEC §4 event types.
pub const UNKNOWN: u32 = 0;
pub const HTTP1_REQUEST: u32 = 1;
pub const HTTP2_REQUEST: u32 = 2;
pub const HTTP1_RESPONSE: u32 = 3;
pub const HTTP2_RESPONSE: u32 = 4;

/// Which end of the TLS connection the captured process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Read => "READ",
            Direction::Write => "WRITE",
        }
    }

    pub fn other(self) -> Direction {
        match self {
            Direction::Read => Direction::Write,
            Direction::Write => Direction::Read,
        }
    }
}

/// A process name: the kernel's comm (at most 16 bytes), as text, kept
/// inline so that a call's metadata costs no allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Comm {
    buf: [u8; 48],
    len: u8,
}

impl Comm {
    /// From the kernel's bytes (up to the first NUL; invalid UTF-8 replaced).
    pub fn from_bytes(b: &[u8]) -> Comm {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len()).min(16);
        Comm::from(String::from_utf8_lossy(&b[..end]).as_ref())
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl From<&str> for Comm {
    /// At most 48 bytes of `s`, cut at a character boundary.
    fn from(s: &str) -> Comm {
        let mut end = s.len().min(48);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut c = Comm { buf: [0; 48], len: end as u8 };
        c.buf[..end].copy_from_slice(&s.as_bytes()[..end]);
        c
    }
}

impl std::fmt::Display for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Who moved data, where and when: what a call and a message both carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Wall clock, ns since the Unix epoch.
    pub timestamp_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub comm: Comm,
    pub fd: i32,
    pub direction: Direction,
    /// The protocol version (0x0304 = TLS 1.3), 0 when unknown.
    pub tls_version: u32,
    /// (local, remote); None when unknown.
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
    /// This process's end of the connection; None when the library did not say.
    pub role: Option<Role>,
    /// The library could not tell this TLS from plain I/O (nss: a layered
    /// NSPR descriptor that is not NSS's SSL layer as far as we can see).
    pub maybe_plain: bool,
}

/// How an unknown endpoint is shown: 0.0.0.0:0.
pub const UNKNOWN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Meta {
    /// Data-flow source and destination: for a write, this host's end first.
    pub fn src_dst(&self) -> (SocketAddr, SocketAddr) {
        match (self.endpoints, self.direction) {
            (Some((l, r)), Direction::Write) => (l, r),
            (Some((l, r)), Direction::Read) => (r, l),
            (None, _) => (UNKNOWN_ADDR, UNKNOWN_ADDR),
        }
    }

    /// The (client, server) ends of the connection. The role comes from the
    /// library; without it, the end with the higher (ephemeral-looking) port
    /// is taken for the client.
    pub fn client_server(&self) -> (SocketAddr, SocketAddr) {
        let Some((l, r)) = self.endpoints else { return (UNKNOWN_ADDR, UNKNOWN_ADDR) };
        let local_is_client = match self.role {
            Some(role) => role == Role::Client,
            None => l.port() >= r.port(),
        };
        if local_is_client {
            (l, r)
        } else {
            (r, l)
        }
    }

    /// eCapture's event id: `PID_TID_COMM_FD_DIR_CLIENT-SERVER`, DIR 0 for a
    /// read and 1 for a write, e.g. `42_42_curl_5_1_127.0.0.1:50000-127.0.0.1:443`.
    /// IPv6 addresses are bracketed.
    pub fn uuid(&self) -> String {
        let (c, s) = self.client_server();
        let dir = match self.direction {
            Direction::Read => 0,
            Direction::Write => 1,
        };
        format!("{}_{}_{}_{}_{}_{c}-{s}", self.pid, self.tid, self.comm, self.fd, dir)
    }
}

/// One read or write call of a TLS library, as its probes saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub meta: Meta,
    /// The library's connection object (e.g. the SSL*): with pid, the connection.
    pub conn: u64,
    /// Bytes the call transferred (more than `payload.len()` when truncated).
    pub total_len: u32,
    /// The captured bytes; ranges in `missing` were lost on the way and hold zeros.
    pub payload: Vec<u8>,
    pub missing: Vec<Range<u32>>,
}

impl Call {
    pub fn truncated(&self) -> bool {
        (self.payload.len() as u64) < self.total_len as u64
    }
}

/// What assembly made of one or more calls of one connection and direction:
/// an HTTP message, a batch of HTTP/2 frames, or bytes of another protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The connection's latest metadata, with the time and thread of the
    /// message's first byte.
    pub meta: Meta,
    /// SPEC §4 type: UNKNOWN, HTTP1_REQUEST, ...
    pub kind: u32,
    /// Bytes moved (more than `payload.len()` when a call was truncated).
    pub total_len: u32,
    /// The plaintext exactly as the application wrote or read it.
    pub payload: Vec<u8>,
    /// Ranges of `payload` lost on the way (zeros).
    pub missing: Vec<Range<u32>>,
    /// What assembly understood of the payload, for rendering.
    pub view: Option<Box<View>>,
}

impl Message {
    /// A message of one call's bytes as they are.
    pub fn raw(call: Call) -> Message {
        Message { meta: call.meta, kind: UNKNOWN, total_len: call.total_len, payload: call.payload, missing: call.missing, view: None }
    }

    pub fn truncated(&self) -> bool {
        (self.payload.len() as u64) < self.total_len as u64
    }
}

/// What module decoders hand the dispatcher, in capture order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Call(Call),
    /// The library freed connection `conn` of process `pid`.
    Close { pid: u32, conn: u64 },
    /// A TLS secret of connection `conn`, for the key log.
    Secret(Secret),
    /// The secrets of a connection were read but cannot be used, and why.
    SecretUnusable { pid: u32, conn: u64, why: &'static str },
}

/// The labels of the NSS key log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretLabel {
    /// TLS 1.2 and earlier: the master secret.
    ClientRandom,
    ClientEarlyTraffic,
    ClientHandshakeTraffic,
    ServerHandshakeTraffic,
    ClientTraffic0,
    ServerTraffic0,
    Exporter,
}

impl SecretLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretLabel::ClientRandom => "CLIENT_RANDOM",
            SecretLabel::ClientEarlyTraffic => "CLIENT_EARLY_TRAFFIC_SECRET",
            SecretLabel::ClientHandshakeTraffic => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            SecretLabel::ServerHandshakeTraffic => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            SecretLabel::ClientTraffic0 => "CLIENT_TRAFFIC_SECRET_0",
            SecretLabel::ServerTraffic0 => "SERVER_TRAFFIC_SECRET_0",
            SecretLabel::Exporter => "EXPORTER_SECRET",
        }
    }
}

/// One line of an NSS key log: a secret of the handshake whose ClientHello
/// carried `client_random`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub pid: u32,
    /// The library's connection object: with pid, the connection.
    pub conn: u64,
    pub label: SecretLabel,
    pub client_random: [u8; 32],
    /// 32 to 64 bytes (48 for a TLS 1.2 master secret).
    pub secret: Vec<u8>,
}

/// Human name of an SSL/TLS protocol version number.
pub fn tls_version_name(v: u32) -> String {
    match v {
        0x0300 => "SSL3.0".into(),
        0x0301 => "TLS1.0".into(),
        0x0302 => "TLS1.1".into(),
        0x0303 => "TLS1.2".into(),
        0x0304 => "TLS1.3".into(),
        0xfeff => "DTLS1.0".into(),
        0xfefd => "DTLS1.2".into(),
        0xfefc => "DTLS1.3".into(),
        0 => "TLS?".into(),
        v => format!("TLS?(0x{v:04x})"),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// curl (pid 4242, tid 4243, fd 5) writing from 127.0.0.1:54321 to
    /// 127.0.0.1:8443 over TLS 1.3, at a fixed time.
    pub fn sample_meta() -> Meta {
        Meta {
            timestamp_ns: 1_796_045_418_123_456_789,
            pid: 4242,
            tid: 4243,
            uid: 0,
            comm: "curl".into(),
            fd: 5,
            direction: Direction::Write,
            tls_version: 0x0304,
            endpoints: Some(("127.0.0.1:54321".parse().unwrap(), "127.0.0.1:8443".parse().unwrap())),
            role: None,
            maybe_plain: false,
        }
    }

    /// A call of `payload` by `sample_meta`; tests change what they look at.
    pub fn sample_call(payload: &[u8]) -> Call {
        Call { meta: sample_meta(), conn: 0x5555_0000_1000, total_len: payload.len() as u32, payload: payload.to_vec(), missing: vec![] }
    }

    /// A message of `payload` by `sample_meta`.
    pub fn sample_message(payload: &[u8]) -> Message {
        Message::raw(sample_call(payload))
    }

    fn meta(role: Option<Role>, local: &str, remote: &str, dir: Direction) -> Meta {
        Meta {
            tid: 43,
            pid: 42,
            direction: dir,
            role,
            endpoints: Some((local.parse().unwrap(), remote.parse().unwrap())),
            ..sample_meta()
        }
    }

    #[test]
    fn client_server_and_uuid() {
        let m = meta(Some(Role::Client), "127.0.0.1:50000", "127.0.0.1:443", Direction::Write);
        assert_eq!(m.uuid(), "42_43_curl_5_1_127.0.0.1:50000-127.0.0.1:443");
        let m = meta(Some(Role::Server), "127.0.0.1:443", "127.0.0.1:50000", Direction::Read);
        assert_eq!(m.uuid(), "42_43_curl_5_0_127.0.0.1:50000-127.0.0.1:443");
        // The role wins over ports: a server on a high port.
        let m = meta(Some(Role::Server), "[::1]:60000", "[::1]:1234", Direction::Write);
        assert_eq!(m.client_server().0.to_string(), "[::1]:1234");
        // Without a role, the higher port is the client.
        let mut m = meta(None, "127.0.0.1:8443", "127.0.0.1:51000", Direction::Read);
        assert_eq!(m.client_server().0.port(), 51000);
        m.endpoints = None;
        assert_eq!(m.uuid(), "42_43_curl_5_0_0.0.0.0:0-0.0.0.0:0");
    }

    #[test]
    fn comm_keeps_48_bytes_cut_at_a_character_and_the_kernels_16() {
        let long = format!("a{}", "é".repeat(30)); // byte 48 falls inside an 'é'
        let c = Comm::from(long.as_str());
        assert_eq!(c.as_str(), format!("a{}", "é".repeat(23)), "47 bytes, whole characters");
        assert_eq!(Comm::from("curl").as_str(), "curl");
        assert_eq!(format!("{c:?}"), format!("{:?}", c.as_str()));
        assert_eq!(format!("{:?}", Comm::from("a\"b")), r#""a\"b""#);
        assert_eq!(Comm::from_bytes(b"curl\0junk").as_str(), "curl", "up to the NUL");
        assert_eq!(Comm::from_bytes(b"0123456789abcdefXYZ").as_str(), "0123456789abcdef", "the kernel's 16 bytes");
        assert_eq!(Comm::from_bytes(b"\xffok").as_str(), "\u{fffd}ok");
    }

    #[test]
    fn truncated_when_fewer_bytes_than_moved() {
        let mut c = sample_call(b"abcd");
        assert!(!c.truncated(), "all bytes captured");
        c.total_len = 10;
        assert!(c.truncated());
        assert!(Message::raw(c.clone()).truncated());
        c.total_len = 3; // cannot happen, but is not "truncated"
        assert!(!c.truncated());
        assert!(!Message::raw(c).truncated());
    }

    #[test]
    fn src_dst_follow_the_direction() {
        let w = meta(None, "127.0.0.1:50000", "127.0.0.1:443", Direction::Write);
        assert_eq!(w.src_dst(), ("127.0.0.1:50000".parse().unwrap(), "127.0.0.1:443".parse().unwrap()));
        let r = Meta { direction: Direction::Read, ..w };
        assert_eq!(r.src_dst(), ("127.0.0.1:443".parse().unwrap(), "127.0.0.1:50000".parse().unwrap()));
        assert_eq!(Meta { endpoints: None, ..w }.src_dst(), (UNKNOWN_ADDR, UNKNOWN_ADDR));
        assert_eq!((Direction::Read.other(), Direction::Write.other()), (Direction::Write, Direction::Read));
        assert_eq!((Direction::Read.as_str(), Direction::Write.as_str()), ("READ", "WRITE"));
    }

    #[test]
    fn version_names() {
        assert_eq!(tls_version_name(0x0303), "TLS1.2");
        assert_eq!(tls_version_name(0x0304), "TLS1.3");
        assert_eq!(tls_version_name(0), "TLS?");
        assert_eq!(tls_version_name(0x1234), "TLS?(0x1234)");
    }
}
