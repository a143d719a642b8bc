//! Reassembly of one read or write call from its chunk records.
//!
//! The BPF side splits a call's payload into CHUNK_DATA_SIZE pieces, sent in
//! offset order, each tagged with the call's thread and time (together, the
//! call's identity: a thread makes one call at a time). Records of
//! different calls can interleave (other CPUs, preemption), so partial calls
//! are kept by id. A chunk lost on the way (a full ring)
//! leaves a hole that is recorded as a missing range, never papered over; a
//! call whose last chunks never come is emitted incomplete after `max_age`.

use std::collections::VecDeque;

use crate::fasthash::{FastMap, FastSet};
use std::ops::Range;

use crate::capture::record::ChunkHdr;

/// A reassembled call: the first chunk's header, the payload
/// (`captured_len` bytes, zeros where `missing`), and the lost ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub hdr: ChunkHdr,
    pub payload: Vec<u8>,
    pub missing: Vec<Range<u32>>,
}

struct Partial {
    hdr: ChunkHdr,
    payload: Vec<u8>,
    next_off: u32,
    missing: Vec<Range<u32>>,
    last_ns: u64,
}

impl Partial {
    fn finish(mut self) -> Call {
        let cap = self.hdr.captured_len;
        if self.next_off < cap {
            self.missing.push(self.next_off..cap);
        }
        self.payload.resize(cap as usize, 0);
        Call { hdr: self.hdr, payload: self.payload, missing: self.missing }
    }
}

/// Counters of what reassembly saw go wrong.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Calls emitted with holes.
    pub incomplete_calls: u64,
    /// Payload bytes in those holes.
    pub missing_bytes: u64,
    /// Chunks that arrived for a call already emitted, or twice.
    pub stray_chunks: u64,
    /// Partial calls emitted early to stay within the budget.
    pub shed: u64,
}

/// A call: (thread, the time its chunks were made).
type CallKey = (u64, u64);

pub struct Reassembler {
    partial: FastMap<CallKey, Partial>,
    /// Ids of calls emitted incomplete, so a straggler chunk is not taken
    /// for a new call.
    closed: VecDeque<CallKey>,
    closed_set: FastSet<CallKey>,
    max_partials: usize,
    /// Bytes the partial calls may hold together; what they hold.
    budget: usize,
    held: usize,
    stats: ReassemblyStats,
}

const CLOSED_MEMORY: usize = 4096;

impl Reassembler {
    /// At most `max_partials` calls are reassembled at once, holding at
    /// most `budget` bytes together (but always one call whole): beyond,
    /// the oldest partial call is emitted incomplete.
    pub fn new(max_partials: usize, budget: usize) -> Reassembler {
        Reassembler {
            partial: FastMap::default(),
            closed: VecDeque::new(),
            closed_set: FastSet::default(),
            max_partials: max_partials.max(1),
            budget,
            held: 0,
            stats: ReassemblyStats::default(),
        }
    }

