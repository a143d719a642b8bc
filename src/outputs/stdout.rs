//! Messages rendered to standard output (the default output).

use std::io::{self, BufWriter, Write};

use super::Output;
use crate::event::Message;
use crate::format::Render;
use crate::sys::os::StopNotifier;

/// Rendered messages to a writer. A write error (a closed pipe, a full
/// disk) ends output: capture stops cleanly instead of failing on every
/// message.
pub struct Stdout {
    render: Render,
    out: BufWriter<Box<dyn Write + Send>>,
    broken: bool,
    stop: StopNotifier,
}

impl Stdout {
    /// Writes to standard output; `stop` asks main to stop when it closes.
    pub fn new(render: Render, stop: StopNotifier) -> Stdout {
        Stdout::to(render, stdout_unbuffered(), stop)
    }

    pub fn to(render: Render, out: Box<dyn Write + Send>, stop: StopNotifier) -> Stdout {
        Stdout { render, out: BufWriter::with_capacity(64 << 10, out), broken: false, stop }
    }

    fn fail(&mut self, e: io::Error) {
        self.broken = true;
        if e.kind() == io::ErrorKind::BrokenPipe {
            log::info!("output closed; stopping");
        } else {
            log::error!("cannot write events: {e}; stopping");
        }
        self.stop.request();
    }
}

impl Output for Stdout {
    fn message(&mut self, m: &Message) {
        if self.broken {
            return;
        }
        if let Err(e) = self.render.write(&mut self.out, m) {
            self.fail(e);
        }
    }

    /// Batch writes while messages keep coming; flush once caught up.
    fn flush(&mut self) {
        if !self.broken {
            if let Err(e) = self.out.flush() {
                self.fail(e);
            }
        }
    }
}

/// Standard output without std's line buffering: the output buffers whole
/// messages itself, and `Stdout`'s LineWriter would search every block for
/// its last newline (8% of the dispatcher's time on bulk transfers). A
/// duplicate of fd 1, so the output stays open even if std's handle closes.
pub(crate) fn stdout_unbuffered() -> Box<dyn Write + Send> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}
