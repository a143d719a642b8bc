//! tcpdump's filter expressions, compiled to classic BPF for a packet socket
//! (SO_ATTACH_FILTER: the kernel drops what does not match before it is
//! copied to ecapture), for Ethernet-framed links (DLT_EN10MB; Linux frames
//! `lo` as Ethernet too).
//!
//! The language (a subset of pcap-filter(7)):
//! - primitives `[proto] [dir] [type] VALUE`: proto `ip`, `ip6`, `tcp`,
//!   `udp`; dir `src`, `dst`; type `host` (an IPv4 or IPv6 address), `net`
//!   (CIDR, e.g. 10.0.0.0/8 or fd00::/8), `port`, `portrange` (`A-B`);
//!   a value alone is a host; a protocol alone matches that protocol;
//! - `and` `&&`, `or` `||`, `not` `!`, parentheses; `and` binds tighter than
//!   `or`, as in tcpdump;
//! - a value after `and`/`or` without qualifiers takes the previous
//!   primitive's (`host 10.0.0.1 or 10.0.0.2`), as in tcpdump.
//!
//! As tcpdump: port tests see the first fragment of an IPv4 packet only
//! (later fragments have no transport header); `tcp` and `udp` on IPv6 also
//! look behind one fragment header; `host` and `net` are IP only (tcpdump's
//! also match ARP); host names are not resolved.

use std::net::IpAddr;

pub use crate::sys::packet::Insn;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const ALU_AND_K: u16 = 0x54;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JGE_K: u16 = 0x35;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// SKF_AD_OFF + SKF_AD_PKTTYPE: the packet type (4 = PACKET_OUTGOING).
const AD_PKTTYPE: u32 = 0xffff_f000 + 4;

const ETHERTYPE_IP: u32 = 0x0800;
const ETHERTYPE_IP6: u32 = 0x86dd;
const ETH: u32 = 14;

/// An expression tree over single tests.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// Loads (no jumps), then a conditional jump: true or false.
    Test(Vec<Insn>, u16, u32),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    True,
}

fn ins(code: u16, k: u32) -> Insn {
    Insn { code, jt: 0, jf: 0, k }
}

fn test(loads: Vec<Insn>, jump: u16, k: u32) -> Expr {
    Expr::Test(loads, jump, k)
}

fn and(a: Expr, b: Expr) -> Expr {
    match (a, b) {
        (Expr::True, b) => b,
        (a, Expr::True) => a,
        (a, b) => Expr::And(Box::new(a), Box::new(b)),
    }
}

fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

fn not(a: Expr) -> Expr {
    Expr::Not(Box::new(a))
}

fn ethertype(t: u32) -> Expr {
    test(vec![ins(LD_H_ABS, 12)], JMP_JEQ_K, t)
}

/// IPv4 protocol field.
fn ip_proto(p: u32) -> Expr {
    and(ethertype(ETHERTYPE_IP), test(vec![ins(LD_B_ABS, ETH + 9)], JMP_JEQ_K, p))
}

/// IPv6 next header `p` (directly: what port tests use).
fn ip6_next(p: u32) -> Expr {
    and(ethertype(ETHERTYPE_IP6), test(vec![ins(LD_B_ABS, ETH + 6)], JMP_JEQ_K, p))
}

/// `tcp` / `udp`: IPv4 protocol, or IPv6 next header (also behind one
/// fragment header, as tcpdump).
fn transport(p: u32) -> Expr {
    let frag6 = and(
        ip6_next(44),
        test(vec![ins(LD_B_ABS, ETH + 40)], JMP_JEQ_K, p),
    );
    or(ip_proto(p), or(ip6_next(p), frag6))
}

/// Not a later fragment (IPv4 fragment offset 0): its transport header is here.
fn first_fragment() -> Expr {
    not(test(vec![ins(LD_H_ABS, ETH + 6)], JMP_JSET_K, 0x1fff))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Ip,
    Ip6,
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Either,
    Src,
    Dst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Net,
    Port,
    PortRange,
}

