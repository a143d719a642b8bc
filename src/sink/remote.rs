//! Sinks that send to a collector: TCP (newline-delimited records) and
//! WebSocket (one text frame per record). A collector that is down at
//! start, or goes away later, does not stop anything: records wait in a
//! bounded buffer (oldest dropped and counted beyond it), the sink
//! reconnects with capped exponential backoff, and says what was dropped
//! when the connection returns.
//!
//! Before each batch the socket is checked for an end of stream, so a
//! collector that closed (or restarted) is noticed before records are
//! written into a dead connection; a collector that vanishes without
//! closing is noticed by the failing write (or its 10 s timeout), and the
//! record being written then is sent again after reconnecting.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::SinkStats;
use crate::transport::{self, Stream};

/// Records held while the collector is unreachable.
const PENDING_MAX_BYTES: usize = 16 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long shutdown waits for a collector to answer a Close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach a collector.
pub trait Remote: Send + 'static {
    type Conn;
    fn name(&self) -> String;
    fn connect(&self) -> io::Result<Self::Conn>;
    /// Sends one record (buffered; `flush` pushes it out).
    fn send(&self, c: &mut Self::Conn, record: &[u8]) -> io::Result<()>;
    fn flush(&self, c: &mut Self::Conn) -> io::Result<()>;
    /// False when the collector has closed the connection.
    fn alive(&self, c: &mut Self::Conn) -> bool;
    /// Ends the connection cleanly at shutdown (a WebSocket Close frame).
    fn close(&self, _c: &mut Self::Conn) {}
}

/// Whether the peer has closed: a non-blocking peek that finds the end of
/// the stream (or an error). Data waiting to be read means alive.
fn peer_open(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    let open = match s.peek(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
    };
    open && s.set_nonblocking(false).is_ok()
}

pub struct TcpTarget {
    pub host: String,
    pub port: u16,
}

impl Remote for TcpTarget {
    type Conn = io::BufWriter<TcpStream>;

    fn name(&self) -> String {
        super::Target::Tcp { host: self.host.clone(), port: self.port }.to_string()
    }

    fn connect(&self) -> io::Result<Self::Conn> {
        Ok(io::BufWriter::with_capacity(64 << 10, transport::connect_tcp(&self.host, self.port)?))
    }

    fn send(&self, c: &mut Self::Conn, record: &[u8]) -> io::Result<()> {
        c.write_all(record)?;
        if !record.ends_with(b"\n") {
            c.write_all(b"\n")?;
        }
        Ok(())
    }

    fn flush(&self, c: &mut Self::Conn) -> io::Result<()> {
        c.flush()
    }

    fn alive(&self, c: &mut Self::Conn) -> bool {
        let s = c.get_ref();
        // A collector that sends us something is not speaking our protocol;
        // read and discard it so it cannot fill our receive buffer.
        if peer_open(s) {
            let _ = s.set_nonblocking(true);
            let mut sink = [0u8; 4096];
            while let Ok(n) = c.get_mut().read(&mut sink) {
                if n == 0 {
                    let _ = c.get_ref().set_nonblocking(false);
                    return false;
                }
            }
            c.get_ref().set_nonblocking(false).is_ok()
        } else {
            false
        }
    }
}

pub struct WsTarget {
    /// ws://… or wss://…
    pub url: String,
    /// The TLS client configuration, for wss://.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Remote for WsTarget {
    type Conn = tungstenite::WebSocket<Stream>;

    fn name(&self) -> String {
        self.url.clone()
    }

    fn connect(&self) -> io::Result<Self::Conn> {
        transport::connect_ws(&self.url, self.tls.as_ref(), None)
    }

    fn send(&self, c: &mut Self::Conn, record: &[u8]) -> io::Result<()> {
        let mut end = record.len();
        while end > 0 && record[end - 1] == b'\n' {
            end -= 1;
        }
        let text = String::from_utf8_lossy(&record[..end]).into_owned();
        c.write(tungstenite::Message::Text(text.into())).map_err(ws_err)
    }

    fn flush(&self, c: &mut Self::Conn) -> io::Result<()> {
        c.flush().map_err(ws_err)
    }

