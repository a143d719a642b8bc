//! What kind of message a payload is, from its first bytes alone: the
//! event `type` of SPEC §4 (0 unknown, 1 HTTP/1.x request, 2 HTTP/2
//! request, 3 HTTP/1.x response, 4 HTTP/2 response). Stateless: an HTTP/2
//! connection is recognised by its client preface only; frames after it
//! need the connection's state (`conn`) and are 0 here.

use crate::event::{HTTP1_REQUEST, HTTP1_RESPONSE, HTTP2_REQUEST, UNKNOWN};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The event type of a message starting with `payload`.
pub fn message_type(payload: &[u8]) -> u32 {
    if payload.starts_with(H2_PREFACE) {
        return HTTP2_REQUEST;
    }
    if is_status_line(payload) {
        return HTTP1_RESPONSE;
    }
    if is_request_line(payload) {
        return HTTP1_REQUEST;
    }
    UNKNOWN
}

/// "HTTP/1.1 200 ..." (or 1.0).
fn is_status_line(p: &[u8]) -> bool {
    (p.starts_with(b"HTTP/1.1 ") || p.starts_with(b"HTTP/1.0 ")) && p.len() >= 12 && p[9..12].iter().all(u8::is_ascii_digit)
}

/// "METHOD target HTTP/1.x\r\n": an upper-case token, a target, the version.
fn is_request_line(p: &[u8]) -> bool {
    let line_end = p.iter().take(8192).position(|&b| b == b'\n');
    let Some(end) = line_end else { return false };
    let line = p[..end].strip_suffix(b"\r").unwrap_or(&p[..end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.len() <= 16
        && method.iter().all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_')
        && !target.is_empty()
        && (version == b"HTTP/1.1" || version == b"HTTP/1.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_requests_and_responses() {
        assert_eq!(message_type(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP1_REQUEST);
        assert_eq!(message_type(b"POST /api?q=1 HTTP/1.0\r\n"), HTTP1_REQUEST);
        assert_eq!(message_type(b"M-SEARCH * HTTP/1.1\r\n"), HTTP1_REQUEST);
        assert_eq!(message_type(b"HTTP/1.1 200 OK\r\n"), HTTP1_RESPONSE);
        assert_eq!(message_type(b"HTTP/1.0 404 Not Found\r\n"), HTTP1_RESPONSE);
    }

    #[test]
    fn http2_preface_and_unknowns() {
        assert_eq!(message_type(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04"), HTTP2_REQUEST);
        for p in [
            &b""[..],
            b"GET / HTTP/1.1",            // no end of line yet
            b"get / HTTP/1.1\r\n",        // methods are upper case
            b"GET  HTTP/1.1\r\n",         // no target
            b"GET / HTTP/2.0\r\n",        // not HTTP/1
            b"HTTP/1.1 2xx\r\n",
            b"\x16\x03\x01\x02\x00",      // binary
            b"PRI * HTTP/2.0\r\n",        // a partial preface
        ] {
            assert_eq!(message_type(p), UNKNOWN, "{:?}", String::from_utf8_lossy(p));
        }
    }
}