/// A primitive's qualifiers (what a bare value after and/or inherits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quals {
    proto: Option<Proto>,
    dir: Dir,
    kind: Kind,
}

/// A 16-bit port test at transport offset `off` (0 source, 2 destination):
/// the IPv4 header length is in X.
fn port_at(off: u32, lo: u32, hi: u32, v6: bool) -> Expr {
    let load = if v6 { vec![ins(LD_H_ABS, ETH + 40 + off)] } else { vec![ins(LDX_B_MSH, ETH), ins(LD_H_IND, ETH + off)] };
    if lo == hi {
        test(load, JMP_JEQ_K, lo)
    } else {
        and(test(load.clone(), JMP_JGE_K, lo), not(test(load, JMP_JGT_K, hi)))
    }
}

fn ports(q: &Quals, lo: u32, hi: u32) -> Expr {
    let dirs = |v6: bool| match q.dir {
        Dir::Src => port_at(0, lo, hi, v6),
        Dir::Dst => port_at(2, lo, hi, v6),
        Dir::Either => or(port_at(0, lo, hi, v6), port_at(2, lo, hi, v6)),
    };
    let protos: &[u32] = match q.proto {
        Some(Proto::Tcp) => &[6],
        Some(Proto::Udp) => &[17],
        _ => &[6, 17, 132],
    };
    let any = |f: &dyn Fn(u32) -> Expr| {
        let mut e = f(protos[0]);
        for &p in &protos[1..] {
            e = or(e, f(p));
        }
        e
    };
    let v4 = and(and(any(&|p| ip_proto(p)), first_fragment()), dirs(false));
    let v6 = and(any(&|p| ip6_next(p)), dirs(true));
    match q.proto {
        Some(Proto::Ip) => v4,
        Some(Proto::Ip6) => v6,
        _ => or(v4, v6),
    }
}

/// Address `addr`/`bits` as source or destination.
fn address(q: &Quals, addr: IpAddr, bits: u32) -> Result<Expr, String> {
    let words: Vec<u32> = match addr {
        IpAddr::V4(a) => vec![u32::from(a)],
        IpAddr::V6(a) => a.octets().chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect(),
    };
    let (etype, src, dst) = match addr {
        IpAddr::V4(_) => (ETHERTYPE_IP, ETH + 12, ETH + 16),
        IpAddr::V6(_) => (ETHERTYPE_IP6, ETH + 8, ETH + 24),
    };
    match (q.proto, addr) {
        (Some(Proto::Ip6), IpAddr::V4(_)) | (Some(Proto::Ip), IpAddr::V6(_)) => {
            return Err(format!("{addr} is not an address of {}", if addr.is_ipv4() { "ip6" } else { "ip" }))
        }
        (Some(Proto::Tcp | Proto::Udp), _) => return Err("'tcp host' / 'udp host' is not supported: write 'tcp and host ...'".into()),
        _ => {}
    }
    let at = |base: u32| {
        let mut e = Expr::True;
        let mut left = bits;
        for (i, &w) in words.iter().enumerate() {
            if left == 0 {
                break;
            }
            let n = left.min(32);
            left -= n;
            let mask = if n == 32 { u32::MAX } else { !(u32::MAX >> n) };
            let mut loads = vec![ins(LD_W_ABS, base + 4 * i as u32)];
            if mask != u32::MAX {
                loads.push(ins(ALU_AND_K, mask));
            }
            e = and(e, test(loads, JMP_JEQ_K, w & mask));
        }
        e
    };
    let ends = match q.dir {
        Dir::Src => at(src),
        Dir::Dst => at(dst),
        Dir::Either => or(at(src), at(dst)),
    };
    Ok(and(ethertype(etype), ends))
}

