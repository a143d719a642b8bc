//! Rendering messages for people and pipelines: pure functions that write
//! into any `io::Write` and know nothing of where the bytes go or which
//! module captured them.

pub mod hex;
pub mod json;
pub mod text;

use std::io::{self, Write};

use crate::event::Message;
use text::TextFormat;

/// How a message becomes text.
#[derive(Debug, Clone, Copy)]
pub enum Render {
    Text(TextFormat),
    Json,
}

impl Render {
    pub fn write(&self, w: &mut dyn Write, m: &Message) -> io::Result<()> {
        match self {
            Render::Text(f) => f.write(w, m),
            Render::Json => json::write(w, m),
        }
    }

    /// The rendering without the header line (JSON has none to drop).
    pub fn write_body(&self, w: &mut dyn Write, m: &Message) -> io::Result<()> {
        match self {
            Render::Text(f) => f.write_body(w, m),
            Render::Json => json::write(w, m),
        }
    }

    /// Whether this rendering shows decoded bodies (de-chunked, decompressed),
    /// which assembly then has to produce.
    pub fn shows_decoded_bodies(&self) -> bool {
        match self {
            Render::Text(f) => f.shows_views(),
            Render::Json => false,
        }
    }
}
