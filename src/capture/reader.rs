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

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender};

use super::record::Record;
use crate::error::{Context, Result};
use crate::stats::Stats;
use super::Consumer;
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

/// How long the reader sleeps before looking at the ring again while
/// records come: records below the wake-up level wait at most this long.
/// After IDLE_AFTER_EMPTY_POLLS empty looks (100 ms) it sleeps until the
/// next record wakes it (an idle tool costs nothing); a source that cannot
/// wake it (tests' memory) is looked at every POLL_IDLE_MS instead.
const POLL_BUSY_MS: i32 = 2;
const POLL_IDLE_MS: i32 = 20;
const IDLE_AFTER_EMPTY_POLLS: u32 = 50;
/// Records taken out of the ring at a time, then handed over together.
pub const BATCH: usize = 256;

/// What the reader hands the dispatcher: records in capture order.
pub type Batch = Vec<Record>;
/// At shutdown, how long the reader waits in all for the dispatcher to take
/// what is left (records it cannot hand over by then are counted).
const SHUTDOWN_PATIENCE: Duration = Duration::from_millis(500);
/// While the dispatcher is not taking, how often the reader looks whether
/// it is asked to stop (its patience then starts).
const STOP_CHECK: Duration = Duration::from_millis(20);

/// Where the reader takes records from: the BPF ring buffer (in tests,
/// records in memory).
pub trait RecordSource: Send {
    /// A descriptor that polls readable when records wait.
    fn fd(&self) -> RawFd;
    /// Hands at most `n` waiting records to `f`, in order; returns how many.
    fn consume_n(&mut self, n: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize>;
    /// The reader sleeps until `fd` polls readable (`true`) or is awake
    /// again (`false`); with `true`, the source makes its next record wake
    /// the reader, or returns false when it cannot.
    fn set_asleep(&mut self, asleep: bool) -> bool {
        let _ = asleep;
        false
    }
}

impl RecordSource for Consumer {
    fn fd(&self) -> RawFd {
        self.ring.fd()
    }

    fn consume_n(&mut self, n: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        self.ring.consume_n(n, f)
    }

    fn set_asleep(&mut self, asleep: bool) -> bool {
        match Consumer::set_asleep(self, asleep) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("ring reader: {e}; it looks at the ring every {POLL_IDLE_MS} ms instead of sleeping");
                false
            }
        }
    }
}

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

    /// Records of `weight` bytes are handed over.
    pub fn add(&self, weight: usize) {
        self.bytes.fetch_add(weight, Relaxed);
    }

    /// The dispatcher is done with records of `weight` bytes.
    pub fn done(&self, weight: usize) {
        self.bytes.fetch_sub(weight, Relaxed);
    }

    /// Bytes handed over and not yet processed.
    pub fn held(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    fn full(&self) -> bool {
        self.held() > self.max
    }
}