/// `ADDR` or `ADDR/BITS` (net), checked: no bits set beyond the prefix.
fn parse_net(v: &str, kind: Kind) -> Result<(IpAddr, u32), String> {
    let (a, bits) = match v.split_once('/') {
        Some((a, b)) if kind == Kind::Net => (a, Some(b)),
        Some(_) => return Err(format!("'{v}': a host is one address (use 'net' for a prefix)")),
        None => (v, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| {
        if a.chars().any(|c| c.is_ascii_alphabetic()) && !a.contains(':') {
            format!("'{a}': host names are not resolved, give an IPv4 or IPv6 address")
        } else {
            format!("'{a}' is not an IPv4 or IPv6 address")
        }
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => b.parse::<u32>().ok().filter(|&b| b <= max).ok_or_else(|| format!("'{v}': bad prefix length"))?,
    };
    let host_bits_set = match addr {
        IpAddr::V4(a) => bits < 32 && u32::from(a) & (u32::MAX >> bits) != 0,
        IpAddr::V6(a) => bits < 128 && u128::from(a) & (u128::MAX >> bits) != 0,
    };
    if host_bits_set {
        return Err(format!("'{v}': non-network bits set in the address"));
    }
    Ok((addr, bits))
}

fn parse_port(v: &str) -> Result<u32, String> {
    v.parse::<u16>().map(u32::from).map_err(|_| format!("'{v}' is not a port number (0 to 65535; service names are not resolved)"))
}

fn primitive(q: &Quals, value: &str) -> Result<Expr, String> {
    match q.kind {
        Kind::Host | Kind::Net => {
            let (addr, bits) = parse_net(value, q.kind)?;
            address(q, addr, bits)
        }
        Kind::Port => {
            let p = parse_port(value)?;
            Ok(ports(q, p, p))
        }
        Kind::PortRange => {
            let (a, b) = value.split_once('-').ok_or_else(|| format!("'{value}': expected a port range A-B"))?;
            let (a, b) = (parse_port(a)?, parse_port(b)?);
            Ok(ports(q, a.min(b), a.max(b)))
        }
    }
}

fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let op = match c {
            '(' | ')' => Some(c.to_string()),
            '!' => Some("!".to_string()),
            '&' if next == Some('&') => Some("&&".to_string()),
            '|' if next == Some('|') => Some("||".to_string()),
            _ => None,
        };
        if let Some(op) = op {
            if op.len() == 2 {
                chars.next();
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            out.push(op);
        } else if c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Recursive descent over the tokens; `last` the qualifiers a bare value inherits.
struct Parser {
    toks: Vec<String>,
    pos: usize,
    last: Option<Quals>,
    depth: usize,
}

/// Nesting allowed (parentheses and `not`): bounded recursion.
const MAX_DEPTH: usize = 64;
/// Tokens at most (a filter is a command-line argument).
const MAX_TOKENS: usize = 1024;

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut e = self.and_expr()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.pos += 1;
            e = or(e, self.and_expr()?);
        }
        Ok(e)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while matches!(self.peek(), Some("and" | "&&")) {
            self.pos += 1;
            e = and(e, self.unary()?);
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        let r = match self.peek() {
            Some("not" | "!") => {
                self.pos += 1;
                self.unary().map(not)
            }
            Some("(") => {
                self.pos += 1;
                let e = self.or_expr()?;
                match self.next().as_deref() {
                    Some(")") => Ok(e),
                    Some(t) => Err(format!("expected ')' before '{t}'")),
                    None => Err("missing ')'".into()),
                }
            }
            _ => self.primitive(),
        };
        self.depth -= 1;
        r
    }

    fn primitive(&mut self) -> Result<Expr, String> {
        let mut proto = None;
        let mut dir = None;
        let mut kind = None;
        if let Some(p) = self.peek().and_then(|t| match t {
            "ip" => Some(Proto::Ip),
            "ip6" => Some(Proto::Ip6),
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }) {
            proto = Some(p);
            self.pos += 1;
        }
        if let Some(d) = self.peek().and_then(|t| match t {
            "src" => Some(Dir::Src),
            "dst" => Some(Dir::Dst),
            _ => None,
        }) {
            dir = Some(d);
            self.pos += 1;
        }
        if let Some(k) = self.peek().and_then(|t| match t {
            "host" => Some(Kind::Host),
            "net" => Some(Kind::Net),
            "port" => Some(Kind::Port),
            "portrange" => Some(Kind::PortRange),
            _ => None,
        }) {
            kind = Some(k);
            self.pos += 1;
        }
        let qualified = proto.is_some() || dir.is_some() || kind.is_some();
        let at_value_end = matches!(self.peek(), None | Some("and" | "&&" | "or" | "||" | ")"));
        if let (Some(p), None, None, true) = (proto, dir, kind, at_value_end) {
            self.last = None;
            return Ok(match p {
                Proto::Ip => ethertype(ETHERTYPE_IP),
                Proto::Ip6 => ethertype(ETHERTYPE_IP6),
                Proto::Tcp => transport(6),
                Proto::Udp => transport(17),
            });
        }
        let value = match self.next() {
            Some(v) if !matches!(v.as_str(), "and" | "&&" | "or" | "||" | "(" | ")" | "not" | "!") => v,
            Some(v) => return Err(format!("unexpected '{v}'")),
            None => return Err("the expression ends early".into()),
        };
        if let Some(k) = ["less", "greater", "ether", "arp", "rarp", "vlan", "icmp", "icmp6", "proto", "sctp", "broadcast", "multicast", "gateway", "len"]
            .iter()
            .find(|k| **k == value)
        {
            return Err(format!("'{k}' is not supported (host, net, port, portrange, src, dst, ip, ip6, tcp, udp, and, or, not)"));
        }
        let q = if qualified {
            Quals { proto, dir: dir.unwrap_or(Dir::Either), kind: kind.unwrap_or(Kind::Host) }
        } else {
            self.last.unwrap_or(Quals { proto: None, dir: Dir::Either, kind: Kind::Host })
        };
        if !qualified && self.last.is_none() && value.parse::<IpAddr>().is_err() {
            return Err(format!("unknown word '{value}'"));
        }
        self.last = Some(q);
        primitive(&q, &value)
    }
}

/// A compiled filter: instructions ready for SO_ATTACH_FILTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(pub Vec<Insn>);

/// Instructions at most (the kernel's BPF_MAXINSNS is 4096).
const MAX_INSNS: usize = 4096;

/// Compiles `expr` (empty: every packet); packets that match are kept up to
/// `snaplen` bytes. With `drop_outgoing`, packets the host sends are not
/// kept (on `lo` every packet is seen twice, sent and received: the
/// received copy is kept, as libpcap does).
pub fn compile(expr: &str, snaplen: u32, drop_outgoing: bool) -> Result<Program, String> {
    let toks = tokens(expr);
    if toks.len() > MAX_TOKENS {
        return Err("the filter expression is too long".into());
    }
    let mut e = if toks.is_empty() {
        Expr::True
    } else {
        let mut p = Parser { toks, pos: 0, last: None, depth: 0 };
        let e = p.or_expr()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected '{t}'"));
        }
        e
    };
    if drop_outgoing {
        e = and(not(test(vec![ins(LD_W_ABS, AD_PKTTYPE)], JMP_JEQ_K, 4)), e);
    }
    let mut g = Gen { code: Vec::new(), fixups: Vec::new(), labels: vec![None, None] };
    g.gen(&e, ACCEPT, REJECT)?;
    g.place(ACCEPT);
    g.code.push(ins(RET_K, snaplen.max(1)));
    g.place(REJECT);
    g.code.push(ins(RET_K, 0));
    g.resolve()?;
    if g.code.len() > MAX_INSNS {
        return Err("the filter expression is too long".into());
    }
    Ok(Program(g.code))
}

