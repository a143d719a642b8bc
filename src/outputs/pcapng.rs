//! `-m pcapng` / `-m pcap`: the packets of an interface in a pcapng file,
//! with the TLS secrets that decrypt them in Decryption Secrets Blocks, so
//! `tshark -r FILE` shows the plaintext with no other input.
//!
//! Two threads feed one writer: the packet thread (frames from a packet
//! socket's ring, src/sys/packet.rs, filtered in the kernel by the compiled
//! tcpdump expression) and the dispatcher (secrets, and the messages whose
//! endpoints say which process owns a connection) through `PcapOutput`.
//!
//! Wireshark reads a file in one pass: a secret must come before the first
//! packet it decrypts. Secrets are read when the library has finished the
//! handshake, after its encrypted packets went by; so the packets of a TLS
//! connection, from its first record that is not a cleartext handshake, are
//! held until its keys are written (matched by the ClientHello's client
//! random), within bounds (`HOLD_*`): past a bound they are written anyway
//! and counted. Every write is whole blocks, flushed once per batch, so a
//! reader can follow the file live.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::Output;
use crate::error::{Error, Result};
use crate::event::{Message, Secret, SecretLabel};
use crate::fasthash::FastMap;
use crate::modules::PcapConfig;
use crate::packet::{canonical, filter, tcp_segment, tls_start, TlsStart};
use crate::sink::open::OutputFile;
use crate::sys::os::{self, EventFd, StopNotifier};
use crate::sys::packet::PacketRing;

/// How long a connection's packets wait for its keys at most.
pub const HOLD_NS: u64 = 1_500_000_000;
/// Bytes held per connection, and in all, at most.
pub const HOLD_CONN_BYTES: usize = 2 << 20;
pub const HOLD_TOTAL_BYTES: usize = 32 << 20;
/// Connections tracked at most (beyond, packets are written as they come).
pub const MAX_CONNS: usize = 65536;
/// Client randoms whose keys are remembered.
const MAX_KEYED: usize = 65536;
/// Connection owners remembered (from messages).
const MAX_OWNERS: usize = 65536;
/// A connection not seen for this long is forgotten.
const IDLE_NS: u64 = 120_000_000_000;

/// The ring: 16 blocks of 1 MiB; a block goes to ecapture when full or
/// 50 ms after its first frame (a live reader sees packets within that;
/// at low rates fewer hand-overs cost less CPU per packet: make bench §8).
const BLOCK_SIZE: usize = 1 << 20;
const BLOCKS: usize = 16;
const RETIRE_MS: u32 = 50;

/// LINKTYPE_ETHERNET (Linux frames loopback as Ethernet too).
const LINKTYPE_ETHERNET: u16 = 1;
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// Counters for the summary.
#[derive(Debug, Default)]
pub struct PcapStats {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Frames the kernel had no room for in the ring.
    pub kernel_drops: AtomicU64,
    /// Decryption Secrets Blocks and the key log lines in them.
    pub secret_blocks: AtomicU64,
    pub secret_lines: AtomicU64,
    /// Packets written before their keys (a bound reached; see HOLD_*).
    pub before_keys: AtomicU64,
    /// Packets of connections beyond MAX_CONNS (written, not held).
    pub untracked: AtomicU64,
    /// Bytes that could not be written.
    pub write_failed: AtomicU64,
}

/// pcapng blocks (little-endian, as the byte-order magic says).
pub mod block {
    fn pad4(v: &mut Vec<u8>) {
        while v.len() % 4 != 0 {
            v.push(0);
        }
    }

    fn option(v: &mut Vec<u8>, code: u16, val: &[u8]) {
        v.extend_from_slice(&code.to_le_bytes());
        v.extend_from_slice(&(val.len() as u16).to_le_bytes());
        v.extend_from_slice(val);
        pad4(v);
    }

