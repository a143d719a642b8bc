//! `Content-Encoding: gzip` / `deflate` bodies, decompressed for display
//! only (payloads sent to eCaptureQ and JSON stay as captured). Whole
//! bodies (HTTP/1) and streams fed frame by frame (HTTP/2 DATA) are both
//! handled. Output is capped so a compression bomb costs neither memory nor
//! time: at most MAX_OUTPUT bytes per body or stream, and at most RATIO
//! times what came in (plus RATIO_FREE), so the work stays proportional to
//! the traffic.

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// Most bytes a body (or an HTTP/2 stream) decompresses to for display.
pub const MAX_OUTPUT: usize = 1 << 20;
/// Decompressed bytes allowed per compressed byte (text compresses 3-30x;
/// a bomb of zeros about 1000x), beyond RATIO_FREE.
pub const RATIO: usize = 64;
pub const RATIO_FREE: usize = 64 << 10;
/// A gzip header's optional name and comment fields end with a NUL that a
/// hostile stream may never send.
const MAX_GZIP_HEADER: usize = 64 << 10;

/// Memory one decompressor holds (miniz_oxide's InflateState: a 32 KiB
/// window and its tables), for the memory budget.
pub const STATE_BYTES: usize = 48 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
}

/// The coding of a Content-Encoding value we can undo ("gzip", "x-gzip",
/// "deflate"); None for identity, anything else, or several codings.
pub fn coding_of(value: &[u8]) -> Option<Coding> {
    let v = String::from_utf8_lossy(value).trim().to_ascii_lowercase();
    match v.as_str() {
        "gzip" | "x-gzip" => Some(Coding::Gzip),
        "deflate" => Some(Coding::Deflate),
        _ => None,
    }
}

/// Length of a gzip member header (RFC 1952) at the start of `b`:
/// Ok(None) when more bytes are needed.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, String> {
    if b.len() < 10 {
        return if b.len() >= 2 && b[..2] != [0x1f, 0x8b] { Err("not gzip data".into()) } else { Ok(None) };
    }
    if b[..3] != [0x1f, 0x8b, 8] {
        return Err("not gzip data".into());
    }
    let flags = b[3];
    let mut at = 10;
    if flags & 4 != 0 {
        let Some(x) = b.get(at..at + 2) else { return Ok(None) };
        at += 2 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            match b.get(at..).and_then(|r| r.iter().position(|&c| c == 0)) {
                Some(p) => at += p + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    Ok((at <= b.len()).then_some(at))
}

thread_local! {
    /// Output space for `feed`, reused: not 64 KiB allocated per call.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 64 << 10]);
}

/// Decompresses a stream fed in pieces.
pub struct StreamDecoder {
    coding: Coding,
    state: Option<Box<InflateState>>,
    /// Bytes before the deflate data is known to start (gzip header).
    head: Vec<u8>,
    /// Bytes given out, and compressed bytes taken in.
    total: usize,
    taken: usize,
    done: bool,
}

impl StreamDecoder {
    pub fn new(coding: Coding) -> StreamDecoder {
        StreamDecoder { coding, state: None, head: Vec::new(), total: 0, taken: 0, done: false }
    }

    /// Feeds the next piece; returns what it decompresses to.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        self.taken = self.taken.saturating_add(data.len());
        // The most this stream may have given out by now.
        let allowed = MAX_OUTPUT.min(RATIO_FREE.saturating_add(self.taken.saturating_mul(RATIO)));
        let input: Vec<u8>;
        let mut data = data;
        if self.state.is_none() {
            self.head.extend_from_slice(data);
            if self.head.len() > MAX_GZIP_HEADER {
                self.done = true;
                return Err("gzip header over 64 KiB".into());
            }
            let (format, skip) = match self.coding {
                Coding::Gzip => match gzip_header_len(&self.head)? {
                    Some(n) => (DataFormat::Raw, n),
                    None => return Ok(Vec::new()),
                },
                // "deflate" is zlib-wrapped by the RFC, raw by some servers.
                Coding::Deflate => {
                    let zlib = self.head.len() >= 2
                        && self.head[0] & 0x0f == 8
                        && (u16::from(self.head[0]) << 8 | u16::from(self.head[1])) % 31 == 0;
                    (if zlib { DataFormat::Zlib } else { DataFormat::Raw }, 0)
                }
            };
            self.state = Some(InflateState::new_boxed(format));
            input = self.head.split_off(skip);
            self.head.clear();
            data = &input;
        }
        let Some(state) = self.state.as_mut() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        SCRATCH.with(|buf| {
            let mut buf = buf.borrow_mut();
            loop {
                let room = allowed.saturating_sub(self.total);
                if room == 0 {
                    self.done = true;
                    return Err(if self.total >= MAX_OUTPUT {
                        format!("decompressed output over {} MiB, cut", MAX_OUTPUT >> 20)
                    } else {
                        format!("decompressed output over {RATIO} times the compressed data, cut")
                    });
                }
                // Never more than is allowed: the work stays bounded too.
                let n = room.min(buf.len());
                let r = inflate(state, data, &mut buf[..n], MZFlush::None);
                data = &data[r.bytes_consumed..];
                out.extend_from_slice(&buf[..r.bytes_written]);
                self.total += r.bytes_written;
                match r.status {
                    Ok(MZStatus::StreamEnd) => {
                        self.done = true;
                        return Ok(());
                    }
                    Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => return Ok(()),
                    Ok(_) if data.is_empty() && r.bytes_written < n => return Ok(()),
                    Ok(_) => {}
                    Err(MZError::Buf) => return Ok(()),
                    Err(e) => return Err(format!("{:?} data is corrupt ({e:?})", self.coding).to_lowercase()),
                }
            }
        })?;
        Ok(out)
    }

    /// Whether the compressed stream has ended.
    pub fn finished(&self) -> bool {
        self.done
    }
}

