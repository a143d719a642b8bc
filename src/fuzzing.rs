//! Entry points for fuzzing (fuzz/, `cargo fuzz`) and for replaying the
//! fuzz corpora as ordinary tests (tests/fuzz_corpus.rs): each takes
//! arbitrary bytes, drives one parser of traced bytes with them the way the
//! pipeline would, and must neither panic nor use memory or time out of
//! proportion to the input. Not part of the product's interface.
#![doc(hidden)]

use std::net::SocketAddr;

use crate::assemble::conn::{Assembler, Config as AsmConfig};
use crate::assemble::{hpack, http1, http2};
use crate::capture::record::{Body, ChunkHdr, Record};
use crate::decode::chunks::Reassembler;
use crate::event::{Call, Direction, Message, Meta, View};
use crate::format::text::TextFormat;
use crate::format::Render;

/// A fuzz target: its name (of its fuzz/ target and corpus) and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// The fuzz targets, by name: what `fuzz/` builds and the corpora are named after.
pub const TARGETS: &[Target] = &[
    ("record", record),
    ("reassembly", reassembly),
    ("assembler", assembler),
    ("hpack", hpack),
    ("http1", http1),
    ("http2", http2),
    ("render", render),
    ("elf", elf),
    ("gobin", gobin),
    ("keys", keys),
    ("filter", filter),
    ("packets", packets),
];

/// A call of `payload` on one connection of one process.
fn sample_call(payload: &[u8]) -> Call {
    Call {
        meta: Meta {
            timestamp_ns: 1,
            pid: 4242,
            tid: 4242,
            uid: 0,
            comm: "fuzz".into(),
            fd: 3,
            direction: Direction::Write,
            tls_version: 0x0304,
            endpoints: Some((SocketAddr::from(([127, 0, 0, 1], 50000)), SocketAddr::from(([127, 0, 0, 1], 443)))),
            role: None,
            maybe_plain: false,
        },
        conn: 1,
        total_len: payload.len() as u32,
        payload: payload.to_vec(),
        missing: vec![],
    }
}

/// A little reader of the fuzz input, for targets that need choices.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A ring record as the reader decodes it.
pub fn record(data: &[u8]) {
    if let Ok(rec) = Record::parse(data) {
        if let Body::Chunk(h, payload) = rec.body {
            assert!(payload.len() == h.chunk_len as usize);
            let _ = (h.endpoints(), h.comm(), h.is_server());
        }
    }
}

/// Chunks of interleaved calls, with holes and duplicates, into calls.
pub fn reassembly(data: &[u8]) {
    let mut input = Input { data };
    let mut r = Reassembler::new(16, 1 << 20);
    let mut out = Vec::new();
    let mut now = 0;
    while !input.is_empty() {
        let call = u64::from(input.byte() % 8);
        let captured = u32::from(input.u16());
        let off = u32::from(input.u16()).min(captured);
        let len = (u32::from(input.byte()) * 64).min(captured - off);
        let payload = input.bytes(len as usize).to_vec();
        let hdr = ChunkHdr {
            call_id: call,
            captured_len: captured,
            total_len: captured,
            chunk_off: off,
            chunk_len: payload.len() as u32,
            ..fuzz_hdr()
        };
        now += u64::from(input.byte()) * 1_000_000;
        r.push(hdr, payload, now, &mut out);
        if input.byte() == 0 {
            r.expire(now, 10_000_000, &mut out);
        }
        for c in out.drain(..) {
            assert_eq!(c.payload.len(), c.hdr.captured_len as usize);
        }
    }
    r.flush(&mut out);
}

fn fuzz_hdr() -> ChunkHdr {
    ChunkHdr {
        ts_ns: 1,
        call_id: 0,
        conn: 1,
        pid: 1,
        tid: 1,
        uid: 0,
        fd: 3,
        total_len: 0,
        captured_len: 0,
        chunk_off: 0,
        chunk_len: 0,
        tls_version: 0x0304,
        lib_idx: 0,
        family: 2,
        lport: 1000,
        rport: 443,
        dir: 1,
        flags: 0,
        laddr: [0; 16],
        raddr: [0; 16],
        comm: [0; 16],
    }
}

