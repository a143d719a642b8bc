//! One error type for the whole program: a message that already says what
//! failed and why, and whether the user (exit 2) or the run (exit 1) is at
//! fault. Errors travel up to `main`, which alone prints them and exits.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad command line: exit status 2.
    Usage,
    /// Failure while running: exit status 1.
    Runtime,
}

#[derive(Debug)]
pub struct Error {
    kind: Kind,
    msg: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn usage(msg: impl Into<String>) -> Error {
        Error { kind: Kind::Usage, msg: msg.into() }
    }

    pub fn runtime(msg: impl Into<String>) -> Error {
        Error { kind: Kind::Runtime, msg: msg.into() }
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Runtime => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// Adds what we were doing to a lower-level error.
pub trait Context<T> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context<F: FnOnce() -> String>(self, what: F) -> Result<T> {
        self.map_err(|e| Error::runtime(format!("{}: {e}", what())))
    }
}
