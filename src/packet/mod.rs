//! Packets of `-m pcapng`: the filter language (compiled to classic BPF for
//! the kernel) and what the pcapng writer reads of a captured frame — its
//! TCP 4-tuple and payload, and the TLS records at the payload's start.
//! Frames are hostile input: every read is bounds-checked, nothing is kept.

pub mod filter;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A TCP segment of an Ethernet frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// TCP flags (FIN 1, SYN 2, RST 4, ...).
    pub flags: u8,
    pub payload: &'a [u8],
}

const TCP: u8 = 6;

/// The TCP segment in an Ethernet frame (IPv4 or IPv6, no extension
/// headers); None for anything else, a later IPv4 fragment, or a frame cut
/// before the TCP header ends.
pub fn tcp_segment(frame: &[u8]) -> Option<Segment<'_>> {
    let etype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let (src, dst, l4) = match etype {
        0x0800 => {
            let ihl = (*ip.first()? & 0x0f) as usize * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 || *ip.get(9)? != TCP {
                return None;
            }
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if frag & 0x1fff != 0 {
                return None;
            }
            let total = u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]) as usize;
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            // Ethernet padding after the IP packet is not payload; a frame
            // cut short (snap length) keeps what it has.
            let end = total.min(ip.len()).max(ihl);
            (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)), ip.get(ihl..end)?)
        }
        0x86dd => {
            if ip.first()? >> 4 != 6 || *ip.get(6)? != TCP {
                return None;
            }
            let plen = u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]) as usize;
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + plen).min(ip.len());
            (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)), ip.get(40..end.max(40))?)
        }
        _ => return None,
    };
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    let off = (*l4.get(12)? >> 4) as usize * 4;
    let flags = *l4.get(13)?;
    if off < 20 {
        return None;
    }
    let payload = l4.get(off..).unwrap_or(&[]);
    Some(Segment { src: SocketAddr::new(src, sport), dst: SocketAddr::new(dst, dport), flags, payload })
}

/// What a TCP payload holds, as far as TLS goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsStart {
    /// A ClientHello, with its client random.
    ClientHello([u8; 32]),
    /// Cleartext handshake records only (ServerHello, certificates...), as
    /// far as the segment goes.
    Handshake,
    /// Anything else: a ChangeCipherSpec or an encrypted record (also after
    /// a ServerHello in the same segment), or the middle of a record.
    Other,
}

/// Records at most looked at in one segment.
const MAX_RECORDS: usize = 64;

/// Walks the TLS records of a TCP payload (not empty) from its start.
pub fn tls_start(p: &[u8]) -> TlsStart {
    let header = |at: usize| -> Option<(u8, usize)> {
        let h = p.get(at..at + 5)?;
        (h[1] == 3 && h[2] <= 4).then(|| (h[0], u16::from_be_bytes([h[3], h[4]]) as usize))
    };
    match header(0) {
        Some((22, _)) => {}
        _ => return TlsStart::Other,
    }
    // Handshake header: type (1 = ClientHello), 3-byte length, then
    // client_version (2) and the random (32).
    if p.get(5) == Some(&1) {
        if let Some(r) = p.get(11..43).and_then(|r| <[u8; 32]>::try_from(r).ok()) {
            return TlsStart::ClientHello(r);
        }
    }
    let mut at = 0;
    for _ in 0..MAX_RECORDS {
        if at >= p.len() {
            return TlsStart::Handshake;
        }
        match header(at) {
            Some((22, len)) => at += 5 + len,
            // A header cut by the segment's end: the next segment says.
            None if p.len() - at < 5 => return TlsStart::Handshake,
            _ => return TlsStart::Other,
        }
    }
    TlsStart::Other
}

/// An address as a socket of the other family would show it: IPv4-mapped
/// IPv6 addresses as IPv4.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

#[cfg(test)]
mod tests {
    use super::filter::tests::frame;
    use super::*;

    #[test]
    fn segments_and_tls_starts() {
        let mut f = frame("10.0.0.1", "10.0.0.2", 6, 40000, 443, 0);
        // A TCP header of 20 bytes (data offset 5), then a ClientHello.
        f[14 + 20 + 12] = 5 << 4;
        f[14 + 20 + 13] = 0x18;
        let mut hello = vec![22, 3, 1, 0, 100, 1, 0, 0, 96, 3, 3];
        hello.extend([7u8; 32]);
        f.extend(&hello);
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend([0u8; 6]); // Ethernet padding
        let s = tcp_segment(&f).unwrap();
        assert_eq!(s.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:443".parse().unwrap());
        assert_eq!(s.payload, &hello[..]);
        assert_eq!(tls_start(s.payload), TlsStart::ClientHello([7; 32]));
        assert_eq!(tls_start(&[23, 3, 3, 0, 10]), TlsStart::Other);
        assert_eq!(tls_start(&[22, 3, 3, 0, 1, 2]), TlsStart::Handshake);
        // A ServerHello then a ChangeCipherSpec in one segment.
        assert_eq!(tls_start(&[22, 3, 3, 0, 1, 2, 20, 3, 3, 0, 1, 1]), TlsStart::Other);
        // A record continued in the next segment.
        assert_eq!(tls_start(&[22, 3, 3, 0, 100, 2]), TlsStart::Handshake);
        assert_eq!(tls_start(&[22, 3, 3, 0, 1, 2, 22, 3]), TlsStart::Handshake);
        let mut six = frame("fd00::1", "fd00::2", 6, 1, 2, 0);
        six[14 + 40 + 12] = 5 << 4;
        assert_eq!(tcp_segment(&six).unwrap().dst, "[fd00::2]:2".parse().unwrap());
        assert!(tcp_segment(&frame("10.0.0.1", "10.0.0.2", 17, 1, 2, 0)).is_none());
        for n in 0..f.len() {
            let _ = tcp_segment(&f[..n]);
        }
        assert_eq!(canonical("[::ffff:127.0.0.1]:5".parse().unwrap()), "127.0.0.1:5".parse().unwrap());
    }
}
