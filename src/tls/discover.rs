//! Which TLS libraries to hook, and what version each is.
//!
//! `--libssl PATH` names one. Otherwise: every distinct libssl that running
//! processes have mapped (found through /proc/*/maps, opened through the
//! process's root so libraries inside containers work too), plus the
//! system's libssl (ld.so.conf directories and the usual lib dirs), so that
//! processes started later are captured as well. Uprobes attach to a file's
//! inode, so each distinct (device, inode) is hooked once.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::elf::Elf;
use super::version::SslVersion;
use crate::error::{Error, Result};

/// The functions we hook. SSL_read/SSL_write are required.
pub const RW_FUNCS: [&str; 4] = ["SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"];
pub const FD_FUNCS: [&str; 3] = ["SSL_set_fd", "SSL_set_rfd", "SSL_set_wfd"];
/// Where a connection ends.
pub const FREE_FUNC: &str = "SSL_free";

/// A library to attach to.
#[derive(Debug, Clone)]
pub struct Library {
    /// The path the uprobes are attached through.
    pub path: PathBuf,
    /// The functions of RW_FUNCS, FD_FUNCS and FREE_FUNC it defines, with their file offsets.
    pub functions: HashMap<String, u64>,
    /// None when no marker was found.
    pub version: Option<SslVersion>,
    /// Where the version came from: "libssl.so.3", "libcrypto.so.3", "--ssl_version".
    pub version_source: String,
}

/// Finds the libraries to hook. `override_version` is `--ssl_version`.
pub fn discover(libssl: Option<&Path>, override_version: Option<SslVersion>) -> Result<Vec<Library>> {
    let candidates: Vec<PathBuf> = match libssl {
        Some(p) => {
            if !p.exists() {
                return Err(Error::usage(format!("--libssl {}: no such file", p.display())));
            }
            if p.is_dir() {
                return Err(Error::usage(format!("--libssl {}: is a directory, expected a library", p.display())));
            }
            vec![p.to_path_buf()]
        }
        None => {
            let mut c = mapped_libssl();
            c.extend(system_libssl());
            c
        }
    };

    let mut seen = HashSet::new();
    let mut libs = Vec::new();
    for path in candidates {
        let Ok(md) = fs::metadata(&path) else { continue };
        if !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        match inspect(&path, override_version) {
            Ok(lib) => libs.push(lib),
            Err(e) if libssl.is_some() => return Err(e),
            Err(e) => log::warn!("skipping {}: {e}", path.display()),
        }
    }
    if libs.is_empty() {
        return Err(Error::runtime(
            "no libssl found: no running process maps one and none is in the system library directories; \
             name one with --libssl PATH",
        ));
    }
    Ok(libs)
}

/// Reads one candidate: its functions and version.
fn inspect(path: &Path, override_version: Option<SslVersion>) -> Result<Library> {
    let elf = Elf::open(path)?;
    let wanted: Vec<&str> = RW_FUNCS.iter().chain(FD_FUNCS.iter()).chain([FREE_FUNC].iter()).copied().collect();
    let functions = elf.function_offsets(&wanted)?;
    if !functions.contains_key("SSL_write") || !functions.contains_key("SSL_read") {
        return Err(Error::runtime(format!(
            "{} does not define SSL_read and SSL_write (is it libssl, or a binary with OpenSSL linked in?)",
            path.display()
        )));
    }
    let (version, version_source) = match override_version {
        Some(v) => (Some(v), "--ssl_version".to_string()),
        None => detect_version(path, &elf),
    };
    Ok(Library { path: path.to_path_buf(), functions, version, version_source })
}

/// The version marker in the library itself, else in the libcrypto it needs
/// (libssl.so.3 usually has no "OpenSSL x.y.z" string of its own).
fn detect_version(path: &Path, elf: &Elf) -> (Option<SslVersion>, String) {
    let name = |p: &Path| p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned());
    if let Some(v) = fs::read(path).ok().and_then(|d| SslVersion::find_in(&d)) {
        return (Some(v), name(path));
    }
    let needed = elf.needed().unwrap_or_default();
    for crypto in needed.iter().filter(|n| n.starts_with("libcrypto.so")) {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let beside = dir.join(crypto);
        let found = if beside.exists() { Some(beside) } else { find_in_lib_dirs(crypto) };
        if let Some(p) = found {
            if let Some(v) = fs::read(&p).ok().and_then(|d| SslVersion::find_in(&d)) {
                return (Some(v), name(&p));
            }
        }
    }
    (None, String::new())
}

/// Is this a path of OpenSSL's (or BoringSSL's) libssl? NSS's libssl3.so is not.
fn is_libssl_name(file: &str) -> bool {
    file.starts_with("libssl.so")
}

/// libssl files mapped by running processes, each reachable from here.
fn mapped_libssl() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let Ok(procs) = fs::read_dir("/proc") else { return out };
    for entry in procs.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid.to_str().filter(|p| p.bytes().all(|b| b.is_ascii_digit())) else { continue };
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
            if !is_libssl_name(file) || !seen.insert((pid.to_string(), path.to_string())) {
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

/// Library directories: those of /etc/ld.so.conf (with its includes), then
/// the usual ones.
fn lib_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
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

fn find_in_lib_dirs(name: &str) -> Option<PathBuf> {
    lib_dirs().into_iter().map(|d| d.join(name)).find(|p| p.exists())
}

/// The system's libssl files: every versioned libssl.so.* in the library
/// directories, symlinks resolved.
fn system_libssl() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in lib_dirs() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("libssl.so."))
            .collect();
        names.sort();
        for n in names {
            if let Ok(p) = fs::canonicalize(dir.join(&n)) {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libssl_names() {
        assert!(is_libssl_name("libssl.so.3"));
        assert!(is_libssl_name("libssl.so.1.1"));
        assert!(!is_libssl_name("libssl3.so"), "NSS");
        assert!(!is_libssl_name("libgnutls.so.30"));
    }

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

    #[test]
    fn missing_or_wrong_libssl_is_an_error() {
        let e = discover(Some(Path::new("/nonexistent/libssl.so.3")), None).unwrap_err();
        assert_eq!(e.to_string(), "--libssl /nonexistent/libssl.so.3: no such file");
        let e = discover(Some(Path::new("/tmp")), None).unwrap_err();
        assert!(e.to_string().contains("is a directory"));
        let exe = std::env::current_exe().unwrap();
        let e = discover(Some(&exe), None).unwrap_err();
        assert!(e.to_string().contains("does not define SSL_read and SSL_write"), "{e}");
    }
}
