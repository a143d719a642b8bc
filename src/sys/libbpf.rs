//! Safe wrappers over the parts of libbpf that ecapture uses: open an object
//! from memory, write its read-only configuration (by variable name, through
//! the object's BTF), share a map between objects, load, attach uprobes and
//! raw tracepoints, read a ring buffer, and read struct layouts from BTF (for
//! the ABI tests). Every `unsafe` FFI call to libbpf lives here; callers see
//! owned handles that free their C side on drop.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Mutex;

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

/// libbpf explains failures in its own log; what it printed during the
/// failed call is appended to our error so the user sees why without `-d`:
/// the verifier's last lines when it rejected a program, else libbpf's last
/// warning.
fn hint() -> String {
    let Ok(mut w) = LIBBPF_SAID.lock() else { return String::new() };
    let said = std::mem::take(&mut *w);
    if let Some((prog, reason)) = said.rejected {
        return format!("; the verifier rejected program {prog}: {reason} (the whole log with -d)");
    }
    match said.warnings.back() {
        Some(last) => format!(" ({})", last.trim_start_matches("libbpf: ")),
        None => String::new(),
    }
}

/// Forgets what libbpf said before, so `hint` only reports the current call's.
fn clear_warnings() {
    if let Ok(mut w) = LIBBPF_SAID.lock() {
        *w = Said::default();
    }
}

/// What libbpf warned about since the last `clear_warnings`.
#[derive(Default)]
struct Said {
    /// The last few warnings.
    warnings: VecDeque<String>,
    /// A program the verifier rejected, and the last lines of its log.
    rejected: Option<(String, String)>,
}

static LIBBPF_SAID: Mutex<Said> = Mutex::new(Said { warnings: VecDeque::new(), rejected: None });

/// The verifier log libbpf prints when a program fails to load
/// ("prog 'NAME': -- BEGIN PROG LOAD LOG --\n...-- END PROG LOAD LOG --"):
/// the program and the log's last lines — the reason — joined on one line.
fn verifier_rejection(msg: &str) -> Option<(String, String)> {
    let (head, rest) = msg.split_once("-- BEGIN PROG LOAD LOG --")?;
    let prog = head.split('\'').nth(1).unwrap_or("?").to_string();
    let log = rest.split("-- END PROG LOAD LOG --").next().unwrap_or(rest);
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
                && !l.starts_with("mark_precise")
        })
        .collect();
    let tail = &lines[lines.len().saturating_sub(2)..];
    (!tail.is_empty()).then(|| (prog, tail.join(" | ")))
}

extern "C" {
    // The C library's vasprintf (glibc and musl): formats libbpf's
    // printf-style messages, whatever their length (a verifier log can be
    // megabytes).
    fn vasprintf(out: *mut *mut c_char, fmt: *const c_char, ap: *mut sys::__va_list_tag) -> c_int;
    fn free(p: *mut c_void);
}

