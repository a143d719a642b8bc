//! Safe wrappers over the parts of libbpf that ecapture uses: open an object
//! from memory, write its read-only configuration, load it, attach uprobes and
//! raw tracepoints, and read perf buffers. Every `unsafe` FFI call to libbpf
//! lives here; callers see owned handles that free their C side on drop.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use libbpf_sys as sys;

use crate::error::{Error, Result};

/// Turns a libbpf return code (negative errno) into an error with context.
fn check(rc: c_int, what: impl FnOnce() -> String) -> Result<c_int> {
    if rc < 0 {
        Err(Error::runtime(format!("{}: {}{}", what(), io::Error::from_raw_os_error(-rc), hint())))
    } else {
        Ok(rc)
    }
}

/// Turns a NULL result of libbpf (errno set) into an error with context.
fn check_ptr<T>(p: *mut T, what: impl FnOnce() -> String) -> Result<NonNull<T>> {
    NonNull::new(p).ok_or_else(|| Error::runtime(format!("{}: {}{}", what(), io::Error::last_os_error(), hint())))
}

/// libbpf explains failures in its own log; the last warning it printed
/// during the failed call is appended to our error so the user sees why
/// without `-d`.
fn hint() -> String {
    let last = LAST_WARNING.lock().ok().and_then(|mut w| {
        let last = w.pop_back();
        w.clear();
        last
    });
    match last {
        Some(w) => format!(" ({})", w.trim_start_matches("libbpf: ")),
        None => String::new(),
    }
}

/// Forgets earlier warnings, so `hint` only reports the current call's.
fn clear_warnings() {
    if let Ok(mut w) = LAST_WARNING.lock() {
        w.clear();
    }
}

static LAST_WARNING: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

extern "C" {
    // The C library's vsnprintf: formats libbpf's printf-style messages.
    fn vsnprintf(buf: *mut c_char, size: usize, fmt: *const c_char, ap: *mut sys::__va_list_tag) -> c_int;
}

unsafe extern "C" fn print_cb(level: sys::libbpf_print_level, fmt: *const c_char, ap: *mut sys::__va_list_tag) -> c_int {
    let mut buf = [0u8; 1024];
    // SAFETY: buf is writable for its length; fmt and ap come from libbpf as a
    // matching printf format and argument list.
    let n = unsafe { vsnprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, ap) };
    if n < 0 {
        return 0;
    }
    let len = (n as usize).min(buf.len() - 1);
    let msg = String::from_utf8_lossy(&buf[..len]);
    let msg = msg.trim_end();
    match level {
        sys::LIBBPF_WARN => {
            log::debug!(target: "libbpf", "{msg}");
            if let Ok(mut w) = LAST_WARNING.lock() {
                if w.len() >= 8 {
                    w.pop_front();
                }
                w.push_back(msg.to_string());
            }
        }
        sys::LIBBPF_INFO => log::debug!(target: "libbpf", "{msg}"),
        _ => log::trace!(target: "libbpf", "{msg}"),
    }
    n
}

/// Routes libbpf's own messages into `log` (target "libbpf").
pub fn init_logging() {
    // SAFETY: print_cb matches libbpf_print_fn_t and is valid for the whole program.
    unsafe {
        sys::libbpf_set_print(Some(print_cb));
    }
}

/// Number of possible CPUs, as the kernel sizes per-CPU maps and perf buffers.
pub fn num_possible_cpus() -> Result<usize> {
    // SAFETY: no arguments; reads /sys/devices/system/cpu/possible.
    let n = unsafe { sys::libbpf_num_possible_cpus() };
    check(n, || "cannot count possible CPUs".into()).map(|n| n as usize)
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::runtime(format!("name contains a NUL byte: {s:?}")))
}

/// A BPF object opened from memory but not loaded yet: its maps can still be
/// resized and its read-only data written.
pub struct OpenObject {
    obj: NonNull<sys::bpf_object>,
    name: String,
}

