//! From kernel records to whole messages. For now: chunks of one SSL call
//! back into that call's payload (`chunks`).

pub mod chunks;
