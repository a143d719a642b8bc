//! The dispatcher thread: hands each record to the decoder of the object
//! that sent it, the calls and connection ends that come out to message
//! assembly, and the messages to every output — in capture order. It knows
//! no module (decoders are `Decoder`s) and no output kind (`Output`s).
//!
//! It ends when the reader has gone (the channel disconnects), after
//! emitting what is still pending.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::assemble::conn::{Assembler, Config as AsmConfig};
use crate::capture::reader::{Batch, InFlight};
use crate::capture::record::Record;
use crate::decode::{DecodeStats, Decoder};
use crate::event::{Item, Message, Secret};
use crate::outputs::Output;
use crate::stats::Stats;
use crate::sys::os::monotonic_ns;

/// How often idle messages and stale partial calls are looked for while
/// some wait: the idle time is honoured to within this. With nothing
/// waiting the dispatcher sleeps until records come (or a silent
/// connection is to be forgotten).
const TICK: Duration = Duration::from_millis(25);

pub struct Dispatcher {
    pub rx: Receiver<Batch>,
    /// One per loaded object: `decoders[record.source]`.
    pub decoders: Vec<Box<dyn Decoder>>,
    pub outputs: Vec<Box<dyn Output>>,
    pub stats: Arc<Stats>,
    /// How calls become messages.
    pub assembly: AsmConfig,
    /// Records' bytes between the reader and here.
    pub flight: Arc<InFlight>,
    /// Secrets are read: say which connections ended without theirs.
    pub track_keys: bool,
}