    /// A block of `kind` around `body` (already padded), into `out`.
    fn wrap(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = (12 + body.len()) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&len.to_le_bytes());
    }

    /// Section Header Block: byte-order magic, version 1.0, length unknown.
    pub fn section(out: &mut Vec<u8>) {
        let mut b = Vec::new();
        b.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut b, 4, concat!("ecapture ", env!("CARGO_PKG_VERSION")).as_bytes()); // shb_userappl
        option(&mut b, 0, &[]);
        wrap(out, 0x0a0d_0d0a, &b);
    }

    /// Interface Description Block: link type, snap length, if_name,
    /// if_tsresol 9 (nanoseconds).
    pub fn interface(out: &mut Vec<u8>, linktype: u16, snaplen: u32, name: &str) {
        let mut b = Vec::new();
        b.extend_from_slice(&linktype.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        option(&mut b, 2, name.as_bytes());
        option(&mut b, 9, &[9]);
        option(&mut b, 0, &[]);
        wrap(out, 1, &b);
    }

    /// Enhanced Packet Block of interface 0, with an optional comment,
    /// written straight into `out` (once per packet: no copy on the way).
    pub fn packet(out: &mut Vec<u8>, ts_ns: u64, orig_len: u32, data: &[u8], comment: Option<&str>) {
        let comment = comment.map(|c| &c.as_bytes()[..c.len().min(1000)]);
        let padded = |n: usize| (n + 3) & !3;
        let opts = comment.map_or(0, |c| 4 + padded(c.len()) + 4);
        let len = (12 + 20 + padded(data.len()) + opts) as u32;
        out.reserve(len as usize);
        out.extend_from_slice(&6u32.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        out.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        pad4(out);
        if let Some(c) = comment {
            option(out, 1, c);
            option(out, 0, &[]);
        }
        out.extend_from_slice(&len.to_le_bytes());
    }

    /// Decryption Secrets Block: TLS key log lines ('TLSK').
    pub fn secrets(out: &mut Vec<u8>, keylog: &[u8]) {
        let mut b = Vec::with_capacity(12 + keylog.len());
        b.extend_from_slice(&0x544c_534bu32.to_le_bytes());
        b.extend_from_slice(&(keylog.len() as u32).to_le_bytes());
        b.extend_from_slice(keylog);
        pad4(&mut b);
        wrap(out, 0x0000_000a, &b);
    }
}

/// A packet held for its keys.
struct Held {
    ts_ns: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// A TCP connection seen on the interface (both directions).
#[derive(Default)]
struct Conn {
    client_random: Option<[u8; 32]>,
    /// Its keys are written, or it stopped waiting for them.
    done: bool,
    held: VecDeque<Held>,
    held_bytes: usize,
    /// When holding started (monotonic ns).
    since: u64,
    last_seen: u64,
}

/// Which process owns a connection's end.
#[derive(Clone)]
struct Owner {
    pid: u32,
    tid: u32,
    comm: String,
}

type Key = (SocketAddr, SocketAddr);

fn conn_key(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Which secrets of a handshake were written.
fn label_bit(l: SecretLabel) -> u8 {
    match l {
        SecretLabel::ClientRandom => 1,
        SecretLabel::ClientTraffic0 => 2,
        SecretLabel::ServerTraffic0 => 4,
        SecretLabel::ClientHandshakeTraffic => 8,
        SecretLabel::ServerHandshakeTraffic => 16,
        _ => 0,
    }
}

/// Enough to decrypt the connection: TLS 1.2's master secret, or TLS 1.3's
/// handshake and traffic secrets of both sides (Wireshark follows a TLS 1.3
/// connection into its application keys through the encrypted handshake).
fn complete(bits: u8) -> bool {
    bits & 1 != 0 || bits & 30 == 30
}

/// The file's state, shared by the packet thread and the dispatcher.
pub struct Pcap {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    conns: FastMap<Key, Conn>,
    /// Connections holding packets.
    holding: Vec<Key>,
    held_total: usize,
    by_random: HashMap<[u8; 32], Key>,
    keyed: HashMap<[u8; 32], u8>,
    keyed_order: VecDeque<[u8; 32]>,
    /// Key log lines written, to not write one twice.
    lines_written: std::collections::HashSet<([u8; 32], u8)>,
    owners: FastMap<Key, Owner>,
    last_sweep: u64,
    stats: Arc<PcapStats>,
    reported_error: bool,
    stop: Option<StopNotifier>,
}

impl Pcap {
    pub fn new(out: Box<dyn Write + Send>, snaplen: u32, ifname: &str, stats: Arc<PcapStats>) -> Pcap {
        let mut buf = Vec::with_capacity(256 << 10);
        block::section(&mut buf);
        block::interface(&mut buf, LINKTYPE_ETHERNET, snaplen, ifname);
        Pcap {
            out,
            buf,
            conns: FastMap::default(),
            holding: Vec::new(),
            held_total: 0,
            by_random: HashMap::new(),
            keyed: HashMap::new(),
            keyed_order: VecDeque::new(),
            lines_written: Default::default(),
            owners: FastMap::default(),
            last_sweep: 0,
            stats,
            reported_error: false,
            stop: None,
        }
    }

    fn comment(&self, src: SocketAddr, dst: SocketAddr) -> Option<String> {
        let o = self.owners.get(&(src, dst)).or_else(|| self.owners.get(&(dst, src)))?;
        Some(format!("pid={} tid={} comm={}", o.pid, o.tid, o.comm))
    }

    /// Writes a packet; `ends`: its TCP source and destination, for the comment.
    fn emit(&mut self, ts_ns: u64, orig_len: u32, data: &[u8], ends: Option<(SocketAddr, SocketAddr)>) {
        let comment = if self.owners.is_empty() { None } else { ends.and_then(|(s, d)| self.comment(s, d)) };
        block::packet(&mut self.buf, ts_ns, orig_len, data, comment.as_deref());
        self.stats.packets.fetch_add(1, Relaxed);
        self.stats.bytes.fetch_add(data.len() as u64, Relaxed);
        if self.buf.len() >= 1 << 20 {
            self.write_out();
        }
    }

    /// A frame from the interface, at `now` (monotonic ns).
    pub fn packet(&mut self, ts_ns: u64, orig_len: u32, data: &[u8], now: u64) {
        let Some(seg) = tcp_segment(data) else {
            return self.emit(ts_ns, orig_len, data, None);
        };
        let ends = Some((seg.src, seg.dst));
        let key = conn_key(seg.src, seg.dst);
        if !self.conns.contains_key(&key) {
            if self.conns.len() >= MAX_CONNS {
                self.stats.untracked.fetch_add(1, Relaxed);
                return self.emit(ts_ns, orig_len, data, ends);
            }
            self.conns.insert(key, Conn::default());
        }
        let Some(c) = self.conns.get_mut(&key) else { return };
        c.last_seen = now;
        let mut start_holding = false;
        if !seg.payload.is_empty() && !c.done && c.held.is_empty() {
            match tls_start(seg.payload) {
                TlsStart::ClientHello(r) if c.client_random.is_none() => {
                    c.client_random = Some(r);
                    if self.keyed.get(&r).is_some_and(|&b| complete(b)) {
                        c.done = true;
                    }
                    self.by_random.insert(r, key);
                }
                TlsStart::Handshake | TlsStart::ClientHello(_) => {}
                TlsStart::Other => start_holding = c.client_random.is_some(),
            }
        }
        if c.held.is_empty() && !start_holding {
            // Keys may have come since holding ended: nothing to wait for.
            return self.emit(ts_ns, orig_len, data, ends);
        }
        if c.held.is_empty() {
            c.since = now;
            self.holding.push(key);
        }
        c.held_bytes += data.len();
        c.held.push_back(Held { ts_ns, orig_len, data: data.to_vec() });
        self.held_total += data.len();
        let over = c.held_bytes > HOLD_CONN_BYTES || self.held_total > HOLD_TOTAL_BYTES;
        let ready = c.client_random.and_then(|r| self.keyed.get(&r)).is_some_and(|&b| complete(b));
        if over || ready {
            self.release(key, !ready);
        }
    }

    /// Bytes held for keys, in all.
    pub fn held_bytes(&self) -> usize {
        self.held_total
    }

    /// Writes what `key` holds; `early`: without its keys (counted).
    fn release(&mut self, key: Key, early: bool) {
        let Some(c) = self.conns.get_mut(&key) else { return };
        let held = std::mem::take(&mut c.held);
        self.held_total -= c.held_bytes.min(self.held_total);
        c.held_bytes = 0;
        c.done = true;
        self.holding.retain(|k| *k != key);
        if early && !held.is_empty() {
            self.stats.before_keys.fetch_add(held.len() as u64, Relaxed);
            log::debug!("{} packets of {} <-> {} written before their TLS keys", held.len(), key.0, key.1);
        }
        for h in held {
            let ends = tcp_segment(&h.data).map(|s| (s.src, s.dst));
            self.emit(h.ts_ns, h.orig_len, &h.data, ends);
        }
    }

    /// Connections whose keys came, and those that waited too long.
    pub fn tick(&mut self, now: u64) {
        let keys: Vec<Key> = self.holding.clone();
        for key in keys {
            let Some(c) = self.conns.get(&key) else { continue };
            let ready = c.client_random.and_then(|r| self.keyed.get(&r)).is_some_and(|&b| complete(b));
            if ready || now.saturating_sub(c.since) > HOLD_NS {
                self.release(key, !ready);
            }
        }
        if now.saturating_sub(self.last_sweep) > 5_000_000_000 {
            self.last_sweep = now;
            let before = self.conns.len();
            self.conns.retain(|_, c| !c.held.is_empty() || now.saturating_sub(c.last_seen) < IDLE_NS);
            if self.conns.len() != before {
                let conns = &self.conns;
                self.by_random.retain(|_, k| conns.contains_key(k));
            }
        }
    }

    /// A secret: into a Decryption Secrets Block, now (before the packets
    /// it decrypts, which wait for it).
    pub fn secret(&mut self, s: &Secret) {
        let bit = label_bit(s.label);
        let tag = match s.label {
            SecretLabel::ClientRandom => 0,
            SecretLabel::ClientEarlyTraffic => 1,
            SecretLabel::ClientHandshakeTraffic => 2,
            SecretLabel::ServerHandshakeTraffic => 3,
            SecretLabel::ClientTraffic0 => 4,
            SecretLabel::ServerTraffic0 => 5,
            SecretLabel::Exporter => 6,
        };
        if !self.lines_written.insert((s.client_random, tag)) {
            return;
        }
        if self.lines_written.len() > MAX_KEYED * 8 {
            self.lines_written.clear();
        }
        block::secrets(&mut self.buf, super::keylog::line(s).as_bytes());
        self.stats.secret_blocks.fetch_add(1, Relaxed);
        self.stats.secret_lines.fetch_add(1, Relaxed);
        if !self.keyed.contains_key(&s.client_random) {
            self.keyed_order.push_back(s.client_random);
            if self.keyed_order.len() > MAX_KEYED {
                if let Some(old) = self.keyed_order.pop_front() {
                    self.keyed.remove(&old);
                }
            }
        }
        *self.keyed.entry(s.client_random).or_default() |= bit;
    }

    /// A message: its endpoints name the process at this end.
    pub fn owner(&mut self, m: &Message) {
        let Some((l, r)) = m.meta.endpoints else { return };
        let key = (canonical(l), canonical(r));
        if self.owners.len() >= MAX_OWNERS && !self.owners.contains_key(&key) {
            self.owners.clear();
        }
        let o = self.owners.entry(key).or_insert_with(|| Owner { pid: 0, tid: 0, comm: String::new() });
        if o.pid != m.meta.pid || o.tid != m.meta.tid || o.comm != m.meta.comm.as_str() {
            *o = Owner { pid: m.meta.pid, tid: m.meta.tid, comm: m.meta.comm.as_str().to_string() };
        }
    }

    /// Whole blocks to the file or stream, flushed.
    pub fn write_out(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let r = self.out.write_all(&self.buf).and_then(|_| self.out.flush());
        if let Err(e) = r {
            self.stats.write_failed.fetch_add(self.buf.len() as u64, Relaxed);
            if !self.reported_error {
                self.reported_error = true;
                log::error!("cannot write the pcapng output: {e}");
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    if let Some(s) = &self.stop {
                        s.request();
                    }
                }
            }
        }
        self.buf.clear();
    }

    /// The end: everything held is written (keys or not).
    pub fn finish(&mut self) {
        for key in self.holding.clone() {
            let ready = self
                .conns
                .get(&key)
                .and_then(|c| c.client_random)
                .and_then(|r| self.keyed.get(&r))
                .is_some_and(|&b| complete(b));
            self.release(key, !ready);
        }
        self.write_out();
    }
}

fn lock(p: &Mutex<Pcap>) -> MutexGuard<'_, Pcap> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// The dispatcher's side: secrets and owners.
pub struct PcapOutput(pub Arc<Mutex<Pcap>>);

impl Output for PcapOutput {
    fn message(&mut self, m: &Message) {
        lock(&self.0).owner(m);
    }

    fn secret(&mut self, s: &Secret) {
        lock(&self.0).secret(s);
    }

    fn flush(&mut self) {
        let mut p = lock(&self.0);
        p.tick(os::monotonic_ns());
        p.write_out();
    }
}

/// The interface's index and link type, from sysfs; a usage error if it
/// does not exist or is not Ethernet-framed.
fn interface(name: &str) -> Result<(i32, u16)> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::usage(format!("--ifname '{name}': not an interface name")));
    }
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok().and_then(|s| s.trim().parse::<u32>().ok());
    let (Some(index), Some(kind)) = (read("ifindex"), read("type")) else {
        return Err(Error::usage(format!("--ifname {name}: no such network interface (see ip link)")));
    };
    match kind {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => Ok((index as i32, LINKTYPE_ETHERNET)),
        k => Err(Error::usage(format!(
            "--ifname {name}: link type {k} (ARPHRD) is not supported: Ethernet and loopback interfaces only"
        ))),
    }
}