/// The reader thread. Dropping it (or `stop`) wakes it; it drains the ring
/// once more and exits, dropping the channel's sender.
pub struct Reader {
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    pub fn spawn(mut ring: impl RecordSource + 'static, tx: Sender<Batch>, stats: &Arc<Stats>, flight: &Arc<InFlight>) -> Result<Reader> {
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

fn read_loop(ring: &mut impl RecordSource, tx: &Sender<Batch>, stop: &EventFd, stats: &Stats, flight: &InFlight) {
    let fd = ring.fd();
    let mut empty_polls = 0u32;
    // Set once stopping: the deadline for handing over what is left.
    let mut deadline: Option<Instant> = None;
    // The source's flag is set: the next record wakes us. It is set, then
    // the ring looked at once more (a record committed just before woke
    // nobody), and only if that finds nothing does the reader sleep.
    let mut armed = false;
    loop {
        if deadline.is_none() {
            let timeout = if armed {
                -1
            } else if empty_polls < IDLE_AFTER_EMPTY_POLLS {
                POLL_BUSY_MS
            } else if ring.set_asleep(true) {
                armed = true;
                0
            } else {
                POLL_IDLE_MS
            };
            let polled = poll_readable(&[fd, stop.fd()], timeout);
            if timeout == -1 {
                // Woken: records are coming; look often again.
                ring.set_asleep(false);
                armed = false;
                empty_polls = 0;
            }
            match polled {
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
                    stopping(stop, &mut deadline);
                }
                let records = batch.len() as u64;
                flight.add(weight);
                let sent = hand_over(tx, batch, stop, &mut deadline);
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
            if armed {
                ring.set_asleep(false);
                armed = false;
            }
        } else if deadline.is_some() {
            return;
        } else {
            empty_polls = empty_polls.saturating_add(1);
        }
    }
}

/// Sets the shutdown deadline once the reader is asked to stop.
fn stopping(stop: &EventFd, deadline: &mut Option<Instant>) {
    if deadline.is_none() && poll_readable(&[stop.fd()], 0).is_ok_and(|r| r[0]) {
        *deadline = Some(Instant::now() + SHUTDOWN_PATIENCE);
    }
}

/// Sends `batch`, waiting for room as long as the dispatcher takes, or,
/// once stopping, until the deadline. False: not handed over.
fn hand_over(tx: &Sender<Batch>, mut batch: Batch, stop: &EventFd, deadline: &mut Option<Instant>) -> bool {
    loop {
        let wait = deadline.map_or(STOP_CHECK, |d| d.saturating_duration_since(Instant::now()));
        match tx.send_timeout(batch, wait) {
            Ok(()) => return true,
            Err(SendTimeoutError::Disconnected(_)) => return false,
            Err(SendTimeoutError::Timeout(_)) if deadline.is_some() => return false,
            Err(SendTimeoutError::Timeout(b)) => {
                batch = b;
                stopping(stop, deadline);
            }
        }
    }
}

/// The hand-off without a kernel: records in memory stand for the ring, the
/// test for the dispatcher.
#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};

    use super::*;
    use crate::capture::record::tests::{chunk_record, hdr};
    use crate::capture::record::Body;

    const WAIT: Duration = Duration::from_secs(10);

    /// Records waiting "in the ring"; its descriptor never polls readable,
    /// so the reader finds them by looking every few milliseconds.
    struct Memory {
        recs: Arc<Mutex<VecDeque<Vec<u8>>>>,
        idle: EventFd,
    }

    impl RecordSource for Memory {
        fn fd(&self) -> RawFd {
            self.idle.fd()
        }

        fn consume_n(&mut self, n: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize> {
            let mut recs = self.recs.lock().unwrap();
            let mut done = 0;
            while done < n {
                let Some(r) = recs.pop_front() else { break };
                f(&r);
                done += 1;
            }
            Ok(done)
        }
    }

    /// Record `i`: a 4-byte call whose id is `i`.
    fn record(i: u64) -> Vec<u8> {
        chunk_record(0, &hdr(i, 4, 0, 4), b"abcd")
    }

    struct Setup {
        recs: Arc<Mutex<VecDeque<Vec<u8>>>>,
        rx: Receiver<Batch>,
        stats: Arc<Stats>,
        flight: Arc<InFlight>,
        reader: Reader,
    }

    /// A reader of records `0..n` (their bytes as listed), with a channel of
    /// `capacity` batches.
    fn start(recs: Vec<Vec<u8>>, capacity: usize) -> Setup {
        let recs = Arc::new(Mutex::new(VecDeque::from(recs)));
        let (tx, rx) = bounded(capacity);
        let stats = Arc::new(Stats::default());
        let flight = Arc::new(InFlight::new(1 << 30));
        let source = Memory { recs: Arc::clone(&recs), idle: EventFd::new().unwrap() };
        let reader = Reader::spawn(source, tx, &stats, &flight).unwrap();
        Setup { recs, rx, stats, flight, reader }
    }

    /// Takes batches as the dispatcher does until `n` records came; their ids.
    fn take(s: &Setup, n: usize) -> Vec<u64> {
        let mut ids = Vec::new();
        while ids.len() < n {
            let batch = s.rx.recv_timeout(WAIT).expect("a batch in time");
            assert!(!batch.is_empty() && batch.len() <= BATCH, "a batch of {}", batch.len());
            s.flight.done(batch.iter().map(Record::weight).sum());
            ids.extend(batch.iter().map(|r| match &r.body {
                Body::Chunk(h, _) => h.call_id,
                b => panic!("not a chunk: {b:?}"),
            }));
        }
        ids
    }

    /// Waits until `cond` holds (it is the state of another thread).
    fn until(what: &str, cond: impl Fn() -> bool) {
        let end = Instant::now() + WAIT;
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn ids(n: u64) -> Vec<u64> {
        (0..n).collect()
    }

    /// A ring whose reader sleeps until woken, with the probes' side of
    /// bpf/common.h played by `produce`: a record is added, then, if the
    /// reader said it sleeps, it is woken. `late` records land the moment
    /// the reader sets its flag, as if committed by a probe that read the
    /// flag just before: nobody wakes the reader for them.
    struct Sleepy {
        recs: Arc<Mutex<VecDeque<Vec<u8>>>>,
        wake: Arc<EventFd>,
        asleep: Arc<std::sync::atomic::AtomicBool>,
        late: Arc<Mutex<Vec<Vec<u8>>>>,
        sleeps: Arc<AtomicUsize>,
    }

    impl RecordSource for Sleepy {
        fn fd(&self) -> RawFd {
            self.wake.fd()
        }

        fn consume_n(&mut self, n: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize> {
            self.wake.drain();
            Memory { recs: Arc::clone(&self.recs), idle: EventFd::new().unwrap() }.consume_n(n, f)
        }

        fn set_asleep(&mut self, asleep: bool) -> bool {
            if asleep {
                self.sleeps.fetch_add(1, Relaxed);
                self.recs.lock().unwrap().extend(self.late.lock().unwrap().drain(..));
            }
            self.asleep.store(asleep, std::sync::atomic::Ordering::SeqCst);
            true
        }
    }

    struct SleepySetup {
        s: Setup,
        wake: Arc<EventFd>,
        asleep: Arc<std::sync::atomic::AtomicBool>,
        late: Arc<Mutex<Vec<Vec<u8>>>>,
        sleeps: Arc<AtomicUsize>,
    }

    impl SleepySetup {
        fn produce(&self, rec: Vec<u8>) {
            self.s.recs.lock().unwrap().push_back(rec);
            if self.asleep.swap(false, std::sync::atomic::Ordering::SeqCst) {
                self.wake.signal();
            }
        }
    }

    fn start_sleepy() -> SleepySetup {
        let recs = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = bounded(64);
        let stats = Arc::new(Stats::default());
        let flight = Arc::new(InFlight::new(1 << 30));
        let wake = Arc::new(EventFd::new().unwrap());
        let asleep = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let late = Arc::new(Mutex::new(Vec::new()));
        let sleeps = Arc::new(AtomicUsize::new(0));
        let source = Sleepy {
            recs: Arc::clone(&recs),
            wake: Arc::clone(&wake),
            asleep: Arc::clone(&asleep),
            late: Arc::clone(&late),
            sleeps: Arc::clone(&sleeps),
        };
        let reader = Reader::spawn(source, tx, &stats, &flight).unwrap();
        SleepySetup { s: Setup { recs, rx, stats, flight, reader }, wake, asleep, late, sleeps }
    }

    #[test]
    fn an_idle_reader_sleeps_and_each_record_wakes_it() {
        let t = start_sleepy();
        for i in 0..20 {
            let before = t.sleeps.load(Relaxed);
            until("the reader sleeps", || t.sleeps.load(Relaxed) > before && t.asleep.load(Relaxed));
            t.produce(record(i));
            assert_eq!(take(&t.s, 1), vec![i]);
        }
        t.s.reader.stop();
    }

    #[test]
    fn a_record_that_lands_as_the_reader_falls_asleep_is_not_left_behind() {
        let t = start_sleepy();
        for i in 0..20 {
            t.late.lock().unwrap().push(record(i));
            // Nobody wakes the reader for it: it must look once more after
            // setting its flag, find it, and stay awake.
            assert_eq!(take(&t.s, 1), vec![i]);
        }
        t.s.reader.stop();
    }

    #[test]
    fn every_record_is_handed_over_in_order_in_batches() {
        let mut recs: Vec<Vec<u8>> = (0..1000).map(record).collect();
        recs.insert(500, vec![1, 2, 3]); // too short for a header
        let s = start(recs, 4);
        assert_eq!(take(&s, 1000), ids(1000));
        assert_eq!(s.stats.records.load(Relaxed), 1001);
        assert_eq!(s.stats.malformed.load(Relaxed), 1);
        assert_eq!(s.flight.held(), 0, "every byte handed over was taken");
        s.reader.stop();
        assert_eq!(s.rx.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected), "the reader's end closes the channel");
        assert_eq!(s.stats.undelivered.load(Relaxed), 0);
    }

    #[test]
    fn a_slow_dispatcher_holds_records_back_in_the_ring_and_loses_none() {
        let s = start((0..2000).map(record).collect(), 1);
        until("the channel is full", || s.rx.is_full());
        // One batch in the channel and at most one on its way: the rest waits in the ring.
        let left = s.recs.lock().unwrap().len();
        assert!(left >= 2000 - 2 * BATCH, "{left} records left in the ring");
        assert_eq!(take(&s, 2000), ids(2000));
        assert_eq!(s.stats.undelivered.load(Relaxed), 0);
        s.reader.stop();
    }

    #[test]
    fn at_shutdown_the_reader_drains_the_ring() {
        let s = start(Vec::new(), 64);
        // Records made just before the probes were detached, then the stop.
        s.recs.lock().unwrap().extend((0..1500).map(record));
        s.reader.stop();
        assert!(s.recs.lock().unwrap().is_empty(), "the ring is drained");
        let mut got = Vec::new();
        for batch in s.rx.iter() {
            got.extend(batch.iter().map(|r| r.ts_ns).collect::<Vec<_>>());
        }
        assert_eq!(got.len(), 1500, "every record handed over");
        assert_eq!(s.stats.undelivered.load(Relaxed), 0);
    }

    #[test]
    fn a_stalled_dispatcher_does_not_hold_shutdown_past_its_patience() {
        let s = start((0..2000).map(record).collect(), 1);
        until("the channel is full", || s.rx.is_full());
        let (done_tx, done_rx) = bounded(1);
        let reader = s.reader;
        let started = Instant::now();
        std::thread::spawn(move || {
            reader.stop();
            done_tx.send(()).unwrap();
        });
        done_rx.recv_timeout(WAIT).expect("the reader stops although nothing is taken");
        assert!(started.elapsed() >= SHUTDOWN_PATIENCE, "it waited its patience first");
        let undelivered = s.stats.undelivered.load(Relaxed);
        let delivered: usize = s.rx.try_iter().map(|b| b.len()).sum();
        assert!(s.recs.lock().unwrap().is_empty(), "the ring is drained");
        assert_eq!(delivered as u64 + undelivered, 2000, "each record handed over or counted");
        assert!(undelivered >= 2000 - 2 * BATCH as u64, "{undelivered}");
        let weight = Record::parse(&record(0)).unwrap().weight();
        assert_eq!(s.flight.held(), delivered * weight, "only what was handed over is in flight");
    }

    #[test]
    fn a_dispatcher_that_ended_early_gets_nothing_and_everything_is_counted() {
        let s = start(Vec::new(), 4);
        drop(s.rx);
        s.recs.lock().unwrap().extend((0..700).map(record));
        until("the records are read", || s.recs.lock().unwrap().is_empty());
        until("the records are counted", || s.stats.undelivered.load(Relaxed) == 700);
        assert_eq!(s.flight.held(), 0);
        s.reader.stop();
        assert_eq!(s.stats.records.load(Relaxed), 700);
    }
}
