//! The reader thread: takes records out of the BPF ring buffer, decodes
//! their headers, copies their bytes and hands them to the dispatcher's
//! bounded channel in batches (one wake-up of the dispatcher per batch, not
//! per record), in the order the probes reserved them.
//!
//! One ring serves every CPU and every loaded object, so records arrive in
//! one order: a thread's records in the order it made them, and the
//! records of one connection (used by one thread at a time) in order too.
//! The order across threads that run at the same moment on different CPUs
//! is the order in which they reserved ring space.
//!
//! The reader does not drop records for lack of room in the channel: it
//! waits for the dispatcher, leaving the rest in the ring, so the kernel ring
//! (`--mapsize`) stays the buffer and the only place a record can be lost —
//! counted by the BPF side. The kernel wakes the reader only when a quarter
//! of the ring is waiting (a wake-up costs the traced process microseconds);
//! the reader looks every few milliseconds for the rest.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::record::Record;
use crate::error::{Context, Result};
use crate::stats::Stats;
use crate::sys::libbpf::RingBuffer;
use crate::sys::os::{poll_readable, EventFd};

/// The nice value of the threads between the ring and the outputs (the
/// reader and the dispatcher). A traced program busy on every CPU would
/// otherwise get most of the CPU time and the ring would overflow while
/// they wait for it (measured by `make bench`: 2 processes × 2 connections
/// of 4 KiB writes on 2 CPUs lost 5-40 % of their records at nice 0, none at
/// -5). These threads use CPU only in proportion to what is captured.
pub const CAPTURE_NICE: i32 = -5;

/// Gives the calling capture thread `CAPTURE_NICE`; without CAP_SYS_NICE it
/// stays at the default, said once at debug level.
pub fn raise_capture_priority() {
    static SAID: std::sync::Once = std::sync::Once::new();
    if let Err(e) = crate::sys::os::set_thread_nice(CAPTURE_NICE) {
        SAID.call_once(|| log::debug!("capture threads keep the default priority: setpriority: {e}"));
    }
}

/// How long the reader sleeps before looking at the ring again: records
/// below the wake-up level wait at most this long. Short while records
/// come, longer when the ring has been empty a while (an idle tool should
/// not spin).
const POLL_BUSY_MS: i32 = 2;
const POLL_IDLE_MS: i32 = 20;
const IDLE_AFTER_EMPTY_POLLS: u32 = 500;
/// Records taken out of the ring at a time, then handed over together.
pub const BATCH: usize = 256;

/// What the reader hands the dispatcher: records in capture order.
pub type Batch = Vec<Record>;
/// At shutdown, how long the reader waits in all for the dispatcher to take
/// what is left (records it cannot hand over by then are counted).
const SHUTDOWN_PATIENCE: Duration = Duration::from_millis(500);

/// Bytes of records handed to the dispatcher and not yet processed: the
/// channel is bounded in records, this bounds it in bytes (4,096 records of
/// 32 KiB would be 128 MiB).
#[derive(Debug, Default)]
pub struct InFlight {
    bytes: AtomicUsize,
    max: usize,
}

impl InFlight {
    pub fn new(max: usize) -> InFlight {
        InFlight { bytes: AtomicUsize::new(0), max }
    }

    /// The dispatcher is done with `rec`.
    pub fn done(&self, weight: usize) {
        self.bytes.fetch_sub(weight, Relaxed);
    }

    fn full(&self) -> bool {
        self.bytes.load(Relaxed) > self.max
    }
}

/// The reader thread. Dropping it (or `stop`) wakes it; it drains the ring
/// once more and exits, dropping the channel's sender.
pub struct Reader {
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    pub fn spawn(mut ring: RingBuffer, tx: Sender<Batch>, stats: &Arc<Stats>, flight: &Arc<InFlight>) -> Result<Reader> {
        let stop = Arc::new(EventFd::new().context(|| "cannot create eventfd".into())?);
        let stop_rx = Arc::clone(&stop);
        let stats = Arc::clone(stats);
        let flight = Arc::clone(flight);
        let thread = std::thread::Builder::new()
            .name("ring-reader".into())
            .spawn(move || {
                raise_capture_priority();
                read_loop(&mut ring, &tx, &stop_rx, &stats, &flight)
            })
            .context(|| "cannot start the ring reader thread".into())?;
        Ok(Reader { stop, thread: Some(thread) })
    }

    /// Wakes the reader, lets it drain the ring (the probes are detached
    /// first, so what is left is finite), and joins it.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.signal();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the ring reader thread panicked");
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn read_loop(ring: &mut RingBuffer, tx: &Sender<Batch>, stop: &EventFd, stats: &Stats, flight: &InFlight) {
    let fd = ring.fd();
    let mut empty_polls = 0u32;
    // Set once stopping: the deadline for handing over what is left.
    let mut deadline: Option<Instant> = None;
    loop {
        if deadline.is_none() {
            let timeout = if empty_polls >= IDLE_AFTER_EMPTY_POLLS { POLL_IDLE_MS } else { POLL_BUSY_MS };
            match poll_readable(&[fd, stop.fd()], timeout) {
                Ok(r) if r[1] => deadline = Some(Instant::now() + SHUTDOWN_PATIENCE),
                Ok(_) => {}
                Err(e) => {
                    log::error!("ring reader: poll failed: {e}");
                    return;
                }
            }
        }
        let mut got = 0;
        loop {
            let mut batch: Batch = Vec::with_capacity(BATCH);
            let mut weight = 0;
            let n = ring.consume_n(BATCH, &mut |data: &[u8]| {
                Stats::add(&stats.records, 1);
                match Record::parse(data) {
                    Ok(rec) => {
                        weight += rec.weight();
                        batch.push(rec);
                    }
                    Err(e) => {
                        Stats::add(&stats.malformed, 1);
                        log::debug!("malformed record: {e}");
                    }
                }
            });
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    log::error!("{e}");
                    return;
                }
            };
            got += n;
            if !batch.is_empty() {
                // Over the bytes in flight, wait for the dispatcher (the
                // ring keeps what comes meanwhile), as when the channel is full.
                while flight.full() && deadline.is_none_or(|d| Instant::now() < d) && !tx.is_empty() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let records = batch.len() as u64;
                flight.bytes.fetch_add(weight, Relaxed);
                let sent = match deadline {
                    Some(d) => tx.send_timeout(batch, d.saturating_duration_since(Instant::now())).is_ok(),
                    None => tx.send(batch).is_ok(),
                };
                if !sent {
                    flight.done(weight);
                    Stats::add(&stats.undelivered, records);
                }
            }
            if n < BATCH {
                break;
            }
        }
        if got > 0 {
            empty_polls = 0;
        } else if deadline.is_some() {
            return;
        } else {
            empty_polls = empty_polls.saturating_add(1);
        }
    }
}
