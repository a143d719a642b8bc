//! Perf-buffer reader threads, one per CPU ring. The libbpf callback only
//! copies the record and `try_send`s it to the dispatcher's bounded
//! channel: a reader never blocks on the channel, and every record it cannot
//! hand over is counted, as is every record the kernel dropped.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};

use crate::error::{Context, Result};
use crate::stats::Stats;
use crate::sys::libbpf::{PerfCpuBuffer, PerfHandler};
use crate::sys::os::{poll_readable, EventFd};

/// One perf record, copied out of the ring.
pub struct Record {
    pub cpu: u32,
    pub data: Vec<u8>,
}

/// The perf buffer's callbacks.
pub struct Forward {
    pub tx: Sender<Record>,
    pub stats: Arc<Stats>,
}

impl PerfHandler for Forward {
    fn sample(&self, cpu: i32, data: &[u8]) {
        Stats::add(&self.stats.records, 1);
        match self.tx.try_send(Record { cpu: cpu as u32, data: data.to_vec() }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Stats::add(&self.stats.channel_full, 1),
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
    pub fn spawn(bufs: Vec<PerfCpuBuffer>, stats: &Arc<Stats>) -> Result<Readers> {
        let stop = Arc::new(EventFd::new().context(|| "cannot create eventfd".into())?);
        let mut readers = Readers { stop, threads: Vec::new() };
        for (i, buf) in bufs.into_iter().enumerate() {
            let stop = Arc::clone(&readers.stop);
            let stats = Arc::clone(stats);
            let t = std::thread::Builder::new()
                .name(format!("perf-reader-{i}"))
                .spawn(move || read_loop(buf, &stop, &stats))
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

fn read_loop(mut buf: PerfCpuBuffer, stop: &EventFd, stats: &Stats) {
    let fd = match buf.fd() {
        Ok(fd) => fd,
        Err(e) => {
            log::error!("{e}");
            return;
        }
    };
    let mut empty_polls = 0u32;
    loop {
        let timeout = if empty_polls >= IDLE_AFTER_EMPTY_POLLS { POLL_IDLE_MS } else { POLL_BUSY_MS };
        let ready = match poll_readable(&[fd, stop.fd()], timeout) {
            Ok(r) => r,
            Err(e) => {
                log::error!("perf reader: poll failed: {e}");
                return;
            }
        };
        let before = stats.records.load(std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = buf.consume() {
            log::error!("{e}");
            return;
        }
        if stats.records.load(std::sync::atomic::Ordering::Relaxed) == before {
            empty_polls = empty_polls.saturating_add(1);
        } else {
            empty_polls = 0;
        }
        if ready[1] {
            // Probes are detached before stop: this drains what is left.
            if let Err(e) = buf.consume() {
                log::error!("{e}");
            }
            return;
        }
    }
}
