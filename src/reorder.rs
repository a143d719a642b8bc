//! Puts records from the per-CPU rings back into capture order.
//!
//! Each CPU has its own perf ring and reader thread, so two calls of one
//! thread that migrated between CPUs can reach the dispatcher in the wrong
//! order (a run of pipelined requests from the second CPU before the last
//! ones from the first), which breaks message framing. Records are therefore
//! held here and released in timestamp order once no earlier record can
//! still come:
//!
//! - a reader notes the monotonic time `t` before each pass over its ring
//!   and, after handing over every record of that pass, sends `Drained(t)`
//!   through the same channel; every record that reader's ring received
//!   before `t` is then already in the channel, ahead of the marker;
//! - a record's timestamp (taken in the probe just before it is written) is
//!   earlier than the moment it is written; so once every reader has sent a
//!   marker later than a record's timestamp, nothing earlier can follow it.
//!
//! Readers pass over their rings every few milliseconds, which bounds the
//! delay this adds. Calls of one thread never overlap, so their order is
//! their timestamps' order; chunks of one call share a timestamp and keep
//! their arrival order (one ring, one reader).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// More records than this held (a reader stuck mid-pass) are released
/// oldest first without waiting: memory stays bounded.
const MAX_HELD: usize = 1 << 16;

struct Held<T> {
    key: (u64, u64),
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

pub struct Reorder<T> {
    held: BinaryHeap<Reverse<Held<T>>>,
    /// Per reader: the start of its last complete pass.
    drained: Vec<u64>,
    /// Arrival order, the tie-break for equal timestamps.
    seq: u64,
    /// Records released early because too many were held.
    pub forced: u64,
}

impl<T> Reorder<T> {
    pub fn new(readers: usize) -> Reorder<T> {
        Reorder { held: BinaryHeap::new(), drained: vec![0; readers.max(1)], seq: 0, forced: 0 }
    }

    pub fn push(&mut self, ts_ns: u64, item: T) {
        self.seq += 1;
        self.held.push(Reverse(Held { key: (ts_ns, self.seq), item }));
    }

    /// Reader `reader` has handed over everything its ring held at `upto_ns`.
    pub fn drained(&mut self, reader: usize, upto_ns: u64) {
        if let Some(d) = self.drained.get_mut(reader) {
            *d = (*d).max(upto_ns);
        }
    }

    /// The next record no earlier one can precede any more.
    pub fn pop_ready(&mut self) -> Option<T> {
        let safe = self.drained.iter().copied().min().unwrap_or(0);
        let ready = match self.held.peek() {
            Some(Reverse(h)) => h.key.0 < safe || self.held.len() > MAX_HELD,
            None => false,
        };
        if !ready {
            return None;
        }
        let Reverse(h) = self.held.pop()?;
        if h.key.0 >= safe {
            self.forced += 1;
        }
        Some(h.item)
    }

    /// Everything held, oldest first (the readers are gone).
    pub fn pop_any(&mut self) -> Option<T> {
        self.held.pop().map(|Reverse(h)| h.item)
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(r: &mut Reorder<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| r.pop_ready()).collect()
    }

    #[test]
    fn released_in_timestamp_order_once_every_reader_passed() {
        let mut r = Reorder::new(2);
        // CPU 1's reader delivers the thread's later calls first.
        r.push(30, "c");
        r.push(40, "d");
        r.drained(1, 50);
        assert_eq!(ready(&mut r), Vec::<&str>::new(), "reader 0 may still hold earlier records");
        r.push(10, "a");
        r.push(20, "b");
        r.drained(0, 35);
        assert_eq!(ready(&mut r), vec!["a", "b", "c"], "d waits: reader 0 passed only up to 35");
        r.drained(0, 45);
        assert_eq!(ready(&mut r), vec!["d"]);
        assert!(r.is_empty());
        assert_eq!(r.forced, 0);
    }

    #[test]
    fn equal_timestamps_keep_arrival_order_and_markers_never_go_back() {
        let mut r = Reorder::new(1);
        r.push(5, "chunk 0");
        r.push(5, "chunk 1");
        r.push(5, "chunk 2");
        r.drained(0, 9);
        r.drained(0, 3);
        assert_eq!(ready(&mut r), vec!["chunk 0", "chunk 1", "chunk 2"]);
    }

    #[test]
    fn bounded_and_drained_at_the_end() {
        let mut r = Reorder::new(1);
        for i in 0..=MAX_HELD as u64 {
            r.push(1000 + i, "x");
        }
        assert_eq!(r.len(), MAX_HELD + 1);
        assert_eq!(r.pop_ready(), Some("x"), "over the bound: the oldest goes");
        assert_eq!(r.forced, 1);
        assert_eq!(r.pop_ready(), None);
        let mut n = 0;
        while r.pop_any().is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_HELD);
    }
}
