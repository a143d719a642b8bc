//! Loading and attaching BPF objects, for any module.
//!
//! A module describes what it needs as an `ObjectSpec`: the embedded
//! object, the values of its `const volatile` globals, and what to attach —
//! raw tracepoints, and uprobes (entry or return, at file offsets, with
//! attach cookies) grouped by the file they attach to. `Probes` loads each
//! object with the common configuration and the shared ring, and attaches
//! it: one multi-uprobe link per program and file where the kernel has them
//! (Linux 6.6+), else one classic uprobe per function. A file that cannot
//! be attached is skipped when others can. Dropping `Probes` (or `detach`)
//! removes every attachment, in parallel.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Instant;

use super::abi::{c, CommonConfig};
use crate::error::{Error, Result};
use crate::stats::BpfFailures;
use crate::sys::libbpf::{self, Link, Object, OpenObject};

/// One BPF object to load and what to attach it to.
pub struct ObjectSpec {
    /// For logs and errors, e.g. "openssl".
    pub name: &'static str,
    /// The ELF image (embedded with include_bytes!).
    pub bytes: &'static [u8],
    /// The module's own `const volatile` globals: (variable, bytes).
    pub config: Vec<(&'static str, Vec<u8>)>,
    /// (program, raw tracepoint), e.g. ("sys_enter", "sys_enter").
    pub raw_tracepoints: Vec<(&'static str, &'static str)>,
    /// Uprobes, by the file they attach to.
    pub targets: Vec<Target>,
}

/// A file (library or executable) and the uprobes to attach in it.
pub struct Target {
    pub path: PathBuf,
    pub uprobes: Vec<Uprobe>,
}

#[derive(Debug, Clone)]
pub struct Uprobe {
    pub prog: &'static str,
    /// The function, for errors.
    pub func: String,
    /// Its file offset.
    pub offset: u64,
    /// A return probe (uretprobe).
    pub ret: bool,
    /// What `bpf_get_attach_cookie` returns in the program.
    pub cookie: u64,
}

/// Maps of bpf/common.h that every object uses as the first one loaded
/// does: one table of calls in progress (which the one attached `sys_enter`
/// program fills for every module), one of fds with the count of calls that
/// want theirs noted, one set of scratch buffers,
/// and the memory-BIO threads with their on switch (which `sys_exit` reads).
const SHARED_MAPS: [&str; 6] = ["active", "conn_fds", "fds_wanted", "scratch", "mem_threads", "mem_on"];

/// How uprobes are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One multi-uprobe link per program and file (Linux 6.6+): fast to
    /// attach and to detach.
    Multi,
    /// One perf-event uprobe per function; works on older kernels but each
    /// one takes a grace period (~0.1 s) to remove.
    Classic,
}

/// A loaded object.
struct Loaded {
    obj: Object,
    name: &'static str,
}

/// The loaded, attached objects.
pub struct Probes {
    // Declared before `objects`: links are dropped (detached) first.
    links: Vec<Link>,
    objects: Vec<Loaded>,
    common: CommonConfig,
    ring: RawFd,
    /// The ring reader's `reader_asleep` flag.
    asleep: RawFd,
    ncpus: usize,
    /// None until the first uprobe attachment tells whether multi-uprobes work.
    mode: Option<Mode>,
    targets: usize,
    /// `--btf-file`: the kernel's types, when /sys/kernel/btf/vmlinux is missing.
    btf: Option<PathBuf>,
    /// SHARED_MAPS of the first object loaded: (map, fd).
    shared: Vec<(&'static str, RawFd)>,
    /// Raw tracepoints attached so far (each is attached once, by the first
    /// object that has its program: the maps it fills are shared).
    tracepoints: Vec<&'static str>,
}

impl Probes {
    /// `ring` is the ring buffer every object sends to, with its reader's
    /// flag (it must outlive the objects' loading; the objects keep their
    /// own reference).
    /// ECAPTURE_CLASSIC_UPROBES=1 forces classic uprobes (for tests and
    /// for kernels whose multi-uprobes misbehave).
    pub fn new(common: CommonConfig, ring: &super::Ring, btf: Option<PathBuf>) -> Result<Probes> {
        let classic = std::env::var_os("ECAPTURE_CLASSIC_UPROBES").is_some_and(|v| v == "1");
        Ok(Probes {
            links: Vec::new(),
            objects: Vec::new(),
            common,
            ring: ring.fd(),
            asleep: ring.asleep_fd(),
            ncpus: libbpf::num_possible_cpus()?,
            mode: classic.then_some(Mode::Classic),
            targets: 0,
            btf,
            shared: Vec::new(),
            tracepoints: Vec::new(),
        })
    }

