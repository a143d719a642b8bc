//! Perf-buffer reader threads, one per CPU ring. The libbpf callback decodes
//! the record's header, copies its payload and hands both to the
//! dispatcher's bounded channel.
//!
//! A reader never blocks on the channel and never drops for lack of room
//! in it: when the channel is full, the record that did not fit is kept
//! aside, the pass over the ring stops, and the reader retries a
//! millisecond later, reading on from the ring once the record is in. The
//! kernel ring (`--mapsize`, megabytes per CPU) stays the buffer, and the
//! only place a record can be lost — counted by the BPF side. (A reader woken
//! at the ring's watermark has thousands of records to hand over, more than
//! the channel holds, while on a busy machine the dispatcher may not have
//! run yet: dropping there lost events with the ring nearly empty.)
//!
//! After each complete pass a reader sends a `Drained` marker: the
//! dispatcher uses them to put the CPUs' records back in order (`reorder`).

use std::sync::Arc;
use std::thread::JoinHandle;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};

use crate::error::{Context, Result};
use crate::event::ChunkHdr;
use crate::stats::Stats;
use crate::sys::libbpf::{Flow, PerfCpuBuffer, PerfHandler};
use crate::sys::os::{monotonic_ns, poll_readable, EventFd};

/// One perf record, decoded: its header, and its payload copied out of the
/// ring (the only copy before the assembler).
pub struct Record {
    pub hdr: ChunkHdr,
    pub payload: Vec<u8>,
}

/// What readers send the dispatcher.
pub enum Input {
    Record(Record),
    /// Reader `reader` has sent every record its ring held at `upto_ns`
    /// (CLOCK_MONOTONIC, the probes' clock).
    Drained { reader: usize, upto_ns: u64 },
}

/// The nice value of the threads between the rings and the outputs (the
/// readers and the dispatcher). A traced program busy on every CPU would
/// otherwise get most of the CPU time and the rings would overflow while
/// they wait for it (measured by `make bench`: 2 processes × 2 connections
/// of 4 KiB writes on 2 CPUs lost 5-40 % of their records at nice 0, none at
/// -5). These threads use CPU only in proportion to what is captured.
pub const CAPTURE_NICE: i32 = -5;

/// Gives the calling capture thread `CAPTURE_NICE`; without CAP_SYS_NICE it
/// stays at the default, said once at debug level.
pub fn raise_capture_priority() {
    static SAID: std::sync::Once = std::sync::Once::new();
    if let Err(e) = crate::sys::os::set_thread_nice(CAPTURE_NICE) {
        SAID.call_once(|| {
            log::debug!("capture threads keep the default priority: setpriority: {e}")
        });
    }
}

thread_local! {
    /// This reader's input that the channel had no room for: it goes first
    /// when the reader resumes. (The callback runs on the reader's thread.)
    static HELD: RefCell<Option<Input>> = const { RefCell::new(None) };
}

/// Whether this reader holds an input back.
fn holding() -> bool {
    HELD.with(|h| h.borrow().is_some())
}

/// The input this reader held back, if any.
fn take_held() -> Option<Input> {
    HELD.with(|h| h.borrow_mut().take())
}

/// Hands `input` over, or keeps it in HELD; false if it had to be kept.
fn hand_over(tx: &Sender<Input>, input: Input, stats: &Stats) -> bool {
    match tx.try_send(input) {
        Ok(()) => true,
        Err(TrySendError::Full(input)) => {
            HELD.with(|h| *h.borrow_mut() = Some(input));
            false
        }
        Err(TrySendError::Disconnected(input)) => {
            if matches!(input, Input::Record(_)) {
                Stats::add(&stats.channel_full, 1);
            }
            true
        }
    }
}

/// The perf buffer's callbacks.
pub struct Forward {
    pub tx: Sender<Input>,
    pub stats: Arc<Stats>,
}

