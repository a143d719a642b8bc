//! The key log (`-m keylog`, `-k FILE`): TLS secrets in the NSS key log
//! format that Wireshark and tshark decrypt with, one line per secret:
//! `LABEL <client random, hex> <secret, hex>`.
//!
//! Each line is written with one `write` on a file opened for appending
//! (mode 0600, through the sinks' `open_append`), as soon as the secret
//! arrives, so a live Wireshark reading the file decrypts as it goes; whole
//! lines only. A secret already written (same label and client random) is
//! not written again. Any module feeds it: decoders hand out `Item::Secret`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::Output;
use crate::error::{Error, Result};
use crate::event::{Message, Secret, SecretLabel};
use crate::sink::open::OutputFile;

/// Secrets remembered for deduplication (about 13,000 TLS 1.3 handshakes).
const REMEMBERED: usize = 1 << 16;

/// What the key log did, for the summary.
#[derive(Debug, Default)]
pub struct KeyLogStats {
    /// Handshakes whose secrets were written.
    pub handshakes: AtomicU64,
    pub lines: AtomicU64,
    /// Lines that could not be written.
    pub failed: AtomicU64,
    /// Connections without keys, by reason.
    pub missing: Mutex<HashMap<&'static str, u64>>,
}

impl KeyLogStats {
    /// "key log FILE: 3 handshakes' secrets (11 lines); 1 connection without keys (why: 1)".
    pub fn summary(&self, path: &Path) -> String {
        let (h, l) = (self.handshakes.load(Relaxed), self.lines.load(Relaxed));
        let mut s = format!("key log {}: secrets of {h} handshake{} ({l} lines)", path.display(), if h == 1 { "" } else { "s" });
        let failed = self.failed.load(Relaxed);
        if failed > 0 {
            s.push_str(&format!(", {failed} lines not written"));
        }
        let missing = self.missing.lock().map(|m| m.clone()).unwrap_or_default();
        let total: u64 = missing.values().sum();
        if total == 0 {
            s.push_str("; every connection seen got its keys");
        } else {
            let mut why: Vec<_> = missing.into_iter().collect();
            why.sort();
            let why: Vec<String> = why.iter().map(|(w, n)| format!("{w}: {n}")).collect();
            s.push_str(&format!("; {total} connection{} without keys ({})", if total == 1 { "" } else { "s" }, why.join("; ")));
        }
        s
    }
}

/// Opens the key log for appending, through the one opener of every output
/// file (its checks: src/sink/open.rs); a path that cannot be opened is a
/// usage error (the run does not start).
pub fn open(path: &Path) -> Result<File> {
    OutputFile::open(path).map(|f| f.file).map_err(|e| Error::usage(format!("--keylogfile {e}")))
}

pub struct KeyLog {
    path: PathBuf,
    file: File,
    stats: Arc<KeyLogStats>,
    /// (label, client random) written, and their order for forgetting.
    written: HashSet<(SecretLabel, [u8; 32])>,
    order: VecDeque<(SecretLabel, [u8; 32])>,
    /// Client randoms whose handshake was counted.
    handshakes: HashSet<[u8; 32]>,
    hs_order: VecDeque<[u8; 32]>,
    /// A write error was logged (once).
    reported_error: bool,
}

impl KeyLog {
    pub fn new(path: PathBuf, file: File, stats: Arc<KeyLogStats>) -> KeyLog {
        KeyLog {
            path,
            file,
            stats,
            written: HashSet::new(),
            order: VecDeque::new(),
            handshakes: HashSet::new(),
            hs_order: VecDeque::new(),
            reported_error: false,
        }
    }

    fn remember<T: std::hash::Hash + Eq + Copy>(set: &mut HashSet<T>, order: &mut VecDeque<T>, v: T) -> bool {
        if !set.insert(v) {
            return false;
        }
        order.push_back(v);
        if order.len() > REMEMBERED {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }
}

/// `LABEL <client random> <secret>\n`, hex in lower case.
pub fn line(s: &Secret) -> String {
    let mut out = String::with_capacity(40 + 2 * (32 + s.secret.len()));
    out.push_str(s.label.as_str());
    out.push(' ');
    hex_into(&mut out, &s.client_random);
    out.push(' ');
    hex_into(&mut out, &s.secret);
    out.push('\n');
    out
}

fn hex_into(out: &mut String, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &x in b {
        out.push(HEX[(x >> 4) as usize] as char);
        out.push(HEX[(x & 15) as usize] as char);
    }
}

impl Output for KeyLog {
    fn message(&mut self, _m: &Message) {}

    fn secret(&mut self, s: &Secret) {
        if !Self::remember(&mut self.written, &mut self.order, (s.label, s.client_random)) {
            return;
        }
        match self.file.write_all(line(s).as_bytes()) {
            Ok(()) => {
                self.stats.lines.fetch_add(1, Relaxed);
                if Self::remember(&mut self.handshakes, &mut self.hs_order, s.client_random) {
                    self.stats.handshakes.fetch_add(1, Relaxed);
                }
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Relaxed);
                if !self.reported_error {
                    self.reported_error = true;
                    log::error!("cannot write the key log {}: {e}", self.path.display());
                }
            }
        }
    }

    fn keys_missing(&mut self, pid: u32, conn: u64, why: &'static str) {
        log::debug!("no TLS keys for connection {conn:#x} of pid {pid}: {why}");
        if let Ok(mut m) = self.stats.missing.lock() {
            let n = m.entry(why).or_default();
            if *n == 0 {
                log::warn!("a connection got no TLS keys (pid {pid}): {why}");
            }
            *n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(label: SecretLabel, cr: u8) -> Secret {
        Secret { pid: 1, conn: 2, label, client_random: [cr; 32], secret: vec![0xab; 48] }
    }

    #[test]
    fn lines_are_nss_key_log_lines_written_once_0600() {
        let dir = std::env::temp_dir().join(format!("ecap-keylog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let _ = std::fs::remove_file(&path);
        let stats = Arc::new(KeyLogStats::default());
        let mut k = KeyLog::new(path.clone(), open(&path).unwrap(), Arc::clone(&stats));
        k.secret(&secret(SecretLabel::ClientRandom, 1));
        k.secret(&secret(SecretLabel::ClientRandom, 1));
        k.secret(&secret(SecretLabel::ClientTraffic0, 2));
        k.secret(&secret(SecretLabel::ServerTraffic0, 2));
        k.keys_missing(1, 3, "TLS version unknown");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], format!("CLIENT_RANDOM {} {}", "01".repeat(32), "ab".repeat(48)));
        assert!(lines[1].starts_with("CLIENT_TRAFFIC_SECRET_0 0202"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let sum = stats.summary(&path);
        assert!(sum.contains("secrets of 2 handshakes (3 lines)"), "{sum}");
        assert!(sum.contains("1 connection without keys (TLS version unknown: 1)"), "{sum}");
        // Appended, not truncated.
        drop(k);
        let mut k = KeyLog::new(path.clone(), open(&path).unwrap(), Arc::new(KeyLogStats::default()));
        k.secret(&secret(SecretLabel::Exporter, 3));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
        assert!(open(&dir).unwrap_err().to_string().contains("is a directory"));
        let e = open(&dir.join("no/such/dir/keys.log")).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
