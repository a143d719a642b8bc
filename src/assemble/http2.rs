//! HTTP/2 for one direction of a connection: the client preface, frames
//! parsed across reads, header blocks (HEADERS/PUSH_PROMISE and their
//! CONTINUATIONs) decoded with one HPACK decoder for the life of the
//! connection, and DATA decompressed for display (when asked) when its
//! stream said `content-encoding: gzip` or `deflate`. Each batch of complete
//! frames becomes one message, its frames described by `event::view`.

use std::collections::HashMap;

use super::hpack::Decoder;
use super::inflate::{coding_of, StreamDecoder};
use crate::event::view::*;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADER_LEN: usize = 9;
/// A header block (HEADERS and its CONTINUATIONs) larger than this is not
/// decoded: the decoder is reset, as after any HPACK error.
const MAX_HEADER_BLOCK: usize = 256 << 10;
/// Compressed streams decompressed at once per direction; others' DATA is
/// shown as received.
const MAX_INFLATERS: usize = 8;
/// Decompressed bytes per batch, all streams together.
const BATCH_DECOMPRESSED: usize = 1 << 20;
/// What a frame shows of long lists and blobs (a SETTINGS frame may hold
/// millions of entries).
const MAX_SHOWN_SETTINGS: usize = 64;
const MAX_SHOWN_DEBUG: usize = 4096;

/// One direction of an HTTP/2 connection.
pub struct Direction {
    /// This direction must start with the client preface, not yet seen.
    expect_preface: bool,
    buf: Vec<u8>,
    hpack: Decoder,
    /// A header block waiting for its CONTINUATION frames: (stream, promised, bytes).
    pending_block: Option<(u32, Option<u32>, Vec<u8>)>,
    /// Streams whose DATA is compressed.
    inflaters: HashMap<u32, StreamDecoder>,
    /// Decompress DATA for display.
    decompress: bool,
    /// Decompressed bytes in the batch being parsed.
    batch_out: usize,
    /// SETTINGS_HEADER_TABLE_SIZE this direction announced, not yet given
    /// to the other direction's decoder.
    table_size: Option<u32>,
}

/// A batch: the raw bytes of the complete frames (and preface), and what
/// they say.
pub struct Batch {
    pub bytes: Vec<u8>,
    pub frames: Vec<Frame>,
    pub preface: bool,
}

