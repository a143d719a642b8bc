//! The few operating-system calls std does not offer: a self-pipe for
//! SIGINT/SIGTERM, an eventfd to wake reader threads, poll(2), clocks and the
//! effective uid. All `unsafe` libc use is here, behind safe functions.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the stop pipe, for the signal handler (async-signal-safe use only).
static STOP_PIPE_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = STOP_PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; b is a valid one-byte buffer.
        // A full pipe means a stop is already pending, so the result is moot.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Why the process should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM, with its number.
    Signal(i32),
    /// Asked by a part of the program (e.g. stdout went away).
    Internal,
}

/// Delivers SIGINT/SIGTERM (and internal stop requests) to one waiting thread
/// through a pipe, so no work happens in signal context.
pub struct StopSignal {
    read: OwnedFd,
    write: std::sync::Arc<OwnedFd>,
}

/// Lets any thread ask the main thread to stop.
#[derive(Clone)]
pub struct StopNotifier {
    write: std::sync::Arc<OwnedFd>,
}

impl StopNotifier {
    pub fn request(&self) {
        let b = 0u8;
        // SAFETY: the fd is open while self lives; b is a one-byte buffer. A
        // full pipe means a stop is already pending.
        unsafe { libc::write(self.write.as_raw_fd(), (&b as *const u8).cast(), 1) };
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl StopSignal {
    /// Installs the SIGINT/SIGTERM handlers. Call once, before starting threads.
    pub fn install() -> io::Result<StopSignal> {
        let (read, write) = pipe()?;
        STOP_PIPE_W.store(write.as_raw_fd(), Ordering::SeqCst);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is a valid starting point; the handler
            // only calls write(2), which is async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(StopSignal { read, write: std::sync::Arc::new(write) })
    }

    pub fn notifier(&self) -> StopNotifier {
        StopNotifier { write: std::sync::Arc::clone(&self.write) }
    }

    /// Blocks until a signal arrives or a stop is requested.
    pub fn wait(&self) -> io::Result<StopReason> {
        loop {
            poll_readable(&[self.read.as_raw_fd()], -1)?;
            let mut b = 0u8;
            // SAFETY: the fd is open; b is a one-byte buffer.
            let n = unsafe { libc::read(self.read.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
            if n == 1 {
                return Ok(if b == 0 { StopReason::Internal } else { StopReason::Signal(b as i32) });
            }
            let err = io::Error::last_os_error();
            if n < 0 && err.kind() != io::ErrorKind::WouldBlock && err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for StopSignal {
    fn drop(&mut self) {
        STOP_PIPE_W.store(-1, Ordering::SeqCst);
    }
}

/// An eventfd: once signalled it stays readable, waking every poller.
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: the fd is open; an eventfd write takes exactly 8 bytes.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Resets the counter, so the fd is readable again only after the next
    /// `signal`.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: the fd is open; an eventfd read takes exactly 8 bytes. A
        // non-blocking read of an unsignalled eventfd fails with EAGAIN, fine.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }
}

/// One fd to wait on, and what it turned out to be ready for.
#[derive(Debug, Clone, Copy)]
pub struct PollFd {
    pub fd: RawFd,
    pub want_read: bool,
    pub want_write: bool,
    pub readable: bool,
    pub writable: bool,
    /// Hung up or in error: a read will say more.
    pub hangup: bool,
}

impl PollFd {
    pub fn new(fd: RawFd, want_read: bool, want_write: bool) -> PollFd {
        PollFd { fd, want_read, want_write, readable: false, writable: false, hangup: false }
    }
}

/// poll(2) over `fds`, filling in their readiness; `timeout_ms` -1 waits
/// forever. Returns how many are ready (0 on timeout).
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.fd,
            events: (if f.want_read { libc::POLLIN } else { 0 }) | (if f.want_write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let n = loop {
        // SAFETY: p is a valid array of p.len() pollfd structs.
        let rc = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    for (f, q) in fds.iter_mut().zip(&p) {
        f.readable = q.revents & libc::POLLIN != 0;
        f.writable = q.revents & libc::POLLOUT != 0;
        f.hangup = q.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0;
    }
    Ok(n)
}

/// TCP_USER_TIMEOUT: the kernel drops the connection when sent data stays
/// unacknowledged this long — how a vanished (half-open) peer is noticed.
pub fn set_tcp_user_timeout(fd: RawFd, ms: u32) -> io::Result<()> {
    let v: libc::c_uint = ms;
    // SAFETY: fd is a TCP socket owned by the caller; v is a valid c_uint.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&v as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits until one of `fds` is readable (or hung up), or `timeout_ms`
/// passes (-1: no timeout). Returns which fds are ready.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    loop {
        // SAFETY: pfds is a valid array of pfds.len() pollfd structs.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if rc >= 0 {
            return Ok(pfds.iter().map(|p| p.revents != 0).collect());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns().
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// CLOCK_REALTIME in ns since the Unix epoch.
pub fn realtime_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) as i64
}

/// The first offset at or after `offset` that holds data rather than a hole
/// (lseek SEEK_DATA): `Some(offset)` where the filesystem does not know
/// holes, None when only a hole (or nothing) follows.
pub fn next_data(file: &std::fs::File, offset: u64) -> Option<u64> {
    let Ok(off) = libc::off_t::try_from(offset) else { return None };
    // SAFETY: lseek on a file descriptor we own; it only moves its offset
    // (the callers read with pread, which ignores it).
    let r = unsafe { libc::lseek(file.as_raw_fd(), off, libc::SEEK_DATA) };
    if r >= 0 {
        return Some(r as u64);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ENXIO) => None,
        _ => Some(offset),
    }
}

/// The system's page size (4 KiB on x86_64; 4, 16 or 64 KiB on arm64,
/// chosen when the kernel is built).
pub fn page_size() -> usize {
    // SAFETY: sysconf takes a plain integer and reads no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 && (n as usize).is_power_of_two() {
        n as usize
    } else {
        4096
    }
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

impl StopSignal {
    /// Like `wait`, but gives up after `timeout_ms` and returns None.
    pub fn wait_timeout(&self, timeout_ms: i32) -> io::Result<Option<StopReason>> {
        if poll_readable(&[self.read.as_raw_fd()], timeout_ms)?[0] {
            self.wait().map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Sets the calling thread's nice value (Linux nice values are per thread).
/// Lowering it needs CAP_SYS_NICE.
pub fn set_thread_nice(nice: i32) -> io::Result<()> {
    // SAFETY: gettid and setpriority take plain integers. The thread id is
    // explicit (who=0 is the calling thread on Linux, the process elsewhere).
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
