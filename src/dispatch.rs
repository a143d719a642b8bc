//! The dispatcher thread: puts the readers' records back in capture order,
//! reassembles calls, turns them into events and writes their text form. It
//! ends when every reader has gone (the channel disconnects), after emitting
//! what is still pending.

use std::io::{self, BufWriter, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, tick, Receiver};

use crate::assemble::chunks::{Call, Reassembler};
use crate::assemble::conn::{Assembler, Config as AsmConfig};
use crate::bpf::reader::{Input, Record};
use crate::ecaptureq::hub::Hub;
use crate::ecaptureq::proto;
use crate::event::TlsEvent;
use crate::reorder::Reorder;
use crate::format::json;
use crate::format::text::TextFormat;
use crate::sink::SinkSender;
use crate::stats::Stats;
use crate::sys::os::StopNotifier;
use crate::time::WallClock;

/// A call whose remaining chunks have not come for this long is emitted
/// with the rest marked missing. Chunks of one call are sent back to back,
/// so only a loss (or a badly stalled reader) makes this fire.
const PARTIAL_MAX_AGE: Duration = Duration::from_secs(1);
/// Bound on calls being reassembled at once.
const MAX_PARTIALS: usize = 1024;
/// How often idle messages and stale partial calls are looked for: the
/// idle time is honoured to within this.
const TICK: Duration = Duration::from_millis(25);

/// How an event becomes text.
#[derive(Debug, Clone, Copy)]
pub enum Render {
    Text(TextFormat),
    Json,
}

impl Render {
    fn write(&self, w: &mut dyn Write, ev: &TlsEvent) -> io::Result<()> {
        match self {
            Render::Text(f) => f.write(w, ev),
            Render::Json => json::write(w, ev),
        }
    }

    /// The rendering without the header line (JSON has none to drop).
    fn write_body(&self, w: &mut dyn Write, ev: &TlsEvent) -> io::Result<()> {
        match self {
            Render::Text(f) => f.write_body(w, ev),
            Render::Json => json::write(w, ev),
        }
    }
}

/// Where events go.
pub enum EventSink {
    /// Rendered to stdout (or any writer).
    Stdout { render: Render, out: Box<dyn Write + Send> },
    /// Rendered, one record per event, to a --eventaddr sink.
    Sink { render: Render, sink: SinkSender },
    /// Encoded once as a LogEntry, fanned out to every eCaptureQ client;
    /// with a renderer, the payload is its text form (--ecaptureq-payload text).
    EcaptureQ(Arc<Hub>, Option<Render>),
}

pub struct Dispatcher {
    pub rx: Receiver<Input>,
    /// How many readers send `Input::Drained` markers.
    pub readers: usize,
    pub clock: WallClock,
    pub sink: EventSink,
    pub stats: Arc<Stats>,
    /// Asks main to stop when the output goes away.
    pub stop: StopNotifier,
    /// How calls become messages.
    pub assembly: AsmConfig,
}

impl Dispatcher {
    pub fn run(self) {
        let Dispatcher { rx, readers, clock, sink, stats, stop, assembly } = self;
        let mut sink = match sink {
            EventSink::Stdout { render, out } => {
                Sink::Stdout(render, Output { out: BufWriter::with_capacity(64 << 10, out), broken: false, stop })
            }
            EventSink::Sink { render, sink } => Sink::Remote(render, sink),
            EventSink::EcaptureQ(hub, render) => Sink::Hub(hub, render),
        };
        let mut stages = Stages {
            reasm: Reassembler::new(MAX_PARTIALS),
            asm: Assembler::new(assembly),
            calls: Vec::new(),
            msgs: Vec::new(),
            clock,
            stats,
            started: Instant::now(),
        };
        let ticker = tick(TICK);
        let mut order = Reorder::new(readers);
        loop {
            select! {
                recv(rx) -> msg => {
                    match msg {
                        Ok(Input::Record(rec)) => order.push(rec.hdr.ts_ns, rec),
                        Ok(Input::Drained { reader, upto_ns }) => order.drained(reader, upto_ns),
                        Err(_) => break,
                    }
                    while let Some(rec) = order.pop_ready() {
                        stages.take(rec);
                    }
                }
                recv(ticker) -> _ => stages.tick(),
            }
            stages.assemble();
            emit(&mut stages.msgs, &mut sink, &stages.stats);
            // Batch writes while records keep coming; flush once caught up.
            if rx.is_empty() {
                sink.flush();
            }
        }
        while let Some(rec) = order.pop_any() {
            stages.take(rec);
        }
        if order.forced > 0 {
            log::debug!("{} records released before every reader had passed them (readers stalled)", order.forced);
        }
        stages.finish();
        emit(&mut stages.msgs, &mut sink, &stages.stats);
        sink.flush();
    }
}

