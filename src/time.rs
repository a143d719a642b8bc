//! Wall-clock time for events and logs, without a date crate: BPF stamps
//! events with the monotonic clock, and `WallClock` maps that to the Unix
//! epoch; `rfc3339` prints a UTC timestamp.

use crate::sys::os;

/// Maps CLOCK_MONOTONIC (what bpf_ktime_get_ns() reads) to wall-clock ns.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    offset_ns: i64,
}

impl Default for WallClock {
    fn default() -> WallClock {
        WallClock::new()
    }
}

impl WallClock {
    /// Samples both clocks; the realtime read is bracketed by two monotonic
    /// reads and the tightest of a few tries is kept.
    pub fn new() -> WallClock {
        let mut best: Option<(u64, i64)> = None;
        for _ in 0..5 {
            let m1 = os::monotonic_ns();
            let r = os::realtime_ns();
            let m2 = os::monotonic_ns();
            let width = m2.saturating_sub(m1);
            let offset = r - (m1 / 2 + m2 / 2) as i64;
            if best.is_none_or(|(w, _)| width < w) {
                best = Some((width, offset));
            }
        }
        WallClock { offset_ns: best.map_or(0, |(_, o)| o) }
    }

    #[cfg(test)]
    pub fn with_offset(offset_ns: i64) -> WallClock {
        WallClock { offset_ns }
    }

    pub fn to_wall(&self, monotonic_ns: u64) -> i64 {
        (monotonic_ns as i64).saturating_add(self.offset_ns)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) of a Unix time in seconds, UTC.
pub fn civil(unix_secs: i64) -> (i64, u32, u32) {
    civil_from_days(unix_secs.div_euclid(86_400))
}

/// `2026-11-29T13:30:18.123456Z` (UTC, microseconds).
pub fn rfc3339(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let micros = unix_ns.rem_euclid(1_000_000_000) / 1000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Current wall-clock time in ns since the Unix epoch.
pub fn now_ns() -> i64 {
    os::realtime_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(rfc3339(1_796_045_418_123_456_789), "2026-11-30T13:30:18.123456Z");
        assert_eq!(rfc3339(-1_000), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn wall_clock_is_close_to_realtime() {
        let c = WallClock::new();
        let wall = c.to_wall(os::monotonic_ns());
        assert!((wall - os::realtime_ns()).abs() < 50_000_000, "within 50 ms");
        assert_eq!(WallClock::with_offset(10).to_wall(5), 15);
    }
}
