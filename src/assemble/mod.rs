//! From kernel records to whole messages: chunks of one SSL call back into
//! that call's payload (`chunks`), what kind of message a payload is
//! (`detect`), and the protocol decoders (`hpack`).

pub mod chunks;
pub mod detect;
pub mod hpack;
pub mod hpack_tables;
pub mod http1;