impl OpenObject {
    /// Opens the ELF image `bytes` (embedded in the binary, hence 'static).
    pub fn open_mem(name: &str, bytes: &'static [u8]) -> Result<OpenObject> {
        clear_warnings();
        let cname = cstring(name)?;
        let opts = sys::bpf_object_open_opts {
            sz: std::mem::size_of::<sys::bpf_object_open_opts>() as _,
            object_name: cname.as_ptr(),
            ..Default::default()
        };
        // SAFETY: bytes outlives the object ('static); opts and the name it
        // points to are valid for the call (libbpf copies the name).
        let p = unsafe { sys::bpf_object__open_mem(bytes.as_ptr().cast(), bytes.len() as _, &opts) };
        let obj = check_ptr(p, || format!("cannot open BPF object {name}"))?;
        Ok(OpenObject { obj, name: name.to_string() })
    }

    fn map(&self, name: &str) -> Result<NonNull<sys::bpf_map>> {
        let cname = cstring(name)?;
        // SAFETY: obj is a valid open object; the name is a valid C string.
        let p = unsafe { sys::bpf_object__find_map_by_name(self.obj.as_ptr(), cname.as_ptr()) };
        NonNull::new(p).ok_or_else(|| Error::runtime(format!("BPF object {} has no map {name}", self.name)))
    }

    pub fn set_max_entries(&mut self, map: &str, n: u32) -> Result<()> {
        let m = self.map(map)?;
        // SAFETY: m belongs to this not-yet-loaded object.
        let rc = unsafe { sys::bpf_map__set_max_entries(m.as_ptr(), n) };
        check(rc, || format!("cannot size map {map} to {n} entries")).map(|_| ())
    }

    /// Makes `prog` a multi-uprobe program (one link, many functions),
    /// which needs Linux 6.6 or later.
    pub fn set_uprobe_multi(&mut self, prog: &str) -> Result<()> {
        let cname = cstring(prog)?;
        // SAFETY: obj is a valid open object; the name is a valid C string.
        let p = unsafe { sys::bpf_object__find_program_by_name(self.obj.as_ptr(), cname.as_ptr()) };
        if p.is_null() {
            return Err(Error::runtime(format!("BPF object {} has no program {prog}", self.name)));
        }
        // SAFETY: p is a program of this not-yet-loaded object.
        let rc = unsafe { sys::bpf_program__set_expected_attach_type(p, sys::BPF_TRACE_UPROBE_MULTI) };
        check(rc, || format!("cannot make {prog} a multi-uprobe program")).map(|_| ())
    }

    /// The initial contents of the `.rodata` section (the `const volatile`
    /// globals), writable until load.
    pub fn rodata_mut(&mut self) -> Result<&mut [u8]> {
        let m = self.map(".rodata")?;
        let mut size: usize = 0;
        // SAFETY: m is a map of this open object; libbpf returns a pointer to
        // its own copy of the section, valid and writable until load, and the
        // &mut self borrow keeps the caller from loading meanwhile.
        unsafe {
            let p = sys::bpf_map__initial_value(m.as_ptr(), (&mut size as *mut usize).cast());
            if p.is_null() {
                return Err(Error::runtime(format!("BPF object {} has no .rodata contents", self.name)));
            }
            Ok(std::slice::from_raw_parts_mut(p.cast::<u8>(), size))
        }
    }

    /// Verifies and loads every program and creates every map.
    pub fn load(self) -> Result<Object> {
        // Ownership of the C object moves to `Object`, which closes it on
        // drop, also when loading fails.
        let mut this = std::mem::ManuallyDrop::new(self);
        let object = Object { obj: this.obj, name: std::mem::take(&mut this.name) };
        clear_warnings();
        // SAFETY: obj is a valid open object, loaded at most once because self is consumed.
        let rc = unsafe { sys::bpf_object__load(object.obj.as_ptr()) };
        check(rc, || format!("cannot load BPF object {} into the kernel", object.name))?;
        Ok(object)
    }
}

impl Drop for OpenObject {
    fn drop(&mut self) {
        // SAFETY: the object was opened by us and not handed to an Object
        // (load() bypasses this drop).
        unsafe { sys::bpf_object__close(self.obj.as_ptr()) };
    }
}

/// A loaded BPF object. Links created from it may outlive it safely (the
/// kernel keeps the program alive), but are normally dropped first.
pub struct Object {
    obj: NonNull<sys::bpf_object>,
    name: String,
}

