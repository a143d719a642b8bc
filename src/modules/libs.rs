//! Finding a TLS library's files, for any module: the ones running
//! processes have mapped (through /proc/*/maps, opened through the
//! process's root so that libraries inside containers work too), and the
//! system's (the directories of /etc/ld.so.conf with its includes, then the
//! usual lib dirs).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Files whose name satisfies `wanted` that running processes have
/// mapped, each as a path reachable from here.
/// Only process `only`'s, when given.
pub fn mapped(wanted: impl Fn(&str) -> bool, only: Option<u32>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let pids: Vec<String> = match only {
        Some(pid) => vec![pid.to_string()],
        None => match fs::read_dir("/proc") {
            Ok(procs) => procs.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => return out,
        },
    };
    for pid in &pids {
        let Some(pid) = Some(pid.as_str()).filter(|p| p.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else { continue };
        for line in maps.lines() {
            // addr perms offset dev inode path
            let mut f = line.split_ascii_whitespace();
            let (Some(_), Some(_), Some(_), Some(_), Some(inode), Some(path)) =
                (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let file = path.rsplit('/').next().unwrap_or(path);
            if !wanted(file) || !seen.insert((pid.to_string(), path.to_string())) {
                continue;
            }
            let inode: u64 = inode.parse().unwrap_or(0);
            // Same file in our mount namespace? Else go through the process's root.
            let direct = Path::new(path);
            let through_root = PathBuf::from(format!("/proc/{pid}/root{path}"));
            let p = match fs::metadata(direct) {
                Ok(md) if md.ino() == inode => direct.to_path_buf(),
                _ => through_root,
            };
            log::debug!("process {pid} maps {path}");
            out.push(p);
        }
    }
    out
}

/// Debian's multiarch directory name of the architecture this ecapture runs
/// on (/usr/lib/<it>): a library of another architecture could not be probed.
#[cfg(target_arch = "x86_64")]
macro_rules! multiarch {
    () => {
        "x86_64-linux-gnu"
    };
}
#[cfg(target_arch = "aarch64")]
macro_rules! multiarch {
    () => {
        "aarch64-linux-gnu"
    };
}

/// Library directories: those of /etc/ld.so.conf (with its includes), then
/// the usual ones; or the colon-separated list of ECAPTURE_LIB_DIRS, when set
/// (for hosts with libraries elsewhere, and for tests).
pub fn lib_dirs() -> Vec<PathBuf> {
    if let Some(list) = std::env::var_os("ECAPTURE_LIB_DIRS") {
        return std::env::split_paths(&list).filter(|d| !d.as_os_str().is_empty()).collect();
    }
    let mut dirs = Vec::new();
    read_ld_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    for d in [
        concat!("/lib/", multiarch!()),
        concat!("/usr/lib/", multiarch!()),
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
        "/usr/local/lib64",
        "/usr/local/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

fn read_ld_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: u32) {
    if depth > 8 {
        return;
    }
    let Ok(text) = fs::read_to_string(path) else { return };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            for inc in glob(pattern) {
                read_ld_conf(&inc, dirs, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// The one kind of glob ld.so.conf uses: a `*` in the last component.
fn glob(pattern: &str) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let (Some(dir), Some(file)) = (p.parent(), p.file_name().and_then(|f| f.to_str())) else { return vec![] };
    let Some((pre, post)) = file.split_once('*') else { return vec![p.to_path_buf()] };
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len()).then(|| e.path())
        })
        .collect();
    out.sort();
    out
}

/// The first library directory holding `name`, built for this architecture
/// (a multiarch host's directories hold others' too).
pub fn find_in_lib_dirs(name: &str) -> Option<PathBuf> {
    lib_dirs().into_iter().map(|d| d.join(name)).find(|p| p.exists() && native(p))
}

/// Whether a library found in a directory is of this architecture; one that
/// is not is skipped, and said so in the debug log.
fn native(p: &Path) -> bool {
    let ok = super::elf::is_native(p);
    if !ok {
        log::debug!("skipping {}: not an ELF file of this architecture", p.display());
    }
    ok
}

/// The system's files whose name starts with `prefix` (e.g. "libssl.so."),
/// in every library directory, symlinks resolved.
pub fn system(prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in lib_dirs() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        for n in names {
            if let Ok(p) = fs::canonicalize(dir.join(&n)) {
                if native(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Candidate files looked at, at most: any process can map a file with a
/// library's name.
const MAX_CANDIDATES: usize = 256;

/// What a module asks `discover` for.
pub struct Wanted<'a> {
    /// The module's flag naming a file, e.g. "--gnutls", and its value.
    pub flag: &'static str,
    pub explicit: Option<&'a Path>,
    /// Is this file name the library's? (for /proc/*/maps)
    pub name: fn(&str) -> bool,
    /// The library's file name prefix in the library directories, e.g. "libgnutls.so.".
    pub system_prefix: &'static str,
    /// What the library is called in messages, e.g. "libgnutls".
    pub what: &'static str,
    /// `--pid`: only this process's mapped files (and the system's).
    pub pid: Option<u32>,
}

/// The files of a library to hook, each read by `inspect`: the one the
/// module's flag names (a file that is not the library is a usage error),
/// else every distinct one running processes map plus the system's, those
/// `inspect` refuses skipped with a warning. None found is an error naming
/// where we looked.
pub fn discover<T>(w: &Wanted, mut inspect: impl FnMut(&Path) -> Result<T>) -> Result<Vec<T>> {
    if let Some(p) = w.explicit {
        if !p.exists() {
            return Err(Error::usage(format!("{} {}: no such file", w.flag, p.display())));
        }
        if p.is_dir() {
            return Err(Error::usage(format!("{} {}: is a directory, expected a library", w.flag, p.display())));
        }
        let shown = p.display().to_string();
        return inspect(p).map(|t| vec![t]).map_err(|e| {
            let e = e.to_string();
            // ELF errors name the file already.
            Error::usage(if e.starts_with(&shown) { format!("{} {e}", w.flag) } else { format!("{} {shown}: {e}", w.flag) })
        });
    }
    let mut candidates = mapped(w.name, w.pid);
    candidates.extend(system(w.system_prefix));
    if candidates.len() > MAX_CANDIDATES {
        log::warn!("{} files named like {} found; looking at the first {MAX_CANDIDATES}", candidates.len(), w.what);
    }
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for path in candidates.into_iter().take(MAX_CANDIDATES) {
        let Ok(md) = fs::metadata(&path) else { continue };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        match inspect(&path) {
            Ok(t) => found.push(t),
            Err(e) => log::warn!("skipping {}: {e}", path.display()),
        }
    }
    if found.is_empty() {
        let dirs: Vec<String> = lib_dirs().iter().map(|d| d.display().to_string()).collect();
        return Err(Error::runtime(format!(
            "no {} found: no running process maps one and none is in {} ({}*); name one with {} PATH",
            w.what,
            dirs.join(", "),
            w.system_prefix,
            w.flag
        )));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ld_conf_with_includes() {
        let dir = std::env::temp_dir().join(format!("ecapture-ldconf-{}", std::process::id()));
        let inc = dir.join("ld.so.conf.d");
        fs::create_dir_all(&inc).unwrap();
        fs::write(dir.join("ld.so.conf"), format!("# comment\n/opt/a/lib\ninclude {}/*.conf\n", inc.display()))
            .unwrap();
        fs::write(inc.join("b.conf"), "/opt/b/lib # trailing\n").unwrap();
        fs::write(inc.join("ignored.txt"), "/opt/c/lib\n").unwrap();
        let mut dirs = Vec::new();
        read_ld_conf(&dir.join("ld.so.conf"), &mut dirs, 0);
        fs::remove_dir_all(&dir).ok();
        assert_eq!(dirs, vec![PathBuf::from("/opt/a/lib"), PathBuf::from("/opt/b/lib")]);
    }
}