/// Decompresses a whole body.
pub fn decode(coding: Coding, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = StreamDecoder::new(coding);
    let out = d.feed(body)?;
    if !d.finished() {
        return Err(format!("{} data ends early", if coding == Coding::Gzip { "gzip" } else { "deflate" }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'hello hello hello hello\n' | gzip -9 -n`
    const GZ: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0xc8, 0x40, 0x27,
        0xb9, 0x00, 0x00, 0x88, 0x59, 0x0b, 0x18, 0x00, 0x00, 0x00,
    ];

    fn deflated(data: &[u8], zlib: bool) -> Vec<u8> {
        if zlib {
            miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
        } else {
            miniz_oxide::deflate::compress_to_vec(data, 6)
        }
    }

    #[test]
    fn whole_bodies() {
        assert_eq!(decode(Coding::Gzip, GZ).unwrap(), b"hello hello hello hello\n");
        let text = b"a body that compresses, a body that compresses, a body that compresses";
        assert_eq!(decode(Coding::Deflate, &deflated(text, true)).unwrap(), text);
        assert_eq!(decode(Coding::Deflate, &deflated(text, false)).unwrap(), text, "raw deflate too");
        assert!(decode(Coding::Gzip, b"plain text").unwrap_err().contains("not gzip"));
        assert!(decode(Coding::Gzip, &GZ[..15]).unwrap_err().contains("ends early"));
    }

    #[test]
    fn stream_fed_byte_by_byte() {
        let mut d = StreamDecoder::new(Coding::Gzip);
        let mut out = Vec::new();
        for b in GZ {
            out.extend(d.feed(&[*b]).unwrap());
        }
        assert_eq!(out, b"hello hello hello hello\n");
        assert!(d.finished());
    }

    #[test]
    fn bombs_are_cut() {
        let big = vec![0u8; MAX_OUTPUT + 1000];
        let z = deflated(&big, true);
        assert!(z.len() < 100_000);
        let e = decode(Coding::Deflate, &z).unwrap_err();
        assert!(e.contains("cut"), "{e}");
        // 16 KB of gzip that would become 16 MiB: cut at 64 times what came in.
        let z = deflated(&vec![0u8; 16 << 20], false);
        let mut d = StreamDecoder::new(Coding::Deflate);
        let e = d.feed(&z).unwrap_err();
        assert!(e.contains("cut"), "{e}");
        assert!(d.total <= RATIO_FREE + RATIO * z.len());
        // Text that compresses well is not cut.
        let text: Vec<u8> = (0..4000).flat_map(|i| format!("{i:08} the quick brown fox jumps over the lazy dog\n").into_bytes()).collect();
        assert_eq!(decode(Coding::Deflate, &deflated(&text, true)).unwrap(), text);
    }

    #[test]
    fn codings() {
        assert_eq!(coding_of(b"gzip"), Some(Coding::Gzip));
        assert_eq!(coding_of(b" X-GZIP "), Some(Coding::Gzip));
        assert_eq!(coding_of(b"deflate"), Some(Coding::Deflate));
        assert_eq!(coding_of(b"br"), None);
        assert_eq!(coding_of(b"gzip, br"), None);
        assert_eq!(coding_of(b"identity"), None);
    }

    #[test]
    fn gzip_headers_with_optional_fields() {
        // FNAME "x\0" and FCOMMENT "c\0".
        let mut h = vec![0x1f, 0x8b, 8, 8 | 16, 0, 0, 0, 0, 0, 3, b'x', 0, b'c', 0];
        assert_eq!(gzip_header_len(&h).unwrap(), Some(14));
        h.truncate(12);
        assert_eq!(gzip_header_len(&h).unwrap(), None);
    }
}
