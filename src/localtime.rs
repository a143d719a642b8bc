//! Local time without a date crate: the UTC offset at a given instant, from
//! the TZif file the system uses (`$TZ` naming a zone, else
//! /etc/localtime), including the POSIX rule in the file's footer that
//! covers instants after its last transition. Used to name rotated files
//! (SPEC §5.1: `name-YYYY-MM-DDTHH-MM-SS.mmm.ext`, local time). When no zone
//! can be read, local time is UTC.

use std::path::Path;

/// A time zone: transitions (UTC seconds → offset) and the rule after them.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    transitions: Vec<(i64, i32)>,
    /// Offset before the first transition.
    initial: i32,
    rule: Option<Rule>,
}

/// A POSIX TZ rule: standard offset, and optionally DST with its dates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    std_offset: i32,
    dst: Option<(i32, DateRule, i32, DateRule, i32)>, // offset, start, start time, end, end time
}

/// `Mm.w.d`: day d (0 = Sunday) of week w (5 = last) of month m.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateRule {
    month: u32,
    week: u32,
    weekday: u32,
}

impl Zone {
    pub const UTC: Zone = Zone { transitions: Vec::new(), initial: 0, rule: None };

    /// The system's zone: `$TZ` (a zone name, `:name`, or a path), else
    /// /etc/localtime; UTC when neither can be read.
    pub fn system() -> Zone {
        if let Ok(tz) = std::env::var("TZ") {
            let tz = tz.trim_start_matches(':');
            if tz.is_empty() || tz == "UTC" || tz == "UTC0" || tz == "GMT" {
                return Zone::UTC;
            }
            let path = if tz.starts_with('/') { tz.to_string() } else { format!("/usr/share/zoneinfo/{tz}") };
            if let Some(z) = Zone::from_file(Path::new(&path)) {
                return z;
            }
            if let Some(rule) = parse_rule(tz) {
                return Zone { transitions: Vec::new(), initial: rule.std_offset, rule: Some(rule) };
            }
        }
        Zone::from_file(Path::new("/etc/localtime")).unwrap_or(Zone::UTC)
    }

    pub fn from_file(path: &Path) -> Option<Zone> {
        Zone::parse(&std::fs::read(path).ok()?)
    }

    /// Parses TZif (versions 1 to 4): the 64-bit block when there is one.
    pub fn parse(data: &[u8]) -> Option<Zone> {
        let hdr = |d: &[u8]| -> Option<[usize; 6]> {
            if d.get(..4)? != b"TZif" {
                return None;
            }
            let n = |i: usize| u32::from_be_bytes([d[20 + 4 * i], d[21 + 4 * i], d[22 + 4 * i], d[23 + 4 * i]]) as usize;
            d.get(..44)?;
            // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
            Some([n(0), n(1), n(2), n(3), n(4), n(5)])
        };
        let [isut, isstd, leap, timecnt, typecnt, charcnt] = hdr(data)?;
        let version = data[4];
        let v1_len = 44 + timecnt * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
        let (block, tsize) = if version >= b'2' { (data.get(v1_len..)?, 8) } else { (data, 4) };
        let [isut, isstd, leap, timecnt, typecnt, charcnt] = hdr(block)?;
        let mut at = 44;
        let times = block.get(at..at + timecnt * tsize)?;
        at += timecnt * tsize;
        let idx = block.get(at..at + timecnt)?;
        at += timecnt;
        let types = block.get(at..at + typecnt * 6)?;
        at += typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        let offset_of = |t: usize| -> Option<i32> {
            let o = types.get(t * 6..t * 6 + 4)?;
            Some(i32::from_be_bytes([o[0], o[1], o[2], o[3]]))
        };
        let mut transitions = Vec::with_capacity(timecnt);
        for i in 0..timecnt {
            let t = if tsize == 8 {
                i64::from_be_bytes(times[i * 8..i * 8 + 8].try_into().ok()?)
            } else {
                i32::from_be_bytes(times[i * 4..i * 4 + 4].try_into().ok()?) as i64
            };
            transitions.push((t, offset_of(idx[i] as usize)?));
        }
        let initial = offset_of(0).unwrap_or(0);
        // The footer: "\nPOSIX-TZ\n".
        let rule = if version >= b'2' {
            let footer = block.get(at..)?;
            let s = std::str::from_utf8(footer).ok()?.trim_matches('\n');
            parse_rule(s)
        } else {
            None
        };
        Some(Zone { transitions, initial, rule })
    }

