//! The kernel <-> user ABI of bpf/abi.h, seen from Rust.
//!
//! - Constants: generated from the header's `#define`s by build.rs (`c::*`),
//!   never copied by hand.
//! - Layouts: each struct this side reads or writes is declared once below
//!   with its fields' offsets and types; the decoders and encoders use those
//!   declarations (a `Field<T>` reads exactly `size_of T` bytes at its
//!   offset), and `modules::tests::abi_matches_the_objects_btf` compares every
//!   declaration with the struct as compiled, read from the embedded objects'
//!   BTF. A change on one side alone fails the tests; the header's
//!   `_Static_assert`s catch it on the C side.

use std::marker::PhantomData;

/// The `#define`s of bpf/abi.h.
#[allow(dead_code)]
pub mod c {
    include!(concat!(env!("OUT_DIR"), "/abi_consts.rs"));
}

/// A fixed-size value as the kernel lays it out (native byte order).
pub trait Scalar: Sized {
    const SIZE: usize;
    fn read(b: &[u8]) -> Self;
    fn write(&self, b: &mut [u8]);
}

macro_rules! int_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn read(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..Self::SIZE]);
                <$t>::from_ne_bytes(a)
            }
            fn write(&self, b: &mut [u8]) {
                b[..Self::SIZE].copy_from_slice(&self.to_ne_bytes());
            }
        }
    )*};
}
int_scalar!(u8, u16, u32, u64, i32);

/// Byte arrays: addresses, names, and nested structs this side treats as bytes.
impl<const N: usize> Scalar for [u8; N] {
    const SIZE: usize = N;
    fn read(b: &[u8]) -> Self {
        let mut a = [0u8; N];
        a.copy_from_slice(&b[..N]);
        a
    }
    fn write(&self, b: &mut [u8]) {
        b[..N].copy_from_slice(self);
    }
}

/// A field of type `T` at a byte offset of its struct.
pub struct Field<T> {
    pub off: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Scalar> Field<T> {
    pub const fn at(off: usize) -> Field<T> {
        Field { off, _t: PhantomData }
    }

    /// The field's value in `rec`, which the caller has checked is at least
    /// the struct's size.
    pub fn get(&self, rec: &[u8]) -> T {
        T::read(&rec[self.off..])
    }

    pub fn put(&self, buf: &mut [u8], v: T) {
        v.write(&mut buf[self.off..]);
    }
}

/// A struct's layout as this side uses it: for the BTF comparison.
#[derive(Debug)]
pub struct Layout {
    pub name: &'static str,
    pub size: usize,
    /// (field, byte offset, byte size)
    pub fields: &'static [(&'static str, usize, usize)],
}