/// The running capture: its thread and counters.
pub struct PcapCapture {
    pub shared: Arc<Mutex<Pcap>>,
    pub stats: Arc<PcapStats>,
    pub cfg: PcapConfig,
    stop: Arc<EventFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PcapCapture {
    /// Opens the output and the interface's packet socket, and starts
    /// reading packets; errors (no such interface, a path that cannot be
    /// written) end the run before capture starts.
    pub fn start(cfg: &PcapConfig) -> Result<PcapCapture> {
        let (ifindex, _linktype) = interface(&cfg.ifname)?;
        let lo = std::fs::read_to_string(format!("/sys/class/net/{}/type", cfg.ifname)).is_ok_and(|t| t.trim() == "772");
        let prog = filter::compile(&cfg.filter, cfg.snaplen, lo).map_err(|e| Error::usage(format!("filter: {e}")))?;
        let out: Box<dyn Write + Send> = if cfg.path.as_os_str() == "-" {
            super::stdout::stdout_unbuffered()
        } else {
            let f = OutputFile::open(&cfg.path).map_err(|e| Error::usage(format!("--pcapfile {e}")))?.file;
            // A new capture: the file starts with its section header.
            f.set_len(0).map_err(|e| Error::usage(format!("--pcapfile {}: {e}", cfg.path.display())))?;
            Box::new(f)
        };
        let ring = PacketRing::open(ifindex, &prog.0, BLOCK_SIZE, BLOCKS, RETIRE_MS)
            .map_err(|e| Error::runtime(format!("cannot capture packets on {}: {e}", cfg.ifname)))?;
        let stats = Arc::new(PcapStats::default());
        let mut pcap = Pcap::new(out, cfg.snaplen, &cfg.ifname, Arc::clone(&stats));
        pcap.write_out();
        let shared = Arc::new(Mutex::new(pcap));
        let stop = Arc::new(EventFd::new().map_err(|e| Error::runtime(format!("cannot create eventfd: {e}")))?);
        let thread = {
            let (shared, stop, stats) = (Arc::clone(&shared), Arc::clone(&stop), Arc::clone(&stats));
            std::thread::Builder::new()
                .name("packets".into())
                .spawn(move || packet_loop(ring, &shared, &stop, &stats))
                .map_err(|e| Error::runtime(format!("cannot start the packet thread: {e}")))?
        };
        Ok(PcapCapture { shared, stats, cfg: cfg.clone(), stop, thread: Some(thread) })
    }

    pub fn set_stop(&self, stop: StopNotifier) {
        lock(&self.shared).stop = Some(stop);
    }

    /// Stops reading (after the frames already in the ring), writes what
    /// is held, flushes.
    pub fn stop(&mut self) {
        self.stop.signal();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the packet thread panicked");
            }
        }
    }

    pub fn summary(&self) -> (u64, String) {
        let s = &self.stats;
        let l = |a: &AtomicU64| a.load(Relaxed);
        let name = if self.cfg.path.as_os_str() == "-" { "standard output".to_string() } else { self.cfg.path.display().to_string() };
        let mut t = format!(
            "pcapng {name}: {} packets ({} bytes) from {}, {} TLS secrets in {} Decryption Secrets Blocks; {} packets dropped by the kernel (ring full)",
            l(&s.packets),
            l(&s.bytes),
            self.cfg.ifname,
            l(&s.secret_lines),
            l(&s.secret_blocks),
            l(&s.kernel_drops)
        );
        if l(&s.before_keys) > 0 {
            t.push_str(&format!(", {} written before their keys (held too long or too much)", l(&s.before_keys)));
        }
        if l(&s.untracked) > 0 {
            t.push_str(&format!(", {} of connections beyond {MAX_CONNS} (not held for keys)", l(&s.untracked)));
        }
        if l(&s.write_failed) > 0 {
            t.push_str(&format!(", {} bytes not written", l(&s.write_failed)));
        }
        // Losses: what the kernel dropped, what could not be written (packets
        // written before their keys are in the file, only not decryptable).
        (l(&s.kernel_drops) + l(&s.write_failed), t)
    }
}

