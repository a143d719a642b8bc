//! HTTP/1.x message framing for one direction of a connection: a message
//! is complete after its head and its body (Content-Length, the chunked
//! terminator, or — for responses without either — the connection's end).
//! Several messages in one read (pipelining, keep-alive) come out one by
//! one; a message cut anywhere across reads comes out whole.

use super::inflate::{self, Coding};

/// A message head (start line and header fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub is_request: bool,
    /// Request method, e.g. b"GET" (empty for a response).
    pub method: Vec<u8>,
    /// Response status (0 for a request).
    pub status: u16,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Bytes of the head, up to and including the empty line.
    pub len: usize,
}

impl Head {
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }

    fn chunked(&self) -> bool {
        self.field("transfer-encoding").is_some_and(|v| {
            String::from_utf8_lossy(v).rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        })
    }

    fn content_length(&self) -> Result<Option<u64>, &'static str> {
        match self.field("content-length") {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Some)
                .ok_or("bad Content-Length"),
        }
    }
}

/// Heads larger than this are not HTTP (or not worth waiting for).
pub const MAX_HEAD: usize = 64 << 10;

#[derive(Debug, PartialEq, Eq)]
pub enum HeadResult {
    Incomplete,
    Bad(&'static str),
    Head(Head),
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Where the head at the start of `buf` ends (after its blank line), looking
/// from `from` on (bytes before it are known to hold no blank line's end).
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.min(buf.len());
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        let blank = (nl >= 1 && buf[nl - 1] == b'\n') || (nl >= 2 && buf[nl - 1] == b'\r' && buf[nl - 2] == b'\n');
        if blank {
            return Some(nl + 1);
        }
        i = nl + 1;
    }
    None
}

/// Parses the head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> HeadResult {
    match find_head_end(buf, 0) {
        Some(end) => parse_head_upto(buf, end),
        None if buf.len() > MAX_HEAD => HeadResult::Bad("head too large"),
        None => HeadResult::Incomplete,
    }
}

/// Parses the head that is `buf[..end]` (`end` from `find_head_end`).
fn parse_head_upto(buf: &[u8], end: usize) -> HeadResult {
    if end > MAX_HEAD {
        return HeadResult::Bad("head too large");
    }
    let mut lines = buf[..end].split(|&b| b == b'\n').map(trim_cr);
    let start = lines.next().unwrap_or_default();
    let mut head = Head { is_request: false, method: Vec::new(), status: 0, fields: Vec::new(), len: end };
    if let Some(rest) = start.strip_prefix(b"HTTP/1.") {
        let code = rest.get(2..5).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse::<u16>().ok());
        match (rest.first(), rest.get(1), code) {
            (Some(b'0' | b'1'), Some(b' '), Some(code)) if (100..1000).contains(&code) => head.status = code,
            _ => return HeadResult::Bad("bad status line"),
        }
    } else {
        let mut parts = start.split(|&b| b == b' ');
        let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return HeadResult::Bad("bad request line");
        };
        if method.is_empty() || target.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_')
        {
            return HeadResult::Bad("bad request line");
        }
        if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
            return HeadResult::Bad("not HTTP/1.x");
        }
        head.is_request = true;
        head.method = method.to_vec();
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else { return HeadResult::Bad("bad header field") };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        head.fields.push((line[..colon].to_vec(), trim_cr(value).to_vec()));
    }
    HeadResult::Head(head)
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    /// Until the connection ends (HTTP/1.0-style responses).
    UntilClose,
}

/// The body of a message with `head`; `request_method` is the method of the
/// request a response answers, when known.
pub fn body_of(head: &Head, request_method: Option<&[u8]>) -> Result<Body, &'static str> {
    if !head.is_request {
        let no_body = head.status < 200 || head.status == 204 || head.status == 304 || request_method == Some(b"HEAD");
        let tunnel = request_method == Some(b"CONNECT") && (200..300).contains(&head.status);
        if no_body || tunnel {
            return Ok(Body::None);
        }
    }
    if head.chunked() {
        return Ok(Body::Chunked);
    }
    match head.content_length()? {
        Some(n) => Ok(Body::Length(n)),
        None if head.is_request => Ok(Body::None),
        None => Ok(Body::UntilClose),
    }
}

/// A chunked body read as it comes: the state survives between reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    /// The size line (or trailer line) read so far.
    line: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

