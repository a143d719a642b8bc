//! The text form of an event (SPEC §5.1): one header line, the payload
//! (as is when it is printable text, else a hex dump), notes on anything
//! not shown or lost, and a blank line.
//!
//! Header: `<time> PID:<pid>, Comm:<comm>, TID:<tid>, FD:<fd>, <READ|WRITE>,
//! Src:<ip>:<port>, Dest:<ip>:<port>, <TLS version>, Length:<n>` where Src
//! and Dest follow the data (for a WRITE, Src is this host's end) and n is
//! the number of payload bytes captured. When the payload is printed as text,
//! exactly n bytes follow the header line.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::ops::Range;

use super::hex;
use crate::event::view::{self, Detail, Frame};
use crate::event::{tls_version_name, Message, View};
use crate::time::rfc3339;

#[derive(Debug, Clone, Copy, Default)]
pub struct TextFormat {
    /// Always print a hex dump.
    pub hex: bool,
    /// Show at most this many payload bytes; 0 = all.
    pub tsize: usize,
}

/// Characters a terminal acts on or that reorder what it shows: C0
/// controls, DEL, C1 controls, and the bidirectional formatting characters.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` fit for one line of a terminal: every character of `unsafe_char`
/// (tab, CR and LF included) written as an escape (`\x1b`, `\u{202e}`), and
/// backslashes doubled so that an escape cannot be faked. Fields that come
/// from traffic or from traced processes (names, header fields, debug data)
/// go through this before they are printed.
pub fn term_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| unsafe_char(c) || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x100 && unsafe_char(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `term_safe` of bytes that may not be UTF-8.
pub fn term_safe_bytes(b: &[u8]) -> String {
    term_safe(&String::from_utf8_lossy(b)).into_owned()
}

/// Text that reads well on a terminal: valid UTF-8 without control
/// characters other than tab, CR and LF, nor bidirectional overrides.
///
/// Printable ASCII is checked 64 bytes at a time without early exit, which
/// the compiler vectorises (the char-by-char check cost a third of the
/// dispatcher's time on bulk transfers); anything else takes the UTF-8 path.
pub fn is_printable(data: &[u8]) -> bool {
    let ascii = |b: u8| (b.wrapping_sub(0x20) < 0x5f) | (b == b'\n') | (b == b'\r') | (b == b'\t');
    if data.chunks(64).all(|c| c.iter().fold(true, |ok, &b| ok & ascii(b))) {
        return true;
    }
    match std::str::from_utf8(data) {
        Ok(s) => s.chars().all(|c| !unsafe_char(c) || matches!(c, '\n' | '\r' | '\t')),
        Err(_) => false,
    }
}

/// The present parts of `0..len`, given sorted, disjoint missing ranges.
fn present(len: usize, missing: &[Range<u32>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for m in missing {
        let (s, e) = ((m.start as usize).min(len), (m.end as usize).min(len));
        if s > at {
            out.push(at..s);
        }
        at = at.max(e);
    }
    if at < len {
        out.push(at..len);
    }
    out
}

impl TextFormat {
    /// Whether messages are shown through what assembly understood of them
    /// (`View`): not when --hex or -t ask for the bytes themselves.
    pub fn shows_views(&self) -> bool {
        !self.hex && self.tsize == 0
    }

    pub fn header(&self, m: &Message) -> String {
        let ev = &m.meta;
        let (src, dst) = ev.src_dst();
        format!(
            "{} PID:{}, Comm:{}, TID:{}, FD:{}, {}, Src:{}, Dest:{}, {}, Length:{}{}",
            rfc3339(ev.timestamp_ns),
            ev.pid,
            term_safe(ev.comm.as_str()),
            ev.tid,
            ev.fd,
            ev.direction.as_str(),
            src,
            dst,
            tls_version_name(ev.tls_version),
            m.payload.len(),
            if ev.maybe_plain { ", MayBePlain" } else { "" }
        )
    }

    pub fn write(&self, w: &mut dyn Write, m: &Message) -> io::Result<()> {
        w.write_all(self.header(m).as_bytes())?;
        w.write_all(b"\n")?;
        self.write_body(w, m)
    }

    /// Everything after the header line: the message as assembly understood
    /// it (unless --hex or -t ask for the bytes themselves), else the payload
    /// as text or hex; notes; a blank line.
    pub fn write_body(&self, w: &mut dyn Write, ev: &Message) -> io::Result<()> {
        if let (Some(v), true) = (ev.view.as_deref(), self.shows_views()) {
            if ev.missing.is_empty() && !ev.truncated() {
                return match v {
                    View::Http1 { head_len, body, notes, .. } => http1(w, &ev.payload, *head_len, body.as_deref(), notes),
                    View::Http2 { preface, frames } => http2(w, *preface, frames),
                };
            }
        }
        let len = ev.payload.len();
        let shown = if self.tsize > 0 { len.min(self.tsize) } else { len };
        let parts = present(shown, &ev.missing);
        let as_text = !self.hex && parts.iter().all(|r| is_printable(&ev.payload[r.clone()]));
        let mut at = 0usize;
        let mut ends_with_newline = true;
        for r in &parts {
            if r.start > at {
                if !ends_with_newline {
                    w.write_all(b"\n")?;
                }
                writeln!(w, "[ecapture: bytes {at}..{} lost in transit]", r.start)?;
            }
            let data = &ev.payload[r.clone()];
            if as_text {
                w.write_all(data)?;
                ends_with_newline = data.last().is_none_or(|&b| b == b'\n');
            } else {
                hex::dump(w, data, r.start)?;
                ends_with_newline = true;
            }
            at = r.end;
        }
        if !ends_with_newline {
            w.write_all(b"\n")?;
        }
        if at < shown {
            writeln!(w, "[ecapture: bytes {at}..{shown} lost in transit]")?;
        }
        if shown < len {
            writeln!(w, "[ecapture: showing {shown} of {len} bytes (-t/--tsize)]")?;
        }
        if ev.truncated() {
            writeln!(
                w,
                "[ecapture: the call transferred {} bytes; captured the first {len} (--maxpayload)]",
                ev.total_len
            )?;
        }
        w.write_all(b"\n")
    }
}

/// Text when printable, else a hex dump; ends with a newline.
fn text_or_hex(w: &mut dyn Write, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if is_printable(data) {
        w.write_all(data)?;
        if !data.ends_with(b"\n") {
            w.write_all(b"\n")?;
        }
        Ok(())
    } else {
        hex::dump(w, data, 0)
    }
}

/// An HTTP/1.x message: the head as received, the body as assembly
/// decoded it (or as received), notes on what was done.
fn http1(w: &mut dyn Write, payload: &[u8], head_len: usize, body: Option<&[u8]>, notes: &[String]) -> io::Result<()> {
    let head_len = head_len.min(payload.len());
    let (head, raw_body) = payload.split_at(head_len);
    if !is_printable(head) {
        hex::dump(w, payload, 0)?;
        return w.write_all(b"\n");
    }
    w.write_all(head)?;
    text_or_hex(w, body.unwrap_or(raw_body))?;
    for n in notes {
        writeln!(w, "[ecapture: {n}]")?;
    }
    w.write_all(b"\n")
}

/// HTTP/2: one block per frame — what it is, its header fields, its data.
fn http2(w: &mut dyn Write, preface: bool, frames: &[Frame]) -> io::Result<()> {
    if preface {
        writeln!(w, "HTTP/2 client connection preface")?;
    }
    for f in frames {
        let decompressed = matches!(f.detail, Detail::Data { decompressed: true, .. });
        writeln!(w, "HTTP/2 {}{}", frame_header(f), if decompressed { " (decompressed)" } else { "" })?;
        for line in detail_lines(f) {
            writeln!(w, "{line}")?;
        }
        if let Detail::Data { data, .. } = &f.detail {
            text_or_hex(w, data)?;
        }
        if let Some(n) = &f.note {
            writeln!(w, "{n}")?;
        }
    }
    w.write_all(b"\n")
}

/// `HEADERS stream=1 length=45 flags=END_STREAM|END_HEADERS`
pub fn frame_header(f: &Frame) -> String {
    use view::*;
    let mut s = format!("{} stream={} length={}", frame_type_name(f.kind), f.stream, f.len);
    let mut names = Vec::new();
    let ack_type = f.kind == SETTINGS || f.kind == PING;
    if f.flags & END_STREAM != 0 {
        names.push(if ack_type { "ACK" } else { "END_STREAM" });
    }
    if f.flags & END_HEADERS != 0 && matches!(f.kind, HEADERS | PUSH_PROMISE | CONTINUATION) {
        names.push("END_HEADERS");
    }
    if f.flags & PADDED != 0 && matches!(f.kind, DATA | HEADERS | PUSH_PROMISE) {
        names.push("PADDED");
    }
    if f.flags & PRIORITY_FLAG != 0 && f.kind == HEADERS {
        names.push("PRIORITY");
    }
    if !names.is_empty() {
        s.push_str(" flags=");
        s.push_str(&names.join("|"));
    }
    s
}

fn setting_name(id: u16) -> String {
    match id {
        1 => "HEADER_TABLE_SIZE".into(),
        2 => "ENABLE_PUSH".into(),
        3 => "MAX_CONCURRENT_STREAMS".into(),
        4 => "INITIAL_WINDOW_SIZE".into(),
        5 => "MAX_FRAME_SIZE".into(),
        6 => "MAX_HEADER_LIST_SIZE".into(),
        8 => "ENABLE_CONNECT_PROTOCOL".into(),
        9 => "NO_RFC7540_PRIORITIES".into(),
        id => format!("0x{id:x}"),
    }
}

fn error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES.get(code as usize).map_or_else(|| format!("0x{code:x}"), |n| n.to_string())
}

/// Lines describing a frame's contents (not its data).
pub fn detail_lines(f: &Frame) -> Vec<String> {
    let s = term_safe_bytes;
    match &f.detail {
        Detail::Headers { fields, promised } => {
            let mut v: Vec<String> = promised.iter().map(|p| format!("promised stream {p}")).collect();
            v.extend(fields.iter().map(|(n, val)| format!("header field \"{}\" = \"{}\"", s(n), s(val))));
            v
        }
        Detail::HeadersContinue => vec!["(header block continues in CONTINUATION frames)".into()],
        Detail::Settings(list) => list.iter().map(|(id, v)| format!("{} = {v}", setting_name(*id))).collect(),
        Detail::WindowUpdate(n) => vec![format!("window size increment = {n}")],
        Detail::Ping(d) => vec![format!("opaque data = {}", d.iter().map(|b| format!("{b:02x}")).collect::<String>())],
        Detail::RstStream(code) => vec![format!("error code = {}", error_name(*code))],
        Detail::GoAway { last_stream, code, debug } => {
            let mut v = vec![format!("last stream = {last_stream}, error code = {}", error_name(*code))];
            if !debug.is_empty() {
                v.push(format!("debug data = \"{}\"", s(debug)));
            }
            v
        }
        Detail::Priority { depends_on, weight, exclusive } => {
            vec![format!("depends on stream {depends_on}{}, weight {weight}", if *exclusive { " (exclusive)" } else { "" })]
        }
        Detail::Error(e) => vec![format!("[ecapture: cannot decode this frame: {e}]")],
        Detail::Data { .. } | Detail::Other => Vec::new(),
    }
}

/// A frame's header line, then its detail lines.
pub fn frame_lines(f: &Frame) -> Vec<String> {
    std::iter::once(frame_header(f)).chain(detail_lines(f)).collect()
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // missing ranges: one range is the common case
mod tests {
    use super::*;
    use crate::assemble::http1::display_body;
    use crate::assemble::http2;
    use crate::assemble::inflate::Coding;
    use crate::event::tests::sample_message;
    use crate::event::Direction;
    use std::net::SocketAddr;

    fn ev(payload: &[u8]) -> Message {
        sample_message(payload)
    }

    fn render(f: TextFormat, e: &Message) -> String {
        let mut v = Vec::new();
        f.write(&mut v, e).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn text_payload_follows_header_exactly() {
        let e = ev(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            render(TextFormat::default(), &e),
            "2026-11-30T13:30:18.123456Z PID:4242, Comm:curl, TID:4243, FD:5, WRITE, \
             Src:127.0.0.1:54321, Dest:127.0.0.1:8443, TLS1.3, Length:27\n\
             GET / HTTP/1.1\r\nHost: x\r\n\r\n\n"
        );
    }

    #[test]
    fn read_swaps_src_and_dest_and_ipv6_is_bracketed() {
        let mut e = ev(b"hi");
        e.meta.direction = Direction::Read;
        e.meta.endpoints = Some(("[::1]:40000".parse::<SocketAddr>().unwrap(), "[::1]:443".parse().unwrap()));
        let h = TextFormat::default().header(&e);
        assert!(h.contains("READ, Src:[::1]:443, Dest:[::1]:40000, TLS1.3, Length:2"), "{h}");
        e.meta.endpoints = None;
        assert!(TextFormat::default().header(&e).contains("Src:0.0.0.0:0, Dest:0.0.0.0:0"));
    }

    #[test]
    fn binary_and_forced_hex() {
        let out = render(TextFormat::default(), &ev(&[0x16, 0x03, 0x01, 0x00]));
        assert!(out.contains("Length:4\n00000000  16 03 01 00  "), "{out}");
        assert!(out.ends_with("|....|\n\n"), "{out}");
        let out = render(TextFormat { hex: true, tsize: 0 }, &ev(b"hello"));
        assert!(out.contains("\n00000000  68 65 6c 6c 6f"), "{out}");
        assert!(out.contains("|hello|\n\n"));
    }

    #[test]
    fn tsize_truncates_and_says_so() {
        let out = render(TextFormat { hex: false, tsize: 4 }, &ev(b"abcdefgh"));
        assert!(out.ends_with("Length:8\nabcd\n[ecapture: showing 4 of 8 bytes (-t/--tsize)]\n\n"), "{out}");
    }

    #[test]
    fn cap_truncation_and_lost_bytes_are_reported() {
        let mut e = ev(b"abcdefgh");
        e.total_len = 100;
        e.missing = vec![2..4];
        e.payload[2] = 0;
        e.payload[3] = 0;
        let out = render(TextFormat::default(), &e);
        assert!(out.contains("Length:8\nab\n[ecapture: bytes 2..4 lost in transit]\nefgh\n"), "{out}");
        assert!(out.contains("transferred 100 bytes; captured the first 8"), "{out}");
    }

    fn body(f: TextFormat, e: &Message) -> String {
        let mut v = Vec::new();
        f.write_body(&mut v, e).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn http1_chunked_gzip_body_is_shown_decoded() {
        let gz = miniz_oxide::deflate::compress_to_vec(b"hello, decoded world\n", 6);
        // A gzip member: header, raw deflate, CRC32 and size (unchecked).
        let mut member = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        member.extend(&gz);
        member.extend([0u8; 8]);
        let head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut payload = head.to_vec();
        payload.extend(format!("{:x}\r\n", member.len()).as_bytes());
        payload.extend(&member);
        payload.extend(b"\r\n0\r\n\r\n");
        let mut e = ev(&payload);
        // What assembly makes of a whole chunked gzip response.
        let (decoded, notes) = display_body(&payload[head.len()..], true, Some(Coding::Gzip), true);
        e.view = Some(Box::new(View::Http1 { head_len: head.len(), starts: true, complete: true, body: decoded, notes }));
        let out = body(TextFormat::default(), &e);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"), "{out}");
        assert!(out.contains("\r\n\r\nhello, decoded world\n[ecapture: chunked body de-chunked"), "{out}");
        assert!(out.contains("[ecapture: gzip body decompressed: "), "{out}");
        // --hex shows the bytes themselves.
        assert!(body(TextFormat { hex: true, tsize: 0 }, &e).starts_with("00000000  48 54 54 50"));
    }

    #[test]
    fn http2_frames_are_one_block_each() {
        let mut d = http2::Direction::new(true, true);
        let mut b = crate::assemble::http2::PREFACE.to_vec();
        b.extend([0, 0, 0, 4, 0, 0, 0, 0, 0]);
        b.extend([0, 0, 3, 1, 5, 0, 0, 0, 1, 0x82, 0x84, 0x86]);
        d.push(&b);
        let batch = d.take_batch().unwrap();
        let mut e = ev(&batch.bytes);
        e.view = Some(Box::new(View::Http2 { preface: batch.preface, frames: batch.frames }));
        assert_eq!(
            body(TextFormat::default(), &e),
            "HTTP/2 client connection preface\nHTTP/2 SETTINGS stream=0 length=0\n\
             HTTP/2 HEADERS stream=1 length=3 flags=END_STREAM|END_HEADERS\n\
             header field \":method\" = \"GET\"\nheader field \":path\" = \"/\"\nheader field \":scheme\" = \"http\"\n\n"
        );
    }

    #[test]
    fn printable_rules() {
        assert!(is_printable(b"line\r\n\ttabbed \xc3\xa9"));
        assert!(!is_printable(b"\x00abc"));
        assert!(!is_printable(b"\xff\xfe"));
        assert!(!is_printable(b"\x1b[31m"));
        assert!(is_printable(b""));
        assert!(!is_printable(b"\x7f"), "DEL");
        assert!(!is_printable("\u{85}".as_bytes()), "a C1 control");
        // The 64-byte blocks: a bad byte anywhere, in the first or a later one.
        let mut long = vec![b'a'; 200];
        assert!(is_printable(&long));
        for at in [0, 63, 64, 199] {
            long[at] = 0;
            assert!(!is_printable(&long), "NUL at {at}");
            long[at] = b'a';
        }
        long[130] = 0xc3;
        long[131] = 0xa9;
        assert!(is_printable(&long), "UTF-8 in a later block");
    }

    #[test]
    fn terminal_escapes_are_escaped() {
        assert_eq!(term_safe("plain, é"), "plain, é");
        assert_eq!(term_safe("\x1b[31mred\x07"), "\\x1b[31mred\\x07");
        assert_eq!(term_safe("a\u{9b}b\u{202e}c\\d\te"), "a\\x9bb\\u{202e}c\\\\d\\x09e");
        assert!(!is_printable("x\u{202e}y".as_bytes()), "bidi overrides go to the hex dump");
        let mut m = ev(b"x");
        m.meta.comm = "\x1b]0;pwned\x07".into();
        let h = TextFormat::default().header(&m);
        assert!(!h.contains('\x1b') && h.contains("Comm:\\x1b]0;pwned\\x07,"), "{h}");
    }

    #[test]
    fn present_ranges() {
        assert_eq!(present(10, &[]), vec![0..10]);
        assert_eq!(present(10, &[0..2, 5..7]), vec![2..5, 7..10]);
        assert_eq!(present(6, &[4..10]), vec![0..4]);
    }
}
