//! ecapture: capture TLS plaintext with eBPF uprobes. `main` parses the
//! command line, runs the chosen module and alone decides the exit status:
//! 0 on a clean stop, 2 for bad usage, 1 for a runtime failure, with one
//! line on stderr saying why.
#![deny(unsafe_code)]

use ecapture::cli::{self, Command};

/// musl's allocator is slow on the capture path (one payload per call);
/// mimalloc makes the static binary as cheap per call as the glibc one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ecapture::{logging, pipeline};

fn main() {
    // mimalloc gives freed memory back at once (set before main; see there).
    ecapture::sys::alloc::ensure_tuned();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match cli::parse(args) {
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            0
        }
        Ok(Command::Version) => {
            println!("ecapture {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Run(cfg)) => {
            logging::init(cfg.global.debug);
            match pipeline::run(&cfg) {
                Ok(_) => 0,
                Err(e) => {
                    eprintln!("ecapture: {e}");
                    e.exit_code()
                }
            }
        }
        Err(e) => {
            eprintln!("ecapture: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