impl Chunked {
    /// Consumes `data`; Some(n) when the body ends after its first n bytes.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, &'static str> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                ChunkState::Data(left) => {
                    let take = (data.len() - i).min(left as usize);
                    i += take;
                    self.state = if left == take as u64 { ChunkState::DataEnd } else { ChunkState::Data(left - take as u64) };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let b = data[i];
                    i += 1;
                    if b != b'\n' {
                        if self.line.len() > 4096 {
                            return Err("chunk line too long");
                        }
                        self.line.push(b);
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    let line = trim_cr(&line);
                    match self.state {
                        ChunkState::Size => {
                            let hex = line.split(|&c| c == b';').next().unwrap_or_default();
                            let hex = std::str::from_utf8(hex).map_err(|_| "bad chunk size")?.trim();
                            let n = u64::from_str_radix(hex, 16).map_err(|_| "bad chunk size")?;
                            self.state = if n == 0 { ChunkState::Trailer } else { ChunkState::Data(n) };
                        }
                        ChunkState::DataEnd => {
                            if !line.is_empty() {
                                return Err("chunk data not followed by CRLF");
                            }
                            self.state = ChunkState::Size;
                        }
                        _ => {
                            if line.is_empty() {
                                *self = Chunked::default();
                                return Ok(Some(i));
                            }
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The data of a complete chunked body, without the chunk framing.
pub fn dechunk(body: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    loop {
        let nl = body[at..].iter().position(|&b| b == b'\n').ok_or("truncated chunked body")?;
        let line = trim_cr(&body[at..at + nl]);
        at += nl + 1;
        let hex = line.split(|&c| c == b';').next().unwrap_or_default();
        let n = std::str::from_utf8(hex).ok().and_then(|h| usize::from_str_radix(h.trim(), 16).ok()).ok_or("bad chunk size")?;
        if n == 0 {
            return Ok(out);
        }
        let data = body.get(at..at + n).ok_or("truncated chunked body")?;
        out.extend_from_slice(data);
        at += n;
        if body.get(at) == Some(&b'\r') {
            at += 1;
        }
        if body.get(at) == Some(&b'\n') {
            at += 1;
        }
    }
}

/// What the framer hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub bytes: Vec<u8>,
    /// The head of the message these bytes belong to.
    pub head: Head,
    pub body: Body,
    /// The bytes start with the head (false for the rest of a message
    /// emitted in parts).
    pub has_head: bool,
    /// The message ends with these bytes.
    pub complete: bool,
}

#[derive(Debug)]
struct Current {
    head: Head,
    body: Body,
    /// Where the body starts in the buffer (0 once part has been emitted).
    body_start: usize,
    /// Length bodies: bytes still to come after `body_start`.
    left: u64,
    chunked: Chunked,
    /// Chunked bodies: bytes of the buffer already fed to `chunked`.
    fed: usize,
    has_head: bool,
}

/// Frames one direction's bytes into messages.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    cur: Option<Current>,
    /// Bytes of `buf` already searched for the end of a head: a head that
    /// arrives a byte at a time is not rescanned from its start each time.
    head_scan: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// These bytes are not HTTP/1.x: the caller should stop framing.
    NotHttp(&'static str),
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// A message is under way (its head has been read).
    pub fn in_message(&self) -> bool {
        self.cur.is_some()
    }

    /// The next complete message. A response's framing may depend on the
    /// request it answers: `method` gives that request's method when asked.
    pub fn next(&mut self, method: &mut dyn FnMut() -> Option<Vec<u8>>) -> Result<Option<Message>, FrameError> {
        if self.cur.is_none() {
            if self.buf.is_empty() {
                return Ok(None);
            }
            let Some(end) = find_head_end(&self.buf, self.head_scan.saturating_sub(2)) else {
                self.head_scan = self.buf.len();
                if self.buf.len() > MAX_HEAD {
                    return Err(FrameError::NotHttp("head too large"));
                }
                return Ok(None);
            };
            self.head_scan = 0;
            let head = match parse_head_upto(&self.buf, end) {
                HeadResult::Incomplete => return Ok(None),
                HeadResult::Bad(why) => return Err(FrameError::NotHttp(why)),
                HeadResult::Head(h) => h,
            };
            let request_method = if head.is_request || head.status < 200 { None } else { method() };
            let body = body_of(&head, request_method.as_deref()).map_err(FrameError::NotHttp)?;
            let left = if let Body::Length(n) = body { n } else { 0 };
            self.cur = Some(Current { body_start: head.len, fed: head.len, head, body, left, chunked: Chunked::default(), has_head: true });
        }
        let Some(cur) = self.cur.as_mut() else { return Ok(None) };
        let end = match cur.body {
            Body::None => Some(cur.body_start),
            Body::Length(_) => {
                let have = (self.buf.len() - cur.body_start) as u64;
                (have >= cur.left).then(|| cur.body_start + cur.left as usize)
            }
            Body::Chunked => match cur.chunked.feed(&self.buf[cur.fed..]).map_err(FrameError::NotHttp)? {
                Some(n) => Some(cur.fed + n),
                None => {
                    cur.fed = self.buf.len();
                    None
                }
            },
            Body::UntilClose => None,
        };
        let Some(end) = end else { return Ok(None) };
        let rest = self.buf.split_off(end);
        let bytes = std::mem::replace(&mut self.buf, rest);
        let Some(cur) = self.cur.take() else { return Ok(None) };
        Ok(Some(Message { bytes, head: cur.head, body: cur.body, has_head: cur.has_head, complete: true }))
    }

    /// Hands out what is buffered though the message is not complete (idle
    /// time, size cap, connection end); framing goes on with later bytes.
    pub fn take_partial(&mut self, ended: bool) -> Option<Message> {
        if self.buf.is_empty() {
            return None;
        }
        let bytes = std::mem::take(&mut self.buf);
        self.head_scan = 0;
        match self.cur.as_mut() {
            None => {
                // Not even a whole head: give it out as is.
                let head = Head { is_request: false, method: Vec::new(), status: 0, fields: Vec::new(), len: 0 };
                Some(Message { bytes, head, body: Body::None, has_head: false, complete: false })
            }
            Some(cur) => {
                let body_bytes = (bytes.len() - cur.body_start) as u64;
                if let Body::Length(_) = cur.body {
                    cur.left = cur.left.saturating_sub(body_bytes);
                }
                let msg = Message {
                    bytes,
                    head: cur.head.clone(),
                    body: cur.body,
                    has_head: cur.has_head,
                    complete: ended && cur.body == Body::UntilClose,
                };
                cur.body_start = 0;
                cur.fed = 0;
                cur.has_head = false;
                if ended {
                    self.cur = None;
                }
                Some(msg)
            }
        }
    }
}

/// The body of a message for display: de-chunked and decompressed when the
/// whole message is here (`whole`), with notes on what was done or why not.
/// None: show the body as received.
pub fn display_body(body: &[u8], chunked: bool, coding: Option<Coding>, whole: bool) -> (Option<Vec<u8>>, Vec<String>) {
    let mut notes = Vec::new();
    let mut shown: Option<Vec<u8>> = None;
    if whole && chunked {
        match dechunk(body) {
            Ok(b) => {
                notes.push(format!("chunked body de-chunked: {} bytes of data", b.len()));
                shown = Some(b);
            }
            Err(e) => notes.push(format!("chunked body shown as received: {e}")),
        }
    }
    if let Some(c) = coding {
        let name = if c == Coding::Gzip { "gzip" } else { "deflate" };
        let current = shown.as_deref().unwrap_or(body);
        if whole && !current.is_empty() {
            match inflate::decode(c, current) {
                Ok(b) => {
                    notes.push(format!("{name} body decompressed: {} bytes to {}", current.len(), b.len()));
                    shown = Some(b);
                }
                Err(e) => notes.push(format!("{name} body shown as received: {e}")),
            }
        } else if !current.is_empty() {
            notes.push(format!("{name} body in parts: shown as received"));
        }
    }
    (shown, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `cut` (and then whole reads), collecting messages.
    fn frame_all(input: &[u8], cuts: &[usize], methods: &[&str]) -> Vec<Message> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        let mut queue: std::collections::VecDeque<Vec<u8>> = methods.iter().map(|m| m.as_bytes().to_vec()).collect();
        let mut at = 0;
        for &c in cuts.iter().chain([input.len()].iter()) {
            f.push(&input[at..c]);
            at = c;
            while let Some(m) = f.next(&mut || queue.pop_front()).unwrap() {
                out.push(m);
            }
        }
        out
    }

    const PIPELINED: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n";

    #[test]
    fn pipelined_requests_in_one_read() {
        let m = frame_all(PIPELINED, &[], &[]);
        assert_eq!(m.len(), 3);
        assert!(m[0].bytes.starts_with(b"GET /a ") && m[0].bytes.ends_with(b"\r\n\r\n"));
        assert!(m[1].bytes.starts_with(b"POST /b ") && m[1].bytes.ends_with(b"hello"));
        assert!(m[2].bytes.starts_with(b"PUT /c ") && m[2].bytes.ends_with(b"X-Trailer: t\r\n\r\n"));
        assert_eq!([m[0].body, m[1].body, m[2].body], [Body::None, Body::Length(5), Body::Chunked]);
        assert!(m.iter().all(|m| m.complete && m.has_head && m.head.is_request));
        assert_eq!(m.iter().map(|m| m.bytes.len()).sum::<usize>(), PIPELINED.len());
        assert_eq!(dechunk(&m[2].bytes[m[2].head.len..]).unwrap(), b"wikipedia");
    }

    #[test]
    fn split_at_every_byte_boundary_gives_the_same_messages() {
        let whole = frame_all(PIPELINED, &[], &[]);
        for cut in 1..PIPELINED.len() {
            assert_eq!(frame_all(PIPELINED, &[cut], &[]), whole, "cut at {cut}");
        }
        let every: Vec<usize> = (1..PIPELINED.len()).collect();
        assert_eq!(frame_all(PIPELINED, &every, &[]), whole, "one byte at a time");
    }

    #[test]
    fn responses_keep_alive_head_and_no_body_statuses() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n\
HTTP/1.1 304 Not Modified\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n";
        // The second answers a HEAD: its Content-Length has no body after it.
        let m = frame_all(resp, &[], &["GET", "HEAD", "GET", "GET", "POST"]);
        assert_eq!(m.len(), 6, "{m:?}");
        assert_eq!(m[0].bytes.len(), 41);
        assert_eq!(m[1].body, Body::None, "HEAD");
        assert_eq!(m[2].head.status, 304);
        assert_eq!(m[3].head.status, 100);
        assert_eq!(m[5].body, Body::Chunked);
        let whole = m;
        for cut in 1..resp.len() {
            assert_eq!(frame_all(resp, &[cut], &["GET", "HEAD", "GET", "GET", "POST"]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn until_close_and_partials() {
        let mut f = Framer::default();
        f.push(b"HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<html>");
        assert_eq!(f.next(&mut || None).unwrap(), None, "ends with the connection");
        let p = f.take_partial(false).unwrap();
        assert!(p.has_head && !p.complete);
        f.push(b"more</html>");
        let p = f.take_partial(true).unwrap();
        assert!(!p.has_head && p.complete);
        assert_eq!(p.bytes, b"more</html>");
        assert!(!f.in_message());

        // A Content-Length body emitted in two parts, then the next message.
        let mut f = Framer::default();
        f.push(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");
        assert_eq!(f.next(&mut || None).unwrap(), None);
        assert_eq!(f.take_partial(false).unwrap().bytes.len(), 44);
        f.push(b"67890GET / HTTP/1.1\r\n\r\n");
        let rest = f.next(&mut || None).unwrap().unwrap();
        assert_eq!((rest.bytes.as_slice(), rest.has_head, rest.complete), (&b"67890"[..], false, true));
        assert!(f.next(&mut || None).unwrap().unwrap().bytes.starts_with(b"GET / "));
    }

    #[test]
    fn not_http() {
        let mut f = Framer::default();
        f.push(b"\x16\x03\x01\x00\x05hello\r\n\r\n");
        assert!(matches!(f.next(&mut || None), Err(FrameError::NotHttp(_))));
        let mut f = Framer::default();
        f.push(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n");
        assert_eq!(f.next(&mut || Some(b"GET".to_vec())), Err(FrameError::NotHttp("bad Content-Length")));
        let mut c = Chunked::default();
        assert!(c.feed(b"zz\r\n").is_err());
        assert!(dechunk(b"5\r\nab").is_err());
    }

    #[test]
    fn head_fields() {
        let HeadResult::Head(h) = parse_head(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nX-A:b\r\n\r\n") else { panic!() };
        assert_eq!((h.status, h.field("content-encoding"), h.field("x-a")), (200, Some(&b"gzip"[..]), Some(&b"b"[..])));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost"), HeadResult::Incomplete);
        assert!(parse_head(b"GET / HTTP/1.1\nHost: x\n\n").is_head(), "bare LF");
    }

    impl HeadResult {
        fn is_head(&self) -> bool {
            matches!(self, HeadResult::Head(_))
        }
    }

    #[test]
    fn a_head_sent_a_byte_at_a_time_is_scanned_once() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        while head.len() < 60_000 {
            head.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut f = Framer::default();
        let mut got = None;
        for b in &head {
            f.push(&[*b]);
            if let Some(m) = f.next(&mut || None).unwrap() {
                got = Some(m);
            }
            // Each call looks at the new byte only.
            assert!(f.head_scan == 0 || f.head_scan == f.buf.len());
        }
        let m = got.expect("the whole head");
        assert_eq!(m.bytes, head);
        assert!(m.complete);
    }
}
