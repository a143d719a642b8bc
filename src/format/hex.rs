//! `hexdump -C`-style dump: offset, sixteen hex bytes in two groups, ASCII.

use std::io::{self, Write};

const HEX: &[u8; 16] = b"0123456789abcdef";
/// One row: "00000000  " + 16 × "xx " + a space after the 8th + " |" + 16 + "|\n".
const ROW: usize = 10 + 16 * 3 + 1 + 2 + 16 + 2;

/// Writes `data` as a hex dump whose offsets start at `base`. Rows are built
/// with table lookups into one buffer and written in large blocks: a
/// megabyte dumps in milliseconds.
pub fn dump(w: &mut dyn Write, data: &[u8], base: usize) -> io::Result<()> {
    let mut buf = Vec::with_capacity((data.len() / 16 + 1).min(1024) * ROW);
    for (i, row) in data.chunks(16).enumerate() {
        let off = base.wrapping_add(i * 16);
        for shift in (0..8).rev() {
            buf.push(HEX[(off >> (shift * 4)) & 0xf]);
        }
        buf.extend_from_slice(b"  ");
        for j in 0..16 {
            match row.get(j) {
                Some(&b) => buf.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize], b' ']),
                None => buf.extend_from_slice(b"   "),
            }
            if j == 7 {
                buf.push(b' ');
            }
        }
        buf.extend_from_slice(b" |");
        buf.extend(row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b } else { b'.' }));
        buf.extend_from_slice(b"|\n");
        if buf.len() >= 1024 * ROW {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
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