impl Drop for PcapCapture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// While packets wait for their keys, how often the thread looks whether
/// the keys came (or the packets waited HOLD_NS); otherwise it sleeps until
/// the kernel hands over a block.
const HOLD_CHECK_MS: i32 = 25;

fn packet_loop(mut ring: PacketRing, shared: &Mutex<Pcap>, stop: &EventFd, stats: &PcapStats) {
    let mut last_stats = 0u64;
    let mut read_stats = |ring: &PacketRing, force: bool| {
        let now = os::monotonic_ns();
        if force || now.saturating_sub(last_stats) > 1_000_000_000 {
            last_stats = now;
            if let Ok((_, drops)) = ring.stats() {
                if drops > 0 {
                    stats.kernel_drops.fetch_add(drops, Relaxed);
                }
            }
        }
    };
    let read = |ring: &mut PacketRing| {
        let now = os::monotonic_ns();
        let mut p = lock(shared);
        ring.read_ready(|f| p.packet(f.sec as u64 * 1_000_000_000 + f.nsec as u64, f.len, f.data, now));
        p.tick(now);
        p.write_out();
    };
    loop {
        let timeout = if lock(shared).holding.is_empty() { -1 } else { HOLD_CHECK_MS };
        match os::poll_readable(&[ring.fd(), stop.fd()], timeout) {
            Ok(r) if r[1] => break,
            Ok(_) => read(&mut ring),
            Err(e) => {
                log::error!("packet capture failed: {e}");
                break;
            }
        }
        read_stats(&ring, false);
    }
    // The last frames: blocks not yet full are handed over within RETIRE_MS.
    std::thread::sleep(Duration::from_millis(3 * RETIRE_MS as u64));
    read(&mut ring);
    read_stats(&ring, true);
    lock(shared).finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::filter::tests::frame;

    /// Output that the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The block types of a pcapng stream, checking each block's lengths.
    fn blocks(b: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let t = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32::from_le_bytes(b[at + len - 4..at + len].try_into().unwrap()) as usize, len);
            out.push(t);
            at += len;
        }
        out
    }

    /// A TCP frame from 10.0.0.1:40000 to 10.0.0.2:443 (or back) with `payload`.
    fn tcp(back: bool, payload: &[u8]) -> Vec<u8> {
        let (s, d, sp, dp) = if back { ("10.0.0.2", "10.0.0.1", 443, 40000) } else { ("10.0.0.1", "10.0.0.2", 40000, 443) };
        let mut f = frame(s, d, 6, sp, dp, 0);
        f[14 + 20 + 12] = 5 << 4;
        f.extend_from_slice(payload);
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f
    }

    fn hello() -> Vec<u8> {
        let mut h = vec![22, 3, 1, 0, 100, 1, 0, 0, 96, 3, 3];
        h.extend([7u8; 32]);
        h
    }

    const SHB: u32 = 0x0a0d_0d0a;

    #[test]
    fn packets_wait_for_their_keys_which_come_first() {
        let out = Shared::default();
        let stats = Arc::new(PcapStats::default());
        let mut p = Pcap::new(Box::new(out.clone()), 65535, "lo", Arc::clone(&stats));
        p.packet(1, 0, &tcp(false, &hello()), 1);
        p.packet(2, 0, &tcp(true, &[22, 3, 3, 0, 1, 2, 20, 3, 3, 0, 1, 1]), 2); // ServerHello + CCS: held
        p.packet(3, 0, &tcp(false, &[23, 3, 3, 0, 1, 9]), 3); // held behind it
        p.packet(4, 0, &frame("10.0.0.5", "10.0.0.6", 17, 1, 2, 0), 4); // other traffic goes on
        p.write_out();
        assert_eq!(blocks(&out.0.lock().unwrap()), vec![SHB, 1, 6, 6]);
        p.secret(&Secret { pid: 1, conn: 2, label: SecretLabel::ClientRandom, client_random: [7; 32], secret: vec![1; 48] });
        p.tick(5);
        p.write_out();
        assert_eq!(blocks(&out.0.lock().unwrap()), vec![SHB, 1, 6, 6, 10, 6, 6]);
        // Keyed: later packets pass.
        p.packet(6, 0, &tcp(false, &[23, 3, 3, 0, 1, 9]), 6);
        p.write_out();
        assert_eq!(blocks(&out.0.lock().unwrap()).len(), 8);
        assert_eq!(stats.before_keys.load(Relaxed), 0);
        assert_eq!(stats.packets.load(Relaxed), 5);
    }

    #[test]
    fn packets_without_keys_wait_a_bounded_time() {
        let out = Shared::default();
        let stats = Arc::new(PcapStats::default());
        let mut p = Pcap::new(Box::new(out.clone()), 65535, "lo", Arc::clone(&stats));
        p.packet(1, 0, &tcp(false, &hello()), 1);
        p.packet(2, 0, &tcp(false, &[23, 3, 3, 0, 1, 9]), 1);
        p.tick(HOLD_NS);
        assert!(p.held_bytes() > 0);
        p.tick(HOLD_NS + 2);
        assert_eq!(p.held_bytes(), 0);
        assert_eq!(stats.before_keys.load(Relaxed), 1);
        // Too much held: written at once.
        let mut p = Pcap::new(Box::new(Vec::new()), 65535, "lo", Arc::clone(&stats));
        p.packet(1, 0, &tcp(false, &hello()), 1);
        let big = tcp(false, &[vec![23, 3, 3, 0x40, 0], vec![0; 60_000]].concat());
        for _ in 0..(HOLD_CONN_BYTES / big.len() + 2) {
            p.packet(2, 0, &big, 2);
            assert!(p.held_bytes() <= HOLD_CONN_BYTES);
        }
        p.finish();
        assert_eq!(p.held_bytes(), 0);
    }
}

#[cfg(test)]
mod random {
    /// Random mutations of the fuzz seeds through the fuzz entry point
    /// (stable Rust, no cargo-fuzz): no panic, bounded holding.
    #[test]
    fn mutated_inputs_through_the_writer() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/packets");
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| std::fs::read(e.path()).unwrap()).collect();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut d = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..(1 + next() % 8) {
                let at = (next() as usize) % d.len().max(1);
                match next() % 3 {
                    0 if !d.is_empty() => d[at] = next() as u8,
                    1 => d.insert(at.min(d.len()), next() as u8),
                    _ => d.truncate(at),
                }
            }
            crate::fuzzing::packets(&d);
        }
    }
}
