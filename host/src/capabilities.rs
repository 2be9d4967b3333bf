//! Host capabilities: what plugins can ask the host to do, each checked
//! against the plugin's grants. One module per capability holds its state and
//! policy in plain Rust; the `Host` trait impls are thin glue over it.

pub mod filesystem;
pub mod log;
pub mod secrets;
pub mod storage;