/// Records in capture order → calls (reassembly) → messages (assembly).
struct Stages {
    reasm: Reassembler,
    asm: Assembler,
    /// Calls reassembled, not yet in the assembler.
    calls: Vec<Call>,
    /// Messages the assembler handed out, not yet emitted.
    msgs: Vec<TlsEvent>,
    clock: WallClock,
    stats: Arc<Stats>,
    started: Instant,
}

impl Stages {
    /// The assemblers' clock: ns since the dispatcher started.
    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// One record, in capture order: a chunk into call reassembly, or a
    /// close into the assembler — after the calls that came before it.
    fn take(&mut self, rec: Record) {
        if rec.hdr.is_close() {
            self.assemble();
            self.asm.close(rec.hdr.pid, rec.hdr.ssl, &mut self.msgs);
        } else {
            let now = self.now();
            self.reasm.push(rec.hdr, rec.payload, now, &mut self.calls);
        }
    }

    /// Calls into the assembler (which hands out messages).
    fn assemble(&mut self) {
        let now = self.now();
        for call in self.calls.drain(..) {
            Stats::add(&self.stats.calls, 1);
            let ev = to_event(call, &self.clock);
            if ev.truncated() {
                Stats::add(&self.stats.truncated, 1);
            }
            self.asm.push(ev, now, &mut self.msgs);
        }
        let r = self.reasm.stats();
        self.stats.incomplete.store(r.incomplete_calls, Relaxed);
        self.stats.missing_bytes.store(r.missing_bytes, Relaxed);
        self.stats.stray_chunks.store(r.stray_chunks, Relaxed);
    }

    /// Stale partial calls and messages idle for long enough come out.
    fn tick(&mut self) {
        let now = self.now();
        self.reasm.expire(now, PARTIAL_MAX_AGE.as_nanos() as u64, &mut self.calls);
        self.assemble();
        self.asm.tick(now, &mut self.msgs);
    }

    /// The end: everything pending comes out, complete or not.
    fn finish(&mut self) {
        self.reasm.flush(&mut self.calls);
        self.assemble();
        self.asm.flush(&mut self.msgs);
    }
}

fn emit(msgs: &mut Vec<TlsEvent>, sink: &mut Sink, stats: &Stats) {
    for ev in msgs.drain(..) {
        Stats::add(&stats.events, 1);
        Stats::add(&stats.bytes, ev.payload.len() as u64);
        sink.event(&ev);
    }
}

enum Sink {
    Stdout(Render, Output),
    Remote(Render, SinkSender),
    Hub(Arc<Hub>, Option<Render>),
}

impl Sink {
    fn event(&mut self, ev: &TlsEvent) {
        match self {
            Sink::Stdout(render, out) => out.write(|w| render.write(w, ev)),
            Sink::Remote(render, sink) => {
                let mut rec = Vec::with_capacity(ev.payload.len() + 256);
                // Rendering into a Vec cannot fail.
                let _ = render.write(&mut rec, ev);
                sink.send(rec);
            }
            Sink::Hub(hub, None) => hub.broadcast_event(proto::event_entry(ev)),
            Sink::Hub(hub, Some(render)) => {
                let mut text = Vec::with_capacity(ev.payload.len() + 256);
                let _ = render.write_body(&mut text, ev);
                hub.broadcast_event(proto::event_entry_with_payload(ev, &text));
            }
        }
    }

    /// The dispatcher has caught up: write out what is buffered, wake the
    /// eCaptureQ clients.
    fn flush(&mut self) {
        match self {
            Sink::Stdout(_, out) => out.flush(),
            Sink::Hub(hub, _) => hub.wake(),
            Sink::Remote(..) => {}
        }
    }
}

pub fn to_event(call: Call, clock: &WallClock) -> TlsEvent {
    let h = &call.hdr;
    TlsEvent {
        timestamp_ns: clock.to_wall(h.ts_ns),
        pid: h.pid,
        tid: h.tid,
        uid: h.uid,
        comm: h.comm(),
        fd: h.fd,
        direction: h.direction(),
        tls_version: h.tls_version,
        endpoints: h.endpoints(),
        role: h.role(),
        ssl: h.ssl,
        kind: 0,
        decoded: None,
        total_len: h.total_len,
        lib_idx: h.lib_idx,
        missing: call.missing,
        payload: call.payload,
    }
}

/// Where text goes. A write error (a closed pipe, a full disk) ends
/// output: capture stops cleanly instead of failing on every event.
struct Output {
    out: BufWriter<Box<dyn Write + Send>>,
    broken: bool,
    stop: StopNotifier,
}

impl Output {
    fn write(&mut self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if self.broken {
            return;
        }
        if let Err(e) = f(&mut self.out) {
            self.fail(e);
        }
    }

    fn flush(&mut self) {
        if !self.broken {
            if let Err(e) = self.out.flush() {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.broken = true;
        if e.kind() == io::ErrorKind::BrokenPipe {
            log::info!("output closed; stopping");
        } else {
            log::error!("cannot write events: {e}; stopping");
        }
        self.stop.request();
    }
}
