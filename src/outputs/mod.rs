//! Where a run's messages and logs go (SPEC §5.1, §5.2): with
//! `--ecaptureq`, to its WebSocket clients (logs also to stderr); otherwise
//! messages to stdout or the `--eventaddr` sink, and logs to stderr plus the
//! `--logaddr` sink.
//!
//! Every place messages go is an `Output`; the dispatcher hands each message
//! to every output and knows no more of them. `Outputs` builds them from
//! the command line, owns the servers and sink threads behind them, reports
//! their counters, and shuts them down after the dispatcher has finished,
//! so the last messages and the summary line reach them.

pub mod ecaptureq;
pub mod keylog;
pub mod pcapng;
pub mod sink;
pub mod stdout;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use crate::cli::{EventFormat, Global};
use crate::ecaptureq::hub::{Hub, Limits};
use crate::ecaptureq::server::Server;
use crate::error::Result;
use crate::event::{Message, Secret};
use crate::modules::{KeyOutput, PcapConfig};
use crate::format::text::TextFormat;
use crate::format::Render;
use crate::logging::{self, LogSubscriber};
use crate::sink::{Rotation, Sink, SinkSender};
use crate::stats::OutputCounts;
use crate::sys::os::StopNotifier;

/// A place messages go. Runs on the dispatcher's thread: it must not block
/// for long (network outputs queue and send from their own threads).
pub trait Output: Send {
    /// A message, in capture order.
    fn message(&mut self, m: &Message);
    /// A TLS secret (before the messages captured after it).
    fn secret(&mut self, _s: &Secret) {}
    /// A connection ended, or the run did, without its keys; why.
    fn keys_missing(&mut self, _pid: u32, _conn: u64, _why: &'static str) {}
    /// The dispatcher has caught up with its input: write out what is
    /// buffered, wake readers.
    fn flush(&mut self) {}
}

/// eCaptureQ heartbeat period (SPEC §5.2); ECAPTURE_HEARTBEAT_MS overrides
/// it, for tests.
fn heartbeat_interval() -> std::time::Duration {
    let ms = std::env::var("ECAPTURE_HEARTBEAT_MS").ok().and_then(|v| v.parse::<u64>().ok()).filter(|&ms| ms > 0);
    std::time::Duration::from_millis(ms.unwrap_or(15_000))
}

/// Log lines to a sink, one record each.
struct LogToSink(SinkSender);

impl LogSubscriber for LogToSink {
    fn line(&self, line: &str) {
        let mut rec = Vec::with_capacity(line.len() + 1);
        rec.extend_from_slice(line.as_bytes());
        rec.push(b'\n');
        self.0.send(rec);
    }
}

pub struct Outputs {
    render: Render,
    /// `--ecaptureq-payload text`: events carry this rendering.
    ecq_render: Option<Render>,
    ecq: Option<(Arc<Hub>, Server, u64)>,
    /// The log sink and its log subscription.
    log_sink: Option<(Sink, u64)>,
    /// The event sink, when it is not the log sink.
    event_sink: Option<Sink>,
    /// Where events go when not to stdout (either sink above).
    event_sender: Option<SinkSender>,
    /// The key log: its path, file (handed to the dispatcher) and counters.
    keylog: Option<(std::path::PathBuf, Mutex<Option<std::fs::File>>, Arc<keylog::KeyLogStats>)>,
    /// `-m keylog`: no plaintext events.
    keys_only: bool,
    /// `-m pcapng`: the packet capture and its file (no plaintext events:
    /// the file has them, decrypted by its reader).
    pcap: Option<pcapng::PcapCapture>,
}

impl Outputs {
    /// Starts the eCaptureQ server or the sinks; errors (a port in use, a
    /// file that cannot be opened) end the run before capture starts.
    pub fn start(cfg: &Global, keys: &KeyOutput, pcap: Option<&PcapConfig>) -> Result<Outputs> {
        let render = match cfg.eventformat {
            EventFormat::Text => Render::Text(TextFormat { hex: cfg.hex, tsize: cfg.tsize }),
            EventFormat::Json => Render::Json,
        };
        let ecq_render = cfg.ecq_payload_text.then_some(Render::Text(TextFormat { hex: cfg.hex, tsize: cfg.tsize }));
        let keylog = match &keys.file {
            Some(path) => {
                let file = keylog::open(path)?;
                log::info!("TLS keys go to {} (NSS key log format)", path.display());
                Some((path.clone(), Mutex::new(Some(file)), Arc::new(keylog::KeyLogStats::default())))
            }
            None => None,
        };
        let mut out = Outputs {
            render,
            ecq_render,
            ecq: None,
            log_sink: None,
            event_sink: None,
            event_sender: None,
            keylog,
            keys_only: keys.keys_only,
            pcap: None,
        };
        if let Some(pc) = pcap {
            let capture = pcapng::PcapCapture::start(pc)?;
            let to = if pc.path.as_os_str() == "-" { "standard output".to_string() } else { pc.path.display().to_string() };
            let filter = if pc.filter.is_empty() { String::new() } else { format!(" matching '{}'", pc.filter) };
            log::info!("packets of {}{filter} go to {to} (pcapng, with the TLS secrets read); no plaintext events are printed", pc.ifname);
            out.pcap = Some(capture);
            if cfg.ecaptureq.is_some() || (cfg.eventaddr.is_some() && cfg.eventaddr != cfg.logaddr) {
                log::warn!("--ecaptureq and --eventaddr are not used with -m pcapng: no events are sent (the file has the packets)");
            }
            if let Some(target) = &cfg.logaddr {
                let (sink, sender) = Sink::start(target, Rotation::default(), cfg.max_memory / 4, &cfg.tls_trust)?;
                let id = logging::subscribe(Arc::new(LogToSink(sender)));
                log::info!("logs also go to {target}");
                out.log_sink = Some((sink, id));
            }
            return Ok(out);
        }
        if keys.keys_only {
            return Ok(out);
        }
        if let Some(addr) = &cfg.ecaptureq {
            // The output queues' share of the memory budget: a message is
            // shared by every client queue it is in.
            let tls = match &cfg.ecq_cert {
                Some((cert, key)) => Some(crate::transport::server_config(cert, key)?),
                None => None,
            };
            let hub = Arc::new(Hub::new(Limits { max_bytes: cfg.max_memory / 4, ..Limits::default() }));
            let id = logging::subscribe(hub.clone());
            let server = match Server::start(addr, Arc::clone(&hub), heartbeat_interval(), tls) {
                Ok(s) => s,
                Err(e) => {
                    logging::unsubscribe(id);
                    return Err(e);
                }
            };
            for a in &cfg.overridden_addrs {
                log::info!("{a} is not used: --ecaptureq takes priority for events and logs (logs also go to stderr)");
            }
            out.ecq = Some((hub, server, id));
            return Ok(out);
        }
        let mut shared = false;
        if let Some(target) = &cfg.logaddr {
            shared = cfg.eventaddr.as_ref() == Some(target);
            let (sink, sender) = Sink::start(target, if shared { cfg.rotation } else { Rotation::default() }, cfg.max_memory / 4, &cfg.tls_trust)?;
            if shared {
                out.event_sender = Some(sender.clone());
            }
            let id = logging::subscribe(Arc::new(LogToSink(sender)));
            log::info!("logs also go to {target}");
            out.log_sink = Some((sink, id));
        }
        if let (Some(target), false) = (&cfg.eventaddr, shared) {
            let (sink, sender) = Sink::start(target, cfg.rotation, cfg.max_memory / 4, &cfg.tls_trust)?;
            out.event_sink = Some(sink);
            out.event_sender = Some(sender);
        }
        if let Some(target) = &cfg.eventaddr {
            let rot = match (cfg.rotation.max_bytes, cfg.rotation.every) {
                (0, None) => String::new(),
                (b, None) => format!(", rotated at {} MiB", b >> 20),
                (0, Some(t)) => format!(", rotated every {} s", t.as_secs()),
                (b, Some(t)) => format!(", rotated at {} MiB or every {} s", b >> 20, t.as_secs()),
            };
            log::info!("events go to {target}{rot}");
        }
        Ok(out)
    }

