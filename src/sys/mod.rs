//! The only place with `unsafe` code: libbpf FFI (`libbpf`), the handful of
//! libc calls std lacks (`os`), the file-system calls behind safe output
//! files (`fs`) and the allocator's tuning (`alloc`).
//! Everything above sees safe, owned handles.
#![allow(unsafe_code)]

pub mod alloc;
pub mod fs;
pub mod libbpf;
pub mod os;
