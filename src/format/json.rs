//! JSON lines (`--eventformat json`): one object per event on one line, what
//! log pipelines (Vector, Fluent Bit, Loki/Promtail, jq) ingest directly.
//!
//! Fields: those of the eCaptureQ `Event` (timestamp, uuid, src_ip,
//! src_port, dst_ip, dst_port, pid, pname, type, length, payload) plus
//! direction, tid, uid, fd and tls_version. The payload is a JSON string
//! when it is valid UTF-8 (`"payload_encoding":"utf-8"`), else base64
//! (`"payload_encoding":"base64"`). A truncated call adds
//! `"truncated":true,"total_length":N`; bytes lost in transit add
//! `"missing":[[start,end],...]`.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::event::{tls_version_name, Direction, Message};

/// Whether `c` is written as an escape: JSON's own (quote, backslash, C0),
/// and what a terminal would act on (DEL, C1, line and paragraph separators,
/// bidirectional overrides).
fn needs_escape(c: char) -> bool {
    (c as u32) < 0x20
        || c == '"'
        || c == '\\'
        || (0x7f..=0x9f).contains(&(c as u32))
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Appends `s` as a JSON string (quotes included). Runs of characters that
/// need no escape are copied whole; bytes that cannot start one are skipped
/// over without decoding (the common case: printable ASCII).
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let b = s.as_bytes();
    let mut run = 0; // start of the bytes not yet copied
    let mut i = 0;
    while i < b.len() {
        let x = b[i];
        // Printable ASCII other than '"' and '\\' never needs an escape.
        if (0x20..0x7f).contains(&x) && x != b'"' && x != b'\\' {
            i += 1;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or('\u{fffd}');
        let len = c.len_utf8();
        if needs_escape(c) {
            out.push_str(&s[run..i]);
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
            }
            run = i + len;
        }
        i += len;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 { A[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if c.len() > 2 { A[n as usize & 63] as char } else { '=' });
    }
    out
}

/// One message as a JSON object, without the newline.
pub fn event(m: &Message) -> String {
    let ev = &m.meta;
    let (client, server) = ev.client_server();
    let mut o = String::with_capacity(256 + m.payload.len() * 4 / 3);
    let _ = write!(o, "{{\"timestamp\":{},\"uuid\":", ev.timestamp_ns);
    push_str(&mut o, &ev.uuid());
    let _ = write!(o, ",\"src_ip\":\"{}\",\"src_port\":{},", client.ip(), client.port());
    let _ = write!(o, "\"dst_ip\":\"{}\",\"dst_port\":{},\"pid\":{},\"pname\":", server.ip(), server.port(), ev.pid);
    push_str(&mut o, ev.comm.as_str());
    let dir = match ev.direction {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    let _ = write!(
        o,
        ",\"type\":{},\"length\":{},\"direction\":\"{dir}\",\"tid\":{},\"uid\":{},\"fd\":{},\"tls_version\":\"{}\"",
        m.kind,
        m.payload.len(),
        ev.tid,
        ev.uid,
        ev.fd,
        tls_version_name(ev.tls_version)
    );
    if ev.maybe_plain {
        o.push_str(",\"may_be_plain\":true");
    }
    if m.truncated() {
        let _ = write!(o, ",\"truncated\":true,\"total_length\":{}", m.total_len);
    }
    if !m.missing.is_empty() {
        o.push_str(",\"missing\":[");
        for (i, r) in m.missing.iter().enumerate() {
            let _ = write!(o, "{}[{},{}]", if i > 0 { "," } else { "" }, r.start, r.end);
        }
        o.push(']');
    }
    match std::str::from_utf8(&m.payload) {
        Ok(text) => {
            o.push_str(",\"payload_encoding\":\"utf-8\",\"payload\":");
            push_str(&mut o, text);
        }
        Err(_) => {
            o.push_str(",\"payload_encoding\":\"base64\",\"payload\":\"");
            o.push_str(&base64(&m.payload));
            o.push('"');
        }
    }
    o.push('}');
    o
}

/// Writes one message as a JSON line.
pub fn write(w: &mut dyn Write, m: &Message) -> io::Result<()> {
    let mut line = event(m);
    line.push('\n');
    w.write_all(line.as_bytes())
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // missing ranges: one range is the common case
mod tests {
    use super::*;
    use crate::event::tests::sample_message;
    use crate::event::{Meta, Role};

    fn ev(payload: &[u8]) -> Message {
        let m = sample_message(payload);
        Message {
            meta: Meta {
                uid: 1000,
                comm: "cu\"rl".into(),
                direction: Direction::Read,
                tls_version: 0x0303,
                endpoints: Some(("[::1]:443".parse().unwrap(), "[::1]:50000".parse().unwrap())),
                role: Some(Role::Server),
                maybe_plain: false,
                ..m.meta
            },
            kind: crate::assemble::detect::message_type(payload),
            ..m
        }
    }

    #[test]
    fn text_payload() {
        assert_eq!(
            event(&ev(b"GET / HTTP/1.1\r\n\ttab \x01 \xc3\xa9")),
            "{\"timestamp\":1796045418123456789,\"uuid\":\"4242_4243_cu\\\"rl_5_0_[::1]:50000-[::1]:443\",\
             \"src_ip\":\"::1\",\"src_port\":50000,\"dst_ip\":\"::1\",\"dst_port\":443,\"pid\":4242,\"pname\":\"cu\\\"rl\",\
             \"type\":1,\"length\":25,\"direction\":\"read\",\"tid\":4243,\"uid\":1000,\"fd\":5,\"tls_version\":\"TLS1.2\",\
             \"payload_encoding\":\"utf-8\",\"payload\":\"GET / HTTP/1.1\\r\\n\\ttab \\u0001 é\"}"
        );
    }

    #[test]
    fn binary_payload_is_base64_and_notes_are_fields() {
        let mut e = ev(&[0xff, 0x00, 0x16, 0x03]);
        e.total_len = 100;
        e.missing = vec![1..2];
        let j = event(&e);
        assert!(j.ends_with(",\"truncated\":true,\"total_length\":100,\"missing\":[[1,2]],\"payload_encoding\":\"base64\",\"payload\":\"/wAWAw==\"}"), "{j}");
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 §10.
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\u{7f}\u{2028}\n\u{9b}\u{202e}");
        assert_eq!(s, "\"a\\\"b\\\\c\\u007f\\u2028\\n\\u009b\\u202e\"");
    }
}
