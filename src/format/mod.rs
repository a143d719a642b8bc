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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::sample_message;

    fn out(f: impl Fn(&mut dyn Write) -> io::Result<()>) -> String {
        let mut v = Vec::new();
        f(&mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn each_rendering_writes_its_format_and_the_body_is_the_text_without_its_header() {
        let m = sample_message(b"hello");
        let text = TextFormat { hex: false, tsize: 0 };
        let (r, j) = (Render::Text(text), Render::Json);
        let whole = out(|w| r.write(w, &m));
        let header = text.header(&m);
        assert_eq!(whole, format!("{header}\n{}", out(|w| r.write_body(w, &m))));
        assert!(whole.contains("hello"), "{whole}");
        let json = out(|w| json::write(w, &m));
        assert!(json.starts_with('{'), "{json}");
        assert_eq!(out(|w| j.write(w, &m)), json);
        assert_eq!(out(|w| j.write_body(w, &m)), json, "JSON has no header to drop");
    }

    #[test]
    fn only_plain_text_shows_decoded_bodies() {
        assert!(Render::Text(TextFormat { hex: false, tsize: 0 }).shows_decoded_bodies());
        assert!(!Render::Text(TextFormat { hex: true, tsize: 0 }).shows_decoded_bodies());
        assert!(!Render::Text(TextFormat { hex: false, tsize: 16 }).shows_decoded_bodies());
        assert!(!Render::Json.shows_decoded_bodies());
    }
}