    /// The outputs messages go to, for the dispatcher; `stop` asks main to
    /// stop when standard output closes.
    pub fn for_messages(&self, stop: StopNotifier) -> Vec<Box<dyn Output>> {
        let mut out: Vec<Box<dyn Output>> = Vec::new();
        if let Some((path, file, stats)) = &self.keylog {
            if let Some(f) = file.lock().ok().and_then(|mut f| f.take()) {
                out.push(Box::new(keylog::KeyLog::new(path.clone(), f, Arc::clone(stats))));
            }
        }
        if let Some(p) = &self.pcap {
            p.set_stop(stop.clone());
            out.push(Box::new(pcapng::PcapOutput(std::sync::Arc::clone(&p.shared))));
            return out;
        }
        if self.keys_only {
            return out;
        }
        if let Some((hub, _, _)) = &self.ecq {
            out.push(Box::new(ecaptureq::ToEcaptureQ { hub: Arc::clone(hub), render: self.ecq_render }));
            return out;
        }
        match &self.event_sender {
            Some(sender) => out.push(Box::new(sink::ToSink { render: self.render, sink: sender.clone() })),
            None => out.push(Box::new(stdout::Stdout::new(self.render, stop))),
        }
        out
    }

    /// Whether secrets are read (the dispatcher then tracks which
    /// connections got theirs).
    pub fn wants_keys(&self) -> bool {
        self.keylog.is_some()
    }

