//! HPACK (RFC 7541) decoding: integers, string literals (plain or Huffman),
//! the static table and a dynamic table with eviction and size updates.
//! One `Decoder` per connection and direction lives as long as the
//! connection, so every header block of a long connection decodes — the
//! dynamic table carries state from one block to the next.

use std::collections::VecDeque;
use std::fmt;
use std::sync::OnceLock;

use super::hpack_tables::{HUFFMAN, STATIC};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpackError {
    Truncated,
    IntegerOverflow,
    BadIndex(u64),
    Huffman,
    TableSizeTooLarge(u64),
    /// A dynamic table size update after the first header field.
    LateSizeUpdate,
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("truncated header block"),
            HpackError::IntegerOverflow => f.write_str("integer overflow"),
            HpackError::BadIndex(i) => write!(f, "no table entry {i}"),
            HpackError::Huffman => f.write_str("invalid Huffman code"),
            HpackError::TableSizeTooLarge(s) => write!(f, "dynamic table size {s} too large"),
            HpackError::LateSizeUpdate => f.write_str("table size update after a header field"),
        }
    }
}

/// A decoded header field (names and values may be any bytes).
pub use crate::event::view::Field;

/// The largest dynamic table accepted: a size update beyond what the
/// receiving side's SETTINGS_HEADER_TABLE_SIZE allowed, or beyond this when
/// that SETTINGS was not seen (capture started later), is an error, and a
/// SETTINGS above it counts as this. Browsers and servers use 4 KiB to 64 KiB.
pub const MAX_ALLOWED_TABLE: usize = 64 << 10;
/// Decoded bytes (names and values) kept of one header block. Beyond, the
/// block is still parsed, so the table stays in step, but fields are not
/// kept: a one-byte reference to a table entry cannot make ecapture copy
/// kilobytes over and over.
pub const MAX_LIST_BYTES: usize = 64 << 10;

pub struct Decoder {
    /// Newest first, as HPACK indexes it.
    table: VecDeque<Field>,
    size: usize,
    max_size: usize,
    /// What the receiving side's SETTINGS allowed, when seen.
    allowed: Option<usize>,
    /// The last block's list was cut at MAX_LIST_BYTES.
    cut: bool,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

fn entry_size(f: &Field) -> usize {
    f.0.len() + f.1.len() + 32
}

/// An integer with an `n`-bit prefix (RFC 7541 §5.1), from `buf[*at]` on.
fn integer(buf: &[u8], at: &mut usize, n: u8) -> Result<u64, HpackError> {
    let mask = (1u16 << n) as u64 - 1;
    let first = *buf.get(*at).ok_or(HpackError::Truncated)? as u64 & mask;
    *at += 1;
    if first < mask {
        return Ok(first);
    }
    let mut value = mask;
    let mut shift = 0;
    loop {
        let b = *buf.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        if shift > 56 {
            return Err(HpackError::IntegerOverflow);
        }
        value = value.checked_add(((b & 0x7f) as u64) << shift).ok_or(HpackError::IntegerOverflow)?;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Keeps a field while the list is under MAX_LIST_BYTES.
fn keep(f: Field, out: &mut Vec<Field>, kept: &mut usize, cut: &mut bool) {
    let n = f.0.len() + f.1.len();
    if *cut || *kept + n > MAX_LIST_BYTES {
        *cut = true;
    } else {
        *kept += n;
        out.push(f);
    }
}

/// The Huffman decoding tree: node i has children tree[i].0 / .1; a leaf is
/// marked by a symbol (0..=256).
struct Tree {
    nodes: Vec<[i32; 2]>,
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        // Children: >= 0 another node, < 0 a leaf for symbol -(c + 1), 0 unset.
        let mut nodes = vec![[0i32; 2]];
        for (sym, &(code, len)) in HUFFMAN.iter().enumerate() {
            let mut at = 0usize;
            for i in (0..len).rev() {
                let bit = ((code >> i) & 1) as usize;
                if i == 0 {
                    nodes[at][bit] = -(sym as i32 + 1);
                } else {
                    if nodes[at][bit] <= 0 {
                        nodes.push([0, 0]);
                        let n = nodes.len() - 1;
                        nodes[at][bit] = n as i32;
                    }
                    at = nodes[at][bit] as usize;
                }
            }
        }
        Tree { nodes }
    })
}

/// Huffman-decodes `data` (RFC 7541 §5.2: padding is up to 7 one-bits).
pub fn huffman_decode(data: &[u8]) -> Result<Vec<u8>, HpackError> {
    let t = tree();
    let mut out = Vec::with_capacity(data.len() * 8 / 5);
    let mut node = 0usize;
    let (mut depth, mut all_ones) = (0u32, true);
    for &byte in data {
        for i in (0..8).rev() {
            let bit = ((byte >> i) & 1) as usize;
            let next = t.nodes[node][bit];
            depth += 1;
            all_ones &= bit == 1;
            if next < 0 {
                let sym = (-next - 1) as usize;
                if sym == 256 {
                    return Err(HpackError::Huffman); // EOS in a string
                }
                out.push(sym as u8);
                node = 0;
                depth = 0;
                all_ones = true;
            } else if next == 0 {
                return Err(HpackError::Huffman);
            } else {
                node = next as usize;
            }
        }
    }
    if depth > 7 || !all_ones {
        return Err(HpackError::Huffman);
    }
    Ok(out)
}

fn string(buf: &[u8], at: &mut usize) -> Result<Vec<u8>, HpackError> {
    let huffman = *buf.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(buf, at, 7)? as usize;
    let end = at.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = buf.get(*at..end).ok_or(HpackError::Truncated)?;
    *at = end;
    if huffman {
        huffman_decode(raw)
    } else {
        Ok(raw.to_vec())
    }
}

impl Decoder {
    /// A decoder with the default table size (4096, SETTINGS_HEADER_TABLE_SIZE).
    pub fn new() -> Decoder {
        Decoder { table: VecDeque::new(), size: 0, max_size: 4096, allowed: None, cut: false }
    }

