//! The eCaptureQ WebSocket server: binds the `--ecaptureq` address and runs
//! one acceptor thread, which gives every connection a thread of its own
//! (`client::serve`). `shutdown` (or drop) closes the hub, lets each client
//! take what is queued for it, and joins every thread.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::addr::{is_loopback, EcqAddr, Policy};
use super::client::{self, Shared};
use super::hub::Hub;
use crate::error::{Context, Error, Result};
use crate::sys::os::{self, EventFd, PollFd};
use crate::transport::Stream;
use rustls::ServerConfig;

/// Connections served at once; more are turned away.
const MAX_CLIENTS: usize = 1024;

pub struct Server {
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl Server {
    /// Binds `addr` (a clear error when that fails) and starts accepting.
    /// `tls`: the server's TLS configuration, for `wss://`.
    pub fn start(addr: &EcqAddr, hub: Arc<Hub>, heartbeat: Duration, tls: Option<Arc<ServerConfig>>) -> Result<Server> {
        let mut last_err = None;
        let mut bound = None;
        for sa in addr.socket_addrs()? {
            match TcpListener::bind(sa) {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(e) => last_err = Some(Error::runtime(format!("--ecaptureq: cannot listen on {sa}: {e}"))),
            }
        }
        let listener = match bound {
            Some(l) => l,
            None => return Err(last_err.unwrap_or_else(|| Error::runtime("--ecaptureq: nothing to listen on"))),
        };
        listener.set_nonblocking(true).context(|| "--ecaptureq: cannot make the listener non-blocking".into())?;
        let local = listener.local_addr().context(|| "--ecaptureq: no local address".into())?;
        if !is_loopback(&local) {
            log::warn!(
                "eCaptureQ listens on {local}, beyond this host: decrypted traffic is readable by anyone who can \
                 connect{}",
                if addr.token.is_some() { " and has the token" } else { "; consider ?token=SECRET in the URL" }
            );
        }
        let shared = Arc::new(Shared {
            hub,
            policy: Policy::new(addr),
            heartbeat,
            stop: EventFd::new().context(|| "cannot create eventfd".into())?,
        });
        let s = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("ecq-acceptor".into())
            .spawn(move || accept_loop(listener, &s, tls))
            .context(|| "cannot start the eCaptureQ acceptor thread".into())?;
        log::info!("eCaptureQ server listening on {}", addr.display(local.port()));
        Ok(Server { shared, acceptor: Some(acceptor), local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, lets clients take what is queued (briefly), closes
    /// them and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.acceptor.take() {
            self.shared.hub.close();
            self.shared.stop.signal();
            if t.join().is_err() {
                log::error!("the eCaptureQ acceptor thread panicked");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>, tls: Option<Arc<ServerConfig>>) {
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    let mut next = 0u64;
    loop {
        let mut fds = [PollFd::new(listener.as_raw_fd(), true, false), PollFd::new(shared.stop.fd(), true, false)];
        if let Err(e) = os::poll(&mut fds, -1) {
            log::error!("eCaptureQ: poll failed: {e}; no more clients accepted");
            break;
        }
        if fds[1].readable {
            break;
        }
        loop {
            let (stream, peer) = match listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of fds or memory: say so and try again at the next wake-up.
                    log::warn!("eCaptureQ: accept failed: {e}");
                    break;
                }
            };
            clients.retain(|t| !t.is_finished());
            if clients.len() >= MAX_CLIENTS {
                log::warn!("eCaptureQ: {MAX_CLIENTS} clients already; turning {peer} away");
                continue;
            }
            let stream = match &tls {
                None => Stream::Plain(stream),
                Some(config) => match Stream::server(config, stream) {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("eCaptureQ: cannot start TLS for {peer}: {e}");
                        continue;
                    }
                },
            };
            next += 1;
            let s = Arc::clone(shared);
            match std::thread::Builder::new().name(format!("ecq-client-{next}")).spawn(move || client::serve(stream, peer, &s)) {
                Ok(t) => clients.push(t),
                Err(e) => log::warn!("eCaptureQ: cannot start a thread for {peer}: {e}"),
            }
        }
    }
    for t in clients {
        if t.join().is_err() {
            log::error!("an eCaptureQ client thread panicked");
        }
    }
}
