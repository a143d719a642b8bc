//! From kernel records to whole messages: chunks of one SSL call back into
//! that call's payload (`chunks`), calls of one connection into messages
//! (`conn`, with the protocol layers `http1`, `http2`, `hpack`), and what
//! kind of message a payload starts with (`detect`).

pub mod chunks;
pub mod conn;
pub mod detect;
pub mod hpack;
pub mod hpack_tables;
pub mod http1;
pub mod http2;
