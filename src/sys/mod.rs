//! The only place with `unsafe` code: libbpf FFI (`libbpf`) and the handful of
//! libc calls std lacks (`os`). Everything above sees safe, owned handles.
#![allow(unsafe_code)]

pub mod libbpf;
pub mod os;
