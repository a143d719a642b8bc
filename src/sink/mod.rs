//! Text sinks for `--logaddr` and `--eventaddr` (SPEC §5.1): a file, a TCP
//! collector or a WebSocket collector. Each sink runs on its own thread
//! behind a bounded queue; `SinkSender::send` never blocks, so a slow or
//! dead collector never slows capture — what cannot be queued is counted.
//!
//! `file` appends (and rotates the event file), `remote` connects to TCP or
//! WebSocket collectors and reconnects with capped exponential backoff,
//! holding records in a bounded buffer meanwhile.

pub mod file;
pub mod open;
pub mod remote;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender, TrySendError};

use crate::error::{Context, Error, Result};
use crate::transport::ClientTrust;

/// Records queued for a sink's thread before new ones are dropped.
const QUEUE_RECORDS: usize = 8192;

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    Tcp { host: String, port: u16 },
    /// A ws:// or wss:// URL.
    Ws(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(p) => write!(f, "{}", p.display()),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Target::Ws(u) => f.write_str(u),
        }
    }
}

/// "host:port" or "[v6]:port" → (host, port).
fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, rest) = v6.split_once(']')?;
        (h, rest.strip_prefix(':')?)
    } else {
        let (h, p) = s.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

impl Target {
    /// Parses an address given to `flag`: a file path, `tcp://host:port` or
    /// `ws://host:port/path`.
    pub fn parse(flag: &str, s: &str) -> Result<Target> {
        let bad = |why: &str| Error::usage(format!("invalid value '{s}' for {flag}: {why}"));
        if s.is_empty() {
            return Err(bad("expected a file path, tcp://HOST:PORT, ws://HOST:PORT/PATH or wss://HOST:PORT/PATH"));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let authority = rest.trim_end_matches('/');
            let (host, port) = host_port(authority).ok_or_else(|| bad("expected tcp://HOST:PORT"))?;
            return Ok(Target::Tcp { host, port });
        }
        for scheme in ["ws://", "wss://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                host_port(authority).ok_or_else(|| bad(&format!("expected {scheme}HOST:PORT/PATH")))?;
                return Ok(Target::Ws(s.to_string()));
            }
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(bad(&format!("unknown scheme {scheme}://; expected a file path, tcp://, ws:// or wss://")));
        }
        Ok(Target::File(PathBuf::from(s)))
    }
}

/// When to rotate the event file: at a size, and/or after a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes; 0 = no size limit.
    pub max_bytes: u64,
    pub every: Option<Duration>,
}

impl Rotation {
    pub fn is_on(&self) -> bool {
        self.max_bytes > 0 || self.every.is_some()
    }
}

#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records written out.
    pub written: AtomicU64,
    /// Records lost: queue full, buffer overflow while disconnected, write
    /// errors, or still undelivered at shutdown.
    pub dropped: AtomicU64,
    /// Rotations refused (a link or another user's file at the new name,
    /// or the file could not be renamed): records stayed in the current file.
    pub rotations_refused: AtomicU64,
    /// Bytes in the queue to the sink's thread.
    pub queued: AtomicUsize,
    /// The most bytes the queue and the sink's own buffer may hold.
    pub max_bytes: usize,
}

impl SinkStats {
    /// The sink's thread took `rec` from the queue.
    pub fn took(&self, rec: &[u8]) {
        self.queued.fetch_sub(rec.len(), Relaxed);
    }
}

/// Hands records to a sink's thread without blocking.
#[derive(Clone)]
pub struct SinkSender {
    tx: Sender<Vec<u8>>,
    stats: Arc<SinkStats>,
}