/// Calls of many connections, both directions, arbitrary splits, holes and
/// closes, into messages, each rendered as text.
pub fn assembler(data: &[u8]) {
    let mut input = Input { data };
    let mut a = Assembler::new(AsmConfig { max_conns: 8, max_message: 4096, ..AsmConfig::default() });
    let mut out: Vec<Message> = Vec::new();
    let mut now = 0;
    while !input.is_empty() {
        let op = input.byte();
        let conn = u64::from(op & 0x7);
        now += u64::from(input.byte()) * 1_000_000;
        match op >> 5 {
            0 => a.close(4242, conn, &mut out),
            1 => a.tick(now, &mut out),
            _ => {
                let len = input.byte() as usize * 4;
                let mut call = sample_call(input.bytes(len));
                call.conn = conn;
                call.meta.direction = if op & 0x8 != 0 { Direction::Read } else { Direction::Write };
                if op & 0x10 != 0 && !call.payload.is_empty() {
                    call.missing = std::iter::once(0..1).collect();
                }
                a.push(call, now, &mut out);
            }
        }
        render_all(&mut out);
    }
    a.flush(&mut out);
    render_all(&mut out);
}

fn render_all(msgs: &mut Vec<Message>) {
    for m in msgs.drain(..) {
        for r in [Render::Text(TextFormat::default()), Render::Text(TextFormat { hex: true, tsize: 0 }), Render::Json] {
            let mut sink = Vec::new();
            let _ = r.write(&mut sink, &m);
        }
    }
}

/// HPACK header blocks, decoded in sequence with one table.
pub fn hpack(data: &[u8]) {
    let mut input = Input { data };
    let mut d = hpack::Decoder::new();
    while !input.is_empty() {
        let len = input.u16() as usize;
        if d.decode(input.bytes(len)).is_err() {
            d.reset();
        }
    }
}

/// One direction's bytes through the HTTP/1 framer, split anywhere.
pub fn http1(data: &[u8]) {
    let mut input = Input { data };
    let mut f = http1::Framer::default();
    let mut methods = vec![b"GET".to_vec(), b"HEAD".to_vec()].into_iter();
    while !input.is_empty() {
        let len = input.byte() as usize;
        f.push(input.bytes(len));
        while let Ok(Some(m)) = f.next(&mut || methods.next()) {
            let _ = http1::display_body(&m.bytes[m.head.len.min(m.bytes.len())..], true, None, m.complete);
        }
    }
    let _ = f.take_partial(true);
}

/// One direction of an HTTP/2 connection, split anywhere, frames rendered.
pub fn http2(data: &[u8]) {
    let mut input = Input { data };
    let mut d = http2::Direction::new(input.byte() & 1 == 1, true);
    while !input.is_empty() {
        let len = input.u16() as usize;
        d.push(input.bytes(len));
        if let Some(b) = d.take_batch() {
            let mut m = sample_call(&b.bytes);
            m.payload = b.bytes;
            let mut msg = Message::raw(m);
            msg.view = Some(Box::new(View::Http2 { preface: b.preface, frames: b.frames }));
            render_all(&mut vec![msg]);
        }
    }
}

/// Any payload rendered every way, with a view built from the input.
pub fn render(data: &[u8]) {
    let mut input = Input { data };
    let head_len = input.u16() as usize;
    let payload = input.bytes(usize::MAX);
    let mut msg = Message::raw(sample_call(payload));
    msg.view = Some(Box::new(View::Http1 { head_len, starts: true, complete: true, body: None, notes: vec![] }));
    let mut msgs = vec![msg, Message::raw(sample_call(payload))];
    render_all(&mut msgs);
}

