//! The file sink: appends records to a file created with mode 0600
//! (captured plaintext is secret) and never truncates an existing one. With
//! rotation, the full file is renamed to `name-YYYY-MM-DDTHH-MM-SS.mmm.ext`
//! (local time) and a new one started; a record is never split across
//! files, and nothing is lost at the switch.
//!
//! Files are opened by `open_append` / `OutputFile::open` (src/sink/open.rs:
//! no links followed where another user could plant them, checked after
//! opening). Rotation works in the directory opened then: the current file
//! is renamed only while it is still at its name, never over an existing
//! name, and the new file gets the same checks. When rotation is refused
//! (a link or another user's file at the name), records go on into the
//! current file, the refusal is logged and counted, and it is tried again
//! later.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::open::{open_in, still_there, OutputFile};
use super::{Rotation, SinkStats};
use crate::error::Result;
use crate::localtime::{file_stamp, Zone};
use crate::sys::fs::{rename_noreplace, Stat};

/// A refused rotation is tried again after this long.
const ROTATE_RETRY: Duration = Duration::from_secs(10);

/// Opens (or creates, mode 0600) `path` for appending, safely: every file
/// ecapture writes (event and log files, key logs, pcapng files) is opened
/// here or by `OutputFile::open`, with the checks of src/sink/open.rs.
/// Errors are one line naming the path (exit status 2).
pub fn open_append(path: &Path) -> Result<File> {
    Ok(OutputFile::open(path)?.file)
}

pub struct FileWriter {
    /// The path as given, for messages.
    path: PathBuf,
    /// The directory holding the file, opened once, and the file's name there.
    dir: OwnedFd,
    name: OsString,
    /// The current file, and which one it is.
    out: BufWriter<File>,
    stat: Stat,
    size: u64,
    opened: Instant,
    rotation: Rotation,
    zone: Zone,
    last_error: Option<Instant>,
    /// Stamp of the last rotation, ns: stamps strictly increase, so rotated
    /// names are unique and sort in order.
    last_stamp: i64,
    /// After a refused rotation: when to try again.
    retry_at: Option<Instant>,
}

/// `dir/name.ext` → `dir/name-STAMP.ext` (`dir/name-STAMP` without an extension).
pub fn rotated_name(path: &Path, stamp: &str) -> PathBuf {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{stamp}.{ext}"),
        _ => format!("{file}-{stamp}"),
    };
    path.with_file_name(name)
}

/// Whether a file of `size` bytes, open since `opened`, must be rotated
/// before `next` more bytes are written.
pub fn must_rotate(rotation: &Rotation, size: u64, opened: Instant, next: u64, now: Instant) -> bool {
    if size == 0 {
        return false; // never leave an empty file behind
    }
    (rotation.max_bytes > 0 && size + next > rotation.max_bytes)
        || rotation.every.is_some_and(|every| now.duration_since(opened) >= every)
}