const ACCEPT: usize = 0;
const REJECT: usize = 1;

/// Code generation with forward labels: each test jumps to the label of
/// its true or false continuation.
struct Gen {
    code: Vec<Insn>,
    /// (instruction, label if true, label if false); `usize::MAX`: ja.
    fixups: Vec<(usize, usize, usize)>,
    labels: Vec<Option<usize>>,
}

impl Gen {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }

    fn gen(&mut self, e: &Expr, t: usize, f: usize) -> Result<(), String> {
        if self.code.len() > MAX_INSNS {
            return Err("the filter expression is too long".into());
        }
        match e {
            Expr::True => {
                self.fixups.push((self.code.len(), t, usize::MAX));
                self.code.push(ins(JMP_JA, 0));
            }
            Expr::Test(loads, jump, k) => {
                self.code.extend_from_slice(loads);
                self.fixups.push((self.code.len(), t, f));
                self.code.push(ins(*jump, *k));
            }
            Expr::And(a, b) => {
                let mid = self.label();
                self.gen(a, mid, f)?;
                self.place(mid);
                self.gen(b, t, f)?;
            }
            Expr::Or(a, b) => {
                let mid = self.label();
                self.gen(a, t, mid)?;
                self.place(mid);
                self.gen(b, t, f)?;
            }
            Expr::Not(a) => self.gen(a, f, t)?,
        }
        Ok(())
    }

    /// Jump offsets; a conditional jump further than 255 instructions goes
    /// through an unconditional one inserted... which classic BPF makes
    /// awkward, so such filters are refused (they need hundreds of terms).
    fn resolve(&mut self) -> Result<(), String> {
        for &(at, t, f) in &self.fixups {
            let target = |l: usize| -> Result<u32, String> {
                let to = self.labels[l].ok_or("internal error: unplaced label")?;
                to.checked_sub(at + 1).map(|d| d as u32).ok_or_else(|| "internal error: a backward jump".to_string())
            };
            if f == usize::MAX {
                self.code[at].k = target(t)?;
            } else {
                let (jt, jf) = (target(t)?, target(f)?);
                if jt > 255 || jf > 255 {
                    return Err("the filter expression is too long (a jump over more than 255 instructions)".into());
                }
                self.code[at].jt = jt as u8;
                self.code[at].jf = jf as u8;
            }
        }
        Ok(())
    }
}

