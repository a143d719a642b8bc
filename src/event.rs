//! Decoding of the perf records the BPF side sends (`bpf/events.h`) and the
//! owned event type the rest of the pipeline works with. Records are decoded
//! with size-checked copies; a record that does not fit is an error, counted
//! by the caller, never a panic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

/// `CHUNK_DATA_SIZE` of events.h.
pub const CHUNK_DATA_SIZE: usize = 32768;
/// `sizeof(struct tls_chunk_hdr)`.
pub const CHUNK_HDR_SIZE: usize = 120;

const CHUNK_F_ROLE_KNOWN: u8 = 0x10;
const CHUNK_F_SERVER: u8 = 0x20;
const CHUNK_F_CLOSE: u8 = 0x40;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

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
}

/// The header of one chunk record (`struct tls_chunk_hdr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHdr {
    pub ts_ns: u64,
    pub call_id: u64,
    /// The SSL* of the call: with pid, the connection's identity.
    pub ssl: u64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub fd: i32,
    pub total_len: u32,
    pub captured_len: u32,
    pub chunk_off: u32,
    pub chunk_len: u32,
    pub tls_version: u32,
    pub lib_idx: u32,
    pub family: u16,
    pub lport: u16,
    pub rport: u16,
    pub dir: u8,
    pub flags: u8,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    pub comm: [u8; 16],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the header, or than the payload the header announces.
    Short { len: usize, need: usize },
    /// Offsets or lengths that cannot belong to a real call.
    Inconsistent(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Short { len, need } => write!(f, "record of {len} bytes, need {need}"),
            DecodeError::Inconsistent(why) => write!(f, "inconsistent record: {why}"),
        }
    }
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}
fn arr16(b: &[u8], off: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    a
}

impl ChunkHdr {
    /// Splits a perf record into its header and payload bytes. The perf
    /// buffer pads records to 8 bytes, so trailing bytes are allowed.
    pub fn parse(rec: &[u8]) -> Result<(ChunkHdr, &[u8]), DecodeError> {
        if rec.len() < CHUNK_HDR_SIZE {
            return Err(DecodeError::Short { len: rec.len(), need: CHUNK_HDR_SIZE });
        }
        let h = ChunkHdr {
            ts_ns: u64_at(rec, 0),
            call_id: u64_at(rec, 8),
            ssl: u64_at(rec, 16),
            pid: u32_at(rec, 24),
            tid: u32_at(rec, 28),
            uid: u32_at(rec, 32),
            fd: u32_at(rec, 36) as i32,
            total_len: u32_at(rec, 40),
            captured_len: u32_at(rec, 44),
            chunk_off: u32_at(rec, 48),
            chunk_len: u32_at(rec, 52),
            tls_version: u32_at(rec, 56),
            lib_idx: u32_at(rec, 60),
            family: u16_at(rec, 64),
            lport: u16_at(rec, 66),
            rport: u16_at(rec, 68),
            dir: rec[70],
            flags: rec[71],
            laddr: arr16(rec, 72),
            raddr: arr16(rec, 88),
            comm: arr16(rec, 104),
        };
        let need = CHUNK_HDR_SIZE + h.chunk_len as usize;
        if rec.len() < need {
            return Err(DecodeError::Short { len: rec.len(), need });
        }
        if h.chunk_len as usize > CHUNK_DATA_SIZE {
            return Err(DecodeError::Inconsistent("chunk longer than CHUNK_DATA_SIZE"));
        }
        if h.captured_len > h.total_len {
            return Err(DecodeError::Inconsistent("captured more than transferred"));
        }
        if h.chunk_off as u64 + h.chunk_len as u64 > h.captured_len as u64 {
            return Err(DecodeError::Inconsistent("chunk beyond the captured length"));
        }
        if h.dir > 1 {
            return Err(DecodeError::Inconsistent("unknown direction"));
        }
        Ok((h, &rec[CHUNK_HDR_SIZE..need]))
    }

    /// A close record (SSL_free), not data.
    pub fn is_close(&self) -> bool {
        self.flags & CHUNK_F_CLOSE != 0
    }

    pub fn direction(&self) -> Direction {
        if self.dir == 1 {
            Direction::Write
        } else {
            Direction::Read
        }
    }

    /// The process's role as the SSL object says (SSL_is_server), when the
    /// library's offsets are known.
    pub fn role(&self) -> Option<Role> {
        if self.flags & CHUNK_F_ROLE_KNOWN == 0 {
            None
        } else if self.flags & CHUNK_F_SERVER != 0 {
            Some(Role::Server)
        } else {
            Some(Role::Client)
        }
    }

