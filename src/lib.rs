//! ecapture as a library: the pipeline behind the `ecapture` binary, and
//! the eCaptureQ protocol types shared with the `ecaptureq_client` demo.
#![deny(unsafe_code)]

pub mod assemble;
pub mod bpf;
pub mod cli;
pub mod dispatch;
pub mod ecaptureq;
pub mod error;
pub mod event;
pub mod format;
pub mod localtime;
pub mod logging;
pub mod outputs;
pub mod pipeline;
pub mod reorder;
pub mod sink;
pub mod stats;
pub mod sys;
pub mod time;
pub mod tls;
