//! Message assembly: the calls of one connection become messages (`conn`):
//! HTTP/1.x messages (`http1`), HTTP/2 frame batches decoded with HPACK
//! (`http2`, `hpack`), or other bytes. What kind of message a payload starts
//! with (`detect`). Bodies are decompressed for display here (`inflate`)
//! when an output will show them. Depends on the event types only.

pub mod conn;
pub mod detect;
pub mod hpack;
pub mod hpack_tables;
pub mod http1;
pub mod http2;
pub mod inflate;
