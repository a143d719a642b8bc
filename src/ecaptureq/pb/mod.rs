// Automatically generated mod.rs
pub mod event;
