//! Counters shared by the pipeline's threads: what was captured and every
//! way data was lost. Readers and the dispatcher add with relaxed atomics;
//! the main thread reads snapshots for the periodic loss warning and the
//! shutdown summary.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts of failures on the BPF side (the `stats` maps, STAT_* of bpf/abi.h).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BpfFailures {
    /// The ring buffer was full: a record lost.
    pub output: u64,
    pub read_user: u64,
    pub slot_busy: u64,
    pub active_full: u64,
    pub read_len: u64,
}

impl BpfFailures {
    /// Failures that lost data (a chunk or a whole call).
    pub fn total(&self) -> u64 {
        self.output + self.read_user + self.slot_busy + self.active_full + self.read_len
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    /// Records taken out of the ring.
    pub records: AtomicU64,
    /// Records the reader could not hand over: the dispatcher was gone.
    pub undelivered: AtomicU64,
    /// Records that did not decode (or of a kind their decoder did not know).
    pub malformed: AtomicU64,
    /// SSL calls captured (before they are assembled into messages).
    pub calls: AtomicU64,
    /// Events emitted, and their captured payload bytes.
    pub events: AtomicU64,
    pub bytes: AtomicU64,
    /// Events whose call moved more than the capture cap.
    pub truncated: AtomicU64,
    /// Events with holes, and the bytes in them.
    pub incomplete: AtomicU64,
    pub missing_bytes: AtomicU64,
    /// Chunks that arrived after their call was emitted.
    pub stray_chunks: AtomicU64,
    /// Records of a kind their module's decoder does not know.
    pub unknown_records: AtomicU64,
    /// Held data given out early to stay within the memory budget: times,
    /// and bytes (connections' data; partial calls count in `shed` only).
    pub shed: AtomicU64,
    pub shed_bytes: AtomicU64,
}

/// A copy of the counters at one moment, with the BPF side's failures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub records: u64,
    pub undelivered: u64,
    pub malformed: u64,
    pub calls: u64,
    pub events: u64,
    pub bytes: u64,
    pub truncated: u64,
    pub incomplete: u64,
    pub missing_bytes: u64,
    pub stray_chunks: u64,
    pub unknown_records: u64,
    pub shed: u64,
    pub shed_bytes: u64,
    pub bpf: BpfFailures,
    /// What each output delivered and dropped.
    pub outputs: Vec<OutputCounts>,
}

/// One output's part of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputCounts {
    /// What it dropped (reported while running when it grows).
    pub dropped: u64,
    /// Its summary, e.g. "eCaptureQ: 2 clients served, 0 events dropped for slow clients".
    pub text: String,
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self, bpf: BpfFailures) -> Snapshot {
        Snapshot {
            records: self.records.load(Relaxed),
            undelivered: self.undelivered.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            calls: self.calls.load(Relaxed),
            events: self.events.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            incomplete: self.incomplete.load(Relaxed),
            missing_bytes: self.missing_bytes.load(Relaxed),
            stray_chunks: self.stray_chunks.load(Relaxed),
            unknown_records: self.unknown_records.load(Relaxed),
            shed: self.shed.load(Relaxed),
            shed_bytes: self.shed_bytes.load(Relaxed),
            bpf,
            outputs: Vec::new(),
        }
    }
}

impl Snapshot {
    /// Records (chunks or whole calls) lost anywhere between the BPF
    /// program and the dispatcher. A full ring is in `bpf`.
    pub fn lost(&self) -> u64 {
        self.undelivered + self.malformed + self.unknown_records + self.bpf.total()
    }

    fn losses(&self) -> String {
        format!(
            "lost {} (buffer full {}, bpf other {}, channel {}, malformed {}); {} incomplete ({} bytes missing), {} truncated, \
             {} shed over the memory budget ({} bytes)",
            self.lost(),
            self.bpf.output,
            self.bpf.total() - self.bpf.output,
            self.undelivered,
            self.malformed + self.unknown_records,
            self.incomplete,
            self.missing_bytes,
            self.truncated,
            self.shed,
            self.shed_bytes
        )
    }

    /// The one-line shutdown summary.
    pub fn summary(&self) -> String {
        let outputs: String = self.outputs.iter().map(|o| format!("; {}", o.text)).collect();
        format!("{} events, {} calls, {} bytes captured; {}{outputs}", self.events, self.calls, self.bytes, self.losses())
    }

    /// A warning line when something was lost since `prev`, else None.
    pub fn loss_report(&self, prev: &Snapshot) -> Option<String> {
        let changed = self.lost() != prev.lost()
            || self.incomplete != prev.incomplete
            || self.truncated != prev.truncated
            || self.shed != prev.shed
            || self.outputs.iter().map(|o| o.dropped).ne(prev.outputs.iter().map(|o| o.dropped));
        changed.then(|| format!("so far: {}", self.summary()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_reports() {
        let s = Stats::default();
        Stats::add(&s.events, 3);
        Stats::add(&s.bytes, 300);
        let a = s.snapshot(BpfFailures::default());
        assert_eq!(
            a.summary(),
            "3 events, 0 calls, 300 bytes captured; lost 0 (buffer full 0, bpf other 0, channel 0, malformed 0); \
             0 incomplete (0 bytes missing), 0 truncated, 0 shed over the memory budget (0 bytes)"
        );
        assert_eq!(a.loss_report(&a), None);
        Stats::add(&s.undelivered, 1);
        let b = s.snapshot(BpfFailures { output: 2, slot_busy: 1, ..Default::default() });
        assert_eq!(b.lost(), 4);
        assert!(b.loss_report(&a).unwrap().contains("lost 4 (buffer full 2, bpf other 1, channel 1, malformed 0)"));
        let ecq = |dropped| OutputCounts { dropped, text: format!("eCaptureQ: 2 clients served, {dropped} events dropped for slow clients") };
        let c = Snapshot { outputs: vec![ecq(7)], ..b.clone() };
        assert!(c.summary().ends_with("; eCaptureQ: 2 clients served, 7 events dropped for slow clients"));
        assert!(c.loss_report(&b).is_some(), "slow-client drops are reported");
        let sink = OutputCounts { dropped: 1, text: "sinks: 5 records written, 1 dropped".into() };
        let d = Snapshot { outputs: vec![ecq(7), sink], ..c.clone() };
        assert!(d.summary().ends_with("; sinks: 5 records written, 1 dropped"));
        assert!(d.loss_report(&c).is_some(), "sink drops are reported");
    }
}
