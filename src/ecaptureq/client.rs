//! One eCaptureQ connection, on its own thread: the WebSocket handshake
//! (with the access policy), the replay of the log book, heartbeats, and
//! then the writer loop that drains this client's queue into the socket.
//!
//! The socket is non-blocking and the thread sleeps in poll(2) on the
//! socket, the queue's eventfd and the server's stop eventfd, so it both
//! writes (when there is something to send and room to send it) and reads
//! (pings to answer, a close, garbage to reject) without ever blocking the
//! rest of the program. A client whose socket accepts nothing for
//! `STALL_TIMEOUT` is disconnected; one that vanishes without a FIN is cut
//! by the kernel (TCP_USER_TIMEOUT).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Bytes, Message, WebSocket};

use super::addr::Policy;
use super::hub::{Hub, Msg};
use super::proto;
use crate::sys::os::{self, EventFd, PollFd};
use crate::transport::Stream;

/// A client must complete its handshake within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A client whose socket takes nothing for this long is dropped.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// At shutdown, how long a client gets to take what is queued for it.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(300);
/// Bytes handed to the WebSocket layer before waiting for the socket: the
/// rest stays in the hub queue, where the drop-oldest policy applies.
const INFLIGHT_MAX: usize = 1 << 20;
/// A slow client's losses are logged at most this often.
const DROP_WARN_EVERY: Duration = Duration::from_secs(5);
/// What a client may send us: pings and small frames.
const MAX_CLIENT_FRAME: usize = 64 << 10;

/// What every connection shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    pub policy: Policy,
    pub heartbeat: Duration,
    /// Signalled at shutdown.
    pub stop: EventFd,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_FRAME))
        .max_frame_size(Some(MAX_CLIENT_FRAME))
        .read_buffer_size(4096)
        .write_buffer_size(64 << 10)
}

/// Serves one accepted connection until it ends; logs how it ended.
pub fn serve(stream: Stream, peer: SocketAddr, shared: &Shared) {
    let mut ws = match handshake(stream, shared) {
        Ok(ws) => ws,
        Err(why) => {
            log::debug!("eCaptureQ: connection from {peer} refused: {why}");
            return;
        }
    };
    let registered = match shared.hub.register() {
        Ok(Some(r)) => r,
        Ok(None) => {
            let _ = ws.close(None);
            let _ = ws.flush();
            ws.get_mut().close_notify();
            return;
        }
        Err(e) => {
            log::warn!("eCaptureQ: cannot serve {peer}: {e}");
            return;
        }
    };
    let (queue, replay) = registered;
    log::info!("eCaptureQ client {peer} connected ({} connected)", shared.hub.client_count());
    let mut conn = Conn { ws, inflight: 0, pending: false, last_progress: Instant::now() };
    let why = conn.run(&queue, replay, shared, peer);
    shared.hub.unregister(queue.id);
    log::info!("eCaptureQ client {peer} disconnected: {why}");
}

/// The server side of the WebSocket handshake, with the access policy,
/// bounded in time and interrupted by shutdown.
fn handshake(stream: Stream, shared: &Shared) -> Result<WebSocket<Stream>, String> {
    let tcp = stream.tcp();
    tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let _ = os::set_tcp_user_timeout(tcp.as_raw_fd(), STALL_TIMEOUT.as_millis() as u32);
    let fd = tcp.as_raw_fd();
    let mut refusal: Option<String> = None;
    // tungstenite's callback signature: its error type is its own.
    #[allow(clippy::result_large_err)]
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        match shared.policy.check(header("origin"), header("host"), req.uri().query(), header("authorization")) {
            Ok(()) => Ok(resp),
            Err(r) => {
                refusal = Some(format!("{} ({})", r.reason, r.status));
                let mut e = ErrorResponse::new(Some(format!("{}\n", r.reason)));
                *e.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN);
                Err(e)
            }
        }
    };
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut attempt = tungstenite::accept_hdr_with_config(stream, check, Some(ws_config()));
    loop {
        match attempt {
            Ok(ws) => return Ok(ws),
            Err(HandshakeError::Failure(e)) => return Err(refusal.take().unwrap_or_else(|| e.to_string())),
            Err(HandshakeError::Interrupted(mid)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("handshake timed out".into());
                }
                // Short waits: a handshake stalled on writing its answer is
                // retried soon even without POLLIN.
                // (TLS with handshake bytes still to send: wait for room too.)
                let out = mid.get_ref().get_ref().wants_write();
                let mut fds = [PollFd::new(fd, true, out), PollFd::new(shared.stop.fd(), true, false)];
                os::poll(&mut fds, left.min(Duration::from_millis(100)).as_millis() as i32).map_err(|e| e.to_string())?;
                if fds[1].readable {
                    return Err("server stopping".into());
                }
                attempt = mid.handshake();
            }
        }
    }
}

struct Conn {
    ws: WebSocket<Stream>,
    /// Bytes handed to the WebSocket layer since its last complete flush.
    inflight: usize,
    /// The last flush left bytes unsent.
    pending: bool,
    /// When the socket last took data.
    last_progress: Instant,
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

impl Conn {
    /// Queues one message in the WebSocket layer (sent by `flush`).
    fn send(&mut self, data: Bytes) -> Result<(), String> {
        self.inflight += data.len();
        match self.ws.write(Message::Binary(data)) {
            Ok(()) => Ok(()),
            Err(e) if is_would_block(&e) => Ok(()),
            Err(e) => Err(format!("write failed: {e}")),
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        match self.ws.flush() {
            Ok(()) => {
                self.inflight = 0;
                self.pending = false;
                self.last_progress = Instant::now();
                Ok(())
            }
            Err(e) if is_would_block(&e) => {
                self.pending = true;
                Ok(())
            }
            Err(e) => Err(closed_reason(e)),
        }
    }

    /// Reads whatever the client sent: pings are answered (by tungstenite,
    /// on the next flush), data frames ignored, a close or an error ends.
    fn read_all(&mut self) -> Result<(), String> {
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(e) if is_would_block(&e) => return Ok(()),
                Err(e) => return Err(closed_reason(e)),
            }
        }
    }