    /// Seconds east of UTC at `unix_secs`.
    pub fn offset_at(&self, unix_secs: i64) -> i32 {
        match self.transitions.partition_point(|&(t, _)| t <= unix_secs) {
            0 if self.transitions.is_empty() => self.rule.as_ref().map_or(self.initial, |r| r.offset_at(unix_secs)),
            0 => self.initial,
            i if i == self.transitions.len() => match &self.rule {
                Some(r) => r.offset_at(unix_secs),
                None => self.transitions[i - 1].1,
            },
            i => self.transitions[i - 1].1,
        }
    }
}

/// Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn year_of(unix_secs: i64) -> i64 {
    crate::time::civil(unix_secs).0
}

impl DateRule {
    /// The day (days since epoch) this rule names in `year`.
    fn day(&self, year: i64) -> i64 {
        let first = days_from_civil(year, self.month, 1);
        let first_wd = (first + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
        let mut day = first + ((self.weekday + 7 - first_wd) % 7) as i64 + 7 * (self.week as i64 - 1);
        let next_month = if self.month == 12 { days_from_civil(year + 1, 1, 1) } else { days_from_civil(year, self.month + 1, 1) };
        while day >= next_month {
            day -= 7;
        }
        day
    }
}

impl Rule {
    fn offset_at(&self, unix_secs: i64) -> i32 {
        let Some((dst_off, start, start_t, end, end_t)) = &self.dst else { return self.std_offset };
        let y = year_of(unix_secs + self.std_offset as i64);
        // Transition instants in UTC: start is given in standard time, end in DST.
        let s = start.day(y) * 86_400 + *start_t as i64 - self.std_offset as i64;
        let e = end.day(y) * 86_400 + *end_t as i64 - *dst_off as i64;
        let in_dst = if s < e { unix_secs >= s && unix_secs < e } else { unix_secs >= s || unix_secs < e };
        if in_dst {
            *dst_off
        } else {
            self.std_offset
        }
    }
}

/// Parses a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" or
/// "<+0530>-5:30"; only the M (month/week/day) date form is supported.
fn parse_rule(s: &str) -> Option<Rule> {
    let mut p = s.as_bytes();
    let name = |p: &mut &[u8]| -> Option<()> {
        if p.first() == Some(&b'<') {
            let end = p.iter().position(|&c| c == b'>')?;
            *p = &p[end + 1..];
        } else {
            let n = p.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            if n < 3 {
                return None;
            }
            *p = &p[n..];
        }
        Some(())
    };
    // [+-]hh[:mm[:ss]] → seconds (POSIX sign: west positive).
    let hms = |p: &mut &[u8]| -> Option<i32> {
        let mut sign = 1;
        if let Some(&c) = p.first() {
            if c == b'+' || c == b'-' {
                sign = if c == b'-' { -1 } else { 1 };
                *p = &p[1..];
            }
        }
        let mut parts = [0i32; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            if i > 0 {
                if p.first() != Some(&b':') {
                    break;
                }
                *p = &p[1..];
            }
            let n = p.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            *part = std::str::from_utf8(&p[..n]).ok()?.parse().ok()?;
            *p = &p[n..];
        }
        Some(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]))
    };
    name(&mut p)?;
    let std_offset = -hms(&mut p)?;
    if p.is_empty() {
        return Some(Rule { std_offset, dst: None });
    }
    name(&mut p)?;
    let dst_offset = if p.first().is_some_and(|c| *c != b',') { -hms(&mut p)? } else { std_offset + 3600 };
    let date = |p: &mut &[u8]| -> Option<(DateRule, i32)> {
        if p.first() != Some(&b',') || p.get(1) != Some(&b'M') {
            return None;
        }
        *p = &p[2..];
        let mut nums = [0u32; 3];
        for (i, n) in nums.iter_mut().enumerate() {
            if i > 0 {
                if p.first() != Some(&b'.') {
                    return None;
                }
                *p = &p[1..];
            }
            let k = p.iter().take_while(|c| c.is_ascii_digit()).count();
            *n = std::str::from_utf8(&p[..k]).ok()?.parse().ok()?;
            *p = &p[k..];
        }
        let time = if p.first() == Some(&b'/') {
            *p = &p[1..];
            hms(p)?
        } else {
            7200
        };
        if !(1..=12).contains(&nums[0]) || !(1..=5).contains(&nums[1]) || nums[2] > 6 {
            return None;
        }
        Some((DateRule { month: nums[0], week: nums[1], weekday: nums[2] }, time))
    };
    let (start, start_t) = date(&mut p)?;
    let (end, end_t) = date(&mut p)?;
    Some(Rule { std_offset, dst: Some((dst_offset, start, start_t, end, end_t)) })
}

