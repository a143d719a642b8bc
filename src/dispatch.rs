//! The dispatcher thread: hands each record to the decoder of the object
//! that sent it, the calls and connection ends that come out to message
//! assembly, and the messages to every output — in capture order. It knows
//! no module (decoders are `Decoder`s) and no output kind (`Output`s).
//!
//! It ends when the reader has gone (the channel disconnects), after
//! emitting what is still pending.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{select, tick, Receiver};

use crate::assemble::conn::{Assembler, Config as AsmConfig};
use crate::capture::reader::{Batch, InFlight};
use crate::capture::record::Record;
use crate::decode::{DecodeStats, Decoder};
use crate::event::{Item, Message, Secret};
use crate::outputs::Output;
use crate::stats::Stats;
use crate::sys::os::monotonic_ns;

/// How often idle messages and stale partial calls are looked for: the
/// idle time is honoured to within this.
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
        let ticker = tick(TICK);
        loop {
            select! {
                recv(rx) -> batch => match batch {
                    Ok(batch) => {
                        let weight: usize = batch.iter().map(Record::weight).sum();
                        let now = stages.captured(&batch);
                        for rec in batch {
                            stages.take(rec, now);
                        }
                        flight.done(weight);
                    }
                    Err(_) => break,
                },
                recv(ticker) -> _ => stages.tick(rx.is_empty()),
            }
            stages.emit(&mut outputs);
            // Batch writes while records keep coming; flush once caught up.
            if rx.is_empty() {
                outputs.iter_mut().for_each(|o| o.flush());
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
            Some(d) => d.push(rec, now, &mut self.items),
            None => {
                Stats::add(&self.stats.malformed, 1);
                log::debug!("record from unknown object {}", rec.source);
            }
        }
        self.assemble(now);
    }

    /// Items into the assembler, in order (a connection's end after the
    /// calls before it), which hands out messages.
    fn assemble(&mut self, now: u64) {
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
                        k.seen(call.meta.pid, call.conn);
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

    /// What has waited long enough comes out.
    fn tick(&mut self, caught_up: bool) {
        let now = self.now(caught_up);
        for d in &mut self.decoders {
            d.tick(now, &mut self.items);
        }
        self.assemble(now);
        self.asm.tick(now, &mut self.msgs);
        self.publish();
    }

    /// The end: everything pending comes out, complete or not.
    fn finish(&mut self) {
        for d in &mut self.decoders {
            d.finish(&mut self.items);
        }
        let now = self.now(true);
        self.assemble(now);
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

/// Why a connection with plaintext has no keys when nothing more precise is known.
const NO_KEYS_SEEN: &str =
    "no secrets read (library without a known key layout, a handshake before ecapture started, or a handshake not done through SSL_do_handshake/SSL_read/SSL_write)";

/// Per connection with plaintext: whether its keys came, or why not.
#[derive(Default)]
struct KeyWatch {
    conns: HashMap<(u32, u64), Option<&'static str>>,
}

impl KeyWatch {
    fn seen(&mut self, pid: u32, conn: u64) {
        if self.conns.len() < KEY_WATCH_MAX {
            self.conns.entry((pid, conn)).or_insert(Some(NO_KEYS_SEEN));
        }
    }

    fn keyed(&mut self, pid: u32, conn: u64) {
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
        self.conns.remove(&(pid, conn)).flatten()
    }

    /// At the end: the connections still open without keys.
    fn open_without_keys(self) -> impl Iterator<Item = (u32, u64, &'static str)> {
        self.conns.into_iter().filter_map(|((pid, conn), why)| why.map(|w| (pid, conn, w)))
    }
}