    /// Bytes the partial calls hold.
    pub fn held(&self) -> usize {
        self.held
    }

    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// No partial call waits (`expire` has nothing to do).
    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }

    /// Adds one chunk (already validated by `ChunkHdr::parse`); completed
    /// calls are appended to `out`. `now_ns` is any monotonic clock.
    /// The chunk's bytes are taken by value: a call in one chunk (the
    /// common case) keeps them without a copy.
    pub fn push(&mut self, hdr: ChunkHdr, data: Vec<u8>, now_ns: u64, out: &mut Vec<Call>) {
        let id = (hdr.call_id, hdr.ts_ns);
        if !self.partial.contains_key(&id) {
            if self.closed_set.contains(&id) {
                self.stats.stray_chunks += 1;
                return;
            }
            // The common case: the whole call in one chunk.
            if hdr.chunk_off == 0 && hdr.chunk_len == hdr.captured_len {
                out.push(Call { payload: data, hdr, missing: Vec::new() });
                return;
            }
            // Room for this call: the oldest partial calls go out first.
            while !self.partial.is_empty()
                && (self.partial.len() >= self.max_partials || self.held + hdr.captured_len as usize > self.budget)
            {
                if let Some(oldest) = self.partial.iter().min_by_key(|(_, p)| p.last_ns).map(|(k, _)| *k) {
                    self.stats.shed += 1;
                    self.emit_incomplete(oldest, out);
                }
            }
            let mut missing = Vec::new();
            if hdr.chunk_off > 0 {
                missing.push(0..hdr.chunk_off);
            }
            let mut payload = Vec::with_capacity(hdr.captured_len as usize);
            payload.resize(hdr.chunk_off as usize, 0);
            payload.extend_from_slice(&data);
            let next_off = hdr.chunk_off + hdr.chunk_len;
            let p = Partial { hdr, payload, next_off, missing, last_ns: now_ns };
            if next_off == p.hdr.captured_len {
                self.finish(p, out);
            } else {
                self.held += p.hdr.captured_len as usize;
                self.partial.insert(id, p);
            }
            return;
        }
        let Some(p) = self.partial.get_mut(&id) else { return };
        if hdr.chunk_off < p.next_off || hdr.captured_len != p.hdr.captured_len {
            self.stats.stray_chunks += 1;
            return;
        }
        if hdr.chunk_off > p.next_off {
            p.missing.push(p.next_off..hdr.chunk_off);
            p.payload.resize(hdr.chunk_off as usize, 0);
        }
        p.payload.extend_from_slice(&data);
        p.next_off = hdr.chunk_off + hdr.chunk_len;
        p.last_ns = now_ns;
        if p.next_off == p.hdr.captured_len {
            if let Some(p) = self.partial.remove(&id) {
                self.held -= p.hdr.captured_len as usize;
                self.finish(p, out);
            }
        }
    }

    /// Emits, incomplete, every partial call that got no chunk for `max_age_ns`.
    pub fn expire(&mut self, now_ns: u64, max_age_ns: u64, out: &mut Vec<Call>) {
        let old: Vec<CallKey> = self
            .partial
            .iter()
            .filter(|(_, p)| now_ns.saturating_sub(p.last_ns) >= max_age_ns)
            .map(|(k, _)| *k)
            .collect();
        for id in old {
            self.emit_incomplete(id, out);
        }
    }

    /// Emits everything still pending (at shutdown), oldest first.
    pub fn flush(&mut self, out: &mut Vec<Call>) {
        let mut ids: Vec<(u64, CallKey)> = self.partial.iter().map(|(k, p)| (p.last_ns, *k)).collect();
        ids.sort_unstable();
        for (_, id) in ids {
            self.emit_incomplete(id, out);
        }
    }

    fn emit_incomplete(&mut self, id: CallKey, out: &mut Vec<Call>) {
        if let Some(p) = self.partial.remove(&id) {
            self.held -= p.hdr.captured_len as usize;
            if self.closed.len() >= CLOSED_MEMORY {
                if let Some(old) = self.closed.pop_front() {
                    self.closed_set.remove(&old);
                }
            }
            self.closed.push_back(id);
            self.closed_set.insert(id);
            self.finish(p, out);
        }
    }

    fn finish(&mut self, p: Partial, out: &mut Vec<Call>) {
        let call = p.finish();
        if !call.missing.is_empty() {
            self.stats.incomplete_calls += 1;
            self.stats.missing_bytes += call.missing.iter().map(|r| (r.end - r.start) as u64).sum::<u64>();
        }
        out.push(call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::record::tests::hdr;

    const C: u32 = 4; // chunk size used in these tests

    /// The chunks of call `id` carrying `payload`, as the BPF side makes them.
    fn chunks(id: u64, payload: &[u8]) -> Vec<(ChunkHdr, Vec<u8>)> {
        payload
            .chunks(C as usize)
            .enumerate()
            .map(|(i, d)| (hdr(id, payload.len() as u32, i as u32 * C, d.len() as u32), d.to_vec()))
            .collect()
    }

    #[test]
    fn single_chunk_is_immediate() {
        let mut r = Reassembler::new(16, usize::MAX);
        let mut out = Vec::new();
        r.push(hdr(1, 3, 0, 3), b"abc".to_vec(), 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"abc");
        assert!(out[0].missing.is_empty());
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn interleaved_calls_reassemble_byte_exact() {
        let a: Vec<u8> = (0..37u8).collect();
        let b: Vec<u8> = (100..130u8).collect();
        let (ca, cb) = (chunks(1, &a), chunks(2, &b));
        let mut r = Reassembler::new(16, usize::MAX);
        let mut out = Vec::new();
        for i in 0..ca.len().max(cb.len()) {
            if let Some((h, d)) = ca.get(i) {
                r.push(h.clone(), d.to_vec(), i as u64, &mut out);
            }
            if let Some((h, d)) = cb.get(i) {
                r.push(h.clone(), d.to_vec(), i as u64, &mut out);
            }
        }
        assert_eq!(out.len(), 2);
        let got: std::collections::HashMap<u64, Vec<u8>> = out.into_iter().map(|c| (c.hdr.call_id, c.payload)).collect();
        assert_eq!(got[&1], a);
        assert_eq!(got[&2], b);
        assert_eq!(r.stats(), ReassemblyStats::default());
    }

    #[test]
    fn lost_middle_chunk_is_a_recorded_hole() {
        let a: Vec<u8> = (0..12u8).collect();
        let mut r = Reassembler::new(16, usize::MAX);
        let mut out = Vec::new();
        for (i, (h, d)) in chunks(1, &a).into_iter().enumerate() {
            if i != 1 {
                r.push(h, d.clone(), 0, &mut out);
            }
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].missing, vec![4..8]);
        assert_eq!(&out[0].payload[..4], &a[..4]);
        assert_eq!(&out[0].payload[4..8], &[0, 0, 0, 0]);
        assert_eq!(&out[0].payload[8..], &a[8..]);
        assert_eq!(r.stats().incomplete_calls, 1);
        assert_eq!(r.stats().missing_bytes, 4);
    }

    #[test]
    fn lost_first_and_last_chunks() {
        let a: Vec<u8> = (0..12u8).collect();
        let cs = chunks(9, &a);
        let mut r = Reassembler::new(16, usize::MAX);
        let mut out = Vec::new();
        r.push(cs[1].0.clone(), cs[1].1.clone(), 10, &mut out);
        assert!(out.is_empty());
        r.expire(15, 10, &mut out);
        assert!(out.is_empty(), "not old enough yet");
        r.expire(20, 10, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].missing, vec![0..4, 8..12]);
        assert_eq!(out[0].payload.len(), 12);
        // A straggler of the emitted call is not a new call.
        r.push(cs[2].0.clone(), cs[2].1.clone(), 30, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(r.stats().stray_chunks, 1);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn duplicate_chunk_is_stray() {
        let a: Vec<u8> = (0..8u8).collect();
        let cs = chunks(3, &a);
        let mut r = Reassembler::new(16, usize::MAX);
        let mut out = Vec::new();
        r.push(cs[0].0.clone(), cs[0].1.clone(), 0, &mut out);
        r.push(cs[0].0.clone(), cs[0].1.clone(), 0, &mut out);
        r.push(cs[1].0.clone(), cs[1].1.clone(), 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, a);
        assert_eq!(r.stats().stray_chunks, 1);
    }

    #[test]
    fn bounded_partials_evict_oldest_and_flush_emits_rest() {
        let mut r = Reassembler::new(2, usize::MAX);
        let mut out = Vec::new();
        for id in 0..3u64 {
            let (h, d) = chunks(id, &[7u8; 8]).remove(0);
            r.push(h, d.clone(), id, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].hdr.call_id, 0, "oldest evicted");
        assert_eq!(r.pending(), 2);
        r.flush(&mut out);
        assert_eq!(out.iter().map(|c| c.hdr.call_id).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.stats().incomplete_calls, 3);
    }

    #[test]
    fn large_call_of_many_chunks() {
        let a: Vec<u8> = (0..(1u32 << 16)).map(|i| (i * 7 % 251) as u8).collect();
        let mut r = Reassembler::new(16, usize::MAX);
        let mut out = Vec::new();
        for (h, d) in chunks(42, &a) {
            r.push(h, d.clone(), 0, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, a);
    }

    #[test]
    fn partial_calls_stay_within_their_budget() {
        let mut r = Reassembler::new(16, 20);
        let mut out = Vec::new();
        for id in 0..3u64 {
            let (h, d) = chunks(id, &[7u8; 8]).remove(0);
            r.push(h, d.clone(), id, &mut out);
            assert!(r.held() <= 20, "{}", r.held());
        }
        assert_eq!(out.len(), 1, "the oldest went out to make room");
        assert_eq!(out[0].hdr.call_id, 0);
        assert_eq!(r.stats().shed, 1);
        r.flush(&mut out);
        assert_eq!(r.held(), 0);
    }
}