    fn run(&mut self, queue: &super::hub::ClientQueue, replay: Vec<Bytes>, shared: &Shared, peer: SocketAddr) -> String {
        match self.serve(queue, replay, shared, peer) {
            Ok(why) | Err(why) => why,
        }
    }

    fn serve(&mut self, queue: &super::hub::ClientQueue, replay: Vec<Bytes>, shared: &Shared, peer: SocketAddr) -> Result<String, String> {
        for line in replay {
            self.send(line)?;
        }
        let mut beats: i64 = 0;
        self.send(Bytes::from(proto::heartbeat_entry(crate::time::now_ns() / 1_000_000_000, beats)))?;
        beats += 1;
        let mut next_beat = Instant::now() + shared.heartbeat;
        let mut batch: Vec<Msg> = Vec::new();
        // Set when the server stops: from then on the client has
        // SHUTDOWN_FLUSH to take what is queued for it.
        let mut stopping: Option<Instant> = None;
        // Drops not logged yet, and when they last were.
        let (mut unlogged, mut last_warn): (u64, Option<Instant>) = (0, None);
        loop {
            // Hand queued messages to the WebSocket layer while there is room.
            let room = self.inflight < INFLIGHT_MAX;
            let mut closed = false;
            if room {
                let t = queue.take(&mut batch, INFLIGHT_MAX - self.inflight);
                if t.dropped > 0 {
                    let line = format!(
                        "{} WARN  eCaptureQ: this client is too slow: {} events dropped (oldest first)",
                        crate::time::rfc3339(crate::time::now_ns()),
                        t.dropped
                    );
                    self.send(Bytes::from(proto::log_entry(&line)))?;
                    unlogged += t.dropped;
                }
                if unlogged > 0 && last_warn.is_none_or(|w| w.elapsed() >= DROP_WARN_EVERY) {
                    log::warn!("eCaptureQ client {peer} is too slow: {unlogged} events dropped for it");
                    unlogged = 0;
                    last_warn = Some(Instant::now());
                }
                for m in batch.drain(..) {
                    self.send(m.data)?;
                }
                closed = t.closed;
            }
            let now = Instant::now();
            if now >= next_beat {
                self.send(Bytes::from(proto::heartbeat_entry(crate::time::now_ns() / 1_000_000_000, beats)))?;
                beats += 1;
                next_beat = now + shared.heartbeat;
            }
            self.flush()?;

            if closed || stopping.is_some() {
                let since = *stopping.get_or_insert(now);
                if (closed && !self.pending) || now.duration_since(since) >= SHUTDOWN_FLUSH {
                    let bye = CloseFrame { code: CloseCode::Normal, reason: "ecapture stopping".into() };
                    let _ = self.ws.close(Some(bye));
                    let _ = self.ws.flush();
                    self.ws.get_mut().close_notify();
                    return Ok("server stopped".into());
                }
            }
            if self.pending && now.duration_since(self.last_progress) >= STALL_TIMEOUT {
                return Err(format!("took nothing for {} s", STALL_TIMEOUT.as_secs()));
            }

            // Sleep on the queue only when there is room to take from it; if
            // something arrived since the last take, take it first instead.
            let sleep_queue = self.inflight < INFLIGHT_MAX && !closed && stopping.is_none();
            if sleep_queue && !queue.prepare_wait() {
                continue;
            }
            let mut timeout = next_beat.saturating_duration_since(Instant::now());
            if self.pending {
                timeout = timeout.min(STALL_TIMEOUT.saturating_sub(now.duration_since(self.last_progress)));
            }
            if stopping.is_some() {
                timeout = timeout.min(Duration::from_millis(10));
            }
            let sock = self.ws.get_ref().tcp().as_raw_fd();
            let mut fds = [
                PollFd::new(sock, true, self.pending || self.ws.get_ref().wants_write()),
                PollFd::new(queue.wake_fd(), sleep_queue, false),
                PollFd::new(shared.stop.fd(), stopping.is_none(), false),
            ];
            let polled = os::poll(&mut fds, timeout.as_millis().min(i32::MAX as u128) as i32);
            if sleep_queue {
                queue.end_wait();
            }
            polled.map_err(|e| format!("poll failed: {e}"))?;
            if fds[2].readable {
                stopping = Some(Instant::now());
            }
            if fds[0].writable {
                self.last_progress = Instant::now();
            }
            if fds[0].readable || fds[0].hangup {
                self.read_all()?;
            }
        }
    }
}

/// A readable reason for a connection's end.
fn closed_reason(e: tungstenite::Error) -> String {
    use tungstenite::Error as E;
    match e {
        E::ConnectionClosed | E::AlreadyClosed => "closed by the client".into(),
        E::Capacity(c) => format!("sent a frame over the size limit ({c})"),
        E::Protocol(p) => format!("protocol error: {p}"),
        E::Io(io) => format!("connection lost: {io}"),
        other => other.to_string(),
    }
}
