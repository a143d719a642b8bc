//! From kernel records to whole messages: chunks of one SSL call back into
//! that call's payload (`chunks`), and what kind of message it is (`detect`).

pub mod chunks;
pub mod detect;
