//! The only place with `unsafe` code: libbpf FFI (`libbpf`), the handful of
//! libc calls std lacks (`os`) and the allocator's tuning (`alloc`).
//! Everything above sees safe, owned handles.
#![allow(unsafe_code)]

pub mod alloc;
pub mod libbpf;
pub mod os;
