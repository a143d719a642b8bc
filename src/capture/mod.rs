//! The capture layer: what runs in the kernel and what takes its output out.
//! Module-agnostic: a module describes its BPF object and attachments
//! (`loader::ObjectSpec`), in the build the kernel's features call for
//! (`features`); this layer loads them with the common configuration
//! (`abi`), gives them one shared ring buffer, attaches them, and reads their
//! records (`record`) in one thread (`reader`).

pub mod abi;
pub mod features;
pub mod loader;
pub mod reader;
pub mod record;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::sys::libbpf::{self, RingBuffer};
use crate::sys::os;

/// The ring buffer every loaded object sends its records to, and the flag
/// by which its reader asks the probes to wake it (`reader_asleep`).
pub struct Ring {
    fd: OwnedFd,
    asleep: OwnedFd,
    bytes: u32,
}

impl Ring {
    /// A ring of `pages_per_cpu` × possible CPUs pages (`--mapsize` keeps
    /// eCapture's per-CPU meaning; pages of the system's size), rounded up to
    /// a power of two, at most 1 GiB.
    pub fn create(pages_per_cpu: usize) -> Result<Ring> {
        let cpus = libbpf::num_possible_cpus()?;
        let bytes = ring_bytes(pages_per_cpu, cpus, os::page_size());
        Ok(Ring { fd: libbpf::create_ringbuf(bytes)?, asleep: libbpf::create_flag("reader_asleep")?, bytes })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The `reader_asleep` map every object shares.
    pub fn asleep_fd(&self) -> RawFd {
        self.asleep.as_raw_fd()
    }

    pub fn bytes(&self) -> u32 {
        self.bytes
    }

    /// The fill level that wakes the reader: a quarter of the ring.
    pub fn wakeup_bytes(&self) -> u32 {
        self.bytes / 4
    }

    /// The consumer side, for the reader thread.
    pub fn consumer(&self) -> Result<Consumer> {
        let asleep = self.asleep.try_clone().map_err(|e| Error::runtime(format!("cannot duplicate a BPF map fd: {e}")))?;
        Ok(Consumer { ring: RingBuffer::new(self.fd())?, asleep })
    }
}

/// What the reader thread reads: the ring, and the flag that makes the next
/// record wake it.
pub struct Consumer {
    pub ring: RingBuffer,
    asleep: OwnedFd,
}

impl Consumer {
    /// The reader is going to sleep until a record wakes it (`true`), or
    /// is awake again (`false`). After setting the flag, a full fence: the
    /// reader's next look at the ring (a consume, reading the producer
    /// position; a poll of the epoll fd would not look) must not be ordered
    /// before the store (the probes' side of this is in bpf/common.h).
    pub fn set_asleep(&self, asleep: bool) -> Result<()> {
        libbpf::set_flag(self.asleep.as_raw_fd(), asleep as u32)?;
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Routes libbpf's own messages into `log` (target "libbpf").
pub fn route_libbpf_logs() {
    libbpf::init_logging();
}

/// The ring's size: a power of two, a multiple of the page size (as the
/// kernel requires), at most 1 GiB.
fn ring_bytes(pages_per_cpu: usize, cpus: usize, page: usize) -> u32 {
    pages_per_cpu.saturating_mul(page).saturating_mul(cpus).next_power_of_two().clamp(page, 1 << 30) as u32
}

#[cfg(test)]
mod tests {
    use super::ring_bytes;

    #[test]
    fn the_ring_is_sized_in_the_systems_pages() {
        assert_eq!(ring_bytes(1024, 2, 4096), 8 << 20);
        assert_eq!(ring_bytes(1024, 2, 65536), 128 << 20);
        assert_eq!(ring_bytes(1, 3, 16384), 64 << 10);
        assert_eq!(ring_bytes(0, 4, 65536), 65536, "at least one page");
        assert_eq!(ring_bytes(65536, 512, 65536), 1 << 30, "at most 1 GiB");
    }
}
