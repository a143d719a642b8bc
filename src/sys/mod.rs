//! The only place with `unsafe` code: libbpf FFI (`libbpf`), the handful of
//! libc calls std lacks (`os`), the file-system calls behind safe output
//! files (`fs`), the allocator's tuning (`alloc`) and the packet socket of
//! `-m pcapng` (`packet`).
//! Everything above sees safe, owned handles.
#![allow(unsafe_code)]

pub mod alloc;
pub mod fs;
pub mod libbpf;
pub mod os;
pub mod packet;
