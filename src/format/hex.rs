//! `hexdump -C`-style dump: offset, sixteen hex bytes in two groups, ASCII.

use std::io::{self, Write};

/// Writes `data` as a hex dump whose offsets start at `base`.
pub fn dump(w: &mut dyn Write, data: &[u8], base: usize) -> io::Result<()> {
    let mut line = String::with_capacity(80);
    for (i, row) in data.chunks(16).enumerate() {
        line.clear();
        line.push_str(&format!("{:08x}  ", base + i * 16));
        for j in 0..16 {
            match row.get(j) {
                Some(b) => line.push_str(&format!("{b:02x} ")),
                None => line.push_str("   "),
            }
            if j == 7 {
                line.push(' ');
            }
        }
        line.push_str(" |");
        line.extend(row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
        line.push_str("|\n");
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(data: &[u8], base: usize) -> String {
        let mut v = Vec::new();
        dump(&mut v, data, base).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn full_and_partial_rows() {
        let data: Vec<u8> = b"GET / HTTP/1.1\r\nHost".to_vec();
        assert_eq!(
            s(&data, 0),
            "00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  |GET / HTTP/1.1..|\n\
             00000010  48 6f 73 74                                       |Host|\n"
        );
    }

    #[test]
    fn offsets_start_at_base_and_empty_is_empty() {
        assert!(s(&[0xff], 0x1000).starts_with("00001000  ff "));
        assert_eq!(s(&[], 0), "");
    }
}
