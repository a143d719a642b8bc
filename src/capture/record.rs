//! Records as they come out of the ring: the common header (when, what kind,
//! which loaded object), then the body of that kind. Decoded with
//! size-checked copies; a record that does not fit its kind is an error the
//! reader counts, never a panic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::abi::{c, chunk_rec, close_rec, rec_hdr};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// CLOCK_MONOTONIC ns (the probes' clock) when the record was made.
    pub ts_ns: u64,
    /// The loaded object that sent it: an index into the dispatcher's decoders.
    pub source: u32,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A piece of a read or write call's payload.
    Chunk(ChunkHdr, Vec<u8>),
    /// The library freed a connection object.
    Close { conn: u64, pid: u32, tid: u32 },
    /// A kind only its module knows (the header, then the bytes after it).
    Other { kind: u32, bytes: Vec<u8> },
}

/// The header of one chunk record (`struct chunk_rec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHdr {
    pub ts_ns: u64,
    pub call_id: u64,
    /// The library's connection object (SSL*): with pid, the connection.
    pub conn: u64,
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
    /// Shorter than its header, or than the payload the header announces.
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

fn need(rec: &[u8], n: usize) -> Result<(), DecodeError> {
    if rec.len() < n {
        Err(DecodeError::Short { len: rec.len(), need: n })
    } else {
        Ok(())
    }
}

impl Record {
    /// Bytes this record holds (for the bound on records in flight).
    pub fn weight(&self) -> usize {
        64 + match &self.body {
            Body::Chunk(_, data) => data.len(),
            Body::Close { .. } => 0,
            Body::Other { bytes, .. } => bytes.len(),
        }
    }

    /// Decodes one record. Trailing bytes (ring padding) are allowed.
    pub fn parse(rec: &[u8]) -> Result<Record, DecodeError> {
        need(rec, rec_hdr::SIZE)?;
        let ts_ns = rec_hdr::ts_ns.get(rec);
        let source = rec_hdr::source.get(rec);
        let kind = rec_hdr::kind.get(rec) as u64;
        let body = match kind {
            c::REC_CHUNK => {
                let (h, data) = ChunkHdr::parse(rec)?;
                Body::Chunk(h, data.to_vec())
            }
            c::REC_CLOSE => {
                need(rec, close_rec::SIZE)?;
                Body::Close { conn: close_rec::conn.get(rec), pid: close_rec::pid.get(rec), tid: close_rec::tid.get(rec) }
            }
            _ => Body::Other { kind: kind as u32, bytes: rec.to_vec() },
        };
        Ok(Record { ts_ns, source, body })
    }
}

impl ChunkHdr {
    /// Splits a chunk record into its header and payload bytes.
    pub fn parse(rec: &[u8]) -> Result<(ChunkHdr, &[u8]), DecodeError> {
        need(rec, chunk_rec::SIZE)?;
        use chunk_rec as r;
        let h = ChunkHdr {
            ts_ns: rec_hdr::ts_ns.get(rec),
            call_id: r::call_id.get(rec),
            conn: r::conn.get(rec),
            pid: r::pid.get(rec),
            tid: r::tid.get(rec),
            uid: r::uid.get(rec),
            fd: r::fd.get(rec),
            total_len: r::total_len.get(rec),
            captured_len: r::captured_len.get(rec),
            chunk_off: r::chunk_off.get(rec),
            chunk_len: r::chunk_len.get(rec),
            tls_version: r::tls_version.get(rec),
            lib_idx: r::lib_idx.get(rec),
            family: r::family.get(rec),
            lport: r::lport.get(rec),
            rport: r::rport.get(rec),
            dir: r::dir.get(rec),
            flags: r::flags.get(rec),
            laddr: r::laddr.get(rec),
            raddr: r::raddr.get(rec),
            comm: r::comm.get(rec),
        };
        let end = chunk_rec::SIZE + h.chunk_len as usize;
        need(rec, end)?;
        if h.chunk_len as u64 > c::CHUNK_DATA_SIZE {
            return Err(DecodeError::Inconsistent("chunk longer than CHUNK_DATA_SIZE"));
        }
        if h.captured_len > h.total_len {
            return Err(DecodeError::Inconsistent("captured more than transferred"));
        }
        if h.captured_len as u64 > c::MAX_CAPTURE_CAP {
            return Err(DecodeError::Inconsistent("captured more than any cap allows"));
        }
        if h.chunk_off as u64 + h.chunk_len as u64 > h.captured_len as u64 {
            return Err(DecodeError::Inconsistent("chunk beyond the captured length"));
        }
        if h.dir as u64 > c::DIR_WRITE {
            return Err(DecodeError::Inconsistent("unknown direction"));
        }
        Ok((h, &rec[chunk_rec::SIZE..end]))
    }

    pub fn is_write(&self) -> bool {
        self.dir as u64 == c::DIR_WRITE
    }

    /// Whether the library says this process is the server (`Some(true)`),
    /// the client, or does not say.
    pub fn is_server(&self) -> Option<bool> {
        let f = self.flags as u64;
        (f & c::CHUNK_F_ROLE_KNOWN != 0).then_some(f & c::CHUNK_F_SERVER != 0)
    }

