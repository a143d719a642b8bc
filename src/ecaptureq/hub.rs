//! Fan-out: every encoded `LogEntry` goes, as the same shared bytes, into a
//! bounded queue per connected client. Pushing never blocks and never waits
//! for a client: when a client's queue is full its oldest *events* are
//! dropped (logs are kept), counted, and the client is told when it catches
//! up. Each client's writer thread drains its own queue (see `client`).
//!
//! Events wake the clients' threads in batches, not one by one: the
//! dispatcher calls `wake` once it has caught up with its input (and the hub
//! wakes them itself every `WAKE_EVERY` events), so with a hundred clients a
//! burst of events costs a hundred wake-ups, not a hundred per event. Log
//! lines wake at once.
//!
//! Lock order: the log book (crate::logging) before the hub's lock, and
//! nothing here logs while holding the hub's lock.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tungstenite::Bytes;

use super::proto;
use crate::logging::{self, LogSubscriber};
use crate::sys::os::EventFd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    Log,
}

/// One encoded message, shared by every queue it is in.
#[derive(Debug, Clone)]
pub struct Msg {
    pub kind: Kind,
    pub data: Bytes,
}

/// Bounds of one client's queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_msgs: usize,
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_msgs: 16384, max_bytes: 32 << 20 }
    }
}

/// Events queued before the hub wakes the clients without waiting for
/// `Hub::wake`: bounds the delay when the dispatcher never catches up.
const WAKE_EVERY: u32 = 256;

struct QueueState {
    msgs: VecDeque<Msg>,
    bytes: usize,
    /// Events dropped and not yet told to the client.
    untold: u64,
    closed: bool,
}

/// One client's queue, with the eventfd its writer thread sleeps on.
pub struct ClientQueue {
    pub id: u64,
    state: Mutex<QueueState>,
    wake: EventFd,
    waiting: AtomicBool,
}

/// What `ClientQueue::take` handed over besides messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Events dropped since the client was last told.
    pub dropped: u64,
    /// The hub is shutting down and the queue is now empty.
    pub closed: bool,
}

