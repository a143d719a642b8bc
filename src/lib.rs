//! ecapture as a library: the pipeline behind the `ecapture` binary, and
//! the eCaptureQ protocol types shared with the `ecaptureq_client` demo.
//!
//! The layers, each depending only on those listed before it:
//! - `sys`: the only `unsafe` code (libbpf, a few libc calls);
//! - `capture`: BPF objects loaded and attached, the ring read (records);
//! - `event`: the pipeline's data types (calls, messages, items);
//! - `decode`: records into calls (chunk reassembly);
//! - `modules`: one file per TLS library: discovery, offsets, attach lists;
//! - `assemble`: calls into messages (HTTP/1, HTTP/2);
//! - `packet`: frames of `-m pcapng` (filter compiler, TCP/TLS peeking);
//! - `format`: messages rendered (text, JSON); `ecaptureq::proto` (protobuf);
//! - `sink`, `ecaptureq`: transports; `outputs`: where messages go;
//! - `dispatch`, `pipeline`: the threads that run it all.
#![deny(unsafe_code)]

pub mod assemble;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod dispatch;
pub mod ecaptureq;
pub mod error;
pub mod event;
pub mod fasthash;
pub mod flags;
pub mod format;
pub mod fuzzing;
pub mod localtime;
pub mod logging;
pub mod modules;
pub mod outputs;
pub mod packet;
pub mod pipeline;
pub mod sink;
pub mod stats;
pub mod sys;
pub mod time;
pub mod transport;