// SAFETY: libbpf objects have no thread affinity; every method takes &self
// and only reads libbpf's object state after load.
unsafe impl Send for Object {}
unsafe impl Sync for Object {}

impl Object {
    fn program(&self, name: &str) -> Result<NonNull<sys::bpf_program>> {
        let cname = cstring(name)?;
        // SAFETY: obj is valid; the name is a valid C string.
        let p = unsafe { sys::bpf_object__find_program_by_name(self.obj.as_ptr(), cname.as_ptr()) };
        NonNull::new(p).ok_or_else(|| Error::runtime(format!("BPF object {} has no program {name}", self.name)))
    }

    /// The file descriptor of a map, for lookups or a perf buffer.
    pub fn map_fd(&self, name: &str) -> Result<RawFd> {
        let cname = cstring(name)?;
        // SAFETY: obj is valid; the name is a valid C string.
        let m = unsafe { sys::bpf_object__find_map_by_name(self.obj.as_ptr(), cname.as_ptr()) };
        if m.is_null() {
            return Err(Error::runtime(format!("BPF object {} has no map {name}", self.name)));
        }
        // SAFETY: m is a map of this loaded object.
        let fd = unsafe { sys::bpf_map__fd(m) };
        check(fd, || format!("map {name} has no file descriptor"))
    }

    /// Attaches program `prog` at file offset `offset` of the ELF file
    /// `path` (function `func`, named for errors), in every process (present
    /// and future) that maps that file.
    pub fn attach_uprobe(&self, prog: &str, path: &str, offset: u64, func: &str, retprobe: bool, cookie: u64) -> Result<Link> {
        clear_warnings();
        let p = self.program(prog)?;
        let cpath = cstring(path)?;
        let opts = sys::bpf_uprobe_opts {
            sz: std::mem::size_of::<sys::bpf_uprobe_opts>() as _,
            bpf_cookie: cookie,
            retprobe,
            ..Default::default()
        };
        // SAFETY: p is a loaded program of this object; path and opts are
        // valid for the call. pid -1 = all processes.
        let l = unsafe { sys::bpf_program__attach_uprobe_opts(p.as_ptr(), -1, cpath.as_ptr(), offset as _, &opts) };
        let kind = if retprobe { "uretprobe" } else { "uprobe" };
        let link = check_ptr(l, || format!("cannot attach {kind} to {func} in {path}"))?;
        Ok(Link(link))
    }

    /// Attaches program `prog` (made multi-uprobe before load) at several
    /// file offsets of `path` with one link; `cookies[i]` goes with
    /// `offsets[i]`. `what` names the functions, for errors.
    pub fn attach_uprobe_multi(
        &self,
        prog: &str,
        path: &str,
        offsets: &[u64],
        cookies: &[u64],
        retprobe: bool,
        what: &str,
    ) -> Result<Link> {
        if offsets.len() != cookies.len() || offsets.is_empty() {
            return Err(Error::runtime("internal: one cookie per offset, at least one offset"));
        }
        clear_warnings();
        let p = self.program(prog)?;
        let cpath = cstring(path)?;
        let offs: Vec<std::ffi::c_ulong> = offsets.iter().map(|&o| o as std::ffi::c_ulong).collect();
        let opts = sys::bpf_uprobe_multi_opts {
            sz: std::mem::size_of::<sys::bpf_uprobe_multi_opts>() as _,
            offsets: offs.as_ptr(),
            cookies: cookies.as_ptr(),
            cnt: offsets.len() as _,
            retprobe,
            ..Default::default()
        };
        // SAFETY: p is a loaded program of this object; path, offsets and
        // cookies are valid for the call, during which the kernel copies
        // them. pid -1 = all.
        let l = unsafe { sys::bpf_program__attach_uprobe_multi(p.as_ptr(), -1, cpath.as_ptr(), std::ptr::null(), &opts) };
        let kind = if retprobe { "uretprobes" } else { "uprobes" };
        let link = check_ptr(l, || format!("cannot attach {kind} to {what} in {path}"))?;
        Ok(Link(link))
    }