    fn alive(&self, c: &mut Self::Conn) -> bool {
        if !peer_open(c.get_ref().tcp()) {
            return false;
        }
        // Something to read (a ping, a close, TLS records): let tungstenite
        // (and TLS) handle it.
        let mut b = [0u8; 1];
        if c.get_ref().tcp().set_nonblocking(true).is_err() {
            return false;
        }
        let waiting = matches!(c.get_ref().tcp().peek(&mut b), Ok(n) if n > 0);
        let mut ok = true;
        if waiting {
            loop {
                match c.read() {
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        ok && c.get_ref().tcp().set_nonblocking(false).is_ok()
    }

    /// A Close frame, its answer awaited briefly, then TLS close_notify.
    fn close(&self, c: &mut Self::Conn) {
        let _ = c.get_ref().tcp().set_read_timeout(Some(CLOSE_TIMEOUT));
        let bye = tungstenite::protocol::CloseFrame { code: tungstenite::protocol::frame::coding::CloseCode::Normal, reason: "ecapture stopping".into() };
        if c.close(Some(bye)).is_ok() {
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            // Until the collector's Close arrives (read returns an error
            // once the closing handshake is done) or the time is up.
            while Instant::now() < deadline {
                match c.read() {
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        c.get_mut().close_notify();
    }
}

fn ws_err(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(io) => io,
        other => io::Error::other(other.to_string()),
    }
}

/// Records waiting for the collector, bounded by bytes (oldest dropped).
struct Pending {
    q: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Dropped since last reported.
    dropped: u64,
}

impl Pending {
    fn push(&mut self, rec: Vec<u8>, stats: &SinkStats) {
        self.bytes += rec.len();
        self.q.push_back(rec);
        while self.bytes > PENDING_MAX_BYTES.min(stats.max_bytes) && self.q.len() > 1 {
            if let Some(old) = self.q.pop_front() {
                self.bytes -= old.len();
                self.dropped += 1;
                stats.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The sink thread: until every sender is gone, keep a connection and
/// send what arrives.
pub fn run<R: Remote>(remote: R, rx: Receiver<Vec<u8>>, stats: &SinkStats) {
    let name = remote.name();
    let mut pending = Pending { q: VecDeque::new(), bytes: 0, dropped: 0 };
    let mut conn: Option<R::Conn> = None;
    let mut backoff = BACKOFF_MIN;
    let mut next_try = Instant::now();
    let mut down_since: Option<Instant> = None;
    let mut closing = false;
    loop {
        if conn.is_none() && !closing && Instant::now() >= next_try {
            match remote.connect() {
                Ok(c) => {
                    conn = Some(c);
                    backoff = BACKOFF_MIN;
                    if down_since.take().is_some() || pending.dropped > 0 {
                        let lost = std::mem::take(&mut pending.dropped);
                        if lost > 0 {
                            log::warn!("{name} is back; {lost} records were dropped while it was unreachable");
                        } else {
                            log::info!("{name} is back; sending {} buffered records", pending.q.len());
                        }
                    }
                }
                Err(e) => {
                    if down_since.is_none() {
                        log::warn!("{name} unreachable ({e}); retrying, buffering up to {} MiB meanwhile", PENDING_MAX_BYTES >> 20);
                        down_since = Some(Instant::now());
                    }
                    next_try = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if !pending.q.is_empty() && !remote.alive(c) {
                log::warn!("{name} closed the connection; reconnecting");
                conn = None;
                down_since = Some(Instant::now());
                next_try = Instant::now();
                continue;
            }
            let mut failed = None;
            while let Some(rec) = pending.q.front() {
                if let Err(e) = remote.send(c, rec) {
                    failed = Some(e);
                    break;
                }
                if let Some(rec) = pending.q.pop_front() {
                    pending.bytes -= rec.len();
                    stats.written.fetch_add(1, Relaxed);
                }
            }
            if failed.is_none() {
                failed = remote.flush(c).err();
            }
            if let Some(e) = failed {
                log::warn!("{name}: sending failed ({e}); reconnecting");
                conn = None;
                down_since = Some(Instant::now());
                next_try = Instant::now() + BACKOFF_MIN;
            }
        }
        if closing {
            break;
        }
        // Wait for records: indefinitely while connected and caught up,
        // else until the next connection attempt.
        let got = if conn.is_some() && pending.q.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            let wait = next_try.saturating_duration_since(Instant::now()).clamp(Duration::from_millis(10), Duration::from_millis(500));
            rx.recv_timeout(wait)
        };
        match got {
            Ok(rec) => {
                stats.took(&rec);
                pending.push(rec, stats);
                while let Ok(rec) = rx.try_recv() {
                    stats.took(&rec);
                    pending.push(rec, stats);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // Every sender is gone: one last attempt to send, then stop.
            Err(RecvTimeoutError::Disconnected) => closing = true,
        }
    }
    if let Some(mut c) = conn.take() {
        remote.close(&mut c);
    }
    if !pending.q.is_empty() {
        stats.dropped.fetch_add(pending.q.len() as u64, Relaxed);
        log::warn!("{name}: {} records not delivered at exit (collector unreachable)", pending.q.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_buffer_drops_oldest_beyond_its_bound_and_counts() {
        let stats = SinkStats { max_bytes: usize::MAX, ..SinkStats::default() };
        let mut p = Pending { q: VecDeque::new(), bytes: 0, dropped: 0 };
        let rec = vec![b'x'; 1 << 20];
        for _ in 0..20 {
            p.push(rec.clone(), &stats);
        }
        assert_eq!(p.q.len(), PENDING_MAX_BYTES >> 20);
        assert_eq!(p.dropped, 20 - (PENDING_MAX_BYTES >> 20) as u64);
        assert_eq!(stats.dropped.load(Relaxed), p.dropped);
        // One record larger than the bound is still kept (alone).
        let mut p = Pending { q: VecDeque::new(), bytes: 0, dropped: 0 };
        p.push(vec![0; PENDING_MAX_BYTES + 1], &stats);
        assert_eq!(p.q.len(), 1);
    }

    #[test]
    fn a_collector_that_closed_is_noticed_before_writing() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let t = TcpTarget { host: "127.0.0.1".into(), port: l.local_addr().unwrap().port() };
        let mut c = t.connect().unwrap();
        let (peer, _) = l.accept().unwrap();
        assert!(t.alive(&mut c));
        drop(peer);
        // The FIN arrives asynchronously; loopback delivers it at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        while t.alive(&mut c) {
            assert!(Instant::now() < deadline, "a closed peer must be noticed");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
