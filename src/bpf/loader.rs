//! Loads the embedded TLS capture object, writes its configuration and
//! attaches it: one raw tracepoint (socket syscalls, for the fd) and, per
//! library, uprobes on SSL_{read,write}[_ex] (entry and return) and
//! SSL_set_{,r,w}fd. Dropping `TlsProbes` (or calling `detach`) removes
//! every attachment.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::sys::libbpf::{self, Link, Object, OpenObject, PerfBuffer, PerfHandler};
use crate::tls::discover::Library;
use crate::tls::version::Offsets;

/// The BPF object built from bpf/tls.bpf.c by the Makefile.
static TLS_BPF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tls.bpf.o"));

// Mirrors of bpf/events.h.
const SCRATCH_SLOTS: u32 = 4;
pub const MAX_LIBS: usize = 16;
const COOKIE_WRITE: u64 = 0x100;
const COOKIE_EX: u64 = 0x200;
const CONFIG_SIZE: usize = 16 + MAX_LIBS * 28;
const STAT_COUNT: u32 = 5;

/// `struct bpf_config` of events.h.
#[derive(Debug, Clone, Default)]
pub struct BpfConfig {
    pub target_pid: u32,
    pub target_uid: u32,
    pub capture_cap: u32,
    /// Offsets per library index; None when the version is unknown.
    pub libs: Vec<Option<Offsets>>,
}

impl BpfConfig {
    /// The bytes of `struct bpf_config`, as the BPF object's .rodata holds it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(CONFIG_SIZE);
        for v in [self.target_pid, self.target_uid, self.capture_cap, self.libs.len().min(MAX_LIBS) as u32] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        for i in 0..MAX_LIBS {
            let (o, valid) = match self.libs.get(i).copied().flatten() {
                Some(o) => (o, 1u32),
                None => (Offsets { ssl_version: 0, ssl_rbio: 0, ssl_wbio: 0, bio_num: 0, bio_method: 0, ssl_server: 0 }, 0),
            };
            for v in [o.ssl_version, o.ssl_rbio, o.ssl_wbio, o.bio_num, o.bio_method, o.ssl_server, valid] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
        }
        b
    }
}

/// Counts of failures on the BPF side (`enum bpf_stat`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BpfFailures {
    pub perf_output: u64,
    pub read_user: u64,
    pub slot_busy: u64,
    pub active_full: u64,
    pub read_len: u64,
}

impl BpfFailures {
    /// Failures that lost data (a chunk or a whole call).
    pub fn total(&self) -> u64 {
        self.perf_output + self.read_user + self.slot_busy + self.active_full + self.read_len
    }
}

/// How the SSL function probes are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One multi-uprobe link per program and library (Linux 6.6+): fast to
    /// attach and to detach.
    Multi,
    /// One perf-event uprobe per function; works on older kernels but each
    /// one takes a grace period (~0.1 s) to remove, one after another.
    Classic,
}

const UPROBE_PROGS: [&str; 4] = ["ssl_rw_entry", "ssl_rw_return", "ssl_set_fd_entry", "ssl_free_entry"];

/// The loaded, attached capture programs.
pub struct TlsProbes {
    // Declared before `obj`: links are dropped (detached) first.
    links: Vec<Link>,
    obj: Object,
    ncpus: usize,
    mode: Mode,
}

impl TlsProbes {
    /// Loads the object with `cfg` and attaches it to `libs` (at most
    /// MAX_LIBS; `cfg.libs[i]` belongs to `libs[i]`). Multi-uprobe links are
    /// tried first; a kernel without them gets classic uprobes.
    /// ECAPTURE_CLASSIC_UPROBES=1 forces classic uprobes (for tests and
    /// for kernels whose multi-uprobes misbehave).
    pub fn attach(cfg: &BpfConfig, libs: &[Library]) -> Result<TlsProbes> {
        if std::env::var_os("ECAPTURE_CLASSIC_UPROBES").is_some_and(|v| v == "1") {
            return Self::attach_mode(cfg, libs, Mode::Classic);
        }
        match Self::attach_mode(cfg, libs, Mode::Multi) {
            Ok(p) => Ok(p),
            Err(e) => {
                log::debug!("multi-uprobe links unavailable ({e}); using classic uprobes");
                Self::attach_mode(cfg, libs, Mode::Classic)
            }
        }
    }

