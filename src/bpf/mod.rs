//! The kernel side at run time: loading and attaching the embedded BPF
//! object (`loader`) and the per-CPU perf-buffer reader threads (`reader`).

pub mod loader;
pub mod reader;