    /// Whether some output shows decoded bodies, which assembly must then
    /// produce (de-chunked, decompressed).
    pub fn show_decoded_bodies(&self) -> bool {
        match &self.ecq {
            Some(_) => self.ecq_render.is_some_and(|r| r.shows_decoded_bodies()),
            None => self.render.shows_decoded_bodies(),
        }
    }

    /// What each output delivered and dropped, for the summary.
    pub fn counts(&self) -> Vec<OutputCounts> {
        let mut out = Vec::new();
        if let Some((path, _, stats)) = &self.keylog {
            out.push(OutputCounts { dropped: stats.failed.load(Relaxed), text: stats.summary(path) });
        }
        if let Some(p) = &self.pcap {
            let (dropped, text) = p.summary();
            out.push(OutputCounts { dropped, text });
        }
        if let Some((hub, _, _)) = &self.ecq {
            let (clients, dropped) = (hub.served.load(Relaxed), hub.dropped.load(Relaxed));
            out.push(OutputCounts {
                dropped,
                text: format!("eCaptureQ: {clients} clients served, {dropped} events dropped for slow clients"),
            });
        }
        let sinks: Vec<&Sink> = self.log_sink.iter().map(|(s, _)| s).chain(self.event_sink.iter()).collect();
        if !sinks.is_empty() {
            let written: u64 = sinks.iter().map(|s| s.stats.written.load(Relaxed)).sum();
            let dropped: u64 = sinks.iter().map(|s| s.stats.dropped.load(Relaxed)).sum();
            let refused: u64 = sinks.iter().map(|s| s.stats.rotations_refused.load(Relaxed)).sum();
            let mut text = format!("sinks: {written} records written, {dropped} dropped");
            if refused > 0 {
                text.push_str(&format!(", {refused} rotations refused (records kept in the current file)"));
            }
            out.push(OutputCounts { dropped, text });
        }
        out
    }

    /// After the dispatcher is done (every secret is in): the packets still
    /// in the ring, and those held for keys, are written.
    pub fn stop_packets(&mut self) {
        if let Some(p) = &mut self.pcap {
            p.stop();
        }
    }

    /// After the dispatcher is done: lets clients and sinks take what is
    /// queued (the summary included), then closes them.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Outputs {
    /// Also on error paths: unsubscribe before joining, or a sink thread
    /// would wait forever for the log subscriber's sender.
    fn drop(&mut self) {
        // Our sender goes first: the sink threads end once theirs are gone too
        // (the dispatcher's went with it, the log subscriber's just below).
        self.event_sender = None;
        self.stop_packets();
        if let Some((_, server, id)) = self.ecq.take() {
            logging::unsubscribe(id);
            server.shutdown();
        }
        if let Some(s) = self.event_sink.take() {
            s.close();
        }
        if let Some((s, id)) = self.log_sink.take() {
            logging::unsubscribe(id);
            s.close();
        }
    }
}