    /// The receiving side announced SETTINGS_HEADER_TABLE_SIZE `n`: size
    /// updates beyond it are refused (and the table shrinks to it).
    pub fn set_allowed(&mut self, n: u32) {
        let n = (n as usize).min(MAX_ALLOWED_TABLE);
        self.allowed = Some(n);
        if self.max_size > n {
            self.max_size = n;
            self.evict_to(n);
        }
    }

    /// Whether the last block's fields were cut at MAX_LIST_BYTES.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Entries, newest first (for tests and diagnostics).
    pub fn entries(&self) -> impl Iterator<Item = &Field> {
        self.table.iter()
    }

    fn lookup(&self, index: u64) -> Result<Field, HpackError> {
        let i = index as usize;
        if i == 0 {
            return Err(HpackError::BadIndex(index));
        }
        if i <= STATIC.len() {
            let (n, v) = STATIC[i - 1];
            return Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        self.table.get(i - STATIC.len() - 1).cloned().ok_or(HpackError::BadIndex(index))
    }

    /// The size of entry `index` when it exists (no copy).
    fn entry_len(&self, index: u64) -> Result<usize, HpackError> {
        let i = index as usize;
        match i {
            0 => Err(HpackError::BadIndex(index)),
            i if i <= STATIC.len() => Ok(STATIC[i - 1].0.len() + STATIC[i - 1].1.len()),
            i => self.table.get(i - STATIC.len() - 1).map(|(n, v)| n.len() + v.len()).ok_or(HpackError::BadIndex(index)),
        }
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.table.pop_back() {
                Some(f) => self.size -= entry_size(&f),
                None => break,
            }
        }
    }

    fn insert(&mut self, f: Field) {
        let s = entry_size(&f);
        if s > self.max_size {
            // Larger than the table: the table empties and nothing is added.
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - s);
        self.size += s;
        self.table.push_front(f);
    }