impl ClientQueue {
    fn new(id: u64) -> io::Result<ClientQueue> {
        Ok(ClientQueue {
            id,
            state: Mutex::new(QueueState { msgs: VecDeque::new(), bytes: 0, untold: 0, closed: false }),
            wake: EventFd::new()?,
            waiting: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `msg`, dropping the oldest events beyond `limits`; returns
    /// how many were dropped. Wakes the writer thread if `wake`.
    fn push(&self, msg: Msg, limits: &Limits, wake: bool) -> u64 {
        let dropped = {
            let mut s = self.lock();
            if s.closed {
                return 0;
            }
            s.bytes += msg.data.len();
            s.msgs.push_back(msg);
            let mut dropped = 0;
            while (s.msgs.len() > limits.max_msgs || s.bytes > limits.max_bytes) && s.msgs.len() > 1 {
                // The oldest event but the one just pushed; with none, the oldest log.
                let newest = s.msgs.len() - 1;
                let victim = s.msgs.iter().take(newest).position(|m| m.kind == Kind::Event).unwrap_or(0);
                if let Some(m) = s.msgs.remove(victim) {
                    s.bytes -= m.data.len();
                    if m.kind == Kind::Event {
                        dropped += 1;
                    }
                }
            }
            s.untold += dropped;
            dropped
        };
        if wake {
            self.wake_if_waiting();
        }
        dropped
    }

    fn wake_if_waiting(&self) {
        if self.waiting.swap(false, Ordering::SeqCst) {
            self.wake.signal();
        }
    }

    /// Moves queued messages into `out`, up to `max_bytes` (at least one).
    pub fn take(&self, out: &mut Vec<Msg>, max_bytes: usize) -> Taken {
        let mut s = self.lock();
        let mut bytes = 0;
        while let Some(m) = s.msgs.front() {
            if bytes > 0 && bytes + m.data.len() > max_bytes {
                break;
            }
            bytes += m.data.len();
            let Some(m) = s.msgs.pop_front() else { break };
            s.bytes -= m.data.len();
            out.push(m);
        }
        let dropped = std::mem::take(&mut s.untold);
        Taken { dropped, closed: s.closed && s.msgs.is_empty() }
    }

    /// Before sleeping on `wake_fd`: false when there is already work (or
    /// the hub closed), in which case the caller must not sleep.
    pub fn prepare_wait(&self) -> bool {
        self.waiting.store(true, Ordering::SeqCst);
        let s = self.lock();
        if !s.msgs.is_empty() || s.closed || s.untold > 0 {
            self.waiting.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// After waking up (or timing out).
    pub fn end_wait(&self) {
        self.waiting.store(false, Ordering::SeqCst);
        self.wake.drain();
    }

    pub fn wake_fd(&self) -> RawFd {
        self.wake.fd()
    }

    fn close(&self) {
        self.lock().closed = true;
        self.waiting.store(false, Ordering::SeqCst);
        self.wake.signal();
    }
}

struct HubState {
    clients: Vec<Arc<ClientQueue>>,
    /// Events queued since the clients were last woken.
    unwoken: u32,
    next_id: u64,
    closed: bool,
}

pub struct Hub {
    state: Mutex<HubState>,
    limits: Limits,
    /// Events dropped for slow clients, all clients together.
    pub dropped: AtomicU64,
    /// Clients that completed the handshake, since start.
    pub served: AtomicU64,
}

impl Hub {
    pub fn new(limits: Limits) -> Hub {
        Hub {
            state: Mutex::new(HubState { clients: Vec::new(), unwoken: 0, next_id: 1, closed: false }),
            limits,
            dropped: AtomicU64::new(0),
            served: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` for every client, in the order of calls. Events wake
    /// the clients only every `WAKE_EVERY` (see `wake`); logs at once.
    pub fn broadcast(&self, msg: Msg) {
        let mut s = self.lock();
        let wake = msg.kind == Kind::Log || s.unwoken + 1 >= WAKE_EVERY;
        s.unwoken = if wake { 0 } else { s.unwoken + 1 };
        let mut dropped = 0;
        for c in &s.clients {
            dropped += c.push(msg.clone(), &self.limits, wake);
        }
        drop(s);
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }

    pub fn broadcast_event(&self, data: Vec<u8>) {
        self.broadcast(Msg { kind: Kind::Event, data: Bytes::from(data) });
    }

    /// Wakes the clients waiting for events queued since the last wake-up
    /// (the dispatcher calls this when it has caught up with its input).
    pub fn wake(&self) {
        let mut s = self.lock();
        if s.unwoken == 0 {
            return;
        }
        s.unwoken = 0;
        for c in &s.clients {
            c.wake_if_waiting();
        }
    }

    /// A new client: its queue, and the log lines to replay before anything
    /// in the queue. None once the hub is closed.
    pub fn register(&self) -> io::Result<Option<(Arc<ClientQueue>, Vec<Bytes>)>> {
        logging::with_replay(|lines| {
            let mut s = self.lock();
            if s.closed {
                return Ok(None);
            }
            let q = Arc::new(ClientQueue::new(s.next_id)?);
            s.next_id += 1;
            s.clients.push(Arc::clone(&q));
            drop(s);
            self.served.fetch_add(1, Ordering::Relaxed);
            let replay = lines.map(|l| Bytes::from(proto::log_entry(l))).collect();
            Ok(Some((q, replay)))
        })
    }

    pub fn unregister(&self, id: u64) {
        self.lock().clients.retain(|c| c.id != id);
    }

    pub fn client_count(&self) -> usize {
        self.lock().clients.len()
    }

    /// Shutdown: no new clients; each queue is closed once drained.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        for c in &s.clients {
            c.close();
        }
    }
}

impl LogSubscriber for Hub {
    fn line(&self, line: &str) {
        self.broadcast(Msg { kind: Kind::Log, data: Bytes::from(proto::log_entry(line)) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: Kind, n: u8) -> Msg {
        Msg { kind, data: Bytes::from(vec![n; 10]) }
    }

    fn take_all(q: &ClientQueue) -> (Vec<u8>, Taken) {
        let mut out = Vec::new();
        let t = q.take(&mut out, usize::MAX);
        (out.iter().map(|m| m.data[0]).collect(), t)
    }

    #[test]
    fn full_queue_drops_oldest_events_and_keeps_logs() {
        let q = ClientQueue::new(1).unwrap();
        let lim = Limits { max_msgs: 3, max_bytes: usize::MAX };
        assert_eq!(q.push(msg(Kind::Log, 1), &lim, true), 0);
        assert_eq!(q.push(msg(Kind::Event, 2), &lim, true), 0);
        assert_eq!(q.push(msg(Kind::Event, 3), &lim, true), 0);
        assert_eq!(q.push(msg(Kind::Event, 4), &lim, true), 1, "event 2 goes");
        assert_eq!(q.push(msg(Kind::Event, 5), &lim, true), 1, "event 3 goes");
        let (got, t) = take_all(&q);
        assert_eq!(got, vec![1, 4, 5]);
        assert_eq!(t, Taken { dropped: 2, closed: false });
        assert_eq!(take_all(&q).1.dropped, 0, "told once");
    }

    #[test]
    fn byte_limit_and_logs_only() {
        let q = ClientQueue::new(1).unwrap();
        let lim = Limits { max_msgs: 100, max_bytes: 25 };
        for i in 0..5 {
            q.push(msg(Kind::Log, i), &lim, true);
        }
        let (got, t) = take_all(&q);
        assert_eq!(got, vec![3, 4], "only logs: the oldest logs go, not counted as events");
        assert_eq!(t.dropped, 0);
    }

    #[test]
    fn take_respects_byte_budget_but_always_gives_one() {
        let q = ClientQueue::new(1).unwrap();
        let lim = Limits::default();
        for i in 0..4 {
            q.push(msg(Kind::Event, i), &lim, true);
        }
        let mut out = Vec::new();
        q.take(&mut out, 25);
        assert_eq!(out.len(), 2);
        out.clear();
        q.take(&mut out, 1);
        assert_eq!(out.len(), 1, "at least one");
    }

    #[test]
    fn broadcast_reaches_every_client_in_order_and_close_ends() {
        let hub = Hub::new(Limits::default());
        let (a, _) = hub.register().unwrap().unwrap();
        let (b, _) = hub.register().unwrap().unwrap();
        assert_eq!(hub.client_count(), 2);
        for i in 0..5 {
            hub.broadcast(msg(Kind::Event, i));
        }
        assert_eq!(take_all(&a).0, vec![0, 1, 2, 3, 4]);
        hub.unregister(b.id);
        hub.broadcast(msg(Kind::Event, 9));
        assert_eq!(take_all(&b).0, vec![0, 1, 2, 3, 4], "b left before 9");
        assert!(!a.prepare_wait(), "work is queued");
        hub.close();
        assert_eq!(take_all(&a), (vec![9], Taken { dropped: 0, closed: true }));
        assert!(hub.register().unwrap().is_none());
    }

    #[test]
    fn waiting_client_is_woken_once() {
        let hub = Hub::new(Limits::default());
        let (q, _) = hub.register().unwrap().unwrap();
        assert!(q.prepare_wait());
        hub.broadcast(msg(Kind::Event, 1));
        hub.wake();
        let ready = crate::sys::os::poll_readable(&[q.wake_fd()], 0).unwrap();
        assert!(ready[0], "woken");
        q.end_wait();
        assert!(!crate::sys::os::poll_readable(&[q.wake_fd()], 0).unwrap()[0], "drained");
        hub.broadcast(msg(Kind::Event, 2));
        hub.wake();
        assert!(!crate::sys::os::poll_readable(&[q.wake_fd()], 0).unwrap()[0], "not waiting: no syscall");
    }

    #[test]
    fn events_wake_in_batches_logs_at_once() {
        let hub = Hub::new(Limits::default());
        let (q, _) = hub.register().unwrap().unwrap();
        let woken = |q: &ClientQueue| crate::sys::os::poll_readable(&[q.wake_fd()], 0).unwrap()[0];
        assert!(q.prepare_wait());
        hub.broadcast(msg(Kind::Event, 1));
        assert!(!woken(&q), "an event alone waits for wake()");
        hub.wake();
        assert!(woken(&q), "woken by wake()");
        q.end_wait();
        let mut out = Vec::new();
        q.take(&mut out, usize::MAX);

        assert!(q.prepare_wait());
        hub.wake();
        assert!(!woken(&q), "nothing new: no wake-up");
        hub.broadcast(msg(Kind::Log, 2));
        assert!(woken(&q), "a log line wakes at once");
        q.end_wait();
        q.take(&mut out, usize::MAX);

        assert!(q.prepare_wait());
        for i in 0..WAKE_EVERY - 1 {
            hub.broadcast(msg(Kind::Event, i as u8));
        }
        assert!(!woken(&q));
        hub.broadcast(msg(Kind::Event, 0));
        assert!(woken(&q), "woken after WAKE_EVERY events without wake()");
    }
}