/// Runs `prog` over a packet as the kernel would (for tests and fuzzing):
/// the bytes kept (0: dropped). `outgoing`: the packet type ancillary value.
pub fn run(prog: &[Insn], pkt: &[u8], outgoing: bool) -> u32 {
    let (mut a, mut x): (u32, u32) = (0, 0);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |off: u32, size: usize| -> Option<u32> {
        if off == AD_PKTTYPE {
            return Some(if outgoing { 4 } else { 0 });
        }
        let off = off as usize;
        let b = pkt.get(off..off.checked_add(size)?)?;
        Some(b.iter().fold(0u32, |v, &c| (v << 8) | c as u32))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let size = match i.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        match i.code {
            0x20 | 0x28 | 0x30 => match load(i.k, size) {
                Some(v) => a = v,
                None => return 0,
            },
            0x40 | 0x48 | 0x50 => match load(x.wrapping_add(i.k), size) {
                Some(v) => a = v,
                None => return 0,
            },
            0xb1 => match load(i.k, 1) {
                Some(v) => x = (v & 0xf) * 4,
                None => return 0,
            },
            0x00 => a = i.k,
            0x01 => x = i.k,
            0x80 => a = pkt.len() as u32,
            0x81 => x = pkt.len() as u32,
            0x60 => a = mem.get(i.k as usize).copied().unwrap_or(0),
            0x61 => x = mem.get(i.k as usize).copied().unwrap_or(0),
            0x02 => {
                if let Some(m) = mem.get_mut(i.k as usize) {
                    *m = a
                }
            }
            0x03 => {
                if let Some(m) = mem.get_mut(i.k as usize) {
                    *m = x
                }
            }
            c if c & 0x07 == 0x04 => {
                let v = if c & 0x08 != 0 { x } else { i.k };
                a = match c & 0xf0 {
                    0x00 => a.wrapping_add(v),
                    0x10 => a.wrapping_sub(v),
                    0x20 => a.wrapping_mul(v),
                    0x30 if v == 0 => return 0,
                    0x30 => a / v,
                    0x40 => a | v,
                    0x50 => a & v,
                    0x60 => a.checked_shl(v).unwrap_or(0),
                    0x70 => a.checked_shr(v).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 if v == 0 => return 0,
                    0x90 => a % v,
                    0xa0 => a ^ v,
                    _ => return 0,
                };
            }
            0x05 => pc += i.k as usize,
            c if c & 0x07 == 0x05 => {
                let v = if c & 0x08 != 0 { x } else { i.k };
                let t = match c & 0xf0 {
                    0x10 => a == v,
                    0x20 => a > v,
                    0x30 => a >= v,
                    0x40 => a & v != 0,
                    _ => return 0,
                };
                pc += if t { i.jt } else { i.jf } as usize;
            }
            0x06 => return i.k.min(pkt.len() as u32),
            0x16 => return a.min(pkt.len() as u32),
            0x07 => x = a,
            0x87 => a = x,
            _ => return 0,
        }
    }
    0
}

