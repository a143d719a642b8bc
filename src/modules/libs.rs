//! Finding a TLS library's files, for any module: the ones running
//! processes have mapped (through /proc/*/maps, opened through the
//! process's root so that libraries inside containers work too), and the
//! system's (the directories of /etc/ld.so.conf with its includes, then the
//! usual lib dirs).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files whose name satisfies `wanted` that running processes have
/// mapped, each as a path reachable from here.
pub fn mapped(wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
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

/// Library directories: those of /etc/ld.so.conf (with its includes), then
/// the usual ones.
pub fn lib_dirs() -> Vec<PathBuf> {
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

/// The first library directory holding `name`.
pub fn find_in_lib_dirs(name: &str) -> Option<PathBuf> {
    lib_dirs().into_iter().map(|d| d.join(name)).find(|p| p.exists())
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