impl FileWriter {
    /// Opens (or creates, mode 0600) `path` for appending.
    pub fn open(path: &Path, rotation: Rotation) -> Result<FileWriter> {
        let f = OutputFile::open(path)?;
        let size = f.file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileWriter {
            path: path.to_path_buf(),
            dir: f.dir,
            name: f.name,
            out: BufWriter::with_capacity(64 << 10, f.file),
            stat: f.stat,
            size,
            opened: Instant::now(),
            rotation,
            zone: if rotation.is_on() { Zone::system() } else { Zone::UTC },
            last_error: None,
            last_stamp: 0,
            retry_at: None,
        })
    }

    /// Writes records until every sender is gone, then flushes.
    pub fn run(&mut self, rx: Receiver<Vec<u8>>, stats: &SinkStats) {
        loop {
            // Wake up at least every second: time rotation and flushing.
            let msg = rx.recv_timeout(Duration::from_secs(1));
            match msg {
                Ok(rec) => {
                    stats.took(&rec);
                    self.write(&rec, stats);
                    if rx.is_empty() {
                        self.flush();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.due(0) {
                        self.rotate(stats);
                    }
                    self.flush();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.flush();
    }

    fn write(&mut self, rec: &[u8], stats: &SinkStats) {
        if self.due(rec.len() as u64) {
            self.rotate(stats);
        }
        match self.out.write_all(rec) {
            Ok(()) => {
                self.size += rec.len() as u64;
                stats.written.fetch_add(1, Relaxed);
            }
            Err(e) => {
                stats.dropped.fetch_add(1, Relaxed);
                self.complain(&format!("cannot write {}: {e}", self.path.display()));
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.complain(&format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// Logs an I/O problem at most every 10 s.
    fn complain(&mut self, what: &str) {
        if self.last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            log::error!("{what}; records are being dropped");
            self.last_error = Some(Instant::now());
        }
    }

    /// Whether to rotate before writing `next` more bytes (not while a
    /// refused rotation waits to be tried again).
    fn due(&self, next: u64) -> bool {
        let now = Instant::now();
        self.retry_at.is_none_or(|t| now >= t) && must_rotate(&self.rotation, self.size, self.opened, next, now)
    }

    /// Renames the current file aside and starts a new one. When that is
    /// refused, records go on into the current file (nothing is lost), the
    /// refusal is logged and counted, and it is tried again later.
    fn rotate(&mut self, stats: &SinkStats) {
        self.flush();
        match self.try_rotate() {
            Ok(Some(aside)) => log::info!("rotated {} to {}", self.path.display(), aside.display()),
            Ok(None) => log::info!("started a new {} (the previous file was no longer at that name)", self.path.display()),
            Err(why) => {
                stats.rotations_refused.fetch_add(1, Relaxed);
                log::error!(
                    "cannot rotate {}: {why}; events go on into the current file (trying again in {} s)",
                    self.path.display(),
                    ROTATE_RETRY.as_secs()
                );
                self.retry_at = Some(Instant::now() + ROTATE_RETRY);
                return;
            }
        }
        self.retry_at = None;
    }

    /// Moves the current file aside if it is still at its name (not when a
    /// rotation whose new file was refused has already moved it), then
    /// opens a new file there with the checks of every output file. All by
    /// name inside the directory opened at start. Returns where the old
    /// file went.
    fn try_rotate(&mut self) -> std::result::Result<Option<PathBuf>, String> {
        let ours = still_there(&self.dir, &self.name, &self.stat).map_err(|e| format!("cannot examine it: {e}"))?;
        let aside = if ours { Some(self.rename_aside()?) } else { None };
        let (file, stat) =
            open_in(&self.dir, &self.name, crate::sys::os::euid()).map_err(|why| format!("the new {} {why}", self.path.display()))?;
        self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.out = BufWriter::with_capacity(64 << 10, file);
        self.stat = stat;
        self.opened = Instant::now();
        Ok(aside)
    }

    /// Renames the current file to a rotated name that nothing has yet
    /// (RENAME_NOREPLACE: whatever is at a name, a link included, stays).
    fn rename_aside(&mut self) -> std::result::Result<PathBuf, String> {
        let mut ns = crate::time::now_ns().max(self.last_stamp + 1_000_000);
        for _ in 0..1000 {
            let aside = rotated_name(Path::new(&self.name), &file_stamp(&self.zone, ns)).into_os_string();
            match rename_noreplace(self.dir.as_fd(), &self.name, &aside) {
                Ok(()) => {
                    self.last_stamp = ns;
                    return Ok(self.path.with_file_name(aside));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => ns += 1_000_000,
                Err(e) => return Err(format!("cannot rename it: {e}")),
            }
        }
        Err("every rotated name tried is taken".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rotated_names() {
        let s = "2026-11-29T13-30-18.123";
        assert_eq!(rotated_name(Path::new("/var/log/events.log"), s), PathBuf::from("/var/log/events-2026-11-29T13-30-18.123.log"));
        assert_eq!(rotated_name(Path::new("events"), s), PathBuf::from("events-2026-11-29T13-30-18.123"));
        assert_eq!(rotated_name(Path::new("a.tar.gz"), s), PathBuf::from("a.tar-2026-11-29T13-30-18.123.gz"));
        assert_eq!(rotated_name(Path::new("/x/.hidden"), s), PathBuf::from("/x/.hidden-2026-11-29T13-30-18.123"));
    }

    #[test]
    fn rotation_triggers() {
        let t0 = Instant::now();
        let size = Rotation { max_bytes: 100, every: None };
        assert!(!must_rotate(&size, 0, t0, 1000, t0), "an empty file takes even a big record");
        assert!(!must_rotate(&size, 60, t0, 40, t0));
        assert!(must_rotate(&size, 60, t0, 41, t0));
        let time = Rotation { max_bytes: 0, every: Some(Duration::from_secs(10)) };
        assert!(!must_rotate(&time, 5, t0, 1, t0 + Duration::from_secs(9)));
        assert!(must_rotate(&time, 5, t0, 1, t0 + Duration::from_secs(10)));
        assert!(!must_rotate(&time, 0, t0, 1, t0 + Duration::from_secs(99)));
        assert!(!must_rotate(&Rotation::default(), 1 << 40, t0, 1 << 40, t0 + Duration::from_secs(1 << 20)));
    }

    #[test]
    fn appends_with_0600_and_rotates_without_splitting_records() {
        let dir = std::env::temp_dir().join(format!("ecapture-filesink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ev.log");
        std::fs::write(&path, b"existing line\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let stats = SinkStats::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut w = FileWriter::open(&path, Rotation { max_bytes: 64, every: None }).unwrap();
        for i in 0..10 {
            tx.send(format!("record {i:02} ........................\n").into_bytes()).unwrap(); // 35 bytes
        }
        drop(tx);
        w.run(rx, &stats);
        assert_eq!(stats.written.load(Relaxed), 10);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort(); // rotated names sort in time order; the current file comes last
        let mut all = String::new();
        let current = std::fs::read_to_string(&path).unwrap();
        for f in files.iter().filter(|f| **f != path) {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(text.len() <= 64, "{text:?}");
            assert!(text.ends_with('\n'), "records are whole");
            all.push_str(&text);
        }
        all.push_str(&current);
        let mut want = String::from("existing line\n");
        for i in 0..10 {
            want.push_str(&format!("record {i:02} ........................\n"));
        }
        assert_eq!(all, want, "every record exactly once, in order, nothing truncated");
        assert!(files.len() >= 5, "{files:?}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "new files are 0600");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_paths_are_errors() {
        let e = FileWriter::open(Path::new("/tmp"), Rotation::default()).err().unwrap();
        assert_eq!(e.to_string(), "/tmp is a directory, expected a file");
        let e = FileWriter::open(Path::new("/nonexistent-dir/x.log"), Rotation::default()).err().unwrap();
        assert_eq!(e.to_string(), "/nonexistent-dir/x.log: directory /nonexistent-dir does not exist");
        assert_eq!(e.exit_code(), 2);
    }

    /// A writer in a fresh directory that rotates past 64 bytes, with UTC
    /// stamps from `stamp_ns` on (so the rotated names are known).
    fn rotating_writer(dir: &Path, stamp_ns: i64) -> FileWriter {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let mut w = FileWriter::open(&dir.join("ev.log"), Rotation { max_bytes: 64, every: None }).unwrap();
        w.zone = Zone::UTC;
        w.last_stamp = stamp_ns;
        w
    }

    fn feed(w: &mut FileWriter, n: usize) -> SinkStats {
        let stats = SinkStats::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..n {
            tx.send(format!("record {i:02} ........................\n").into_bytes()).unwrap(); // 35 bytes
        }
        drop(tx);
        w.run(rx, &stats);
        stats
    }

    #[test]
    fn rotation_never_writes_through_links_at_the_rotated_names() {
        let dir = std::env::temp_dir().join(format!("ecapture-filesink-aside-{}", std::process::id()));
        let future = crate::time::now_ns() + 3_600_000_000_000;
        let mut w = rotating_writer(&dir, future);
        let target = dir.join("target");
        std::fs::write(&target, b"precious\n").unwrap();
        // Links at the next five names a rotation would take.
        for k in 1..=5 {
            let name = rotated_name(Path::new("ev.log"), &file_stamp(&Zone::UTC, future + k * 1_000_000));
            std::os::unix::fs::symlink(&target, dir.join(name)).unwrap();
        }
        let stats = feed(&mut w, 3);
        assert_eq!(stats.written.load(Relaxed), 3);
        assert_eq!(stats.rotations_refused.load(Relaxed), 0);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious\n");
        let sixth = dir.join(rotated_name(Path::new("ev.log"), &file_stamp(&Zone::UTC, future + 6_000_000)));
        let aside = std::fs::symlink_metadata(&sixth).unwrap();
        assert!(aside.is_file(), "the first free name is taken, the links stay links");
        assert_eq!(std::fs::read_to_string(&sixth).unwrap(), "record 00 ........................\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_link_at_the_new_name_is_refused_and_records_go_on_into_the_current_file() {
        let dir = std::env::temp_dir().join(format!("ecapture-filesink-new-{}", std::process::id()));
        let mut w = rotating_writer(&dir, 0);
        let target = dir.join("target");
        std::fs::write(&target, b"precious\n").unwrap();
        // Someone moves the file away and puts a link in its place.
        std::fs::rename(dir.join("ev.log"), dir.join("moved.log")).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("ev.log")).unwrap();
        let stats = feed(&mut w, 4);
        assert_eq!(stats.written.load(Relaxed), 4);
        assert_eq!(stats.rotations_refused.load(Relaxed), 1, "refused once, then not tried again at every record");
        assert_eq!(std::fs::read(&target).unwrap(), b"precious\n");
        assert!(std::fs::symlink_metadata(dir.join("ev.log")).unwrap().file_type().is_symlink(), "the link is not renamed either");
        let moved = std::fs::read_to_string(dir.join("moved.log")).unwrap();
        assert_eq!(moved.lines().count(), 4, "every record in the file still open: {moved}");
        // Later the name is free again: the next rotation starts a new file.
        std::fs::remove_file(dir.join("ev.log")).unwrap();
        w.retry_at = Some(Instant::now());
        let stats = feed(&mut w, 1);
        assert_eq!((stats.written.load(Relaxed), stats.rotations_refused.load(Relaxed)), (1, 0));
        assert_eq!(std::fs::read_to_string(dir.join("ev.log")).unwrap(), "record 00 ........................\n");
        assert_eq!(std::fs::read_to_string(dir.join("moved.log")).unwrap(), moved, "the moved file is not renamed again");
        std::fs::remove_dir_all(&dir).ok();
    }
}