/// `YYYY-MM-DDTHH-MM-SS.mmm` in `zone` at `unix_ns`: the stamp of a rotated file.
pub fn file_stamp(zone: &Zone, unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let ms = unix_ns.rem_euclid(1_000_000_000) / 1_000_000;
    let local = secs + zone.offset_at(secs) as i64;
    let (y, mo, d) = crate::time::civil(local);
    let sod = local.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}-{:02}-{:02}.{ms:03}", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rules() {
        let cet = parse_rule("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // 2026-01-15 12:00 UTC: winter, +1h. 2026-07-15: summer, +2h.
        assert_eq!(cet.offset_at(1_768_478_400), 3600);
        assert_eq!(cet.offset_at(1_784_116_800), 7200);
        // Europe switches on 2026-03-29 at 01:00 UTC and back on 2026-10-25 at 01:00 UTC.
        assert_eq!(cet.offset_at(1_774_746_000 - 1), 3600);
        assert_eq!(cet.offset_at(1_774_746_000), 7200);
        assert_eq!(cet.offset_at(1_792_890_000 - 1), 7200);
        assert_eq!(cet.offset_at(1_792_890_000), 3600);
        let ny = parse_rule("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(ny.offset_at(1_784_116_800), -4 * 3600);
        assert_eq!(ny.offset_at(1_768_478_400), -5 * 3600);
        assert_eq!(parse_rule("<+0530>-5:30").unwrap().offset_at(0), 5 * 3600 + 1800);
        assert_eq!(parse_rule("UTC0").unwrap().offset_at(123), 0);
        // Southern hemisphere: DST spans the new year.
        let syd = parse_rule("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(syd.offset_at(1_768_478_400), 11 * 3600, "January is summer");
        assert_eq!(syd.offset_at(1_784_116_800), 10 * 3600, "July is winter");
        assert_eq!(parse_rule("x"), None);
    }

    #[test]
    fn tzif_from_the_system_when_present() {
        // Debian's tzdata; skip the check where it is not installed.
        let Some(z) = Zone::from_file(Path::new("/usr/share/zoneinfo/Europe/Berlin")) else { return };
        assert_eq!(z.offset_at(1_768_478_400), 3600);
        assert_eq!(z.offset_at(1_784_116_800), 7200);
        assert_eq!(z.offset_at(0), 3600, "1970");
        if let Some(u) = Zone::from_file(Path::new("/usr/share/zoneinfo/UTC")) {
            assert_eq!(u.offset_at(1_784_116_800), 0);
        }
    }

    #[test]
    fn stamps() {
        assert_eq!(file_stamp(&Zone::UTC, 1_796_045_418_123_456_789), "2026-11-30T13-30-18.123");
        let cet = Zone { transitions: vec![], initial: 3600, rule: parse_rule("CET-1CEST,M3.5.0,M10.5.0/3") };
        assert_eq!(file_stamp(&cet, 1_796_045_418_123_456_789), "2026-11-30T14-30-18.123");
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