    /// Decodes one complete header block. Its fields beyond MAX_LIST_BYTES
    /// are parsed but not kept (`was_cut` says so).
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut out = Vec::new();
        let mut at = 0;
        let (mut kept, mut fields) = (0usize, 0usize);
        self.cut = false;
        while at < block.len() {
            let b = block[at];
            if b & 0x80 != 0 {
                // Indexed header field: copied only while the list has room.
                let i = integer(block, &mut at, 7)?;
                fields += 1;
                if self.cut || kept + self.entry_len(i)? > MAX_LIST_BYTES {
                    self.cut = true;
                } else {
                    keep(self.lookup(i)?, &mut out, &mut kept, &mut self.cut);
                }
            } else if b & 0x40 != 0 {
                // Literal with incremental indexing.
                let i = integer(block, &mut at, 6)?;
                let name = if i == 0 { string(block, &mut at)? } else { self.lookup(i)?.0 };
                let value = string(block, &mut at)?;
                fields += 1;
                self.insert((name.clone(), value.clone()));
                keep((name, value), &mut out, &mut kept, &mut self.cut);
            } else if b & 0x20 != 0 {
                // Dynamic table size update: only before the first field,
                // and within what the receiving side allowed.
                if fields > 0 {
                    return Err(HpackError::LateSizeUpdate);
                }
                let size = integer(block, &mut at, 5)?;
                if size as usize > self.allowed.unwrap_or(MAX_ALLOWED_TABLE) {
                    return Err(HpackError::TableSizeTooLarge(size));
                }
                self.max_size = size as usize;
                self.evict_to(self.max_size);
            } else {
                // Literal without indexing (0000) or never indexed (0001).
                let i = integer(block, &mut at, 4)?;
                let name = if i == 0 { string(block, &mut at)? } else { self.lookup(i)?.0 };
                let value = string(block, &mut at)?;
                fields += 1;
                keep((name, value), &mut out, &mut kept, &mut self.cut);
            }
        }
        Ok(out)
    }

    /// Forgets all state (after an error: later blocks may decode again
    /// once the peer's table is in step, or at least not crash).
    pub fn reset(&mut self) {
        *self = Decoder::new();
    }