    /// (local, remote) socket addresses; None when the fd was not a socket
    /// or the family is not IP.
    pub fn endpoints(&self) -> Option<(SocketAddr, SocketAddr)> {
        let ip = |a: &[u8; 16]| -> Option<IpAddr> {
            match self.family {
                AF_INET => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
                AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(*a))),
                _ => None,
            }
        };
        Some((SocketAddr::new(ip(&self.laddr)?, self.lport), SocketAddr::new(ip(&self.raddr)?, self.rport)))
    }

    pub fn comm(&self) -> String {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

/// One SSL_read/SSL_write call, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEvent {
    /// Wall clock, ns since the Unix epoch.
    pub timestamp_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub comm: String,
    pub fd: i32,
    pub direction: Direction,
    /// The SSL's protocol version (0x0304 = TLS 1.3), 0 when unknown.
    pub tls_version: u32,
    /// The SSL* of the connection (with pid, its identity).
    pub ssl: u64,
    /// (local, remote); None when unknown.
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
    /// This process's end of the connection; None when the library did not say.
    pub role: Option<Role>,
    /// Bytes the call transferred (may exceed `payload.len()` when truncated).
    pub total_len: u32,
    /// The captured bytes, `captured_len` long; ranges in `missing` were lost
    /// on the way and hold zeros.
    pub payload: Vec<u8>,
    pub missing: Vec<Range<u32>>,
    pub lib_idx: u32,
    /// SPEC §4 event type: 0 unknown, 1/3 HTTP/1.x request/response, 2/4 HTTP/2.
    pub kind: u32,
    /// What the message assembler learnt, for rendering.
    pub decoded: Option<Box<crate::assemble::conn::Decoded>>,
}

impl TlsEvent {
    /// A copy of everything but the payload (and what describes it).
    pub fn without_payload(&self) -> TlsEvent {
        TlsEvent {
            comm: self.comm.clone(),
            payload: Vec::new(),
            missing: Vec::new(),
            decoded: None,
            total_len: 0,
            ..*self
        }
    }

    pub fn truncated(&self) -> bool {
        (self.payload.len() as u64) < self.total_len as u64
    }

    /// Data-flow source and destination: for a write, this host's end first.
    pub fn src_dst(&self) -> (SocketAddr, SocketAddr) {
        match (self.endpoints, self.direction) {
            (Some((l, r)), Direction::Write) => (l, r),
            (Some((l, r)), Direction::Read) => (r, l),
            (None, _) => (UNKNOWN_ADDR, UNKNOWN_ADDR),
        }
    }

    /// The (client, server) ends of the connection. The role comes from the
    /// SSL object; without it, the end with the higher (ephemeral-looking)
    /// port is taken for the client.
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

/// How an unknown endpoint is shown: 0.0.0.0:0.
pub const UNKNOWN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

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