impl Dispatcher {
    pub fn run(self) {
        let Dispatcher { rx, decoders, mut outputs, stats, assembly, flight, track_keys } = self;
        let mut stages = Stages {
            decoders,
            asm: Assembler::new(assembly),
            items: Vec::new(),
            msgs: Vec::new(),
            keys: track_keys.then(KeyWatch::default),
            key_events: Vec::new(),
            stats,
            latest: monotonic_ns(),
        };
        // When the next tick is due; None: nothing waits for time.
        let mut due: Option<Instant> = None;
        loop {
            let got = match due {
                Some(t) => rx.recv_deadline(t),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match got {
                Ok(batch) => {
                    let weight: usize = batch.iter().map(Record::weight).sum();
                    let now = stages.captured(&batch);
                    for rec in batch {
                        stages.take(rec, now);
                    }
                    flight.done(weight);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Due even while batches keep coming (a steady stream must not
            // hold back another connection's idle message).
            if due.is_some_and(|t| Instant::now() >= t) {
                due = None;
                stages.tick(rx.is_empty());
            }
            // The earlier of what was due and what the records just taken
            // call for (a message now waiting its idle time comes before a
            // silent connection's end).
            if let Some(next) = stages.next_tick().map(|d| Instant::now() + d) {
                due = Some(due.map_or(next, |t| t.min(next)));
            }
            stages.emit(&mut outputs);
            // Batch writes while records keep coming; flush once caught up.
            if rx.is_empty() {
                outputs.iter_mut().for_each(|o| o.flush());
                stages.publish();
            }
        }
        stages.finish();
        stages.emit(&mut outputs);
        outputs.iter_mut().for_each(|o| o.flush());
    }
}

/// Records → items (decoders) → messages (assembly).
struct Stages {
    decoders: Vec<Box<dyn Decoder>>,
    asm: Assembler,
    /// Items decoded, not yet assembled.
    items: Vec<Item>,
    /// Messages assembled, not yet emitted.
    msgs: Vec<Message>,
    /// Which connections got their keys (when secrets are read).
    keys: Option<KeyWatch>,
    /// Secrets and keyless connections, not yet emitted (they go out
    /// before the messages assembled with them).
    key_events: Vec<KeyEvent>,
    stats: Arc<Stats>,
    /// The newest capture time seen (CLOCK_MONOTONIC ns, the probes' clock).
    latest: u64,
}

impl Stages {
    /// The decoders' and assembler's clock is capture time, not the
    /// dispatcher's: records that waited in the ring or the channel (a
    /// burst, a busy machine) are not taken for idle because they are
    /// handled late. A batch is at its newest record's time...
    fn captured(&mut self, batch: &[Record]) -> u64 {
        if let Some(ts) = batch.iter().map(|r| r.ts_ns).max() {
            self.latest = self.latest.max(ts);
        }
        self.latest
    }

    /// ...and time runs on by itself only once everything is handled.
    fn now(&mut self, caught_up: bool) -> u64 {
        if caught_up {
            self.latest = self.latest.max(monotonic_ns());
        }
        self.latest
    }

    /// One record, at dispatcher time `now` (taken once per batch).
    fn take(&mut self, rec: Record, now: u64) {
        match self.decoders.get_mut(rec.source as usize) {
            Some(d) => {
                d.push(rec, now, &mut self.items);
                let why = d.keys_missing_why();
                self.assemble(now, why);
            }
            None => {
                Stats::add(&self.stats.malformed, 1);
                log::debug!("record from unknown object {}", rec.source);
            }
        }
    }

    /// Items of one decoder into the assembler, in order (a connection's end
    /// after the calls before it), which hands out messages; `why`: the
    /// decoder's reason for connections without keys.
    fn assemble(&mut self, now: u64, why: &'static str) {
        if self.items.is_empty() {
            return;
        }
        for item in self.items.drain(..) {
            match item {
                Item::Call(call) => {
                    Stats::add(&self.stats.calls, 1);
                    if call.truncated() {
                        Stats::add(&self.stats.truncated, 1);
                    }
                    if let Some(k) = &mut self.keys {
                        k.seen(call.meta.pid, call.conn, why);
                    }
                    self.asm.push(call, now, &mut self.msgs);
                }
                Item::Close { pid, conn } => {
                    if let Some(why) = self.keys.as_mut().and_then(|k| k.closed(pid, conn)) {
                        self.key_events.push(KeyEvent::Missing { pid, conn, why });
                    }
                    self.asm.close(pid, conn, &mut self.msgs)
                }
                Item::Secret(s) => {
                    if let Some(k) = &mut self.keys {
                        k.keyed(s.pid, s.conn);
                    }
                    self.key_events.push(KeyEvent::Secret(s));
                }
                Item::SecretUnusable { pid, conn, why } => {
                    if let Some(k) = &mut self.keys {
                        k.unusable(pid, conn, why);
                    }
                }
            }
        }
    }

    /// The decoders' counters into the shared stats (at every tick, not
    /// per record).
    fn publish(&self) {
        let mut d = DecodeStats::default();
        for dec in &self.decoders {
            d += dec.stats();
        }
        self.stats.incomplete.store(d.incomplete_calls, Relaxed);
        self.stats.missing_bytes.store(d.missing_bytes, Relaxed);
        self.stats.stray_chunks.store(d.stray_chunks, Relaxed);
        self.stats.unknown_records.store(d.unknown_records, Relaxed);
        let shed = self.asm.shed();
        self.stats.shed.store(d.shed + shed.times, Relaxed);
        self.stats.shed_bytes.store(shed.bytes, Relaxed);
    }

    /// How long until `tick` has work: TICK while something waits for the
    /// idle time, else until the most silent connection is forgotten;
    /// None: nothing to do until records come.
    fn next_tick(&self) -> Option<Duration> {
        if self.asm.waiting() || self.decoders.iter().any(|d| d.waiting()) {
            return Some(TICK);
        }
        self.asm.forget_at().map(|t| Duration::from_nanos(t.saturating_sub(self.latest)).max(TICK))
    }

    /// What has waited long enough comes out.
    fn tick(&mut self, caught_up: bool) {
        let now = self.now(caught_up);
        for i in 0..self.decoders.len() {
            self.decoders[i].tick(now, &mut self.items);
            let why = self.decoders[i].keys_missing_why();
            self.assemble(now, why);
        }
        self.asm.tick(now, &mut self.msgs);
        self.publish();
    }

    /// The end: everything pending comes out, complete or not.
    fn finish(&mut self) {
        let now = self.now(true);
        for i in 0..self.decoders.len() {
            self.decoders[i].finish(&mut self.items);
            let why = self.decoders[i].keys_missing_why();
            self.assemble(now, why);
        }
        self.asm.flush(&mut self.msgs);
        if let Some(k) = self.keys.take() {
            self.key_events.extend(k.open_without_keys().map(|(pid, conn, why)| KeyEvent::Missing { pid, conn, why }));
        }
        self.publish();
    }

    fn emit(&mut self, outputs: &mut [Box<dyn Output>]) {
        for e in self.key_events.drain(..) {
            for o in outputs.iter_mut() {
                match &e {
                    KeyEvent::Secret(s) => o.secret(s),
                    KeyEvent::Missing { pid, conn, why } => o.keys_missing(*pid, *conn, why),
                }
            }
        }
        for m in self.msgs.drain(..) {
            Stats::add(&self.stats.events, 1);
            Stats::add(&self.stats.bytes, m.payload.len() as u64);
            for o in outputs.iter_mut() {
                o.message(&m);
            }
        }
    }
}

enum KeyEvent {
    Secret(Secret),
    Missing { pid: u32, conn: u64, why: &'static str },
}

/// Connections watched for their keys at most: beyond, new ones are not
/// watched (and not reported).
const KEY_WATCH_MAX: usize = 65536;

/// Per connection with plaintext: whether its keys came, or why not.
#[derive(Default)]
struct KeyWatch {
    conns: HashMap<(u32, u64), Option<&'static str>>,
    /// Connections that ended with their keys, the latest KEY_WATCH_MAX: a
    /// call handed out after its connection's end (one that returned on
    /// another thread or goroutine after the close) does not make it a new
    /// connection without keys.
    ended: HashSet<(u32, u64)>,
    ended_order: VecDeque<(u32, u64)>,
}

impl KeyWatch {
    fn seen(&mut self, pid: u32, conn: u64, why: &'static str) {
        if self.conns.len() < KEY_WATCH_MAX && !self.ended.contains(&(pid, conn)) {
            self.conns.entry((pid, conn)).or_insert(Some(why));
        }
    }

    fn keyed(&mut self, pid: u32, conn: u64) {
        // A new handshake where an ended connection was (the library reused
        // the object): a connection of its own.
        self.ended.remove(&(pid, conn));
        if self.conns.len() < KEY_WATCH_MAX || self.conns.contains_key(&(pid, conn)) {
            self.conns.insert((pid, conn), None);
        }
    }

    fn unusable(&mut self, pid: u32, conn: u64, why: &'static str) {
        if self.conns.len() < KEY_WATCH_MAX || self.conns.contains_key(&(pid, conn)) {
            let e = self.conns.entry((pid, conn)).or_insert(Some(why));
            if e.is_some() {
                *e = Some(why);
            }
        }
    }

    /// The connection ended: why it had no keys, if it had none.
    fn closed(&mut self, pid: u32, conn: u64) -> Option<&'static str> {
        let was = self.conns.remove(&(pid, conn));
        if was == Some(None) && self.ended.insert((pid, conn)) {
            self.ended_order.push_back((pid, conn));
            if self.ended_order.len() > KEY_WATCH_MAX {
                if let Some(old) = self.ended_order.pop_front() {
                    self.ended.remove(&old);
                }
            }
        }
        was.flatten()
    }

    /// At the end: the connections still open without keys.
    fn open_without_keys(self) -> impl Iterator<Item = (u32, u64, &'static str)> {
        self.conns.into_iter().filter_map(|((pid, conn), why)| why.map(|w| (pid, conn, w)))
    }
}

/// The dispatcher without a kernel: synthetic records in, the messages an
/// output receives out.
#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crossbeam_channel::{bounded, unbounded, Sender};

    use super::*;
    use crate::capture::record::tests::hdr;
    use crate::capture::record::Body;
    use crate::decode::calls::CallDecoder;
    use crate::decode::Limits;
    use crate::event::{HTTP1_REQUEST, UNKNOWN};
    use crate::time::WallClock;

    const MS: u64 = 1_000_000;
    const WAIT: Duration = Duration::from_secs(10);

    /// What an output saw, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Msg { conn_fd: i32, kind: u32, payload: Vec<u8> },
        Flush,
    }

    struct Collect(Sender<Seen>);

    impl Output for Collect {
        fn message(&mut self, m: &Message) {
            let _ = self.0.send(Seen::Msg { conn_fd: m.meta.fd, kind: m.kind, payload: m.payload.clone() });
        }

        fn flush(&mut self) {
            let _ = self.0.send(Seen::Flush);
        }
    }

    fn msg(conn_fd: i32, kind: u32, payload: &[u8]) -> Seen {
        Seen::Msg { conn_fd, kind, payload: payload.to_vec() }
    }

    /// A write call of process 100 on connection `conn` (also its fd), whole
    /// in one chunk, captured at `ts` (monotonic ns) by object `source`.
    fn call(source: u32, ts: u64, id: u64, conn: u64, data: &[u8]) -> Record {
        let mut h = hdr(id, data.len() as u32, 0, data.len() as u32);
        (h.ts_ns, h.conn, h.fd) = (ts, conn, conn as i32);
        Record { ts_ns: ts, source, body: Body::Chunk(h, data.to_vec()) }
    }

    fn close(source: u32, ts: u64, conn: u64) -> Record {
        Record { ts_ns: ts, source, body: Body::Close { conn, pid: 100, tid: 101 } }
    }

    fn decoders(n: usize) -> Vec<Box<dyn Decoder>> {
        (0..n).map(|_| Box::new(CallDecoder::new(WallClock::with_offset(0), Limits::default())) as Box<dyn Decoder>).collect()
    }

    fn stages(n: usize, stats: &Arc<Stats>) -> Stages {
        Stages {
            decoders: decoders(n),
            asm: Assembler::new(AsmConfig::default()),
            items: Vec::new(),
            msgs: Vec::new(),
            keys: None,
            key_events: Vec::new(),
            stats: Arc::clone(stats),
            latest: 0,
        }
    }

    fn payloads(msgs: &[Message]) -> Vec<&[u8]> {
        msgs.iter().map(|m| m.payload.as_slice()).collect()
    }

    /// The dispatcher with two objects' decoders and an output that reports
    /// to the returned channel; `idle_ns` for assembly.
    fn dispatcher(rx: Receiver<Batch>, idle_ns: u64) -> (Dispatcher, Receiver<Seen>, Arc<Stats>, Arc<InFlight>) {
        let (out_tx, out_rx) = unbounded();
        let stats = Arc::new(Stats::default());
        let flight = Arc::new(InFlight::new(1 << 20));
        let d = Dispatcher {
            rx,
            decoders: decoders(2),
            outputs: vec![Box::new(Collect(out_tx))],
            stats: Arc::clone(&stats),
            assembly: AsmConfig { idle_ns, ..AsmConfig::default() },
            flight: Arc::clone(&flight),
            track_keys: false,
        };
        (d, out_rx, stats, flight)
    }

    fn send(tx: &Sender<Batch>, flight: &InFlight, batch: Batch) {
        flight.add(batch.iter().map(Record::weight).sum());
        tx.send(batch).unwrap();
    }

    #[test]
    fn capture_time_not_handling_time_decides_what_is_idle() {
        let stats = Arc::new(Stats::default());
        let mut s = stages(1, &stats);
        let t0 = 1_000 * MS;
        // Records handled long after they were captured (they waited in the
        // ring): their own time is the clock, not the dispatcher's.
        for batch in [vec![call(0, t0, 1, 7, b"ping")], vec![call(0, t0 - 10 * MS, 2, 9, b"late"), call(0, t0 + 150 * MS, 3, 8, b"pong")]] {
            let now = s.captured(&batch);
            for rec in batch {
                s.take(rec, now);
            }
        }
        assert_eq!(s.latest, t0 + 150 * MS, "a batch is at its newest record's time");
        assert_eq!(s.captured(&[call(0, t0, 9, 9, b"")]), t0 + 150 * MS, "an older batch does not turn time back");
        assert!(s.msgs.is_empty(), "unknown bytes wait");
        s.tick(false);
        assert_eq!(payloads(&s.msgs), vec![b"ping"], "idle by capture time; pong is not, however late it is handled");
        s.msgs.clear();
        s.tick(true);
        let mut rest = payloads(&s.msgs);
        rest.sort();
        assert_eq!(rest, vec![b"late", b"pong"], "caught up: time runs on by itself");
        assert_eq!(stats.calls.load(Relaxed), 3);
    }

    #[test]
    fn items_go_to_assembly_in_order_and_a_connection_end_gives_out_what_it_holds() {
        let stats = Arc::new(Stats::default());
        let mut s = stages(2, &stats);
        let now = s.captured(&[]);
        s.take(call(1, MS, 1, 7, b"hello "), now);
        s.take(call(1, 2 * MS, 2, 7, b"world"), now);
        s.take(call(0, 3 * MS, 3, 9, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), now);
        assert_eq!(payloads(&s.msgs), vec![b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice()], "a complete request at once");
        s.take(close(1, 4 * MS, 7), now);
        assert_eq!(payloads(&s.msgs)[1], b"hello world", "the end of connection 7, both calls in order");
        // A record from an object that is not loaded is counted, not decoded.
        s.take(call(5, 5 * MS, 4, 9, b"x"), now);
        assert_eq!(stats.malformed.load(Relaxed), 1);
        assert_eq!(s.msgs.len(), 2);
        assert_eq!(stats.calls.load(Relaxed), 3);
    }

    #[test]
    fn the_decoders_and_assemblys_counters_are_published() {
        let stats = Arc::new(Stats::default());
        let mut s = stages(2, &stats);
        // The first 4 bytes of a 10-byte call, then nothing: out at the end with a hole.
        let mut part = call(0, MS, 1, 7, b"abcd");
        if let Body::Chunk(h, _) = &mut part.body {
            (h.total_len, h.captured_len) = (10, 10);
        }
        s.take(part, MS);
        s.take(Record { ts_ns: MS, source: 1, body: Body::Other { kind: 99, bytes: vec![0; 16] } }, MS);
        let mut cut = call(1, MS, 2, 8, b"efgh");
        if let Body::Chunk(h, _) = &mut cut.body {
            h.total_len = 100;
        }
        s.take(cut, MS);
        s.tick(false);
        assert_eq!(stats.unknown_records.load(Relaxed), 1, "published at a tick");
        assert_eq!(stats.truncated.load(Relaxed), 1);
        assert_eq!(stats.incomplete.load(Relaxed), 0, "the partial call is still pending");
        s.finish();
        assert_eq!((stats.incomplete.load(Relaxed), stats.missing_bytes.load(Relaxed)), (1, 6));
        assert_eq!(stats.calls.load(Relaxed), 2);
        let mut msgs = std::mem::take(&mut s.msgs);
        msgs.sort_by_key(|m| m.meta.fd);
        assert_eq!(payloads(&msgs), vec![b"abcd\0\0\0\0\0\0".as_slice(), b"efgh"]);
        assert_eq!(msgs[0].missing, vec![4..10]);
    }

    #[test]
    fn a_reader_that_ends_early_leaves_nothing_pending() {
        let (tx, rx) = bounded(8);
        let (d, seen, stats, flight) = dispatcher(rx, 100 * MS);
        let t = monotonic_ns();
        let (get, hello, half) = (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"hello", b"GET /2 HTTP/1.1\r\nHo");
        send(&tx, &flight, vec![call(0, t, 1, 7, get), call(1, t, 2, 8, hello)]);
        send(&tx, &flight, vec![call(0, t, 3, 7, half)]);
        // The reader goes with a raw message and half a request pending.
        drop(tx);
        d.run();
        let seen: Vec<Seen> = seen.try_iter().collect();
        let msgs: Vec<&Seen> = seen.iter().filter(|s| **s != Seen::Flush).collect();
        assert_eq!(msgs[0], &msg(7, HTTP1_REQUEST, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        let mut rest: Vec<&Seen> = msgs[1..].to_vec();
        rest.sort_by_key(|s| match s {
            Seen::Msg { conn_fd, .. } => *conn_fd,
            Seen::Flush => 0,
        });
        // (Half a head is not known for a request: its type is UNKNOWN.)
        assert_eq!(rest, vec![&msg(7, UNKNOWN, b"GET /2 HTTP/1.1\r\nHo"), &msg(8, UNKNOWN, b"hello")], "pending, given out at the end");
        assert_eq!(seen.last(), Some(&Seen::Flush), "the outputs are flushed last");
        assert_eq!((stats.events.load(Relaxed), stats.bytes.load(Relaxed)), (3, (get.len() + hello.len() + half.len()) as u64));
        assert_eq!(flight.held(), 0, "every batch is accounted for as done");
    }

    #[test]
    fn a_stalled_reader_does_not_hold_back_what_is_idle() {
        let (tx, rx) = bounded(8);
        let idle = 50 * MS;
        let (d, seen, _stats, flight) = dispatcher(rx, idle);
        let run = std::thread::spawn(move || d.run());
        let sent = Instant::now();
        send(&tx, &flight, vec![call(1, monotonic_ns(), 1, 7, b"ping")]);
        // Nothing more comes, and the reader is still there.
        let deadline = Instant::now() + WAIT;
        let first = loop {
            match seen.recv_deadline(deadline).expect("the idle message comes out while the reader is silent") {
                Seen::Flush => continue,
                m => break m,
            }
        };
        assert_eq!(first, msg(7, UNKNOWN, b"ping"));
        assert!(sent.elapsed() >= Duration::from_nanos(idle), "not before the idle time: {:?}", sent.elapsed());
        assert_eq!(seen.recv_timeout(WAIT), Ok(Seen::Flush), "flushed once caught up");
        assert!(!run.is_finished());
        drop(tx);
        run.join().unwrap();
        assert_eq!(flight.held(), 0);
    }

    /// The dispatcher sleeps while nothing waits for time, and a message
    /// that starts waiting is not put off until a silent connection's end
    /// (minutes away) that was due before it.
    #[test]
    fn an_idle_message_after_a_quiet_spell_comes_out_in_its_idle_time() {
        let (tx, rx) = bounded(8);
        let idle = 50 * MS;
        let (d, seen, _stats, flight) = dispatcher(rx, idle);
        let run = std::thread::spawn(move || d.run());
        let next = |what: &str| loop {
            match seen.recv_timeout(WAIT).unwrap_or_else(|_| panic!("{what}")) {
                Seen::Flush => continue,
                m => break m,
            }
        };
        // A complete request: nothing waits, but its connection is tracked
        // (forgotten after the connection timeout).
        send(&tx, &flight, vec![call(0, monotonic_ns(), 1, 7, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")]);
        assert_eq!(next("the request"), msg(7, HTTP1_REQUEST, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        std::thread::sleep(Duration::from_millis(60));
        let sent = Instant::now();
        send(&tx, &flight, vec![call(1, monotonic_ns(), 2, 9, b"ping")]);
        assert_eq!(next("the idle message comes out"), msg(9, UNKNOWN, b"ping"));
        assert!(sent.elapsed() >= Duration::from_nanos(idle), "not before the idle time: {:?}", sent.elapsed());
        drop(tx);
        run.join().unwrap();
    }
}

#[cfg(test)]
mod key_watch_tests {
    use super::*;

    #[test]
    fn a_call_after_a_keyed_connections_end_is_not_a_connection_without_keys() {
        let mut k = KeyWatch::default();
        k.keyed(1, 0xc000);
        k.seen(1, 0xc000, "why");
        assert_eq!(k.closed(1, 0xc000), None);
        // Go: a Read returning on another goroutine after Close.
        k.seen(1, 0xc000, "why");
        // A connection without keys is still reported.
        k.seen(1, 0xd000, "why not");
        assert_eq!(k.closed(1, 0xd000), Some("why not"));
        k.seen(1, 0xe000, "open");
        assert_eq!(k.open_without_keys().collect::<Vec<_>>(), vec![(1, 0xe000, "open")]);
    }

    #[test]
    fn an_object_reused_after_its_end_is_a_new_connection() {
        let mut k = KeyWatch::default();
        k.keyed(1, 0xc000);
        k.closed(1, 0xc000);
        k.keyed(1, 0xc000);
        k.seen(1, 0xc000, "why");
        assert_eq!(k.closed(1, 0xc000), None);
        let mut k = KeyWatch::default();
        k.seen(1, 0xc000, "first");
        assert_eq!(k.closed(1, 0xc000), Some("first"), "ended without keys: not remembered");
        k.seen(1, 0xc000, "second");
        assert_eq!(k.closed(1, 0xc000), Some("second"));
    }
}