/// Bytes of a frame payload after padding and priority fields.
fn unpad(flags: u8, payload: &[u8], extra: usize) -> Result<&[u8], String> {
    let (pad, start) = if flags & PADDED != 0 { (*payload.first().ok_or("missing pad length")? as usize, 1) } else { (0, 0) };
    let start = start + extra;
    if start + pad > payload.len() {
        return Err("padding longer than the frame".into());
    }
    Ok(&payload[start..payload.len() - pad])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Direction {
    /// `client_to_server`: this direction starts with the client preface;
    /// `decompress`: DATA of gzip/deflate streams is decompressed.
    pub fn new(client_to_server: bool, decompress: bool) -> Direction {
        Direction {
            expect_preface: client_to_server,
            buf: Vec::new(),
            hpack: Decoder::new(),
            pending_block: None,
            inflaters: HashMap::new(),
            decompress,
            batch_out: 0,
            table_size: None,
        }
    }

    /// Bytes this direction holds: unparsed frames, a pending header
    /// block, the HPACK table, decompressors.
    pub fn footprint(&self) -> usize {
        self.buf.len()
            + self.pending_block.as_ref().map_or(0, |(_, _, b)| b.len())
            + self.hpack.table_size()
            + self.inflaters.len() * super::inflate::STATE_BYTES
    }

    /// The SETTINGS_HEADER_TABLE_SIZE this direction announced, once: the
    /// other direction's encoder must keep to it.
    pub fn take_table_size(&mut self) -> Option<u32> {
        self.table_size.take()
    }

    /// The other side announced SETTINGS_HEADER_TABLE_SIZE `n`.
    pub fn set_table_limit(&mut self, n: u32) {
        self.hpack.set_allowed(n);
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The complete frames now buffered, parsed; None when there are none.
    pub fn take_batch(&mut self) -> Option<Batch> {
        let mut at = 0;
        let mut preface = false;
        if self.expect_preface {
            if self.buf.len() < PREFACE.len() {
                return None;
            }
            self.expect_preface = false;
            if self.buf.starts_with(PREFACE) {
                at = PREFACE.len();
                preface = true;
            }
        }
        let mut frames = Vec::new();
        self.batch_out = 0;
        while self.buf.len() - at >= HEADER_LEN {
            let h = &self.buf[at..at + HEADER_LEN];
            let len = (h[0] as usize) << 16 | (h[1] as usize) << 8 | h[2] as usize;
            if self.buf.len() - at - HEADER_LEN < len {
                break;
            }
            let (kind, flags) = (h[3], h[4]);
            let stream = u32_at(h, 5) & 0x7fff_ffff;
            let payload = self.buf[at + HEADER_LEN..at + HEADER_LEN + len].to_vec();
            at += HEADER_LEN + len;
            frames.push(self.decode(kind, flags, stream, &payload));
        }
        if at == 0 {
            return None;
        }
        let rest = self.buf.split_off(at);
        let bytes = std::mem::replace(&mut self.buf, rest);
        Some(Batch { bytes, frames, preface })
    }

    fn header_block(&mut self, stream: u32, promised: Option<u32>, block: &[u8], note: &mut Option<String>) -> Detail {
        match self.hpack.decode(block) {
            Ok(fields) => {
                if self.hpack.was_cut() {
                    *note = Some(format!("[ecapture: header list over {} KiB; the rest is not shown]", super::hpack::MAX_LIST_BYTES >> 10));
                }
                let coding = fields.iter().find(|(n, _)| n == b"content-encoding").and_then(|(_, v)| coding_of(v));
                if let (Some(c), true) = (coding, self.decompress) {
                    let id = promised.unwrap_or(stream);
                    if self.inflaters.len() < MAX_INFLATERS || self.inflaters.contains_key(&id) {
                        self.inflaters.insert(id, StreamDecoder::new(c));
                    } else {
                        *note = Some(format!("[ecapture: more than {MAX_INFLATERS} compressed streams at once: this one's DATA is shown as received]"));
                    }
                }
                Detail::Headers { fields, promised }
            }
            Err(e) => {
                // The table is out of step now: start again from empty.
                self.hpack.reset();
                Detail::Error(format!("HPACK: {e}; decoder reset"))
            }
        }
    }

    fn decode(&mut self, kind: u8, flags: u8, stream: u32, p: &[u8]) -> Frame {
        let mut note = None;
        let detail = match kind {
            DATA => match unpad(flags, p, 0) {
                Ok(data) => {
                    let over = self.batch_out >= BATCH_DECOMPRESSED;
                    let (data, decompressed) = match self.inflaters.get_mut(&stream) {
                        Some(_) if over => {
                            note = Some(format!("[ecapture: over {} MiB decompressed in this batch: shown as received]", BATCH_DECOMPRESSED >> 20));
                            (data.to_vec(), false)
                        }
                        Some(inf) => match inf.feed(data) {
                            Ok(out) => {
                                self.batch_out += out.len();
                                (out, true)
                            }
                            Err(e) => {
                                note = Some(format!("[ecapture: content-encoding: {e}; shown as received]"));
                                self.inflaters.remove(&stream);
                                (data.to_vec(), false)
                            }
                        },
                        None => (data.to_vec(), false),
                    };
                    if flags & END_STREAM != 0 {
                        self.inflaters.remove(&stream);
                    }
                    Detail::Data { data, decompressed }
                }
                Err(e) => Detail::Error(e),
            },
            HEADERS | PUSH_PROMISE => {
                let extra = match kind {
                    HEADERS if flags & PRIORITY_FLAG != 0 => 5,
                    PUSH_PROMISE => 4,
                    _ => 0,
                };
                match unpad(flags, p, extra) {
                    Ok(block) => {
                        let pad = if flags & PADDED != 0 { 1 } else { 0 };
                        let promised = (kind == PUSH_PROMISE && p.len() >= pad + 4).then(|| u32_at(p, pad) & 0x7fff_ffff);
                        if flags & END_HEADERS != 0 {
                            self.header_block(stream, promised, block, &mut note)
                        } else {
                            self.pending_block = Some((stream, promised, block.to_vec()));
                            Detail::HeadersContinue
                        }
                    }
                    Err(e) => Detail::Error(e),
                }
            }
            CONTINUATION => match self.pending_block.as_mut() {
                Some((_, _, block)) if block.len() + p.len() > MAX_HEADER_BLOCK => {
                    self.pending_block = None;
                    self.hpack.reset();
                    Detail::Error(format!("header block over {} KiB; decoder reset", MAX_HEADER_BLOCK >> 10))
                }
                Some((s, _, block)) if *s == stream => {
                    block.extend_from_slice(p);
                    if flags & END_HEADERS != 0 {
                        let (s, promised, block) = self.pending_block.take().unwrap_or_default();
                        self.header_block(s, promised, &block, &mut note)
                    } else {
                        Detail::HeadersContinue
                    }
                }
                _ => Detail::Error("CONTINUATION without a header block".into()),
            },
            SETTINGS => {
                let all = p.chunks_exact(6).map(|c| (u16::from_be_bytes([c[0], c[1]]), u32_at(c, 2)));
                if let Some((_, n)) = all.clone().rfind(|(id, _)| *id == 1) {
                    self.table_size = Some(n);
                }
                let n = p.len() / 6;
                if n > MAX_SHOWN_SETTINGS {
                    note = Some(format!("[ecapture: {} more settings not shown]", n - MAX_SHOWN_SETTINGS));
                }
                Detail::Settings(all.take(MAX_SHOWN_SETTINGS).collect())
            }
            WINDOW_UPDATE if p.len() == 4 => Detail::WindowUpdate(u32_at(p, 0) & 0x7fff_ffff),
            PING if p.len() == 8 => {
                let mut d = [0u8; 8];
                d.copy_from_slice(p);
                Detail::Ping(d)
            }
            RST_STREAM if p.len() == 4 => Detail::RstStream(u32_at(p, 0)),
            GOAWAY if p.len() >= 8 => {
                let debug = &p[8..];
                if debug.len() > MAX_SHOWN_DEBUG {
                    note = Some(format!("[ecapture: {} more bytes of debug data not shown]", debug.len() - MAX_SHOWN_DEBUG));
                }
                let debug = debug[..debug.len().min(MAX_SHOWN_DEBUG)].to_vec();
                Detail::GoAway { last_stream: u32_at(p, 0) & 0x7fff_ffff, code: u32_at(p, 4), debug }
            }
            PRIORITY if p.len() == 5 => Detail::Priority {
                depends_on: u32_at(p, 0) & 0x7fff_ffff,
                weight: p[4] as u16 + 1,
                exclusive: p[0] & 0x80 != 0,
            },
            WINDOW_UPDATE | PING | RST_STREAM | GOAWAY | PRIORITY => Detail::Error(format!("bad {} length {}", frame_type_name(kind), p.len())),
            _ => Detail::Other,
        };
        Frame { kind, flags, stream, len: p.len() as u32, detail, note }
    }

    /// Whatever is buffered (an unfinished frame), given up at the end.
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::text::frame_lines;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(payload.len() >> 16) as u8, (payload.len() >> 8) as u8, payload.len() as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A client's first flight: preface, SETTINGS, WINDOW_UPDATE, and the
    /// HEADERS of RFC 7541 C.4.1 split into HEADERS + CONTINUATION.
    fn client_flight() -> Vec<u8> {
        let mut b = PREFACE.to_vec();
        b.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0x10, 0, 0]));
        b.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 0x3f, 0, 1]));
        let block = [0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
        b.extend(frame(HEADERS, END_STREAM, 1, &block[..5]));
        b.extend(frame(CONTINUATION, END_HEADERS, 1, &block[5..]));
        b.extend(frame(PING, 0, 0, b"12345678"));
        b
    }

    fn summary(batches: &[Batch]) -> Vec<String> {
        batches.iter().flat_map(|b| b.frames.iter()).flat_map(frame_lines).collect()
    }

    #[test]
    fn frames_headers_and_continuation() {
        let input = client_flight();
        let mut d = Direction::new(true, true);
        d.push(&input);
        let b = d.take_batch().unwrap();
        assert!(b.preface);
        assert_eq!(b.bytes, input, "the batch is exactly the complete frames");
        let lines = summary(&[b]);
        assert_eq!(
            lines,
            vec![
                "SETTINGS stream=0 length=12",
                "MAX_CONCURRENT_STREAMS = 100",
                "INITIAL_WINDOW_SIZE = 1048576",
                "WINDOW_UPDATE stream=0 length=4",
                "window size increment = 4128769",
                "HEADERS stream=1 length=5 flags=END_STREAM",
                "(header block continues in CONTINUATION frames)",
                "CONTINUATION stream=1 length=12 flags=END_HEADERS",
                "header field \":method\" = \"GET\"",
                "header field \":scheme\" = \"http\"",
                "header field \":path\" = \"/\"",
                "header field \":authority\" = \"www.example.com\"",
                "PING stream=0 length=8",
                "opaque data = 3132333435363738",
            ]
        );
    }

    #[test]
    fn split_at_every_byte_boundary_gives_the_same_frames() {
        let input = client_flight();
        let mut whole = Direction::new(true, true);
        whole.push(&input);
        let want = summary(&[whole.take_batch().unwrap()]);
        for cut in 1..input.len() {
            let mut d = Direction::new(true, true);
            let mut batches = Vec::new();
            d.push(&input[..cut]);
            batches.extend(d.take_batch());
            d.push(&input[cut..]);
            batches.extend(d.take_batch());
            assert_eq!(summary(&batches), want, "cut at {cut}");
            assert_eq!(batches.iter().map(|b| b.bytes.len()).sum::<usize>(), input.len());
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn hpack_state_lives_across_blocks_and_errors_reset_it() {
        let mut d = Direction::new(false, true);
        // RFC 7541 C.3.1 then C.3.2, which refers to the first's table entry.
        d.push(&frame(HEADERS, END_HEADERS, 1, &[0x82, 0x86, 0x84, 0x41, 0x0f, b'w', b'w', b'w', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o', b'm']));
        d.push(&frame(HEADERS, END_HEADERS, 3, &[0x82, 0x86, 0x84, 0xbe, 0x58, 0x08, b'n', b'o', b'-', b'c', b'a', b'c', b'h', b'e']));
        let lines = summary(&[d.take_batch().unwrap()]);
        assert!(lines.contains(&"header field \":authority\" = \"www.example.com\"".to_string()), "{lines:?}");
        assert_eq!(lines.iter().filter(|l| l.contains("www.example.com")).count(), 2, "the second block decodes too");
        d.push(&frame(HEADERS, END_HEADERS, 5, &[0xff, 0x80]));
        let lines = summary(&[d.take_batch().unwrap()]);
        assert!(lines[1].contains("HPACK") && lines[1].contains("decoder reset"), "{lines:?}");
    }

    #[test]
    fn gzip_data_is_decompressed_per_stream() {
        let gz = [
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40, 0x27, 0xb9,
            0x00, 0x00, 0x88, 0x59, 0x0b, 0x18, 0x00, 0x00, 0x00,
        ];
        let mut d = Direction::new(false, true);
        // :status 200 (0x88), content-encoding: gzip (literal, indexed name 26).
        d.push(&frame(HEADERS, END_HEADERS, 1, &[0x88, 0x5a, 0x04, b'g', b'z', b'i', b'p']));
        d.push(&frame(DATA, 0, 1, &gz[..12]));
        d.push(&frame(DATA, END_STREAM | PADDED, 1, &[[3u8].as_slice(), &gz[12..], &[0, 0, 0]].concat()));
        d.push(&frame(DATA, END_STREAM, 3, b"plain"));
        let b = d.take_batch().unwrap();
        let data: Vec<u8> = b
            .frames
            .iter()
            .filter_map(|f| match &f.detail {
                Detail::Data { data, decompressed: true } if f.stream == 1 => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, b"hello hello hello hello\n");
        assert!(matches!(&b.frames[3].detail, Detail::Data { data, decompressed: false } if data == b"plain"));
    }

    #[test]
    fn a_missing_preface_is_not_invented() {
        let mut d = Direction::new(true, true);
        d.push(&frame(PING, ACK, 0, b"abcdefgh")[..]);
        d.push(&[0; 15]);
        let b = d.take_batch().unwrap();
        assert!(!b.preface);
        assert_eq!(frame_lines(&b.frames[0])[0], "PING stream=0 length=8 flags=ACK");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..2000 {
            let mut d = Direction::new(round % 2 == 0, true);
            for _ in 0..8 {
                let len = (x % 97) as usize;
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                d.push(&data);
                if let Some(b) = d.take_batch() {
                    for f in &b.frames {
                        let _ = frame_lines(f);
                    }
                }
            }
        }
    }
}