/// A file that discovery might open (any process can map a file named
/// libssl.so*), inspected as a library.
pub fn elf(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!("ecapture-fuzz-elf-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    if std::fs::write(&path, data).is_ok() {
        let _ = crate::modules::openssl::inspect(&path, None);
        let _ = std::fs::remove_file(&path);
    }
}

/// What `gotls` parses of a Go executable: the function table (.gopclntab),
/// the build information and a function's code (its RETs), in turn, from
/// the same bytes.
pub fn gobin(data: &[u8]) {
    crate::modules::gotls::parse_untrusted(data);
}

/// A key record (an OpenSSL connection's secrets, `struct tls_keys_rec`, or
/// a labelled secret, `struct secret_rec`) into key log lines: their
/// secrets and client randoms are traced bytes.
pub fn keys(data: &[u8]) {
    let mut out = Vec::new();
    crate::modules::openssl::keylog::push_keys(data, &mut out);
    out.extend(crate::decode::calls::secret_of(data).map(crate::event::Item::Secret));
    for item in out {
        if let crate::event::Item::Secret(s) = item {
            let line = crate::outputs::keylog::line(&s);
            assert!(line.ends_with('\n') && line.bytes().all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\n'));
        }
    }
}

/// A filter expression (the bytes as text) compiled: an error, or a program
/// the kernel would accept (every jump inside it, ending in a return),
/// which then runs over the input as a frame without reading out of it.
pub fn filter(data: &[u8]) {
    use crate::packet::filter::{compile, run};
    let text = String::from_utf8_lossy(data);
    let Ok(p) = compile(&text, 65535, data.len() % 2 == 0) else { return };
    let code = &p.0;
    assert!(!code.is_empty() && code.len() <= 4096);
    assert_eq!(code.last().map(|i| i.code), Some(0x06), "ends with a return");
    for (i, ins) in code.iter().enumerate() {
        let targets: Vec<usize> = match ins.code {
            0x05 => vec![i + 1 + ins.k as usize],
            c if c & 0x07 == 0x05 => vec![i + 1 + ins.jt as usize, i + 1 + ins.jf as usize],
            _ => vec![],
        };
        assert!(targets.iter().all(|&t| t < code.len()), "jump out of the program at {i}");
    }
    let _ = run(code, data, false);
}

/// Frames (u16 length, bytes) and secrets (choice bytes) through the
/// pcapng writer: its TCP/TLS peeking, holding and release, with output to
/// memory; what it holds stays within its bounds.
pub fn packets(data: &[u8]) {
    use crate::event::{Secret, SecretLabel};
    use crate::outputs::pcapng::{Pcap, PcapStats, HOLD_TOTAL_BYTES};
    let mut input = Input { data };
    let stats = std::sync::Arc::new(PcapStats::default());
    let mut pcap = Pcap::new(Box::new(Vec::new()), 65535, "fuzz0", std::sync::Arc::clone(&stats));
    let mut now = 1u64;
    while !input.is_empty() {
        match input.byte() % 4 {
            0 => {
                let cr = [input.byte(); 32];
                let label = match input.byte() % 3 {
                    0 => SecretLabel::ClientRandom,
                    1 => SecretLabel::ClientTraffic0,
                    _ => SecretLabel::ServerTraffic0,
                };
                pcap.secret(&Secret { pid: 1, conn: 2, label, client_random: cr, secret: vec![1; 48] });
            }
            1 => {
                now += u64::from(input.u16()) * 1_000_000;
                pcap.tick(now);
            }
            _ => {
                let n = input.u16() as usize;
                let frame = input.bytes(n);
                let _ = crate::packet::tcp_segment(frame).map(|s| crate::packet::tls_start(s.payload));
                pcap.packet(now, frame.len() as u32, frame, now);
            }
        }
        assert!(pcap.held_bytes() <= HOLD_TOTAL_BYTES);
    }
    pcap.finish();
}
