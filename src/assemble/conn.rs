//! Connection tracking and message assembly (SPEC §4).
//!
//! Calls are grouped by connection — (pid, SSL*) — and direction. The first
//! bytes decide the protocol: the HTTP/2 client preface, an HTTP/1.x
//! request or status line, or anything else. HTTP/1.x messages are emitted
//! as soon as they are complete (several per read when pipelined, one
//! across many reads when large); HTTP/2 frames as a batch per read, decoded
//! with per-direction HPACK state; anything else when the other side
//! speaks, after the idle time, or at the end. Nothing waits longer than the
//! idle time, except an HTTP/2 frame cut in two (its rest is due at once).
//!
//! A connection ends with SSL_free, or after `conn_timeout` of silence; at
//! most `max_conns` are tracked (the least recently active one goes, found
//! in O(log n)). What connections hold is counted in bytes: a connection
//! holding more than `conn_share`, or all of them more than `budget`, gives
//! out what it holds at once (the largest first) and drops its decoding
//! state — "shed", counted. Every scan is incremental: a byte is looked at a
//! bounded number of times however the traffic is split.

use std::collections::{BTreeSet, VecDeque};

use super::http1::{self, Framer};
use super::http2;
use super::inflate::coding_of;
use crate::fasthash::{FastMap, FastSet};
use crate::event::{
    Call, Direction, Message, Meta, Role, View, HTTP1_REQUEST, HTTP1_RESPONSE, HTTP2_REQUEST, HTTP2_RESPONSE, UNKNOWN,
};

#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A message that stops growing for this long is emitted as it is.
    pub idle_ns: u64,
    /// A message growing past this is emitted in parts.
    pub max_message: usize,
    /// A connection silent this long is forgotten.
    pub conn_timeout_ns: u64,
    pub max_conns: usize,
    /// Decode bodies for display: HTTP/1 de-chunked and decompressed,
    /// HTTP/2 DATA decompressed (only text renderings show them).
    pub decode_bodies: bool,
    /// Bytes all connections may hold together (their share of ecapture's
    /// memory budget), and one connection alone.
    pub budget: usize,
    pub conn_share: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle_ns: 100_000_000,
            max_message: 4 << 20,
            conn_timeout_ns: 120_000_000_000,
            max_conns: 65536,
            decode_bodies: true,
            budget: 32 << 20,
            conn_share: 8 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Detecting,
    Http1,
    Http2,
    Raw,
}

/// The time and thread of the first byte still pending on a side, and
/// when (assembler clock) it arrived: nothing waits past the idle time.
#[derive(Debug, Clone, Copy)]
struct First {
    timestamp_ns: i64,
    tid: u32,
    arrived_ns: u64,
}

#[derive(Default)]
struct Side {
    first: Option<First>,
    last_data_ns: u64,
    raw: Vec<u8>,
    http1: Framer,
    h2: Option<http2::Direction>,
    /// Detection's look at the first line, kept across calls.
    scan: LineScan,
}

impl Side {
    fn pending(&self) -> usize {
        self.raw.len() + self.http1.buffered() + self.h2.as_ref().map_or(0, |h| h.buffered())
    }

    /// Bytes held: pending data and decoder state.
    fn footprint(&self) -> usize {
        self.raw.len() + self.http1.buffered() + self.h2.as_ref().map_or(0, |h| h.footprint())
    }
}

/// How far detection has looked into a side's first line: bytes looked at,
/// whether they held a line end or a CR inside the line, and the verdict
/// once it is final.
#[derive(Default)]
struct LineScan {
    upto: usize,
    nl: bool,
    cr: bool,
    done: Option<Verdict>,
}

struct Conn {
    proto: Proto,
    /// The latest call's metadata: fd, tuple, role, comm...
    meta: Meta,
    sides: [Side; 2],
    /// Methods of requests whose responses have not come yet (HEAD has no body).
    methods: VecDeque<Vec<u8>>,
    /// The local data direction that carries client-to-server bytes.
    c2s: Option<Direction>,
    last_activity_ns: u64,
    /// Its time in the assembler's LRU index (updated a millisecond at a time).
    lru_ns: u64,
    /// Bytes held when last counted.
    footprint: usize,
}

/// A size class: what the largest-first index keeps (it changes when a
/// connection's holding doubles, not at every call).
fn size_class(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}

/// What the first bytes of a side say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Wait,
    Http2,
    Http1 { request: bool },
    Other,
}

/// Bytes of unknown data held while waiting for the other side to speak.
const MAX_UNKNOWN_WAIT: usize = 64 << 10;

fn idx(d: Direction) -> usize {
    match d {
        Direction::Read => 0,
        Direction::Write => 1,
    }
}

fn other(d: Direction) -> Direction {
    d.other()
}

/// The longest first line detection waits for, its line end included
/// (`detect::message_type` looks no further).
const MAX_FIRST_LINE: usize = 8192;

/// Is this the start of an HTTP/1.x request or status line? None: not sure
/// yet. Only bytes after `scan.upto` are looked at for line ends.
fn looks_http1(buf: &[u8], scan: &mut LineScan) -> Option<bool> {
    let limit = buf.len().min(MAX_FIRST_LINE);
    if !scan.nl && scan.upto < limit {
        let new = &buf[scan.upto..limit];
        scan.nl = new.contains(&b'\n');
        // A CR inside the line: one followed by something. The last byte
        // may be the line end's CR (a read can end between CR and LF).
        scan.cr |= buf[scan.upto.saturating_sub(1)..limit - 1].contains(&b'\r');
        scan.upto = limit;
    }
    if scan.nl {
        return Some(super::detect::message_type(buf) != UNKNOWN);
    }
    if buf.len() > MAX_FIRST_LINE {
        return Some(false);
    }
    // A method token (upper case) then a space, or the start of "HTTP/1.".
    let token = buf.iter().take(17).take_while(|b| b.is_ascii_uppercase() || **b == b'-' || **b == b'_').count();
    let plausible = (token == buf.len() && token <= 16)
        || (token > 0 && token <= 16 && buf.get(token) == Some(&b' ') && !scan.cr)
        || (buf.len() <= 7 && b"HTTP/1.".starts_with(buf))
        || (buf.starts_with(b"HTTP/1.") && buf.len() < 32);
    if plausible {
        None // wait for the end of the line
    } else {
        Some(false)
    }
}