    /// Uses classic uprobes from the start: for kernels known to lack
    /// multi-uprobe links (they came after attach cookies, in 6.6).
    pub fn use_classic_uprobes(&mut self) {
        self.mode = Some(Mode::Classic);
    }

    /// Loads `spec` as object number `source` (the number its records
    /// carry) and attaches it; returns how many of its files were attached.
    pub fn load(&mut self, spec: &ObjectSpec, source: u32) -> Result<usize> {
        match self.mode {
            Some(mode) => self.load_mode(spec, source, mode),
            None => match self.load_mode(spec, source, Mode::Multi) {
                Ok(n) => {
                    self.mode = Some(Mode::Multi);
                    Ok(n)
                }
                Err(Failure::NoMulti(e)) => {
                    log::debug!("multi-uprobe links unavailable ({e}); using classic uprobes");
                    self.mode = Some(Mode::Classic);
                    self.load_mode(spec, source, Mode::Classic)
                }
                Err(Failure::Other(e)) => Err(Failure::Other(e)),
            },
        }
        .map_err(Failure::into_error)
    }

    fn load_mode(&mut self, spec: &ObjectSpec, source: u32, mode: Mode) -> std::result::Result<usize, Failure> {
        let started = Instant::now();
        // A kernel without multi-uprobes may refuse the programs' attach
        // type at load already: that too is a reason to try classic ones.
        let undecided = mode == Mode::Multi && self.mode.is_none();
        let obj = self.open_and_load(spec, source, mode).map_err(|e| if undecided { Failure::NoMulti(e) } else { Failure::Other(e) })?;
        log::debug!("BPF object {} loaded ({mode:?}) in {:?}", spec.name, started.elapsed());

        let mut links = Vec::new();
        let mut tracepoints = Vec::new();
        for (prog, tp) in &spec.raw_tracepoints {
            if !self.tracepoints.contains(tp) {
                links.push(obj.attach_raw_tracepoint(prog, tp).map_err(Failure::Other)?);
                tracepoints.push(*tp);
            }
        }
        let mut attached = 0;
        for target in &spec.targets {
            match attach_target(&obj, target, mode) {
                Ok(l) => {
                    attached += 1;
                    log::debug!("{} links on {}", l.len(), target.path.display());
                    links.extend(l);
                }
                // Multi-uprobes failing on the first file means the kernel
                // lacks them: the caller falls back (when it may).
                Err(e) if undecided && attached == 0 => return Err(Failure::NoMulti(e)),
                Err(e) if spec.targets.len() > 1 => log::warn!("skipping {}: {e}", target.path.display()),
                Err(e) => return Err(Failure::Other(e)),
            }
        }
        if attached == 0 && !spec.targets.is_empty() {
            return Err(Failure::Other(Error::runtime(format!("could not attach {} to any of its files", spec.name))));
        }
        if self.shared.is_empty() {
            for map in SHARED_MAPS {
                self.shared.push((map, obj.map_fd(map).map_err(Failure::Other)?));
            }
        }
        self.tracepoints.extend(tracepoints);
        self.links.extend(links);
        self.objects.push(Loaded { obj, name: spec.name });
        self.targets += attached;
        Ok(attached)
    }

