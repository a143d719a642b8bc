//! Tuning of mimalloc, the global allocator of the `ecapture` binary, before
//! anything is allocated.
//!
//! By default mimalloc keeps freed memory committed for a while (purging is
//! delayed, arenas are committed eagerly) so that the next allocation is
//! cheap. ecapture's memory budget (`--max-memory`) bounds what it holds, but
//! hostile traffic can make it hold, free and hold again: memory kept back
//! by the allocator then adds to the peak RSS (an HTTP/2 stream of
//! never-finished frames on many connections peaked at 55 MiB instead of
//! 31 MiB). So arenas are committed on demand and freed pages are given
//! back at once.
//!
//! The options are set from an `.init_array` constructor, which the C
//! runtime calls before `main` and before Rust allocates anything;
//! `ensure_tuned` (called first thing in `main`) keeps this object file in
//! the link and sets them again should the constructor not have run.

use libmimalloc_sys as mi;

/// `mi_option_arena_eager_commit` (mimalloc 3's `mi_option_e`; the crate
/// names only some options): 0 = commit arena memory when it is used.
pub const ARENA_EAGER_COMMIT: mi::mi_option_t = 4;
/// `mi_option_purge_delay`: milliseconds before freed memory is purged
/// (returned to the OS); 0 = at once.
pub const PURGE_DELAY: mi::mi_option_t = 15;

/// The values set.
pub const TUNING: [(mi::mi_option_t, std::ffi::c_long); 2] = [(ARENA_EAGER_COMMIT, 0), (PURGE_DELAY, 0)];

extern "C" fn tune() {
    for (option, value) in TUNING {
        // SAFETY: mi_option_set only stores a value in mimalloc's option
        // table; it may be called at any time, before mimalloc's own init.
        unsafe { mi::mi_option_set(option, value) };
    }
}

/// Run by the C runtime (glibc and musl alike) before `main`.
#[used]
#[link_section = ".init_array"]
static TUNE_AT_START: extern "C" fn() = tune;

/// Whether mimalloc runs with `TUNING`.
pub fn tuned() -> bool {
    // SAFETY: mi_option_get reads mimalloc's option table.
    TUNING.iter().all(|&(option, value)| unsafe { mi::mi_option_get(option) } == value)
}

/// Makes sure the tuning is in place (it is, from the constructor); sets it
/// now if not.
pub fn ensure_tuned() {
    if !tuned() {
        tune();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_back_as_set_before_main() {
        // The constructor ran before the test harness started: nothing here sets them.
        for (option, value) in TUNING {
            // SAFETY: as in `tuned`.
            assert_eq!(unsafe { mi::mi_option_get(option) }, value, "option {option}");
        }
        assert!(tuned());
    }

    #[test]
    fn option_numbers_match_the_crates_neighbours() {
        // mimalloc.h: ..., arena_eager_commit (4), purge_decommits, allow_large_os_pages (6), ...,
        // purge_delay (15), use_numa_nodes (16): pinned to the ones the crate names.
        assert_eq!(ARENA_EAGER_COMMIT + 2, mi::mi_option_large_os_pages);
        assert_eq!(PURGE_DELAY + 1, mi::mi_option_use_numa_nodes);
        assert_eq!(mi::mi_option_reserve_os_memory, 9);
    }
}