/// What the first bytes of `s` say; a final verdict is kept.
fn verdict(s: &mut Side) -> Verdict {
    if let Some(v) = s.scan.done {
        return v;
    }
    let buf = &s.raw;
    let v = if buf.is_empty() {
        Verdict::Wait
    } else if buf.starts_with(http2::PREFACE) {
        Verdict::Http2
    } else if http2::PREFACE.starts_with(buf) {
        Verdict::Wait
    } else {
        match looks_http1(buf, &mut s.scan) {
            None => Verdict::Wait,
            Some(true) => Verdict::Http1 { request: !buf.starts_with(b"HTTP/") },
            Some(false) => Verdict::Other,
        }
    };
    if v != Verdict::Wait {
        s.scan.done = Some(v);
    }
    v
}

type Key = (u32, u64);

/// What shedding gave out early.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    /// Times a connection had to give out what it held.
    pub times: u64,
    /// Bytes it held then (given out at once, decoding state dropped).
    pub bytes: u64,
}

pub struct Assembler {
    conns: FastMap<Key, Conn>,
    cfg: Config,
    /// Connections by last activity (to the millisecond): the least recent
    /// goes at the cap, and silent ones are found without a scan.
    lru: BTreeSet<(u64, Key)>,
    /// Connections by size class of what they hold: the largest (to within
    /// a factor of two) is shed over the budget.
    by_size: BTreeSet<(u32, Key)>,
    /// Connections holding data, the only ones a tick looks at.
    pending: FastSet<Key>,
    /// Bytes all connections hold.
    held: usize,
    shed: Shed,
}

impl Assembler {
    pub fn new(cfg: Config) -> Assembler {
        Assembler {
            conns: FastMap::default(),
            cfg,
            lru: BTreeSet::new(),
            by_size: BTreeSet::new(),
            pending: FastSet::default(),
            held: 0,
            shed: Shed::default(),
        }
    }

    pub fn tracked(&self) -> usize {
        self.conns.len()
    }

    /// Bytes the connections hold.
    pub fn held(&self) -> usize {
        self.held
    }

    pub fn shed(&self) -> Shed {
        self.shed
    }

    /// One captured call; returns the messages it completes.
    pub fn push(&mut self, call: Call, now_ns: u64, out: &mut Vec<Message>) {
        let key = (call.meta.pid, call.conn);
        // The library's object moved to another socket (OpenSSL's SSL_clear
        // then SSL_set_fd): what it holds was the old connection's.
        if let (Some(conn), Some(now)) = (self.conns.get(&key), call.meta.endpoints) {
            if conn.meta.endpoints.is_some_and(|before| before != now) {
                self.close_key(key, out);
            }
        }
        if !self.conns.contains_key(&key) && self.conns.len() >= self.cfg.max_conns {
            if let Some(&(_, oldest)) = self.lru.iter().next() {
                self.close_key(oldest, out);
            }
        }
        let cfg = self.cfg;
        let conn = self.conns.entry(key).or_insert_with(|| Conn {
            proto: Proto::Detecting,
            meta: call.meta,
            sides: Default::default(),
            methods: VecDeque::new(),
            c2s: None,
            last_activity_ns: now_ns,
            lru_ns: u64::MAX,
            footprint: 0,
        });
        if conn.lru_ns == u64::MAX || now_ns.saturating_sub(conn.lru_ns) >= 1_000_000 {
            self.lru.remove(&(conn.lru_ns, key));
            self.lru.insert((now_ns, key));
            conn.lru_ns = now_ns;
        }
        conn.last_activity_ns = now_ns;
        conn.take_call(call, now_ns, &cfg, out);
        self.account(key);
        self.enforce(key, out);
    }

    /// Counts what connection `key` holds now, in every index.
    fn account(&mut self, key: Key) {
        let Some(c) = self.conns.get_mut(&key) else { return };
        let now = c.sides[0].footprint() + c.sides[1].footprint();
        if now != c.footprint {
            let (was, is) = (size_class(c.footprint), size_class(now));
            if was != is {
                self.by_size.remove(&(was, key));
                if now > 0 {
                    self.by_size.insert((is, key));
                }
            }
            self.held = self.held - c.footprint + now;
            c.footprint = now;
        }
        if c.sides.iter().any(|s| s.pending() > 0) {
            self.pending.insert(key);
        } else {
            self.pending.remove(&key);
        }
    }

    /// Keeps connection `key` within its share and all within the budget:
    /// over them, what a connection holds goes out at once (the largest
    /// connection first).
    fn enforce(&mut self, key: Key, out: &mut Vec<Message>) {
        if self.conns.get(&key).is_some_and(|c| c.footprint > self.cfg.conn_share) {
            self.shed_key(key, out);
        }
        while self.held > self.cfg.budget {
            let Some(&(_, largest)) = self.by_size.iter().next_back() else { break };
            self.shed_key(largest, out);
        }
    }

    fn shed_key(&mut self, key: Key, out: &mut Vec<Message>) {
        let decode = self.cfg.decode_bodies;
        let Some(c) = self.conns.get_mut(&key) else { return };
        let before = c.footprint;
        c.shed(decode, out);
        self.shed.times += 1;
        self.shed.bytes += before as u64;
        self.account(key);
        if self.conns.get(&key).is_some_and(|c| c.footprint >= before && before > 0) {
            // Nothing could be freed (cannot happen: shedding empties the
            // connection); forget it rather than loop.
            self.close_key(key, out);
        }
    }

