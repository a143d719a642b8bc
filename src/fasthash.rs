//! A fast keyed hash for the pipeline's maps, looked up several times per
//! captured call: std's SipHash costs more than the rest of the lookup.
//! Keys are seeded per process (from std's random source), so a traced
//! process cannot precompute colliding keys (connection pointers, thread
//! ids) to slow the maps down.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// A map with the fast keyed hash.
pub type FastMap<K, V> = HashMap<K, V, Seeded>;
pub type FastSet<K> = HashSet<K, Seeded>;

/// The per-process seed.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    key: u64,
}

impl Default for Seeded {
    fn default() -> Seeded {
        static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let key = *KEY.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1);
        Seeded { key }
    }
}

impl BuildHasher for Seeded {
    type Hasher = Fold;
    fn build_hasher(&self) -> Fold {
        Fold { h: self.key }
    }
}

/// The full 128-bit product of a and b, its halves folded together.
fn fold(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

pub struct Fold {
    h: u64,
}

impl Hasher for Fold {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.h = fold(self.h ^ v, 0x9e37_79b9_7f4a_7c15);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        fold(self.h, 0xa076_1d64_78bd_642f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keys_spread() {
        let mut m: FastMap<(u32, u64), u32> = FastMap::default();
        for i in 0..10_000u64 {
            m.insert((i as u32 % 7, i * 4096), i as u32);
        }
        assert_eq!(m.len(), 10_000);
        assert_eq!(m[&(3, 10 * 4096)], 10);
        let s = Seeded::default();
        assert_ne!(s.hash_one((1u32, 2u64)), s.hash_one((2u32, 1u64)));
    }
}
