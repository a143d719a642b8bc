//! `Content-Encoding: gzip` / `deflate` bodies, decompressed for display
//! only (payloads sent to eCaptureQ and JSON stay as captured). Whole
//! bodies (HTTP/1) and streams fed frame by frame (HTTP/2 DATA) are both
//! handled; output is capped so a compression bomb cannot eat memory.

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// Most bytes a body decompresses to for display.
pub const MAX_OUTPUT: usize = 16 << 20;

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

/// Decompresses a stream fed in pieces.
pub struct StreamDecoder {
    coding: Coding,
    state: Option<Box<InflateState>>,
    /// Bytes before the deflate data is known to start (gzip header).
    head: Vec<u8>,
    total: usize,
    done: bool,
}

impl StreamDecoder {
    pub fn new(coding: Coding) -> StreamDecoder {
        StreamDecoder { coding, state: None, head: Vec::new(), total: 0, done: false }
    }

    /// Feeds the next piece; returns what it decompresses to.
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<u8>, String> {
        if self.done || data.is_empty() {
            return Ok(Vec::new());
        }
        let input: Vec<u8>;
        let mut data = data;
        if self.state.is_none() {
            self.head.extend_from_slice(data);
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
        let mut buf = vec![0u8; 64 << 10];
        while !data.is_empty() || out.len() == buf.len() {
            let r = inflate(state, data, &mut buf, MZFlush::None);
            data = &data[r.bytes_consumed..];
            let room = MAX_OUTPUT.saturating_sub(self.total);
            let take = r.bytes_written.min(room);
            out.extend_from_slice(&buf[..take]);
            self.total += take;
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    self.done = true;
                    break;
                }
                Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => break,
                Ok(_) => {}
                Err(MZError::Buf) => break,
                Err(e) => return Err(format!("{:?} data is corrupt ({e:?})", self.coding).to_lowercase()),
            }
            if self.total >= MAX_OUTPUT {
                self.done = true;
                return Err(format!("decompressed output over {} MiB, cut", MAX_OUTPUT >> 20));
            }
        }
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
