//! What the running kernel's BPF can do, probed at start, and which build of
//! the BPF objects it gets (SPEC §3: every long-term kernel from 5.10 on).
//!
//! | feature | since | without it |
//! |---|---|---|
//! | BPF ring buffer | 5.8 | not supported: ecapture says so and stops |
//! | `bpf_loop` | 5.17 | the compat build: chunks in a bounded loop |
//! | attach cookies | 5.15 | the compat build: a program per function, an object per library |
//! | BPF atomics (cmpxchg) | 5.12 | the compat build: a CPU's scratch buffer without a lock |
//! | multi-uprobe links | 6.6 | classic uprobes (tried at attach time, `capture::loader`) |
//!
//! The compat build (`<module>.compat.bpf.o`, bpf/common.h's ECAP_COMPAT)
//! gives the same records; it costs a slower attach and detach on kernels
//! that also lack multi-uprobes, and longer verification.

use crate::error::{Error, Result};
use crate::sys::libbpf::{self, BPF_FUNC_get_attach_cookie, BPF_FUNC_loop};

/// Which build of a module's BPF object a kernel gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// bpf_loop, attach cookies, atomics: Linux 5.17 and later.
    Modern,
    /// None of them: Linux 5.10 to 5.16 (or forced with ECAPTURE_BPF=compat).
    Compat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// `uname -r`, for messages.
    pub kernel: String,
    pub ringbuf: bool,
    pub bpf_loop: bool,
    pub attach_cookie: bool,
    /// ECAPTURE_BPF=compat: the compat build even where the modern one would load.
    pub force_compat: bool,
}

impl Features {
    /// Probes the running kernel (a few tiny programs and maps, loaded and
    /// freed by libbpf: a millisecond or two).
    pub fn probe() -> Features {
        Features {
            kernel: kernel_release(),
            ringbuf: libbpf::kernel_has_ringbuf(),
            bpf_loop: libbpf::kernel_has_helper(BPF_FUNC_loop),
            attach_cookie: libbpf::kernel_has_helper(BPF_FUNC_get_attach_cookie),
            force_compat: std::env::var("ECAPTURE_BPF").is_ok_and(|v| v == "compat"),
        }
    }

    /// Refuses a kernel older than supported, naming it and what it lacks.
    pub fn check(&self) -> Result<()> {
        if !self.ringbuf {
            return Err(Error::runtime(format!(
                "Linux {} has no BPF ring buffer (Linux 5.8 added it): ecapture runs on Linux 5.10 and later",
                self.kernel
            )));
        }
        Ok(())
    }

    /// The most a call is captured in the compat build: its bounded loop of
    /// chunks must pass old verifiers (1,024 chunks of 32 KiB).
    pub const COMPAT_MAX_CAPTURE: u32 = 32 << 20;

    /// Whether multi-uprobe links can exist here: they came (6.6) after
    /// attach cookies (5.15).
    pub fn multi_uprobes_possible(&self) -> bool {
        self.attach_cookie
    }

    pub fn build(&self) -> Build {
        if self.bpf_loop && self.attach_cookie && !self.force_compat {
            Build::Modern
        } else {
            Build::Compat
        }
    }

    /// One line for the debug log.
    pub fn describe(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "kernel {}: ring buffer {}, bpf_loop {}, attach cookies {}; {:?} BPF build{}",
            self.kernel,
            yes(self.ringbuf),
            yes(self.bpf_loop),
            yes(self.attach_cookie),
            self.build(),
            if self.force_compat { " (ECAPTURE_BPF=compat)" } else { "" }
        )
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(ringbuf: bool, bpf_loop: bool, attach_cookie: bool) -> Features {
        Features { kernel: "5.4.0".into(), ringbuf, bpf_loop, attach_cookie, force_compat: false }
    }

    #[test]
    fn builds_by_feature() {
        assert_eq!(f(true, true, true).build(), Build::Modern);
        assert_eq!(f(true, false, true).build(), Build::Compat, "5.15: cookies, no bpf_loop");
        assert_eq!(f(true, false, false).build(), Build::Compat, "5.10");
        assert_eq!(Features { force_compat: true, ..f(true, true, true) }.build(), Build::Compat);
    }

    #[test]
    fn too_old_names_the_kernel_and_the_feature() {
        let e = f(false, false, false).check().unwrap_err().to_string();
        assert_eq!(e, "Linux 5.4.0 has no BPF ring buffer (Linux 5.8 added it): ecapture runs on Linux 5.10 and later");
        assert!(f(true, false, false).check().is_ok());
    }
}
