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

use crate::error::Result;
use crate::sys::libbpf::{self, RingBuffer};
use crate::sys::os;

/// The ring buffer every loaded object sends its records to.
pub struct Ring {
    fd: OwnedFd,
    bytes: u32,
}

impl Ring {
    /// A ring of `pages_per_cpu` × possible CPUs pages (`--mapsize` keeps
    /// eCapture's per-CPU meaning; pages of the system's size), rounded up to
    /// a power of two, at most 1 GiB.
    pub fn create(pages_per_cpu: usize) -> Result<Ring> {
        let cpus = libbpf::num_possible_cpus()?;
        let bytes = ring_bytes(pages_per_cpu, cpus, os::page_size());
        Ok(Ring { fd: libbpf::create_ringbuf(bytes)?, bytes })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn bytes(&self) -> u32 {
        self.bytes
    }

    /// The fill level that wakes the reader: a quarter of the ring.
    pub fn wakeup_bytes(&self) -> u32 {
        self.bytes / 4
    }

    /// The consumer side, for the reader thread.
    pub fn consumer(&self) -> Result<RingBuffer> {
        RingBuffer::new(self.fd())
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