    fn attach_mode(cfg: &BpfConfig, libs: &[Library], mode: Mode) -> Result<TlsProbes> {
        let started = Instant::now();
        let ncpus = libbpf::num_possible_cpus()?;
        let mut open = OpenObject::open_mem("ecapture_tls", TLS_BPF)?;
        open.set_max_entries("scratch", ncpus as u32 * SCRATCH_SLOTS)?;
        if mode == Mode::Multi {
            for prog in UPROBE_PROGS {
                open.set_uprobe_multi(prog)?;
            }
        }
        let rodata = open.rodata_mut()?;
        let bytes = cfg.to_bytes();
        if rodata.len() != bytes.len() {
            return Err(Error::runtime(format!(
                "internal: BPF config is {} bytes, the object expects {} (bpf/events.h and src/bpf/loader.rs disagree)",
                bytes.len(),
                rodata.len()
            )));
        }
        rodata.copy_from_slice(&bytes);
        let obj = open.load()?;
        log::debug!("BPF object loaded ({mode:?}) in {:?}", started.elapsed());

        let mut probes = TlsProbes { links: Vec::new(), obj, ncpus, mode };
        probes.links.push(probes.obj.attach_raw_tracepoint("sys_enter", "sys_enter")?);

        let mut attached_libs = 0;
        for (idx, lib) in libs.iter().enumerate().take(MAX_LIBS) {
            match probes.attach_library(idx, lib) {
                Ok(n) => {
                    attached_libs += 1;
                    log::debug!("{n} links on {}", lib.path.display());
                }
                // Multi-uprobe failing on the first library means the kernel
                // lacks it: let the caller fall back.
                Err(e) if mode == Mode::Multi && attached_libs == 0 => return Err(e),
                Err(e) if libs.len() > 1 => log::warn!("skipping {}: {e}", lib.path.display()),
                Err(e) => return Err(e),
            }
        }
        if libs.len() > MAX_LIBS {
            log::warn!("{} libraries found; hooking the first {MAX_LIBS}", libs.len());
        }
        if attached_libs == 0 {
            return Err(Error::runtime("could not attach to any libssl"));
        }
        Ok(probes)
    }

    fn attach_library(&mut self, idx: usize, lib: &Library) -> Result<usize> {
        let path = lib.path.to_string_lossy().into_owned();
        let mut rw: Vec<(&str, u64)> = Vec::new();
        for func in crate::tls::discover::RW_FUNCS {
            if !lib.functions.contains_key(func) {
                continue;
            }
            let mut cookie = idx as u64;
            if func.starts_with("SSL_write") {
                cookie |= COOKIE_WRITE;
            }
            if func.ends_with("_ex") {
                cookie |= COOKIE_EX;
            }
            rw.push((func, cookie));
        }
        let fd: Vec<(&str, u64)> = crate::tls::discover::FD_FUNCS
            .iter()
            .filter(|f| lib.functions.contains_key(**f))
            .map(|f| (*f, idx as u64))
            .collect();
        let free: Vec<(&str, u64)> = [crate::tls::discover::FREE_FUNC]
            .iter()
            .filter(|f| lib.functions.contains_key(**f))
            .map(|f| (*f, idx as u64))
            .collect();

        // Collected first so that a failure part-way leaves nothing attached
        // for this library.
        let mut links = Vec::new();
        match self.mode {
            Mode::Multi => {
                let multi = |prog: &str, set: &[(&str, u64)], ret: bool| -> Result<Option<Link>> {
                    if set.is_empty() {
                        return Ok(None);
                    }
                    let offsets: Vec<u64> = set.iter().map(|(f, _)| lib.functions[*f]).collect();
                    let cookies: Vec<u64> = set.iter().map(|(_, c)| *c).collect();
                    let what = set.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ");
                    self.obj.attach_uprobe_multi(prog, &path, &offsets, &cookies, ret, &what).map(Some)
                };
                links.extend(multi("ssl_rw_return", &rw, true)?);
                links.extend(multi("ssl_rw_entry", &rw, false)?);
                links.extend(multi("ssl_set_fd_entry", &fd, false)?);
                links.extend(multi("ssl_free_entry", &free, false)?);
            }
            Mode::Classic => {
                for &(func, cookie) in &rw {
                    let off = lib.functions[func];
                    links.push(self.obj.attach_uprobe("ssl_rw_return", &path, off, func, true, cookie)?);
                    links.push(self.obj.attach_uprobe("ssl_rw_entry", &path, off, func, false, cookie)?);
                }
                for &(func, cookie) in &fd {
                    let off = lib.functions[func];
                    links.push(self.obj.attach_uprobe("ssl_set_fd_entry", &path, off, func, false, cookie)?);
                }
                for &(func, cookie) in &free {
                    let off = lib.functions[func];
                    links.push(self.obj.attach_uprobe("ssl_free_entry", &path, off, func, false, cookie)?);
                }
            }
        }
        let n = links.len();
        self.links.extend(links);
        Ok(n)
    }