    /// Builds a record the way the BPF side lays it out.
    pub fn record(h: &ChunkHdr, data: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(CHUNK_HDR_SIZE + data.len());
        b.extend_from_slice(&h.ts_ns.to_ne_bytes());
        b.extend_from_slice(&h.call_id.to_ne_bytes());
        b.extend_from_slice(&h.ssl.to_ne_bytes());
        for v in [h.pid, h.tid, h.uid, h.fd as u32, h.total_len, h.captured_len, h.chunk_off, h.chunk_len] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&h.tls_version.to_ne_bytes());
        b.extend_from_slice(&h.lib_idx.to_ne_bytes());
        for v in [h.family, h.lport, h.rport] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.push(h.dir);
        b.push(h.flags);
        b.extend_from_slice(&h.laddr);
        b.extend_from_slice(&h.raddr);
        b.extend_from_slice(&h.comm);
        assert_eq!(b.len(), CHUNK_HDR_SIZE);
        b.extend_from_slice(data);
        b
    }

    /// A write of `payload` by curl (pid 4242, tid 4243, fd 5) from
    /// 127.0.0.1:54321 to 127.0.0.1:8443 over TLS 1.3, at a fixed time;
    /// tests change what they look at.
    pub fn sample_event(payload: &[u8]) -> TlsEvent {
        TlsEvent {
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
            ssl: 0x5555_0000_1000,
            total_len: payload.len() as u32,
            payload: payload.to_vec(),
            missing: vec![],
            lib_idx: 0,
            kind: 0,
            decoded: None,
        }
    }

    pub fn hdr(call_id: u64, captured: u32, off: u32, len: u32) -> ChunkHdr {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        ChunkHdr {
            ts_ns: 1_000,
            call_id,
            ssl: 0x5555_0000_1000,
            pid: 100,
            tid: 101,
            uid: 0,
            fd: 5,
            total_len: captured,
            captured_len: captured,
            chunk_off: off,
            chunk_len: len,
            tls_version: 0x0304,
            lib_idx: 0,
            family: AF_INET,
            lport: 54321,
            rport: 443,
            dir: 1,
            flags: 0,
            laddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            raddr: [127, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            comm,
        }
    }

    #[test]
    fn header_size_matches_events_h() {
        // events.h: 3*u64 + 12*u32 + 3*u16 + 2*u8 + 2*16 + 16 = 120 bytes.
        let r = record(&hdr(1, 3, 0, 3), b"abc");
        assert_eq!(r.len(), CHUNK_HDR_SIZE + 3);
    }

    #[test]
    fn round_trip_with_perf_padding() {
        let h = hdr(7, 5, 0, 5);
        let mut r = record(&h, b"hello");
        r.extend_from_slice(&[0, 0, 0]); // perf pads to 8 bytes
        let (got, data) = ChunkHdr::parse(&r).unwrap();
        assert_eq!(got, h);
        assert_eq!(data, b"hello");
        assert_eq!(got.comm(), "curl");
        assert_eq!(got.direction(), Direction::Write);
        let (l, r) = got.endpoints().unwrap();
        assert_eq!((l.to_string(), r.to_string()), ("127.0.0.1:54321".into(), "127.0.0.2:443".into()));
    }

    #[test]
    fn ipv6_and_unknown_family() {
        let mut h = hdr(1, 1, 0, 1);
        h.family = AF_INET6;
        h.laddr = Ipv6Addr::LOCALHOST.octets();
        h.raddr = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(h.endpoints().unwrap().1.to_string(), "[::1]:443");
        h.family = 0;
        assert_eq!(h.endpoints(), None);
    }

    #[test]
    fn short_and_inconsistent_records_are_errors() {
        assert!(matches!(ChunkHdr::parse(&[0u8; 10]), Err(DecodeError::Short { .. })));
        let r = record(&hdr(1, 10, 0, 10), b"abc"); // announces 10, carries 3
        assert!(matches!(ChunkHdr::parse(&r), Err(DecodeError::Short { .. })));
        let r = record(&hdr(1, 2, 0, 3), b"abc"); // chunk beyond captured
        assert!(matches!(ChunkHdr::parse(&r), Err(DecodeError::Inconsistent(_))));
        let mut h = hdr(1, 3, 0, 3);
        h.total_len = 2;
        assert!(matches!(ChunkHdr::parse(&record(&h, b"abc")), Err(DecodeError::Inconsistent(_))));
        let mut h = hdr(1, 3, 0, 3);
        h.dir = 9;
        assert!(matches!(ChunkHdr::parse(&record(&h, b"abc")), Err(DecodeError::Inconsistent(_))));
    }

    fn event(role: Option<Role>, local: &str, remote: &str, dir: Direction) -> TlsEvent {
        TlsEvent {
            tid: 43,
            pid: 42,
            direction: dir,
            role,
            endpoints: Some((local.parse().unwrap(), remote.parse().unwrap())),
            ..sample_event(b"x")
        }
    }

    #[test]
    fn client_server_and_uuid() {
        let e = event(Some(Role::Client), "127.0.0.1:50000", "127.0.0.1:443", Direction::Write);
        assert_eq!(e.uuid(), "42_43_curl_5_1_127.0.0.1:50000-127.0.0.1:443");
        let e = event(Some(Role::Server), "127.0.0.1:443", "127.0.0.1:50000", Direction::Read);
        assert_eq!(e.uuid(), "42_43_curl_5_0_127.0.0.1:50000-127.0.0.1:443");
        // The role wins over ports: a server on a high port.
        let e = event(Some(Role::Server), "[::1]:60000", "[::1]:1234", Direction::Write);
        assert_eq!(e.client_server().0.to_string(), "[::1]:1234");
        // Without a role, the higher port is the client.
        let e = event(None, "127.0.0.1:8443", "127.0.0.1:51000", Direction::Read);
        assert_eq!(e.client_server().0.port(), 51000);
        let mut e = e;
        e.endpoints = None;
        assert_eq!(e.uuid(), "42_43_curl_5_0_0.0.0.0:0-0.0.0.0:0");
    }

    #[test]
    fn role_flags() {
        let mut h = hdr(1, 1, 0, 1);
        assert_eq!(h.role(), None);
        h.flags = CHUNK_F_ROLE_KNOWN;
        assert_eq!(h.role(), Some(Role::Client));
        h.flags = CHUNK_F_ROLE_KNOWN | CHUNK_F_SERVER;
        assert_eq!(h.role(), Some(Role::Server));
    }

    #[test]
    fn version_names() {
        assert_eq!(tls_version_name(0x0303), "TLS1.2");
        assert_eq!(tls_version_name(0x0304), "TLS1.3");
        assert_eq!(tls_version_name(0), "TLS?");
        assert_eq!(tls_version_name(0x1234), "TLS?(0x1234)");
    }
}
