//! Rendering events for people: pure functions that write into any
//! `io::Write` and know nothing of where the bytes go.

pub mod hex;
pub mod inflate;
pub mod json;
pub mod text;