    /// Attaches program `prog` to the raw tracepoint `tp` (e.g. "sys_enter").
    pub fn attach_raw_tracepoint(&self, prog: &str, tp: &str) -> Result<Link> {
        let p = self.program(prog)?;
        let ctp = cstring(tp)?;
        // SAFETY: p is a loaded program of this object; tp is a valid C string.
        let l = unsafe { sys::bpf_program__attach_raw_tracepoint(p.as_ptr(), ctp.as_ptr()) };
        Ok(Link(check_ptr(l, || format!("cannot attach to raw tracepoint {tp}"))?))
    }

    /// Sums a per-CPU array map of u64 counters, one total per key.
    pub fn percpu_u64_sums(&self, map: &str, keys: u32, ncpus: usize) -> Result<Vec<u64>> {
        let fd = self.map_fd(map)?;
        let mut out = Vec::with_capacity(keys as usize);
        // Per-CPU values are laid out 8-byte aligned, one per possible CPU.
        let mut vals = vec![0u64; ncpus];
        for key in 0..keys {
            // SAFETY: fd is a per-CPU array map with 8-byte values; vals holds
            // one value per possible CPU, which is what the kernel writes.
            let rc = unsafe {
                sys::bpf_map_lookup_elem(fd, (&key as *const u32).cast(), vals.as_mut_ptr().cast::<c_void>())
            };
            check(rc, || format!("cannot read map {map}"))?;
            out.push(vals.iter().sum());
        }
        Ok(out)
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: the object was loaded by us and is closed exactly once.
        unsafe { sys::bpf_object__close(self.obj.as_ptr()) };
    }
}

/// An attachment; detached when dropped.
pub struct Link(NonNull<sys::bpf_link>);

// SAFETY: a bpf_link is an fd plus bookkeeping, usable from any thread.
unsafe impl Send for Link {}

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: the link was created by libbpf and is destroyed exactly once.
        unsafe { sys::bpf_link__destroy(self.0.as_ptr()) };
    }
}

/// What a sample callback tells the ring it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next record.
    Continue,
    /// End this pass after this record (which counts as read).
    Stop,
}

/// What a perf buffer calls: one sample (cpu, bytes), or a count of samples
/// the kernel dropped on a CPU because the buffer was full. Must not block.
pub trait PerfHandler: Send + Sync {
    fn sample(&self, cpu: i32, data: &[u8]) -> Flow;
    fn lost(&self, cpu: i32, count: u64);
}

struct PerfInner {
    pb: NonNull<sys::perf_buffer>,
    // Boxed so the pointer libbpf holds stays valid; freed after pb.
    handler: *mut Box<dyn PerfHandler>,
}

// SAFETY: libbpf's per-CPU buffers are independent; PerfBuffer hands each
// index to exactly one PerfCpuBuffer, so no buffer is consumed concurrently.
// The handler is Send + Sync.
unsafe impl Send for PerfInner {}
unsafe impl Sync for PerfInner {}

impl Drop for PerfInner {
    fn drop(&mut self) {
        // SAFETY: every PerfCpuBuffer holding an Arc is gone, so no consume
        // runs; free the C side first, then the handler it pointed to.
        unsafe {
            sys::perf_buffer__free(self.pb.as_ptr());
            drop(Box::from_raw(self.handler));
        }
    }
}

/// One perf record, as the kernel wrote it (libbpf copies a record that
/// wraps around the ring into one piece first).
unsafe extern "C" fn event_cb(ctx: *mut c_void, cpu: c_int, ev: *mut sys::perf_event_header) -> sys::bpf_perf_event_ret {
    // SAFETY: ctx is the handler pointer given to perf_buffer__new_raw, alive
    // until perf_buffer__free; ev points to a whole record of ev.size bytes
    // for the duration of the callback.
    unsafe {
        let h = &*(ctx as *const Box<dyn PerfHandler>);
        let size = (*ev).size as usize;
        let rec = std::slice::from_raw_parts(ev as *const u8, size);
        let body = &rec[std::mem::size_of::<sys::perf_event_header>().min(size)..];
        match (*ev).type_ {
            // PERF_SAMPLE_RAW: u32 size, then the data.
            sys::PERF_RECORD_SAMPLE if body.len() >= 4 => {
                let n = u32::from_ne_bytes([body[0], body[1], body[2], body[3]]) as usize;
                if h.sample(cpu, &body[4..(4 + n).min(body.len())]) == Flow::Stop {
                    // libbpf has already moved past this record.
                    return sys::LIBBPF_PERF_EVENT_DONE;
                }
            }
            // u64 id, u64 lost.
            sys::PERF_RECORD_LOST if body.len() >= 16 => {
                let mut lost = [0u8; 8];
                lost.copy_from_slice(&body[8..16]);
                h.lost(cpu, u64::from_ne_bytes(lost));
            }
            _ => {}
        }
    }
    sys::LIBBPF_PERF_EVENT_CONT
}

