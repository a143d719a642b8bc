//! Reading flag values with pico-args, for the global command line (`cli`)
//! and each module's own flags (`modules`): pico-args' errors become ours,
//! one line naming the flag, exit status 2.

use crate::error::{Error, Result};

/// Reads an optional flag value (`--long V`, `--long=V`, `-s V`) through `f`.
pub fn opt<T>(
    p: &mut pico_args::Arguments,
    long: &'static str,
    short: Option<&'static str>,
    f: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Option<T>> {
    let keys: pico_args::Keys = match short {
        Some(s) => [s, long].into(),
        None => long.into(),
    };
    let raw: Option<String> = match p.opt_value_from_str(keys) {
        Ok(v) => v,
        Err(pico_args::Error::OptionWithoutAValue(_)) => return Err(Error::usage(format!("{long} needs a value"))),
        Err(pico_args::Error::NonUtf8Argument) => {
            return Err(Error::usage(format!("invalid value for {long}: not valid UTF-8")))
        }
        Err(e) => return Err(Error::usage(format!("{long}: {e}"))),
    };
    raw.map(|s| f(&s).map_err(|why| Error::usage(format!("invalid value '{s}' for {long}: {why}")))).transpose()
}

/// A string value as it is.
pub fn text(s: &str) -> std::result::Result<String, String> {
    Ok(s.to_string())
}

pub fn parse_uint(s: &str, what: &str) -> std::result::Result<u64, String> {
    s.parse::<u64>().map_err(|_| format!("expected {what}"))
}

/// "4096", "64K", "4M", "1MiB" → bytes.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.trim_end_matches("iB").trim_end_matches('B') {
        x if x.ends_with(['k', 'K']) => (&x[..x.len() - 1], 1u64 << 10),
        x if x.ends_with(['m', 'M']) => (&x[..x.len() - 1], 1u64 << 20),
        x => (x, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| "expected a size in bytes, e.g. 1048576, 512K or 4M".to_string())
}
