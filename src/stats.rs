//! Counters shared by the pipeline's threads: what was captured and every
//! way data was lost. Readers and the dispatcher add with relaxed atomics;
//! the main thread reads snapshots for the periodic loss warning and the
//! shutdown summary.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::bpf::loader::BpfFailures;

#[derive(Debug, Default)]
pub struct Stats {
    /// Perf records received.
    pub records: AtomicU64,
    /// Records perf reported lost because a ring was full. Informational:
    /// each is also a failed bpf_perf_event_output, counted by the BPF side
    /// at once, whereas perf reports a loss only when a later record follows.
    pub kernel_lost: AtomicU64,
    /// Records a reader could not hand over: the dispatcher was gone.
    pub channel_full: AtomicU64,
    /// Records that did not decode.
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
}

/// A copy of the counters at one moment, with the BPF side's failures.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub records: u64,
    pub kernel_lost: u64,
    pub channel_full: u64,
    pub malformed: u64,
    pub calls: u64,
    pub events: u64,
    pub bytes: u64,
    pub truncated: u64,
    pub incomplete: u64,
    pub missing_bytes: u64,
    pub stray_chunks: u64,
    pub bpf: BpfFailures,
    /// With --ecaptureq: clients served and events dropped for slow ones.
    pub ecq: Option<EcqCounts>,
    /// With --logaddr/--eventaddr: records written and dropped, all sinks.
    pub sinks: Option<SinkCounts>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounts {
    pub written: u64,
    pub dropped: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EcqCounts {
    pub clients: u64,
    pub dropped: u64,
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self, bpf: BpfFailures) -> Snapshot {
        Snapshot {
            records: self.records.load(Relaxed),
            kernel_lost: self.kernel_lost.load(Relaxed),
            channel_full: self.channel_full.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            calls: self.calls.load(Relaxed),
            events: self.events.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            truncated: self.truncated.load(Relaxed),
            incomplete: self.incomplete.load(Relaxed),
            missing_bytes: self.missing_bytes.load(Relaxed),
            stray_chunks: self.stray_chunks.load(Relaxed),
            bpf,
            ecq: None,
            sinks: None,
        }
    }
}

impl Snapshot {
    /// Records (chunks or whole calls) lost anywhere between the BPF
    /// program and the dispatcher. Full perf rings are in `bpf`.
    pub fn lost(&self) -> u64 {
        self.channel_full + self.malformed + self.bpf.total()
    }

    fn losses(&self) -> String {
        format!(
            "lost {} (buffer full {}, bpf other {}, channel {}, malformed {}); {} incomplete ({} bytes missing), {} truncated",
            self.lost(),
            self.bpf.perf_output,
            self.bpf.total() - self.bpf.perf_output,
            self.channel_full,
            self.malformed,
            self.incomplete,
            self.missing_bytes,
            self.truncated
        )
    }

    /// The one-line shutdown summary.
    pub fn summary(&self) -> String {
        let ecq = match self.ecq {
            Some(e) => format!("; eCaptureQ: {} clients served, {} events dropped for slow clients", e.clients, e.dropped),
            None => String::new(),
        };
        let sinks = match self.sinks {
            Some(s) => format!("; sinks: {} records written, {} dropped", s.written, s.dropped),
            None => String::new(),
        };
        format!("{} events, {} calls, {} bytes captured; {}{ecq}{sinks}", self.events, self.calls, self.bytes, self.losses())
    }

    /// A warning line when something was lost since `prev`, else None.
    pub fn loss_report(&self, prev: &Snapshot) -> Option<String> {
        let changed = self.lost() != prev.lost()
            || self.incomplete != prev.incomplete
            || self.truncated != prev.truncated
            || self.ecq.map(|e| e.dropped) != prev.ecq.map(|e| e.dropped)
            || self.sinks.map(|s| s.dropped) != prev.sinks.map(|s| s.dropped);
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
             0 incomplete (0 bytes missing), 0 truncated"
        );
        assert_eq!(a.loss_report(&a), None);
        Stats::add(&s.kernel_lost, 2); // the same losses as perf_output: not added again
        Stats::add(&s.channel_full, 1);
        let b = s.snapshot(BpfFailures { perf_output: 2, slot_busy: 1, ..Default::default() });
        assert_eq!(b.lost(), 4);
        assert!(b.loss_report(&a).unwrap().contains("lost 4 (buffer full 2, bpf other 1, channel 1, malformed 0)"));
        let c = Snapshot { ecq: Some(EcqCounts { clients: 2, dropped: 7 }), ..b };
        assert!(c.summary().ends_with("; eCaptureQ: 2 clients served, 7 events dropped for slow clients"));
        assert!(c.loss_report(&b).is_some(), "slow-client drops are reported");
        let d = Snapshot { sinks: Some(SinkCounts { written: 5, dropped: 1 }), ..c };
        assert!(d.summary().ends_with("; sinks: 5 records written, 1 dropped"));
        assert!(d.loss_report(&c).is_some(), "sink drops are reported");
    }
}