    /// The library freed connection `conn` of process `pid`: what is
    /// pending comes out, the connection is forgotten.
    pub fn close(&mut self, pid: u32, conn: u64, out: &mut Vec<Message>) {
        self.close_key((pid, conn), out);
    }

    fn close_key(&mut self, key: Key, out: &mut Vec<Message>) {
        if let Some(mut c) = self.conns.remove(&key) {
            self.lru.remove(&(c.lru_ns, key));
            self.by_size.remove(&(size_class(c.footprint), key));
            self.pending.remove(&key);
            self.held -= c.footprint;
            c.flush_side(Direction::Read, true, self.cfg.decode_bodies, out);
            c.flush_side(Direction::Write, true, self.cfg.decode_bodies, out);
        }
    }

    /// Data waits for the idle time (`tick` has work soon).
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// When (capture time, ns) `tick` forgets the most silent connection;
    /// None when none is known.
    pub fn forget_at(&self) -> Option<u64> {
        self.lru.iter().next().map(|&(last, _)| last.saturating_add(self.cfg.conn_timeout_ns))
    }

    /// Emits what has waited the idle time; forgets silent connections.
    pub fn tick(&mut self, now_ns: u64, out: &mut Vec<Message>) {
        let cfg = self.cfg;
        let keys: Vec<Key> = self.pending.iter().copied().collect();
        for key in keys {
            let Some(c) = self.conns.get_mut(&key) else { continue };
            for d in [Direction::Read, Direction::Write] {
                let s = &c.sides[idx(d)];
                // Quiet for the idle time, or the oldest pending byte that old
                // (a steady stream must not be held back indefinitely).
                let oldest = s.first.map_or(s.last_data_ns, |f| f.arrived_ns);
                let idle = now_ns.saturating_sub(s.last_data_ns.min(oldest)) >= cfg.idle_ns;
                // An HTTP/2 frame cut in two waits for its rest (framing
                // depends on it); anything else waits no longer than the idle time.
                let waits = c.proto == Proto::Http2 && s.raw.is_empty();
                if idle && s.pending() > 0 && !waits {
                    c.flush_side(d, false, cfg.decode_bodies, out);
                }
            }
            self.account(key);
        }
        while let Some(&(last, key)) = self.lru.iter().next() {
            if now_ns.saturating_sub(last) < cfg.conn_timeout_ns {
                break;
            }
            self.close_key(key, out);
        }
    }

    /// At shutdown: everything pending comes out.
    pub fn flush(&mut self, out: &mut Vec<Message>) {
        let keys: Vec<Key> = self.conns.keys().copied().collect();
        for k in keys {
            self.close_key(k, out);
        }
    }
}

impl Conn {
    /// One call of this connection: its bytes to the side's decoder, the
    /// messages they complete to `out`.
    fn take_call(&mut self, call: Call, now_ns: u64, cfg: &Config, out: &mut Vec<Message>) {
        // The latest call knows best (an fd learnt late, a tuple resolved).
        let role = call.meta.role.or(self.meta.role);
        let endpoints = call.meta.endpoints.or(self.meta.endpoints);
        self.meta = Meta { role, endpoints, ..call.meta };
        if self.c2s.is_none() {
            self.c2s = role.map(|r| if r == Role::Client { Direction::Write } else { Direction::Read });
        }
        let d = call.meta.direction;
        let (timestamp_ns, tid) = (call.meta.timestamp_ns, call.meta.tid);
        if !call.missing.is_empty() || call.truncated() {
            // The byte stream has a hole: what is pending cannot be framed
            // across it. Give everything out as it is (both sides: the other
            // side's next bytes are raw too, and must not overtake what it
            // holds); the rest is raw.
            self.flush_side(d, true, cfg.decode_bodies, out);
            self.flush_side(other(d), true, cfg.decode_bodies, out);
            self.proto = Proto::Raw;
            out.push(Message::raw(call));
            return;
        }
        let side = &mut self.sides[idx(d)];
        side.first.get_or_insert(First { timestamp_ns, tid, arrived_ns: now_ns });
        side.last_data_ns = now_ns;
        match self.proto {
            Proto::Detecting | Proto::Raw => side.raw.extend_from_slice(&call.payload),
            Proto::Http1 => side.http1.push(&call.payload),
            Proto::Http2 => match side.h2.as_mut() {
                Some(h) => h.push(&call.payload),
                None => side.raw.extend_from_slice(&call.payload),
            },
        }
        if self.proto == Proto::Detecting {
            self.detect(d, cfg.decode_bodies);
            if self.proto != Proto::Detecting {
                // The other side may hold bytes that waited for this decision.
                self.process(other(d), cfg, out);
            }
        }
        self.process(d, cfg, out);
        if self.proto == Proto::Raw {
            // The other side's bytes are a whole message now that this side speaks.
            self.flush_side(other(d), false, cfg.decode_bodies, out);
        }
        let (proto, first) = (self.proto, First { timestamp_ns, tid, arrived_ns: now_ns });
        let side = &mut self.sides[idx(d)];
        if side.pending() > 0 && proto != Proto::Raw {
            side.first.get_or_insert(first);
        }
    }

    /// Over its share or the budget: everything held goes out now, and the
    /// decoding state (HPACK tables, decompressors) is dropped; the rest of
    /// the connection is passed on as it is.
    fn shed(&mut self, decode_bodies: bool, out: &mut Vec<Message>) {
        for d in [Direction::Read, Direction::Write] {
            self.flush_side(d, true, decode_bodies, out);
            let s = &mut self.sides[idx(d)];
            s.h2 = None;
            s.http1 = Framer::default();
            s.raw = Vec::new();
        }
        self.proto = Proto::Raw;
    }

