//! How every file ecapture writes is opened (events, logs, rotated files,
//! and key logs and pcapng files): ecapture runs as root and writes what
//! other users' programs sent, so no other user may choose where that goes
//! or read it there.
//!
//! - The directory part of the path is walked one component at a time from
//!   a directory descriptor. A symbolic link on the way is followed only
//!   when its owner is ecapture's own user, or when no other user could
//!   have put it there (its directory is ecapture's user's and nobody
//!   else can write to it): a link another user planted in /tmp or in a
//!   service account's directory is refused.
//! - The file itself is opened with O_NOFOLLOW (a link there is refused,
//!   whatever it points to, dangling or not), created 0600 if absent, and
//!   what was opened is checked with fstat — after opening, so nothing can
//!   be swapped between a check and the open: it must be a regular file
//!   owned by ecapture's user, with one name (no hard link to a file
//!   elsewhere), and no permission for anyone else (an existing file with
//!   mode 0644 or 0640 is refused with its mode named; ecapture does not
//!   change the mode of a file it did not create).
//! - The directory descriptor is kept: rotation renames and creates by name
//!   inside it (renameat), so nobody can redirect it later by swapping a
//!   directory on the path.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::fs::{self as sysfs, Stat};

/// Links followed while walking a path before giving up (the kernel's limit).
const MAX_LINKS: usize = 40;

/// A file opened for appending by `OutputFile::open`, with the directory it
/// is in, for rotation.
pub struct OutputFile {
    pub file: File,
    /// What fstat said when it was opened: which file it is.
    pub stat: Stat,
    /// The directory that holds it, opened once (O_PATH).
    pub dir: OwnedFd,
    /// Its name in `dir`.
    pub name: OsString,
}

/// Whether a user other than `me` could create or replace entries in a
/// directory: it is someone else's, or group or others may write to it.
fn others_can_write(dir: &Stat, me: u32) -> bool {
    dir.uid != me || dir.perm() & 0o022 != 0
}

/// What fstat of a freshly opened output file must show; the reason it may
/// not be written to otherwise.
pub fn check_opened(st: &Stat, me: u32) -> std::result::Result<(), String> {
    if !st.is_file() {
        return Err(format!("is {}, expected a regular file", st.kind()));
    }
    if st.uid != me {
        return Err(format!("belongs to uid {}, not to ecapture's user (uid {me}): not writing to another user's file", st.uid));
    }
    if st.nlink != 1 {
        return Err(format!("has {} hard links: not writing to a file that has other names", st.nlink));
    }
    if st.perm() & 0o077 != 0 {
        return Err(format!(
            "has mode {:04o}: other users could read the captured plaintext (chmod 600 it, or give a new file)",
            st.perm()
        ));
    }
    Ok(())
}

/// Opens (or creates, mode 0600) the entry `name` of `dir` for appending,
/// with the checks above; the reason otherwise (to follow the path in a
/// message).
pub fn open_in(dir: &OwnedFd, name: &OsStr, me: u32) -> std::result::Result<(File, Stat), String> {
    let file = sysfs::open_append_at(dir.as_fd(), name, 0o600).map_err(|e| match e.raw_os_error() {
        Some(sysfs::ELOOP) => "is a symbolic link: ecapture does not write through links (give the real path)".to_string(),
        Some(sysfs::EISDIR) => "is a directory, expected a file".to_string(),
        Some(sysfs::ENXIO) => "is a FIFO or a socket, expected a regular file".to_string(),
        _ => format!("cannot be opened: {e}"),
    })?;
    let st = sysfs::fstat(file.as_fd()).map_err(|e| format!("cannot be examined: {e}"))?;
    check_opened(&st, me)?;
    Ok((file, st))
}

impl OutputFile {
    /// Opens `path` for appending as described at the top. Every problem is
    /// one line that names the path, a usage error (exit status 2): the
    /// path comes from the command line.
    pub fn open(path: &Path) -> Result<OutputFile> {
        let me = crate::sys::os::euid();
        let shown = path.display();
        let Some(name) = path.file_name().filter(|_| !path.as_os_str().as_bytes().ends_with(b"/")) else {
            return Err(Error::usage(format!("{shown} is a directory, expected a file")));
        };
        let parent = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = walk_dir(parent, me).map_err(|why| Error::usage(format!("{shown}: {why}")))?;
        let (file, stat) = open_in(&dir, name, me).map_err(|why| Error::usage(format!("{shown} {why}")))?;
        Ok(OutputFile { file, stat, dir, name: name.to_os_string() })
    }
}

