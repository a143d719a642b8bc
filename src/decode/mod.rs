//! Decoding: a module's records become the pipeline's items (`Item`):
//! calls, reassembled from their chunks (`chunks`), and connection ends.
//! `Decoder` is what the dispatcher knows of a module; `calls::CallDecoder`
//! is the decoder of every module whose records are the common ones.

pub mod calls;
pub mod chunks;

use crate::capture::record::Record;
use crate::event::Item;

/// What decoding may hold and accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The capture cap the BPF side was given: no call is longer.
    pub capture_cap: u32,
    /// Bytes partial calls may hold (at least one call whole).
    pub budget: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { capture_cap: 64 << 20, budget: usize::MAX }
    }
}

/// What decoding saw go wrong, for the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecodeStats {
    /// Calls emitted with holes.
    pub incomplete_calls: u64,
    /// Payload bytes in those holes.
    pub missing_bytes: u64,
    /// Chunks that arrived after their call was emitted, or twice.
    pub stray_chunks: u64,
    /// Records of a kind this decoder does not know, or whose fields are
    /// out of bounds.
    pub unknown_records: u64,
    /// Partial calls emitted early to stay within the budget.
    pub shed: u64,
}

impl std::ops::AddAssign for DecodeStats {
    fn add_assign(&mut self, o: DecodeStats) {
        self.incomplete_calls += o.incomplete_calls;
        self.missing_bytes += o.missing_bytes;
        self.stray_chunks += o.stray_chunks;
        self.unknown_records += o.unknown_records;
        self.shed += o.shed;
    }
}

/// Turns the records of one loaded object into items, in order.
/// `now_ns` is the dispatcher's monotonic clock (for what waits).
pub trait Decoder: Send {
    /// One record; what it completes goes to `out`.
    fn push(&mut self, rec: Record, now_ns: u64, out: &mut Vec<Item>);
    /// Called periodically while `waiting`: what has waited too long goes
    /// to `out`.
    fn tick(&mut self, now_ns: u64, out: &mut Vec<Item>);
    /// Something waits for time to pass (a partial call): `tick` has work.
    /// An idle tool does not tick.
    fn waiting(&self) -> bool;
    /// At the end: everything pending goes to `out`.
    fn finish(&mut self, out: &mut Vec<Item>);
    fn stats(&self) -> DecodeStats;
    /// Why a connection of this object's has no keys when none of its
    /// secrets came (said in the key log's summary).
    fn keys_missing_why(&self) -> &'static str {
        NO_SECRETS
    }
}

/// `Decoder::keys_missing_why` when the module says nothing more precise.
pub const NO_SECRETS: &str = "no secrets read (a handshake before ecapture started, or a library whose secrets are not read)";