    /// Decides the protocol from the first bytes of either side. A side
    /// that shows nothing known (an HTTP/2 server's SETTINGS, sent before
    /// it reads the client's preface) waits for the other side to speak.
    fn detect(&mut self, d: Direction, decode_bodies: bool) {
        let mine = verdict(&mut self.sides[idx(d)]);
        let theirs = verdict(&mut self.sides[idx(other(d))]);
        let (v, side) = match (mine, theirs) {
            (Verdict::Wait, _) => return,
            (Verdict::Other, Verdict::Http2 | Verdict::Http1 { .. }) => (theirs, other(d)),
            (Verdict::Other, Verdict::Other) => (Verdict::Other, d),
            (Verdict::Other, Verdict::Wait) => {
                if self.sides[idx(d)].raw.len() > MAX_UNKNOWN_WAIT {
                    (Verdict::Other, d)
                } else {
                    return;
                }
            }
            (v, _) => (v, d),
        };
        match v {
            Verdict::Http2 => {
                self.proto = Proto::Http2;
                self.c2s = Some(side);
            }
            Verdict::Http1 { request } => {
                self.proto = Proto::Http1;
                if self.c2s.is_none() {
                    self.c2s = Some(if request { side } else { other(side) });
                }
            }
            _ => self.proto = Proto::Raw,
        }
        // Bytes held while detecting go to the chosen decoders.
        let c2s = self.c2s.unwrap_or(d);
        for dir in [Direction::Read, Direction::Write] {
            let s = &mut self.sides[idx(dir)];
            match self.proto {
                Proto::Http1 => {
                    let held = std::mem::take(&mut s.raw);
                    s.http1.push(&held);
                }
                Proto::Http2 => {
                    let mut h = http2::Direction::new(dir == c2s, decode_bodies);
                    h.push(&std::mem::take(&mut s.raw));
                    s.h2 = Some(h);
                }
                _ => {}
            }
        }
    }

    fn message(&self, d: Direction, first: Option<First>, payload: Vec<u8>, kind: u32, view: Option<View>) -> Message {
        let f = first.unwrap_or(First { timestamp_ns: self.meta.timestamp_ns, tid: self.meta.tid, arrived_ns: 0 });
        Message {
            meta: Meta { timestamp_ns: f.timestamp_ns, tid: f.tid, direction: d, ..self.meta },
            kind,
            total_len: payload.len() as u32,
            payload,
            missing: Vec::new(),
            view: view.map(Box::new),
        }
    }

    fn http1_message(&mut self, d: Direction, m: http1::Message, decode_bodies: bool) -> Message {
        let kind = if !m.has_head && m.head.len == 0 && m.head.method.is_empty() && m.head.status == 0 {
            UNKNOWN
        } else if m.head.is_request {
            HTTP1_REQUEST
        } else {
            HTTP1_RESPONSE
        };
        if m.has_head && m.head.is_request {
            self.methods.push_back(m.head.method.clone());
            if self.methods.len() > 1024 {
                self.methods.pop_front();
            }
        }
        let view = (kind != UNKNOWN).then(|| {
            let head_len = if m.has_head { m.head.len.min(m.bytes.len()) } else { 0 };
            let (body, notes) = if decode_bodies {
                let chunked = m.body == http1::Body::Chunked;
                let coding = m.head.field("content-encoding").and_then(coding_of);
                http1::display_body(&m.bytes[head_len..], chunked, coding, m.complete && m.has_head)
            } else {
                (None, Vec::new())
            };
            View::Http1 { head_len, starts: m.has_head, complete: m.complete, body, notes }
        });
        let first = self.sides[idx(d)].first.take();
        self.message(d, first, m.bytes, kind, view)
    }

    /// Emits the complete messages side `d` holds.
    fn process(&mut self, d: Direction, cfg: &Config, out: &mut Vec<Message>) {
        match self.proto {
            Proto::Http1 => loop {
                let Conn { sides, methods, .. } = self;
                let next = sides[idx(d)].http1.next(&mut || methods.pop_front());
                match next {
                    Ok(Some(m)) => {
                        let msg = self.http1_message(d, m, cfg.decode_bodies);
                        out.push(msg);
                    }
                    Ok(None) => {
                        if self.sides[idx(d)].http1.buffered() > cfg.max_message {
                            self.flush_side(d, false, cfg.decode_bodies, out);
                        }
                        break;
                    }
                    Err(http1::FrameError::NotHttp(_)) => {
                        // Not (or no longer) HTTP/1: what is held comes out raw.
                        self.proto = Proto::Raw;
                        for dir in [Direction::Read, Direction::Write] {
                            let s = &mut self.sides[idx(dir)];
                            if let Some(m) = s.http1.take_partial(true) {
                                s.raw.extend_from_slice(&m.bytes);
                            }
                        }
                        break;
                    }
                }
            },
            Proto::Http2 => {
                let kind = if self.c2s == Some(d) { HTTP2_REQUEST } else { HTTP2_RESPONSE };
                let batch = self.sides[idx(d)].h2.as_mut().and_then(|h| h.take_batch());
                // A SETTINGS_HEADER_TABLE_SIZE from this side bounds the
                // other side's HPACK table.
                if let Some(n) = self.sides[idx(d)].h2.as_mut().and_then(|h| h.take_table_size()) {
                    if let Some(h) = self.sides[idx(other(d))].h2.as_mut() {
                        h.set_table_limit(n);
                    }
                }
                if let Some(b) = batch {
                    let first = self.sides[idx(d)].first.take();
                    let view = View::Http2 { preface: b.preface, frames: b.frames };
                    out.push(self.message(d, first, b.bytes, kind, Some(view)));
                }
            }
            Proto::Raw => {
                if self.sides[idx(d)].raw.len() > cfg.max_message {
                    self.flush_side(d, false, cfg.decode_bodies, out);
                }
            }
            Proto::Detecting => {}
        }
    }

