//! The `tls` module's knowledge of TLS libraries: finding them (`discover`),
//! reading their ELF files (`elf`) and versions with the struct offsets each
//! version needs (`version`).

pub mod discover;
pub mod elf;
pub mod version;
