//! Runtime logs: one line each on stderr (`<RFC3339 time> <LEVEL> <message>`),
//! filtered like env_logger (`-d`, or RUST_LOG).
//!
//! Every line is also kept for eCaptureQ (SPEC §5.2): the first
//! `REPLAY_STARTUP` lines and the latest `REPLAY_RECENT` are replayed to a
//! client when it connects, and subscribers (the eCaptureQ hub, a
//! `--logaddr` sink) receive every line as it is logged. One lock orders all of it, so a client never
//! misses a line between its replay and the live stream, nor sees one twice.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::time::{now_ns, rfc3339};

pub const REPLAY_STARTUP: usize = 128;
pub const REPLAY_RECENT: usize = 128;

/// Receives every log line (without a trailing newline). Called with the
/// log book locked: it must not log.
pub trait LogSubscriber: Send + Sync {
    fn line(&self, line: &str);
}

struct Book {
    startup: Vec<String>,
    recent: VecDeque<String>,
    subscribers: Vec<(u64, Arc<dyn LogSubscriber>)>,
    next_id: u64,
}

static BOOK: Mutex<Book> =
    Mutex::new(Book { startup: Vec::new(), recent: VecDeque::new(), subscribers: Vec::new(), next_id: 1 });

fn book() -> MutexGuard<'static, Book> {
    BOOK.lock().unwrap_or_else(|e| e.into_inner())
}

impl Book {
    fn push(&mut self, line: &str) {
        if self.startup.len() < REPLAY_STARTUP {
            self.startup.push(line.to_string());
        } else {
            if self.recent.len() >= REPLAY_RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(line.to_string());
        }
    }
}

/// Records a line: stderr, the replay book, the subscriber.
fn record(line: &str) {
    let b = &mut *book();
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    b.push(line);
    for (_, s) in &b.subscribers {
        s.line(line);
    }
}

/// Runs `f` on the lines to replay (startup lines, then the most recent
/// ones), atomically with respect to new lines: what `f` registers sees
/// every later line through the subscriber and none of these again.
/// `f` must not log.
pub fn with_replay<R>(f: impl FnOnce(&mut dyn Iterator<Item = &str>) -> R) -> R {
    let b = book();
    let mut lines = b.startup.iter().chain(b.recent.iter()).map(String::as_str);
    f(&mut lines)
}

/// Sends every later line to `s` too; the id is for `unsubscribe`.
pub fn subscribe(s: Arc<dyn LogSubscriber>) -> u64 {
    let mut b = book();
    let id = b.next_id;
    b.next_id += 1;
    b.subscribers.push((id, s));
    id
}

pub fn unsubscribe(id: u64) {
    book().subscribers.retain(|(i, _)| *i != id);
}

struct Logger {
    filter: env_logger::Logger,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        self.filter.enabled(m)
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.filter.matches(r) {
            // Messages may quote what traced processes control (library
            // paths, process names): nothing a terminal would act on passes.
            // libbpf's messages (verifier logs, with -d) keep their lines.
            let msg = r.args().to_string();
            let msg = if r.target() == "libbpf" {
                msg.split('\n').map(|l| crate::format::text::term_safe(l).into_owned()).collect::<Vec<_>>().join("\n")
            } else {
                crate::format::text::term_safe(&msg).into_owned()
            };
            record(&format!("{} {:<5} {}", rfc3339(now_ns()), r.level(), msg));
        }
    }

    fn flush(&self) {}
}

/// Installs the logger: `info` by default, `debug` with -d, RUST_LOG wins.
pub fn init(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).build();
    let max = filter.filter();
    if log::set_boxed_logger(Box::new(Logger { filter })).is_ok() {
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn book_keeps_startup_and_recent_lines() {
        let mut b = Book { startup: Vec::new(), recent: VecDeque::new(), subscribers: Vec::new(), next_id: 1 };
        for i in 0..(REPLAY_STARTUP + REPLAY_RECENT + 10) {
            b.push(&format!("line {i}"));
        }
        assert_eq!(b.startup.len(), REPLAY_STARTUP);
        assert_eq!(b.startup[0], "line 0");
        assert_eq!(b.recent.len(), REPLAY_RECENT);
        assert_eq!(b.recent.front().unwrap(), &format!("line {}", REPLAY_STARTUP + 10));
        assert_eq!(b.recent.back().unwrap(), &format!("line {}", REPLAY_STARTUP + REPLAY_RECENT + 9));
    }

    struct Count(AtomicUsize);
    impl LogSubscriber for Count {
        fn line(&self, _: &str) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn subscriber_sees_lines_recorded_after_subscribing() {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        record("before");
        let id = subscribe(c.clone());
        record("after 1");
        record("after 2");
        unsubscribe(id);
        record("after unsubscribe");
        assert_eq!(c.0.load(Ordering::SeqCst), 2);
        assert!(with_replay(|lines| lines.filter(|l| *l == "before").count() == 1));
    }
}