/// Declares a struct of bpf/abi.h: a module named like the C struct with
/// `SIZE`, one `Field` constant per member and the `LAYOUT` the tests check.
macro_rules! abi_struct {
    ($(#[$m:meta])* $name:ident ($size:expr) { $($field:ident: $ty:ty = $off:expr,)* }) => {
        $(#[$m])*
        #[allow(non_upper_case_globals, dead_code)]
        pub mod $name {
            use $crate::capture::abi::{Field, Layout, Scalar};
            pub const SIZE: usize = $size;
            $(pub const $field: Field<$ty> = Field::at($off);)*
            pub const LAYOUT: Layout = Layout {
                name: stringify!($name),
                size: SIZE,
                fields: &[$((stringify!($field), $off, <$ty as Scalar>::SIZE)),*],
            };
        }
    };
}

pub(crate) use abi_struct;

abi_struct!(
    /// `struct rec_hdr`: the start of every record.
    rec_hdr(16) {
        ts_ns: u64 = 0,
        kind: u32 = 8,
        source: u32 = 12,
    }
);

abi_struct!(
    /// `struct chunk_rec`: one piece of a call's payload follows it.
    chunk_rec(128) {
        h: [u8; 16] = 0,
        call_id: u64 = 16,
        conn: u64 = 24,
        pid: u32 = 32,
        tid: u32 = 36,
        uid: u32 = 40,
        fd: i32 = 44,
        total_len: u32 = 48,
        captured_len: u32 = 52,
        chunk_off: u32 = 56,
        chunk_len: u32 = 60,
        tls_version: u32 = 64,
        lib_idx: u32 = 68,
        family: u16 = 72,
        lport: u16 = 74,
        rport: u16 = 76,
        dir: u8 = 78,
        flags: u8 = 79,
        laddr: [u8; 16] = 80,
        raddr: [u8; 16] = 96,
        comm: [u8; 16] = 112,
    }
);

abi_struct!(
    /// `struct close_rec`: a connection object was freed.
    close_rec(32) {
        h: [u8; 16] = 0,
        conn: u64 = 16,
        pid: u32 = 24,
        tid: u32 = 28,
    }
);

abi_struct!(
    /// `struct secret_rec`: one labelled key log secret (modules whose
    /// library hands secrets out whole; decode::calls turns it into a
    /// `Secret`).
    secret_rec(136) {
        h: [u8; 16] = 0,
        conn: u64 = 16,
        pid: u32 = 24,
        label: u32 = 28,
        secret_len: u32 = 32,
        _pad: u32 = 36,
        client_random: [u8; 32] = 40,
        secret: [u8; 64] = 72,
    }
);

abi_struct!(
    /// `struct common_cfg`: every object's `common_cfg` global.
    common_cfg(28) {
        target_pid: u32 = 0,
        target_uid: u32 = 4,
        capture_cap: u32 = 8,
        source: u32 = 12,
        wakeup_bytes: u32 = 16,
        max_chunks: u32 = 20,
        self_pid: u32 = 24,
    }
);

/// The layouts every object shares (bpf/common.h uses them all).
pub const COMMON_LAYOUTS: &[&Layout] =
    &[&rec_hdr::LAYOUT, &chunk_rec::LAYOUT, &close_rec::LAYOUT, &secret_rec::LAYOUT, &common_cfg::LAYOUT];

/// Values of `common_cfg` before `source`, which the loader sets per object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonConfig {
    pub target_pid: u32,
    pub target_uid: u32,
    pub capture_cap: u32,
    pub wakeup_bytes: u32,
}

impl CommonConfig {
    /// The bytes of `struct common_cfg` for object number `source`.
    pub fn to_bytes(&self, source: u32) -> Vec<u8> {
        let mut b = vec![0u8; common_cfg::SIZE];
        common_cfg::target_pid.put(&mut b, self.target_pid);
        common_cfg::target_uid.put(&mut b, self.target_uid);
        common_cfg::capture_cap.put(&mut b, self.capture_cap);
        common_cfg::source.put(&mut b, source);
        common_cfg::wakeup_bytes.put(&mut b, self.wakeup_bytes);
        let chunk = c::CHUNK_DATA_SIZE as u32;
        common_cfg::max_chunks.put(&mut b, self.capture_cap.min(c::MAX_CAPTURE_CAP as u32).div_ceil(chunk));
        common_cfg::self_pid.put(&mut b, std::process::id());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_come_from_the_header() {
        assert_eq!(c::CHUNK_DATA_SIZE, 32768);
        assert_eq!(c::REC_CHUNK, 1);
        assert_eq!(c::COOKIE_EX, 0x200);
        assert_eq!(c::STAT_COUNT, 5);
    }

    #[test]
    fn layouts_are_contiguous_and_sized() {
        for l in COMMON_LAYOUTS {
            let mut at = 0;
            for &(name, off, size) in l.fields {
                assert_eq!(off, at, "{}.{name} leaves a gap or overlaps", l.name);
                at = off + size;
            }
            assert_eq!(at, l.size, "{} ends at {at}", l.name);
        }
    }

    #[test]
    fn common_config_bytes() {
        let b = CommonConfig { target_pid: 7, target_uid: 8, capture_cap: 65537, wakeup_bytes: 10 }.to_bytes(3);
        assert_eq!(b.len(), 28);
        let u = |i: usize| u32::from_ne_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((u(0), u(1), u(2), u(3), u(4), u(5)), (7, 8, 65537, 3, 10, 3), "65537 bytes: 3 chunks");
        assert_eq!(u(6), std::process::id(), "ecapture's own pid, never captured");
    }
}