    /// The library could not tell TLS from plain I/O.
    pub fn maybe_plain(&self) -> bool {
        self.flags as u64 & c::CHUNK_F_MAYBE_PLAIN != 0
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

/// Records laid out the way the BPF side writes them, for tests.
#[cfg(test)]
pub mod tests {
    use super::*;

    /// The bytes of a chunk record with `h` and `data`.
    pub fn chunk_record(source: u32, h: &ChunkHdr, data: &[u8]) -> Vec<u8> {
        use chunk_rec as r;
        let mut b = vec![0u8; chunk_rec::SIZE];
        rec_hdr::ts_ns.put(&mut b, h.ts_ns);
        rec_hdr::kind.put(&mut b, c::REC_CHUNK as u32);
        rec_hdr::source.put(&mut b, source);
        r::call_id.put(&mut b, h.call_id);
        r::conn.put(&mut b, h.conn);
        r::pid.put(&mut b, h.pid);
        r::tid.put(&mut b, h.tid);
        r::uid.put(&mut b, h.uid);
        r::fd.put(&mut b, h.fd);
        r::total_len.put(&mut b, h.total_len);
        r::captured_len.put(&mut b, h.captured_len);
        r::chunk_off.put(&mut b, h.chunk_off);
        r::chunk_len.put(&mut b, h.chunk_len);
        r::tls_version.put(&mut b, h.tls_version);
        r::lib_idx.put(&mut b, h.lib_idx);
        r::family.put(&mut b, h.family);
        r::lport.put(&mut b, h.lport);
        r::rport.put(&mut b, h.rport);
        r::dir.put(&mut b, h.dir);
        r::flags.put(&mut b, h.flags);
        r::laddr.put(&mut b, h.laddr);
        r::raddr.put(&mut b, h.raddr);
        r::comm.put(&mut b, h.comm);
        b.extend_from_slice(data);
        b
    }

    /// A chunk header of a write by curl (pid 100, tid 101, fd 5) from
    /// 127.0.0.1:54321 to 127.0.0.2:443 over TLS 1.3.
    pub fn hdr(call_id: u64, captured: u32, off: u32, len: u32) -> ChunkHdr {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        ChunkHdr {
            ts_ns: 1_000,
            call_id,
            conn: 0x5555_0000_1000,
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
    fn round_trip_with_ring_padding() {
        let h = hdr(7, 5, 0, 5);
        let mut r = chunk_record(3, &h, b"hello");
        r.extend_from_slice(&[0, 0, 0]); // the ring pads to 8 bytes
        let rec = Record::parse(&r).unwrap();
        assert_eq!((rec.ts_ns, rec.source), (1_000, 3));
        let Body::Chunk(got, data) = rec.body else { panic!("a chunk") };
        assert_eq!(got, h);
        assert_eq!(data, b"hello");
        assert_eq!(got.comm(), "curl");
        assert!(got.is_write());
        let (l, r) = got.endpoints().unwrap();
        assert_eq!((l.to_string(), r.to_string()), ("127.0.0.1:54321".into(), "127.0.0.2:443".into()));
    }

    #[test]
    fn close_and_unknown_kinds() {
        let mut b = vec![0u8; close_rec::SIZE];
        rec_hdr::kind.put(&mut b, c::REC_CLOSE as u32);
        close_rec::conn.put(&mut b, 0xabc);
        close_rec::pid.put(&mut b, 42);
        assert_eq!(Record::parse(&b).unwrap().body, Body::Close { conn: 0xabc, pid: 42, tid: 0 });
        assert!(matches!(Record::parse(&b[..20]), Err(DecodeError::Short { .. })));
        rec_hdr::kind.put(&mut b, 99);
        assert!(matches!(Record::parse(&b).unwrap().body, Body::Other { kind: 99, .. }));
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
        assert!(matches!(Record::parse(&[0u8; 10]), Err(DecodeError::Short { .. })));
        let r = chunk_record(0, &hdr(1, 10, 0, 10), b"abc"); // announces 10, carries 3
        assert!(matches!(Record::parse(&r), Err(DecodeError::Short { .. })));
        let r = chunk_record(0, &hdr(1, 2, 0, 3), b"abc"); // chunk beyond captured
        assert!(matches!(Record::parse(&r), Err(DecodeError::Inconsistent(_))));
        let mut h = hdr(1, 3, 0, 3);
        h.total_len = 2;
        assert!(matches!(Record::parse(&chunk_record(0, &h, b"abc")), Err(DecodeError::Inconsistent(_))));
        let mut h = hdr(1, 3, 0, 3);
        h.dir = 9;
        assert!(matches!(Record::parse(&chunk_record(0, &h, b"abc")), Err(DecodeError::Inconsistent(_))));
    }

    #[test]
    fn role_flags() {
        let mut h = hdr(1, 1, 0, 1);
        assert_eq!(h.is_server(), None);
        h.flags = c::CHUNK_F_ROLE_KNOWN as u8;
        assert_eq!(h.is_server(), Some(false));
        h.flags = (c::CHUNK_F_ROLE_KNOWN | c::CHUNK_F_SERVER) as u8;
        assert_eq!(h.is_server(), Some(true));
    }
}