impl PerfHandler for Forward {
    fn sample(&self, cpu: i32, data: &[u8]) -> Flow {
        Stats::add(&self.stats.records, 1);
        let rec = match ChunkHdr::parse(data) {
            Ok((hdr, payload)) => Record { hdr, payload: payload.to_vec() },
            Err(e) => {
                Stats::add(&self.stats.malformed, 1);
                log::debug!("malformed record from CPU {cpu}: {e}");
                return Flow::Continue;
            }
        };
        if hand_over(&self.tx, Input::Record(rec), &self.stats) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    fn lost(&self, _cpu: i32, count: u64) {
        Stats::add(&self.stats.kernel_lost, count);
    }
}

/// The reader threads. Dropping (or `stop`) wakes them; each drains its ring
/// once more and exits, and the last one drops the channel's sender.
pub struct Readers {
    stop: Arc<EventFd>,
    threads: Vec<JoinHandle<()>>,
}

impl Readers {
    /// `stats.records` tells a reader whether records are coming (any CPU's:
    /// it only chooses how often to look).
    pub fn spawn(bufs: Vec<PerfCpuBuffer>, tx: &Sender<Input>, stats: &Arc<Stats>) -> Result<Readers> {
        let stop = Arc::new(EventFd::new().context(|| "cannot create eventfd".into())?);
        let mut readers = Readers { stop, threads: Vec::new() };
        for (i, buf) in bufs.into_iter().enumerate() {
            let stop = Arc::clone(&readers.stop);
            let stats = Arc::clone(stats);
            let tx = tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("perf-reader-{i}"))
                .spawn(move || {
                    raise_capture_priority();
                    read_loop(i, buf, &tx, &stop, &stats)
                })
                .context(|| "cannot start a reader thread".into())?;
            readers.threads.push(t);
        }
        Ok(readers)
    }

    /// Wakes every reader, lets it drain its ring, and joins it.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.signal();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("a perf reader thread panicked");
            }
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// How long a reader sleeps before looking at its ring again: records
/// below the wake-up watermark wait at most this long. Short while records
/// come, longer when the ring has been empty a while (an idle tool should
/// not spin).
const POLL_BUSY_MS: i32 = 2;
const POLL_IDLE_MS: i32 = 20;
const IDLE_AFTER_EMPTY_POLLS: u32 = 500;
/// With a record held back, how soon the channel is tried again.
const RETRY_MS: i32 = 1;
/// At shutdown, how long the last records may wait for the dispatcher.
const SHUTDOWN_PATIENCE: Duration = Duration::from_millis(500);

fn read_loop(reader: usize, mut buf: PerfCpuBuffer, tx: &Sender<Input>, stop: &EventFd, stats: &Stats) {
    let fd = match buf.fd() {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("{e}");
            return;
        }
    };
    let mut empty_polls = 0u32;
    loop {
        // What the channel had no room for goes first; the ring waits.
        if let Some(input) = take_held() {
            if !hand_over(tx, input, stats) {
                match poll_readable(&[stop.fd()], RETRY_MS) {
                    Ok(r) if r[0] => return drain_at_stop(&mut buf, tx, stats),
                    Ok(_) => continue,
                    Err(e) => {
                        log::error!("perf reader: poll failed: {e}");
                        return;
                    }
                }
            }
        }
        let timeout = if empty_polls >= IDLE_AFTER_EMPTY_POLLS { POLL_IDLE_MS } else { POLL_BUSY_MS };
        let ready = match poll_readable(&[fd, stop.fd()], timeout) {
            Ok(r) => r,
            Err(e) => {
                log::error!("perf reader: poll failed: {e}");
                return;
            }
        };
        if ready[1] {
            // Probes are detached before stop: what is left is finite.
            return drain_at_stop(&mut buf, tx, stats);
        }
        let before = stats.records.load(std::sync::atomic::Ordering::Relaxed);
        let upto_ns = monotonic_ns();
        if let Err(e) = buf.consume() {
            log::error!("{e}");
            return;
        }
        if stats.records.load(std::sync::atomic::Ordering::Relaxed) == before {
            empty_polls = empty_polls.saturating_add(1);
        } else {
            empty_polls = 0;
        }
        // Only a complete pass vouches for everything before `upto_ns`.
        if !holding() {
            hand_over(tx, Input::Drained { reader, upto_ns }, stats);
        }
    }
}

/// Hands over everything left in the ring, waiting for the dispatcher (it
/// runs until the readers are gone) at most `SHUTDOWN_PATIENCE` per record.
fn drain_at_stop(buf: &mut PerfCpuBuffer, tx: &Sender<Input>, stats: &Stats) {
    let deadline = Instant::now() + SHUTDOWN_PATIENCE;
    loop {
        if let Some(input) = take_held() {
            match tx.send_timeout(input, deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(Input::Record(_)) | SendTimeoutError::Disconnected(Input::Record(_))) => {
                    Stats::add(&stats.channel_full, 1);
                }
                Err(_) => {}
            }
        }
        if let Err(e) = buf.consume() {
            log::error!("{e}");
            return;
        }
        if !holding() {
            return;
        }
    }
}