    #[cfg(test)]
    pub fn with_max_size(max_size: usize) -> Decoder {
        Decoder { max_size, ..Decoder::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn fields(list: &[(&str, &str)]) -> Vec<Field> {
        list.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }

    fn table(d: &Decoder) -> Vec<(String, String)> {
        d.entries().map(|(n, v)| (String::from_utf8_lossy(n).into(), String::from_utf8_lossy(v).into())).collect()
    }

    #[test]
    fn integers_c1() {
        let mut at = 0;
        assert_eq!(integer(&[0b0000_1010], &mut at, 5), Ok(10));
        let mut at = 0;
        assert_eq!(integer(&[0b0001_1111, 0b1001_1010, 0b0000_1010], &mut at, 5), Ok(1337));
        assert_eq!(at, 3);
        let mut at = 0;
        assert_eq!(integer(&[42], &mut at, 8), Ok(42));
        let mut at = 0;
        assert_eq!(integer(&[0x1f, 0xff], &mut at, 5), Err(HpackError::Truncated));
        let mut at = 0;
        assert_eq!(integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut at, 5), Err(HpackError::IntegerOverflow));
    }

    /// RFC 7541 C.3 (requests, no Huffman) and C.4 (the same with Huffman).
    #[test]
    fn requests_c3_c4() {
        let first = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];
        let second = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")];
        let third = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ];
        for blocks in [
            ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "8286 84be 5808 6e6f 2d63 6163 6865", "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"],
            ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf", "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"],
        ] {
            let mut d = Decoder::new();
            assert_eq!(d.decode(&hex(blocks[0])).unwrap(), fields(&first));
            assert_eq!(d.table_size(), 57);
            assert_eq!(d.decode(&hex(blocks[1])).unwrap(), fields(&second));
            assert_eq!(d.table_size(), 110);
            assert_eq!(d.decode(&hex(blocks[2])).unwrap(), fields(&third));
            assert_eq!(d.table_size(), 164);
            assert_eq!(
                table(&d),
                vec![
                    ("custom-key".into(), "custom-value".into()),
                    ("cache-control".into(), "no-cache".into()),
                    (":authority".into(), "www.example.com".into())
                ]
            );
        }
    }

    /// RFC 7541 C.5 (responses, no Huffman) and C.6 (with Huffman), with a
    /// 256-byte table: entries are evicted.
    #[test]
    fn responses_with_eviction_c5_c6() {
        let r1 = [("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("location", "https://www.example.com")];
        let c5 = [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
        ];
        let c6 = [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ];
        for blocks in [c5, c6] {
            let mut d = Decoder::with_max_size(256);
            let mut want = fields(&[(":status", "302")]);
            want.extend(fields(&r1));
            assert_eq!(d.decode(&hex(blocks[0])).unwrap(), want);
            assert_eq!(d.table_size(), 222);
            want[0] = (b":status".to_vec(), b"307".to_vec());
            assert_eq!(d.decode(&hex(blocks[1])).unwrap(), want, ":status 302 was evicted");
            assert_eq!(d.table_size(), 222);
            let third = d.decode(&hex(blocks[2])).unwrap();
            assert_eq!(
                third,
                fields(&[
                    (":status", "200"),
                    ("cache-control", "private"),
                    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                    ("location", "https://www.example.com"),
                    ("content-encoding", "gzip"),
                    ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
                ])
            );
            assert_eq!(d.table_size(), 215);
            assert_eq!(
                table(&d),
                vec![
                    ("set-cookie".into(), "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1".into()),
                    ("content-encoding".into(), "gzip".into()),
                    ("date".into(), "Mon, 21 Oct 2013 20:13:22 GMT".into())
                ]
            );
        }
    }

    #[test]
    fn huffman_strings_c4_and_errors() {
        assert_eq!(huffman_decode(&hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).unwrap(), b"www.example.com");
        assert_eq!(huffman_decode(&hex("a8eb 1064 9cbf")).unwrap(), b"no-cache");
        assert_eq!(huffman_decode(&[]).unwrap(), b"");
        // Padding longer than 7 bits, or not all ones.
        assert_eq!(huffman_decode(&[0xff, 0xff]), Err(HpackError::Huffman));
        assert_eq!(huffman_decode(&[0x00]), Err(HpackError::Huffman), "'0' then 3 zero bits of padding");
        // EOS (30 ones) inside a string.
        assert_eq!(huffman_decode(&[0xff, 0xff, 0xff, 0xfc]), Err(HpackError::Huffman));
    }

    #[test]
    fn size_updates_and_errors() {
        let mut d = Decoder::new();
        d.decode(&hex("4003 6b65 7905 7661 6c75 65")).unwrap(); // key: value, indexed
        assert_eq!(d.table_size(), 3 + 5 + 32);
        // Size update to 0 evicts everything, then back to 4096.
        assert_eq!(d.decode(&[0x20]).unwrap(), vec![]);
        assert_eq!(d.table_size(), 0);
        assert_eq!(d.decode(&[0x3f, 0xe1, 0x1f]).unwrap(), vec![]);
        assert_eq!(d.decode(&[0x82, 0x20]), Err(HpackError::LateSizeUpdate));
        assert_eq!(d.decode(&[0xbe]), Err(HpackError::BadIndex(62)));
        assert_eq!(d.decode(&[0x80]), Err(HpackError::BadIndex(0)));
        assert_eq!(d.decode(&[0x41, 0x05, b'a']), Err(HpackError::Truncated));
        assert_eq!(d.decode(&[0x3f, 0xff, 0xff, 0x7f]), Err(HpackError::TableSizeTooLarge(2_097_182)));
        // Never beyond what the receiving side's SETTINGS allowed.
        d.set_allowed(1024);
        assert_eq!(d.decode(&[0x3f, 0xe2, 0x07]), Err(HpackError::TableSizeTooLarge(1025)));
        assert!(d.decode(&[0x3f, 0xe1, 0x07]).is_ok(), "1024 itself");
        // Never-indexed literal is not added to the table.
        let f = d.decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74")).unwrap();
        assert_eq!(f, fields(&[("password", "secret")]));
        assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn one_byte_references_cannot_amplify() {
        // A 4000-byte value into the table, then 3000 one-byte references to it.
        let mut block = vec![0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e];
        block.extend(std::iter::repeat_n(b'v', 4000));
        block.extend(std::iter::repeat_n(0xbe, 3000));
        let mut d = Decoder::new();
        let f = d.decode(&block).unwrap();
        assert!(d.was_cut());
        assert!(f.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() <= MAX_LIST_BYTES);
        assert_eq!(f.len(), 16, "what fits in 64 KiB");
        // The table stays in step: the next block still decodes.
        assert_eq!(d.decode(&[0xbe]).unwrap().len(), 1);
        assert!(!d.was_cut());
    }
}