/// Opens the directory `dir` (O_PATH) by walking it from "/" or "." one
/// component at a time, following only trusted symbolic links.
fn walk_dir(dir: &Path, me: u32) -> std::result::Result<OwnedFd, String> {
    let root = || sysfs::open_path(c"/").map_err(|e| format!("cannot open /: {e}"));
    let mut cur = if dir.is_absolute() { root()? } else { sysfs::open_path(c".").map_err(|e| format!("cannot open the current directory: {e}"))? };
    // Where the walk is, for messages: the path as given, links resolved.
    let mut walked = if dir.is_absolute() { PathBuf::from("/") } else { PathBuf::new() };
    let mut todo: VecDeque<OsString> = names(dir.as_os_str().as_bytes());
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        walked.push(&c);
        let next = sysfs::open_path_at(cur.as_fd(), &c).map_err(|e| match e.raw_os_error() {
            Some(sysfs::ENOENT) => format!("directory {} does not exist", walked.display()),
            Some(sysfs::ENOTDIR) => format!("{} is not a directory", parent_of(&walked).display()),
            _ => format!("cannot open directory {}: {e}", walked.display()),
        })?;
        let st = sysfs::fstat(next.as_fd()).map_err(|e| format!("cannot examine {}: {e}", walked.display()))?;
        if st.is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("too many symbolic links at {}", walked.display()));
            }
            let holder = sysfs::fstat(cur.as_fd()).map_err(|e| format!("cannot examine {}: {e}", parent_of(&walked).display()))?;
            if st.uid != me && others_can_write(&holder, me) {
                return Err(format!(
                    "{} is a symbolic link owned by uid {} in a directory other users can write to: not following it",
                    walked.display(),
                    st.uid
                ));
            }
            let target = sysfs::readlink(next.as_fd()).map_err(|e| format!("cannot read the link {}: {e}", walked.display()))?;
            walked.pop();
            if target.first() == Some(&b'/') {
                cur = root()?;
                walked = PathBuf::from("/");
            }
            for n in names(&target).into_iter().rev() {
                todo.push_front(n);
            }
            continue;
        }
        if !st.is_dir() {
            return Err(format!("{} is not a directory", walked.display()));
        }
        cur = next;
    }
    Ok(cur)
}

/// The components of a path, "." and empty ones left out ("..", kept, is
/// the parent of the directory reached so far, as the kernel resolves it).
fn names(path: &[u8]) -> VecDeque<OsString> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").map(|c| OsStr::from_bytes(c).to_os_string()).collect()
}

fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ if p.components().next() == Some(Component::RootDir) => Path::new("/"),
        _ => Path::new("."),
    }
}