unsafe extern "C" fn print_cb(level: sys::libbpf_print_level, fmt: *const c_char, ap: *mut sys::__va_list_tag) -> c_int {
    let mut p: *mut c_char = std::ptr::null_mut();
    // SAFETY: fmt and ap come from libbpf as a matching printf format and
    // argument list; vasprintf allocates the result, freed below.
    let n = unsafe { vasprintf(&mut p, fmt, ap) };
    if n < 0 || p.is_null() {
        return 0;
    }
    // SAFETY: vasprintf wrote n bytes (and a NUL) at p.
    let bytes = unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) };
    let msg = String::from_utf8_lossy(bytes).into_owned();
    // SAFETY: p came from vasprintf's malloc and is not used after this.
    unsafe { free(p.cast()) };
    let msg = msg.trim_end();
    match level {
        sys::LIBBPF_WARN => {
            log::debug!(target: "libbpf", "{msg}");
            if let Ok(mut w) = LIBBPF_SAID.lock() {
                if let Some(r) = verifier_rejection(msg) {
                    w.rejected = Some(r);
                }
                if w.warnings.len() >= 8 {
                    w.warnings.pop_front();
                }
                w.warnings.push_back(msg.chars().take(1000).collect());
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

/// Number of possible CPUs, as the kernel sizes per-CPU maps.
pub fn num_possible_cpus() -> Result<usize> {
    // SAFETY: no arguments; reads /sys/devices/system/cpu/possible.
    let n = unsafe { sys::libbpf_num_possible_cpus() };
    check(n, || "cannot count possible CPUs".into()).map(|n| n as usize)
}

/// Whether programs of the kind uprobes use may call BPF helper `helper`
/// on this kernel (libbpf loads a tiny program to find out).
pub fn kernel_has_helper(helper: sys::bpf_func_id) -> bool {
    // SAFETY: no pointers besides the null opts.
    unsafe { sys::libbpf_probe_bpf_helper(sys::BPF_PROG_TYPE_KPROBE, helper, std::ptr::null()) == 1 }
}

/// Whether this kernel has BPF ring buffer maps (Linux 5.8+).
pub fn kernel_has_ringbuf() -> bool {
    // SAFETY: no pointers besides the null opts.
    unsafe { sys::libbpf_probe_bpf_map_type(sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null()) == 1 }
}

pub use sys::{BPF_FUNC_get_attach_cookie, BPF_FUNC_loop};

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
    /// `btf`: the kernel's types from this file instead of
    /// /sys/kernel/btf/vmlinux (for CO-RE relocations).
    pub fn open_mem(name: &str, bytes: &'static [u8], btf: Option<&std::path::Path>) -> Result<OpenObject> {
        clear_warnings();
        let cname = cstring(name)?;
        let cbtf = match btf {
            Some(p) => Some(cstring(&p.to_string_lossy())?),
            None => None,
        };
        let opts = sys::bpf_object_open_opts {
            sz: std::mem::size_of::<sys::bpf_object_open_opts>() as _,
            object_name: cname.as_ptr(),
            btf_custom_path: cbtf.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            ..Default::default()
        };
        // SAFETY: bytes outlives the object ('static); opts and the strings it
        // points to are valid for the call (libbpf copies them).
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

    /// The initial value of the `const volatile` global `var` (in
    /// `.rodata`), writable until load. Its place in the section comes from
    /// the object's BTF, so globals can be added in any order.
    pub fn rodata_var_mut(&mut self, var: &str) -> Result<&mut [u8]> {
        let m = self.map(".rodata")?;
        let mut size: usize = 0;
        // SAFETY: m is a map of this open object; libbpf returns a pointer to
        // its own copy of the section, valid and writable until load, and the
        // &mut self borrow keeps the caller from loading meanwhile.
        let section = unsafe {
            let p = sys::bpf_map__initial_value(m.as_ptr(), (&mut size as *mut usize).cast());
            if p.is_null() {
                return Err(Error::runtime(format!("BPF object {} has no .rodata contents", self.name)));
            }
            std::slice::from_raw_parts_mut(p.cast::<u8>(), size)
        };
        let btf = self.btf()?;
        let (off, len) = btf
            .datasec_var(".rodata", var)
            .ok_or_else(|| Error::runtime(format!("BPF object {} has no global {var} in .rodata", self.name)))?;
        section
            .get_mut(off..off + len)
            .ok_or_else(|| Error::runtime(format!("BPF object {}: {var} lies outside .rodata", self.name)))
    }

    /// Makes the object use the existing map `fd` for its map `name` (a ring
    /// shared by several objects).
    pub fn reuse_map(&mut self, name: &str, fd: RawFd) -> Result<()> {
        let m = self.map(name)?;
        // SAFETY: m belongs to this not-yet-loaded object; libbpf dups the fd.
        let rc = unsafe { sys::bpf_map__reuse_fd(m.as_ptr(), fd) };
        check(rc, || format!("cannot share map {name} with BPF object {}", self.name)).map(|_| ())
    }

    /// The object's BTF: its types as compiled.
    pub fn btf(&self) -> Result<Btf<'_>> {
        // SAFETY: obj is a valid open object; the BTF lives as long as it.
        let p = unsafe { sys::bpf_object__btf(self.obj.as_ptr()) };
        if p.is_null() {
            return Err(Error::runtime(format!("BPF object {} has no BTF", self.name)));
        }
        Ok(Btf { btf: p, _obj: std::marker::PhantomData })
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

    /// The file descriptor of a map, for lookups.
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

/// The record callback of one `RingBuffer::consume_n` call.
type RecordFn = dyn FnMut(&[u8]);

/// Where the C callback finds the caller's closure during `consume_n`.
struct RingSlot {
    f: Option<*mut RecordFn>,
}

unsafe extern "C" fn ring_cb(ctx: *mut c_void, data: *mut c_void, size: sys::size_t) -> c_int {
    // SAFETY: ctx is the RingSlot given to ring_buffer__new, alive until
    // ring_buffer__free; its closure is set for the duration of consume_n,
    // which is the only caller of this callback; data points to `size`
    // bytes of a committed record for the duration of the callback.
    unsafe {
        let slot = &mut *(ctx as *mut RingSlot);
        if let Some(f) = slot.f {
            (*f)(std::slice::from_raw_parts(data as *const u8, size as usize));
        }
    }
    0
}

/// A BPF ring buffer (BPF_MAP_TYPE_RINGBUF): one ring shared by every CPU,
/// records in the order they were reserved.
pub struct RingBuffer {
    rb: NonNull<sys::ring_buffer>,
    slot: *mut RingSlot,
}

// SAFETY: the ring is consumed only through &mut self, from one thread at a time.
unsafe impl Send for RingBuffer {}

impl RingBuffer {
    pub fn new(map_fd: RawFd) -> Result<RingBuffer> {
        let slot = Box::into_raw(Box::new(RingSlot { f: None }));
        let opts = sys::ring_buffer_opts { sz: std::mem::size_of::<sys::ring_buffer_opts>() as _ };
        // SAFETY: map_fd is a ring buffer map; the callback matches libbpf's
        // type and the slot stays valid until drop.
        let rb = unsafe { sys::ring_buffer__new(map_fd, Some(ring_cb), slot.cast(), &opts) };
        match NonNull::new(rb) {
            Some(rb) => Ok(RingBuffer { rb, slot }),
            None => {
                let err = io::Error::last_os_error();
                // SAFETY: libbpf did not keep the pointer since creation failed.
                unsafe { drop(Box::from_raw(slot)) };
                Err(Error::runtime(format!("cannot open the ring buffer: {err}{}", hint())))
            }
        }
    }

    /// The fd to poll (an epoll fd, readable when the kernel wakes us).
    pub fn fd(&self) -> RawFd {
        // SAFETY: rb is valid.
        unsafe { sys::ring_buffer__epoll_fd(self.rb.as_ptr()) }
    }

    /// Hands at most `n` waiting records to `f`, in order; returns how many.
    pub fn consume_n(&mut self, n: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let f: *mut (dyn FnMut(&[u8]) + '_) = f;
        // SAFETY: only the lifetime is erased; the pointer is cleared below,
        // before `f`'s borrow ends, and used only by ring_cb meanwhile.
        let f: *mut RecordFn = unsafe { std::mem::transmute(f) };
        // SAFETY: slot is valid until drop; &mut self excludes other users.
        unsafe { (*self.slot).f = Some(f) };
        // SAFETY: rb is valid and consumed only here (&mut self).
        let rc = unsafe { sys::ring_buffer__consume_n(self.rb.as_ptr(), n as _) };
        // SAFETY: as above.
        unsafe { (*self.slot).f = None };
        check(rc, || "cannot read the ring buffer".into()).map(|n| n as usize)
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: free the C side first, then the slot it pointed to.
        unsafe {
            sys::ring_buffer__free(self.rb.as_ptr());
            drop(Box::from_raw(self.slot));
        }
    }
}

/// Creates a BPF ring buffer map of `bytes` (a power of two, a multiple of
/// the page size): the one ring every loaded object sends records to.
pub fn create_ringbuf(bytes: u32) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let name = cstring("events")?;
    // SAFETY: a ring buffer map has no key or value; a null opts pointer is
    // allowed; the name is a valid C string.
    let fd = unsafe { sys::bpf_map_create(sys::BPF_MAP_TYPE_RINGBUF, name.as_ptr(), 0, 0, bytes, std::ptr::null()) };
    let fd = check(fd, || format!("cannot create a ring buffer of {} KiB", bytes >> 10))?;
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Creates a BPF array map of one u32 (0), shared by every loaded object
/// like the ring: a flag userspace sets and the probes read.
pub fn create_flag(name: &str) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let cname = cstring(name)?;
    // SAFETY: an array map of 4-byte keys and values, one entry; a null opts
    // pointer is allowed; the name is a valid C string.
    let fd = unsafe { sys::bpf_map_create(sys::BPF_MAP_TYPE_ARRAY, cname.as_ptr(), 4, 4, 1, std::ptr::null()) };
    let fd = check(fd, || format!("cannot create the BPF map {name}"))?;
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Sets the flag of `create_flag`.
pub fn set_flag(fd: RawFd, value: u32) -> Result<()> {
    let key: u32 = 0;
    // SAFETY: fd is an array map of 4-byte keys and values; both pointers
    // point to 4 valid bytes for the duration of the call.
    let rc = unsafe { sys::bpf_map_update_elem(fd, (&key as *const u32).cast(), (&value as *const u32).cast(), 0) };
    check(rc, || "cannot update a BPF map".into()).map(|_| ())
}

/// A struct as compiled: its size and its members (name, byte offset, byte size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    pub size: usize,
    pub members: Vec<(String, usize, usize)>,
}

/// The BTF of an open object, borrowed from it.
pub struct Btf<'a> {
    btf: *mut sys::btf,
    _obj: std::marker::PhantomData<&'a OpenObject>,
}

impl Btf<'_> {
    fn find(&self, name: &str, kind: u32) -> Option<(u32, *const sys::btf_type)> {
        let cname = cstring(name).ok()?;
        // SAFETY: btf is valid for 'a; the name is a valid C string.
        let id = unsafe { sys::btf__find_by_name_kind(self.btf, cname.as_ptr(), kind) };
        if id <= 0 {
            return None;
        }
        // SAFETY: id is a type of this BTF.
        let t = unsafe { sys::btf__type_by_id(self.btf, id as u32) };
        (!t.is_null()).then_some((id as u32, t))
    }

    fn name(&self, off: u32) -> String {
        // SAFETY: btf is valid; libbpf returns a NUL-terminated string it owns, or NULL.
        unsafe {
            let p = sys::btf__name_by_offset(self.btf, off);
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    }

    /// (offset, size) of global `var` in the data section `sec`.
    pub fn datasec_var(&self, sec: &str, var: &str) -> Option<(usize, usize)> {
        let (_, t) = self.find(sec, sys::BTF_KIND_DATASEC)?;
        // SAFETY: t is a DATASEC type: `vlen` btf_var_secinfo records follow
        // the btf_type header in BTF's type data.
        unsafe {
            let vlen = ((*t).info & 0xffff) as usize;
            let infos = std::slice::from_raw_parts(t.add(1).cast::<sys::btf_var_secinfo>(), vlen);
            infos.iter().find_map(|vi| {
                let v = sys::btf__type_by_id(self.btf, vi.type_);
                (!v.is_null() && self.name((*v).name_off) == var).then_some((vi.offset as usize, vi.size as usize))
            })
        }
    }

    /// The layout of `struct name` as compiled; None when the object's BTF
    /// has no such struct.
    pub fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        let (_, t) = self.find(name, sys::BTF_KIND_STRUCT)?;
        // SAFETY: t is a STRUCT type: `vlen` btf_member records follow the
        // btf_type header; without kind_flag, offset is in bits.
        unsafe {
            let vlen = ((*t).info & 0xffff) as usize;
            let kind_flag = (*t).info >> 31 != 0;
            let size = (*t).__bindgen_anon_1.size as usize;
            let ms = std::slice::from_raw_parts(t.add(1).cast::<sys::btf_member>(), vlen);
            let members = ms
                .iter()
                .map(|m| {
                    let bits = if kind_flag { m.offset & 0xff_ffff } else { m.offset };
                    let msize = sys::btf__resolve_size(self.btf, m.type_).max(0) as usize;
                    (self.name(m.name_off), (bits / 8) as usize, msize)
                })
                .collect();
            Some(StructLayout { size, members })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_log_gives_its_last_lines() {
        let msg = "prog 'ssl_rw_return': -- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0\n\
                   70: (0f) r3 += r2\n71: (61) r5 = *(u32 *)(r3 +16)\n\
                   R3 unbounded memory access, make sure to bounds check any such access\n\
                   processed 70 insns (limit 1000000) max_states_per_insn 0 total_states 6\n\
                   -- END PROG LOAD LOG --\n";
        assert_eq!(
            verifier_rejection(msg),
            Some((
                "ssl_rw_return".to_string(),
                "71: (61) r5 = *(u32 *)(r3 +16) | R3 unbounded memory access, make sure to bounds check any such access"
                    .to_string()
            ))
        );
        assert_eq!(verifier_rejection("prog 'x': failed to load: -13"), None);
    }
}