    /// Number of attachments (uprobes, uretprobes, tracepoints).
    pub fn attachment_count(&self) -> usize {
        self.links.len()
    }

    /// A perf buffer on the events map with `pages` pages per CPU; a
    /// reader is woken when a quarter of its ring is full, and polls for
    /// the rest (see bpf::reader).
    pub fn perf_buffer(&self, pages: usize, handler: Box<dyn PerfHandler>) -> Result<PerfBuffer> {
        let wakeup = (pages * 4096 / 4).min(u32::MAX as usize) as u32;
        PerfBuffer::new(self.obj.map_fd("events")?, pages, wakeup, handler)
    }

    /// The BPF side's failure counters, summed over CPUs.
    pub fn failures(&self) -> Result<BpfFailures> {
        let v = self.obj.percpu_u64_sums("stats", STAT_COUNT, self.ncpus)?;
        Ok(BpfFailures { perf_output: v[0], read_user: v[1], slot_busy: v[2], active_full: v[3], read_len: v[4] })
    }

    /// Removes every attachment now; no new events are produced after this.
    ///
    /// Removing a uprobe waits for an RCU grace period (~100 ms here), so
    /// the links are dropped from parallel threads, which share the wait:
    /// the whole detach takes about one grace period instead of one per probe.
    pub fn detach(&mut self) {
        if self.links.is_empty() {
            return;
        }
        let links = std::mem::take(&mut self.links);
        let started = Instant::now();
        let n = links.len();
        std::thread::scope(|s| {
            for (i, link) in links.into_iter().enumerate() {
                let spawned = std::thread::Builder::new().name(format!("detach-{i}")).spawn_scoped(s, move || drop(link));
                if let Err(e) = spawned {
                    // The link went back with the error and was dropped here, serially.
                    log::debug!("detaching serially: {e}");
                }
            }
        });
        log::debug!("{n} attachments removed in {:?}", started.elapsed());
    }
}

impl Drop for TlsProbes {
    fn drop(&mut self) {
        // Also on error paths: detach in parallel rather than link by link.
        self.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_layout_matches_events_h() {
        let o = Offsets { ssl_version: 1, ssl_rbio: 2, ssl_wbio: 3, bio_num: 4, bio_method: 5, ssl_server: 6 };
        let c = BpfConfig { target_pid: 7, target_uid: 8, capture_cap: 9, libs: vec![None, Some(o)] };
        let b = c.to_bytes();
        assert_eq!(b.len(), 464, "sizeof(struct bpf_config)");
        let u = |i: usize| u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((u(0), u(1), u(2), u(3)), (7, 8, 9, 2));
        assert_eq!(u(4 + 6), 0, "lib 0 invalid");
        assert_eq!((u(11), u(12), u(13), u(14), u(15), u(16), u(17)), (1, 2, 3, 4, 5, 6, 1));
    }

    #[test]
    fn embedded_object_is_bpf_elf() {
        assert_eq!(&TLS_BPF[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([TLS_BPF[18], TLS_BPF[19]]), 247, "EM_BPF");
    }
}