/// A perf buffer over a BPF_MAP_TYPE_PERF_EVENT_ARRAY map, one ring per CPU.
pub struct PerfBuffer {
    inner: Arc<PerfInner>,
}

impl PerfBuffer {
    /// `pages` per CPU (a power of two). The kernel wakes a reader only once
    /// `wakeup_bytes` are waiting (not at every record: a wake-up costs
    /// ~10 µs in the writing process); readers poll with a timeout for the rest.
    pub fn new(map_fd: RawFd, pages: usize, wakeup_bytes: u32, handler: Box<dyn PerfHandler>) -> Result<PerfBuffer> {
        let handler = Box::into_raw(Box::new(handler));
        // SAFETY: a zeroed perf_event_attr is valid; the fields set below
        // are what libbpf's own perf_buffer__new sets, plus the watermark.
        let mut attr: sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.size = std::mem::size_of::<sys::perf_event_attr>() as u32;
        attr.type_ = sys::PERF_TYPE_SOFTWARE;
        attr.config = sys::PERF_COUNT_SW_BPF_OUTPUT as u64;
        attr.sample_type = sys::PERF_SAMPLE_RAW as u64;
        attr.__bindgen_anon_1.sample_period = 1;
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = wakeup_bytes.max(1);
        let opts = sys::perf_buffer_raw_opts { sz: std::mem::size_of::<sys::perf_buffer_raw_opts>() as _, ..Default::default() };
        // SAFETY: map_fd is a perf event array; attr is a valid attribute
        // set; the callback matches libbpf's type and handler stays valid
        // until PerfInner::drop frees it.
        let pb = unsafe { sys::perf_buffer__new_raw(map_fd, pages as _, &mut attr, Some(event_cb), handler.cast(), &opts) };
        match NonNull::new(pb) {
            Some(pb) => Ok(PerfBuffer { inner: Arc::new(PerfInner { pb, handler }) }),
            None => {
                let err = io::Error::last_os_error();
                // SAFETY: libbpf did not keep the pointer since creation failed.
                unsafe { drop(Box::from_raw(handler)) };
                Err(Error::runtime(format!("cannot create perf buffer of {pages} pages per CPU: {err}{}", hint())))
            }
        }
    }

    /// Splits the buffer into its per-CPU rings, each to be read by one thread.
    pub fn into_cpu_buffers(self) -> Vec<PerfCpuBuffer> {
        // SAFETY: pb is valid.
        let n = unsafe { sys::perf_buffer__buffer_cnt(self.inner.pb.as_ptr()) };
        (0..n).map(|idx| PerfCpuBuffer { inner: Arc::clone(&self.inner), idx }).collect()
    }
}

/// One CPU's ring of a perf buffer.
pub struct PerfCpuBuffer {
    inner: Arc<PerfInner>,
    idx: sys::size_t,
}

impl PerfCpuBuffer {
    /// The fd to poll for readability.
    pub fn fd(&self) -> Result<RawFd> {
        // SAFETY: pb is valid and idx < buffer count.
        let fd = unsafe { sys::perf_buffer__buffer_fd(self.inner.pb.as_ptr(), self.idx) };
        check(fd, || format!("perf buffer {} has no fd", self.idx))
    }

    /// Hands every record waiting in this ring to the handler.
    pub fn consume(&mut self) -> Result<()> {
        // SAFETY: pb is valid; this ring is consumed only through this
        // PerfCpuBuffer (&mut self), other rings are independent.
        let rc = unsafe { sys::perf_buffer__consume_buffer(self.inner.pb.as_ptr(), self.idx) };
        check(rc, || format!("cannot read perf buffer {}", self.idx)).map(|_| ())
    }
}