    fn open_and_load(&self, spec: &ObjectSpec, source: u32, mode: Mode) -> Result<Object> {
        let mut open = OpenObject::open_mem(spec.name, spec.bytes, self.btf.as_deref())?;
        open.set_max_entries("scratch", (self.ncpus as u64 * c::SCRATCH_SLOTS) as u32)?;
        open.reuse_map("events", self.ring)?;
        open.reuse_map("reader_asleep", self.asleep)?;
        for (map, fd) in &self.shared {
            open.reuse_map(map, *fd)?;
        }
        if mode == Mode::Multi {
            let progs: std::collections::BTreeSet<&str> =
                spec.targets.iter().flat_map(|t| t.uprobes.iter().map(|u| u.prog)).collect();
            for prog in progs {
                open.set_uprobe_multi(prog)?;
            }
        }
        write_var(&mut open, spec.name, "common_cfg", &self.common.to_bytes(source))?;
        for (var, bytes) in &spec.config {
            write_var(&mut open, spec.name, var, bytes)?;
        }
        open.load()
    }

    /// Files attached, over every object.
    pub fn target_count(&self) -> usize {
        self.targets
    }

    /// Attachments (uprobes, uretprobes, tracepoints) over every object.
    pub fn attachment_count(&self) -> usize {
        self.links.len()
    }

    /// The BPF side's failure counters, summed over CPUs and objects.
    pub fn failures(&self) -> Result<BpfFailures> {
        let mut f = BpfFailures::default();
        for l in &self.objects {
            let v = l.obj.percpu_u64_sums("stats", c::STAT_COUNT as u32, self.ncpus)?;
            let at = |i: u64| v.get(i as usize).copied().unwrap_or(0);
            f.output += at(c::STAT_OUTPUT_FAIL);
            f.read_user += at(c::STAT_READ_USER_FAIL);
            f.slot_busy += at(c::STAT_SLOT_BUSY);
            f.active_full += at(c::STAT_ACTIVE_FULL);
            f.read_len += at(c::STAT_READ_LEN_FAIL);
        }
        Ok(f)
    }

    /// Names of the loaded objects, for logs.
    pub fn object_names(&self) -> Vec<&'static str> {
        self.objects.iter().map(|l| l.name).collect()
    }

    /// Removes every attachment now; no new records are produced after this.
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

impl Drop for Probes {
    fn drop(&mut self) {
        // Also on error paths: detach in parallel rather than link by link.
        self.detach();
    }
}

/// Why loading an object failed: the kernel lacks multi-uprobes (try
/// classic ones), or anything else.
enum Failure {
    NoMulti(Error),
    Other(Error),
}

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::NoMulti(e) | Failure::Other(e) => e,
        }
    }
}

fn write_var(open: &mut OpenObject, object: &str, var: &str, bytes: &[u8]) -> Result<()> {
    let slot = open.rodata_var_mut(var)?;
    if slot.len() != bytes.len() {
        return Err(Error::runtime(format!(
            "internal: {object}: {var} is {} bytes in the BPF object, {} here (bpf/abi.h and src/ disagree)",
            slot.len(),
            bytes.len()
        )));
    }
    slot.copy_from_slice(bytes);
    Ok(())
}

/// Attaches every uprobe of `target`; all or nothing.
fn attach_target(obj: &Object, target: &Target, mode: Mode) -> Result<Vec<Link>> {
    let path = target.path.to_string_lossy().into_owned();
    let mut links = Vec::new();
    match mode {
        Mode::Multi => {
            // One link per (program, entry or return); return probes first,
            // so that no entry is recorded whose return goes unseen.
            let mut groups: BTreeMap<(bool, &str), Vec<&Uprobe>> = BTreeMap::new();
            for u in &target.uprobes {
                groups.entry((!u.ret, u.prog)).or_default().push(u);
            }
            for ((_, prog), set) in groups {
                let offsets: Vec<u64> = set.iter().map(|u| u.offset).collect();
                let cookies: Vec<u64> = set.iter().map(|u| u.cookie).collect();
                let what = set.iter().map(|u| u.func.as_str()).collect::<Vec<_>>().join(", ");
                links.push(obj.attach_uprobe_multi(prog, &path, &offsets, &cookies, set[0].ret, &what)?);
            }
        }
        Mode::Classic => {
            let mut order: Vec<&Uprobe> = target.uprobes.iter().collect();
            order.sort_by_key(|u| !u.ret);
            for u in order {
                links.push(obj.attach_uprobe(u.prog, &path, u.offset, &u.func, u.ret, u.cookie)?);
            }
        }
    }
    Ok(links)
}