    /// Emits what side `d` holds, complete or not; `ended`: the connection is over.
    fn flush_side(&mut self, d: Direction, ended: bool, decode_bodies: bool, out: &mut Vec<Message>) {
        let s = &mut self.sides[idx(d)];
        if let Some(m) = s.http1.take_partial(ended) {
            let msg = self.http1_message(d, m, decode_bodies);
            out.push(msg);
        }
        let s = &mut self.sides[idx(d)];
        let mut raw = std::mem::take(&mut s.raw);
        if ended {
            if let Some(h) = s.h2.as_mut() {
                raw.extend(h.take_rest());
            }
        }
        if !raw.is_empty() {
            let first = s.first.take();
            out.push(self.message(d, first, raw, UNKNOWN, None));
        }
        if self.sides[idx(d)].pending() == 0 {
            self.sides[idx(d)].first = None;
        }
        if ended && self.proto == Proto::Detecting {
            self.proto = Proto::Raw;
        }
        if !ended && self.proto == Proto::Detecting && self.sides[idx(d)].pending() == 0 {
            // Gave up waiting for a protocol to show itself.
            self.proto = Proto::Raw;
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // missing ranges: one range is the common case
mod tests {
    use super::*;
    use crate::event::tests::sample_call;

    const MS: u64 = 1_000_000;

    fn with(ssl: u64, dir: Direction, role: Role, timestamp_ns: Option<i64>, data: &[u8]) -> Call {
        let mut c = sample_call(data);
        c.conn = ssl;
        c.meta.direction = dir;
        c.meta.role = Some(role);
        if let Some(t) = timestamp_ns {
            c.meta.timestamp_ns = t;
        }
        c
    }

    fn call(ssl: u64, dir: Direction, data: &[u8]) -> Call {
        with(ssl, dir, Role::Client, None, data)
    }

    impl Call {
        fn clone_with_ssl(&self, ssl: u64) -> Call {
            Call { conn: ssl, ..self.clone() }
        }
    }

    fn kinds(evs: &[Message]) -> Vec<(u32, String)> {
        evs.iter().map(|e| (e.kind, String::from_utf8_lossy(&e.payload).into_owned())).collect()
    }

    #[test]
    fn http1_keep_alive_pipelined_and_split() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        // Each call at its own time (and thread): a message is stamped with its first byte's.
        let at = |d, t: i64, data: &[u8]| {
            let mut c = with(1, d, Role::Client, Some(1_000 + t), data);
            c.meta.tid = 100 + t as u32;
            c
        };
        a.push(at(Direction::Write, 0, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHo"), 0, &mut out);
        assert_eq!(kinds(&out), vec![(1, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n".into())], "the first at once");
        a.push(at(Direction::Write, 1, b"st: x\r\n\r\n"), MS, &mut out);
        assert_eq!(out[1].kind, 1);
        assert!(out[1].payload.starts_with(b"GET /b"));
        assert_eq!((out[1].meta.timestamp_ns, out[1].meta.tid), (1_000, 100), "/b began in the first call");
        a.push(at(Direction::Read, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"), 2 * MS, &mut out);
        assert_eq!(out.len(), 2, "the response waits for its body");
        a.push(at(Direction::Read, 3, b"cdHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), 3 * MS, &mut out);
        assert_eq!(kinds(&out[2..]), vec![
            (3, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd".into()),
            (3, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into())
        ]);
        assert!(matches!(out[2].view.as_deref(), Some(View::Http1 { complete: true, starts: true, head_len: 38, .. })));
        let stamps: Vec<(i64, u32, Direction)> = out.iter().map(|m| (m.meta.timestamp_ns, m.meta.tid, m.meta.direction)).collect();
        assert_eq!(
            stamps,
            vec![(1_000, 100, Direction::Write), (1_000, 100, Direction::Write), (1_002, 102, Direction::Read), (1_003, 103, Direction::Read)],
            "each message at the time and thread of its first byte"
        );
    }

    #[test]
    fn raw_messages_come_out_when_the_other_side_speaks_or_after_idle() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        a.push(call(2, Direction::Write, b"*1\r\n$4\r\n"), 0, &mut out);
        a.push(call(2, Direction::Write, b"PING\r\n"), MS, &mut out);
        assert!(out.is_empty());
        a.push(call(2, Direction::Read, b"+PONG\r\n"), 2 * MS, &mut out);
        assert_eq!(kinds(&out), vec![(0, "*1\r\n$4\r\nPING\r\n".into())]);
        a.tick(50 * MS, &mut out);
        assert_eq!(out.len(), 1, "not idle long enough");
        a.tick(102 * MS, &mut out);
        assert_eq!(kinds(&out[1..]), vec![(0, "+PONG\r\n".into())]);
        // A steady stream is not held back past the idle time either.
        for t in 0..30 {
            a.push(call(2, Direction::Read, b"+tick\r\n"), (200 + t * 5) * MS, &mut out);
            a.tick((200 + t * 5) * MS, &mut out);
        }
        assert_eq!(out.len(), 3, "one flush when the oldest pending byte is 100 ms old");
        assert_eq!(out[2].payload.len(), 21 * 7);
    }

    #[test]
    fn http1_partials_at_idle_and_close() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        a.push(call(3, Direction::Read, b"HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<html>"), 0, &mut out);
        a.tick(100 * MS, &mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0].view.as_deref(), Some(View::Http1 { complete: false, starts: true, .. })));
        a.push(call(3, Direction::Read, b"</html>"), 150 * MS, &mut out);
        a.close(4242, 3, &mut out);
        assert_eq!(kinds(&out[1..]), vec![(3, "</html>".into())]);
        assert!(matches!(out[1].view.as_deref(), Some(View::Http1 { complete: true, starts: false, head_len: 0, .. })));
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn http2_batches_typed_by_direction() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        let mut flight = http2::PREFACE.to_vec();
        flight.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
        // The preface arrives in two reads on the server side (role: server, reading).
        let srv = |d, data: &[u8], t: i64| with(4, d, Role::Server, Some(t), data);
        a.push(srv(Direction::Read, &flight[..10], 0), 0, &mut out);
        assert!(out.is_empty(), "a preface prefix waits");
        a.push(srv(Direction::Read, &flight[10..], 1), MS, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, 2);
        assert!(matches!(out[0].view.as_deref(), Some(View::Http2 { preface: true, frames }) if frames.len() == 1));
        a.push(srv(Direction::Write, &[0, 0, 0, 4, 1, 0, 0, 0, 0], 2), 2 * MS, &mut out);
        assert_eq!(out[1].kind, 4);
        // Half a frame waits for its rest, even past the idle time.
        a.push(srv(Direction::Write, &[0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2], 3), 3 * MS, &mut out);
        a.tick(500 * MS, &mut out);
        assert_eq!(out.len(), 2);
        a.push(srv(Direction::Write, &[3, 4, 5, 6, 7, 8], 4), 501 * MS, &mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn an_http2_server_speaking_first_waits_for_the_preface() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        let srv = |d, data: &[u8]| with(6, d, Role::Server, None, data);
        // nginx sends its SETTINGS before reading the client's preface.
        a.push(srv(Direction::Write, &[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 128]), 0, &mut out);
        assert!(out.is_empty(), "unknown bytes wait for the other side");
        let mut flight = http2::PREFACE.to_vec();
        flight.extend([0, 0, 0, 4, 1, 0, 0, 0, 0]);
        a.push(srv(Direction::Read, &flight), MS, &mut out);
        let got: Vec<(u32, Direction)> = out.iter().map(|e| (e.kind, e.meta.direction)).collect();
        assert_eq!(got, vec![(4, Direction::Write), (2, Direction::Read)], "both sides decoded as HTTP/2");
        assert!(matches!(out[0].view.as_deref(), Some(View::Http2 { preface: false, frames }) if frames.len() == 1));
        // A server banner that is not HTTP goes out raw after the idle time.
        a.push(srv(Direction::Write, b"* OK IMAP4rev1 ready\r\n").clone_with_ssl(7), 0, &mut out);
        a.tick(100 * MS, &mut out);
        assert_eq!(out.last().unwrap().kind, UNKNOWN);
        assert_eq!(out.last().unwrap().payload, b"* OK IMAP4rev1 ready\r\n");
    }

    #[test]
    fn holes_make_the_connection_raw() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        a.push(call(5, Direction::Write, b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nab"), 0, &mut out);
        let mut broken = call(5, Direction::Write, b"xxxx");
        broken.missing = vec![0..2];
        a.push(broken, MS, &mut out);
        assert_eq!(out.len(), 2, "what was held, then the damaged call as it is");
        assert_eq!(out[1].missing, vec![0..2]);
    }

    #[test]
    fn connections_are_bounded_and_expire() {
        let mut a = Assembler::new(Config { max_conns: 2, ..Config::default() });
        let mut out = Vec::new();
        for ssl in 10..13 {
            a.push(call(ssl, Direction::Write, b"GET / HTTP/1.1\r\n"), ssl * MS, &mut out);
        }
        assert_eq!(a.tracked(), 2);
        assert_eq!(out.len(), 1, "the oldest was closed and its partial head given out");
        a.tick(200_000 * MS, &mut out);
        assert_eq!(a.tracked(), 0, "silent connections are forgotten");
    }

    /// A xorshift generator: the same "random" traffic at every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Mostly arbitrary bytes, with line ends and spaces; the first
        /// bytes of a connection's side often start like HTTP/2, an HTTP/1
        /// request or response.
        fn payload(&mut self, first: bool) -> Vec<u8> {
            let len = (self.next() % 64) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| match self.next() % 11 {
                    0 => b'\r',
                    1 => b'\n',
                    2 => b' ',
                    x => (x.wrapping_mul(0x9e37_79b9) >> 8) as u8,
                })
                .collect();
            let start: &[u8] = match self.next() % 6 {
                _ if !first => b"",
                0 => http2::PREFACE,
                1 => b"GET / HTTP/1.1\r\n",
                2 => b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n",
                3 => b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
                4 => b"\0\0\0\x04\0\0\0\0\0", // an empty HTTP/2 SETTINGS, as a server starts
                _ => b"",
            };
            [start, &data].concat()
        }
    }

    /// Random calls (32 connections of two processes, both directions, some
    /// with holes or truncated, some connections closed) through an
    /// assembler with `cfg`: per connection and direction, the messages'
    /// payloads, concatenated in the order they came out, are the calls'
    /// payloads in the order they went in — nothing lost, duplicated or
    /// reordered, whatever detection, framing, the idle time, the cap on
    /// connections or shedding decided. Returns the assembler.
    fn conserves(cfg: Config, seed: u64) -> Assembler {
        type Stream = (u32, i32, usize);
        let mut rng = Rng(seed);
        let mut a = Assembler::new(cfg);
        let mut out = Vec::new();
        let mut sent: std::collections::HashMap<Stream, Vec<u8>> = Default::default();
        // Sides of connections that have had calls since they (last) began.
        let mut begun = std::collections::HashSet::new();
        for i in 0..20_000u64 {
            let x = rng.next();
            let (conn, pid) = (x % 32, 4242 + (x >> 8) as u32 % 2);
            let d = if (x >> 16) % 2 == 0 { Direction::Read } else { Direction::Write };
            if x >> 24 & 0x7f == 2 {
                a.close(pid, conn, &mut out);
                begun.retain(|&(p, c, _)| (p, c) != (pid, conn));
            }
            let payload = rng.payload(begun.insert((pid, conn, idx(d))));
            let mut c = with(conn, d, if conn % 3 == 0 { Role::Server } else { Role::Client }, Some(i as i64), &payload);
            // A connection is known by its pid and fd in the messages.
            c.meta.pid = pid;
            c.meta.fd = conn as i32;
            match x >> 24 & 0xff {
                0 if c.payload.len() > 4 => c.missing = vec![1..3],
                1 => c.total_len += 100,
                _ => {}
            }
            sent.entry((pid, conn as i32, idx(d))).or_default().extend_from_slice(&c.payload);
            a.push(c, i * MS, &mut out);
            if i % 50 == 0 {
                a.tick(i * MS, &mut out);
            }
        }
        a.flush(&mut out);
        assert_eq!(a.held(), 0, "nothing held after the flush");
        let mut got: std::collections::HashMap<Stream, Vec<u8>> = Default::default();
        let kinds: std::collections::BTreeSet<u32> = out.iter().map(|m| m.kind).collect();
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4], "every kind of message was made");
        for m in &out {
            assert!(m.kind <= HTTP2_RESPONSE, "kind {}", m.kind);
            assert!(m.total_len as usize >= m.payload.len());
            got.entry((m.meta.pid, m.meta.fd, idx(m.meta.direction))).or_default().extend_from_slice(&m.payload);
        }
        assert_eq!(got.len(), sent.len(), "every stream came out");
        for (k, want) in &sent {
            let have = got.get(k).map_or(&[][..], |v| v.as_slice());
            let diverges = want.iter().zip(have).position(|(a, b)| a != b).unwrap_or(want.len().min(have.len()));
            assert!(have == want.as_slice(), "{k:?}: {} bytes in, {} out, first difference at {diverges}", want.len(), have.len());
        }
        a
    }

    #[test]
    fn random_calls_come_out_whole_and_in_order() {
        // 64 connections come and go, 16 at a time.
        let a = conserves(Config { max_conns: 16, ..Config::default() }, 0x2545_f491_4f6c_dd1d);
        assert_eq!(a.shed(), Shed::default(), "nothing over the default budget");
    }

    #[test]
    fn random_calls_come_out_whole_through_shedding() {
        let cfg = Config { budget: 4_000, conn_share: 700, idle_ns: 10_000 * MS, ..Config::default() };
        let a = conserves(cfg, 0x9e37_79b9_7f4a_7c15);
        assert!(a.shed().times > 100, "shed {} times", a.shed().times);
    }

    #[test]
    fn over_the_budget_the_largest_connection_gives_out_what_it_holds() {
        let cfg = Config { budget: 10_000, conn_share: 6_000, ..Config::default() };
        let mut a = Assembler::new(cfg);
        let mut out = Vec::new();
        // An HTTP/1 request whose body never ends holds its bytes.
        let head = b"POST / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n".to_vec();
        for ssl in 1..=3u64 {
            a.push(call(ssl, Direction::Write, &[head.clone(), vec![b'a'; 3_000]].concat()), MS, &mut out);
        }
        assert!(out.is_empty());
        assert_eq!(a.held(), 3 * (head.len() + 3_000));
        // A fourth takes all over 10,000 bytes: the largest gives out at once.
        a.push(call(4, Direction::Write, &[head.clone(), vec![b'b'; 3_500]].concat()), 2 * MS, &mut out);
        assert!(a.held() <= 10_000, "{}", a.held());
        assert_eq!(a.shed().times, 1);
        assert_eq!(out.len(), 1);
        assert!(out[0].payload.ends_with(b"bbbb"), "the largest: the fourth");
        // One connection past its share gives out at once too.
        let before = a.shed().times;
        a.push(call(1, Direction::Write, &vec![b'c'; 6_000]), 3 * MS, &mut out);
        assert_eq!(a.shed().times, before + 1);
        assert!(a.held() <= 10_000);
    }

    #[test]
    fn over_the_budget_the_largest_goes_first_not_the_newest() {
        let mut a = Assembler::new(Config { budget: 10_000, conn_share: 8_000, ..Config::default() });
        let mut out = Vec::new();
        let head = b"POST / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n".to_vec();
        for (ssl, fill, n) in [(1u64, b'a', 5_000), (2, b'b', 1_500), (3, b'c', 1_500), (4, b'd', 2_000)] {
            a.push(call(ssl, Direction::Write, &[head.clone(), vec![fill; n]].concat()), MS, &mut out);
        }
        assert_eq!(a.shed().times, 1);
        assert_eq!(out.len(), 1);
        assert!(out[0].payload.ends_with(b"aaaa"), "connection 1 holds the most");
        assert_eq!(a.held(), 3 * head.len() + 5_000);
    }

    #[test]
    fn a_first_line_is_looked_at_up_to_its_limit() {
        // A first line of MAX_FIRST_LINE bytes (its line end included) is
        // recognised; one byte longer is not.
        for (extra, kind) in [(0, HTTP1_REQUEST), (1, UNKNOWN)] {
            let mut a = Assembler::new(Config::default());
            let mut out = Vec::new();
            let path = "a".repeat(MAX_FIRST_LINE - "GET / HTTP/1.1\r\n".len() + extra);
            let req = format!("GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(req.find('\n'), Some(MAX_FIRST_LINE - 1 + extra));
            a.push(call(1, Direction::Write, req.as_bytes()), 0, &mut out);
            a.flush(&mut out);
            assert_eq!(out.iter().map(|m| m.kind).collect::<Vec<_>>(), vec![kind], "a first line of {} bytes", MAX_FIRST_LINE + extra);
        }
    }

    #[test]
    fn a_first_line_split_anywhere_is_recognised_the_same() {
        let (req, resp) = (b"GET /index HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let cases: [(&[u8], u32); 5] = [
            (req, HTTP1_REQUEST),
            (resp, HTTP1_RESPONSE),
            (b"M-SEARCH * HTTP/1.1\r\n\r\n", HTTP1_REQUEST),
            (b"MY_METHOD / HTTP/1.1\r\n\r\n", HTTP1_REQUEST),
            (b"TOOLONGMETHODNAMEX / HTTP/1.1\r\n\r\n", UNKNOWN),
        ];
        for (whole, kind) in cases {
            for at in 1..whole.len() {
                let mut a = Assembler::new(Config::default());
                let mut out = Vec::new();
                a.push(call(1, Direction::Write, &whole[..at]), 0, &mut out);
                a.push(call(1, Direction::Write, &whole[at..]), 0, &mut out);
                a.flush(&mut out);
                assert_eq!(kinds(&out), vec![(kind, String::from_utf8_lossy(whole).into_owned())], "split at {at}");
            }
        }
    }

    #[test]
    fn first_bytes_that_cannot_start_http_are_given_up_at_once() {
        // Neither side can be HTTP: the connection is raw as soon as both have
        // spoken, and what one side held comes out when the other speaks.
        let long_status = format!("HTTP/1.1 200 {}", "x".repeat(32 - 13));
        for first in [" GET".as_bytes(), b"+OK", b"HTTP/2", long_status.as_bytes()] {
            let mut a = Assembler::new(Config::default());
            let mut out = Vec::new();
            a.push(call(1, Direction::Write, first), 0, &mut out);
            assert!(out.is_empty());
            a.push(call(1, Direction::Read, b"-ERR\r\n"), MS, &mut out);
            assert_eq!(kinds(&out), vec![(UNKNOWN, String::from_utf8_lossy(first).into_owned())], "{:?}", String::from_utf8_lossy(first));
        }
    }

    #[test]
    fn a_role_and_tuple_once_known_are_kept() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        a.push(with(1, Direction::Write, Role::Server, None, b"+OK"), 0, &mut out);
        let mut later = call(1, Direction::Write, b" ready\r\n");
        (later.meta.role, later.meta.endpoints) = (None, None);
        a.push(later, MS, &mut out);
        a.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].meta.role, Some(Role::Server));
        assert_eq!(out[0].meta.endpoints, sample_call(b"").meta.endpoints);
    }

    #[test]
    fn an_object_reused_for_another_socket_is_another_connection() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        let first = call(1, Direction::Write, b"hello one\n");
        let mut second = call(1, Direction::Write, b"hello two\n");
        let (local, remote) = first.meta.endpoints.expect("sample endpoints");
        second.meta.endpoints = Some((std::net::SocketAddr::new(local.ip(), local.port() + 1), std::net::SocketAddr::new(remote.ip(), remote.port() + 1)));
        let mut unknown = call(1, Direction::Write, b"hello three\n");
        unknown.meta.endpoints = None;
        a.push(first.clone(), 0, &mut out);
        a.push(second.clone(), MS, &mut out);
        a.push(unknown, 2 * MS, &mut out);
        a.flush(&mut out);
        assert_eq!(kinds(&out), vec![(UNKNOWN, "hello one\n".into()), (UNKNOWN, "hello two\nhello three\n".into())]);
        assert_eq!(out[0].meta.endpoints, first.meta.endpoints);
        assert_eq!(out[1].meta.endpoints, second.meta.endpoints, "an unknown tuple keeps the one known");
    }

    #[test]
    fn a_carriage_return_inside_the_first_line_is_not_http() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        // Decided before the line ends: a CR followed by a space is not HTTP.
        for part in [b"GET /x".as_slice(), b"\r", b" ", b"HTTP/1.1\r\nHost: x\r\n\r\n"] {
            a.push(call(1, Direction::Write, part), 0, &mut out);
        }
        a.flush(&mut out);
        assert_eq!(kinds(&out), vec![(UNKNOWN, "GET /x\r HTTP/1.1\r\nHost: x\r\n\r\n".into())]);
    }

    #[test]
    fn a_side_that_gave_up_waiting_stays_raw() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        a.push(call(8, Direction::Write, b"GET"), 0, &mut out);
        a.tick(100 * MS, &mut out);
        assert_eq!(kinds(&out), vec![(UNKNOWN, "GET".into())], "no protocol showed itself within the idle time");
        a.push(call(8, Direction::Write, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 101 * MS, &mut out);
        a.tick(201 * MS, &mut out);
        assert_eq!(kinds(&out[1..]), vec![(UNKNOWN, "GET / HTTP/1.1\r\nHost: x\r\n\r\n".into())], "not taken for HTTP now");
    }

    #[test]
    fn the_least_recently_active_connection_goes_at_the_cap() {
        let mut a = Assembler::new(Config { max_conns: 3, ..Config::default() });
        let mut out = Vec::new();
        for (ssl, t) in [(1, 10), (2, 20), (3, 30)] {
            a.push(call(ssl, Direction::Write, b"GET / HTTP/1.1\r\n"), t * MS, &mut out);
        }
        a.push(call(1, Direction::Write, b"Host: x\r\n"), 40 * MS, &mut out);
        a.push(call(4, Direction::Write, b"GET /4 HTTP/1.1\r\n"), 50 * MS, &mut out);
        assert_eq!(a.tracked(), 3);
        assert_eq!(out.len(), 1, "connection 2, the least recent, was closed");
        assert_eq!(out[0].payload, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn detection_looks_at_each_byte_once() {
        let mut a = Assembler::new(Config::default());
        let mut out = Vec::new();
        // A first line that never ends, a byte per call.
        a.push(call(9, Direction::Write, b"GET /"), 0, &mut out);
        for i in 0..5_000 {
            a.push(call(9, Direction::Write, b"a"), i, &mut out);
        }
        let c = &a.conns[&(4242, 9)];
        assert_eq!(c.sides[idx(Direction::Write)].scan.upto, 5_005, "each byte scanned once");
    }
}
