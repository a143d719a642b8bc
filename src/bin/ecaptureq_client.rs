//! ecaptureq_client: the demo consumer of `ecapture --ecaptureq` (the
//! counterpart of eCapture's examples/ecaptureq_client). It connects,
//! decodes every LogEntry and prints runtime logs, events (all fields, the
//! payload as text when printable, else as a hex dump) and, with
//! -verbose, heartbeats. When the server goes away it reconnects.
#![deny(unsafe_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use ecapture::ecaptureq::proto::{self, Payload};
use ecapture::format::hex;
use ecapture::format::text::{is_printable, term_safe};
use ecapture::time::rfc3339;

const USAGE: &str = "\
ecaptureq_client — print what `ecapture --ecaptureq` streams

USAGE:
    ecaptureq_client [-server URL] [-cacert PATH] [-verbose]

FLAGS:
    -server URL    the eCaptureQ server [default: ws://127.0.0.1:28257/]
                   (add ?token=SECRET when the server requires one);
                   wss://… checks the server's certificate against the
                   host's CA store and -cacert
    -cacert PATH   CA certificates (PEM) trusted besides the host's
    -verbose       also print heartbeats
    -h, -help      print this help
";

fn type_name(t: u32) -> &'static str {
    match t {
        1 => "HTTP/1.x request",
        2 => "HTTP/2 request",
        3 => "HTTP/1.x response",
        4 => "HTTP/2 response",
        _ => "unknown",
    }
}

/// Prints one message; false when it does not decode.
fn print_entry(out: &mut dyn Write, data: &[u8], verbose: bool) -> std::io::Result<bool> {
    let Ok(entry) = proto::decode(data) else { return Ok(false) };
    match proto::payload(entry) {
        // Whatever the server sent is shown without terminal escapes.
        Payload::Log(line) => writeln!(out, "[LOG] {}", term_safe(&line))?,
        Payload::Heartbeat(h) => {
            if verbose {
                writeln!(out, "[HEARTBEAT] count={} time={} message={}", h.count, rfc3339(h.timestamp * 1_000_000_000), term_safe(&h.message))?;
            }
        }
        Payload::Event(e) => {
            writeln!(
                out,
                "[EVENT] {} uuid={} pid={} pname={} src={}:{} dst={}:{} type={} ({}) length={}",
                rfc3339(e.timestamp),
                term_safe(&e.uuid),
                e.pid,
                term_safe(&e.pname),
                term_safe(&e.src_ip),
                e.src_port,
                term_safe(&e.dst_ip),
                e.dst_port,
                e.type_pb,
                type_name(e.type_pb),
                e.length
            )?;
            if is_printable(&e.payload) {
                out.write_all(&e.payload)?;
                if !e.payload.ends_with(b"\n") {
                    writeln!(out)?;
                }
            } else {
                hex::dump(out, &e.payload, 0)?;
            }
            writeln!(out)?;
        }
        Payload::Empty => writeln!(out, "[EMPTY] a LogEntry without payload")?,
    }
    Ok(true)
}

/// Reads messages until the connection ends; returns why.
fn session(url: &str, tls: Option<&Arc<rustls::ClientConfig>>, verbose: bool) -> String {
    // tungstenite zeroes its read buffer on every read: 16 KiB, not 128.
    let config = tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 << 10);
    let mut ws = match ecapture::transport::connect_ws(url, tls, Some(config)) {
        Ok(c) => c,
        Err(e) => return format!("cannot connect: {e}"),
    };
    eprintln!("connected to {url}");
    let stdout = std::io::stdout();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Binary(data)) => {
                let mut out = stdout.lock();
                match print_entry(&mut out, &data, verbose) {
                    Ok(true) => {}
                    Ok(false) => eprintln!("a message of {} bytes did not decode as a LogEntry", data.len()),
                    Err(e) => {
                        // stdout closed (e.g. piped into head): done.
                        eprintln!("cannot write: {e}");
                        std::process::exit(0);
                    }
                }
                let _ = out.flush();
            }
            Ok(tungstenite::Message::Close(_)) => {}
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                return "the server closed the connection".into()
            }
            Err(e) => return format!("connection lost: {e}"),
        }
    }
}

fn main() {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "-help"]) || args.contains("--help") {
        print!("{USAGE}");
        return;
    }
    let verbose = args.contains("-verbose") || args.contains("--verbose");
    let server = match (args.opt_value_from_str::<_, String>("-server"), args.opt_value_from_str::<_, String>("--server")) {
        (Ok(a), Ok(b)) => a.or(b).unwrap_or_else(|| "ws://127.0.0.1:28257/".into()),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("ecaptureq_client: -server: {e}");
            std::process::exit(2);
        }
    };
    let cacert = match args.opt_value_from_str::<_, String>("-cacert") {
        Ok(c) => c.map(std::path::PathBuf::from),
        Err(e) => {
            eprintln!("ecaptureq_client: -cacert: {e}");
            std::process::exit(2);
        }
    };
    let rest = args.finish();
    if let Some(a) = rest.first() {
        eprintln!("ecaptureq_client: unexpected argument '{}' (see -help)", a.to_string_lossy());
        std::process::exit(2);
    }
    if !server.starts_with("ws://") && !server.starts_with("wss://") {
        eprintln!("ecaptureq_client: -server must be a ws:// or wss:// URL, got '{server}'");
        std::process::exit(2);
    }
    let tls = if server.starts_with("wss://") {
        match (ecapture::transport::ClientTrust { cacert, insecure: false }).config() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("ecaptureq_client: {e}");
                std::process::exit(2);
            }
        }
    } else {
        None
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        let why = session(&server, tls.as_ref(), verbose);
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_secs(1);
        }
        eprintln!("{why}; reconnecting in {} s", backoff.as_secs());
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