impl SinkSender {
    pub fn send(&self, record: Vec<u8>) {
        let n = record.len();
        // Bounded in bytes as well as in records.
        if self.stats.queued.fetch_add(n, Relaxed) + n > self.stats.max_bytes {
            self.stats.queued.fetch_sub(n, Relaxed);
            self.stats.dropped.fetch_add(1, Relaxed);
            return;
        }
        match self.tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.queued.fetch_sub(n, Relaxed);
                self.stats.dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

/// A running sink: its thread, which ends once every `SinkSender` is gone.
pub struct Sink {
    thread: Option<JoinHandle<()>>,
    pub target: Target,
    pub stats: Arc<SinkStats>,
}

impl Sink {
    /// Starts a sink for `target`; a file is opened (or created, 0600) here,
    /// so a bad path is an error at start. `rotation` applies to files;
    /// `max_bytes` bounds what waits for the sink (its share of the memory budget).
    /// `trust` says how a wss:// collector's certificate is checked.
    pub fn start(target: &Target, rotation: Rotation, max_bytes: usize, trust: &ClientTrust) -> Result<(Sink, SinkSender)> {
        let (tx, rx) = bounded(QUEUE_RECORDS);
        let stats = Arc::new(SinkStats { max_bytes, ..SinkStats::default() });
        let s = Arc::clone(&stats);
        let name = format!("sink {target}");
        let thread = match target {
            Target::File(path) => {
                let mut w = file::FileWriter::open(path, rotation)?;
                std::thread::Builder::new().name("sink-file".into()).spawn(move || w.run(rx, &s))
            }
            Target::Tcp { host, port } => {
                let conn = remote::TcpTarget { host: host.clone(), port: *port };
                std::thread::Builder::new().name("sink-tcp".into()).spawn(move || remote::run(conn, rx, &s))
            }
            Target::Ws(url) => {
                let tls = if url.starts_with("wss://") { Some(trust.config()?) } else { None };
                let conn = remote::WsTarget { url: url.clone(), tls };
                std::thread::Builder::new().name("sink-ws".into()).spawn(move || remote::run(conn, rx, &s))
            }
        }
        .context(|| format!("cannot start the {name} thread"))?;
        let sender = SinkSender { tx, stats: Arc::clone(&stats) };
        Ok((Sink { thread: Some(thread), target: target.clone(), stats }, sender))
    }

    /// Waits for the thread to write what is queued and end; every
    /// `SinkSender` must be gone (else this waits for them).
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the sink thread for {} panicked", self.target);
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("--eventaddr", "/var/log/ev.log").unwrap(), Target::File("/var/log/ev.log".into()));
        assert_eq!(Target::parse("-l", "rel/path.log").unwrap(), Target::File("rel/path.log".into()));
        assert_eq!(Target::parse("-l", "tcp://127.0.0.1:9000").unwrap(), Target::Tcp { host: "127.0.0.1".into(), port: 9000 });
        assert_eq!(Target::parse("-l", "tcp://collector.lan:9000/").unwrap(), Target::Tcp { host: "collector.lan".into(), port: 9000 });
        assert_eq!(Target::parse("-l", "tcp://[::1]:9000").unwrap(), Target::Tcp { host: "::1".into(), port: 9000 });
        assert_eq!(Target::parse("-l", "ws://127.0.0.1:9000/ingest?x=1").unwrap(), Target::Ws("ws://127.0.0.1:9000/ingest?x=1".into()));
        assert_eq!(Target::parse("-l", "tcp://[::1]:9000").unwrap().to_string(), "tcp://[::1]:9000");
        assert_eq!(Target::parse("-l", "wss://collector.lan:443/in").unwrap(), Target::Ws("wss://collector.lan:443/in".into()));
    }

    #[test]
    fn bad_targets() {
        for (s, why) in [
            ("tcp://nohost", "expected tcp://HOST:PORT"),
            ("tcp://:9000", "expected tcp://HOST:PORT"),
            ("tcp://h:0", "expected tcp://HOST:PORT"),
            ("tcp://h:99999", "expected tcp://HOST:PORT"),
            ("tcp://::1:9000", "expected tcp://HOST:PORT"),
            ("ws://", "expected ws://HOST:PORT/PATH"),
            ("ws:///path", "expected ws://HOST:PORT/PATH"),
            ("wss://h/", "expected wss://HOST:PORT/PATH"),
            ("udp://h:1", "unknown scheme udp://"),
            ("", "expected a file path"),
        ] {
            let e = Target::parse("--eventaddr", s).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(why), "{s}: {e}");
            assert!(e.to_string().starts_with(&format!("invalid value '{s}' for --eventaddr: ")), "{e}");
        }
    }
}
