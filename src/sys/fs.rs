//! The file-system calls std does not expose, for opening output files
//! safely as root (src/sink/open.rs): path walks one component at a time
//! from a directory descriptor (openat with O_PATH|O_NOFOLLOW), fstat of
//! what was opened, readlink of an opened link, renameat2 without
//! replacing. Only thin wrappers here; the rules live above.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// The errno values callers tell apart.
pub use libc::{EISDIR, ELOOP, ENOENT, ENOTDIR, ENXIO};

/// What fstat says about an open descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// File type bits and permission bits (st_mode).
    pub mode: u32,
    pub uid: u32,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// The permission bits (0o7777).
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }
    /// A name for the file type, for messages.
    pub fn kind(&self) -> &'static str {
        match self.mode & libc::S_IFMT {
            libc::S_IFREG => "a regular file",
            libc::S_IFDIR => "a directory",
            libc::S_IFLNK => "a symbolic link",
            libc::S_IFIFO => "a FIFO",
            libc::S_IFSOCK => "a socket",
            libc::S_IFCHR => "a character device",
            libc::S_IFBLK => "a block device",
            _ => "not a regular file",
        }
    }
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

#[allow(clippy::unnecessary_cast)] // nlink_t is u32 on some targets
fn from_stat(st: &libc::stat) -> Stat {
    Stat { mode: st.st_mode, uid: st.st_uid, nlink: st.st_nlink as u64, dev: st.st_dev, ino: st.st_ino }
}

/// fstat(2).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: a zeroed stat is valid for fstat to fill; fd is open while borrowed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(from_stat(&st))
}

/// fstatat(dir, name, AT_SYMLINK_NOFOLLOW): the entry `name` itself.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    let name = cstr(name)?;
    // SAFETY: a zeroed stat is valid for fstatat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: dir is open while borrowed, name is NUL-terminated, st writable.
    if unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(from_stat(&st))
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call just returned this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An O_PATH handle on `path` itself (never following a link there): the
/// start of a walk ("/" or ".").
pub fn open_path(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: path is NUL-terminated; the result is checked.
    owned(unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) })
}

/// An O_PATH handle on the entry `name` of `dir`, not following it if it is
/// a symbolic link (the handle is then on the link: `fstat` says so and
/// `readlink` reads it). `name` is one component ("..": the parent).
pub fn open_path_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let name = cstr(name)?;
    // SAFETY: dir is open while borrowed, name NUL-terminated; the result is checked.
    owned(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) })
}

/// The target of the symbolic link `link` (an O_PATH handle on it).
pub fn readlink(link: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: an empty path with an O_PATH link descriptor reads that link
    // (Linux ≥ 2.6.39); buf has buf.len() writable bytes.
    let n = unsafe { libc::readlinkat(link.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

/// Opens (creating with `mode` if absent) the entry `name` of `dir` for
/// appending, never through a symbolic link (O_NOFOLLOW: ELOOP if it is
/// one), never as a controlling terminal, and without blocking on a FIFO
/// (O_NONBLOCK, which regular files ignore). The caller checks what it got.
pub fn open_append_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<File> {
    let name = cstr(name)?;
    let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    // SAFETY: dir is open while borrowed, name NUL-terminated; the result is checked.
    let fd = owned(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) })?;
    Ok(File::from(fd))
}

/// renameat2(dir, from, dir, to, RENAME_NOREPLACE): EEXIST if `to` exists
/// (whatever it is, a link included, it is left alone).
pub fn rename_noreplace(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (from, to) = (cstr(from)?, cstr(to)?);
    let d = dir.as_raw_fd();
    // SAFETY: dir is open while borrowed, both names NUL-terminated. Called
    // through syscall(2): musl's libc has no renameat2 wrapper in every version.
    let rc = unsafe {
        libc::syscall(libc::SYS_renameat2, d, from.as_ptr(), d, to.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
