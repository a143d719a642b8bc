//! A packet socket (AF_PACKET) with a TPACKET_V3 receive ring, as tcpdump's
//! libpcap uses: the kernel copies each frame that passes the attached
//! classic BPF filter into blocks of a ring shared with ecapture (no copy
//! per packet into user space, one wakeup per block), both directions,
//! with nanosecond timestamps; PACKET_STATISTICS counts what the ring had no
//! room for.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, Ordering};

/// One classic BPF instruction (struct sock_filter).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

const SOL_PACKET: libc::c_int = 263;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const ETH_P_ALL: u16 = 0x0003;

#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const Insn,
}

// Offsets in the ring (linux/if_packet.h).
/// struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1:
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
/// struct tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len,
/// tp_status, tp_mac (u16)...; 48 bytes, then a struct sockaddr_ll.
const HDR_SIZE: usize = 48;
const SLL_PKTTYPE: usize = 10;
const PACKET_OUTGOING: u8 = 4;

/// One frame in the ring, valid while the block is being read.
pub struct Frame<'a> {
    pub sec: u32,
    pub nsec: u32,
    /// Length on the wire (`data` may be shorter: the snap length).
    pub len: u32,
    pub data: &'a [u8],
    pub outgoing: bool,
}

/// The socket and its mapped ring.
pub struct PacketRing {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    blocks: usize,
    next: usize,
}

// SAFETY: the mapping belongs to this value alone; it is only read and its
// block status words written by the thread that owns it.
unsafe impl Send for PacketRing {}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the given size.
    check(unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, (v as *const T).cast(), std::mem::size_of::<T>() as libc::socklen_t)
    })
}

impl PacketRing {
    /// A ring of `blocks` blocks of `block_size` bytes (a multiple of the
    /// page size) on interface `ifindex`, filtered by `filter`; a block is
    /// handed over at the latest `retire_ms` after its first packet.
    pub fn open(ifindex: i32, filter: &[Insn], block_size: usize, blocks: usize, retire_ms: u32) -> io::Result<PacketRing> {
        // Protocol 0: nothing is received before the filter and ring are
        // in place and the socket is bound with ETH_P_ALL.
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        check(raw)?;
        // SAFETY: socket succeeded; the descriptor is ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let prog = SockFprog { len: filter.len() as libc::c_ushort, filter: filter.as_ptr() };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
        setsockopt(&fd, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)?;
        let req = TpacketReq3 {
            block_size: block_size as u32,
            block_nr: blocks as u32,
            frame_size: 2048,
            frame_nr: (block_size / 2048 * blocks) as u32,
            retire_blk_tov: retire_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setsockopt(&fd, SOL_PACKET, PACKET_RX_RING, &req)?;
        let map_len = block_size * blocks;
        // SAFETY: maps the ring just set up on fd, shared, read-write.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        let map = if map == libc::MAP_FAILED {
            // MAP_LOCKED may exceed RLIMIT_MEMLOCK: try without.
            // SAFETY: as above.
            let m = unsafe {
                libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0)
            };
            if m == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            m
        } else {
            map
        };
        let ring = PacketRing { fd, map: map.cast(), map_len, block_size, blocks, next: 0 };
        // SAFETY: sockaddr_ll is plain data; zeroed is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        check(unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(ring)
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn word(&self, block: usize, off: usize) -> *mut u32 {
        // SAFETY (of the callers' use): block < blocks and off + 4 <= block
        // size, so the pointer is inside the mapping and 4-aligned.
        unsafe { self.map.add(block * self.block_size + off).cast() }
    }

    /// Hands every frame of the blocks ready now to `f`, then gives the
    /// blocks back to the kernel; the number of frames.
    pub fn read_ready(&mut self, mut f: impl FnMut(&Frame<'_>)) -> usize {
        let mut n = 0;
        for _ in 0..self.blocks {
            let b = self.next;
            // SAFETY: inside the mapping (see `word`); the kernel writes
            // this word concurrently, hence the volatile read.
            let status = unsafe { std::ptr::read_volatile(self.word(b, BLOCK_STATUS)) };
            if status & TP_STATUS_USER == 0 {
                break;
            }
            fence(Ordering::Acquire);
            // SAFETY: the block is ours until its status is reset; its bytes
            // are not written by the kernel meanwhile.
            let block = unsafe { std::slice::from_raw_parts(self.map.add(b * self.block_size), self.block_size) };
            let rd = |off: usize| block.get(off..off + 4).map_or(0, |w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]])) as usize;
            let count = rd(BLOCK_NUM_PKTS);
            let mut off = rd(BLOCK_FIRST_PKT);
            for _ in 0..count {
                let Some(h) = block.get(off..off + HDR_SIZE) else { break };
                let w = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
                let (next, sec, nsec, snap, len) = (w(0) as usize, w(4), w(8), w(12) as usize, w(16));
                let mac = u16::from_ne_bytes([h[24], h[25]]) as usize;
                let outgoing = block.get(off + HDR_SIZE + SLL_PKTTYPE) == Some(&PACKET_OUTGOING);
                if let Some(data) = block.get(off + mac..off + mac + snap) {
                    f(&Frame { sec, nsec, len, data, outgoing });
                    n += 1;
                }
                if next == 0 {
                    break;
                }
                off += next;
            }
            fence(Ordering::Release);
            // SAFETY: as above; handing the block back.
            unsafe { std::ptr::write_volatile(self.word(b, BLOCK_STATUS), TP_STATUS_KERNEL) };
            self.next = (self.next + 1) % self.blocks;
        }
        n
    }

    /// Frames received and dropped (no room in the ring) since the last call.
    pub fn stats(&self) -> io::Result<(u64, u64)> {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: st and len are valid for getsockopt to fill.
        check(unsafe {
            libc::getsockopt(self.fd.as_raw_fd(), SOL_PACKET, PACKET_STATISTICS, (&mut st as *mut TpacketStatsV3).cast(), &mut len)
        })?;
        Ok((st.packets as u64, st.drops as u64))
    }
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in open, unmapped once.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}
