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

/// The ring buffer every loaded object sends its records to.
pub struct Ring {
    fd: OwnedFd,
    bytes: u32,
}

impl Ring {
    /// A ring of `pages_per_cpu` × possible CPUs pages (`--mapsize` keeps
    /// eCapture's per-CPU meaning), rounded up to a power of two, at most 1 GiB.
    pub fn create(pages_per_cpu: usize) -> Result<Ring> {
        let cpus = libbpf::num_possible_cpus()?;
        let bytes = (pages_per_cpu.saturating_mul(4096).saturating_mul(cpus)).next_power_of_two().clamp(4096, 1 << 30) as u32;
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
