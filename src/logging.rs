//! Runtime logs: env_logger on stderr, one line each
//! (`<RFC3339 time> <LEVEL> <message>`). `-d` or RUST_LOG=debug for more;
//! libbpf's own messages come through at debug level (target "libbpf").

use std::io::Write;

use crate::time::{now_ns, rfc3339};

pub fn init(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format(|buf, rec| writeln!(buf, "{} {:<5} {}", rfc3339(now_ns()), rec.level(), rec.args()))
        .target(env_logger::Target::Stderr)
        .init();
    crate::sys::libbpf::init_logging();
}
