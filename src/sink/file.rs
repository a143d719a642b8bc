//! The file sink: appends records to a file created with mode 0600
//! (captured plaintext is secret) and never truncates an existing one. With
//! rotation, the full file is renamed to `name-YYYY-MM-DDTHH-MM-SS.mmm.ext`
//! (local time) and a new one started; a record is never split across
//! files, and nothing is lost at the switch.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::{Rotation, SinkStats};
use crate::error::{Error, Result};
use crate::localtime::{file_stamp, Zone};

pub struct FileWriter {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    opened: Instant,
    rotation: Rotation,
    zone: Zone,
    last_error: Option<Instant>,
    /// Stamp of the last rotation, ns: stamps strictly increase, so rotated
    /// names are unique and sort in order.
    last_stamp: i64,
}

pub(crate) fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
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
        let shown = path.display();
        if path.is_dir() {
            return Err(Error::usage(format!("{shown} is a directory, expected a file")));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Error::usage(format!("{shown}: directory {} does not exist", dir.display())));
        }
        let file = open_append(path).map_err(|e| Error::runtime(format!("cannot open {shown}: {e}")))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(FileWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 << 10, file),
            size,
            opened: Instant::now(),
            rotation,
            zone: if rotation.is_on() { Zone::system() } else { Zone::UTC },
            last_error: None,
            last_stamp: 0,
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
                    if must_rotate(&self.rotation, self.size, self.opened, 0, Instant::now()) {
                        self.rotate();
                    }
                    self.flush();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.flush();
    }

    fn write(&mut self, rec: &[u8], stats: &SinkStats) {
        if must_rotate(&self.rotation, self.size, self.opened, rec.len() as u64, Instant::now()) {
            self.rotate();
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

    /// Renames the current file aside and starts a new one.
    fn rotate(&mut self) {
        self.flush();
        let mut ns = crate::time::now_ns().max(self.last_stamp + 1_000_000);
        let mut aside = rotated_name(&self.path, &file_stamp(&self.zone, ns));
        while aside.exists() {
            ns += 1_000_000;
            aside = rotated_name(&self.path, &file_stamp(&self.zone, ns));
        }
        self.last_stamp = ns;
        if let Err(e) = std::fs::rename(&self.path, &aside) {
            self.complain(&format!("cannot rotate {} to {}: {e}", self.path.display(), aside.display()));
            // Go on appending to the same file rather than lose records.
            self.opened = Instant::now();
            return;
        }
        match open_append(&self.path) {
            Ok(f) => {
                self.out = BufWriter::with_capacity(64 << 10, f);
                self.size = 0;
                self.opened = Instant::now();
                log::info!("rotated {} to {}", self.path.display(), aside.display());
            }
            Err(e) => {
                // Keep writing to the renamed file: nothing is lost.
                self.complain(&format!("cannot start a new {}: {e}", self.path.display()));
                self.opened = Instant::now();
            }
        }
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
}
