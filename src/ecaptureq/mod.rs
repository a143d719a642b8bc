//! eCaptureQ (SPEC §5.2): a WebSocket server streaming protobuf `LogEntry`
//! messages — runtime logs, heartbeats and captured events — to any number
//! of clients, none of which can slow capture or each other.
//!
//! `addr` parses `--ecaptureq` and holds the access policy, `proto` builds
//! and reads messages (types generated into `pb`), `hub` fans messages out
//! to per-client queues, `server` accepts connections and `client` serves
//! each on its own thread.

pub mod addr;
pub mod client;
pub mod hub;
#[allow(clippy::all)]
pub mod pb;
pub mod proto;
pub mod server;