/// `tcpdump -ddd` output (count line, then "code jt jf k" lines) as instructions.
pub fn parse_ddd(text: &str) -> Option<Vec<Insn>> {
    let mut lines = text.lines();
    let n: usize = lines.next()?.trim().parse().ok()?;
    let v: Option<Vec<Insn>> = lines
        .take(n)
        .map(|l| {
            let f: Vec<u32> = l.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
            (f.len() == 4).then(|| Insn { code: f[0] as u16, jt: f[1] as u8, jf: f[2] as u8, k: f[3] })
        })
        .collect();
    v.filter(|v| v.len() == n)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 or IPv6 packet of protocol `proto`
    /// from `src`:`sport` to `dst`:`dport`; `frag_off`: IPv4 fragment offset.
    pub fn frame(src: &str, dst: &str, proto: u8, sport: u16, dport: u16, frag_off: u16) -> Vec<u8> {
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let mut f = vec![0u8; 12];
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sport.to_be_bytes());
        l4.extend_from_slice(&dport.to_be_bytes());
        l4.extend_from_slice(&[0u8; 16]);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let mut h = vec![0x45, 0, 0, 0, 0, 0];
                h.extend_from_slice(&frag_off.to_be_bytes());
                h.extend_from_slice(&[64, proto, 0, 0]);
                h.extend_from_slice(&s.octets());
                h.extend_from_slice(&d.octets());
                f.extend(h);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, proto, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => panic!("mixed families"),
        }
        f.extend(l4);
        f
    }

    fn keeps(expr: &str, pkt: &[u8]) -> bool {
        run(&compile(expr, 65535, false).unwrap().0, pkt, false) > 0
    }

    #[test]
    fn primitives_match_as_tcpdump() {
        let a = frame("10.0.0.1", "10.0.0.2", 6, 40000, 443, 0);
        let u = frame("10.0.0.1", "192.168.1.9", 17, 53, 5353, 0);
        let six = frame("fd00::1", "fd00::2", 6, 40000, 8443, 0);
        let frag = frame("10.0.0.1", "10.0.0.2", 6, 40000, 443, 100);
        for (expr, pkt, want) in [
            ("", &a, true),
            ("tcp", &a, true),
            ("udp", &a, false),
            ("ip", &a, true),
            ("ip6", &a, false),
            ("ip6", &six, true),
            ("tcp port 443", &a, true),
            ("tcp port 443", &u, false),
            ("port 443", &frag, false),
            ("host 10.0.0.2", &frag, true),
            ("udp port 53", &u, true),
            ("src port 53", &u, true),
            ("dst port 53", &u, false),
            ("portrange 400-500", &a, true),
            ("portrange 444-500", &a, false),
            ("tcp portrange 8000-9000", &six, true),
            ("host 10.0.0.1", &a, true),
            ("src host 10.0.0.2", &a, false),
            ("dst host 10.0.0.2", &a, true),
            ("host 10.0.0.3 or 10.0.0.2", &a, true),
            ("net 10.0.0.0/8", &a, true),
            ("net 192.168.0.0/16", &u, true),
            ("dst net 192.168.0.0/16", &a, false),
            ("net fd00::/8", &six, true),
            ("host fd00::2", &six, true),
            ("host fd00::3", &six, false),
            ("src net fd00::/127", &six, true),
            ("ip6 and tcp and port 8443", &six, true),
            ("not tcp", &a, false),
            ("! tcp && !udp", &u, false),
            ("tcp and (port 80 or port 443)", &a, true),
            ("tcp and not (port 80 or port 443)", &a, false),
            ("udp || port 443", &a, true),
            ("10.0.0.1", &a, true),
            ("ip host 10.0.0.1", &a, true),
        ] {
            assert_eq!(keeps(expr, pkt), want, "{expr}");
        }
        // Truncated packets never match a test that reads past their end.
        assert!(!keeps("tcp port 443", &a[..30]));
    }

    #[test]
    fn bad_expressions_are_one_line_errors() {
        for e in ["port", "port x", "host example.com", "net 10.0.0.1/8", "tcp port 443 and", "(tcp", "tcp)", "ether host 1", "foo", "port 70000", "host 10.0.0.1/24", "less 100", "ip6 host 1.2.3.4"] {
            let err = compile(e, 100, false).unwrap_err();
            assert!(!err.contains('\n') && !err.is_empty(), "{e}: {err}");
        }
        assert!(compile(&"(".repeat(100), 100, false).is_err());
        let long = vec!["port 1"; 400].join(" or ");
        assert!(compile(&long, 100, false).is_err());
    }

    #[test]
    fn outgoing_copies_dropped_on_request() {
        let a = frame("10.0.0.1", "10.0.0.2", 6, 40000, 443, 0);
        let p = compile("tcp", 100, true).unwrap();
        assert_eq!(run(&p.0, &a, false), 100.min(a.len() as u32));
        assert_eq!(run(&p.0, &a, true), 0);
        // The snap length caps what is kept.
        assert_eq!(run(&compile("", 20, false).unwrap().0, &a, false), 20);
    }

    /// Random expressions from the language's words: each compiles to a
    /// valid program or is an error, never a panic; programs run over
    /// random cuts of real frames.
    #[test]
    fn random_expressions_compile_or_fail_cleanly() {
        let words = [
            "tcp", "udp", "ip", "ip6", "host", "net", "port", "portrange", "src", "dst", "and", "or", "not", "&&", "||", "!", "(", ")",
            "10.0.0.1", "fd00::1", "10.0.0.0/8", "fd00::/16", "443", "1-1000", "x", "",
        ];
        let frames = [frame("10.0.0.1", "10.0.0.2", 6, 40000, 443, 0), frame("fd00::1", "fd00::2", 17, 53, 53, 0)];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ok = 0;
        for _ in 0..20_000 {
            let n = 1 + next() % 9;
            let expr: Vec<&str> = (0..n).map(|_| words[(next() % words.len() as u64) as usize]).collect();
            let expr = expr.join(" ");
            let Ok(p) = compile(&expr, 1000, next() % 2 == 0) else { continue };
            ok += 1;
            let len = p.0.len();
            for (i, ins) in p.0.iter().enumerate() {
                if ins.code & 0x07 == 0x05 {
                    let far = if ins.code == JMP_JA { ins.k as usize } else { ins.jt.max(ins.jf) as usize };
                    assert!(i + 1 + far < len, "{expr}: jump out at {i}");
                }
            }
            for f in &frames {
                let cut = (next() as usize) % (f.len() + 1);
                let _ = run(&p.0, &f[..cut], false);
            }
        }
        assert!(ok > 300, "only {ok} expressions compiled");
    }

    #[test]
    fn ddd_parsed() {
        let p = parse_ddd("2\n6 0 0 262144\n6 0 0 0\n").unwrap();
        assert_eq!(p[0], Insn { code: 6, jt: 0, jf: 0, k: 262144 });
    }
}