/// Whether `dir`/`name` is still the file `st` describes (not moved or
/// replaced): for rotation, which renames it only then.
pub fn still_there(dir: &OwnedFd, name: &OsStr, st: &Stat) -> io::Result<bool> {
    match sysfs::lstat_at(dir.as_fd(), name) {
        Ok(now) => Ok(now.dev == st.dev && now.ino == st.ino),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{lchown, symlink, PermissionsExt};

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("ecapture-open-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn refused(path: &Path) -> String {
        let e = OutputFile::open(path).err().unwrap_or_else(|| panic!("{} was opened", path.display()));
        assert_eq!(e.exit_code(), 2, "{e}");
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        msg
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_0600_and_appends() {
        let d = Dir::new("create");
        let p = d.0.join("ev.log");
        {
            use std::io::Write;
            let mut f = OutputFile::open(&p).unwrap().file;
            f.write_all(b"one\n").unwrap();
            let mut f = OutputFile::open(&p).unwrap().file;
            f.write_all(b"two\n").unwrap();
        }
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
        assert_eq!(mode(&p), 0o600);
        // Relative paths, "." and ".." on the way.
        let sub = d.0.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let rel = sub.join("./../sub/./x.log");
        let f = OutputFile::open(&rel).unwrap();
        assert_eq!(f.name, OsStr::new("x.log"));
        assert!(sub.join("x.log").is_file());
    }

    #[test]
    fn links_at_the_name_are_refused_and_their_targets_untouched() {
        let d = Dir::new("links");
        let target = d.0.join("target");
        std::fs::write(&target, b"precious\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let tdir = d.0.join("tdir");
        std::fs::create_dir(&tdir).unwrap();
        for (link, to) in [("to-file", target.clone()), ("to-dir", tdir.clone()), ("dangling", d.0.join("nothing-here"))] {
            let l = d.0.join(link);
            symlink(&to, &l).unwrap();
            let msg = refused(&l);
            assert_eq!(msg, format!("{} is a symbolic link: ecapture does not write through links (give the real path)", l.display()));
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"precious\n");
        assert_eq!(mode(&target), 0o644);
        assert!(!d.0.join("nothing-here").exists(), "a dangling link's target is not created");
        assert_eq!(std::fs::read_dir(&tdir).unwrap().count(), 0);
    }

    #[test]
    fn only_private_regular_files_with_one_name() {
        let d = Dir::new("kinds");
        let p = d.0.join("shared.log");
        for m in [0o644, 0o640, 0o606, 0o620] {
            std::fs::write(&p, b"x\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
            let msg = refused(&p);
            assert!(msg.starts_with(&format!("{} has mode {m:04o}: other users could read", p.display())), "{msg}");
            assert_eq!(mode(&p), m, "the mode is left alone");
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(OutputFile::open(&p).is_ok());
        let hard = d.0.join("hard.log");
        std::fs::hard_link(&p, &hard).unwrap();
        assert!(refused(&hard).ends_with("has 2 hard links: not writing to a file that has other names"));
        assert_eq!(refused(&d.0), format!("{} is a directory, expected a file", d.0.display()));
        assert_eq!(refused(Path::new("/")), "/ is a directory, expected a file");
        let fifo = d.0.join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert_eq!(refused(&fifo), format!("{} is a FIFO or a socket, expected a regular file", fifo.display()));
        assert_eq!(refused(Path::new("/dev/null")), "/dev/null is a character device, expected a regular file");
        let e = refused(&d.0.join("no/such/dir/x.log"));
        assert_eq!(e, format!("{}: directory {} does not exist", d.0.join("no/such/dir/x.log").display(), d.0.join("no").display()));
        let e = refused(&hard.join("x.log"));
        assert!(e.ends_with(&format!("{} is not a directory", hard.display())), "{e}");
    }

    #[test]
    fn other_users_files_and_links_are_refused() {
        if crate::sys::os::euid() != 0 {
            eprintln!("*** SKIPPED other_users_files_and_links_are_refused: needs root (chown) ***");
            return;
        }
        let d = Dir::new("owners");
        let theirs = d.0.join("theirs.log");
        std::fs::write(&theirs, b"x\n").unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(61190), Some(61190)).unwrap();
        let msg = refused(&theirs);
        assert_eq!(msg, format!("{} belongs to uid 61190, not to ecapture's user (uid 0): not writing to another user's file", theirs.display()));

        // A sticky, world-writable directory (like /tmp) holding a link to
        // a directory: followed if root's, refused if another user's.
        let tmp = d.0.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let real = d.0.join("real");
        std::fs::create_dir(&real).unwrap();
        let link = tmp.join("evdir");
        symlink(&real, &link).unwrap();
        assert!(OutputFile::open(&link.join("ok.log")).is_ok(), "root's own link is followed");
        assert!(real.join("ok.log").is_file());
        lchown(&link, Some(61190), Some(61190)).unwrap();
        let msg = refused(&link.join("ev.log"));
        assert_eq!(
            msg,
            format!(
                "{}: {} is a symbolic link owned by uid 61190 in a directory other users can write to: not following it",
                link.join("ev.log").display(),
                link.display()
            )
        );
        assert!(!real.join("ev.log").exists());
        // The same link in a directory only root can write: it was root who
        // put it there, so it is followed.
        let safe = d.0.join("safe");
        std::fs::create_dir(&safe).unwrap();
        std::fs::set_permissions(&safe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link2 = safe.join("evdir");
        symlink("../real", &link2).unwrap();
        lchown(&link2, Some(61190), Some(61190)).unwrap();
        assert!(OutputFile::open(&link2.join("ev2.log")).is_ok());
        assert!(real.join("ev2.log").is_file());
        // A directory another user owns (a service account's): their links
        // are not followed, even deeper in the path or through another link.
        let svc = d.0.join("svc");
        std::fs::create_dir(&svc).unwrap();
        std::os::unix::fs::chown(&svc, Some(61190), Some(61190)).unwrap();
        let link3 = svc.join("logs");
        symlink(&real, &link3).unwrap();
        lchown(&link3, Some(61190), Some(61190)).unwrap();
        let via = d.0.join("via");
        symlink(&svc, &via).unwrap(); // root's link to the service's directory
        let msg = refused(&via.join("logs/ev3.log"));
        assert!(msg.ends_with(&format!("{} is a symbolic link owned by uid 61190 in a directory other users can write to: not following it", link3.display())), "{msg}");
        assert!(!real.join("ev3.log").exists());
    }

    #[test]
    fn link_loops_end() {
        let d = Dir::new("loops");
        symlink("b", d.0.join("a")).unwrap();
        symlink("a", d.0.join("b")).unwrap();
        let msg = refused(&d.0.join("a/x.log"));
        assert!(msg.contains("too many symbolic links"), "{msg}");
    }

    #[test]
    fn still_there_tells_a_moved_file() {
        let d = Dir::new("there");
        let p = d.0.join("ev.log");
        let f = OutputFile::open(&p).unwrap();
        assert!(still_there(&f.dir, &f.name, &f.stat).unwrap());
        std::fs::rename(&p, d.0.join("moved.log")).unwrap();
        assert!(!still_there(&f.dir, &f.name, &f.stat).unwrap());
        symlink(d.0.join("moved.log"), &p).unwrap();
        assert!(!still_there(&f.dir, &f.name, &f.stat).unwrap(), "a link to it is not it");
    }
}
